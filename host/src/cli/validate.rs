//! `ferry validate`: the file and its plugins checked as `run` checks them, and, unless
//! `--offline`, the clusters asked what `run` would need of them: that they answer, the
//! durability the flows ask for, and transactions on the targets of exactly-once flows.

use std::sync::Arc;

use super::{Console, Failure, Source, check_clusters, load_checked};
use crate::config::Config;
use crate::kafka::Admin;
use crate::plugins::EngineOptions;

pub(super) async fn validate(
    source: Source,
    offline: bool,
    options: EngineOptions,
    console: Console,
) -> Result<(), Failure> {
    let (config, policies) = load_checked(&source, options, Vec::new(), |unused| {
        console.note(&format!("not used by Ferry: {unused}"));
    })?;
    let path = source.path();
    for line in delivery_modes(&config) {
        console.note(&line);
    }
    if !offline {
        check_clusters(&config).await?;
        for line in durability_problems(&config).await {
            console.note(&line);
        }
        for line in transaction_checks(&config).await {
            console.note(&line);
        }
    }
    console.outcome(&format!(
        "{}: valid ({} clusters, {} flows, {} enabled{})",
        path.display(),
        config.clusters.len(),
        config.flows.len(),
        policies.len(),
        if offline {
            "; clusters not contacted"
        } else {
            "; clusters answered"
        }
    ));
    Ok(())
}

/// Which delivery guarantee each enabled flow runs with, and what that asks of readers.
fn delivery_modes(config: &Config) -> Vec<String> {
    config
        .flows
        .iter()
        .filter(|flow| flow.enabled)
        .map(|flow| match flow.exactly_once {
            true => format!(
                "flow {}: exactly once (`exactly_once`): each task commits its records and positions in one target transaction every {:?} or {} records; readers of the remote topics need isolation.level=read_committed",
                flow.id, flow.transaction_interval, flow.transaction_records
            ),
            false => format!(
                "flow {}: at least once (the default; `exactly_once = true` turns transactions on): a crash or failover copies again what was replicated since the last position store (every {:?})",
                flow.id, flow.commit_interval
            ),
        })
        .collect()
}

/// How long `validate` gives a target to initialise a transaction (a task gets as long).
const TRANSACTION_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether the target of each enabled exactly-once flow runs transactions: a probe producer
/// (`transactional.id` `<group_id>.validate`, never a task's) initialises transactions as each
/// task does first. A target that cannot is named with the error: the flow still runs exactly
/// once (never silently at least once), and its tasks fail to start until that is fixed.
async fn transaction_checks(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    for flow in config
        .flows
        .iter()
        .filter(|flow| flow.enabled && flow.exactly_once)
    {
        let Some(cluster) = config.clusters.get(&flow.target).cloned() else {
            continue;
        };
        let id = format!("{}.validate", flow.group_id);
        let probe_id = id.clone();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            crate::kafka::probe_transactions(&cluster, &probe_id, TRANSACTION_PROBE_TIMEOUT)
        })
        .await;
        let target = &flow.target;
        lines.push(match result {
            Ok(Ok(())) => format!(
                "flow {}: exactly once can run: cluster `{target}` initialised a transaction in {} ms (probe transactional.id `{id}`)",
                flow.id,
                started.elapsed().as_millis()
            ),
            Ok(Err(error)) => format!(
                "flow {}: exactly once cannot run on cluster `{target}`: initialising a transaction failed: {error}; its tasks fail to start until this is fixed (a broker older than Kafka 0.11, `transaction.state.log.replication.factor` above the broker count, or no WRITE/DESCRIBE ACL on TransactionalId `{}.task-*`)",
                flow.id, flow.group_id
            ),
            Err(error) => format!("flow {}: the transaction probe failed: {error}", flow.id),
        });
    }
    lines
}

/// Where the replication a flow asks for cannot be had on its target: a factor above the
/// target's broker count (topic creation fails), or `auto` below 3 (no broker may be lost).
async fn durability_problems(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    for flow in config.flows.iter().filter(|flow| flow.enabled) {
        let Some(cluster) = config.clusters.get(&flow.target) else {
            continue;
        };
        let Ok(admin) = Admin::new(flow.target.as_str(), cluster) else {
            continue;
        };
        let Ok(brokers) = Arc::new(admin).broker_count().await else {
            continue;
        };
        let asked = flow.replication_factor;
        let target = &flow.target;
        if asked == crate::kafka::AUTO_REPLICATION && brokers < 3 {
            lines.push(format!(
                "flow {}: replication_factor = 0 (auto) gives {} on cluster `{target}` ({brokers} broker(s)): the topics Ferry creates there do not survive a broker's loss",
                flow.id,
                brokers.max(1)
            ));
        } else if usize::try_from(asked).is_ok_and(|asked| asked > brokers) {
            lines.push(format!(
                "flow {}: replication_factor = {asked}, but cluster `{target}` has {brokers} broker(s): creating topics there will fail",
                flow.id
            ));
        }
    }
    lines
}
