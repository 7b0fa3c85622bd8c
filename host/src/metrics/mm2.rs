//! MirrorMaker 2's metrics under the names Strimzi's jmx-exporter rules give them
//! (`kafka_connect_mirror_*`), so that dashboards and alerts written for MM2 keep working.
//!
//! * Per source partition a task of this process holds, labels `source`, `target`, `topic` (the
//!   **remote** topic, as in MM2) and `partition`:
//!   `kafka_connect_mirror_mirrorsourceconnector_` + `record_count`, `record_rate`,
//!   `byte_count`, `byte_rate`, `replication_latency_ms_{avg,max,min}`,
//!   `record_age_ms_{avg,max,min}`.
//! * Per checkpointed group partition, on the process holding the flow's leader duties, labels
//!   `source`, `target`, `group`, `topic` (remote), `partition`:
//!   `kafka_connect_mirror_mirrorcheckpointconnector_checkpoint_latency_ms_{avg,max,min}`.
//!
//! Values follow MM2's Kafka "sampled stats": a window of two samples of 30 s each; a rate is
//! the window's total over its elapsed time (at least one sample long), an average, minimum or
//! maximum is over the records of the window and `NaN` when the window has none. Counts are
//! totals since the partition came to this process. Where Ferry differs from MM2 (bytes counted
//! at acknowledgement, not at poll; a `source` label always; checkpoint latencies per group,
//! not merged across groups as MM2 3.8's shared sensor does) `docs/operations.md` says so.
//!
//! The record path owns a partition's stats through a [`SourceSeries`] (one small mutex,
//! locked by its task's thread per record and by a scrape); [`Mm2Metrics`] keeps only weak
//! references, so a partition that leaves the process leaves `/metrics` at the next scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// Samples in a window and the length of one, as in Kafka's default `MetricConfig`.
const SAMPLES: usize = 2;
const SAMPLE_MS: i64 = 30_000;

const SOURCE_PREFIX: &str = "kafka_connect_mirror_mirrorsourceconnector_";
const CHECKPOINT_PREFIX: &str = "kafka_connect_mirror_mirrorcheckpointconnector_";
const SOURCE_LABELS: [&str; 4] = ["source", "target", "topic", "partition"];
const CHECKPOINT_LABELS: [&str; 5] = ["source", "target", "group", "topic", "partition"];

/// The source-connector families: name suffix and help.
const SOURCE_FAMILIES: [(&str, &str); 10] = [
    (
        "record_count",
        "Records the target acknowledged (MM2 record-count).",
    ),
    (
        "record_rate",
        "Records acknowledged per second over the last 30-60 s (MM2 record-rate).",
    ),
    (
        "byte_count",
        "Value bytes of acknowledged records (MM2 byte-count).",
    ),
    (
        "byte_rate",
        "Value bytes acknowledged per second over the last 30-60 s (MM2 byte-rate).",
    ),
    (
        "replication_latency_ms_avg",
        "Milliseconds from the source record's timestamp to the target's acknowledgement, average over the last 30-60 s.",
    ),
    (
        "replication_latency_ms_max",
        "Replication latency in milliseconds, maximum over the last 30-60 s.",
    ),
    (
        "replication_latency_ms_min",
        "Replication latency in milliseconds, minimum over the last 30-60 s.",
    ),
    (
        "record_age_ms_avg",
        "Milliseconds from the source record's timestamp to its poll, average over the last 30-60 s.",
    ),
    (
        "record_age_ms_max",
        "Record age at poll in milliseconds, maximum over the last 30-60 s.",
    ),
    (
        "record_age_ms_min",
        "Record age at poll in milliseconds, minimum over the last 30-60 s.",
    ),
];

/// The checkpoint-connector families: name suffix and help.
const CHECKPOINT_FAMILIES: [(&str, &str); 3] = [
    (
        "checkpoint_latency_ms_avg",
        "Milliseconds from a checkpoint's creation to the target's acknowledgement, average over the last 30-60 s.",
    ),
    (
        "checkpoint_latency_ms_max",
        "Checkpoint latency in milliseconds, maximum over the last 30-60 s.",
    ),
    (
        "checkpoint_latency_ms_min",
        "Checkpoint latency in milliseconds, minimum over the last 30-60 s.",
    ),
];

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// One sample of a [`Sampled`] stat.
#[derive(Clone, Copy)]
struct Sample {
    start_ms: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Sample {
    fn starting(start_ms: i64) -> Sample {
        Sample {
            start_ms,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

/// Kafka's sampled stat: values recorded into the current of two 30 s samples; reads see the
/// samples younger than the window (60 s).
#[derive(Clone, Copy)]
pub(crate) struct Sampled {
    samples: [Option<Sample>; SAMPLES],
    current: usize,
}

impl Default for Sampled {
    fn default() -> Sampled {
        Sampled {
            samples: [None; SAMPLES],
            current: 0,
        }
    }
}

impl Sampled {
    /// Records `value` at `now_ms`.
    pub(crate) fn record(&mut self, value: f64, now_ms: i64) {
        let sample = match &mut self.samples[self.current] {
            Some(sample) if now_ms - sample.start_ms < SAMPLE_MS => sample,
            Some(_) => {
                self.current = (self.current + 1) % SAMPLES;
                self.samples[self.current].insert(Sample::starting(now_ms))
            }
            empty @ None => empty.insert(Sample::starting(now_ms)),
        };
        sample.count += 1;
        sample.sum += value;
        sample.min = sample.min.min(value);
        sample.max = sample.max.max(value);
    }

    fn live(&self, now_ms: i64) -> impl Iterator<Item = &Sample> {
        self.samples
            .iter()
            .flatten()
            .filter(move |sample| now_ms - sample.start_ms < SAMPLES as i64 * SAMPLE_MS)
    }

    /// The average of the window's values; `NaN` without any.
    pub(crate) fn avg(&self, now_ms: i64) -> f64 {
        let (count, sum) = self.live(now_ms).fold((0, 0.0), |(count, sum), sample| {
            (count + sample.count, sum + sample.sum)
        });
        if count == 0 {
            f64::NAN
        } else {
            sum / count as f64
        }
    }

    /// The window's largest value; `NaN` without any.
    pub(crate) fn max(&self, now_ms: i64) -> f64 {
        self.live(now_ms)
            .filter(|sample| sample.count > 0)
            .map(|sample| sample.max)
            .reduce(f64::max)
            .unwrap_or(f64::NAN)
    }

    /// The window's smallest value; `NaN` without any.
    pub(crate) fn min(&self, now_ms: i64) -> f64 {
        self.live(now_ms)
            .filter(|sample| sample.count > 0)
            .map(|sample| sample.min)
            .reduce(f64::min)
            .unwrap_or(f64::NAN)
    }

    /// The window's total per second of its elapsed time, which counts as at least one
    /// sample (Kafka's `Rate` over a `SampledTotal`).
    pub(crate) fn rate(&self, now_ms: i64) -> f64 {
        let (total, oldest) = self
            .live(now_ms)
            .fold((0.0, now_ms), |(total, oldest), sample| {
                (total + sample.sum, oldest.min(sample.start_ms))
            });
        let elapsed_ms = (now_ms - oldest).max((SAMPLES as i64 - 1) * SAMPLE_MS);
        total / (elapsed_ms as f64 / 1000.0)
    }
}

/// What MM2's source connector measures for one partition.
#[derive(Default)]
struct SourceStats {
    records: u64,
    bytes: u64,
    record_rate: Sampled,
    byte_rate: Sampled,
    latency: Sampled,
    age: Sampled,
}

/// The MM2 series of one source partition, held by the task that copies it; dropping the last
/// handle removes the series.
pub(crate) struct SourceSeries(Arc<Mutex<SourceStats>>);

impl SourceSeries {
    fn stats(&self) -> std::sync::MutexGuard<'_, SourceStats> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A record of this partition with source timestamp `timestamp` was polled at `now_ms`.
    pub(crate) fn polled(&self, timestamp: Option<i64>, now_ms: i64) {
        if let Some(timestamp) = timestamp {
            self.stats()
                .age
                .record((now_ms - timestamp).max(0) as f64, now_ms);
        }
    }

    /// The target acknowledged a record of this partition (`value_bytes` of value, source
    /// timestamp `timestamp`) at `now_ms`.
    pub(crate) fn replicated(&self, timestamp: Option<i64>, value_bytes: usize, now_ms: i64) {
        let mut stats = self.stats();
        stats.records += 1;
        stats.bytes += value_bytes as u64;
        stats.record_rate.record(1.0, now_ms);
        stats.byte_rate.record(value_bytes as f64, now_ms);
        if let Some(timestamp) = timestamp {
            stats
                .latency
                .record((now_ms - timestamp).max(0) as f64, now_ms);
        }
    }
}

/// Label values of a source partition: source, target, remote topic, partition.
type SourceKey = [String; 4];
/// Label values of a checkpointed partition: source, target, group, remote topic, partition.
type CheckpointKey = [String; 5];

/// The MM2-named series of this process; a prometheus collector (see [`Mm2Collector`]).
pub(crate) struct Mm2Metrics {
    sources: Mutex<BTreeMap<SourceKey, Weak<Mutex<SourceStats>>>>,
    checkpoints: Mutex<BTreeMap<CheckpointKey, Sampled>>,
    descs: Vec<Desc>,
}

impl Mm2Metrics {
    pub(crate) fn new() -> prometheus::Result<Mm2Metrics> {
        let source = SOURCE_FAMILIES
            .iter()
            .map(|family| (SOURCE_PREFIX, family, &SOURCE_LABELS[..]));
        let checkpoint = CHECKPOINT_FAMILIES
            .iter()
            .map(|family| (CHECKPOINT_PREFIX, family, &CHECKPOINT_LABELS[..]));
        let descs = source
            .chain(checkpoint)
            .map(|(prefix, (suffix, help), labels)| {
                Desc::new(
                    format!("{prefix}{suffix}"),
                    (*help).to_owned(),
                    labels.iter().map(|label| (*label).to_owned()).collect(),
                    Default::default(),
                )
            })
            .collect::<prometheus::Result<Vec<Desc>>>()?;
        Ok(Mm2Metrics {
            sources: Mutex::new(BTreeMap::new()),
            checkpoints: Mutex::new(BTreeMap::new()),
            descs,
        })
    }

    /// The series of `partition` of remote topic `remote`, mirrored from cluster `source` to
    /// `target`; a new, empty series replaces one left by an earlier holder.
    pub(crate) fn source_series(
        &self,
        source: &str,
        target: &str,
        remote: &str,
        partition: i32,
    ) -> SourceSeries {
        let stats = Arc::new(Mutex::new(SourceStats::default()));
        let key = [
            source.to_owned(),
            target.to_owned(),
            remote.to_owned(),
            partition.to_string(),
        ];
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        sources.retain(|_, stats| stats.strong_count() > 0);
        sources.insert(key, Arc::downgrade(&stats));
        SourceSeries(stats)
    }

    /// Records that a checkpoint of `group` for `partition` of remote topic `remote`, created
    /// at `created_ms`, was acknowledged at `now_ms`.
    pub(crate) fn checkpoint_acknowledged(
        &self,
        (source, target): (&str, &str),
        group: &str,
        remote: &str,
        partition: i32,
        created_ms: i64,
        now_ms: i64,
    ) {
        let key = [
            source.to_owned(),
            target.to_owned(),
            group.to_owned(),
            remote.to_owned(),
            partition.to_string(),
        ];
        self.checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .record((now_ms - created_ms).max(0) as f64, now_ms);
    }

    /// Removes the checkpoint series of the flow from `source` to `target`: its leader duties
    /// left this process.
    pub(crate) fn forget_checkpoints(&self, source: &str, target: &str) {
        self.checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| key[0] != source || key[1] != target);
    }

    fn families(&self, now_ms: i64) -> Vec<MetricFamily> {
        let mut source_metrics: [Vec<Metric>; SOURCE_FAMILIES.len()] = Default::default();
        {
            let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
            sources.retain(|_, stats| stats.strong_count() > 0);
            for (key, stats) in sources.iter() {
                let Some(stats) = stats.upgrade() else {
                    continue;
                };
                let stats = stats.lock().unwrap_or_else(PoisonError::into_inner);
                let values = [
                    stats.records as f64,
                    stats.record_rate.rate(now_ms),
                    stats.bytes as f64,
                    stats.byte_rate.rate(now_ms),
                    stats.latency.avg(now_ms),
                    stats.latency.max(now_ms),
                    stats.latency.min(now_ms),
                    stats.age.avg(now_ms),
                    stats.age.max(now_ms),
                    stats.age.min(now_ms),
                ];
                for (metrics, value) in source_metrics.iter_mut().zip(values) {
                    metrics.push(gauge(&SOURCE_LABELS, key, value));
                }
            }
        }
        let mut checkpoint_metrics: [Vec<Metric>; CHECKPOINT_FAMILIES.len()] = Default::default();
        for (key, latency) in self
            .checkpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let values = [
                latency.avg(now_ms),
                latency.max(now_ms),
                latency.min(now_ms),
            ];
            for (metrics, value) in checkpoint_metrics.iter_mut().zip(values) {
                metrics.push(gauge(&CHECKPOINT_LABELS, key, value));
            }
        }
        SOURCE_FAMILIES
            .iter()
            .map(|(suffix, help)| (SOURCE_PREFIX, suffix, help))
            .zip(source_metrics)
            .chain(
                CHECKPOINT_FAMILIES
                    .iter()
                    .map(|(suffix, help)| (CHECKPOINT_PREFIX, suffix, help))
                    .zip(checkpoint_metrics),
            )
            .filter(|(_, metrics)| !metrics.is_empty())
            .map(|((prefix, suffix, help), metrics)| {
                let mut family = MetricFamily::default();
                family.set_name(format!("{prefix}{suffix}"));
                family.set_help((*help).to_owned());
                family.set_field_type(MetricType::GAUGE);
                family.set_metric(metrics);
                family
            })
            .collect()
    }
}

fn gauge(names: &[&str], values: &[String], value: f64) -> Metric {
    let labels = names
        .iter()
        .zip(values)
        .map(|(name, value)| {
            let mut label = LabelPair::default();
            label.set_name((*name).to_owned());
            label.set_value(value.clone());
            label
        })
        .collect();
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_gauge(gauge);
    metric.set_label(labels);
    metric
}

/// [`Mm2Metrics`] as a collector of the registry; the values are computed at each scrape.
pub(crate) struct Mm2Collector(pub(crate) Arc<Mm2Metrics>);

impl Collector for Mm2Collector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.families(now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_stats_cover_two_samples_of_thirty_seconds() {
        let mut stat = Sampled::default();
        assert!(stat.avg(0).is_nan() && stat.max(0).is_nan() && stat.min(0).is_nan());
        assert_eq!(stat.rate(0), 0.0);
        stat.record(10.0, 1_000);
        stat.record(30.0, 2_000);
        assert_eq!(
            (stat.avg(2_000), stat.min(2_000), stat.max(2_000)),
            (20.0, 10.0, 30.0)
        );
        // Within one sample, the rate is over one sample's length (30 s).
        assert_eq!(stat.rate(2_000), 40.0 / 30.0);
        // A second sample starts 30 s after the first; both count.
        stat.record(50.0, 31_000);
        assert_eq!((stat.avg(31_000), stat.max(31_000)), (30.0, 50.0));
        assert_eq!(stat.rate(41_000), 90.0 / 40.0);
        // The first sample (from 1 s) leaves the window at 61 s; the third replaces it.
        assert_eq!((stat.min(61_000), stat.max(61_000)), (50.0, 50.0));
        stat.record(5.0, 62_000);
        assert_eq!((stat.min(62_000), stat.max(62_000)), (5.0, 50.0));
        // Nothing recorded for a whole window: no values again.
        assert!(stat.avg(130_000).is_nan());
        assert_eq!(stat.rate(130_000), 0.0);
    }

    #[test]
    fn a_series_leaves_with_its_holder() {
        let metrics = Mm2Metrics::new().unwrap();
        let series = metrics.source_series("A", "B", "A.orders", 3);
        series.polled(Some(900), 1_000);
        series.replicated(Some(900), 5, 1_100);
        series.replicated(Some(950), 7, 1_200);
        let families = metrics.families(1_300);
        let value = |name: &str| {
            families
                .iter()
                .find(|family| family.name() == format!("{SOURCE_PREFIX}{name}"))
                .map(|family| family.get_metric()[0].get_gauge().get_value())
        };
        assert_eq!(value("record_count"), Some(2.0));
        assert_eq!(value("byte_count"), Some(12.0));
        assert_eq!(value("replication_latency_ms_max"), Some(250.0));
        assert_eq!(value("replication_latency_ms_min"), Some(200.0));
        assert_eq!(value("record_age_ms_avg"), Some(100.0));
        let labels: Vec<(String, String)> = families[0].get_metric()[0]
            .get_label()
            .iter()
            .map(|label| (label.name().to_owned(), label.value().to_owned()))
            .collect();
        assert_eq!(
            labels,
            [
                ("source", "A"),
                ("target", "B"),
                ("topic", "A.orders"),
                ("partition", "3")
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
        );
        drop(series);
        assert!(metrics.families(1_300).is_empty());
    }

    #[test]
    fn checkpoint_series_are_forgotten_per_flow() {
        let metrics = Mm2Metrics::new().unwrap();
        metrics.checkpoint_acknowledged(("A", "B"), "g", "A.orders", 0, 1_000, 1_040);
        metrics.checkpoint_acknowledged(("C", "B"), "g", "C.orders", 0, 1_000, 1_010);
        assert_eq!(metrics.families(1_050).len(), CHECKPOINT_FAMILIES.len());
        metrics.forget_checkpoints("A", "B");
        let families = metrics.families(1_050);
        assert_eq!(families[0].get_metric().len(), 1);
        assert_eq!(families[1].get_metric()[0].get_gauge().get_value(), 10.0);
    }
}
