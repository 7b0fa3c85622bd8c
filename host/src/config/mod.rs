//! The configuration file (`ferry run --config ferry.toml`).
//!
//! This module owns the file format, its validation and the librdkafka client settings derived
//! from it. Reading goes in four steps. Problems are collected, not returned one by one: every
//! unknown key, every value of the wrong type, every missing key, every unset variable and
//! every invalid setting is reported in one [`ConfigErrors`], each with its key path and line.
//! Only a TOML syntax error stops the checks early. [`check`] also returns the clusters and
//! flows that are valid, so that `ferry validate` checks their plugins in the same run.
//!
//! 1. TOML is parsed into a document that remembers where each key is written
//!    (`location`).
//! 2. `${VAR}` references in string values are expanded (`interpolate`).
//! 3. serde fills the [`raw`] structs, whose docs are the reference manual of the format;
//!    `serde_ignored` collects every unknown key. A value of the wrong type is reported and
//!    removed (a missing required key reported and filled in), then serde runs again, so that
//!    one bad value hides no other problem.
//! 4. `validate` checks meaning (cluster names, regexes, durations, ranges, plugin files,
//!    librdkafka keys that Ferry owns) and builds the typed [`Config`].
//!
//! Runtime-only knobs (log level, metrics address, shutdown grace) are CLI flags, not keys of
//! this file. This module opens no Kafka connection and loads no plugin: it only checks that a
//! plugin file exists.
//!
//! ```toml
//! [clusters.clusterA]
//! bootstrap_servers = "127.0.0.1:19092"
//! security_protocol = "SASL_PLAINTEXT"
//! sasl = { mechanism = "PLAIN", username = "ferry", password = "${CLUSTER_A_PASSWORD}" }
//!
//! [clusters.clusterB]
//! bootstrap_servers = "127.0.0.1:29092"
//!
//! [[flows]]
//! source = "clusterA"
//! target = "clusterB"
//! topics = "prod.*.global$"
//! ```

mod interpolate;
mod librdkafka;
mod location;
pub mod mm2;
pub mod raw;
mod topics;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use topics::TopicPatterns;

/// Reads and validates the configuration file at `path`. Relative paths inside the file (plugin
/// files, TLS files) are resolved against the file's directory.
///
/// # Errors
///
/// Returns every problem found: an unreadable file, TOML syntax, unknown keys, wrong types,
/// unset environment variables and invalid settings.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    check(path).into_result()
}

/// Reads and validates the configuration file at `path`, as [`load`] does, and also returns
/// the clusters and flows that are valid when others are not, so that a caller can check
/// their plugins in the same run.
pub fn check(path: &Path) -> Checked {
    match std::fs::read_to_string(path) {
        Ok(text) => check_text(&text, path),
        Err(error) => Checked::unreadable(
            path,
            &format!("cannot read the configuration file: {error}"),
        ),
    }
}

/// Validates configuration `text`, which was read from `origin`. `origin` names the file in
/// messages, and relative paths inside the file are resolved against its directory. `${VAR}`
/// references are expanded from the process environment.
///
/// # Errors
///
/// Returns every problem found, as [`load`] does.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    check_text(text, origin).into_result()
}

/// Validates configuration `text` read from `origin`, as [`parse`] does, returning the valid
/// part beside the problems, as [`check`] does.
pub fn check_text(text: &str, origin: &Path) -> Checked {
    validate::check_with_env(text, origin, &interpolate::process_env)
}

/// What validating a configuration found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The clusters and flows without a problem: all of them when `errors` is empty. A flow
    /// here may name a cluster that is not (one with a problem of its own).
    pub config: Config,
    /// Every problem found; none when the file is valid.
    pub errors: ConfigErrors,
}

impl Checked {
    /// A file that could not be read: nothing valid, one problem.
    pub(crate) fn unreadable(path: &Path, message: &str) -> Checked {
        Checked {
            config: Config {
                path: path.to_path_buf(),
                clusters: BTreeMap::new(),
                flows: Vec::new(),
            },
            errors: ConfigErrors {
                file: path.to_path_buf(),
                errors: vec![ConfigError {
                    line: None,
                    key: String::new(),
                    message: message.to_owned(),
                }],
            },
        }
    }

    /// The configuration if the file is valid, else every problem.
    ///
    /// # Errors
    ///
    /// Returns the problems when there is at least one.
    pub fn into_result(self) -> Result<Config, ConfigErrors> {
        if self.errors.errors.is_empty() {
            Ok(self.config)
        } else {
            Err(self.errors)
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Every cluster, by name.
    pub clusters: BTreeMap<ClusterName, Cluster>,
    /// Every flow, in file order (disabled ones included).
    pub flows: Vec<Flow>,
}

/// The name of a cluster: the key of its `[clusters.<name>]` table. It holds only ASCII
/// letters, digits, `.`, `_` and `-`, since it becomes part of topic names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);

impl ClusterName {
    /// Checks and wraps a cluster name.
    ///
    /// # Errors
    ///
    /// Returns why the name is not valid.
    pub fn new(name: impl Into<String>) -> Result<Self, String> {
        let name = name.into();
        if name.is_empty() {
            return Err("a cluster name must not be empty".to_owned());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "cluster name `{name}` may contain only ASCII letters, digits, `.`, `_` and `-` (it becomes part of topic names)"
            ));
        }
        Ok(Self(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A Kafka cluster and how to connect to it.
#[derive(Clone)]
pub struct Cluster {
    /// Its name.
    pub name: ClusterName,
    /// librdkafka `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// librdkafka `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// PLAIN or SCRAM credentials; present exactly when `security_protocol` is a SASL one,
    /// except for OAUTHBEARER (read from an MM2 file only), whose librdkafka settings are in
    /// `librdkafka`.
    pub sasl: Option<Sasl>,
    /// TLS files; only present when `security_protocol` uses TLS.
    pub ssl: Option<Ssl>,
    /// Further librdkafka properties for every client on this cluster, applied after the typed
    /// settings above. None of them is owned by Ferry or set by the typed fields above.
    pub librdkafka: BTreeMap<String, String>,
    /// librdkafka properties for this cluster's consumers only, applied after `librdkafka`.
    pub consumer: BTreeMap<String, String>,
    /// librdkafka properties for this cluster's producers only, applied after `librdkafka`.
    pub producer: BTreeMap<String, String>,
    /// librdkafka properties for this cluster's admin clients only, applied after `librdkafka`.
    pub admin: BTreeMap<String, String>,
}

/// What a Ferry client does, which decides the per-role librdkafka properties it gets.
///
/// * [`Consumer`](Self::Consumer): every reader: a task's source consumer, the positions,
///   offset-syncs and checkpoints readers, the group-offset readers and the task-lease member.
/// * [`Producer`](Self::Producer): every writer: a task's target producer and the offset-sync,
///   heartbeat and checkpoint producers.
/// * [`Admin`](Self::Admin): the admin clients (metadata, topics, configs, ACLs, group offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientRole {
    /// A reader.
    Consumer,
    /// A writer.
    Producer,
    /// An admin client.
    Admin,
}

impl ClientRole {
    /// Every role, in the order of the configuration tables.
    pub const ALL: [ClientRole; 3] = [Self::Consumer, Self::Producer, Self::Admin];

    /// The name of the role's table: `consumer`, `producer` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consumer => "consumer",
            Self::Producer => "producer",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for ClientRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl Cluster {
    /// The librdkafka properties of this cluster for `role` only.
    pub fn role_properties(&self, role: ClientRole) -> &BTreeMap<String, String> {
        match role {
            ClientRole::Consumer => &self.consumer,
            ClientRole::Producer => &self.producer,
            ClientRole::Admin => &self.admin,
        }
    }

    /// The librdkafka settings of a client of this cluster in `role`: `bootstrap.servers`,
    /// `security.protocol`, the SASL and TLS settings, the `librdkafka` passthrough keys, then
    /// the keys of the role's own table. Callers (the role builders of `kafka`) add
    /// role-specific keys (`group.id`, `enable.auto.commit`, ...) on top.
    pub fn client_config(&self, role: ClientRole) -> rdkafka::ClientConfig {
        let mut client_config = rdkafka::ClientConfig::new();
        client_config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("security.protocol", self.security_protocol.as_librdkafka());
        if let Some(sasl) = &self.sasl {
            client_config
                .set("sasl.mechanism", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", sasl.password.expose());
        }
        if let Some(ssl) = &self.ssl {
            let files = [
                ("ssl.ca.location", &ssl.ca_location),
                ("ssl.certificate.location", &ssl.certificate_location),
                ("ssl.key.location", &ssl.key_location),
            ];
            for (key, location) in files {
                if let Some(location) = location {
                    client_config.set(key, location.to_string_lossy());
                }
            }
            if let Some(key_password) = &ssl.key_password {
                client_config.set("ssl.key.password", key_password.expose());
            }
        }
        for (key, value) in self.librdkafka.iter().chain(self.role_properties(role)) {
            client_config.set(key, value);
        }
        client_config
    }
}

impl fmt::Debug for Cluster {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |properties: &'_ BTreeMap<String, String>| -> BTreeMap<String, String> {
            properties
                .iter()
                .map(|(key, value)| {
                    let shown = if is_secret_librdkafka_key(key) {
                        "***"
                    } else {
                        value.as_str()
                    };
                    (key.clone(), shown.to_owned())
                })
                .collect()
        };
        formatter
            .debug_struct("Cluster")
            .field("name", &self.name)
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl)
            .field("ssl", &self.ssl)
            .field("librdkafka", &shown(&self.librdkafka))
            .field("consumer", &shown(&self.consumer))
            .field("producer", &shown(&self.producer))
            .field("admin", &shown(&self.admin))
            .finish()
    }
}

/// Whether a librdkafka property may hold a secret, so that its value is never printed.
pub(crate) fn is_secret_librdkafka_key(key: &str) -> bool {
    const SECRET_PARTS: [&str; 5] = [
        "password",
        "secret",
        "jaas",
        "oauthbearer.config",
        "key.pem",
    ];
    let key = key.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|part| key.contains(part))
}

/// librdkafka `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The value librdkafka expects.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether SASL credentials are needed.
    pub fn is_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        })
    }
}

/// SASL credentials.
#[derive(Debug, Clone)]
pub struct Sasl {
    /// librdkafka `sasl.mechanism`.
    pub mechanism: SaslMechanism,
    /// librdkafka `sasl.username`.
    pub username: String,
    /// librdkafka `sasl.password`.
    pub password: Sensitive<String>,
}

/// librdkafka `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// `PLAIN`.
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The value librdkafka expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Self::Plain),
            "SCRAM-SHA-256" => Some(Self::ScramSha256),
            "SCRAM-SHA-512" => Some(Self::ScramSha512),
            _ => None,
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// TLS files, resolved against the configuration file's directory.
#[derive(Debug, Clone)]
pub struct Ssl {
    /// librdkafka `ssl.ca.location`.
    pub ca_location: Option<PathBuf>,
    /// librdkafka `ssl.certificate.location`.
    pub certificate_location: Option<PathBuf>,
    /// librdkafka `ssl.key.location`.
    pub key_location: Option<PathBuf>,
    /// librdkafka `ssl.key.password`.
    pub key_password: Option<Sensitive<String>>,
}

/// One replication flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// `<source>-><target>`.
    pub id: FlowId,
    /// The cluster read from.
    pub source: ClusterName,
    /// The cluster written to; never equal to `source`.
    pub target: ClusterName,
    /// Whether the flow runs.
    pub enabled: bool,
    /// Topics selected for replication.
    pub topics: TopicPatterns,
    /// Topics never replicated; wins over `topics`.
    pub topics_exclude: TopicPatterns,
    /// The replication policy plugin.
    pub policy: PluginRef,
    /// Record filters, in order; run before the transforms.
    pub filters: Vec<PluginRef>,
    /// Record transforms, in order.
    pub transforms: Vec<PluginRef>,
    /// MM2's `TopicFilter` as a plugin; narrows `topics` / `topics_exclude`.
    pub topic_filter: Option<PluginRef>,
    /// MM2's `GroupFilter` as a plugin; narrows `groups` / `groups_exclude`.
    pub group_filter: Option<PluginRef>,
    /// MM2's `ConfigPropertyFilter` as a plugin; narrows `config_properties_exclude`.
    pub config_property_filter: Option<PluginRef>,
    /// What happens to a record a filter or transform fails on.
    pub on_error: ErrorPolicy,
    /// The target topic of [`ErrorPolicy::DeadLetter`].
    pub dead_letter_topic: String,
    /// Replication factor of created target topics; -1 means the broker default.
    pub replication_factor: i16,
    /// Units of ownership shared by the Ferry processes of this flow, 1 to 1024.
    pub tasks: u32,
    /// How often the source is searched for new topics and partitions.
    pub refresh_topics_interval: Duration,
    /// How often source positions are stored on the target (at-least-once).
    pub commit_interval: Duration,
    /// Whether each task writes its records and positions in one target transaction.
    pub exactly_once: bool,
    /// With `exactly_once`: how often a task commits its transaction.
    pub transaction_interval: Duration,
    /// With `exactly_once`: the most records one transaction holds.
    pub transaction_records: usize,
    /// Whether heartbeat topics are replicated whatever the topic filter says.
    pub heartbeats_replication: bool,
    /// The consumer group, on the target cluster, that shares the tasks.
    pub group_id: String,
    /// Produced but unacknowledged records allowed per task, 1 to 1 000 000.
    pub max_in_flight: usize,
    /// The target topic holding source positions (MM2's `offset.storage.topic`).
    pub positions_topic: String,
    /// Heartbeat interval; `None` when heartbeats are not emitted.
    pub emit_heartbeats: Option<Duration>,
    /// Whether offset syncs are emitted.
    pub emit_offset_syncs: bool,
    /// MM2's `offset.lag.max`: an offset sync is due when the last one is this many records
    /// behind.
    pub offset_lag_max: u64,
    /// Whether the offset-syncs topic is on the target cluster (else on the source).
    pub offset_syncs_on_target: bool,
    /// Checkpoint interval; `None` when checkpoints are not emitted.
    pub emit_checkpoints: Option<Duration>,
    /// Consumer groups checkpointed.
    pub groups: TopicPatterns,
    /// Consumer groups never checkpointed; wins over `groups`.
    pub groups_exclude: TopicPatterns,
    /// Interval of committing translated offsets to idle target groups; `None` when disabled.
    pub sync_group_offsets: Option<Duration>,
    /// Topic configuration sync interval; `None` when disabled.
    pub sync_topic_configs: Option<Duration>,
    /// Topic configuration properties never synced.
    pub config_properties_exclude: TopicPatterns,
    /// Whether source properties at their default value are synced too.
    pub use_source_defaults: bool,
    /// Topic ACL sync interval; `None` when disabled.
    pub sync_topic_acls: Option<Duration>,
    /// Replication factor of the heartbeats topic; -1 means the broker default.
    pub heartbeats_replication_factor: i16,
    /// Replication factor of the checkpoints topic; -1 means the broker default.
    pub checkpoints_replication_factor: i16,
    /// Replication factor of the offset-syncs topic; -1 means the broker default.
    pub offset_syncs_replication_factor: i16,
}

/// What happens to a record a filter or transform fails on (`on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Stop the record's partition at that record (its position is kept); other partitions go on.
    Halt,
    /// Do not replicate the record; count and log it.
    Skip,
    /// Write the original record, with error headers, to the dead-letter topic.
    DeadLetter,
}

impl ErrorPolicy {
    /// The configuration value: `halt`, `skip` or `dead-letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorPolicy::Halt => "halt",
            ErrorPolicy::Skip => "skip",
            ErrorPolicy::DeadLetter => "dead-letter",
        }
    }
}

/// The default dead-letter topic of a flow from `source`: `ferry-dlq.<source>.internal`.
pub fn default_dead_letter_topic(source: &str) -> String {
    format!("ferry-dlq.{source}.internal")
}

impl Flow {
    /// The `init` configuration of one of this flow's plugins: its `with` table, then
    /// `source.cluster.alias` and `target.cluster.alias`.
    pub fn plugin_init(&self, plugin: &PluginRef) -> Vec<(String, String)> {
        let mut init = plugin.with.clone();
        init.push(("source.cluster.alias".to_owned(), self.source.to_string()));
        init.push(("target.cluster.alias".to_owned(), self.target.to_string()));
        init
    }
}

/// The identity of a flow, `<source>-><target>` (MM2's `SourceAndTarget`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowId(String);

impl FlowId {
    /// The id of the flow from `source` to `target`.
    pub fn new(source: &ClusterName, target: &ClusterName) -> Self {
        Self(format!("{source}->{target}"))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FlowId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A plugin and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// Where the plugin comes from.
    pub uses: PluginSource,
    /// Its `with` settings, in file order.
    pub with: Vec<(String, String)>,
}

/// Where a plugin comes from: owned by the plugin host, which parses `uses`; a `File` the
/// configuration gives existed when it was read.
pub use crate::plugins::PluginSource;

/// A secret: its `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a secret.
    pub fn new(secret: T) -> Self {
        Self(secret)
    }

    /// The secret itself, for handing it to a client library. Never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file, as given to [`load`] or [`parse`].
    pub file: PathBuf,
    /// The problems, in line order; problems without a line come last.
    pub errors: Vec<ConfigError>,
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// The key path, e.g. `flows[0].topics` or `clusters.clusterA.sasl`; empty when the
    /// problem concerns the whole file.
    pub key: String,
    /// What is wrong, lowercase, without a trailing period. Never contains a secret.
    pub message: String,
}

impl fmt::Display for ConfigErrors {
    /// One line per problem: `<file>:<line>: <key>: <message>`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, error) in self.errors.iter().enumerate() {
            if position > 0 {
                formatter.write_str("\n")?;
            }
            write!(formatter, "{}", self.file.display())?;
            if let Some(line) = error.line {
                write!(formatter, ":{line}")?;
            }
            if !error.key.is_empty() {
                write!(formatter, ": {}", error.key)?;
            }
            write!(formatter, ": {}", error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
