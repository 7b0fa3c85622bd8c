//! MM2's own `connect-mirror-maker.properties` is read as is (`--mm2`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{self, Ferry, TempDir};

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

/// The operator's file as `runs_operators_mm2_file` runs it: local addresses, no SASL, every
/// replication factor 1 (the test clusters have one broker each), and, for the test only,
/// MM2's 60 s intervals shortened to 1 s so that it need not wait minutes for a translated
/// group: checkpoints, group offset sync, and the Connect offset flush (Ferry's commit
/// interval; a partition gets no checkpoint before its first stored position). Nothing else
/// differs from the operator's file.
fn operator_file_for_one_broker() -> String {
    let mut text: String = operator_file(false)
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, _)) if key.trim().ends_with("replication.factor") => {
                format!("{} = 1\n", key.trim())
            }
            _ => format!("{line}\n"),
        })
        .collect();
    text.push_str(
        "clusterA->clusterB.emit.checkpoints.interval.seconds = 1\n\
         clusterA->clusterB.sync.group.offsets.interval.seconds = 1\n\
         clusterB.offset.flush.interval.ms = 1000\n",
    );
    text
}

/// Acceptance (issue 3): `ferry run --mm2` runs the operator's file. A topic matching
/// `prod.*.global$` on clusterA is mirrored to `clusterA.<topic>` on clusterB (every record,
/// once, byte-equal); a `produser_consumer*` group committed on clusterA is committed, exactly
/// translated, on clusterB (`sync.group.offsets.enabled`); the keys Ferry does not use are
/// logged.
#[test]
fn runs_operators_mm2_file() {
    let clusters = support::clusters();
    // `prod.operator*` is kept out of the selection test's flow (tests/it/selection.rs), and no
    // other test creates topics matching `prod.*.global$` under the alias clusterA.
    let topic = format!("{}.global", support::unique("prod.operator"));
    let remote = format!("clusterA.{topic}");
    let group = support::unique("produser_consumer_");
    let (partitions, per_partition) = (4, 500);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);
    let committed: Vec<(i32, i64)> = (0..partitions)
        .map(|partition| (partition, 200 + 50 * i64::from(partition)))
        .collect();
    support::commit_group(&clusters.a, &group, &topic, &committed);

    let dir = TempDir::new("mm2-run");
    let file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&file, operator_file_for_one_broker()).unwrap();
    let started = now_ms();
    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    let expected = i64::from(partitions) * per_partition as i64;
    support::wait_until(
        Duration::from_secs(240),
        "all records reach clusterA.<topic> on clusterB",
        || {
            ferry.assert_running();
            support::record_count(&clusters.b, &remote) >= expected
        },
    );
    // Source offset X is target offset X here (every record of the topic was mirrored once).
    let translated: Vec<Option<i64>> = committed.iter().map(|(_, offset)| Some(*offset)).collect();
    support::wait_until(
        Duration::from_secs(60),
        "the group's offsets are synced to clusterB",
        || {
            ferry.assert_running();
            support::committed(&clusters.b, &group, &remote, partitions) == translated
        },
    );
    check_mm2_metrics(&ferry, &remote, &group, partitions, per_partition, started);
    let log = ferry.log_text();
    ferry.terminate();

    let records = support::read_all(&clusters.b, &remote);
    let comparison = support::compare(&records, partitions, per_partition);
    assert_eq!(
        (comparison.lost, comparison.duplicates),
        (0, 0),
        "{comparison:?}"
    );
    for key in [
        "config.storage.topic",
        "clusterA.group.id",
        "clusterA->clusterB.refresh.groups.interval.seconds",
        "name",
        "offset.storage.replication.factor",
    ] {
        assert!(
            log.lines()
                .any(|line| line.contains("Key not used by Ferry.")
                    && line.contains(&format!("key={key} "))),
            "{key} not logged as unused:\n{log}"
        );
    }
    // Run in the same test, after the first: both use the file's flow, so its lease group.
    runs_operators_mm2_file_exactly_once();
}

/// Acceptance (issue 9): the operator's file with MM2's exactly-once switch added
/// (`clusterB.exactly.once.source.support = enabled`) mirrors 100 000 records, half of them
/// written while Ferry copies: a read_committed reader sees each exactly once, in order, and a
/// `produser_consumer*` group is synced to exactly the target offsets of its source positions
/// (which, with transaction markers, are not the source offsets).
fn runs_operators_mm2_file_exactly_once() {
    let clusters = support::clusters();
    let topic = format!("{}.global", support::unique("prod.operator-eo"));
    let remote = format!("clusterA.{topic}");
    let group = support::unique("produser_consumer_eo");
    let (partitions, per_partition) = (4, 25_000_u64);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition / 2);
    let committed: Vec<(i32, i64)> = (0..partitions)
        .map(|partition| (partition, 10_000 + 500 * i64::from(partition)))
        .collect();
    support::commit_group(&clusters.a, &group, &topic, &committed);

    let dir = TempDir::new("mm2-run-eo");
    let file = dir.0.join("connect-mirror-maker.properties");
    let text = operator_file_for_one_broker() + "clusterB.exactly.once.source.support = enabled\n";
    std::fs::write(&file, text).unwrap();
    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    support::produce(
        &clusters.a,
        &topic,
        partitions,
        per_partition / 2..per_partition,
    );
    let mut comparison = support::compare(&[], partitions, per_partition);
    support::wait_until(
        Duration::from_secs(300),
        "all 100 000 records mirrored",
        || {
            ferry.assert_running();
            comparison = support::compare(
                &support::read_all(&clusters.b, &remote),
                partitions,
                per_partition,
            );
            comparison.lost == 0
        },
    );
    let mirrored = support::read_all_with_offsets(&clusters.b, &remote);
    let translated: Vec<Option<i64>> = committed
        .iter()
        .map(|(partition, offset)| {
            let wanted = support::record(*partition, u64::try_from(*offset).unwrap());
            mirrored
                .iter()
                .find(|(_, record)| *record == wanted)
                .map(|(at, _)| *at)
        })
        .collect();
    assert!(
        translated
            .iter()
            .zip(&committed)
            .any(|(target, (_, source))| *target != Some(*source)),
        "transaction markers should make some target offsets differ from the source's"
    );
    support::wait_until(
        Duration::from_secs(60),
        "the group's offsets are synced to clusterB",
        || {
            ferry.assert_running();
            support::committed(&clusters.b, &group, &remote, partitions) == translated
        },
    );
    let log = ferry.log_text();
    ferry.terminate();
    assert!(
        log.contains("exactly_once=true"),
        "the tasks did not start exactly once:\n{log}"
    );
    println!(
        "operator's file, exactly once: expected {} received {} lost {} duplicates {}",
        comparison.expected, comparison.received, comparison.lost, comparison.duplicates
    );
    assert_eq!(
        (comparison.lost, comparison.duplicates),
        (0, 0),
        "{comparison:?}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Issue 14: the queries of a Strimzi MM2 dashboard (`record_count`, `byte_rate`,
/// `replication_latency_ms_max`, `record_age_ms_avg`, `checkpoint_latency_ms_max`) answer per
/// partition of `remote`, with the values the records written imply. Every record was written
/// before Ferry started (at `started`) and acknowledged before now, so a latency or age lies
/// between `started - timestamp` and `now - timestamp` of the records it covers.
fn check_mm2_metrics(
    ferry: &Ferry,
    remote: &str,
    group: &str,
    partitions: i32,
    per_partition: u64,
    started: i64,
) {
    const SOURCE: &str = "kafka_connect_mirror_mirrorsourceconnector_";
    let scraped = now_ms();
    let source_family = |name: &str| -> BTreeMap<i32, f64> {
        ferry
            .samples(&format!("{SOURCE}{name}"))
            .into_iter()
            .filter(|(labels, _)| labels.get("topic").map(String::as_str) == Some(remote))
            .map(|(labels, value)| {
                assert_eq!(
                    labels.get("target").map(String::as_str),
                    Some("clusterB"),
                    "{labels:?}"
                );
                assert_eq!(
                    labels.get("source").map(String::as_str),
                    Some("clusterA"),
                    "{labels:?}"
                );
                (labels["partition"].parse().unwrap(), value)
            })
            .collect()
    };
    let (counts, bytes, byte_rates, latency_max, latency_min, age_avg) = (
        source_family("record_count"),
        source_family("byte_count"),
        source_family("byte_rate"),
        source_family("replication_latency_ms_max"),
        source_family("replication_latency_ms_min"),
        source_family("record_age_ms_avg"),
    );
    for partition in 0..partitions {
        let written: Vec<support::TestRecord> = (0..per_partition)
            .map(|index| support::record(partition, index))
            .collect();
        let value_bytes: usize = written
            .iter()
            .map(|record| record.value.as_ref().map_or(0, Vec::len))
            .sum();
        let first = written.iter().map(|record| record.timestamp).min().unwrap();
        let last = written.iter().map(|record| record.timestamp).max().unwrap();
        let mean = written
            .iter()
            .map(|record| record.timestamp as f64)
            .sum::<f64>()
            / written.len() as f64;
        println!(
            "partition {partition}: record_count {:?}, byte_count {:?} (written {value_bytes}), byte_rate {:?}, latency max {:?} min {:?}, age avg {:?}",
            counts.get(&partition),
            bytes.get(&partition),
            byte_rates.get(&partition),
            latency_max.get(&partition),
            latency_min.get(&partition),
            age_avg.get(&partition)
        );
        assert_eq!(counts.get(&partition), Some(&(per_partition as f64)));
        assert_eq!(bytes.get(&partition), Some(&(value_bytes as f64)));
        // A rate is the window's bytes over its elapsed time, at least 30 s; while the first
        // acknowledgement (after `started`) is less than 60 s old, the window has them all.
        let rate = byte_rates[&partition];
        assert!(
            rate > 0.0 && rate <= value_bytes as f64 / 30.0,
            "byte_rate {rate}"
        );
        if scraped - started < 60_000 {
            assert!(rate >= value_bytes as f64 / 60.0, "byte_rate {rate}");
        }
        let within = |value: f64, timestamp: f64| {
            value >= started as f64 - timestamp && value <= scraped as f64 - timestamp
        };
        assert!(within(latency_max[&partition], first as f64), "latency max");
        assert!(within(latency_min[&partition], last as f64), "latency min");
        assert!(within(age_avg[&partition], mean), "age avg");
    }
    let checkpoints: BTreeMap<i32, f64> = ferry
        .samples("kafka_connect_mirror_mirrorcheckpointconnector_checkpoint_latency_ms_max")
        .into_iter()
        .filter(|(labels, _)| {
            labels.get("group").map(String::as_str) == Some(group)
                && labels.get("topic").map(String::as_str) == Some(remote)
        })
        .map(|(labels, value)| (labels["partition"].parse().unwrap(), value))
        .collect();
    println!("checkpoint_latency_ms_max of {group}: {checkpoints:?}");
    assert_eq!(
        checkpoints.keys().copied().collect::<Vec<_>>(),
        (0..partitions).collect::<Vec<_>>()
    );
    for latency in checkpoints.values() {
        assert!(
            *latency >= 0.0 && *latency <= (scraped - started) as f64,
            "{latency}"
        );
    }
}

/// Issue 13: a secured MM2 file (SASL_SSL with SCRAM, a PEM trust store, per-role client keys, a
/// password from the env config provider) validates offline, lists the client keys librdkafka
/// has no equivalent for, and never prints the password.
#[test]
fn a_secured_mm2_file_with_role_keys_and_providers_validates_offline() {
    let dir = TempDir::new("mm2-secured");
    let ca = dir.0.join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let text = format!(
        "config.providers = env\n\
         config.providers.env.class = org.apache.kafka.common.config.provider.EnvVarConfigProvider\n\
         clusters = clusterA, clusterB\n\
         clusterA.bootstrap.servers = 127.0.0.1:1\n\
         clusterB.bootstrap.servers = 127.0.0.1:2\n\
         clusterA->clusterB.enabled = true\n\
         clusterA.security.protocol = SASL_SSL\n\
         clusterA.sasl.mechanism = SCRAM-SHA-512\n\
         clusterA.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"${{env:FERRY_TEST_MM2_PASSWORD}}\";\n\
         clusterA.ssl.truststore.location = {}\n\
         clusterA.ssl.truststore.type = PEM\n\
         clusterA.consumer.fetch.max.bytes = 1048576\n\
         clusterA.consumer.max.poll.records = 500\n\
         clusterB.producer.compression.type = zstd\n",
        ca.display()
    );
    let path = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&path, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "--mm2", path.to_str().unwrap(), "--offline"])
        .env("RUST_LOG", "warn")
        .env("FERRY_TEST_MM2_PASSWORD", "provider-s3cret")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("note: not used by Ferry:")
                && line.contains("clusterA.consumer.max.poll.records")),
        "{stderr}"
    );
    for used in [
        "clusterA.consumer.fetch.max.bytes",
        "clusterB.producer.compression.type",
        "config.providers",
    ] {
        assert!(
            !stderr.contains(&format!("{used}:")),
            "{used} reported unused:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("provider-s3cret"),
        "secret printed:\n{stderr}"
    );
}
