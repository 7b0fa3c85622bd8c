//! A flow's control plane: everything around the record path that decides what is copied,
//! by whom, and what MM2's other connectors do.
//!
//! `start` prepares a flow (its bookkeeping topics, its plugins, the first catalog), then runs
//! until `RunningFlow::stop`:
//! * `topics`: the topic manager, an async task that keeps the catalog of mirrored topics
//!   current (selection through the policy, remote topic creation);
//! * `lease`: the task-lease member, a thread that owns this process's tasks through a
//!   consumer group on the target and starts and stops their workers
//!   (`crate::replication::worker`);
//! * `leader`: on the owner of task 0, heartbeats, checkpoints and group offset sync;
//! * `settings`: MM2's topic config and ACL sync, each on its own interval;
//! * `swap`: hot swap of the flow's plugins, for the admin endpoint and the file watcher;
//! * `plan`: `ferry plan`, what `run` would do, from the same decisions, writing nothing;
//! * `status`: `ferry status`: the status record this process publishes, and the command's
//!   reading and joining of the lease group, the status records and the positions;
//! * the cluster checks (`probe_clusters`): whether the source and target answer, for the
//!   flow's readiness (`crate::health`).

pub(crate) mod leader;
pub(crate) mod lease;
pub(crate) mod plan;
pub(crate) mod settings;
pub(crate) mod status;
pub(crate) mod swap;
pub(crate) mod topics;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, Flow};
use crate::events::Events;
use crate::health::FlowHealth;
use crate::kafka::{AUTO_REPLICATION, Admin, AdminCallError, Replication};
use crate::metrics::Metrics;
use crate::mm2::positions::POSITIONS_TOPIC_PARTITIONS;
use crate::plugins::{ChainSpec, NameFilter, NameFilterKind, Policy, PolicySlot, Slot, StageKind};
use crate::replication::catalog::Catalog;
use crate::replication::positions::{PositionReader, PositionsError};
use crate::replication::{OffsetSyncsLocation, TaskContext};
use swap::{FlowPlugins, NameStageSpec, StageSpec};

/// What a flow's control plane shares: the record path's context, and what only the topic
/// manager, the leader and hot swap use.
pub(crate) struct FlowContext {
    /// What the flow's tasks share (configuration, clients, catalog, metrics).
    pub(crate) tasks: Arc<TaskContext>,
    /// The task-lease topic on the target.
    pub(crate) lease_topic: String,
    /// The heartbeats topic (on the target, and on the source for reverse heartbeats).
    pub(crate) heartbeats_topic: String,
    /// Whether the leader also writes `(target, source)` heartbeats into the source cluster
    /// (MM2's reverse herder), because no flow of this configuration runs the other way.
    pub(crate) source_heartbeats: bool,
    /// The checkpoints topic on the target.
    pub(crate) checkpoints_topic: String,
    /// MM2's topic, group and config-property filters as plugins, when configured.
    pub(crate) name_filters: NameFilters,
    /// Wakes the topic manager for a refresh now (after a policy or topic filter swap).
    pub(crate) refresh_now: tokio::sync::Notify,
    /// The flow's readiness (`/readyz`): the lease member and the cluster checks update it.
    pub(crate) health: Arc<FlowHealth>,
    /// The tasks this process holds now, kept by the lease member for the status publisher.
    pub(crate) tasks_held: Mutex<Vec<u32>>,
    /// How remote topics (and the flow's bookkeeping topics) are created on the target:
    /// `replication_factor` resolved against the target's brokers at the flow's start.
    pub(crate) remote_replication: Replication,
}

/// A flow's name filter plugins (`topic_filter`, `group_filter`, `config_property_filter`),
/// each in a slot so that it can be hot-swapped.
#[derive(Default)]
pub(crate) struct NameFilters {
    /// Narrows `topics` / `topics_exclude`.
    pub(crate) topics: Option<Arc<Slot<NameFilter>>>,
    /// Narrows `groups` / `groups_exclude`.
    pub(crate) groups: Option<Arc<Slot<NameFilter>>>,
    /// Narrows `config_properties_exclude`.
    pub(crate) config_properties: Option<Arc<Slot<NameFilter>>>,
}

impl NameFilters {
    /// Loads the flow's name filters into `engine`.
    ///
    /// # Errors
    /// The first that fails to load.
    pub(crate) fn load(
        engine: &crate::plugins::Engine,
        flow: &Flow,
    ) -> Result<NameFilters, crate::plugins::PluginError> {
        let load = |plugin: &Option<crate::config::PluginRef>, kind| {
            plugin
                .as_ref()
                .map(|plugin| {
                    NameFilter::load(engine, kind, &plugin.uses, &flow.plugin_init(plugin))
                        .map(|filter| Arc::new(Slot::new(filter)))
                })
                .transpose()
        };
        Ok(NameFilters {
            topics: load(&flow.topic_filter, NameFilterKind::Topic)?,
            groups: load(&flow.group_filter, NameFilterKind::Group)?,
            config_properties: load(&flow.config_property_filter, NameFilterKind::ConfigProperty)?,
        })
    }

    /// Each configured filter with its configuration entry, for hot swap.
    fn with_refs<'a>(
        &'a self,
        flow: &'a Flow,
    ) -> impl Iterator<Item = (&'a crate::config::PluginRef, &'a Arc<Slot<NameFilter>>)> {
        [
            (&flow.topic_filter, &self.topics),
            (&flow.group_filter, &self.groups),
            (&flow.config_property_filter, &self.config_properties),
        ]
        .into_iter()
        .filter_map(|(plugin, slot)| Some((plugin.as_ref()?, slot.as_ref()?)))
    }
}

/// Loads every plugin of `flow` but its policy (filters, transforms, name filters) and drops
/// them: what `ferry validate` and the start of `ferry run` check before contacting clusters.
///
/// # Errors
/// The first plugin that fails to load.
pub(crate) fn check_plugins(
    engine: &crate::plugins::Engine,
    flow: &Flow,
) -> Result<(), crate::plugins::PluginError> {
    load_chain(engine, flow)?;
    NameFilters::load(engine, flow)?;
    Ok(())
}

/// Errors starting a flow.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlowError {
    /// An administrative call failed.
    #[error("flow {flow}")]
    Admin {
        /// The flow.
        flow: String,
        /// The cause.
        #[source]
        source: Box<AdminCallError>,
    },
    /// The positions reader could not be created.
    #[error("flow {flow}")]
    Positions {
        /// The flow.
        flow: String,
        /// The cause.
        #[source]
        source: PositionsError,
    },
    /// Joining the lease group failed.
    #[error("flow {flow}")]
    Lease {
        /// The flow.
        flow: String,
        /// The cause.
        #[source]
        source: lease::LeaseError,
    },
    /// The policy plugin could not name the internal topics.
    #[error("flow {flow}: the policy plugin could not name the internal topics")]
    Policy {
        /// The flow.
        flow: String,
        /// The cause.
        #[source]
        source: crate::plugins::PluginError,
    },
    /// A filter, transform or name filter could not be loaded.
    #[error("flow {flow}: a filter or transform could not be loaded")]
    Chain {
        /// The flow.
        flow: String,
        /// The cause, naming the plugin.
        #[source]
        source: crate::plugins::PluginError,
    },
    /// A cluster named by the flow is missing (validation prevents this).
    #[error("flow {flow} names unknown cluster `{cluster}`")]
    UnknownCluster {
        /// The flow.
        flow: String,
        /// The cluster.
        cluster: String,
    },
}

/// A running flow.
pub(crate) struct RunningFlow {
    id: String,
    /// The topic manager and the config and ACL syncs.
    background: JoinSet<()>,
    membership: lease::Membership,
    plugins: Arc<FlowPlugins>,
    health: Arc<FlowHealth>,
    /// Publishes this process's status record; `None` when its producer could not be made.
    status: Option<Arc<status::publish::StatusPublisher>>,
}

impl RunningFlow {
    /// The flow's swappable plugins, for the admin endpoint and the file watcher.
    pub(crate) fn plugins(&self) -> Arc<FlowPlugins> {
        Arc::clone(&self.plugins)
    }

    /// Stops the flow: every task drains and stores its positions, then the process leaves the
    /// lease group so that other processes take the tasks over at once.
    pub(crate) async fn stop(mut self) {
        self.background.abort_all();
        let membership = self.membership;
        if tokio::task::spawn_blocking(move || membership.leave())
            .await
            .is_err()
        {
            tracing::error!(flow = %self.id, "Stopping the flow failed.");
        }
        if let Some(status) = self.status {
            // The process is out of the group now: its record goes too.
            if tokio::task::spawn_blocking(move || status.retire())
                .await
                .is_err()
            {
                tracing::warn!(flow = %self.id, "Removing the status record failed.");
            }
        }
        self.health.stopped();
        tracing::info!(flow = %self.id, "Flow stopped.");
    }
}

/// Starts `flow`: creates its bookkeeping topics, publishes the first catalog, starts the topic
/// manager and the cluster checks, and joins the task-lease group; `health` is marked started
/// then.
///
/// # Errors
/// When the target cannot be prepared or the group cannot be joined.
pub(crate) async fn start(
    config: &Config,
    flow: &Flow,
    policy: Arc<Policy>,
    metrics: Arc<Metrics>,
    health: Arc<FlowHealth>,
) -> Result<RunningFlow, FlowError> {
    let id = flow.id.to_string();
    let cluster = |name: &crate::config::ClusterName| {
        config
            .clusters
            .get(name)
            .cloned()
            .ok_or_else(|| FlowError::UnknownCluster {
                flow: id.clone(),
                cluster: name.to_string(),
            })
    };
    let source = cluster(&flow.source)?;
    let target = cluster(&flow.target)?;
    let admin_error = |source: AdminCallError| FlowError::Admin {
        flow: id.clone(),
        source: Box::new(source),
    };
    let source_admin = Arc::new(Admin::new(flow.source.as_str(), &source).map_err(admin_error)?);
    let target_admin = Arc::new(Admin::new(flow.target.as_str(), &target).map_err(admin_error)?);

    let positions_topic = flow.positions_topic.clone();
    let lease_topic = lease::lease_topic(flow.source.as_str());
    let compact = [("cleanup.policy", "compact")];
    let replication = target_admin
        .replication(flow.replication_factor)
        .await
        .map_err(admin_error)?;
    log_replication(flow, replication);
    target_admin
        .create_topic(
            &positions_topic,
            POSITIONS_TOPIC_PARTITIONS,
            replication,
            &compact,
        )
        .await
        .map_err(admin_error)?;
    let tasks = i32::try_from(flow.tasks).unwrap_or(i32::MAX);
    target_admin
        .create_topic(&lease_topic, tasks, replication, &compact)
        .await
        .map_err(admin_error)?;
    let status_topic = status::status_topic(flow.source.as_str());
    if let Err(error) = target_admin
        .create_topic(&status_topic, 1, replication, &compact)
        .await
    {
        tracing::warn!(flow = %id, topic = %status_topic, error = %crate::error_chain(&error),
            "Creating the status topic failed; assuming it exists or will be created.");
    }
    let target_topics = target_admin
        .topic_partitions_async()
        .await
        .map_err(admin_error)?;
    let task_count = target_topics
        .get(&lease_topic)
        .copied()
        .unwrap_or(tasks)
        .max(1) as u32;
    if task_count != flow.tasks {
        tracing::warn!(flow = %id, configured = flow.tasks, effective = task_count, topic = %lease_topic,
            "The lease topic fixes the number of tasks; delete it with all processes stopped to change it.");
    }
    let reader =
        PositionReader::new(&target, &positions_topic, flow.source.as_str()).map_err(|source| {
            FlowError::Positions {
                flow: id.clone(),
                source,
            }
        })?;
    let start_latest = crate::kafka::starts_at_end(&source);
    let names = {
        let policy = Arc::clone(&policy);
        let flow = flow.clone();
        tokio::task::block_in_place(move || InternalNames::ask(&policy, &flow))
    }
    .map_err(|source| FlowError::Policy {
        flow: id.clone(),
        source,
    })?;
    let reverse_flow_runs = config
        .flows
        .iter()
        .any(|other| other.enabled && other.source == flow.target && other.target == flow.source);
    let source_heartbeats = !reverse_flow_runs;
    create_internal_topics(
        flow,
        &names,
        source_heartbeats,
        &source_admin,
        &target_admin,
    )
    .await;
    let engine = policy.engine().clone();
    let chain = load_chain(&engine, flow).map_err(|source| FlowError::Chain {
        flow: id.clone(),
        source,
    })?;
    let name_filters =
        tokio::task::block_in_place(|| NameFilters::load(&engine, flow)).map_err(|source| {
            FlowError::Chain {
                flow: id.clone(),
                source,
            }
        })?;
    // Plugin failures and records the target refuses both go to the dead-letter topic.
    if flow.on_error == crate::config::ErrorPolicy::DeadLetter {
        target_admin
            .create_topic(&flow.dead_letter_topic, 1, replication, &[])
            .await
            .map_err(admin_error)?;
    }
    let offset_syncs = flow.emit_offset_syncs.then(|| OffsetSyncsLocation {
        topic: names.offset_syncs.clone(),
        cluster: if flow.offset_syncs_on_target {
            target.clone()
        } else {
            source.clone()
        },
    });
    let (catalog_sender, catalog_receiver) = watch::channel(Arc::new(Catalog::default()));
    let tasks = Arc::new(TaskContext {
        flow: flow.clone(),
        source,
        target,
        positions_topic,
        positions: Mutex::new(reader),
        catalog: catalog_receiver,
        metrics,
        task_count,
        start_latest,
        offset_syncs,
        chain,
        halts: crate::replication::halts::Halts::default(),
        refused: crate::replication::worker::RefusedRecords::default(),
    });
    let context = Arc::new(FlowContext {
        tasks,
        lease_topic,
        heartbeats_topic: names.heartbeats.clone(),
        source_heartbeats,
        checkpoints_topic: names.checkpoints.clone(),
        name_filters,
        refresh_now: tokio::sync::Notify::new(),
        health: Arc::clone(&health),
        tasks_held: Mutex::new(Vec::new()),
        remote_replication: replication,
    });
    let stages = swappable_stages(flow, context.tasks.chain.as_ref());
    let name_stages: Vec<NameStageSpec> = context
        .name_filters
        .with_refs(flow)
        .map(|(plugin, slot)| NameStageSpec {
            source: plugin.uses.clone(),
            config: flow.plugin_init(plugin),
            slot: Arc::clone(slot),
        })
        .collect();
    let policy = Arc::new(PolicySlot::new(policy));
    let plugins = Arc::new(FlowPlugins::new(
        Arc::clone(&context),
        engine,
        Arc::clone(&source_admin),
        Arc::clone(&policy),
        flow.policy.uses.clone(),
        flow.plugin_init(&flow.policy),
        names,
        stages,
        name_stages,
    ));
    plugins.publish_versions();
    // Dropping the set (when the flow stops) aborts the topic manager and the syncs.
    let mut background = JoinSet::new();
    settings::spawn(&mut background, &context, &source_admin, &target_admin);
    background.spawn(probe_clusters(
        Events::new(&context.tasks.metrics, &flow.id),
        Arc::clone(&health),
        [Arc::clone(&source_admin), Arc::clone(&target_admin)],
    ));
    background.spawn(topics::run_manager(
        Arc::clone(&context),
        policy,
        source_admin,
        target_admin,
        catalog_sender,
    ));
    let status = match status::publish::StatusPublisher::new(&context, &status_topic) {
        Ok(publisher) => {
            let publisher = Arc::new(publisher);
            background.spawn(status::publish::run(
                Arc::clone(&context),
                Arc::clone(&plugins),
                Arc::clone(&publisher),
                Events::new(&context.tasks.metrics, &flow.id),
            ));
            Some(publisher)
        }
        Err(error) => {
            tracing::warn!(flow = %id, error = %crate::error_chain(&error),
                "This process publishes no status for `ferry status`.");
            None
        }
    };
    let membership =
        lease::Membership::join(Arc::clone(&context)).map_err(|source| FlowError::Lease {
            flow: id.clone(),
            source,
        })?;
    health.started();
    tracing::info!(flow = %id, tasks = task_count, group = %flow.group_id, "Flow started.");
    Ok(RunningFlow {
        id,
        background,
        membership,
        plugins,
        health,
        status,
    })
}

/// How often a flow checks that its clusters answer, for its readiness.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a cluster has to answer a check.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks every [`PROBE_INTERVAL`] that the flow's source and target answer a metadata request
/// (one request each, bounded by [`PROBE_TIMEOUT`]) and shows the outcome in `health`; a change
/// is logged. Runs until aborted with the flow's background tasks.
async fn probe_clusters(events: Events, health: Arc<FlowHealth>, admins: [Arc<Admin>; 2]) {
    let mut interval = tokio::time::interval(PROBE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        for admin in &admins {
            let outcome = admin
                .answers(PROBE_TIMEOUT)
                .await
                .map_err(|error| crate::error_chain(&error));
            let failed = outcome.as_ref().err().cloned();
            if health.cluster_checked(admin.name(), outcome) {
                match failed {
                    Some(error) => events.cluster_unreachable(admin.name(), &error),
                    None => events.cluster_answers(admin.name()),
                }
            }
        }
    }
}

/// Loads the flow's filters and transforms into `engine`; `None` without any. Each plugin's
/// `init` gets [`Flow::plugin_init`].
fn load_chain(
    engine: &crate::plugins::Engine,
    flow: &Flow,
) -> Result<Option<ChainSpec>, crate::plugins::PluginError> {
    if flow.filters.is_empty() && flow.transforms.is_empty() {
        return Ok(None);
    }
    let plugins = |list: &[crate::config::PluginRef]| -> Vec<_> {
        list.iter()
            .map(|plugin| (plugin.uses.clone(), flow.plugin_init(plugin)))
            .collect()
    };
    let spec = tokio::task::block_in_place(|| {
        ChainSpec::load(engine, &plugins(&flow.filters), &plugins(&flow.transforms))
    })?;
    Ok(Some(spec))
}

/// The chain's stages as hot swap sees them: kind, file, `init` configuration and slot, in
/// chain order (filters first, as [`ChainSpec::load`] orders them).
fn swappable_stages(flow: &Flow, chain: Option<&ChainSpec>) -> Vec<StageSpec> {
    let Some(chain) = chain else {
        return Vec::new();
    };
    let stages = flow
        .filters
        .iter()
        .map(|plugin| (StageKind::Filter, plugin))
        .chain(
            flow.transforms
                .iter()
                .map(|plugin| (StageKind::Transform, plugin)),
        );
    stages
        .zip(chain.slots())
        .map(|((kind, plugin), slot)| StageSpec {
            kind,
            source: plugin.uses.clone(),
            config: flow.plugin_init(plugin),
            slot: Arc::clone(slot),
        })
        .collect()
}

/// The names of MM2's internal topics of a flow, from its policy (MM2 asks its
/// `ReplicationPolicy` too, KIP-690).
#[derive(Debug, Clone, PartialEq, Eq)]
struct InternalNames {
    heartbeats: String,
    checkpoints: String,
    offset_syncs: String,
}

impl InternalNames {
    fn ask(policy: &Policy, flow: &Flow) -> Result<InternalNames, crate::plugins::PluginError> {
        // On the source, the topic is named after the target, and the other way round
        // (`MirrorSourceConfig#offsetSyncsTopic`).
        let other = if flow.offset_syncs_on_target {
            flow.source.as_str()
        } else {
            flow.target.as_str()
        };
        Ok(InternalNames {
            heartbeats: policy.heartbeats_topic()?,
            checkpoints: policy.checkpoints_topic(flow.source.as_str())?,
            offset_syncs: policy.offset_syncs_topic(other)?,
        })
    }
}

/// Says how the topics Ferry creates on the target are replicated; a WARN when `auto` cannot
/// give three replicas (a broker loss then stops writes or loses acknowledged records).
fn log_replication(flow: &Flow, replication: Replication) {
    let Replication { factor, min_insync } = replication;
    if flow.replication_factor == AUTO_REPLICATION && factor < 3 {
        tracing::warn!(flow = %flow.id, replication_factor = factor,
            "The target has fewer than 3 brokers: remote and bookkeeping topics get replication factor {factor} (replication_factor = auto), so they do not survive a broker's loss.");
    } else {
        tracing::info!(flow = %flow.id, replication_factor = factor, min_insync_replicas = ?min_insync,
            "Remote and bookkeeping topics are created with this replication (-1: the broker's default).");
    }
}

/// Creates the heartbeats, checkpoints and offset-syncs topics that the flow writes: one
/// partition, compacted. As MM2 (KAFKA-15465), a failure is logged and the flow goes on: the
/// topic may exist already or be created by someone with the rights to.
async fn create_internal_topics(
    flow: &Flow,
    names: &InternalNames,
    source_heartbeats: bool,
    source: &Arc<Admin>,
    target: &Arc<Admin>,
) {
    let compact = [("cleanup.policy", "compact")];
    let mut wanted: Vec<(&Arc<Admin>, &str, i16)> = Vec::new();
    if flow.emit_heartbeats.is_some() {
        wanted.push((
            target,
            &names.heartbeats,
            flow.heartbeats_replication_factor,
        ));
        if source_heartbeats {
            wanted.push((
                source,
                &names.heartbeats,
                flow.heartbeats_replication_factor,
            ));
        }
    }
    if flow.emit_checkpoints.is_some() {
        wanted.push((
            target,
            &names.checkpoints,
            flow.checkpoints_replication_factor,
        ));
    }
    if flow.emit_offset_syncs {
        let cluster = if flow.offset_syncs_on_target {
            target
        } else {
            source
        };
        wanted.push((
            cluster,
            &names.offset_syncs,
            flow.offset_syncs_replication_factor,
        ));
    }
    for (admin, topic, replication_factor) in wanted {
        let created = match admin.replication(replication_factor).await {
            Ok(replication) => admin.create_topic(topic, 1, replication, &compact).await,
            Err(error) => Err(error),
        };
        if let Err(error) = created {
            tracing::warn!(flow = %flow.id, topic, error = %crate::error_chain(&error),
                "Creating an internal topic failed; assuming it exists or will be created.");
        }
    }
}
