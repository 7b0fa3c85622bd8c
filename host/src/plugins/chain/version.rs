//! [`PluginVersion`]: one loaded version of a record filter or transform (compiled, linked,
//! its `init` configuration checked once at load), its instances ([`Live`]: one `Store` each),
//! and one call of an instance on a packed batch, under the CPU deadline, its answer checked.
//! Also [`short_digest`], what tells versions of any plugin apart.
//!
//! What to do when a call fails (bisection, circuit breaker) is `run.rs`; the golden batch a new
//! version must pass is `canary.rs`.

use std::fmt;
use std::sync::Arc;

use wasmtime::Store;

use super::StageKind;
use super::packed::{PackedBatch, Verdicts, map_verdicts};
use crate::plugins::PluginSource;
use crate::plugins::bindings;
use crate::plugins::bindings::transform::ferry::plugin::types::{
    FilterResult, RecordBatch, TransformResult,
};
use crate::plugins::engine::{Engine, HostState};
use crate::plugins::error::{BoxError, PluginError, guest_error};

enum Pre {
    Filter(bindings::filter::FilterPre<HostState>),
    Transform(bindings::transform::TransformPre<HostState>),
}

/// One loaded version of a filter or transform: compiled, linked and checked (its `init`
/// accepted the configuration once). Immutable and shared; instances are per task.
pub struct PluginVersion {
    pub(super) name: Arc<str>,
    kind: StageKind,
    /// The first 12 hex digits of the component's SHA-256: what tells versions apart.
    digest: Arc<str>,
    pre: Pre,
    config: Vec<(String, String)>,
}

impl fmt::Debug for PluginVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PluginVersion")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl PluginVersion {
    /// Loads `source` as a plugin of `kind` and checks that an instance accepts `config`.
    ///
    /// # Errors
    ///
    /// [`PluginError::NotFound`], [`PluginError::Read`], [`PluginError::UnknownBuiltin`],
    /// [`PluginError::Compile`], [`PluginError::WrongKind`], [`PluginError::Link`],
    /// [`PluginError::Instantiate`], [`PluginError::Init`], or a trap or timeout in `init`.
    pub fn load(
        engine: &Engine,
        kind: StageKind,
        source: &PluginSource,
        config: &[(String, String)],
    ) -> Result<PluginVersion, PluginError> {
        let bytes = crate::plugins::source::read(source)?;
        PluginVersion::from_bytes(engine, kind, &source.plugin_name(), &bytes, config)
    }

    /// Loads the component `bytes` (named `name` in logs and errors) as a plugin of `kind` and
    /// checks that an instance accepts `config`: what a hot swap does with an uploaded file.
    ///
    /// # Errors
    ///
    /// As [`PluginVersion::load`], without the file errors.
    pub fn from_bytes(
        engine: &Engine,
        kind: StageKind,
        name: &str,
        bytes: &[u8],
        config: &[(String, String)],
    ) -> Result<PluginVersion, PluginError> {
        let name: Arc<str> = name.into();
        let digest: Arc<str> = short_digest(bytes).into();
        let component = engine.compile(&name, bytes)?;
        let interface = kind.interface();
        let wrong_kind = |source: Option<BoxError>| PluginError::WrongKind {
            plugin: name.to_string(),
            kind: kind.noun(),
            missing: interface,
            source,
        };
        if !engine.exports_instance(&component, interface) {
            return Err(wrong_kind(None));
        }
        let instance_pre = engine.link(&name, &component)?;
        let pre = match kind {
            StageKind::Filter => bindings::filter::FilterPre::new(instance_pre)
                .map(Pre::Filter)
                .map_err(|error| wrong_kind(Some(error.into_boxed_dyn_error())))?,
            StageKind::Transform => bindings::transform::TransformPre::new(instance_pre)
                .map(Pre::Transform)
                .map_err(|error| wrong_kind(Some(error.into_boxed_dyn_error())))?,
        };
        let version = PluginVersion {
            name,
            kind,
            digest,
            pre,
            config: config.to_vec(),
        };
        // A canary: the configuration must be accepted before the flow starts.
        version.instantiate(engine)?;
        Ok(version)
    }

    /// The plugin's name: its file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a filter or a transform.
    pub fn kind(&self) -> StageKind {
        self.kind
    }

    /// The version: the first 12 hex digits of the component's SHA-256.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// A fresh instance in its own store, `init` called.
    pub(super) fn instantiate(&self, engine: &Engine) -> Result<Live, PluginError> {
        let mut store = engine.new_store();
        let instantiate_error = |error: wasmtime::Error| PluginError::Instantiate {
            plugin: self.name.to_string(),
            source: error.into_boxed_dyn_error(),
        };
        let (instance, init) = match &self.pre {
            Pre::Filter(pre) => {
                let instance = pre.instantiate(&mut store).map_err(instantiate_error)?;
                let init = instance
                    .ferry_plugin_record_filter()
                    .call_init(&mut store, &self.config);
                (Instance::Filter(instance), init)
            }
            Pre::Transform(pre) => {
                let instance = pre.instantiate(&mut store).map_err(instantiate_error)?;
                let init = instance
                    .ferry_plugin_record_transform()
                    .call_init(&mut store, &self.config);
                (Instance::Transform(instance), init)
            }
        };
        match init {
            Ok(Ok(())) => Ok(Live { store, instance }),
            Ok(Err(message)) => Err(PluginError::Init {
                plugin: self.name.to_string(),
                message,
            }),
            Err(error) => Err(call_error(engine, &self.name, "init", 0, error)),
        }
    }

    /// Calls `live` (an instance of this version) on `input` under the CPU deadline and checks
    /// its answer; replacements, if any, are returned as output number `output`.
    pub(super) fn answer(
        &self,
        engine: &Engine,
        live: &mut Live,
        input: &PackedBatch,
        output: u32,
    ) -> Result<(Verdicts, Option<RecordBatch>), CallFailure> {
        engine.arm_deadline(&mut live.store);
        let (name, kind, count) = (&self.name, self.kind, input.len());
        let answer = match &live.instance {
            Instance::Filter(instance) => instance
                .ferry_plugin_record_filter()
                .call_filter(&mut live.store, &input.origin, &input.batch)
                .map(|answer| answer.map(Answer::Filter)),
            Instance::Transform(instance) => instance
                .ferry_plugin_record_transform()
                .call_transform(&mut live.store, &input.origin, &input.batch)
                .map(|answer| answer.map(Answer::Transform)),
        };
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(message)) => {
                return Err(CallFailure::Answer(PluginError::Refused {
                    plugin: name.to_string(),
                    function: kind.function(),
                    records: count,
                    message,
                }));
            }
            Err(error) => {
                return Err(CallFailure::Trap(call_error(
                    engine,
                    name,
                    kind.function(),
                    count,
                    error,
                )));
            }
        };
        let (verdicts, errors, replacements) = match answer {
            Answer::Filter(FilterResult { verdicts, errors }) => (verdicts, errors, None),
            Answer::Transform(TransformResult {
                verdicts,
                replacements,
                errors,
            }) => (verdicts, errors, Some(replacements)),
        };
        let mapped = map_verdicts(kind, count, verdicts, errors, replacements.as_ref(), output)
            .map_err(|problem| {
                CallFailure::Answer(PluginError::Malformed {
                    plugin: name.to_string(),
                    function: kind.function(),
                    records: count,
                    problem,
                })
            })?;
        let replacements = replacements.filter(|batch| !batch.timestamps.is_empty());
        Ok((mapped, replacements))
    }
}

/// The first 12 hex digits of the SHA-256 of `bytes`: a plugin version's identity in logs,
/// `/status` and metrics (policies and name filters use it too).
pub fn short_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Turns a failed guest call on `records` records into [`PluginError::Timeout`] or
/// [`PluginError::Trap`].
fn call_error(
    engine: &Engine,
    plugin: &str,
    function: &'static str,
    records: usize,
    error: wasmtime::Error,
) -> PluginError {
    guest_error(
        engine.options().call_deadline,
        plugin,
        function,
        format!("{records} record(s)"),
        error,
    )
}

enum Instance {
    Filter(bindings::filter::Filter),
    Transform(bindings::transform::Transform),
}

/// A running instance of a version and its store.
pub(super) struct Live {
    store: Store<HostState>,
    instance: Instance,
}

/// Why a call gave no verdicts.
pub(super) enum CallFailure {
    /// The plugin answered, but refused the batch or broke the contract; the instance stays.
    Answer(PluginError),
    /// A trap or timeout: the instance must be discarded.
    Trap(PluginError),
}

enum Answer {
    Filter(FilterResult),
    Transform(TransformResult),
}
