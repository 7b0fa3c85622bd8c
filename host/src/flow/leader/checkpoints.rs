//! The checkpoint duty: positions and offset syncs read into the offset index, the source
//! groups selected (`groups`, `groups_exclude`, the group filter plugin; `ferry plan` asks the
//! same [`select_groups`]) and their committed offsets translated into checkpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::producer::{BaseRecord, Producer};

use super::{Leader, LeaderError, MAX_RUNS, Phases, READ_TIMEOUT, kafka, native, now_ms};
use crate::kafka::ffi;
use crate::mm2::records::{Checkpoint, OffsetSync};
use crate::mm2::translation::OffsetIndex;
use crate::replication::positions::PositionsError;

/// Why a source consumer group is not checkpointed (nor its offsets synced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupExclusion {
    /// No pattern of `groups` matches it.
    Groups,
    /// A pattern of `groups_exclude` matches it.
    GroupsExclude,
    /// The `group_filter` plugin refused it.
    GroupFilter,
    /// The `group_filter` plugin failed this round (logged).
    PluginFailed,
}

impl GroupExclusion {
    /// The rule's name as `ferry plan` prints it (the configuration key).
    pub(crate) fn rule(self) -> &'static str {
        match self {
            GroupExclusion::Groups => "groups",
            GroupExclusion::GroupsExclude => "groups_exclude",
            GroupExclusion::GroupFilter => "group_filter",
            GroupExclusion::PluginFailed => "plugin_failed",
        }
    }
}

/// The decision on each of the source groups `names`, sorted by name: checkpointed (`None`) or
/// excluded by which rule (`groups`, `groups_exclude`, then the group filter plugin `filter`,
/// asked once for every group the patterns let through). The leader checkpoints the groups
/// this selects, and `ferry plan` prints the same decisions.
pub(crate) fn select_groups(
    flow: &crate::config::Flow,
    filter: Option<&crate::plugins::NameFilter>,
    mut names: Vec<String>,
) -> Vec<(String, Option<GroupExclusion>)> {
    names.sort();
    let mut decided: Vec<(String, Option<GroupExclusion>)> = names
        .into_iter()
        .map(|name| {
            let exclusion = if !flow.groups.matches(&name) {
                Some(GroupExclusion::Groups)
            } else if flow.groups_exclude.matches(&name) {
                Some(GroupExclusion::GroupsExclude)
            } else {
                None
            };
            (name, exclusion)
        })
        .collect();
    if let Some(filter) = filter {
        let candidates: Vec<&str> = decided
            .iter()
            .filter(|(_, exclusion)| exclusion.is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        let answers = match filter.allows_all(&candidates) {
            Ok(answers) => answers
                .into_iter()
                .map(|allowed| (!allowed).then_some(GroupExclusion::GroupFilter))
                .collect(),
            Err(error) => {
                tracing::error!(error = %crate::error_chain(&error),
                    "The group filter plugin failed; no group is checkpointed this round.");
                vec![Some(GroupExclusion::PluginFailed); candidates.len()]
            }
        };
        let mut answers = answers.into_iter();
        for (_, exclusion) in decided
            .iter_mut()
            .filter(|(_, exclusion)| exclusion.is_none())
        {
            *exclusion = answers.next().unwrap_or(Some(GroupExclusion::PluginFailed));
        }
    }
    decided
}

impl Leader {
    /// Reads the offset syncs written since the last call into the indexes.
    fn read_offset_syncs(&mut self) -> Result<(), LeaderError> {
        if let Some(reader) = &mut self.syncs {
            let indexes = &mut self.indexes;
            reader.read_to_end(&self.stop, |key, value| {
                match OffsetSync::decode(key, value) {
                    Ok(sync) => indexes
                        .entry((sync.topic, sync.partition))
                        .or_insert_with(|| OffsetIndex::new(MAX_RUNS))
                        .add(sync.upstream_offset, sync.downstream_offset),
                    Err(error) => tracing::warn!(%error, "Ignoring a malformed offset sync."),
                }
            })?;
        }
        Ok(())
    }

    /// The source groups selected by `groups` / `groups_exclude` and the group filter plugin.
    fn source_groups(&self) -> Result<Vec<String>, LeaderError> {
        let list = ffi::list_groups(self.source_admins.first.client())
            .map_err(native("listing the source's consumer groups"))?;
        let filter = self
            .context
            .name_filters
            .groups
            .as_ref()
            .map(|slot| slot.current());
        let names = list.into_iter().map(|(name, _state)| name).collect();
        Ok(
            select_groups(&self.context.tasks.flow, filter.as_deref(), names)
                .into_iter()
                .filter(|(_, exclusion)| exclusion.is_none())
                .map(|(group, _)| group)
                .collect(),
        )
    }

    pub(super) fn checkpoint(&mut self) -> Result<(), LeaderError> {
        let started = Instant::now();
        let mut phases = Phases::new(started);
        let positions = self
            .positions
            .read_to_end_unless_stopped(READ_TIMEOUT, &self.stop)
            .map_err(|error| match error {
                PositionsError::Stopped { .. } => LeaderError::Stopped,
                error => LeaderError::Positions(error),
            })?
            .clone();
        phases.done("reading positions");
        self.read_offset_syncs()?;
        phases.done("reading offset syncs");
        let catalog = Arc::clone(&self.context.tasks.catalog.borrow());
        let groups = self.source_groups()?;
        phases.done("listing groups");
        if let Some(slot) = &self.context.name_filters.groups {
            let filter = slot.current();
            self.events.plugin_calls_so_far(
                filter.name(),
                Arc::as_ptr(&filter) as usize,
                (filter.calls(), filter.errors()),
                &mut self.group_filter_calls,
            );
        }
        let remote_names: HashMap<&str, &str> = catalog
            .topics
            .iter()
            .filter(|topic| topic.partitions > 0)
            .map(|topic| (&*topic.source, &*topic.remote))
            .collect();
        if remote_names.is_empty() {
            return Ok(());
        }
        let written = self
            .context
            .tasks
            .metrics
            .checkpoints_written
            .with_label_values(&[&self.flow]);
        let untranslatable = self
            .context
            .tasks
            .metrics
            .untranslatable_offsets
            .with_label_values(&[&self.flow]);
        let (group_count, written_before) = (groups.len(), written.get());
        let exactly_once = self.context.tasks.flow.exactly_once;
        // The checkpoints sent this round, with their creation times (MM2's checkpoint latency).
        let mut sent = Vec::new();
        // Every group's committed offsets, pipelined on one admin client.
        let committed = ffi::list_group_offsets(&self.source_admins.clients(), &groups)
            .map_err(native("listing the source groups' offsets"))?;
        phases.done("reading group offsets");
        for (group, committed) in groups.into_iter().zip(committed) {
            let committed = match committed {
                Ok(committed) => committed,
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error), group,
                        "Reading a group's offsets failed; it is checkpointed next time.");
                    continue;
                }
            };
            let listed_at = now_ms();
            for element in &committed {
                let upstream = element.offset;
                if upstream < 0 {
                    continue;
                }
                let (topic, partition) = (element.topic.as_str(), element.partition);
                let Some(index) = self.indexes.get(&(topic.to_owned(), partition)) else {
                    continue;
                };
                // How far the current copy is replicated and synced: the latest offset sync
                // (tasks write syncs far more often than positions, and store a position only
                // after the syncs before it, so checkpoints need not wait for a position
                // store; and when syncs cannot be written, positions run ahead of them but
                // translation must not). Exactly once, no further than the stored position
                // either: it is committed state, while a sync may describe records of a
                // transaction still open (or aborted), which no read_committed reader sees.
                let synced = index.last_synced();
                let last = match exactly_once {
                    true => positions
                        .get(&(topic.to_owned(), partition))
                        .copied()
                        .zip(synced)
                        .map(|(stored, synced)| stored.min(synced)),
                    false => synced,
                };
                let Some(last) = last else {
                    continue;
                };
                let Some(downstream) = index.translate(upstream, Some(last)) else {
                    untranslatable.inc();
                    tracing::debug!(
                        group,
                        topic,
                        partition,
                        upstream,
                        "The group's offset is older than the known offset history."
                    );
                    continue;
                };
                let Some(remote) = remote_names.get(topic) else {
                    continue;
                };
                if !self
                    .checkpoints
                    .offer(&group, remote, partition, upstream, downstream)
                {
                    continue;
                }
                let checkpoint = Checkpoint {
                    consumer_group_id: group.clone(),
                    topic: (*remote).to_owned(),
                    partition,
                    upstream_offset: upstream,
                    downstream_offset: downstream,
                    metadata: element.metadata.clone(),
                };
                let (Ok(key), Ok(value)) = (checkpoint.key(), checkpoint.value()) else {
                    continue;
                };
                let record: BaseRecord<'_, [u8], [u8]> =
                    BaseRecord::to(&self.context.checkpoints_topic)
                        .partition(0)
                        .key(&key[..])
                        .payload(&value[..])
                        .timestamp(listed_at);
                match self.target_producer.send(record) {
                    Ok(()) => {
                        written.inc();
                        tracing::debug!(%checkpoint, "Checkpoint written.");
                        sent.push((checkpoint, listed_at));
                    }
                    Err((error, _)) => {
                        tracing::warn!(%error, group, "Writing a checkpoint failed.");
                    }
                }
            }
        }
        let producer = &self.target_producer;
        crate::kafka::until_stopped(Instant::now() + READ_TIMEOUT, &self.stop, |slice| {
            producer.flush(slice)
        })
        .ok_or(LeaderError::Stopped)?
        .map_err(kafka("writing checkpoints"))?;
        // Every checkpoint of the round is acknowledged once the flush returns.
        let acknowledged = crate::metrics::now_ms();
        let flow = &self.context.tasks.flow;
        for (checkpoint, created) in sent {
            self.context.tasks.metrics.mm2.checkpoint_acknowledged(
                (flow.source.as_str(), flow.target.as_str()),
                &checkpoint.consumer_group_id,
                &checkpoint.topic,
                checkpoint.partition,
                created,
                acknowledged,
            );
        }
        phases.done("writing checkpoints");
        self.events.checkpoint_round(
            started.elapsed(),
            group_count,
            written.get().saturating_sub(written_before),
            &phases.took,
        );
        Ok(())
    }
}
