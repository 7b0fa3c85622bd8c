//! Stopping a task: in-flight records acknowledged and positions stored (at least once, with a
//! fresh producer if the task's one died), or the open transaction committed or aborted
//! (exactly once); then the task's share taken out of the flow's gauges.

use std::time::{Duration, Instant};

use rdkafka::producer::Producer;

use super::{DRAIN_TIMEOUT, POSITIONS_FLUSH_MIN, Worker};
use crate::events::Events;

impl Worker {
    /// Waits for in-flight records, then stores positions and waits for those writes; exactly
    /// once, commits the open transaction after a `clean` run and aborts it otherwise.
    pub(super) fn drain(&mut self, clean: bool) {
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
        match super::task_producer(&self.context, None) {
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
