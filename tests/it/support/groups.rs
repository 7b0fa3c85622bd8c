//! Consumer groups on a test cluster: commit offsets for a group without joining it, read a
//! group's committed offsets, and keep a member in a group ([`ActiveMember`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::clusters::client;

/// Commits `offsets` (partition, next offset) of `topic` for `group` without joining it.
pub fn commit_group(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer
        .commit(&list, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
}

/// The committed offsets of `group` on partitions `0..partitions` of `topic` (`None` where it
/// has none).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    (0..partitions)
        .map(|partition| {
            match committed
                .find_partition(topic, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => Some(offset),
                _ => None,
            }
        })
        .collect()
}

/// A consumer group member on `topic` that stays in the group until dropped (it never commits).
pub struct ActiveMember {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    assigned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ActiveMember {
    /// Joins `group` and subscribes to `topic`.
    pub fn join(bootstrap: &str, group: &str, topic: &str) -> ActiveMember {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let consumer: BaseConsumer = client(bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create()
            .unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let (thread_stop, thread_assigned) = (Arc::clone(&stop), Arc::clone(&assigned));
        let thread = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Acquire) {
                let _ = consumer.poll(Duration::from_millis(100));
                if consumer.assignment().is_ok_and(|list| list.count() > 0) {
                    thread_assigned.store(true, Ordering::Release);
                }
            }
        });
        ActiveMember {
            stop,
            thread: Some(thread),
            assigned,
        }
    }

    /// Whether the group gave this member partitions (it is then an active member).
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Acquire)
    }
}

impl Drop for ActiveMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
