//! Plugin authoring: `ferry plugin check` (CLI only, no Kafka) and the example plugins of
//! `examples/` (Rust in `examples/plugins`, Python in `examples/python`) against real Kafka:
//! the `prod.` → `dr.` naming policy (remote names, content, no loop both ways), the header
//! filter in Rust and in Python (the same test), the JSON-masking transform.
//!
//! The Python components are built by `scripts/build-python-plugins` (which `scripts/test-all`
//! runs); they take tens of seconds to compile in a debug build, once: the precompiled cache
//! makes every later load fast.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::support::{self, ConfigBuilder, Ferry, TempDir};

/// A component built by `scripts/build-python-plugins`.
fn python_plugin(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins/python")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the Python examples with scripts/build-python-plugins",
        path.display()
    );
    path
}

/// Runs `ferry plugin check <args>`; returns (exit code, stdout, stderr).
fn check(args: &[&str], cache: &Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["plugin", "check"])
        .args(args)
        .arg("--plugin-cache")
        .arg(cache)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The shared precompiled cache of the test run (the Python components compile once).
fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/test-cache")
}

/// The report from its table on: what the plugin answered, without file names and timings.
fn answers(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("topic on") && !line.starts_with("# "))
        .filter(|line| !line.starts_with("ok: "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn path_text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn check_prints_the_default_policy_table() {
    let (code, stdout, stderr) = check(&["builtin:default-policy"], &shared_cache());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        stdout.contains("world:   replication policy (ferry:plugin/replication-policy@0.1.0)"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|line| line.starts_with("prod.orders.global "))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "prod.orders.global",
            "A.prod.orders.global",
            "A",
            "prod.orders.global",
            "global",
            "round",
            "trip",
            "ok"
        ]
    );
    assert!(stdout.contains("offset-syncs-topic(B) = mm2-offset-syncs.B.internal"));
    assert!(stdout.contains("ok: builtin:default-policy is a usable replication policy"));
}

/// The Rust example and its Python twin give the same answers, and rename `prod.` topics.
#[test]
fn check_dr_rename_policy_in_rust_and_python() {
    let rust = support::plugin("dr_rename_policy");
    let python = python_plugin("dr_rename_policy");
    let args = [
        "--with",
        "origin=east",
        "--source-alias",
        "east",
        "--target-alias",
        "west",
    ];
    let run = |plugin: &Path| {
        let mut all = vec![path_text(plugin)];
        all.extend(args);
        let (code, stdout, stderr) = check(&all, &shared_cache());
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        stdout
    };
    let (from_rust, from_python) = (run(&rust), run(&python));
    let row = from_rust
        .lines()
        .find(|line| line.starts_with("prod.orders.global "))
        .unwrap();
    assert_eq!(
        row.split_whitespace().take(5).collect::<Vec<_>>(),
        [
            "prod.orders.global",
            "dr.orders.global",
            "east",
            "prod.orders.global",
            "global"
        ]
    );
    assert_eq!(answers(&from_rust), answers(&from_python));
    let (code, _, stderr) = check(&[path_text(&rust), "--with", "to=prod."], &shared_cache());
    assert_eq!(code, 2);
    assert!(
        stderr.contains(
            "error: plugin `dr_rename_policy.wasm` refused its configuration: `to` must be"
        ),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_component_of_no_ferry_world() {
    let (code, stdout, stderr) = check(
        &[path_text(&support::plugin("wrong_world"))],
        &shared_cache(),
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("world:   none of Ferry's"), "{stdout}");
    assert!(
        stderr.starts_with(
            "error: plugin `wrong_world.wasm` implements no Ferry world: it exports `hello`; a \
             Ferry plugin exports one of `ferry:plugin/replication-policy@0.1.0` (replication policy)"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = check(&["/nonexistent/p.wasm"], &shared_cache());
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: plugin file `/nonexistent/p.wasm` not found"));
}

/// A policy whose remote names do not map back is a bad plugin: cycle detection would fail.
/// MM2's own edge case: a source alias that contains the separator.
#[test]
fn check_reports_a_broken_round_trip() {
    let (code, stdout, stderr) = check(
        &[
            "builtin:default-policy",
            "--source-alias",
            "dc.east",
            "--topic",
            "orders",
        ],
        &shared_cache(),
    );
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stdout.contains("ROUND TRIP BROKEN"), "{stdout}");
    assert_eq!(
        stderr.trim(),
        "error: policy `builtin:default-policy`, topic `orders`: topic-source(\"dc.east.orders\") \
         is Some(\"dc\"), not \"dc.east\": a flow B -> dc.east would mirror it back (cycle \
         detection fails)"
    );
}

/// The header filter in Rust and in Python drop the same sample records; the masking
/// transform's output bytes are shown.
#[test]
fn check_runs_filters_and_transforms_on_records() {
    let with = ["--with", "header=env", "--with", "value=test"];
    let run = |plugin: &Path, extra: &[&str]| {
        let mut all = vec![path_text(plugin)];
        all.extend(extra);
        let (code, stdout, stderr) = check(&all, &shared_cache());
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        stdout
    };
    let rust = run(&support::plugin("drop_by_header"), &with);
    let python = run(&python_plugin("drop_by_header"), &with);
    assert!(rust.contains("world:   record filter (ferry:plugin/record-filter@0.1.0)"));
    assert_eq!(answers(&rust), answers(&python));
    let verdicts: Vec<&str> = rust
        .lines()
        .skip_while(|line| !line.starts_with("# "))
        .skip(1)
        .take(4)
        .map(|line| {
            line.split("  ")
                .filter(|cell| !cell.is_empty())
                .nth(4)
                .unwrap()
                .trim()
        })
        .collect();
    assert_eq!(verdicts, ["keep", "drop", "keep", "keep"]);

    let masked = run(
        &support::plugin("mask_json_field"),
        &[
            "--with",
            "field=ssn",
            "--record",
            r#"{"key": "k", "value": "{\"ssn\":\"1\",\"a\":2}", "headers": {"h": "v"}}"#,
            "--record",
            r#"{"value": "nope"}"#,
        ],
    );
    assert!(
        masked.contains(r#"replace  key=k value={"ssn":"***","a":2} headers=h=v"#),
        "{masked}"
    );
    assert!(
        masked.contains("fail     the value is not JSON"),
        "{masked}"
    );
}

/// The second load of a component comes from the precompiled cache; `--no-plugin-cache`
/// compiles and writes nothing.
#[test]
fn check_uses_the_precompiled_cache() {
    let dir = TempDir::new("plugin-cache");
    let cache = dir.0.join("cache");
    let plugin = support::plugin("drop_by_header");
    let args = [path_text(&plugin), "--with", "header=x"];
    let (code, first, _) = check(&args, &cache);
    assert_eq!(code, 0);
    assert!(first.contains("compiled, cached as"), "{first}");
    let (code, second, _) = check(&args, &cache);
    assert_eq!(code, 0);
    assert!(second.contains("precompiled, from"), "{second}");
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(files.len(), 1);
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["plugin", "check", "--no-plugin-cache"])
        .args(args)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("compiled, not cached"));
}

/// Writes `records` (value, `env` header) to partition 0 of `topic` and waits for the acks.
fn produce(topic: &str, records: &[(String, Option<&str>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &support::clusters().a)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (index, (value, env)) in records.iter().enumerate() {
        let mut headers = OwnedHeaders::new();
        if let Some(env) = env {
            headers = headers.insert(Header {
                key: "env",
                value: Some(env.as_bytes()),
            });
        }
        let key = format!("key-{index}");
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key(key.as_bytes())
                    .payload(value.as_bytes())
                    .headers(headers),
            )
            .map_err(|(error, _)| error)
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// A flow from a source alias of this test (cluster A) to cluster B with `extra` keys,
/// replicating the topics starting with `marker`; returns the process and the alias.
fn start_flow(marker: &str, extra: &str, dir: &TempDir) -> (Ferry, String) {
    let alias = format!("au{}", marker.replace('x', ""));
    let extra = format!(
        "topics = [\"{marker}.*\"]\nemit_heartbeats = false\nheartbeats_replication = false\n{extra}"
    );
    let config = ConfigBuilder::new()
        .cluster(&alias, &support::clusters().a)
        .flow(&alias, "clusterB", &support::unique("g"), &extra)
        .write(dir);
    (Ferry::start(&config, dir, "ferry"), alias)
}

/// Values of the remote topic, once `last` (the final record written, which the plugin keeps)
/// arrived: partition order means everything before it was decided.
fn remote_values(ferry: &mut Ferry, remote: &str, last: &str, timeout: Duration) -> Vec<String> {
    let clusters = support::clusters();
    support::wait_until(timeout, &format!("{last} reaches {remote}"), || {
        ferry.assert_running();
        support::record_count(&clusters.b, remote) > 0
            && support::read_all(&clusters.b, remote)
                .iter()
                .any(|record| record.value.as_deref() == Some(last.as_bytes()))
    });
    support::read_all(&clusters.b, remote)
        .into_iter()
        .map(|record| String::from_utf8(record.value.unwrap()).unwrap())
        .collect()
}

/// The same test for the Rust header filter and its Python twin: exactly the records whose
/// `env` header is `test` are dropped; the rest arrive in order.
fn header_filter_drops_exactly_the_matching_records(plugin: &Path, startup: Duration) {
    let marker = support::unique("hf");
    let topic = format!("{marker}.events");
    support::create_topic(&support::clusters().a, &topic, 1);
    let records: Vec<(String, Option<&str>)> = (0..60)
        .map(|index| {
            let env = match index % 4 {
                0 => Some("test"),
                1 => None,
                _ => Some("prod"),
            };
            (format!("event-{index}"), env)
        })
        .chain([("last".to_owned(), Some("prod"))])
        .collect();
    produce(&topic, &records);
    let dir = TempDir::new("header-filter");
    let filters = format!(
        "filters = [{{ uses = {:?}, with = {{ header = \"env\", value = \"test\" }} }}]",
        path_text(plugin)
    );
    let (mut ferry, alias) = start_flow(&marker, &filters, &dir);
    let values = remote_values(&mut ferry, &format!("{alias}.{topic}"), "last", startup);
    ferry.terminate();
    let expected: Vec<String> = records
        .iter()
        .filter(|(_, env)| *env != Some("test"))
        .map(|(value, _)| value.clone())
        .collect();
    assert_eq!(values, expected);
}

#[test]
fn rust_header_filter_drops_exactly_the_matching_records() {
    header_filter_drops_exactly_the_matching_records(
        &support::plugin("drop_by_header"),
        Duration::from_secs(60),
    );
}

/// The Python twin: the same test. Its first start may compile the 18 MB component.
#[test]
fn python_header_filter_drops_exactly_the_matching_records() {
    header_filter_drops_exactly_the_matching_records(
        &python_plugin("drop_by_header"),
        Duration::from_secs(240),
    );
}

#[test]
fn json_mask_transform_rewrites_the_field() {
    let marker = support::unique("mask");
    let topic = format!("{marker}.customers");
    support::create_topic(&support::clusters().a, &topic, 1);
    let records: Vec<(String, Option<&str>)> = (0..20)
        .map(|index| {
            (
                format!(r#"{{"id":{index},"ssn":"{index:03}-00-0000","address":{{"ssn":"x"}}}}"#),
                None,
            )
        })
        .chain([(r#"{"id":"last"}"#.to_owned(), None)])
        .collect();
    produce(&topic, &records);
    let dir = TempDir::new("mask");
    let transforms = format!(
        "transforms = [{{ uses = {:?}, with = {{ field = \"ssn\", mask = \"#\" }} }}]",
        path_text(&support::plugin("mask_json_field"))
    );
    let (mut ferry, alias) = start_flow(&marker, &transforms, &dir);
    let values = remote_values(
        &mut ferry,
        &format!("{alias}.{topic}"),
        r#"{"id":"last"}"#,
        Duration::from_secs(60),
    );
    ferry.terminate();
    let expected: Vec<String> = (0..20)
        .map(|index| format!(r##"{{"id":{index},"ssn":"#","address":{{"ssn":"x"}}}}"##))
        .chain([r#"{"id":"last"}"#.to_owned()])
        .collect();
    assert_eq!(values, expected);
}

/// `prod.<m>.orders` on the origin becomes `dr.<m>.orders` on the target, with every record,
/// byte for byte, and no `<alias>.prod...` topic.
#[test]
fn dr_rename_policy_mirrors_prod_topics_as_dr() {
    let clusters = support::clusters();
    let marker = support::unique("dr");
    let (from, to) = (format!("{marker}prod."), format!("{marker}dr."));
    let topic = format!("{from}orders.global");
    support::create_topic(&clusters.a, &topic, 2);
    support::produce(&clusters.a, &topic, 2, 0..100);
    let origin = format!("au{}", marker.replace('x', ""));
    let dir = TempDir::new("dr-rename");
    let extra = format!(
        "topics = [\"{marker}.*\"]\nemit_heartbeats = false\nheartbeats_replication = false\n\
         policy = {{ uses = {:?}, with = {{ from = {from:?}, to = {to:?}, origin = {origin:?} }} }}",
        path_text(&support::plugin("dr_rename_policy"))
    );
    let config = ConfigBuilder::new()
        .cluster(&origin, &clusters.a)
        .flow(&origin, "clusterB", &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    let remote = format!("{to}orders.global");
    support::wait_until(Duration::from_secs(60), "the dr topic is complete", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= 200
    });
    let topics_b = support::topics(&clusters.b);
    ferry.terminate();
    let comparison = support::compare(&support::read_all(&clusters.b, &remote), 2, 100);
    assert_eq!(
        (comparison.lost, comparison.received),
        (0, 200),
        "{comparison:?}"
    );
    assert_eq!(topics_b.get(&remote), Some(&2));
    assert!(!topics_b.contains_key(&format!("{origin}.{topic}")));
}

/// Flows both ways with the renaming policy (both told the origin): `dr.` topics on the target
/// are recognised as coming from the origin and never go back; the target's own topics are
/// mirrored to the origin with MM2's naming and never come back either.
#[test]
fn dr_rename_policy_does_not_loop_both_ways() {
    let clusters = support::clusters();
    let marker = support::unique("drb");
    let (from, to) = (format!("{marker}prod."), format!("{marker}dr."));
    let on_a = format!("{from}orders");
    let on_b = format!("{marker}local");
    support::create_topic(&clusters.a, &on_a, 1);
    support::create_topic(&clusters.b, &on_b, 1);
    support::produce(&clusters.a, &on_a, 1, 0..10);
    support::produce(&clusters.b, &on_b, 1, 0..10);
    let east = format!("ae{}", marker.replace('x', ""));
    let west = format!("aw{}", marker.replace('x', ""));
    let dir = TempDir::new("dr-both-ways");
    let extra = format!(
        "topics = [\".*{marker}.*\"]\nemit_heartbeats = false\nheartbeats_replication = false\n\
         policy = {{ uses = {:?}, with = {{ from = {from:?}, to = {to:?}, origin = {east:?} }} }}",
        path_text(&support::plugin("dr_rename_policy"))
    );
    let config = ConfigBuilder::new()
        .cluster(&east, &clusters.a)
        .cluster(&west, &clusters.b)
        .flow(&east, &west, &support::unique("g"), &extra)
        .flow(&west, &east, &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    let dr_on_b = format!("{to}orders");
    let local_on_a = format!("{west}.{on_b}");
    support::wait_until(Duration::from_secs(60), "both topics are mirrored", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &dr_on_b) >= 10
            && support::record_count(&clusters.a, &local_on_a) >= 10
    });
    // Topics created now are seen by refreshes that also saw the remote topics above.
    let later_a = format!("{from}later");
    let later_b = format!("{marker}laterb");
    support::create_topic(&clusters.a, &later_a, 1);
    support::create_topic(&clusters.b, &later_b, 1);
    support::wait_until(Duration::from_secs(30), "later topics are mirrored", || {
        support::topics(&clusters.b).contains_key(&format!("{to}later"))
            && support::topics(&clusters.a).contains_key(&format!("{west}.{later_b}"))
    });
    let (topics_a, topics_b) = (support::topics(&clusters.a), support::topics(&clusters.b));
    ferry.terminate();
    for (bootstrap, remote) in [(&clusters.b, &dr_on_b), (&clusters.a, &local_on_a)] {
        let comparison = support::compare(&support::read_all(bootstrap, remote), 1, 10);
        assert_eq!((comparison.lost, comparison.received), (0, 10), "{remote}");
    }
    let mut with_marker_a: Vec<&String> = topics_a
        .keys()
        .filter(|topic| topic.contains(&marker))
        .collect();
    let mut with_marker_b: Vec<&String> = topics_b
        .keys()
        .filter(|topic| topic.contains(&marker))
        .collect();
    with_marker_a.sort();
    with_marker_b.sort();
    let mut expected_a = vec![&on_a, &later_a, &local_on_a];
    let later_on_a = format!("{west}.{later_b}");
    expected_a.push(&later_on_a);
    expected_a.sort();
    let later_on_b = format!("{to}later");
    let mut expected_b = vec![&on_b, &later_b, &dr_on_b, &later_on_b];
    expected_b.sort();
    assert_eq!(with_marker_a, expected_a, "topics on A (east)");
    assert_eq!(with_marker_b, expected_b, "topics on B (west)");
}
