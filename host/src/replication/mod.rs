//! A record's path: from the source consumer through the flow's filters and transforms to the
//! target producer, and the stored positions and offset syncs that acknowledgements produce.
//!
//! * `context`: [`TaskContext`], what the tasks of one flow share (read-only after start).
//! * `catalog`: the mirrored topics the topic manager publishes and tasks follow.
//! * `assignment`: which task owns which source partition (a pure function).
//! * `worker`: one task's copy loop, on its own thread (`worker/`: the loop, rdkafka
//!   callbacks, the partition table, the record dispositions, offset syncs, positions).
//! * `tracker`: contiguous acknowledgements per partition, which decide stored positions.
//! * `positions`: reads the stored positions topic to its end.
//! * `halts`: the partitions halted in this process, with the record each stopped at.
//! * `supervisor`: runs a long-lived duty on its own thread, restarting it with back-off,
//!   until stopped (task workers and the flow leader).
//!
//! Nothing here decides *which* tasks this process runs or which topics are mirrored: that is
//! the flow's control plane (`crate::flow`), which starts and stops task workers.

pub(crate) mod assignment;
pub(crate) mod catalog;
pub(crate) mod halts;
pub(crate) mod positions;
pub(crate) mod supervisor;
pub(crate) mod tracker;
pub(crate) mod worker;

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{Cluster, Flow};
use crate::metrics::Metrics;
use crate::plugins::ChainSpec;
use catalog::Catalog;
use positions::PositionReader;

/// What the task workers of one flow share; built once by `flow::start`.
pub(crate) struct TaskContext {
    /// The flow's configuration.
    pub(crate) flow: Flow,
    /// The source cluster; `kafka`'s builders take each client role's settings from it.
    pub(crate) source: Cluster,
    /// The target cluster; `kafka`'s builders take each client role's settings from it.
    pub(crate) target: Cluster,
    /// Where positions are stored on the target.
    pub(crate) positions_topic: String,
    /// Reads stored positions; shared by the tasks of this process.
    pub(crate) positions: Mutex<PositionReader>,
    /// The current catalog of mirrored topics.
    pub(crate) catalog: watch::Receiver<Arc<Catalog>>,
    /// Metric families.
    pub(crate) metrics: Arc<Metrics>,
    /// Number of tasks (partitions of the lease topic).
    pub(crate) task_count: u32,
    /// Whether partitions without a stored position start at the end (`auto.offset.reset=latest`
    /// in the source cluster's librdkafka options) instead of the beginning.
    pub(crate) start_latest: bool,
    /// Where tasks write MM2 offset syncs; `None` when the flow emits none.
    pub(crate) offset_syncs: Option<OffsetSyncsLocation>,
    /// The flow's record filters and transforms; `None` when it has none.
    pub(crate) chain: Option<ChainSpec>,
    /// The partitions halted in this process, for `ferry status`.
    pub(crate) halts: halts::Halts,
    /// Records the target refused inside an exactly-once transaction, for the task's next run.
    pub(crate) refused: worker::RefusedRecords,
}

/// The offset-syncs topic and the cluster holding it.
pub(crate) struct OffsetSyncsLocation {
    /// Its name, from the policy.
    pub(crate) topic: String,
    /// The cluster it is on.
    pub(crate) cluster: Cluster,
}
