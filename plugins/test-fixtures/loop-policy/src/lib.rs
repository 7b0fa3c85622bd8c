//! Test fixture: `format-remote-topic` never returns; the host's CPU deadline must stop it.

use ferry_plugin_sdk::{DefaultReplicationPolicy, ReplicationPolicy};

#[derive(Default)]
struct LoopPolicy(DefaultReplicationPolicy);

impl ReplicationPolicy for LoopPolicy {
    fn format_remote_topic(&self, _source_cluster_alias: &str, topic: &str) -> String {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(topic.len() as u64));
        }
    }
    fn topic_source(&self, topic: &str) -> Option<String> {
        self.0.topic_source(topic)
    }
    fn upstream_topic(&self, topic: &str) -> Option<String> {
        self.0.upstream_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(LoopPolicy);
