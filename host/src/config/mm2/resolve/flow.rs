//! A flow's settings: MM2's connector keys (`<source>-><target>.<key>`, else the top-level
//! key, else MM2's default) and the Connect worker keys of the target, read into a [`Flow`].
//!
//! This module owns MM2's defaults for a flow, the deprecated aliases of its list keys, the
//! `*.enabled` / `*.interval.seconds` pairs and the mapping of MM2's replication policy classes
//! to Ferry's built-in policies.

use std::time::Duration;

use super::Resolver;
use crate::config::raw::default_group_id;
use crate::config::{
    ClusterName, ErrorPolicy, Flow, FlowId, PluginRef, PluginSource, TopicPatterns,
    default_dead_letter_topic,
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

/// Ferry's default `transaction_interval` (MM2 commits at every poll by default,
/// `transaction.boundary = poll`).
const DEFAULT_TRANSACTION_INTERVAL: Duration = Duration::from_millis(100);

const DEFAULT_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.DefaultReplicationPolicy";
const IDENTITY_POLICY_CLASS: &str = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy";

impl Resolver<'_> {
    /// Whether flow `source->target` copies exactly once, read where MM2 reads it: the Connect
    /// worker key `<target>.exactly.once.source.support = enabled` (MM2's `preparing` and
    /// `disabled` leave it off), or the connector key `<source>-><target>.exactly.once.support`
    /// = `required` (or `enabled`; `requested` asks for what the worker key gives). MM2 drops
    /// both keys at the top level (`unused.rs` says so).
    fn exactly_once(&mut self, source: &str, target: &str) -> Option<bool> {
        let worker = match self.take(&format!("{target}.exactly.once.source.support")) {
            None => false,
            Some((key, value)) => match value.to_ascii_lowercase().as_str() {
                "enabled" => true,
                "preparing" | "disabled" => false,
                other => {
                    self.report(
                        &key,
                        format!("expected `enabled`, `preparing` or `disabled`, not `{other}`"),
                    );
                    return None;
                }
            },
        };
        let connector = match self.take(&format!("{source}->{target}.exactly.once.support")) {
            None => false,
            Some((key, value)) => match value.to_ascii_lowercase().as_str() {
                "enabled" | "required" => true,
                "requested" => false,
                other => {
                    self.report(
                        &key,
                        format!("expected `required`, `requested` or `enabled`, not `{other}`"),
                    );
                    return None;
                }
            },
        };
        Some(worker || connector)
    }

    pub(super) fn flow(&mut self, source: &str, target: &str) -> Option<Flow> {
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

        let exactly_once = self.exactly_once(source, target);

        let (key, value) = setting(self, "heartbeats.replication.enabled", "true");
        let heartbeats_replication = self.boolean(&key, &value);

        // A Connect worker key: `<target>.offset.storage.topic`, else the top-level key (worker
        // keys with the `offset.storage` prefix are passed down), else MM2's default.
        let positions_topic = self
            .take(&format!("{target}.offset.storage.topic"))
            .or_else(|| self.take("offset.storage.topic"))
            .map_or_else(
                || crate::mm2::positions::positions_topic(source),
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
            dead_letter_topic: default_dead_letter_topic(source),
            replication_factor: replication_factor?,
            tasks: tasks?,
            refresh_topics_interval: refresh_topics_interval?,
            commit_interval: commit_interval?,
            exactly_once: exactly_once?,
            transaction_interval: DEFAULT_TRANSACTION_INTERVAL,
            transaction_records: DEFAULT_MAX_IN_FLIGHT,
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::mm2::tests::{errors, reason, resolve};
    use crate::config::{ClusterName, PluginSource, SecurityProtocol};

    /// Issue 9: exactly-once is read where MM2 reads it, and only `enabled` (worker) or
    /// `required` (connector) turn it on.
    #[test]
    fn exactly_once_follows_mm2s_keys() {
        let file = |lines: &str| {
            format!(
                "clusters = A, B\nA.bootstrap.servers = a:1\nB.bootstrap.servers = b:1\n\
                 A->B.enabled = true\n{lines}"
            )
        };
        let on = |lines: &str| resolve(&file(lines)).0.flows[0].exactly_once;
        assert!(!on(""), "at least once by default");
        assert!(on("B.exactly.once.source.support = enabled\n"));
        assert!(on("A->B.exactly.once.support = required\n"));
        assert!(!on("B.exactly.once.source.support = preparing\n"));
        assert!(!on("A->B.exactly.once.support = requested\n"));
        // MM2 drops both at the top level, and so does Ferry, saying so.
        let (config, unused) = resolve(&file(
            "exactly.once.source.support = enabled\nexactly.once.support = required\n",
        ));
        assert!(!config.flows[0].exactly_once);
        assert!(
            reason(&unused, "exactly.once.source.support").is_some_and(|unused| unused
                .reason
                .contains("<target>.exactly.once.source.support"))
        );
        assert!(reason(&unused, "exactly.once.support").is_some());
        let problems = errors(&file("B.exactly.once.source.support = on\n"));
        assert!(
            problems
                .iter()
                .any(|problem| problem.key == "B.exactly.once.source.support"
                    && problem.message.contains("expected `enabled`")),
            "{problems:?}"
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
}
