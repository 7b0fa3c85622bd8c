//! The rules of a `[[flows]]` table: its clusters, topic and group patterns, error policy,
//! replication factors, task and in-flight limits, intervals, and the MM2 features that depend
//! on each other (checkpoints need offset syncs, group offset sync needs checkpoints).
//!
//! This module owns Ferry's limits on a flow (`tasks`, `max_in_flight`) and the defaults that
//! depend on its clusters (consumer group, dead-letter and positions topics).

use std::time::Duration;

use super::Validator;
use crate::config::location::KeyPath;
use crate::config::raw::{self, FlowConfig, TopicList};
use crate::config::{
    ClusterName, ErrorPolicy, Flow, FlowId, TopicPatterns, default_dead_letter_topic,
};

/// The most tasks a flow may have. Each task is a unit of ownership with its own consumer
/// assignment and offset bookkeeping; more than this is a configuration mistake, not scale.
const MAX_TASKS: i64 = 1024;

/// The largest `max_in_flight`: a million unacknowledged records per task already means
/// gigabytes of memory for typical record sizes.
const MAX_IN_FLIGHT: i64 = 1_000_000;

impl Validator<'_> {
    pub(super) fn flow(
        &mut self,
        path: &KeyPath,
        raw: FlowConfig,
        cluster_names: &[String],
    ) -> Option<Flow> {
        let mut cluster = |key: &str, name: &str| {
            if cluster_names.iter().any(|known| known == name) {
                ClusterName::new(name).ok()
            } else {
                let known = if cluster_names.is_empty() {
                    "no cluster is defined".to_owned()
                } else {
                    format!("defined clusters: {}", cluster_names.join(", "))
                };
                self.report(
                    &path.key(key),
                    format!("unknown cluster `{name}` ({known})"),
                );
                None
            }
        };
        let source = cluster("source", &raw.source);
        let target = cluster("target", &raw.target);
        if raw.source == raw.target {
            self.report(&path.key("target"), "must differ from `source`");
        }

        let topics = self.topics(&path.key("topics"), &raw.topics);
        let topics_exclude = self.topics(&path.key("topics_exclude"), &raw.topics_exclude);
        let policy = self.plugin(&path.key("policy"), raw.policy);
        let filters = self.chain(&path.key("filters"), raw.filters);
        let transforms = self.chain(&path.key("transforms"), raw.transforms);
        let topic_filter = self.optional_plugin(&path.key("topic_filter"), raw.topic_filter);
        let group_filter = self.optional_plugin(&path.key("group_filter"), raw.group_filter);
        let config_property_filter = self.optional_plugin(
            &path.key("config_property_filter"),
            raw.config_property_filter,
        );
        let on_error = match raw.on_error.as_str() {
            "halt" => Some(ErrorPolicy::Halt),
            "skip" => Some(ErrorPolicy::Skip),
            "dead-letter" => Some(ErrorPolicy::DeadLetter),
            other => {
                self.report(
                    &path.key("on_error"),
                    format!("expected `halt`, `skip` or `dead-letter`, not `{other}`"),
                );
                None
            }
        };
        let dead_letter_topic = match raw.dead_letter_topic {
            Some(topic) if !crate::plugins::is_legal_topic_name(&topic) => {
                self.report(
                    &path.key("dead_letter_topic"),
                    format!("`{topic}` is not a legal Kafka topic name"),
                );
                None
            }
            Some(topic) => Some(topic),
            None => Some(default_dead_letter_topic(&raw.source)),
        };

        let replication_factor =
            self.replication_factor(&path.key("replication_factor"), raw.replication_factor);
        let internal_replication_factor = self.replication_factor(
            &path.key("internal_replication_factor"),
            raw.internal_replication_factor,
        );
        let tasks = self
            .in_range(&path.key("tasks"), raw.tasks, 1, MAX_TASKS)
            .and_then(|tasks| u32::try_from(tasks).ok());
        let max_in_flight = self
            .in_range(
                &path.key("max_in_flight"),
                raw.max_in_flight,
                1,
                MAX_IN_FLIGHT,
            )
            .and_then(|max| usize::try_from(max).ok());
        let refresh_topics_interval = self.duration(
            &path.key("refresh_topics_interval"),
            &raw.refresh_topics_interval,
        );
        let commit_interval = self.duration(&path.key("commit_interval"), &raw.commit_interval);
        let transaction_interval =
            self.duration(&path.key("transaction_interval"), &raw.transaction_interval);
        let transaction_records = self
            .in_range(
                &path.key("transaction_records"),
                raw.transaction_records,
                1,
                MAX_IN_FLIGHT,
            )
            .and_then(|records| usize::try_from(records).ok());

        let group_id = match raw.group_id {
            Some(group_id) if group_id.trim().is_empty() => {
                self.report(&path.key("group_id"), "must not be empty");
                None
            }
            Some(group_id) => Some(group_id),
            None => Some(raw::default_group_id(&raw.source, &raw.target)),
        };

        let positions_topic = match raw.positions_topic {
            Some(topic) if topic.trim().is_empty() => {
                self.report(&path.key("positions_topic"), "must not be empty");
                None
            }
            Some(topic) => Some(topic),
            None => Some(crate::mm2::positions::positions_topic(&raw.source)),
        };
        let optional = |enabled: bool, interval: Option<Duration>| match enabled {
            true => interval.map(Some),
            false => Some(None),
        };
        let heartbeats_interval =
            self.duration(&path.key("heartbeats_interval"), &raw.heartbeats_interval);
        let checkpoints_interval =
            self.duration(&path.key("checkpoints_interval"), &raw.checkpoints_interval);
        let sync_group_offsets_interval = self.duration(
            &path.key("sync_group_offsets_interval"),
            &raw.sync_group_offsets_interval,
        );
        let sync_topic_configs_interval = self.duration(
            &path.key("sync_topic_configs_interval"),
            &raw.sync_topic_configs_interval,
        );
        let sync_topic_acls_interval = self.duration(
            &path.key("sync_topic_acls_interval"),
            &raw.sync_topic_acls_interval,
        );
        let offset_lag_max = self
            .in_range(&path.key("offset_lag_max"), raw.offset_lag_max, 0, i64::MAX)
            .and_then(|lag| u64::try_from(lag).ok());
        let offset_syncs_on_target = match raw.offset_syncs_location.as_str() {
            "source" => Some(false),
            "target" => Some(true),
            other => {
                self.report(
                    &path.key("offset_syncs_location"),
                    format!("expected `source` or `target`, not `{other}`"),
                );
                None
            }
        };
        let groups = self.topics(&path.key("groups"), &raw.groups);
        let groups_exclude = self.topics(&path.key("groups_exclude"), &raw.groups_exclude);
        let config_properties_exclude = self.topics(
            &path.key("config_properties_exclude"),
            &raw.config_properties_exclude,
        );
        if raw.emit_checkpoints && !raw.emit_offset_syncs {
            self.report(
                &path.key("emit_checkpoints"),
                "checkpoints are translated from offset syncs: set `emit_offset_syncs = true` or `emit_checkpoints = false`",
            );
        }
        if raw.sync_group_offsets && !raw.emit_checkpoints {
            self.report(
                &path.key("sync_group_offsets"),
                "group offsets are synced from checkpoints: set `emit_checkpoints = true` or `sync_group_offsets = false`",
            );
        }

        let (source, target) = (source?, target?);
        if source == target {
            return None;
        }
        let internal_replication_factor = internal_replication_factor?;
        Some(Flow {
            id: FlowId::new(&source, &target),
            source,
            target,
            enabled: raw.enabled,
            topics: topics?,
            topics_exclude: topics_exclude?,
            policy: policy?,
            filters: filters?,
            transforms: transforms?,
            topic_filter: topic_filter?,
            group_filter: group_filter?,
            config_property_filter: config_property_filter?,
            on_error: on_error?,
            dead_letter_topic: dead_letter_topic?,
            replication_factor: replication_factor?,
            tasks: tasks?,
            refresh_topics_interval: refresh_topics_interval?,
            commit_interval: commit_interval?,
            exactly_once: raw.exactly_once,
            transaction_interval: transaction_interval?,
            transaction_records: transaction_records?,
            heartbeats_replication: raw.heartbeats_replication,
            group_id: group_id?,
            max_in_flight: max_in_flight?,
            positions_topic: positions_topic?,
            emit_heartbeats: optional(raw.emit_heartbeats, heartbeats_interval)?,
            emit_offset_syncs: raw.emit_offset_syncs,
            offset_lag_max: offset_lag_max?,
            offset_syncs_on_target: offset_syncs_on_target?,
            emit_checkpoints: optional(raw.emit_checkpoints, checkpoints_interval)?,
            groups: groups?,
            groups_exclude: groups_exclude?,
            sync_group_offsets: optional(raw.sync_group_offsets, sync_group_offsets_interval)?,
            sync_topic_configs: optional(raw.sync_topic_configs, sync_topic_configs_interval)?,
            config_properties_exclude: config_properties_exclude?,
            use_source_defaults: raw.use_source_defaults,
            sync_topic_acls: optional(raw.sync_topic_acls, sync_topic_acls_interval)?,
            heartbeats_replication_factor: internal_replication_factor,
            checkpoints_replication_factor: internal_replication_factor,
            offset_syncs_replication_factor: internal_replication_factor,
        })
    }

    fn replication_factor(&mut self, path: &KeyPath, factor: i64) -> Option<i16> {
        match i16::try_from(factor) {
            Ok(factor) if factor >= -1 => Some(factor),
            _ => {
                self.report(
                    path,
                    format!(
                        "must be 0 (auto: up to 3, as the target's brokers allow), -1 (the broker's default.replication.factor) or between 1 and 32767, not {factor}"
                    ),
                );
                None
            }
        }
    }

    fn topics(&mut self, path: &KeyPath, list: &TopicList) -> Option<TopicPatterns> {
        let patterns = match list {
            TopicList::Mm2(comma_list) => TopicPatterns::parse_mm2(comma_list),
            TopicList::List(items) => TopicPatterns::parse_list(items),
        };
        patterns.map_err(|message| self.report(path, message)).ok()
    }
}
