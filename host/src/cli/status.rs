//! `ferry status`: per flow, the instances of its task group, which instance owns which task
//! and partitions, the lag per partition, halted partitions with the record that halted them,
//! and the plugin versions; a table for people, or `--json` (the shape is
//! `flow::status::assemble::FlowReport`, documented in `docs/operations.md`). Everything is read
//! from the clusters (`flow::status::gather`), so it works from any machine that reaches them.
//!
//! Exit codes: 0 printed; 1 a cluster did not answer (nothing is printed for any flow); 2 the
//! configuration is invalid or `--flow` names no enabled flow.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Console, Source, failure::Failure};
use crate::config;
use crate::flow::status::assemble::FlowReport;
use crate::flow::status::gather;

/// What `ferry status --json` prints: one report per enabled flow.
#[derive(Debug, Serialize)]
struct Output<'a> {
    flows: &'a [FlowReport],
}

/// Runs `ferry status`. Blocking.
///
/// # Errors
/// Exit code 2 for an invalid configuration or an unknown `--flow`; 1 when a cluster does not
/// answer.
pub(super) fn status(
    source: &Source,
    json: bool,
    only: Option<&str>,
    console: Console,
) -> Result<(), Failure> {
    let checked = match source {
        Source::Toml(path) => config::check(path),
        Source::Mm2(path) => config::mm2::check_mm2(path).0,
    };
    if !checked.errors.errors.is_empty() {
        return Err(Failure::config(
            checked
                .errors
                .to_string()
                .lines()
                .map(str::to_owned)
                .collect(),
        ));
    }
    let config = checked.config;
    let flows: Vec<&config::Flow> = config
        .flows
        .iter()
        .filter(|flow| flow.enabled)
        .filter(|flow| only.is_none_or(|only| flow.id.as_str() == only))
        .collect();
    if let Some(only) = only
        && flows.is_empty()
    {
        return Err(Failure::config(vec![format!(
            "no enabled flow `{only}` in {}",
            source.path().display()
        )]));
    }
    let mut reports = Vec::with_capacity(flows.len());
    for flow in flows {
        let report = gather::gather(&config, flow)
            .map_err(|error| Failure::runtime(crate::error_chain(&error)))?;
        reports.push(report);
    }
    if json {
        let text = serde_json::to_string_pretty(&Output { flows: &reports })
            .map_err(|error| Failure::runtime(format!("writing JSON failed: {error}")))?;
        super::print_report(&format!("{text}\n"));
    } else {
        if reports.is_empty() {
            console.note("no flow is enabled");
        }
        let mut text = String::new();
        for report in &reports {
            render(report, &mut text);
        }
        super::print_report(&text);
    }
    Ok(())
}

/// A table: a header row and rows, columns padded to their widest cell.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::from("  ");
        for (index, cell) in cells.enumerate() {
            let width = widths.get(index).copied().unwrap_or(0);
            let _ = write!(text, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn seconds(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// Writes one flow's report as tables.
fn render(report: &FlowReport, out: &mut String) {
    let _ = writeln!(
        out,
        "flow {}: group `{}` ({}), {} tasks, {} instances, total lag {}",
        report.flow,
        report.group,
        report.group_state,
        report.task_count,
        report.instances.len(),
        report.total_lag
    );
    let _ = writeln!(out, "instances");
    let rows: Vec<Vec<String>> = report
        .instances
        .iter()
        .map(|instance| {
            vec![
                instance.instance.clone(),
                instance.host.clone(),
                list(&instance.tasks),
                or_dash(instance.ferry_version.clone()),
                instance
                    .record_age_ms
                    .map_or_else(|| "no record yet".to_owned(), seconds),
            ]
        })
        .collect();
    table(
        out,
        &["INSTANCE", "HOST", "TASKS", "VERSION", "REPORTED"],
        &rows,
    );
    let _ = writeln!(out, "tasks");
    let rows: Vec<Vec<String>> = report
        .tasks
        .iter()
        .map(|task| {
            let partitions: Vec<String> = task
                .partitions
                .iter()
                .map(|partition| format!("{}/{}", partition.topic, partition.partition))
                .collect();
            vec![
                task.task.to_string(),
                or_dash(task.owner.clone()),
                list(&partitions),
            ]
        })
        .collect();
    table(out, &["TASK", "OWNER", "PARTITIONS"], &rows);
    let _ = writeln!(out, "partitions");
    let rows: Vec<Vec<String>> = report
        .partitions
        .iter()
        .map(|partition| {
            vec![
                partition.topic.clone(),
                partition.partition.to_string(),
                or_dash(partition.remote.clone()),
                partition.task.to_string(),
                or_dash(partition.owner.clone()),
                or_dash(partition.position),
                or_dash(partition.high_watermark),
                or_dash(partition.lag),
                if partition.halted { "halted" } else { "" }.to_owned(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "TOPIC",
            "PARTITION",
            "REMOTE",
            "TASK",
            "OWNER",
            "POSITION",
            "HIGH",
            "LAG",
            "STATE",
        ],
        &rows,
    );
    if !report.halted.is_empty() {
        let _ = writeln!(out, "halted");
        let rows: Vec<Vec<String>> = report
            .halted
            .iter()
            .map(|halt| {
                vec![
                    halt.topic.clone(),
                    halt.partition.to_string(),
                    halt.offset.to_string(),
                    halt.plugin.clone(),
                    halt.instance.clone(),
                    halt.error.clone(),
                ]
            })
            .collect();
        table(
            out,
            &[
                "TOPIC",
                "PARTITION",
                "OFFSET",
                "PLUGIN",
                "INSTANCE",
                "ERROR",
            ],
            &rows,
        );
    }
    let _ = writeln!(out, "plugins");
    let rows: Vec<Vec<String>> = report
        .instances
        .iter()
        .flat_map(|instance| {
            instance.plugins.iter().map(|plugin| {
                vec![
                    instance.instance.clone(),
                    plugin.plugin.clone(),
                    plugin.kind.clone(),
                    plugin.active.clone(),
                    list(&plugin.draining),
                ]
            })
        })
        .collect();
    table(
        out,
        &["INSTANCE", "PLUGIN", "KIND", "ACTIVE", "DRAINING"],
        &rows,
    );
    if !report.gone.is_empty() {
        let _ = writeln!(out, "gone (status records of instances not in the group)");
        let rows: Vec<Vec<String>> = report
            .gone
            .iter()
            .map(|gone| vec![gone.instance.clone(), seconds(gone.record_age_ms)])
            .collect();
        table(out, &["INSTANCE", "LAST REPORT"], &rows);
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let mut out = String::new();
        table(
            &mut out,
            &["A", "BB"],
            &[
                vec!["long cell".to_owned(), "x".to_owned()],
                vec!["y".to_owned(), "z".to_owned()],
            ],
        );
        assert_eq!(out, "  A          BB\n  long cell  x\n  y          z\n");
    }
}
