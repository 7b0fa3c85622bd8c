//! The group offset sync duty: the latest checkpointed offsets committed to the same groups on
//! the target, only while a group has no members there and only where the target is behind.

use std::collections::HashMap;
use std::time::Instant;

use super::{Leader, LeaderError, Phases, native};
use crate::kafka::ffi::{self, NativeError};
use crate::kafka::resources::GroupOffset;

/// A group considered by a round of group offset sync, and how many partitions were committed
/// to it.
type GroupOutcome = (String, Result<u64, NativeError>);

impl Leader {
    pub(super) fn sync_group_offsets(&mut self) {
        let started = Instant::now();
        let mut phases = Phases::new(started);
        let flow = &self.context.tasks.flow;
        let groups: Vec<String> = self
            .checkpoints
            .groups()
            .into_iter()
            .filter(|group| {
                let filtered = match &self.context.name_filters.groups {
                    // Cached since the checkpoint round asked; an error skips the group this
                    // round.
                    Some(filter) => !filter.current().allows(group).unwrap_or(false),
                    None => false,
                };
                flow.groups.matches(group) && !flow.groups_exclude.matches(group) && !filtered
            })
            .collect();
        match self.sync_groups(&groups, &mut phases) {
            Ok(outcomes) => {
                for (group, outcome) in outcomes {
                    match outcome {
                        Ok(0) => {}
                        Ok(count) => self.events.group_offsets_synced(&group, count),
                        Err(error) => {
                            tracing::warn!(error = %crate::error_chain(&error), group,
                                "Syncing group offsets failed (the group may have become active on the target); retrying next time.");
                        }
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %crate::error_chain(&error),
                    "Syncing group offsets failed; retrying next time.");
            }
        }
        self.events
            .group_sync_round(started.elapsed(), groups.len(), &phases.took);
    }

    /// Commits the latest checkpoints of each of `groups` to the same group on the target,
    /// when that group has no members, only where they are ahead of what it has committed
    /// there. The target's group states are listed once, then the idle groups' offsets are
    /// read and the commits sent, each pipelined on one admin client, right before committing;
    /// the broker refuses a commit into a group that has members by then. A group absent from
    /// the listing has committed nothing, so its offsets are not read. Returns the number of
    /// partitions committed per group that was considered.
    fn sync_groups(
        &self,
        groups: &[String],
        phases: &mut Phases,
    ) -> Result<Vec<GroupOutcome>, LeaderError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let listed = ffi::list_groups(self.target_admins.first.client())
            .map_err(native("listing the target's consumer groups"))?;
        let states: HashMap<String, String> = listed.into_iter().collect();
        phases.done("listing target groups");
        let mut existing = Vec::new();
        let mut absent = Vec::new();
        for group in groups {
            match states.get(group.as_str()) {
                Some(state) if !is_idle(state) => {
                    tracing::debug!(
                        group = group.as_str(),
                        state,
                        "The target group is active; its offsets are left alone."
                    );
                }
                Some(_) => existing.push(group.clone()),
                None => absent.push(group.clone()),
            }
        }
        let current = ffi::list_group_offsets(&self.target_admins.clients(), &existing)
            .map_err(native("listing the target groups' offsets"))?;
        phases.done("reading target group offsets");
        let mut outcomes = Vec::with_capacity(existing.len() + absent.len());
        let mut commits = Vec::new();
        let current = existing
            .into_iter()
            .zip(current)
            .chain(absent.into_iter().map(|group| (group, Ok(Vec::new()))));
        for (group, current) in current {
            match current {
                Ok(current) => {
                    let ahead = ahead_of(&self.checkpoints.group_offsets(&group), &current);
                    if !ahead.is_empty() {
                        commits.push((group, ahead));
                    }
                }
                Err(error) => outcomes.push((group, Err(error))),
            }
        }
        let results = ffi::alter_group_offsets(&self.target_admins.clients(), &commits)
            .map_err(native("committing the target groups' offsets"))?;
        phases.done("committing");
        for ((group, offsets), result) in commits.into_iter().zip(results) {
            outcomes.push((group, result.map(|()| offsets.len() as u64)));
        }
        Ok(outcomes)
    }
}

/// Whether a target group in `state` (librdkafka's name of it) may be committed to from
/// outside: it has no members. A group absent from the listing does not exist yet, and is
/// idle too.
fn is_idle(state: &str) -> bool {
    matches!(state, "Empty" | "Dead")
}

/// The checkpointed offsets (`converted`: remote topic, partition, downstream offset) that are
/// ahead of what the target group committed (`current`), or where it committed nothing: a
/// group is never moved back.
fn ahead_of(converted: &[(String, i32, i64)], current: &[GroupOffset]) -> Vec<(String, i32, i64)> {
    let committed: HashMap<(&str, i32), i64> = current
        .iter()
        .filter(|offset| offset.offset >= 0)
        .map(|offset| ((offset.topic.as_str(), offset.partition), offset.offset))
        .collect();
    converted
        .iter()
        .filter(|(topic, partition, downstream)| {
            committed
                .get(&(topic.as_str(), *partition))
                .is_none_or(|committed| downstream > committed)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(topic: &str, partition: i32, offset: i64) -> GroupOffset {
        GroupOffset {
            topic: topic.to_owned(),
            partition,
            offset,
            metadata: String::new(),
            error: None,
        }
    }

    #[test]
    fn only_offsets_ahead_of_the_target_group_are_committed() {
        let converted = vec![
            ("A.t".to_owned(), 0, 10),
            ("A.t".to_owned(), 1, 20),
            ("A.t".to_owned(), 2, 30),
            ("A.u".to_owned(), 0, 5),
        ];
        let current = [
            offset("A.t", 0, 10),
            offset("A.t", 1, 25),
            offset("A.t", 2, 12),
            offset("A.u", 0, -1001),
        ];
        assert_eq!(
            ahead_of(&converted, &current),
            [("A.t".to_owned(), 2, 30), ("A.u".to_owned(), 0, 5)],
            "equal or ahead on the target: left alone; no commit there: committed"
        );
        assert_eq!(ahead_of(&converted, &[]), converted);
    }

    #[test]
    fn only_groups_without_members_are_idle() {
        assert!(is_idle("Empty"));
        assert!(is_idle("Dead"));
        for active in [
            "Stable",
            "PreparingRebalance",
            "CompletingRebalance",
            "Unknown",
        ] {
            assert!(!is_idle(active), "{active}");
        }
    }
}
