//! The partitions of a flow halted in this process (`on_error = "halt"` after a plugin failure
//! or a record the target refused, or an open circuit breaker), each with the record it
//! stopped at: the task workers write it, the status publisher (`flow::status`) reads it. It
//! only mirrors what the workers' partition tables say; it decides nothing.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// The record a partition halted at, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HaltedRecord {
    /// The source topic.
    pub(crate) topic: String,
    /// The source partition.
    pub(crate) partition: i32,
    /// The offset of the record the plugin failed on, or the target refused (the partition
    /// resumes there).
    pub(crate) offset: i64,
    /// The plugin that failed (`target` when the target refused the record).
    pub(crate) plugin: String,
    /// Its error.
    pub(crate) error: String,
}

/// The halted partitions of one flow in this process, by (topic, partition).
#[derive(Debug, Default)]
pub(crate) struct Halts {
    halted: Mutex<BTreeMap<(String, i32), HaltedRecord>>,
}

impl Halts {
    /// A partition halted at `record`.
    pub(crate) fn halted(&self, record: HaltedRecord) {
        let key = (record.topic.clone(), record.partition);
        self.lock().insert(key, record);
    }

    /// `partition` of `topic` resumed, or left this process's task.
    pub(crate) fn cleared(&self, topic: &str, partition: i32) {
        self.lock().remove(&(topic.to_owned(), partition));
    }

    /// Every halted partition now, sorted by topic and partition.
    pub(crate) fn snapshot(&self) -> Vec<HaltedRecord> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, i32), HaltedRecord>> {
        self.halted.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(topic: &str, partition: i32, offset: i64) -> HaltedRecord {
        HaltedRecord {
            topic: topic.to_owned(),
            partition,
            offset,
            plugin: "trap".to_owned(),
            error: "boom".to_owned(),
        }
    }

    #[test]
    fn a_partition_is_listed_until_cleared_once_per_partition() {
        let halts = Halts::default();
        halts.halted(record("b", 1, 7));
        halts.halted(record("a", 0, 3));
        halts.halted(record("a", 0, 4));
        assert_eq!(halts.snapshot(), [record("a", 0, 4), record("b", 1, 7)]);
        halts.cleared("a", 0);
        halts.cleared("c", 9);
        assert_eq!(halts.snapshot(), [record("b", 1, 7)]);
    }
}
