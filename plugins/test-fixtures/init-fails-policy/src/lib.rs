//! Test fixture: `init` refuses every configuration with a message the host must show.

use ferry_plugin_sdk::{Config, DefaultReplicationPolicy, ReplicationPolicy};

#[derive(Default)]
struct InitFailsPolicy(DefaultReplicationPolicy);

impl ReplicationPolicy for InitFailsPolicy {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        Err(format!(
            "init-fails-policy refuses every configuration (config size {})",
            config.entries().len()
        ))
    }
    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        self.0.format_remote_topic(source_cluster_alias, topic)
    }
    fn topic_source(&self, topic: &str) -> Option<String> {
        self.0.topic_source(topic)
    }
    fn upstream_topic(&self, topic: &str) -> Option<String> {
        self.0.upstream_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(InitFailsPolicy);
