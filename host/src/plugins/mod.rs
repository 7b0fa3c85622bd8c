//! TEMPORARY STUB (replaced by the real plugins module).
#![allow(missing_docs, dead_code, unused_variables)]
use crate::config::PluginSource;
#[derive(Clone)]
pub struct Engine;
impl Engine {
    pub fn new() -> Result<Engine, PluginError> {
        Ok(Engine)
    }
}
pub struct Policy;
#[derive(Debug, thiserror::Error)]
#[error("plugin error")]
pub struct PluginError;
impl Policy {
    pub fn load(
        engine: &Engine,
        source: &PluginSource,
        config: &[(String, String)],
    ) -> Result<Policy, PluginError> {
        Ok(Policy)
    }
    pub fn name(&self) -> &str {
        "stub"
    }
    pub fn format_remote_topic(
        &self,
        source_alias: &str,
        topic: &str,
    ) -> Result<String, PluginError> {
        Ok(format!("{source_alias}.{topic}"))
    }
    pub fn topic_source(&self, topic: &str) -> Result<Option<String>, PluginError> {
        Ok(None)
    }
    pub fn upstream_topic(&self, topic: &str) -> Result<Option<String>, PluginError> {
        Ok(None)
    }
    pub fn is_heartbeats_topic(&self, topic: &str) -> Result<bool, PluginError> {
        Ok(false)
    }
    pub fn is_internal_topic(&self, topic: &str) -> Result<bool, PluginError> {
        Ok(false)
    }
    pub fn calls(&self) -> u64 {
        0
    }
    pub fn errors(&self) -> u64 {
        0
    }
}
