//! `ferry plugin check`: what a plugin author runs before deploying a component. It names the
//! world the component implements, loads it in the same sandbox as `ferry run` (same engine,
//! same limits, same precompiled cache), calls `init` with the given configuration and prints
//! the plugin's answers on sample inputs.
//!
//! For a replication policy: a table of sample topics with their remote name and what the
//! policy says about that remote name (`topic-source`, `upstream-topic`, `original-topic`), whether
//! the answers round-trip (the condition for MM2's cycle detection), and the internal topic
//! names. A policy whose remote names do not round-trip is reported as a bad plugin.

use std::fmt::Write as _;
use std::path::Path;

use crate::cli::Failure;
use crate::plugins::{Engine, Inspection, PluginKind, PluginSource, Policy, inspect};

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
        other => {
            let _ = writeln!(
                report,
                "(this Ferry build cannot run {} plugins on samples yet; the component loads and links)",
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
    let wasi = inspection
        .imports
        .iter()
        .filter(|name| name.starts_with("wasi:"))
        .count();
    let _ = writeln!(
        report,
        "imports: {} WASI interface(s) (linked to an empty context: no files, network, environment or clocks){}",
        wasi,
        if wasi == inspection.imports.len() {
            String::new()
        } else {
            format!(
                "; other: {}",
                inspection
                    .imports
                    .iter()
                    .filter(|name| !name.starts_with("wasi:"))
                    .cloned()
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
