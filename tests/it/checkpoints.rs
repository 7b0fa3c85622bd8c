//! MM2's internal topics (heartbeats, offset syncs, checkpoints) and consumer group offset
//! translation and sync, against real brokers.
//!
//! Each test uses its own cluster aliases, so that its checkpoints, positions and offset-syncs
//! topics are its own (the `heartbeats` topic name does not depend on aliases and is shared).

use std::time::Duration;

use ferry::mm2_records::{Checkpoint, Heartbeat, OffsetSync};

use crate::support::{self, ActiveMember, ConfigBuilder, Ferry, TempDir};

/// `INT16` length + UTF-8 bytes: a Kafka protocol `STRING` (reference §3.1).
fn kafka_string(text: &str) -> Vec<u8> {
    let mut bytes = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Acceptance (issue 3): internal records decode with MM2's layouts and bytes; a group
/// committed on the source (caught up, and lagging by 10 000) sits, after one checkpoint
/// interval, exactly at the target offsets of the records after its source position: 0
/// re-read, 0 skipped. Target groups that are active, or ahead of the translation, are left
/// alone.
#[test]
fn groups_are_translated_exactly_and_internal_records_are_mm2s() {
    let clusters = support::clusters();
    let source = support::unique("ckA");
    let target = support::unique("ckB");
    let topic = support::unique("ck.orders");
    let remote = format!("{source}.{topic}");
    let (partitions, per_partition) = (3, 12_000_u64);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);

    let dir = TempDir::new("checkpoints");
    let extra = format!(
        "topics = \"{}\"\nheartbeats_interval = \"500ms\"\ncheckpoints_interval = \"1s\"\n\
         sync_group_offsets = true\nsync_group_offsets_interval = \"1s\"",
        topic.replace('.', "\\\\.")
    );
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    let total = i64::from(partitions) * per_partition as i64;
    support::wait_until(Duration::from_secs(180), "all records mirrored", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &remote) >= total
    });
    let mirrored = support::read_all(&clusters.b, &remote);
    let comparison = support::compare(&mirrored, partitions, per_partition);
    assert_eq!((comparison.lost, comparison.duplicates), (0, 0));
    // Target offset of every source record, by partition: position in the remote partition.
    let by_partition: Vec<Vec<support::TestRecord>> = (0..partitions)
        .map(|partition| {
            mirrored
                .iter()
                .filter(|record| record.partition == partition)
                .cloned()
                .collect()
        })
        .collect();

    // Two groups on the source: one caught up, one 10 000 records behind.
    let caught_up = support::unique("produser_consumer_up");
    let lagging = support::unique("produser_consumer_lag");
    let end = per_partition as i64;
    let behind = end - 10_000;
    let all = |offset: i64| -> Vec<(i32, i64)> { (0..partitions).map(|p| (p, offset)).collect() };
    support::commit_group(&clusters.a, &caught_up, &topic, &all(end));
    support::commit_group(&clusters.a, &lagging, &topic, &all(behind));

    let expected_lagging: Vec<Option<i64>> = (0..partitions)
        .map(|partition| {
            let wanted = support::record(partition, behind as u64);
            by_partition[partition as usize]
                .iter()
                .position(|record| *record == wanted)
                .map(|index| index as i64)
        })
        .collect();
    let expected_end: Vec<Option<i64>> = by_partition
        .iter()
        .map(|records| Some(records.len() as i64))
        .collect();
    support::wait_until(
        Duration::from_secs(60),
        "both groups synced to the target",
        || {
            ferry.assert_running();
            support::committed(&clusters.b, &caught_up, &remote, partitions) == expected_end
                && support::committed(&clusters.b, &lagging, &remote, partitions)
                    == expected_lagging
        },
    );
    // 0 re-read, 0 skipped: the record at the lagging group's target offset is the source
    // record at its source offset.
    for partition in 0..partitions {
        let offset = expected_lagging[partition as usize].unwrap() as usize;
        assert_eq!(
            by_partition[partition as usize][offset],
            support::record(partition, behind as u64)
        );
        assert_eq!(
            by_partition[partition as usize].len() - offset,
            10_000,
            "records left to read after the translated offset"
        );
    }

    // Checkpoints: MM2's layout and bytes, renamed topic, exact offsets.
    let checkpoints_topic = format!("{source}.checkpoints.internal");
    let raw = support::read_raw(&clusters.b, &checkpoints_topic);
    for partition in 0..partitions {
        let downstream = expected_lagging[partition as usize].unwrap();
        let mut key = kafka_string(&lagging);
        key.extend(kafka_string(&remote));
        key.extend(partition.to_be_bytes());
        let mut value = vec![0, 0];
        value.extend(behind.to_be_bytes());
        value.extend(downstream.to_be_bytes());
        value.extend([0, 0]);
        assert!(
            raw.iter().any(|(k, v)| *k == key && *v == value),
            "no checkpoint with the expected bytes for partition {partition}"
        );
        let decoded = Checkpoint::decode(&key, &value).unwrap();
        assert_eq!(decoded.topic, remote);
    }

    // Heartbeats on the target, keyed (source, target), 10-byte version-0 values.
    let heartbeat_key = [kafka_string(&source), kafka_string(&target)].concat();
    let heartbeats = support::read_raw(&clusters.b, "heartbeats");
    let ours: Vec<&(Vec<u8>, Vec<u8>)> = heartbeats
        .iter()
        .filter(|(key, _)| *key == heartbeat_key)
        .collect();
    assert!(!ours.is_empty(), "no heartbeat ({source}, {target})");
    for (key, value) in ours {
        assert_eq!(value.len(), 10);
        assert_eq!(&value[..2], &[0, 0]);
        let heartbeat = Heartbeat::decode(key, value).unwrap();
        assert_eq!(heartbeat.target_cluster_alias, target);
    }
    // The reverse heartbeat written into the source is mirrored as `<source>.heartbeats`.
    let reverse_key = [kafka_string(&target), kafka_string(&source)].concat();
    let remote_heartbeats = format!("{source}.heartbeats");
    support::wait_until(
        Duration::from_secs(60),
        "the source's heartbeats mirrored",
        || {
            support::read_raw(&clusters.b, &remote_heartbeats)
                .iter()
                .any(|(key, _)| *key == reverse_key)
        },
    );

    // Offset syncs on the source: key (source topic, partition), 16-byte value.
    let syncs = support::read_raw(&clusters.a, &format!("mm2-offset-syncs.{target}.internal"));
    for partition in 0..partitions {
        let key = [kafka_string(&topic), partition.to_be_bytes().to_vec()].concat();
        let ours: Vec<OffsetSync> = syncs
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(k, v)| {
                assert_eq!(v.len(), 16);
                OffsetSync::decode(k, v).unwrap()
            })
            .collect();
        // One at the start, then at least one every offset.lag.max + 1 = 101 records.
        assert!(
            ours.len() as u64 >= per_partition / 101,
            "only {} offset syncs for partition {partition}",
            ours.len()
        );
        assert!(
            ours.iter()
                .all(|sync| sync.upstream_offset == sync.downstream_offset)
        );
    }

    // A target group ahead of the translation is not moved back; an active one is not touched.
    let ahead = support::unique("produser_consumer_ahead");
    support::commit_group(&clusters.b, &ahead, &remote, &all(end));
    support::commit_group(&clusters.a, &ahead, &topic, &all(behind));
    let active = support::unique("produser_consumer_active");
    let member = ActiveMember::join(&clusters.b, &active, &remote);
    support::wait_until(Duration::from_secs(60), "the member is assigned", || {
        member.is_assigned()
    });
    support::commit_group(&clusters.a, &active, &topic, &all(end));
    let checkpointed = |group: &str| {
        let key = kafka_string(group);
        support::read_raw(&clusters.b, &checkpoints_topic)
            .iter()
            .filter(|(k, _)| k.starts_with(&key))
            .count()
            == partitions as usize
    };
    support::wait_until(Duration::from_secs(60), "both groups checkpointed", || {
        checkpointed(&ahead) && checkpointed(&active)
    });
    let rounds_metric = format!("ferry_group_sync_rounds_total{{flow=\"{source}->{target}\"}}");
    let rounds = ferry.metric(&rounds_metric).unwrap();
    support::wait_until(
        Duration::from_secs(60),
        "two more group sync rounds",
        || ferry.metric(&rounds_metric).unwrap() >= rounds + 2.0,
    );
    assert_eq!(
        support::committed(&clusters.b, &ahead, &remote, partitions),
        expected_end,
        "an idle target group ahead of the translation was moved back"
    );
    assert_eq!(
        support::committed(&clusters.b, &active, &remote, partitions),
        vec![None; partitions as usize],
        "a target group with an active member was changed"
    );
    drop(member);
    ferry.terminate();
}
