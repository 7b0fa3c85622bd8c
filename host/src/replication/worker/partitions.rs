//! The partition table of one task: every source partition the task tracks, by topic index.
//!
//! A topic gets an **index** (its position in the table) the first time the task sees it; delivery
//! reports carry the index (through the remote topic's name), so an acknowledgement finds its
//! partition without comparing names. A record's partition is found with one lookup
//! ([`PartitionTable::get_mut`]: topic name → index, then partition number → state) that
//! returns everything the record path needs.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::IntCounter;

use crate::metrics::{OwnedGauge, SourceSeries};
use crate::mm2::translation::SyncRule;
use crate::replication::tracker::CommitTracker;

/// One source partition the task tracks.
pub(super) struct PartitionState {
    /// Produced and acknowledged offsets; decides the position to store.
    pub(super) tracker: CommitTracker,
    /// When this partition's next offset sync is due (reset with every worker start).
    pub(super) sync: SyncRule,
    /// The next source offset to consume.
    pub(super) next_offset: Option<i64>,
    /// The last position written to the positions topic.
    pub(super) stored: Option<i64>,
    /// Whether the consumer is assigned the partition now ([`PartitionState::assign`]).
    assigned: bool,
    /// Stopped at a record a plugin failed on or the target refused (`on_error = "halt"`): paused, nothing of it is
    /// produced until a swap resumes it or the task restarts.
    pub(super) halted: bool,
    /// Records between the replicated position and the high watermark, while assigned: the
    /// series leaves `/metrics` when the partition is unassigned or the task ends.
    lag: Option<OwnedGauge>,
    /// MirrorMaker 2's series of the partition (`kafka_connect_mirror_mirrorsourceconnector_*`),
    /// while assigned, like `lag`.
    mm2: Option<SourceSeries>,
}

impl PartitionState {
    /// A partition seen for the first time; `offset_lag_max` is MM2's `offset.lag.max`.
    pub(super) fn new(offset_lag_max: u64) -> PartitionState {
        PartitionState {
            tracker: CommitTracker::default(),
            sync: SyncRule::new(offset_lag_max),
            next_offset: None,
            stored: None,
            assigned: false,
            halted: false,
            lag: None,
            mm2: None,
        }
    }

    /// Whether the consumer is assigned the partition now.
    pub(super) fn assigned(&self) -> bool {
        self.assigned
    }

    /// The consumer is assigned the partition; its lag shows in `lag`, its MM2 series in
    /// `mm2`.
    pub(super) fn assign(&mut self, lag: OwnedGauge, mm2: SourceSeries) {
        self.assigned = true;
        self.lag = Some(lag);
        self.mm2 = Some(mm2);
    }

    /// The source log of the partition started again (recreated or truncated topic) and every
    /// record of the old one is acknowledged: offsets are tracked afresh from `next`, and the
    /// next acknowledged record starts a new offset-sync run. The stored position stays until a
    /// record of the new log replaces it.
    pub(super) fn restart_log(&mut self, offset_lag_max: u64, next: i64) {
        self.tracker = CommitTracker::default();
        self.sync = SyncRule::new(offset_lag_max);
        self.next_offset = Some(next);
    }

    /// The partition left the task (its topic left the catalog): its lag series goes with it.
    /// The rest stays, to resume where it stopped if the topic comes back.
    pub(super) fn unassign(&mut self) {
        self.assigned = false;
        self.lag = None;
        self.mm2 = None;
    }

    /// A record with source timestamp `timestamp` was polled at `now_ms`.
    pub(super) fn polled(&self, timestamp: Option<i64>, now_ms: i64) {
        if let Some(series) = &self.mm2 {
            series.polled(timestamp, now_ms);
        }
    }

    /// The target acknowledged a record (`value_bytes` of value) at `now_ms`.
    pub(super) fn replicated(&self, timestamp: Option<i64>, value_bytes: usize, now_ms: i64) {
        if let Some(series) = &self.mm2 {
            series.replicated(timestamp, value_bytes, now_ms);
        }
    }

    /// Shows `lag` records behind the high watermark, while assigned.
    pub(super) fn set_lag(&self, lag: i64) {
        if let Some(gauge) = &self.lag {
            gauge.set(lag);
        }
    }

    /// The position to store now, if it moved since the last store (or `force`).
    pub(super) fn position_to_store(&self, force: bool) -> Option<i64> {
        let last = self.tracker.last_replicated()?;
        (force || self.stored != Some(last)).then_some(last)
    }

    /// Marks the partition halted at `offset`; `false` when it already was.
    pub(super) fn halt_at(&mut self, offset: i64) -> bool {
        if self.halted {
            return false;
        }
        self.halted = true;
        self.next_offset = Some(offset);
        true
    }

    /// Marks the partition halted at `offset`, a record that was produced and that the target
    /// refused: the tracker forgets it and everything after it (produced again when the
    /// partition resumes), and the next acknowledged record starts a new offset-sync run.
    /// `false` when it already was halted.
    pub(super) fn halt_refused_at(&mut self, offset: i64, offset_lag_max: u64) -> bool {
        if !self.halt_at(offset) {
            return false;
        }
        self.tracker.withdraw_from(offset);
        self.sync = SyncRule::new(offset_lag_max);
        true
    }

    /// Whether a delivery report for `offset` is to be ignored: the partition is halted at or
    /// before it, so the record is no longer tracked.
    pub(super) fn ignores_report(&self, offset: i64) -> bool {
        self.halted && self.next_offset.is_some_and(|halted| offset >= halted)
    }
}

/// One source topic the task tracks.
pub(super) struct TopicState {
    /// The source topic.
    pub(super) source: Arc<str>,
    /// Its remote topic (changes only with a forced policy swap).
    pub(super) remote: Arc<str>,
    /// The tracked partitions.
    pub(super) partitions: HashMap<i32, PartitionState>,
    /// Records replicated.
    pub(super) records: IntCounter,
    /// Bytes replicated.
    pub(super) bytes: IntCounter,
    /// Records the chain dropped.
    pub(super) dropped: IntCounter,
}

/// What one lookup of a record's partition gives.
pub(super) struct PartitionRef<'a> {
    /// The source topic.
    pub(super) source: &'a Arc<str>,
    /// The remote topic.
    pub(super) remote: &'a Arc<str>,
    /// The chain-dropped counter of the topic.
    pub(super) dropped: &'a IntCounter,
    /// The partition.
    pub(super) state: &'a mut PartitionState,
}

/// Every topic and partition one task tracks.
#[derive(Default)]
pub(super) struct PartitionTable {
    indexes: HashMap<Arc<str>, u32>,
    topics: Vec<TopicState>,
}

impl PartitionTable {
    /// The index of `source`, if the task has seen it.
    pub(super) fn index(&self, source: &str) -> Option<u32> {
        self.indexes.get(source).copied()
    }

    /// The topic in `index`.
    pub(super) fn topic(&self, index: u32) -> Option<&TopicState> {
        self.topics.get(index as usize)
    }

    /// The topic in `index`, to change.
    pub(super) fn topic_mut(&mut self, index: u32) -> Option<&mut TopicState> {
        self.topics.get_mut(index as usize)
    }

    /// Every tracked topic.
    pub(super) fn topics(&self) -> &[TopicState] {
        &self.topics
    }

    /// Every tracked topic, to change.
    pub(super) fn topics_mut(&mut self) -> &mut [TopicState] {
        &mut self.topics
    }

    /// Adds `topic` under a new index and returns the index.
    pub(super) fn add(&mut self, topic: TopicState) -> u32 {
        let index = u32::try_from(self.topics.len()).unwrap_or(u32::MAX);
        self.indexes.insert(Arc::clone(&topic.source), index);
        self.topics.push(topic);
        index
    }

    /// The partition `partition` of source topic `source`, in one lookup; `None` when the
    /// task does not track it.
    pub(super) fn get_mut(&mut self, source: &str, partition: i32) -> Option<PartitionRef<'_>> {
        let index = *self.indexes.get(source)?;
        let TopicState {
            source,
            remote,
            partitions,
            dropped,
            ..
        } = self.topics.get_mut(index as usize)?;
        let state = partitions.get_mut(&partition)?;
        Some(PartitionRef {
            source,
            remote,
            dropped,
            state,
        })
    }

    /// Whether `partition` of `source` is halted.
    pub(super) fn is_halted(&self, source: &str, partition: i32) -> bool {
        self.index(source)
            .and_then(|index| self.topic(index))
            .and_then(|topic| topic.partitions.get(&partition))
            .is_some_and(|state| state.halted)
    }

    /// How many tracked partitions are halted.
    pub(super) fn halted_count(&self) -> usize {
        self.topics
            .iter()
            .flat_map(|topic| topic.partitions.values())
            .filter(|state| state.halted)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(source: &str, remote: &str) -> TopicState {
        TopicState {
            source: Arc::from(source),
            remote: Arc::from(remote),
            partitions: HashMap::new(),
            records: IntCounter::new("r", "r").unwrap(),
            bytes: IntCounter::new("b", "b").unwrap(),
            dropped: IntCounter::new("d", "d").unwrap(),
        }
    }

    fn partition() -> PartitionState {
        PartitionState::new(100)
    }

    #[test]
    fn one_lookup_finds_names_and_state() {
        let mut table = PartitionTable::default();
        let first = table.add(topic("orders", "A.orders"));
        let second = table.add(topic("payments", "A.payments"));
        assert_eq!((first, second), (0, 1));
        table
            .topic_mut(second)
            .unwrap()
            .partitions
            .insert(3, partition());
        let found = table.get_mut("payments", 3).unwrap();
        assert_eq!(&**found.source, "payments");
        assert_eq!(&**found.remote, "A.payments");
        found.state.tracker.produced(7).unwrap();
        found.state.next_offset = Some(8);
        assert_eq!(
            table.topic(1).unwrap().partitions[&3].next_offset,
            Some(8),
            "the lookup changes the table's state"
        );
        assert!(table.get_mut("payments", 4).is_none());
        assert!(table.get_mut("orders", 3).is_none());
        assert!(table.get_mut("unknown", 0).is_none());
    }

    #[test]
    fn positions_are_stored_only_when_they_moved_or_when_forced() {
        let mut state = partition();
        assert_eq!(state.position_to_store(true), None, "nothing replicated");
        state.tracker.produced(5).unwrap();
        state.tracker.acknowledged(5).unwrap();
        assert_eq!(state.position_to_store(false), Some(5));
        state.stored = Some(5);
        assert_eq!(state.position_to_store(false), None);
        assert_eq!(state.position_to_store(true), Some(5));
    }

    #[test]
    fn a_refused_record_halts_its_partition_and_later_reports_are_ignored() {
        let mut state = partition();
        for offset in 10..14 {
            state.tracker.produced(offset).unwrap();
        }
        state.tracker.acknowledged(10).unwrap();
        assert!(state.halt_refused_at(11, 100));
        assert!(!state.halt_refused_at(12, 100), "halts once");
        assert!(!state.ignores_report(10));
        assert!(state.ignores_report(11) && state.ignores_report(13));
        assert_eq!(state.next_offset, Some(11));
        assert_eq!(state.tracker.in_flight(), 0);
        assert_eq!(state.position_to_store(false), Some(10));
    }

    #[test]
    fn a_partition_halts_once_at_the_failed_record() {
        let mut table = PartitionTable::default();
        let index = table.add(topic("orders", "A.orders"));
        let topic = table.topic_mut(index).unwrap();
        topic.partitions.insert(0, partition());
        topic.partitions.insert(1, partition());
        let state = table.get_mut("orders", 1).unwrap().state;
        state.next_offset = Some(12);
        assert!(state.halt_at(10));
        assert!(
            !state.halt_at(11),
            "halted once, at the first failed record"
        );
        assert_eq!(state.next_offset, Some(10), "resumes at the failed record");
        assert!(table.is_halted("orders", 1));
        assert!(!table.is_halted("orders", 0));
        assert_eq!(table.halted_count(), 1);
    }
}
