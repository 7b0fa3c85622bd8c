//! `ferry plugin check`: what a plugin author runs before deploying a component. It names the
//! world the component implements, loads it in the same sandbox as `ferry run` (same engine,
//! same limits, same precompiled cache), calls `init` with the given configuration and prints
//! the plugin's answers on sample inputs.
//!
//! For a replication policy: a table of sample topics with their remote name and what the
//! policy says about that remote name (`topic-source`, `upstream-topic`, `original-topic`), whether
//! the answers round-trip (the condition for MM2's cycle detection), and the internal topic
//! names. A policy whose remote names do not round-trip is reported as a bad plugin.
//!
//! For a record filter or transform: a few sample records (or `--record` ones) run through it
//! as one batch, exactly as the data path does (same packing, same chain code), with the
//! verdict per record and, for a replaced record, its new key, value and headers.

use std::fmt::Write as _;
use std::path::Path;

use super::failure::Failure;
use crate::plugins::{
    ChainSpec, Disposition, Engine, Inspection, PackedBatch, PluginKind, PluginSource, Policy,
    RecordInput, RecordView, inspect,
};

/// The topics a policy is shown when `--topic` is not given: plain, dotted, already remote
/// (from the source or from the target), a heartbeats topic and internal topics.
const SAMPLE_TOPICS: [&str; 8] = [
    "orders",
    "prod.orders.global",
    "{source}.orders",
    "{target}.orders",
    "heartbeats",
    "__consumer_offsets",
    "mm2-offset-syncs.{target}.internal",
    "{source}.checkpoints.internal",
];

/// What `ferry plugin check` was asked.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// `builtin:<name>` or a path.
    pub plugin: String,
    /// `--with key=value`, in order.
    pub with: Vec<(String, String)>,
    /// `--source-alias`.
    pub source_alias: String,
    /// `--target-alias`.
    pub target_alias: String,
    /// `--topic`; empty for the samples.
    pub topics: Vec<String>,
    /// `--record`; empty for the samples.
    pub records: Vec<SampleRecord>,
}

/// A record to run a filter or transform on: `--record '{"key": "k", "value": "{...}",
/// "headers": {"env": "test"}}'` (every field optional; `null` for a null key or value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRecord {
    /// The key, UTF-8.
    #[serde(default)]
    pub key: Option<String>,
    /// The value, UTF-8.
    #[serde(default)]
    pub value: Option<String>,
    /// Headers, by name.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

impl SampleRecord {
    fn new(key: Option<&str>, value: Option<&str>, headers: &[(&str, &str)]) -> SampleRecord {
        SampleRecord {
            key: key.map(str::to_owned),
            value: value.map(str::to_owned),
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }
}

/// Parses a `--record` JSON object.
///
/// # Errors
///
/// The JSON error.
pub fn parse_record(text: &str) -> Result<SampleRecord, String> {
    serde_json::from_str(text).map_err(|error| {
        format!("expected a JSON object like {{\"key\": \"k\", \"value\": \"v\", \"headers\": {{\"h\": \"x\"}}}}: {error}")
    })
}

/// The records a filter or transform is shown when `--record` is not given.
fn sample_records() -> Vec<SampleRecord> {
    vec![
        SampleRecord::new(
            Some("order-1"),
            Some(r#"{"id":1,"ssn":"123-45-6789","name":"Ada"}"#),
            &[("env", "prod")],
        ),
        SampleRecord::new(
            Some("order-2"),
            Some(r#"{"id":2,"ssn":"987-65-4321","name":"Grace"}"#),
            &[("env", "test")],
        ),
        SampleRecord::new(Some("order-3"), Some("plain text, not JSON"), &[]),
        SampleRecord::new(Some("order-4"), None, &[("env", "prod")]),
    ]
}

/// Parses `key=value` (for `--with`).
///
/// # Errors
///
/// A message when there is no `=` or the key is empty.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected key=value, got `{text}`")),
    }
}

/// Runs the check, writing the report (for stdout) into `report` as it goes, so that what was
/// learnt before a failure is shown too.
pub(crate) fn check(
    engine: &Engine,
    request: &CheckRequest,
    report: &mut String,
) -> Result<(), Failure> {
    let source = PluginSource::parse(&request.plugin, Path::new("."));
    let bad_plugin =
        |error: &crate::plugins::PluginError| Failure::config(vec![crate::error_chain(error)]);
    let inspection = inspect(engine, &source).map_err(|error| bad_plugin(&error))?;
    describe(report, &inspection);
    let Some(kind) = inspection.kinds.first().copied() else {
        return Err(Failure::config(vec![no_world(&inspection)]));
    };
    let mut config = request.with.clone();
    config.push((
        "source.cluster.alias".to_owned(),
        request.source_alias.clone(),
    ));
    config.push((
        "target.cluster.alias".to_owned(),
        request.target_alias.clone(),
    ));
    let _ = writeln!(report, "config:  {}", show_config(&config));
    match kind {
        PluginKind::Policy => {
            let started = std::time::Instant::now();
            let policy =
                Policy::load(engine, &source, &config).map_err(|error| bad_plugin(&error))?;
            let _ = writeln!(
                report,
                "init:    ok ({:.1} ms, instantiation included)",
                started.elapsed().as_secs_f64() * 1e3
            );
            check_policy(report, &policy, request)?;
        }
        PluginKind::RecordFilter | PluginKind::RecordTransform => {
            let started = std::time::Instant::now();
            let plugins = [(source, config)];
            let (filters, transforms): (&[_], &[_]) = if kind == PluginKind::RecordFilter {
                (&plugins, &[])
            } else {
                (&[], &plugins)
            };
            let chain =
                ChainSpec::load(engine, filters, transforms).map_err(|error| bad_plugin(&error))?;
            let _ = writeln!(
                report,
                "init:    ok ({:.1} ms, instantiation included)",
                started.elapsed().as_secs_f64() * 1e3
            );
            let records = if request.records.is_empty() {
                sample_records()
            } else {
                request.records.clone()
            };
            check_records(report, &chain, &records, request)?;
        }
        other => {
            let _ = writeln!(
                report,
                "(`ferry plugin check` does not run {} plugins on samples; the component loads and links)",
                other.name()
            );
        }
    }
    Ok(())
}

fn describe(report: &mut String, inspection: &Inspection) {
    let _ = writeln!(report, "plugin:  {}", inspection.plugin);
    let world = match inspection.kinds.as_slice() {
        [] => "none of Ferry's".to_owned(),
        kinds => kinds
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let _ = writeln!(report, "world:   {world}");
    let _ = writeln!(
        report,
        "size:    {} KiB; {} in {:.1} ms",
        inspection.size.div_ceil(1024),
        inspection.origin,
        inspection.compile_time.as_secs_f64() * 1e3
    );
    // Type-only interfaces of Ferry's own package (`ferry:plugin/types`) need no linking.
    let known = |name: &&String| name.starts_with("wasi:") || name.starts_with("ferry:plugin/");
    let wasi = inspection
        .imports
        .iter()
        .filter(|name| name.starts_with("wasi:"))
        .count();
    let others: Vec<&String> = inspection
        .imports
        .iter()
        .filter(|name| !known(name))
        .collect();
    let _ = writeln!(
        report,
        "imports: {} WASI interface(s) (linked to an empty context: no files, network, environment or clocks){}",
        wasi,
        if others.is_empty() {
            String::new()
        } else {
            format!(
                "; other: {}",
                others
                    .iter()
                    .map(|name| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
}

fn no_world(inspection: &Inspection) -> String {
    let exports = if inspection.exports.is_empty() {
        "nothing".to_owned()
    } else {
        inspection
            .exports
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let known = PluginKind::ALL
        .iter()
        .map(|kind| format!("`{}` ({})", kind.interface(), kind.name()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "plugin `{}` implements no Ferry world: it exports {exports}; a Ferry plugin exports one of {known}",
        inspection.plugin
    )
}

fn show_config(config: &[(String, String)]) -> String {
    config
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row of the policy table.
struct Row {
    topic: String,
    remote: String,
    source: String,
    upstream: String,
    original: String,
    note: String,
    broken: Option<String>,
}

fn check_policy(
    report: &mut String,
    policy: &Policy,
    request: &CheckRequest,
) -> Result<(), Failure> {
    let (source_alias, target_alias) = (&request.source_alias, &request.target_alias);
    let failed =
        |error: crate::plugins::PluginError| Failure::config(vec![crate::error_chain(&error)]);
    let topics: Vec<String> = if request.topics.is_empty() {
        SAMPLE_TOPICS
            .iter()
            .map(|topic| {
                topic
                    .replace("{source}", source_alias)
                    .replace("{target}", target_alias)
            })
            .collect()
    } else {
        request.topics.clone()
    };
    let show = |answer: Option<String>| answer.unwrap_or_else(|| "-".to_owned());
    let mut rows = Vec::new();
    for topic in &topics {
        if policy.is_internal_topic(topic).map_err(failed)? {
            let kind = if policy.is_checkpoints_topic(topic).map_err(failed)? {
                "checkpoints topic, "
            } else if policy.is_mm2_internal_topic(topic).map_err(failed)? {
                "MM2 internal topic, "
            } else {
                ""
            };
            rows.push(Row {
                topic: topic.clone(),
                remote: "-".to_owned(),
                source: "-".to_owned(),
                upstream: "-".to_owned(),
                original: "-".to_owned(),
                note: format!("{kind}internal: never mirrored"),
                broken: None,
            });
            continue;
        }
        let remote = policy
            .format_remote_topic(source_alias, topic)
            .map_err(failed)?;
        let source = policy.topic_source(&remote).map_err(failed)?;
        let upstream = policy.upstream_topic(&remote).map_err(failed)?;
        let original = policy.original_topic(&remote).map_err(failed)?;
        let mut notes = Vec::new();
        if policy.is_heartbeats_topic(topic).map_err(failed)? {
            notes.push("heartbeats".to_owned());
        }
        // MM2's isCycle for the reverse flow (target -> source): the remote topic must be seen
        // as coming from the source cluster, or it would be mirrored back.
        let broken = if source.as_deref() != Some(source_alias.as_str()) {
            Some(format!(
                "topic-source({remote:?}) is {source:?}, not {source_alias:?}: a flow \
                 {target_alias} -> {source_alias} would mirror it back (cycle detection fails)"
            ))
        } else if upstream.as_deref() != Some(topic.as_str()) {
            Some(format!(
                "upstream-topic({remote:?}) is {upstream:?}, not {topic:?}: remote names do not map back"
            ))
        } else {
            None
        };
        notes.push(if broken.is_some() {
            "ROUND TRIP BROKEN".to_owned()
        } else {
            "round trip ok".to_owned()
        });
        rows.push(Row {
            topic: topic.clone(),
            remote,
            source: show(source),
            upstream: show(upstream),
            original,
            note: notes.join(", "),
            broken,
        });
    }
    let _ = writeln!(report);
    let header = [
        format!("topic on {source_alias}"),
        format!("format-remote-topic({source_alias}, topic)"),
        "topic-source(remote)".to_owned(),
        "upstream-topic(remote)".to_owned(),
        "original-topic(remote)".to_owned(),
        "notes".to_owned(),
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.topic.clone(),
                row.remote.clone(),
                row.source.clone(),
                row.upstream.clone(),
                row.original.clone(),
                row.note.clone(),
            ]
        })
        .collect();
    write_table(report, &header, &cells);
    let _ = writeln!(report);
    let _ = writeln!(
        report,
        "heartbeats-topic() = {}",
        policy.heartbeats_topic().map_err(failed)?
    );
    let _ = writeln!(
        report,
        "checkpoints-topic({source_alias}) = {}",
        policy.checkpoints_topic(source_alias).map_err(failed)?
    );
    let _ = writeln!(
        report,
        "offset-syncs-topic({target_alias}) = {}",
        policy.offset_syncs_topic(target_alias).map_err(failed)?
    );
    let problems: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            row.broken
                .as_ref()
                .map(|why| format!("policy `{}`, topic `{}`: {why}", policy.name(), row.topic))
        })
        .collect();
    if problems.is_empty() {
        let _ = writeln!(
            report,
            "\nok: {} is a usable replication policy",
            policy.name()
        );
        Ok(())
    } else {
        Err(Failure::config(problems))
    }
}

/// Runs `records` through the chain as one batch and writes one row per record.
fn check_records(
    report: &mut String,
    chain: &ChainSpec,
    records: &[SampleRecord],
    request: &CheckRequest,
) -> Result<(), Failure> {
    let topic = "orders";
    let remote = format!("{}.{topic}", request.source_alias);
    let mut batch = PackedBatch::default();
    for (offset, record) in records.iter().enumerate() {
        batch.push(RecordInput {
            topic,
            remote_topic: &remote,
            partition: 0,
            offset: i64::try_from(offset).unwrap_or(i64::MAX),
            key: record.key.as_deref().map(str::as_bytes),
            value: record.value.as_deref().map(str::as_bytes),
            timestamp: Some(1_700_000_000_000),
            headers: record
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), Some(value.as_bytes()))),
        });
    }
    let mut running = chain.start();
    let output = running.run(&batch);
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (index, (record, disposition)) in records.iter().zip(output.dispositions()).enumerate() {
        let input = [
            index.to_string(),
            show_text(record.key.as_deref()),
            show_text(record.value.as_deref()),
            show_headers(
                record
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), Some(value.as_bytes()))),
            ),
        ];
        let (verdict, result) = match disposition {
            Disposition::Keep => ("keep".to_owned(), "(unchanged)".to_owned()),
            Disposition::Drop => ("drop".to_owned(), "(not replicated)".to_owned()),
            Disposition::Replace {
                output: stage,
                index,
            } => (
                "replace".to_owned(),
                output
                    .replacement(*stage, *index)
                    .map_or_else(|| "(missing replacement)".to_owned(), show_view),
            ),
            Disposition::Fail {
                plugin,
                message,
                fatal,
            } => {
                if *fatal {
                    problems.push(format!(
                        "plugin `{plugin}` failed the whole batch on record {index}: {message}"
                    ));
                }
                (
                    if *fatal { "FAIL (batch)" } else { "fail" }.to_owned(),
                    message.clone(),
                )
            }
        };
        let [number, key, value, headers] = input;
        rows.push([number, key, value, headers, verdict, result]);
    }
    let header = ["#", "key", "value", "headers", "verdict", "output / reason"].map(str::to_owned);
    let _ = writeln!(report);
    write_table(report, &header, &rows);
    let _ = writeln!(
        report,
        "\n(`fail` is a per-record error: the flow's `on_error` policy decides: halt, skip or dead-letter)"
    );
    if problems.is_empty() {
        let _ = writeln!(report, "\nok: the plugin answered every record");
        Ok(())
    } else {
        Err(Failure::config(problems))
    }
}

/// Text for a table cell: `null`, or the text cut to 60 characters.
fn show_text(text: Option<&str>) -> String {
    match text {
        None => "null".to_owned(),
        Some(text) if text.chars().count() > 60 => {
            format!("{}…", text.chars().take(59).collect::<String>())
        }
        Some(text) => text.to_owned(),
    }
}

fn show_bytes(bytes: Option<&[u8]>) -> String {
    show_text(bytes.map(String::from_utf8_lossy).as_deref())
}

fn show_headers<'a>(headers: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>) -> String {
    let shown: Vec<String> = headers
        .map(|(name, value)| format!("{name}={}", show_bytes(value)))
        .collect();
    if shown.is_empty() {
        "-".to_owned()
    } else {
        shown.join(",")
    }
}

fn show_view(view: RecordView<'_>) -> String {
    format!(
        "key={} value={} headers={}",
        show_bytes(view.key()),
        show_bytes(view.value()),
        show_headers(view.headers())
    )
}

/// Writes a left-aligned table with a header line.
fn write_table<const N: usize>(report: &mut String, header: &[String; N], rows: &[[String; N]]) {
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |report: &mut String, cells: &[String; N]| {
        let mut text = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        let _ = writeln!(report, "{}", text.trim_end());
    };
    line(report, header);
    for row in rows {
        line(report, row);
    }
}
