//! `ferry plan`: prints what `ferry run` would do against the live clusters, writing nothing.
//!
//! The configuration and plugins are checked and loaded as `run` does, the clusters must
//! answer, then each enabled flow's plan is gathered (`crate::flow::plan`) and printed to
//! stdout: a table for people, or with `--json` one JSON document
//! `{"flows": [<FlowPlan>, ...]}` (the shape is documented in `docs/operations.md`).

use std::fmt::Write as _;

use serde::Serialize;

use super::failure::Failure;
use super::{Console, Source, check_clusters, load_checked, print_report};
use crate::flow::plan::{self, FlowPlan};
use crate::plugins::EngineOptions;

/// `ferry plan --json`.
#[derive(Serialize)]
struct Plans<'a> {
    flows: &'a [FlowPlan],
}

/// Runs `ferry plan`.
///
/// # Errors
/// Exit code 2 for an invalid configuration or plugin, 1 when a cluster does not answer or
/// cannot be read.
pub(super) async fn plan(
    source: Source,
    json: bool,
    options: EngineOptions,
    console: Console,
) -> Result<(), Failure> {
    let (config, flows) = load_checked(&source, options, Vec::new(), |unused| {
        console.note(&format!("not used by Ferry: {unused}"));
    })?;
    check_clusters(&config).await?;
    let mut plans = Vec::with_capacity(flows.len());
    for (flow, policy) in flows {
        let plan = plan::gather(&config, &flow, policy)
            .await
            .map_err(|error| Failure::runtime(crate::error_chain(&error)))?;
        plans.push(plan);
    }
    let report = if json {
        let mut text = serde_json::to_string_pretty(&Plans { flows: &plans })
            .map_err(|error| Failure::runtime(format!("writing the plan failed: {error}")))?;
        text.push('\n');
        text
    } else {
        plans.iter().map(table).collect()
    };
    print_report(&report);
    Ok(())
}

/// One flow's plan as text.
fn table(plan: &FlowPlan) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "flow {}", plan.flow);
    let mirrored = plan.topics.iter().filter(|line| line.remote.is_some());
    let _ = writeln!(text, "  topics mirrored ({}):", mirrored.clone().count());
    for line in mirrored {
        let _ = writeln!(
            text,
            "    {} ({} partitions) -> {}",
            line.topic,
            line.partitions,
            line.remote.as_deref().unwrap_or_default()
        );
    }
    let excluded = plan.topics.iter().filter(|line| line.remote.is_none());
    let _ = writeln!(text, "  topics excluded ({}):", excluded.clone().count());
    for line in excluded {
        let _ = writeln!(
            text,
            "    {}: {} ({})",
            line.topic,
            line.excluded_by.unwrap_or_default(),
            line.reason.as_deref().unwrap_or_default()
        );
    }
    let _ = writeln!(text, "  topics to create ({}):", plan.create_topics.len());
    for create in &plan.create_topics {
        let _ = writeln!(
            text,
            "    {} ({} partitions)",
            create.remote, create.partitions
        );
    }
    let _ = writeln!(text, "  partitions to add ({}):", plan.add_partitions.len());
    for grow in &plan.add_partitions {
        let _ = writeln!(text, "    {}: {} -> {}", grow.remote, grow.from, grow.to);
    }
    match &plan.configs {
        None => text.push_str("  configs: not synced (sync_topic_configs is off)\n"),
        Some(changes) => {
            let _ = writeln!(text, "  configs to sync ({} topics):", changes.len());
            for change in changes {
                let set: Vec<String> = change
                    .set
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                let _ = writeln!(
                    text,
                    "    {}: set {}; reset {}",
                    change.remote,
                    if set.is_empty() {
                        "-".to_owned()
                    } else {
                        set.join(", ")
                    },
                    if change.reset.is_empty() {
                        "-".to_owned()
                    } else {
                        change.reset.join(", ")
                    }
                );
            }
        }
    }
    match &plan.acls {
        None => text.push_str("  ACLs: not synced (sync_topic_acls is off)\n"),
        Some(acls) => {
            let _ = writeln!(text, "  ACLs to create ({}):", acls.len());
            for acl in acls {
                let _ = writeln!(
                    text,
                    "    {} {} {} on topic {} from {}",
                    acl.permission, acl.principal, acl.operation, acl.topic, acl.host
                );
            }
        }
    }
    match &plan.groups {
        None => text.push_str("  groups: not checkpointed (emit_checkpoints is off)\n"),
        Some(groups) => {
            let checkpointed = groups.groups.iter().filter(|line| line.checkpointed);
            let _ = writeln!(
                text,
                "  groups checkpointed{} ({}):",
                if groups.offsets_synced {
                    " and offsets synced"
                } else {
                    ""
                },
                checkpointed.clone().count()
            );
            for line in checkpointed {
                let _ = writeln!(text, "    {}", line.group);
            }
            let excluded = groups.groups.iter().filter(|line| !line.checkpointed);
            let _ = writeln!(text, "  groups excluded ({}):", excluded.clone().count());
            for line in excluded {
                let _ = writeln!(
                    text,
                    "    {}: {}",
                    line.group,
                    line.excluded_by.unwrap_or_default()
                );
            }
        }
    }
    text
}
