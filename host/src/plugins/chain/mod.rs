//! Record filters and transforms on the data path: a flow's chain of `ferry:plugin/record-filter`
//! and `ferry:plugin/record-transform` components (`wit/records.wit`), called once per batch.
//!
//! - [`ChainSpec`] (here): the flow's loaded plugins, shared by its tasks. Each plugin sits in a
//!   [`PluginSlot`] holding the current [`PluginVersion`]. A slot is read at every batch
//!   boundary, so replacing its version (hot swap) takes effect between batches without
//!   stopping a task.
//! - `version.rs`: [`PluginVersion`] (compiled component, linked `InstancePre`, `init`
//!   configuration checked once at load), its instances, one call on a batch; [`short_digest`].
//! - `canary.rs`: the golden batch a new version must pass ([`CanaryReport`]).
//! - `packed.rs`: [`PackedBatch`], [`RecordInput`], [`RecordView`], the verdict bytes: the only
//!   host file that knows the packed layout.
//! - `run.rs`: [`RecordChain`], one task's running chain. It owns one `Store` per stage (a trap
//!   poisons only that stage's instance), the packed input of later stages and the stages'
//!   answers ([`ChainOutput`], [`Disposition`]).
//!
//! Faults: a trap, a timeout (CPU deadline per call), a malformed answer or a refused batch
//! fails the call. The instance is discarded when it trapped, and the batch is split in halves,
//! recursively, until the failing records are isolated (⌈log₂ n⌉ levels); records of halves that
//! succeed get their normal verdicts. An isolated record, and a record the plugin failed with a
//! per-record error, comes out as [`Disposition::Fail`]; the caller applies the flow's error
//! policy to it. A stage whose calls keep failing ([`BREAKER_TRIPS`] failed batches within
//! [`BREAKER_WINDOW`]) opens its circuit breaker: every record reaching it then fails with
//! `fatal = true`, which the caller treats as `halt` whatever the flow's policy (fail-closed: a
//! transform may scrub data, so records never bypass it). A new version closes it.
//!
//! Nothing here knows about Kafka clients: records come in as byte slices and go out as
//! dispositions and byte views.

mod canary;
mod packed;
mod run;
mod version;

use std::sync::Arc;
use std::time::Instant;

pub use canary::CanaryReport;
pub use packed::{PackedBatch, RecordInput, RecordView};
pub use run::{BREAKER_TRIPS, BREAKER_WINDOW, ChainOutput, Disposition, RecordChain};
pub use version::{PluginVersion, short_digest};

use super::bindings::{FILTER_INTERFACE, TRANSFORM_INTERFACE};
use super::engine::Engine;
use super::error::PluginError;
use super::{PluginSource, Slot};

/// A filter's or transform's place in a flow's chain: what each task reads at its batch
/// boundaries, and what a hot swap replaces.
pub type PluginSlot = Slot<PluginVersion>;

/// Which kind of data-path plugin a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// `ferry:plugin/record-filter`.
    Filter,
    /// `ferry:plugin/record-transform`.
    Transform,
}

impl StageKind {
    fn interface(self) -> &'static str {
        match self {
            StageKind::Filter => FILTER_INTERFACE,
            StageKind::Transform => TRANSFORM_INTERFACE,
        }
    }

    /// What it is called in messages: `record filter` or `record transform`.
    pub fn noun(self) -> &'static str {
        match self {
            StageKind::Filter => "record filter",
            StageKind::Transform => "record transform",
        }
    }

    fn function(self) -> &'static str {
        match self {
            StageKind::Filter => "filter",
            StageKind::Transform => "transform",
        }
    }
}

/// A flow's filters and transforms, loaded, in chain order (filters first).
#[derive(Debug, Clone)]
pub struct ChainSpec {
    engine: Engine,
    slots: Vec<Arc<PluginSlot>>,
}

impl ChainSpec {
    /// Loads every plugin: `filters` then `transforms`, each with its `init` configuration.
    ///
    /// # Errors
    ///
    /// The first plugin that fails to load, as [`PluginVersion::load`].
    pub fn load(
        engine: &Engine,
        filters: &[(PluginSource, Vec<(String, String)>)],
        transforms: &[(PluginSource, Vec<(String, String)>)],
    ) -> Result<ChainSpec, PluginError> {
        let mut slots = Vec::new();
        let stages = filters
            .iter()
            .map(|plugin| (StageKind::Filter, plugin))
            .chain(
                transforms
                    .iter()
                    .map(|plugin| (StageKind::Transform, plugin)),
            );
        for (kind, (source, config)) in stages {
            let started = Instant::now();
            let version = PluginVersion::load(engine, kind, source, config)?;
            tracing::info!(plugin = %version.name(), kind = kind.noun(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "Plugin loaded.");
            slots.push(Arc::new(PluginSlot::new(version)));
        }
        Ok(ChainSpec {
            engine: engine.clone(),
            slots,
        })
    }

    /// Whether the chain has no plugin (records are copied as they are).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slots, in chain order.
    pub fn slots(&self) -> &[Arc<PluginSlot>] {
        &self.slots
    }

    /// A task's running chain. Instances are created at the first batch.
    pub fn start(&self) -> RecordChain {
        RecordChain::new(&self.engine, &self.slots)
    }
}
