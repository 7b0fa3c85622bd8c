//! The Kafka clusters of this run and how to connect to them: the plaintext pair, the SASL
//! pair (with an authorizer) and the chaos pair (a 3-broker target, whose brokers tests kill,
//! pause and start again), read from the environment or the env file `scripts/kafka-local`
//! wrote, and the librdkafka client settings for each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

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
    /// The SASL_SSL listeners (PLAIN, SCRAM-SHA-256/512; certificates of a test CA).
    pub a_tls: String,
    pub b_tls: String,
    /// The test CA, PEM.
    pub ca_pem: PathBuf,
    /// The test CA as a PKCS12 and a JKS truststore, and their password.
    pub truststore_p12: PathBuf,
    pub truststore_jks: PathBuf,
    pub truststore_password: String,
    /// The SASL_PLAINTEXT listeners with OAUTHBEARER only (Kafka's unsecured validator: an
    /// unsigned JWT is accepted, its `sub` is the principal).
    pub a_oauth: String,
    pub b_oauth: String,
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
            a_tls: get("FERRY_TEST_CLUSTER_A_TLS"),
            b_tls: get("FERRY_TEST_CLUSTER_B_TLS"),
            ca_pem: PathBuf::from(get("FERRY_TEST_TLS_CA")),
            truststore_p12: PathBuf::from(get("FERRY_TEST_TLS_TRUSTSTORE_P12")),
            truststore_jks: PathBuf::from(get("FERRY_TEST_TLS_TRUSTSTORE_JKS")),
            truststore_password: get("FERRY_TEST_TLS_TRUSTSTORE_PASSWORD"),
            a_oauth: get("FERRY_TEST_CLUSTER_A_OAUTH"),
            b_oauth: get("FERRY_TEST_CLUSTER_B_OAUTH"),
        }
    })
}

/// The chaos pair of this run: one source broker (clusterA node 1) and a 3-broker target
/// (clusterB nodes 1 to 3), for tests that kill, pause and restart brokers (`tests/it/chaos.rs`).
/// Only those tests use it, so that a broker they take away disturbs no other test.
pub struct ChaosClusters {
    pub a: String,
    pub b: String,
    /// The state dir `scripts/kafka-local node` is run on.
    pub state_dir: PathBuf,
}

impl ChaosClusters {
    /// Runs `scripts/kafka-local node --state-dir <dir> <cluster> <node> <action>`: `kill`
    /// (SIGKILL), `pause` (SIGSTOP), `resume` (SIGCONT) or `start` (again on its data dir,
    /// returning once the cluster lists it registered and unfenced); panics with its output when
    /// it fails.
    pub fn node(&self, cluster: &str, node: u32, action: &str) {
        if let Err(failure) = self.try_node(cluster, node, action) {
            panic!("{failure}");
        }
    }

    /// [`ChaosClusters::node`], failing with its output instead of panicking.
    fn try_node(&self, cluster: &str, node: u32, action: &str) -> Result<(), String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-local");
        let output = Command::new(script)
            .arg("node")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args([cluster, &node.to_string(), action])
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("running kafka-local: {error}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "kafka-local node {cluster} {node} {action} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// Kills `cluster`'s node `node` (SIGKILL); the returned guard starts it again, at
    /// [`NodeDown::start`] or, if the test fails first, when dropped, so that the next test finds
    /// the whole pair.
    pub fn kill(&self, cluster: &'static str, node: u32) -> NodeDown<'_> {
        self.node(cluster, node, "kill");
        NodeDown {
            clusters: self,
            cluster,
            node,
            since: Instant::now(),
            down: true,
        }
    }
}

impl ChaosClusters {
    /// Pauses (SIGSTOP) `cluster`'s nodes `nodes`: hung brokers whose connections stay open.
    /// The returned guard resumes them (SIGCONT), at [`NodesPaused::resume`] or when dropped.
    pub fn pause(&self, cluster: &'static str, nodes: &[u32]) -> NodesPaused<'_> {
        let mut paused = NodesPaused {
            clusters: self,
            cluster,
            nodes: Vec::new(),
        };
        for node in nodes {
            self.node(cluster, *node, "pause");
            paused.nodes.push(*node);
        }
        paused
    }
}

/// Brokers of the chaos pair that are paused (see [`ChaosClusters::pause`]).
pub struct NodesPaused<'a> {
    clusters: &'a ChaosClusters,
    cluster: &'static str,
    nodes: Vec<u32>,
}

impl NodesPaused<'_> {
    /// Resumes every paused broker.
    pub fn resume(mut self) {
        for node in std::mem::take(&mut self.nodes) {
            self.clusters.node(self.cluster, node, "resume");
        }
    }
}

impl Drop for NodesPaused<'_> {
    /// Runs while a failed test unwinds: a second panic would abort the whole test binary.
    fn drop(&mut self) {
        for node in std::mem::take(&mut self.nodes) {
            if let Err(failure) = self.clusters.try_node(self.cluster, node, "resume") {
                eprintln!("resuming the broker after a failed test: {failure}");
            }
        }
    }
}

/// A broker of the chaos pair that is down (see [`ChaosClusters::kill`]).
pub struct NodeDown<'a> {
    clusters: &'a ChaosClusters,
    cluster: &'static str,
    node: u32,
    /// When it was killed.
    pub since: Instant,
    down: bool,
}

impl NodeDown<'_> {
    /// Starts the broker again and waits until it is registered; returns how long it was down.
    pub fn start(mut self) -> Duration {
        self.clusters.node(self.cluster, self.node, "start");
        self.down = false;
        self.since.elapsed()
    }
}

impl Drop for NodeDown<'_> {
    /// Runs while a failed test unwinds: a second panic would abort the whole test binary.
    fn drop(&mut self) {
        if self.down
            && let Err(failure) = self.clusters.try_node(self.cluster, self.node, "start")
        {
            eprintln!("starting the broker again after a failed test: {failure}");
        }
    }
}

/// The chaos pair, read once from the env file of the state dir that `scripts/kafka-local start
/// --target-brokers 3` wrote (`$FERRY_KAFKA_CHAOS_STATE`, default `/tmp/ferry-kafka-chaos`);
/// `scripts/test-all` starts it beside the other pairs. Only the file is read: its variables
/// have the same names as the plaintext pair's, which the environment may hold.
pub fn chaos_clusters() -> &'static ChaosClusters {
    static CLUSTERS: OnceLock<ChaosClusters> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        const START: &str = " --target-brokers 3 --port-offset 3000";
        let get = file_lookup("FERRY_KAFKA_CHAOS_STATE", "/tmp/ferry-kafka-chaos", START);
        let brokers = get("FERRY_TEST_TARGET_BROKERS");
        let state_dir = PathBuf::from(get("FERRY_KAFKA_STATE_DIR"));
        assert_eq!(
            brokers,
            "3",
            "the chaos pair in {} has a {brokers}-broker target; start it with `scripts/kafka-local \
             start --state-dir {}{START}`",
            state_dir.display(),
            state_dir.display()
        );
        ChaosClusters {
            a: get("FERRY_TEST_CLUSTER_A"),
            b: get("FERRY_TEST_CLUSTER_B"),
            state_dir,
        }
    })
}

/// The variables of the env file in the state dir `$state_var` (default `default_state`), and
/// that dir.
fn env_file(state_var: &str, default_state: &str) -> (String, HashMap<String, String>) {
    let state = std::env::var(state_var).unwrap_or_else(|_| default_state.into());
    let file = std::fs::read_to_string(Path::new(&state).join("env"))
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
    (state, file)
}

/// A lookup of test settings in the env file only (see [`env_file`]); panics with instructions
/// when a key is not there.
fn file_lookup(
    state_var: &'static str,
    default_state: &str,
    start_options: &'static str,
) -> impl Fn(&str) -> String {
    let (state, file) = env_file(state_var, default_state);
    move |key: &str| {
        file.get(key).cloned().unwrap_or_else(|| {
            panic!(
                "{state}/env does not name {key}: start the clusters with \
                 `scripts/kafka-local start --state-dir {state}{start_options}` (or run \
                 everything with `scripts/test-all`)"
            )
        })
    }
}

/// A lookup of test settings: the environment first, then the env file that
/// `scripts/kafka-local start<start_options>` wrote into the state dir `$state_var`
/// (default `default_state`). Panics with instructions when a key is in neither.
fn env_lookup(
    state_var: &'static str,
    default_state: &str,
    start_options: &'static str,
) -> impl Fn(&str) -> String {
    let (state, file) = env_file(state_var, default_state);
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
