//! Test fixture: a topic filter that lets every topic through, so that swapping it in for
//! `prefix-topic-filter` visibly widens a flow's selection.

use ferry_plugin_sdk::TopicFilter;

#[derive(Default)]
struct AllTopicsFilter;

impl TopicFilter for AllTopicsFilter {
    fn should_replicate_topic(&self, _topic: &str) -> bool {
        true
    }
}

ferry_plugin_sdk::export_topic_filter!(AllTopicsFilter);
