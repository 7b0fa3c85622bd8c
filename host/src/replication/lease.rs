//! Task leases: which Ferry process runs which task, decided by Kafka's group coordinator.
//!
//! A flow's work is cut into a fixed number of **tasks** (MM2's `tasks.max`); every source
//! partition belongs to exactly one task (`assignment::task_of`). Tasks are leased through an
//! ordinary Kafka consumer group on the *target* cluster: the group (`flow.group_id`) subscribes
//! to the empty, compacted topic `ferry-tasks.<source>.internal`, which has one partition per
//! task, and owning partition *k* of that topic means owning task *k*. Kafka's own coordinator
//! balances tasks over the live processes (cooperative-sticky, so a membership change moves only
//! the tasks that must move), and a process that dies loses its leases after the session timeout
//! (10 s), when the survivors take its tasks over from their stored positions.
//!
//! The task is the unit of ownership: exactly-once replication will give each task its own
//! transactional producer (`transactional.id` derived from flow and task), so that a new owner
//! fences the previous one, as MM2 does per task.
//!
//! The group member runs on its own thread, because librdkafka calls the rebalance callback on
//! the polling thread and Ferry blocks in it: a revoked task is drained (in-flight records
//! acknowledged, positions stored) before its lease is released.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};

use super::FlowContext;
use super::leader::LeaderHandle;
use super::worker::TaskHandle;

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

struct LeaseContext {
    flow: Arc<FlowContext>,
    running: Mutex<BTreeMap<u32, TaskHandle>>,
    leader: Mutex<Option<LeaderHandle>>,
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
        if tasks.contains(&LEADER_TASK) {
            let leader = self
                .leader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(leader) = leader {
                leader.stop();
                tracing::info!("Flow leader duties released.");
            }
        }
        for handle in &handles {
            handle.request_stop();
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
        for task in tasks {
            if running.contains_key(task) || *task >= self.flow.task_count {
                continue;
            }
            match TaskHandle::spawn(Arc::clone(&self.flow), *task) {
                Ok(handle) => {
                    tracing::info!(task, "Task acquired.");
                    running.insert(*task, handle);
                }
                Err(error) => tracing::error!(task, %error, "Starting a task thread failed."),
            }
            if *task == LEADER_TASK {
                let mut leader = self.leader.lock().unwrap_or_else(PoisonError::into_inner);
                if leader.is_none() {
                    match LeaderHandle::spawn(Arc::clone(&self.flow)) {
                        Ok(handle) => *leader = Some(handle),
                        Err(error) => {
                            tracing::error!(%error, "Starting the flow leader thread failed.");
                        }
                    }
                }
            }
        }
        drop(running);
        self.update_gauge();
    }

    fn update_gauge(&self) {
        let count = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        self.flow
            .metrics
            .tasks_owned
            .with_label_values(&[self.flow.flow.id.as_str()])
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
                tracing::info!(
                    ?tasks,
                    lost = consumer.assignment_lost(),
                    "Releasing tasks."
                );
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
        let group = flow.flow.group_id.clone();
        let context = LeaseContext {
            flow: Arc::clone(&flow),
            running: Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
        };
        let consumer: BaseConsumer<LeaseContext> =
            crate::kafka::lease_consumer(&flow.target, &group)
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
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let span = tracing::info_span!("lease", flow = %flow.flow.id);
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
