//! MirrorMaker 2's configuration file (`ferry run --mm2 connect-mirror-maker.properties`).
//!
//! This module owns reading MM2 3.8's `.properties` format and resolving it into Ferry's
//! validated [`Config`], following MM2's own rules (`MirrorMakerConfig`):
//!
//! 1. The file is read with `java.util.Properties#load` semantics: `#`/`!` comment lines,
//!    `=`, `:` or whitespace between key and value, trailing-backslash continuation lines and
//!    the `\t \n \r \f \uXXXX \\` escapes. A later duplicate key wins, as in Java. Unlike Java,
//!    which reads the file as ISO-8859-1, the text is taken as UTF-8. As in Java, `#` in the
//!    middle of a line is part of the value, not a comment.
//! 2. `clusters` lists the aliases. Keys are top-level, `<alias>.<key>` (cluster keys) or
//!    `<source>-><target>.<key>` (flow keys).
//! 3. Each cluster takes its client keys (`bootstrap.servers`, `security.protocol`,
//!    `sasl.mechanism`, `sasl.jaas.config`) from `<alias>.<key>`, else from the top-level key.
//! 4. Each flow takes its connector keys from the top level, overridden by
//!    `<source>-><target>.<key>`; its commit interval comes from the Connect worker key
//!    `<target>.offset.flush.interval.ms`. MM2's defaults apply (`replication.factor` 2,
//!    `tasks.max` 1, `refresh.topics.interval.seconds` 600, `offset.flush.interval.ms` 60000).
//!
//! Every key that Ferry does not use is returned as an [`UnusedKey`] with the reason, never
//! silently dropped; every bad value is a [`ConfigError`] naming the key and its line, and all
//! of them are collected before returning.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::raw::default_group_id;
use super::{
    Cluster, ClusterName, Config, ConfigError, ConfigErrors, ErrorPolicy, Flow, FlowId, PluginRef,
    PluginSource, Sasl, SaslMechanism, SecurityProtocol, Sensitive, TopicPatterns,
};

/// MM2's `replication.factor` default.
const DEFAULT_REPLICATION_FACTOR: &str = "2";
/// Connect's `tasks.max` default.
const DEFAULT_TASKS: &str = "1";
/// MM2's `refresh.topics.interval.seconds` default.
const DEFAULT_REFRESH_TOPICS_SECONDS: &str = "600";
/// Connect's `offset.flush.interval.ms` default.
const DEFAULT_OFFSET_FLUSH_MS: &str = "60000";
/// MM2's `topics` default.
const DEFAULT_TOPICS: &str = ".*";
/// MM2's `topics.exclude` default.
const DEFAULT_TOPICS_EXCLUDE: &str = r".*[\-\.]internal, .*\.replica, __.*";
/// MM2's `groups` default.
const DEFAULT_GROUPS: &str = ".*";
/// MM2's `groups.exclude` default.
const DEFAULT_GROUPS_EXCLUDE: &str = "console-consumer-.*, connect-.*, __.*";
/// MM2's `config.properties.exclude` default (`DefaultConfigPropertyFilter`).
const DEFAULT_CONFIG_PROPERTIES_EXCLUDE: &str = r"follower\.replication\.throttled\.replicas, leader\.replication\.throttled\.replicas, message\.timestamp\.difference\.max\.ms, message\.timestamp\.type, unclean\.leader\.election\.enable, min\.insync\.replicas";
/// The largest `tasks.max` Ferry accepts (its `tasks` limit).
const MAX_TASKS: i64 = 1024;
/// Ferry's default `max_in_flight` (MM2 has no such setting).
const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

const DEFAULT_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.DefaultReplicationPolicy";
const IDENTITY_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy";
const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

/// A key of the MM2 file that Ferry does not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedKey {
    /// The key as written (after escapes are processed).
    pub key: String,
    /// The 1-based line where the key's (last) definition starts.
    pub line: usize,
    /// Why Ferry does not use it, lowercase, without a trailing period.
    pub reason: &'static str,
}

impl fmt::Display for UnusedKey {
    /// `line <line>: <key>: <reason>`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}: {}: {}",
            self.line, self.key, self.reason
        )
    }
}

/// Reads the MM2 properties file at `path` and resolves it as MM2 3.8 does.
///
/// # Errors
///
/// Returns every problem found: an unreadable file, malformed escapes, unknown cluster
/// aliases, invalid values, and a file in which no flow is enabled.
pub fn load_mm2(path: &Path) -> Result<(Config, Vec<UnusedKey>), ConfigErrors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_mm2(&text, path),
        Err(error) => Err(ConfigErrors {
            file: path.to_path_buf(),
            errors: vec![ConfigError {
                line: None,
                key: String::new(),
                message: format!("cannot read the mm2 properties file: {error}"),
            }],
        }),
    }
}

/// Resolves MM2 properties `text`, read from `origin` (which names the file in messages), into
/// Ferry's configuration and the keys Ferry does not use, ordered by line.
///
/// Only flows whose MM2 source connector would be enabled become [`Flow`]s (all with
/// `enabled: true`). MM2 also starts a Connect herder for every pair that emits heartbeats
/// (`emit.heartbeats.enabled`, default true), even when `A->B.enabled` is false; Ferry does not
/// run such heartbeat-only pairs. Only clusters used by an enabled flow are in
/// [`Config::clusters`]. Each flow's consumer group is `ferry.<source>-<target>` (MM2's Connect
/// group is `<source>-mm2`, set by `<target>.group.id`; Ferry keeps its groups apart from MM2's
/// so both can run during a migration), and its `max_in_flight` is Ferry's default, 10000.
///
/// # Errors
///
/// Returns every problem found, as [`load_mm2`] does.
pub fn parse_mm2(text: &str, origin: &Path) -> Result<(Config, Vec<UnusedKey>), ConfigErrors> {
    let (props, mut errors) = parse_properties(text);
    let mut resolver = Resolver {
        props: &props,
        used: HashSet::new(),
        errors: Vec::new(),
    };
    let resolved = resolver.resolve(origin);
    errors.append(&mut resolver.errors);
    if let (Some((config, clusters_used, flows_enabled)), true) = (&resolved, errors.is_empty()) {
        let unused = unused_keys(&props, &resolver.used, clusters_used, flows_enabled);
        return Ok((config.clone(), unused));
    }
    errors.sort_by_key(|error| (error.line.unwrap_or(usize::MAX), error.key.clone()));
    Err(ConfigErrors {
        file: origin.to_path_buf(),
        errors,
    })
}

// ---------------------------------------------------------------------------------------------
// java.util.Properties#load

/// One property: its value (escapes processed, leading whitespace removed) and the line where
/// its logical line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Property {
    value: String,
    line: usize,
}

/// Java's whitespace in `.properties` files.
fn is_properties_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Parses `.properties` text as `java.util.Properties#load` does. A later duplicate key
/// replaces the earlier one, line included.
fn parse_properties(text: &str) -> (BTreeMap<String, Property>, Vec<ConfigError>) {
    let lines = natural_lines(text);
    let mut props = BTreeMap::new();
    let mut errors = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let line = index + 1;
        let first = lines[index].trim_start_matches(is_properties_space);
        index += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_owned();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            let Some(next) = lines.get(index) else {
                break;
            };
            logical.push_str(next.trim_start_matches(is_properties_space));
            index += 1;
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        match (unescape(raw_key), unescape(raw_value)) {
            (Ok(key), Ok(value)) => {
                props.insert(key, Property { value, line });
            }
            (Err(message), _) | (_, Err(message)) => errors.push(ConfigError {
                line: Some(line),
                key: raw_key.to_owned(),
                message: if super::is_secret_librdkafka_key(raw_key) {
                    "malformed escape (the value is not shown because it is a secret)".to_owned()
                } else {
                    message
                },
            }),
        }
    }
    (props, errors)
}

/// Splits on `\n`, `\r\n` and `\r`, as Java's `LineReader` does.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut position = 0;
    while position < bytes.len() {
        match bytes[position] {
            b'\n' => {
                lines.push(&text[start..position]);
                start = position + 1;
            }
            b'\r' => {
                lines.push(&text[start..position]);
                if bytes.get(position + 1) == Some(&b'\n') {
                    position += 1;
                }
                start = position + 1;
            }
            _ => {}
        }
        position += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

fn ends_with_odd_backslashes(text: &str) -> bool {
    text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits a logical line into its raw (still escaped) key and value: the key ends at the first
/// unescaped `=`, `:` or whitespace; whitespace and one `=`/`:` before the value are skipped.
fn split_key_value(logical: &str) -> (&str, &str) {
    let mut preceding_backslash = false;
    let mut key_end = logical.len();
    let mut value_start = logical.len();
    let mut has_separator = false;
    for (position, c) in logical.char_indices() {
        if !preceding_backslash && (c == '=' || c == ':') {
            key_end = position;
            value_start = position + 1;
            has_separator = true;
            break;
        }
        if !preceding_backslash && is_properties_space(c) {
            key_end = position;
            value_start = position + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
    }
    let mut rest = &logical[value_start..];
    while let Some(c) = rest.chars().next() {
        if is_properties_space(c) {
            rest = &rest[1..];
        } else if !has_separator && (c == '=' || c == ':') {
            has_separator = true;
            rest = &rest[1..];
        } else {
            break;
        }
    }
    (&logical[..key_end], rest)
}

/// Java's `loadConvert`: `\t \n \r \f`, `\uXXXX` (UTF-16 code units, so surrogate pairs
/// combine), and `\c` for any other `c`.
fn unescape(raw: &str) -> Result<String, String> {
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut buffer = [0u16; 2];
    while let Some(c) = chars.next() {
        if c != '\\' {
            units.extend_from_slice(c.encode_utf16(&mut buffer));
            continue;
        }
        let Some(escaped) = chars.next() else {
            break;
        };
        let unit = match escaped {
            't' => u16::from(b'\t'),
            'n' => u16::from(b'\n'),
            'r' => u16::from(b'\r'),
            'f' => 0x0c,
            'u' => {
                let digits: String = chars.by_ref().take(4).collect();
                if digits.len() != 4 || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
                    return Err(format!(
                        "malformed \\uxxxx escape `\\u{digits}`: four hexadecimal digits are needed"
                    ));
                }
                u16::from_str_radix(&digits, 16)
                    .map_err(|_| format!("malformed \\uxxxx escape `\\u{digits}`"))?
            }
            other => {
                units.extend_from_slice(other.encode_utf16(&mut buffer));
                continue;
            }
        };
        units.push(unit);
    }
    String::from_utf16(&units)
        .map_err(|_| "a \\uxxxx escape is an unpaired utf-16 surrogate".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Resolution

/// Where a key belongs, found by matching the aliases of `clusters`.
enum Scope<'k> {
    /// `clusters`, or any key without an alias prefix.
    Top,
    /// `<alias>.<rest>`.
    Cluster(&'k str, &'k str),
    /// `<source>-><target>.<rest>`.
    Flow(&'k str, &'k str, &'k str),
    /// A `->` key whose aliases are not all in `clusters` (an error has been reported).
    BadFlow,
}

struct Resolver<'p> {
    props: &'p BTreeMap<String, Property>,
    /// Keys Ferry read.
    used: HashSet<String>,
    errors: Vec<ConfigError>,
}

/// The resolved configuration, the clusters used by enabled flows and the enabled flows as
/// `(source, target)`.
type Resolved = (Config, HashSet<String>, HashSet<(String, String)>);

impl Resolver<'_> {
    fn report(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            line: self.props.get(key).map(|property| property.line),
            key: key.to_owned(),
            message: message.into(),
        });
    }

    /// The trimmed value of `key`, marking it used (Kafka's `ConfigDef` trims values).
    fn take(&mut self, key: &str) -> Option<(String, String)> {
        let property = self.props.get(key)?;
        self.used.insert(key.to_owned());
        Some((key.to_owned(), property.value.trim().to_owned()))
    }

    fn resolve(&mut self, origin: &Path) -> Option<Resolved> {
        let Some((_, clusters_value)) = self.take("clusters") else {
            self.report(
                "clusters",
                "missing: list the cluster aliases, e.g. `clusters = A, B`",
            );
            return None;
        };
        let mut aliases: Vec<String> = Vec::new();
        for alias in clusters_value.split(',').map(str::trim) {
            if alias.is_empty() {
                self.report("clusters", "an alias in the list is empty");
            } else if let Err(message) = ClusterName::new(alias) {
                self.report("clusters", message);
            } else if !aliases.iter().any(|known| known == alias) {
                aliases.push(alias.to_owned());
            }
        }
        if aliases.is_empty() {
            if clusters_value.is_empty() {
                self.report("clusters", "must list at least one cluster alias");
            }
            return None;
        }

        // Flow keys naming unknown aliases are errors.
        let keys: Vec<&String> = self.props.keys().collect();
        for key in keys {
            if let Scope::BadFlow = self.scope(key, &aliases) {
                self.used.insert(key.clone());
            }
        }

        let mut flows = Vec::new();
        let mut clusters_used = HashSet::new();
        let mut flows_enabled = HashSet::new();
        let mut order: Vec<(usize, usize, String, String)> = Vec::new();
        for (source_index, source) in aliases.iter().enumerate() {
            for (target_index, target) in aliases.iter().enumerate() {
                if source == target || !self.flow_enabled(source, target) {
                    continue;
                }
                let line = self
                    .props
                    .get(&format!("{source}->{target}.enabled"))
                    .map_or(usize::MAX, |property| property.line);
                let rank = source_index * aliases.len() + target_index;
                order.push((line, rank, source.clone(), target.clone()));
            }
        }
        order.sort();
        for (_, _, source, target) in order {
            clusters_used.insert(source.clone());
            clusters_used.insert(target.clone());
            flows_enabled.insert((source.clone(), target.clone()));
            if let Some(flow) = self.flow(&source, &target) {
                flows.push(flow);
            }
        }
        let mut clusters = BTreeMap::new();
        for alias in aliases
            .iter()
            .filter(|alias| clusters_used.contains(*alias))
        {
            if let Some(cluster) = self.cluster(alias) {
                clusters.insert(cluster.name.clone(), cluster);
            }
        }
        if flows_enabled.is_empty() {
            self.errors.push(ConfigError {
                line: None,
                key: String::new(),
                message: "no flow is enabled: set `A->B.enabled = true`".to_owned(),
            });
        }
        let config = Config {
            path: origin.to_path_buf(),
            clusters,
            flows,
        };
        Some((config, clusters_used, flows_enabled))
    }

    /// Classifies `key`, reporting a `->` key whose aliases are not in `clusters`.
    fn scope<'k>(&mut self, key: &'k str, aliases: &[String]) -> Scope<'k> {
        let (scope, problem) = classify(key, aliases);
        if let Some(message) = problem {
            self.report(key, message);
        }
        scope
    }

    /// Whether MM2 would run the flow's source connector: a herder exists for the pair
    /// (`A->B.enabled=true`, or heartbeats enabled for it), and the connector's `enabled`
    /// (`A->B.enabled`, else a top-level `enabled`, else false) is true.
    fn flow_enabled(&mut self, source: &str, target: &str) -> bool {
        let flow_key = format!("{source}->{target}.enabled");
        let flow_value = self.take(&flow_key);
        let flow_enabled = match &flow_value {
            Some((key, value)) => self.boolean(key, value),
            None => None,
        };
        if flow_enabled == Some(true) {
            return true;
        }
        if flow_value.is_some() {
            return false;
        }
        // Herder creation reads heartbeats with `Boolean.parseBoolean` (lenient).
        let heartbeats = self
            .props
            .get(&format!("{source}->{target}.emit.heartbeats.enabled"))
            .or_else(|| self.props.get("emit.heartbeats.enabled"))
            .is_none_or(|property| property.value.trim().eq_ignore_ascii_case("true"));
        if !heartbeats || !self.props.contains_key("enabled") {
            return false;
        }
        match self.take("enabled") {
            Some((key, value)) => self.boolean(&key, &value) == Some(true),
            None => false,
        }
    }

    fn boolean(&mut self, key: &str, value: &str) -> Option<bool> {
        if value.eq_ignore_ascii_case("true") {
            Some(true)
        } else if value.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.report(key, format!("expected `true` or `false`, not `{value}`"));
            None
        }
    }

    /// A connector key of flow `source->target`: `<source>-><target>.<name>`, else the
    /// top-level `<name>`.
    fn connector_key(
        &mut self,
        source: &str,
        target: &str,
        name: &str,
    ) -> Option<(String, String)> {
        let flow_key = format!("{source}->{target}.{name}");
        if self.props.contains_key(&flow_key) {
            self.take(&flow_key)
        } else {
            self.take(name)
        }
    }

    /// A client key of cluster `alias`: `<alias>.<name>`, else the top-level `<name>`.
    fn client_key(&mut self, alias: &str, name: &str) -> Option<(String, String)> {
        let cluster_key = format!("{alias}.{name}");
        if self.props.contains_key(&cluster_key) {
            self.take(&cluster_key)
        } else {
            self.take(name)
        }
    }

    fn integer(&mut self, key: &str, value: &str, min: i64, max: i64) -> Option<i64> {
        match value.parse::<i64>() {
            Ok(number) if (min..=max).contains(&number) => Some(number),
            Ok(number) => {
                self.report(
                    key,
                    format!("must be between {min} and {max}, not {number}"),
                );
                None
            }
            Err(_) => {
                self.report(key, format!("expected an integer, not `{value}`"));
                None
            }
        }
    }

    fn flow(&mut self, source: &str, target: &str) -> Option<Flow> {
        let flow_prefix = format!("{source}->{target}");
        let setting = |resolver: &mut Self, name: &str, default: &str| {
            resolver
                .connector_key(source, target, name)
                .unwrap_or_else(|| (format!("{flow_prefix}.{name}"), default.to_owned()))
        };

        let (key, value) = setting(self, "topics", DEFAULT_TOPICS);
        let topics = TopicPatterns::parse_mm2(&value)
            .map_err(|message| self.report(&key, message))
            .ok();

        let (key, value) = self.aliased(
            source,
            target,
            "topics.exclude",
            "topics.blacklist",
            DEFAULT_TOPICS_EXCLUDE,
        );
        let topics_exclude = TopicPatterns::parse_mm2(&value)
            .map_err(|message| self.report(&key, message))
            .ok();

        let (key, value) = setting(self, "replication.factor", DEFAULT_REPLICATION_FACTOR);
        let replication_factor = self.factor(&key, &value);

        let (key, value) = setting(self, "tasks.max", DEFAULT_TASKS);
        let tasks = self
            .integer(&key, &value, 1, MAX_TASKS)
            .and_then(|tasks| u32::try_from(tasks).ok());

        let (key, value) = setting(
            self,
            "refresh.topics.interval.seconds",
            DEFAULT_REFRESH_TOPICS_SECONDS,
        );
        let refresh_topics_interval = self
            .integer(&key, &value, 1, i64::MAX)
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map(Duration::from_secs);

        // A Connect worker key: MM2 reads it from the target's prefix only (a top-level
        // `offset.flush.interval.ms` is not passed to the worker).
        let (key, value) = self
            .take(&format!("{target}.offset.flush.interval.ms"))
            .unwrap_or_else(|| {
                (
                    format!("{target}.offset.flush.interval.ms"),
                    DEFAULT_OFFSET_FLUSH_MS.to_owned(),
                )
            });
        let commit_interval = self
            .integer(&key, &value, 1, i64::MAX)
            .and_then(|millis| u64::try_from(millis).ok())
            .map(Duration::from_millis);

        let (key, value) = setting(self, "heartbeats.replication.enabled", "true");
        let heartbeats_replication = self.boolean(&key, &value);

        // A Connect worker key: `<target>.offset.storage.topic`, else the top-level key (worker
        // keys with the `offset.storage` prefix are passed down), else MM2's default.
        let positions_topic = self
            .take(&format!("{target}.offset.storage.topic"))
            .or_else(|| self.take("offset.storage.topic"))
            .map_or_else(
                || crate::offsets::positions_topic(source),
                |(_, topic)| topic,
            );

        let emit_heartbeats = self.periodic(
            source,
            target,
            ("emit.heartbeats.enabled", "true"),
            ("emit.heartbeats.interval.seconds", "1"),
        );
        let (key, value) = setting(self, "emit.offset-syncs.enabled", "true");
        let emit_offset_syncs = self.boolean(&key, &value);
        let (key, value) = setting(self, "offset.lag.max", "100");
        let offset_lag_max = self
            .integer(&key, &value, 0, i64::MAX)
            .and_then(|lag| u64::try_from(lag).ok());
        let (key, value) = setting(self, "offset-syncs.topic.location", "source");
        let offset_syncs_on_target = match value.as_str() {
            "source" => Some(false),
            "target" => Some(true),
            other => {
                self.report(
                    &key,
                    format!("expected `source` or `target`, not `{other}`"),
                );
                None
            }
        };
        let emit_checkpoints = self.periodic(
            source,
            target,
            ("emit.checkpoints.enabled", "true"),
            ("emit.checkpoints.interval.seconds", "60"),
        );
        let (key, value) = setting(self, "groups", DEFAULT_GROUPS);
        let groups = TopicPatterns::parse_mm2(&value)
            .map_err(|message| self.report(&key, message))
            .ok();
        let (key, value) = self.aliased(
            source,
            target,
            "groups.exclude",
            "groups.blacklist",
            DEFAULT_GROUPS_EXCLUDE,
        );
        let groups_exclude = TopicPatterns::parse_mm2(&value)
            .map_err(|message| self.report(&key, message))
            .ok();
        let sync_group_offsets = self.periodic(
            source,
            target,
            ("sync.group.offsets.enabled", "false"),
            ("sync.group.offsets.interval.seconds", "60"),
        );
        let sync_topic_configs = self.periodic(
            source,
            target,
            ("sync.topic.configs.enabled", "true"),
            ("sync.topic.configs.interval.seconds", "600"),
        );
        let (key, value) = self.aliased(
            source,
            target,
            "config.properties.exclude",
            "config.properties.blacklist",
            DEFAULT_CONFIG_PROPERTIES_EXCLUDE,
        );
        let config_properties_exclude = TopicPatterns::parse_mm2(&value)
            .map_err(|message| self.report(&key, message))
            .ok();
        let (key, value) = setting(self, "use.defaults.from", "target");
        let use_source_defaults = match value.as_str() {
            "source" => Some(true),
            "target" => Some(false),
            other => {
                self.report(
                    &key,
                    format!("expected `source` or `target`, not `{other}`"),
                );
                None
            }
        };
        let sync_topic_acls = self.periodic(
            source,
            target,
            ("sync.topic.acls.enabled", "true"),
            ("sync.topic.acls.interval.seconds", "600"),
        );
        let mut internal_factor = |name: &str| {
            let (key, value) = setting(self, name, "3");
            self.factor(&key, &value)
        };
        let heartbeats_replication_factor = internal_factor("heartbeats.topic.replication.factor");
        let checkpoints_replication_factor =
            internal_factor("checkpoints.topic.replication.factor");
        let offset_syncs_replication_factor =
            internal_factor("offset-syncs.topic.replication.factor");

        let policy = self.policy(source, target);

        let source_name = ClusterName::new(source).ok()?;
        let target_name = ClusterName::new(target).ok()?;
        Some(Flow {
            id: FlowId::new(&source_name, &target_name),
            source: source_name,
            target: target_name,
            enabled: true,
            topics: topics?,
            topics_exclude: topics_exclude?,
            policy: policy?,
            // MM2 files have no WebAssembly chains; MM2's SMTs are Connect classes.
            filters: Vec::new(),
            transforms: Vec::new(),
            topic_filter: None,
            group_filter: None,
            config_property_filter: None,
            on_error: ErrorPolicy::Halt,
            dead_letter_topic: super::default_dead_letter_topic(source),
            replication_factor: replication_factor?,
            tasks: tasks?,
            refresh_topics_interval: refresh_topics_interval?,
            commit_interval: commit_interval?,
            heartbeats_replication: heartbeats_replication?,
            group_id: default_group_id(source, target),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            positions_topic,
            emit_heartbeats: emit_heartbeats?,
            emit_offset_syncs: emit_offset_syncs?,
            offset_lag_max: offset_lag_max?,
            offset_syncs_on_target: offset_syncs_on_target?,
            emit_checkpoints: emit_checkpoints?,
            groups: groups?,
            groups_exclude: groups_exclude?,
            sync_group_offsets: sync_group_offsets?,
            sync_topic_configs: sync_topic_configs?,
            config_properties_exclude: config_properties_exclude?,
            use_source_defaults: use_source_defaults?,
            sync_topic_acls: sync_topic_acls?,
            heartbeats_replication_factor: heartbeats_replication_factor?,
            checkpoints_replication_factor: checkpoints_replication_factor?,
            offset_syncs_replication_factor: offset_syncs_replication_factor?,
        })
    }

    /// A connector list key that has a deprecated alias: the key wins over its alias
    /// (`ConfigUtils.translateDeprecatedConfigs`), else the default.
    fn aliased(
        &mut self,
        source: &str,
        target: &str,
        name: &str,
        alias: &str,
        default: &str,
    ) -> (String, String) {
        let found = match self.connector_key(source, target, name) {
            Some(found) => Some(found),
            None => self.connector_key(source, target, alias),
        };
        found.unwrap_or_else(|| (format!("{source}->{target}.{name}"), default.to_owned()))
    }

    /// A replication factor: -1 (broker default) or 1 to 32767.
    fn factor(&mut self, key: &str, value: &str) -> Option<i16> {
        match value.parse::<i64>() {
            Ok(factor) if factor == -1 || (1..=i64::from(i16::MAX)).contains(&factor) => {
                i16::try_from(factor).ok()
            }
            Ok(factor) => {
                self.report(
                    key,
                    format!(
                        "must be -1 (the broker's default.replication.factor) or between 1 and 32767, not {factor}"
                    ),
                );
                None
            }
            Err(_) => {
                self.report(key, format!("expected an integer, not `{value}`"));
                None
            }
        }
    }

    /// An `*.enabled` / `*.interval.seconds` pair: `Some(None)` when disabled (as in MM2, a
    /// negative interval disables too), `Some(Some(interval))` when enabled, `None` on a bad
    /// value (reported).
    fn periodic(
        &mut self,
        source: &str,
        target: &str,
        enabled: (&str, &str),
        interval: (&str, &str),
    ) -> Option<Option<Duration>> {
        let mut setting = |(name, default): (&str, &str)| {
            self.connector_key(source, target, name)
                .unwrap_or_else(|| (format!("{source}->{target}.{name}"), default.to_owned()))
        };
        let (enabled_key, enabled) = setting(enabled);
        let (interval_key, interval) = setting(interval);
        let enabled = self.boolean(&enabled_key, &enabled);
        let interval_key = interval_key.as_str();
        let seconds = match interval.parse::<i64>() {
            Ok(0) => {
                self.report(interval_key, "must not be 0 (a negative value disables)");
                None
            }
            Ok(seconds) => Some(seconds),
            Err(_) => {
                self.report(
                    interval_key,
                    format!("expected an integer, not `{interval}`"),
                );
                None
            }
        };
        let (enabled, seconds) = (enabled?, seconds?);
        Some(match u64::try_from(seconds) {
            Ok(seconds) if enabled => Some(Duration::from_secs(seconds)),
            _ => None,
        })
    }

    fn policy(&mut self, source: &str, target: &str) -> Option<PluginRef> {
        let uses = match self.connector_key(source, target, "replication.policy.class") {
            None => Some(PluginSource::Builtin("default-policy".to_owned())),
            Some((_, class)) if class == DEFAULT_POLICY_CLASS => {
                Some(PluginSource::Builtin("default-policy".to_owned()))
            }
            Some((_, class)) if class == IDENTITY_POLICY_CLASS => {
                Some(PluginSource::Builtin("identity-policy".to_owned()))
            }
            Some((key, class)) => {
                self.report(
                    &key,
                    format!(
                        "unsupported replication policy `{class}` (expected {DEFAULT_POLICY_CLASS} or {IDENTITY_POLICY_CLASS}; other policies need a ferry wasm plugin and `--config`)"
                    ),
                );
                None
            }
        };
        let mut with = Vec::new();
        for name in [
            "replication.policy.separator",
            "replication.policy.internal.topic.separator.enabled",
        ] {
            let flow_key = format!("{source}->{target}.{name}");
            // The separator is not trimmed: MM2 reads it as a raw string.
            let property = self
                .props
                .get(&flow_key)
                .map(|property| (flow_key.clone(), property))
                .or_else(|| {
                    self.props
                        .get(name)
                        .map(|property| (name.to_owned(), property))
                });
            if let Some((key, property)) = property {
                self.used.insert(key);
                with.push((property.line, name.to_owned(), property.value.clone()));
            }
        }
        with.sort();
        let with = with
            .into_iter()
            .map(|(_, name, value)| (name, value))
            .collect();
        Some(PluginRef { uses: uses?, with })
    }

    fn cluster(&mut self, alias: &str) -> Option<Cluster> {
        let name = ClusterName::new(alias).ok()?;
        let bootstrap_servers = match self.client_key(alias, "bootstrap.servers") {
            Some((key, value)) if value.is_empty() => {
                self.report(&key, "must not be empty");
                None
            }
            // A Kafka list: entries trimmed, joined as librdkafka expects.
            Some((_, value)) => Some(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|server| !server.is_empty())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            None => {
                self.report(
                    &format!("{alias}.bootstrap.servers"),
                    format!("missing: cluster `{alias}` is used by an enabled flow"),
                );
                None
            }
        };
        let (protocol_key, protocol_value) = self
            .client_key(alias, "security.protocol")
            .unwrap_or_else(|| (format!("{alias}.security.protocol"), "PLAINTEXT".to_owned()));
        let security_protocol = SecurityProtocol::from_name(&protocol_value);
        if security_protocol.is_none() {
            self.report(
                &protocol_key,
                format!(
                    "unknown security protocol `{protocol_value}` (expected one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
                ),
            );
        }
        let sasl = match security_protocol {
            Some(protocol) if protocol.is_sasl() => Some(self.sasl(alias, &protocol_key)),
            _ => None,
        };
        let sasl = match sasl {
            Some(None) => return None,
            Some(Some(sasl)) => Some(sasl),
            None => None,
        };
        Some(Cluster {
            name,
            bootstrap_servers: bootstrap_servers?,
            security_protocol: security_protocol?,
            sasl,
            ssl: None,
            librdkafka: BTreeMap::new(),
        })
    }

    fn sasl(&mut self, alias: &str, protocol_key: &str) -> Option<Sasl> {
        let mechanism = match self.client_key(alias, "sasl.mechanism") {
            Some((key, value)) => {
                let mechanism = SaslMechanism::from_name(&value);
                if mechanism.is_none() {
                    self.report(
                        &key,
                        format!(
                            "unsupported SASL mechanism `{value}` (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                        ),
                    );
                }
                mechanism
            }
            None => {
                self.report(
                    protocol_key,
                    format!(
                        "`{alias}.sasl.mechanism` is missing, and kafka's default GSSAPI is not supported (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                    ),
                );
                None
            }
        };
        let Some((jaas_key, jaas_value)) = self.client_key(alias, "sasl.jaas.config") else {
            self.report(
                protocol_key,
                format!(
                    "a SASL protocol needs `{alias}.sasl.jaas.config` with a username and password"
                ),
            );
            return None;
        };
        let jaas = parse_jaas(&jaas_value)
            .map_err(|message| self.report(&jaas_key, message))
            .ok()?;
        let mechanism = mechanism?;
        let expected_module = match mechanism {
            SaslMechanism::Plain => PLAIN_LOGIN_MODULE,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => SCRAM_LOGIN_MODULE,
        };
        if jaas.module != expected_module {
            self.report(
                &jaas_key,
                format!(
                    "login module `{}` does not match sasl.mechanism {mechanism} (expected {expected_module})",
                    jaas.module
                ),
            );
            return None;
        }
        Some(Sasl {
            mechanism,
            username: jaas.username,
            password: Sensitive::new(jaas.password),
        })
    }
}

/// Classifies `key` against the aliases: a `->` key is a flow key (its source is the text
/// before `->`, its target the longest alias followed by `.`), else a key starting with the
/// longest `<alias>.` is a cluster key, else a top-level key. Returns an error message for a
/// flow key whose aliases are not in `clusters`.
fn classify<'k>(key: &'k str, aliases: &[String]) -> (Scope<'k>, Option<String>) {
    let longest_prefix = |text: &'k str| -> Option<(&'k str, &'k str)> {
        aliases
            .iter()
            .filter(|alias| {
                text.len() > alias.len()
                    && text.starts_with(alias.as_str())
                    && text[alias.len()..].starts_with('.')
            })
            .max_by_key(|alias| alias.len())
            .map(|alias| (&text[..alias.len()], &text[alias.len() + 1..]))
    };
    let known = || aliases.join(", ");
    if let Some((source, after)) = key.split_once("->") {
        if !aliases.iter().any(|alias| alias == source) {
            let message = format!(
                "unknown cluster `{source}` in flow key (clusters: {})",
                known()
            );
            return (Scope::BadFlow, Some(message));
        }
        return match longest_prefix(after) {
            Some((target, _)) if target == source => (
                Scope::BadFlow,
                Some("a flow's source and target must differ".to_owned()),
            ),
            Some((target, rest)) => (Scope::Flow(source, target, rest), None),
            None => {
                let target = after.split('.').next().unwrap_or(after);
                let message = format!(
                    "unknown cluster `{target}` in flow key (clusters: {})",
                    known()
                );
                (Scope::BadFlow, Some(message))
            }
        };
    }
    match longest_prefix(key) {
        Some((alias, rest)) => (Scope::Cluster(alias, rest), None),
        None => (Scope::Top, None),
    }
}

/// The login module and credentials of a `sasl.jaas.config` value.
struct Jaas {
    module: String,
    username: String,
    password: String,
}

/// Parses `<LoginModule> <flag> key="value" ... ;` (one login module, as Kafka clients
/// require). Messages never quote option values, which may be secrets.
fn parse_jaas(text: &str) -> Result<Jaas, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut position = 0;
    let skip_space = |position: &mut usize| {
        while chars.get(*position).is_some_and(|c| c.is_whitespace()) {
            *position += 1;
        }
    };
    let word = |position: &mut usize| -> String {
        let start = *position;
        while chars
            .get(*position)
            .is_some_and(|c| !c.is_whitespace() && *c != ';' && *c != '=' && *c != '"')
        {
            *position += 1;
        }
        chars[start..*position].iter().collect()
    };
    skip_space(&mut position);
    let module = word(&mut position);
    if module.is_empty() {
        return Err(
            "expected `<LoginModule> required username=\"...\" password=\"...\";`".to_owned(),
        );
    }
    skip_space(&mut position);
    let flag = word(&mut position);
    if !["required", "requisite", "sufficient", "optional"]
        .iter()
        .any(|known| flag.eq_ignore_ascii_case(known))
    {
        return Err(format!(
            "expected a control flag (required, requisite, sufficient or optional) after `{module}`"
        ));
    }
    let mut username = None;
    let mut password = None;
    loop {
        skip_space(&mut position);
        match chars.get(position) {
            None => return Err("missing the `;` that ends the login module".to_owned()),
            Some(';') => {
                position += 1;
                break;
            }
            Some(_) => {}
        }
        let name = word(&mut position);
        skip_space(&mut position);
        if name.is_empty() || chars.get(position) != Some(&'=') {
            return Err("expected `name=value` options after the control flag".to_owned());
        }
        position += 1;
        skip_space(&mut position);
        let value = if chars.get(position) == Some(&'"') {
            position += 1;
            let mut value = String::new();
            loop {
                match chars.get(position) {
                    None => return Err(format!("option `{name}` has an unterminated quote")),
                    Some('"') => {
                        position += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(escaped) = chars.get(position + 1) {
                            value.push(*escaped);
                        }
                        position += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        position += 1;
                    }
                }
            }
            value
        } else {
            word(&mut position)
        };
        match name.as_str() {
            "username" => username = Some(value),
            "password" => password = Some(value),
            _ => {}
        }
    }
    skip_space(&mut position);
    if position < chars.len() {
        return Err("only one login module is allowed".to_owned());
    }
    match (username, password) {
        (Some(username), Some(password)) if !username.is_empty() && !password.is_empty() => {
            Ok(Jaas {
                module,
                username,
                password,
            })
        }
        _ => Err("the login module needs non-empty `username` and `password` options".to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// Unused keys

/// Every key not read during resolution, by line, with the reason.
fn unused_keys(
    props: &BTreeMap<String, Property>,
    used: &HashSet<String>,
    clusters_used: &HashSet<String>,
    flows_enabled: &HashSet<(String, String)>,
) -> Vec<UnusedKey> {
    let aliases: Vec<String> = props
        .get("clusters")
        .map(|property| {
            property
                .value
                .split(',')
                .map(|alias| alias.trim().to_owned())
                .filter(|alias| !alias.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut unused: Vec<UnusedKey> = props
        .iter()
        .filter(|(key, _)| !used.contains(key.as_str()))
        .map(|(key, property)| {
            let reason = match classify(key, &aliases).0 {
                Scope::Top => top_level_reason(key),
                Scope::Cluster(alias, rest) => {
                    if clusters_used.contains(alias) {
                        cluster_reason(rest)
                    } else {
                        "no enabled flow uses this cluster"
                    }
                }
                Scope::Flow(source, target, rest) => {
                    if flows_enabled.contains(&(source.to_owned(), target.to_owned())) {
                        flow_reason(rest)
                    } else {
                        "the flow is not enabled; ferry runs only enabled flows"
                    }
                }
                Scope::BadFlow => "the flow names a cluster that is not in `clusters`",
            };
            UnusedKey {
                key: key.clone(),
                line: property.line,
                reason,
            }
        })
        .collect();
    unused.sort_by(|left, right| (left.line, &left.key).cmp(&(right.line, &right.key)));
    unused
}

/// Why a connector or worker key is not used, for the keys MM2 knows under any prefix.
fn known_reason(name: &str) -> Option<&'static str> {
    let prefixed = |prefixes: &[&str]| prefixes.iter().any(|prefix| name.starts_with(prefix));
    let reason = match name {
        "groups.blacklist" => "`groups.exclude` is set, which wins over its old alias",
        "config.properties.blacklist" => {
            "`config.properties.exclude` is set, which wins over its old alias"
        }
        "group.filter.class" => {
            "custom group filters are not supported; use `groups` and `groups.exclude`"
        }
        "config.property.filter.class" => {
            "custom config property filters are not supported; use `config.properties.exclude`"
        }
        "refresh.groups.enabled" | "refresh.groups.interval.seconds" => {
            "ferry lists the source groups at every checkpoint"
        }
        "use.incremental.alter.configs" => {
            "ferry always uses incremental alter configs, so target-only settings survive"
        }
        "offset-syncs.topic.partitions" => "the offset-syncs topic has one partition, as in mm2",
        "topics.blacklist" => "`topics.exclude` is set, which wins over its old alias",
        "topic.filter.class" => {
            "custom topic filters are not supported; use `topics` and `topics.exclude`"
        }
        "forwarding.admin.class" => "custom admin clients are not supported",
        "refresh.topics.enabled" => "ferry always looks for new topics and partitions",
        "consumer.poll.timeout.ms" | "admin.timeout.ms" => "ferry uses its own timeouts",
        "metric.reporters" | "auto.include.jmx.reporter" | "add.source.alias.to.metrics" => {
            "ferry exports its own metrics"
        }
        "name" | "connector.class" | "source.cluster.alias" | "target.cluster.alias" => {
            "ferry has no connectors and takes the aliases from the flow name `A->B`"
        }
        "group.id" => "a Connect worker group; ferry's flow group is `ferry.<source>-<target>`",
        "client.id" => "ferry names its own clients",
        "enabled" => "no flow is enabled by it (`A->B.enabled` or heartbeats decide)",
        "exactly.once.support" | "exactly.once.source.support" => {
            "exactly-once delivery is not supported yet"
        }
        "offset.flush.interval.ms" => {
            "mm2 reads it only as `<target>.offset.flush.interval.ms`, which sets a flow's commit interval"
        }
        "dedicated.mode.enable.internal.rest"
        | "listeners"
        | "access.control.allow.origin"
        | "access.control.allow.methods"
        | "response.http.headers.config"
        | "ssl.client.auth" => "mm2's internal rest server; ferry has none",
        _ if prefixed(&["offset.storage."]) => {
            "ferry creates the positions topic (`offset.storage.topic`) with the flow's replication.factor and 25 partitions"
        }
        _ if prefixed(&["config.storage.", "status.storage."]) => {
            "a Connect internal topic; ferry has no Connect worker"
        }
        _ if prefixed(&["key.converter", "value.converter", "header.converter"]) => {
            "ferry copies record bytes unchanged, as mm2's ByteArrayConverter does"
        }
        _ if prefixed(&["transforms", "predicates"]) => {
            "single message transforms are not supported"
        }
        _ if prefixed(&["transaction.boundary", "exactly.once."]) => {
            "exactly-once delivery is not supported yet"
        }
        _ if prefixed(&["topic.creation."]) => "ferry creates target topics from the source topics",
        _ if prefixed(&["errors.", "tasks.max.enforce", "config.action.reload"]) => {
            "a Connect connector setting; ferry has no Connect worker"
        }
        _ if prefixed(&["rest.", "admin.listeners"]) => {
            "mm2's internal rest server; ferry has none"
        }
        _ if prefixed(&["config.providers"]) => {
            "config providers are not supported; `${provider:path:key}` values are taken literally"
        }
        _ if prefixed(&["sasl.", "ssl."]) => {
            "only PLAIN/SCRAM credentials from sasl.jaas.config are mapped; tls files, keystores and other sasl settings are not yet"
        }
        _ if prefixed(&[
            "task.",
            "worker.",
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "rebalance.timeout.ms",
            "scheduled.rebalance.max.delay.ms",
            "connect.protocol",
            "offset.flush.timeout.ms",
            "inter.worker.",
        ]) =>
        {
            "a Connect worker setting; ferry has no Connect worker"
        }
        _ => return None,
    };
    Some(reason)
}

fn top_level_reason(key: &str) -> &'static str {
    if ["consumer.", "producer.", "admin."]
        .iter()
        .any(|prefix| key.starts_with(prefix))
    {
        return "mm2 ignores top-level consumer.*, producer.* and admin.* keys too; use `<alias>.consumer.*`";
    }
    if matches!(
        key,
        "security.protocol" | "sasl.mechanism" | "sasl.jaas.config"
    ) {
        return "every cluster of an enabled flow sets its own value, or does not need it";
    }
    if key == "bootstrap.servers" {
        return "every cluster of an enabled flow sets its own value";
    }
    known_reason(key).unwrap_or("not an mm2 top-level setting; mm2 ignores it too")
}

fn cluster_reason(rest: &str) -> &'static str {
    if ["consumer.", "producer.", "admin."]
        .iter()
        .any(|prefix| rest.starts_with(prefix))
    {
        return "client overrides are not mapped to librdkafka yet";
    }
    if rest == "sasl.mechanism" || rest == "sasl.jaas.config" {
        return "the cluster's security.protocol is not SASL";
    }
    known_reason(rest).unwrap_or("ferry does not use this cluster setting")
}

fn flow_reason(rest: &str) -> &'static str {
    if ["consumer.", "producer.", "admin."]
        .iter()
        .any(|prefix| rest.starts_with(prefix))
    {
        return "client overrides are not mapped to librdkafka yet";
    }
    known_reason(rest).unwrap_or("ferry does not use this flow setting")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> BTreeMap<String, Property> {
        let (props, errors) = parse_properties(text);
        assert!(errors.is_empty(), "{errors:?}");
        props
    }

    fn value(props: &BTreeMap<String, Property>, key: &str) -> (String, usize) {
        let property = &props[key];
        (property.value.clone(), property.line)
    }

    fn resolve(text: &str) -> (Config, Vec<UnusedKey>) {
        match parse_mm2(text, Path::new("mm2.properties")) {
            Ok(resolved) => resolved,
            Err(errors) => panic!("{errors}"),
        }
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match parse_mm2(text, Path::new("mm2.properties")) {
            Ok((config, _)) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors.errors,
        }
    }

    fn reason<'u>(unused: &'u [UnusedKey], key: &str) -> Option<&'u UnusedKey> {
        unused.iter().find(|unused| unused.key == key)
    }

    #[test]
    fn separators_and_comments() {
        let props = props(
            "# comment\n! also a comment\n\n  a=1\nb : 2\nc 3\nd\t=\t4\ne\nf = x # not a comment\ng==5\nh:\n",
        );
        assert_eq!(value(&props, "a"), ("1".to_owned(), 4));
        assert_eq!(value(&props, "b"), ("2".to_owned(), 5));
        assert_eq!(value(&props, "c"), ("3".to_owned(), 6));
        assert_eq!(value(&props, "d"), ("4".to_owned(), 7));
        assert_eq!(value(&props, "e"), (String::new(), 8));
        assert_eq!(value(&props, "f").0, "x # not a comment");
        assert_eq!(value(&props, "g").0, "=5");
        assert_eq!(value(&props, "h").0, "");
        assert_eq!(props.len(), 8);
    }

    #[test]
    fn continuations_keep_the_first_line() {
        let props = props(
            "topics = a, \\\n    b, \\\r\n\tc\nnext = 1\n# comment \\\nafter = 2\nodd = x\\\\\nlast = y\\",
        );
        assert_eq!(value(&props, "topics"), ("a, b, c".to_owned(), 1));
        assert_eq!(value(&props, "next"), ("1".to_owned(), 4));
        // A comment line is never continued.
        assert_eq!(value(&props, "after"), ("2".to_owned(), 6));
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(value(&props, "odd"), ("x\\".to_owned(), 7));
        assert_eq!(value(&props, "last"), ("y".to_owned(), 8));
    }

    #[test]
    fn escapes() {
        let props =
            props("a\\ key\\=x = tab\\there\\nnew\\u0041\\u00e9\\\\ \\q\nemoji = \\ud83d\\ude00\n");
        assert_eq!(value(&props, "a key=x").0, "tab\there\nnewAé\\ q");
        assert_eq!(value(&props, "emoji").0, "😀");
    }

    #[test]
    fn later_duplicates_win_with_their_line() {
        let props = props("a = 1\nb = 2\na = 3\n");
        assert_eq!(value(&props, "a"), ("3".to_owned(), 3));
    }

    #[test]
    fn malformed_unicode_escape_names_its_line() {
        let (_, errors) = parse_properties("ok = 1\nbad = \\u12x4\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(2));
        assert_eq!(errors[0].key, "bad");
    }

    /// Appendix A, with its annotations removed (Java has no end-of-line comments) and SASL
    /// credentials added as top-level defaults (`SASL_SSL` needs them in Ferry).
    const APPENDIX_A: &str = "\
clusters = A, B
A.bootstrap.servers = a1:9092
B.bootstrap.servers = b1:9092
security.protocol = SASL_SSL
sasl.mechanism = SCRAM-SHA-512
sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"s3cret\";
A.consumer.isolation.level = read_committed
B.producer.compression.type = zstd
B.exactly.once.source.support = enabled
tasks.max = 8
consumer.max.poll.records = 2000
A->B.enabled = true
A->B.topics = orders.*, payments
A->B.exactly.once.support = required
offset.storage.replication.factor = 3
dedicated.mode.enable.internal.rest = true
listeners = http://0.0.0.0:8083
";

    #[test]
    fn appendix_a_resolves_as_mm2() {
        let (config, unused) = resolve(APPENDIX_A);
        assert_eq!(config.flows.len(), 1, "B->A is heartbeat-only");
        let flow = &config.flows[0];
        assert_eq!(flow.id.as_str(), "A->B");
        assert!(flow.enabled);
        assert_eq!(flow.tasks, 8);
        assert_eq!(flow.replication_factor, 2);
        assert_eq!(flow.refresh_topics_interval, Duration::from_secs(600));
        assert_eq!(flow.commit_interval, Duration::from_secs(60));
        assert!(flow.topics.matches("orders.eu") && flow.topics.matches("payments"));
        assert!(!flow.topics.matches("payments2"));
        assert!(flow.topics_exclude.matches("mm2-offsets.A.internal"));
        assert!(flow.topics_exclude.matches("__consumer_offsets"));
        assert_eq!(
            flow.policy.uses,
            PluginSource::Builtin("default-policy".to_owned())
        );
        assert!(flow.heartbeats_replication);
        assert_eq!(flow.group_id, "ferry.A-B");
        for alias in ["A", "B"] {
            let cluster = &config.clusters[&ClusterName::new(alias).unwrap()];
            assert_eq!(cluster.security_protocol, SecurityProtocol::SaslSsl);
            let sasl = cluster.sasl.as_ref().unwrap();
            assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
            assert_eq!(sasl.username, "mm2");
            assert_eq!(sasl.password.expose(), "s3cret");
        }
        assert_eq!(
            config.clusters[&ClusterName::new("A").unwrap()].bootstrap_servers,
            "a1:9092"
        );
        let keys: Vec<&str> = unused.iter().map(|unused| unused.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "A.consumer.isolation.level",
                "B.producer.compression.type",
                "B.exactly.once.source.support",
                "consumer.max.poll.records",
                "A->B.exactly.once.support",
                "offset.storage.replication.factor",
                "dedicated.mode.enable.internal.rest",
                "listeners",
            ]
        );
        let top = reason(&unused, "consumer.max.poll.records").unwrap();
        assert_eq!(top.line, 11);
        assert!(top.reason.contains("mm2 ignores"), "{top}");
    }

    #[test]
    fn appendix_a_verbatim_needs_sasl_credentials() {
        let text = APPENDIX_A
            .lines()
            .filter(|line| !line.starts_with("sasl."))
            .collect::<Vec<_>>()
            .join("\n");
        let errors = errors(&text);
        assert!(
            errors
                .iter()
                .all(|error| error.key == "security.protocol" && error.line == Some(4))
        );
        assert!(errors.iter().any(|error| error.message.contains("GSSAPI")));
    }

    /// The operator file of issue 3, shipped as an example (4 comment lines, then the file).
    const ISSUE_3: &str = include_str!("../../../examples/connect-mirror-maker.properties");

    #[test]
    fn issue_3_operator_file() {
        let (config, unused) = resolve(ISSUE_3);
        assert_eq!(config.flows.len(), 1);
        let flow = &config.flows[0];
        assert_eq!(flow.id.as_str(), "clusterA->clusterB");
        assert_eq!(flow.tasks, 8);
        assert_eq!(flow.replication_factor, 3);
        assert_eq!(flow.refresh_topics_interval, Duration::from_secs(300));
        assert!(flow.topics.matches("prod.orders.global"));
        assert!(!flow.topics.matches("dev.orders.global"));
        assert!(flow.topics_exclude.matches("clusterA.heartbeats"));
        assert!(!flow.topics_exclude.matches("prod.orders.global"));
        assert_eq!(flow.group_id, "ferry.clusterA-clusterB");
        assert_eq!(config.clusters.len(), 2);
        assert_eq!(
            config.clusters[&ClusterName::new("clusterA").unwrap()].bootstrap_servers,
            "brokerA-1:9092,brokerA-2:9092,brokerA-3:9092"
        );
        for cluster in config.clusters.values() {
            assert_eq!(cluster.security_protocol, SecurityProtocol::SaslPlaintext);
            let sasl = cluster.sasl.as_ref().unwrap();
            assert_eq!(sasl.mechanism, SaslMechanism::Plain);
            assert_eq!(sasl.username, "your_user");
            assert_eq!(sasl.password.expose(), "your_password");
            assert!(!format!("{cluster:?}").contains("your_password"));
        }
        // The MM2 features the file turns on.
        assert_eq!(
            flow.positions_topic,
            "mm2-offset.from-clusterA-to-clusterB.internal"
        );
        assert_eq!(flow.emit_checkpoints, Some(Duration::from_secs(60)));
        assert_eq!(flow.emit_heartbeats, Some(Duration::from_secs(1)));
        assert!(flow.emit_offset_syncs);
        assert!(!flow.offset_syncs_on_target);
        assert_eq!(flow.offset_lag_max, 100);
        assert_eq!(flow.sync_group_offsets, Some(Duration::from_secs(60)));
        assert_eq!(flow.sync_topic_acls, Some(Duration::from_secs(300)));
        assert_eq!(flow.sync_topic_configs, Some(Duration::from_secs(600)));
        assert!(flow.groups.matches("produser_consumer_1"));
        assert!(!flow.groups.matches("other"));
        assert!(flow.groups_exclude.matches("console-consumer-1"));
        assert!(
            flow.config_properties_exclude
                .matches("min.insync.replicas")
        );
        assert!(!flow.config_properties_exclude.matches("retention.ms"));
        assert_eq!(
            (
                flow.heartbeats_replication_factor,
                flow.checkpoints_replication_factor,
                flow.offset_syncs_replication_factor
            ),
            (3, 3, 3)
        );
        let storage = reason(&unused, "config.storage.topic").unwrap();
        assert_eq!(storage.line, 26);
        assert!(storage.reason.contains("Connect internal topic"));
        let refresh = reason(
            &unused,
            "clusterA->clusterB.refresh.groups.interval.seconds",
        )
        .unwrap();
        assert!(refresh.reason.contains("every checkpoint"), "{refresh}");
        for key in [
            "clusterA.group.id",
            "name",
            "source.cluster.alias",
            "offset.storage.replication.factor",
        ] {
            assert!(reason(&unused, key).is_some(), "{key} is not reported");
        }
        for key in [
            "tasks.max",
            "clusterA->clusterB.topics",
            "clusterB->clusterA.enabled",
            "clusterA.sasl.jaas.config",
            "clusterA->clusterB.refresh.topics.interval.seconds",
            "clusterA->clusterB.groups",
            "clusterA->clusterB.sync.topic.acls.enabled",
            "clusterA->clusterB.sync.topic.acls.interval.seconds",
            "clusterA->clusterB.sync.group.offsets.enabled",
            "clusterA->clusterB.emit.checkpoints.enabled",
            "clusterA->clusterB.emit.offset-syncs.enabled",
            "checkpoints.topic.replication.factor",
            "heartbeats.topic.replication.factor",
            "offset-syncs.topic.replication.factor",
            "offset.storage.topic",
        ] {
            assert!(reason(&unused, key).is_none(), "{key} is used");
        }
        // Every key is either used or reported.
        assert!(unused.windows(2).all(|pair| pair[0].line < pair[1].line));
        assert_eq!(
            unused[0].to_string(),
            "line 6: clusterA.group.id: a Connect worker group; ferry's flow group is `ferry.<source>-<target>`"
        );
    }

    #[test]
    fn policy_and_worker_keys() {
        let (config, unused) = resolve(
            "clusters = A, B\nA.bootstrap.servers = a:1\nB.bootstrap.servers = b:1\n\
             replication.policy.class = org.apache.kafka.connect.mirror.IdentityReplicationPolicy\n\
             A->B.replication.policy.separator = _\n\
             B.offset.flush.interval.ms = 5000\noffset.flush.interval.ms = 1\n\
             A->B.enabled = true\nA->B.heartbeats.replication.enabled = false\n\
             topics.blacklist = x.*\n",
        );
        let flow = &config.flows[0];
        assert_eq!(
            flow.policy.uses,
            PluginSource::Builtin("identity-policy".to_owned())
        );
        assert_eq!(
            flow.policy.with,
            [("replication.policy.separator".to_owned(), "_".to_owned())]
        );
        assert_eq!(flow.commit_interval, Duration::from_millis(5000));
        assert!(!flow.heartbeats_replication);
        assert!(flow.topics_exclude.matches("x.y") && !flow.topics_exclude.matches("__a"));
        assert_eq!(
            config.clusters[&ClusterName::new("A").unwrap()].security_protocol,
            SecurityProtocol::Plaintext
        );
        assert!(reason(&unused, "offset.flush.interval.ms").is_some());
    }

    #[test]
    fn policy_settings_keep_file_order_and_raw_values() {
        let (config, _) = resolve(
            "clusters = A, B\nA.bootstrap.servers = a:1\nB.bootstrap.servers = b:1\n\
             A->B.replication.policy.internal.topic.separator.enabled = false\n\
             replication.policy.separator = -\nA->B.enabled = true\n",
        );
        assert_eq!(
            config.flows[0].policy.with,
            [
                (
                    "replication.policy.internal.topic.separator.enabled".to_owned(),
                    "false".to_owned()
                ),
                ("replication.policy.separator".to_owned(), "-".to_owned()),
            ]
        );
    }

    #[test]
    fn secret_escape_errors_hide_the_value() {
        let errors = errors("clusters = A\nsasl.jaas.config = x password=\"\\uzzzz\";\n");
        let error = errors
            .iter()
            .find(|error| error.key == "sasl.jaas.config")
            .unwrap();
        assert_eq!(error.line, Some(2));
        assert!(!error.message.contains("zzzz"), "{}", error.message);
    }

    #[test]
    fn top_level_enabled_needs_heartbeat_herders() {
        let base = "clusters = A, B\nA.bootstrap.servers = a:1\nB.bootstrap.servers = b:1\nenabled = true\n";
        let (config, _) = resolve(base);
        let ids: Vec<&str> = config.flows.iter().map(|flow| flow.id.as_str()).collect();
        assert_eq!(ids, ["A->B", "B->A"]);
        let (config, _) = resolve(&format!("{base}B->A.emit.heartbeats.enabled = false\n"));
        assert_eq!(config.flows.len(), 1);
        let (config, unused) = resolve(&format!("{base}A->B.enabled = false\n"));
        assert_eq!(config.flows[0].id.as_str(), "B->A");
        assert!(reason(&unused, "A->B.enabled").is_none());
    }

    #[test]
    fn errors_name_key_and_line() {
        let errors = errors(
            "clusters = A, B\n\
             A.bootstrap.servers = a:1\n\
             A->B.enabled = true\n\
             A->B.replication.factor = three\n\
             A->B.topics = (unclosed\n\
             A->C.enabled = true\n\
             X->B.topics = a\n\
             tasks.max = 0\n\
             replication.policy.class = com.example.MyPolicy\n\
             B.security.protocol = SASL_PLAINTEXT\n\
             B.sasl.mechanism = PLAIN\n\
             B.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";\n",
        );
        let found: Vec<(Option<usize>, &str)> = errors
            .iter()
            .map(|error| (error.line, error.key.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(4), "A->B.replication.factor"),
                (Some(5), "A->B.topics"),
                (Some(6), "A->C.enabled"),
                (Some(7), "X->B.topics"),
                (Some(8), "tasks.max"),
                (Some(9), "replication.policy.class"),
                (Some(12), "B.sasl.jaas.config"),
                (None, "B.bootstrap.servers"),
            ]
        );
        assert!(errors[0].message.contains("`three`"));
        assert!(errors[2].message.contains("unknown cluster `C`"));
        assert!(errors[3].message.contains("unknown cluster `X`"));
        assert!(errors[5].message.contains("com.example.MyPolicy"));
        assert!(
            errors
                .iter()
                .all(|error| !error.message.contains("your_password"))
        );
    }

    #[test]
    fn no_enabled_flow_and_missing_clusters() {
        let errors_found = errors("clusters = A, B\nA->B.enabled = false\n");
        assert_eq!(errors_found.len(), 1);
        assert_eq!(
            errors_found[0].message,
            "no flow is enabled: set `A->B.enabled = true`"
        );
        let errors_found = errors("A->B.enabled = true\n");
        assert_eq!(errors_found[0].key, "clusters");
    }

    #[test]
    fn jaas_parsing() {
        let jaas = parse_jaas(
            "org.apache.kafka.common.security.scram.ScramLoginModule required\n username=u password=\"p \\\"q\\\"\" ;",
        )
        .unwrap();
        assert_eq!(jaas.module, SCRAM_LOGIN_MODULE);
        assert_eq!(
            (jaas.username.as_str(), jaas.password.as_str()),
            ("u", "p \"q\"")
        );
        assert!(parse_jaas("x required username=\"u\" password=\"p\"").is_err());
        assert!(parse_jaas("x maybe username=\"u\" password=\"p\";").is_err());
        let error = parse_jaas("x required username=\"u\" password=\"secret")
            .err()
            .unwrap();
        assert!(!error.contains("secret\""), "{error}");
    }
}
