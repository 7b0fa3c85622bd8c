//! [`Policy`]: a loaded replication-policy plugin. Owns its instance (one `Store`, behind a
//! mutex), the answer caches that keep wasm off the data path, the checks on what the guest
//! answers, and recovery from traps and timeouts (the instance is discarded and re-created,
//! `init` included, on the next call).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::PluginSource;
use super::bindings::exports::ferry::plugin::replication_policy::Guest;
use super::bindings::{self, POLICY_FUNCTIONS, POLICY_INTERFACE};
use super::engine::{Engine, HostState};
use super::error::PluginError;

/// Entries kept per cached function before the cache is emptied and refilled. Topic names are
/// bounded by the clusters' topic counts, so only a misbehaving caller reaches it.
const MAX_CACHED_ANSWERS: usize = 100_000;

/// A replication-policy plugin, loaded and initialised.
///
/// Every answer is cached per input: only the first call for an input enters wasm, later ones
/// are a hash lookup. Calls are serialised by a mutex (policies are called on the metadata path
/// only). A trap or timeout is returned as an error and discards the instance; the next call
/// that misses the cache creates a new instance and calls `init` again with the same
/// configuration. Errors are not cached.
pub struct Policy {
    name: String,
    /// The first 12 hex digits of the component's SHA-256.
    digest: String,
    engine: Engine,
    state: Mutex<State>,
    calls: AtomicU64,
    errors: AtomicU64,
}

struct State {
    pre: bindings::PolicyPre<HostState>,
    config: Vec<(String, String)>,
    live: Option<Live>,
    cache: Cache,
}

/// A running instance and its store.
struct Live {
    store: Store<HostState>,
    bindings: bindings::Policy,
}

#[derive(Default)]
struct Cache {
    /// By source alias, then topic.
    format_remote_topic: HashMap<String, HashMap<String, String>>,
    topic_source: HashMap<String, Option<String>>,
    upstream_topic: HashMap<String, Option<String>>,
    original_topic: HashMap<String, String>,
    heartbeats_topic: Option<String>,
    offset_syncs_topic: HashMap<String, String>,
    checkpoints_topic: HashMap<String, String>,
    is_heartbeats_topic: HashMap<String, bool>,
    is_checkpoints_topic: HashMap<String, bool>,
    is_mm2_internal_topic: HashMap<String, bool>,
    is_internal_topic: HashMap<String, bool>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Policy")
            .field("name", &self.name)
            .field("calls", &self.calls())
            .field("errors", &self.errors())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Loads the policy from `source`: reads or looks up the component, compiles it (once per
    /// engine for the same bytes), checks that it exports `ferry:plugin/replication-policy@0.1.0`,
    /// links WASI, instantiates it and calls `init(config)`.
    ///
    /// `config` is the flow's `policy.with` table followed by `source.cluster.alias` and
    /// `target.cluster.alias`; the caller adds those two.
    ///
    /// # Errors
    ///
    /// [`PluginError::NotFound`], [`PluginError::Read`], [`PluginError::UnknownBuiltin`],
    /// [`PluginError::Compile`], [`PluginError::WrongWorld`], [`PluginError::Link`],
    /// [`PluginError::Instantiate`], [`PluginError::Init`], or a trap or timeout in `init`.
    pub fn load(
        engine: &Engine,
        source: &PluginSource,
        config: &[(String, String)],
    ) -> Result<Policy, PluginError> {
        let bytes = super::inspect::read(source)?;
        Policy::from_bytes(engine, &source.plugin_name(), &bytes, config)
    }

    /// Loads the policy component `bytes`, named `name` in logs and errors (a hot swap's
    /// upload). As [`Policy::load`], without the file errors.
    ///
    /// # Errors
    ///
    /// As [`Policy::load`].
    pub fn from_bytes(
        engine: &Engine,
        name: &str,
        bytes: &[u8],
        config: &[(String, String)],
    ) -> Result<Policy, PluginError> {
        let started = Instant::now();
        let name = name.to_owned();
        let digest = super::chain::short_digest(bytes);
        let component = engine.compile(&name, bytes)?;
        check_exports(engine, &name, &component)?;
        let instance_pre = engine.link(&name, &component)?;
        let pre =
            bindings::PolicyPre::new(instance_pre).map_err(|error| PluginError::WrongWorld {
                plugin: name.clone(),
                missing: POLICY_INTERFACE.to_owned(),
                source: Some(error.into_boxed_dyn_error()),
            })?;
        let policy = Policy {
            name,
            digest,
            engine: engine.clone(),
            state: Mutex::new(State {
                pre,
                config: config.to_vec(),
                live: None,
                cache: Cache::default(),
            }),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        {
            let mut state = policy.lock();
            let live = policy.start(&state.pre, &state.config)?;
            state.live = Some(live);
        }
        tracing::info!(
            plugin = %policy.name,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "Replication policy plugin loaded."
        );
        Ok(policy)
    }

    /// The engine the policy runs in; a flow's filters and transforms share it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The plugin's name: `builtin:default-policy`, or the file name (`my_policy.wasm`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version: the first 12 hex digits of the component's SHA-256.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// How many times Ferry entered wasm for this plugin (`init` included); cached answers do
    /// not count.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many calls failed: traps, timeouts and invalid answers.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The remote topic name for `topic` of the cluster `source_alias` (MM2: `formatRemoteTopic`).
    ///
    /// # Errors
    ///
    /// [`PluginError::Trap`], [`PluginError::Timeout`], [`PluginError::InvalidAnswer`] when the
    /// answer is not a legal topic name, or an error re-creating a discarded instance.
    pub fn format_remote_topic(
        &self,
        source_alias: &str,
        topic: &str,
    ) -> Result<String, PluginError> {
        let function = "format-remote-topic";
        let input = || format!("{source_alias:?}, {topic:?}");
        let mut state = self.lock();
        if let Some(answer) = state
            .cache
            .format_remote_topic
            .get(source_alias)
            .and_then(|by_topic| by_topic.get(topic))
        {
            return Ok(answer.clone());
        }
        let answer = self.call(&mut state, function, &input, |guest, store| {
            guest.call_format_remote_topic(store, source_alias, topic)
        })?;
        self.check_topic_name(function, &input, &answer, None)?;
        let by_alias = &mut state.cache.format_remote_topic;
        if by_alias.len() >= MAX_CACHED_ANSWERS {
            by_alias.clear();
        }
        insert_bounded(
            by_alias.entry(source_alias.to_owned()).or_default(),
            topic.to_owned(),
            answer.clone(),
        );
        Ok(answer)
    }

    /// The alias of the cluster `topic` was replicated from, or `None` when it is not a remote
    /// topic (MM2: `topicSource`). The alias is not checked: it is not a topic name.
    ///
    /// # Errors
    ///
    /// [`PluginError::Trap`], [`PluginError::Timeout`], or an error re-creating a discarded
    /// instance.
    pub fn topic_source(&self, topic: &str) -> Result<Option<String>, PluginError> {
        self.cached(
            "topic-source",
            topic,
            |cache| &mut cache.topic_source,
            |guest, store| guest.call_topic_source(store, topic),
            |_| Ok(()),
        )
    }

    /// The name `topic` had one hop upstream, or `None` when it is not a remote topic
    /// (MM2: `upstreamTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::format_remote_topic`]; an answer equal to `topic` is accepted as is.
    pub fn upstream_topic(&self, topic: &str) -> Result<Option<String>, PluginError> {
        let function = "upstream-topic";
        self.cached(
            function,
            topic,
            |cache| &mut cache.upstream_topic,
            |guest, store| guest.call_upstream_topic(store, topic),
            |answer| match answer {
                Some(name) => {
                    self.check_topic_name(function, &|| format!("{topic:?}"), name, Some(topic))
                }
                None => Ok(()),
            },
        )
    }

    /// The name `topic` had where it was first written (MM2: `originalTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::upstream_topic`].
    pub fn original_topic(&self, topic: &str) -> Result<String, PluginError> {
        let function = "original-topic";
        self.cached(
            function,
            topic,
            |cache| &mut cache.original_topic,
            |guest, store| guest.call_original_topic(store, topic),
            |name| self.check_topic_name(function, &|| format!("{topic:?}"), name, Some(topic)),
        )
    }

    /// The heartbeats topic (MM2: `heartbeatsTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::format_remote_topic`].
    pub fn heartbeats_topic(&self) -> Result<String, PluginError> {
        let function = "heartbeats-topic";
        let input = String::new;
        let mut state = self.lock();
        if let Some(answer) = &state.cache.heartbeats_topic {
            return Ok(answer.clone());
        }
        let answer = self.call(&mut state, function, &input, |guest, store| {
            guest.call_heartbeats_topic(store)
        })?;
        self.check_topic_name(function, &input, &answer, None)?;
        state.cache.heartbeats_topic = Some(answer.clone());
        Ok(answer)
    }

    /// The offset-syncs topic kept for the cluster `alias` (MM2: `offsetSyncsTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::format_remote_topic`].
    pub fn offset_syncs_topic(&self, alias: &str) -> Result<String, PluginError> {
        let function = "offset-syncs-topic";
        self.cached(
            function,
            alias,
            |cache| &mut cache.offset_syncs_topic,
            |guest, store| guest.call_offset_syncs_topic(store, alias),
            |name| self.check_topic_name(function, &|| format!("{alias:?}"), name, None),
        )
    }

    /// The checkpoints topic for the source cluster `alias` (MM2: `checkpointsTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::format_remote_topic`].
    pub fn checkpoints_topic(&self, alias: &str) -> Result<String, PluginError> {
        let function = "checkpoints-topic";
        self.cached(
            function,
            alias,
            |cache| &mut cache.checkpoints_topic,
            |guest, store| guest.call_checkpoints_topic(store, alias),
            |name| self.check_topic_name(function, &|| format!("{alias:?}"), name, None),
        )
    }

    /// Whether `topic` is a heartbeats topic (MM2: `isHeartbeatsTopic`).
    ///
    /// # Errors
    ///
    /// [`PluginError::Trap`], [`PluginError::Timeout`], or an error re-creating a discarded
    /// instance.
    pub fn is_heartbeats_topic(&self, topic: &str) -> Result<bool, PluginError> {
        self.cached(
            "is-heartbeats-topic",
            topic,
            |cache| &mut cache.is_heartbeats_topic,
            |guest, store| guest.call_is_heartbeats_topic(store, topic),
            |_| Ok(()),
        )
    }

    /// Whether `topic` is a checkpoints topic (MM2: `isCheckpointsTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::is_heartbeats_topic`].
    pub fn is_checkpoints_topic(&self, topic: &str) -> Result<bool, PluginError> {
        self.cached(
            "is-checkpoints-topic",
            topic,
            |cache| &mut cache.is_checkpoints_topic,
            |guest, store| guest.call_is_checkpoints_topic(store, topic),
            |_| Ok(()),
        )
    }

    /// Whether `topic` is an MM2 (or Ferry) internal topic (MM2: `isMM2InternalTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::is_heartbeats_topic`].
    pub fn is_mm2_internal_topic(&self, topic: &str) -> Result<bool, PluginError> {
        self.cached(
            "is-mm2-internal-topic",
            topic,
            |cache| &mut cache.is_mm2_internal_topic,
            |guest, store| guest.call_is_mm2_internal_topic(store, topic),
            |_| Ok(()),
        )
    }

    /// Whether `topic` is internal to Kafka, MM2 or Ferry and so never replicated
    /// (MM2: `isInternalTopic`).
    ///
    /// # Errors
    ///
    /// As [`Policy::is_heartbeats_topic`].
    pub fn is_internal_topic(&self, topic: &str) -> Result<bool, PluginError> {
        self.cached(
            "is-internal-topic",
            topic,
            |cache| &mut cache.is_internal_topic,
            |guest, store| guest.call_is_internal_topic(store, topic),
            |_| Ok(()),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic cannot leave `State` half-updated in a way that matters: at worst an instance
        // is kept that should have been dropped, and the next trap drops it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers a one-argument function from its cache, or calls the guest, checks the answer
    /// with `check` and caches it.
    fn cached<V: Clone>(
        &self,
        function: &'static str,
        argument: &str,
        select: fn(&mut Cache) -> &mut HashMap<String, V>,
        call: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<V>,
        check: impl FnOnce(&V) -> Result<(), PluginError>,
    ) -> Result<V, PluginError> {
        let mut state = self.lock();
        if let Some(answer) = select(&mut state.cache).get(argument) {
            return Ok(answer.clone());
        }
        let answer = self.call(&mut state, function, &|| format!("{argument:?}"), call)?;
        check(&answer)?;
        insert_bounded(
            select(&mut state.cache),
            argument.to_owned(),
            answer.clone(),
        );
        Ok(answer)
    }

    /// Calls the guest with a CPU deadline, creating the instance first if the last one was
    /// discarded. A trap or timeout discards the instance.
    fn call<V>(
        &self,
        state: &mut State,
        function: &'static str,
        input: &dyn Fn() -> String,
        call: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<V>,
    ) -> Result<V, PluginError> {
        let live = match state.live.take() {
            Some(live) => live,
            None => self.start(&state.pre, &state.config)?,
        };
        let live = state.live.insert(live);
        self.engine.arm_deadline(&mut live.store);
        self.calls.fetch_add(1, Ordering::Relaxed);
        match call(
            live.bindings.ferry_plugin_replication_policy(),
            &mut live.store,
        ) {
            Ok(answer) => Ok(answer),
            Err(error) => {
                state.live = None;
                Err(self.call_failed(function, input(), error))
            }
        }
    }

    /// Creates an instance and calls `init`.
    fn start(
        &self,
        pre: &bindings::PolicyPre<HostState>,
        config: &[(String, String)],
    ) -> Result<Live, PluginError> {
        let mut store = self.engine.new_store();
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|error| PluginError::Instantiate {
                plugin: self.name.clone(),
                source: error.into_boxed_dyn_error(),
            })?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = bindings
            .ferry_plugin_replication_policy()
            .call_init(&mut store, config);
        match result {
            Ok(Ok(())) => Ok(Live { store, bindings }),
            Ok(Err(message)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Err(PluginError::Init {
                    plugin: self.name.clone(),
                    message,
                })
            }
            Err(error) => {
                let keys: Vec<&str> = config.iter().map(|(key, _)| key.as_str()).collect();
                Err(self.call_failed("init", format!("{{{}}}", keys.join(", ")), error))
            }
        }
    }

    /// Turns a failed call into [`PluginError::Timeout`] or [`PluginError::Trap`] and logs it.
    fn call_failed(
        &self,
        function: &'static str,
        input: String,
        error: wasmtime::Error,
    ) -> PluginError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            plugin = %self.name,
            function,
            input = %input,
            error = ?error,
            "Plugin call failed; its instance is discarded and re-created on the next call."
        );
        super::chain::guest_error(&self.engine, &self.name, function, input, error)
    }

    /// Refuses an answer that is not a legal Kafka topic name, unless it is the input topic
    /// itself (`original_topic(t)` may answer `t`, whatever `t` is).
    fn check_topic_name(
        &self,
        function: &'static str,
        input: &dyn Fn() -> String,
        answer: &str,
        input_topic: Option<&str>,
    ) -> Result<(), PluginError> {
        if is_legal_topic_name(answer) || input_topic == Some(answer) {
            return Ok(());
        }
        self.errors.fetch_add(1, Ordering::Relaxed);
        let input = input();
        tracing::warn!(
            plugin = %self.name,
            function,
            input = %input,
            answer,
            "Plugin answered with an illegal topic name."
        );
        Err(PluginError::InvalidAnswer {
            plugin: self.name.clone(),
            function,
            input,
            answer: answer.to_owned(),
        })
    }
}

/// Inserts into a cache map, emptying it first when it is full.
fn insert_bounded<K: Eq + Hash, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_CACHED_ANSWERS {
        map.clear();
    }
    map.insert(key, value);
}

/// Kafka's rule for topic names (`org.apache.kafka.common.internals.Topic#validate`): 1 to 249
/// characters of `[a-zA-Z0-9._-]`, and neither `.` nor `..`.
pub fn is_legal_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// Checks that the component exports the policy interface with all its functions, naming the
/// first thing missing. Type mismatches are found later, when the bindings are built.
fn check_exports(engine: &Engine, plugin: &str, component: &Component) -> Result<(), PluginError> {
    let wrong_world = |missing: String| PluginError::WrongWorld {
        plugin: plugin.to_owned(),
        missing,
        source: None,
    };
    let component_type = component.component_type();
    let Some(export) = component_type.get_export(engine.wasmtime(), POLICY_INTERFACE) else {
        return Err(wrong_world(POLICY_INTERFACE.to_owned()));
    };
    let ComponentItem::ComponentInstance(instance) = export.ty else {
        return Err(wrong_world(format!("{POLICY_INTERFACE} (as an instance)")));
    };
    for function in POLICY_FUNCTIONS {
        if instance.get_export(engine.wasmtime(), function).is_none() {
            return Err(wrong_world(format!("{POLICY_INTERFACE}#{function}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use super::{Policy, is_legal_topic_name};
    use crate::plugins::{Engine, EngineOptions, PluginError, PluginSource};

    /// One engine for the tests, as in the host: one per process.
    fn engine() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| Engine::new().unwrap())
    }

    fn fixture(file: &str) -> PluginSource {
        PluginSource::File(Path::new(env!("FERRY_PLUGIN_DIR")).join(file))
    }

    fn flow_config(with: &[(&str, &str)]) -> Vec<(String, String)> {
        with.iter()
            .chain(&[("source.cluster.alias", "A"), ("target.cluster.alias", "B")])
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn load(source: &PluginSource, with: &[(&str, &str)]) -> Result<Policy, PluginError> {
        Policy::load(engine(), source, &flow_config(with))
    }

    fn builtin(name: &str) -> PluginSource {
        PluginSource::Builtin(name.to_owned())
    }

    #[test]
    fn default_policy_answers_like_mm2() {
        let policy = load(&builtin("default-policy"), &[]).unwrap();
        assert_eq!(policy.name(), "builtin:default-policy");
        assert_eq!(
            policy.format_remote_topic("A", "orders").unwrap(),
            "A.orders"
        );
        let check = |topic: &str, source: Option<&str>, upstream: Option<&str>, original: &str| {
            assert_eq!(
                policy.topic_source(topic).unwrap().as_deref(),
                source,
                "{topic}"
            );
            assert_eq!(
                policy.upstream_topic(topic).unwrap().as_deref(),
                upstream,
                "{topic}"
            );
            assert_eq!(policy.original_topic(topic).unwrap(), original, "{topic}");
        };
        check("topic", None, None, "topic");
        check("A.B.topic", Some("A"), Some("B.topic"), "topic");
        check(".topic", Some(""), Some("topic"), "topic");
        check("topic.", None, None, "topic.");
        check("..", None, None, "..");
        check("A..topic", Some("A"), Some(".topic"), "topic");
        check("x.heartbeats.y", Some("x"), Some("heartbeats.y"), "y");
        assert_eq!(policy.heartbeats_topic().unwrap(), "heartbeats");
        assert_eq!(
            policy.offset_syncs_topic("B").unwrap(),
            "mm2-offset-syncs.B.internal"
        );
        assert_eq!(
            policy.checkpoints_topic("A").unwrap(),
            "A.checkpoints.internal"
        );
        assert!(policy.is_heartbeats_topic("A.B.heartbeats").unwrap());
        assert!(!policy.is_heartbeats_topic("x.heartbeats.y").unwrap());
        assert!(
            policy
                .is_checkpoints_topic("A.checkpoints.internal")
                .unwrap()
        );
        assert!(
            policy
                .is_mm2_internal_topic("mm2-offset-syncs.B.internal")
                .unwrap()
        );
        assert!(policy.is_internal_topic("__consumer_offsets").unwrap());
        assert!(!policy.is_internal_topic("orders").unwrap());
        assert_eq!(policy.errors(), 0);
    }

    #[test]
    fn default_policy_reads_the_separator() {
        let policy = load(
            &builtin("default-policy"),
            &[
                ("replication.policy.separator", "_"),
                (
                    "replication.policy.internal.topic.separator.enabled",
                    "false",
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            policy.format_remote_topic("A", "orders").unwrap(),
            "A_orders"
        );
        assert_eq!(
            policy.topic_source("A_orders").unwrap().as_deref(),
            Some("A")
        );
        assert_eq!(
            policy.offset_syncs_topic("B").unwrap(),
            "mm2-offset-syncs.B.internal"
        );
    }

    #[test]
    fn identity_policy_keeps_names() {
        let policy = load(&builtin("identity-policy"), &[]).unwrap();
        assert_eq!(policy.name(), "builtin:identity-policy");
        assert_eq!(policy.format_remote_topic("A", "orders").unwrap(), "orders");
        assert_eq!(
            policy.format_remote_topic("A", "heartbeats").unwrap(),
            "A.heartbeats"
        );
        assert_eq!(policy.topic_source("orders").unwrap().as_deref(), Some("A"));
        assert_eq!(
            policy.upstream_topic("orders").unwrap().as_deref(),
            Some("orders")
        );
        assert_eq!(
            policy.original_topic("C.B.heartbeats").unwrap(),
            "heartbeats"
        );
    }

    #[test]
    fn cached_answers_do_not_enter_wasm() {
        let policy = load(&builtin("default-policy"), &[]).unwrap();
        assert_eq!(policy.calls(), 1, "init");
        assert_eq!(
            policy.format_remote_topic("A", "orders").unwrap(),
            "A.orders"
        );
        assert_eq!(policy.calls(), 2);
        for _ in 0..10 {
            assert_eq!(
                policy.format_remote_topic("A", "orders").unwrap(),
                "A.orders"
            );
        }
        assert_eq!(policy.calls(), 2);
        assert_eq!(
            policy.format_remote_topic("C", "orders").unwrap(),
            "C.orders"
        );
        assert_eq!(policy.calls(), 3);
        policy.heartbeats_topic().unwrap();
        policy.heartbeats_topic().unwrap();
        policy.topic_source("A.orders").unwrap();
        policy.topic_source("A.orders").unwrap();
        policy.is_internal_topic("A.orders").unwrap();
        policy.is_internal_topic("A.orders").unwrap();
        assert_eq!(policy.calls(), 6);
    }

    #[test]
    fn wrong_world_names_the_missing_export() {
        let error = load(&fixture("wrong_world.wasm"), &[]).unwrap_err();
        assert!(
            matches!(&error, PluginError::WrongWorld { plugin, missing, .. }
                if plugin == "wrong_world.wasm" && missing == "ferry:plugin/replication-policy@0.1.0"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "plugin `wrong_world.wasm` is not a replication policy: it does not export \
             `ferry:plugin/replication-policy@0.1.0`"
        );
        assert!(std::error::Error::source(&error).is_none());
    }

    #[test]
    fn trap_is_an_error_and_the_next_call_works() {
        let policy = load(&fixture("trap_policy.wasm"), &[]).unwrap();
        let error = policy.format_remote_topic("A", "boom-1").unwrap_err();
        assert!(
            matches!(
                error,
                PluginError::Trap {
                    function: "format-remote-topic",
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            r#"plugin `trap_policy.wasm` trapped in `format-remote-topic("A", "boom-1")`"#
        );
        assert!(std::error::Error::source(&error).is_some());
        assert_eq!(policy.errors(), 1);
        let calls = policy.calls();
        assert_eq!(
            policy.format_remote_topic("A", "orders").unwrap(),
            "A.orders"
        );
        assert_eq!(policy.calls(), calls + 2, "init again, then the call");
        // Errors are not cached: the same input traps again.
        assert!(policy.format_remote_topic("A", "boom-1").is_err());
        assert_eq!(
            policy.topic_source("A.orders").unwrap().as_deref(),
            Some("A")
        );
        assert_eq!(policy.errors(), 2);
    }

    #[test]
    fn infinite_loop_times_out() {
        let policy = load(&fixture("loop_policy.wasm"), &[]).unwrap();
        let started = Instant::now();
        let error = policy.format_remote_topic("A", "orders").unwrap_err();
        let elapsed = started.elapsed();
        eprintln!("loop_policy.wasm timed out after {elapsed:?}");
        assert!(
            matches!(&error, PluginError::Timeout { deadline, .. } if *deadline == Duration::from_secs(1)),
            "{error:?}"
        );
        assert!(
            elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );
        assert_eq!(
            error.to_string(),
            r#"plugin `loop_policy.wasm` ran longer than 1s in `format-remote-topic("A", "orders")`"#
        );
        assert_eq!(
            policy.topic_source("A.orders").unwrap().as_deref(),
            Some("A")
        );
    }

    #[test]
    fn short_deadline_is_configurable() {
        let engine = Engine::with_options(EngineOptions {
            call_deadline: Duration::from_millis(50),
            pooled_instances: 0,
            ..EngineOptions::default()
        })
        .unwrap();
        let policy =
            Policy::load(&engine, &fixture("loop_policy.wasm"), &flow_config(&[])).unwrap();
        let started = Instant::now();
        let error = policy.format_remote_topic("A", "orders").unwrap_err();
        assert!(matches!(error, PluginError::Timeout { .. }), "{error:?}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn sleeping_traps_at_once() {
        let policy = load(&fixture("sleep_policy.wasm"), &[]).unwrap();
        let started = Instant::now();
        let error = policy.format_remote_topic("A", "orders").unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(error, PluginError::Trap { .. }), "{error:?}");
        let cause = std::error::Error::source(&error).unwrap().to_string();
        assert!(cause.contains("may not block"), "{cause}");
        assert_eq!(
            policy.topic_source("A.orders").unwrap().as_deref(),
            Some("A")
        );
    }

    #[test]
    fn memory_cap_traps() {
        let policy = load(&fixture("memory_hog_policy.wasm"), &[]).unwrap();
        let error = policy.format_remote_topic("A", "orders").unwrap_err();
        assert!(matches!(error, PluginError::Trap { .. }), "{error:?}");
        assert_eq!(
            policy.topic_source("A.orders").unwrap().as_deref(),
            Some("A")
        );
    }

    #[test]
    fn illegal_name_is_an_invalid_answer() {
        let policy = load(&fixture("bad_name_policy.wasm"), &[]).unwrap();
        let error = policy.format_remote_topic("A", "orders").unwrap_err();
        assert!(
            matches!(&error, PluginError::InvalidAnswer { answer, function: "format-remote-topic", .. } if answer == "bad/name"),
            "{error:?}"
        );
        assert!(error.to_string().starts_with(
            r#"plugin `bad_name_policy.wasm` answered `format-remote-topic("A", "orders")` with `bad/name`"#
        ));
        assert_eq!(policy.errors(), 1);
        // The instance is fine; other answers still come.
        assert_eq!(
            policy.topic_source("A.orders").unwrap().as_deref(),
            Some("A")
        );
    }

    #[test]
    fn init_error_carries_the_guest_message() {
        let error = load(&fixture("init_fails_policy.wasm"), &[("k", "v")]).unwrap_err();
        assert!(
            matches!(&error, PluginError::Init { plugin, message }
                if plugin == "init_fails_policy.wasm"
                && message == "init-fails-policy refuses every configuration (config size 3)"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "plugin `init_fails_policy.wasm` refused its configuration: init-fails-policy \
             refuses every configuration (config size 3)"
        );
    }

    #[test]
    fn missing_file_is_not_found() {
        let path = PathBuf::from("/nonexistent/ferry/missing.wasm");
        let error = load(&PluginSource::File(path.clone()), &[]).unwrap_err();
        assert!(
            matches!(&error, PluginError::NotFound { path: found, .. } if *found == path),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "plugin file `/nonexistent/ferry/missing.wasm` not found"
        );
    }

    #[test]
    fn unknown_builtin_lists_the_known_ones() {
        let error = load(&builtin("nope"), &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown builtin plugin `builtin:nope` (known: builtin:default-policy, builtin:identity-policy)"
        );
    }

    #[test]
    fn not_a_component_is_a_compile_error() {
        let path =
            std::env::temp_dir().join(format!("ferry-not-a-component-{}.wasm", std::process::id()));
        std::fs::write(&path, b"\0asm not really").unwrap();
        let error = load(&PluginSource::File(path.clone()), &[]).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
    }

    #[test]
    fn topic_name_rules() {
        let check = |name: &str, expected: bool| {
            assert_eq!(is_legal_topic_name(name), expected, "{name:?}")
        };
        check("orders", true);
        check("A.orders_v2-x", true);
        check(&"a".repeat(249), true);
        check(&"a".repeat(250), false);
        check("", false);
        check(".", false);
        check("..", false);
        check("...", true);
        check("bad/name", false);
        check("with space", false);
        check("ünïcode", false);
    }

    #[test]
    fn policy_and_engine_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Policy>();
        assert_send_sync::<Engine>();
    }

    /// Prints the cold load time (fresh engine: compile, instantiate, init) and the cost of an
    /// uncached and a cached call; run with `--release -- --nocapture` for meaningful numbers.
    #[test]
    fn measures_load_and_call_cost() {
        let engine = Engine::new().unwrap();
        let started = Instant::now();
        let policy = Policy::load(&engine, &builtin("default-policy"), &flow_config(&[])).unwrap();
        let cold = started.elapsed();
        let started = Instant::now();
        let again = Policy::load(&engine, &builtin("default-policy"), &flow_config(&[])).unwrap();
        let warm = started.elapsed();
        drop(again);

        let topics: Vec<String> = (0..2000).map(|index| format!("topic-{index}")).collect();
        let started = Instant::now();
        for topic in &topics {
            policy.format_remote_topic("A", topic).unwrap();
        }
        let uncached = started.elapsed() / 2000;
        let started = Instant::now();
        for topic in &topics {
            policy.format_remote_topic("A", topic).unwrap();
        }
        let cached = started.elapsed() / 2000;
        eprintln!(
            "default-policy: cold load {cold:?}, load of compiled component {warm:?}, \
             uncached format-remote-topic {uncached:?}/call, cached {cached:?}/call"
        );
        assert_eq!(policy.calls(), 2001);
    }
}
