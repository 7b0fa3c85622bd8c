//! Acknowledgements: the delivery reports of one loop turn applied to the partition table —
//! trackers moved, offset syncs queued, records the target refused handed to `refusals.rs`
//! (or, exactly once, remembered for the next run), failed deliveries turned into the task's
//! error.

use rdkafka::producer::Producer;

use super::refusals::{self, Refusal};
use super::transactions::RefusedRecord;
use super::{TaskError, Worker, faults};

impl Worker {
    /// Applies the delivery reports collected since the last call.
    pub(super) fn process_acks(&mut self) -> Result<(), TaskError> {
        {
            let mut buffer = self.producer.context().buffer();
            std::mem::swap(&mut buffer.acks, &mut self.scratch);
            if !buffer.position_errors.is_empty() {
                for error in buffer.position_errors.drain(..) {
                    tracing::warn!(%error, "Storing a position failed; it is stored again.");
                }
                self.positions_dirty = true;
            }
        }
        let now_ms = crate::metrics::now_ms();
        let mut failure = None;
        let mut refusals = Vec::new();
        let mut acknowledged = 0;
        for ack in self.scratch.drain(..) {
            self.in_flight = self.in_flight.saturating_sub(1);
            let Some(topic) = self.table.topic_mut(ack.index) else {
                continue;
            };
            let Some(state) = topic.partitions.get_mut(&ack.partition) else {
                continue;
            };
            if state.ignores_report(ack.offset) {
                // Halted at or before it: no longer tracked, produced again on resume.
                continue;
            }
            if let Some(error) = ack.error {
                if refusals::is_refusal(&error) {
                    refusals.push(Refusal {
                        index: ack.index,
                        partition: ack.partition,
                        offset: ack.offset,
                        dead_letter: ack.dead_letter,
                        error,
                    });
                    continue;
                }
                self.delivery_errors.inc();
                if failure.is_none() {
                    failure = Some(TaskError::Delivery {
                        target_topic: topic.remote.to_string(),
                        partition: ack.partition,
                        offset: ack.offset,
                        source: Box::new(error),
                    });
                }
                continue;
            }
            if let Err(source) = state.tracker.acknowledged(ack.offset) {
                failure.get_or_insert(TaskError::Track {
                    topic: topic.source.to_string(),
                    partition: ack.partition,
                    source,
                });
                continue;
            }
            if ack.dead_letter {
                // Not a replicated record: no offset sync (the gap makes the next one due).
                continue;
            }
            if let Some(syncs) = &mut self.syncs {
                let urgent = state.sync.update(ack.offset, ack.downstream);
                syncs.queue.acknowledged(
                    ack.index,
                    ack.partition,
                    ack.offset,
                    ack.downstream,
                    urgent,
                );
            }
            acknowledged += 1;
            topic.records.inc();
            topic.bytes.inc_by(ack.bytes as u64);
            state.replicated(ack.timestamp, ack.value_bytes, now_ms);
            if let Some(timestamp) = ack.timestamp {
                self.latency
                    .observe((now_ms - timestamp).max(0) as f64 / 1000.0);
            }
        }
        faults::acknowledged(acknowledged, &self.producer);
        if let Some(syncs) = &mut self.syncs {
            let table = &self.table;
            syncs.send_pending(|index| table.topic(index).map(|topic| &*topic.source));
        }
        if self.transactions.is_some() {
            // The transaction is poisoned: remember the refused records for the next run.
            for refusal in refusals {
                let Some(topic) = self.table.topic(refusal.index) else {
                    continue;
                };
                self.context.refused.remember(
                    &topic.source,
                    refusal.partition,
                    RefusedRecord {
                        offset: refusal.offset,
                        dead_letter: refusal.dead_letter,
                        error: refusal.error.clone(),
                    },
                );
                failure.get_or_insert(TaskError::RefusedInTransaction {
                    task: self.task,
                    topic: topic.source.to_string(),
                    partition: refusal.partition,
                    offset: refusal.offset,
                    source: Box::new(refusal.error),
                });
            }
        } else {
            for refusal in refusals {
                if let Err(error) = self.apply_refusal(refusal, None) {
                    failure.get_or_insert(error);
                }
            }
        }
        // The gauge is per flow and shared by its tasks: add this task's change, don't overwrite.
        self.in_flight_gauge
            .add(self.in_flight as i64 - self.in_flight_reported);
        self.in_flight_reported = self.in_flight as i64;
        failure.map_or(Ok(()), Err)
    }
}
