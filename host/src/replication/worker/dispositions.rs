//! What happens to each record of a batch after the flow's filters and transforms answered:
//! produced as is, produced as replaced, dropped, or — when a plugin failed on it — skipped,
//! dead-lettered or halted at, by the flow's `on_error` policy.
//!
//! Invariants:
//! * A dropped or skipped record is tracked as produced and acknowledged at once, so the
//!   position moves past it once everything before it is acknowledged; a dead-lettered one is
//!   acknowledged when its dead-letter write is.
//! * A record under `halt` (or behind an open circuit breaker, whatever the policy) is never
//!   tracked: its partition is paused, nothing after it on that partition is produced, and its
//!   position stays before it. A plugin swap seeks the partition back to that record.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::callbacks::Opaque;
use super::refusals::RecordParts;
use super::{TaskError, Worker};
use crate::config::ErrorPolicy;
use crate::events::{At, CallsSeen, Events};
use crate::plugins::{Disposition, RecordChain, RecordInput, RecordView};

/// The policy applied to a record a plugin failed on: the flow's, except behind an open
/// circuit breaker (`fatal`), which always halts (fail-closed: a transform may scrub data, so
/// records never bypass it).
pub(super) fn failure_policy(on_error: ErrorPolicy, fatal: bool) -> ErrorPolicy {
    if fatal { ErrorPolicy::Halt } else { on_error }
}

/// The headers a dead-lettered record gets beside its own: which plugin failed, why, and
/// where the record came from.
pub(super) fn dead_letter_headers<'a>(
    plugin: &'a str,
    error: &'a str,
    at: At<'a>,
) -> [(&'static str, std::borrow::Cow<'a, str>); 5] {
    [
        ("ferry.error.plugin", plugin.into()),
        ("ferry.error.message", error.into()),
        ("ferry.error.topic", at.topic.into()),
        ("ferry.error.partition", at.partition.to_string().into()),
        ("ferry.error.offset", at.offset.to_string().into()),
    ]
}

fn at<'a>(message: &'a BorrowedMessage<'_>) -> At<'a> {
    At {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
    }
}

impl Worker {
    /// Runs the records of one loop turn through the chain and hands each on as the chain
    /// decided, in consumption order.
    pub(super) fn forward_batch(
        &mut self,
        messages: &[BorrowedMessage<'_>],
    ) -> Result<(), TaskError> {
        let Some(mut chain) = self.chain.take() else {
            for message in messages {
                self.forward(message)?;
            }
            return Ok(());
        };
        let result = self.run_chain(&mut chain, messages);
        self.report_chain_calls(&chain);
        Events::breakers_open(
            &self.breakers_open,
            chain.open_breakers(),
            &mut self.breakers_reported,
        );
        self.chain = Some(chain);
        result
    }

    fn run_chain(
        &mut self,
        chain: &mut RecordChain,
        messages: &[BorrowedMessage<'_>],
    ) -> Result<(), TaskError> {
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        // Records of halted partitions are left out (not produced, positions stay put).
        let mut included: Vec<&BorrowedMessage<'_>> = Vec::with_capacity(messages.len());
        for message in messages {
            let partition = message.partition();
            let Some(found) = self.table.get_mut(message.topic(), partition) else {
                return Err(self.unowned(message.topic(), partition));
            };
            if found.state.halted {
                continue;
            }
            let headers = message.headers();
            let header_list = headers
                .iter()
                .flat_map(|headers| headers.iter().map(|header| (header.key, header.value)));
            packed.push(RecordInput {
                topic: message.topic(),
                remote_topic: found.remote,
                partition,
                offset: message.offset(),
                key: message.key(),
                value: message.payload(),
                timestamp: message.timestamp().to_millis(),
                headers: header_list,
            });
            included.push(message);
        }
        let output = chain.run(&packed);
        let mut outcome = Ok(());
        for (message, disposition) in included.iter().zip(output.dispositions()) {
            if self.table.is_halted(message.topic(), message.partition()) {
                continue;
            }
            let step = match disposition {
                Disposition::Keep => self.forward(message),
                Disposition::Drop => self.drop_record(message, true),
                Disposition::Replace {
                    output: batch,
                    index,
                } => match output.replacement(*batch, *index) {
                    Some(view) => self.forward_replacement(message, view),
                    None => self.forward(message),
                },
                Disposition::Fail {
                    plugin,
                    message: error,
                    fatal,
                } => self.record_failed(message, plugin, error, *fatal),
            };
            if let Err(error) = step {
                outcome = Err(error);
                break;
            }
        }
        self.packed = packed;
        outcome
    }

    /// Reports the chain's plugin calls and traps since the last batch.
    fn report_chain_calls(&mut self, chain: &RecordChain) {
        for (index, (plugin, calls, traps)) in chain.stats().enumerate() {
            if self.chain_calls_seen.len() <= index {
                self.chain_calls_seen
                    .resize(index + 1, CallsSeen::default());
            }
            if let Some(seen) = self.chain_calls_seen.get_mut(index) {
                // A stage's counters run for the chain's life, across swaps: one version.
                self.events
                    .plugin_calls_so_far(plugin, index, (calls, traps), seen);
            }
        }
    }

    /// Produces the replacement a transform returned for `message`.
    fn forward_replacement(
        &mut self,
        message: &BorrowedMessage<'_>,
        view: RecordView<'_>,
    ) -> Result<(), TaskError> {
        let Some(remote) = self.track_produced(message)? else {
            return Ok(());
        };
        let mut headers = None;
        for (key, value) in view.headers() {
            headers = Some(
                headers
                    .unwrap_or_else(OwnedHeaders::new)
                    .insert(Header { key, value }),
            );
        }
        self.produce(
            message,
            &remote,
            view.key(),
            view.value(),
            view.timestamp(),
            headers,
        )
    }

    /// A record that is not replicated: tracked as handed on and acknowledged at once, so the
    /// position moves past it once everything before it is acknowledged. `dropped`: a filter
    /// dropped it (counted as dropped), rather than a plugin failure skipping it.
    fn drop_record(
        &mut self,
        message: &BorrowedMessage<'_>,
        dropped: bool,
    ) -> Result<(), TaskError> {
        if self.track_produced(message)?.is_none() {
            return Ok(());
        }
        let partition = message.partition();
        let Some(found) = self.table.get_mut(message.topic(), partition) else {
            return Err(self.unowned(message.topic(), partition));
        };
        if dropped {
            found.dropped.inc();
        }
        found
            .state
            .tracker
            .acknowledged(message.offset())
            .map_err(|source| TaskError::Track {
                topic: found.source.to_string(),
                partition,
                source,
            })
    }

    /// Applies the flow's error policy to a record a plugin failed on.
    fn record_failed(
        &mut self,
        message: &BorrowedMessage<'_>,
        plugin: &str,
        error: &str,
        fatal: bool,
    ) -> Result<(), TaskError> {
        let policy = failure_policy(self.context.flow.on_error, fatal);
        self.events
            .plugin_record_failed(plugin, error, policy, fatal, at(message));
        match policy {
            ErrorPolicy::Skip => self.drop_record(message, false),
            ErrorPolicy::DeadLetter => self.dead_letter(message, plugin, error),
            ErrorPolicy::Halt => self.halt(message, plugin, error),
        }
    }

    /// After a plugin swap, retries the partitions the old version halted: each is sought back
    /// to the record it stopped at and resumed. Nothing after that record was produced or
    /// tracked, so nothing is lost or copied twice.
    pub(super) fn resume_halted(&mut self) {
        for topic in self.table.topics_mut() {
            for (partition, state) in &mut topic.partitions {
                if !state.halted {
                    continue;
                }
                let Some(offset) = state.next_offset else {
                    continue;
                };
                if let Err(error) = self.consumer.seek(
                    &topic.source,
                    *partition,
                    Offset::Offset(offset),
                    Duration::from_secs(10),
                ) {
                    tracing::warn!(%error, topic = %topic.source, partition,
                        "Seeking a halted partition back failed; it stays halted until a restart.");
                    continue;
                }
                let mut list = TopicPartitionList::new();
                list.add_partition(&topic.source, *partition);
                if let Err(error) = self.consumer.resume(&list) {
                    tracing::warn!(%error, topic = %topic.source, partition,
                        "Resuming a halted partition failed; it stays halted until a restart.");
                    continue;
                }
                state.halted = false;
                self.context.halts.cleared(&topic.source, *partition);
                Events::partition_resumed(
                    &self.partitions_halted,
                    At {
                        topic: &topic.source,
                        partition: *partition,
                        offset,
                    },
                );
            }
        }
    }

    /// Stops `message`'s partition at `message`: paused, position kept before it; `plugin`
    /// failed on it with `error` (shown by `ferry status`).
    fn halt(
        &mut self,
        message: &BorrowedMessage<'_>,
        plugin: &str,
        error: &str,
    ) -> Result<(), TaskError> {
        let partition = message.partition();
        let Some(found) = self.table.get_mut(message.topic(), partition) else {
            return Err(self.unowned(message.topic(), partition));
        };
        if found.state.halt_at(message.offset()) {
            Events::partition_halted(&self.partitions_halted);
            self.context
                .halts
                .halted(crate::replication::halts::HaltedRecord {
                    topic: found.source.to_string(),
                    partition,
                    offset: message.offset(),
                    plugin: plugin.to_owned(),
                    error: error.to_owned(),
                });
            let mut list = TopicPartitionList::new();
            list.add_partition(found.source, partition);
            if let Err(error) = self.consumer.pause(&list) {
                tracing::warn!(%error, topic = %found.source, partition,
                    "Pausing the halted partition failed; its records are ignored instead.");
            }
        }
        Ok(())
    }

    /// Writes the original record, with `ferry.error.*` headers, to the dead-letter topic; the
    /// source record counts as handed on when the write is acknowledged.
    fn dead_letter(
        &mut self,
        message: &BorrowedMessage<'_>,
        plugin: &str,
        error: &str,
    ) -> Result<(), TaskError> {
        if self.track_produced(message)?.is_none() {
            return Ok(());
        }
        let Some(index) = self.table.index(message.topic()) else {
            return Err(self.unowned(message.topic(), message.partition()));
        };
        let record = RecordParts {
            key: message.key(),
            value: message.payload(),
            timestamp: message.timestamp().to_millis(),
            headers: message.headers().map(|headers| headers.detach()),
        };
        self.write_dead_letter(index, at(message), record, plugin, error)
    }

    /// Writes `record`, standing for the tracked source record `at` of topic `index`, with
    /// `ferry.error.*` headers to the dead-letter topic.
    pub(super) fn write_dead_letter(
        &mut self,
        index: u32,
        at: At<'_>,
        record: RecordParts<'_>,
        plugin: &str,
        error: &str,
    ) -> Result<(), TaskError> {
        let opaque = Opaque::DeadLetter(self.next_dead_letter).encode();
        self.next_dead_letter = self.next_dead_letter.wrapping_add(1);
        self.producer
            .context()
            .buffer()
            .dead_letters
            .insert(opaque, (index, at.partition, at.offset));
        let mut headers = record.headers.unwrap_or_default();
        for (key, value) in dead_letter_headers(plugin, error, at) {
            headers = headers.insert(Header {
                key,
                value: Some(value.as_ref()),
            });
        }
        let dead_letter_topic = self.context.flow.dead_letter_topic.clone();
        let mut produced: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&dead_letter_topic, opaque).headers(headers);
        if let Some(key) = record.key {
            produced = produced.key(key);
        }
        if let Some(value) = record.value {
            produced = produced.payload(value);
        }
        if let Some(timestamp) = record.timestamp {
            produced = produced.timestamp(timestamp);
        }
        self.send(produced, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_breaker_halts_whatever_the_policy() {
        for policy in [
            ErrorPolicy::Halt,
            ErrorPolicy::Skip,
            ErrorPolicy::DeadLetter,
        ] {
            assert_eq!(failure_policy(policy, false), policy);
            assert_eq!(failure_policy(policy, true), ErrorPolicy::Halt);
        }
    }

    #[test]
    fn dead_letters_say_which_plugin_failed_why_and_where() {
        let headers = dead_letter_headers(
            "mask.wasm",
            "trap: unreachable",
            At {
                topic: "orders",
                partition: 3,
                offset: 41,
            },
        );
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(key, value)| (*key, value.as_ref()))
            .collect();
        assert_eq!(
            headers,
            [
                ("ferry.error.plugin", "mask.wasm"),
                ("ferry.error.message", "trap: unreachable"),
                ("ferry.error.topic", "orders"),
                ("ferry.error.partition", "3"),
                ("ferry.error.offset", "41"),
            ]
        );
    }
}
