//! The records tests write and read back: [`TestRecord`], the deterministic generator
//! [`record`], the producer that writes them, and the readers that read a topic to its end
//! (decoded into `TestRecord`s, or raw key and value for Ferry's and MM2's internal topics).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::clusters::client;
use super::unique::unique;

/// The record a test writes: everything a mirror must preserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// The timestamp of record 0: an hour before this test process started. Timestamps must be
/// recent, or the brokers' retention (7 days by default) deletes the records under the test.
fn timestamp_base() -> i64 {
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        now.as_millis() as i64 - 3_600_000
    })
}

/// Record number `index` of `partition`: a key, a value, three headers (one with a null value)
/// and an explicit timestamp, all derived from the coordinates so that checks need no state.
pub fn record(partition: i32, index: u64) -> TestRecord {
    let value_len = 40 + (index % 200) as usize;
    let mut value = format!("value-{partition}-{index}-").into_bytes();
    value.resize(value_len, b'a' + (index % 26) as u8);
    TestRecord {
        partition,
        key: Some(format!("key-{partition}-{index}").into_bytes()),
        value: Some(value),
        headers: vec![
            (
                "trace-id".to_owned(),
                Some(format!("{partition}:{index}").into_bytes()),
            ),
            ("origin".to_owned(), Some(b"test".to_vec())),
            ("nullable".to_owned(), None),
        ],
        timestamp: timestamp_base() + index as i64 * 7 + i64::from(partition),
    }
}

/// Produces records `range` of each of `partitions` partitions to `topic`, partition by
/// partition in index order, and waits until the cluster acknowledged all of them.
pub fn produce(bootstrap: &str, topic: &str, partitions: i32, range: std::ops::Range<u64>) {
    let records =
        range.flat_map(|index| (0..partitions).map(move |partition| record(partition, index)));
    produce_records(bootstrap, topic, records);
}

/// Produces `records` to `topic`, each to its partition, in order, and waits until the cluster
/// acknowledged all of them.
pub fn produce_records(
    bootstrap: &str,
    topic: &str,
    records: impl IntoIterator<Item = TestRecord>,
) {
    let producer: BaseProducer = client(bootstrap)
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for expected in records {
        send(&producer, message(topic, &expected));
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// `expected` as a message to `topic`: its partition, key, value, headers and timestamp.
pub(super) fn message<'a>(topic: &'a str, expected: &'a TestRecord) -> BaseRecord<'a, [u8], [u8]> {
    let mut headers = OwnedHeaders::new();
    for (key, value) in &expected.headers {
        headers = headers.insert(Header {
            key,
            value: value.as_deref(),
        });
    }
    let mut message = BaseRecord::to(topic)
        .partition(expected.partition)
        .timestamp(expected.timestamp)
        .headers(headers);
    if let Some(key) = &expected.key {
        message = message.key(key.as_slice());
    }
    if let Some(value) = &expected.value {
        message = message.payload(value.as_slice());
    }
    message
}

/// Sends `message` on `producer`, serving delivery reports while the producer's queue is full.
pub(super) fn send<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    message: BaseRecord<'_, [u8], [u8]>,
) {
    let mut pending = message;
    loop {
        match producer.send(pending) {
            Ok(()) => return,
            Err((error, returned)) => {
                assert!(
                    matches!(
                        error,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "producing: {error}"
                );
                producer.poll(Duration::from_millis(10));
                pending = returned;
            }
        }
    }
}

/// Reads every record of `topic` (all partitions, from the beginning, up to the high watermarks
/// at the time of the call), in per-partition order, `read_committed` (librdkafka's default):
/// records of aborted transactions are not seen.
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<TestRecord> {
    read_all_with_offsets(bootstrap, topic)
        .into_iter()
        .map(|(_, record)| record)
        .collect()
}

/// [`read_all`], with each record's offset. Exactly once, offsets are not one for one with the
/// records: every commit leaves a transaction marker in each partition it wrote.
pub fn read_all_with_offsets(bootstrap: &str, topic: &str) -> Vec<(i64, TestRecord)> {
    // librdkafka refuses assignments without a group id, even for a consumer that never joins.
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique("ferry-tests.reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| partition.id())
        .collect();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut list = TopicPartitionList::new();
    for partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *partition, Duration::from_secs(10))
            .unwrap();
        if high > low {
            remaining.insert(*partition, high);
        }
        list.add_partition_offset(topic, *partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !remaining.is_empty() {
        assert!(
            Instant::now() < deadline,
            "reading {topic} timed out; still to read: {remaining:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // A partition may end with a transaction marker, which is never delivered: its
            // position moves past it.
            let position = consumer.position().unwrap();
            remaining.retain(|partition, high| {
                position
                    .find_partition(topic, *partition)
                    .and_then(|element| element.offset().to_raw())
                    .is_none_or(|next| next < *high)
            });
            continue;
        };
        let message = message.unwrap();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        records.push((
            message.offset(),
            TestRecord {
                partition: message.partition(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec),
                headers,
                timestamp: message.timestamp().to_millis().unwrap(),
            },
        ));
        if remaining
            .get(&message.partition())
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            remaining.remove(&message.partition());
        }
    }
    records
}

/// The raw (key, value) of every record of partition 0 of `topic` up to its current end.
pub fn read_raw(bootstrap: &str, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", unique("ferry-tests.raw"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let Ok((_, high)) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)) else {
        return Vec::new();
    };
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&list).unwrap();
    let mut records = Vec::new();
    let mut next = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next < high {
        assert!(Instant::now() < deadline, "reading {topic} timed out");
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            // A partition may end with a transaction marker, which is never delivered: its
            // position moves past it.
            if let Some(position) = consumer
                .position()
                .unwrap()
                .find_partition(topic, 0)
                .and_then(|element| element.offset().to_raw())
            {
                next = next.max(position);
            }
            continue;
        };
        let message = message.unwrap();
        next = message.offset() + 1;
        records.push((
            message.key().unwrap_or_default().to_vec(),
            message.payload().unwrap_or_default().to_vec(),
        ));
    }
    records
}

/// The target offset of source record `record(p, offset)` in each partition of `mirrored` (as
/// [`read_all_with_offsets`] reads it): where a consumer of the remote topic resumes to read that
/// record next, whatever markers or duplicates come before it (the first copy).
pub fn target_offsets(
    mirrored: &[(i64, TestRecord)],
    partitions: i32,
    offset: u64,
) -> Vec<Option<i64>> {
    (0..partitions)
        .map(|partition| {
            let wanted = record(partition, offset);
            mirrored
                .iter()
                .find(|(_, record)| *record == wanted)
                .map(|(at, _)| *at)
        })
        .collect()
}
