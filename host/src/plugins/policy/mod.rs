//! [`Policy`]: a loaded replication-policy plugin (`ferry:plugin/replication-policy`,
//! `wit/policy.wit`) and its answers: one public function per WIT function, each answered from
//! the cache or by the guest, and the checks on what the guest answers (names that must be
//! topic names are checked with [`is_legal_topic_name`]).
//!
//! - `instance.rs`: the instance (one `Store`, behind the mutex, under the engine's memory cap
//!   and CPU deadline), created at load and re-created, `init` included, on the next call after
//!   a trap or timeout; the check that a component exports the whole policy interface.
//! - `cache.rs`: the answer caches that keep wasm off the data path.
//! - `tests.rs`: against the builtins and the policy fixtures.

mod cache;
mod instance;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use self::cache::{Cache, MAX_CACHED_ANSWERS, insert_bounded};
use self::instance::{Live, check_exports};
use super::PluginSource;
use super::bindings::{self, POLICY_INTERFACE};
use super::engine::{Engine, HostState};
use super::error::PluginError;
use super::{Slot, is_legal_topic_name};

/// The flow's naming policy, read by the topic manager and replaced by a hot swap.
pub type PolicySlot = Slot<Policy>;

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

/// What the mutex guards: the instance (with what re-creates it) and the answers.
struct State {
    pre: bindings::PolicyPre<HostState>,
    config: Vec<(String, String)>,
    live: Option<Live>,
    cache: Cache,
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
        let bytes = super::source::read(source)?;
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
        let digest = super::short_digest(bytes);
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
