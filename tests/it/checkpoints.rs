//! MM2's internal topics (heartbeats, offset syncs, checkpoints) and consumer group offset
//! translation and sync, against real brokers.
//!
//! Each test uses its own cluster aliases, so that its checkpoints, positions and offset-syncs
//! topics are its own (the `heartbeats` topic name does not depend on aliases and is shared).

use std::time::Duration;

use ferry::mm2::records::{Checkpoint, Heartbeat, OffsetSync};

use crate::support::{self, ActiveMember, ConfigBuilder, Ferry, TempDir};

/// `INT16` length + UTF-8 bytes: a Kafka protocol `STRING` (`docs/mm2-facts.md`, "Internal records").
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
    // The reverse heartbeat, written into the source like MM2's reverse herder.
    let reverse_key = [kafka_string(&target), kafka_string(&source)].concat();
    assert!(
        support::read_raw(&clusters.a, "heartbeats")
            .iter()
            .any(|(key, value)| *key == reverse_key && value.len() == 10),
        "no heartbeat ({target}, {source}) on the source"
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

/// Issue 13, first start: groups committed on the source *before* Ferry's first start, on a
/// target where none of the flow's internal topics exist yet, are checkpointed and synced to
/// the target exactly (0 re-read, 0 skipped) without a restart — even when positions are
/// stored rarely (`commit_interval = "1h"`: MM2 files default to 60 s), because checkpoints
/// follow the offset syncs, not the position store. One group is in the middle of the topic,
/// one at its end (its exact translation needs the partitions' last records synced).
#[test]
fn issue_13_groups_committed_before_the_first_start_are_synced() {
    let clusters = support::clusters();
    let source = support::unique("fsA");
    let target = support::unique("fsB");
    let topic = support::unique("fs.orders");
    let remote = format!("{source}.{topic}");
    let (partitions, per_partition) = (3, 20_000_u64);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..per_partition);
    let commit_all = |group: &str, offset: u64| {
        let offsets: Vec<(i32, i64)> = (0..partitions)
            .map(|partition| (partition, offset as i64))
            .collect();
        support::commit_group(&clusters.a, group, &topic, &offsets);
    };
    let middle = support::unique("produser_consumer_1");
    let caught_up = support::unique("produser_consumer_2");
    commit_all(&middle, 15_000);
    commit_all(&caught_up, per_partition);

    let dir = TempDir::new("first-start");
    let extra = format!(
        "topics = \"{}\"\nheartbeats_replication = false\ncommit_interval = \"1h\"\n\
         checkpoints_interval = \"1s\"\nsync_group_offsets = true\n\
         sync_group_offsets_interval = \"1s\"",
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
    let mirrored_at = std::time::Instant::now();
    let mirrored = support::read_all(&clusters.b, &remote);
    let comparison = support::compare(&mirrored, partitions, per_partition);
    assert_eq!((comparison.lost, comparison.duplicates), (0, 0));
    let expected_middle = support::target_offsets(
        &support::read_all_with_offsets(&clusters.b, &remote),
        partitions,
        15_000,
    );
    assert!(expected_middle.iter().all(Option::is_some));
    let expected_end: Vec<Option<i64>> = (0..partitions)
        .map(|partition| {
            Some(
                mirrored
                    .iter()
                    .filter(|record| record.partition == partition)
                    .count() as i64,
            )
        })
        .collect();
    support::wait_until(
        Duration::from_secs(60),
        "both groups synced to the target",
        || {
            ferry.assert_running();
            support::committed(&clusters.b, &middle, &remote, partitions) == expected_middle
                && support::committed(&clusters.b, &caught_up, &remote, partitions) == expected_end
        },
    );
    println!(
        "first start: groups synced {:.1} s after the last record was mirrored",
        mirrored_at.elapsed().as_secs_f64()
    );
    ferry.terminate();
}

/// Issue 13, failover: the process holding the leader duties is killed while records flow;
/// the survivor takes them over, and a group committed on the source right after is
/// checkpointed and synced to the target exactly, without a restart. Positions are stored
/// every 60 s (MM2's `offset.flush.interval.ms` default), so the survivor re-copies what the
/// killed process had copied since its start, and the translation must land on that later
/// copy.
#[test]
fn issue_13_a_survivor_taking_over_the_leader_duties_syncs_groups() {
    survivor_syncs_groups("");
}

/// The same exactly once: positions are committed with every transaction, so the survivor
/// resumes where the dead process stopped (nothing copied twice) and the group is synced
/// exactly, to an offset that counts the transaction markers.
#[test]
fn issue_13_a_survivor_syncs_groups_exactly_once() {
    survivor_syncs_groups("exactly_once = true");
}

/// The checkpoint interval of the failover tests, in seconds: the operator's (issue 13), whose
/// acceptance is a sync within two intervals of the group's commit.
const CHECKPOINTS_S: u64 = 5;

/// Two processes, positions stored rarely (`commit_interval = "60s"`, MM2's default), the
/// leader killed mid-stream; a group committed right after is synced to the target by the
/// survivor. Prints the takeover and sync times.
fn survivor_syncs_groups(more: &str) {
    let clusters = support::clusters();
    let source = support::unique("foA");
    let target = support::unique("foB");
    let topic = support::unique("fo.orders");
    let remote = format!("{source}.{topic}");
    let (partitions, per_partition) = (4, 30_000_u64);
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..5_000);

    let dir = TempDir::new("leader-failover");
    let extra = format!(
        "topics = \"{}\"\ntasks = 4\nheartbeats_replication = false\n\
         commit_interval = \"60s\"\ncheckpoints_interval = \"{CHECKPOINTS_S}s\"\n\
         sync_group_offsets = true\nsync_group_offsets_interval = \"1s\"\n{more}",
        topic.replace('.', "\\\\.")
    );
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let mode = if more.is_empty() {
        "at least once"
    } else {
        more
    };
    let mut first = Ferry::start(&config, &dir, "first");
    support::wait_until(
        Duration::from_secs(60),
        "the first process holds every task",
        || {
            first.assert_running();
            first.tasks_held() == 4
        },
    );
    let mut second = Ferry::start(&config, &dir, "second");
    support::wait_until(Duration::from_secs(60), "both processes hold tasks", || {
        first.assert_running();
        second.assert_running();
        first.tasks_held() > 0 && second.tasks_held() > 0
    });
    // Whichever process holds task 0 holds the leader duties: that one dies while records
    // keep flowing (the rebalance may have moved task 0 to the second process).
    // A process leads while it holds the leader duties: it took them more often than it
    // released them (restarts after an error keep them).
    let leads = |ferry: &Ferry| {
        let log = ferry.log_text();
        log.matches("Flow leader duties taken.").count()
            > log.matches("Flow leader duties released.").count()
    };
    support::wait_until(Duration::from_secs(60), "exactly one process leads", || {
        leads(&first) != leads(&second)
    });
    let (leader, mut survivor) = if leads(&second) {
        (second, first)
    } else {
        (first, second)
    };
    let producer = {
        let (bootstrap, topic) = (clusters.a.clone(), topic.clone());
        std::thread::spawn(move || {
            for start in (5_000..per_partition).step_by(1_000) {
                support::produce(&bootstrap, &topic, partitions, start..start + 1_000);
            }
        })
    };
    support::wait_until(Duration::from_secs(120), "replication is under way", || {
        support::record_count(&clusters.b, &remote) >= 25_000
    });
    leader.kill();
    let killed_at = std::time::Instant::now();
    support::wait_for_value(
        Duration::from_secs(120),
        "the survivor took every task and the leader duties",
        &(4, true),
        || {
            survivor.assert_running();
            (survivor.tasks_held(), leads(&survivor))
        },
    );
    println!(
        "failover ({mode}): survivor holds every task {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    let group = support::unique("produser_consumer_1");
    let committed_at = 20_000_u64;
    let offsets: Vec<(i32, i64)> = (0..partitions)
        .map(|partition| (partition, committed_at as i64))
        .collect();
    support::commit_group(&clusters.a, &group, &topic, &offsets);
    let group_committed = std::time::Instant::now();
    // What the target group holds, from the commit on: (seconds after the commit, offsets);
    // and the remote partitions' high watermarks then (when the records the group's offsets
    // translate to were on the target).
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (bootstrap, group, remote) = (clusters.b.clone(), group.clone(), remote.clone());
        let watching = std::sync::Arc::clone(&watching);
        std::thread::spawn(move || {
            let mut seen: Vec<(f64, Vec<Option<i64>>)> = Vec::new();
            let mut highs: Vec<(f64, Vec<i64>)> = Vec::new();
            while watching.load(std::sync::atomic::Ordering::Acquire) {
                let now = support::committed(&bootstrap, &group, &remote, partitions);
                if seen.last().is_none_or(|(_, last)| *last != now) {
                    seen.push((group_committed.elapsed().as_secs_f64(), now));
                }
                highs.push((
                    group_committed.elapsed().as_secs_f64(),
                    support::high_watermarks(&bootstrap, &remote),
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            (seen, highs)
        })
    };
    producer.join().unwrap();
    let mut comparison = support::compare(&[], partitions, per_partition);
    support::wait_until(Duration::from_secs(180), "every record mirrored", || {
        survivor.assert_running();
        comparison = support::compare(
            &support::read_all(&clusters.b, &remote),
            partitions,
            per_partition,
        );
        comparison.lost == 0
    });
    let mirrored = support::read_all_with_offsets(&clusters.b, &remote);
    println!(
        "failover ({mode}): {} lost, {} duplicates",
        comparison.lost, comparison.duplicates
    );
    if !more.is_empty() {
        assert_eq!(comparison.duplicates, 0, "exactly once: {comparison:?}");
    }
    // With duplicates, the translation lands on the later copy of the record (the one a
    // consumer on the target reads after a failover): the last occurrence.
    let expected: Vec<Option<i64>> = (0..partitions)
        .map(|partition| {
            let wanted = support::record(partition, committed_at);
            mirrored
                .iter()
                .rev()
                .find(|(_, record)| *record == wanted)
                .map(|(offset, _)| *offset)
        })
        .collect();
    assert!(expected.iter().all(Option::is_some));
    support::wait_until(
        Duration::from_secs(60),
        "the group synced to the target",
        || {
            survivor.assert_running();
            support::committed(&clusters.b, &group, &remote, partitions) == expected
        },
    );
    watching.store(false, std::sync::atomic::Ordering::Release);
    let (seen, highs) = watcher.join().unwrap();
    let synced_after = seen
        .iter()
        .find(|(_, offsets)| *offsets == expected)
        .map(|(seconds, _)| *seconds)
        .unwrap();
    // The first moment every remote partition held the record the group's offset translates
    // to (the target offset is that record's): until then no exact sync is possible.
    let data_after = highs
        .iter()
        .find(|(_, high)| {
            high.len() == expected.len()
                && high
                    .iter()
                    .zip(&expected)
                    .all(|(high, offset)| offset.is_some_and(|offset| *high > offset))
        })
        .map_or(0.0, |(seconds, _)| *seconds);
    println!(
        "failover ({mode}): group synced to its exact offsets {synced_after:.1} s after its commit, \
         {:.1} s after the records it translates to were on the target ({data_after:.1} s after \
         the commit; checkpoint interval {CHECKPOINTS_S} s); values seen: {:?}",
        synced_after - data_after,
        seen.iter()
            .map(|(seconds, _)| format!("{seconds:.1}"))
            .collect::<Vec<_>>()
    );
    survivor.terminate();
}
