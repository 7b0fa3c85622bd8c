//! The metadata-path filter traits: MirrorMaker 2's `TopicFilter`, `GroupFilter` and
//! `ConfigPropertyFilter`. The host calls them for names it has not seen and caches the answers,
//! so answers must depend only on the name and the configuration.

use crate::Config;

/// Which source topics are replicated (MM2: `TopicFilter`). It narrows what the flow's `topics`
/// and `topics_exclude` select. Export it with
/// [`export_topic_filter!`](crate::export_topic_filter).
pub trait TopicFilter {
    /// Reads the configuration, as [`Filter::init`](crate::Filter::init).
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Whether `topic` is replicated (MM2: `shouldReplicateTopic`).
    fn should_replicate_topic(&self, topic: &str) -> bool;
}

/// Which consumer groups are checkpointed (MM2: `GroupFilter`). It narrows the flow's `groups`
/// and `groups_exclude`. Export it with [`export_group_filter!`](crate::export_group_filter).
pub trait GroupFilter {
    /// Reads the configuration, as [`Filter::init`](crate::Filter::init).
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Whether `group` is checkpointed (MM2: `shouldReplicateGroup`).
    fn should_replicate_group(&self, group: &str) -> bool;
}

/// Which topic configuration properties are copied (MM2: `ConfigPropertyFilter`). It narrows
/// the flow's `config_properties_exclude`. Export it with
/// [`export_config_property_filter!`](crate::export_config_property_filter).
pub trait ConfigPropertyFilter {
    /// Reads the configuration, as [`Filter::init`](crate::Filter::init).
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Whether the property `name` is copied (MM2: `shouldReplicateConfigProperty`).
    fn should_replicate_config_property(&self, name: &str) -> bool;
}
