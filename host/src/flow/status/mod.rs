//! `ferry status`: what a flow's processes are doing, told from the target cluster alone.
//!
//! Two sources, both on the flow's target cluster, so that the command works from any machine
//! that reaches it:
//! * the task-lease group (`flow::lease`): its members, and which lease partition (task) each
//!   holds, from one DescribeConsumerGroups request; a member's `client.id` is its
//!   [`instance_id`];
//! * the status records: every running process publishes, per flow, one small record
//!   ([`InstanceRecord`]) to the compacted topic `ferry-status.<source>.internal` (key:
//!   `["<lease group>", "<instance id>"]`): the tasks it holds, its halted partitions with the
//!   record each stopped at, its plugin versions and the topics it mirrors. Only a running
//!   process knows those. It writes the record when it changes and every
//!   [`publish::REFRESH`], and a tombstone when the flow stops gracefully.
//!
//! Then positions (`mm2-offsets.<source>.internal`) against the source's high watermarks give
//! the lag per partition.
//!
//! * `publish`: the running side (one async task per flow);
//! * `gather`: the reading side: the Kafka requests of `ferry status`;
//! * `assemble`: the pure join of what was read into a [`assemble::FlowReport`].

pub(crate) mod assemble;
pub(crate) mod gather;
pub(crate) mod publish;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::replication::halts::HaltedRecord;

/// The status topic of flows from `source_alias` (on the target cluster).
pub(crate) fn status_topic(source_alias: &str) -> String {
    format!("ferry-status.{source_alias}.internal")
}

/// This process's instance id: `<hostname>-<pid>`. The lease member's `client.id`
/// (`kafka::lease_consumer`) and the key of its status records, so that the group's view and
/// the records join.
pub(crate) fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| format!("{}-{}", hostname(), std::process::id()))
}

/// The machine's host name (Linux), `unknown-host` when it cannot be read.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The key of a status record: `["<lease group>", "<instance id>"]` as JSON.
pub(crate) fn record_key(group: &str, instance: &str) -> Vec<u8> {
    serde_json::to_vec(&(group, instance)).unwrap_or_default()
}

/// A status record's key, decoded: (lease group, instance id).
pub(crate) fn decode_key(key: &[u8]) -> Option<(String, String)> {
    serde_json::from_slice(key).ok()
}

/// What one process publishes about one flow it runs (the value of a status record, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InstanceRecord {
    /// The instance id ([`instance_id`]).
    pub(crate) instance: String,
    /// The flow's lease group.
    pub(crate) group: String,
    /// The flow, `<source>-><target>`.
    pub(crate) flow: String,
    /// The machine's host name.
    pub(crate) host: String,
    /// The process id.
    pub(crate) pid: u32,
    /// The version of the `ferry` build.
    pub(crate) ferry_version: String,
    /// When the flow started in this process, ms since the epoch.
    pub(crate) started_at_ms: i64,
    /// When this record was written, ms since the epoch.
    pub(crate) updated_at_ms: i64,
    /// The tasks the process holds.
    pub(crate) tasks: Vec<u32>,
    /// The partitions halted in the process, with the record each stopped at.
    pub(crate) halted: Vec<HaltedRecord>,
    /// The flow's plugins and their versions in the process.
    pub(crate) plugins: Vec<PluginVersion>,
    /// The topics the process mirrors (its catalog).
    pub(crate) topics: Vec<TopicRecord>,
}

/// A plugin of a flow and its versions (as the admin endpoint's `GET /status` shows them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PluginVersion {
    /// The plugin's name.
    pub(crate) plugin: String,
    /// What it is (`replication policy`, `record filter`, `record transform`, `topic filter`,
    /// ...).
    pub(crate) kind: String,
    /// Where it was loaded from (`builtin:<name>` or a file).
    pub(crate) source: String,
    /// The active version (the digest of the component).
    pub(crate) active: String,
    /// Versions still held by tasks after a swap.
    pub(crate) draining: Vec<String>,
}

/// A mirrored topic as a process's catalog has it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    /// The source topic.
    pub(crate) topic: String,
    /// The remote topic on the target.
    pub(crate) remote: String,
    /// Partitions mirrored.
    pub(crate) partitions: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_the_instance_id_names_the_process() {
        let key = record_key("ferry-group", "host-42");
        assert_eq!(key, br#"["ferry-group","host-42"]"#);
        assert_eq!(
            decode_key(&key),
            Some(("ferry-group".to_owned(), "host-42".to_owned()))
        );
        assert_eq!(decode_key(b"not json"), None);
        assert!(instance_id().ends_with(&format!("-{}", std::process::id())));
    }
}
