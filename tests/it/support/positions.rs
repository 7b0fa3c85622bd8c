//! Replication positions as stored on the target cluster in MM2's Connect-offsets format (the
//! format both MM2 and Ferry write), read back per source topic and partition.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::clusters::client;
use super::unique::unique;

/// The positions stored in `positions_topic` (MM2's Connect-offsets format: key
/// `["MirrorSourceConnector",{"cluster","partition","topic"}]`, value `{"offset":N}`, a null
/// value deleting the position) for partitions replicated from the cluster alias
/// `source_alias`: the latest `{"offset":N}` per (source topic, partition), read from all
/// partitions up to their current ends. Empty while the topic does not exist.
pub fn positions(
    bootstrap: &str,
    positions_topic: &str,
    source_alias: &str,
) -> HashMap<(String, i32), i64> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique("ferry-tests.positions"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(positions_topic), Duration::from_secs(10))
    else {
        return HashMap::new();
    };
    let Some(topic) = metadata.topics().first().filter(|t| t.error().is_none()) else {
        return HashMap::new();
    };
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut list = TopicPartitionList::new();
    for partition in topic.partitions() {
        // Right after the topic's creation its partitions may have no leader yet: nothing
        // stored so far.
        let Ok((low, high)) =
            consumer.fetch_watermarks(positions_topic, partition.id(), Duration::from_secs(10))
        else {
            return HashMap::new();
        };
        if high > low {
            remaining.insert(partition.id(), high);
            list.add_partition_offset(positions_topic, partition.id(), Offset::Beginning)
                .unwrap();
        }
    }
    let mut positions = HashMap::new();
    if remaining.is_empty() {
        return positions;
    }
    consumer.assign(&list).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(
            Instant::now() < deadline,
            "reading {positions_topic} timed out; still to read: {remaining:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // Exactly once, a partition ends with a transaction marker, never delivered: the
            // position moves past it.
            let position = consumer.position().unwrap();
            remaining.retain(|partition, high| {
                position
                    .find_partition(positions_topic, *partition)
                    .and_then(|element| element.offset().to_raw())
                    .is_none_or(|next| next < *high)
            });
            continue;
        };
        let message = message.unwrap();
        if remaining
            .get(&message.partition())
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            remaining.remove(&message.partition());
        }
        let Some(key) = message
            .key()
            .and_then(|key| serde_json::from_slice::<serde_json::Value>(key).ok())
        else {
            continue;
        };
        let (Some("MirrorSourceConnector"), Some(map)) =
            (key[0].as_str(), key.get(1).and_then(|map| map.as_object()))
        else {
            continue;
        };
        if map.get("cluster").and_then(|c| c.as_str()) != Some(source_alias) {
            continue;
        }
        let slot = (
            map["topic"].as_str().unwrap().to_owned(),
            i32::try_from(map["partition"].as_i64().unwrap()).unwrap(),
        );
        match message.payload() {
            None => {
                positions.remove(&slot);
            }
            Some(value) => {
                let value: serde_json::Value = serde_json::from_slice(value).unwrap();
                positions.insert(slot, value["offset"].as_i64().unwrap());
            }
        }
    }
    positions
}
