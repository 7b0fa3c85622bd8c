//! MirrorMaker 2's `DefaultReplicationPolicy` (Kafka 3.8), ported line by line: the builtin
//! `default-policy` plugin exports it, and other policies wrap it the way MM2 policies extend it.

use crate::{Config, ReplicationPolicy, java};

/// MM2's `replication.policy.separator` key.
pub const SEPARATOR_CONFIG: &str = "replication.policy.separator";
/// MM2's default separator.
pub const SEPARATOR_DEFAULT: &str = ".";
/// MM2's `replication.policy.internal.topic.separator.enabled` key (KIP-949, Kafka 3.6).
pub const INTERNAL_TOPIC_SEPARATOR_ENABLED_CONFIG: &str =
    "replication.policy.internal.topic.separator.enabled";
/// The key holding the flow's source cluster alias; the host always passes it to `init`.
pub const SOURCE_CLUSTER_ALIAS_CONFIG: &str = "source.cluster.alias";
/// The key holding the flow's target cluster alias; the host always passes it to `init`.
pub const TARGET_CLUSTER_ALIAS_CONFIG: &str = "target.cluster.alias";

const OFFSET_SYNCS_TOPIC_PREFIX: &str = "mm2-offset-syncs";
const CHECKPOINTS_TOPIC_SUFFIX: &str = "checkpoints";
const INTERNAL_TOPIC_SUFFIX: &str = "internal";

/// MM2's `DefaultReplicationPolicy`: remote topics are `<alias><separator><topic>`.
///
/// - [`init`](ReplicationPolicy::init) reads `replication.policy.separator` (default `.`), and,
///   only when that key is present, `replication.policy.internal.topic.separator.enabled`
///   (default `true`; `false` keeps `.` in internal topic names).
/// - [`topic_source`](ReplicationPolicy::topic_source) is the first part of Java's
///   `Pattern.split` of the name (see [`java::split`]): `.topic` has source `""`, while `topic.`,
///   `.` and `..` are not remote. Any name containing the separator counts as remote, and an alias
///   containing the separator breaks parsing, exactly as in MM2.
/// - Internal names (`offset_syncs_topic`, `checkpoints_topic`, `is_checkpoints_topic`,
///   `is_mm2_internal_topic`) use the internal separator; `heartbeats` never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultReplicationPolicy {
    separator: String,
    internal_topic_separator_enabled: bool,
}

impl Default for DefaultReplicationPolicy {
    fn default() -> Self {
        DefaultReplicationPolicy {
            separator: SEPARATOR_DEFAULT.to_owned(),
            internal_topic_separator_enabled: true,
        }
    }
}

impl DefaultReplicationPolicy {
    /// A policy configured with `config`, as `init` would configure it.
    ///
    /// # Errors
    ///
    /// Never, today; the `Result` keeps the signature of [`ReplicationPolicy::init`].
    pub fn configured(config: &Config) -> Result<Self, String> {
        let mut policy = DefaultReplicationPolicy::default();
        policy.init(config)?;
        Ok(policy)
    }

    /// The separator between the alias and the topic (MM2: `separator`).
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The separator used in internal topic names (MM2: `internalSeparator()`): the separator,
    /// or `.` when `replication.policy.internal.topic.separator.enabled` is `false`.
    pub fn internal_separator(&self) -> &str {
        if self.internal_topic_separator_enabled {
            &self.separator
        } else {
            SEPARATOR_DEFAULT
        }
    }

    fn internal_suffix(&self) -> String {
        format!("{}{INTERNAL_TOPIC_SUFFIX}", self.internal_separator())
    }

    fn checkpoints_topic_suffix(&self) -> String {
        let separator = self.internal_separator();
        format!("{separator}{CHECKPOINTS_TOPIC_SUFFIX}{separator}{INTERNAL_TOPIC_SUFFIX}")
    }
}

impl ReplicationPolicy for DefaultReplicationPolicy {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        if let Some(separator) = config.get(SEPARATOR_CONFIG) {
            separator.clone_into(&mut self.separator);
            if let Some(enabled) = config.get_bool(INTERNAL_TOPIC_SEPARATOR_ENABLED_CONFIG) {
                self.internal_topic_separator_enabled = enabled;
            }
        }
        Ok(())
    }

    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        format!("{source_cluster_alias}{}{topic}", self.separator)
    }

    fn topic_source(&self, topic: &str) -> Option<String> {
        let parts = java::split(topic, &self.separator);
        if parts.len() < 2 {
            None
        } else {
            parts.first().map(|source| (*source).to_owned())
        }
    }

    fn upstream_topic(&self, topic: &str) -> Option<String> {
        let source = self.topic_source(topic)?;
        topic
            .get(source.len() + self.separator.len()..)
            .map(str::to_owned)
    }

    fn offset_syncs_topic(&self, cluster_alias: &str) -> String {
        let separator = self.internal_separator();
        format!(
            "{OFFSET_SYNCS_TOPIC_PREFIX}{separator}{cluster_alias}{separator}{INTERNAL_TOPIC_SUFFIX}"
        )
    }

    fn checkpoints_topic(&self, cluster_alias: &str) -> String {
        format!("{cluster_alias}{}", self.checkpoints_topic_suffix())
    }

    fn is_checkpoints_topic(&self, topic: &str) -> bool {
        topic.ends_with(&self.checkpoints_topic_suffix())
    }

    fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        topic.ends_with(&self.internal_suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::DefaultReplicationPolicy;
    use crate::{Config, ReplicationPolicy};

    fn policy(config: &[(&str, &str)]) -> DefaultReplicationPolicy {
        let config = Config::new(
            config
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        );
        DefaultReplicationPolicy::configured(&config).unwrap()
    }

    #[test]
    fn separator_config() {
        let check = |config: &[(&str, &str)], separator: &str, internal: &str| {
            let policy = policy(config);
            assert_eq!(policy.separator(), separator, "{config:?}");
            assert_eq!(policy.internal_separator(), internal, "{config:?}");
        };
        check(&[], ".", ".");
        check(&[("replication.policy.separator", "_")], "_", "_");
        check(&[("replication.policy.separator", ".")], ".", ".");
        check(
            &[
                ("replication.policy.separator", "_"),
                (
                    "replication.policy.internal.topic.separator.enabled",
                    "false",
                ),
            ],
            "_",
            ".",
        );
        check(
            &[
                ("replication.policy.separator", "_"),
                (
                    "replication.policy.internal.topic.separator.enabled",
                    "TRUE",
                ),
            ],
            "_",
            "_",
        );
        // Only read when the separator key is present (MM2 3.8 `configure`).
        check(
            &[(
                "replication.policy.internal.topic.separator.enabled",
                "false",
            )],
            ".",
            ".",
        );
    }

    #[test]
    fn custom_separator_names() {
        let policy = policy(&[("replication.policy.separator", "_")]);
        assert_eq!(policy.format_remote_topic("A", "orders"), "A_orders");
        assert_eq!(
            policy.offset_syncs_topic("B"),
            "mm2-offset-syncs_B_internal"
        );
        assert_eq!(policy.checkpoints_topic("A"), "A_checkpoints_internal");
        assert!(policy.is_checkpoints_topic("A_checkpoints_internal"));
        assert!(!policy.is_checkpoints_topic("A.checkpoints.internal"));
        assert!(policy.is_mm2_internal_topic("x_internal"));
        assert!(!policy.is_mm2_internal_topic("x.internal"));
        // `isInternalTopic` still matches `.internal` through the Connect rule.
        assert!(policy.is_internal_topic("x.internal"));
        assert_eq!(policy.heartbeats_topic(), "heartbeats");
    }
}
