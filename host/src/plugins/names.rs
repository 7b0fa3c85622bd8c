//! Name filters on the metadata path: MM2's `TopicFilter`, `GroupFilter` and
//! `ConfigPropertyFilter` as components (`ferry:plugin/topic-filter`, `group-filter`,
//! `config-property-filter` in `wit/records.wit`). They narrow what the flow's `topics` /
//! `topics_exclude`, `groups` / `groups_exclude` and `config_properties_exclude` select (MM2's
//! `Default*Filter` behaviour, built in).
//!
//! A [`NameFilter`] is one loaded version: one instance behind a mutex (metadata calls are
//! rare), answers cached per name, so a name is asked once per version. The three interfaces
//! have the same shape (`init`, then one list of names in and one list of booleans out), so one
//! type serves them through typed exports found by name. A trap or timeout discards the
//! instance (re-created, `init` again, at the next call) and fails the call; nothing is
//! cached then, so the question is asked again later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use wasmtime::Store;
use wasmtime::component::{InstancePre, TypedFunc};

use super::PluginSource;
use super::engine::{Engine, HostState};
use super::error::{BoxError, PluginError, guest_error};

/// Answers kept per filter before the cache starts over.
const MAX_CACHED: usize = 100_000;

/// Which of MM2's name filters a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameFilterKind {
    /// `ferry:plugin/topic-filter` (`topic_filter` in a flow).
    Topic,
    /// `ferry:plugin/group-filter` (`group_filter`).
    Group,
    /// `ferry:plugin/config-property-filter` (`config_property_filter`).
    ConfigProperty,
}

impl NameFilterKind {
    fn interface(self) -> &'static str {
        match self {
            NameFilterKind::Topic => "ferry:plugin/topic-filter@0.1.0",
            NameFilterKind::Group => "ferry:plugin/group-filter@0.1.0",
            NameFilterKind::ConfigProperty => "ferry:plugin/config-property-filter@0.1.0",
        }
    }

    fn function(self) -> &'static str {
        match self {
            NameFilterKind::Topic => "should-replicate-topics",
            NameFilterKind::Group => "should-replicate-groups",
            NameFilterKind::ConfigProperty => "should-replicate-config-properties",
        }
    }

    /// What it is called in messages.
    pub fn noun(self) -> &'static str {
        match self {
            NameFilterKind::Topic => "topic filter",
            NameFilterKind::Group => "group filter",
            NameFilterKind::ConfigProperty => "config-property filter",
        }
    }
}

type Answer = TypedFunc<(Vec<String>,), (Vec<bool>,)>;
type Init = TypedFunc<(Vec<(String, String)>,), (Result<(), String>,)>;

/// A loaded topic, group or config-property filter.
pub struct NameFilter {
    name: String,
    /// The first 12 hex digits of the component's SHA-256.
    digest: String,
    kind: NameFilterKind,
    engine: Engine,
    calls: AtomicU64,
    errors: AtomicU64,
    state: Mutex<State>,
}

struct State {
    pre: InstancePre<HostState>,
    config: Vec<(String, String)>,
    live: Option<(Store<HostState>, Answer)>,
    cache: HashMap<String, bool>,
}

impl std::fmt::Debug for NameFilter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NameFilter")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl NameFilter {
    /// Loads `source` as a filter of `kind` and checks that it accepts `config`.
    ///
    /// # Errors
    ///
    /// The file and compile errors of every plugin, [`PluginError::WrongKind`] naming the
    /// missing export, or the failure of `init`.
    pub fn load(
        engine: &Engine,
        kind: NameFilterKind,
        source: &PluginSource,
        config: &[(String, String)],
    ) -> Result<NameFilter, PluginError> {
        let bytes = super::source::read(source)?;
        NameFilter::from_bytes(engine, kind, &source.plugin_name(), &bytes, config)
    }

    /// Loads the component `bytes`, named `name` in logs and errors (a hot swap's upload).
    ///
    /// # Errors
    ///
    /// As [`NameFilter::load`], without the file errors.
    pub fn from_bytes(
        engine: &Engine,
        kind: NameFilterKind,
        name: &str,
        bytes: &[u8],
        config: &[(String, String)],
    ) -> Result<NameFilter, PluginError> {
        let name = name.to_owned();
        let digest = super::short_digest(bytes);
        let component = engine.compile(&name, bytes)?;
        let wrong_kind = |source: Option<BoxError>| PluginError::WrongKind {
            plugin: name.clone(),
            kind: kind.noun(),
            missing: kind.interface(),
            source,
        };
        if !engine.exports_instance(&component, kind.interface()) {
            return Err(wrong_kind(None));
        }
        let pre = engine.link(&name, &component)?;
        let filter = NameFilter {
            name,
            digest,
            kind,
            engine: engine.clone(),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            state: Mutex::new(State {
                pre,
                config: config.to_vec(),
                live: None,
                cache: HashMap::new(),
            }),
        };
        {
            let mut state = filter.lock();
            let live = filter.start(&state)?;
            state.live = Some(live);
        }
        Ok(filter)
    }

    /// The plugin's name (its file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version: the first 12 hex digits of the component's SHA-256.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Which filter it is.
    pub fn kind(&self) -> NameFilterKind {
        self.kind
    }

    /// Asks a fresh version about a golden list of names (topics, internal topics, groups,
    /// property names, an empty name): what a hot swap checks before installing it. Only a
    /// failed call fails it; the answers are the plugin's business.
    ///
    /// # Errors
    ///
    /// As [`NameFilter::allows_all`].
    pub fn canary(&self) -> Result<usize, PluginError> {
        let names = [
            "orders",
            "prod.orders.global",
            "clusterA.prod.orders.global",
            "__consumer_offsets",
            "heartbeats",
            "mm2-offsets.clusterA.internal",
            "produser_consumer_1",
            "retention.ms",
            "",
        ];
        let answers = self.allows_all(&names)?;
        Ok(answers.into_iter().filter(|allowed| *allowed).count())
    }

    /// Calls into the guest so far (`init` included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls that failed: traps, timeouts and malformed answers.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Whether the filter lets `name` through; answered from the cache when it can be.
    ///
    /// # Errors
    ///
    /// As [`NameFilter::allows_all`].
    pub fn allows(&self, name: &str) -> Result<bool, PluginError> {
        Ok(self.allows_all(&[name])?.first().copied().unwrap_or(false))
    }

    /// One answer per name, in order: names not cached go to the guest in one call.
    ///
    /// # Errors
    ///
    /// A trap or timeout ([`PluginError::Trap`], [`PluginError::Timeout`]), or
    /// [`PluginError::Malformed`] when the guest answers a different number of booleans.
    pub fn allows_all(&self, names: &[&str]) -> Result<Vec<bool>, PluginError> {
        let mut state = self.lock();
        let mut unknown: Vec<String> = names
            .iter()
            .filter(|name| !state.cache.contains_key(**name))
            .map(|name| (*name).to_owned())
            .collect();
        unknown.sort();
        unknown.dedup();
        if !unknown.is_empty() {
            let answers = self.call(&mut state, &unknown)?;
            if state.cache.len() + answers.len() > MAX_CACHED {
                state.cache.clear();
            }
            state.cache.extend(unknown.into_iter().zip(answers));
        }
        Ok(names
            .iter()
            .map(|name| state.cache.get(*name).copied().unwrap_or(false))
            .collect())
    }

    fn call(&self, state: &mut State, names: &[String]) -> Result<Vec<bool>, PluginError> {
        let (mut store, answer) = match state.live.take() {
            Some(live) => live,
            None => self.start(state)?,
        };
        self.engine.arm_deadline(&mut store);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let function = self.kind.function();
        match answer.call(&mut store, (names.to_vec(),)) {
            Ok((answers,)) => {
                state.live = Some((store, answer));
                if answers.len() == names.len() {
                    Ok(answers)
                } else {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    Err(PluginError::Malformed {
                        plugin: self.name.clone(),
                        function,
                        records: names.len(),
                        problem: format!("{} answers for {} names", answers.len(), names.len()),
                    })
                }
            }
            Err(error) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let error = guest_error(
                    self.engine.options().call_deadline,
                    &self.name,
                    function,
                    format!("{} name(s)", names.len()),
                    error,
                );
                tracing::warn!(plugin = %self.name, error = %crate::error_chain(&error),
                    "Filter call failed; its instance is discarded and re-created on the next call.");
                Err(error)
            }
        }
    }

    /// A fresh instance, `init` called, and its answering function.
    fn start(&self, state: &State) -> Result<(Store<HostState>, Answer), PluginError> {
        let mut store = self.engine.new_store();
        let instantiate_error = |error: wasmtime::Error| PluginError::Instantiate {
            plugin: self.name.clone(),
            source: error.into_boxed_dyn_error(),
        };
        let instance = state
            .pre
            .instantiate(&mut store)
            .map_err(instantiate_error)?;
        let wrong_kind = |error: Option<wasmtime::Error>| PluginError::WrongKind {
            plugin: self.name.clone(),
            kind: self.kind.noun(),
            missing: self.kind.interface(),
            source: error.map(wasmtime::Error::into_boxed_dyn_error),
        };
        let interface = instance
            .get_export_index(&mut store, None, self.kind.interface())
            .ok_or_else(|| wrong_kind(None))?;
        let export = |store: &mut Store<HostState>, name: &str| {
            instance
                .get_export_index(&mut *store, Some(&interface), name)
                .ok_or_else(|| wrong_kind(None))
        };
        let init_index = export(&mut store, "init")?;
        let answer_index = export(&mut store, self.kind.function())?;
        let init: Init = instance
            .get_typed_func(&mut store, init_index)
            .map_err(|error| wrong_kind(Some(error)))?;
        let answer: Answer = instance
            .get_typed_func(&mut store, answer_index)
            .map_err(|error| wrong_kind(Some(error)))?;
        self.engine.arm_deadline(&mut store);
        self.calls.fetch_add(1, Ordering::Relaxed);
        match init.call(&mut store, (state.config.clone(),)) {
            Ok((Ok(()),)) => Ok((store, answer)),
            Ok((Err(message),)) => Err(PluginError::Init {
                plugin: self.name.clone(),
                message,
            }),
            Err(error) => Err(guest_error(
                self.engine.options().call_deadline,
                &self.name,
                "init",
                String::new(),
                error,
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::{NameFilter, NameFilterKind};
    use crate::plugins::{Engine, PluginError, PluginSource};

    fn fixture(name: &str) -> PluginSource {
        PluginSource::File(
            std::path::Path::new(env!("FERRY_PLUGIN_DIR")).join(format!("{name}.wasm")),
        )
    }

    #[test]
    fn topic_filter_answers_in_order_and_caches() {
        let engine = Engine::new().unwrap();
        let filter = NameFilter::load(
            &engine,
            NameFilterKind::Topic,
            &fixture("prefix_topic_filter"),
            &[("prefix".to_owned(), "keep.".to_owned())],
        )
        .unwrap();
        let answers = filter
            .allows_all(&["keep.a", "drop.b", "keep.c", "keep.a"])
            .unwrap();
        assert_eq!(answers, [true, false, true, true]);
        let calls = filter.calls();
        assert!(filter.allows("drop.b").is_ok_and(|keep| !keep));
        assert_eq!(filter.calls(), calls, "cached answers call nothing");
    }

    #[test]
    fn a_component_of_another_kind_is_refused_naming_the_export() {
        let engine = Engine::new().unwrap();
        let error = NameFilter::load(
            &engine,
            NameFilterKind::Group,
            &fixture("prefix_topic_filter"),
            &[],
        )
        .unwrap_err();
        assert!(matches!(error, PluginError::WrongKind { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("ferry:plugin/group-filter@0.1.0"),
            "{error}"
        );
    }

    #[test]
    fn group_and_config_property_filters_load_by_their_interfaces() {
        let engine = Engine::new().unwrap();
        let groups = NameFilter::load(
            &engine,
            NameFilterKind::Group,
            &fixture("prefix_group_filter"),
            &[],
        )
        .unwrap();
        assert_eq!(
            groups.allows_all(&["keep_1", "other"]).unwrap(),
            [true, false]
        );
        let properties = NameFilter::load(
            &engine,
            NameFilterKind::ConfigProperty,
            &fixture("deny_property_filter"),
            &[("deny".to_owned(), "retention.ms, segment.ms".to_owned())],
        )
        .unwrap();
        assert_eq!(
            properties
                .allows_all(&["retention.ms", "cleanup.policy", "segment.ms"])
                .unwrap(),
            [false, true, false]
        );
    }
}
