//! From file text to a validated [`Config`].
//!
//! This module owns the pipeline (parse, interpolate, deserialize, check) and every semantic
//! rule of the file. It collects all problems before returning, each with the key path and the
//! line where the key is written (or, for a defaulted key, where its table starts). It never
//! puts a secret into a message.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::error::KafkaError;
use toml::Spanned;
use toml::de::DeTable;

use super::interpolate::{self, Env};
use super::location::{KeyPath, Segment, SpanIndex};
use super::raw::{
    self, ChainPluginConfig, ClusterConfig, FlowConfig, PluginConfig, RawConfig, TopicList,
};
use super::{
    BUILTIN_POLICIES, Cluster, ClusterName, Config, ConfigError, ConfigErrors, ErrorPolicy, Flow,
    FlowId, PluginRef, PluginSource, Sasl, SaslMechanism, SecurityProtocol, Ssl, TopicPatterns,
    is_secret_librdkafka_key,
};

/// The most tasks a flow may have. Each task is a unit of ownership with its own consumer
/// assignment and offset bookkeeping; more than this is a configuration mistake, not scale.
const MAX_TASKS: i64 = 1024;

/// The largest `max_in_flight`: a million unacknowledged records per task already means
/// gigabytes of memory for typical record sizes.
const MAX_IN_FLIGHT: i64 = 1_000_000;

/// [`super::parse`] with an injectable environment (tests cannot set process variables safely).
pub(crate) fn parse_with_env(
    text: &str,
    origin: &Path,
    env: Env<'_>,
) -> Result<Config, ConfigErrors> {
    let fail = |mut errors: Vec<ConfigError>| {
        errors.sort_by_key(|error| (error.line.is_none(), error.line));
        ConfigErrors {
            file: origin.to_path_buf(),
            errors,
        }
    };

    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let lines = SpanIndex::lines_only(text);
            return Err(fail(vec![ConfigError {
                line: error.span().map(|span| lines.line_of_offset(span.start)),
                key: String::new(),
                message: one_line(error.message()),
            }]));
        }
    };
    let index = SpanIndex::build(&document, text);
    let span = document.span();
    let mut table = document.into_inner();

    let mut errors = Vec::new();
    let mut interpolation_errors = Vec::new();
    interpolate::interpolate_table(&mut table, &KeyPath::root(), env, &mut interpolation_errors);
    let mut interpolated_paths = HashSet::new();
    for (path, error) in interpolation_errors {
        errors.push(ConfigError {
            line: index.line(&path),
            key: path.to_string(),
            message: error.to_string(),
        });
        interpolated_paths.insert(path);
    }

    let mut unknown_keys = Vec::new();
    let deserializer = toml::de::Deserializer::from(Spanned::new(span, table));
    let deserialized: Result<RawConfig, toml::de::Error> =
        serde_ignored::deserialize(deserializer, |path| {
            unknown_keys.push(KeyPath::from_ignored(&path));
        });
    for path in unknown_keys {
        errors.push(ConfigError {
            line: index.line(&path),
            key: path.to_string(),
            message: unknown_key_message(&path),
        });
    }
    let raw = match deserialized {
        Ok(raw) => raw,
        Err(error) => {
            let path = error
                .span()
                .map(|span| index.path_at(&span))
                .unwrap_or_default();
            let message = if is_secret_path(&path) {
                "has the wrong type (the value is not shown because it is a secret)".to_owned()
            } else {
                one_line(error.message())
            };
            errors.push(ConfigError {
                line: error.span().map(|span| index.line_of_offset(span.start)),
                key: path.to_string(),
                message,
            });
            return Err(fail(errors));
        }
    };

    let base_dir = origin
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .to_path_buf();
    let mut validator = Validator {
        index: &index,
        base_dir,
        suppressed: interpolated_paths,
        errors,
    };
    let config = validator.config(raw, origin);
    match config {
        Some(config) if validator.errors.is_empty() => Ok(config),
        _ => Err(fail(validator.errors)),
    }
}

/// Collects problems while building typed values.
struct Validator<'a> {
    index: &'a SpanIndex,
    /// The configuration file's directory, against which relative paths are resolved.
    base_dir: PathBuf,
    /// Keys whose environment interpolation failed; their values are not checked further.
    suppressed: HashSet<KeyPath>,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn report(&mut self, path: &KeyPath, message: impl Into<String>) {
        let related = |other: &KeyPath| {
            let (short, long) = if other.segments().len() <= path.segments().len() {
                (other.segments(), path.segments())
            } else {
                (path.segments(), other.segments())
            };
            long.starts_with(short)
        };
        if self.suppressed.iter().any(related) {
            return;
        }
        self.errors.push(ConfigError {
            line: self.index.line(path),
            key: path.to_string(),
            message: message.into(),
        });
    }

    fn config(&mut self, raw: RawConfig, origin: &Path) -> Option<Config> {
        let root = KeyPath::root();
        let cluster_names: Vec<String> = raw.clusters.keys().cloned().collect();
        let mut clusters = BTreeMap::new();
        let mut clusters_ok = true;
        for (name, cluster) in raw.clusters {
            match self.cluster(&root.key("clusters").key(&name), name, cluster) {
                Some(cluster) => {
                    clusters.insert(cluster.name.clone(), cluster);
                }
                None => clusters_ok = false,
            }
        }

        if raw.flows.is_empty() {
            self.report(
                &root.key("flows"),
                "at least one flow is required: add a `[[flows]]` table",
            );
        }
        let mut flows = Vec::new();
        let mut flows_ok = true;
        let mut first_flow_at: HashMap<(String, String), usize> = HashMap::new();
        let mut group_owner: HashMap<String, FlowId> = HashMap::new();
        for (position, flow) in raw.flows.into_iter().enumerate() {
            let path = root.key("flows").index(position);
            let pair = (flow.source.clone(), flow.target.clone());
            let duplicate_of = first_flow_at.get(&pair).copied();
            if let Some(first) = duplicate_of {
                let first_line = self
                    .index
                    .line(&root.key("flows").index(first))
                    .map_or_else(String::new, |line| {
                        format!(" (first defined at line {line})")
                    });
                self.report(
                    &path,
                    format!("duplicate flow {}->{}{first_line}", pair.0, pair.1),
                );
            } else {
                first_flow_at.insert(pair, position);
            }
            match self.flow(&path, flow, &cluster_names) {
                Some(flow) => {
                    if duplicate_of.is_none() {
                        if let Some(owner) = group_owner.get(&flow.group_id) {
                            self.report(
                                &path.key("group_id"),
                                format!(
                                    "group `{}` is already used by flow {owner}; each flow needs its own group",
                                    flow.group_id
                                ),
                            );
                        } else {
                            group_owner.insert(flow.group_id.clone(), flow.id.clone());
                        }
                    }
                    flows.push(flow);
                }
                None => flows_ok = false,
            }
        }

        (clusters_ok && flows_ok).then(|| Config {
            path: origin.to_path_buf(),
            clusters,
            flows,
        })
    }

    fn cluster(&mut self, path: &KeyPath, name: String, raw: ClusterConfig) -> Option<Cluster> {
        let name = ClusterName::new(name)
            .map_err(|message| self.report(path, message))
            .ok();

        let bootstrap_servers = raw.bootstrap_servers.trim().to_owned();
        if bootstrap_servers.is_empty() {
            self.report(&path.key("bootstrap_servers"), "must not be empty");
        }

        let security_protocol = SecurityProtocol::from_name(raw.security_protocol.trim());
        if security_protocol.is_none() {
            self.report(
                &path.key("security_protocol"),
                format!(
                    "unknown security protocol `{}` (expected one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
                    raw.security_protocol
                ),
            );
        }
        if let Some(protocol) = security_protocol {
            if protocol.is_sasl() && raw.sasl.is_none() {
                self.report(
                    &path.key("security_protocol"),
                    format!(
                        "{protocol} needs SASL credentials: add `sasl = {{ mechanism = \"...\", username = \"...\", password = \"...\" }}`"
                    ),
                );
            }
            if !protocol.is_sasl() && raw.sasl.is_some() {
                self.report(
                    &path.key("sasl"),
                    format!(
                        "`sasl` needs security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}"
                    ),
                );
            }
            if !protocol.is_tls() && raw.ssl.is_some() {
                self.report(
                    &path.key("ssl"),
                    format!("`ssl` needs security_protocol SSL or SASL_SSL, not {protocol}"),
                );
            }
        }

        let typed_keys = typed_librdkafka_keys(&raw);
        let sasl = raw.sasl.map(|sasl| {
            let sasl_path = path.key("sasl");
            let mechanism = SaslMechanism::from_name(sasl.mechanism.trim());
            if mechanism.is_none() {
                self.report(
                    &sasl_path.key("mechanism"),
                    format!(
                        "unknown SASL mechanism `{}` (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
                        sasl.mechanism
                    ),
                );
            }
            if sasl.username.is_empty() {
                self.report(&sasl_path.key("username"), "must not be empty");
            }
            if sasl.password.expose().is_empty() {
                self.report(&sasl_path.key("password"), "must not be empty");
            }
            mechanism.map(|mechanism| Sasl {
                mechanism,
                username: sasl.username,
                password: sasl.password,
            })
        });
        let ssl = raw.ssl.map(|ssl| {
            let ssl_path = path.key("ssl");
            let mut file = |key: &str, location: Option<String>| {
                let location = location?;
                if location.trim().is_empty() {
                    self.report(&ssl_path.key(key), "must not be empty");
                    return None;
                }
                Some(self.base_dir.join(location))
            };
            Ssl {
                ca_location: file("ca_location", ssl.ca_location),
                certificate_location: file("certificate_location", ssl.certificate_location),
                key_location: file("key_location", ssl.key_location),
                key_password: ssl.key_password,
            }
        });

        let mut librdkafka = BTreeMap::new();
        for (key, value) in raw.librdkafka {
            let key_path = path.key("librdkafka").key(&key);
            if let Some(reason) = host_owned_key(&key) {
                self.report(&key_path, format!("cannot be set here: {reason}"));
            } else if let Some(typed) = typed_keys.get(key.as_str()) {
                self.report(
                    &key_path,
                    format!("cannot be set here: it is already set by `{typed}` of this cluster"),
                );
            } else if let Err(message) = check_librdkafka_property(&key, &value.0) {
                self.report(&key_path, message);
            } else {
                librdkafka.insert(key, value.0);
            }
        }

        let sasl = match sasl {
            Some(None) => return None,
            Some(Some(sasl)) => Some(sasl),
            None => None,
        };
        Some(Cluster {
            name: name?,
            bootstrap_servers,
            security_protocol: security_protocol?,
            sasl,
            ssl,
            librdkafka,
        })
    }

    fn flow(&mut self, path: &KeyPath, raw: FlowConfig, cluster_names: &[String]) -> Option<Flow> {
        let mut cluster = |key: &str, name: &str| {
            if cluster_names.iter().any(|known| known == name) {
                ClusterName::new(name).ok()
            } else {
                let known = if cluster_names.is_empty() {
                    "no cluster is defined".to_owned()
                } else {
                    format!("defined clusters: {}", cluster_names.join(", "))
                };
                self.report(
                    &path.key(key),
                    format!("unknown cluster `{name}` ({known})"),
                );
                None
            }
        };
        let source = cluster("source", &raw.source);
        let target = cluster("target", &raw.target);
        if raw.source == raw.target {
            self.report(&path.key("target"), "must differ from `source`");
        }

        let topics = self.topics(&path.key("topics"), &raw.topics);
        let topics_exclude = self.topics(&path.key("topics_exclude"), &raw.topics_exclude);
        let policy = self.plugin(&path.key("policy"), raw.policy);
        let filters = self.chain(&path.key("filters"), raw.filters);
        let transforms = self.chain(&path.key("transforms"), raw.transforms);
        let topic_filter = self.optional_plugin(&path.key("topic_filter"), raw.topic_filter);
        let group_filter = self.optional_plugin(&path.key("group_filter"), raw.group_filter);
        let config_property_filter = self.optional_plugin(
            &path.key("config_property_filter"),
            raw.config_property_filter,
        );
        let on_error = match raw.on_error.as_str() {
            "halt" => Some(ErrorPolicy::Halt),
            "skip" => Some(ErrorPolicy::Skip),
            "dead-letter" => Some(ErrorPolicy::DeadLetter),
            other => {
                self.report(
                    &path.key("on_error"),
                    format!("expected `halt`, `skip` or `dead-letter`, not `{other}`"),
                );
                None
            }
        };
        let dead_letter_topic = match raw.dead_letter_topic {
            Some(topic) if !crate::plugins::is_legal_topic_name(&topic) => {
                self.report(
                    &path.key("dead_letter_topic"),
                    format!("`{topic}` is not a legal Kafka topic name"),
                );
                None
            }
            Some(topic) => Some(topic),
            None => Some(super::default_dead_letter_topic(&raw.source)),
        };

        let replication_factor =
            self.replication_factor(&path.key("replication_factor"), raw.replication_factor);
        let internal_replication_factor = self.replication_factor(
            &path.key("internal_replication_factor"),
            raw.internal_replication_factor,
        );
        let tasks = self
            .in_range(&path.key("tasks"), raw.tasks, 1, MAX_TASKS)
            .and_then(|tasks| u32::try_from(tasks).ok());
        let max_in_flight = self
            .in_range(
                &path.key("max_in_flight"),
                raw.max_in_flight,
                1,
                MAX_IN_FLIGHT,
            )
            .and_then(|max| usize::try_from(max).ok());
        let refresh_topics_interval = self.duration(
            &path.key("refresh_topics_interval"),
            &raw.refresh_topics_interval,
        );
        let commit_interval = self.duration(&path.key("commit_interval"), &raw.commit_interval);

        let group_id = match raw.group_id {
            Some(group_id) if group_id.trim().is_empty() => {
                self.report(&path.key("group_id"), "must not be empty");
                None
            }
            Some(group_id) => Some(group_id),
            None => Some(raw::default_group_id(&raw.source, &raw.target)),
        };

        let positions_topic = match raw.positions_topic {
            Some(topic) if topic.trim().is_empty() => {
                self.report(&path.key("positions_topic"), "must not be empty");
                None
            }
            Some(topic) => Some(topic),
            None => Some(crate::offsets::positions_topic(&raw.source)),
        };
        let optional = |enabled: bool, interval: Option<Duration>| match enabled {
            true => interval.map(Some),
            false => Some(None),
        };
        let heartbeats_interval =
            self.duration(&path.key("heartbeats_interval"), &raw.heartbeats_interval);
        let checkpoints_interval =
            self.duration(&path.key("checkpoints_interval"), &raw.checkpoints_interval);
        let sync_group_offsets_interval = self.duration(
            &path.key("sync_group_offsets_interval"),
            &raw.sync_group_offsets_interval,
        );
        let sync_topic_configs_interval = self.duration(
            &path.key("sync_topic_configs_interval"),
            &raw.sync_topic_configs_interval,
        );
        let sync_topic_acls_interval = self.duration(
            &path.key("sync_topic_acls_interval"),
            &raw.sync_topic_acls_interval,
        );
        let offset_lag_max = self
            .in_range(&path.key("offset_lag_max"), raw.offset_lag_max, 0, i64::MAX)
            .and_then(|lag| u64::try_from(lag).ok());
        let offset_syncs_on_target = match raw.offset_syncs_location.as_str() {
            "source" => Some(false),
            "target" => Some(true),
            other => {
                self.report(
                    &path.key("offset_syncs_location"),
                    format!("expected `source` or `target`, not `{other}`"),
                );
                None
            }
        };
        let groups = self.topics(&path.key("groups"), &raw.groups);
        let groups_exclude = self.topics(&path.key("groups_exclude"), &raw.groups_exclude);
        let config_properties_exclude = self.topics(
            &path.key("config_properties_exclude"),
            &raw.config_properties_exclude,
        );
        if raw.emit_checkpoints && !raw.emit_offset_syncs {
            self.report(
                &path.key("emit_checkpoints"),
                "checkpoints are translated from offset syncs: set `emit_offset_syncs = true` or `emit_checkpoints = false`",
            );
        }
        if raw.sync_group_offsets && !raw.emit_checkpoints {
            self.report(
                &path.key("sync_group_offsets"),
                "group offsets are synced from checkpoints: set `emit_checkpoints = true` or `sync_group_offsets = false`",
            );
        }

        let (source, target) = (source?, target?);
        if source == target {
            return None;
        }
        let internal_replication_factor = internal_replication_factor?;
        Some(Flow {
            id: FlowId::new(&source, &target),
            source,
            target,
            enabled: raw.enabled,
            topics: topics?,
            topics_exclude: topics_exclude?,
            policy: policy?,
            filters: filters?,
            transforms: transforms?,
            topic_filter: topic_filter?,
            group_filter: group_filter?,
            config_property_filter: config_property_filter?,
            on_error: on_error?,
            dead_letter_topic: dead_letter_topic?,
            replication_factor: replication_factor?,
            tasks: tasks?,
            refresh_topics_interval: refresh_topics_interval?,
            commit_interval: commit_interval?,
            heartbeats_replication: raw.heartbeats_replication,
            group_id: group_id?,
            max_in_flight: max_in_flight?,
            positions_topic: positions_topic?,
            emit_heartbeats: optional(raw.emit_heartbeats, heartbeats_interval)?,
            emit_offset_syncs: raw.emit_offset_syncs,
            offset_lag_max: offset_lag_max?,
            offset_syncs_on_target: offset_syncs_on_target?,
            emit_checkpoints: optional(raw.emit_checkpoints, checkpoints_interval)?,
            groups: groups?,
            groups_exclude: groups_exclude?,
            sync_group_offsets: optional(raw.sync_group_offsets, sync_group_offsets_interval)?,
            sync_topic_configs: optional(raw.sync_topic_configs, sync_topic_configs_interval)?,
            config_properties_exclude: config_properties_exclude?,
            use_source_defaults: raw.use_source_defaults,
            sync_topic_acls: optional(raw.sync_topic_acls, sync_topic_acls_interval)?,
            heartbeats_replication_factor: internal_replication_factor,
            checkpoints_replication_factor: internal_replication_factor,
            offset_syncs_replication_factor: internal_replication_factor,
        })
    }

    fn replication_factor(&mut self, path: &KeyPath, factor: i64) -> Option<i16> {
        match i16::try_from(factor) {
            Ok(factor) if factor == -1 || factor >= 1 => Some(factor),
            _ => {
                self.report(
                    path,
                    format!(
                        "must be -1 (the broker's default.replication.factor) or between 1 and 32767, not {factor}"
                    ),
                );
                None
            }
        }
    }

    fn topics(&mut self, path: &KeyPath, list: &TopicList) -> Option<TopicPatterns> {
        let patterns = match list {
            TopicList::Mm2(comma_list) => TopicPatterns::parse_mm2(comma_list),
            TopicList::List(items) => TopicPatterns::parse_list(items),
        };
        patterns.map_err(|message| self.report(path, message)).ok()
    }

    /// A flow's `filters` or `transforms` list: every entry is checked, problems are all
    /// reported.
    fn chain(&mut self, path: &KeyPath, raw: Vec<ChainPluginConfig>) -> Option<Vec<PluginRef>> {
        let mut plugins = Some(Vec::with_capacity(raw.len()));
        for (index, entry) in raw.into_iter().enumerate() {
            let plugin = self.wasm_plugin(&path.index(index), entry);
            match (plugin, &mut plugins) {
                (Some(plugin), Some(list)) => list.push(plugin),
                _ => plugins = None,
            }
        }
        plugins
    }

    /// An optional `.wasm` plugin (`topic_filter`, `group_filter`, `config_property_filter`).
    fn optional_plugin(
        &mut self,
        path: &KeyPath,
        raw: Option<ChainPluginConfig>,
    ) -> Option<Option<PluginRef>> {
        match raw {
            None => Some(None),
            Some(entry) => self.wasm_plugin(path, entry).map(Some),
        }
    }

    /// A plugin that must be a `.wasm` file (only policies are built in).
    fn wasm_plugin(&mut self, path: &KeyPath, entry: ChainPluginConfig) -> Option<PluginRef> {
        if entry.uses.trim().starts_with("builtin:") {
            self.report(
                &path.key("uses"),
                "only policies are built in (MM2's default filters are the flow's `topics`, `groups` and `config_properties_exclude` keys); name a .wasm file",
            );
            return None;
        }
        self.plugin(
            path,
            PluginConfig {
                uses: entry.uses,
                with: entry.with,
            },
        )
    }

    fn plugin(&mut self, path: &KeyPath, raw: PluginConfig) -> Option<PluginRef> {
        let uses_path = path.key("uses");
        let uses = raw.uses.trim();
        let source = if let Some(name) = uses.strip_prefix("builtin:") {
            if BUILTIN_POLICIES.contains(&name) {
                Some(PluginSource::Builtin(name.to_owned()))
            } else {
                self.report(
                    &uses_path,
                    format!(
                        "unknown built-in plugin `{uses}` (expected one of: builtin:default-policy, builtin:identity-policy, or the path of a .wasm file)"
                    ),
                );
                None
            }
        } else if uses.is_empty() {
            self.report(&uses_path, "must not be empty");
            None
        } else {
            let file = self.base_dir.join(uses);
            if file.is_file() {
                Some(PluginSource::File(file))
            } else if file.exists() {
                self.report(
                    &uses_path,
                    format!("plugin `{}` is not a file", file.display()),
                );
                None
            } else {
                self.report(
                    &uses_path,
                    format!("plugin file `{}` does not exist", file.display()),
                );
                None
            }
        };
        let with_path = path.key("with");
        let mut with: Vec<(String, String)> = raw
            .with
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect();
        with.sort_by_key(|(key, _)| {
            self.index
                .key_offset(&with_path.key(key))
                .unwrap_or(usize::MAX)
        });
        Some(PluginRef {
            uses: source?,
            with,
        })
    }

    fn in_range(&mut self, path: &KeyPath, value: i64, min: i64, max: i64) -> Option<i64> {
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            self.report(
                path,
                format!("must be between {min} and {max}, not {value}"),
            );
            None
        }
    }

    fn duration(&mut self, path: &KeyPath, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text.trim()) {
            Ok(duration) if duration.is_zero() => {
                self.report(path, "must be greater than zero");
                None
            }
            Ok(duration) => Some(duration),
            Err(error) => {
                self.report(
                    path,
                    format!(
                        "invalid duration `{text}`: {error} (write e.g. \"500ms\", \"30s\", \"5m\")"
                    ),
                );
                None
            }
        }
    }
}

/// Why a librdkafka property belongs to Ferry, if it does.
fn host_owned_key(key: &str) -> Option<&'static str> {
    match key.trim().to_ascii_lowercase().as_str() {
        "bootstrap.servers" | "metadata.broker.list" => {
            Some("Ferry sets it from `bootstrap_servers`")
        }
        "security.protocol" => Some("Ferry sets it from `security_protocol`"),
        "group.id" => Some("Ferry sets it from each flow's `group_id`"),
        "enable.auto.commit" | "enable.auto.offset.store" => Some(
            "Ferry stores source positions itself, only after the target acknowledged the records",
        ),
        "enable.idempotence" | "transactional.id" | "acks" | "request.required.acks" => {
            Some("Ferry chooses its producers' delivery guarantees itself")
        }
        "partitioner" => Some("Ferry writes each record to its source partition number"),
        "enable.partition.eof" | "partition.assignment.strategy" => {
            Some("Ferry's consumers depend on its own setting")
        }
        _ => None,
    }
}

/// The librdkafka properties that this cluster's `sasl`/`ssl` tables set, with the typed key
/// that sets each.
fn typed_librdkafka_keys(raw: &ClusterConfig) -> HashMap<&'static str, &'static str> {
    let mut keys = HashMap::new();
    if raw.sasl.is_some() {
        keys.insert("sasl.mechanism", "sasl.mechanism");
        keys.insert("sasl.mechanisms", "sasl.mechanism");
        keys.insert("sasl.username", "sasl.username");
        keys.insert("sasl.password", "sasl.password");
    }
    if let Some(ssl) = &raw.ssl {
        if ssl.ca_location.is_some() {
            keys.insert("ssl.ca.location", "ssl.ca_location");
        }
        if ssl.certificate_location.is_some() {
            keys.insert("ssl.certificate.location", "ssl.certificate_location");
        }
        if ssl.key_location.is_some() {
            keys.insert("ssl.key.location", "ssl.key_location");
        }
        if ssl.key_password.is_some() {
            keys.insert("ssl.key.password", "ssl.key_password");
        }
    }
    keys
}

/// Asks librdkafka whether it knows `key` and accepts `value`, so that a misspelt property is
/// reported now, with its line, rather than when the first client is created.
fn check_librdkafka_property(key: &str, value: &str) -> Result<(), String> {
    let mut client_config = rdkafka::ClientConfig::new();
    client_config.set(key, value);
    match client_config.create_native_config() {
        Ok(_) => Ok(()),
        Err(_) if is_secret_librdkafka_key(key) => {
            Err("rejected by librdkafka (the value is not shown because it is a secret)".to_owned())
        }
        Err(KafkaError::ClientConfig(_, description, _, _)) => Err(format!(
            "rejected by librdkafka: {}",
            one_line(&description)
        )),
        Err(error) => Err(format!("rejected by librdkafka: {error}")),
    }
}

/// Whether the value at `path` is a secret, so that no message may quote it.
fn is_secret_path(path: &KeyPath) -> bool {
    let Some(key) = path.last_key() else {
        return false;
    };
    if matches!(key, "password" | "key_password") {
        return true;
    }
    let parent = path.parent();
    parent.as_ref().and_then(KeyPath::last_key) == Some("librdkafka")
        && is_secret_librdkafka_key(key)
}

/// The message for an unknown key: what was expected there, and the nearest known key.
fn unknown_key_message(path: &KeyPath) -> String {
    let expected = path.parent().and_then(|parent| expected_keys(&parent));
    let Some(expected) = expected else {
        return "unknown key".to_owned();
    };
    let suggestion = path
        .last_key()
        .and_then(|key| closest(key, expected))
        .map_or_else(String::new, |closest| {
            format!(", did you mean `{closest}`?")
        });
    format!(
        "unknown key{suggestion} (expected one of: {})",
        expected.join(", ")
    )
}

/// The keys a table at `parent` accepts, as declared by the `raw` structs.
fn expected_keys(parent: &KeyPath) -> Option<&'static [&'static str]> {
    use Segment::{Index, Key};
    let fields = match parent.segments() {
        [] => raw::field_names::<RawConfig>(),
        [Key(clusters), Key(_)] if clusters == "clusters" => raw::field_names::<ClusterConfig>(),
        [Key(clusters), Key(_), Key(table)] if clusters == "clusters" && table == "sasl" => {
            raw::field_names::<raw::SaslConfig>()
        }
        [Key(clusters), Key(_), Key(table)] if clusters == "clusters" && table == "ssl" => {
            raw::field_names::<raw::SslConfig>()
        }
        [Key(flows), Index(_)] if flows == "flows" => raw::field_names::<FlowConfig>(),
        [Key(flows), Index(_), Key(table)] if flows == "flows" && table == "policy" => {
            raw::field_names::<PluginConfig>()
        }
        [Key(flows), Index(_), Key(table), Index(_)]
            if flows == "flows" && (table == "filters" || table == "transforms") =>
        {
            raw::field_names::<ChainPluginConfig>()
        }
        [Key(flows), Index(_), Key(table)]
            if flows == "flows"
                && matches!(
                    table.as_str(),
                    "topic_filter" | "group_filter" | "config_property_filter"
                ) =>
        {
            raw::field_names::<ChainPluginConfig>()
        }
        _ => return None,
    };
    (!fields.is_empty()).then_some(fields)
}

/// The expected key nearest to `key`, if it is near enough to be a typo (`topic`, `topics-exclude`,
/// `topics.exclude` all suggest a key).
fn closest(key: &str, expected: &[&'static str]) -> Option<&'static str> {
    let normalize = |text: &str| text.to_ascii_lowercase().replace(['-', '.'], "_");
    let key = normalize(key);
    expected
        .iter()
        .map(|candidate| (edit_distance(&key, &normalize(candidate)), *candidate))
        .filter(|(distance, _)| *distance <= 2.max(key.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance.
fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (i, left_char) in left.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, right_char) in right.iter().enumerate() {
            let substitution = previous[j] + usize::from(left_char != *right_char);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[right.len()]
}

/// Keeps a message on one line, so that each problem is one line of output.
fn one_line(message: &str) -> String {
    message.trim().replace(['\n', '\r'], "; ")
}
