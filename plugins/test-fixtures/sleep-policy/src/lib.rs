//! Test fixture: `format-remote-topic` sleeps for a minute. A sleeping guest waits in host code,
//! where the epoch deadline cannot reach it, so the host must refuse to block instead.

use ferry_plugin_sdk::{DefaultReplicationPolicy, ReplicationPolicy};

#[derive(Default)]
struct SleepPolicy(DefaultReplicationPolicy);

impl ReplicationPolicy for SleepPolicy {
    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        std::thread::sleep(std::time::Duration::from_secs(60));
        self.0.format_remote_topic(source_cluster_alias, topic)
    }
    fn topic_source(&self, topic: &str) -> Option<String> {
        self.0.topic_source(topic)
    }
    fn upstream_topic(&self, topic: &str) -> Option<String> {
        self.0.upstream_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(SleepPolicy);
