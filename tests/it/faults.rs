//! Faults of issue 10, each reproduced against the real brokers: a source topic deleted and
//! created again under the same name, while Ferry is stopped and while it runs. Each test counts
//! what the target received against what the source held (lost, duplicated) and checks content
//! and per-partition order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::{self, ConfigBuilder, Ferry, TempDir, TestRecord};

/// Record `index` of `partition` as the source holds it: the first topic held indexes
/// `0..first`, the topic created again under its name holds `1_000..1_000 + second`.
fn expected(partitions: i32, first: u64, second: u64) -> BTreeMap<i32, Vec<TestRecord>> {
    (0..partitions)
        .map(|partition| {
            let records = (0..first)
                .chain(1_000..1_000 + second)
                .map(|index| support::record(partition, index))
                .collect();
            (partition, records)
        })
        .collect()
}

/// Compares what `remote` holds with `expected`, partition by partition in order: prints and
/// returns (lost, duplicated) counts; panics on a record that is neither expected nor a repeat.
fn compare_in_order(
    b: &str,
    remote: &str,
    expected: &BTreeMap<i32, Vec<TestRecord>>,
) -> (usize, usize) {
    let mut received: BTreeMap<i32, Vec<TestRecord>> = BTreeMap::new();
    for record in support::read_all(b, remote) {
        received.entry(record.partition).or_default().push(record);
    }
    let (mut lost, mut duplicated) = (0, 0);
    for (partition, wanted) in expected {
        let got = received.remove(partition).unwrap_or_default();
        // Order: the first occurrence of each record follows the source order.
        let mut firsts: Vec<&TestRecord> = Vec::new();
        for record in &got {
            if firsts.contains(&record) {
                duplicated += 1;
            } else {
                assert!(
                    wanted.contains(record),
                    "partition {partition}: unexpected record {record:?}"
                );
                firsts.push(record);
            }
        }
        let in_source_order: Vec<&TestRecord> = wanted
            .iter()
            .filter(|record| firsts.contains(record))
            .collect();
        assert_eq!(
            firsts, in_source_order,
            "partition {partition}: order differs"
        );
        lost += wanted.len() - firsts.len();
    }
    assert!(
        received.is_empty(),
        "partitions not in the source: {received:?}"
    );
    println!("{remote}: {lost} lost, {duplicated} duplicated");
    (lost, duplicated)
}

struct Scenario {
    clusters: &'static support::Clusters,
    topic: String,
    remote: String,
    config: std::path::PathBuf,
    dir: TempDir,
    partitions: i32,
}

impl Scenario {
    /// A topic of `partitions` partitions holding `first` records each, and a flow mirroring it.
    fn new(name: &str, partitions: i32, first: u64) -> Scenario {
        let clusters = support::clusters();
        let source = support::unique("fA");
        let topic = support::unique(&format!("fault.{name}"));
        support::create_topic(&clusters.a, &topic, partitions);
        support::produce(&clusters.a, &topic, partitions, 0..first);
        let dir = TempDir::new(name);
        // ConfigBuilder's flows refresh the topic list every second: a deleted topic leaves
        // the catalog while Ferry runs.
        let extra = format!("topics = \"{}\"", topic.replace('.', "\\\\."));
        let config = ConfigBuilder::new()
            .cluster(&source, &clusters.a)
            .cluster("fB", &clusters.b)
            .flow(&source, "fB", &support::unique("g"), &extra)
            .write(&dir);
        Scenario {
            remote: format!("{source}.{topic}"),
            clusters,
            topic,
            config,
            dir,
            partitions,
        }
    }

    fn wait_for(&self, ferry: &mut Ferry, count: i64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            ferry.assert_running();
            let received = support::record_count(&self.clusters.b, &self.remote);
            if received >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}: {received} of {count}; log:\n{}",
                ferry.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the records the topic held at the start (`first` per partition) are
    /// mirrored.
    fn wait_for_first(&self, ferry: &mut Ferry, first: u64) {
        self.wait_for(
            ferry,
            i64::from(self.partitions) * first as i64,
            "the first records are mirrored",
        );
    }

    /// Asserts that the remote topic holds `expected`, in order, none lost, none duplicated.
    fn assert_mirrored(&self, expected: &BTreeMap<i32, Vec<TestRecord>>) {
        assert_eq!(
            compare_in_order(&self.clusters.b, &self.remote, expected),
            (0, 0)
        );
    }

    /// Deletes the source topic and creates it again with `second` new records per partition
    /// (indexes `1_000..`).
    fn recreate(&self, second: u64) {
        support::delete_topic(&self.clusters.a, &self.topic);
        support::create_topic(&self.clusters.a, &self.topic, self.partitions);
        support::produce(
            &self.clusters.a,
            &self.topic,
            self.partitions,
            1_000..1_000 + second,
        );
    }
}

/// Issue 10: Ferry stopped, the source topic deleted and created again with fewer records than
/// the stored positions cover. The stored position is beyond the new log's end: Ferry copies
/// the new log from its start, says so (WARN and `ferry_partition_resets_total`), and neither
/// loops nor waits for the new log to grow past the old position.
#[test]
fn issue_10_a_source_topic_recreated_while_stopped_is_copied_from_its_start() {
    let (partitions, first, second) = (2, 50, 10);
    let scenario = Scenario::new("recreated-stopped", partitions, first);
    let mut ferry = Ferry::start(&scenario.config, &scenario.dir, "before");
    scenario.wait_for_first(&mut ferry, first);
    let log = ferry.terminate();
    assert!(log.contains("Task drained."), "{log}");

    scenario.recreate(second);
    let started = Instant::now();
    let mut ferry = Ferry::start(&scenario.config, &scenario.dir, "after");
    scenario.wait_for(
        &mut ferry,
        i64::from(partitions) * (first + second) as i64,
        "the new topic's records are mirrored",
    );
    println!(
        "new records mirrored {:?} after the restart",
        started.elapsed()
    );
    let resets = ferry.metric_sum("ferry_partition_resets_total");
    let log = ferry.terminate();
    scenario.assert_mirrored(&expected(partitions, first, second));
    assert_eq!(resets, f64::from(partitions), "resets counted:\n{log}");
    assert!(log.contains("beyond the source's end"), "{log}");
    assert!(!log.contains("Task failed"), "the task restarted:\n{log}");
}

/// Issue 10: the source topic deleted and created again while Ferry runs. The deleted topic
/// leaves the catalog, the new one comes back into it; its partitions are copied from the new
/// log's start, even though Ferry remembers a next offset for them.
#[test]
fn issue_10_a_source_topic_recreated_while_running_is_copied_from_its_start() {
    let (partitions, first, second) = (2, 50, 10);
    let scenario = Scenario::new("recreated-running", partitions, first);
    let mut ferry = Ferry::start(&scenario.config, &scenario.dir, "ferry");
    scenario.wait_for_first(&mut ferry, first);
    scenario.recreate(second);
    let started = Instant::now();
    scenario.wait_for(
        &mut ferry,
        i64::from(partitions) * (first + second) as i64,
        "the new topic's records are mirrored",
    );
    println!(
        "new records mirrored {:?} after the topic came back",
        started.elapsed()
    );
    let log = ferry.terminate();
    scenario.assert_mirrored(&expected(partitions, first, second));
    let restarts = log.matches("Task failed").count();
    println!("task restarts: {restarts}");
    assert_eq!(restarts, 0, "{log}");
}

/// Issue 10: Ferry stopped, the source went on, and retention deleted records before Ferry
/// copied them (the log now starts past the stored position). Ferry goes on at the log start:
/// the deleted records are counted in `ferry_records_skipped_total{reason="retention"}` and
/// logged as an error, exactly those and nothing else are missing, and no task restarts.
#[test]
fn issue_10_records_deleted_by_retention_before_the_copy_are_counted() {
    let (partitions, first) = (2, 50);
    let scenario = Scenario::new("retention", partitions, first);
    let mut ferry = Ferry::start(&scenario.config, &scenario.dir, "before");
    scenario.wait_for_first(&mut ferry, first);
    ferry.terminate();

    // 50 more records per partition; retention takes the log up to offset 80.
    support::produce(
        &scenario.clusters.a,
        &scenario.topic,
        partitions,
        first..100,
    );
    support::delete_records_before(&scenario.clusters.a, &scenario.topic, partitions, 80);
    let mut ferry = Ferry::start(&scenario.config, &scenario.dir, "after");
    scenario.wait_for(
        &mut ferry,
        i64::from(partitions) * 70,
        "the records still held are mirrored",
    );
    let skipped = ferry.metric_sum("ferry_records_skipped_total");
    let resets = ferry.metric_sum("ferry_partition_resets_total");
    let log = ferry.terminate();
    let expected: BTreeMap<i32, Vec<TestRecord>> = (0..partitions)
        .map(|partition| {
            let held = (0..first).chain(80..100);
            (
                partition,
                held.map(|index| support::record(partition, index))
                    .collect(),
            )
        })
        .collect();
    scenario.assert_mirrored(&expected);
    println!("skipped {skipped}, resets {resets}");
    assert_eq!(skipped, f64::from(partitions) * 30.0, "{log}");
    assert_eq!(resets, f64::from(partitions), "{log}");
    assert!(
        log.contains("deleted at the source before they were replicated"),
        "{log}"
    );
    assert!(!log.contains("Task failed"), "{log}");
}

/// Issue 10, refused records: the oversized record of `partition`, `size` value bytes.
fn oversized(partition: i32, size: usize) -> TestRecord {
    let mut record = support::record(partition, 9_999);
    record.key = Some(b"oversized".to_vec());
    record.value = Some(vec![b'x'; size]);
    record
}

/// Partition `partition`'s records as the tests below write them: records `0..10`, the
/// oversized record on partition 0, then records `10..30`.
fn with_oversized(partition: i32, size: usize) -> Vec<TestRecord> {
    let mut records: Vec<TestRecord> = (0..10).map(|i| support::record(partition, i)).collect();
    if partition == 0 {
        records.push(oversized(0, size));
    }
    records.extend((10..30).map(|i| support::record(partition, i)));
    records
}

/// Writes [`with_oversized`] to `topic` (of `partitions` partitions).
fn write_with_oversized(topic: &str, partitions: i32, size: usize) {
    let clusters = support::clusters();
    support::produce(&clusters.a, topic, partitions, 0..10);
    support::produce_records(&clusters.a, topic, [oversized(0, size)]);
    support::produce(&clusters.a, topic, partitions, 10..30);
}

/// `ferry_records_refused_total` for `action`.
fn refused_count(ferry: &Ferry, action: &str) -> f64 {
    ferry
        .samples("ferry_records_refused_total")
        .iter()
        .filter(|(labels, _)| labels.get("action").map(String::as_str) == Some(action))
        .map(|(_, value)| value)
        .sum()
}

/// What `topic` on clusterB holds, per partition, in order.
fn by_partition(records: Vec<TestRecord>) -> BTreeMap<i32, Vec<TestRecord>> {
    let mut by_partition: BTreeMap<i32, Vec<TestRecord>> = BTreeMap::new();
    for record in records {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    by_partition
}

/// A source topic holding [`with_oversized`] and a flow mirroring it, whose target producer's
/// `message.max.bytes` is set per config.
struct RefusedAtSend {
    clusters: &'static support::Clusters,
    source: String,
    target: String,
    topic: String,
    remote: String,
    group: String,
    dir: TempDir,
}

impl RefusedAtSend {
    fn new(name: &str, partitions: i32, size: usize) -> RefusedAtSend {
        let clusters = support::clusters();
        let source = support::unique("frA");
        let topic = support::unique("fault.refused");
        support::create_topic(&clusters.a, &topic, partitions);
        write_with_oversized(&topic, partitions, size);
        RefusedAtSend {
            clusters,
            remote: format!("{source}.{topic}"),
            source,
            target: support::unique("frB"),
            topic,
            group: support::unique("g"),
            dir: TempDir::new(name),
        }
    }

    /// The configuration: the producer's `message.max.bytes` is `limit`; `extra` goes into
    /// the flow.
    fn config(&self, limit: &str, extra: &str) -> std::path::PathBuf {
        let topics = format!("topics = \"{}\"\n{extra}", self.topic.replace('.', "\\\\."));
        ConfigBuilder::new()
            .cluster(&self.source, &self.clusters.a)
            .cluster(&self.target, &self.clusters.b)
            .flow(&self.source, &self.target, &self.group, &topics)
            .raw(&format!(
                "[clusters.{}.producer]\n\"message.max.bytes\" = \"{limit}\"\n",
                self.target
            ))
            .write(&self.dir)
    }
}

/// Issue 10: under `on_error = "skip"`, a record the producer refuses is left out and counted
/// (`ferry_records_skipped_total{reason="refused"}`, ERROR); everything else is copied once, in
/// order, and no task restarts.
#[test]
fn issue_10_a_refused_record_under_skip_is_counted_and_left_out() {
    let (partitions, size) = (2, 50_000);
    let refused = RefusedAtSend::new("refused-skip", partitions, size);
    let config = refused.config("20000", "on_error = \"skip\"");
    let mut ferry = Ferry::start(&config, &refused.dir, "ferry");
    support::wait_until(
        Duration::from_secs(90),
        "everything else is mirrored",
        || {
            ferry.assert_running();
            support::record_count(&refused.clusters.b, &refused.remote) >= 30 + 30
        },
    );
    let skipped = ferry.metric_sum("ferry_records_skipped_total");
    let counted = refused_count(&ferry, "skip");
    let log = ferry.terminate();
    let mirrored = by_partition(support::read_all(&refused.clusters.b, &refused.remote));
    for partition in 0..partitions {
        let expected: Vec<TestRecord> = with_oversized(partition, size)
            .into_iter()
            .filter(|record| record.key.as_deref() != Some(b"oversized".as_slice()))
            .collect();
        assert_eq!(
            mirrored.get(&partition),
            Some(&expected),
            "partition {partition}"
        );
    }
    println!("skipped {skipped}, refused (skip) {counted}");
    assert_eq!((skipped, counted), (1.0, 1.0), "{log}");
    assert!(log.contains("it is skipped (on_error = skip)"), "{log}");
    assert!(!log.contains("Task failed"), "the task restarted:\n{log}");
}

/// Issue 10: a record larger than the target producer's `message.max.bytes` (librdkafka
/// refuses it when it is produced). Before: the task failed and restarted forever, copying
/// the partitions' later records again each time. Now, under the default `on_error = "halt"`:
/// that partition stops exactly at the record (ERROR, `ferry_records_refused_total`,
/// `ferry_partitions_halted`), the other partition is copied in full, no task restarts; after
/// the limit is raised and Ferry restarted, the partition resumes at the record: 0 lost,
/// 0 duplicated.
#[test]
fn issue_10_a_record_the_producer_refuses_halts_only_its_partition() {
    let (partitions, size) = (2, 50_000);
    let refused = RefusedAtSend::new("refused-send", partitions, size);
    let (clusters, remote, dir) = (refused.clusters, &refused.remote, &refused.dir);
    let flows = |limit: &str| refused.config(limit, "");
    let config = flows("20000");
    let mut ferry = Ferry::start(&config, dir, "limited");
    let started = Instant::now();
    support::wait_until(
        Duration::from_secs(90),
        "the refused record halted its partition and the rest is mirrored",
        || {
            ferry.assert_running();
            ferry.metric_sum("ferry_records_refused_total") >= 1.0
                && support::record_count(&clusters.b, remote) >= 10 + 30
        },
    );
    println!("partition halted {:?} after the start", started.elapsed());
    let halted = ferry.metric_sum("ferry_partitions_halted");
    let refusals = refused_count(&ferry, "halt");
    let log = ferry.terminate();
    let mirrored = by_partition(support::read_all(&clusters.b, remote));
    assert_eq!(
        mirrored.get(&1),
        Some(&with_oversized(1, size)),
        "partition 1"
    );
    assert_eq!(
        mirrored.get(&0).map(Vec::as_slice),
        Some(&with_oversized(0, size)[..10]),
        "partition 0 stops right before the refused record"
    );
    assert_eq!(halted, 1.0, "{log}");
    assert!(refusals >= 1.0, "{log}");
    assert!(
        log.contains("The target refused a record for good"),
        "{log}"
    );
    assert!(!log.contains("Task failed"), "the task restarted:\n{log}");

    let config = flows("1000000");
    let mut ferry = Ferry::start(&config, dir, "unlimited");
    support::wait_until(
        Duration::from_secs(90),
        "the halted partition resumed",
        || {
            ferry.assert_running();
            support::record_count(&clusters.b, remote) >= 31 + 30
        },
    );
    let log = ferry.terminate();
    let mirrored = by_partition(support::read_all(&clusters.b, remote));
    for partition in 0..partitions {
        assert_eq!(
            mirrored.get(&partition),
            Some(&with_oversized(partition, size)),
            "partition {partition}: 0 lost, 0 duplicated, in order\n{log}"
        );
    }
    println!("after the restart: 0 lost, 0 duplicated");
}

/// Issue 10: a remote topic whose `max.message.bytes` is below a record's size (the broker
/// refuses the record batch, in a delivery report). Before: the task restarted forever. Now
/// the partition halts at the first refused record — also under `on_error = "dead-letter"`,
/// because the delivery report's copy of a record is not faithful — and no task restarts;
/// once the operator raised the remote topic's limit and restarted Ferry, the partition
/// resumes there: every record on the target once, in order.
#[test]
fn issue_10_records_the_remote_topic_refuses_halt_their_partition_until_fixed() {
    let clusters = support::clusters();
    let size = 50_000;
    let source = support::unique("fdA");
    let target = support::unique("fdB");
    let topic = support::unique("fault.refused");
    let remote = format!("{source}.{topic}");
    support::create_topic(&clusters.a, &topic, 1);
    let admin = support::client(&clusters.b);
    support::create_topic_with(&admin, &remote, &[("max.message.bytes", "20000")]);
    write_with_oversized(&topic, 1, size);
    let dir = TempDir::new("refused-delivery");
    let extra = format!(
        "topics = \"{}\"\non_error = \"dead-letter\"\ndead_letter_topic = \"{}\"\n\
         sync_topic_configs = false",
        topic.replace('.', "\\\\."),
        support::unique("fault.dead")
    );
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "limited");
    support::wait_until(Duration::from_secs(90), "the partition halted", || {
        ferry.assert_running();
        ferry.metric_sum("ferry_partitions_halted") == 1.0
    });
    let refused = refused_count(&ferry, "halt");
    let log = ferry.terminate();
    let expected = with_oversized(0, size);
    let mirrored = support::read_all(&clusters.b, &remote);
    println!(
        "{} of {} mirrored before the halt, {refused} refused",
        mirrored.len(),
        expected.len()
    );
    assert!(refused >= 1.0, "{log}");
    assert!(
        mirrored.len() <= 10 && expected.starts_with(&mirrored),
        "the partition stops at or before the oversized record: {mirrored:?}"
    );
    assert!(
        log.contains("The target refused a record for good"),
        "{log}"
    );
    assert!(!log.contains("Task failed"), "the task restarted:\n{log}");

    support::replace_topic_configs(&admin, &remote, &[("max.message.bytes", "1000000")]);
    let mut ferry = Ferry::start(&config, &dir, "fixed");
    support::wait_until(Duration::from_secs(90), "the partition resumed", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= expected.len() as i64
    });
    let log = ferry.terminate();
    assert_eq!(
        support::read_all(&clusters.b, &remote),
        expected,
        "0 lost, 0 duplicated, in order:\n{log}"
    );
    println!("after the fix: 0 lost, 0 duplicated");
}

/// The replication factor of partition 0 of `topic` on `bootstrap`.
fn replicas(bootstrap: &str, topic: &str) -> usize {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = support::client(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0].partitions()[0].replicas().len()
}

/// Issue 10, durability: `replication_factor` defaults to auto (up to 3 replicas, as the
/// target's brokers allow, with `min.insync.replicas = 2` at 3). On the one-broker test target
/// that is 1, and Ferry says so: `validate` notes that the topics do not survive a broker's
/// loss, `run` logs a WARN, and the remote and bookkeeping topics get one replica and no
/// `min.insync.replicas` override. A factor the target cannot give is named by `validate`.
#[test]
fn issue_10_the_default_replication_follows_the_target_and_says_what_it_gives() {
    let clusters = support::clusters();
    let source = support::unique("frepA");
    let target = support::unique("frepB");
    let topic = support::unique("fault.replication");
    let remote = format!("{source}.{topic}");
    support::create_topic(&clusters.a, &topic, 2);
    support::produce(&clusters.a, &topic, 2, 0..20);
    let dir = TempDir::new("replication");
    let write = |replication: &str| {
        let extra = format!(
            "topics = \"{}\"\n{replication}",
            topic.replace('.', "\\\\.")
        );
        ConfigBuilder::new()
            .cluster(&source, &clusters.a)
            .cluster(&target, &clusters.b)
            .flow(&source, &target, &support::unique("g"), &extra)
            .write(&dir)
    };
    let config = write("replication_factor = 3");
    let (code, output) =
        support::ferry_command(&["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("replication_factor = 3, but cluster")
            && output.contains("creating topics there will fail"),
        "{output}"
    );

    let config = write("# replication_factor: the default (auto)");
    let (code, output) =
        support::ferry_command(&["validate", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("replication_factor = 0 (auto) gives 1")
            && output.contains("do not survive a broker's loss"),
        "{output}"
    );
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    support::wait_until(Duration::from_secs(60), "the topic is mirrored", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= 40
    });
    let log = ferry.terminate();
    assert!(log.contains("The target has fewer than 3 brokers"), "{log}");
    let admin = support::client(&clusters.b);
    for topic in [remote.as_str(), &format!("mm2-offsets.{source}.internal")] {
        assert_eq!(replicas(&clusters.b, topic), 1, "{topic}");
        assert!(
            !support::topic_overrides(&admin, topic).contains_key("min.insync.replicas"),
            "{topic}"
        );
    }
}

/// Issue 10 point 4: an offset-syncs topic that refuses every sync (its `max.message.bytes`
/// below a sync's size) never holds the copy back. Before, positions were stored only after
/// the syncs flushed, so the task restarted in a loop and stored none. Now: an ERROR and
/// `ferry_offset_sync_failures_total`, positions stored to the last record, no task restart;
/// once the topic is fixed, syncs are written again; every record is copied once.
#[test]
fn issue_10_an_unwritable_offset_syncs_topic_does_not_stop_positions() {
    let clusters = support::clusters();
    let source = support::unique("fsA");
    let target = support::unique("fsB");
    let topic = support::unique("fault.syncs");
    let remote = format!("{source}.{topic}");
    let syncs_topic = format!("mm2-offset-syncs.{target}.internal");
    let positions_topic = format!("mm2-offsets.{source}.internal");
    let (partitions, first) = (4, 2_000_u64);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..first);
    let source_admin = support::client(&clusters.a);
    support::create_topic_with(&source_admin, &syncs_topic, &[("max.message.bytes", "10")]);
    let dir = TempDir::new("syncs-unwritable");
    let extra = format!("topics = \"{}\"", topic.replace('.', "\\\\."));
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "syncs");
    let stored_at = |last: i64| {
        let positions = support::positions(&clusters.b, &positions_topic, &source);
        (0..partitions).all(|partition| positions.get(&(topic.clone(), partition)) == Some(&last))
    };
    support::wait_until(
        Duration::from_secs(90),
        "every partition's position is stored at its last record",
        || {
            ferry.assert_running();
            stored_at(first as i64 - 1)
        },
    );
    let failures = ferry.metric_sum("ferry_offset_sync_failures_total");
    assert!(failures >= 1.0, "no sync failure counted");
    let log = ferry.log_text();
    assert!(log.contains("Offset syncs cannot be written"), "{log}");
    assert!(!log.contains("Task failed"), "the task restarted:\n{log}");

    support::replace_topic_configs(
        &source_admin,
        &syncs_topic,
        &[("max.message.bytes", "1000000")],
    );
    support::produce(&clusters.a, &topic, partitions, first..2 * first);
    support::wait_until(Duration::from_secs(90), "syncs are written again", || {
        ferry.assert_running();
        ferry.log_text().contains("Offset syncs are written again")
            && !support::read_raw(&clusters.a, &syncs_topic).is_empty()
    });
    support::wait_until(Duration::from_secs(90), "the positions moved on", || {
        ferry.assert_running();
        stored_at(2 * first as i64 - 1)
    });
    let log = ferry.terminate();
    let comparison = support::compare(
        &support::read_all(&clusters.b, &remote),
        partitions,
        2 * first,
    );
    println!(
        "unwritable offset syncs: {failures} failure(s) counted; expected {} received {} lost {} duplicates {}",
        comparison.expected, comparison.received, comparison.lost, comparison.duplicates
    );
    assert_eq!(
        (comparison.lost, comparison.duplicates),
        (0, 0),
        "{comparison:?}\n{log}"
    );
}

/// Issue 10 point 5: the task's idempotent producer hits a fatal error mid-copy (fabricated
/// with librdkafka's `rd_kafka_test_fatal_error` through the debug build's
/// `FERRY_FAULT_PRODUCER_FATAL_AFTER`: a real broker gives no practical way to cause one). The
/// dead producer refuses every write, positions too; before, the drain stored nothing, and the
/// restarted task copied everything since the last store again (here, with positions stored
/// only by the drain, every record acknowledged before the error). Now the drain stores what
/// was acknowledged with a fresh producer: at most the records in flight at the error (at
/// most `max_in_flight`) are copied twice, none lost.
#[test]
fn issue_10_a_fatal_producer_error_still_stores_what_was_acknowledged() {
    let clusters = support::clusters();
    let source = support::unique("fpA");
    let target = support::unique("fpB");
    let topic = support::unique("fault.fatal");
    let remote = format!("{source}.{topic}");
    let (partitions, per_partition, fatal_after, max_in_flight) = (4, 5_000_u64, 8_000, 500);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);
    let dir = TempDir::new("producer-fatal");
    let extra = format!(
        "topics = \"{}\"\ntasks = 1\nmax_in_flight = {max_in_flight}\n\
         commit_interval = \"1h\" # positions are stored by the drain only",
        topic.replace('.', "\\\\.")
    );
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start_with_env(
        &config,
        &dir,
        "fatal",
        &[("FERRY_FAULT_PRODUCER_FATAL_AFTER", &fatal_after.to_string())],
    );
    let total = i64::from(partitions) * per_partition as i64;
    let mut comparison = support::compare(&[], partitions, per_partition);
    // When the fault showed in the log, and when the restarted task had started.
    let (mut fault_seen, mut restarted) = (None, None);
    support::wait_until(
        Duration::from_secs(120),
        "every record is on the target",
        || {
            ferry.assert_running();
            let log = ferry.log_text();
            if fault_seen.is_none() && log.contains("Fault injection") {
                fault_seen = Some(Instant::now());
            }
            if restarted.is_none() && log.matches("Task started.").count() >= 2 {
                restarted = Some(Instant::now());
            }
            if support::record_count(&clusters.b, &remote) < total {
                return false;
            }
            comparison = support::compare(
                &support::read_all(&clusters.b, &remote),
                partitions,
                per_partition,
            );
            comparison.lost == 0
        },
    );
    let log = ferry.terminate();
    assert!(
        log.contains("Fault injection: a fatal producer error. acknowledged=")
            && log.contains("raised=true"),
        "the fault was not injected:\n{log}"
    );
    assert!(
        log.contains("hit a fatal error: test_fatal_error: fault injection"),
        "the task did not say its producer died:\n{log}"
    );
    let stalled = match (fault_seen, restarted) {
        (Some(fault), Some(restart)) => format!("{:.1?}", restart.saturating_duration_since(fault)),
        _ => "not seen".to_owned(),
    };
    println!(
        "fatal producer error after {fatal_after} acknowledged: expected {} received {} lost {} \
         duplicates {} (at most {max_in_flight} allowed: the records in flight at the error); \
         the task copied nothing from the error until its restart, {stalled} later",
        comparison.expected, comparison.received, comparison.lost, comparison.duplicates
    );
    assert_eq!(comparison.lost, 0, "{comparison:?}\n{log}");
    assert!(
        comparison.duplicates <= max_in_flight,
        "the records acknowledged before the error were copied again: {comparison:?}\n{log}"
    );
    assert!(
        log.contains("positions are stored with a fresh producer"),
        "{log}"
    );
}

/// Issue 9 and 10: exactly once, a record the remote topic refuses poisons its transaction:
/// the transaction is aborted, the task restarts once, and the restarted task halts the
/// partition at that record without producing it (other partitions go on); the records
/// before it are committed once. After the remote topic's limit is raised, a restart copies
/// the rest: every record exactly once, in order.
#[test]
fn issue_9_a_record_the_remote_topic_refuses_inside_a_transaction_halts_its_partition() {
    let clusters = support::clusters();
    let size = 50_000;
    let source = support::unique("feA");
    let target = support::unique("feB");
    let topic = support::unique("fault.refused-eo");
    let remote = format!("{source}.{topic}");
    let partitions = 2;
    support::create_topic(&clusters.a, &topic, partitions);
    let admin = support::client(&clusters.b);
    support::create_topic_with(&admin, &remote, &[("max.message.bytes", "20000")]);
    write_with_oversized(&topic, partitions, size);
    let dir = TempDir::new("refused-transaction");
    let extra = format!(
        "topics = \"{}\"\nexactly_once = true\nsync_topic_configs = false",
        topic.replace('.', "\\\\.")
    );
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "limited");
    support::wait_until(Duration::from_secs(90), "the partition halted", || {
        ferry.assert_running();
        ferry.metric_sum("ferry_partitions_halted") == 1.0
    });
    // Partition 1 goes on: all of it is committed.
    support::wait_until(
        Duration::from_secs(60),
        "the other partition copied",
        || {
            ferry.assert_running();
            support::read_all(&clusters.b, &remote)
                .iter()
                .filter(|record| record.partition == 1)
                .count()
                == 30
        },
    );
    let log = ferry.terminate();
    let mirrored = by_partition(support::read_all(&clusters.b, &remote));
    let expected: Vec<Vec<TestRecord>> = (0..partitions)
        .map(|partition| with_oversized(partition, size))
        .collect();
    let halted = mirrored.get(&0).cloned().unwrap_or_default();
    println!(
        "exactly once: {} of {} records of partition 0 committed before the halt",
        halted.len(),
        expected[0].len()
    );
    assert!(
        halted.len() <= 10 && expected[0].starts_with(&halted),
        "partition 0 stops before the oversized record, each record once: {halted:?}"
    );
    assert_eq!(
        mirrored.get(&1),
        Some(&expected[1]),
        "partition 1 once, in order"
    );
    assert!(
        log.contains("The target refused a record for good"),
        "{log}"
    );
    assert_eq!(
        log.matches("Task failed").count(),
        1,
        "one restart, for the aborted transaction:\n{log}"
    );

    support::replace_topic_configs(&admin, &remote, &[("max.message.bytes", "1000000")]);
    let mut ferry = Ferry::start(&config, &dir, "fixed");
    support::wait_until(Duration::from_secs(90), "the partition resumed", || {
        ferry.assert_running();
        by_partition(support::read_all(&clusters.b, &remote))
            .get(&0)
            .is_some_and(|records| records.len() >= expected[0].len())
    });
    let log = ferry.terminate();
    let mirrored = by_partition(support::read_all(&clusters.b, &remote));
    assert_eq!(
        mirrored.get(&0),
        Some(&expected[0]),
        "0 lost, 0 duplicated, in order:\n{log}"
    );
    assert_eq!(mirrored.get(&1), Some(&expected[1]));
    println!("exactly once, after the fix: 0 lost, 0 duplicated");
}
