//! The reading side of `ferry status`: the requests to the flow's target (the lease group,
//! the status records, the positions) and source (the partitions' watermarks), then
//! [`super::assemble`]. Blocking: run it on a thread that may block. Nothing here writes to a
//! cluster or joins a group.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::assemble::{self, FlowReport, Inputs};
use super::{InstanceRecord, decode_key, status_topic};
use crate::config::{Cluster, Config, Flow};
use crate::kafka::ffi::{self, NativeError};
use crate::kafka::{Admin, AdminCallError, REQUEST_TIMEOUT};
use crate::replication::positions::{PositionReader, PositionsError};

/// How long reading a topic (status records, positions) to its end may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors gathering a flow's status: each means a cluster did not answer as needed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StatusError {
    /// A cluster named by the flow is missing from the configuration.
    #[error("flow {flow} names unknown cluster `{cluster}`")]
    UnknownCluster {
        /// The flow.
        flow: String,
        /// The cluster.
        cluster: String,
    },
    /// A metadata request failed.
    #[error("flow {flow}")]
    Admin {
        /// The flow.
        flow: String,
        /// The cause.
        #[source]
        source: Box<AdminCallError>,
    },
    /// The lease group could not be described.
    #[error("flow {flow}: describing task-lease group `{group}` failed")]
    Group {
        /// The flow.
        flow: String,
        /// The group.
        group: String,
        /// The cause.
        #[source]
        source: NativeError,
    },
    /// A topic could not be read.
    #[error("reading `{topic}` failed")]
    Read {
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: Box<KafkaError>,
    },
    /// A topic could not be read to its end in time.
    #[error("reading `{topic}` did not reach its end within {timeout:?}")]
    ReadTimeout {
        /// The topic.
        topic: String,
        /// The limit.
        timeout: Duration,
    },
    /// The positions could not be read.
    #[error("flow {flow}")]
    Positions {
        /// The flow.
        flow: String,
        /// The cause.
        #[source]
        source: PositionsError,
    },
}

/// Reads everything `ferry status` shows about `flow` and joins it.
///
/// # Errors
/// When the source or the target does not answer, or the group cannot be described.
pub(crate) fn gather(config: &Config, flow: &Flow) -> Result<FlowReport, StatusError> {
    let id = flow.id.to_string();
    let cluster = |name: &crate::config::ClusterName| {
        config
            .clusters
            .get(name)
            .ok_or_else(|| StatusError::UnknownCluster {
                flow: id.clone(),
                cluster: name.to_string(),
            })
    };
    let source = cluster(&flow.source)?;
    let target = cluster(&flow.target)?;
    let admin_error = |source: AdminCallError| StatusError::Admin {
        flow: id.clone(),
        source: Box::new(source),
    };
    let target_admin = Admin::new(flow.target.as_str(), target).map_err(admin_error)?;
    let source_admin = Admin::new(flow.source.as_str(), source).map_err(admin_error)?;
    let target_topics = target_admin.topic_partitions().map_err(admin_error)?;
    let source_partitions = source_admin.topic_partitions().map_err(admin_error)?;
    let lease_topic = crate::flow::lease::lease_topic(flow.source.as_str());
    let task_count = target_topics
        .get(&lease_topic)
        .map_or(flow.tasks, |partitions| {
            u32::try_from(*partitions).unwrap_or(flow.tasks)
        })
        .max(1);
    let description =
        ffi::describe_group(target_admin.client(), &flow.group_id).map_err(|source| {
            StatusError::Group {
                flow: id.clone(),
                group: flow.group_id.clone(),
                source,
            }
        })?;
    let topic = status_topic(flow.source.as_str());
    let records = if target_topics.contains_key(&topic) {
        latest_records(target, &topic, &flow.group_id)?
    } else {
        Vec::new()
    };
    let positions = if target_topics.contains_key(&flow.positions_topic) {
        let mut reader = PositionReader::new(target, &flow.positions_topic, flow.source.as_str())
            .map_err(|source| StatusError::Positions {
            flow: id.clone(),
            source,
        })?;
        reader
            .read_to_end(READ_TIMEOUT)
            .map_err(|source| StatusError::Positions {
                flow: id.clone(),
                source,
            })?
            .clone()
    } else {
        HashMap::new()
    };
    let mut inputs = Inputs {
        flow: id.clone(),
        group: flow.group_id.clone(),
        lease_topic,
        task_count,
        description,
        records,
        positions,
        source_partitions,
        watermarks: HashMap::new(),
        now_ms: super::now_ms(),
    };
    inputs.watermarks = watermarks(source, &assemble::wanted_topics(&inputs))?;
    Ok(assemble::assemble(&inputs))
}

/// The source watermarks (low, high) of every partition of `topics`.
fn watermarks(
    source: &Cluster,
    topics: &[super::TopicRecord],
) -> Result<assemble::Watermarks, StatusError> {
    let client: BaseConsumer =
        crate::kafka::watermark_client(source)
            .create()
            .map_err(|error| StatusError::Read {
                topic: "(watermarks)".to_owned(),
                source: Box::new(error),
            })?;
    let mut watermarks = HashMap::new();
    for topic in topics {
        for partition in 0..topic.partitions {
            let marks = client
                .fetch_watermarks(&topic.topic, partition, REQUEST_TIMEOUT)
                .map_err(|error| StatusError::Read {
                    topic: topic.topic.clone(),
                    source: Box::new(error),
                })?;
            watermarks.insert((topic.topic.clone(), partition), marks);
        }
    }
    Ok(watermarks)
}

/// The latest status record of each instance of lease group `group` in `topic` (read to its
/// end); tombstones remove the instance, records that do not decode are skipped.
fn latest_records(
    target: &Cluster,
    topic: &str,
    group: &str,
) -> Result<Vec<InstanceRecord>, StatusError> {
    let failed = |source: KafkaError| StatusError::Read {
        topic: topic.to_owned(),
        source: Box::new(source),
    };
    let consumer: BaseConsumer = crate::kafka::plain_consumer(target)
        .create()
        .map_err(failed)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(failed)?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |topic| topic.partitions().len() as i32);
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(failed)?;
        if low < high {
            remaining.insert(partition, high);
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(failed)?;
        }
    }
    let mut latest: HashMap<String, InstanceRecord> = HashMap::new();
    if remaining.is_empty() {
        return Ok(Vec::new());
    }
    consumer.assign(&list).map_err(failed)?;
    let deadline = Instant::now() + READ_TIMEOUT;
    while !remaining.is_empty() {
        if Instant::now() >= deadline {
            return Err(StatusError::ReadTimeout {
                topic: topic.to_owned(),
                timeout: READ_TIMEOUT,
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                // Compaction may leave gaps: ask the consumer where it is.
                if let Ok(positions) = consumer.position() {
                    remaining.retain(|partition, high| {
                        positions
                            .find_partition(topic, *partition)
                            .and_then(|element| element.offset().to_raw())
                            .is_none_or(|position| position < *high)
                    });
                }
            }
            Some(Err(error)) => return Err(failed(error)),
            Some(Ok(message)) => {
                let partition = message.partition();
                if let Some((record_group, instance)) = message.key().and_then(decode_key)
                    && record_group == group
                {
                    match message.payload() {
                        None => {
                            latest.remove(&instance);
                        }
                        Some(value) => {
                            if let Ok(record) = serde_json::from_slice::<InstanceRecord>(value) {
                                latest.insert(instance, record);
                            }
                        }
                    }
                }
                if remaining
                    .get(&partition)
                    .is_some_and(|high| message.offset() + 1 >= *high)
                {
                    remaining.remove(&partition);
                }
            }
        }
    }
    let mut records: Vec<InstanceRecord> = latest.into_values().collect();
    records.sort_by(|left, right| left.instance.cmp(&right.instance));
    Ok(records)
}
