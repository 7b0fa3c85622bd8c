//! Test fixture: `format-remote-topic` allocates 256 MiB, past the host's memory cap.

use ferry_plugin_sdk::{DefaultReplicationPolicy, ReplicationPolicy};

#[derive(Default)]
struct MemoryHogPolicy(DefaultReplicationPolicy);

impl ReplicationPolicy for MemoryHogPolicy {
    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        let hog = vec![1_u8; 256 << 20];
        let name = self.0.format_remote_topic(source_cluster_alias, topic);
        if std::hint::black_box(&hog).len() == 1 {
            return String::new();
        }
        name
    }
    fn topic_source(&self, topic: &str) -> Option<String> {
        self.0.topic_source(topic)
    }
    fn upstream_topic(&self, topic: &str) -> Option<String> {
        self.0.upstream_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(MemoryHogPolicy);
