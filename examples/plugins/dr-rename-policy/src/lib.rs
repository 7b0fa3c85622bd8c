//! Example naming policy for a disaster-recovery pair: topics of the origin cluster whose name
//! starts with `prod.` are mirrored as `dr.<rest>` (`prod.orders.global` → `dr.orders.global`);
//! every other topic is named as MirrorMaker 2's default policy names it (`<alias>.<topic>`).
//!
//! The inverse is what keeps cycle detection working: `topic-source("dr.orders.global")` is the
//! origin cluster's alias and `upstream-topic("dr.orders.global")` is `prod.orders.global`. So in
//! a bidirectional setup, the flow going back to the origin sees that `dr.orders.global` came
//! from there and does not mirror it back (MM2's `isCycle`).
//!
//! Configuration (`policy.with` in the flow):
//! - `from` (default `prod.`): the prefix of the topics to rename;
//! - `to` (default `dr.`): the prefix that replaces it; must differ from `from` and not be empty;
//! - `origin` (default: the flow's `source.cluster.alias`): the alias of the cluster whose
//!   `from` topics are renamed. Set it when flows run both ways, so that both flows agree on
//!   where `dr.` topics come from;
//! - MM2's `replication.policy.separator` for the other topics.
//!
//! A `to`-prefixed topic is always taken as a mirror of the origin, so the origin cluster
//! should not have topics of its own starting with `to`.

use ferry_plugin_sdk::{
    Config, DefaultReplicationPolicy, ReplicationPolicy, SOURCE_CLUSTER_ALIAS_CONFIG,
};

/// The policy: MM2's default, except for `from`-prefixed topics of the origin cluster.
#[derive(Debug, Clone)]
pub struct DrRenamePolicy {
    default: DefaultReplicationPolicy,
    from: String,
    to: String,
    origin: String,
}

impl Default for DrRenamePolicy {
    fn default() -> Self {
        DrRenamePolicy {
            default: DefaultReplicationPolicy::default(),
            from: "prod.".to_owned(),
            to: "dr.".to_owned(),
            origin: String::new(),
        }
    }
}

impl DrRenamePolicy {
    /// The rest of a `to`-prefixed name, if `topic` is one (a bare prefix is not).
    fn renamed_rest<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(&self.to).filter(|rest| !rest.is_empty())
    }
}

impl ReplicationPolicy for DrRenamePolicy {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.default = DefaultReplicationPolicy::configured(config)?;
        if let Some(from) = config.get("from") {
            self.from = from.to_owned();
        }
        if let Some(to) = config.get("to") {
            self.to = to.to_owned();
        }
        if self.to.is_empty() || self.to == self.from {
            return Err(format!(
                "`to` must be a non-empty prefix different from `from` (from = {:?}, to = {:?})",
                self.from, self.to
            ));
        }
        self.origin = match config
            .get("origin")
            .or_else(|| config.get(SOURCE_CLUSTER_ALIAS_CONFIG))
        {
            Some(origin) if !origin.is_empty() => origin.to_owned(),
            _ => {
                return Err(
                    "no `origin` and no `source.cluster.alias` in the configuration".into(),
                );
            }
        };
        Ok(())
    }

    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        match topic.strip_prefix(&self.from) {
            Some(rest) if source_cluster_alias == self.origin && !rest.is_empty() => {
                format!("{}{rest}", self.to)
            }
            _ => self
                .default
                .format_remote_topic(source_cluster_alias, topic),
        }
    }

    fn topic_source(&self, topic: &str) -> Option<String> {
        match self.renamed_rest(topic) {
            Some(_) => Some(self.origin.clone()),
            None => self.default.topic_source(topic),
        }
    }

    fn upstream_topic(&self, topic: &str) -> Option<String> {
        match self.renamed_rest(topic) {
            Some(rest) => Some(format!("{}{rest}", self.from)),
            None => self.default.upstream_topic(topic),
        }
    }

    // The internal topic names and predicates keep MM2's defaults, with the configured
    // separator.
    fn offset_syncs_topic(&self, cluster_alias: &str) -> String {
        self.default.offset_syncs_topic(cluster_alias)
    }

    fn checkpoints_topic(&self, cluster_alias: &str) -> String {
        self.default.checkpoints_topic(cluster_alias)
    }

    fn is_checkpoints_topic(&self, topic: &str) -> bool {
        self.default.is_checkpoints_topic(topic)
    }

    fn is_mm2_internal_topic(&self, topic: &str) -> bool {
        self.default.is_mm2_internal_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(DrRenamePolicy);

#[cfg(test)]
mod tests {
    use ferry_plugin_sdk::{Config, ReplicationPolicy};

    use super::DrRenamePolicy;

    fn policy(with: &[(&str, &str)], source: &str) -> Result<DrRenamePolicy, String> {
        let mut entries: Vec<(String, String)> = with
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        entries.push(("source.cluster.alias".to_owned(), source.to_owned()));
        entries.push(("target.cluster.alias".to_owned(), "other".to_owned()));
        let mut policy = DrRenamePolicy::default();
        policy.init(&Config::new(entries))?;
        Ok(policy)
    }

    #[test]
    fn renames_prod_topics_of_the_origin() {
        let policy = policy(&[], "A").unwrap();
        assert_eq!(
            policy.format_remote_topic("A", "prod.orders.global"),
            "dr.orders.global"
        );
        assert_eq!(
            policy.topic_source("dr.orders.global").as_deref(),
            Some("A")
        );
        assert_eq!(
            policy.upstream_topic("dr.orders.global").as_deref(),
            Some("prod.orders.global")
        );
        // Other topics, and prod topics of other clusters, keep MM2's naming.
        assert_eq!(policy.format_remote_topic("A", "orders"), "A.orders");
        assert_eq!(
            policy.format_remote_topic("C", "prod.orders"),
            "C.prod.orders"
        );
        assert_eq!(policy.topic_source("A.orders").as_deref(), Some("A"));
        assert_eq!(policy.format_remote_topic("A", "prod."), "A.prod.");
        assert_eq!(policy.topic_source("dr.").as_deref(), None);
    }

    #[test]
    fn prefixes_and_origin_are_configurable() {
        let policy = policy(
            &[("from", "live-"), ("to", "backup-"), ("origin", "east")],
            "west",
        )
        .unwrap();
        assert_eq!(policy.format_remote_topic("east", "live-x"), "backup-x");
        assert_eq!(policy.format_remote_topic("west", "live-x"), "west.live-x");
        assert_eq!(policy.topic_source("backup-x").as_deref(), Some("east"));
        assert_eq!(policy.upstream_topic("backup-x").as_deref(), Some("live-x"));
    }

    #[test]
    fn refuses_a_prefix_that_cannot_be_inverted() {
        assert!(policy(&[("to", "")], "A").is_err());
        assert!(policy(&[("from", "x."), ("to", "x.")], "A").is_err());
    }

    /// Seen from the flow back to the origin, a renamed topic is a cycle (MM2's `isCycle`).
    #[test]
    fn renamed_topics_are_cycles_for_the_way_back() {
        let back = policy(&[("origin", "A")], "B").unwrap();
        assert_eq!(back.topic_source("dr.orders.global").as_deref(), Some("A"));
        assert_eq!(back.original_topic("dr.orders.global"), "global");
    }
}
