//! [`inspect`]: what a component is, without running it: which Ferry world it implements (found
//! by reflecting on its exports), what else it exports and imports, whether Ferry can link it,
//! and how it was compiled (from the precompiled cache or not). `ferry plugin check` prints it.

use std::fmt;
use std::time::Duration;

use super::PluginSource;
use super::bindings::POLICY_INTERFACE;
use super::engine::Engine;
use super::error::PluginError;

/// A Ferry plugin world, recognised by the interface the component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// `world policy`: exports `ferry:plugin/replication-policy@0.1.0`.
    Policy,
    /// A record filter: exports `ferry:plugin/record-filter@0.1.0`.
    RecordFilter,
    /// A record transform: exports `ferry:plugin/record-transform@0.1.0`.
    RecordTransform,
    /// A topic filter: exports `ferry:plugin/topic-filter@0.1.0`.
    TopicFilter,
    /// A group filter: exports `ferry:plugin/group-filter@0.1.0`.
    GroupFilter,
    /// A config-property filter: exports `ferry:plugin/config-property-filter@0.1.0`.
    ConfigPropertyFilter,
}

impl PluginKind {
    /// Every kind, in the order `ferry plugin check` lists them.
    pub const ALL: [PluginKind; 6] = [
        PluginKind::Policy,
        PluginKind::RecordFilter,
        PluginKind::RecordTransform,
        PluginKind::TopicFilter,
        PluginKind::GroupFilter,
        PluginKind::ConfigPropertyFilter,
    ];

    /// The exported interface that identifies the kind.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Policy => POLICY_INTERFACE,
            PluginKind::RecordFilter => "ferry:plugin/record-filter@0.1.0",
            PluginKind::RecordTransform => "ferry:plugin/record-transform@0.1.0",
            PluginKind::TopicFilter => "ferry:plugin/topic-filter@0.1.0",
            PluginKind::GroupFilter => "ferry:plugin/group-filter@0.1.0",
            PluginKind::ConfigPropertyFilter => "ferry:plugin/config-property-filter@0.1.0",
        }
    }

    /// A short name: `policy`, `record filter`...
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::Policy => "replication policy",
            PluginKind::RecordFilter => "record filter",
            PluginKind::RecordTransform => "record transform",
            PluginKind::TopicFilter => "topic filter",
            PluginKind::GroupFilter => "group filter",
            PluginKind::ConfigPropertyFilter => "config-property filter",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} ({})", self.name(), self.interface())
    }
}

/// What [`inspect`] found.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The plugin's name (file name or `builtin:<name>`).
    pub plugin: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// The Ferry worlds it implements (usually one).
    pub kinds: Vec<PluginKind>,
    /// Every export name, in the component's order.
    pub exports: Vec<String>,
    /// Every import name, in the component's order.
    pub imports: Vec<String>,
    /// Where the compiled code came from: `compiled, cached as <file>`, `precompiled, from
    /// <file>`...
    pub origin: String,
    /// How long compiling or loading the compiled code took.
    pub compile_time: Duration,
}

/// Reads (or looks up) the component, compiles it through the engine's caches, lists its
/// exports and imports, recognises the Ferry worlds it implements and checks that Ferry can
/// link its imports. Nothing is instantiated.
///
/// # Errors
///
/// [`PluginError::NotFound`], [`PluginError::Read`], [`PluginError::UnknownBuiltin`],
/// [`PluginError::Compile`], [`PluginError::Link`].
pub fn inspect(engine: &Engine, source: &PluginSource) -> Result<Inspection, PluginError> {
    let plugin = source.plugin_name();
    let bytes = super::source::read(source)?;
    let (component, compiled) = engine.compile_timed(&plugin, &bytes)?;
    let component_type = component.component_type();
    let exports: Vec<String> = component_type
        .exports(engine.wasmtime())
        .map(|(name, _)| name.to_owned())
        .collect();
    let imports: Vec<String> = component_type
        .imports(engine.wasmtime())
        .map(|(name, _)| name.to_owned())
        .collect();
    let kinds = PluginKind::ALL
        .into_iter()
        .filter(|kind| engine.exports_instance(&component, kind.interface()))
        .collect();
    engine.link(&plugin, &component)?;
    Ok(Inspection {
        plugin,
        size: bytes.len(),
        kinds,
        exports,
        imports,
        origin: compiled.origin.to_string(),
        compile_time: compiled.elapsed,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{PluginKind, inspect};
    use crate::plugins::{Engine, EngineOptions, PluginSource};

    fn engine() -> Engine {
        Engine::with_options(EngineOptions {
            pooled_instances: 0,
            ..EngineOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn recognises_a_policy() {
        let inspection = inspect(
            &engine(),
            &PluginSource::Builtin("default-policy".to_owned()),
        )
        .unwrap();
        assert_eq!(inspection.kinds, [PluginKind::Policy]);
        assert!(
            inspection
                .exports
                .contains(&"ferry:plugin/replication-policy@0.1.0".to_owned())
        );
        assert!(inspection.size > 0);
    }

    #[test]
    fn wrong_world_has_no_kind_and_lists_its_exports() {
        let path = Path::new(env!("FERRY_PLUGIN_DIR")).join("wrong_world.wasm");
        let inspection = inspect(&engine(), &PluginSource::File(path)).unwrap();
        assert!(inspection.kinds.is_empty());
        assert!(!inspection.exports.is_empty());
    }
}
