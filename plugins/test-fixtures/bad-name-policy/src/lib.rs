//! Test fixture: `format-remote-topic` returns `bad/name`, which is not a legal Kafka topic name.

use ferry_plugin_sdk::{DefaultReplicationPolicy, ReplicationPolicy};

#[derive(Default)]
struct BadNamePolicy(DefaultReplicationPolicy);

impl ReplicationPolicy for BadNamePolicy {
    fn format_remote_topic(&self, _source_cluster_alias: &str, _topic: &str) -> String {
        "bad/name".to_owned()
    }
    fn topic_source(&self, topic: &str) -> Option<String> {
        self.0.topic_source(topic)
    }
    fn upstream_topic(&self, topic: &str) -> Option<String> {
        self.0.upstream_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(BadNamePolicy);
