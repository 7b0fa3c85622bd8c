//! The task worker: copies the source partitions one task owns to the target.
//!
//! A task is Ferry's unit of ownership (see `flow::lease`). While this process owns a
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
//!   it are not produced, and its position stays before that record. A record the target
//!   refuses for good (too large, invalid timestamp, not authorised) goes through the same
//!   policy (`refusals.rs`); it never restarts the task.
//! * Stopping (revocation or shutdown) drains: in-flight records are acknowledged and positions
//!   stored before the worker returns. Its partitions' lag series leave `/metrics` with it
//!   (and with each partition unassigned on the way: `PartitionState::unassign`). An error stores what was acknowledged and restarts the
//!   worker from the stored positions (`replication::supervisor`): records may be copied twice,
//!   never lost.
//!
//! Files: this one holds the loop, assignment, acknowledgements and the drain;
//! `callbacks.rs` the rdkafka callbacks, `partitions.rs` the partition table, `dispositions.rs`
//! what happens to a record after the chain answered (and the error policy), `refusals.rs`
//! records the target refuses for good (the same policy),
//! `offset_syncs.rs` MM2's offset syncs, `store.rs` storing and resuming from positions,
//! `transactions.rs` exactly once, `faults.rs` fault injection for tests (debug builds).

mod callbacks;
mod dispositions;
mod faults;
mod offset_syncs;
mod partitions;
mod refusals;
mod store;
mod transactions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter, IntGauge};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::TaskContext;
use super::assignment::task_of;
use super::catalog::Catalog;
use super::positions::PositionsError;
use super::supervisor::{Backoff, Supervised};
use super::tracker::TrackError;
use crate::events::{At, CallsSeen, Events};
use crate::mm2::translation::SyncRule;
use crate::plugins::{ChainSpec, PackedBatch, RecordChain};
use callbacks::{Ack, AckBuffer, AckContext, OffsetSyncContext, Opaque, SourceContext};
use offset_syncs::OffsetSyncWriter;
use partitions::{PartitionState, PartitionTable, TopicState};
use refusals::{RecordParts, Refusal};
use store::checked_resume;
use transactions::{FENCED_WAIT, RefusedRecord, Transactions};
pub(crate) use transactions::{RefusedRecords, transactional_id};

/// How long a stopping worker waits for in-flight records to be acknowledged (and how long an
/// exactly-once commit waits for its records). With [`POSITIONS_FLUSH_MIN`] it bounds a stop
/// or revocation at 10 s whatever the target does (`docs/operations.md`, "Stopping").
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// The least time a drain gives its position writes.
const POSITIONS_FLUSH_MIN: Duration = Duration::from_secs(2);
/// How long reading the stored positions may take when a task starts.
const POSITIONS_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the latest delayed offset sync of each partition is written between position
/// stores, so that checkpoints translate up to the last replicated record without waiting for
/// the next store (`commit_interval`, 60 s in MM2 files by MM2's default).
const DELAYED_SYNCS_INTERVAL: Duration = Duration::from_secs(1);
/// Records consumed per loop turn before acknowledgements are processed again.
const BATCH: usize = 1000;
/// How a failed task restarts: 0.5 s doubling to 30 s, back to 0.5 s after a minute's run.
const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(30),
    healthy_after: Duration::from_secs(60),
};

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
        source: PositionsError,
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
    /// A partition's source log started again while records of the old one were still
    /// unacknowledged past the drain timeout; the task restarts from the stored positions.
    #[error(
        "partition {partition}'s source log started again with {in_flight} records of the old one unacknowledged"
    )]
    Rewound { partition: i32, in_flight: usize },
    /// An exactly-once transaction failed; it is aborted and the task restarts from the
    /// committed positions.
    #[error("{what} failed in task {task}; the transaction is aborted")]
    Transaction {
        task: u32,
        what: &'static str,
        #[source]
        source: Box<KafkaError>,
    },
    /// The target refused a record inside an exactly-once transaction: the transaction is
    /// aborted, and the restarted task applies `on_error` to that record without producing it.
    #[error(
        "the target refused {topic}/{partition} offset {offset} in a transaction of task {task}"
    )]
    RefusedInTransaction {
        task: u32,
        topic: String,
        partition: i32,
        offset: i64,
        #[source]
        source: Box<KafkaError>,
    },
    /// The task's transactional producer was fenced: another process owns the task now.
    #[error("task {task} was fenced by a newer owner ({reason}); it stopped writing")]
    Fenced { task: u32, reason: String },
    /// The task's idempotent producer hit a fatal error (e.g. the broker lost its sequence
    /// state): it refuses every record from then on. The drain stores what was acknowledged
    /// before it with a fresh producer, and the task restarts with a new one.
    #[error("the target producer of task {task} hit a fatal error: {reason}")]
    ProducerFatal { task: u32, reason: String },
    /// The worker was asked to stop while it was starting (fencing, reading its positions) or
    /// while the target's producer queue was full (the record was not produced: its position
    /// stays before it). Not a failure.
    #[error("task {task} stopped before it could go on")]
    Stopped { task: u32 },
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
    worker: Supervised,
}

impl TaskHandle {
    /// Starts the worker of `task` on its own supervised thread: a failed worker stores what
    /// was acknowledged and starts again from the stored positions, with back-off.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub(crate) fn spawn(context: Arc<TaskContext>, task: u32) -> std::io::Result<TaskHandle> {
        let events = Events::new(&context.metrics, &context.flow.id);
        let fencing = events.clone();
        let span = tracing::info_span!("task", flow = %context.flow.id, task);
        let worker = Supervised::spawn(
            format!("ferry-task-{task}"),
            span,
            BACKOFF,
            move |stop: &Arc<AtomicBool>| {
                let outcome = Worker::start(&context, task, stop).and_then(|mut worker| {
                    let outcome = worker.run(stop).map_err(|error| worker.fatal_or(error));
                    worker.drain(outcome.is_ok());
                    outcome
                });
                let outcome = match outcome {
                    Err(TaskError::Stopped { .. }) => Ok(()),
                    outcome => outcome,
                };
                if let Err(TaskError::Fenced { reason, .. }) = &outcome {
                    fencing.task_fenced(task, reason);
                    // Another process owns the task: wait for the lease to move before this
                    // one may fence it back (`transactions.rs`).
                    let deadline = Instant::now() + FENCED_WAIT;
                    while Instant::now() < deadline && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    if stop.load(Ordering::Acquire) {
                        return Ok(());
                    }
                }
                outcome
            },
            move |error: &TaskError, retry_in| events.task_failed(error, retry_in),
        )?;
        Ok(TaskHandle { task, worker })
    }

    /// The task this worker runs.
    pub(crate) fn task(&self) -> u32 {
        self.task
    }

    /// Asks the worker to stop without waiting.
    pub(crate) fn request_stop(&self) {
        self.worker.request_stop();
    }

    /// Asks the worker to stop and waits until it drained: in-flight records acknowledged and
    /// positions stored (bounded by the drain timeout).
    pub(crate) fn stop(self) {
        self.worker.stop();
    }
}

struct Worker {
    context: Arc<TaskContext>,
    task: u32,
    /// Set when the worker is asked to stop (looked at by the loop and while the producer's
    /// queue is full).
    stop: Arc<AtomicBool>,
    events: Events,
    consumer: Arc<BaseConsumer<SourceContext>>,
    producer: BaseProducer<AckContext>,
    catalog: tokio::sync::watch::Receiver<Arc<Catalog>>,
    /// Positions stored when the task started, by (source topic, partition).
    start_positions: HashMap<(String, i32), i64>,
    /// Every topic and partition the task tracks.
    table: PartitionTable,
    in_flight: usize,
    /// Store every position again at the next store (a position write failed).
    positions_dirty: bool,
    scratch: Vec<Ack>,
    latency: Histogram,
    in_flight_gauge: IntGauge,
    /// This task's share of `in_flight_gauge`.
    in_flight_reported: i64,
    delivery_errors: IntCounter,
    positions_stored: IntCounter,
    /// The open transaction; `None` at least once.
    transactions: Option<Transactions>,
    /// Records the target refused in an earlier run's transaction (exactly once), by source
    /// topic and partition: handled by `on_error` when reached, never produced.
    refused: HashMap<(String, i32), RefusedRecord>,
    transactions_committed: IntCounter,
    transactions_aborted: IntCounter,
    /// Writes MM2 offset syncs; `None` when the flow emits none.
    syncs: Option<OffsetSyncWriter>,
    /// The flow's filters and transforms with this task's instances; `None` without any.
    chain: Option<RecordChain>,
    /// The chain's generation when last looked at; a change means a plugin was swapped.
    chain_generation: u64,
    /// Calls and traps of each chain stage already reported.
    chain_calls_seen: Vec<CallsSeen>,
    /// The packed input of the chain, reused between batches.
    packed: PackedBatch,
    /// Ids of dead-letter records in flight.
    next_dead_letter: usize,
    partitions_halted: IntGauge,
    /// The flow's gauge of open circuit breakers, and this task's share of it.
    breakers_open: IntGauge,
    breakers_reported: i64,
    /// Wall-clock milliseconds at the start of this loop turn (record age at poll).
    turn_ms: i64,
}

impl Worker {
    fn start(
        context: &Arc<TaskContext>,
        task: u32,
        stop: &Arc<AtomicBool>,
    ) -> Result<Worker, TaskError> {
        let client_error = |source| TaskError::Client {
            task,
            source: Box::new(source),
        };
        let exactly_once = context.flow.exactly_once;
        let consumer: BaseConsumer<SourceContext> =
            crate::kafka::source_consumer(&context.source, exactly_once)
                .create_with_context(SourceContext)
                .map_err(client_error)?;
        let transactional_id = exactly_once.then(|| transactional_id(&context.flow.group_id, task));
        let producer: BaseProducer<AckContext> =
            crate::kafka::target_producer(&context.target, transactional_id.as_deref())
                .create_with_context(AckContext {
                    positions_topic: context.positions_topic.clone(),
                    buffer: Mutex::new(AckBuffer::default()),
                })
                .map_err(client_error)?;
        let flow = context.flow.id.to_string();
        let metrics = &context.metrics;
        let syncs = match &context.offset_syncs {
            None => None,
            Some(location) => Some(OffsetSyncWriter::new(
                location.topic.clone(),
                crate::kafka::offset_sync_producer(&location.cluster)
                    .create_with_context(OffsetSyncContext::default())
                    .map_err(client_error)?,
                metrics.offset_syncs_written.with_label_values(&[&flow]),
            )),
        };
        let events = Events::new(metrics, &context.flow.id);
        let transactions = metrics.transactions.clone();
        let mut worker = Worker {
            task,
            stop: Arc::clone(stop),
            catalog: context.catalog.clone(),
            start_positions: HashMap::new(),
            table: PartitionTable::default(),
            in_flight: 0,
            positions_dirty: false,
            scratch: Vec::with_capacity(BATCH),
            latency: metrics.replication_latency.with_label_values(&[&flow]),
            in_flight_gauge: metrics.records_in_flight.with_label_values(&[&flow]),
            in_flight_reported: 0,
            delivery_errors: metrics.delivery_errors.with_label_values(&[&flow]),
            positions_stored: metrics.positions_stored.with_label_values(&[&flow]),
            transactions: exactly_once.then(|| {
                Transactions::new(
                    context.flow.transaction_interval,
                    context.flow.transaction_records,
                )
            }),
            refused: if exactly_once {
                context.refused.take()
            } else {
                HashMap::new()
            },
            transactions_committed: transactions.with_label_values(&[&flow, "committed"]),
            transactions_aborted: transactions.with_label_values(&[&flow, "aborted"]),
            syncs,
            chain: context.chain.as_ref().map(ChainSpec::start),
            chain_generation: 0,
            chain_calls_seen: Vec::new(),
            packed: PackedBatch::default(),
            next_dead_letter: 0,
            partitions_halted: events.halted_gauge(),
            breakers_open: events.breakers_gauge(),
            breakers_reported: 0,
            turn_ms: 0,
            events,
            consumer: Arc::new(consumer),
            producer,
            context: Arc::clone(context),
        };
        if exactly_once {
            // Fence the previous owner before reading the positions: only then are they final.
            if let Err(error) = worker.begin_transactions() {
                context
                    .refused
                    .give_back(std::mem::take(&mut worker.refused));
                return Err(error);
            }
        }
        worker.start_positions = context
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .read_to_end_unless_stopped(POSITIONS_TIMEOUT, stop)
            .map_err(|source| match source {
                PositionsError::Stopped { .. } => TaskError::Stopped { task },
                source => TaskError::Positions { task, source },
            })?
            .clone();
        tracing::info!(task, exactly_once, "Task started.");
        Ok(worker)
    }

    /// Copies records until `stop` is set or an error occurs.
    fn run(&mut self, stop: &AtomicBool) -> Result<(), TaskError> {
        self.catalog.mark_changed();
        let mut last_store = Instant::now();
        let mut last_delayed_syncs = Instant::now();
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
            self.turn_ms = crate::metrics::now_ms();
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
                        self.consumer_error(error)?;
                        break;
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
            if let Some(transactions) = &self.transactions {
                if transactions.due() {
                    self.commit_due_transaction()?;
                }
            } else if last_store.elapsed() >= self.context.flow.commit_interval {
                self.store_positions(DRAIN_TIMEOUT)?;
                last_store = Instant::now();
                last_delayed_syncs = last_store;
            } else if last_delayed_syncs.elapsed() >= DELAYED_SYNCS_INTERVAL {
                self.send_delayed_syncs();
                last_delayed_syncs = Instant::now();
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
        let Some(remote) = self.track_produced(message)? else {
            return Ok(());
        };
        self.produce(
            message,
            &remote,
            message.key(),
            message.payload(),
            message.timestamp().to_millis(),
            message.headers().map(|headers| headers.detach()),
        )
    }

    /// Records that `message` is handed on (produced, dropped or dead-lettered) and returns
    /// its remote topic: one lookup in the partition table. `None` when its partition is
    /// halted (the target refused an earlier record of it in this loop turn): the record is
    /// left alone, produced again when the partition resumes.
    fn track_produced(
        &mut self,
        message: &BorrowedMessage<'_>,
    ) -> Result<Option<Arc<str>>, TaskError> {
        let (offset, partition) = (message.offset(), message.partition());
        let Some(found) = self.table.get_mut(message.topic(), partition) else {
            return Err(self.unowned(message.topic(), partition));
        };
        if found.state.halted {
            return Ok(None);
        }
        found
            .state
            .tracker
            .produced(offset)
            .map_err(|source| TaskError::Track {
                topic: found.source.to_string(),
                partition,
                source,
            })?;
        found.state.next_offset = Some(offset + 1);
        found
            .state
            .polled(message.timestamp().to_millis(), self.turn_ms);
        if let Some(transactions) = &mut self.transactions {
            transactions.handed_on();
        }
        Ok(Some(Arc::clone(found.remote)))
    }

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
            BaseRecord::with_opaque_to(remote, Opaque::Record(offset).encode())
                .partition(partition);
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
        let at = At {
            topic: message.topic(),
            partition,
            offset,
        };
        self.send(record, at)
    }

    /// Hands `record` (standing for the source record `at`) to the producer, serving delivery
    /// reports while its queue is full. A record the producer refuses for good goes through
    /// the flow's error policy (`refusals.rs`).
    fn send(
        &mut self,
        mut record: BaseRecord<'_, [u8], [u8], usize>,
        at: At<'_>,
    ) -> Result<(), TaskError> {
        if !self.refused.is_empty()
            && let Some(refused) = self.refused_earlier(at)
        {
            let parts = RecordParts {
                key: record.key,
                value: record.payload,
                timestamp: record.timestamp,
                headers: record.headers,
            };
            return self.refused_at_send(refused.dead_letter, at, parts, refused.error);
        }
        self.in_flight += 1;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    if self.stop.load(Ordering::Acquire) {
                        // Not produced: the record's position stays before it.
                        self.in_flight = self.in_flight.saturating_sub(1);
                        return Err(TaskError::Stopped { task: self.task });
                    }
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                    self.process_acks()?;
                }
                Err((source, returned)) if refusals::is_refusal(&source) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    let parts = RecordParts {
                        key: returned.key,
                        value: returned.payload,
                        timestamp: returned.timestamp,
                        headers: returned.headers,
                    };
                    let opaque = returned.delivery_opaque;
                    let dead_letter = match Opaque::decode(opaque) {
                        Opaque::Record(_) => false,
                        Opaque::DeadLetter(_) => {
                            self.producer
                                .context()
                                .buffer()
                                .dead_letters
                                .remove(&opaque);
                            true
                        }
                        Opaque::Position => return Ok(()),
                    };
                    return self.refused_at_send(dead_letter, at, parts, source);
                }
                Err((source, returned)) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    return Err(TaskError::Produce {
                        source_topic: at.topic.to_owned(),
                        target_topic: returned.topic.to_owned(),
                        partition: at.partition,
                        offset: at.offset,
                        source: Box::new(source),
                    });
                }
            }
        }
    }

    /// The refusal remembered for the source record `at` (exactly once), taken: the target
    /// refused it in an earlier run's transaction.
    fn refused_earlier(&mut self, at: At<'_>) -> Option<RefusedRecord> {
        let key = (at.topic.to_owned(), at.partition);
        match self.refused.get(&key) {
            Some(refused) if refused.offset == at.offset => self.refused.remove(&key),
            _ => None,
        }
    }

    /// The error for a record of a partition the task does not track.
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
            let mut buffer = self.producer.context().buffer();
            std::mem::swap(&mut buffer.acks, &mut self.scratch);
            if !buffer.position_errors.is_empty() {
                for error in buffer.position_errors.drain(..) {
                    tracing::warn!(%error, "Storing a position failed; it is stored again.");
                }
                self.positions_dirty = true;
            }
        }
        let now_ms = crate::metrics::now_ms();
        let mut failure = None;
        let mut refusals = Vec::new();
        let mut acknowledged = 0;
        for ack in self.scratch.drain(..) {
            self.in_flight = self.in_flight.saturating_sub(1);
            let Some(topic) = self.table.topic_mut(ack.index) else {
                continue;
            };
            let Some(state) = topic.partitions.get_mut(&ack.partition) else {
                continue;
            };
            if state.ignores_report(ack.offset) {
                // Halted at or before it: no longer tracked, produced again on resume.
                continue;
            }
            if let Some(error) = ack.error {
                if refusals::is_refusal(&error) {
                    refusals.push(Refusal {
                        index: ack.index,
                        partition: ack.partition,
                        offset: ack.offset,
                        dead_letter: ack.dead_letter,
                        error,
                    });
                    continue;
                }
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
                let urgent = state.sync.update(ack.offset, ack.downstream);
                syncs.queue.acknowledged(
                    ack.index,
                    ack.partition,
                    ack.offset,
                    ack.downstream,
                    urgent,
                );
            }
            acknowledged += 1;
            topic.records.inc();
            topic.bytes.inc_by(ack.bytes as u64);
            state.replicated(ack.timestamp, ack.value_bytes, now_ms);
            if let Some(timestamp) = ack.timestamp {
                self.latency
                    .observe((now_ms - timestamp).max(0) as f64 / 1000.0);
            }
        }
        faults::acknowledged(acknowledged, &self.producer);
        if let Some(syncs) = &mut self.syncs {
            let table = &self.table;
            syncs.send_pending(|index| table.topic(index).map(|topic| &*topic.source));
        }
        if self.transactions.is_some() {
            // The transaction is poisoned: remember the refused records for the next run.
            for refusal in refusals {
                let Some(topic) = self.table.topic(refusal.index) else {
                    continue;
                };
                self.context.refused.remember(
                    &topic.source,
                    refusal.partition,
                    RefusedRecord {
                        offset: refusal.offset,
                        dead_letter: refusal.dead_letter,
                        error: refusal.error.clone(),
                    },
                );
                failure.get_or_insert(TaskError::RefusedInTransaction {
                    task: self.task,
                    topic: topic.source.to_string(),
                    partition: refusal.partition,
                    offset: refusal.offset,
                    source: Box::new(refusal.error),
                });
            }
        } else {
            for refusal in refusals {
                if let Err(error) = self.apply_refusal(refusal, None) {
                    failure.get_or_insert(error);
                }
            }
        }
        // The gauge is per flow and shared by its tasks: add this task's change, don't overwrite.
        self.in_flight_gauge
            .add(self.in_flight as i64 - self.in_flight_reported);
        self.in_flight_reported = self.in_flight as i64;
        failure.map_or(Ok(()), Err)
    }

    /// Follows the catalog: assigns the partitions this task owns that are not yet assigned and
    /// unassigns those that left the catalog.
    fn update_assignment(&mut self) -> Result<(), TaskError> {
        let catalog = Arc::clone(&self.catalog.borrow_and_update());
        let tasks = self.context.task_count;
        let latest = self.context.start_latest;
        let mut assign = TopicPartitionList::new();
        let mut grown_remotes: Vec<Arc<str>> = Vec::new();
        // Partitions whose source log started again: (topic index, partition, new start).
        let mut rewound: Vec<(u32, i32, i64)> = Vec::new();
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
            let index = self.topic_index(&mirrored.source, &mirrored.remote);
            let Some(topic) = self.table.topic_mut(index) else {
                continue;
            };
            for partition in partitions {
                let state = topic
                    .partitions
                    .entry(*partition)
                    .or_insert_with(|| PartitionState::new(self.context.flow.offset_lag_max));
                if state.assigned() {
                    continue;
                }
                let stored = self
                    .start_positions
                    .get(&(mirrored.source.to_string(), *partition));
                // Where this task stopped (the topic left the catalog and came back), else the
                // stored position: checked against the source log either way.
                let next = state.next_offset.or(stored.map(|last| last + 1));
                let start = match next {
                    Some(next) => {
                        let resume = checked_resume(
                            &self.consumer,
                            &self.events,
                            &mirrored.source,
                            *partition,
                            next,
                        );
                        if state.next_offset.is_some_and(|next| resume < next) {
                            rewound.push((index, *partition, resume));
                        } else {
                            state.next_offset = Some(resume);
                        }
                        Offset::Offset(resume)
                    }
                    None if latest => Offset::End,
                    None => Offset::Beginning,
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
                let metrics = &self.context.metrics;
                state.assign(
                    metrics.partition_lag_series(self.events.flow(), &mirrored.source, *partition),
                    metrics.mm2.source_series(
                        self.context.flow.source.as_str(),
                        self.context.flow.target.as_str(),
                        &mirrored.remote,
                        *partition,
                    ),
                );
                if grown_remotes.last() != Some(&mirrored.remote) {
                    grown_remotes.push(Arc::clone(&mirrored.remote));
                }
                tracing::info!(topic = %mirrored.source, partition, ?start, "Partition assigned.");
            }
        }
        let mut unassign = TopicPartitionList::new();
        for topic in self.table.topics_mut() {
            let wanted_partitions = wanted.get(topic.source.as_ref());
            for (partition, state) in &mut topic.partitions {
                if state.assigned()
                    && !wanted_partitions.is_some_and(|list| list.contains(partition))
                {
                    unassign.add_partition(&topic.source, *partition);
                    state.unassign();
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
        for (index, partition, start) in rewound {
            self.restart_log(index, partition, start)?;
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

    /// Handles an error the source consumer reported: an out-of-range fetch moves the
    /// partitions concerned in place ([`Worker::reset_out_of_range`]); a transport error of a
    /// source broker (restarting, unreachable, leadership moving) is retried by librdkafka
    /// itself, so the loop goes on; any other error stops the task.
    fn consumer_error(&mut self, error: KafkaError) -> Result<(), TaskError> {
        use RDKafkaErrorCode as Code;
        match error.rdkafka_error_code() {
            Some(Code::AutoOffsetReset) => self.reset_out_of_range(error),
            Some(
                Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::NetworkException
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::PreferredLeaderNotAvailable,
            ) => {
                tracing::warn!(%error, "The source reported a transient error; fetching goes on.");
                Ok(())
            }
            _ => Err(TaskError::Consume {
                task: self.task,
                source: Box::new(error),
            }),
        }
    }

    /// The source refused a fetch as out of range (`auto.offset.reset=error`: librdkafka never
    /// moves a position by itself). Each assigned partition whose next offset the log no
    /// longer holds moves as at a resume ([`checked_resume`]), in place (assigned again at the
    /// new offset). When none does, the
    /// error is not understood and stops the task (it resumes with back-off).
    fn reset_out_of_range(&mut self, error: KafkaError) -> Result<(), TaskError> {
        let mut moves: Vec<(u32, i32, Arc<str>, i64, i64)> = Vec::new();
        for (index, topic) in (0u32..).zip(self.table.topics()) {
            for (partition, state) in &topic.partitions {
                let Some(next) = state.next_offset.filter(|_| state.assigned()) else {
                    continue;
                };
                let resume = checked_resume(
                    &self.consumer,
                    &self.events,
                    &topic.source,
                    *partition,
                    next,
                );
                if resume != next {
                    moves.push((index, *partition, Arc::clone(&topic.source), next, resume));
                }
            }
        }
        if moves.is_empty() {
            return Err(TaskError::Consume {
                task: self.task,
                source: Box::new(error),
            });
        }
        for (index, partition, topic, next, resume) in moves {
            if resume < next {
                self.restart_log(index, partition, resume)?;
            } else if let Some(state) = self
                .table
                .topic_mut(index)
                .and_then(|topic| topic.partitions.get_mut(&partition))
            {
                state.next_offset = Some(resume);
            }
            // A seek is refused in the partition's error state; assigning it again is not.
            let mut list = TopicPartitionList::new();
            list.add_partition(&topic, partition);
            let assign_error = |source| TaskError::Assign {
                task: self.task,
                source: Box::new(source),
            };
            self.consumer
                .incremental_unassign(&list)
                .map_err(assign_error)?;
            let mut list = TopicPartitionList::new();
            list.add_partition_offset(&topic, partition, Offset::Offset(resume))
                .map_err(assign_error)?;
            self.consumer
                .incremental_assign(&list)
                .map_err(assign_error)?;
        }
        Ok(())
    }

    /// The source log of `partition` of topic `index` started again at `start`: waits until
    /// the target acknowledged every record of the old log in flight (bounded by the drain
    /// timeout), then tracks the partition afresh.
    fn restart_log(&mut self, index: u32, partition: i32, start: i64) -> Result<(), TaskError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let Some(state) = self
                .table
                .topic_mut(index)
                .and_then(|topic| topic.partitions.get_mut(&partition))
            else {
                return Ok(());
            };
            let in_flight = state.tracker.in_flight();
            if in_flight == 0 {
                state.restart_log(self.context.flow.offset_lag_max, start);
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TaskError::Rewound {
                    partition,
                    in_flight,
                });
            }
            self.producer.poll(Duration::from_millis(10));
            self.process_acks()?;
        }
    }

    fn topic_index(&mut self, source: &Arc<str>, remote: &Arc<str>) -> u32 {
        if let Some(index) = self.table.index(source) {
            // A policy swapped with `force` renamed the remote topic: later records go to the
            // new name; deliveries still in flight to the old one keep their mapping.
            if let Some(topic) = self.table.topic_mut(index)
                && topic.remote != *remote
            {
                tracing::warn!(topic = %source, from = %topic.remote, to = %remote,
                    "Remote topic renamed by a forced policy swap; copying on under the new name.");
                topic.remote = Arc::clone(remote);
                for state in topic.partitions.values_mut() {
                    // The next record starts a new offset-sync run in the new topic.
                    state.sync = SyncRule::new(self.context.flow.offset_lag_max);
                }
                self.route_deliveries(remote, index);
            }
            return index;
        }
        let metrics = &self.context.metrics;
        let flow = self.events.flow();
        let index = self.table.add(TopicState {
            source: Arc::clone(source),
            remote: Arc::clone(remote),
            partitions: HashMap::new(),
            records: metrics
                .records_replicated
                .with_label_values(&[flow, source.as_ref()]),
            bytes: metrics
                .bytes_replicated
                .with_label_values(&[flow, source.as_ref()]),
            dropped: metrics
                .records_dropped
                .with_label_values(&[flow, source.as_ref()]),
        });
        self.route_deliveries(remote, index);
        index
    }

    /// Delivery reports for `remote` belong to topic `index`.
    fn route_deliveries(&self, remote: &Arc<str>, index: u32) {
        self.producer
            .context()
            .buffer()
            .indexes
            .insert(Arc::clone(remote), index);
    }

    fn update_lag(&self) {
        for topic in self.table.topics() {
            for (partition, state) in &topic.partitions {
                let high = crate::kafka::ffi::cached_high_watermark(
                    self.consumer.client(),
                    &topic.source,
                    *partition,
                );
                tracing::debug!(topic = %topic.source, partition, next = ?state.next_offset,
                    replicated = ?state.tracker.last_replicated(), ?high, in_flight = self.in_flight,
                    assigned = state.assigned(), "Partition progress.");
                if let Some(high) = high {
                    let replicated = state.tracker.last_replicated().map_or(0, |last| last + 1);
                    state.set_lag((high - replicated).max(0));
                }
            }
        }
    }

    /// Waits for in-flight records, then stores positions and waits for those writes; exactly
    /// once, commits the open transaction after a `clean` run and aborts it otherwise.
    fn drain(&mut self, clean: bool) {
        if self.transactions.is_some() {
            self.end_transactions(clean);
            self.context
                .refused
                .give_back(std::mem::take(&mut self.refused));
        } else {
            self.drain_at_least_once();
        }
        self.leave();
    }

    /// Waits for in-flight records, then stores positions and waits for those writes (with a
    /// fresh producer when the task's producer hit a fatal error).
    fn drain_at_least_once(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.in_flight > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::from_millis(10));
            if let Err(error) = self.process_acks() {
                tracing::warn!(error = %crate::error_chain(&error), "Delivery failed while draining.");
            }
        }
        self.replace_dead_producer();
        let syncs_timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(POSITIONS_FLUSH_MIN);
        if let Err(error) = self.store_positions(syncs_timeout) {
            tracing::warn!(error = %crate::error_chain(&error),
                "Positions are not stored past unacknowledged offset syncs; the next owner re-copies the difference.");
        }
        // Position writes get what is left of the drain deadline, and at least 2 s.
        let flush_timeout = deadline
            .saturating_duration_since(Instant::now())
            .max(POSITIONS_FLUSH_MIN);
        if let Err(error) = self.producer.flush(flush_timeout) {
            tracing::warn!(%error, "Positions may not all be stored; the next owner re-copies the difference.");
        }
        if let Err(error) = self.process_acks() {
            tracing::warn!(error = %crate::error_chain(&error), "Delivery failed while draining.");
        }
    }

    /// Replaces a producer that hit a fatal error (it refuses every write, positions too) with a
    /// fresh one, so that the positions acknowledged before the error are still stored; they
    /// are all written again (`positions_dirty`). At least once only: a fenced transactional
    /// producer must stay silent.
    fn replace_dead_producer(&mut self) {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return;
        };
        let fresh = crate::kafka::target_producer(&self.context.target, None).create_with_context(
            AckContext {
                positions_topic: self.context.positions_topic.clone(),
                buffer: Mutex::new(AckBuffer::default()),
            },
        );
        match fresh {
            Ok(fresh) => {
                tracing::warn!(task = self.task, %reason, ?code,
                    "The target producer hit a fatal error; positions are stored with a fresh producer.");
                self.producer = fresh;
                self.positions_dirty = true;
            }
            Err(error) => {
                tracing::warn!(task = self.task, %reason, %error,
                    "The target producer hit a fatal error and a fresh one cannot be created; the next owner re-copies what was not stored.");
            }
        }
    }

    /// Takes this task's share out of the flow's gauges and halts as it stops.
    fn leave(&mut self) {
        // Whatever was not acknowledged leaves this task; take it out of the flow's gauge.
        self.in_flight_gauge.sub(self.in_flight_reported);
        self.in_flight_reported = 0;
        // Halted partitions leave this task too; their next owner halts them again if the
        // plugin still fails.
        self.partitions_halted
            .sub(i64::try_from(self.table.halted_count()).unwrap_or(0));
        for topic in self.table.topics() {
            for (partition, state) in &topic.partitions {
                if state.halted {
                    self.context.halts.cleared(&topic.source, *partition);
                }
            }
        }
        // And so do its open breakers: the chain ends with the task.
        Events::breakers_open(&self.breakers_open, 0, &mut self.breakers_reported);
        let positions_failed = self.positions_dirty;
        tracing::info!(
            task = self.task,
            in_flight = self.in_flight,
            positions_failed,
            "Task drained."
        );
    }
}
