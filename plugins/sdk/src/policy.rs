//! The [`ReplicationPolicy`] trait: MirrorMaker 2's `ReplicationPolicy` interface (Kafka 3.8)
//! with its default methods, which a plugin implements and exports with
//! [`export_policy!`](crate::export_policy).

use crate::Config;

/// How remote topics are named: MM2's `org.apache.kafka.connect.mirror.ReplicationPolicy`.
///
/// Implement [`format_remote_topic`](Self::format_remote_topic),
/// [`topic_source`](Self::topic_source) and [`upstream_topic`](Self::upstream_topic); every other
/// method has MM2's default implementation and may be overridden. Answers must be pure functions
/// of the arguments and of the configuration given to [`init`](Self::init): the host caches them.
pub trait ReplicationPolicy {
    /// Reads the configuration (MM2: `Configurable.configure`). Called once, on a value built
    /// with `Default::default()`, before any other method. Return `Err(message)` to refuse the
    /// configuration; Ferry prints the message with the plugin's name and does not start the flow.
    ///
    /// The default accepts any configuration.
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// The remote topic name for `topic` of the cluster `source_cluster_alias`
    /// (MM2: `formatRemoteTopic`).
    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String;

    /// The alias of the cluster `topic` was replicated from, or `None` when `topic` is not remote
    /// (MM2: `topicSource`).
    fn topic_source(&self, topic: &str) -> Option<String>;

    /// The name `topic` had one hop upstream, or `None` when `topic` is not remote
    /// (MM2: `upstreamTopic`).
    fn upstream_topic(&self, topic: &str) -> Option<String>;

    /// The name `topic` had where it was first written (MM2: `originalTopic`): follows
    /// [`upstream_topic`](Self::upstream_topic) until it returns `None` or its own argument (the
    /// guard that makes identity-style policies terminate).
    ///
    /// MM2 recurses; this loops, so a long chain cannot overflow the stack. A policy whose
    /// upstream names form a cycle never returns, which the host reports as a timeout.
    fn original_topic(&self, topic: &str) -> String {
        let mut current = topic.to_owned();
        loop {
            match self.upstream_topic(&current) {
                Some(upstream) if upstream != current => current = upstream,
                _ => return current,
            }
        }
    }

    /// The heartbeats topic (MM2: `heartbeatsTopic`); default `heartbeats`.
    fn heartbeats_topic(&self) -> String {
        "heartbeats".to_owned()
    }

    /// The offset-syncs topic kept for `cluster_alias` (MM2: `offsetSyncsTopic`); default
    /// `mm2-offset-syncs.<alias>.internal`.
    fn offset_syncs_topic(&self, cluster_alias: &str) -> String {
        format!("mm2-offset-syncs.{cluster_alias}.internal")
    }

    /// The checkpoints topic for the source cluster `cluster_alias` (MM2: `checkpointsTopic`);
    /// default `<alias>.checkpoints.internal`.
    fn checkpoints_topic(&self, cluster_alias: &str) -> String {
        format!("{cluster_alias}.checkpoints.internal")
    }

    /// Whether `topic` is a heartbeats topic, local or remote (MM2: `isHeartbeatsTopic`);
    /// default: its [`original_topic`](Self::original_topic) is the
    /// [`heartbeats_topic`](Self::heartbeats_topic).
    fn is_heartbeats_topic(&self, topic: &str) -> bool {
        self.heartbeats_topic() == self.original_topic(topic)
    }

    /// Whether `topic` is a checkpoints topic (MM2: `isCheckpointsTopic`); default: it ends with
    /// `.checkpoints.internal`.
    fn is_checkpoints_topic(&self, topic: &str) -> bool {
        topic.ends_with(".checkpoints.internal")
    }

    /// Whether `topic` is an MM2 (or Ferry) internal topic (MM2: `isMM2InternalTopic`); default:
    /// it ends with `.internal`.
    fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        topic.ends_with(".internal")
    }

    /// Whether `topic` is internal to Kafka, Kafka Connect, MM2 or Ferry; internal topics are
    /// never replicated (MM2: `isInternalTopic`). Default: MM2-internal, or starts with `__` or
    /// `.`, or ends with `-internal` or `.internal`.
    fn is_internal_topic(&self, topic: &str) -> bool {
        let is_kafka_internal = topic.starts_with("__") || topic.starts_with('.');
        let is_default_connect = topic.ends_with("-internal") || topic.ends_with(".internal");
        self.is_mm2_internal_topic(topic) || is_kafka_internal || is_default_connect
    }
}

#[cfg(test)]
mod tests {
    use super::ReplicationPolicy;

    /// A minimal policy with MM2's interface defaults: `<alias>.<topic>` on the first dot.
    struct FirstDot;

    impl ReplicationPolicy for FirstDot {
        fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
            format!("{source_cluster_alias}.{topic}")
        }
        fn topic_source(&self, topic: &str) -> Option<String> {
            topic.split_once('.').map(|(alias, _)| alias.to_owned())
        }
        fn upstream_topic(&self, topic: &str) -> Option<String> {
            topic.split_once('.').map(|(_, rest)| rest.to_owned())
        }
    }

    /// Upstream of every topic is itself, as with MM2's IdentityReplicationPolicy.
    struct Identity;

    impl ReplicationPolicy for Identity {
        fn format_remote_topic(&self, _: &str, topic: &str) -> String {
            topic.to_owned()
        }
        fn topic_source(&self, _: &str) -> Option<String> {
            Some("source".to_owned())
        }
        fn upstream_topic(&self, topic: &str) -> Option<String> {
            Some(topic.to_owned())
        }
    }

    #[test]
    fn original_topic_follows_upstream_with_identity_guard() {
        let check = |policy: &dyn ReplicationPolicy, topic: &str, expected: &str| {
            assert_eq!(
                policy.original_topic(topic),
                expected,
                "original_topic({topic:?})"
            );
        };
        check(&FirstDot, "topic", "topic");
        check(&FirstDot, "A.topic", "topic");
        check(&FirstDot, "A.B.C.topic", "topic");
        check(&Identity, "A.topic", "A.topic");
        check(&Identity, "topic", "topic");
    }

    #[test]
    fn default_internal_names() {
        assert_eq!(FirstDot.heartbeats_topic(), "heartbeats");
        assert_eq!(
            FirstDot.offset_syncs_topic("B"),
            "mm2-offset-syncs.B.internal"
        );
        assert_eq!(FirstDot.checkpoints_topic("A"), "A.checkpoints.internal");
    }

    #[test]
    fn default_predicates() {
        let check =
            |topic: &str, heartbeats: bool, checkpoints: bool, mm2: bool, internal: bool| {
                assert_eq!(
                    FirstDot.is_heartbeats_topic(topic),
                    heartbeats,
                    "heartbeats {topic:?}"
                );
                assert_eq!(
                    FirstDot.is_checkpoints_topic(topic),
                    checkpoints,
                    "checkpoints {topic:?}"
                );
                assert_eq!(FirstDot.is_mm2_internal_topic(topic), mm2, "mm2 {topic:?}");
                assert_eq!(
                    FirstDot.is_internal_topic(topic),
                    internal,
                    "internal {topic:?}"
                );
            };
        check("heartbeats", true, false, false, false);
        check("A.B.heartbeats", true, false, false, false);
        check("userheartbeats", false, false, false, false);
        check("A.checkpoints.internal", false, true, true, true);
        check("mm2-offset-syncs.B.internal", false, false, true, true);
        check("__consumer_offsets", false, false, false, true);
        check(".hidden", false, false, false, true);
        check("connect-configs-internal", false, false, false, true);
        check("orders", false, false, false, false);
        check("orders.internal.v2", false, false, false, false);
    }
}
