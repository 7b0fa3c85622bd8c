//! The flow duties of the process that owns task 0: heartbeats, checkpoints and group offset
//! sync (MM2's heartbeat and checkpoint connectors).
//!
//! Exactly one process runs them, because exactly one owns task 0 (`lease`); they move with
//! that task. One thread runs the duties on their own intervals:
//!
//! * **Heartbeats** (`docs/mm2-facts.md`, "Internal records"): a record keyed `(source, target)` with the current time,
//!   to partition 0 of the target's heartbeats topic, every heartbeat interval. Like MM2's
//!   reverse herder, it also writes `(target, source)` into the *source* cluster's heartbeats
//!   topic when no flow of this process runs the other way, so that the flow mirrors it as
//!   `<source>.heartbeats`, which MM2's `RemoteClusterUtils` uses to find upstream clusters.
//! * **Checkpoints** ("Checkpoints"): reads the positions topic, then the offset-syncs topic, into
//!   one run-length [`OffsetIndex`] per partition; lists the source groups that `groups` selects
//!   (one ListConsumerGroups request) and reads their committed offsets (pipelined on one admin
//!   client, `kafka::ffi`); translates each exactly, up to the larger of the stored position
//!   and the latest offset sync; writes a checkpoint when it is newer than the last one
//!   ([`CheckpointState`]).
//! * **Group offset sync** ("Group offset sync"): commits the latest checkpointed offsets to the same group on
//!   the target, only while that group has no members there, and only partitions where the
//!   target's committed offset is lower. The target groups' states and offsets are read in the
//!   same round, right before committing (never from an earlier snapshot, which is MM2's
//!   KAFKA-19794 race), and the broker refuses commits from a non-member into a group with
//!   members.
//!
//! Files: this one holds the thread, its rounds, heartbeats and the internal-topic readers;
//! `checkpoints.rs` group selection and checkpoints, `group_sync.rs` the group offset sync.
//!
//! Reading positions before syncs matters: a task stores a position only after the syncs
//! written before it were acknowledged, so every run boundary below a position read here is in
//! the syncs read after it; and a sync is written only after its record and every earlier run
//! boundary, so the latest sync bounds what is replicated too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::client::{Client, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

mod checkpoints;
mod group_sync;

use super::FlowContext;
use crate::config::Cluster;
use crate::events::{CallsSeen, Events};
use crate::kafka::ffi::NativeError;
use crate::kafka::{Admin, AdminCallError};
use crate::mm2::records::{Checkpoint, Heartbeat};
use crate::mm2::translation::{CheckpointState, OffsetIndex};
use crate::replication::positions::{PositionReader, PositionsError};
use crate::replication::supervisor::{Backoff, Supervised};

/// How long one read of an internal topic, or one group request, may take.
pub(crate) use checkpoints::{GroupExclusion, select_groups};

const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Runs kept per partition in the offset index (16 bytes each).
const MAX_RUNS: usize = 1 << 16;

/// Errors that restart the leader's duties (after a back-off).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaderError {
    /// A Kafka client could not be created or a request failed.
    #[error("{what} failed")]
    Kafka {
        what: String,
        #[source]
        source: Box<KafkaError>,
    },
    /// Reading positions failed.
    #[error("reading positions failed")]
    Positions(#[source] PositionsError),
    /// An internal topic could not be read to its end in time.
    #[error("reading `{topic}` did not reach its end within {timeout:?}")]
    Timeout { topic: String, timeout: Duration },
    /// An admin client could not be created.
    #[error("creating an admin client failed")]
    Admin(#[source] AdminCallError),
    /// The leader duties were asked to stop while waiting on a cluster (not a failure).
    #[error("stopped while waiting on a cluster")]
    Stopped,
    /// A group offsets request could not be issued.
    #[error("{what} failed")]
    Native {
        what: String,
        #[source]
        source: NativeError,
    },
}

/// Maps a failed librdkafka call made through `kafka::ffi` on `what`.
fn native(what: &str) -> impl FnOnce(NativeError) -> LeaderError {
    let what = what.to_owned();
    move |source| LeaderError::Native { what, source }
}

fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> LeaderError {
    let what = what.into();
    move |source| LeaderError::Kafka {
        what,
        source: Box::new(source),
    }
}

/// How the leader duties restart after an error.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_secs(1),
    max: Duration::from_secs(30),
    healthy_after: Duration::from_secs(60),
};

/// Starts the leader duties of `context`'s flow on their own supervised thread.
///
/// # Errors
/// When the thread cannot be started.
pub(crate) fn spawn(context: Arc<FlowContext>) -> std::io::Result<Supervised> {
    let events = Events::new(&context.tasks.metrics, &context.tasks.flow.id);
    let span = tracing::info_span!("leader", flow = %context.tasks.flow.id);
    Supervised::spawn(
        "ferry-leader".to_owned(),
        span,
        BACKOFF,
        move |stop: &Arc<AtomicBool>| match Leader::start(&context, stop)
            .and_then(|mut leader| leader.run(stop))
        {
            Err(LeaderError::Stopped) => Ok(()),
            outcome => outcome,
        },
        move |error: &LeaderError, retry_in| events.leader_failed(error, retry_in),
    )
}

/// Reads partition 0 of a single-partition internal topic, continuing where it stopped.
struct PartitionReader {
    consumer: BaseConsumer,
    /// Asks for the watermarks ([`crate::kafka::watermark_client`]).
    watermarks: BaseConsumer,
    topic: String,
    next: i64,
}

impl PartitionReader {
    fn new(cluster: &Cluster, topic: &str) -> Result<PartitionReader, LeaderError> {
        let consumer: BaseConsumer = crate::kafka::plain_consumer(cluster)
            .create()
            .map_err(kafka(format!("creating a reader of `{topic}`")))?;
        let watermarks: BaseConsumer = crate::kafka::watermark_client(cluster)
            .create()
            .map_err(kafka(format!("creating a reader of `{topic}`")))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(kafka(format!("assigning `{topic}`")))?;
        consumer
            .assign(&list)
            .map_err(kafka(format!("assigning `{topic}`")))?;
        Ok(PartitionReader {
            consumer,
            watermarks,
            topic: topic.to_owned(),
            next: 0,
        })
    }

    /// Hands every record up to the current end to `handle(key, value)`; gives up with
    /// `Stopped` within half a second of `stop` being set.
    fn read_to_end(
        &mut self,
        stop: &AtomicBool,
        mut handle: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), LeaderError> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let watermarks = &self.watermarks;
        let (low, high) = crate::kafka::until_stopped(deadline, stop, |slice| {
            watermarks.fetch_watermarks(&self.topic, 0, slice)
        })
        .ok_or(LeaderError::Stopped)?
        .map_err(kafka(format!("reading the end of `{}`", self.topic)))?;
        self.next = self.next.max(low);
        while self.next < high {
            if stop.load(Ordering::Acquire) {
                return Err(LeaderError::Stopped);
            }
            if Instant::now() >= deadline {
                return Err(LeaderError::Timeout {
                    topic: self.topic.clone(),
                    timeout: READ_TIMEOUT,
                });
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Err(error)) => return Err(kafka(format!("reading `{}`", self.topic))(error)),
                Some(Ok(message)) => {
                    self.next = message.offset() + 1;
                    if let (Some(key), Some(value)) = (message.key(), message.payload()) {
                        handle(key, value);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

struct Leader {
    context: Arc<FlowContext>,
    /// Set when the leader duties are asked to stop: reads and flushes that wait on a cluster
    /// give up on it.
    stop: Arc<AtomicBool>,
    flow: String,
    target_producer: BaseProducer,
    /// Writes the reverse heartbeats into the source cluster, when this flow emits them.
    source_producer: Option<BaseProducer>,
    positions: PositionReader,
    syncs: Option<PartitionReader>,
    indexes: HashMap<(String, i32), OffsetIndex>,
    checkpoints: CheckpointState,
    /// Read the source groups' offsets.
    source_admins: Admins,
    /// Read and commit the target groups' offsets.
    target_admins: Admins,
    /// What was reported of the group filter plugin's calls.
    group_filter_calls: CallsSeen,
    events: Events,
}

impl Leader {
    fn start(context: &Arc<FlowContext>, stop: &Arc<AtomicBool>) -> Result<Leader, LeaderError> {
        let flow = &context.tasks.flow;
        let producer = |cluster: &Cluster, what: &str| -> Result<BaseProducer, LeaderError> {
            crate::kafka::internal_producer(cluster)
                .create()
                .map_err(kafka(format!("creating a {what} producer")))
        };
        let source_producer = match context.source_heartbeats && flow.emit_heartbeats.is_some() {
            true => Some(producer(&context.tasks.source, "source heartbeat")?),
            false => None,
        };
        let syncs = match (&context.tasks.offset_syncs, flow.emit_checkpoints) {
            (Some(location), Some(_)) => {
                Some(PartitionReader::new(&location.cluster, &location.topic)?)
            }
            _ => None,
        };
        let mut checkpoints = CheckpointState::default();
        if syncs.is_some() {
            // Earlier checkpoints keep new ones monotonic across leader changes (MM2 3.8's
            // CheckpointStore, KAFKA-15905).
            let mut reader =
                PartitionReader::new(&context.tasks.target, &context.checkpoints_topic)?;
            reader.read_to_end(stop, |key, value| {
                if let Ok(checkpoint) = Checkpoint::decode(key, value) {
                    checkpoints.load(
                        &checkpoint.consumer_group_id,
                        &checkpoint.topic,
                        checkpoint.partition,
                        checkpoint.upstream_offset,
                        checkpoint.downstream_offset,
                    );
                }
            })?;
        }
        let positions = PositionReader::new(
            &context.tasks.target,
            &context.tasks.positions_topic,
            flow.source.as_str(),
        )
        .map_err(LeaderError::Positions)?;
        tracing::info!(
            heartbeats = ?flow.emit_heartbeats,
            checkpoints = ?flow.emit_checkpoints,
            group_offsets = ?flow.sync_group_offsets,
            "Flow leader duties started."
        );
        Ok(Leader {
            stop: Arc::clone(stop),
            flow: flow.id.to_string(),
            target_producer: producer(&context.tasks.target, "target")?,
            source_producer,
            positions,
            syncs,
            indexes: HashMap::new(),
            checkpoints,
            source_admins: Admins::new(flow.source.as_str(), &context.tasks.source)?,
            target_admins: Admins::new(flow.target.as_str(), &context.tasks.target)?,
            group_filter_calls: CallsSeen::default(),
            events: Events::new(&context.tasks.metrics, &flow.id),
            context: Arc::clone(context),
        })
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<(), LeaderError> {
        let flow = self.context.tasks.flow.clone();
        let start = Instant::now();
        let mut next_heartbeat = start;
        let mut next_checkpoint = start;
        let mut next_group_sync = start;
        // Rounds start at a fixed rate (`interval` after the previous start, at once when a
        // round took longer), so that a group committed right after a listing waits one
        // interval, not an interval plus the rounds. Group offsets are synced from
        // checkpoints: the first round follows the first checkpoints.
        let mut checkpointed = false;
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            if let Some(interval) = flow.emit_heartbeats
                && now >= next_heartbeat
            {
                self.heartbeat();
                next_heartbeat = now + interval;
            }
            if let Some(interval) = flow.emit_checkpoints
                && self.syncs.is_some()
                && now >= next_checkpoint
            {
                self.checkpoint()?;
                checkpointed = true;
                next_checkpoint = now + interval;
            }
            if let Some(interval) = flow.sync_group_offsets
                && checkpointed
                && now >= next_group_sync
            {
                self.sync_group_offsets();
                next_group_sync = now + interval;
            }
            self.target_producer.poll(Duration::ZERO);
            if let Some(producer) = &self.source_producer {
                producer.poll(Duration::ZERO);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let flush = Duration::from_secs(5);
        if let Err(error) = self.target_producer.flush(flush) {
            tracing::warn!(%error, "Flushing checkpoints and heartbeats failed.");
        }
        Ok(())
    }

    fn heartbeat(&mut self) {
        let source = self.context.tasks.flow.source.as_str();
        let target = self.context.tasks.flow.target.as_str();
        let timestamp = now_ms();
        let topic = self.context.heartbeats_topic.as_str();
        let metrics = &self.context.tasks.metrics.heartbeats_written;
        let send = |producer: &BaseProducer, from: &str, to: &str| {
            let heartbeat = Heartbeat {
                source_cluster_alias: from.to_owned(),
                target_cluster_alias: to.to_owned(),
                timestamp,
            };
            let Ok(key) = heartbeat.key() else {
                return;
            };
            let value = heartbeat.value();
            let record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
                .partition(0)
                .key(&key[..])
                .payload(&value[..])
                .timestamp(timestamp);
            match producer.send(record) {
                Ok(()) => metrics.with_label_values(&[&self.flow, to]).inc(),
                Err((error, _)) => {
                    tracing::warn!(%error, cluster = to, "Writing a heartbeat failed.");
                }
            }
        };
        send(&self.target_producer, source, target);
        if let Some(producer) = &self.source_producer {
            send(producer, target, source);
        }
    }
}

/// Admin clients of one cluster for group calls, each with its own connection to the group
/// coordinators, which answer the requests of one connection one after another
/// ([`crate::kafka::ffi::list_group_offsets`] spreads the groups over them).
struct Admins {
    first: Admin,
    more: Vec<Admin>,
}

/// How many admin clients a leader keeps per cluster for group calls.
const GROUP_CLIENTS: usize = 3;

impl Admins {
    fn new(name: &str, cluster: &Cluster) -> Result<Admins, LeaderError> {
        let admin = || Admin::new(name, cluster).map_err(LeaderError::Admin);
        Ok(Admins {
            first: admin()?,
            more: (1..GROUP_CLIENTS)
                .map(|_| admin())
                .collect::<Result<_, _>>()?,
        })
    }

    fn clients(&self) -> Vec<&Client<DefaultClientContext>> {
        std::iter::once(&self.first)
            .chain(&self.more)
            .map(Admin::client)
            .collect()
    }
}

/// How long each step of a leader round took, in order.
struct Phases {
    took: Vec<(&'static str, Duration)>,
    last: Instant,
}

impl Phases {
    fn new(started: Instant) -> Phases {
        Phases {
            took: Vec::new(),
            last: started,
        }
    }

    /// The step `name` ended now.
    fn done(&mut self, name: &'static str) {
        let now = Instant::now();
        self.took.push((name, now - self.last));
        self.last = now;
    }
}
