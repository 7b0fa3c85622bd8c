//! Every observable happening of a flow, in one place: each method writes the log line **and**
//! updates the metric, so that neither can be forgotten or drift from the other.
//!
//! Log levels follow one rule: ERROR means data is held back or an operator must act, WARN
//! means Ferry recovered by itself, INFO is lifecycle. Counters that only count (records and
//! bytes replicated, latency) are not events: the data path resolves their labelled handles
//! once per partition and adds to them per batch (`crate::metrics`).

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;

use crate::config::{ErrorPolicy, FlowId};
use crate::metrics::Metrics;

/// The event emitter of one flow.
#[derive(Clone)]
pub(crate) struct Events {
    metrics: Arc<Metrics>,
    flow: String,
}

/// Where a record is: source topic, partition and offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    /// The source topic.
    pub(crate) topic: &'a str,
    /// The source partition.
    pub(crate) partition: i32,
    /// The source offset.
    pub(crate) offset: i64,
}

/// What [`Events::plugin_calls_so_far`] reported last for one plugin.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallsSeen {
    version: usize,
    totals: (u64, u64),
}

/// Which of MM2's topic syncs failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingsKind {
    /// Topic config sync.
    Configs,
    /// Topic ACL sync.
    Acls,
}

impl SettingsKind {
    fn label(self) -> &'static str {
        match self {
            SettingsKind::Configs => "configs",
            SettingsKind::Acls => "acls",
        }
    }
}

impl Events {
    /// The emitter of flow `flow`.
    pub(crate) fn new(metrics: &Arc<Metrics>, flow: &FlowId) -> Events {
        Events {
            metrics: Arc::clone(metrics),
            flow: flow.to_string(),
        }
    }

    /// The flow's id, as metric label.
    pub(crate) fn flow(&self) -> &str {
        &self.flow
    }

    /// A task worker failed; it resumes from its stored positions after `retry_in`.
    pub(crate) fn task_failed(
        &self,
        error: &(dyn std::error::Error + 'static),
        retry_in: Duration,
    ) {
        self.metrics
            .task_restarts
            .with_label_values(&[&self.flow])
            .inc();
        tracing::error!(error = %crate::error_chain(error), ?retry_in,
            "Task failed; it resumes from its stored positions.");
    }

    /// A task's transactional producer was fenced: another process owns the task now, and
    /// this one stopped writing to it.
    pub(crate) fn task_fenced(&self, task: u32, reason: &str) {
        self.metrics
            .tasks_fenced
            .with_label_values(&[&self.flow])
            .inc();
        tracing::error!(
            task,
            reason,
            "Task fenced: another process owns it now; this one stopped writing and waits for its lease to move."
        );
    }

    /// The leader duties failed; they start again after `retry_in`.
    pub(crate) fn leader_failed(
        &self,
        error: &(dyn std::error::Error + 'static),
        retry_in: Duration,
    ) {
        self.metrics
            .leader_restarts
            .with_label_values(&[&self.flow])
            .inc();
        tracing::error!(error = %crate::error_chain(error), ?retry_in,
            "Heartbeats, checkpoints or group offset sync failed; restarting them.");
    }

    /// The gauge of halted partitions, for [`Events::partition_halted`] and
    /// [`Events::partition_resumed`] on the data path (resolved once per task).
    pub(crate) fn halted_gauge(&self) -> IntGauge {
        self.metrics
            .partitions_halted
            .with_label_values(&[&self.flow])
    }

    /// The gauge of chain stages with an open circuit breaker, for
    /// [`Events::breakers_open`] on the data path (resolved once per task).
    pub(crate) fn breakers_gauge(&self) -> IntGauge {
        self.metrics
            .plugin_breakers_open
            .with_label_values(&[&self.flow])
    }

    /// `open` stages of a task's chain have an open circuit breaker now, `reported` before
    /// (the chain logs the opening at ERROR); `reported` becomes `open`.
    pub(crate) fn breakers_open(gauge: &IntGauge, open: usize, reported: &mut i64) {
        let open = i64::try_from(open).unwrap_or(i64::MAX);
        if open != *reported {
            gauge.add(open - *reported);
            *reported = open;
        }
    }

    /// A filter or transform failed on the record `at`; the flow's error policy `policy` is
    /// applied to it (`fatal`: the stage's circuit breaker is open, so it halts whatever the
    /// policy).
    pub(crate) fn plugin_record_failed(
        &self,
        plugin: &str,
        error: &str,
        policy: ErrorPolicy,
        fatal: bool,
        at: At<'_>,
    ) {
        self.metrics
            .plugin_record_errors
            .with_label_values(&[self.flow.as_str(), plugin, policy.as_str()])
            .inc();
        let At {
            topic,
            partition,
            offset,
        } = at;
        match policy {
            ErrorPolicy::Skip => tracing::warn!(
                plugin,
                error,
                topic,
                partition,
                offset,
                "A plugin failed on a record; it is skipped (on_error = skip)."
            ),
            ErrorPolicy::DeadLetter => tracing::warn!(
                plugin,
                error,
                topic,
                partition,
                offset,
                "A plugin failed on a record; it goes to the dead-letter topic."
            ),
            ErrorPolicy::Halt => tracing::error!(
                plugin,
                error,
                topic,
                partition,
                offset,
                fatal,
                "A plugin failed on a record; its partition stops there (on_error = halt). \
                 Swap in a fixed plugin (or restart): the partition resumes at this record."
            ),
        }
    }

    /// The target refused the record `at` for good (`error`: too large, invalid timestamp, not
    /// authorised); the flow's error policy `policy` is applied to it. A refused dead-letter
    /// write halts whatever the policy.
    pub(crate) fn target_refused(&self, error: &str, policy: ErrorPolicy, at: At<'_>) {
        self.metrics
            .records_refused
            .with_label_values(&[self.flow.as_str(), policy.as_str()])
            .inc();
        let At {
            topic,
            partition,
            offset,
        } = at;
        match policy {
            ErrorPolicy::Skip => {
                self.metrics
                    .records_skipped
                    .with_label_values(&[&self.flow, "refused"])
                    .inc();
                tracing::error!(
                    error,
                    topic,
                    partition,
                    offset,
                    "The target refused a record for good; it is skipped (on_error = skip)."
                );
            }
            ErrorPolicy::DeadLetter => tracing::warn!(
                error,
                topic,
                partition,
                offset,
                "The target refused a record for good; it goes to the dead-letter topic."
            ),
            ErrorPolicy::Halt => tracing::error!(
                error,
                topic,
                partition,
                offset,
                "The target refused a record for good; its partition stops there (on_error = halt). \
                 Fix the target (e.g. the remote topic's max.message.bytes) and restart, or swap in \
                 a transform that makes the record acceptable: the partition resumes at this record."
            ),
        }
    }

    /// The next offset `next` of `partition` of `topic` is beyond the source log's end `high`
    /// (the topic was deleted and created again, or truncated by an unclean leader election):
    /// the task copies the log again from its start `low`.
    pub(crate) fn source_log_rewound(
        &self,
        topic: &str,
        partition: i32,
        next: i64,
        (low, high): (i64, i64),
    ) {
        self.metrics
            .partition_resets
            .with_label_values(&[&self.flow, "beyond_end"])
            .inc();
        tracing::warn!(
            topic,
            partition,
            next,
            high_watermark = high,
            log_start = low,
            "The next offset is beyond the source's end (topic recreated or truncated); copying the partition again from its log start."
        );
    }

    /// Records `next..low` of `partition` of `topic` were deleted at the source (retention)
    /// before they were copied: the task goes on at the log start `low`.
    pub(crate) fn source_records_deleted(&self, topic: &str, partition: i32, next: i64, low: i64) {
        self.metrics
            .partition_resets
            .with_label_values(&[&self.flow, "retention"])
            .inc();
        self.metrics
            .records_skipped
            .with_label_values(&[&self.flow, "retention"])
            .inc_by(u64::try_from(low - next).unwrap_or(0));
        tracing::error!(
            topic,
            partition,
            next,
            log_start = low,
            skipped = low - next,
            "Records were deleted at the source before they were replicated; going on at the log start."
        );
    }

    /// A task's offset syncs to `topic` could not be written: positions are stored anyway,
    /// and checkpoints stop at the last sync until syncs are written again.
    pub(crate) fn offset_syncs_failed(&self, topic: &str, error: &rdkafka::error::KafkaError) {
        self.metrics
            .offset_sync_failures
            .with_label_values(&[&self.flow])
            .inc();
        tracing::error!(topic, %error,
            "Offset syncs cannot be written; positions are stored anyway, and checkpoints stop at the last offset sync until they are written again.");
    }

    /// This process's status record (`ferry status`) could not be written; it is retried every
    /// second, and only the first failure of a run is logged.
    pub(crate) fn status_not_published(&self, error: &(dyn std::error::Error + 'static)) {
        tracing::warn!(error = %crate::error_chain(error),
            "Publishing this process's status for `ferry status` failed; retrying.");
    }

    /// This process's status record is written again after failures.
    pub(crate) fn status_published(&self) {
        tracing::info!("Publishing this process's status for `ferry status` works again.");
    }

    /// A partition stopped at a record a plugin failed on; the log line is
    /// [`Events::plugin_record_failed`]'s.
    pub(crate) fn partition_halted(gauge: &IntGauge) {
        gauge.inc();
    }

    /// A partition halted by a plugin resumes at the record `at`, after a swap.
    pub(crate) fn partition_resumed(gauge: &IntGauge, at: At<'_>) {
        gauge.dec();
        tracing::info!(
            topic = at.topic,
            partition = at.partition,
            offset = at.offset,
            "A plugin was swapped: the halted partition resumes at the record it stopped at."
        );
    }

    /// A plugin version's cumulative `(calls, errors)` are `totals` now; `seen` holds what was
    /// reported before for `version` (any value that tells versions apart, such as the
    /// address of the loaded plugin), and becomes `totals`. A new version starts at zero.
    pub(crate) fn plugin_calls_so_far(
        &self,
        plugin: &str,
        version: usize,
        totals: (u64, u64),
        seen: &mut CallsSeen,
    ) {
        if seen.version != version || totals.0 < seen.totals.0 || totals.1 < seen.totals.1 {
            *seen = CallsSeen {
                version,
                totals: (0, 0),
            };
        }
        self.plugin_calls(plugin, totals.0 - seen.totals.0, totals.1 - seen.totals.1);
        seen.totals = totals;
    }

    /// A plugin answered `calls` more calls, `errors` of them failed (trap, timeout, invalid
    /// answer), since the last report.
    fn plugin_calls(&self, plugin: &str, calls: u64, errors: u64) {
        if calls > 0 {
            self.metrics
                .plugin_calls
                .with_label_values(&[self.flow.as_str(), plugin])
                .inc_by(calls);
        }
        // A plugin that was called shows its error count, 0 included, so that a rate of
        // errors has a series to start from.
        if calls > 0 || errors > 0 {
            self.metrics
                .plugin_errors
                .with_label_values(&[self.flow.as_str(), plugin])
                .inc_by(errors);
        }
    }

    /// `count` partitions of `group` were committed to the idle target group.
    pub(crate) fn group_offsets_synced(&self, group: &str, count: u64) {
        self.metrics
            .group_offsets_synced
            .with_label_values(&[&self.flow])
            .inc_by(count);
        tracing::info!(
            group,
            partitions = count,
            "Group offsets synced to the target."
        );
    }

    /// A checkpoint round over `groups` groups took `took` and wrote `written` checkpoints
    /// (`phases`: how long each step of it took).
    pub(crate) fn checkpoint_round(
        &self,
        took: Duration,
        groups: usize,
        written: u64,
        phases: &[(&'static str, Duration)],
    ) {
        self.metrics
            .leader_round_seconds
            .with_label_values(&[self.flow.as_str(), "checkpoints"])
            .set(took.as_secs_f64());
        tracing::debug!(?took, groups, written, ?phases, "Checkpoint round done.");
    }

    /// A round of group offset sync over `groups` groups took `took` (`phases`: how long
    /// each step of it took).
    pub(crate) fn group_sync_round(
        &self,
        took: Duration,
        groups: usize,
        phases: &[(&'static str, Duration)],
    ) {
        self.metrics
            .group_sync_rounds
            .with_label_values(&[&self.flow])
            .inc();
        self.metrics
            .leader_round_seconds
            .with_label_values(&[self.flow.as_str(), "group_offsets"])
            .set(took.as_secs_f64());
        tracing::debug!(?took, groups, ?phases, "Group offset sync round done.");
    }

    /// A run of topic config or ACL sync failed; it is retried at the next interval.
    pub(crate) fn settings_sync_failed(
        &self,
        kind: SettingsKind,
        error: &(dyn std::error::Error + 'static),
    ) {
        self.settings_refused(kind, 1);
        match kind {
            SettingsKind::Configs => {
                tracing::warn!(flow = %self.flow, error = %crate::error_chain(error),
                "Topic config sync failed; retrying at the next interval.")
            }
            SettingsKind::Acls => {
                tracing::warn!(flow = %self.flow, error = %crate::error_chain(error),
                "Topic ACL sync failed; retrying at the next interval.")
            }
        }
    }

    /// The target refused `count` single topics or ACLs of a sync run (each logged where it
    /// was refused, with its name).
    pub(crate) fn settings_refused(&self, kind: SettingsKind, count: u64) {
        if count > 0 {
            self.metrics
                .sync_errors
                .with_label_values(&[self.flow.as_str(), kind.label()])
                .inc_by(count);
        }
    }

    /// `cluster` stopped answering the flow's readiness check (the flow is not ready).
    pub(crate) fn cluster_unreachable(&self, cluster: &str, error: &str) {
        tracing::warn!(flow = %self.flow, cluster, error,
            "Cluster not answering; the flow reports not ready until it does.");
    }

    /// `cluster` answers the flow's readiness check again.
    pub(crate) fn cluster_answers(&self, cluster: &str) {
        tracing::info!(flow = %self.flow, cluster, "Cluster answering again.");
    }
}
