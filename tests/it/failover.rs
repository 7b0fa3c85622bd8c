//! Several `ferry` processes share a flow's tasks; revoked tasks are drained; a killed process's
//! tasks are taken over from stored positions without losing a record.

use std::time::Duration;

use crate::support::{self, ConfigBuilder, Ferry, TempDir};

const PARTITIONS: i32 = 8;

fn flow_config(dir: &TempDir, topic: &str, group: &str) -> std::path::PathBuf {
    flow_config_with(dir, topic, group, "")
}

/// [`flow_config`] with more flow lines.
fn flow_config_with(dir: &TempDir, topic: &str, group: &str, more: &str) -> std::path::PathBuf {
    let extra = format!("topics = \"{topic}\"\ntasks = 8\n{more}");
    ConfigBuilder::new()
        .flow("clusterA", "clusterB", group, &extra)
        .write(dir)
}

/// Produces records `range` of every partition on a thread, in chunks of 1 000 per partition, so
/// that Ferry copies while the producer writes.
fn produce_in_background(
    bootstrap: &str,
    topic: &str,
    range: std::ops::Range<u64>,
) -> std::thread::JoinHandle<()> {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    std::thread::spawn(move || {
        for start in range.step_by(1_000) {
            support::produce(&bootstrap, &topic, PARTITIONS, start..start + 1_000);
        }
    })
}

/// Acceptance: two processes share 8 partitions; one is killed with SIGKILL mid-stream; the
/// other finishes; 0 records lost. Duplicates (re-copied after the kill) are counted and printed.
#[test]
fn killed_process_loses_no_records() {
    let comparison = killed_process("");
    assert_eq!(comparison.lost, 0, "{comparison:?}");
}

/// Issue 9: the same exactly once: 0 lost and 0 duplicates for a read_committed reader; the
/// killed process's open transactions are aborted when the survivor fences it.
#[test]
fn killed_process_copies_nothing_twice_exactly_once() {
    let comparison = killed_process("exactly_once = true");
    assert_eq!(
        (comparison.lost, comparison.duplicates),
        (0, 0),
        "{comparison:?}"
    );
}

/// Two processes share 8 partitions; one is SIGKILLed mid-stream; the other finishes. Prints
/// and returns the comparison of the target with the source.
fn killed_process(more: &str) -> support::Comparison {
    let clusters = support::clusters();
    let topic = support::unique("fokill");
    let remote = format!("clusterA.{topic}");
    support::create_topic(&clusters.a, &topic, PARTITIONS);
    let dir = TempDir::new("kill");
    let config = flow_config_with(&dir, &topic, &support::unique("g"), more);
    let mut first = Ferry::start(&config, &dir, "first");
    let mut second = Ferry::start(&config, &dir, "second");
    support::wait_until(Duration::from_secs(60), "both processes hold tasks", || {
        first.assert_running();
        second.assert_running();
        first.tasks_held() > 0
            && second.tasks_held() > 0
            && first.tasks_held() + second.tasks_held() == 8
    });

    // Mid-stream: a producer keeps writing while the first process is killed.
    let total: u64 = 6_000;
    let producer = produce_in_background(&clusters.a, &topic, 0..6_000);
    support::wait_until(Duration::from_secs(120), "replication is under way", || {
        support::record_count(&clusters.b, &remote) >= 10_000
    });
    let written_at_kill = support::record_count(&clusters.b, &remote);
    first.kill();
    let killed_at = std::time::Instant::now();

    let expected = i64::from(PARTITIONS) * total as i64;
    support::wait_until(
        Duration::from_secs(120),
        "the survivor took every task",
        || {
            second.assert_running();
            second.tasks_held() == 8
        },
    );
    let takeover = killed_at.elapsed();
    producer.join().unwrap();
    // Every record reached the target (watermarks count transaction markers too, so the
    // records are read back: read_committed, the reader a consumer of the remote topic is).
    let mut comparison = support::compare(&[], PARTITIONS, total);
    support::wait_until(
        Duration::from_secs(180),
        "every record reached the target",
        || {
            second.assert_running();
            support::record_count(&clusters.b, &remote) >= expected && {
                comparison =
                    support::compare(&support::read_all(&clusters.b, &remote), PARTITIONS, total);
                comparison.lost == 0
            }
        },
    );
    second.terminate();
    println!(
        "sigkill failover ({}): tasks taken over {:.1} s after the kill ({} records on the target then); expected {} received {} lost {} duplicates {}",
        if more.is_empty() {
            "at least once"
        } else {
            more
        },
        takeover.as_secs_f64(),
        written_at_kill,
        comparison.expected,
        comparison.received,
        comparison.lost,
        comparison.duplicates
    );
    comparison
}

/// A second process joins: the tasks that move are drained (in-flight records acknowledged,
/// positions stored) before the new owner starts, so a graceful handover copies nothing twice.
#[test]
fn handover_to_a_new_process_copies_nothing_twice() {
    let clusters = support::clusters();
    let topic = support::unique("fohand");
    let remote = format!("clusterA.{topic}");
    support::create_topic(&clusters.a, &topic, PARTITIONS);
    support::produce(&clusters.a, &topic, PARTITIONS, 0..2_000);
    let dir = TempDir::new("handover");
    let config = flow_config(&dir, &topic, &support::unique("g"));
    let mut first = Ferry::start(&config, &dir, "first");
    support::wait_until(
        Duration::from_secs(120),
        "the first half is mirrored",
        || {
            first.assert_running();
            support::record_count(&clusters.b, &remote) >= 16_000
        },
    );

    let producer = produce_in_background(&clusters.a, &topic, 2_000..4_000);
    let mut second = Ferry::start(&config, &dir, "second");
    support::wait_until(Duration::from_secs(60), "the tasks are shared", || {
        first.assert_running();
        second.assert_running();
        second.tasks_held() > 0 && first.tasks_held() + second.tasks_held() == 8
    });
    producer.join().unwrap();
    let expected = i64::from(PARTITIONS) * 4_000;
    support::wait_until(
        Duration::from_secs(180),
        "every record reached the target",
        || support::record_count(&clusters.b, &remote) >= expected,
    );
    first.terminate();
    second.terminate();
    let comparison = support::compare(&support::read_all(&clusters.b, &remote), PARTITIONS, 4_000);
    println!("graceful handover: {comparison:?}");
    assert_eq!(
        (comparison.lost, comparison.duplicates),
        (0, 0),
        "{comparison:?}"
    );
}
