//! The running side of `ferry status`: one async task per flow that publishes this process's
//! [`InstanceRecord`] to the flow's status topic when it changes (checked every
//! [`CHECK_INTERVAL`]) and at least every [`REFRESH`], and a tombstone for it when the flow
//! stops gracefully. A failed write is logged and retried at the next check; it never stops
//! the flow (the status is for people, not for the record path).

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::{InstanceRecord, PluginVersion, TopicRecord, instance_id, record_key};
use crate::events::Events;
use crate::flow::FlowContext;
use crate::flow::swap::{FlowPlugins, VersionStatus};

/// How often the record is compared with what was published last.
pub(crate) const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The longest time between two writes of an unchanged record: `ferry status` shows the age of
/// each record, so a record much older than this belongs to a process that stopped answering.
pub(crate) const REFRESH: Duration = Duration::from_secs(15);
/// How long one write may wait for the target's acknowledgement.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the last write (the tombstone at a graceful stop) may wait: it is a courtesy to
/// `ferry status`, which leaves out the records of processes gone from the lease group anyway,
/// so it never holds a stop back long (`docs/operations.md`, "Stopping").
const RETIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors writing a status record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// The producer could not be created or the write failed.
    #[error("writing the status record to `{topic}` failed")]
    Kafka {
        /// The status topic.
        topic: String,
        /// The cause.
        #[source]
        source: Box<KafkaError>,
    },
}

/// Writes one flow's status records of this process.
pub(crate) struct StatusPublisher {
    producer: BaseProducer,
    topic: String,
    key: Vec<u8>,
}

impl StatusPublisher {
    /// A publisher to `topic` on `flow`'s target.
    ///
    /// # Errors
    /// When the producer cannot be created.
    pub(crate) fn new(flow: &FlowContext, topic: &str) -> Result<StatusPublisher, PublishError> {
        let producer = crate::kafka::internal_producer(&flow.tasks.target)
            .create()
            .map_err(|source| PublishError::Kafka {
                topic: topic.to_owned(),
                source: Box::new(source),
            })?;
        Ok(StatusPublisher {
            producer,
            topic: topic.to_owned(),
            key: record_key(&flow.tasks.flow.group_id, instance_id()),
        })
    }

    /// Writes `value` (a tombstone when `None`) and waits up to `timeout` for the
    /// acknowledgement. Blocking.
    fn write(&self, value: Option<&[u8]>, timeout: Duration) -> Result<(), PublishError> {
        let failed = |source: KafkaError| PublishError::Kafka {
            topic: self.topic.clone(),
            source: Box::new(source),
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).key(self.key.as_slice());
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.producer
            .send(record)
            .map_err(|(error, _)| failed(error))?;
        self.producer.flush(timeout).map_err(failed)
    }

    /// Removes this process's record (the flow stopped gracefully). Blocking.
    pub(crate) fn retire(&self) {
        if let Err(error) = self.write(None, RETIRE_TIMEOUT) {
            tracing::warn!(error = %crate::error_chain(&error),
                "Removing this process's status record failed; `ferry status` shows it as gone.");
        }
    }
}

/// What this process publishes about the flow now; `updated_at_ms` is set when written.
fn current(context: &FlowContext, plugins: &FlowPlugins, started_at_ms: i64) -> InstanceRecord {
    let flow = &context.tasks.flow;
    let status = plugins.status();
    let plugin = |version: VersionStatus| PluginVersion {
        plugin: version.plugin,
        kind: version.kind.to_owned(),
        source: version.source,
        active: version.active,
        draining: version.draining,
    };
    let catalog = context.tasks.catalog.borrow().clone();
    InstanceRecord {
        instance: instance_id().to_owned(),
        group: flow.group_id.clone(),
        flow: flow.id.to_string(),
        host: super::hostname(),
        pid: std::process::id(),
        ferry_version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at_ms,
        updated_at_ms: 0,
        tasks: context
            .tasks_held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        halted: context.tasks.halts.snapshot(),
        plugins: std::iter::once(status.policy)
            .chain(status.chain)
            .map(plugin)
            .collect(),
        topics: catalog
            .topics
            .iter()
            .map(|topic| TopicRecord {
                topic: topic.source.to_string(),
                remote: topic.remote.to_string(),
                partitions: topic.partitions,
            })
            .collect(),
    }
}

/// Publishes the flow's status record until aborted (with the flow's other background tasks).
pub(crate) async fn run(
    context: Arc<FlowContext>,
    plugins: Arc<FlowPlugins>,
    publisher: Arc<StatusPublisher>,
    events: Events,
) {
    let started_at_ms = super::now_ms();
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut published: Option<(InstanceRecord, Instant)> = None;
    let mut failing = false;
    loop {
        interval.tick().await;
        let record = current(&context, &plugins, started_at_ms);
        let due = published
            .as_ref()
            .is_none_or(|(last, at)| *last != record || at.elapsed() >= REFRESH);
        if !due {
            continue;
        }
        let mut written = record.clone();
        written.updated_at_ms = super::now_ms();
        let Ok(value) = serde_json::to_vec(&written) else {
            continue;
        };
        let writer = Arc::clone(&publisher);
        let outcome =
            tokio::task::spawn_blocking(move || writer.write(Some(&value), WRITE_TIMEOUT)).await;
        match outcome {
            Ok(Ok(())) => {
                if failing {
                    events.status_published();
                }
                failing = false;
                published = Some((record, Instant::now()));
            }
            Ok(Err(error)) => {
                if !failing {
                    events.status_not_published(&error);
                }
                failing = true;
            }
            Err(_) => return,
        }
    }
}
