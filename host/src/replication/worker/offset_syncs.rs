//! A task's MM2 offset syncs (MM2's `MirrorSourceTask` queueing; `docs/mm2-facts.md`,
//! "Offset syncs"): an acknowledged record whose sync is due (`SyncRule`: the first of a run,
//! a gap, more than `offset_lag_max` since the last sync) makes an **urgent** sync, written
//! after every batch of acknowledgements; any other acknowledged record replaces its
//! partition's **delayed** sync, written at the next position store.
//!
//! Positions are stored only once every sync written before them is acknowledged
//! ([`OffsetSyncWriter::flush`]), so a stored position never covers a run boundary that is
//! not synced — while syncs can be written: when they cannot, positions are stored anyway
//! (`store.rs`), and the leader translates only up to the last sync. Urgent syncs are never coalesced: each marks a run boundary that exact offset
//! translation needs.

use std::collections::HashMap;
use std::time::Duration;

use prometheus::IntCounter;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, Producer};

use super::callbacks::OffsetSyncContext;
use crate::kafka::WakingProducer;
use crate::mm2::records::OffsetSync;

/// One sync to write: (topic index, partition, upstream offset, downstream offset).
pub(super) type Sync = (u32, i32, i64, i64);

/// Which syncs are due, in order; pure bookkeeping.
#[derive(Debug, Default)]
pub(super) struct OffsetSyncQueue {
    /// Syncs to write now, in order.
    pending: Vec<Sync>,
    /// The latest non-urgent sync per (topic index, partition).
    delayed: HashMap<(u32, i32), (i64, i64)>,
}

impl OffsetSyncQueue {
    /// An acknowledged record of (`index`, `partition`) at `upstream` → `downstream`; `urgent`
    /// when its sync is due now.
    pub(super) fn acknowledged(
        &mut self,
        index: u32,
        partition: i32,
        upstream: i64,
        downstream: i64,
        urgent: bool,
    ) {
        let key = (index, partition);
        if urgent {
            self.pending.push((index, partition, upstream, downstream));
            self.delayed.remove(&key);
        } else {
            self.delayed.insert(key, (upstream, downstream));
        }
    }

    /// Makes every delayed sync pending (before positions are stored).
    pub(super) fn promote_delayed(&mut self) {
        let delayed = self.delayed.drain();
        self.pending
            .extend(delayed.map(|((index, partition), (up, down))| (index, partition, up, down)));
    }

    /// Takes the pending syncs, in order.
    pub(super) fn take_pending(&mut self) -> std::vec::Drain<'_, Sync> {
        self.pending.drain(..)
    }
}

/// Writes one task's offset syncs to partition 0 of the offset-syncs topic (as MM2 does).
pub(super) struct OffsetSyncWriter {
    /// The offset-syncs topic.
    pub(super) topic: String,
    producer: WakingProducer<OffsetSyncContext>,
    /// What is due.
    pub(super) queue: OffsetSyncQueue,
    /// Whether syncs were written since the last flush.
    unflushed: bool,
    /// Whether writing syncs failed and has not succeeded since (`store.rs`).
    pub(super) failing: bool,
    written: IntCounter,
}

impl OffsetSyncWriter {
    /// A writer on `producer` to `topic`, counting into `written`.
    pub(super) fn new(
        topic: String,
        producer: WakingProducer<OffsetSyncContext>,
        written: IntCounter,
    ) -> OffsetSyncWriter {
        OffsetSyncWriter {
            topic,
            producer,
            queue: OffsetSyncQueue::default(),
            unflushed: false,
            failing: false,
            written,
        }
    }

    /// Writes the pending syncs; `source_topic` names the source topic of a index.
    pub(super) fn send_pending<'a>(&mut self, source_topic: impl Fn(u32) -> Option<&'a str>) {
        for (index, partition, upstream, downstream) in self.queue.take_pending() {
            let Some(topic) = source_topic(index) else {
                continue;
            };
            let sync = OffsetSync {
                topic: topic.to_owned(),
                partition,
                upstream_offset: upstream,
                downstream_offset: downstream,
            };
            let Ok(key) = sync.key() else {
                continue;
            };
            let value = sync.value();
            let record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&self.topic)
                .partition(0)
                .key(&key[..])
                .payload(&value[..]);
            match self.producer.send(record) {
                Ok(()) => {
                    self.unflushed = true;
                    self.written.inc();
                }
                // Counted as a delivery failure: the next flush fails and no position is
                // stored past it.
                Err((error, _)) => self.producer.context().failed(error),
            }
        }
        self.producer.poll(Duration::ZERO);
    }

    /// Waits until every sync written so far is acknowledged.
    ///
    /// # Errors
    /// The first sync that was not acknowledged.
    pub(super) fn flush(&mut self, timeout: Duration) -> Result<(), KafkaError> {
        if self.unflushed {
            self.producer.flush(timeout)?;
            self.unflushed = false;
        }
        match self.producer.context().take_error() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OffsetSyncQueue;

    #[test]
    fn urgent_syncs_are_kept_in_order_and_delayed_ones_coalesce_per_partition() {
        let mut queue = OffsetSyncQueue::default();
        queue.acknowledged(0, 0, 0, 0, true);
        queue.acknowledged(0, 0, 1, 1, false);
        queue.acknowledged(0, 0, 2, 2, false);
        queue.acknowledged(0, 1, 0, 5, true);
        queue.acknowledged(1, 0, 9, 3, false);
        queue.acknowledged(0, 0, 7, 3, true);
        assert_eq!(
            queue.take_pending().collect::<Vec<_>>(),
            [(0, 0, 0, 0), (0, 1, 0, 5), (0, 0, 7, 3)],
            "every urgent sync, in acknowledgement order"
        );
        queue.promote_delayed();
        assert_eq!(
            queue.take_pending().collect::<Vec<_>>(),
            [(1, 0, 9, 3)],
            "an urgent sync replaces the delayed one of its partition"
        );
        queue.promote_delayed();
        assert_eq!(queue.take_pending().count(), 0);
    }
}
