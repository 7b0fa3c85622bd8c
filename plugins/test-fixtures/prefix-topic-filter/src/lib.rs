//! Test fixture: a topic filter that replicates only topics starting with `prefix` (config,
//! default `keep.`).

use ferry_plugin_sdk::{Config, TopicFilter};

#[derive(Default)]
struct PrefixTopicFilter {
    prefix: String,
}

impl TopicFilter for PrefixTopicFilter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.prefix = config.get("prefix").unwrap_or("keep.").to_owned();
        Ok(())
    }

    fn should_replicate_topic(&self, topic: &str) -> bool {
        topic.starts_with(&self.prefix)
    }
}

ferry_plugin_sdk::export_topic_filter!(PrefixTopicFilter);
