//! Source positions: how far each source partition has been replicated, stored on the target.
//!
//! Ferry keeps positions exactly as MirrorMaker 2 does (reference §3.6), in the compacted topic
//! `mm2-offsets.<source alias>.internal` on the target cluster, so that Ferry can take over from a
//! running MM2 in place and hand back to it:
//!
//! * key: `["MirrorSourceConnector",{"cluster":"<source alias>","partition":<p>,"topic":"<source topic>"}]`
//! * value: `{"offset":<last replicated source offset>}`; replication resumes at `offset + 1`.
//!
//! Keys are written in the byte form Kafka Connect's `JsonConverter` writes (the field order is
//! that of Java's `HashMap` for these three names), and partitioned with Java's murmur2, so MM2's
//! and Ferry's records for one source partition land in the same partition of the compacted
//! topic and compact together.
//!
//! This module owns the codec and the reader. Positions are written by each task's producer
//! (`replication::worker`) only after the target acknowledged the records they cover.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Connect's name for MM2's source connector; the namespace of every position key.
pub(crate) const CONNECTOR_NAME: &str = "MirrorSourceConnector";

/// Partitions of the positions topic when Ferry creates it (Connect's `offset.storage.partitions`).
pub(crate) const POSITIONS_TOPIC_PARTITIONS: i32 = 25;

/// The positions topic for flows from the cluster `source_alias` (MM2's default
/// `offset.storage.topic`).
pub(crate) fn positions_topic(source_alias: &str) -> String {
    format!("mm2-offsets.{source_alias}.internal")
}

/// Encodes the key of the position of `topic`/`partition` replicated from `source_alias`.
pub(crate) fn encode_key(source_alias: &str, topic: &str, partition: i32) -> Vec<u8> {
    let cluster = json_string(source_alias);
    let topic = json_string(topic);
    format!(
        r#"["{CONNECTOR_NAME}",{{"cluster":{cluster},"partition":{partition},"topic":{topic}}}]"#
    )
    .into_bytes()
}

/// Encodes a position value: the last replicated source offset.
pub(crate) fn encode_value(last_replicated: i64) -> Vec<u8> {
    format!(r#"{{"offset":{last_replicated}}}"#).into_bytes()
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// A decoded position key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PositionKey {
    pub(crate) cluster: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

/// Decodes a key written by Ferry or MM2; `None` for keys of other connectors or of another
/// shape (the topic is shared with Connect's own bookkeeping).
pub(crate) fn decode_key(bytes: &[u8]) -> Option<PositionKey> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let array = value.as_array()?;
    if array.len() != 2 || array.first()?.as_str()? != CONNECTOR_NAME {
        return None;
    }
    let map = array.get(1)?.as_object()?;
    Some(PositionKey {
        cluster: map.get("cluster")?.as_str()?.to_owned(),
        topic: map.get("topic")?.as_str()?.to_owned(),
        partition: i32::try_from(map.get("partition")?.as_i64()?).ok()?,
    })
}

/// Decodes a position value (`{"offset":N}`); `None` when malformed or negative.
pub(crate) fn decode_value(bytes: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("offset")?.as_i64().filter(|offset| *offset >= 0)
}

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
}

/// Reads the positions topic of one flow to its end and keeps the latest position per source
/// partition. Each `read_to_end` continues where the previous one stopped.
pub(crate) struct PositionReader {
    consumer: BaseConsumer,
    topic: String,
    source_alias: String,
    positions: HashMap<(String, i32), i64>,
    assigned_partitions: i32,
}

impl PositionReader {
    /// Creates a reader of `topic` on the cluster `target` describes, keeping the positions of
    /// partitions replicated from `source_alias`.
    pub(crate) fn new(
        target: &ClientConfig,
        topic: &str,
        source_alias: &str,
    ) -> Result<Self, PositionsError> {
        let consumer: BaseConsumer =
            crate::kafka::plain_consumer(target)
                .create()
                .map_err(|source| PositionsError::Kafka {
                    topic: topic.to_owned(),
                    source: Box::new(source),
                })?;
        Ok(PositionReader {
            consumer,
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
        let deadline = Instant::now() + timeout;
        let started = Instant::now();
        let topic_name = self.topic.clone();
        let kafka = |source: KafkaError| PositionsError::Kafka {
            topic: topic_name.clone(),
            source: Box::new(source),
        };
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), timeout)
            .map_err(kafka)?;
        let partitions = metadata
            .topics()
            .first()
            .map(|topic| topic.partitions().len() as i32)
            .unwrap_or(0);
        // High watermarks first, while the consumer is paused: a fetch long-poll in flight would
        // delay each watermark request by `fetch.wait.max.ms`.
        let mut remaining: HashMap<i32, i64> = HashMap::new();
        for partition in 0..partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, partition, timeout)
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
        let mut all = TopicPartitionList::new();
        for partition in 0..self.assigned_partitions {
            all.add_partition(&self.topic, partition);
        }
        self.consumer.resume(&all).map_err(kafka)?;
        let result = self.read_until(&mut remaining, deadline, timeout);
        self.consumer.pause(&all).map_err(kafka)?;
        result?;
        tracing::debug!(elapsed = ?started.elapsed(), "positions: read to end");
        Ok(&self.positions)
    }

    /// Consumes until every partition in `remaining` reached its recorded high watermark.
    fn read_until(
        &mut self,
        remaining: &mut HashMap<i32, i64>,
        deadline: Instant,
        timeout: Duration,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_connects_byte_form() {
        assert_eq!(
            String::from_utf8(encode_key("A", "orders", 3)).unwrap(),
            r#"["MirrorSourceConnector",{"cluster":"A","partition":3,"topic":"orders"}]"#
        );
        assert_eq!(
            String::from_utf8(encode_value(1234)).unwrap(),
            r#"{"offset":1234}"#
        );
    }

    #[test]
    fn keys_round_trip_and_foreign_keys_are_ignored() {
        let key = encode_key("clusterA", "prod.orders.global", 7);
        assert_eq!(
            decode_key(&key),
            Some(PositionKey {
                cluster: "clusterA".into(),
                topic: "prod.orders.global".into(),
                partition: 7
            })
        );
        // MM2 writes the same map in another order after a JVM change; semantics count.
        let reordered = br#"["MirrorSourceConnector",{"topic":"t","cluster":"A","partition":0}]"#;
        assert_eq!(decode_key(reordered).map(|k| k.topic), Some("t".into()));
        assert_eq!(
            decode_key(br#"["MirrorCheckpointConnector",{"cluster":"A"}]"#),
            None
        );
        assert_eq!(decode_key(b"not json"), None);
        assert_eq!(decode_value(br#"{"offset":41}"#), Some(41));
        assert_eq!(decode_value(br#"{"offset":-1}"#), None);
    }
}
