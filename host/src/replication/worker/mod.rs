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
//! Files: this one holds the task's start and its loop (consume, hand on, produce);
//! `assign.rs` follows the catalog (partitions assigned and unassigned), `acks.rs` applies
//! delivery reports, `source_errors.rs` handles what the source consumer reports (out of range,
//! a log that started again), `drain.rs` stops the task, `callbacks.rs` the rdkafka callbacks,
//! `partitions.rs` the partition table, `dispositions.rs` what happens to a record after the
//! chain answered (and the error policy), `refusals.rs` records the target refuses for good (the
//! same policy), `offset_syncs.rs` MM2's offset syncs, `store.rs` storing and resuming from
//! positions, `transactions.rs` exactly once, `faults.rs` fault injection for tests (debug
//! builds).

mod acks;
mod assign;
mod callbacks;
mod dispositions;
mod drain;
mod faults;
mod offset_syncs;
mod partitions;
mod refusals;
mod source_errors;
mod store;
mod transactions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus::{Histogram, IntCounter, IntGauge};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};

use super::TaskContext;
use super::catalog::Catalog;
use super::positions::PositionsError;
use super::supervisor::{Backoff, Supervised};
use super::tracker::TrackError;
use crate::events::{At, CallsSeen, Events};
use crate::kafka::WakingProducer;
use crate::kafka::ffi::QueueHook;
use crate::plugins::{ChainSpec, PackedBatch, RecordChain};
use callbacks::{Ack, AckBuffer, AckContext, OffsetSyncContext, Opaque, SourceContext};
use offset_syncs::OffsetSyncWriter;
use partitions::{PartitionState, PartitionTable};
use refusals::RecordParts;
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
/// The longest a loop turn with records in flight waits for a delivery report (or, with room in
/// flight, for a record); either ends the wait at once. Bounds how late the loop's timed duties
/// (storing positions, committing a transaction, the lag gauge) can be while nothing arrives.
const IDLE_WAIT: Duration = Duration::from_millis(5);
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

/// The target producer of a task of `context`'s flow, its delivery reports collected for the
/// worker ([`AckContext`]); transactional with a `transactional_id` (exactly once).
fn task_producer(
    context: &TaskContext,
    transactional_id: Option<&str>,
) -> KafkaResult<WakingProducer<AckContext>> {
    crate::kafka::target_producer(&context.target, transactional_id)
        .create_with_context(AckContext {
            positions_topic: context.positions_topic.clone(),
            buffer: Mutex::new(AckBuffer::default()),
        })
        .and_then(WakingProducer::new)
}

struct Worker {
    context: Arc<TaskContext>,
    task: u32,
    /// Set when the worker is asked to stop (looked at by the loop and while the producer's
    /// queue is full).
    stop: Arc<AtomicBool>,
    events: Events,
    /// The producer's wake-up hooked on the consumer's queue, so that a wait for delivery
    /// reports ends when records arrive too. Declared before `consumer`, so dropped first.
    records_arrived: QueueHook,
    consumer: Arc<BaseConsumer<SourceContext>>,
    producer: WakingProducer<AckContext>,
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
        let producer = task_producer(context, transactional_id.as_deref()).map_err(client_error)?;
        let records_arrived = QueueHook::consumer(consumer.client(), producer.wakeup())
            .ok_or_else(|| {
                client_error(KafkaError::ClientCreation(
                    "the source consumer has no consumer queue".to_owned(),
                ))
            })?;
        let flow = context.flow.id.to_string();
        let metrics = &context.metrics;
        let syncs = match &context.offset_syncs {
            None => None,
            Some(location) => Some(OffsetSyncWriter::new(
                location.topic.clone(),
                crate::kafka::offset_sync_producer(&location.cluster)
                    .create_with_context(OffsetSyncContext::default())
                    .and_then(WakingProducer::new)
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
            records_arrived,
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
            // Serve delivery reports; block briefly only when there is nothing else to do: at
            // `max_in_flight`, until a report arrives; with nothing to consume, until a report
            // or a record arrives (a record waiting out the wait was up to 5 ms late on the
            // target, docs/performance.md 6h).
            if self.in_flight >= max_in_flight {
                self.producer.poll(IDLE_WAIT);
            } else if consumed == 0 && self.in_flight > 0 {
                self.producer.poll_or(IDLE_WAIT, &self.records_arrived);
            } else {
                self.producer.poll(Duration::ZERO);
            }
            self.process_acks()?;
            if let Some(transactions) = &self.transactions {
                if transactions.due(|| self.behind()) {
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

    /// Every partition of the task with its high watermark as librdkafka last saw it in a
    /// fetch response (no request is sent; `None` before the first fetch).
    fn partitions_with_high_watermark(
        &self,
    ) -> impl Iterator<Item = (&str, i32, &PartitionState, Option<i64>)> + '_ {
        self.table.topics().iter().flat_map(move |topic| {
            topic.partitions.iter().map(move |(partition, state)| {
                let high = crate::kafka::ffi::cached_high_watermark(
                    self.consumer.client(),
                    &topic.source,
                    *partition,
                );
                (&*topic.source, *partition, state, high)
            })
        })
    }

    /// The records this task has yet to read: its partitions' high watermarks less their next
    /// offsets, summed. Exactly once this counts an open source transaction's records too,
    /// which the task cannot read yet; the transaction it stretches is still bounded by
    /// `BEHIND_MAX_AGE`.
    fn behind(&self) -> u64 {
        self.partitions_with_high_watermark()
            .filter_map(|(_, _, state, high)| Some(high? - state.next_offset?))
            .map(|behind| u64::try_from(behind).unwrap_or(0))
            .sum()
    }

    fn update_lag(&self) {
        for (topic, partition, state, high) in self.partitions_with_high_watermark() {
            tracing::debug!(topic, partition, next = ?state.next_offset,
                replicated = ?state.tracker.last_replicated(), ?high, in_flight = self.in_flight,
                assigned = state.assigned(), "Partition progress.");
            if let Some(high) = high {
                let replicated = state.tracker.last_replicated().map_or(0, |last| last + 1);
                state.set_lag((high - replicated).max(0));
            }
        }
    }
}
