//! Positions of one task: writing them after acknowledgement, and where a partition resumes
//! from a stored one.
//!
//! A position (the last replicated source offset of a partition, MM2's format) is written
//! only when the partition's contiguous acknowledged run moved past the last written one, and
//! only after every offset sync written before it was acknowledged (`offset_syncs`).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseRecord;

use super::callbacks::{Opaque, SourceContext};
use std::time::Duration;

use rdkafka::error::KafkaError;

use super::{TaskError, Worker};
use crate::events::Events;
use crate::mm2::positions;
use crate::mm2::translation::SyncRule;

/// Where a partition resumes, given its next offset and the source log's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resume {
    /// At the next offset: the log holds it (or it is the log's end).
    Next(i64),
    /// At the log start: retention deleted records before they were replicated.
    LogStart {
        /// The first offset the source still holds.
        low: i64,
        /// The next offset.
        next: i64,
    },
    /// At the log start: the next offset is beyond the log's end, so the log is not the one
    /// copied so far (the topic was deleted and created again, or truncated). Its records are
    /// copied again from the start: never skipped, at worst copied twice after a truncation.
    BeyondEnd {
        /// The first offset the source holds.
        low: i64,
        /// The next offset.
        next: i64,
        /// The high watermark.
        high: i64,
    },
}

impl Resume {
    /// The decision for next offset `next` in a log holding `low..high`.
    pub(super) fn decide(next: i64, low: i64, high: i64) -> Resume {
        if next > high {
            Resume::BeyondEnd { low, next, high }
        } else if next < low {
            Resume::LogStart { low, next }
        } else {
            Resume::Next(next)
        }
    }

    /// The offset to consume from.
    pub(super) fn offset(self) -> i64 {
        match self {
            Resume::Next(offset) => offset,
            Resume::LogStart { low, .. } | Resume::BeyondEnd { low, .. } => low,
        }
    }
}

/// The offset to resume `partition` of `topic` at, given its `next` offset (stored, or where
/// this task stopped): `next` itself unless the source log no longer holds it. Records deleted
/// by retention before they were replicated cannot be copied; going on at the log start is
/// what MM2 does too (`auto.offset.reset=earliest`); they are counted and logged as an error.
/// A next offset beyond the log's end means a new log: it is copied from its start.
pub(super) fn checked_resume(
    consumer: &BaseConsumer<SourceContext>,
    events: &Events,
    topic: &str,
    partition: i32,
    next: i64,
) -> i64 {
    match consumer.fetch_watermarks(topic, partition, crate::kafka::REQUEST_TIMEOUT) {
        Ok((low, high)) => {
            let resume = Resume::decide(next, low, high);
            match resume {
                Resume::LogStart { low, next } => {
                    events.source_records_deleted(topic, partition, next, low);
                }
                Resume::BeyondEnd { low, next, high } => {
                    events.source_log_rewound(topic, partition, next, (low, high));
                }
                Resume::Next(_) => {}
            }
            resume.offset()
        }
        Err(error) => {
            tracing::warn!(topic, partition, %error, "Reading watermarks failed; resuming at the next offset.");
            next
        }
    }
}

impl Worker {
    /// Writes the position of every partition that advanced since the last write, once the
    /// offset syncs before them are acknowledged (waiting at most `timeout` for those).
    pub(super) fn store_positions(&mut self, timeout: Duration) -> Result<(), TaskError> {
        self.flush_syncs(timeout);
        let source_alias = self.context.flow.source.as_str();
        let positions_topic = self.context.positions_topic.as_str();
        let force = std::mem::take(&mut self.positions_dirty);
        for topic in self.table.topics_mut() {
            for (partition, state) in &mut topic.partitions {
                let Some(last) = state.position_to_store(force) else {
                    continue;
                };
                let key = positions::encode_key(source_alias, &topic.source, *partition);
                let value = positions::encode_value(last);
                let record: BaseRecord<'_, [u8], [u8], usize> =
                    BaseRecord::with_opaque_to(positions_topic, Opaque::Position.encode())
                        .key(&key[..])
                        .payload(&value[..]);
                match self.producer.send(record) {
                    Ok(()) => {
                        state.stored = Some(last);
                        self.positions_stored.inc();
                    }
                    Err((error, _)) => {
                        tracing::warn!(%error, topic = %topic.source, partition,
                            "Storing a position failed; it is stored again.");
                        self.positions_dirty = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the latest delayed sync of every partition, without waiting for it: between
    /// position stores, so that the leader knows how far each partition is replicated.
    pub(super) fn send_delayed_syncs(&mut self) {
        let Some(syncs) = &mut self.syncs else {
            return;
        };
        syncs.queue.promote_delayed();
        let table = &self.table;
        syncs.send_pending(|index| table.topic(index).map(|topic| &*topic.source));
    }

    /// Writes the latest delayed sync of every partition and waits until every sync is
    /// acknowledged (MM2's `commit()` promotion, KAFKA-15906), at most `timeout`.
    ///
    /// Offset syncs never hold the copy back: when they cannot be written (the topic missing,
    /// unwritable, its cluster away) that is an ERROR and `ferry_offset_sync_failures_total`,
    /// positions are stored anyway, and while the failure lasts no position store waits for
    /// syncs. Every partition then starts a new run at its next record, so translation is exact
    /// again from the first sync that lands; the leader translates no further than the last
    /// sync it read (`flow::leader`), so the records copied meanwhile are never translated past.
    fn flush_syncs(&mut self, timeout: Duration) {
        self.send_delayed_syncs();
        let Some(syncs) = &mut self.syncs else {
            return;
        };
        let timeout = if syncs.failing {
            Duration::ZERO
        } else {
            timeout
        };
        match syncs.flush(timeout) {
            Ok(()) => {
                if std::mem::take(&mut syncs.failing) {
                    tracing::info!(topic = %syncs.topic, "Offset syncs are written again.");
                }
            }
            Err(error) if syncs.failing && matches!(error, KafkaError::Flush(_)) => {
                // Still outstanding from the failure: already reported.
            }
            Err(error) => {
                if !syncs.failing {
                    self.events.offset_syncs_failed(&syncs.topic, &error);
                }
                syncs.failing = true;
                for topic in self.table.topics_mut() {
                    for state in topic.partitions.values_mut() {
                        state.sync = SyncRule::new(self.context.flow.offset_lag_max);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Resume;

    #[test]
    fn resumes_at_the_next_offset_unless_the_source_log_lacks_it() {
        assert_eq!(Resume::decide(10, 0, 20), Resume::Next(10));
        assert_eq!(Resume::decide(20, 0, 20), Resume::Next(20), "caught up");
        assert_eq!(
            Resume::decide(3, 5, 20),
            Resume::LogStart { low: 5, next: 3 }
        );
        assert_eq!(Resume::decide(3, 5, 20).offset(), 5);
        assert_eq!(
            Resume::decide(30, 2, 20),
            Resume::BeyondEnd {
                low: 2,
                next: 30,
                high: 20
            }
        );
        assert_eq!(
            Resume::decide(30, 2, 20).offset(),
            2,
            "a new log, from its start"
        );
        assert_eq!(Resume::decide(30, 0, 0).offset(), 0, "a new, empty log");
    }
}
