//! Ferry's builtin `identity-policy`: MirrorMaker 2's `IdentityReplicationPolicy` (Kafka 3.8) as
//! a WebAssembly component. Topics keep their names on the target; only heartbeats topics are
//! prefixed, so heartbeat cycle detection still works.
//!
//! As in MM2, cycle detection does not work for data topics: with two flows A→B and B→A the same
//! topic loops forever, and several sources replicating into one target merge same-named topics.
//! "Heartbeats" is a **suffix** match (`userheartbeats` is treated as a heartbeats topic).
//!
//! Configuration: MM2's `DefaultReplicationPolicy` keys, plus `source.cluster.alias`, which the
//! host always passes: it is the answer of `topic-source` for every non-heartbeats topic.

use ferry_plugin_sdk::{
    Config, DefaultReplicationPolicy, ReplicationPolicy, SOURCE_CLUSTER_ALIAS_CONFIG,
};

/// MM2's `IdentityReplicationPolicy`: extends `DefaultReplicationPolicy`.
#[derive(Debug, Default, Clone)]
pub struct IdentityReplicationPolicy {
    base: DefaultReplicationPolicy,
    source_cluster_alias: Option<String>,
}

impl IdentityReplicationPolicy {
    /// MM2: `looksLikeHeartbeat`, a suffix match on the heartbeats topic name.
    fn looks_like_heartbeat(&self, topic: &str) -> bool {
        topic.ends_with(&self.heartbeats_topic())
    }
}

impl ReplicationPolicy for IdentityReplicationPolicy {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.base.init(config)?;
        if let Some(alias) = config.get(SOURCE_CLUSTER_ALIAS_CONFIG) {
            self.source_cluster_alias = Some(alias.to_owned());
        }
        Ok(())
    }

    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        if self.looks_like_heartbeat(topic) {
            self.base.format_remote_topic(source_cluster_alias, topic)
        } else {
            topic.to_owned()
        }
    }

    fn topic_source(&self, topic: &str) -> Option<String> {
        if self.looks_like_heartbeat(topic) {
            self.base.topic_source(topic)
        } else {
            self.source_cluster_alias.clone()
        }
    }

    fn upstream_topic(&self, topic: &str) -> Option<String> {
        if self.looks_like_heartbeat(topic) {
            self.base.upstream_topic(topic)
        } else {
            Some(topic.to_owned())
        }
    }

    fn heartbeats_topic(&self) -> String {
        self.base.heartbeats_topic()
    }

    fn offset_syncs_topic(&self, cluster_alias: &str) -> String {
        self.base.offset_syncs_topic(cluster_alias)
    }

    fn checkpoints_topic(&self, cluster_alias: &str) -> String {
        self.base.checkpoints_topic(cluster_alias)
    }

    fn is_checkpoints_topic(&self, topic: &str) -> bool {
        self.base.is_checkpoints_topic(topic)
    }

    fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        self.base.is_mm2_internal_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(IdentityReplicationPolicy);

#[cfg(test)]
mod tests {
    use super::IdentityReplicationPolicy;
    use ferry_plugin_sdk::{Config, ReplicationPolicy};

    fn policy(config: &[(&str, &str)]) -> IdentityReplicationPolicy {
        let mut policy = IdentityReplicationPolicy::default();
        let config = Config::new(
            config
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        );
        policy.init(&config).unwrap();
        policy
    }

    /// The host's usual configuration: the two aliases at the end.
    fn flow_policy() -> IdentityReplicationPolicy {
        policy(&[("source.cluster.alias", "A"), ("target.cluster.alias", "B")])
    }

    #[test]
    fn format_remote_topic() {
        let check = |topic: &str, expected: &str| {
            assert_eq!(
                flow_policy().format_remote_topic("A", topic),
                expected,
                "{topic:?}"
            );
        };
        check("orders", "orders");
        check("B.orders", "B.orders");
        check("heartbeats", "A.heartbeats");
        check("B.heartbeats", "A.B.heartbeats");
        // Suffix match: any name ending in `heartbeats` is prefixed.
        check("userheartbeats", "A.userheartbeats");
        check("heartbeats.x", "heartbeats.x");
        let underscore = policy(&[
            ("replication.policy.separator", "_"),
            ("source.cluster.alias", "A"),
        ]);
        assert_eq!(
            underscore.format_remote_topic("A", "heartbeats"),
            "A_heartbeats"
        );
    }

    #[test]
    fn topic_source() {
        let check = |policy: &IdentityReplicationPolicy, topic: &str, expected: Option<&str>| {
            assert_eq!(policy.topic_source(topic).as_deref(), expected, "{topic:?}");
        };
        check(&flow_policy(), "orders", Some("A"));
        check(&flow_policy(), "B.orders", Some("A"));
        check(&flow_policy(), "heartbeats", None);
        check(&flow_policy(), "C.heartbeats", Some("C"));
        check(&flow_policy(), "C.B.heartbeats", Some("C"));
        check(&flow_policy(), "userheartbeats", None);
        // Without `source.cluster.alias` (MM2: a bare MirrorClient) the answer is null.
        check(&policy(&[]), "orders", None);
    }

    #[test]
    fn upstream_topic() {
        let check = |topic: &str, expected: Option<&str>| {
            assert_eq!(
                flow_policy().upstream_topic(topic).as_deref(),
                expected,
                "{topic:?}"
            );
        };
        check("orders", Some("orders"));
        check("B.orders", Some("B.orders"));
        check("heartbeats", None);
        check("C.heartbeats", Some("heartbeats"));
        check("C.B.heartbeats", Some("B.heartbeats"));
    }

    #[test]
    fn original_topic() {
        let check = |topic: &str, expected: &str| {
            assert_eq!(flow_policy().original_topic(topic), expected, "{topic:?}");
        };
        check("orders", "orders");
        check("B.orders", "B.orders");
        check("heartbeats", "heartbeats");
        check("C.B.heartbeats", "heartbeats");
        check("C.userheartbeats", "userheartbeats");
    }

    #[test]
    fn heartbeats_and_internal_topics() {
        let policy = flow_policy();
        assert_eq!(policy.heartbeats_topic(), "heartbeats");
        assert!(policy.is_heartbeats_topic("heartbeats"));
        assert!(policy.is_heartbeats_topic("C.B.heartbeats"));
        assert!(!policy.is_heartbeats_topic("orders"));
        assert_eq!(
            policy.offset_syncs_topic("B"),
            "mm2-offset-syncs.B.internal"
        );
        assert_eq!(policy.checkpoints_topic("A"), "A.checkpoints.internal");
        assert!(policy.is_checkpoints_topic("A.checkpoints.internal"));
        assert!(policy.is_mm2_internal_topic("mm2-offset-syncs.B.internal"));
        assert!(policy.is_internal_topic("__consumer_offsets"));
        assert!(!policy.is_internal_topic("orders"));
    }

    #[test]
    fn internal_names_follow_the_default_policy_separator() {
        let policy = policy(&[
            ("replication.policy.separator", "_"),
            ("source.cluster.alias", "A"),
            ("target.cluster.alias", "B"),
        ]);
        assert_eq!(
            policy.offset_syncs_topic("B"),
            "mm2-offset-syncs_B_internal"
        );
        assert_eq!(policy.checkpoints_topic("A"), "A_checkpoints_internal");
        assert!(policy.is_mm2_internal_topic("x_internal"));
    }
}
