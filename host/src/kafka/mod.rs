//! All rdkafka client settings and administrative calls, in one place.
//!
//! Each Ferry client (source consumer, target producer, internal producer, task-lease member,
//! plain reader, admin) gets its settings here, on top of the cluster's own settings from the
//! config file for the client's [`ClientRole`]: every consumer builder asks for
//! [`ClientRole::Consumer`], every producer builder for [`ClientRole::Producer`], [`admin_client`]
//! for [`ClientRole::Admin`]. Defaults are applied only where the operator's `librdkafka` or
//! role table does not set the key, except for the keys the host owns for correctness (offset
//! storage, idempotence, group membership), which are always the host's. Every client of the
//! host is created from one of these builders (`admin.rs` builds its client with [`admin_client`];
//! `ffi/` works on an admin client's handle). `producer.rs` wraps the tasks' producers so that
//! their waits for delivery reports end when a report arrives ([`WakingProducer`]).

mod admin;
pub(crate) mod ffi;
mod producer;
pub(crate) mod resources;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaResult, RDKafkaErrorCode};

use crate::config::{ClientRole, Cluster};

pub(crate) use admin::{AUTO_REPLICATION, Admin, AdminCallError, Replication};
pub(crate) use producer::WakingProducer;

/// How long a metadata or admin request may take before it is reported as failed.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest one blocking call of [`until_stopped`] waits before the stop flag is looked at
/// again.
const STOP_SLICE: Duration = Duration::from_millis(500);

/// Runs a blocking librdkafka call that may be repeated after a timeout (metadata, watermarks,
/// `init_transactions`) in slices of at most [`STOP_SLICE`], repeating it while it times out,
/// until it succeeds, fails otherwise or `deadline` passes (its last timeout is returned).
/// `None` when `stop` is set first: a task starting against a hung cluster then stops within
/// half a second instead of waiting out its whole timeout (`docs/operations.md`, "Stopping").
pub(crate) fn until_stopped<T>(
    deadline: Instant,
    stop: &AtomicBool,
    mut call: impl FnMut(Duration) -> KafkaResult<T>,
) -> Option<KafkaResult<T>> {
    loop {
        if stop.load(Ordering::Acquire) {
            return None;
        }
        let slice = deadline
            .saturating_duration_since(Instant::now())
            .min(STOP_SLICE);
        match call(slice) {
            Err(error)
                if error.rdkafka_error_code() == Some(RDKafkaErrorCode::OperationTimedOut)
                    && Instant::now() < deadline => {}
            outcome => return Some(outcome),
        }
    }
}

/// Session timeout of the task-lease group: how long a dead Ferry process keeps its tasks
/// before the survivors take them over. MM2 waits `scheduled.rebalance.max.delay.ms` = 5 min on
/// top of its 10 s session timeout; Ferry reassigns at the session timeout.
/// 6 s is the broker's lowest allowed (`group.min.session.timeout.ms`); a Ferry process has no
/// garbage-collection pauses to ride out, and a shorter session is a shorter failover
/// (`docs/operations.md`, "Failover time").
pub(crate) const LEASE_SESSION_TIMEOUT_MS: &str = "6000";

/// The transaction timeout of exactly-once task producers: how long the target keeps a dead
/// producer's open transaction (and so holds back `read_committed` readers of its partitions)
/// when no new owner of the task fences it first.
const TRANSACTION_TIMEOUT_MS: &str = "30000";

/// Sets `key` only when the operator's passthrough options did not.
fn set_default(config: &mut ClientConfig, key: &str, value: &str) {
    if config.get(key).is_none() {
        config.set(key, value);
    }
}

/// A consumer that is assigned partitions explicitly and never commits to Kafka.
///
/// librdkafka's incremental assignment needs a `group.id` even when the consumer never joins the
/// group; this one never subscribes, commits or fetches committed offsets (every assignment
/// carries an explicit offset), so the group stays empty on the broker.
///
/// Everything Ferry reads back (positions, offset syncs, checkpoints, the lease) is read
/// `read_committed`, always: an exactly-once task's positions count only once its transaction
/// committed.
pub(crate) fn plain_consumer(cluster: &Cluster) -> ClientConfig {
    let mut config = assign_only_consumer(cluster);
    config.set("isolation.level", "read_committed");
    config
}

/// [`plain_consumer`]'s settings, without its isolation level.
fn assign_only_consumer(cluster: &Cluster) -> ClientConfig {
    let mut config = cluster.client_config(ClientRole::Consumer);
    config.set("group.id", assign_only_group());
    config.set("enable.auto.commit", "false");
    config.set("enable.auto.offset.store", "false");
    config.set("enable.partition.eof", "false");
    set_default(&mut config, "auto.offset.reset", "earliest");
    config
}

/// A client that only asks for partitions' watermarks, beside a consumer that reads those
/// partitions to their end now and then (positions, offset syncs, checkpoints). Asked on the
/// reading consumer, a watermark request waits behind its fetch long-poll (up to
/// `fetch.wait.max.ms`); pausing the consumer instead makes librdkafka start fetching only
/// about a second after each resume. This one is never assigned, so it never fetches.
pub(crate) fn watermark_client(cluster: &Cluster) -> ClientConfig {
    plain_consumer(cluster)
}

/// A group id no other client uses, so that assign-only consumers never share group state.
fn assign_only_group() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "ferry.assign-only.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The source consumer of one task.
///
/// Every assignment carries an explicit start offset (the stored position, or the beginning or
/// end for partitions never replicated, following the cluster's `auto.offset.reset`, default
/// `earliest` as in MM2), so librdkafka must never move a position by itself:
/// `auto.offset.reset=error` turns an out-of-range fetch into an error; the task then checks
/// the position against the partition's watermarks and moves it in place
/// (`replication::worker`, `docs/operations.md` "Source log faults").
/// At least once, `isolation.level=read_uncommitted` is the Java consumer's (and so MM2's)
/// default; librdkafka's own default would silently drop aborted transactional records that
/// MM2 copies. Exactly once, the source is read `read_committed`, always: records of aborted
/// source transactions are not copied, and open ones are copied once they commit.
pub(crate) fn source_consumer(cluster: &Cluster, exactly_once: bool) -> ClientConfig {
    let mut config = assign_only_consumer(cluster);
    config.set("auto.offset.reset", "error");
    if exactly_once {
        config.set("isolation.level", "read_committed");
    } else {
        set_default(&mut config, "isolation.level", "read_uncommitted");
    }
    // librdkafka's default prefetch queue is 64 MiB per consumer; 1 MiB (one fetch of a
    // partition, `max.partition.fetch.bytes`, which may overshoot it) keeps a task's memory small
    // and copies as fast on loopback (docs/performance.md 6g: 8 tasks at 97-99 MiB peak RSS with
    // `max_in_flight` 2000, instead of 291-317). librdkafka then waits `fetch.queue.backoff.ms`
    // (default 1 s) before fetching a partition whose queue was full; 10 ms keeps the next fetch
    // close behind the task (2 MiB with 1 s: the copy took 2.6 times as long).
    set_default(&mut config, "queued.max.messages.kbytes", "1024");
    set_default(&mut config, "fetch.queue.backoff.ms", "10");
    // The kilobytes count payloads only; small records are bounded by count: librdkafka keeps
    // up to 100 000 messages queued by default, several hundred bytes each beyond the payload
    // (1 000 partitions of tiny records: 421 MiB peak RSS, docs/performance.md 6g). 10 000 is
    // the same bound as 1 MiB at 100-byte records.
    set_default(&mut config, "queued.min.messages", "10000");
    set_default(&mut config, "fetch.wait.max.ms", "100");
    config
}

/// The target producer of one task.
///
/// Idempotence keeps per-partition order across retries with several requests in flight (MM2
/// forces `max.in.flight.requests.per.connection=1` and loses throughput for it) and removes
/// duplicates caused by producer retries. `partitioner=murmur2_random` is Java's partitioner, so
/// position records land in the partition MM2 would choose.
///
/// With a `transactional_id` (exactly once: one per task, the same on every process, so that a
/// new owner's `init_transactions` fences the previous one) the producer is transactional.
pub(crate) fn target_producer(cluster: &Cluster, transactional_id: Option<&str>) -> ClientConfig {
    let mut config = cluster.client_config(ClientRole::Producer);
    if let Some(id) = transactional_id {
        config.set("transactional.id", id);
        set_default(
            &mut config,
            "transaction.timeout.ms",
            TRANSACTION_TIMEOUT_MS,
        );
    }
    config.set("enable.idempotence", "true");
    config.set("acks", "all");
    config.set("partitioner", "murmur2_random");
    // librdkafka's default buffer is 1 GiB per producer; 64 MiB bounds memory per task.
    set_default(&mut config, "queue.buffering.max.kbytes", "65536");
    set_default(&mut config, "linger.ms", "5");
    // Workers also refresh a remote topic's metadata when its partitions grow; this bounds the
    // wait if that refresh fails (librdkafka's default is 5 minutes).
    set_default(&mut config, "topic.metadata.refresh.interval.ms", "30000");
    config
}

/// Whether `cluster` runs transactions for `transactional_id`: a transactional producer as a
/// task's, which initialises transactions (what each exactly-once task does first), within
/// `timeout`. Blocking. The probe's id must not be a task's (it would fence the task). A broker
/// older than Kafka 0.11, a transaction state log whose replication factor the cluster cannot
/// give, or a principal without the TransactionalId ACLs fail here as the tasks would.
///
/// # Errors
/// What `init_transactions` (or creating the producer) answered.
pub(crate) fn probe_transactions(
    cluster: &Cluster,
    transactional_id: &str,
    timeout: Duration,
) -> KafkaResult<()> {
    use rdkafka::producer::{BaseProducer, Producer};
    let producer: BaseProducer = target_producer(cluster, Some(transactional_id)).create()?;
    producer.init_transactions(timeout)
}

/// A producer of Ferry's and MM2's small bookkeeping records (offset syncs, heartbeats,
/// checkpoints): idempotent and ordered, with a small buffer.
pub(crate) fn internal_producer(cluster: &Cluster) -> ClientConfig {
    let mut config = cluster.client_config(ClientRole::Producer);
    config.set("enable.idempotence", "true");
    config.set("acks", "all");
    set_default(&mut config, "queue.buffering.max.kbytes", "4096");
    set_default(&mut config, "linger.ms", "5");
    config
}

/// The offset-sync producer of one task: an [`internal_producer`] whose records time out after
/// 10 s (librdkafka's default is 5 minutes), so that a missing or unwritable offset-syncs topic
/// is reported within seconds (`replication::worker`, offset syncs never hold the copy back).
pub(crate) fn offset_sync_producer(cluster: &Cluster) -> ClientConfig {
    let mut config = internal_producer(cluster);
    set_default(&mut config, "message.timeout.ms", "10000");
    config
}

/// A member of the task-lease group `group_id` (see `flow::lease`), named `instance`: its
/// `client.id` is the process's instance id, always (whatever the cluster's settings say), so
/// that `ferry status` can tell from the group which process owns which task.
pub(crate) fn lease_consumer(cluster: &Cluster, group_id: &str, instance: &str) -> ClientConfig {
    let mut config = plain_consumer(cluster);
    config.set("group.id", group_id);
    config.set("client.id", instance);
    config.set("partition.assignment.strategy", "cooperative-sticky");
    set_default(&mut config, "session.timeout.ms", LEASE_SESSION_TIMEOUT_MS);
    set_default(&mut config, "heartbeat.interval.ms", "1000");
    config
}

/// An admin client (`Admin`, and through its handle the calls of `ffi`): the cluster's settings
/// for [`ClientRole::Admin`], as given.
pub(crate) fn admin_client(cluster: &Cluster) -> ClientConfig {
    cluster.client_config(ClientRole::Admin)
}

/// Whether partitions without a stored position start at the end of the source partition: the
/// source consumers' `auto.offset.reset` (from `librdkafka` or the `consumer` table) is
/// `latest` (or its synonyms `largest`, `end`); MM2's default, and Ferry's, is `earliest`.
pub(crate) fn starts_at_end(source: &Cluster) -> bool {
    plain_consumer(source)
        .get("auto.offset.reset")
        .is_some_and(|value| matches!(value, "latest" | "largest" | "end"))
}
