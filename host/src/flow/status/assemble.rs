//! The pure part of `ferry status`: joins the lease group's members, the status records, the
//! stored positions and the source watermarks of one flow into a [`FlowReport`], the shape
//! `ferry status --json` prints (documented in `docs/operations.md`).
//!
//! Rules:
//! * an **instance** is a member of the lease group; its id is the member's `client.id`, which
//!   joins it to its status record (an instance without a record yet shows `reported: false`);
//! * a task's **owner** is the member assigned its lease partition (none while unassigned,
//!   e.g. during a rebalance); a task's **partitions** are the mirrored source partitions
//!   `replication::assignment::task_of` maps to it;
//! * the **mirrored topics** are those the members' records list (each process publishes its
//!   catalog); with no record, the topics that have stored positions;
//! * a partition's **lag** is its source high watermark minus the next offset to copy (the
//!   stored position + 1; without a position, the log start: what would be copied);
//! * **halted** partitions come from the members' records only; a record whose instance is
//!   not a member (a process that was killed, or is not in the group any more) is listed under
//!   `gone` with its age, and nothing else of it is used.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::{InstanceRecord, PluginVersion, TopicRecord};
use crate::kafka::resources::GroupDescription;
use crate::replication::assignment::task_of;

/// Source watermarks (low, high) by (topic, partition).
pub(crate) type Watermarks = HashMap<(String, i32), (i64, i64)>;

/// What `ferry status` read about one flow.
#[derive(Debug)]
pub(crate) struct Inputs {
    /// The flow, `<source>-><target>`.
    pub(crate) flow: String,
    /// The lease group.
    pub(crate) group: String,
    /// The lease topic (whose partitions are the tasks).
    pub(crate) lease_topic: String,
    /// The number of tasks (the lease topic's partitions).
    pub(crate) task_count: u32,
    /// The lease group now.
    pub(crate) description: GroupDescription,
    /// The flow's status records (of this lease group), latest per instance.
    pub(crate) records: Vec<InstanceRecord>,
    /// Stored positions: (source topic, partition) → last replicated offset.
    pub(crate) positions: HashMap<(String, i32), i64>,
    /// Source partition counts, for topics known only from positions.
    pub(crate) source_partitions: HashMap<String, i32>,
    /// Source watermarks (low, high) of the mirrored partitions.
    pub(crate) watermarks: Watermarks,
    /// Now, ms since the epoch.
    pub(crate) now_ms: i64,
}

/// One flow's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct FlowReport {
    /// The flow, `<source>-><target>`.
    pub(crate) flow: String,
    /// The lease group.
    pub(crate) group: String,
    /// Its state, as Kafka names it.
    pub(crate) group_state: String,
    /// The number of tasks.
    pub(crate) task_count: u32,
    /// The group's members.
    pub(crate) instances: Vec<Instance>,
    /// Every task, in order.
    pub(crate) tasks: Vec<Task>,
    /// Every mirrored partition, sorted by topic and partition.
    pub(crate) partitions: Vec<PartitionStatus>,
    /// The sum of the partitions' lag.
    pub(crate) total_lag: i64,
    /// Halted partitions, sorted by topic and partition.
    pub(crate) halted: Vec<Halted>,
    /// Status records of instances that are not members of the group.
    pub(crate) gone: Vec<Gone>,
}

/// A member of the lease group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Instance {
    /// The instance id (`<hostname>-<pid>`, the member's `client.id`).
    pub(crate) instance: String,
    /// The member's host as the group coordinator sees it.
    pub(crate) host: String,
    /// The tasks assigned to it in the group.
    pub(crate) tasks: Vec<u32>,
    /// Whether its status record was found.
    pub(crate) reported: bool,
    /// Its `ferry` version, from its record.
    pub(crate) ferry_version: Option<String>,
    /// When its flow started, from its record (ms since the epoch).
    pub(crate) started_at_ms: Option<i64>,
    /// The age of its record, in ms.
    pub(crate) record_age_ms: Option<i64>,
    /// Its plugins and their versions, from its record.
    pub(crate) plugins: Vec<PluginVersion>,
}

/// A task and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Task {
    /// The task number.
    pub(crate) task: u32,
    /// The instance holding it, `None` while unassigned.
    pub(crate) owner: Option<String>,
    /// Its source partitions.
    pub(crate) partitions: Vec<TopicPartition>,
}

/// A source partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct TopicPartition {
    /// The source topic.
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
}

/// A mirrored partition's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PartitionStatus {
    /// The source topic.
    pub(crate) topic: String,
    /// The remote topic, when a record names it.
    pub(crate) remote: Option<String>,
    /// The partition.
    pub(crate) partition: i32,
    /// Its task.
    pub(crate) task: u32,
    /// The instance holding the task.
    pub(crate) owner: Option<String>,
    /// The stored position: the last replicated source offset; `None` before the first.
    pub(crate) position: Option<i64>,
    /// The source log start.
    pub(crate) log_start: Option<i64>,
    /// The source high watermark.
    pub(crate) high_watermark: Option<i64>,
    /// Records between the next offset to copy and the high watermark (`None` without the
    /// watermark).
    pub(crate) lag: Option<i64>,
    /// Whether the partition is halted.
    pub(crate) halted: bool,
}

/// A halted partition and the record it stopped at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Halted {
    /// The instance where it halted.
    pub(crate) instance: String,
    /// The source topic.
    pub(crate) topic: String,
    /// The partition.
    pub(crate) partition: i32,
    /// The offset of the record the plugin failed on.
    pub(crate) offset: i64,
    /// The plugin.
    pub(crate) plugin: String,
    /// Its error.
    pub(crate) error: String,
}

/// A status record whose instance is not in the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Gone {
    /// The instance id.
    pub(crate) instance: String,
    /// The age of its record, in ms.
    pub(crate) record_age_ms: i64,
}

/// Joins `inputs` into the flow's report (see the module docs for the rules).
pub(crate) fn assemble(inputs: &Inputs) -> FlowReport {
    let mut owners: BTreeMap<u32, String> = BTreeMap::new();
    let mut instances = Vec::new();
    let mut members: BTreeSet<&str> = BTreeSet::new();
    let records: HashMap<&str, &InstanceRecord> = inputs
        .records
        .iter()
        .map(|record| (record.instance.as_str(), record))
        .collect();
    for member in &inputs.description.members {
        let tasks: Vec<u32> = member
            .assignment
            .iter()
            .filter(|(topic, _)| *topic == inputs.lease_topic)
            .filter_map(|(_, partition)| u32::try_from(*partition).ok())
            .filter(|task| *task < inputs.task_count)
            .collect::<BTreeSet<u32>>()
            .into_iter()
            .collect();
        for task in &tasks {
            owners.insert(*task, member.client_id.clone());
        }
        members.insert(&member.client_id);
        let record = records.get(member.client_id.as_str());
        instances.push(Instance {
            instance: member.client_id.clone(),
            host: member.host.clone(),
            tasks,
            reported: record.is_some(),
            ferry_version: record.map(|record| record.ferry_version.clone()),
            started_at_ms: record.map(|record| record.started_at_ms),
            record_age_ms: record.map(|record| inputs.now_ms - record.updated_at_ms),
            plugins: record
                .map(|record| record.plugins.clone())
                .unwrap_or_default(),
        });
    }
    instances.sort_by(|left, right| left.instance.cmp(&right.instance));
    let live: Vec<&InstanceRecord> = inputs
        .records
        .iter()
        .filter(|record| members.contains(record.instance.as_str()))
        .collect();
    let mut gone: Vec<Gone> = inputs
        .records
        .iter()
        .filter(|record| !members.contains(record.instance.as_str()))
        .map(|record| Gone {
            instance: record.instance.clone(),
            record_age_ms: inputs.now_ms - record.updated_at_ms,
        })
        .collect();
    gone.sort_by(|left, right| left.instance.cmp(&right.instance));
    let mut halted: Vec<Halted> = live
        .iter()
        .flat_map(|record| {
            record.halted.iter().map(|halt| Halted {
                instance: record.instance.clone(),
                topic: halt.topic.clone(),
                partition: halt.partition,
                offset: halt.offset,
                plugin: halt.plugin.clone(),
                error: halt.error.clone(),
            })
        })
        .collect();
    halted.sort_by(|left, right| {
        (&left.topic, left.partition, &left.instance).cmp(&(
            &right.topic,
            right.partition,
            &right.instance,
        ))
    });
    let catalog = catalog(&live, inputs);
    let mut tasks: Vec<Task> = (0..inputs.task_count)
        .map(|task| Task {
            task,
            owner: owners.get(&task).cloned(),
            partitions: Vec::new(),
        })
        .collect();
    let mut partitions = Vec::new();
    for topic in &catalog {
        for partition in 0..topic.partitions {
            let task = task_of(&topic.topic, partition, inputs.task_count);
            if let Some(entry) = tasks.get_mut(task as usize) {
                entry.partitions.push(TopicPartition {
                    topic: topic.topic.clone(),
                    partition,
                });
            }
            let key = (topic.topic.clone(), partition);
            let position = inputs.positions.get(&key).copied();
            let watermarks = inputs.watermarks.get(&key).copied();
            let lag = watermarks.map(|(low, high)| {
                let next = position.map_or(low, |position| (position + 1).max(low));
                (high - next).max(0)
            });
            partitions.push(PartitionStatus {
                topic: topic.topic.clone(),
                remote: (!topic.remote.is_empty()).then(|| topic.remote.clone()),
                partition,
                task,
                owner: owners.get(&task).cloned(),
                position,
                log_start: watermarks.map(|(low, _)| low),
                high_watermark: watermarks.map(|(_, high)| high),
                lag,
                halted: halted
                    .iter()
                    .any(|halt| halt.topic == topic.topic && halt.partition == partition),
            });
        }
    }
    let total_lag = partitions
        .iter()
        .filter_map(|partition| partition.lag)
        .sum();
    FlowReport {
        flow: inputs.flow.clone(),
        group: inputs.group.clone(),
        group_state: inputs.description.state.clone(),
        task_count: inputs.task_count,
        instances,
        tasks,
        partitions,
        total_lag,
        halted,
        gone,
    }
}

/// The mirrored topics: the union of the live records' catalogs (the most partitions seen per
/// topic); without a live record, the topics with stored positions, at their source partition
/// counts (`remote` empty: unknown without the policy).
pub(crate) fn catalog(live: &[&InstanceRecord], inputs: &Inputs) -> Vec<TopicRecord> {
    let mut topics: BTreeMap<String, TopicRecord> = BTreeMap::new();
    for record in live {
        for topic in &record.topics {
            let entry = topics
                .entry(topic.topic.clone())
                .or_insert_with(|| topic.clone());
            entry.partitions = entry.partitions.max(topic.partitions);
        }
    }
    if live.is_empty() {
        for (topic, _) in inputs.positions.keys() {
            let partitions = inputs.source_partitions.get(topic).copied().unwrap_or(0);
            topics.entry(topic.clone()).or_insert_with(|| TopicRecord {
                topic: topic.clone(),
                remote: String::new(),
                partitions,
            });
        }
    }
    topics.into_values().collect()
}

/// The topics whose source watermarks [`assemble`] needs, given the records and positions.
pub(crate) fn wanted_topics(inputs: &Inputs) -> Vec<TopicRecord> {
    let members: BTreeSet<&str> = inputs
        .description
        .members
        .iter()
        .map(|member| member.client_id.as_str())
        .collect();
    let live: Vec<&InstanceRecord> = inputs
        .records
        .iter()
        .filter(|record| members.contains(record.instance.as_str()))
        .collect();
    catalog(&live, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::resources::GroupMember;
    use crate::replication::halts::HaltedRecord;

    const LEASE: &str = "ferry-tasks.A.internal";

    fn member(client_id: &str, tasks: &[i32]) -> GroupMember {
        GroupMember {
            member_id: format!("{client_id}-member"),
            client_id: client_id.to_owned(),
            host: "/127.0.0.1".to_owned(),
            assignment: tasks.iter().map(|task| (LEASE.to_owned(), *task)).collect(),
        }
    }

    fn record(instance: &str, updated_at_ms: i64, halted: Vec<HaltedRecord>) -> InstanceRecord {
        InstanceRecord {
            instance: instance.to_owned(),
            group: "g".to_owned(),
            flow: "A->B".to_owned(),
            host: "h".to_owned(),
            pid: 1,
            ferry_version: "0.1.0".to_owned(),
            started_at_ms: 100,
            updated_at_ms,
            tasks: vec![],
            halted,
            plugins: vec![PluginVersion {
                plugin: "trap".to_owned(),
                kind: "transform".to_owned(),
                source: "trap.wasm".to_owned(),
                active: "abc".to_owned(),
                draining: vec![],
            }],
            topics: vec![TopicRecord {
                topic: "orders".to_owned(),
                remote: "A.orders".to_owned(),
                partitions: 4,
            }],
        }
    }

    fn halt(partition: i32, offset: i64) -> HaltedRecord {
        HaltedRecord {
            topic: "orders".to_owned(),
            partition,
            offset,
            plugin: "trap".to_owned(),
            error: "poison".to_owned(),
        }
    }

    fn inputs() -> Inputs {
        let mut positions = HashMap::new();
        positions.insert(("orders".to_owned(), 0), 9);
        positions.insert(("orders".to_owned(), 1), 29);
        positions.insert(("orders".to_owned(), 3), 1);
        let mut watermarks = HashMap::new();
        for partition in 0..4 {
            watermarks.insert(("orders".to_owned(), partition), (0, 30));
        }
        // Retention passed the stored position of partition 3.
        watermarks.insert(("orders".to_owned(), 3), (5, 30));
        Inputs {
            flow: "A->B".to_owned(),
            group: "g".to_owned(),
            lease_topic: LEASE.to_owned(),
            task_count: 4,
            description: GroupDescription {
                group: "g".to_owned(),
                state: "Stable".to_owned(),
                members: vec![member("two", &[1, 3]), member("one", &[0, 2, 9])],
            },
            records: vec![
                record("one", 9_000, vec![halt(0, 10)]),
                record("two", 9_500, vec![]),
                record("dead", 1_000, vec![halt(2, 3)]),
            ],
            positions,
            source_partitions: HashMap::new(),
            watermarks,
            now_ms: 10_000,
        }
    }

    #[test]
    fn members_own_tasks_and_records_join_by_instance_id() {
        let report = assemble(&inputs());
        let names: Vec<(&str, &[u32], bool, Option<i64>)> = report
            .instances
            .iter()
            .map(|instance| {
                (
                    instance.instance.as_str(),
                    instance.tasks.as_slice(),
                    instance.reported,
                    instance.record_age_ms,
                )
            })
            .collect();
        // Lease partition 9 is past the task count: no task.
        assert_eq!(
            names,
            [
                ("one", &[0, 2][..], true, Some(1_000)),
                ("two", &[1, 3][..], true, Some(500))
            ]
        );
        let owners: Vec<Option<&str>> = report
            .tasks
            .iter()
            .map(|task| task.owner.as_deref())
            .collect();
        assert_eq!(owners, [Some("one"), Some("two"), Some("one"), Some("two")]);
        let mapped: usize = report.tasks.iter().map(|task| task.partitions.len()).sum();
        assert_eq!(mapped, 4, "every partition belongs to exactly one task");
        assert_eq!(
            report.gone,
            [Gone {
                instance: "dead".to_owned(),
                record_age_ms: 9_000
            }]
        );
        assert_eq!(report.instances[0].plugins[0].plugin, "trap");
    }

    #[test]
    fn lag_counts_from_the_next_offset_and_halts_come_from_members_only() {
        let report = assemble(&inputs());
        let lags: Vec<(i32, Option<i64>, Option<i64>, bool)> = report
            .partitions
            .iter()
            .map(|partition| {
                (
                    partition.partition,
                    partition.position,
                    partition.lag,
                    partition.halted,
                )
            })
            .collect();
        assert_eq!(
            lags,
            [
                (0, Some(9), Some(20), true),
                (1, Some(29), Some(0), false),
                // Never copied: everything from the log start.
                (2, None, Some(30), false),
                // Position below the log start: from the log start.
                (3, Some(1), Some(25), false),
            ]
        );
        assert_eq!(report.total_lag, 75);
        assert_eq!(
            report.halted.len(),
            1,
            "the gone instance's halt is not current"
        );
        assert_eq!(
            (
                report.halted[0].instance.as_str(),
                report.halted[0].partition,
                report.halted[0].offset
            ),
            ("one", 0, 10)
        );
        for partition in &report.partitions {
            let task = &report.tasks[partition.task as usize];
            assert_eq!(partition.owner, task.owner);
        }
    }

    #[test]
    fn without_live_records_the_topics_come_from_the_positions() {
        let mut inputs = inputs();
        inputs.description.members.clear();
        inputs.description.state = "Empty".to_owned();
        inputs.source_partitions.insert("orders".to_owned(), 4);
        let report = assemble(&inputs);
        assert!(report.instances.is_empty());
        assert_eq!(report.gone.len(), 3);
        assert!(report.halted.is_empty());
        assert_eq!(report.partitions.len(), 4);
        assert!(
            report
                .partitions
                .iter()
                .all(|partition| partition.remote.is_none() && partition.owner.is_none())
        );
        assert!(report.tasks.iter().all(|task| task.owner.is_none()));
    }
}
