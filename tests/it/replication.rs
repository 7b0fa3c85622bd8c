//! Records cross from source to target unchanged.

use std::time::Duration;

use crate::support::{self, ConfigBuilder, Ferry, TempDir};

/// Acceptance: 100 000 records with keys, 3 headers and explicit timestamps over 8 partitions
/// arrive exactly once, in the same partitions and per-partition order, byte-equal.
#[test]
fn mirrors_100k_records_with_keys_headers_and_timestamps() {
    let clusters = support::clusters();
    // Not `prod.*.global`: the operator's MM2 file (tests/it/mm2.rs) mirrors every such topic of
    // cluster A under the same alias, clusterA, which would add records to this remote topic.
    let topic = support::unique("repl.orders");
    let topic = format!("{topic}.global");
    let remote = format!("clusterA.{topic}");
    let (partitions, per_partition) = (8, 12_500);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);

    let dir = TempDir::new("100k");
    let config = ConfigBuilder::new()
        .flow(
            "clusterA",
            "clusterB",
            &support::unique("g"),
            &format!("topics = \"{}\"", topic.replace('.', "\\\\.")),
        )
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    let expected = i64::from(partitions) * per_partition as i64;
    support::wait_until(
        Duration::from_secs(240),
        "all records reach the target",
        || {
            ferry.assert_running();
            support::record_count(&clusters.b, &remote) >= expected
        },
    );
    // The operator's view agrees: every record counted once, lag gauges present, policy called.
    let flow = "flow=\"clusterA->clusterB\"";
    support::wait_until(
        Duration::from_secs(30),
        "the records metric reaches the count",
        || {
            ferry.metric(&format!(
                "ferry_records_replicated_total{{{flow},topic=\"{topic}\"}}"
            )) == Some(expected as f64)
        },
    );
    // Every task's share of the in-flight gauge returns to zero once all is acknowledged.
    support::wait_until(Duration::from_secs(30), "nothing is left in flight", || {
        ferry.metric(&format!("ferry_records_in_flight{{{flow}}}")) == Some(0.0)
    });
    let metrics = ferry.metrics();
    for partition in 0..partitions {
        let lag = format!(
            "ferry_partition_lag_records{{{flow},partition=\"{partition}\",topic=\"{topic}\"}}"
        );
        assert!(metrics.contains(&lag), "missing {lag}");
    }
    assert!(metrics.contains("ferry_replication_latency_seconds_count"));
    assert!(
        metrics.contains("ferry_plugin_calls_total{"),
        "plugin calls metric missing"
    );
    ferry.terminate();

    assert_eq!(support::topics(&clusters.b).get(&remote), Some(&partitions));
    let records = support::read_all(&clusters.b, &remote);
    let comparison = support::compare(&records, partitions, per_partition);
    println!("{comparison:?}");
    assert_eq!(comparison.lost, 0);
    assert_eq!(comparison.duplicates, 0);
    assert_eq!(comparison.received, expected as u64);
}
