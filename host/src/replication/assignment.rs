//! Which task owns which source partition.
//!
//! The mapping is a pure function of the topic name, the partition number and the number of
//! tasks, identical in every Ferry process and version (FNV-1a, not Rust's randomised hasher).
//! Within a topic, consecutive partitions go to consecutive tasks, so a topic's partitions are
//! spread evenly; the per-topic starting task is the topic's hash, so many small topics spread
//! too. Adding a topic or partitions never moves an existing partition to another task.

/// The task (in `0..tasks`) that owns `partition` of `topic`.
pub(crate) fn task_of(topic: &str, partition: i32, tasks: u32) -> u32 {
    if tasks == 0 {
        return 0;
    }
    let start = fnv1a(topic.as_bytes()) % u64::from(tasks);
    let partition = u64::try_from(partition).unwrap_or(0);
    ((start + partition) % u64::from(tasks)) as u32
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_of_a_topic_spread_over_all_tasks() {
        for tasks in [1_u32, 2, 3, 8] {
            let mut owned = vec![0; tasks as usize];
            for partition in 0..(tasks as i32 * 4) {
                owned[task_of("prod.orders.global", partition, tasks) as usize] += 1;
            }
            assert!(
                owned.iter().all(|count| *count == 4),
                "tasks {tasks}: {owned:?}"
            );
        }
    }

    #[test]
    fn mapping_is_stable() {
        // Fixed values: changing them moves partitions between tasks across a rolling upgrade.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(task_of("orders", 0, 1), 0);
        assert_eq!(task_of("orders", 5, 0), 0);
    }
}
