//! MM2's own `connect-mirror-maker.properties` is read as is (`--mm2`).

use crate::support::{self, TempDir};

/// The operator's file from issue 3 (`examples/connect-mirror-maker.properties`) with the
/// addresses of the test clusters and, optionally, without its SASL lines.
fn operator_file(with_sasl: bool) -> String {
    let clusters = support::clusters();
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/connect-mirror-maker.properties"
    );
    std::fs::read_to_string(example)
        .unwrap()
        .lines()
        .filter(|line| {
            with_sasl || !line.contains(".sasl.") && !line.contains(".security.protocol")
        })
        .map(|line| match line.split_once(".bootstrap.servers") {
            Some(("clusterA", _)) => format!("clusterA.bootstrap.servers = {}", clusters.a),
            Some(("clusterB", _)) => format!("clusterB.bootstrap.servers = {}", clusters.b),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        "clusterA->clusterB.refresh.groups.interval.seconds",
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
