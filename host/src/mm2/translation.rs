//! Offset translation: which downstream (target) offset corresponds to an upstream (source)
//! offset of a mirrored partition.
//!
//! This module owns three pure pieces of logic, with no Kafka client in sight:
//!
//! * [`SyncRule`]: when a task emits an MM2 offset sync (`docs/mm2-facts.md`, "Offset syncs"; MM2's
//!   `MirrorSourceTask.PartitionState`): the first record after a (re)start, a gap in upstream
//!   offsets, a downstream truncation, or a sync older than `offset.lag.max` records; and,
//!   beyond MM2, a gap in downstream offsets (an exactly-once commit's transaction marker).
//! * [`OffsetIndex`]: Ferry's run-length index of one partition, built from the offset syncs.
//!   Because a sync is emitted at every upstream gap and at every task start, and positions are
//!   stored only after the syncs before them were acknowledged, the records between two syncs
//!   form a contiguous run on both sides. The index keeps one entry per run (not one per sync)
//!   and translates **any** offset inside the known history exactly. MM2 keeps 64 syncs spaced
//!   exponentially and translates to "last sync + 1" ("Offset translation"): up to `offset.lag.max` records
//!   behind for caught-up groups, and near the beginning for groups lagging far behind.
//! * [`CheckpointState`]: MM2's `checkpointIsMoreRecent` — checkpoints never move a group back,
//!   except after the group itself was rewound on the source.

use std::collections::{BTreeMap, HashMap};

/// MM2's per-partition offset-sync state (`MirrorSourceTask.PartitionState`), reset when a
/// task starts.
#[derive(Debug, Clone)]
pub(crate) struct SyncRule {
    previous_upstream: i64,
    previous_downstream: i64,
    last_sync_downstream: i64,
    lag_max: i64,
    due: bool,
}

impl SyncRule {
    /// A fresh state; the first record after it always yields a sync.
    pub(crate) fn new(offset_lag_max: u64) -> SyncRule {
        SyncRule {
            previous_upstream: -1,
            previous_downstream: -1,
            last_sync_downstream: -1,
            lag_max: i64::try_from(offset_lag_max).unwrap_or(i64::MAX),
            due: false,
        }
    }

    /// Records that source offset `upstream` was written at target offset `downstream` (in
    /// acknowledgement order) and returns whether a sync must be emitted now (MM2's `update`).
    /// When it returns false the pair may still be emitted later as a "delayed" sync.
    pub(crate) fn update(&mut self, upstream: i64, downstream: i64) -> bool {
        let first = self.last_sync_downstream == -1;
        let stale =
            downstream.saturating_sub(self.last_sync_downstream.saturating_add(1)) >= self.lag_max;
        let skipped = upstream.wrapping_sub(self.previous_upstream) != 1;
        let truncated = downstream < self.previous_downstream;
        // Beyond MM2: a gap downstream (the transaction marker an exactly-once commit writes
        // into every partition it touched, or another writer of the remote partition) starts
        // a new run too, so that the run-length index stays exact.
        let jumped = downstream != self.previous_downstream.saturating_add(1);
        if first || stale || skipped || truncated || jumped {
            self.due = true;
            self.last_sync_downstream = downstream;
        }
        self.previous_upstream = upstream;
        self.previous_downstream = downstream;
        std::mem::take(&mut self.due)
    }
}

/// One run: `upstream` was written at `downstream`, and so on, one for one, up to the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    upstream: i64,
    downstream: i64,
}

/// The run-length index of one partition's upstream → downstream mapping.
#[derive(Debug, Clone)]
pub(crate) struct OffsetIndex {
    /// Runs in increasing upstream and downstream order.
    runs: Vec<Run>,
    max_runs: usize,
    /// The upstream offset of the latest sync added: a task writes a sync only after the
    /// target acknowledged that record and, in the same ordered stream, every sync of an
    /// earlier run boundary, so the current copy is replicated at least this far.
    last_synced: Option<i64>,
}

impl OffsetIndex {
    /// An empty index keeping at most `max_runs` runs (the oldest are forgotten first).
    pub(crate) fn new(max_runs: usize) -> OffsetIndex {
        OffsetIndex {
            runs: Vec::new(),
            max_runs: max_runs.max(2),
            last_synced: None,
        }
    }

    /// Adds an offset sync, in the order they were written.
    ///
    /// * A sync inside the current run adds nothing.
    /// * A sync whose upstream offset is lower than known runs (records copied again after a
    ///   crash, or the source topic recreated) replaces the runs at and above it: the later
    ///   copy is the one consumers on the target read after a failover.
    /// * A sync whose downstream offset is lower than known runs (the remote topic was
    ///   truncated or recreated) clears the index.
    pub(crate) fn add(&mut self, upstream: i64, downstream: i64) {
        if upstream < 0 || downstream < 0 {
            return;
        }
        // Also after a re-copy (a lower upstream offset): the later copy is the current one.
        self.last_synced = Some(upstream);
        if let Some(last) = self.runs.last().copied() {
            if downstream < last.downstream {
                self.runs.clear();
            } else if upstream >= last.upstream {
                if upstream - last.upstream == downstream - last.downstream {
                    return;
                }
            } else {
                let keep = self.runs.partition_point(|run| run.upstream < upstream);
                self.runs.truncate(keep);
                if let Some(previous) = self.runs.last()
                    && downstream < previous.downstream
                {
                    self.runs.clear();
                }
            }
        }
        if self.runs.len() >= self.max_runs {
            self.runs.drain(..self.max_runs / 2);
        }
        self.runs.push(Run {
            upstream,
            downstream,
        });
    }

    /// The upstream offset of the latest sync added: the current copy of the partition is
    /// replicated at least through it, whatever the stored position says.
    pub(crate) fn last_synced(&self) -> Option<i64> {
        self.last_synced
    }

    /// Translates the committed source offset `upstream` (the next record a group reads) into
    /// the target offset of the same record, given `last_replicated`, the last source offset
    /// whose copy is known to be acknowledged (the stored position, or [`Self::last_synced`]
    /// when that is further).
    ///
    /// Returns `None` when `upstream` is older than the known history. An offset past
    /// `last_replicated + 1` (the group is ahead of replication) is translated as
    /// `last_replicated + 1`: the target's end, never beyond it.
    pub(crate) fn translate(&self, upstream: i64, last_replicated: Option<i64>) -> Option<i64> {
        let upstream = match last_replicated {
            Some(last) => upstream.min(last.saturating_add(1)),
            None => upstream,
        };
        let index = self.runs.partition_point(|run| run.upstream <= upstream);
        let run = self.runs.get(index.checked_sub(1)?)?;
        let within = upstream - run.upstream;
        Some(match self.runs.get(index) {
            // Offsets between the end of this run and the next run are a gap on the source
            // (compaction, transaction markers): they translate to the next run's start.
            Some(next) => run.downstream + within.min(next.downstream - run.downstream),
            None => run.downstream + within,
        })
    }

    /// Number of runs held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.runs.len()
    }
}

/// The latest checkpoint per (group, remote topic, partition): MM2's `checkpointIsMoreRecent`.
/// Kept per group, so that a group's offsets are found without visiting every other group's
/// (thousands of groups are ordinary).
#[derive(Debug, Default)]
pub(crate) struct CheckpointState {
    latest: HashMap<String, GroupCheckpoints>,
}

/// One group's latest checkpoints: (remote topic, partition) → (upstream, downstream).
type GroupCheckpoints = BTreeMap<(String, i32), (i64, i64)>;

impl CheckpointState {
    /// Remembers a checkpoint read back from the checkpoints topic (at start-up).
    pub(crate) fn load(&mut self, group: &str, topic: &str, partition: i32, up: i64, down: i64) {
        self.latest
            .entry(group.to_owned())
            .or_default()
            .insert((topic.to_owned(), partition), (up, down));
    }

    /// Whether a new checkpoint is worth emitting, and if so remembers it: the first for its
    /// key, a group rewound on the source (`up` lower than before), or a higher downstream
    /// offset. A checkpoint never moves a group back otherwise.
    pub(crate) fn offer(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        up: i64,
        down: i64,
    ) -> bool {
        let key = (topic.to_owned(), partition);
        let partitions = match self.latest.get_mut(group) {
            Some(partitions) => partitions,
            None => self.latest.entry(group.to_owned()).or_default(),
        };
        let newer = match partitions.get(&key) {
            None => true,
            Some(&(last_up, last_down)) => up < last_up || down > last_down,
        };
        if newer {
            partitions.insert(key, (up, down));
        }
        newer
    }

    /// The latest downstream offset of every partition of `group`, by (remote topic, partition).
    pub(crate) fn group_offsets(&self, group: &str) -> Vec<(String, i32, i64)> {
        self.latest
            .get(group)
            .into_iter()
            .flatten()
            .map(|((topic, partition), (_, down))| (topic.clone(), *partition, *down))
            .collect()
    }

    /// Every group with a checkpoint, sorted.
    pub(crate) fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.latest.keys().cloned().collect();
        groups.sort();
        groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pairs for which [`SyncRule`] asks for a sync.
    fn emitted(rule: &mut SyncRule, pairs: &[(i64, i64)]) -> Vec<(i64, i64)> {
        pairs
            .iter()
            .copied()
            .filter(|&(up, down)| rule.update(up, down))
            .collect()
    }

    #[test]
    fn sync_rule_follows_mm2() {
        let mut rule = SyncRule::new(100);
        let pairs: Vec<(i64, i64)> = (0..=250).map(|up| (up, up + 1000)).collect();
        // First record, then one every offset.lag.max + 1 records.
        assert_eq!(
            emitted(&mut rule, &pairs),
            vec![(0, 1000), (101, 1101), (202, 1202)]
        );
        // A gap upstream (compaction, transaction marker) is synced at once.
        assert_eq!(
            emitted(&mut rule, &[(251, 1251), (260, 1252)]),
            vec![(260, 1252)]
        );
        // Downstream truncation too.
        assert_eq!(emitted(&mut rule, &[(261, 5)]), vec![(261, 5)]);
        // And, beyond MM2, a gap downstream: the marker of an exactly-once commit.
        assert_eq!(
            emitted(&mut rule, &[(262, 6), (263, 8), (264, 9)]),
            vec![(263, 8)]
        );
        // A new task lifetime syncs its first record.
        let mut restarted = SyncRule::new(100);
        assert!(restarted.update(262, 6));
    }

    #[test]
    fn index_translates_contiguous_copies_exactly() {
        let mut rule = SyncRule::new(100);
        let mut index = OffsetIndex::new(1024);
        for up in 0..100_000 {
            if rule.update(up, up) {
                index.add(up, up);
            }
        }
        assert_eq!(index.len(), 1, "one run for a contiguous copy");
        let last = Some(99_999);
        // MM2 translates 50000 to 1 in the same situation (`docs/mm2-facts.md`, "Offset translation").
        for group in [0, 1, 50_000, 90_050, 99_000, 99_999, 100_000] {
            assert_eq!(index.translate(group, last), Some(group));
        }
        // A group ahead of replication is translated to the target's end, not beyond it.
        assert_eq!(index.translate(120_000, last), Some(100_000));
    }

    #[test]
    fn gaps_translate_to_the_next_record() {
        let mut rule = SyncRule::new(100);
        let mut index = OffsetIndex::new(1024);
        // Source offsets 0..10, then a transaction marker at 10, then 11..20; then compaction
        // removed 20..30, then 30..40.
        let ups: Vec<i64> = (0..10).chain(11..20).chain(30..40).collect();
        for (down, up) in ups.iter().enumerate() {
            if rule.update(*up, down as i64) {
                index.add(*up, down as i64);
            }
        }
        assert_eq!(index.len(), 3);
        let last = Some(39);
        assert_eq!(index.translate(5, last), Some(5));
        assert_eq!(
            index.translate(10, last),
            Some(10),
            "the marker: next record"
        );
        assert_eq!(index.translate(11, last), Some(10));
        assert_eq!(index.translate(19, last), Some(18));
        assert_eq!(
            index.translate(20, last),
            Some(19),
            "inside the compacted gap"
        );
        assert_eq!(index.translate(29, last), Some(19));
        assert_eq!(index.translate(30, last), Some(19));
        assert_eq!(index.translate(39, last), Some(28));
        assert_eq!(index.translate(40, last), Some(29));
        assert_eq!(index.translate(41, last), Some(29));
    }

    #[test]
    fn history_before_the_first_sync_is_unknown() {
        let mut index = OffsetIndex::new(1024);
        index.add(500, 0);
        assert_eq!(index.translate(499, Some(600)), None);
        assert_eq!(index.translate(500, Some(600)), Some(0));
        assert_eq!(index.translate(550, None), Some(50));
    }

    #[test]
    fn recopied_records_replace_the_first_copy() {
        let mut index = OffsetIndex::new(1024);
        // Copied 0..=149 to 0..=149; the task died after storing position 99; the next owner
        // copied 100.. again at 150..
        index.add(0, 0);
        index.add(100, 150);
        assert_eq!(index.translate(50, Some(200)), Some(50));
        assert_eq!(index.translate(100, Some(200)), Some(150));
        assert_eq!(index.translate(120, Some(200)), Some(170));
        // A recreated source topic (upstream back to 0, downstream continues) starts over.
        index.add(0, 400);
        assert_eq!(index.len(), 1);
        assert_eq!(index.translate(10, Some(20)), Some(410));
        // A truncated target starts over too.
        index.add(30, 5);
        assert_eq!(index.translate(30, Some(40)), Some(5));
        assert_eq!(index.translate(10, Some(40)), None);
    }

    #[test]
    fn the_latest_sync_bounds_what_is_replicated_in_the_current_copy() {
        let mut index = OffsetIndex::new(1024);
        assert_eq!(index.last_synced(), None);
        index.add(0, 0);
        index.add(60, 60);
        assert_eq!(
            index.last_synced(),
            Some(60),
            "a sync inside the run raises the bound"
        );
        assert_eq!(index.len(), 1);
        // A re-copy from 40 (its first sync): the current copy reached 40, not 60.
        index.add(40, 61);
        assert_eq!(index.last_synced(), Some(40));
        assert_eq!(
            index.translate(100, index.last_synced()),
            Some(62),
            "a group ahead of replication lands at the current copy's end"
        );
    }

    #[test]
    fn index_is_bounded() {
        let mut index = OffsetIndex::new(8);
        for run in 0..100 {
            index.add(run * 10, run * 9);
        }
        assert!(index.len() <= 8);
        assert_eq!(index.translate(995, Some(995)), Some(99 * 9 + 5));
        assert_eq!(index.translate(0, Some(995)), None);
    }

    #[test]
    fn checkpoints_never_move_back_unless_the_group_rewound() {
        let mut state = CheckpointState::default();
        assert!(state.offer("g", "A.t", 0, 100, 90));
        assert!(!state.offer("g", "A.t", 0, 100, 90), "repeated");
        assert!(!state.offer("g", "A.t", 0, 110, 85), "downstream rewind");
        assert!(state.offer("g", "A.t", 0, 120, 110));
        assert!(
            state.offer("g", "A.t", 0, 50, 40),
            "the group was reset on the source"
        );
        state.load("h", "A.t", 1, 7, 7);
        assert_eq!(state.groups(), vec!["g".to_owned(), "h".to_owned()]);
        assert_eq!(state.group_offsets("g"), vec![("A.t".to_owned(), 0, 40)]);
    }
}
