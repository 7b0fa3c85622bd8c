//! Prometheus metrics: the registry, every metric Ferry exposes, and the `/metrics` endpoint.
//!
//! Metric families are created once, here. The data path resolves its labelled handles when a
//! partition is assigned and then only adds to atomics, per batch or per acknowledgement; it
//! never looks up labels per record. Names follow `ferry_<name>_<unit>[_total]`.
//!
//! Labels are bounded: `flow` always, `topic` (source topic) on per-topic counters, `partition`
//! only on the lag gauge, `sync` (`configs` or `acls`) on sync errors. MM2's families (`mm2`)
//! keep MM2's labels: per remote partition, and per group partition for checkpoints.
//!
//! No stale series: a series that belongs to what one process holds for a while (a partition's
//! lag, the leader's round times) leaves `/metrics` when the process gives it up. The lag of a
//! partition is an `OwnedGauge`, removed from its family when the partition's task worker
//! unassigns or drops it; the leader's round times are removed by
//! `Metrics::forget_leader_rounds` when the leader duties are released. Per-topic counters are
//! totals of this process and stay (a counter that vanished and came back would read as a
//! reset, and the tasks of one process share them).
//!
//! MirrorMaker 2's own series (`kafka_connect_mirror_*`, as Strimzi's jmx-exporter rules name
//! them) are computed at each scrape from per-partition stats the record path keeps: `mm2`.
//!
//! Besides Ferry's own families, the registry holds the process collector (`process_*`: CPU
//! seconds, resident memory, open file descriptors, threads; Linux only) and
//! `ferry_build_info{version}`, always 1.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::health::Health;

mod mm2;

pub(crate) use mm2::{Mm2Metrics, SourceSeries, now_ms};

/// The duties whose round times `ferry_leader_round_seconds` shows (its `duty` label).
pub(crate) const LEADER_DUTIES: [&str; 2] = ["checkpoints", "group_offsets"];

/// Every metric family Ferry exposes.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Records the target acknowledged, per flow and source topic.
    pub records_replicated: IntCounterVec,
    /// Bytes (key + value + header keys and values) of acknowledged records.
    pub bytes_replicated: IntCounterVec,
    /// Seconds from the source record's timestamp to the target's acknowledgement (MM2's
    /// `replication-latency-ms`).
    pub replication_latency: HistogramVec,
    /// Records between a partition's replicated position and its high watermark.
    pub partition_lag: IntGaugeVec,
    /// Records produced and not yet acknowledged, per flow.
    pub records_in_flight: IntGaugeVec,
    /// Target deliveries that failed (the task restarts from its stored position).
    pub delivery_errors: IntCounterVec,
    /// Position records stored on the target.
    pub positions_stored: IntCounterVec,
    /// Exactly-once transactions ended, per flow and outcome (`committed`, `aborted`).
    pub transactions: IntCounterVec,
    /// Times a task's producer was fenced by a newer owner of the task, per flow.
    pub tasks_fenced: IntCounterVec,
    /// Tasks this process owns, per flow.
    pub tasks_owned: IntGaugeVec,
    /// Tasks the flow is cut into (its `tasks`), per flow: every process of the flow shows
    /// the same value, and the flow's `ferry_tasks_owned` summed over its processes should
    /// reach it.
    pub tasks_configured: IntGaugeVec,
    /// Source topics currently mirrored, per flow.
    pub topics_mirrored: IntGaugeVec,
    /// Calls into a plugin (cache misses), per flow and plugin.
    pub plugin_calls: IntCounterVec,
    /// Plugin calls that failed (trap, timeout, invalid answer), per flow and plugin.
    pub plugin_errors: IntCounterVec,
    /// Task restarts after an error, per flow.
    pub task_restarts: IntCounterVec,
    /// Restarts of the leader duties (heartbeats, checkpoints, group offset sync) after an
    /// error, per flow.
    pub leader_restarts: IntCounterVec,
    /// Remote topics whose configuration the config sync changed, per flow.
    pub topic_configs_synced: IntCounterVec,
    /// ACLs the ACL sync created on the target, per flow.
    pub acls_synced: IntCounterVec,
    /// Config or ACL sync runs that failed, plus single topics or ACLs the target refused, per
    /// flow and sync (`configs`, `acls`).
    pub sync_errors: IntCounterVec,
    /// Records a filter or transform dropped, per flow and source topic.
    pub records_dropped: IntCounterVec,
    /// Records a filter or transform failed on, per flow, plugin and action taken (`halt`,
    /// `skip`, `dead-letter`).
    pub plugin_record_errors: IntCounterVec,
    /// Source partitions a task stopped at a record a plugin failed on or the target refused,
    /// per flow.
    pub partitions_halted: IntGaugeVec,
    /// Chain stages (one per filter or transform and task) whose circuit breaker is open, per
    /// flow.
    pub plugin_breakers_open: IntGaugeVec,
    /// MM2 offset syncs written, per flow.
    pub offset_syncs_written: IntCounterVec,
    /// Times a task found that its offset syncs could not be written, per flow.
    pub offset_sync_failures: IntCounterVec,
    /// Heartbeats written, per flow and cluster written to.
    pub heartbeats_written: IntCounterVec,
    /// Checkpoints written, per flow.
    pub checkpoints_written: IntCounterVec,
    /// Group offsets committed to idle target groups, per flow (one per partition).
    pub group_offsets_synced: IntCounterVec,
    /// Rounds of group offset sync completed, per flow.
    pub group_sync_rounds: IntCounterVec,
    /// Seconds the last round of a leader duty took, per flow and duty (`checkpoints`,
    /// `group_offsets`).
    pub leader_round_seconds: GaugeVec,
    /// Committed source offsets that could not be translated (older than the known history),
    /// per flow.
    pub untranslatable_offsets: IntCounterVec,
    /// Source partitions whose next offset was outside the source log, so that the task moved
    /// to the log start, per flow and reason (`beyond_end`: the log is shorter than what was
    /// copied, a recreated or truncated topic; `retention`: records were deleted before they
    /// were copied).
    pub partition_resets: IntCounterVec,
    /// Source records Ferry could not copy, per flow and reason (`retention`: deleted at the
    /// source before they were copied; `refused`: the target refused them for good and
    /// `on_error = "skip"`).
    pub records_skipped: IntCounterVec,
    /// Records the target refused for good (too large, invalid timestamp, not authorised),
    /// per flow and the action taken (`halt`, `skip`, `dead-letter`).
    pub records_refused: IntCounterVec,
    /// 1 per plugin version a flow runs, per flow, plugin, version (12 hex digits of the
    /// component's SHA-256) and state (`active`; `draining`: replaced, still held by a task
    /// until its next batch).
    pub plugin_versions: IntGaugeVec,
    /// Hot swaps asked for, per flow, plugin and outcome (`applied`, `failed`: the new version
    /// did not load or failed the canary batch; `refused`: a policy that would rename
    /// mirrored topics).
    pub plugin_swaps: IntCounterVec,
    /// 1, with the version of this build as label.
    pub build_info: IntGaugeVec,
    /// MirrorMaker 2's series, under its names.
    pub(crate) mm2: Arc<Mm2Metrics>,
}

/// The gauge of one label set, owned by the code that holds what it measures: dropping it
/// removes the label set from its family, so the series leaves `/metrics` with the partition
/// it belongs to. One owner per label set: a second handle on the same labels would be
/// detached by the first one's removal.
pub(crate) struct OwnedGauge {
    family: IntGaugeVec,
    labels: Vec<String>,
    gauge: IntGauge,
}

impl OwnedGauge {
    fn new(family: &IntGaugeVec, labels: Vec<String>) -> OwnedGauge {
        let values: Vec<&str> = labels.iter().map(String::as_str).collect();
        let gauge = family.with_label_values(&values);
        OwnedGauge {
            family: family.clone(),
            labels,
            gauge,
        }
    }

    /// Sets the value.
    pub(crate) fn set(&self, value: i64) {
        self.gauge.set(value);
    }

    /// The current value.
    #[cfg(test)]
    pub(crate) fn get(&self) -> i64 {
        self.gauge.get()
    }
}

impl Drop for OwnedGauge {
    fn drop(&mut self) {
        let values: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        // Absent already is fine.
        let _ = self.family.remove_label_values(&values);
    }
}

/// Errors creating or serving metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be registered (a bug: duplicate name).
    #[error("registering metric failed")]
    Register(#[source] prometheus::Error),
    /// The endpoint could not bind its address.
    #[error("binding the metrics endpoint to {address} failed")]
    Bind {
        /// The address from `--metrics-bind`.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Metrics {
    /// Creates and registers every metric family.
    ///
    /// # Errors
    /// Only on a duplicate registration, which is a bug.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(metric.clone()))?;
            Ok::<_, prometheus::Error>(metric)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(metric.clone()))?;
            Ok::<_, prometheus::Error>(metric)
        };
        let build = || -> Result<Metrics, prometheus::Error> {
            let latency = HistogramVec::new(
                HistogramOpts::new(
                    "ferry_replication_latency_seconds",
                    "Seconds from the source record timestamp to the target acknowledgement.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0,
                ]),
                &["flow"],
            )?;
            registry.register(Box::new(latency.clone()))?;
            Ok(Metrics {
                records_replicated: counter(
                    "ferry_records_replicated_total",
                    "Records replicated and acknowledged by the target.",
                    &["flow", "topic"],
                )?,
                bytes_replicated: counter(
                    "ferry_bytes_replicated_total",
                    "Bytes (key, value, headers) replicated and acknowledged by the target.",
                    &["flow", "topic"],
                )?,
                replication_latency: latency,
                partition_lag: gauge(
                    "ferry_partition_lag_records",
                    "Records between the replicated position and the source high watermark.",
                    &["flow", "topic", "partition"],
                )?,
                records_in_flight: gauge(
                    "ferry_records_in_flight",
                    "Records produced to the target and not yet acknowledged.",
                    &["flow"],
                )?,
                delivery_errors: counter(
                    "ferry_delivery_errors_total",
                    "Records the target did not acknowledge; the task resumes from its stored position.",
                    &["flow"],
                )?,
                positions_stored: counter(
                    "ferry_positions_stored_total",
                    "Source positions stored on the target.",
                    &["flow"],
                )?,
                transactions: counter(
                    "ferry_transactions_total",
                    "Exactly-once transactions of the tasks, by outcome (committed, aborted).",
                    &["flow", "outcome"],
                )?,
                tasks_fenced: counter(
                    "ferry_tasks_fenced_total",
                    "Times a task's transactional producer was fenced by a newer owner of the task; it stopped writing at once.",
                    &["flow"],
                )?,
                tasks_owned: gauge(
                    "ferry_tasks_owned",
                    "Tasks owned by this process.",
                    &["flow"],
                )?,
                tasks_configured: gauge(
                    "ferry_tasks_configured",
                    "Tasks the flow is cut into (the sum of ferry_tasks_owned over its processes should reach it).",
                    &["flow"],
                )?,
                topics_mirrored: gauge(
                    "ferry_topics_mirrored",
                    "Source topics currently mirrored.",
                    &["flow"],
                )?,
                plugin_calls: counter(
                    "ferry_plugin_calls_total",
                    "Calls into a plugin (answers served from the cache are not counted).",
                    &["flow", "plugin"],
                )?,
                plugin_errors: counter(
                    "ferry_plugin_errors_total",
                    "Plugin calls that trapped, timed out or returned an invalid answer.",
                    &["flow", "plugin"],
                )?,
                task_restarts: counter(
                    "ferry_task_restarts_total",
                    "Task restarts after an error.",
                    &["flow"],
                )?,
                leader_restarts: counter(
                    "ferry_leader_restarts_total",
                    "Restarts of the leader duties (heartbeats, checkpoints, group offset sync) after an error.",
                    &["flow"],
                )?,
                topic_configs_synced: counter(
                    "ferry_topic_configs_synced_total",
                    "Remote topics whose configuration the topic config sync changed.",
                    &["flow"],
                )?,
                acls_synced: counter(
                    "ferry_acls_synced_total",
                    "Topic ACLs the ACL sync created on the target.",
                    &["flow"],
                )?,
                sync_errors: counter(
                    "ferry_sync_errors_total",
                    "Failed config or ACL sync runs, and topics or ACLs the target refused.",
                    &["flow", "sync"],
                )?,
                records_dropped: counter(
                    "ferry_records_dropped_total",
                    "Records a filter or transform plugin dropped (not replicated; positions advance).",
                    &["flow", "topic"],
                )?,
                plugin_record_errors: counter(
                    "ferry_plugin_record_errors_total",
                    "Records a filter or transform failed on, by the action taken (halt, skip, dead-letter).",
                    &["flow", "plugin", "action"],
                )?,
                partitions_halted: gauge(
                    "ferry_partitions_halted",
                    "Source partitions stopped at a record a plugin failed on or the target refused (on_error = halt).",
                    &["flow"],
                )?,
                plugin_breakers_open: gauge(
                    "ferry_plugin_breakers_open",
                    "Filter or transform stages (per task) whose circuit breaker is open: their records halt.",
                    &["flow"],
                )?,
                offset_syncs_written: counter(
                    "ferry_offset_syncs_written_total",
                    "MM2 offset syncs written to the offset-syncs topic.",
                    &["flow"],
                )?,
                offset_sync_failures: counter(
                    "ferry_offset_sync_failures_total",
                    "Times a task's offset syncs could not be written (the topic missing or unwritable, its cluster away); positions are stored anyway, checkpoints stop at the last sync.",
                    &["flow"],
                )?,
                heartbeats_written: counter(
                    "ferry_heartbeats_written_total",
                    "MM2 heartbeats written, by the cluster written to.",
                    &["flow", "cluster"],
                )?,
                checkpoints_written: counter(
                    "ferry_checkpoints_written_total",
                    "MM2 checkpoints (translated group offsets) written to the target.",
                    &["flow"],
                )?,
                group_offsets_synced: counter(
                    "ferry_group_offsets_synced_total",
                    "Partition offsets committed to idle consumer groups on the target.",
                    &["flow"],
                )?,
                group_sync_rounds: counter(
                    "ferry_group_sync_rounds_total",
                    "Rounds of group offset sync completed (every selected group visited).",
                    &["flow"],
                )?,
                leader_round_seconds: {
                    let metric = GaugeVec::new(
                        Opts::new(
                            "ferry_leader_round_seconds",
                            "Seconds the last round of a leader duty took (checkpoints, group_offsets).",
                        ),
                        &["flow", "duty"],
                    )?;
                    registry.register(Box::new(metric.clone()))?;
                    metric
                },
                untranslatable_offsets: counter(
                    "ferry_untranslatable_offsets_total",
                    "Committed source offsets older than the known offset history (no checkpoint).",
                    &["flow"],
                )?,
                partition_resets: counter(
                    "ferry_partition_resets_total",
                    "Source partitions moved to their log start because the next offset was outside the log (beyond_end, retention).",
                    &["flow", "reason"],
                )?,
                records_skipped: counter(
                    "ferry_records_skipped_total",
                    "Source records that could not be copied, by reason (retention: deleted before they were copied; refused: refused by the target, on_error = skip).",
                    &["flow", "reason"],
                )?,
                records_refused: counter(
                    "ferry_records_refused_total",
                    "Records the target refused for good (too large, invalid timestamp, not authorised), by the action taken (halt, skip, dead-letter).",
                    &["flow", "action"],
                )?,
                plugin_versions: gauge(
                    "ferry_plugin_version",
                    "Plugin versions running: 1 per flow, plugin, version and state (active, draining).",
                    &["flow", "plugin", "version", "state"],
                )?,
                plugin_swaps: counter(
                    "ferry_plugin_swaps_total",
                    "Hot swaps asked for, per outcome (applied, failed, refused).",
                    &["flow", "plugin", "outcome"],
                )?,
                build_info: {
                    let metric = gauge(
                        "ferry_build_info",
                        "Always 1; the label is the version of this build.",
                        &["version"],
                    )?;
                    metric
                        .with_label_values(&[env!("CARGO_PKG_VERSION")])
                        .set(1);
                    metric
                },
                mm2: Arc::new(Mm2Metrics::new()?),
                registry: registry.clone(),
            })
        };
        let metrics = build().map_err(MetricsError::Register)?;
        metrics
            .registry
            .register(Box::new(mm2::Mm2Collector(Arc::clone(&metrics.mm2))))
            .map_err(MetricsError::Register)?;
        #[cfg(target_os = "linux")]
        metrics
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .map_err(MetricsError::Register)?;
        Ok(metrics)
    }

    /// Flow `flow`, cut into `tasks` tasks, joined its task-lease group in this process: shows
    /// its task count and puts the flow's gauges that alerts compare on `/metrics` from the
    /// start (owned tasks, halted partitions, open breakers), at zero until something changes
    /// them, so that a rule sees 0 rather than no series.
    pub(crate) fn flow_joined(&self, flow: &str, tasks: u32) {
        self.tasks_configured
            .with_label_values(&[flow])
            .set(i64::from(tasks));
        for family in [
            &self.tasks_owned,
            &self.partitions_halted,
            &self.plugin_breakers_open,
        ] {
            family.with_label_values(&[flow]);
        }
    }

    /// The lag gauge of `partition` of source `topic` in `flow`, removed from `/metrics` when
    /// dropped.
    pub(crate) fn partition_lag_series(
        &self,
        flow: &str,
        topic: &str,
        partition: i32,
    ) -> OwnedGauge {
        OwnedGauge::new(
            &self.partition_lag,
            vec![flow.to_owned(), topic.to_owned(), partition.to_string()],
        )
    }

    /// Removes the leader's round times and checkpoint latencies of `flow` (from cluster
    /// `source` to `target`): its leader duties left this process.
    pub(crate) fn forget_leader_rounds(&self, flow: &str, source: &str, target: &str) {
        for duty in LEADER_DUTIES {
            // Absent (no round finished yet) is fine.
            let _ = self.leader_round_seconds.remove_label_values(&[flow, duty]);
        }
        self.mm2.forget_checkpoints(source, target);
    }

    /// Counts a hot swap of `plugin` with its `outcome`.
    pub fn record_swap(&self, flow: &str, plugin: &str, outcome: &str) {
        self.plugin_swaps
            .with_label_values(&[flow, plugin, outcome])
            .inc();
    }

    /// Shows (`on`) or removes version `version` of `plugin` in `state`.
    pub fn set_plugin_version(
        &self,
        flow: &str,
        plugin: &str,
        version: &str,
        state: &str,
        on: bool,
    ) {
        let labels = [flow, plugin, version, state];
        if on {
            self.plugin_versions.with_label_values(&labels).set(1);
        } else {
            // Absent already is fine.
            let _ = self.plugin_versions.remove_label_values(&labels);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "Encoding metrics failed.");
        }
        buffer
    }

    /// Binds `address` and serves `GET /metrics`, `GET /healthz` (alive: always 200) and
    /// `GET /readyz` (200 when `health` is ready, 503 with a line per reason otherwise) until
    /// the runtime stops. Returns the bound address (useful with port 0).
    ///
    /// # Errors
    /// `Bind` when the address is taken or not local.
    pub async fn serve(
        self: Arc<Self>,
        health: Arc<Health>,
        address: SocketAddr,
    ) -> Result<SocketAddr, MetricsError> {
        crate::http::serve(address, "metrics", move |request| {
            let answer = respond(&self, &health, &request);
            async move { answer }
        })
        .await
        .map_err(|source| MetricsError::Bind { address, source })
    }
}

fn respond(metrics: &Metrics, health: &Health, request: &Request<Incoming>) -> crate::http::Reply {
    match request.uri().path() {
        "/metrics" => crate::http::reply(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        "/healthz" => crate::http::reply(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
        "/readyz" => match health.not_ready() {
            reasons if reasons.is_empty() => {
                crate::http::reply(StatusCode::OK, "text/plain", b"ready\n".to_vec())
            }
            reasons => {
                let mut body = reasons.join("\n");
                body.push('\n');
                crate::http::reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    body.into_bytes(),
                )
            }
        },
        _ => crate::http::reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.render()).unwrap()
    }

    #[test]
    fn an_owned_gauge_leaves_the_exposition_when_dropped() {
        let metrics = Metrics::new().unwrap();
        let kept = metrics.partition_lag_series("a->b", "orders", 0);
        let moved = metrics.partition_lag_series("a->b", "orders", 1);
        kept.set(3);
        moved.set(7);
        assert_eq!(kept.get(), 3);
        let before = text(&metrics);
        assert!(
            before.contains(
                r#"ferry_partition_lag_records{flow="a->b",partition="1",topic="orders"} 7"#
            ),
            "{before}"
        );
        drop(moved);
        let after = text(&metrics);
        assert!(!after.contains(r#"partition="1""#), "{after}");
        assert!(
            after.contains(
                r#"ferry_partition_lag_records{flow="a->b",partition="0",topic="orders"} 3"#
            ),
            "{after}"
        );
    }

    #[test]
    fn a_joined_flow_shows_its_tasks_and_its_alerted_gauges_at_zero() {
        let metrics = Metrics::new().unwrap();
        assert!(!text(&metrics).contains("ferry_tasks_configured{"));
        metrics.tasks_owned.with_label_values(&["a->b"]).set(3);
        metrics.flow_joined("a->b", 8);
        let text = text(&metrics);
        for line in [
            r#"ferry_tasks_configured{flow="a->b"} 8"#,
            r#"ferry_tasks_owned{flow="a->b"} 3"#,
            r#"ferry_partitions_halted{flow="a->b"} 0"#,
            r#"ferry_plugin_breakers_open{flow="a->b"} 0"#,
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn leader_rounds_are_forgotten_and_build_info_and_process_metrics_are_shown() {
        let metrics = Metrics::new().unwrap();
        metrics
            .leader_round_seconds
            .with_label_values(&["a->b", "checkpoints"])
            .set(0.5);
        metrics
            .mm2
            .checkpoint_acknowledged(("a", "b"), "g", "a.orders", 0, 1_000, 1_020);
        assert!(text(&metrics).contains("checkpoint_latency_ms_max{"));
        metrics.forget_leader_rounds("a->b", "a", "b");
        metrics.forget_leader_rounds("never-led", "c", "d");
        let text = text(&metrics);
        assert!(!text.contains("ferry_leader_round_seconds{"), "{text}");
        assert!(!text.contains("checkpoint_latency_ms_max{"), "{text}");
        let build = format!(
            "ferry_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }
}
