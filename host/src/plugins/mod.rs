//! WebAssembly plugins: the only module that imports wasmtime.
//!
//! It owns loading components (builtin or from a `.wasm` file), the sandbox they run in (no
//! WASI capabilities, a memory cap, a CPU deadline per call), calling them, caching their
//! answers, and the slots hot swap replaces them in. It must not import rdkafka, the
//! configuration or know about flows: callers pass plain strings and [`PluginSource`]s.
//!
//! - [`Engine`] (`engine.rs`): one per process; compiler, epoch ticker, linker, compiled
//!   component caches.
//! - [`PluginSource`] (`source.rs`): where a plugin comes from; the one parser of `uses`
//!   (`builtin:<name>` or a path) and reading a component's bytes. `builtin.rs`: the embedded
//!   `builtin:default-policy` and `builtin:identity-policy`.
//! - [`Slot`] (`slot.rs`): the current version of one hot-swappable plugin and a generation
//!   counter ([`PluginSlot`] for a chain stage, [`PolicySlot`] for the policy, `Slot<NameFilter>`
//!   for a name filter): where hot swap plugs in.
//! - [`Policy`] (`policy/`): a loaded `ferry:plugin/replication-policy@0.1.0` component, its
//!   instance and answer caches. [`is_legal_topic_name`] (`topic_name.rs`): Kafka's topic name
//!   rule, which the policy's answers must follow.
//! - [`ChainSpec`] / [`RecordChain`] (`chain/`): a flow's record filters and transforms
//!   (`ferry:plugin/record-filter`, `record-transform`), one call per batch, with trap
//!   isolation by bisection and a circuit breaker; the packed batch layout.
//! - [`NameFilter`] (`names.rs`): MM2's topic, group and config-property filters as
//!   components, on the metadata path, answers cached per name.
//! - [`inspect()`] (`inspect.rs`): which world a component implements, for `ferry plugin check`.
//! - [`PluginError`] (`error.rs`), and the mapping of failed guest calls to it.
//! - `bindings.rs`: the host bindings generated from `wit/`.

mod bindings;
mod builtin;
mod chain;
mod engine;
mod error;
mod inspect;
mod names;
mod policy;
mod slot;
mod source;
mod topic_name;

pub use chain::{
    BREAKER_TRIPS, BREAKER_WINDOW, CanaryReport, ChainOutput, ChainSpec, Disposition, PackedBatch,
    PluginSlot, PluginVersion, RecordChain, RecordInput, RecordView, StageKind, short_digest,
};
pub use engine::{Engine, EngineOptions, default_cache_dir};
pub use error::{BoxError, PluginError};
pub use inspect::{Inspection, PluginKind, inspect};
pub use names::{NameFilter, NameFilterKind};
pub use policy::{Policy, PolicySlot};
pub use slot::Slot;
pub(crate) use source::read as read_source;
pub use source::{BUILTIN_PREFIX, PluginSource};
pub use topic_name::is_legal_topic_name;
