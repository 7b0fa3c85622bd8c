//! MM2-compatible topic config sync and topic ACL sync, run periodically per flow.
//!
//! This module owns what MM2's `MirrorSourceConnector` does besides copying records and
//! creating topics: `syncTopicConfigs` ([`configs`]; `docs/mm2-facts.md`, "Topic config sync") and `syncTopicAcls`
//! ([`acls`]; "Topic ACL sync"). Both act only on the topics of the flow's current catalog (mirrored
//! topics whose remote topic exists), each on its own interval (`sync_topic_configs`,
//! `sync_topic_acls`; disabled when unset), started by the flow (`flow::start`) and
//! syncing as soon as the topic manager published the first topics. A failed sync is logged and retried at the next interval; it never stops the flow.
//!
//! What is never done: deleting an ACL from the target, and replacing a remote topic's whole
//! configuration (changes are incremental: only the properties that differ are SET or DELETEd,
//! and excluded properties are never touched). The librdkafka calls rdkafka does not wrap are in
//! `crate::kafka::ffi`; the rules deciding what to copy are pure functions tested beside them.

pub(crate) mod acls;
pub(crate) mod configs;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::FlowContext;
use crate::config::{Flow, FlowId};
use crate::events::{CallsSeen, Events, SettingsKind};
use crate::kafka::{Admin, AdminCallError};
use crate::metrics::Metrics;
use crate::replication::catalog::Catalog;

/// The shortest sync interval used, whatever the configuration says (a zero interval would
/// make the timer panic).
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What the syncs of one flow share.
pub(crate) struct SettingsContext {
    /// The flow, for messages and metric labels.
    pub(crate) flow: FlowId,
    /// The flow's configuration.
    pub(crate) flow_config: Flow,
    /// The flow's config-property filter plugin, if any.
    pub(crate) property_filter: Option<Arc<crate::plugins::Slot<crate::plugins::NameFilter>>>,
    /// The source cluster.
    pub(crate) source: Arc<Admin>,
    /// The target cluster.
    pub(crate) target: Arc<Admin>,
    catalog: watch::Receiver<Arc<Catalog>>,
    metrics: Arc<Metrics>,
}

impl SettingsContext {
    /// The current catalog of mirrored topics.
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(&self.catalog.borrow())
    }

    /// Waits until the topic manager published a catalog with topics; `false` when the flow
    /// stopped first.
    async fn first_catalog(&self) -> bool {
        let mut catalog = self.catalog.clone();
        while catalog.borrow_and_update().topics.is_empty() {
            if catalog.changed().await.is_err() {
                return false;
            }
        }
        true
    }
}

/// Errors of one sync run. Each is retried at the next interval.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    /// Topic configurations could not be read (the cause names the cluster).
    #[error("reading topic configurations failed")]
    DescribeConfigs {
        /// The cause.
        #[source]
        source: Box<AdminCallError>,
    },
    /// The IncrementalAlterConfigs request failed as a whole.
    #[error("changing topic configurations on {cluster} failed")]
    AlterConfigs {
        /// The target cluster.
        cluster: String,
        /// The cause.
        #[source]
        source: crate::kafka::ffi::NativeError,
    },
    /// Topic ACLs could not be read.
    #[error("reading the topic ACLs of {cluster} failed")]
    DescribeAcls {
        /// The cluster.
        cluster: String,
        /// The cause.
        #[source]
        source: crate::kafka::ffi::NativeError,
    },
    /// The CreateAcls request failed as a whole.
    #[error("creating topic ACLs on {cluster} failed")]
    CreateAcls {
        /// The target cluster.
        cluster: String,
        /// The cause.
        #[source]
        source: crate::kafka::ffi::NativeError,
    },
}

/// Starts the enabled syncs of a flow in `tasks`; they run until `tasks` is dropped. Each
/// waits for the first catalog with topics, then syncs at once and every interval.
pub(crate) fn spawn(
    tasks: &mut JoinSet<()>,
    flow: &FlowContext,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
) {
    let context = Arc::new(SettingsContext {
        flow: flow.tasks.flow.id.clone(),
        flow_config: flow.tasks.flow.clone(),
        property_filter: flow.name_filters.config_properties.clone(),
        source: Arc::clone(source),
        target: Arc::clone(target),
        catalog: flow.tasks.catalog.clone(),
        metrics: Arc::clone(&flow.tasks.metrics),
    });
    if let Some(interval) = flow.tasks.flow.sync_topic_configs {
        tasks.spawn(run_config_sync(Arc::clone(&context), interval));
    }
    if let Some(interval) = flow.tasks.flow.sync_topic_acls {
        tasks.spawn(run_acl_sync(context, interval));
    }
}

fn timer(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period.max(MIN_INTERVAL));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}

/// Syncs topic configurations every `period`, the first time as soon as topics are mirrored.
/// Runs until aborted.
async fn run_config_sync(context: Arc<SettingsContext>, period: Duration) {
    if !context.first_catalog().await {
        return;
    }
    let flow = context.flow.to_string();
    let synced = context
        .metrics
        .topic_configs_synced
        .with_label_values(&[&flow]);
    let events = Events::new(&context.metrics, &context.flow);
    let mut filter_calls = CallsSeen::default();
    let mut interval = timer(period);
    loop {
        interval.tick().await;
        match configs::sync_configs(&context).await {
            Ok(outcome) => {
                synced.inc_by(outcome.topics_changed);
                events.settings_refused(SettingsKind::Configs, outcome.topics_failed);
            }
            Err(error) => events.settings_sync_failed(SettingsKind::Configs, &error),
        }
        if let Some(slot) = &context.property_filter {
            let filter = slot.current();
            events.plugin_calls_so_far(
                filter.name(),
                Arc::as_ptr(&filter) as usize,
                (filter.calls(), filter.errors()),
                &mut filter_calls,
            );
        }
    }
}

/// Syncs topic ACLs every `period`, the first time as soon as topics are mirrored. Runs until
/// aborted.
async fn run_acl_sync(context: Arc<SettingsContext>, period: Duration) {
    if !context.first_catalog().await {
        return;
    }
    let flow = context.flow.to_string();
    let synced = context.metrics.acls_synced.with_label_values(&[&flow]);
    let events = Events::new(&context.metrics, &context.flow);
    let mut security_disabled_logged = false;
    let mut interval = timer(period);
    loop {
        interval.tick().await;
        match acls::sync_acls(&context).await {
            Ok(outcome) => {
                synced.inc_by(outcome.created);
                events.settings_refused(SettingsKind::Acls, outcome.failed);
                if outcome.target_security_disabled && !security_disabled_logged {
                    security_disabled_logged = true;
                    tracing::info!(flow = %flow, cluster = %context.target.name(),
                        "The target cluster has no authorizer; topic ACLs are not synced to it.");
                }
            }
            Err(error) => events.settings_sync_failed(SettingsKind::Acls, &error),
        }
    }
}
