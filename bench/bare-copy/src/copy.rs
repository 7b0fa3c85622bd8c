//! The bare copy: consume → produce, one consumer and one idempotent producer on one thread,
//! the client settings Ferry's task workers use (`host/src/kafka/mod.rs`), nothing else.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::args::Flags;

/// `copy --source B --target B --topic T --remote R`: copies every partition of T from the
/// start into the same partition of R (which must exist with as many partitions), until killed.
pub fn run(flags: &Flags) -> Result<(), String> {
    let topic = flags.text("topic")?;
    let remote = flags.text("remote")?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", flags.text("source")?)
        .set("group.id", format!("bare-copy.{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_uncommitted")
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.wait.max.ms", "100")
        .create()
        .map_err(|error| format!("consumer: {error}"))?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", flags.text("target")?)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("queue.buffering.max.kbytes", "65536")
        .set("linger.ms", "5")
        .create()
        .map_err(|error| format!("producer: {error}"))?;

    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|error| format!("metadata of {topic}: {error}"))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |topic| topic.partitions().len());
    if partitions == 0 {
        return Err(format!("{topic} has no partitions"));
    }
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|error| error.to_string())?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| format!("assign: {error}"))?;

    loop {
        producer.poll(Duration::ZERO);
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.map_err(|error| format!("consume: {error}"))?;
        let mut record = BaseRecord::<[u8], [u8]>::to(remote).partition(message.partition());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(value) = message.payload() {
            record = record.payload(value);
        }
        if let Some(millis) = message.timestamp().to_millis() {
            record = record.timestamp(millis);
        }
        if let Some(headers) = message.headers()
            && headers.count() > 0
        {
            record = record.headers(headers.detach());
        }
        // A full producer queue: serve delivery reports until there is room.
        while let Err((error, returned)) = producer.send(record) {
            match error {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                    producer.poll(Duration::from_millis(10));
                    record = returned;
                }
                error => return Err(format!("produce: {error}")),
            }
        }
    }
}
