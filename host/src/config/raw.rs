//! The configuration file as written: serde structs, one per TOML table.
//!
//! This module owns the file format. The `///` docs of these structs are the reference manual
//! of `ferry.toml`; every default is a named function below that says where its value comes
//! from. Nothing here is checked beyond TOML types: `validate` turns these structs into the
//! typed [`Config`](super::Config) and reports every problem at once.
//!
//! Unknown keys are not rejected by serde (no `deny_unknown_fields`, which stops at the first
//! one); `serde_ignored` collects all of them instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::Sensitive;

/// The whole file.
#[derive(Deserialize)]
pub struct RawConfig {
    /// The Kafka clusters, by name: `[clusters.<name>]`. The name is used in messages, in
    /// default group ids and, by the default replication policy, as the prefix of replicated
    /// topics (`clusterA.orders`), so it may hold only ASCII letters, digits, `.`, `_` and `-`.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterConfig>,
    /// The replication flows, one `[[flows]]` table each. At least one is required.
    #[serde(default)]
    pub flows: Vec<FlowConfig>,
}

/// One Kafka cluster: `[clusters.<name>]`.
#[derive(Deserialize)]
pub struct ClusterConfig {
    /// Required. The broker list, `host:port[,host:port...]` (librdkafka `bootstrap.servers`).
    pub bootstrap_servers: String,
    /// `PLAINTEXT` (default), `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`, in any case
    /// (librdkafka `security.protocol`).
    #[serde(default = "default_security_protocol")]
    pub security_protocol: String,
    /// SASL credentials. Required when `security_protocol` is `SASL_PLAINTEXT` or `SASL_SSL`,
    /// and not allowed otherwise.
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
    /// TLS files. Allowed only when `security_protocol` is `SSL` or `SASL_SSL`.
    #[serde(default)]
    pub ssl: Option<SslConfig>,
    /// Any other librdkafka client property (string, number or boolean values), applied after
    /// the typed settings above to every client Ferry opens on this cluster. Properties that
    /// Ferry owns (`bootstrap.servers`, `security.protocol`, `group.id`, `enable.auto.commit`,
    /// `enable.auto.offset.store`, `enable.idempotence`, `transactional.id`, `acks`,
    /// `partitioner`, `enable.partition.eof`, `partition.assignment.strategy`) and properties
    /// that the `sasl`/`ssl` tables already set are rejected, and librdkafka checks every other
    /// one when the file is read.
    #[serde(default)]
    pub librdkafka: BTreeMap<String, ScalarString>,
    /// librdkafka properties for this cluster's **consumers** only (`[clusters.<name>.consumer]`),
    /// applied after `librdkafka`, so a key set in both takes this value. The consumers are every
    /// reader Ferry opens on the cluster: a task's source consumer, the positions, offset-syncs
    /// and checkpoints readers, the group-offset readers and the task-lease member. The same
    /// properties are refused as in `librdkafka`. MM2's `<alias>.consumer.*` keys land here.
    #[serde(default)]
    pub consumer: BTreeMap<String, ScalarString>,
    /// librdkafka properties for this cluster's **producers** only (`[clusters.<name>.producer]`),
    /// applied after `librdkafka`: a task's target producer and the offset-sync, heartbeat and
    /// checkpoint producers. The same properties are refused as in `librdkafka`. MM2's
    /// `<alias>.producer.*` keys land here.
    #[serde(default)]
    pub producer: BTreeMap<String, ScalarString>,
    /// librdkafka properties for this cluster's **admin clients** only
    /// (`[clusters.<name>.admin]`), applied after `librdkafka`: metadata, topic creation, topic
    /// configuration and ACL sync, group offsets. The same properties are refused as in
    /// `librdkafka`. MM2's `<alias>.admin.*` keys land here.
    #[serde(default)]
    pub admin: BTreeMap<String, ScalarString>,
}

/// SASL credentials: `sasl = { mechanism = "...", username = "...", password = "..." }`.
#[derive(Deserialize)]
pub struct SaslConfig {
    /// Required. `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (librdkafka `sasl.mechanism`).
    pub mechanism: String,
    /// Required. librdkafka `sasl.username`.
    pub username: String,
    /// Required. librdkafka `sasl.password`. Write `"${VARIABLE}"` to keep it out of the file;
    /// it is never printed.
    pub password: Sensitive<String>,
}

/// TLS files: `ssl = { ca_location = "...", ... }`. Relative paths are relative to the
/// directory of the configuration file. All keys are optional.
#[derive(Deserialize)]
pub struct SslConfig {
    /// CA certificate(s) to verify the brokers (librdkafka `ssl.ca.location`); default: the
    /// system trust store.
    #[serde(default)]
    pub ca_location: Option<String>,
    /// Client certificate, PEM (librdkafka `ssl.certificate.location`).
    #[serde(default)]
    pub certificate_location: Option<String>,
    /// Client private key, PEM (librdkafka `ssl.key.location`).
    #[serde(default)]
    pub key_location: Option<String>,
    /// Password of the client private key (librdkafka `ssl.key.password`); never printed.
    #[serde(default)]
    pub key_password: Option<Sensitive<String>>,
}

/// One replication flow, from a source cluster to a target cluster: `[[flows]]`.
#[derive(Deserialize)]
pub struct FlowConfig {
    /// Required. The cluster to read from; must name a `[clusters.<name>]` table.
    pub source: String,
    /// Required. The cluster to write to; must name a `[clusters.<name>]` table other than
    /// `source`.
    pub target: String,
    /// Whether the flow replicates (default `true`). A disabled flow is validated but not run.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Topics to replicate: either an MM2-style string (`"a.*, b"`: a comma-separated list)
    /// or an array of regexes. Every regex must match the **whole** topic name (as MM2's
    /// `topics`); an empty list matches nothing. Default `[".*"]`.
    #[serde(default = "default_topics")]
    pub topics: TopicList,
    /// Topics never to replicate, even if `topics` matches them; same forms as `topics`.
    /// Default MM2's `topics.exclude`: `[".*[\\-\\.]internal", ".*\\.replica", "__.*"]`.
    /// Setting it replaces the default list, so keep those entries when adding to it.
    #[serde(default = "default_topics_exclude")]
    pub topics_exclude: TopicList,
    /// The replication policy, which names target topics: `{ uses = "...", with = {...} }`.
    /// Default `{ uses = "builtin:default-policy" }`.
    #[serde(default)]
    pub policy: PluginConfig,
    /// Record filters, run on every record in this order before the transforms:
    /// `filters = [{ uses = "drop_test.wasm", with = { header = "env" } }]`. Each is a
    /// WebAssembly component exporting `ferry:plugin/record-filter` (`wit/records.wit`) and gets
    /// its own `with` table at `init`. Default: none.
    #[serde(default)]
    pub filters: Vec<ChainPluginConfig>,
    /// Record transforms, run in this order after the filters, each on the previous one's
    /// output: `transforms = [{ uses = "mask.wasm", with = { field = "ssn" } }]`. Each exports
    /// `ferry:plugin/record-transform`. Default: none.
    #[serde(default)]
    pub transforms: Vec<ChainPluginConfig>,
    /// MM2's `TopicFilter` as a plugin: `topic_filter = { uses = "f.wasm", with = {...} }`,
    /// exporting `ferry:plugin/topic-filter`. It narrows what `topics` / `topics_exclude`
    /// select; answers are cached per topic. Default: none.
    #[serde(default)]
    pub topic_filter: Option<ChainPluginConfig>,
    /// MM2's `GroupFilter` as a plugin (`ferry:plugin/group-filter`): narrows what `groups` /
    /// `groups_exclude` select for checkpoints and group offset sync. Default: none.
    #[serde(default)]
    pub group_filter: Option<ChainPluginConfig>,
    /// MM2's `ConfigPropertyFilter` as a plugin (`ferry:plugin/config-property-filter`):
    /// narrows which topic configuration properties the config sync copies, after
    /// `config_properties_exclude`. Default: none.
    #[serde(default)]
    pub config_property_filter: Option<ChainPluginConfig>,
    /// What happens to a record a filter or transform fails on (a per-record error, or a trap,
    /// timeout or malformed answer narrowed down to that record): `"halt"` (default: the
    /// partition stops at that record, its position is kept, other partitions go on; an ERROR
    /// log and `ferry_partitions_halted` say so; a restart retries it), `"skip"` (the record is
    /// not replicated; counted and logged) or `"dead-letter"` (the original record, with
    /// `ferry.error.*` headers, goes to `dead_letter_topic` on the target).
    #[serde(default = "default_on_error")]
    pub on_error: String,
    /// The target topic of `on_error = "dead-letter"`; created when missing. Default
    /// `ferry-dlq.<source>.internal` (internal, so never mirrored back).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// Replication factor of topics Ferry creates on the target: `0` (default) is auto — as many
    /// replicas as the target has brokers, up to 3 —, `-1` the broker's
    /// `default.replication.factor`, otherwise 1 to 32767. A factor of 3 or more also sets
    /// `min.insync.replicas = 2` on the topics Ferry creates.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i64,
    /// Number of tasks, the units of ownership that the Ferry processes of this flow share
    /// (each task is owned by one process at a time), 1 to 1024. Default 8.
    #[serde(default = "default_tasks")]
    pub tasks: i64,
    /// How often new topics and partitions on the source are looked for, as a humantime
    /// duration (`"30s"`, `"5m"`). Default `"30s"`.
    #[serde(default = "default_refresh_topics_interval")]
    pub refresh_topics_interval: String,
    /// How often the positions reached on the source are stored on the target, as a humantime
    /// duration. After a restart, records since the last store are replicated again.
    /// Default `"1s"`.
    #[serde(default = "default_commit_interval")]
    pub commit_interval: String,
    /// Whether the flow copies exactly once: each task writes its records and its positions in
    /// one target transaction (`docs/operations.md`, "Exactly-once"). Default `false`
    /// (at-least-once).
    #[serde(default)]
    pub exactly_once: bool,
    /// With `exactly_once`, how often a task commits its transaction (records become visible
    /// to `read_committed` readers then), as a humantime duration. Default `"100ms"`. A task
    /// behind its source commits by age only every 1 s (or this, if longer) until it caught up.
    #[serde(default = "default_transaction_interval")]
    pub transaction_interval: String,
    /// With `exactly_once`, the most records one transaction holds before it is committed
    /// early. 1 to 1000000, default 10000.
    #[serde(default = "default_transaction_records")]
    pub transaction_records: i64,
    /// Whether MM2 heartbeat topics (`heartbeats`, `<cluster>.heartbeats`) are replicated
    /// even when `topics`/`topics_exclude` would not select them. Default `true`.
    #[serde(default = "default_heartbeats_replication")]
    pub heartbeats_replication: bool,
    /// The Kafka consumer group, on the **target** cluster, through which the Ferry processes
    /// running this flow share its tasks. Default `"ferry.<source>-<target>"`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// How many records a task may have produced to the target without an acknowledgement;
    /// reading from the source pauses at this limit. 1 to 1000000, default 2000.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: i64,
    /// The target topic holding the flow's source positions, in MM2's Connect offsets format.
    /// Default `mm2-offsets.<source>.internal`, where MM2's dedicated mode keeps them, so that
    /// Ferry takes over from MM2 (and MM2 from Ferry) without re-copying.
    #[serde(default)]
    pub positions_topic: Option<String>,
    /// Whether heartbeats are written to the target's heartbeats topic (MM2's
    /// `emit.heartbeats.enabled`). Default `true`.
    #[serde(default = "default_true")]
    pub emit_heartbeats: bool,
    /// How often a heartbeat is written (MM2's `emit.heartbeats.interval.seconds`). Default
    /// `"1s"`, as MM2.
    #[serde(default = "default_heartbeats_interval")]
    pub heartbeats_interval: String,
    /// Whether offset syncs are written (MM2's `emit.offset-syncs.enabled`). Checkpoints and
    /// group offset sync need them. Default `true`.
    #[serde(default = "default_true")]
    pub emit_offset_syncs: bool,
    /// A new offset sync is written at the latest when the last one is this many records
    /// behind (MM2's `offset.lag.max`). Default 100, as MM2.
    #[serde(default = "default_offset_lag_max")]
    pub offset_lag_max: i64,
    /// Where the offset-syncs topic lives: `"source"` (default, as MM2) or `"target"` (MM2's
    /// `offset-syncs.topic.location`).
    #[serde(default = "default_offset_syncs_location")]
    pub offset_syncs_location: String,
    /// Whether checkpoints (translated consumer group offsets) are written to the target
    /// (MM2's `emit.checkpoints.enabled`). Default `true`.
    #[serde(default = "default_true")]
    pub emit_checkpoints: bool,
    /// How often group offsets are translated and checkpointed. Default `"5s"`.
    #[serde(default = "default_checkpoints_interval")]
    pub checkpoints_interval: String,
    /// Consumer groups whose offsets are checkpointed; same forms as `topics`. Default `[".*"]`.
    #[serde(default = "default_topics")]
    pub groups: TopicList,
    /// Consumer groups never checkpointed; wins over `groups`. Default MM2's `groups.exclude`:
    /// `["console-consumer-.*", "connect-.*", "__.*"]`.
    #[serde(default = "default_groups_exclude")]
    pub groups_exclude: TopicList,
    /// Whether translated offsets are also committed to the groups on the target, when those
    /// groups have no active members there (MM2's `sync.group.offsets.enabled`). Default
    /// `false`, as MM2.
    #[serde(default)]
    pub sync_group_offsets: bool,
    /// How often translated offsets are committed to idle target groups. Default `"5s"`.
    #[serde(default = "default_checkpoints_interval")]
    pub sync_group_offsets_interval: String,
    /// Whether topic configurations are copied to the remote topics (MM2's
    /// `sync.topic.configs.enabled`). Default `true`.
    #[serde(default = "default_true")]
    pub sync_topic_configs: bool,
    /// How often topic configurations are copied. Default `"1m"`.
    #[serde(default = "default_sync_interval")]
    pub sync_topic_configs_interval: String,
    /// Topic configuration properties never copied; regexes matching the whole name. Default
    /// MM2's `config.properties.exclude`.
    #[serde(default = "default_config_properties_exclude")]
    pub config_properties_exclude: TopicList,
    /// Whether source properties that are at their default are copied too (MM2's
    /// `use.defaults.from = source`). Default `false` (MM2's `target`).
    #[serde(default)]
    pub use_source_defaults: bool,
    /// Whether literal topic ACLs are copied to the remote topics (MM2's
    /// `sync.topic.acls.enabled`). Default `true`.
    #[serde(default = "default_true")]
    pub sync_topic_acls: bool,
    /// How often topic ACLs are copied. Default `"1m"`.
    #[serde(default = "default_sync_interval")]
    pub sync_topic_acls_interval: String,
    /// Replication factor of the heartbeats, checkpoints and offset-syncs topics Ferry
    /// creates; as `replication_factor` (default 0, auto).
    #[serde(default = "default_replication_factor")]
    pub internal_replication_factor: i64,
}

/// A plugin reference: `{ uses = "...", with = { key = "value" } }`.
#[derive(Deserialize)]
pub struct PluginConfig {
    /// `builtin:default-policy`, `builtin:identity-policy`, or the path of a `.wasm` component
    /// (relative paths are relative to the configuration file's directory); the file must exist.
    /// Default `builtin:default-policy`.
    #[serde(default = "default_policy_uses")]
    pub uses: String,
    /// Settings passed to the plugin, in file order, as strings (numbers and booleans are
    /// converted). The built-in policies read `replication.policy.separator` (default `.`).
    #[serde(default)]
    pub with: BTreeMap<String, ScalarString>,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            uses: default_policy_uses(),
            with: BTreeMap::new(),
        }
    }
}

/// A filter or transform of a flow's chain: `{ uses = "...", with = { key = "value" } }`.
#[derive(Deserialize)]
pub struct ChainPluginConfig {
    /// Required. The path of a `.wasm` component (relative paths are relative to the
    /// configuration file's directory); the file must exist.
    pub uses: String,
    /// Settings passed to the plugin's `init`, in file order, as strings.
    #[serde(default)]
    pub with: BTreeMap<String, ScalarString>,
}

/// A topic list: an MM2-style comma-separated string or an array of regexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicList {
    /// `topics = "a.*, b"`: split on commas, entries trimmed, empty entries dropped.
    Mm2(String),
    /// `topics = ["a.*", "b"]`: one regex per element.
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for TopicList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopicListVisitor;
        impl<'de> Visitor<'de> for TopicListVisitor {
            type Value = TopicList;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a comma-separated string or an array of regexes")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<TopicList, E> {
                Ok(TopicList::Mm2(value.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopicList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(TopicList::List(items))
            }
        }
        deserializer.deserialize_any(TopicListVisitor)
    }
}

/// A string, integer, float or boolean value, kept as text (`52428800` becomes `"52428800"`).
#[derive(Clone, PartialEq, Eq)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarString;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(value.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(value.to_string()))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(value.to_string()))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(value.to_string()))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(value.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

// Defaults. Each says where its value comes from and, where Ferry differs from MirrorMaker 2
// (MM2 3.8), why.

/// PLAINTEXT: the default of librdkafka's and MM2's `security.protocol`.
fn default_security_protocol() -> String {
    "PLAINTEXT".to_owned()
}

/// true. MM2's connector `enabled` defaults to true too, but its driver injects `false` for
/// every flow not named `A->B.enabled = true`; in Ferry, writing a `[[flows]]` table is the
/// opt-in, so a listed flow runs unless disabled.
fn default_enabled() -> bool {
    true
}

/// `.*`: MM2's `topics` default (everything, minus `topics_exclude`).
fn default_topics() -> TopicList {
    TopicList::List(vec![".*".to_owned()])
}

/// MM2's `topics.exclude` default, `.*[\-\.]internal, .*\.replica, __.*`: Kafka internal
/// topics (`__consumer_offsets`), Connect/MM2 internal topics (`mm2-offsets.A.internal`) and
/// `*.replica` topics.
fn default_topics_exclude() -> TopicList {
    TopicList::List(vec![
        r".*[\-\.]internal".to_owned(),
        r".*\.replica".to_owned(),
        "__.*".to_owned(),
    ])
}

/// `builtin:default-policy`: MM2's `replication.policy.class` default is
/// `DefaultReplicationPolicy` (target topic `<source>.<topic>`).
/// `halt`: a record a plugin cannot handle stops its partition rather than being lost.
fn default_on_error() -> String {
    "halt".to_owned()
}

fn default_policy_uses() -> String {
    "builtin:default-policy".to_owned()
}

/// 0, auto: as many replicas as the target has brokers, up to 3 (with `min.insync.replicas = 2`
/// at 3). MM2's `replication.factor` defaults to 2, which fails topic creation on a one-broker
/// cluster (development, tests) and loses acknowledged records with one broker down; the
/// broker's `default.replication.factor` (-1) is 1 unless its operators changed it.
fn default_replication_factor() -> i64 {
    0
}

/// Eight tasks. MM2's `tasks.max` defaults to 1, so one MM2 node does all the work of a flow
/// until the operator raises it; Ferry's tasks are cheap (no Connect worker per task), and 8
/// lets up to 8 Ferry processes share a flow without reconfiguration.
fn default_tasks() -> i64 {
    8
}

/// 30 s. MM2's `refresh.topics.interval.seconds` is 600, so a new topic waits up to ten minutes
/// before it is mirrored; listing topics every 30 s is cheap for the source cluster.
fn default_refresh_topics_interval() -> String {
    "30s".to_owned()
}

/// 1 s. MM2 stores source offsets every `offset.flush.interval.ms` = 60 s, so a restart
/// replicates up to a minute of records again; Ferry stores only positions the target already
/// acknowledged, and once a second bounds duplicates after a restart to about a second.
fn default_commit_interval() -> String {
    "1s".to_owned()
}

/// 100 ms: records become visible to `read_committed` readers at each commit, so this is the
/// latency exactly-once adds; each commit costs a round trip to the transaction coordinator and
/// one marker per partition written (`docs/performance.md`, "Exactly-once").
fn default_transaction_interval() -> String {
    "100ms".to_owned()
}

/// 10000 records: a task catching up on the development VM (14 000 to 19 000 records of 1 KiB
/// per second) fills it in 0.55 to 0.75 s, within the 1 s a behind task's transaction may last; a
/// caught-up task commits on `transaction_interval` long before it (docs/performance.md 6g).
fn default_transaction_records() -> i64 {
    10_000
}

/// true: MM2 3.8 replicates heartbeat topics whatever the topic filter says (MM2 4.0 added
/// `heartbeats.replication.enabled`, default true, to turn that off; `false` here matches it).
fn default_heartbeats_replication() -> bool {
    true
}

/// 2000 records. MM2's data-path producer allows `max.in.flight.requests.per.connection` = 1
/// *request*, bounded in bytes by `buffer.memory` (32 MiB); Ferry bounds records per task
/// instead, which caps memory and the redo after a crash while keeping the pipe full: 2000
/// copied as fast as 10000 and took 8 tasks' peak RSS ~90 MiB lower (docs/performance.md 6g).
fn default_max_in_flight() -> i64 {
    2_000
}

fn default_true() -> bool {
    true
}

/// 1 s: MM2's `emit.heartbeats.interval.seconds`.
fn default_heartbeats_interval() -> String {
    "1s".to_owned()
}

/// 100: MM2's `offset.lag.max`.
fn default_offset_lag_max() -> i64 {
    100
}

/// `source`: MM2's `offset-syncs.topic.location`.
fn default_offset_syncs_location() -> String {
    "source".to_owned()
}

/// 5 s. MM2 checkpoints every `emit.checkpoints.interval.seconds` = 60 s and syncs group
/// offsets every 60 s after that, so a failover re-reads up to two minutes of records; listing
/// the groups' offsets every 5 s is cheap.
fn default_checkpoints_interval() -> String {
    "5s".to_owned()
}

/// MM2's `groups.exclude` default: console consumers, Connect's own groups, `__` groups.
fn default_groups_exclude() -> TopicList {
    TopicList::List(vec![
        "console-consumer-.*".to_owned(),
        "connect-.*".to_owned(),
        "__.*".to_owned(),
    ])
}

/// 1 min. MM2 syncs topic configurations and ACLs every 600 s.
fn default_sync_interval() -> String {
    "1m".to_owned()
}

/// MM2's `config.properties.exclude` default (`DefaultConfigPropertyFilter`): throttling,
/// timestamp handling, unclean election and `min.insync.replicas` stay the target's own.
fn default_config_properties_exclude() -> TopicList {
    TopicList::List(
        [
            r"follower\.replication\.throttled\.replicas",
            r"leader\.replication\.throttled\.replicas",
            r"message\.timestamp\.difference\.max\.ms",
            r"message\.timestamp\.type",
            r"unclean\.leader\.election\.enable",
            r"min\.insync\.replicas",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
}

/// The default group id of a flow: `ferry.<source>-<target>`. MM2's Connect group for a flow
/// is `<source>-mm2`; Ferry's prefix keeps its groups apart from MM2's during a migration.
pub(crate) fn default_group_id(source: &str, target: &str) -> String {
    format!("ferry.{source}-{target}")
}

/// The field names of the struct that `T` deserializes, as its derive declares them, so that
/// an unknown-key message can list the expected keys without a second list to maintain.
pub(crate) fn field_names<T: de::DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The deserializer always fails; `fields` is what it records before failing.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that records the field list of the struct asked for, then fails.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

/// The error of [`FieldNames`].
#[derive(Debug)]
struct FieldNamesError;

impl fmt::Display for FieldNamesError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("field names recorded")
    }
}

impl std::error::Error for FieldNamesError {}

impl de::Error for FieldNamesError {
    fn custom<T: fmt::Display>(_message: T) -> Self {
        Self
    }
}

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = FieldNamesError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(FieldNamesError)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(FieldNamesError)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
