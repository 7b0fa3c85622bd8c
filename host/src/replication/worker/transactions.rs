//! Exactly-once: one task's target transactions (`exactly_once = true`).
//!
//! Each task has one transactional producer whose `transactional.id` is derived from the flow's
//! group and the task number ([`transactional_id`]), the same on every process. A new owner's
//! `init_transactions` therefore fences the previous owner at once: its open transaction is
//! aborted, and nothing it writes afterwards becomes visible. The task's records, its
//! dead-letter writes and its positions (MM2's format, `store.rs`) go into the same
//! transaction, so a position is stored exactly when the records before it become visible.
//!
//! A transaction is committed every `transaction_interval` or `transaction_records` records
//! handed on, whichever comes first ([`Worker::commit_transaction`]); but a task that is behind
//! its source (more records to read than its transaction holds) lets the transaction grow up to
//! [`BEHIND_MAX_AGE`] before it commits by age ([`Transactions::due`]): each commit stalls the
//! task's copy for its round trips, so catching up in small transactions would copy at a
//! fraction of at-least-once's rate, while a caught-up task keeps the short interval's latency.
//! The commit itself:
//! 1. flush: every record of the transaction is acknowledged, and the acknowledgements move the
//!    partitions' trackers and queue their offset syncs;
//! 2. the offset syncs are written and acknowledged (on the source cluster by default, outside
//!    the transaction, so before the commit: a sync of an aborted transaction points at records
//!    no `read_committed` reader sees, and translates to the next committed copy), then the
//!    positions go into the transaction;
//! 3. commit, and begin the next transaction.
//!
//! Any error in a transaction aborts it and restarts the task from the committed positions
//! (the supervisor's back-off; the aborted records are copied again, once). A fatal producer
//! error (fenced: another process now owns the task) stops writing at once; the worker then
//! waits for its lease to be revoked ([`FENCED_WAIT`]) before it may start again.
//!
//! A record the target refuses for good poisons the transaction it is in: it is remembered in
//! the flow's [`RefusedRecords`], the transaction is aborted, and when the restarted task
//! reaches that record again it applies the flow's `on_error` policy to it without producing it
//! (`refusals.rs`), as if the producer had refused it at send.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;

use super::{DRAIN_TIMEOUT, POSITIONS_FLUSH_MIN, TaskError, Worker};

/// How old a transaction of a task that is behind its source may grow before it is committed
/// by age (never less than `transaction_interval`): 1 s, so a task catching up still makes
/// its records visible at least once a second, far within the transaction timeout.
pub(super) const BEHIND_MAX_AGE: Duration = Duration::from_secs(1);
/// How often a running task's commit, waiting for its records, looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// How long `init_transactions` (fencing the previous owner) may take.
pub(super) const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fenced worker waits for its lease to be revoked before it may start again (and
/// fence whoever fenced it): twice the lease session timeout.
pub(super) const FENCED_WAIT: Duration = Duration::from_secs(12);

/// The `transactional.id` of task `task` of the flow whose lease group is `group_id`.
pub(crate) fn transactional_id(group_id: &str, task: u32) -> String {
    format!("{group_id}.task-{task}")
}

/// The open transaction of one task.
pub(super) struct Transactions {
    interval: Duration,
    max_records: usize,
    /// When the open transaction began.
    opened: Instant,
    /// Records handed on (produced, dropped, skipped, dead-lettered) in the open transaction.
    records: usize,
}

impl Transactions {
    /// The state of a task whose first transaction just began.
    pub(super) fn new(interval: Duration, max_records: usize) -> Transactions {
        Transactions {
            interval,
            max_records,
            opened: Instant::now(),
            records: 0,
        }
    }

    /// Counts one record handed on in the open transaction.
    pub(super) fn handed_on(&mut self) {
        self.records += 1;
    }

    /// Whether the open transaction is due for commit: it holds `transaction_records`; or it
    /// holds records, is `transaction_interval` old, and either the task is not behind (what
    /// `behind` counts, the records it has yet to read, is no more than the transaction holds)
    /// or it is [`BEHIND_MAX_AGE`] old. `behind` is asked only when the interval has passed.
    pub(super) fn due(&self, behind: impl FnOnce() -> u64) -> bool {
        if self.records >= self.max_records {
            return true;
        }
        if self.records == 0 {
            return false;
        }
        let age = self.opened.elapsed();
        age >= self.interval && (age >= BEHIND_MAX_AGE || behind() <= self.records as u64)
    }

    fn began(&mut self) {
        self.opened = Instant::now();
        self.records = 0;
    }
}

/// A record the target refused for good inside a transaction, remembered across the task's
/// restart: its source offset, whether it was its dead-letter write, and the error.
#[derive(Clone)]
pub(crate) struct RefusedRecord {
    pub(super) offset: i64,
    pub(super) dead_letter: bool,
    pub(super) error: KafkaError,
}

/// The records refused inside a transaction, by source topic and partition, shared by a flow's
/// tasks in this process (a task's worker restarts with a fresh state, this outlives it).
#[derive(Default)]
pub(crate) struct RefusedRecords(Mutex<HashMap<(String, i32), RefusedRecord>>);

impl RefusedRecords {
    /// Remembers `record` of `topic`/`partition`, unless an earlier record of it is remembered.
    pub(super) fn remember(&self, topic: &str, partition: i32, record: RefusedRecord) {
        let mut records = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = records
            .entry((topic.to_owned(), partition))
            .or_insert_with(|| record.clone());
        if record.offset < slot.offset {
            *slot = record;
        }
    }

    /// Takes every remembered record (a starting task takes them over).
    pub(super) fn take(&self) -> HashMap<(String, i32), RefusedRecord> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Gives back the records a stopping task did not reach.
    pub(super) fn give_back(&self, records: HashMap<(String, i32), RefusedRecord>) {
        let mut remembered = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, record) in records {
            remembered.entry(key).or_insert(record);
        }
    }
}

impl Worker {
    /// Fences the previous owner of the task and begins the first transaction. Called before
    /// the task reads its positions: only after fencing are they final (the previous owner's
    /// open transaction is aborted and can no longer commit).
    pub(super) fn begin_transactions(&mut self) -> Result<(), TaskError> {
        let producer = &self.producer;
        crate::kafka::until_stopped(Instant::now() + TRANSACTION_TIMEOUT, &self.stop, |slice| {
            producer.init_transactions(slice)
        })
        .ok_or(TaskError::Stopped { task: self.task })?
        .map_err(|source| self.transaction_error("initialising transactions", source))?;
        self.begin_transaction()
    }

    /// Begins the task's next transaction.
    fn begin_transaction(&mut self) -> Result<(), TaskError> {
        self.producer
            .begin_transaction()
            .map_err(|source| self.transaction_error("beginning a transaction", source))?;
        if let Some(transactions) = &mut self.transactions {
            transactions.began();
        }
        Ok(())
    }

    /// Commits the due transaction of a running task, as [`Worker::commit_transaction`] within
    /// [`DRAIN_TIMEOUT`]; but when the task is asked to stop while the transaction's records
    /// are still unacknowledged (the target is slow or away), it stops waiting at once and
    /// leaves the transaction open: the drain then commits it within its own budget, or aborts
    /// it, so that a stop is bounded whatever the commit was waiting for.
    pub(super) fn commit_due_transaction(&mut self) -> Result<(), TaskError> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.producer.flush(left.min(STOP_CHECK)) {
                Ok(()) => break,
                Err(_) if self.stop.load(Ordering::Acquire) => return Ok(()),
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) if !left.is_zero() => {}
                Err(source) => {
                    return Err(self.transaction_error("flushing the transaction", source));
                }
            }
        }
        self.commit_flushed(deadline)
    }

    /// Commits the open transaction with the positions it reached, and begins the next one,
    /// within `budget` (at least [`POSITIONS_FLUSH_MIN`] for the commit itself).
    pub(super) fn commit_transaction(&mut self, budget: Duration) -> Result<(), TaskError> {
        let deadline = Instant::now() + budget;
        self.producer
            .flush(budget)
            .map_err(|source| self.transaction_error("flushing the transaction", source))?;
        self.commit_flushed(deadline)
    }

    /// The rest of a commit once every record of the transaction is acknowledged: the
    /// acknowledgements applied, the offset syncs and positions written, the commit, the next
    /// transaction begun; each step gets what is left until `deadline`, and at least
    /// [`POSITIONS_FLUSH_MIN`].
    fn commit_flushed(&mut self, deadline: Instant) -> Result<(), TaskError> {
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(POSITIONS_FLUSH_MIN)
        };
        self.process_acks()?;
        self.store_positions(left())?;
        self.producer
            .commit_transaction(left())
            .map_err(|source| self.transaction_error("committing a transaction", source))?;
        self.transactions_committed.inc();
        self.begin_transaction()
    }

    /// Ends the task's transactions when it stops: commits the open one after a clean run,
    /// aborts it after an error (its records are copied again by the task's next run, once).
    /// Bounded like the at-least-once drain: [`DRAIN_TIMEOUT`] for the commit,
    /// [`POSITIONS_FLUSH_MIN`] for an abort.
    pub(super) fn end_transactions(&mut self, clean: bool) {
        if clean && let Some((code, reason)) = self.producer.client().fatal_error() {
            // The run ended cleanly (its lease revoked) after a write of it found the producer
            // fenced: nobody reported it yet (a failed run is reported by the supervisor).
            self.events
                .task_fenced(self.task, &format!("{reason} ({code:?})"));
            return;
        }
        if clean {
            match self.commit_transaction(DRAIN_TIMEOUT) {
                Ok(()) => return,
                Err(TaskError::Fenced { reason, .. }) => {
                    // Found out only now (e.g. a paused process whose tasks moved, stopping).
                    self.events.task_fenced(self.task, &reason);
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %crate::error_chain(&error),
                        "Committing the last transaction failed; it is aborted and the next owner copies its records.");
                }
            }
        }
        if self.fenced() {
            return;
        }
        self.transactions_aborted.inc();
        if let Err(error) = self.producer.abort_transaction(POSITIONS_FLUSH_MIN) {
            tracing::warn!(%error, "Aborting the transaction failed; the transaction timeout ends it.");
        }
    }

    /// Whether the producer hit a fatal error: fenced by a newer owner of the task.
    pub(super) fn fenced(&self) -> bool {
        self.producer.client().fatal_error().is_some()
    }

    /// `error`, or what the producer's fatal error means when it has one (whatever error it
    /// surfaced as: a refused send, a failed delivery): [`TaskError::Fenced`] for the task's
    /// transactional producer, [`TaskError::ProducerFatal`] at least once.
    pub(super) fn fatal_or(&self, error: TaskError) -> TaskError {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return error;
        };
        let reason = format!("{reason} ({code:?})");
        if self.transactions.is_some() {
            TaskError::Fenced {
                task: self.task,
                reason,
            }
        } else {
            TaskError::ProducerFatal {
                task: self.task,
                reason,
            }
        }
    }

    /// The error for a failed transaction call: [`TaskError::Fenced`] when the producer is
    /// fenced (or otherwise dead), else [`TaskError::Transaction`].
    pub(super) fn transaction_error(&self, what: &'static str, source: KafkaError) -> TaskError {
        self.fatal_or(TaskError::Transaction {
            task: self.task,
            what,
            source: Box::new(source),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_is_due_by_age_or_size_and_never_empty() {
        let caught_up = || 0;
        let mut transactions = Transactions::new(Duration::ZERO, 3);
        assert!(
            !transactions.due(caught_up),
            "an empty transaction is never due"
        );
        transactions.handed_on();
        assert!(transactions.due(caught_up), "old enough");
        let mut transactions = Transactions::new(Duration::from_secs(3600), 2);
        transactions.handed_on();
        assert!(!transactions.due(caught_up));
        transactions.handed_on();
        assert!(transactions.due(|| 1_000_000), "full, however far behind");
        transactions.began();
        assert!(!transactions.due(caught_up));
    }

    #[test]
    fn a_task_behind_its_source_commits_by_age_only_after_the_longer_wait() {
        let mut transactions = Transactions::new(Duration::ZERO, 100);
        transactions.handed_on();
        transactions.handed_on();
        assert!(
            transactions.due(|| 2),
            "no further behind than the transaction holds"
        );
        assert!(!transactions.due(|| 3), "behind: the transaction grows");
        transactions.opened = Instant::now() - BEHIND_MAX_AGE;
        assert!(transactions.due(|| 3), "but no older than BEHIND_MAX_AGE");
        let mut transactions = Transactions::new(Duration::from_secs(3600), 100);
        transactions.handed_on();
        transactions.opened = Instant::now() - BEHIND_MAX_AGE;
        assert!(
            !transactions.due(|| unreachable!("asked before the interval passed")),
            "never before transaction_interval"
        );
    }

    #[test]
    fn the_earliest_refused_record_of_a_partition_is_remembered_until_taken() {
        let refused = RefusedRecords::default();
        let record = |offset| RefusedRecord {
            offset,
            dead_letter: false,
            error: KafkaError::Canceled,
        };
        refused.remember("t", 0, record(7));
        refused.remember("t", 0, record(9));
        refused.remember("t", 0, record(5));
        refused.remember("t", 1, record(1));
        let taken = refused.take();
        assert_eq!(taken[&("t".to_owned(), 0)].offset, 5);
        assert_eq!(taken[&("t".to_owned(), 1)].offset, 1);
        assert!(refused.take().is_empty());
        refused.give_back(taken);
        assert_eq!(refused.take().len(), 2);
    }

    #[test]
    fn every_process_derives_the_same_transactional_id() {
        assert_eq!(
            transactional_id("ferry.clusterA-clusterB", 3),
            "ferry.clusterA-clusterB.task-3"
        );
    }
}
