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
    scenario.wait_for(
        &mut ferry,
        i64::from(partitions) * first as i64,
        "the first topic is mirrored",
    );
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
    assert_eq!(
        compare_in_order(
            &scenario.clusters.b,
            &scenario.remote,
            &expected(partitions, first, second)
        ),
        (0, 0)
    );
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
    scenario.wait_for(
        &mut ferry,
        i64::from(partitions) * first as i64,
        "the first topic is mirrored",
    );
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
    assert_eq!(
        compare_in_order(
            &scenario.clusters.b,
            &scenario.remote,
            &expected(partitions, first, second)
        ),
        (0, 0)
    );
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
    scenario.wait_for(
        &mut ferry,
        i64::from(partitions) * first as i64,
        "the first records are mirrored",
    );
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
    assert_eq!(
        compare_in_order(&scenario.clusters.b, &scenario.remote, &expected),
        (0, 0)
    );
    println!("skipped {skipped}, resets {resets}");
    assert_eq!(skipped, f64::from(partitions) * 30.0, "{log}");
    assert_eq!(resets, f64::from(partitions), "{log}");
    assert!(
        log.contains("deleted at the source before they were replicated"),
        "{log}"
    );
    assert!(!log.contains("Task failed"), "{log}");
}
