//! The operator's MM2 file (issue 3) runs unchanged against SASL_PLAINTEXT/PLAIN clusters with
//! an authorizer: its placeholder credentials `your_user`/`your_password` are a super user of the
//! test harness (`scripts/kafka-local start --sasl`).

use std::time::Duration;

use crate::support::{self, Ferry, TempDir};

/// `examples/connect-mirror-maker.properties` with only the addresses made local and, for the
/// one-broker clusters, every replication factor set to 1 (the issue allows both edits). Its
/// SASL lines are kept as written.
fn operator_file(a: &str, b: &str) -> String {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/connect-mirror-maker.properties"
    );
    std::fs::read_to_string(example)
        .unwrap()
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, _)) if key.trim() == "clusterA.bootstrap.servers" => {
                format!("clusterA.bootstrap.servers = {a}")
            }
            Some((key, _)) if key.trim() == "clusterB.bootstrap.servers" => {
                format!("clusterB.bootstrap.servers = {b}")
            }
            Some((key, _)) if key.trim().ends_with("replication.factor") => {
                format!("{} = 1", key.trim())
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Acceptance (issue 3): the file runs unchanged with SASL: a `prod.*.global` topic is mirrored
/// to `clusterA.prod.*.global` exactly, and its topic ACL follows (the file enables
/// `sync.topic.acls`).
#[test]
fn operators_mm2_file_runs_with_sasl() {
    let clusters = support::sasl_clusters();
    let text = operator_file(&clusters.a, &clusters.b);
    assert!(text.contains("username=\"your_user\" password=\"your_password\""));
    let topic = format!("prod.{}.global", support::unique("op"));
    let remote = format!("clusterA.{topic}");
    let (partitions, per_partition) = (4, 2_000);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);
    support::acl_command(
        &clusters.a,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            &topic,
        ],
    );

    let dir = TempDir::new("mm2-sasl");
    let file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&file, &text).unwrap();
    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    let expected = i64::from(partitions) * per_partition as i64;
    support::wait_until(Duration::from_secs(120), "all records mirrored", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= expected
    });
    support::wait_until(Duration::from_secs(60), "the topic ACL follows", || {
        support::acls(&clusters.b).iter().any(|acl| {
            acl.name == remote && acl.principal == "User:alice" && acl.operation == "READ"
        })
    });
    let log = ferry.log_text();
    assert!(
        log.contains("config.storage.topic"),
        "unused keys are not listed:\n{log}"
    );
    assert!(!log.contains("your_password"), "secret in the log");
    ferry.terminate();
    let comparison = support::compare(
        &support::read_all(&clusters.b, &remote),
        partitions,
        per_partition,
    );
    assert_eq!(
        (comparison.lost, comparison.duplicates, comparison.received),
        (0, 0, expected as u64)
    );
}
