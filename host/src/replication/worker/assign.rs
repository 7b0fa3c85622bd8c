//! Following the catalog: the partitions this task owns are assigned to its consumer (at their
//! stored positions, checked against the source log) and those that left are unassigned;
//! delivery reports of each remote topic are routed to its entry in the partition table.

use std::collections::HashMap;
use std::sync::Arc;

use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::partitions::{PartitionState, TopicState};
use super::store::checked_resume;
use super::{TaskError, Worker};
use crate::mm2::translation::SyncRule;
use crate::replication::assignment::task_of;

impl Worker {
    /// Follows the catalog: assigns the partitions this task owns that are not yet assigned and
    /// unassigns those that left the catalog.
    pub(super) fn update_assignment(&mut self) -> Result<(), TaskError> {
        let catalog = Arc::clone(&self.catalog.borrow_and_update());
        let tasks = self.context.task_count;
        let latest = self.context.start_latest;
        let mut assign = TopicPartitionList::new();
        let mut grown_remotes: Vec<Arc<str>> = Vec::new();
        // Partitions whose source log started again: (topic index, partition, new start).
        let mut rewound: Vec<(u32, i32, i64)> = Vec::new();
        let mut wanted: HashMap<&str, Vec<i32>> = HashMap::new();
        for mirrored in &catalog.topics {
            for partition in 0..mirrored.partitions {
                if task_of(&mirrored.source, partition, tasks) == self.task {
                    wanted.entry(&mirrored.source).or_default().push(partition);
                }
            }
        }
        for mirrored in &catalog.topics {
            let Some(partitions) = wanted.get(mirrored.source.as_ref()) else {
                continue;
            };
            let index = self.topic_index(&mirrored.source, &mirrored.remote);
            let Some(topic) = self.table.topic_mut(index) else {
                continue;
            };
            for partition in partitions {
                let state = topic
                    .partitions
                    .entry(*partition)
                    .or_insert_with(|| PartitionState::new(self.context.flow.offset_lag_max));
                if state.assigned() {
                    continue;
                }
                let stored = self
                    .start_positions
                    .get(&(mirrored.source.to_string(), *partition));
                // Where this task stopped (the topic left the catalog and came back), else the
                // stored position: checked against the source log either way.
                let next = state.next_offset.or(stored.map(|last| last + 1));
                let start = match next {
                    Some(next) => {
                        let resume = checked_resume(
                            &self.consumer,
                            &self.events,
                            &mirrored.source,
                            *partition,
                            next,
                        );
                        if state.next_offset.is_some_and(|next| resume < next) {
                            rewound.push((index, *partition, resume));
                        } else {
                            state.next_offset = Some(resume);
                        }
                        Offset::Offset(resume)
                    }
                    None if latest => Offset::End,
                    None => Offset::Beginning,
                };
                if let Some(last) = stored {
                    state.stored.get_or_insert(*last);
                }
                assign
                    .add_partition_offset(&mirrored.source, *partition, start)
                    .map_err(|source| TaskError::Assign {
                        task: self.task,
                        source: Box::new(source),
                    })?;
                let metrics = &self.context.metrics;
                state.assign(
                    metrics.partition_lag_series(self.events.flow(), &mirrored.source, *partition),
                    metrics.mm2.source_series(
                        self.context.flow.source.as_str(),
                        self.context.flow.target.as_str(),
                        &mirrored.remote,
                        *partition,
                    ),
                );
                if grown_remotes.last() != Some(&mirrored.remote) {
                    grown_remotes.push(Arc::clone(&mirrored.remote));
                }
                tracing::info!(topic = %mirrored.source, partition, ?start, "Partition assigned.");
            }
        }
        let mut unassign = TopicPartitionList::new();
        for topic in self.table.topics_mut() {
            let wanted_partitions = wanted.get(topic.source.as_ref());
            for (partition, state) in &mut topic.partitions {
                if state.assigned()
                    && !wanted_partitions.is_some_and(|list| list.contains(partition))
                {
                    unassign.add_partition(&topic.source, *partition);
                    state.unassign();
                    tracing::info!(topic = %topic.source, partition, "Partition unassigned.");
                }
            }
        }
        if unassign.count() > 0 {
            self.consumer
                .incremental_unassign(&unassign)
                .map_err(|source| TaskError::Assign {
                    task: self.task,
                    source: Box::new(source),
                })?;
        }
        // The producer learns of new remote partitions only at its next metadata refresh (every
        // few minutes) and holds records for them until then; ask now.
        for remote in grown_remotes {
            if let Err(error) = self
                .producer
                .client()
                .fetch_metadata(Some(&remote), crate::kafka::REQUEST_TIMEOUT)
            {
                tracing::warn!(%error, topic = %remote, "Refreshing remote topic metadata failed.");
            }
        }
        for (index, partition, start) in rewound {
            self.restart_log(index, partition, start)?;
        }
        if assign.count() > 0 {
            self.consumer
                .incremental_assign(&assign)
                .map_err(|source| TaskError::Assign {
                    task: self.task,
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    pub(super) fn topic_index(&mut self, source: &Arc<str>, remote: &Arc<str>) -> u32 {
        if let Some(index) = self.table.index(source) {
            // A policy swapped with `force` renamed the remote topic: later records go to the
            // new name; deliveries still in flight to the old one keep their mapping.
            if let Some(topic) = self.table.topic_mut(index)
                && topic.remote != *remote
            {
                tracing::warn!(topic = %source, from = %topic.remote, to = %remote,
                    "Remote topic renamed by a forced policy swap; copying on under the new name.");
                topic.remote = Arc::clone(remote);
                for state in topic.partitions.values_mut() {
                    // The next record starts a new offset-sync run in the new topic.
                    state.sync = SyncRule::new(self.context.flow.offset_lag_max);
                }
                self.route_deliveries(remote, index);
            }
            return index;
        }
        let metrics = &self.context.metrics;
        let flow = self.events.flow();
        let index = self.table.add(TopicState {
            source: Arc::clone(source),
            remote: Arc::clone(remote),
            partitions: HashMap::new(),
            records: metrics
                .records_replicated
                .with_label_values(&[flow, source.as_ref()]),
            bytes: metrics
                .bytes_replicated
                .with_label_values(&[flow, source.as_ref()]),
            dropped: metrics
                .records_dropped
                .with_label_values(&[flow, source.as_ref()]),
        });
        self.route_deliveries(remote, index);
        index
    }

    /// Delivery reports for `remote` belong to topic `index`.
    pub(super) fn route_deliveries(&self, remote: &Arc<str>, index: u32) {
        self.producer
            .context()
            .buffer()
            .indexes
            .insert(Arc::clone(remote), index);
    }
}
