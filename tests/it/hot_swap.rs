//! Hot swap of plugins in a running Ferry: a filter replaced 20 times (by rewriting its file,
//! which Ferry watches, and through the admin endpoint) while a producer writes, with every
//! source record accounted for; failed swaps that keep the running version; the admin token;
//! and the naming policy's dry-run diff, refusal and forced swap.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::support::{self, ConfigBuilder, Ferry, TempDir, TestRecord};

const PARTITIONS: i32 = 4;

/// Writes records until stopped: record `i` goes to partition `i % 4` with header `tag` = `a`
/// or `b`, alternating every 4 records so that each partition sees both. Paced at about 2 000
/// records/s so that every swap happens with records in flight.
struct Writer {
    stop: Arc<AtomicBool>,
    /// Records handed to the producer so far.
    sent: Arc<AtomicU64>,
    thread: JoinHandle<Vec<TestRecord>>,
}

impl Writer {
    fn start(topic: &str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_owned();
        let flag = Arc::clone(&stop);
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let thread = std::thread::spawn(move || {
            let producer: BaseProducer = support::client(&support::clusters().a)
                .set("enable.idempotence", "true")
                .set("linger.ms", "5")
                .create()
                .unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let mut written = Vec::new();
            let mut index = 0_u64;
            while !flag.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    let partition = (index % PARTITIONS as u64) as i32;
                    let tag = if (index / PARTITIONS as u64).is_multiple_of(2) {
                        "a"
                    } else {
                        "b"
                    };
                    let key = format!("key-{index}");
                    let value = format!("value-{index}-{}", "x".repeat((index % 50) as usize));
                    let timestamp = now - 60_000 + index as i64;
                    let headers = OwnedHeaders::new()
                        .insert(Header {
                            key: "tag",
                            value: Some(tag),
                        })
                        .insert(Header {
                            key: "seq",
                            value: Some(&index.to_string()),
                        });
                    loop {
                        match producer.send(
                            BaseRecord::to(&topic)
                                .partition(partition)
                                .key(key.as_bytes())
                                .payload(value.as_bytes())
                                .timestamp(timestamp)
                                .headers(headers.clone()),
                        ) {
                            Ok(()) => break,
                            Err((error, _)) => {
                                assert!(
                                    error.to_string().contains("Queue full"),
                                    "producing failed: {error}"
                                );
                                producer.poll(Duration::from_millis(50));
                            }
                        }
                    }
                    written.push(TestRecord {
                        partition,
                        key: Some(key.into_bytes()),
                        value: Some(value.into_bytes()),
                        headers: vec![
                            ("tag".to_owned(), Some(tag.as_bytes().to_vec())),
                            ("seq".to_owned(), Some(index.to_string().into_bytes())),
                        ],
                        timestamp,
                    });
                    index += 1;
                    counter.store(index, Ordering::Relaxed);
                }
                producer.poll(Duration::from_millis(10));
            }
            producer.flush(Duration::from_secs(60)).unwrap();
            written
        });
        Writer { stop, sent, thread }
    }

    /// Records handed to the producer so far.
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops writing and returns every record written (all acknowledged).
    fn finish(self) -> Vec<TestRecord> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn tag(record: &TestRecord) -> &[u8] {
    record
        .headers
        .iter()
        .find(|(name, _)| name == "tag")
        .and_then(|(_, value)| value.as_deref())
        .unwrap_or_default()
}

/// Replaces `path` atomically (write beside, then rename), as an operator should.
fn install(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("wasm.new");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn applied_swaps(ferry: &Ferry) -> f64 {
    ferry
        .metrics()
        .lines()
        .filter(|line| {
            line.starts_with("ferry_plugin_swaps_total") && line.contains("outcome=\"applied\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn accounted(ferry: &Ferry) -> f64 {
    ferry.metric_sum("ferry_records_replicated_total")
        + ferry.metric_sum("ferry_records_dropped_total")
}

/// A flow from the plain cluster A under `alias`, mirroring topics starting with `marker`.
fn config(alias: &str, marker: &str, extra: &str, dir: &TempDir) -> std::path::PathBuf {
    ConfigBuilder::new()
        .cluster(alias, &support::clusters().a)
        .flow(
            alias,
            "clusterB",
            &support::unique("g"),
            &format!("topics = [\"{marker}.*\"]\n{extra}"),
        )
        .write(dir)
}

/// Acceptance: a producer writes continuously while the filter is swapped 20 times, 10 times
/// by rewriting the watched file and 10 times through the admin endpoint. The two versions
/// (`header-filter` and `header-keep-filter`, both with `tag = a`) drop complementary records,
/// so each source record shows which version filtered it: present with tag `b` or absent with
/// tag `a` means the first, the other way round the second. Every record is accounted for
/// (replicated + dropped = written; the target holds exactly the replicated ones, each once,
/// byte-equal, in order), and on each partition the version changes at most 20 times.
#[test]
fn filter_swapped_20_times_under_load_loses_and_duplicates_nothing() {
    let dir = TempDir::new("hot-swap");
    let marker = support::unique("swap");
    let alias = format!("hs{}", marker.replace(['x', '-', '.'], ""));
    support::create_topic(&support::clusters().a, &marker, PARTITIONS);
    let drop_a = std::fs::read(support::plugin("header_filter")).unwrap();
    let keep_a = std::fs::read(support::plugin("header_keep_filter")).unwrap();
    let filter = dir.0.join("tag-filter.wasm");
    std::fs::write(&filter, &drop_a).unwrap();
    let extra = format!(
        "filters = [{{ uses = {:?}, with = {{ header = \"tag\", value = \"a\" }} }}]\n",
        filter.display().to_string()
    );
    let mut ferry = Ferry::start(&config(&alias, &marker, &extra, &dir), &dir, "ferry");
    support::wait_until(Duration::from_secs(60), "the admin endpoint is up", || {
        ferry.admin_ready()
    });
    let writer = Writer::start(&marker);
    let remote = format!("{alias}.{marker}");
    // Every partition is flowing with the first version before the first swap (a task that
    // starts late would otherwise see its first records with the second).
    support::wait_until(Duration::from_secs(60), "every partition flows", || {
        ferry.assert_running();
        support::topics(&support::clusters().b).contains_key(&remote) && {
            let mut partitions: Vec<i32> = support::read_all(&support::clusters().b, &remote)
                .iter()
                .map(|record| record.partition)
                .collect();
            partitions.sort_unstable();
            partitions.dedup();
            partitions.len() == PARTITIONS as usize
        }
    });
    let mut last = 0.0;
    for swap in 0..20 {
        // Let records flow with the current version before the next swap.
        support::wait_until(
            Duration::from_secs(60),
            "records flow between swaps",
            || accounted(&ferry) >= last + 200.0,
        );
        let next = if swap % 2 == 0 { &keep_a } else { &drop_a };
        if swap < 10 {
            install(&filter, next);
        } else {
            let (status, body) = ferry.admin(
                "POST",
                &format!("/flows/{alias}/clusterB/plugins/tag-filter.wasm"),
                next,
                None,
            );
            assert_eq!(status, 200, "swap {swap} answered {body}");
            assert!(body.contains("\"canary\""), "{body}");
        }
        support::wait_until(Duration::from_secs(30), "the swap is applied", || {
            applied_swaps(&ferry) >= f64::from(swap + 1)
        });
        last = accounted(&ferry);
        ferry.assert_running();
    }
    // Records written after the last swap was applied can only be in batches that start after
    // it, so each partition's last records show the last version.
    let mark = writer.sent();
    support::wait_until(
        Duration::from_secs(60),
        "records written after the last swap",
        || writer.sent() >= mark + 400,
    );
    let written = writer.finish();
    let total = written.len() as f64;
    support::wait_until(
        Duration::from_secs(120),
        "every written record is accounted for",
        || accounted(&ferry) >= total,
    );
    let replicated = ferry.metric_sum("ferry_records_replicated_total");
    let dropped = ferry.metric_sum("ferry_records_dropped_total");
    assert_eq!(
        replicated + dropped,
        total,
        "replicated {replicated} + dropped {dropped}"
    );
    let arrived = support::read_all(&support::clusters().b, &remote);
    assert_eq!(arrived.len() as f64, replicated, "records on the target");
    assert_eq!(applied_swaps(&ferry), 20.0);

    let by_key: HashMap<&[u8], &TestRecord> = arrived
        .iter()
        .map(|record| (record.key.as_deref().unwrap_or_default(), record))
        .collect();
    assert_eq!(by_key.len(), arrived.len(), "a record arrived twice");
    for partition in 0..PARTITIONS {
        let source: Vec<&TestRecord> = written
            .iter()
            .filter(|r| r.partition == partition)
            .collect();
        let mut expected_order = Vec::new();
        // true: the first version (drops tag a); false: the second (keeps only tag a).
        let mut versions = Vec::new();
        for record in &source {
            let key = record.key.as_deref().unwrap_or_default();
            let present = by_key.get(key);
            if let Some(copy) = present {
                assert_eq!(*copy, *record, "record {:?} changed on the way", record.key);
                expected_order.push(*record);
            }
            let first_version = (tag(record) == b"a") != present.is_some();
            versions.push(first_version);
        }
        let target: Vec<&TestRecord> = arrived
            .iter()
            .filter(|r| r.partition == partition)
            .collect();
        assert_eq!(
            target, expected_order,
            "partition {partition}: order differs"
        );
        let changes = versions
            .windows(2)
            .filter(|pair| pair[0] != pair[1])
            .count();
        assert!(
            changes <= 20,
            "partition {partition}: the version changes {changes} times for 20 swaps"
        );
        assert_eq!(
            versions.first(),
            Some(&true),
            "partition {partition} starts with the first version"
        );
        assert_eq!(
            versions.last(),
            Some(&true),
            "partition {partition} ends with the first version (20 swaps)"
        );
    }
    let status = ferry.admin("GET", "/status", &[], None);
    assert_eq!(status.0, 200);
    assert!(
        status.1.contains(&support::short_digest(&drop_a)),
        "{}",
        status.1
    );
    ferry.terminate();
}

/// A version that fails to load or to pass the canary is not installed: the admin endpoint
/// says why (422), the metric counts it, and the running version keeps filtering. With a token,
/// requests without it are refused.
#[test]
fn failed_swaps_keep_the_running_version_and_the_token_is_required() {
    let dir = TempDir::new("hot-swap-fail");
    let marker = support::unique("swapfail");
    let alias = format!("hf{}", marker.replace(['x', '-', '.'], ""));
    support::create_topic(&support::clusters().a, &marker, 1);
    let filter = dir.0.join("tag-filter.wasm");
    let drop_a = std::fs::read(support::plugin("header_filter")).unwrap();
    std::fs::write(&filter, &drop_a).unwrap();
    let extra = format!(
        "filters = [{{ uses = {:?}, with = {{ header = \"tag\", value = \"a\" }} }}]\n",
        filter.display().to_string()
    );
    let token = "s3cret-token";
    let ferry =
        Ferry::start_with_token(&config(&alias, &marker, &extra, &dir), &dir, "ferry", token);
    support::wait_until(Duration::from_secs(60), "the admin endpoint is up", || {
        ferry.admin_ready()
    });
    let path = format!("/flows/{alias}/clusterB/plugins/tag-filter.wasm");
    assert_eq!(ferry.admin("GET", "/status", &[], None).0, 401);
    assert_eq!(ferry.admin("POST", &path, &drop_a, Some("wrong")).0, 401);

    let refused = [
        ("wrong_world", "wrong interface"),
        ("trap_transform", "a transform, not a filter"),
        ("loop_transform", "a transform, not a filter"),
    ];
    for (fixture, why) in refused {
        let bytes = std::fs::read(support::plugin(fixture)).unwrap();
        let (status, body) = ferry.admin("POST", &path, &bytes, Some(token));
        assert_eq!(status, 422, "{fixture} ({why}) answered {body}");
        assert!(body.contains("was not installed"), "{body}");
    }
    let (status, body) = ferry.admin("POST", &path, b"not a component", Some(token));
    assert_eq!(status, 422, "{body}");
    let (status, body) = ferry.admin(
        "POST",
        &format!("/flows/{alias}/clusterB/plugins/nope.wasm"),
        &drop_a,
        Some(token),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("tag-filter.wasm"), "{body}");
    let metrics = ferry.metrics();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("ferry_plugin_swaps_total")
                && line.contains("outcome=\"failed\"")
                && line.ends_with(" 4")),
        "{metrics}"
    );
    // The running version still filters: records tagged `a` are dropped, others pass.
    let inputs: Vec<crate::transforms::Input> = (0..40)
        .map(|index| {
            let tag = if index % 2 == 0 { "a" } else { "b" };
            (0, format!("value-{index}"), vec![("tag", tag)])
        })
        .collect();
    let written = crate::transforms::produce(&marker, &inputs);
    let remote = format!("{alias}.{marker}");
    support::wait_until(Duration::from_secs(60), "the records are filtered", || {
        ferry.metric_sum("ferry_records_dropped_total") >= 20.0
            && support::record_count(&support::clusters().b, &remote) >= 20
    });
    let arrived = support::read_all(&support::clusters().b, &remote);
    let expected: Vec<TestRecord> = written.into_iter().filter(|r| tag(r) != b"a").collect();
    assert_eq!(arrived, expected);
    let (status, body) = ferry.admin("GET", "/status", &[], Some(token));
    assert_eq!(status, 200);
    assert!(body.contains(&support::short_digest(&drop_a)), "{body}");
}

/// A policy swap shows the diff of remote names first. The dr-rename example renames the
/// mirrored `prod.<x>.global` topic, so the swap is refused (409) unless forced; forced, new
/// records go to the new remote topic. The same policy uploaded again changes nothing and is
/// applied.
#[test]
fn policy_swap_shows_the_diff_and_refuses_renames_unless_forced() {
    let dir = TempDir::new("policy-swap");
    let marker = support::unique("prod.polswap").replace('-', "");
    let topic = format!("{marker}.global");
    let alias = format!("ps{}", marker.replace(['x', '-', '.'], ""));
    support::create_topic(&support::clusters().a, &topic, 1);
    let default_policy = std::fs::read(support::plugin("default_policy")).unwrap();
    let policy_file = dir.0.join("policy.wasm");
    std::fs::write(&policy_file, &default_policy).unwrap();
    let extra = format!(
        "policy = {{ uses = {:?} }}\n",
        policy_file.display().to_string()
    );
    let config = ConfigBuilder::new()
        .cluster(&alias, &support::clusters().a)
        .flow(
            &alias,
            "clusterB",
            &support::unique("g"),
            &format!("topics = [\"{marker}.*\"]\n{extra}"),
        )
        .write(&dir);
    let ferry = Ferry::start(&config, &dir, "ferry");
    let remote = format!("{alias}.{topic}");
    support::produce(&support::clusters().a, &topic, 1, 0..10);
    support::wait_until(
        Duration::from_secs(60),
        "the first records are mirrored",
        || {
            support::topics(&support::clusters().b).contains_key(&remote)
                && support::record_count(&support::clusters().b, &remote) == 10
        },
    );
    let renaming = std::fs::read(support::plugin("dr_rename_policy")).unwrap();
    let path = format!("/flows/{alias}/clusterB/policy");
    let renamed = topic.replacen("prod.", "dr.", 1);

    let (status, body) = ferry.admin("POST", &format!("{path}?dry_run=true"), &renaming, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&remote) && body.contains(&renamed), "{body}");
    assert!(body.contains("\"applied\": false"), "{body}");

    let (status, body) = ferry.admin("POST", &path, &renaming, None);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("renamed"), "{body}");

    let (status, body) = ferry.admin("POST", &path, &default_policy, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"renamed\": []"), "{body}");

    let (status, body) = ferry.admin("POST", &format!("{path}?force=true"), &renaming, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"forced\": true"), "{body}");
    // The rename takes effect when the task sees the new catalog (the manager refreshes at
    // once after the swap); records consumed from then on go to the new name.
    support::wait_until(
        Duration::from_secs(30),
        "the task follows the rename",
        || {
            ferry
                .log_text()
                .contains("Remote topic renamed by a forced policy swap")
        },
    );
    support::produce(&support::clusters().a, &topic, 1, 10..20);
    support::wait_until(
        Duration::from_secs(60),
        "new records go to the renamed topic",
        || {
            support::topics(&support::clusters().b).contains_key(&renamed)
                && support::record_count(&support::clusters().b, &renamed) == 10
        },
    );
    let moved = support::read_all(&support::clusters().b, &renamed);
    let expected: Vec<TestRecord> = (10..20).map(|index| support::record(0, index)).collect();
    assert_eq!(moved, expected);
    assert_eq!(support::record_count(&support::clusters().b, &remote), 10);
}

/// A partition halted by a trapping transform (`on_error = "halt"`) resumes when a fixed
/// version is swapped in, at the record it stopped at: every record arrives once, in order,
/// without a restart.
#[test]
fn swapping_in_a_fixed_plugin_resumes_the_halted_partition() {
    let clusters = support::clusters();
    let dir = TempDir::new("hot-swap-resume");
    let marker = support::unique("swapres");
    let alias = format!("hr{}", marker.replace(['x', '-', '.'], ""));
    support::create_topic(&clusters.a, &marker, 2);
    let inputs: Vec<crate::transforms::Input> = (0..30)
        .flat_map(|index| {
            let value = if index == 10 {
                "poison".to_owned()
            } else {
                format!("p0-{index}")
            };
            [(0, value, vec![]), (1, format!("p1-{index}"), vec![])]
        })
        .collect();
    let written = crate::transforms::produce(&marker, &inputs);
    let transform = dir.0.join("fixable.wasm");
    std::fs::copy(support::plugin("trap_transform"), &transform).unwrap();
    let extra = format!(
        "transforms = [{{ uses = {:?} }}]\n",
        transform.display().to_string()
    );
    let mut ferry = Ferry::start(&config(&alias, &marker, &extra, &dir), &dir, "ferry");
    support::wait_until(Duration::from_secs(90), "the partition halts", || {
        ferry.assert_running();
        ferry.metric_sum("ferry_partitions_halted") >= 1.0
    });
    let remote = format!("{alias}.{marker}");
    support::wait_until(
        Duration::from_secs(60),
        "the other partition is copied",
        || support::record_count(&clusters.b, &remote) == 40,
    );
    let fixed = std::fs::read(support::plugin("identity_transform")).unwrap();
    let (status, body) = ferry.admin(
        "POST",
        &format!("/flows/{alias}/clusterB/plugins/fixable.wasm"),
        &fixed,
        None,
    );
    assert_eq!(status, 200, "{body}");
    support::wait_until(Duration::from_secs(60), "every record arrives", || {
        support::record_count(&clusters.b, &remote) >= 60
    });
    assert_eq!(ferry.metric_sum("ferry_partitions_halted"), 0.0);
    let arrived = support::read_all(&clusters.b, &remote);
    for partition in 0..2 {
        let sent: Vec<&TestRecord> = written
            .iter()
            .filter(|r| r.partition == partition)
            .collect();
        let got: Vec<&TestRecord> = arrived
            .iter()
            .filter(|r| r.partition == partition)
            .collect();
        assert_eq!(got, sent, "partition {partition}");
    }
    assert!(ferry.log_text().contains("the halted partition resumes"));
    ferry.terminate();
}
