//! Topic administration on a test cluster through rdkafka's admin client: create, grow and list
//! topics, count their records, and set or read their topic-level configs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::clusters::client;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Creates `topic` with `partitions` partitions (replication factor 1).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let results = block_on(admin.create_topics(
        [&NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Deletes `topic` and waits until the cluster no longer lists it (so that creating it again
/// makes a new topic).
pub fn delete_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let results = block_on(admin.delete_topics(
        &[topic],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("deleting {topic}: {code}"));
    }
    super::wait_until(Duration::from_secs(60), "the topic is deleted", || {
        !topics(bootstrap).contains_key(topic)
    });
}

/// Deletes the records of each of `partitions` partitions of `topic` below `before` (what
/// retention does), so that the log starts at `before`.
pub fn delete_records_before(bootstrap: &str, topic: &str, partitions: i32, before: i64) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let mut offsets = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        offsets
            .add_partition_offset(topic, partition, rdkafka::Offset::Offset(before))
            .unwrap();
    }
    let deleted = block_on(admin.delete_records(
        &offsets,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for element in deleted.elements() {
        assert!(element.error().is_ok(), "deleting records: {element:?}");
    }
}

/// Grows `topic` to `partitions` partitions.
pub fn grow_topic(bootstrap: &str, topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create().unwrap();
    let results = block_on(admin.create_partitions(
        [&NewPartitions::new(topic, partitions)],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("growing {topic}: {code}"));
    }
}

/// Topics of a cluster with their partition counts.
pub fn topics(bootstrap: &str) -> HashMap<String, i32> {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .filter(|topic| topic.error().is_none())
        .map(|topic| (topic.name().to_owned(), topic.partitions().len() as i32))
        .collect()
}

/// Sum of high watermarks of `topic`: the number of records written to it (no transactions and
/// no compaction in these tests).
pub fn record_count(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return 0;
    };
    let Some(topic_metadata) = metadata.topics().first() else {
        return 0;
    };
    if topic_metadata.error().is_some() {
        return 0;
    }
    topic_metadata
        .partitions()
        .iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
                .map(|(low, high)| high - low)
                .unwrap_or(0)
        })
        .sum()
}

/// The high watermark of every partition of `topic`, by partition number (empty while the topic
/// does not exist). Exactly once, transaction markers count too: a moving watermark means
/// something was written, not how many records.
pub fn high_watermarks(bootstrap: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = client(bootstrap).create().unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else {
        return Vec::new();
    };
    let Some(topic_metadata) = metadata.topics().first() else {
        return Vec::new();
    };
    let mut partitions: Vec<i32> = topic_metadata
        .partitions()
        .iter()
        .map(|partition| partition.id())
        .collect();
    partitions.sort_unstable();
    partitions
        .into_iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .map_or(0, |(_, high)| high)
        })
        .collect()
}

/// Creates `topic` (one partition, replication factor 1) with topic configs `configs`.
pub fn create_topic_with(config: &ClientConfig, topic: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let mut new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for (key, value) in configs {
        new_topic = new_topic.set(key, value);
    }
    let results = block_on(admin.create_topics(
        [&new_topic],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(topic, code)| panic!("creating {topic}: {code}"));
    }
}

/// Replaces **all** topic-level overrides of `topic` with `configs` (the legacy AlterConfigs
/// request: overrides not listed are removed).
pub fn replace_topic_configs(config: &ClientConfig, topic: &str, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (key, value) in configs {
        alter = alter.set(key, value);
    }
    let results = block_on(admin.alter_configs(
        [&alter],
        &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    for result in results {
        result.unwrap_or_else(|(resource, code)| panic!("altering {resource:?}: {code}"));
    }
}

/// The topic-level overrides of `topic` (configs whose source is the topic itself).
pub fn topic_overrides(config: &ClientConfig, topic: &str) -> BTreeMap<String, String> {
    let admin: AdminClient<DefaultClientContext> = config.create().unwrap();
    let results = block_on(admin.describe_configs(
        [&ResourceSpecifier::Topic(topic)],
        &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
    ))
    .unwrap();
    results
        .into_iter()
        .flat_map(|result| result.unwrap().entries)
        .filter(|entry| entry.source == ConfigSource::DynamicTopic)
        .map(|entry| (entry.name, entry.value.unwrap_or_default()))
        .collect()
}
