//! The rdkafka callbacks of a task's clients. librdkafka calls them on the thread that polls
//! the client, which is the task's own thread, so they only record what happened into buffers
//! that the loop applies after each poll.
//!
//! * [`AckContext`] (target producer): delivery reports of mirrored records, of dead-letter
//!   writes and of position writes, told apart by the delivery opaque ([`Opaque`]).
//! * [`SourceContext`] (source consumer): nothing to record; why librdkafka's statistics stay
//!   off is on it.
//! * [`OffsetSyncContext`] (offset-sync producer): delivery errors of offset syncs.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Headers, Message};
use rdkafka::producer::ProducerContext;

/// What a delivery report belongs to, encoded in the record's `usize` opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opaque {
    /// A mirrored record: its source offset.
    Record(i64),
    /// A dead-letter write: its id (taken modulo 2^62) in [`AckBuffer::dead_letters`].
    DeadLetter(usize),
    /// A position write.
    Position,
}

/// The opaque of position records.
const POSITION: usize = usize::MAX;
/// Bit marking dead-letter records; the rest is an id. Source offsets never set it.
const DEAD_LETTER_BIT: usize = 1 << 63;
/// Dead-letter ids wrap below this, so that no dead-letter opaque equals [`POSITION`].
const DEAD_LETTER_IDS: usize = 1 << 62;

impl Opaque {
    /// The opaque value to produce with.
    pub(super) fn encode(self) -> usize {
        match self {
            Opaque::Record(offset) => usize::try_from(offset).unwrap_or(0) & !DEAD_LETTER_BIT,
            Opaque::DeadLetter(id) => DEAD_LETTER_BIT | (id % DEAD_LETTER_IDS),
            Opaque::Position => POSITION,
        }
    }

    /// Reads an opaque value back.
    pub(super) fn decode(value: usize) -> Opaque {
        if value == POSITION {
            Opaque::Position
        } else if value & DEAD_LETTER_BIT != 0 {
            Opaque::DeadLetter(value & !DEAD_LETTER_BIT)
        } else {
            Opaque::Record(value as i64)
        }
    }
}

/// One acknowledgement (or refusal) from the target.
pub(super) struct Ack {
    /// The record's topic index in the task's partition table.
    pub(super) index: u32,
    /// The source (and remote) partition.
    pub(super) partition: i32,
    /// The source offset.
    pub(super) offset: i64,
    /// The record's offset on the target.
    pub(super) downstream: i64,
    /// The record's timestamp, for the latency histogram.
    pub(super) timestamp: Option<i64>,
    /// Key, value and header bytes.
    pub(super) bytes: usize,
    /// Value bytes (what MM2's `byte-count` counts).
    pub(super) value_bytes: usize,
    /// Why the target refused the record, if it did.
    pub(super) error: Option<KafkaError>,
    /// A dead-letter write standing for the source record (no offset sync, not counted as
    /// replicated).
    pub(super) dead_letter: bool,
}

/// What the delivery callback collected since the loop last looked.
#[derive(Default)]
pub(super) struct AckBuffer {
    /// Remote topic name to topic index, for routing delivery reports.
    pub(super) indexes: HashMap<std::sync::Arc<str>, u32>,
    /// Reports of mirrored and dead-letter records.
    pub(super) acks: Vec<Ack>,
    /// Dead-letter records in flight: encoded opaque → (topic index, partition, source offset).
    pub(super) dead_letters: HashMap<usize, (u32, i32, i64)>,
    /// Position writes that failed; the positions are written again.
    pub(super) position_errors: Vec<KafkaError>,
}

/// Target producer context: collects delivery reports for the task's thread.
pub(super) struct AckContext {
    /// The positions topic, to recognise position writes.
    pub(super) positions_topic: String,
    /// The collected reports.
    pub(super) buffer: Mutex<AckBuffer>,
}

impl AckContext {
    /// The buffer, whatever a panicking holder left (its contents stay consistent).
    pub(super) fn buffer(&self) -> std::sync::MutexGuard<'_, AckBuffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (message, error) = match result {
            Ok(message) => (message, None),
            Err((error, message)) => (message, Some(error.clone())),
        };
        let mut buffer = self.buffer();
        match Opaque::decode(opaque) {
            Opaque::Position if message.topic() == self.positions_topic => {
                if let Some(error) = error {
                    buffer.position_errors.push(error);
                }
            }
            Opaque::Position => {}
            Opaque::DeadLetter(_) => {
                if let Some((index, partition, offset)) = buffer.dead_letters.remove(&opaque) {
                    buffer.acks.push(Ack {
                        index,
                        partition,
                        offset,
                        downstream: -1,
                        timestamp: None,
                        bytes: 0,
                        value_bytes: 0,
                        error,
                        dead_letter: true,
                    });
                }
            }
            Opaque::Record(offset) => {
                let index = buffer
                    .indexes
                    .get(message.topic())
                    .copied()
                    .unwrap_or(u32::MAX);
                let value_bytes = message.payload().map_or(0, <[u8]>::len);
                let bytes = message.key().map_or(0, <[u8]>::len)
                    + value_bytes
                    + message.headers().map_or(0, |headers| {
                        headers
                            .iter()
                            .map(|header| header.key.len() + header.value.map_or(0, <[u8]>::len))
                            .sum()
                    });
                buffer.acks.push(Ack {
                    index,
                    partition: message.partition(),
                    offset,
                    downstream: message.offset(),
                    timestamp: message.timestamp().to_millis(),
                    bytes,
                    value_bytes,
                    error,
                    dead_letter: false,
                });
            }
        }
    }
}

/// Source consumer context. The lag gauge reads the high watermark librdkafka keeps from
/// every fetch response (`kafka::ffi::cached_high_watermark`), not its statistics: with
/// statistics on, librdkafka runs a timer and a ListOffsets request per partition and emits a
/// JSON document of every partition every 2 s, which at thousands of partitions kept each
/// consumer's main thread busy re-sorting timers (about 10 % of a core per consumer at
/// 1000 topics × 8 partitions, `bench/topics`).
#[derive(Default)]
pub(super) struct SourceContext;

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {}

/// Delivery errors of the offset-sync producer.
#[derive(Default)]
pub(super) struct OffsetSyncContext {
    /// Errors not yet looked at.
    pub(super) errors: Mutex<Vec<KafkaError>>,
}

impl OffsetSyncContext {
    /// Records a failed sync write.
    pub(super) fn failed(&self, error: KafkaError) {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(error);
    }

    /// Takes the first error recorded since the last call, and forgets the others.
    pub(super) fn take_error(&self) -> Option<KafkaError> {
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        errors.drain(..).next()
    }
}

impl ClientContext for OffsetSyncContext {}

impl ProducerContext for OffsetSyncContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((error, _)) = result {
            self.failed(error.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Opaque;

    #[test]
    fn opaques_round_trip_and_never_collide() {
        for opaque in [
            Opaque::Record(0),
            Opaque::Record(123_456_789_012),
            Opaque::DeadLetter(0),
            Opaque::DeadLetter(77),
            Opaque::Position,
        ] {
            assert_eq!(Opaque::decode(opaque.encode()), opaque, "{opaque:?}");
        }
        assert_ne!(Opaque::Record(0).encode(), Opaque::DeadLetter(0).encode());
        assert_ne!(
            Opaque::DeadLetter(usize::MAX >> 1).encode(),
            Opaque::Position.encode()
        );
    }
}
