//! The values Ferry's admin calls take and return (`kafka::ffi`): topic ACL bindings,
//! incremental config operations, consumer group offsets and group descriptions, as plain Rust values. The rules that choose them (which ACLs
//! and settings MM2 copies) are in `flow::settings`.

use std::fmt;

/// How an ACL's resource name matches topic names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum PatternType {
    /// The name is the topic name.
    Literal,
    /// The name is a prefix of topic names.
    Prefixed,
    /// A filter value matching literal, wildcard and prefixed bindings (never stored).
    Match,
    /// A filter value matching any pattern type (never stored).
    Any,
    /// A pattern type this client does not know.
    Unknown,
}

/// The operation an ACL allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Operation {
    /// An operation this client does not know.
    Unknown,
    /// A filter value matching any operation (never stored).
    Any,
    /// Every operation.
    All,
    /// `READ`.
    Read,
    /// `WRITE`.
    Write,
    /// `CREATE`.
    Create,
    /// `DELETE`.
    Delete,
    /// `ALTER`.
    Alter,
    /// `DESCRIBE`.
    Describe,
    /// `CLUSTER_ACTION`.
    ClusterAction,
    /// `DESCRIBE_CONFIGS`.
    DescribeConfigs,
    /// `ALTER_CONFIGS`.
    AlterConfigs,
    /// `IDEMPOTENT_WRITE`.
    IdempotentWrite,
}

/// Whether an ACL allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Permission {
    /// A permission type this client does not know.
    Unknown,
    /// A filter value matching both (never stored).
    Any,
    /// `DENY`.
    Deny,
    /// `ALLOW`.
    Allow,
}

/// One ACL binding on a topic resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TopicAcl {
    /// The resource name: a topic name, or a prefix for [`PatternType::Prefixed`].
    pub(crate) topic: String,
    /// How `topic` matches topic names.
    pub(crate) pattern: PatternType,
    /// The principal, e.g. `User:alice`.
    pub(crate) principal: String,
    /// The host, `*` for any.
    pub(crate) host: String,
    /// The operation.
    pub(crate) operation: Operation,
    /// Allow or deny.
    pub(crate) permission: Permission,
}

impl fmt::Display for TopicAcl {
    /// `User:alice@* ALLOW Read on LITERAL topic `orders``.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}@{} {:?} {:?} on {:?} topic `{}`",
            self.principal, self.host, self.permission, self.operation, self.pattern, self.topic
        )
    }
}

/// One incremental config operation on a remote topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigOp {
    /// Set `name` to `value` as a topic override.
    Set {
        /// The property.
        name: String,
        /// Its value.
        value: String,
    },
    /// Remove the topic override of `name` (back to the target's default).
    Delete {
        /// The property.
        name: String,
    },
}

impl ConfigOp {
    /// The property the operation changes.
    pub(crate) fn name(&self) -> &str {
        match self {
            ConfigOp::Set { name, .. } | ConfigOp::Delete { name } => name,
        }
    }
}

/// One committed offset of a consumer group.
#[derive(Debug)]
pub(crate) struct GroupOffset {
    /// The topic.
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
    /// The committed offset (the next record the group reads); negative when none.
    pub(crate) offset: i64,
    /// The commit's metadata string.
    pub(crate) metadata: String,
    /// Why the broker refused this partition, in an answer to a commit.
    pub(crate) error: Option<rdkafka::types::RDKafkaErrorCode>,
}

/// Offsets to commit to one consumer group: the group, then (topic, partition, offset) each.
pub(crate) type GroupCommit = (String, Vec<(String, i32, i64)>);

/// A consumer group as DescribeConsumerGroups answers: its state and its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupDescription {
    /// The group.
    pub(crate) group: String,
    /// Kafka's name of its state (`Stable`, `PreparingRebalance`, `Empty`, `Dead`, ...).
    pub(crate) state: String,
    /// Its members now.
    pub(crate) members: Vec<GroupMember>,
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupMember {
    /// The member id the coordinator gave it.
    pub(crate) member_id: String,
    /// The client's `client.id`.
    pub(crate) client_id: String,
    /// The client's host as the coordinator sees it (`/127.0.0.1`).
    pub(crate) host: String,
    /// The partitions assigned to it: (topic, partition).
    pub(crate) assignment: Vec<(String, i32)>,
}
