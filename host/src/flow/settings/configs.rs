//! Topic config sync: MM2's `syncTopicConfigs` in incremental mode (`docs/mm2-facts.md`, "Topic config sync").
//!
//! Every interval, for each mirrored topic whose remote topic exists (the catalog lists only
//! those), the source topic's configuration is read and turned into the operations MM2 would
//! send ([`wanted_ops`], MM2's `targetConfig(config, true)` plus its SET/DELETE choice):
//!
//! * an entry is considered when it is not read-only, not sensitive, not a static broker config
//!   (`server.properties` of the source brokers), and its name does not fully match
//!   `config_properties_exclude`;
//! * a non-default entry (a topic override, or a dynamic broker setting) is SET on the remote
//!   topic; so is a default entry when `use_source_defaults` (`use.defaults.from=source`);
//! * a default entry otherwise is a DELETE: the remote topic's override is removed, so that it
//!   falls back to the target's default. A property the source reset to default is therefore
//!   reset on the target too.
//!
//! Excluded properties are never touched, so a target-only setting of an excluded property
//! (say `min.insync.replicas` tuned for the target's brokers) survives every sync; a target-only
//! setting of a property that is not excluded and is default on the source is reset, as MM2
//! does. Unlike MM2, which sends every operation every interval, Ferry compares with the remote
//! topic's current configuration ([`changed_ops`]) and sends only what differs, so an
//! unchanged topic costs two describe requests and no alter request. Changes go through
//! IncrementalAlterConfigs (`ffi`), never the legacy AlterConfigs that replaces the whole set.

use std::collections::{HashMap, HashSet};

use rdkafka::admin::{ConfigEntry, ConfigSource};

use super::{SettingsContext, SettingsError};
use crate::config::TopicPatterns;
use crate::kafka::ffi;
pub(crate) use crate::kafka::resources::ConfigOp;

/// Topics per describe or alter request.
const BATCH: usize = 100;

/// Whether an entry holds the hard-coded default (Java's `ConfigEntry#isDefault`, which is
/// `source == DEFAULT_CONFIG`; brokers before 1.1 only send the flag).
fn is_default(entry: &ConfigEntry) -> bool {
    match entry.source {
        ConfigSource::Default => true,
        ConfigSource::Unknown => entry.is_default,
        _ => false,
    }
}

/// Which property names the flow's config-property filter plugin lets through, for one
/// topic's entries. When the plugin fails, none: nothing is changed this round rather than
/// something the filter would have kept back.
fn allowed_names(filter: &crate::plugins::NameFilter, entries: &[ConfigEntry]) -> HashSet<String> {
    let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
    match filter.allows_all(&names) {
        Ok(answers) => names
            .into_iter()
            .zip(answers)
            .filter(|(_, allowed)| *allowed)
            .map(|(name, _)| name.to_owned())
            .collect(),
        Err(error) => {
            tracing::error!(error = %crate::error_chain(&error),
                "The config-property filter plugin failed; no property is synced this round.");
            HashSet::new()
        }
    }
}

/// The operations MM2 sends for a source topic's configuration `source` (see the module docs).
pub(crate) fn wanted_ops(
    source: &[ConfigEntry],
    exclude: &TopicPatterns,
    use_source_defaults: bool,
    allow: &dyn Fn(&str) -> bool,
) -> Vec<ConfigOp> {
    source
        .iter()
        .filter(|entry| {
            !entry.is_read_only
                && !entry.is_sensitive
                && entry.source != ConfigSource::StaticBroker
                && !exclude.matches(&entry.name)
                && allow(&entry.name)
        })
        .filter_map(|entry| {
            if is_default(entry) && !use_source_defaults {
                return Some(ConfigOp::Delete {
                    name: entry.name.clone(),
                });
            }
            // A value-less entry (null in the response) cannot be set.
            Some(ConfigOp::Set {
                name: entry.name.clone(),
                value: entry.value.clone()?,
            })
        })
        .collect()
}

/// The operations of `wanted` that would change the remote topic, whose configuration is
/// `target`: a SET whose value is not already the remote topic's own override, a DELETE of an
/// override the remote topic has.
pub(crate) fn changed_ops(wanted: Vec<ConfigOp>, target: &[ConfigEntry]) -> Vec<ConfigOp> {
    let overrides: HashMap<&str, Option<&str>> = target
        .iter()
        .filter(|entry| entry.source == ConfigSource::DynamicTopic)
        .map(|entry| (entry.name.as_str(), entry.value.as_deref()))
        .collect();
    wanted
        .into_iter()
        .filter(|op| match op {
            ConfigOp::Set { name, value } => {
                overrides.get(name.as_str()) != Some(&Some(value.as_str()))
            }
            ConfigOp::Delete { name } => overrides.contains_key(name.as_str()),
        })
        .collect()
}

/// The operations one config sync sends for a mirrored topic: what MM2 wants for its source
/// configuration `source` under `flow`'s exclusions and the config-property filter plugin
/// `filter`, minus what the remote topic's configuration `target` already has. `ferry plan`
/// prints the same operations (with an empty `target` for a remote topic still to create).
pub(crate) fn topic_ops(
    flow: &crate::config::Flow,
    filter: Option<&crate::plugins::NameFilter>,
    source: &[ConfigEntry],
    target: &[ConfigEntry],
) -> Vec<ConfigOp> {
    let allowed = filter.map(|filter| allowed_names(filter, source));
    let wanted = wanted_ops(
        source,
        &flow.config_properties_exclude,
        flow.use_source_defaults,
        &|name| allowed.as_ref().is_none_or(|names| names.contains(name)),
    );
    changed_ops(wanted, target)
}

/// What one config sync did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ConfigSyncOutcome {
    /// Remote topics whose configuration was changed.
    pub(crate) topics_changed: u64,
    /// Remote topics whose change the target refused (logged one by one).
    pub(crate) topics_failed: u64,
}

/// One config sync of the flow's mirrored topics.
///
/// # Errors
/// When a describe or alter request fails as a whole. Refusals for single topics are logged
/// and counted in the outcome.
pub(crate) async fn sync_configs(
    context: &SettingsContext,
) -> Result<ConfigSyncOutcome, SettingsError> {
    let catalog = context.catalog();
    let mut outcome = ConfigSyncOutcome::default();
    for batch in catalog.topics.chunks(BATCH) {
        let sources: Vec<&str> = batch.iter().map(|topic| &*topic.source).collect();
        let remotes: Vec<&str> = batch.iter().map(|topic| &*topic.remote).collect();
        let source_configs = context
            .source
            .describe_topic_configs(&sources)
            .await
            .map_err(|source| SettingsError::DescribeConfigs {
                source: Box::new(source),
            })?;
        let target_configs = context
            .target
            .describe_topic_configs(&remotes)
            .await
            .map_err(|source| SettingsError::DescribeConfigs {
                source: Box::new(source),
            })?;
        let mut changes = Vec::new();
        for topic in batch {
            let source_entries = source_configs.get(&*topic.source).map(Vec::as_slice);
            let target_entries = target_configs.get(&*topic.remote).map(Vec::as_slice);
            // An empty answer means the configuration could not be read (see `kafka::Admin`).
            let (Some(source_entries @ [_, ..]), Some(target_entries @ [_, ..])) =
                (source_entries, target_entries)
            else {
                tracing::debug!(flow = %context.flow, topic = %topic.source, remote = %topic.remote,
                    "Topic configuration unreadable; skipping it in this config sync.");
                continue;
            };
            let filter = context.property_filter.as_ref().map(|slot| slot.current());
            let ops = topic_ops(
                &context.flow_config,
                filter.as_deref(),
                source_entries,
                target_entries,
            );
            if !ops.is_empty() {
                changes.push((topic, ops));
            }
        }
        if changes.is_empty() {
            continue;
        }
        let request: Vec<(String, Vec<ConfigOp>)> = changes
            .iter()
            .map(|(topic, ops)| (topic.remote.to_string(), ops.clone()))
            .collect();
        let results = ffi::alter_topic_configs(&context.target, request)
            .await
            .map_err(|source| SettingsError::AlterConfigs {
                cluster: context.target.name().to_owned(),
                source,
            })?;
        for ((topic, ops), result) in changes.iter().zip(results) {
            match result {
                Ok(()) => {
                    outcome.topics_changed += 1;
                    tracing::info!(flow = %context.flow, topic = %topic.source, remote = %topic.remote,
                        set = %describe_sets(ops), reset = %describe_deletes(ops),
                        "Synced topic configuration to the remote topic.");
                }
                Err(error) => {
                    outcome.topics_failed += 1;
                    tracing::warn!(flow = %context.flow, topic = %topic.source, remote = %topic.remote,
                        error = %crate::error_chain(&error),
                        "Changing the remote topic's configuration failed; retrying at the next config sync.");
                }
            }
        }
    }
    Ok(outcome)
}

/// `a=1, b=2` for the SET operations.
fn describe_sets(ops: &[ConfigOp]) -> String {
    ops.iter()
        .filter_map(|op| match op {
            ConfigOp::Set { name, value } => Some(format!("{name}={value}")),
            ConfigOp::Delete { .. } => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a, b` for the DELETE operations.
fn describe_deletes(ops: &[ConfigOp]) -> String {
    ops.iter()
        .filter(|op| matches!(op, ConfigOp::Delete { .. }))
        .map(ConfigOp::name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str, source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            is_default: source == ConfigSource::Default,
            source,
            is_read_only: false,
            is_sensitive: false,
        }
    }

    /// MM2's default `config.properties.exclude`.
    fn mm2_exclude() -> TopicPatterns {
        TopicPatterns::parse_mm2(
            "follower\\.replication\\.throttled\\.replicas, \
             leader\\.replication\\.throttled\\.replicas, \
             message\\.timestamp\\.difference\\.max\\.ms, message\\.timestamp\\.type, \
             unclean\\.leader\\.election\\.enable, min\\.insync\\.replicas",
        )
        .unwrap()
    }

    fn set(name: &str, value: &str) -> ConfigOp {
        ConfigOp::Set {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    fn delete(name: &str) -> ConfigOp {
        ConfigOp::Delete {
            name: name.to_owned(),
        }
    }

    #[test]
    fn overrides_are_set_and_defaults_deleted() {
        let source = [
            entry("retention.ms", "3600000", ConfigSource::DynamicTopic),
            entry("cleanup.policy", "delete", ConfigSource::Default),
            // Dynamic broker settings are not defaults for MM2 (Java's isDefault).
            entry(
                "compression.type",
                "zstd",
                ConfigSource::DynamicDefaultBroker,
            ),
        ];
        assert_eq!(
            wanted_ops(&source, &mm2_exclude(), false, &|_| true),
            [
                set("retention.ms", "3600000"),
                delete("cleanup.policy"),
                set("compression.type", "zstd"),
            ]
        );
        // A config-property filter plugin narrows the same selection.
        assert_eq!(
            wanted_ops(&source, &mm2_exclude(), false, &|name| name
                != "retention.ms"),
            [delete("cleanup.policy"), set("compression.type", "zstd")]
        );
    }

    #[test]
    fn source_defaults_are_set_with_use_source_defaults() {
        let source = [entry("cleanup.policy", "delete", ConfigSource::Default)];
        assert_eq!(
            wanted_ops(&source, &mm2_exclude(), true, &|_| true),
            [set("cleanup.policy", "delete")]
        );
    }

    #[test]
    fn excluded_read_only_sensitive_and_static_entries_are_left_alone() {
        let mut read_only = entry("segment.bytes", "1024", ConfigSource::DynamicTopic);
        read_only.is_read_only = true;
        let mut sensitive = entry("secret.thing", "x", ConfigSource::DynamicTopic);
        sensitive.is_sensitive = true;
        let source = [
            entry("min.insync.replicas", "2", ConfigSource::DynamicTopic),
            entry(
                "message.timestamp.type",
                "LogAppendTime",
                ConfigSource::DynamicTopic,
            ),
            // Excluded defaults are not DELETEd either: target-only settings survive.
            entry(
                "unclean.leader.election.enable",
                "false",
                ConfigSource::Default,
            ),
            entry("retention.ms", "86400000", ConfigSource::StaticBroker),
            read_only,
            sensitive,
        ];
        assert_eq!(wanted_ops(&source, &mm2_exclude(), false, &|_| true), []);
        assert_eq!(wanted_ops(&source, &mm2_exclude(), true, &|_| true), []);
    }

    #[test]
    fn exclusion_is_a_full_match() {
        let exclude = TopicPatterns::parse_mm2("retention").unwrap();
        let source = [entry("retention.ms", "1", ConfigSource::DynamicTopic)];
        assert_eq!(
            wanted_ops(&source, &exclude, false, &|_| true),
            [set("retention.ms", "1")]
        );
    }

    #[test]
    fn brokers_without_config_source_use_the_default_flag() {
        let mut old = entry("cleanup.policy", "delete", ConfigSource::Unknown);
        old.is_default = true;
        assert_eq!(
            wanted_ops(&[old], &mm2_exclude(), false, &|_| true),
            [delete("cleanup.policy")]
        );
    }

    #[test]
    fn only_differences_from_the_remote_topic_are_sent() {
        let target = [
            entry("retention.ms", "3600000", ConfigSource::DynamicTopic),
            entry("max.message.bytes", "1048588", ConfigSource::Default),
            entry("segment.ms", "1000", ConfigSource::DynamicTopic),
            entry("segment.jitter.ms", "5", ConfigSource::DynamicTopic),
            entry("cleanup.policy", "delete", ConfigSource::Default),
            entry("compression.type", "zstd", ConfigSource::DynamicBroker),
        ];
        let wanted = vec![
            // Already the remote override: nothing to do.
            set("retention.ms", "3600000"),
            // Equal to the target's default but not an override yet: set once.
            set("max.message.bytes", "1048588"),
            // The remote override differs.
            set("segment.ms", "2000"),
            // An override to remove.
            delete("segment.jitter.ms"),
            // No override: nothing to remove, whatever the target's default is.
            delete("cleanup.policy"),
            delete("compression.type"),
        ];
        assert_eq!(
            changed_ops(wanted, &target),
            [
                set("max.message.bytes", "1048588"),
                set("segment.ms", "2000"),
                delete("segment.jitter.ms"),
            ]
        );
    }

    #[test]
    fn change_descriptions_list_names_and_values() {
        let ops = [
            set("retention.ms", "1"),
            delete("segment.ms"),
            set("a", "b"),
        ];
        assert_eq!(describe_sets(&ops), "retention.ms=1, a=b");
        assert_eq!(describe_deletes(&ops), "segment.ms");
    }
}
