//! Hot swap of a running flow's plugins: its record filters and transforms, its name filters
//! (topic, group, config property) and its naming policy. The admin endpoint and the file watcher (`crate::admin`) call in here; nothing here
//! knows about HTTP.
//!
//! A filter or transform swap loads the new version (compile, link, `init`), runs it on the
//! golden batch ([`PluginVersion::canary`]) and only then installs it in the stage's
//! [`PluginSlot`]; each task switches at its next batch boundary, so a batch is filtered by
//! exactly one version, per-partition order holds and no record is consumed twice. A failed
//! load or canary leaves the running version in place and says why. The version replaced is
//! *draining* until no task holds it.
//!
//! A policy swap first computes what the new policy would change ([`PolicyDiff`]): the remote
//! names of the topics mirrored now, topics it would add or stop mirroring, and the names of
//! the internal topics. Renaming a mirrored topic is refused unless forced (the remote topic
//! would start over under the new name); changing an internal topic's name is always refused
//! (the flow's readers and writers hold them: restart instead). A dry run only reports.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use serde::Serialize;

use super::topics;
use super::{FlowContext, InternalNames};
use crate::config::PluginSource;
use crate::kafka::{Admin, AdminCallError};
use crate::plugins::{
    CanaryReport, Engine, NameFilter, PluginError, PluginSlot, PluginVersion, Policy, PolicySlot,
    Slot, StageKind,
};

/// One filter or transform of the flow's chain.
struct Stage {
    /// Its name in the chain: the file name (or `builtin:<name>`).
    name: String,
    kind: StageKind,
    source: PluginSource,
    /// Its `init` configuration (`with`, then the cluster aliases).
    config: Vec<(String, String)>,
    slot: Arc<PluginSlot>,
    /// Versions replaced and maybe still running in a task; pruned when no task holds them.
    draining: Mutex<Vec<Weak<PluginVersion>>>,
    /// The draining digests shown in the metrics.
    draining_published: Mutex<Vec<String>>,
}

/// A stage of the chain as `replication::start` hands it over.
pub(super) struct StageSpec {
    pub(super) kind: StageKind,
    pub(super) source: PluginSource,
    pub(super) config: Vec<(String, String)>,
    pub(super) slot: Arc<PluginSlot>,
}

/// A name filter as `replication::start` hands it over.
pub(super) struct NameStageSpec {
    pub(super) source: PluginSource,
    pub(super) config: Vec<(String, String)>,
    pub(super) slot: Arc<Slot<NameFilter>>,
}

/// A running flow's swappable plugins.
pub(crate) struct FlowPlugins {
    flow: String,
    engine: Engine,
    context: Arc<FlowContext>,
    source_admin: Arc<Admin>,
    policy: Arc<PolicySlot>,
    policy_source: PluginSource,
    policy_config: Vec<(String, String)>,
    internal: InternalNames,
    stages: Vec<Stage>,
    /// The name filters, after the chain in the plugin numbering (`stage_index`).
    name_stages: Vec<(String, NameStageSpec)>,
    /// One swap at a time per flow.
    swapping: tokio::sync::Mutex<()>,
}

/// Why a swap did not happen. The running version stays in place in every case.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SwapError {
    /// No stage of that name or position.
    #[error("flow {flow} has no filter or transform `{name}` (it has: {known})")]
    UnknownPlugin {
        flow: String,
        name: String,
        known: String,
    },
    /// Two stages have that name.
    #[error(
        "flow {flow} has {count} plugins named `{name}`; use its position in the chain (0 = first filter)"
    )]
    Ambiguous {
        flow: String,
        name: String,
        count: usize,
    },
    /// A builtin has no file to read again.
    #[error("`{name}` is a builtin: upload the new component instead of asking for a reload")]
    Builtin { name: String },
    /// The new version failed to load or to get through the golden batch.
    #[error("the new version of `{name}` was not installed; {stage} failed")]
    Rejected {
        name: String,
        stage: &'static str,
        #[source]
        source: Box<PluginError>,
    },
    /// The new policy would rename mirrored or internal topics.
    #[error("the new policy was not installed: {diff}")]
    Refused { diff: Box<PolicyDiff> },
    /// The source's topics could not be listed for the diff.
    #[error("flow {flow}: listing the source topics for the diff failed")]
    Metadata {
        flow: String,
        #[source]
        source: Box<AdminCallError>,
    },
    /// A loading thread failed.
    #[error("the loading thread failed: {0}")]
    Join(String),
}

/// A filter or transform swap that took place.
#[derive(Debug, Serialize)]
pub(crate) struct StageSwap {
    pub(crate) flow: String,
    pub(crate) plugin: String,
    pub(crate) from: String,
    pub(crate) to: String,
    /// Compile, link, `init` and canary, in milliseconds.
    pub(crate) load_ms: f64,
    pub(crate) canary: String,
}

/// What a new policy would change.
#[derive(Debug, Default, Serialize)]
pub(crate) struct PolicyDiff {
    /// Mirrored now, under another remote name with the new policy: `(source, now, new)`.
    pub(crate) renamed: Vec<(String, String, String)>,
    /// Mirrored with the new policy only: `(source, remote)`.
    pub(crate) added: Vec<(String, String)>,
    /// Mirrored now, not with the new policy: `(source, remote)`.
    pub(crate) removed: Vec<(String, String)>,
    /// Internal topics whose names change: `(what, now, new)`.
    pub(crate) internal: Vec<(String, String, String)>,
}

impl PolicyDiff {
    fn is_empty(&self) -> bool {
        self.renamed.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.internal.is_empty()
    }
}

impl fmt::Display for PolicyDiff {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return formatter.write_str("no remote name changes");
        }
        let mut parts = Vec::new();
        if !self.renamed.is_empty() {
            parts.push(format!(
                "{} mirrored topic(s) renamed ({})",
                self.renamed.len(),
                self.renamed
                    .iter()
                    .map(|(source, now, new)| format!("{source}: {now} -> {new}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.internal.is_empty() {
            parts.push(format!(
                "internal topic(s) renamed ({}; restart the flow to change them)",
                self.internal
                    .iter()
                    .map(|(what, now, new)| format!("{what}: {now} -> {new}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.added.is_empty() {
            parts.push(format!("{} topic(s) added", self.added.len()));
        }
        if !self.removed.is_empty() {
            parts.push(format!(
                "{} topic(s) no longer mirrored",
                self.removed.len()
            ));
        }
        formatter.write_str(&parts.join("; "))
    }
}

/// A policy swap (or dry run) and the diff it was judged on.
#[derive(Debug, Serialize)]
pub(crate) struct PolicySwap {
    pub(crate) flow: String,
    pub(crate) plugin: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) applied: bool,
    pub(crate) forced: bool,
    pub(crate) diff: PolicyDiff,
}

/// How a policy swap is asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PolicyRequest {
    /// Only compute and report the diff.
    pub(crate) dry_run: bool,
    /// Install even when mirrored topics would be renamed.
    pub(crate) force: bool,
}

/// A version of a plugin in the status.
#[derive(Debug, Serialize)]
pub(crate) struct VersionStatus {
    pub(crate) plugin: String,
    pub(crate) kind: &'static str,
    pub(crate) source: String,
    pub(crate) active: String,
    pub(crate) draining: Vec<String>,
}

/// A flow's plugins in the status.
#[derive(Debug, Serialize)]
pub(crate) struct FlowStatus {
    pub(crate) flow: String,
    pub(crate) policy: VersionStatus,
    pub(crate) chain: Vec<VersionStatus>,
}

/// A file a running plugin was loaded from: what the watcher polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watched {
    /// The naming policy.
    Policy(std::path::PathBuf),
    /// Plugin `index` in `FlowPlugins::stage_index`'s numbering (the chain, then the name
    /// filters).
    Stage(usize, std::path::PathBuf),
}

impl Watched {
    /// The file.
    pub(crate) fn path(&self) -> &std::path::Path {
        match self {
            Watched::Policy(path) | Watched::Stage(_, path) => path,
        }
    }
}

impl FlowPlugins {
    #[allow(
        clippy::too_many_arguments,
        reason = "built once, by `replication::start`"
    )]
    pub(super) fn new(
        context: Arc<FlowContext>,
        engine: Engine,
        source_admin: Arc<Admin>,
        policy: Arc<PolicySlot>,
        policy_source: PluginSource,
        policy_config: Vec<(String, String)>,
        internal: InternalNames,
        stages: Vec<StageSpec>,
        name_stages: Vec<NameStageSpec>,
    ) -> FlowPlugins {
        FlowPlugins {
            flow: context.tasks.flow.id.to_string(),
            engine,
            context,
            source_admin,
            policy,
            policy_source,
            policy_config,
            internal,
            stages: stages
                .into_iter()
                .map(
                    |StageSpec {
                         kind,
                         source,
                         config,
                         slot,
                     }| Stage {
                        name: source.plugin_name(),
                        kind,
                        source,
                        config,
                        slot,
                        draining: Mutex::new(Vec::new()),
                        draining_published: Mutex::new(Vec::new()),
                    },
                )
                .collect(),
            name_stages: name_stages
                .into_iter()
                .map(|spec| (spec.source.plugin_name(), spec))
                .collect(),
            swapping: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether this flow is `source` to `target`.
    pub(crate) fn is(&self, source: &str, target: &str) -> bool {
        self.context.tasks.flow.source.as_str() == source
            && self.context.tasks.flow.target.as_str() == target
    }

    /// The files the running plugins came from (builtins have none).
    pub(crate) fn watched(&self) -> Vec<Watched> {
        let mut files = Vec::new();
        if let PluginSource::File(path) = &self.policy_source {
            files.push(Watched::Policy(path.clone()));
        }
        let sources = self
            .stages
            .iter()
            .map(|stage| &stage.source)
            .chain(self.name_stages.iter().map(|(_, spec)| &spec.source));
        for (index, source) in sources.enumerate() {
            if let PluginSource::File(path) = source {
                files.push(Watched::Stage(index, path.clone()));
            }
        }
        files
    }

    /// The names of the swappable plugins but the policy, in their numbering: the chain's
    /// filters and transforms, then the name filters.
    fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.stages
            .iter()
            .map(|stage| stage.name.as_str())
            .chain(self.name_stages.iter().map(|(name, _)| name.as_str()))
    }

    /// The plugin `name` designates: a file name, or a position (the chain from 0, filters
    /// first, then `topic_filter`, `group_filter`, `config_property_filter`).
    pub(crate) fn stage_index(&self, name: &str) -> Result<usize, SwapError> {
        let matching: Vec<usize> = self
            .plugin_names()
            .enumerate()
            .filter(|(_, plugin)| *plugin == name)
            .map(|(index, _)| index)
            .collect();
        let count = self.stages.len() + self.name_stages.len();
        match matching.as_slice() {
            [index] => Ok(*index),
            [] => name
                .parse::<usize>()
                .ok()
                .filter(|index| *index < count)
                .ok_or_else(|| SwapError::UnknownPlugin {
                    flow: self.flow.clone(),
                    name: name.to_owned(),
                    known: if count == 0 {
                        "no filters or transforms".to_owned()
                    } else {
                        self.plugin_names().collect::<Vec<_>>().join(", ")
                    },
                }),
            _ => Err(SwapError::Ambiguous {
                flow: self.flow.clone(),
                name: name.to_owned(),
                count: matching.len(),
            }),
        }
    }

    /// The digest of the version plugin `index` runs now.
    pub(crate) fn stage_digest(&self, index: usize) -> Option<String> {
        match self.stages.get(index) {
            Some(stage) => Some(stage.slot.current().digest().to_owned()),
            None => self
                .name_stages
                .get(index - self.stages.len())
                .map(|(_, spec)| spec.slot.current().digest().to_owned()),
        }
    }

    /// The digest of the policy in use.
    pub(crate) fn policy_digest(&self) -> String {
        self.policy.current().digest().to_owned()
    }

    /// Replaces stage `index` with `upload`, or with its file read again when `None`.
    pub(crate) async fn swap_stage(
        self: &Arc<Self>,
        index: usize,
        upload: Option<Vec<u8>>,
    ) -> Result<StageSwap, SwapError> {
        let _one_at_a_time = self.swapping.lock().await;
        let this = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            if index < this.stages.len() {
                this.load_stage(index, upload)
            } else {
                this.load_name_filter(index - this.stages.len(), upload)
            }
        })
        .await
        .map_err(|error| SwapError::Join(error.to_string()))
        .and_then(|result| result);
        let Some(name) = self.plugin_names().nth(index) else {
            return result;
        };
        let metrics = &self.context.tasks.metrics;
        match &result {
            Ok(swap) => {
                metrics.record_swap(&self.flow, name, "applied");
                metrics.set_plugin_version(&self.flow, name, &swap.from, "active", false);
                metrics.set_plugin_version(&self.flow, name, &swap.to, "active", true);
                tracing::info!(flow = %self.flow, plugin = %name, from = %swap.from, to = %swap.to,
                    load_ms = swap.load_ms, canary = %swap.canary,
                    "Plugin swapped; tasks switch at their next batch.");
            }
            Err(error) => {
                metrics.record_swap(&self.flow, name, "failed");
                tracing::error!(flow = %self.flow, plugin = %name, error = %crate::error_chain(error),
                    "Plugin swap failed; the running version stays.");
            }
        }
        self.prune_draining();
        result
    }

    fn load_stage(&self, index: usize, upload: Option<Vec<u8>>) -> Result<StageSwap, SwapError> {
        let stage = self
            .stages
            .get(index)
            .ok_or_else(|| SwapError::UnknownPlugin {
                flow: self.flow.clone(),
                name: index.to_string(),
                known: self.stages.len().to_string(),
            })?;
        let started = Instant::now();
        let bytes = bytes_of(&stage.name, &stage.source, upload)?;
        let version =
            PluginVersion::from_bytes(&self.engine, stage.kind, &stage.name, &bytes, &stage.config)
                .map_err(rejected(&stage.name, "loading"))?;
        let canary: CanaryReport = version
            .canary(&self.engine)
            .map_err(rejected(&stage.name, "the canary batch"))?;
        let to = version.digest().to_owned();
        let old = stage.slot.replace(version);
        stage
            .draining
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&old));
        Ok(StageSwap {
            flow: self.flow.clone(),
            plugin: stage.name.clone(),
            from: old.digest().to_owned(),
            to,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            canary: canary.to_string(),
        })
    }

    /// Loads, checks and installs a new version of name filter `index`; the topic manager
    /// refreshes at once. Its answers cache starts empty: every name is asked again.
    fn load_name_filter(
        &self,
        index: usize,
        upload: Option<Vec<u8>>,
    ) -> Result<StageSwap, SwapError> {
        let (name, spec) = self
            .name_stages
            .get(index)
            .ok_or_else(|| SwapError::UnknownPlugin {
                flow: self.flow.clone(),
                name: index.to_string(),
                known: self.name_stages.len().to_string(),
            })?;
        let started = Instant::now();
        let bytes = bytes_of(name, &spec.source, upload)?;
        let kind = spec.slot.current().kind();
        let version = NameFilter::from_bytes(&self.engine, kind, name, &bytes, &spec.config)
            .map_err(rejected(name, "loading"))?;
        let allowed = version
            .canary()
            .map_err(rejected(name, "the canary names"))?;
        let to = version.digest().to_owned();
        let old = spec.slot.replace(version);
        self.context.refresh_now.notify_one();
        Ok(StageSwap {
            flow: self.flow.clone(),
            plugin: name.clone(),
            from: old.digest().to_owned(),
            to,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            canary: format!("{allowed} of 9 sample names allowed"),
        })
    }

    /// Forgets replaced versions no task holds any more.
    pub(crate) fn prune_draining(&self) {
        for stage in &self.stages {
            let active = stage.slot.current().digest().to_owned();
            let mut draining = stage
                .draining
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            draining.retain(|version| version.strong_count() > 0);
            let live: Vec<String> = draining
                .iter()
                .filter_map(Weak::upgrade)
                .map(|version| version.digest().to_owned())
                .collect();
            let mut published = stage
                .draining_published
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for gone in published.iter().filter(|digest| !live.contains(digest)) {
                self.context.tasks.metrics.set_plugin_version(
                    &self.flow,
                    &stage.name,
                    gone,
                    "draining",
                    false,
                );
            }
            for digest in &live {
                self.context.tasks.metrics.set_plugin_version(
                    &self.flow,
                    &stage.name,
                    digest,
                    "draining",
                    true,
                );
            }
            *published = live;
            // The active version may equal a draining one (the same bytes uploaded again).
            self.context.tasks.metrics.set_plugin_version(
                &self.flow,
                &stage.name,
                &active,
                "active",
                true,
            );
        }
    }

    /// Replaces the naming policy with `upload`, or with its file read again, as `request`
    /// says.
    pub(crate) async fn swap_policy(
        self: &Arc<Self>,
        upload: Option<Vec<u8>>,
        request: PolicyRequest,
    ) -> Result<PolicySwap, SwapError> {
        let _one_at_a_time = self.swapping.lock().await;
        let plugin = self.policy_source.plugin_name();
        let source_topics = self
            .source_admin
            .topic_partitions_async()
            .await
            .map_err(|source| SwapError::Metadata {
                flow: self.flow.clone(),
                source: Box::new(source),
            })?;
        let this = Arc::clone(self);
        let result =
            tokio::task::spawn_blocking(move || this.judge_policy(upload, request, &source_topics))
                .await
                .map_err(|error| SwapError::Join(error.to_string()))
                .and_then(|result| result);
        let metrics = &self.context.tasks.metrics;
        match &result {
            Ok(swap) if swap.applied => {
                metrics.record_swap(&self.flow, &plugin, "applied");
                metrics.set_plugin_version(&self.flow, &plugin, &swap.from, "active", false);
                metrics.set_plugin_version(&self.flow, &plugin, &swap.to, "active", true);
                tracing::info!(flow = %self.flow, plugin, from = %swap.from, to = %swap.to,
                    forced = swap.forced, diff = %swap.diff, "Naming policy swapped.");
            }
            Ok(swap) => {
                tracing::info!(flow = %self.flow, plugin, to = %swap.to, diff = %swap.diff,
                    "Naming policy dry run.");
            }
            Err(error) => {
                metrics.record_swap(
                    &self.flow,
                    &plugin,
                    if matches!(error, SwapError::Refused { .. }) {
                        "refused"
                    } else {
                        "failed"
                    },
                );
                tracing::error!(flow = %self.flow, plugin, error = %crate::error_chain(error),
                    "Naming policy swap not done; the running policy stays.");
            }
        }
        result
    }

    fn judge_policy(
        &self,
        upload: Option<Vec<u8>>,
        request: PolicyRequest,
        source_topics: &std::collections::HashMap<String, i32>,
    ) -> Result<PolicySwap, SwapError> {
        let name = self.policy_source.plugin_name();
        let bytes = bytes_of(&name, &self.policy_source, upload)?;
        let new = Policy::from_bytes(&self.engine, &name, &bytes, &self.policy_config)
            .map_err(rejected(&name, "loading"))?;
        let old = self.policy.current();
        let diff = self
            .diff(&old, &new, source_topics)
            .map_err(rejected(&name, "naming"))?;
        let mut swap = PolicySwap {
            flow: self.flow.clone(),
            plugin: name,
            from: old.digest().to_owned(),
            to: new.digest().to_owned(),
            applied: false,
            forced: false,
            diff,
        };
        if request.dry_run {
            return Ok(swap);
        }
        let renames = !swap.diff.renamed.is_empty();
        if !swap.diff.internal.is_empty() || (renames && !request.force) {
            return Err(SwapError::Refused {
                diff: Box::new(swap.diff),
            });
        }
        self.policy.replace(new);
        self.context.refresh_now.notify_one();
        swap.applied = true;
        swap.forced = renames;
        Ok(swap)
    }

    /// What `new` would change against `old` for the source's topics now.
    fn diff(
        &self,
        old: &Policy,
        new: &Policy,
        source_topics: &std::collections::HashMap<String, i32>,
    ) -> Result<PolicyDiff, PluginError> {
        let now = topics::select(&self.context, old, source_topics);
        let then = topics::select(&self.context, new, source_topics);
        let mirrored: BTreeMap<String, String> = self
            .context
            .tasks
            .catalog
            .borrow()
            .topics
            .iter()
            .map(|topic| (topic.source.to_string(), topic.remote.to_string()))
            .chain(
                now.iter()
                    .map(|(source, (remote, _))| (source.clone(), remote.clone())),
            )
            .collect();
        let mut diff = PolicyDiff::default();
        for (source, remote) in &mirrored {
            match then.get(source) {
                Some((new_remote, _)) if new_remote != remote => {
                    diff.renamed
                        .push((source.clone(), remote.clone(), new_remote.clone()));
                }
                Some(_) => {}
                None => diff.removed.push((source.clone(), remote.clone())),
            }
        }
        for (source, (remote, _)) in &then {
            if !mirrored.contains_key(source) {
                diff.added.push((source.clone(), remote.clone()));
            }
        }
        let names = InternalNames::ask(new, &self.context.tasks.flow)?;
        for (what, now, new) in [
            ("heartbeats", &self.internal.heartbeats, &names.heartbeats),
            (
                "checkpoints",
                &self.internal.checkpoints,
                &names.checkpoints,
            ),
            (
                "offset-syncs",
                &self.internal.offset_syncs,
                &names.offset_syncs,
            ),
        ] {
            if now != new {
                diff.internal
                    .push((what.to_owned(), now.clone(), new.clone()));
            }
        }
        Ok(diff)
    }

    /// The active and draining versions of every plugin of the flow.
    pub(crate) fn status(&self) -> FlowStatus {
        self.prune_draining();
        let policy = self.policy.current();
        FlowStatus {
            flow: self.flow.clone(),
            policy: VersionStatus {
                plugin: policy.name().to_owned(),
                kind: "replication policy",
                source: self.policy_source.to_string(),
                active: policy.digest().to_owned(),
                draining: Vec::new(),
            },
            chain: self
                .stages
                .iter()
                .map(|stage| VersionStatus {
                    plugin: stage.name.clone(),
                    kind: stage.kind.noun(),
                    source: stage.source.to_string(),
                    active: stage.slot.current().digest().to_owned(),
                    draining: stage
                        .draining
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .iter()
                        .filter_map(Weak::upgrade)
                        .map(|version| version.digest().to_owned())
                        .collect(),
                })
                .chain(self.name_stages.iter().map(|(name, spec)| {
                    let filter = spec.slot.current();
                    VersionStatus {
                        plugin: name.clone(),
                        kind: filter.kind().noun(),
                        source: spec.source.to_string(),
                        active: filter.digest().to_owned(),
                        draining: Vec::new(),
                    }
                }))
                .collect(),
        }
    }

    /// Publishes the versions loaded at start as active.
    pub(super) fn publish_versions(&self) {
        let metrics = &self.context.tasks.metrics;
        metrics.set_plugin_version(
            &self.flow,
            &self.policy_source.plugin_name(),
            &self.policy_digest(),
            "active",
            true,
        );
        for stage in &self.stages {
            metrics.set_plugin_version(
                &self.flow,
                &stage.name,
                stage.slot.current().digest(),
                "active",
                true,
            );
        }
        for (name, spec) in &self.name_stages {
            metrics.set_plugin_version(
                &self.flow,
                name,
                spec.slot.current().digest(),
                "active",
                true,
            );
        }
    }
}

/// The error of a new version of `name` that failed at `step`.
fn rejected(name: &str, step: &'static str) -> impl FnOnce(PluginError) -> SwapError {
    let name = name.to_owned();
    move |source| SwapError::Rejected {
        name,
        stage: step,
        source: Box::new(source),
    }
}

/// The new component's bytes: the upload, or the plugin's file read again.
fn bytes_of(
    name: &str,
    source: &PluginSource,
    upload: Option<Vec<u8>>,
) -> Result<Vec<u8>, SwapError> {
    match (upload, source) {
        (Some(bytes), _) => Ok(bytes),
        (None, PluginSource::File(_)) => crate::plugins::read_source(source)
            .map(std::borrow::Cow::into_owned)
            .map_err(rejected(name, "reading the file")),
        (None, PluginSource::Builtin(_)) => Err(SwapError::Builtin {
            name: name.to_owned(),
        }),
    }
}
