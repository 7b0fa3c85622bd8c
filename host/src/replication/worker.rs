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
//! * With filters or transforms (`plugins::RecordChain`), the records of one loop turn go
//!   through the chain as one packed batch. Kept records are produced from the consumer's
//!   buffers, replaced ones from the plugin's answer; a dropped or skipped record is tracked as
//!   acknowledged at once, so positions move past it; a dead-lettered one is acknowledged when
//!   its dead-letter write is. A record a plugin fails on under `on_error = "halt"` (or behind an
//!   open circuit breaker) stops its partition there: the partition is paused, later records of
//!   it are not produced, and its position stays before that record.
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
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::FlowContext;
use super::assignment::task_of;
use super::topics::Catalog;
use super::tracker::{CommitTracker, TrackError};
use crate::config::ErrorPolicy;
use crate::mm2_records::OffsetSync;
use crate::offsets;
use crate::plugins::{ChainSpec, Disposition, PackedBatch, RecordChain, RecordInput, RecordView};
use crate::translation::SyncRule;

/// How long a stopping worker waits for in-flight records to be acknowledged.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long reading the stored positions may take when a task starts.
const POSITIONS_TIMEOUT: Duration = Duration::from_secs(60);
/// Records consumed per loop turn before acknowledgements are processed again.
const BATCH: usize = 1000;
/// Opaque marker of position records in delivery reports.
const POSITION_OPAQUE: usize = usize::MAX;
/// Bit marking dead-letter records in delivery-report opaques; the rest is an id in
/// `AckBuffer::dead_letters`. Source offsets (the opaque of mirrored records) never set it.
const DEAD_LETTER_BIT: usize = 1 << 63;

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
    /// A dead-letter write standing for the source record (no offset sync, not counted as
    /// replicated).
    dead_letter: bool,
}

#[derive(Default)]
struct AckBuffer {
    /// Remote topic name to topic slot, for routing delivery reports.
    slots: HashMap<Arc<str>, u32>,
    acks: Vec<Ack>,
    /// Dead-letter records in flight: id → (topic slot, partition, source offset).
    dead_letters: HashMap<usize, (u32, i32, i64)>,
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
        if opaque & DEAD_LETTER_BIT != 0 {
            if let Some((slot, partition, offset)) = buffer.dead_letters.remove(&opaque) {
                buffer.acks.push(Ack {
                    slot,
                    partition,
                    offset,
                    downstream: -1,
                    timestamp: None,
                    bytes: 0,
                    error,
                    dead_letter: true,
                });
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
            dead_letter: false,
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
    /// Stopped at a record a plugin failed on (`on_error = "halt"`): paused, nothing of it is
    /// produced until the task restarts.
    halted: bool,
    lag: IntGauge,
}

struct TopicState {
    source: Arc<str>,
    remote: Arc<str>,
    partitions: HashMap<i32, PartitionState>,
    records: IntCounter,
    bytes: IntCounter,
    /// Records the chain dropped.
    dropped: IntCounter,
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
    /// The flow's filters and transforms with this task's instances; `None` without any.
    chain: Option<RecordChain>,
    /// The chain's generation when last looked at; a change means a plugin was swapped.
    chain_generation: u64,
    /// The packed input of the chain, reused between batches.
    packed: PackedBatch,
    /// Ids of dead-letter records in flight.
    next_dead_letter: usize,
    partitions_halted: IntGauge,
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
            chain: context.chain.as_ref().map(ChainSpec::start),
            chain_generation: 0,
            packed: PackedBatch::default(),
            next_dead_letter: 0,
            partitions_halted: metrics.partitions_halted.with_label_values(&[&flow]),
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
        // The messages of one loop turn, when a chain runs over them as a batch.
        let mut batch: Vec<BorrowedMessage<'_>> = Vec::with_capacity(BATCH);
        while !stop.load(Ordering::Acquire) {
            if self.catalog.has_changed().unwrap_or(false) {
                self.update_assignment()?;
            }
            if let Some(generation) = self.chain.as_ref().map(RecordChain::generation)
                && generation != self.chain_generation
            {
                self.chain_generation = generation;
                self.resume_halted();
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
                        if self.chain.is_some() {
                            batch.push(message);
                        } else {
                            self.forward(&message)?;
                        }
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
            if !batch.is_empty() {
                let result = self.forward_batch(&batch);
                batch.clear();
                result?;
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
        let remote = self.track_produced(message)?;
        self.produce(
            message,
            &remote,
            message.key(),
            message.payload(),
            message.timestamp().to_millis(),
            message.headers().map(|headers| headers.detach()),
        )
    }

    /// The topic state of `message`'s partition.
    fn partition_state(
        &mut self,
        message: &BorrowedMessage<'_>,
    ) -> Result<(&mut TopicState, i32), TaskError> {
        let partition = message.partition();
        let Some(slot) = self.slots.get(message.topic()).copied() else {
            return Err(self.unowned(message.topic(), partition));
        };
        let owned = self
            .topics
            .get(slot as usize)
            .is_some_and(|topic| topic.partitions.contains_key(&partition));
        if !owned {
            return Err(self.unowned(message.topic(), partition));
        }
        match self.topics.get_mut(slot as usize) {
            Some(topic) => Ok((topic, partition)),
            None => Err(TaskError::Unowned {
                task: self.task,
                topic: message.topic().to_owned(),
                partition,
            }),
        }
    }

    /// Records that `message` is handed on (produced, dropped or dead-lettered) and returns
    /// its remote topic.
    fn track_produced(&mut self, message: &BorrowedMessage<'_>) -> Result<Arc<str>, TaskError> {
        let offset = message.offset();
        let (topic, partition) = self.partition_state(message)?;
        let remote = Arc::clone(&topic.remote);
        let source = Arc::clone(&topic.source);
        if let Some(state) = topic.partitions.get_mut(&partition) {
            state
                .tracker
                .produced(offset)
                .map_err(|source_error| TaskError::Track {
                    topic: source.to_string(),
                    partition,
                    source: source_error,
                })?;
            state.next_offset = Some(offset + 1);
        }
        Ok(remote)
    }

    /// Produces a record standing for source record `message` to `topic` (the remote topic,
    /// same partition), with the given parts.
    fn produce(
        &mut self,
        message: &BorrowedMessage<'_>,
        remote: &str,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        timestamp: Option<i64>,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), TaskError> {
        let partition = message.partition();
        let offset = message.offset();
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(remote, offset as usize).partition(partition);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        if let Some(timestamp) = timestamp {
            record = record.timestamp(timestamp);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        self.send(record, message)
    }

    /// Hands `record` to the producer, serving delivery reports while its queue is full.
    fn send(
        &mut self,
        mut record: BaseRecord<'_, [u8], [u8], usize>,
        message: &BorrowedMessage<'_>,
    ) -> Result<(), TaskError> {
        let partition = message.partition();
        let offset = message.offset();
        self.in_flight += 1;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                    self.process_acks()?;
                }
                Err((source, returned)) => {
                    return Err(TaskError::Produce {
                        source_topic: message.topic().to_owned(),
                        target_topic: returned.topic.to_owned(),
                        partition,
                        offset,
                        source: Box::new(source),
                    });
                }
            }
        }
    }

    /// Runs the records of one loop turn through the chain and hands each on as the chain
    /// decided, in consumption order.
    fn forward_batch(&mut self, messages: &[BorrowedMessage<'_>]) -> Result<(), TaskError> {
        let Some(mut chain) = self.chain.take() else {
            for message in messages {
                self.forward(message)?;
            }
            return Ok(());
        };
        let result = self.run_chain(&mut chain, messages);
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
            let (topic, partition) = self.partition_state(message)?;
            if topic
                .partitions
                .get(&partition)
                .is_some_and(|state| state.halted)
            {
                continue;
            }
            let headers = message.headers();
            let header_list = headers
                .iter()
                .flat_map(|headers| headers.iter().map(|header| (header.key, header.value)));
            packed.push(RecordInput {
                topic: message.topic(),
                remote_topic: &topic.remote,
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
            if self.is_halted(message) {
                continue;
            }
            let step = match disposition {
                Disposition::Keep => self.forward(message),
                Disposition::Drop => self.drop_record(message, None),
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

    fn is_halted(&self, message: &BorrowedMessage<'_>) -> bool {
        self.slots
            .get(message.topic())
            .and_then(|slot| self.topics.get(*slot as usize))
            .and_then(|topic| topic.partitions.get(&message.partition()))
            .is_some_and(|state| state.halted)
    }

    /// Produces the replacement a transform returned for `message`.
    fn forward_replacement(
        &mut self,
        message: &BorrowedMessage<'_>,
        view: RecordView<'_>,
    ) -> Result<(), TaskError> {
        let remote = self.track_produced(message)?;
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
    /// position moves past it once everything before it is acknowledged.
    fn drop_record(
        &mut self,
        message: &BorrowedMessage<'_>,
        skipped_by: Option<&str>,
    ) -> Result<(), TaskError> {
        self.track_produced(message)?;
        let (topic, partition) = self.partition_state(message)?;
        if skipped_by.is_none() {
            topic.dropped.inc();
        }
        let source = Arc::clone(&topic.source);
        if let Some(state) = topic.partitions.get_mut(&partition) {
            state
                .tracker
                .acknowledged(message.offset())
                .map_err(|source_error| TaskError::Track {
                    topic: source.to_string(),
                    partition,
                    source: source_error,
                })?;
        }
        Ok(())
    }

    /// Applies the flow's error policy to a record a plugin failed on.
    fn record_failed(
        &mut self,
        message: &BorrowedMessage<'_>,
        plugin: &str,
        error: &str,
        fatal: bool,
    ) -> Result<(), TaskError> {
        let policy = if fatal {
            ErrorPolicy::Halt
        } else {
            self.context.flow.on_error
        };
        self.context
            .metrics
            .plugin_record_errors
            .with_label_values(&[self.flow.as_str(), plugin, policy.as_str()])
            .inc();
        let (topic_name, partition, offset) =
            (message.topic(), message.partition(), message.offset());
        match policy {
            ErrorPolicy::Skip => {
                tracing::warn!(
                    plugin,
                    error,
                    topic = topic_name,
                    partition,
                    offset,
                    "A plugin failed on a record; it is skipped (on_error = skip)."
                );
                self.drop_record(message, Some(plugin))
            }
            ErrorPolicy::DeadLetter => {
                tracing::warn!(
                    plugin,
                    error,
                    topic = topic_name,
                    partition,
                    offset,
                    "A plugin failed on a record; it goes to the dead-letter topic."
                );
                self.dead_letter(message, plugin, error)
            }
            ErrorPolicy::Halt => {
                tracing::error!(
                    plugin,
                    error,
                    topic = topic_name,
                    partition,
                    offset,
                    fatal,
                    "A plugin failed on a record; its partition stops there (on_error = halt). \
                     Swap in a fixed plugin (or restart): the partition resumes at this record."
                );
                self.halt(message)
            }
        }
    }

    /// After a plugin swap, retries the partitions the old version halted: each is sought back
    /// to the record it stopped at and resumed. Nothing after that record was produced or
    /// tracked, so nothing is lost or copied twice.
    fn resume_halted(&mut self) {
        for topic in &mut self.topics {
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
                self.partitions_halted.dec();
                tracing::info!(topic = %topic.source, partition, offset,
                    "A plugin was swapped: the halted partition resumes at the record it stopped at.");
            }
        }
    }

    /// Stops `message`'s partition at `message`: paused, position kept before it.
    fn halt(&mut self, message: &BorrowedMessage<'_>) -> Result<(), TaskError> {
        let (topic, partition) = self.partition_state(message)?;
        let source = Arc::clone(&topic.source);
        if let Some(state) = topic.partitions.get_mut(&partition)
            && !state.halted
        {
            state.halted = true;
            state.next_offset = Some(message.offset());
            self.partitions_halted.inc();
            let mut list = TopicPartitionList::new();
            list.add_partition(&source, partition);
            if let Err(error) = self.consumer.pause(&list) {
                tracing::warn!(%error, topic = %source, partition,
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
        self.track_produced(message)?;
        let Some(slot) = self.slots.get(message.topic()).copied() else {
            return Err(self.unowned(message.topic(), message.partition()));
        };
        let id = DEAD_LETTER_BIT | self.next_dead_letter;
        self.next_dead_letter = (self.next_dead_letter + 1) & !DEAD_LETTER_BIT;
        self.producer
            .context()
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dead_letters
            .insert(id, (slot, message.partition(), message.offset()));
        let mut headers = message
            .headers()
            .map_or_else(OwnedHeaders::new, |headers| headers.detach());
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        for (key, value) in [
            ("ferry.error.plugin", plugin),
            ("ferry.error.message", error),
            ("ferry.error.topic", message.topic()),
            ("ferry.error.partition", partition.as_str()),
            ("ferry.error.offset", offset.as_str()),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let dead_letter_topic = self.context.flow.dead_letter_topic.clone();
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&dead_letter_topic, id).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(timestamp) = message.timestamp().to_millis() {
            record = record.timestamp(timestamp);
        }
        self.send(record, message)
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
            if ack.dead_letter {
                // Not a replicated record: no offset sync (the gap makes the next one due).
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
                        halted: false,
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
        if let Some(&slot) = self.slots.get(source) {
            // A policy swapped with `force` renamed the remote topic: later records go to the
            // new name; deliveries still in flight to the old one keep their mapping.
            if let Some(topic) = self.topics.get_mut(slot as usize)
                && topic.remote != *remote
            {
                tracing::warn!(topic = %source, from = %topic.remote, to = %remote,
                    "Remote topic renamed by a forced policy swap; copying on under the new name.");
                topic.remote = Arc::clone(remote);
                for state in topic.partitions.values_mut() {
                    // The next record starts a new offset-sync run in the new topic.
                    state.sync = SyncRule::new(self.context.flow.offset_lag_max);
                }
                self.route_deliveries(remote, slot);
            }
            return slot;
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
            dropped: metrics
                .records_dropped
                .with_label_values(&[self.flow.as_str(), source.as_ref()]),
        });
        self.slots.insert(Arc::clone(source), slot);
        self.route_deliveries(remote, slot);
        slot
    }

    /// Delivery reports for `remote` belong to topic `slot`.
    fn route_deliveries(&self, remote: &Arc<str>, slot: u32) {
        self.producer
            .context()
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
            .insert(Arc::clone(remote), slot);
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
