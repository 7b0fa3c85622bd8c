//! WebAssembly plugins: the only module that imports wasmtime.
//!
//! It owns loading components (builtin or from a `.wasm` file), the sandbox they run in (no
//! WASI capabilities, a memory cap, a CPU deadline per call), calling them and caching their
//! answers. It must not import rdkafka or know about flows: callers pass plain strings.
//!
//! - [`Engine`] (`engine.rs`): one per process; compiler, epoch ticker, linker.
//! - [`Policy`] (`policy.rs`): a loaded `ferry:plugin/replication-policy@0.1.0` component.
//! - [`ChainSpec`] / [`RecordChain`] (`chain.rs`): a flow's record filters and transforms
//!   (`ferry:plugin/record-filter`, `record-transform`), one call per batch, with trap
//!   isolation by bisection and a circuit breaker; [`PluginSlot`] is where hot swap plugs in.
//! - [`NameFilter`] (`names.rs`): MM2's topic, group and config-property filters as
//!   components, on the metadata path, answers cached per name.
//! - [`inspect`] (`inspect.rs`): which world a component implements, for `ferry plugin check`.
//! - `builtin.rs`: `builtin:default-policy` and `builtin:identity-policy`, embedded.
//! - [`PluginError`] (`error.rs`).

mod bindings;
mod builtin;
mod chain;
mod engine;
mod error;
mod inspect;
mod names;
mod policy;

use std::fmt;
use std::path::Path;

pub use chain::{
    BREAKER_TRIPS, BREAKER_WINDOW, CanaryReport, ChainOutput, ChainSpec, Disposition, PackedBatch,
    PluginSlot, PluginVersion, RecordChain, RecordInput, RecordView, StageKind, short_digest,
};
pub use engine::{Engine, EngineOptions, default_cache_dir};
pub use error::{BoxError, PluginError};
pub(crate) use inspect::read as read_source;
pub use inspect::{Inspection, PluginKind, inspect};
pub use names::{NameFilter, NameFilterKind};
pub use policy::{Policy, is_legal_topic_name};

pub use crate::config::PluginSource;

/// The prefix of a builtin plugin in a `uses` value.
const BUILTIN_PREFIX: &str = "builtin:";

// `PluginSource` (`Builtin(name)` or `File(path)`) is defined with the configuration, which
// parses and checks `uses`; these are the plugin host's helpers on it.
impl PluginSource {
    /// Parses a `uses` value: `builtin:<name>`, or a path, which is resolved against
    /// `base_dir` (the configuration file's folder) when relative. Nothing is checked here:
    /// [`Policy::load`] reports a missing file or an unknown builtin.
    pub fn parse(uses: &str, base_dir: &Path) -> PluginSource {
        match uses.strip_prefix(BUILTIN_PREFIX) {
            Some(name) => PluginSource::Builtin(name.to_owned()),
            None => {
                let path = Path::new(uses);
                if path.is_absolute() {
                    PluginSource::File(path.to_path_buf())
                } else {
                    PluginSource::File(base_dir.join(path))
                }
            }
        }
    }

    /// The name used in logs and errors: `builtin:<name>`, or the file name.
    pub fn plugin_name(&self) -> String {
        match self {
            PluginSource::Builtin(name) => format!("{BUILTIN_PREFIX}{name}"),
            PluginSource::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            ),
        }
    }
}

impl fmt::Display for PluginSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::Builtin(name) => write!(formatter, "{BUILTIN_PREFIX}{name}"),
            PluginSource::File(path) => write!(formatter, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::PluginSource;

    #[test]
    fn parses_uses() {
        let base = Path::new("/etc/ferry");
        let check = |uses: &str, expected: PluginSource, name: &str| {
            let source = PluginSource::parse(uses, base);
            assert_eq!(source, expected, "{uses}");
            assert_eq!(source.plugin_name(), name, "{uses}");
        };
        check(
            "builtin:default-policy",
            PluginSource::Builtin("default-policy".to_owned()),
            "builtin:default-policy",
        );
        check(
            "plugins/my_policy.wasm",
            PluginSource::File(PathBuf::from("/etc/ferry/plugins/my_policy.wasm")),
            "my_policy.wasm",
        );
        check(
            "/opt/p.wasm",
            PluginSource::File(PathBuf::from("/opt/p.wasm")),
            "p.wasm",
        );
    }
}
