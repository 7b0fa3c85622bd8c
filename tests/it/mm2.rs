//! MM2's own `connect-mirror-maker.properties` is read as is (`--mm2`).

use crate::support::{self, TempDir};

/// The operator's file from issue 3, with local addresses.
fn operator_file(with_sasl: bool) -> String {
    let clusters = support::clusters();
    let mut text = format!(
        "clusters = clusterA, clusterB
clusterA.group.id = clusterA-clusterB-clusterAconsumer
clusterB.group.id = clusterA-clusterB-clusterBconsumer
name = clusterA-clusterB
source.cluster.alias = clusterA
target.cluster.alias = clusterB
tasks.max = 8
clusterA.bootstrap.servers = {a}
clusterB.bootstrap.servers = {b}
clusterA->clusterB.enabled = true
clusterA->clusterB.topics = prod.*.global$
clusterA->clusterB.topics.exclude = ^(clusterA|clusterB).*heartbeats$
clusterA->clusterB.groups = ^produser_consumer.*
clusterB->clusterA.enabled = false
clusterA->clusterB.replication.factor = 3
checkpoints.topic.replication.factor = 3
heartbeats.topic.replication.factor = 3
offset-syncs.topic.replication.factor = 3
offset.storage.replication.factor = 3
status.storage.replication.factor = 3
config.storage.replication.factor = 3
config.storage.topic = mm2-config.from-clusterA-to-clusterB.internal
offset.storage.topic = mm2-offset.from-clusterA-to-clusterB.internal
status.storage.topic = mm2-status.from-clusterA-to-clusterB.internal
clusterA->clusterB.sync.topic.acls.enabled = true
clusterA->clusterB.emit.checkpoints.enabled = true
clusterA->clusterB.emit.offset-syncs.enabled = true
clusterA->clusterB.sync.group.offsets.enabled = true
clusterA->clusterB.refresh.topics.interval.seconds = 300
clusterA->clusterB.refresh.groups.interval.seconds = 300
clusterA->clusterB.sync.topic.acls.interval.seconds = 300
",
        a = clusters.a,
        b = clusters.b
    );
    if with_sasl {
        for cluster in ["clusterA", "clusterB"] {
            text.push_str(&format!(
                "{cluster}.sasl.mechanism=PLAIN\n{cluster}.security.protocol=SASL_PLAINTEXT\n\
                 {cluster}.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
                 required username=\"your_user\" password=\"your_password\";\n"
            ));
        }
    }
    text
}

fn validate(text: &str, extra: &[&str]) -> (i32, String) {
    let dir = TempDir::new("mm2");
    let path = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["validate", "--mm2", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    support::ferry_command(&args)
}

/// The file validates against the running clusters, and every key Ferry does not use yet is
/// named with its line and reason (nothing is dropped silently).
#[test]
fn operators_mm2_file_validates() {
    let (code, stderr) = validate(&operator_file(false), &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("valid (2 clusters, 1 flows, 1 enabled; clusters answered)"),
        "{stderr}"
    );
    for key in [
        "clusterA->clusterB.emit.checkpoints.enabled",
        "config.storage.topic",
        "clusterA.group.id",
    ] {
        assert!(
            stderr
                .lines()
                .any(|line| line.starts_with("note: not used by Ferry:") && line.contains(key)),
            "{key} not reported as unused:\n{stderr}"
        );
    }
}

/// With its SASL/PLAIN lines the file parses too (offline: the test clusters are plaintext), and
/// the password is never printed.
#[test]
fn operators_mm2_file_with_sasl_parses() {
    let (code, stderr) = validate(&operator_file(true), &["--offline"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("your_password"),
        "secret printed:\n{stderr}"
    );
}
