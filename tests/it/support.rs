//! Test support: the two real Kafka clusters of this run, record generators and checkers, and
//! `ferry` processes.
//!
//! The clusters are started once per test run by `scripts/kafka-local start` (the test command
//! `scripts/test-all` does it), which writes their addresses to `$FERRY_KAFKA_STATE/env`
//! (default `/tmp/ferry-kafka/env`). Tests never skip for want of a broker: without clusters they
//! fail and say how to start them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Addresses of the clusters of this run.
pub struct Clusters {
    pub a: String,
    pub b: String,
}

/// The clusters, read once from the environment or the env file of `scripts/kafka-local`.
pub fn clusters() -> &'static Clusters {
    static CLUSTERS: OnceLock<Clusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        let get = env_lookup("FERRY_KAFKA_STATE", "/tmp/ferry-kafka", "");
        Clusters {
            a: get("FERRY_TEST_CLUSTER_A"),
            b: get("FERRY_TEST_CLUSTER_B"),
        }
    })
}

/// Addresses and credentials of the SASL/PLAIN clusters of this run (with an authorizer;
/// `ferry` and `admin` are super users, `alice` is not).
pub struct SaslClusters {
    pub a: String,
    pub b: String,
    /// Kafka CLI properties of the `admin` user (`--command-config`).
    pub admin_properties: PathBuf,
}

/// The SASL clusters, read once from the environment or the env file of the state dir that
/// `scripts/kafka-local start --sasl` wrote (`$FERRY_KAFKA_SASL_STATE`, default
/// `/tmp/ferry-kafka-sasl`). `scripts/test-all` starts them beside the plaintext pair.
pub fn sasl_clusters() -> &'static SaslClusters {
    static CLUSTERS: OnceLock<SaslClusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        let get = env_lookup(
            "FERRY_KAFKA_SASL_STATE",
            "/tmp/ferry-kafka-sasl",
            " --sasl --port-offset 1000",
        );
        SaslClusters {
            a: get("FERRY_TEST_SASL_CLUSTER_A"),
            b: get("FERRY_TEST_SASL_CLUSTER_B"),
            admin_properties: PathBuf::from(get("FERRY_TEST_SASL_CLIENT_CONFIG")),
        }
    })
}

/// A lookup of test settings: the environment first, then the env file that
/// `scripts/kafka-local start<start_options>` wrote into the state dir `$state_var`
/// (default `default_state`). Panics with instructions when a key is in neither.
fn env_lookup(
    state_var: &'static str,
    default_state: &str,
    start_options: &'static str,
) -> impl Fn(&str) -> String {
    let state = std::env::var(state_var).unwrap_or_else(|_| default_state.into());
    let file: HashMap<String, String> = std::fs::read_to_string(Path::new(&state).join("env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim_start_matches("export ").split_once('='))
        .map(|(key, value)| {
            (
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            )
        })
        .collect();
    move |key: &str| {
        std::env::var(key)
            .ok()
            .or_else(|| file.get(key).cloned())
            .unwrap_or_else(|| {
                panic!(
                    "{key} is not set and {state}/env does not name it: start the test clusters \
                 with `scripts/kafka-local start --state-dir {state}{start_options}` (or run \
                 everything with `scripts/test-all`)"
                )
            })
    }
}

/// A name unique in this run and across runs on the same clusters.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}x{}x{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos & 0xfff
    )
}

/// Client settings for a test cluster: plaintext, or as the super user `admin` when
/// `bootstrap` is one of the SASL clusters.
pub fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    if is_sasl_cluster(bootstrap) {
        config
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "PLAIN")
            .set("sasl.username", "admin")
            .set("sasl.password", "admin-secret");
    }
    config
}

/// Whether `bootstrap` is one of the SASL clusters (without requiring them to run).
fn is_sasl_cluster(bootstrap: &str) -> bool {
    static SASL: OnceLock<Vec<String>> = OnceLock::new();
    SASL.get_or_init(|| {
        let state = std::env::var("FERRY_KAFKA_SASL_STATE")
            .unwrap_or_else(|_| "/tmp/ferry-kafka-sasl".into());
        let file = std::fs::read_to_string(Path::new(&state).join("env")).unwrap_or_default();
        ["FERRY_TEST_SASL_CLUSTER_A", "FERRY_TEST_SASL_CLUSTER_B"]
            .iter()
            .filter_map(|key| {
                std::env::var(key).ok().or_else(|| {
                    file.lines()
                        .filter_map(|line| line.trim_start_matches("export ").split_once('='))
                        .find(|(name, _)| name.trim() == *key)
                        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
                })
            })
            .collect()
    })
    .iter()
    .any(|address| address == bootstrap)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let results = block_on(admin.create_topics(
        [&NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Grows `topic` to `partitions` partitions.
pub fn grow_topic(bootstrap: &str, topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let results = block_on(admin.create_partitions(
        [&NewPartitions::new(topic, partitions)],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("growing {topic}: {code}"));
    }
}

/// Topics of a cluster with their partition counts.
pub fn topics(bootstrap: &str) -> HashMap<String, i32> {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .map(|topic| (topic.name().to_owned(), topic.partitions().len() as i32))
        .collect()
}

/// The record a test writes: everything a mirror must preserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// The timestamp of record 0: an hour before this test process started. Timestamps must be
/// recent, or the brokers' retention (7 days by default) deletes the records under the test.
fn timestamp_base() -> i64 {
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        now.as_millis() as i64 - 3_600_000
    })
}

/// Record number `index` of `partition`: a key, a value, three headers (one with a null value)
/// and an explicit timestamp, all derived from the coordinates so that checks need no state.
pub fn record(partition: i32, index: u64) -> TestRecord {
    let value_len = 40 + (index % 200) as usize;
    let mut value = format!("value-{partition}-{index}-").into_bytes();
    value.resize(value_len, b'a' + (index % 26) as u8);
    TestRecord {
        partition,
        key: Some(format!("key-{partition}-{index}").into_bytes()),
        value: Some(value),
        headers: vec![
            (
                "trace-id".to_owned(),
                Some(format!("{partition}:{index}").into_bytes()),
            ),
            ("origin".to_owned(), Some(b"test".to_vec())),
            ("nullable".to_owned(), None),
        ],
        timestamp: timestamp_base() + index as i64 * 7 + i64::from(partition),
    }
}

/// Produces records `range` of each of `partitions` partitions to `topic`, partition by
/// partition in index order, and waits until the cluster acknowledged all of them.
pub fn produce(bootstrap: &str, topic: &str, partitions: i32, range: std::ops::Range<u64>) {
    let producer: BaseProducer = client(bootstrap)
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for index in range {
        for partition in 0..partitions {
            let expected = record(partition, index);
            let mut headers = OwnedHeaders::new();
            for (key, value) in &expected.headers {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            let mut message = BaseRecord::to(topic)
                .partition(partition)
                .timestamp(expected.timestamp)
                .headers(headers);
            if let Some(key) = &expected.key {
                message = message.key(key.as_slice());
            }
            if let Some(value) = &expected.value {
                message = message.payload(value.as_slice());
            }
            let mut pending = message;
            loop {
                match producer.send(pending) {
                    Ok(()) => break,
                    Err((error, returned)) => {
                        assert!(
                            matches!(
                                error,
                                rdkafka::error::KafkaError::MessageProduction(
                                    rdkafka::types::RDKafkaErrorCode::QueueFull
                                )
                            ),
                            "producing: {error}"
                        );
                        producer.poll(Duration::from_millis(10));
                        pending = returned;
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// Sum of high watermarks of `topic`: the number of records written to it (no transactions and
/// no compaction in these tests).
pub fn record_count(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return 0;
    };
    let Some(topic_metadata) = metadata.topics().first() else {
        return 0;
    };
    if topic_metadata.error().is_some() {
        return 0;
    }
    topic_metadata
        .partitions()
        .iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                .map(|(low, high)| high - low)
                .unwrap_or(0)
        })
        .sum()
}

/// Reads every record of `topic` (all partitions, from the beginning, up to the high watermarks
/// at the time of the call), in per-partition order.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<TestRecord> {
    // librdkafka refuses assignments without a group id, even for a consumer that never joins.
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique("ferry-tests.reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| partition.id())
        .collect();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut list = TopicPartitionList::new();
    for partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *partition, Duration::from_secs(10))
            .unwrap();
        if high > low {
            remaining.insert(*partition, high);
        }
        list.add_partition_offset(topic, *partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !remaining.is_empty() {
        assert!(
            Instant::now() < deadline,
            "reading {topic} timed out; still to read: {remaining:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        records.push(TestRecord {
            partition: message.partition(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: message.timestamp().to_millis().unwrap(),
        });
        if remaining
            .get(&message.partition())
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            remaining.remove(&message.partition());
        }
    }
    records
}

/// Result of comparing a mirrored topic with what was produced.
#[derive(Debug, Default)]
pub struct Comparison {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
}

/// Checks that `records` (read from the remote topic) hold records `0..per_partition` of every
/// partition in order, each byte-equal to [`record`], allowing re-copied runs (at-least-once
/// duplicates, counted) but never a missing, reordered or altered record.
pub fn compare(records: &[TestRecord], partitions: i32, per_partition: u64) -> Comparison {
    let mut by_partition: HashMap<i32, Vec<&TestRecord>> = HashMap::new();
    for record in records {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    let mut comparison = Comparison {
        expected: per_partition * partitions as u64,
        received: records.len() as u64,
        ..Comparison::default()
    };
    for partition in 0..partitions {
        let received = by_partition.remove(&partition).unwrap_or_default();
        // The highest index seen so far; a record with a lower index is a duplicate run.
        let mut next = 0_u64;
        for got in received {
            let index = index_of(got).unwrap_or_else(|| panic!("unexpected record {got:?}"));
            assert_eq!(
                got,
                &record(partition, index),
                "record {partition}/{index} altered"
            );
            if index < next {
                comparison.duplicates += 1;
            } else {
                assert_eq!(
                    index, next,
                    "partition {partition}: record {next} missing or out of order (got {index})"
                );
                next += 1;
            }
        }
        comparison.lost += per_partition.saturating_sub(next);
    }
    assert!(
        by_partition.is_empty(),
        "records in unexpected partitions: {:?}",
        by_partition.keys()
    );
    comparison
}

fn index_of(record: &TestRecord) -> Option<u64> {
    let key = std::str::from_utf8(record.key.as_deref()?).ok()?;
    key.rsplit('-').next()?.parse().ok()
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `read` every 100 ms until it returns `expected`; panics with `what` and the last value
/// after `timeout`.
pub fn wait_for_value<T: PartialEq + std::fmt::Debug>(
    timeout: Duration,
    what: &str,
    expected: &T,
    mut read: impl FnMut() -> T,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let value = read();
        if &value == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}\nexpected: {expected:#?}\nlast seen: {value:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(&format!("ferry-it-{name}-")));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Builds a config file for the test clusters.
pub struct ConfigBuilder {
    text: String,
}

impl ConfigBuilder {
    /// Clusters `clusterA` and `clusterB` of this run's SASL pair, as user `ferry`.
    pub fn sasl() -> ConfigBuilder {
        let clusters = sasl_clusters();
        let mut text = String::new();
        for (name, bootstrap) in [("clusterA", &clusters.a), ("clusterB", &clusters.b)] {
            writeln!(
                text,
                "[clusters.{name}]\nbootstrap_servers = \"{bootstrap}\"\n\
                 security_protocol = \"SASL_PLAINTEXT\"\n\
                 sasl = {{ mechanism = \"PLAIN\", username = \"ferry\", password = \"ferry-secret\" }}\n"
            )
            .unwrap();
        }
        ConfigBuilder { text }
    }

    /// Clusters `clusterA` and `clusterB` of this run.
    pub fn new() -> ConfigBuilder {
        let clusters = clusters();
        let mut text = String::new();
        writeln!(
            text,
            "[clusters.clusterA]\nbootstrap_servers = \"{}\"\n",
            clusters.a
        )
        .unwrap();
        writeln!(
            text,
            "[clusters.clusterB]\nbootstrap_servers = \"{}\"\n",
            clusters.b
        )
        .unwrap();
        ConfigBuilder { text }
    }

    /// Adds a cluster alias for `bootstrap`.
    pub fn cluster(mut self, name: &str, bootstrap: &str) -> ConfigBuilder {
        writeln!(
            self.text,
            "[clusters.{name}]\nbootstrap_servers = \"{bootstrap}\"\n"
        )
        .unwrap();
        self
    }

    /// Adds a flow; `extra` is TOML lines inside the `[[flows]]` table.
    ///
    /// Tests share two physical clusters under many aliases. Heartbeat topics bypass the topic
    /// filter, so flows between aliases other than the suite's `clusterA`/`clusterB` would
    /// mirror each other's heartbeat topics round and round (what MM2 does with inconsistent
    /// aliases, KAFKA-9914); such flows get `heartbeats_replication = false` unless `extra`
    /// sets it.
    pub fn flow(mut self, source: &str, target: &str, group: &str, extra: &str) -> ConfigBuilder {
        let standard = |alias: &str| alias == "clusterA" || alias == "clusterB";
        let consistent = standard(source) && standard(target);
        let heartbeats = if consistent || extra.contains("heartbeats_replication") {
            ""
        } else {
            "heartbeats_replication = false\n"
        };
        writeln!(
            self.text,
            "[[flows]]\nsource = \"{source}\"\ntarget = \"{target}\"\ngroup_id = \"{group}\"\n\
             replication_factor = 1\nrefresh_topics_interval = \"1s\"\ncommit_interval = \"500ms\"\n\
             {heartbeats}{extra}\n"
        )
        .unwrap();
        self
    }

    /// Writes the file into `dir`.
    pub fn write(&self, dir: &TempDir) -> PathBuf {
        let path = dir.0.join("ferry.toml");
        std::fs::write(&path, &self.text).unwrap();
        path
    }
}

/// A running `ferry run` process, killed on drop.
pub struct Ferry {
    child: Child,
    pub log: PathBuf,
}

impl Ferry {
    /// Starts `ferry run --config <config>`; its stderr goes to `<dir>/<name>.log`.
    pub fn start(config: &Path, dir: &TempDir, name: &str) -> Ferry {
        Ferry::spawn("--config", config, dir, name)
    }

    /// Starts `ferry run --mm2 <properties>` (MM2's own file); its stderr goes to
    /// `<dir>/<name>.log`.
    pub fn start_mm2(properties: &Path, dir: &TempDir, name: &str) -> Ferry {
        Ferry::spawn("--mm2", properties, dir, name)
    }

    /// Starts `ferry run --config <config>` with the admin token `token`.
    pub fn start_with_token(config: &Path, dir: &TempDir, name: &str, token: &str) -> Ferry {
        Ferry::spawn_with(
            "--config",
            config,
            dir,
            name,
            &[("FERRY_ADMIN_TOKEN", token)],
        )
    }

    fn spawn(option: &str, file: &Path, dir: &TempDir, name: &str) -> Ferry {
        Ferry::spawn_with(option, file, dir, name, &[])
    }

    fn spawn_with(
        option: &str,
        file: &Path,
        dir: &TempDir,
        name: &str,
        env: &[(&str, &str)],
    ) -> Ferry {
        let log = dir.0.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["run", option])
            .arg(file)
            .args([
                "--metrics-bind",
                "127.0.0.1:0",
                "--admin-bind",
                "127.0.0.1:0",
            ])
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("FERRY_TEST_LOG")
                    .unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Ferry { child, log }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address an endpoint of this process logged with `marker` (`address=...`).
    fn address(&self, marker: &str) -> Option<String> {
        self.log_text()
            .lines()
            .find(|line| line.contains(marker))
            .and_then(|line| line.split("address=").nth(1))
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
    }

    /// The body of `GET /metrics` from this process (its address is in its log).
    pub fn metrics(&self) -> String {
        let address = self
            .address("Metrics endpoint listening.")
            .unwrap_or_else(|| panic!("no metrics address in the log:\n{}", self.log_text()));
        let (status, body) = http(&address, "GET", "/metrics", &[], None);
        assert_eq!(status, 200, "metrics answered {body}");
        body
    }

    /// Whether the admin endpoint is up (its address is in the log).
    pub fn admin_ready(&self) -> bool {
        self.address("Admin endpoint listening.").is_some()
    }

    /// A request to this process's admin endpoint: (status, body).
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> (u16, String) {
        let address = self
            .address("Admin endpoint listening.")
            .unwrap_or_else(|| panic!("no admin address in the log:\n{}", self.log_text()));
        http(&address, method, path, body, token)
    }

    /// The value of `name` in the metrics text, summed over every label set; 0 before the
    /// metrics endpoint is up.
    pub fn metric_sum(&self, name: &str) -> f64 {
        if self.address("Metrics endpoint listening.").is_none() {
            return 0.0;
        }
        self.metrics()
            .lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The value of the sample `name{labels}` in this process's metrics, if present.
    pub fn metric(&self, name_and_labels: &str) -> Option<f64> {
        self.metrics()
            .lines()
            .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
    }

    /// Number of tasks this process holds now, from its log.
    pub fn tasks_held(&self) -> i64 {
        let log = self.log_text();
        log.matches("Task acquired.").count() as i64 - log.matches("Task released.").count() as i64
    }

    /// Kills the process with SIGKILL: no drain, no goodbye.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "ferry exited with {status}; log:\n{}",
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ferry did not stop; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "ferry exited early with {status}; log:\n{}",
                self.log_text()
            );
        }
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`Connection: close`): (status, body).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    body: &[u8],
    token: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// A plugin version as Ferry names it: the first 12 hex digits of the SHA-256.
pub fn short_digest(bytes: &[u8]) -> String {
    ferry::plugins::short_digest(bytes)
}

/// Runs the `ferry` binary to completion and returns (exit code, stderr).
pub fn ferry_command(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Directory of the plugins the build script compiled (real `.wasm` files).
pub fn plugin(name: &str) -> PathBuf {
    Path::new(env!("FERRY_PLUGIN_DIR")).join(format!("{name}.wasm"))
}

/// Client settings for the SASL cluster at `bootstrap`, as the super user `admin`.
pub fn sasl_admin(bootstrap: &str) -> ClientConfig {
    let mut config = client(bootstrap);
    config
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", "PLAIN")
        .set("sasl.username", "admin")
        .set("sasl.password", "admin-secret");
    config
}

/// Creates `topic` (one partition, replication factor 1) with topic configs `configs`.
pub fn create_topic_with(config: &ClientConfig, topic: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let mut new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results = block_on(admin.create_topics(
        [&new_topic],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Replaces **all** topic-level overrides of `topic` with `configs` (the legacy AlterConfigs
/// request: overrides not listed are removed).
pub fn replace_topic_configs(config: &ClientConfig, topic: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (key, value) in configs {
        alter = alter.set(key, value);
    }
    let results = block_on(admin.alter_configs(
        [&alter],
        &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(resource, code)| panic!("altering {resource:?}: {code}"));
    }
}

/// The topic-level overrides of `topic` (configs whose source is the topic itself).
pub fn topic_overrides(config: &ClientConfig, topic: &str) -> BTreeMap<String, String> {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let results = block_on(admin.describe_configs(
        [&ResourceSpecifier::Topic(topic)],
        &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    results
        .into_iter()
        .flat_map(|result| result.unwrap().entries)
        .filter(|entry| entry.source == ConfigSource::DynamicTopic)
        .map(|entry| (entry.name, entry.value.unwrap_or_default()))
        .collect()
}

/// Runs `scripts/kafka-local tool <args>` (a Kafka 3.8.1 CLI tool) and returns its stdout;
/// panics with its output when it fails.
pub fn kafka_tool(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-local");
    let output = Command::new(script)
        .arg("tool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kafka-local tool {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One ACL binding as the `acls` tool lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    /// `TOPIC`, `GROUP`, ...
    pub resource_type: String,
    pub name: String,
    /// `LITERAL` or `PREFIXED`.
    pub pattern: String,
    pub principal: String,
    pub host: String,
    /// `READ`, `WRITE`, `ALL`, ...
    pub operation: String,
    /// `ALLOW` or `DENY`.
    pub permission: String,
}

/// Every ACL of the SASL cluster at `bootstrap`, listed with the `acls` tool as `admin`.
pub fn acls(bootstrap: &str) -> Vec<Acl> {
    let properties = sasl_clusters()
        .admin_properties
        .to_string_lossy()
        .into_owned();
    let output = kafka_tool(&[
        "acls",
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        &properties,
        "--list",
    ]);
    parse_acls(&output)
}

/// Parses `AclCommand --list` output:
/// ```text
/// Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`:
///     (principal=User:alice, host=*, operation=READ, permissionType=ALLOW)
/// ```
fn parse_acls(output: &str) -> Vec<Acl> {
    let field = |text: &str, key: &str| -> String {
        text.split(&format!("{key}="))
            .nth(1)
            .and_then(|rest| rest.split([',', ')']).next())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut acls = Vec::new();
    let mut resource: Option<(String, String, String)> = None;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("Current ACLs for resource") {
            resource = Some((
                field(line, "resourceType"),
                field(line, "name"),
                field(line, "patternType"),
            ));
        } else if line.starts_with("(principal=") {
            let (resource_type, name, pattern) = resource.clone().unwrap();
            acls.push(Acl {
                resource_type,
                name,
                pattern,
                principal: field(line, "principal"),
                host: field(line, "host"),
                operation: field(line, "operation"),
                permission: field(line, "permissionType"),
            });
        }
    }
    acls.sort();
    acls
}

/// Adds (or with `--remove --force`, removes) ACLs on the SASL cluster at `bootstrap` as
/// `admin`: `args` are the `acls` tool's arguments after the connection options.
pub fn acl_command(bootstrap: &str, args: &[&str]) {
    let properties = sasl_clusters()
        .admin_properties
        .to_string_lossy()
        .into_owned();
    let mut all = vec![
        "acls",
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        &properties,
    ];
    all.extend_from_slice(args);
    kafka_tool(&all);
}

/// Commits `offsets` (partition, next offset) of `topic` for `group` without joining it.
pub fn commit_group(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer
        .commit(&list, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
}

/// The committed offsets of `group` on partitions `0..partitions` of `topic` (`None` where it
/// has none).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(|partition| {
            match committed
                .find_partition(topic, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => Some(offset),
                _ => None,
            }
        })
        .collect()
}

/// The raw (key, value) of every record of partition 0 of `topic` up to its current end.
pub fn read_raw(bootstrap: &str, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique("ferry-tests.raw"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let Ok((_, high)) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) else {
        return Vec::new();
    };
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut records = Vec::new();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next < high {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        next = message.offset() + 1;
        records.push((
            message.key().unwrap_or_default().to_vec(),
            message.payload().unwrap_or_default().to_vec(),
        ));
    }
    records
}

/// A consumer group member on `topic` that stays in the group until dropped (it never commits).
pub struct ActiveMember {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    assigned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ActiveMember {
    /// Joins `group` and subscribes to `topic`.
    pub fn join(bootstrap: &str, group: &str, topic: &str) -> ActiveMember {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let consumer: BaseConsumer = client(bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let (thread_stop, thread_assigned) = (Arc::clone(&stop), Arc::clone(&assigned));
        let thread = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Acquire) {
                let _ = consumer.poll(Duration::from_millis(100));
                if consumer.assignment().is_ok_and(|list| list.count() > 0) {
                    thread_assigned.store(true, Ordering::Release);
                }
            }
        });
        ActiveMember {
            stop,
            thread: Some(thread),
            assigned,
        }
    }

    /// Whether the group gave this member partitions (it is then an active member).
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

impl Drop for ActiveMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The positions stored in `positions_topic` (MM2's Connect-offsets format, reference §3.6) for
/// partitions replicated from the cluster alias `source_alias`: the latest `{"offset":N}` per
/// (source topic, partition), read from all partitions up to their current ends. Empty while
/// the topic does not exist.
pub fn positions(
    bootstrap: &str,
    positions_topic: &str,
    source_alias: &str,
) -> HashMap<(String, i32), i64> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique("ferry-tests.positions"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(positions_topic), Duration::from_secs(10))
    else {
        return HashMap::new();
    };
    let Some(topic) = metadata.topics().first().filter(|t| t.error().is_none()) else {
        return HashMap::new();
    };
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut list = TopicPartitionList::new();
    for partition in topic.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(positions_topic, partition.id(), Duration::from_secs(10))
            .unwrap();
        if high > low {
            remaining.insert(partition.id(), high);
            list.add_partition_offset(positions_topic, partition.id(), Offset::Beginning)
                .unwrap();
        }
    }
    let mut positions = HashMap::new();
    if remaining.is_empty() {
        return positions;
    }
    consumer.assign(&list).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(
            Instant::now() < deadline,
            "reading {positions_topic} timed out; still to read: {remaining:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.unwrap();
        if remaining
            .get(&message.partition())
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            remaining.remove(&message.partition());
        }
        let Some(key) = message
            .key()
            .and_then(|key| serde_json::from_slice::<serde_json::Value>(key).ok())
        else {
            continue;
        };
        let (Some("MirrorSourceConnector"), Some(map)) =
            (key[0].as_str(), key.get(1).and_then(|map| map.as_object()))
        else {
            continue;
        };
        if map.get("cluster").and_then(|c| c.as_str()) != Some(source_alias) {
            continue;
        }
        let slot = (
            map["topic"].as_str().unwrap().to_owned(),
            i32::try_from(map["partition"].as_i64().unwrap()).unwrap(),
        );
        match message.payload() {
            None => {
                positions.remove(&slot);
            }
            Some(value) => {
                let value: serde_json::Value = serde_json::from_slice(value).unwrap();
                positions.insert(slot, value["offset"].as_i64().unwrap());
            }
        }
    }
    positions
}

/// A MirrorMaker 2 process (Kafka 3.8.1, dedicated mode) started with `scripts/kafka-local mm2`,
/// in a process group of its own. Dropping it kills the whole group, so no JVM outlives a test,
/// even one that panics.
pub struct Mm2 {
    child: Child,
    pub log: PathBuf,
}

impl Mm2 {
    /// Starts MM2 with `properties`; its stdout and stderr go to `<dir>/<name>.log`.
    pub fn start(properties: &Path, dir: &TempDir, name: &str) -> Mm2 {
        use std::os::unix::process::CommandExt as _;
        let log = dir.0.join(format!("{name}.log"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka-local");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(script)
            .arg("mm2")
            .arg(properties)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        Mm2 { child, log }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("MM2 exited early with {status}; log:\n{}", self.log_text());
        }
    }

    fn signal_group(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Sends SIGTERM to the process group (MM2 stops its connectors and flushes its offsets)
    /// and waits for MM2 to exit; returns how long that took. Kills the group after 60 s.
    pub fn terminate(mut self) -> Duration {
        let started = Instant::now();
        assert!(self.signal_group("-TERM"), "signalling MM2 failed");
        let deadline = started + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "MM2 did not stop within 60 s; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    }
}

impl Drop for Mm2 {
    fn drop(&mut self) {
        // Still running (a test that panicked, or `terminate` not called): kill the group.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group("-KILL");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
