//! Test fixture: the default policy, except that `format-remote-topic` traps (panics, which is
//! an abort under `panic = "abort"`) for topics starting with `boom`.

use ferry_plugin_sdk::{DefaultReplicationPolicy, ReplicationPolicy};

#[derive(Default)]
struct TrapPolicy(DefaultReplicationPolicy);

impl ReplicationPolicy for TrapPolicy {
    #[allow(clippy::panic, reason = "this fixture exists to trap")]
    fn format_remote_topic(&self, source_cluster_alias: &str, topic: &str) -> String {
        if topic.starts_with("boom") {
            panic!("trap-policy was asked to trap on {topic}");
        }
        self.0.format_remote_topic(source_cluster_alias, topic)
    }
    fn topic_source(&self, topic: &str) -> Option<String> {
        self.0.topic_source(topic)
    }
    fn upstream_topic(&self, topic: &str) -> Option<String> {
        self.0.upstream_topic(topic)
    }
}

ferry_plugin_sdk::export_policy!(TrapPolicy);
