//! The catalog: the topics a flow mirrors now, with their remote names and partition counts.
//! The topic manager (`flow::topics`) publishes it through a watch channel; task workers
//! follow it to assign and unassign source partitions, the leader to checkpoint.

use std::sync::Arc;

/// The topics a flow mirrors now, published to task workers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Catalog {
    /// Mirrored topics, sorted by source name.
    pub(crate) topics: Vec<MirroredTopic>,
}

/// One mirrored topic.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MirroredTopic {
    /// The topic's name on the source cluster.
    pub(crate) source: Arc<str>,
    /// The remote topic's name on the target cluster, from the policy.
    pub(crate) remote: Arc<str>,
    /// Partitions that exist on both sides (source partition N goes to remote partition N).
    pub(crate) partitions: i32,
}
