//! Records the target refuses for good: larger than the producer's `message.max.bytes` (refused
//! by librdkafka when produced) or the remote topic's `max.message.bytes`, an invalid timestamp,
//! an authorisation error (refused in a delivery report). Retrying cannot help, and restarting
//! the task would copy the partition's later records again and again, so the record goes
//! through the flow's `on_error` policy like a record a plugin failed on:
//!
//! * `halt` (the default): the partition stops at the record — paused, its position stays
//!   before it, and the tracker forgets it and everything produced after it, which the
//!   partition produces again when it resumes (a restart or a plugin swap). Records after it
//!   that the target had already accepted are then copied twice; none is lost.
//! * `skip`: the record counts as handed on (`ferry_records_skipped_total{reason="refused"}`).
//! * `dead-letter`: a record refused when produced goes, as it was produced, to the dead-letter
//!   topic with the `ferry.error.*` headers (plugin `target`). A record refused in a delivery
//!   report halts instead (librdkafka's copy in the report does not keep the timestamp), and
//!   so does a dead-letter write the target refuses (a record too large for the producer is
//!   too large for the dead-letter topic too).
//!
//! The target refuses record batches, not records: a batch over the remote topic's
//! `max.message.bytes` fails every record in it. The partition halts at the first one, so
//! nothing is lost; under `skip`, each refused record is skipped and counted.

use rdkafka::TopicPartitionList;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;

use super::{TaskError, Worker};
use crate::config::ErrorPolicy;
use crate::events::{At, Events};
use crate::replication::halts::HaltedRecord;

/// The `ferry.error.plugin` header of a record the target refused (and its "plugin" in `ferry
/// status`).
const TARGET: &str = "target";

/// Whether the target refused a record for good: retrying the same record cannot succeed.
pub(super) fn is_refusal(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::MessageProduction(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidTimestamp
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::PolicyViolation
    )
}

/// The parts of a record to write (borrowed).
pub(super) struct RecordParts<'a> {
    pub(super) key: Option<&'a [u8]>,
    pub(super) value: Option<&'a [u8]>,
    pub(super) timestamp: Option<i64>,
    pub(super) headers: Option<OwnedHeaders>,
}

/// A refusal to apply: the record's topic index, partition and source offset, what was
/// refused (a mirrored record or its dead-letter write) and why.
pub(super) struct Refusal {
    pub(super) index: u32,
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) dead_letter: bool,
    pub(super) error: KafkaError,
}

impl Worker {
    /// `producer.send` refused a record at once (e.g. larger than `message.max.bytes`):
    /// `record`, standing for the source record `at`, is what was to be written; `dead_letter`
    /// when it was its dead-letter write.
    pub(super) fn refused_at_send(
        &mut self,
        dead_letter: bool,
        at: At<'_>,
        record: RecordParts<'_>,
        error: KafkaError,
    ) -> Result<(), TaskError> {
        let Some(index) = self.table.index(at.topic) else {
            return Err(self.unowned(at.topic, at.partition));
        };
        let refusal = Refusal {
            index,
            partition: at.partition,
            offset: at.offset,
            dead_letter,
            error,
        };
        self.apply_refusal(refusal, Some(record))
    }

    /// Applies the flow's error policy to a refused record; `record` is what was produced, when
    /// it is at hand (refused at send). Under `dead-letter`, a refused dead-letter write and a
    /// record refused in a delivery report (whose copy librdkafka does not keep faithfully:
    /// its timestamp is not the produced one) halt instead.
    pub(super) fn apply_refusal(
        &mut self,
        refusal: Refusal,
        record: Option<RecordParts<'_>>,
    ) -> Result<(), TaskError> {
        let Refusal {
            index,
            partition,
            offset,
            dead_letter,
            error,
        } = refusal;
        let lag_max = self.context.flow.offset_lag_max;
        let Some(topic) = self.table.topic_mut(index) else {
            return Ok(());
        };
        let source = std::sync::Arc::clone(&topic.source);
        let Some(state) = topic.partitions.get_mut(&partition) else {
            return Ok(());
        };
        if state.ignores_report(offset) {
            return Ok(());
        }
        let policy = match self.context.flow.on_error {
            ErrorPolicy::DeadLetter if dead_letter || record.is_none() => ErrorPolicy::Halt,
            policy => policy,
        };
        let at = At {
            topic: &source,
            partition,
            offset,
        };
        let reason = error.to_string();
        self.events.target_refused(&reason, policy, at);
        match policy {
            ErrorPolicy::Skip => {
                state
                    .tracker
                    .acknowledged(offset)
                    .map_err(|error| TaskError::Track {
                        topic: source.to_string(),
                        partition,
                        source: error,
                    })
            }
            ErrorPolicy::Halt => {
                if state.halt_refused_at(offset, lag_max) {
                    Events::partition_halted(&self.partitions_halted);
                    self.context.halts.halted(HaltedRecord {
                        topic: source.to_string(),
                        partition,
                        offset,
                        plugin: TARGET.to_owned(),
                        error: reason.clone(),
                    });
                    let mut list = TopicPartitionList::new();
                    list.add_partition(&source, partition);
                    if let Err(error) = self.consumer.pause(&list) {
                        tracing::warn!(%error, topic = %source, partition,
                            "Pausing the halted partition failed; its records are ignored instead.");
                    }
                }
                Ok(())
            }
            ErrorPolicy::DeadLetter => match record {
                Some(record) => self.write_dead_letter(index, at, record, TARGET, &reason),
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_a_retry_cannot_fix_are_refusals() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::InvalidTimestamp,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            assert!(is_refusal(&KafkaError::MessageProduction(code)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::QueueFull,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert!(
                !is_refusal(&KafkaError::MessageProduction(code)),
                "{code:?}"
            );
        }
        assert!(!is_refusal(&KafkaError::Canceled));
    }
}
