//! The task worker: copies the source partitions one task owns to the target.
//!
//! A task is Ferry's unit of ownership (see `replication::lease`). While this process owns a
//! task, one OS thread runs its worker: one source consumer (partitions assigned explicitly, never
//! a group member) and one idempotent target producer. The loop is synchronous on purpose: the
//! consumer's prefetch queue, the producer's buffer and the delivery reports are all served on
//! this thread, with no channel and no allocation per record beyond librdkafka's own copy.
//!
//! Invariants:
//! * A record's source offset becomes a stored position only after the target acknowledged it
//!   and every record produced before it on that partition (`CommitTracker`).
//! * Records of one partition are produced in source order, to the same partition number, with
//!   key, value, headers and timestamp unchanged; the idempotent producer keeps that order.
//! * At most `max_in_flight` records are unacknowledged; past that the worker stops consuming
//!   and waits for acknowledgements (back-pressure, bounded memory).
//! * Stopping (revocation or shutdown) drains: in-flight records are acknowledged and positions
//!   stored before the worker returns. An error stores what was acknowledged and restarts the
//!   worker from the stored positions: records may be copied twice, never lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus::{Histogram, IntCounter, IntGauge};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::FlowContext;
use super::assignment::task_of;
use super::topics::Catalog;
use super::tracker::{CommitTracker, TrackError};
use crate::mm2_records::OffsetSync;
use crate::offsets;
use crate::translation::SyncRule;

/// How long a stopping worker waits for in-flight records to be acknowledged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading the stored positions may take when a task starts.
const POSITIONS_TIMEOUT: Duration = Duration::from_secs(60);
/// Records consumed per loop turn before acknowledgements are processed again.
const BATCH: usize = 1000;
/// Opaque marker of position records in delivery reports.
const POSITION_OPAQUE: usize = usize::MAX;

/// Errors that stop a worker; it then restarts from the stored positions.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TaskError {
    /// Creating a client failed.
    #[error("creating a Kafka client for task {task} failed")]
    Client {
        task: u32,
        #[source]
        source: Box<KafkaError>,
    },
    /// Reading stored positions failed.
    #[error("reading stored positions for task {task} failed")]
    Positions {
        task: u32,
        #[source]
        source: offsets::PositionsError,
    },
    /// Assigning source partitions failed.
    #[error("assigning source partitions to task {task} failed")]
    Assign {
        task: u32,
        #[source]
        source: Box<KafkaError>,
    },
    /// Consuming failed.
    #[error("consuming from the source failed in task {task}")]
    Consume {
        task: u32,
        #[source]
        source: Box<KafkaError>,
    },
    /// The target refused a record.
    #[error("producing {source_topic}/{partition} offset {offset} to `{target_topic}` failed")]
    Produce {
        source_topic: String,
        target_topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: Box<KafkaError>,
    },
    /// The target did not acknowledge a record.
    #[error("the target did not acknowledge `{target_topic}`/{partition} (source offset {offset})")]
    Delivery {
        target_topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: Box<KafkaError>,
    },
    /// Offset bookkeeping was violated (a bug; the worker restarts safely).
    #[error("offset tracking failed on {topic}/{partition}")]
    Track {
        topic: String,
        partition: i32,
        #[source]
        source: TrackError,
    },
    /// Offset syncs were not acknowledged; positions are not stored past them, so the task
    /// restarts from the stored positions (a restart emits fresh syncs).
    #[error("writing offset syncs to `{topic}` failed")]
    OffsetSyncs {
        topic: String,
        #[source]
        source: Box<KafkaError>,
    },
    /// A record came from a partition the task does not track (a bug; restarts safely).
    #[error("received a record of {topic}/{partition}, which task {task} does not own")]
    Unowned {
        task: u32,
        topic: String,
        partition: i32,
    },
}

/// The running worker of one task. Stop it with [`TaskHandle::stop`]; dropping the handle
/// detaches the thread, which keeps running.
pub(crate) struct TaskHandle {
    task: u32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TaskHandle {
    /// Starts the worker of `task` on its own thread.
    pub(crate) fn spawn(context: Arc<FlowContext>, task: u32) -> std::io::Result<TaskHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("ferry-task-{task}"))
            .spawn(move || run_until_stopped(&context, task, &thread_stop))?;
        Ok(TaskHandle {
            task,
            stop,
            thread: Some(thread),
        })
    }

    /// The task this worker runs.
    pub(crate) fn task(&self) -> u32 {
        self.task
    }

    /// Asks the worker to stop without waiting.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Asks the worker to stop and waits until it drained: in-flight records acknowledged and
    /// positions stored (bounded by the drain timeout).
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(task = self.task, "Task worker panicked.");
        }
    }
}

/// Runs the worker of `task`, restarting it after errors with a growing back-off, until `stop`.
fn run_until_stopped(context: &Arc<FlowContext>, task: u32, stop: &AtomicBool) {
    let flow = context.flow.id.to_string();
    let _span = tracing::info_span!("task", flow = %flow, task).entered();
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        let result = Worker::start(context, task).and_then(|mut worker| {
            let outcome = worker.run(stop);
            worker.drain();
            outcome
        });
        match result {
            Ok(()) => return,
            Err(error) => {
                context
                    .metrics
                    .task_restarts
                    .with_label_values(&[&flow])
                    .inc();
                tracing::error!(error = %crate::error_chain(&error), retry_in = ?backoff,
                    "Task failed; it resumes from its stored positions.");
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_millis(500);
                }
                let deadline = Instant::now() + backoff;
                while Instant::now() < deadline && !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// One acknowledgement from the target.
struct Ack {
    slot: u32,
    partition: i32,
    offset: i64,
    /// The record's offset on the target.
    downstream: i64,
    timestamp: Option<i64>,
    bytes: usize,
    error: Option<KafkaError>,
}

#[derive(Default)]
struct AckBuffer {
    /// Remote topic name to topic slot, for routing delivery reports.
    slots: HashMap<Arc<str>, u32>,
    acks: Vec<Ack>,
    position_acks: usize,
    position_errors: Vec<KafkaError>,
}

/// Producer context: collects delivery reports for the worker thread, which polls the producer.
struct AckContext {
    positions_topic: String,
    buffer: Mutex<AckBuffer>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (message, error) = match result {
            Ok(message) => (message, None),
            Err((error, message)) => (message, Some(error.clone())),
        };
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        if opaque == POSITION_OPAQUE && message.topic() == self.positions_topic {
            buffer.position_acks += 1;
            if let Some(error) = error {
                buffer.position_errors.push(error);
            }
            return;
        }
        let slot = buffer
            .slots
            .get(message.topic())
            .copied()
            .unwrap_or(u32::MAX);
        let bytes = message.key().map_or(0, <[u8]>::len)
            + message.payload().map_or(0, <[u8]>::len)
            + message.headers().map_or(0, |headers| {
                headers
                    .iter()
                    .map(|header| header.key.len() + header.value.map_or(0, <[u8]>::len))
                    .sum()
            });
        buffer.acks.push(Ack {
            slot,
            partition: message.partition(),
            offset: opaque as i64,
            downstream: message.offset(),
            timestamp: message.timestamp().to_millis(),
            bytes,
            error,
        });
    }
}

/// Consumer context: keeps the latest high watermark per partition from librdkafka statistics,
/// for the lag gauge.
#[derive(Default)]
struct SourceContext {
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        let mut marks = self
            .high_watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (topic_name, topic) in statistics.topics {
            for (partition, stats) in topic.partitions {
                tracing::trace!(topic = %topic_name, partition, fetch_state = %stats.fetch_state,
                    next = stats.next_offset, query = stats.query_offset, app = stats.app_offset,
                    hi = stats.hi_offset, fetchq = stats.fetchq_cnt, leader = stats.leader,
                    "Source partition statistics.");
                if partition >= 0 && stats.hi_offset >= 0 {
                    marks.insert((topic_name.clone(), partition), stats.hi_offset);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {}

struct PartitionState {
    tracker: CommitTracker,
    /// When this partition's next offset sync is due (reset with every worker start).
    sync: SyncRule,
    /// The next source offset to consume.
    next_offset: Option<i64>,
    /// The last position written to the positions topic.
    stored: Option<i64>,
    assigned: bool,
    lag: IntGauge,
}

struct TopicState {
    source: Arc<str>,
    remote: Arc<str>,
    partitions: HashMap<i32, PartitionState>,
    records: IntCounter,
    bytes: IntCounter,
}

struct Worker {
    context: Arc<FlowContext>,
    task: u32,
    flow: String,
    consumer: Arc<BaseConsumer<SourceContext>>,
    producer: BaseProducer<AckContext>,
    catalog: tokio::sync::watch::Receiver<Arc<Catalog>>,
    /// Positions stored when the task started, by (source topic, partition).
    start_positions: HashMap<(String, i32), i64>,
    slots: HashMap<Arc<str>, u32>,
    topics: Vec<TopicState>,
    in_flight: usize,
    positions_dirty: bool,
    scratch: Vec<Ack>,
    latency: Histogram,
    in_flight_gauge: IntGauge,
    /// This task's share of `in_flight_gauge`.
    in_flight_reported: i64,
    delivery_errors: IntCounter,
    positions_stored: IntCounter,
    /// Writes MM2 offset syncs; `None` when the flow emits none.
    syncs: Option<SyncWriter>,
}

/// Delivery errors of the offset-sync producer.
#[derive(Default)]
struct SyncContext {
    errors: Mutex<Vec<KafkaError>>,
}

impl ClientContext for SyncContext {}

impl ProducerContext for SyncContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        if let Err((error, _)) = result {
            self.errors
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(error.clone());
        }
    }
}

/// The offset syncs of one task (MM2's `MirrorSourceTask` queueing, reference §4.1): urgent
/// syncs are written after every batch of acknowledgements, the latest non-urgent sync of each
/// partition at every position store. Positions are stored only once every sync written before
/// them is acknowledged, so a stored position never covers a run boundary that is not synced.
struct SyncWriter {
    topic: String,
    producer: BaseProducer<SyncContext>,
    /// Syncs to write now, in order: (topic slot, partition, upstream, downstream). Never
    /// coalesced: each marks a run boundary that offset translation needs.
    pending: Vec<(u32, i32, i64, i64)>,
    /// The latest non-urgent sync per (topic slot, partition).
    delayed: HashMap<(u32, i32), (i64, i64)>,
    /// Whether syncs were written since the last flush.
    unflushed: bool,
    written: IntCounter,
}

impl Worker {
    fn start(context: &Arc<FlowContext>, task: u32) -> Result<Worker, TaskError> {
        let consumer: BaseConsumer<SourceContext> = crate::kafka::source_consumer(&context.source)
            .set("statistics.interval.ms", "2000")
            .create_with_context(SourceContext::default())
            .map_err(|source| TaskError::Client {
                task,
                source: Box::new(source),
            })?;
        let producer: BaseProducer<AckContext> = crate::kafka::target_producer(&context.target)
            .create_with_context(AckContext {
                positions_topic: context.positions_topic.clone(),
                buffer: Mutex::new(AckBuffer::default()),
            })
            .map_err(|source| TaskError::Client {
                task,
                source: Box::new(source),
            })?;
        let start_positions = context
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read_to_end(POSITIONS_TIMEOUT)
            .map_err(|source| TaskError::Positions { task, source })?
            .clone();
        let flow = context.flow.id.to_string();
        let metrics = &context.metrics;
        let syncs = match &context.offset_syncs {
            None => None,
            Some(location) => Some(SyncWriter {
                topic: location.topic.clone(),
                producer: crate::kafka::internal_producer(&location.cluster)
                    .create_with_context(SyncContext::default())
                    .map_err(|source| TaskError::Client {
                        task,
                        source: Box::new(source),
                    })?,
                pending: Vec::new(),
                delayed: HashMap::new(),
                unflushed: false,
                written: metrics.offset_syncs_written.with_label_values(&[&flow]),
            }),
        };
        let worker = Worker {
            task,
            catalog: context.catalog.clone(),
            start_positions,
            slots: HashMap::new(),
            topics: Vec::new(),
            in_flight: 0,
            positions_dirty: false,
            scratch: Vec::with_capacity(BATCH),
            latency: metrics.replication_latency.with_label_values(&[&flow]),
            in_flight_gauge: metrics.records_in_flight.with_label_values(&[&flow]),
            in_flight_reported: 0,
            delivery_errors: metrics.delivery_errors.with_label_values(&[&flow]),
            positions_stored: metrics.positions_stored.with_label_values(&[&flow]),
            syncs,
            flow,
            consumer: Arc::new(consumer),
            producer,
            context: Arc::clone(context),
        };
        tracing::info!(task, "Task started.");
        Ok(worker)
    }

    /// Copies records until `stop` is set or an error occurs.
    fn run(&mut self, stop: &AtomicBool) -> Result<(), TaskError> {
        self.catalog.mark_changed();
        let mut last_store = Instant::now();
        let mut last_lag = Instant::now();
        let max_in_flight = self.context.flow.max_in_flight;
        // A second handle, so that borrowed messages do not borrow `self`.
        let consumer = Arc::clone(&self.consumer);
        while !stop.load(Ordering::Acquire) {
            if self.catalog.has_changed().unwrap_or(false) {
                self.update_assignment()?;
            }
            let mut consumed = 0;
            while consumed < BATCH && self.in_flight < max_in_flight {
                let timeout = if consumed == 0 && self.in_flight == 0 {
                    Duration::from_millis(100)
                } else {
                    Duration::ZERO
                };
                match consumer.poll(timeout) {
                    None => break,
                    Some(Ok(message)) => {
                        self.forward(&message)?;
                        consumed += 1;
                    }
                    Some(Err(error)) => {
                        return Err(TaskError::Consume {
                            task: self.task,
                            source: Box::new(error),
                        });
                    }
                }
            }
            // Serve delivery reports; block briefly only when there is nothing else to do.
            let wait = if self.in_flight >= max_in_flight || (consumed == 0 && self.in_flight > 0) {
                Duration::from_millis(5)
            } else {
                Duration::ZERO
            };
            self.producer.poll(wait);
            self.process_acks()?;
            if last_store.elapsed() >= self.context.flow.commit_interval {
                self.store_positions()?;
                last_store = Instant::now();
            }
            if last_lag.elapsed() >= Duration::from_secs(1) {
                self.update_lag();
                last_lag = Instant::now();
            }
        }
        Ok(())
    }

    /// Produces one source record to the target.
    fn forward(&mut self, message: &BorrowedMessage<'_>) -> Result<(), TaskError> {
        let partition = message.partition();
        let offset = message.offset();
        let Some(slot) = self.slots.get(message.topic()).copied() else {
            return Err(self.unowned(message.topic(), partition));
        };
        let Some(topic) = self.topics.get_mut(slot as usize) else {
            return Err(self.unowned(message.topic(), partition));
        };
        let Some(state) = topic.partitions.get_mut(&partition) else {
            return Err(self.unowned(message.topic(), partition));
        };
        state
            .tracker
            .produced(offset)
            .map_err(|source| TaskError::Track {
                topic: topic.source.to_string(),
                partition,
                source,
            })?;
        state.next_offset = Some(offset + 1);
        let remote = Arc::clone(&topic.remote);
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&remote, offset as usize).partition(partition);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(timestamp) = message.timestamp().to_millis() {
            record = record.timestamp(timestamp);
        }
        if let Some(headers) = message.headers() {
            record = record.headers(headers.detach());
        }
        self.in_flight += 1;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                    self.process_acks()?;
                }
                Err((source, _)) => {
                    return Err(TaskError::Produce {
                        source_topic: message.topic().to_owned(),
                        target_topic: remote.to_string(),
                        partition,
                        offset,
                        source: Box::new(source),
                    });
                }
            }
        }
    }

    fn unowned(&self, topic: &str, partition: i32) -> TaskError {
        TaskError::Unowned {
            task: self.task,
            topic: topic.to_owned(),
            partition,
        }
    }

    /// Applies the delivery reports collected since the last call.
    fn process_acks(&mut self) -> Result<(), TaskError> {
        {
            let mut buffer = self
                .producer
                .context()
                .buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            std::mem::swap(&mut buffer.acks, &mut self.scratch);
            if !buffer.position_errors.is_empty() {
                for error in buffer.position_errors.drain(..) {
                    tracing::warn!(%error, "Storing a position failed; it is stored again.");
                }
                self.positions_dirty = true;
            }
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as i64);
        let mut failure = None;
        for ack in self.scratch.drain(..) {
            self.in_flight = self.in_flight.saturating_sub(1);
            let Some(topic) = self.topics.get_mut(ack.slot as usize) else {
                continue;
            };
            if let Some(error) = ack.error {
                self.delivery_errors.inc();
                if failure.is_none() {
                    failure = Some(TaskError::Delivery {
                        target_topic: topic.remote.to_string(),
                        partition: ack.partition,
                        offset: ack.offset,
                        source: Box::new(error),
                    });
                }
                continue;
            }
            let Some(state) = topic.partitions.get_mut(&ack.partition) else {
                continue;
            };
            if let Err(source) = state.tracker.acknowledged(ack.offset) {
                failure.get_or_insert(TaskError::Track {
                    topic: topic.source.to_string(),
                    partition: ack.partition,
                    source,
                });
                continue;
            }
            if let Some(syncs) = &mut self.syncs {
                let key = (ack.slot, ack.partition);
                let pair = (ack.offset, ack.downstream);
                if state.sync.update(ack.offset, ack.downstream) {
                    syncs.pending.push((key.0, key.1, pair.0, pair.1));
                    syncs.delayed.remove(&key);
                } else {
                    syncs.delayed.insert(key, pair);
                }
            }
            topic.records.inc();
            topic.bytes.inc_by(ack.bytes as u64);
            if let Some(timestamp) = ack.timestamp {
                self.latency
                    .observe((now_ms - timestamp).max(0) as f64 / 1000.0);
            }
        }
        self.send_syncs();
        // The gauge is per flow and shared by its tasks: add this task's change, don't overwrite.
        self.in_flight_gauge
            .add(self.in_flight as i64 - self.in_flight_reported);
        self.in_flight_reported = self.in_flight as i64;
        failure.map_or(Ok(()), Err)
    }

    /// Writes the pending offset syncs (partition 0 of the offset-syncs topic, as MM2).
    fn send_syncs(&mut self) {
        let Some(syncs) = &mut self.syncs else {
            return;
        };
        for (slot, partition, upstream, downstream) in syncs.pending.drain(..) {
            let Some(topic) = self.topics.get(slot as usize) else {
                continue;
            };
            let sync = OffsetSync {
                topic: topic.source.to_string(),
                partition,
                upstream_offset: upstream,
                downstream_offset: downstream,
            };
            let Ok(key) = sync.key() else {
                continue;
            };
            let value = sync.value();
            let record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&syncs.topic)
                .partition(0)
                .key(&key[..])
                .payload(&value[..]);
            match syncs.producer.send(record) {
                Ok(()) => {
                    syncs.unflushed = true;
                    syncs.written.inc();
                }
                Err((error, _)) => {
                    // Counted as a delivery failure: the next flush fails and the task restarts.
                    syncs
                        .producer
                        .context()
                        .errors
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(error);
                }
            }
        }
        syncs.producer.poll(Duration::ZERO);
    }

    /// Writes the latest delayed sync of every partition and waits until every sync is
    /// acknowledged (MM2's `commit()` promotion, KAFKA-15906).
    fn flush_syncs(&mut self) -> Result<(), TaskError> {
        let Some(syncs) = &mut self.syncs else {
            return Ok(());
        };
        let delayed = syncs.delayed.drain();
        syncs
            .pending
            .extend(delayed.map(|((slot, partition), (up, down))| (slot, partition, up, down)));
        self.send_syncs();
        let Some(syncs) = &mut self.syncs else {
            return Ok(());
        };
        if std::mem::take(&mut syncs.unflushed) {
            syncs
                .producer
                .flush(DRAIN_TIMEOUT)
                .map_err(|source| TaskError::OffsetSyncs {
                    topic: syncs.topic.clone(),
                    source: Box::new(source),
                })?;
        }
        let failed = syncs
            .producer
            .context()
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match failed {
            Some(source) => Err(TaskError::OffsetSyncs {
                topic: syncs.topic.clone(),
                source: Box::new(source),
            }),
            None => Ok(()),
        }
    }

    /// Writes the position of every partition that advanced since the last write, once the
    /// offset syncs before them are acknowledged.
    fn store_positions(&mut self) -> Result<(), TaskError> {
        self.flush_syncs()?;
        let source_alias = self.context.flow.source.as_str();
        let positions_topic = self.context.positions_topic.as_str();
        let dirty = std::mem::take(&mut self.positions_dirty);
        for topic in &mut self.topics {
            for (partition, state) in &mut topic.partitions {
                let Some(last) = state.tracker.last_replicated() else {
                    continue;
                };
                if !dirty && state.stored == Some(last) {
                    continue;
                }
                let key = offsets::encode_key(source_alias, &topic.source, *partition);
                let value = offsets::encode_value(last);
                let record: BaseRecord<'_, [u8], [u8], usize> =
                    BaseRecord::with_opaque_to(positions_topic, POSITION_OPAQUE)
                        .key(&key[..])
                        .payload(&value[..]);
                match self.producer.send(record) {
                    Ok(()) => {
                        state.stored = Some(last);
                        self.positions_stored.inc();
                    }
                    Err((error, _)) => {
                        tracing::warn!(%error, topic = %topic.source, partition,
                            "Storing a position failed; it is stored again.");
                        self.positions_dirty = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Follows the catalog: assigns the partitions this task owns that are not yet assigned and
    /// unassigns those that left the catalog.
    fn update_assignment(&mut self) -> Result<(), TaskError> {
        let catalog = Arc::clone(&self.catalog.borrow_and_update());
        let tasks = self.context.task_count;
        let latest = self.context.start_latest;
        let mut assign = TopicPartitionList::new();
        let mut grown_remotes: Vec<Arc<str>> = Vec::new();
        let mut wanted: HashMap<&str, Vec<i32>> = HashMap::new();
        for mirrored in &catalog.topics {
            for partition in 0..mirrored.partitions {
                if task_of(&mirrored.source, partition, tasks) == self.task {
                    wanted.entry(&mirrored.source).or_default().push(partition);
                }
            }
        }
        for mirrored in &catalog.topics {
            let Some(partitions) = wanted.get(mirrored.source.as_ref()) else {
                continue;
            };
            let slot = self.slot_for(&mirrored.source, &mirrored.remote);
            let Some(topic) = self.topics.get_mut(slot as usize) else {
                continue;
            };
            for partition in partitions {
                let state = topic
                    .partitions
                    .entry(*partition)
                    .or_insert_with(|| PartitionState {
                        tracker: CommitTracker::default(),
                        sync: SyncRule::new(self.context.flow.offset_lag_max),
                        next_offset: None,
                        stored: None,
                        assigned: false,
                        lag: self.context.metrics.partition_lag.with_label_values(&[
                            self.flow.as_str(),
                            mirrored.source.as_ref(),
                            partition.to_string().as_str(),
                        ]),
                    });
                if state.assigned {
                    continue;
                }
                let stored = self
                    .start_positions
                    .get(&(mirrored.source.to_string(), *partition));
                let start = match (state.next_offset, stored) {
                    (Some(next), _) => Offset::Offset(next),
                    (None, Some(last)) => Offset::Offset(checked_resume(
                        &self.consumer,
                        &mirrored.source,
                        *partition,
                        last + 1,
                    )),
                    (None, None) if latest => Offset::End,
                    (None, None) => Offset::Beginning,
                };
                if let Some(last) = stored {
                    state.stored.get_or_insert(*last);
                }
                assign
                    .add_partition_offset(&mirrored.source, *partition, start)
                    .map_err(|source| TaskError::Assign {
                        task: self.task,
                        source: Box::new(source),
                    })?;
                state.assigned = true;
                if grown_remotes.last() != Some(&mirrored.remote) {
                    grown_remotes.push(Arc::clone(&mirrored.remote));
                }
                tracing::info!(topic = %mirrored.source, partition, ?start, "Partition assigned.");
            }
        }
        let mut unassign = TopicPartitionList::new();
        for topic in &mut self.topics {
            let wanted_partitions = wanted.get(topic.source.as_ref());
            for (partition, state) in &mut topic.partitions {
                if state.assigned && !wanted_partitions.is_some_and(|list| list.contains(partition))
                {
                    unassign.add_partition(&topic.source, *partition);
                    state.assigned = false;
                    tracing::info!(topic = %topic.source, partition, "Partition unassigned.");
                }
            }
        }
        if unassign.count() > 0 {
            self.consumer
                .incremental_unassign(&unassign)
                .map_err(|source| TaskError::Assign {
                    task: self.task,
                    source: Box::new(source),
                })?;
        }
        // The producer learns of new remote partitions only at its next metadata refresh (every
        // few minutes) and holds records for them until then; ask now.
        for remote in grown_remotes {
            if let Err(error) = self
                .producer
                .client()
                .fetch_metadata(Some(&remote), crate::kafka::REQUEST_TIMEOUT)
            {
                tracing::warn!(%error, topic = %remote, "Refreshing remote topic metadata failed.");
            }
        }
        if assign.count() > 0 {
            self.consumer
                .incremental_assign(&assign)
                .map_err(|source| TaskError::Assign {
                    task: self.task,
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    fn slot_for(&mut self, source: &Arc<str>, remote: &Arc<str>) -> u32 {
        if let Some(slot) = self.slots.get(source) {
            return *slot;
        }
        let slot = self.topics.len() as u32;
        let metrics = &self.context.metrics;
        self.topics.push(TopicState {
            source: Arc::clone(source),
            remote: Arc::clone(remote),
            partitions: HashMap::new(),
            records: metrics
                .records_replicated
                .with_label_values(&[self.flow.as_str(), source.as_ref()]),
            bytes: metrics
                .bytes_replicated
                .with_label_values(&[self.flow.as_str(), source.as_ref()]),
        });
        self.slots.insert(Arc::clone(source), slot);
        self.producer
            .context()
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
            .insert(Arc::clone(remote), slot);
        slot
    }

    fn update_lag(&self) {
        let marks = self
            .consumer
            .context()
            .high_watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for topic in &self.topics {
            for (partition, state) in &topic.partitions {
                let high = marks.get(&(topic.source.to_string(), *partition)).copied();
                tracing::debug!(topic = %topic.source, partition, next = ?state.next_offset,
                    replicated = ?state.tracker.last_replicated(), ?high, in_flight = self.in_flight,
                    assigned = state.assigned, "Partition progress.");
                if let Some(high) = high {
                    let replicated = state.tracker.last_replicated().map_or(0, |last| last + 1);
                    state.lag.set((high - replicated).max(0));
                }
            }
        }
    }

    /// Waits for in-flight records, then stores positions and waits for those writes.
    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.in_flight > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::from_millis(10));
            if let Err(error) = self.process_acks() {
                tracing::warn!(error = %crate::error_chain(&error), "Delivery failed while draining.");
            }
        }
        if let Err(error) = self.store_positions() {
            tracing::warn!(error = %crate::error_chain(&error),
                "Positions are not stored past unacknowledged offset syncs; the next owner re-copies the difference.");
        }
        // Position writes get what is left of the drain deadline, and at least 5 s.
        let flush_timeout =
            deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5);
        if let Err(error) = self.producer.flush(flush_timeout) {
            tracing::warn!(%error, "Positions may not all be stored; the next owner re-copies the difference.");
        }
        if let Err(error) = self.process_acks() {
            tracing::warn!(error = %crate::error_chain(&error), "Delivery failed while draining.");
        }
        // Whatever was not acknowledged leaves this task; take it out of the flow's gauge.
        self.in_flight_gauge.sub(self.in_flight_reported);
        self.in_flight_reported = 0;
        let positions_failed = !self
            .producer
            .context()
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .position_errors
            .is_empty();
        tracing::info!(
            task = self.task,
            in_flight = self.in_flight,
            positions_failed,
            "Task drained."
        );
    }
}

/// The offset to resume `partition` of `topic` at, given the stored `next` offset: `next`
/// itself unless the source no longer holds it. Records deleted by retention before they
/// were replicated cannot be copied; resuming at the log start is then what MM2 does too
/// (`auto.offset.reset=earliest`), and it is logged as an error.
fn checked_resume(
    consumer: &BaseConsumer<SourceContext>,
    topic: &str,
    partition: i32,
    next: i64,
) -> i64 {
    match consumer.fetch_watermarks(topic, partition, crate::kafka::REQUEST_TIMEOUT) {
        Ok((low, _)) if next < low => {
            tracing::error!(
                topic,
                partition,
                stored = next,
                log_start = low,
                "Records were deleted at the source before they were replicated; resuming at the log start."
            );
            low
        }
        Ok((_, high)) if next > high => {
            tracing::warn!(
                topic,
                partition,
                stored = next,
                high_watermark = high,
                "The stored position is beyond the source's end (topic recreated?); resuming at the stored position."
            );
            next
        }
        Ok(_) => next,
        Err(error) => {
            tracing::warn!(topic, partition, %error, "Reading watermarks failed; resuming at the stored position.");
            next
        }
    }
}
