//! Ferry's builtin `default-policy`: MirrorMaker 2's `DefaultReplicationPolicy` (Kafka 3.8) as a
//! WebAssembly component. Remote topics are named `<source alias><separator><topic>`.
//!
//! The logic lives in [`ferry_plugin_sdk::DefaultReplicationPolicy`] so that other policies can
//! wrap it, as MM2 policies extend the Java class. This crate exports it and holds the
//! compatibility tests: one check per row of MM2's edge-case table and one per method.
//!
//! Configuration (`policy.with`), as in MM2:
//! - `replication.policy.separator` (default `.`);
//! - `replication.policy.internal.topic.separator.enabled` (default `true`; read only when the
//!   separator key is present): `false` keeps `.` in internal topic names.

ferry_plugin_sdk::export_policy!(ferry_plugin_sdk::DefaultReplicationPolicy);

#[cfg(test)]
mod tests {
    use ferry_plugin_sdk::{Config, DefaultReplicationPolicy, ReplicationPolicy};

    fn policy(config: &[(&str, &str)]) -> DefaultReplicationPolicy {
        let config = Config::new(
            config
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        );
        DefaultReplicationPolicy::configured(&config).unwrap()
    }

    /// One row of MM2's edge-case table (separator `.`): topic, topicSource, upstreamTopic,
    /// originalTopic.
    fn check_row(topic: &str, source: Option<&str>, upstream: Option<&str>, original: &str) {
        let policy = policy(&[]);
        assert_eq!(
            policy.topic_source(topic).as_deref(),
            source,
            "topic_source({topic:?})"
        );
        assert_eq!(
            policy.upstream_topic(topic).as_deref(),
            upstream,
            "upstream_topic({topic:?})"
        );
        assert_eq!(
            policy.original_topic(topic),
            original,
            "original_topic({topic:?})"
        );
    }

    #[test]
    fn row_plain_topic() {
        check_row("topic", None, None, "topic");
    }

    #[test]
    fn row_one_hop() {
        check_row("A.topic", Some("A"), Some("topic"), "topic");
    }

    #[test]
    fn row_two_hops() {
        check_row("A.B.topic", Some("A"), Some("B.topic"), "topic");
    }

    #[test]
    fn row_leading_separator_has_empty_source() {
        check_row(".topic", Some(""), Some("topic"), "topic");
    }

    #[test]
    fn row_trailing_separators_are_not_remote() {
        check_row("topic.", None, None, "topic.");
        check_row("A.", None, None, "A.");
        check_row(".", None, None, ".");
        check_row("..", None, None, "..");
    }

    #[test]
    fn row_double_separator() {
        check_row("A..topic", Some("A"), Some(".topic"), "topic");
    }

    #[test]
    fn row_remote_heartbeats() {
        check_row(
            "A.B.heartbeats",
            Some("A"),
            Some("B.heartbeats"),
            "heartbeats",
        );
        assert!(policy(&[]).is_heartbeats_topic("A.B.heartbeats"));
    }

    #[test]
    fn row_heartbeats_in_the_middle() {
        check_row("x.heartbeats.y", Some("x"), Some("heartbeats.y"), "y");
        assert!(!policy(&[]).is_heartbeats_topic("x.heartbeats.y"));
    }

    #[test]
    fn any_name_with_the_separator_is_remote() {
        check_row("orders.v2", Some("orders"), Some("v2"), "v2");
    }

    #[test]
    fn alias_containing_the_separator_breaks_parsing() {
        let policy = policy(&[("replication.policy.separator", "-")]);
        assert_eq!(policy.format_remote_topic("dc-a", "orders"), "dc-a-orders");
        assert_eq!(policy.topic_source("dc-a-orders").as_deref(), Some("dc"));
        assert_eq!(
            policy.upstream_topic("dc-a-orders").as_deref(),
            Some("a-orders")
        );
        assert_eq!(policy.original_topic("dc-a-orders"), "orders");
    }

    #[test]
    fn format_remote_topic() {
        let check = |config: &[(&str, &str)], alias: &str, topic: &str, expected: &str| {
            assert_eq!(policy(config).format_remote_topic(alias, topic), expected);
        };
        check(&[], "A", "orders", "A.orders");
        // No check that the topic is already remote or that the alias has no separator.
        check(&[], "A", "B.orders", "A.B.orders");
        check(&[], "a.b", "orders", "a.b.orders");
        check(
            &[("replication.policy.separator", "_")],
            "A",
            "orders",
            "A_orders",
        );
        check(
            &[("replication.policy.separator", "->")],
            "A",
            "orders",
            "A->orders",
        );
    }

    #[test]
    fn custom_separator_round_trip() {
        let policy = policy(&[("replication.policy.separator", "__")]);
        let remote = policy.format_remote_topic("B", &policy.format_remote_topic("A", "t.x"));
        assert_eq!(remote, "B__A__t.x");
        assert_eq!(policy.topic_source(&remote).as_deref(), Some("B"));
        assert_eq!(policy.upstream_topic(&remote).as_deref(), Some("A__t.x"));
        assert_eq!(policy.original_topic(&remote), "t.x");
    }

    #[test]
    fn heartbeats_topic_ignores_the_separator() {
        assert_eq!(policy(&[]).heartbeats_topic(), "heartbeats");
        assert_eq!(
            policy(&[("replication.policy.separator", "_")]).heartbeats_topic(),
            "heartbeats"
        );
    }

    #[test]
    fn offset_syncs_topic() {
        let check = |config: &[(&str, &str)], expected: &str| {
            assert_eq!(
                policy(config).offset_syncs_topic("B"),
                expected,
                "{config:?}"
            );
        };
        check(&[], "mm2-offset-syncs.B.internal");
        check(
            &[("replication.policy.separator", "_")],
            "mm2-offset-syncs_B_internal",
        );
        check(
            &[
                ("replication.policy.separator", "_"),
                (
                    "replication.policy.internal.topic.separator.enabled",
                    "false",
                ),
            ],
            "mm2-offset-syncs.B.internal",
        );
    }

    #[test]
    fn checkpoints_topic() {
        let check = |config: &[(&str, &str)], expected: &str| {
            assert_eq!(
                policy(config).checkpoints_topic("A"),
                expected,
                "{config:?}"
            );
        };
        check(&[], "A.checkpoints.internal");
        check(
            &[("replication.policy.separator", "_")],
            "A_checkpoints_internal",
        );
        check(
            &[
                ("replication.policy.separator", "_"),
                (
                    "replication.policy.internal.topic.separator.enabled",
                    "false",
                ),
            ],
            "A.checkpoints.internal",
        );
    }

    #[test]
    fn is_heartbeats_topic() {
        let check = |topic: &str, expected: bool| {
            assert_eq!(
                policy(&[]).is_heartbeats_topic(topic),
                expected,
                "{topic:?}"
            );
        };
        check("heartbeats", true);
        check("A.heartbeats", true);
        check("A.B.heartbeats", true);
        check("userheartbeats", false);
        check("heartbeats.x", false);
        check(".heartbeats", true);
    }

    #[test]
    fn is_checkpoints_topic() {
        let check = |config: &[(&str, &str)], topic: &str, expected: bool| {
            assert_eq!(
                policy(config).is_checkpoints_topic(topic),
                expected,
                "{topic:?}"
            );
        };
        check(&[], "A.checkpoints.internal", true);
        check(&[], "checkpoints.internal", false);
        check(&[], "A.checkpoints", false);
        check(
            &[("replication.policy.separator", "_")],
            "A_checkpoints_internal",
            true,
        );
        check(
            &[("replication.policy.separator", "_")],
            "A.checkpoints.internal",
            false,
        );
    }

    #[test]
    fn is_mm2_internal_topic() {
        let check = |config: &[(&str, &str)], topic: &str, expected: bool| {
            assert_eq!(
                policy(config).is_mm2_internal_topic(topic),
                expected,
                "{topic:?}"
            );
        };
        check(&[], "mm2-offset-syncs.B.internal", true);
        check(&[], "mm2-configs.A.internal", true);
        check(&[], "A.checkpoints.internal", true);
        check(&[], "orders", false);
        check(&[], "connect-offsets-internal", false);
        check(&[("replication.policy.separator", "_")], "x_internal", true);
        check(
            &[("replication.policy.separator", "_")],
            "x.internal",
            false,
        );
    }

    #[test]
    fn is_internal_topic() {
        let check = |config: &[(&str, &str)], topic: &str, expected: bool| {
            assert_eq!(
                policy(config).is_internal_topic(topic),
                expected,
                "{topic:?}"
            );
        };
        check(&[], "__consumer_offsets", true);
        check(&[], "__transaction_state", true);
        check(&[], ".hidden", true);
        check(&[], "connect-offsets-internal", true);
        check(&[], "mm2-offset-syncs.B.internal", true);
        check(&[], "orders", false);
        check(&[], "A.orders", false);
        check(&[], "_single_underscore", false);
        check(&[], "heartbeats", false);
        check(&[("replication.policy.separator", "_")], "x_internal", true);
        check(&[("replication.policy.separator", "_")], "x.internal", true);
    }
}
