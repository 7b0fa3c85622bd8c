//! Record filters and transforms on the data path (`filters`, `transforms`, `on_error`), with
//! the real fixtures of `plugins/test-fixtures`: exact filtering, transform output and chain
//! order; hostile plugins (trap, infinite loop, 4 GiB allocation, malformed answers, wrong
//! interface) contained with the flow's error policy while the host keeps running.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::support::{self, ConfigBuilder, Ferry, TempDir, TestRecord};

/// A source alias of its own, so that this flow's remote topics and positions are apart from
/// other tests'.
fn alias(marker: &str) -> String {
    format!("tx{}", marker.replace('x', ""))
}

/// `plugins = [{ uses = "<fixture>.wasm", with = { .. } }, ..]` as a TOML array.
fn chain(plugins: &[(&str, &[(&str, &str)])]) -> String {
    let entries: Vec<String> = plugins
        .iter()
        .map(|(name, with)| {
            let with: Vec<String> = with
                .iter()
                .map(|(key, value)| format!("{key:?} = {value:?}"))
                .collect();
            format!(
                "{{ uses = {:?}, with = {{ {} }} }}",
                support::plugin(name).display().to_string(),
                with.join(", ")
            )
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

/// A record to write: partition, value, headers.
pub(crate) type Input = (i32, String, Vec<(&'static str, &'static str)>);

/// Produces `records` (partition, value, extra headers) in order, with a key and a timestamp
/// derived from the position, and waits for the acknowledgements.
pub(crate) fn produce(topic: &str, records: &[Input]) -> Vec<TestRecord> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &support::clusters().a)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut written = Vec::new();
    for (index, (partition, value, headers)) in records.iter().enumerate() {
        let key = format!("key-{index}");
        let timestamp = now - 60_000 + index as i64;
        let mut owned = OwnedHeaders::new();
        for (name, header_value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(header_value.as_bytes()),
            });
        }
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(*partition)
                    .key(key.as_bytes())
                    .payload(value.as_bytes())
                    .timestamp(timestamp)
                    .headers(owned),
            )
            .map_err(|(error, _)| error)
            .unwrap();
        written.push(TestRecord {
            partition: *partition,
            key: Some(key.into_bytes()),
            value: Some(value.clone().into_bytes()),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), Some(value.as_bytes().to_vec())))
                .collect(),
            timestamp,
        });
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    written
}

/// Records of `partition`, in order.
fn of_partition(records: &[TestRecord], partition: i32) -> Vec<&TestRecord> {
    records
        .iter()
        .filter(|record| record.partition == partition)
        .collect()
}

/// A flow with `extra` keys replicating the topics starting with `marker`.
fn start(marker: &str, extra: &str, dir: &TempDir) -> (Ferry, String) {
    let alias = alias(marker);
    let extra = format!("topics = [\"{marker}.*\"]\n{extra}");
    let config = ConfigBuilder::new()
        .cluster(&alias, &support::clusters().a)
        .flow(&alias, "clusterB", &support::unique("g"), &extra)
        .write(dir);
    (Ferry::start(&config, dir, "ferry"), alias)
}

/// Acceptance: a filter drops exactly the records it matches; two transforms run in list
/// order; what passes keeps its key, timestamp, partition and order, with the transforms'
/// output bytes.
#[test]
fn filter_and_transform_chain_in_order() {
    let clusters = support::clusters();
    let marker = support::unique("txchain");
    let topic = format!("{marker}.orders");
    support::create_topic(&clusters.a, &topic, 2);
    let records: Vec<Input> = (0..120)
        .map(|index| {
            let headers = if index % 3 == 0 {
                vec![("env", "test"), ("drop", "yes")]
            } else {
                vec![("env", "prod")]
            };
            (index % 2, format!("value-{index}"), headers)
        })
        .collect();
    let written = produce(&topic, &records);
    let dir = TempDir::new("transforms-chain");
    let extra = format!(
        "filters = {}\ntransforms = {}",
        chain(&[("header_filter", &[("header", "drop")])]),
        chain(&[
            ("suffix_transform", &[("suffix", "-a")]),
            ("suffix_transform", &[("suffix", "-b")]),
        ])
    );
    let (mut ferry, alias) = start(&marker, &extra, &dir);
    let remote = format!("{alias}.{topic}");
    let expected: Vec<TestRecord> = written
        .iter()
        .filter(|record| !record.headers.iter().any(|(name, _)| name == "drop"))
        .map(|record| {
            let mut value = record.value.clone().unwrap();
            value.extend_from_slice(b"-a-b");
            let mut headers = record.headers.clone();
            headers.push(("transformed-by".to_owned(), Some(b"-a".to_vec())));
            headers.push(("transformed-by".to_owned(), Some(b"-b".to_vec())));
            TestRecord {
                value: Some(value),
                headers,
                ..record.clone()
            }
        })
        .collect();
    assert_eq!(expected.len(), 80);
    support::wait_until(Duration::from_secs(90), "the kept records arrive", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= 80
    });
    // Positions move past the dropped records too: everything was consumed and stored.
    support::wait_until(Duration::from_secs(30), "the drops are counted", || {
        ferry.metric_sum("ferry_records_dropped_total") >= 40.0
    });
    let mirrored = support::read_all(&clusters.b, &remote);
    assert_eq!(mirrored.len(), 80, "exactly the unmatched records");
    for partition in 0..2 {
        let got = of_partition(&mirrored, partition);
        let want = of_partition(&expected, partition);
        assert_eq!(got, want, "partition {partition}");
    }
    ferry.terminate();
}

/// Acceptance: a trap on one record (default `on_error = "halt"`) stops only that partition,
/// at that record: the records before it are replicated, its position stays before it, and
/// the other partition keeps flowing, also after the halt.
#[test]
fn trap_halts_its_partition_only_and_keeps_its_position() {
    let clusters = support::clusters();
    let marker = support::unique("txtrap");
    let topic = format!("{marker}.events");
    support::create_topic(&clusters.a, &topic, 2);
    let mut records: Vec<Input> = Vec::new();
    for index in 0..30 {
        let value = if index == 10 {
            "poison".to_owned()
        } else {
            format!("p0-{index}")
        };
        records.push((0, value, vec![]));
        records.push((1, format!("p1-{index}"), vec![]));
    }
    produce(&topic, &records);
    let dir = TempDir::new("transforms-trap");
    let extra = format!("transforms = {}", chain(&[("trap_transform", &[])]));
    let (mut ferry, alias) = start(&marker, &extra, &dir);
    let remote = format!("{alias}.{topic}");
    support::wait_until(Duration::from_secs(90), "the partition halts", || {
        ferry.assert_running();
        ferry.metric_sum("ferry_partitions_halted") >= 1.0
    });
    // The other partition flows, also with records written after the halt.
    let more: Vec<Input> = (30..40)
        .map(|index| (1, format!("p1-{index}"), vec![]))
        .collect();
    produce(&topic, &more);
    support::wait_until(Duration::from_secs(60), "partition 1 keeps flowing", || {
        let mirrored = support::read_all(&clusters.b, &remote);
        of_partition(&mirrored, 1).len() >= 40
    });
    let positions_topic = format!("mm2-offsets.{alias}.internal");
    let partition_0_key = format!("\"partition\":0,\"topic\":\"{topic}\"");
    support::wait_until(
        Duration::from_secs(30),
        "partition 0's position is stored just before the poison record",
        || {
            support::read_all(&clusters.b, &positions_topic)
                .iter()
                .rev()
                .find(|record| {
                    String::from_utf8_lossy(record.key.as_deref().unwrap_or_default())
                        .contains(&partition_0_key)
                })
                .is_some_and(|record| record.value.as_deref() == Some(br#"{"offset":9}"#))
        },
    );
    let mirrored = support::read_all(&clusters.b, &remote);
    let partition_0: Vec<String> = of_partition(&mirrored, 0)
        .iter()
        .map(|record| String::from_utf8(record.value.clone().unwrap()).unwrap())
        .collect();
    let before: Vec<String> = (0..10).map(|index| format!("p0-{index}")).collect();
    assert_eq!(
        partition_0, before,
        "partition 0 stops at the poison record"
    );
    assert_eq!(of_partition(&mirrored, 1).len(), 40);
    let log = ferry.log_text();
    assert!(
        log.contains("ERROR") && log.contains("its partition stops there"),
        "{log}"
    );
    ferry.assert_running();
    ferry.terminate();
}

/// Acceptance: `on_error = "dead-letter"`: a record that traps the transform and one it
/// reports an error for go, unchanged and with `ferry.error.*` headers, to the dead-letter
/// topic; every other record is replicated.
#[test]
fn dead_letter_gets_the_original_record_with_error_headers() {
    let clusters = support::clusters();
    let marker = support::unique("txdlq");
    let topic = format!("{marker}.events");
    let dead_letters = format!("{marker}-dlq");
    support::create_topic(&clusters.a, &topic, 1);
    let records: Vec<Input> = (0..50)
        .map(|index| {
            let value = match index {
                7 => "poison".to_owned(),
                20 => "please fail".to_owned(),
                _ => format!("ok-{index}"),
            };
            (0, value, vec![("h", "v")])
        })
        .collect();
    let written = produce(&topic, &records);
    let dir = TempDir::new("transforms-dlq");
    let extra = format!(
        "transforms = {}\non_error = \"dead-letter\"\ndead_letter_topic = \"{dead_letters}\"",
        chain(&[("trap_transform", &[])])
    );
    let (mut ferry, alias) = start(&marker, &extra, &dir);
    let remote = format!("{alias}.{topic}");
    support::wait_until(
        Duration::from_secs(90),
        "everything is accounted for",
        || {
            ferry.assert_running();
            support::record_count(&clusters.b, &remote) >= 48
                && support::record_count(&clusters.b, &dead_letters) >= 2
        },
    );
    let mirrored = support::read_all(&clusters.b, &remote);
    let kept: Vec<&TestRecord> = written
        .iter()
        .filter(|record| {
            !matches!(
                record.value.as_deref(),
                Some(b"poison") | Some(b"please fail")
            )
        })
        .collect();
    assert_eq!(mirrored.iter().collect::<Vec<_>>(), kept);
    let dead = support::read_all(&clusters.b, &dead_letters);
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (record, original_index, message) in [
        (&dead[0], 7, "trapped"),
        (&dead[1], 20, "cannot handle the record at offset 20"),
    ] {
        let original = &written[original_index];
        assert_eq!(record.key, original.key);
        assert_eq!(record.value, original.value);
        assert_eq!(record.timestamp, original.timestamp);
        let headers: HashMap<&str, String> = record
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str(),
                    String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        assert_eq!(headers["h"], "v");
        assert_eq!(headers["ferry.error.plugin"], "trap_transform.wasm");
        assert_eq!(headers["ferry.error.topic"], topic);
        assert_eq!(headers["ferry.error.partition"], "0");
        assert_eq!(headers["ferry.error.offset"], original_index.to_string());
        assert!(
            headers["ferry.error.message"].contains(message),
            "{}",
            headers["ferry.error.message"]
        );
    }
    ferry.terminate();
}

/// Acceptance: an infinite loop (CPU deadline) and a 4 GiB allocation (memory cap) are
/// contained: with `on_error = "skip"` exactly those records are skipped, the rest arrive in
/// order, and the host keeps running.
#[test]
fn infinite_loop_and_huge_allocation_are_skipped() {
    let clusters = support::clusters();
    let marker = support::unique("txhostile");
    let topic = format!("{marker}.events");
    support::create_topic(&clusters.a, &topic, 1);
    let records: Vec<Input> = (0..40)
        .map(|index| {
            let value = match index {
                5 => "loop".to_owned(),
                25 => "hog".to_owned(),
                _ => format!("ok-{index}"),
            };
            (0, value, vec![])
        })
        .collect();
    let written = produce(&topic, &records);
    let dir = TempDir::new("transforms-hostile");
    let extra = format!(
        "transforms = {}\non_error = \"skip\"",
        chain(&[("loop_transform", &[]), ("memory_hog_transform", &[])])
    );
    let (mut ferry, alias) = start(&marker, &extra, &dir);
    let remote = format!("{alias}.{topic}");
    support::wait_until(Duration::from_secs(120), "the other records arrive", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= 38
    });
    support::wait_until(Duration::from_secs(30), "both skips are counted", || {
        ferry.metric_sum("ferry_plugin_record_errors_total") >= 2.0
    });
    let mirrored = support::read_all(&clusters.b, &remote);
    let kept: Vec<&TestRecord> = written
        .iter()
        .filter(|record| !matches!(record.value.as_deref(), Some(b"loop") | Some(b"hog")))
        .collect();
    assert_eq!(mirrored.iter().collect::<Vec<_>>(), kept);
    let log = ferry.log_text();
    assert!(log.contains("ran longer than"), "the loop timed out");
    ferry.assert_running();
    ferry.terminate();
}

/// Acceptance: malformed answers (too few verdicts) are plugin failures, never silently
/// dropped records: under the default `halt` nothing of the partition is replicated and it
/// halts; the host keeps running.
#[test]
fn malformed_answers_halt_instead_of_dropping() {
    let clusters = support::clusters();
    let marker = support::unique("txmalformed");
    let topic = format!("{marker}.events");
    support::create_topic(&clusters.a, &topic, 1);
    let records: Vec<Input> = (0..20)
        .map(|index| (0, format!("v-{index}"), vec![]))
        .collect();
    produce(&topic, &records);
    let dir = TempDir::new("transforms-malformed");
    let extra = format!("transforms = {}", chain(&[("malformed_transform", &[])]));
    let (mut ferry, alias) = start(&marker, &extra, &dir);
    support::wait_until(Duration::from_secs(90), "the partition halts", || {
        ferry.assert_running();
        ferry.metric_sum("ferry_partitions_halted") >= 1.0
    });
    assert_eq!(
        support::record_count(&clusters.b, &format!("{alias}.{topic}")),
        0
    );
    assert!(ferry.log_text().contains("malformed result"));
    ferry.assert_running();
    ferry.terminate();
}

/// Acceptance: a component that is not a transform (another world, or a filter listed under
/// `transforms`) is refused at start with the missing export named; nothing crashes.
#[test]
fn wrong_interface_is_refused_at_start() {
    for (fixture, missing) in [
        ("wrong_world", "ferry:plugin/record-transform@0.1.0"),
        ("header_filter", "ferry:plugin/record-transform@0.1.0"),
    ] {
        let marker = support::unique("txwrong");
        let dir = TempDir::new("transforms-wrong");
        let alias = alias(&marker);
        let extra = format!(
            "topics = [\"{marker}.*\"]\ntransforms = {}",
            chain(&[(fixture, &[])])
        );
        let config = ConfigBuilder::new()
            .cluster(&alias, &support::clusters().a)
            .flow(&alias, "clusterB", &support::unique("g"), &extra)
            .write(&dir);
        let (code, stderr) = support::ferry_command(&["run", "--config", config.to_str().unwrap()]);
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "plugin `{fixture}.wasm` is not a record transform: it does not export `{missing}`"
            )),
            "{stderr}"
        );
    }
}
