//! Reads the stored positions of one flow (`mm2-offsets.<source>.internal` on the target, in
//! MM2's format: `crate::mm2::positions`) to its end; shared by a flow's tasks and its leader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::mm2::positions::{decode_key, decode_value};

/// Errors reading positions.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PositionsError {
    /// A Kafka call failed.
    #[error("reading positions from `{topic}` failed")]
    Kafka {
        topic: String,
        #[source]
        source: Box<KafkaError>,
    },
    /// The topic could not be read to its end in time.
    #[error("reading positions from `{topic}` did not reach the end within {timeout:?}")]
    Timeout { topic: String, timeout: Duration },
    /// The reader was asked to stop before it reached the end.
    #[error("reading positions from `{topic}` stopped before the end")]
    Stopped { topic: String },
}

/// The stop flag of a read nobody stops.
static NEVER: AtomicBool = AtomicBool::new(false);

/// Reads the positions topic of one flow to its end and keeps the latest position per source
/// partition. Each `read_to_end` continues where the previous one stopped.
pub(crate) struct PositionReader {
    consumer: BaseConsumer,
    /// Asks for the watermarks ([`crate::kafka::watermark_client`]).
    watermarks: BaseConsumer,
    topic: String,
    source_alias: String,
    positions: HashMap<(String, i32), i64>,
    assigned_partitions: i32,
}

impl PositionReader {
    /// Creates a reader of `topic` on the cluster `target` describes, keeping the positions of
    /// partitions replicated from `source_alias`.
    pub(crate) fn new(
        target: &crate::config::Cluster,
        topic: &str,
        source_alias: &str,
    ) -> Result<Self, PositionsError> {
        let failed = |source| PositionsError::Kafka {
            topic: topic.to_owned(),
            source: Box::new(source),
        };
        let consumer: BaseConsumer = crate::kafka::plain_consumer(target)
            .create()
            .map_err(failed)?;
        let watermarks: BaseConsumer = crate::kafka::watermark_client(target)
            .create()
            .map_err(failed)?;
        Ok(PositionReader {
            consumer,
            watermarks,
            topic: topic.to_owned(),
            source_alias: source_alias.to_owned(),
            positions: HashMap::new(),
            assigned_partitions: 0,
        })
    }

    /// Reads everything written to the topic up to now and returns the latest positions,
    /// keyed by (source topic, partition).
    ///
    /// # Errors
    /// Kafka errors, or `Timeout` when the end is not reached within `timeout`.
    pub(crate) fn read_to_end(
        &mut self,
        timeout: Duration,
    ) -> Result<&HashMap<(String, i32), i64>, PositionsError> {
        self.read_to_end_unless_stopped(timeout, &NEVER)
    }

    /// [`Self::read_to_end`], which gives up with `Stopped` within half a second of `stop`
    /// being set, even while the cluster does not answer (a starting task asked to stop).
    pub(crate) fn read_to_end_unless_stopped(
        &mut self,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<&HashMap<(String, i32), i64>, PositionsError> {
        let deadline = Instant::now() + timeout;
        let started = Instant::now();
        let topic_name = self.topic.clone();
        let kafka = |source: KafkaError| PositionsError::Kafka {
            topic: topic_name.clone(),
            source: Box::new(source),
        };
        let stopped = || PositionsError::Stopped {
            topic: topic_name.clone(),
        };
        let watermarks = &self.watermarks;
        let metadata = crate::kafka::until_stopped(deadline, stop, |slice| {
            watermarks.fetch_metadata(Some(&self.topic), slice)
        })
        .ok_or_else(stopped)?
        .map_err(kafka)?;
        let partitions = metadata
            .topics()
            .first()
            .map(|topic| topic.partitions().len() as i32)
            .unwrap_or(0);
        let mut remaining: HashMap<i32, i64> = HashMap::new();
        for partition in 0..partitions {
            let (low, high) = crate::kafka::until_stopped(deadline, stop, |slice| {
                watermarks.fetch_watermarks(&self.topic, partition, slice)
            })
            .ok_or_else(stopped)?
            .map_err(kafka)?;
            if low < high {
                remaining.insert(partition, high);
            }
        }
        tracing::debug!(elapsed = ?started.elapsed(), "positions: watermarks done");
        if partitions > self.assigned_partitions {
            let mut list = TopicPartitionList::new();
            for partition in self.assigned_partitions..partitions {
                list.add_partition_offset(&self.topic, partition, Offset::Beginning)
                    .map_err(kafka)?;
            }
            self.consumer.incremental_assign(&list).map_err(kafka)?;
            self.assigned_partitions = partitions;
        }
        self.read_until(&mut remaining, deadline, timeout, stop)?;
        tracing::debug!(elapsed = ?started.elapsed(), "positions: read to end");
        Ok(&self.positions)
    }

    /// Consumes until every partition in `remaining` reached its recorded high watermark.
    fn read_until(
        &mut self,
        remaining: &mut HashMap<i32, i64>,
        deadline: Instant,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<(), PositionsError> {
        let kafka = |source: KafkaError| PositionsError::Kafka {
            topic: self.topic.clone(),
            source: Box::new(source),
        };
        let position_of = |consumer: &BaseConsumer, topic: &str, partition: i32| -> i64 {
            consumer
                .position()
                .ok()
                .and_then(|list| {
                    list.find_partition(topic, partition)
                        .and_then(|element| element.offset().to_raw())
                })
                .unwrap_or(-1)
        };
        remaining
            .retain(|partition, high| *high > position_of(&self.consumer, &self.topic, *partition));
        while !remaining.is_empty() {
            if stop.load(Ordering::Acquire) {
                return Err(PositionsError::Stopped {
                    topic: self.topic.clone(),
                });
            }
            if Instant::now() >= deadline {
                return Err(PositionsError::Timeout {
                    topic: self.topic.clone(),
                    timeout,
                });
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {
                    let consumer = &self.consumer;
                    let topic = &self.topic;
                    remaining
                        .retain(|partition, high| *high > position_of(consumer, topic, *partition));
                }
                Some(Err(error)) => return Err(kafka(error)),
                Some(Ok(message)) => {
                    let partition = message.partition();
                    let next = message.offset() + 1;
                    if let Some(key) = message.key().and_then(decode_key)
                        && key.cluster == self.source_alias
                    {
                        let slot = (key.topic, key.partition);
                        match message.payload().and_then(decode_value) {
                            Some(offset) => {
                                self.positions.insert(slot, offset);
                            }
                            None if message.payload().is_none() => {
                                self.positions.remove(&slot);
                            }
                            None => {
                                tracing::warn!(topic = %self.topic, partition, offset = message.offset(),
                                    "Ignoring a malformed position record.");
                            }
                        }
                    }
                    if remaining.get(&partition).is_some_and(|high| next >= *high) {
                        remaining.remove(&partition);
                    }
                }
            }
        }
        Ok(())
    }
}
