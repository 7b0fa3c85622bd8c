//! Task leases: which Ferry process runs which task, decided by Kafka's group coordinator.
//!
//! A flow's work is cut into a fixed number of **tasks** (MM2's `tasks.max`); every source
//! partition belongs to exactly one task (`assignment::task_of`). Tasks are leased through an
//! ordinary Kafka consumer group on the *target* cluster: the group (`flow.group_id`) subscribes
//! to the empty, compacted topic `ferry-tasks.<source>.internal`, which has one partition per
//! task, and owning partition *k* of that topic means owning task *k*. Kafka's own coordinator
//! balances tasks over the live processes (cooperative-sticky, so a membership change moves only
//! the tasks that must move), and a process that dies loses its leases after the session timeout
//! (6 s), when the survivors take its tasks over from their stored positions.
//!
//! The task is the unit of ownership: exactly-once replication will give each task its own
//! transactional producer (`transactional.id` derived from flow and task), so that a new owner
//! fences the previous one, as MM2 does per task.
//!
//! The group member runs on its own thread, because librdkafka calls the rebalance callback on
//! the polling thread and Ferry blocks in it: a revoked task is drained (in-flight records
//! acknowledged, positions stored) before its lease is released.
//!
//! The member's `client.id` is the process's instance id (`flow::status::instance_id`), and it
//! keeps the list of tasks held in `FlowContext::tasks_held`, both for `ferry status`.
//!
//! The member also keeps the flow's readiness (`crate::health`) current: an assignment, even an
//! empty one, makes the process a member; a lost assignment or leaving the group ends that. And
//! it owns the leader's series: releasing the leader duties removes their round times from
//! `/metrics`, so that only the leader shows them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};

use super::FlowContext;
use crate::replication::supervisor::Supervised;
use crate::replication::worker::TaskHandle;

/// The task whose owner also runs the flow's leader duties (`leader`).
const LEADER_TASK: u32 = 0;

/// The lease topic of flows from `source_alias` (on the target cluster).
pub(crate) fn lease_topic(source_alias: &str) -> String {
    format!("ferry-tasks.{source_alias}.internal")
}

/// Errors joining the lease group.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaseError {
    /// The group member could not be created or subscribed.
    #[error("joining task-lease group `{group}` failed")]
    Join {
        group: String,
        #[source]
        source: Box<KafkaError>,
    },
    /// The member thread could not be started.
    #[error("starting the task-lease thread failed")]
    Thread(#[source] std::io::Error),
}

/// Which of the newly assigned `assigned` tasks to start (not running yet, and below
/// `task_count`: a lease topic grown by hand has partitions no task maps to), and whether this
/// process must take the leader duties (it got task 0).
fn to_start(assigned: &[u32], running: impl Fn(u32) -> bool, task_count: u32) -> (Vec<u32>, bool) {
    let start: Vec<u32> = assigned
        .iter()
        .copied()
        .filter(|task| *task < task_count && !running(*task))
        .collect();
    let leader = start.contains(&LEADER_TASK);
    (start, leader)
}

struct LeaseContext {
    flow: Arc<FlowContext>,
    running: Mutex<BTreeMap<u32, TaskHandle>>,
    leader: Mutex<Option<Supervised>>,
}

impl LeaseContext {
    fn tasks_in(list: &TopicPartitionList) -> Vec<u32> {
        list.elements()
            .iter()
            .filter_map(|element| u32::try_from(element.partition()).ok())
            .collect()
    }

    /// Stops the given tasks in parallel and waits until each drained.
    fn stop_tasks(&self, tasks: &[u32]) {
        let handles: Vec<TaskHandle> = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            tasks
                .iter()
                .filter_map(|task| running.remove(task))
                .collect()
        };
        // Every task stops copying at once, before the leader duties (about a second) stop:
        // a process whose lease was lost must not go on writing meanwhile.
        for handle in &handles {
            handle.request_stop();
        }
        if tasks.contains(&LEADER_TASK) {
            let leader = self
                .leader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(leader) = leader {
                leader.stop();
                // The next leader shows its own round times; this process's go stale.
                let flow = &self.flow.tasks.flow;
                self.flow.tasks.metrics.forget_leader_rounds(
                    flow.id.as_str(),
                    flow.source.as_str(),
                    flow.target.as_str(),
                );
                tracing::info!("Flow leader duties released.");
            }
        }
        for handle in handles {
            let task = handle.task();
            handle.stop();
            tracing::info!(task, "Task released.");
        }
        self.update_gauge();
    }

    fn start_tasks(&self, tasks: &[u32]) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, leader) = to_start(
            tasks,
            |task| running.contains_key(&task),
            self.flow.tasks.task_count,
        );
        for task in &start {
            match TaskHandle::spawn(Arc::clone(&self.flow.tasks), *task) {
                Ok(handle) => {
                    tracing::info!(task, "Task acquired.");
                    running.insert(*task, handle);
                }
                Err(error) => tracing::error!(task, %error, "Starting a task thread failed."),
            }
        }
        drop(running);
        if leader {
            let mut leader = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
            if leader.is_none() {
                match super::leader::spawn(Arc::clone(&self.flow)) {
                    Ok(handle) => {
                        tracing::info!("Flow leader duties taken.");
                        *leader = Some(handle);
                    }
                    Err(error) => {
                        tracing::error!(%error, "Starting the flow leader thread failed.");
                    }
                }
            }
        }
        self.update_gauge();
    }

    fn update_gauge(&self) {
        let held: Vec<u32> = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        let count = held.len();
        *self
            .flow
            .tasks_held
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = held;
        self.flow
            .tasks
            .metrics
            .tasks_owned
            .with_label_values(&[self.flow.tasks.flow.id.as_str()])
            .set(count as i64);
    }

    fn stop_all(&self) {
        let tasks: Vec<u32> = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        self.stop_tasks(&tasks);
    }
}

impl ClientContext for LeaseContext {}

impl ConsumerContext for LeaseContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let tasks = Self::tasks_in(list);
                let lost = consumer.assignment_lost();
                tracing::info!(?tasks, lost, "Releasing tasks.");
                if lost {
                    // Not a member until the group takes this process in again.
                    self.flow.health.left();
                }
                self.stop_tasks(&tasks);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => tracing::warn!(%error, "Task-lease rebalance failed."),
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let tasks = Self::tasks_in(list);
            tracing::info!(?tasks, "Acquiring tasks.");
            self.start_tasks(&tasks);
            // An assignment, even an empty one, means the group counts this process in.
            self.flow.health.joined();
        }
    }
}

/// This process's membership in a flow's task-lease group.
pub(crate) struct Membership {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Membership {
    /// Joins the lease group of `flow` and runs the tasks it is given, until [`Membership::leave`].
    pub(crate) fn join(flow: Arc<FlowContext>) -> Result<Membership, LeaseError> {
        let group = flow.tasks.flow.group_id.clone();
        let context = LeaseContext {
            flow: Arc::clone(&flow),
            running: Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
        };
        let consumer: BaseConsumer<LeaseContext> =
            crate::kafka::lease_consumer(&flow.tasks.target, &group, super::status::instance_id())
                .create_with_context(context)
                .map_err(|source| LeaseError::Join {
                    group: group.clone(),
                    source: Box::new(source),
                })?;
        consumer
            .subscribe(&[&flow.lease_topic])
            .map_err(|source| LeaseError::Join {
                group: group.clone(),
                source: Box::new(source),
            })?;
        flow.tasks
            .metrics
            .flow_joined(flow.tasks.flow.id.as_str(), flow.tasks.flow.tasks);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let span = tracing::info_span!("lease", flow = %flow.tasks.flow.id);
        let thread = std::thread::Builder::new()
            .name("ferry-lease".to_owned())
            .spawn(move || {
                let _entered = span.entered();
                while !thread_stop.load(Ordering::Acquire) {
                    match consumer.poll(Duration::from_millis(100)) {
                        None | Some(Ok(_)) => {}
                        Some(Err(error)) => tracing::warn!(%error, "Task-lease group error."),
                    }
                }
                // Drain every task before leaving, so the next owners start exactly where this
                // process stopped.
                consumer.context().stop_all();
                consumer.context().flow.health.left();
                consumer.unsubscribe();
                drop(consumer);
                tracing::info!("Left the task-lease group.");
            })
            .map_err(LeaseError::Thread)?;
        Ok(Membership {
            stop,
            thread: Some(thread),
        })
    }

    /// Drains every owned task, stores positions and leaves the group. Blocking.
    pub(crate) fn leave(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("The task-lease thread panicked.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_start;

    #[test]
    fn only_new_tasks_start_and_task_zero_brings_the_leader_duties() {
        assert_eq!(to_start(&[0, 1, 2], |_| false, 8), (vec![0, 1, 2], true));
        assert_eq!(
            to_start(&[0, 1, 2], |task| task == 0, 8),
            (vec![1, 2], false),
            "task 0 already runs here, and so do its leader duties"
        );
        assert_eq!(
            to_start(&[3, 9], |_| false, 8),
            (vec![3], false),
            "a lease partition past the task count maps to no task"
        );
        assert_eq!(to_start(&[], |_| false, 8), (vec![], false));
    }
}
