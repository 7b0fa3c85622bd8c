//! TEMPORARY STUB (replaced by the real config module).
#![allow(missing_docs, dead_code)]
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub clusters: BTreeMap<ClusterName, Cluster>,
    pub flows: Vec<Flow>,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterName(String);
impl ClusterName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Display for ClusterName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: ClusterName,
    pub bootstrap_servers: String,
    pub librdkafka: BTreeMap<String, String>,
}
impl Cluster {
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        c
    }
}
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowId(String);
impl FlowId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Display for FlowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: FlowId,
    pub source: ClusterName,
    pub target: ClusterName,
    pub enabled: bool,
    pub topics: TopicPatterns,
    pub topics_exclude: TopicPatterns,
    pub policy: PluginRef,
    pub replication_factor: i16,
    pub tasks: u32,
    pub refresh_topics_interval: Duration,
    pub commit_interval: Duration,
    pub heartbeats_replication: bool,
    pub group_id: String,
    pub max_in_flight: usize,
}
#[derive(Debug, Clone)]
pub struct TopicPatterns;
impl TopicPatterns {
    pub fn matches(&self, _t: &str) -> bool {
        true
    }
}
#[derive(Debug, Clone)]
pub struct PluginRef {
    pub uses: PluginSource,
    pub with: Vec<(String, String)>,
}
#[derive(Debug, Clone)]
pub enum PluginSource {
    Builtin(String),
    File(PathBuf),
}
#[derive(Debug)]
pub struct ConfigErrors;
impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("x")
    }
}
impl std::error::Error for ConfigErrors {}
pub fn load(_p: &std::path::Path) -> Result<Config, ConfigErrors> {
    Err(ConfigErrors)
}
