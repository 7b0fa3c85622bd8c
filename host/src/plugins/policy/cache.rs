//! The policy's answer caches: one map per WIT function (by source alias, then topic, for
//! `format-remote-topic`), so that only the first call for an input enters wasm. Answers that
//! failed are not cached. A map that reaches [`MAX_CACHED_ANSWERS`] entries is emptied and
//! refilled.

use std::collections::HashMap;
use std::hash::Hash;

use wasmtime::Store;

use super::Policy;
use crate::plugins::bindings::exports::ferry::plugin::replication_policy::Guest;
use crate::plugins::engine::HostState;
use crate::plugins::error::PluginError;

/// Entries kept per cached function before the cache is emptied and refilled. Topic names are
/// bounded by the clusters' topic counts, so only a misbehaving caller reaches it.
pub(super) const MAX_CACHED_ANSWERS: usize = 100_000;

/// The answers given so far, per function and input.
#[derive(Default)]
pub(super) struct Cache {
    /// By source alias, then topic.
    pub(super) format_remote_topic: HashMap<String, HashMap<String, String>>,
    pub(super) topic_source: HashMap<String, Option<String>>,
    pub(super) upstream_topic: HashMap<String, Option<String>>,
    pub(super) original_topic: HashMap<String, String>,
    pub(super) heartbeats_topic: Option<String>,
    pub(super) offset_syncs_topic: HashMap<String, String>,
    pub(super) checkpoints_topic: HashMap<String, String>,
    pub(super) is_heartbeats_topic: HashMap<String, bool>,
    pub(super) is_checkpoints_topic: HashMap<String, bool>,
    pub(super) is_mm2_internal_topic: HashMap<String, bool>,
    pub(super) is_internal_topic: HashMap<String, bool>,
}

/// Inserts into a cache map, emptying it first when it is full.
pub(super) fn insert_bounded<K: Eq + Hash, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_CACHED_ANSWERS {
        map.clear();
    }
    map.insert(key, value);
}

impl Policy {
    /// Answers a one-argument function from its cache, or calls the guest, checks the answer
    /// with `check` and caches it.
    pub(super) fn cached<V: Clone>(
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
}
