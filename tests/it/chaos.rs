//! Chaos (issue 9; issue 10's acceptance): a broker or Ferry processes taken away while a steady
//! producer writes to the source, and what the target holds afterwards. Every scenario reads the
//! whole remote topic back (`read_committed`, librdkafka's default) and compares it with what was
//! produced (`support::compare`: content, keys, headers, timestamps, order per partition): a lost
//! record fails the test, duplicates (at-least-once re-copies) are counted. Each prints
//! `chaos <scenario>: expected N received N lost L duplicates D recovery S s`, where recovery is
//! the scenario's own measure of how long the flow needed after the fault (said at each test).
//!
//! The broker scenarios run on the chaos pair (one source broker, a 3-broker target;
//! `support::chaos_clusters`), one at a time, and always start the broker they took away again;
//! the process scenarios run on the plaintext pair. Every scenario is a function of its [`Mode`],
//! so that its exactly-once variant is one `#[test]` line.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::support::{self, Comparison, ConfigBuilder, Ferry, SteadyProducer, TempDir};

const PARTITIONS: i32 = 8;

/// How long the target broker stays away (issue 10: a minute).
const TARGET_BROKER_DOWN: Duration = Duration::from_secs(60);

/// How long the source broker stays away.
const SOURCE_BROKER_DOWN: Duration = Duration::from_secs(10);

/// How long a scenario may take to get every record to the target once the producer finished.
const CATCH_UP: Duration = Duration::from_secs(120);

/// How long the lease group may take to hand tasks over (a dead member's session is 6 s).
const HANDOVER: Duration = Duration::from_secs(60);

/// The delivery guarantee of a scenario's flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    AtLeastOnce,
    ExactlyOnce,
}

impl Mode {
    /// What the scenario's name says of the mode.
    fn suffix(self) -> &'static str {
        match self {
            Mode::AtLeastOnce => "",
            Mode::ExactlyOnce => " (exactly once)",
        }
    }

    /// The guarantee itself: nothing lost, and exactly once, nothing twice.
    fn check(self, comparison: &Comparison) {
        assert_eq!(comparison.lost, 0, "records lost: {comparison:?}");
        if self == Mode::ExactlyOnce {
            assert_eq!(comparison.duplicates, 0, "duplicates: {comparison:?}");
        }
    }
}

/// The flow's TOML lines for `topic` in `mode`: 8 tasks, and `exactly_once = true` exactly once.
fn flow_extra(mode: Mode, topic: &str) -> String {
    let mut extra = format!("topics = \"{topic}\"\ntasks = 8\n");
    if mode == Mode::ExactlyOnce {
        extra.push_str("exactly_once = true\n");
    }
    extra
}

/// Prints the scenario's line.
fn report(scenario: &str, mode: Mode, comparison: &Comparison, recovery: Duration) {
    println!(
        "chaos {scenario}{}: expected {} received {} lost {} duplicates {} recovery {:.1} s",
        mode.suffix(),
        comparison.expected,
        comparison.received,
        comparison.lost,
        comparison.duplicates,
        recovery.as_secs_f64()
    );
}

/// The chaos pair, one scenario at a time: a broker one takes away would disturb another.
fn chaos_pair() -> MutexGuard<'static, ()> {
    static PAIR: Mutex<()> = Mutex::new(());
    PAIR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `remote` on `bootstrap` holds of records `0..per_partition` of every partition.
fn compared(bootstrap: &str, remote: &str, per_partition: u64) -> Comparison {
    support::compare(
        &support::read_all(bootstrap, remote),
        PARTITIONS,
        per_partition,
    )
}

/// Waits until `remote` holds records `0..per_partition` of every partition (nothing lost, in
/// order; duplicates allowed), while every process keeps running; returns how long that took.
fn wait_for_records(
    bootstrap: &str,
    remote: &str,
    per_partition: u64,
    ferries: &mut [&mut Ferry],
    what: &str,
) -> Duration {
    let started = Instant::now();
    support::wait_for_value(CATCH_UP, what, &0, || {
        for ferry in ferries.iter_mut() {
            ferry.assert_running();
        }
        compared(bootstrap, remote, per_partition).lost
    });
    started.elapsed()
}

/// The end of every scenario: the producer finishes, every record reaches the target on
/// `bootstrap` while `ferries` keep running, they stop (SIGTERM) in order, and the remote topic
/// is compared with what was produced. Returns the comparison and each process's log.
fn finish(
    producer: SteadyProducer,
    bootstrap: &str,
    remote: &str,
    per_partition: u64,
    mut ferries: Vec<Ferry>,
) -> (Comparison, Vec<String>) {
    producer.finish();
    wait_for_records(
        bootstrap,
        remote,
        per_partition,
        &mut all(&mut ferries),
        "every record reached the target",
    );
    let logs = ferries.into_iter().map(Ferry::terminate).collect();
    (compared(bootstrap, remote, per_partition), logs)
}

/// Records the processes replicated so far (`ferry_records_replicated_total`).
fn replicated(ferries: &[&Ferry]) -> f64 {
    ferries
        .iter()
        .map(|ferry| ferry.metric_sum("ferry_records_replicated_total"))
        .sum()
}

/// Waits until the processes replicated `count` records: the copy is under way.
fn wait_under_way(ferries: &mut [&mut Ferry], count: f64) {
    support::wait_until(Duration::from_secs(90), "replication is under way", || {
        for ferry in ferries.iter_mut() {
            ferry.assert_running();
        }
        let held: Vec<&Ferry> = ferries.iter().map(|ferry| &**ferry).collect();
        replicated(&held) >= count
    });
}

/// Every process of `ferries`, to wait on.
fn all(ferries: &mut [Ferry]) -> Vec<&mut Ferry> {
    ferries.iter_mut().collect()
}

/// Waits until every process holds tasks and together they hold all 8.
fn wait_sharing(ferries: &mut [&mut Ferry], what: &str) {
    support::wait_until(HANDOVER, what, || {
        for ferry in ferries.iter_mut() {
            ferry.assert_running();
        }
        ferries.iter().all(|ferry| ferry.tasks_held() > 0)
            && ferries.iter().map(|ferry| ferry.tasks_held()).sum::<i64>() == 8
    });
}

/// Waits until every partition of `remote` was written past `marks` (its high watermarks at some
/// earlier moment); returns how long that took.
fn wait_written_past(bootstrap: &str, remote: &str, marks: &[i64], ferry: &mut Ferry) -> Duration {
    let started = Instant::now();
    support::wait_until(CATCH_UP, "every remote partition is written again", || {
        ferry.assert_running();
        let now = support::high_watermarks(bootstrap, remote);
        now.len() == marks.len() && now.iter().zip(marks).all(|(now, mark)| now > mark)
    });
    started.elapsed()
}

/// How often a task failed and was restarted in this log, and the first such line.
fn task_restarts(log: &str) -> String {
    let mut failures = log.lines().filter(|line| line.contains("Task failed"));
    match failures.next() {
        None => "0".to_owned(),
        Some(first) => format!("{} (the first: {first})", failures.count() + 1),
    }
}

/// The leader and the number of replicas of every partition of `topic` on `bootstrap`.
fn leaders(bootstrap: &str, topic: &str) -> Vec<(i32, usize)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = support::client(bootstrap).create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|partition| (partition.leader(), partition.replicas().len()))
        .collect()
}

/// A source topic of 8 partitions on `source` and a flow `clusterA` → `clusterB` mirroring it
/// (`extra` added to the flow).
struct Flow {
    topic: String,
    remote: String,
    config: PathBuf,
    dir: TempDir,
}

impl Flow {
    fn new(builder: ConfigBuilder, source: &str, name: &str, mode: Mode, extra: &str) -> Flow {
        let topic = support::unique(name);
        support::create_topic(source, &topic, PARTITIONS);
        let dir = TempDir::new(name);
        let lines = format!("{}{extra}", flow_extra(mode, &topic));
        let config = builder
            .flow("clusterA", "clusterB", &support::unique("g"), &lines)
            .write(&dir);
        Flow {
            remote: format!("clusterA.{topic}"),
            topic,
            config,
            dir,
        }
    }

    fn start(&self, name: &str) -> Ferry {
        Ferry::start(&self.config, &self.dir, name)
    }
}

/// Issue 10's acceptance: a target broker (SIGKILL) away for a minute under a steady load, on a
/// 3-broker target where the remote topic has the default (auto) replication: 3 replicas,
/// `min.insync.replicas = 2`, so two brokers still take writes. The broker is started again;
/// the flow goes on by itself (the process never stops, every record arrives), 0 lost.
/// Recovery: from the broker's start until the target holds everything the source held then.
fn a_target_broker_away_for_a_minute_loses_nothing_in(mode: Mode) {
    let _pair = chaos_pair();
    let chaos = support::chaos_clusters();
    let (per_partition, rate) = (6_000, 600);
    let flow = Flow::new(
        ConfigBuilder::chaos(),
        &chaos.a,
        "chtarget",
        mode,
        "replication_factor = 0 # auto, the default\n",
    );
    let mut ferry = flow.start("ferry");
    let producer = SteadyProducer::start(&chaos.a, &flow.topic, PARTITIONS, per_partition, rate);
    wait_under_way(&mut [&mut ferry], 2_000.0);

    let leaders = leaders(&chaos.b, &flow.remote);
    assert!(
        leaders.iter().all(|(_, replicas)| *replicas == 3),
        "the remote topic's replicas: {leaders:?}"
    );
    let overrides = support::topic_overrides(&support::client(&chaos.b), &flow.remote);
    assert_eq!(
        overrides.get("min.insync.replicas").map(String::as_str),
        Some("2"),
        "{overrides:?}"
    );
    // The broker leading the most remote partitions.
    let victim = (1..=3)
        .max_by_key(|node| leaders.iter().filter(|(leader, _)| leader == node).count())
        .unwrap();
    let led = leaders
        .iter()
        .filter(|(leader, _)| *leader == victim)
        .count();

    let before = ferry.metric_sum("ferry_records_replicated_total");
    let down = chaos.kill("clusterB", u32::try_from(victim).unwrap());
    // The fault's duration: the broker stays away this long whatever happens meanwhile.
    while down.since.elapsed() < TARGET_BROKER_DOWN {
        ferry.assert_running();
        std::thread::sleep(Duration::from_millis(500));
    }
    let during = (ferry.metric_sum("ferry_records_replicated_total") - before) as u64;
    let held = producer.acknowledged_each();
    let starting = Instant::now();
    let away = down.start();
    let start_took = starting.elapsed();
    let recovery = wait_for_records(
        &chaos.b,
        &flow.remote,
        held,
        &mut [&mut ferry],
        "the target holds what the source held when the broker came back",
    );
    let (comparison, logs) = finish(producer, &chaos.b, &flow.remote, per_partition, vec![ferry]);
    let log = &logs[0];
    println!(
        "target broker {victim} (leader of {led} of {PARTITIONS} remote partitions) away {:.1} s \
         (its start took {:.1} s); {during} records replicated meanwhile; task restarts {}",
        away.as_secs_f64(),
        start_took.as_secs_f64(),
        task_restarts(log)
    );
    report("target-broker-away", mode, &comparison, recovery);
    mode.check(&comparison);
}

#[test]
fn a_target_broker_away_for_a_minute_loses_nothing() {
    a_target_broker_away_for_a_minute_loses_nothing_in(Mode::AtLeastOnce);
}

#[test]
fn a_target_broker_away_for_a_minute_loses_nothing_exactly_once() {
    a_target_broker_away_for_a_minute_loses_nothing_in(Mode::ExactlyOnce);
}

/// The single source broker killed (SIGKILL) mid-stream and started again after 10 s: the
/// producer's records wait in its buffer, Ferry's consumers reconnect by themselves; 0 lost.
/// Recovery: from the broker's start until every remote partition is written again.
fn the_source_broker_restarting_loses_nothing_in(mode: Mode) {
    let _pair = chaos_pair();
    let chaos = support::chaos_clusters();
    let (per_partition, rate) = (4_000, 1_600);
    let flow = Flow::new(
        ConfigBuilder::chaos(),
        &chaos.a,
        "chsource",
        mode,
        "replication_factor = 0 # auto, the default\n",
    );
    let mut ferry = flow.start("ferry");
    let producer = SteadyProducer::start(&chaos.a, &flow.topic, PARTITIONS, per_partition, rate);
    wait_under_way(&mut [&mut ferry], 6_000.0);

    let down = chaos.kill("clusterA", 1);
    while down.since.elapsed() < SOURCE_BROKER_DOWN {
        ferry.assert_running();
        std::thread::sleep(Duration::from_millis(500));
    }
    // The marks are read while the source is away (nothing new can be copied then): read
    // after its start, they could already include the burst its producer's buffer delivers on
    // reconnecting, and with the producer done nothing would ever pass them.
    let marks = support::high_watermarks(&chaos.b, &flow.remote);
    let starting = Instant::now();
    let away = down.start();
    let start_took = starting.elapsed();
    let recovery = wait_written_past(&chaos.b, &flow.remote, &marks, &mut ferry);
    let (comparison, logs) = finish(producer, &chaos.b, &flow.remote, per_partition, vec![ferry]);
    let log = &logs[0];
    println!(
        "source broker away {:.1} s (its start took {:.1} s); task restarts {}",
        away.as_secs_f64(),
        start_took.as_secs_f64(),
        task_restarts(log)
    );
    report("source-broker-restart", mode, &comparison, recovery);
    mode.check(&comparison);
}

#[test]
fn the_source_broker_restarting_loses_nothing() {
    the_source_broker_restarting_loses_nothing_in(Mode::AtLeastOnce);
}

#[test]
fn the_source_broker_restarting_loses_nothing_exactly_once() {
    the_source_broker_restarting_loses_nothing_in(Mode::ExactlyOnce);
}

/// How long a stop may take at most before the test calls it hung: the stated bound is about
/// 10 s (`docs/operations.md`, "Stopping"); this leaves room for a loaded machine, and is far
/// below the minutes a stop blocked before issue 10.
const STOP_HUNG: Duration = Duration::from_secs(30);

/// Issue 10 point 6: a stop while every target broker hangs (SIGSTOP) and each task's producer
/// queue is full (capped at 200 records, below `max_in_flight`, so that the tasks wait in the
/// full-queue loop). SIGTERM must end the process within the stop's bound; what was not
/// acknowledged is copied by the next process, once the brokers are back: 0 lost. The measured
/// stop time is printed. Recovery: from the brokers' resume until every record is on the target.
fn a_stop_with_the_target_hung_is_bounded_in(mode: Mode) {
    let _pair = chaos_pair();
    let chaos = support::chaos_clusters();
    let (per_partition, rate) = (3_000, 1_600);
    let builder = ConfigBuilder::chaos()
        .raw("[clusters.clusterB.producer]\n\"queue.buffering.max.messages\" = \"200\"\n");
    let flow = Flow::new(
        builder,
        &chaos.a,
        "chstop",
        mode,
        "replication_factor = 0 # auto, the default\n",
    );
    let mut ferry = flow.start("ferry");
    let producer = SteadyProducer::start(&chaos.a, &flow.topic, PARTITIONS, per_partition, rate);
    wait_under_way(&mut [&mut ferry], 2_000.0);

    let paused = chaos.pause("clusterB", &[1, 2, 3]);
    // At least once, every task with partitions waits on a full queue (200 records each); its
    // queue may also hold a position record per partition, sent by a store before it filled,
    // which `ferry_records_in_flight` does not count, so a full task shows up to PARTITIONS
    // fewer. Exactly once, a task may be committing (flushing) instead, so one full queue is
    // enough.
    let full = match mode {
        Mode::AtLeastOnce => {
            tasks_with_partitions(&ferry.log_text()) as f64 * (200 - PARTITIONS) as f64
        }
        Mode::ExactlyOnce => 200.0,
    };
    support::wait_until(
        Duration::from_secs(60),
        "the tasks' producer queues are full",
        || {
            ferry.assert_running();
            ferry.metric_sum("ferry_records_in_flight") >= full
        },
    );
    let in_flight = ferry.metric_sum("ferry_records_in_flight");
    let (stop_took, log) = ferry.terminate_within(STOP_HUNG);
    let resumed = Instant::now();
    paused.resume();

    let again = flow.start("ferry-again");
    let (comparison, _) = finish(producer, &chaos.b, &flow.remote, per_partition, vec![again]);
    let recovery = resumed.elapsed();
    println!(
        "stopped {:.1} s after SIGTERM with the 3 target brokers paused and {in_flight} records \
         in flight; drains: {}; the stop's log:\n{}",
        stop_took.as_secs_f64(),
        log.matches("Task drained.").count(),
        log.split_once("Shutting down").map_or("", |(_, stop)| stop)
    );
    report("stop-with-target-hung", mode, &comparison, recovery);
    mode.check(&comparison);
}

/// How many tasks were assigned partitions in this log (`task=N` of "Partition assigned."
/// lines): partitions are hashed to tasks, so some of 8 tasks may hold none.
fn tasks_with_partitions(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("Partition assigned."))
        .filter_map(|line| {
            let digits = line.split_once(" task=")?.1;
            let end = digits.find(|c: char| !c.is_ascii_digit())?;
            digits[..end].parse::<u32>().ok()
        })
        .collect::<BTreeSet<u32>>()
        .len()
}

#[test]
fn a_stop_with_the_target_hung_is_bounded() {
    a_stop_with_the_target_hung_is_bounded_in(Mode::AtLeastOnce);
}

#[test]
fn a_stop_with_the_target_hung_is_bounded_exactly_once() {
    a_stop_with_the_target_hung_is_bounded_in(Mode::ExactlyOnce);
}

/// The source partitions `ferry` holds now (its lag gauges of `topic`).
fn partitions_held(ferry: &Ferry, topic: &str) -> BTreeSet<usize> {
    ferry
        .samples("ferry_partition_lag_records")
        .into_iter()
        .filter(|(labels, _)| labels.get("topic").map(String::as_str) == Some(topic))
        .filter_map(|(labels, _)| labels.get("partition")?.parse().ok())
        .collect()
}

/// Three processes share 8 tasks under a steady load; two are killed (SIGKILL) at once; the
/// third takes every task over from the stored positions and finishes: 0 lost (re-copied
/// records are duplicates, at least once).
/// Recovery (the failover time): from the kill until the survivor wrote every partition it took
/// over.
fn three_instances_two_killed_the_third_finishes_in(mode: Mode) {
    let clusters = support::clusters();
    let (per_partition, rate) = (6_000, 2_000);
    let flow = Flow::new(ConfigBuilder::new(), &clusters.a, "chkill", mode, "");
    let mut first = flow.start("first");
    let mut second = flow.start("second");
    let mut third = flow.start("third");
    wait_sharing(
        &mut [&mut first, &mut second, &mut third],
        "the three processes share the tasks",
    );
    let producer = SteadyProducer::start(&clusters.a, &flow.topic, PARTITIONS, per_partition, rate);
    wait_under_way(&mut [&mut first, &mut second, &mut third], 6_000.0);

    let survivor_held = partitions_held(&third, &flow.topic);
    let taken_over: Vec<usize> = (0..PARTITIONS as usize)
        .filter(|partition| !survivor_held.contains(partition))
        .collect();
    first.kill();
    second.kill();
    let killed = Instant::now();
    support::wait_until(HANDOVER, "the survivor holds every task", || {
        third.assert_running();
        third.tasks_held() == 8
    });
    let takeover = killed.elapsed();
    // Nothing the killed processes sent can still land now (their sessions timed out).
    let marks = support::high_watermarks(&clusters.b, &flow.remote);
    let mut first_written = None;
    support::wait_until(
        CATCH_UP,
        "the survivor writes every partition it took over",
        || {
            third.assert_running();
            let now = support::high_watermarks(&clusters.b, &flow.remote);
            let moved = taken_over
                .iter()
                .filter(|partition| now.get(**partition) > marks.get(**partition))
                .count();
            if moved > 0 && first_written.is_none() {
                first_written = Some(killed.elapsed());
            }
            moved == taken_over.len()
        },
    );
    let failover = killed.elapsed();
    let (comparison, logs) = finish(
        producer,
        &clusters.b,
        &flow.remote,
        per_partition,
        vec![third],
    );
    let log = &logs[0];
    println!(
        "two of three killed: the survivor held every task {:.1} s after the kill, wrote the \
         first of the {} partitions it took over after {:.1} s, all after {:.1} s; task restarts {}",
        takeover.as_secs_f64(),
        taken_over.len(),
        first_written.unwrap_or(failover).as_secs_f64(),
        failover.as_secs_f64(),
        task_restarts(log)
    );
    report("two-of-three-killed", mode, &comparison, failover);
    mode.check(&comparison);
}

#[test]
fn three_instances_two_killed_the_third_finishes() {
    three_instances_two_killed_the_third_finishes_in(Mode::AtLeastOnce);
}

#[test]
fn three_instances_two_killed_the_third_finishes_exactly_once() {
    three_instances_two_killed_the_third_finishes_in(Mode::ExactlyOnce);
}

/// Three processes under a steady load, restarted one after the other (SIGTERM: drain, store
/// positions, leave; then started again, until it holds tasks again). Every handover is
/// graceful, so nothing is lost and nothing is copied twice, also at least once.
/// Recovery: the longest restart (from SIGTERM until the tasks are shared by three again).
fn rolling_restart_of_three_instances_under_load_in(mode: Mode) {
    let clusters = support::clusters();
    let (per_partition, rate) = (6_000, 1_600);
    let flow = Flow::new(ConfigBuilder::new(), &clusters.a, "chroll", mode, "");
    let mut ferries: Vec<Ferry> = (0..3).map(|i| flow.start(&format!("ferry-{i}"))).collect();
    wait_sharing(
        &mut all(&mut ferries),
        "the three processes share the tasks",
    );
    let producer = SteadyProducer::start(&clusters.a, &flow.topic, PARTITIONS, per_partition, rate);
    wait_under_way(&mut all(&mut ferries), 4_000.0);

    let mut restarts = Vec::new();
    for i in 0..ferries.len() {
        let started = Instant::now();
        let log = ferries.remove(i).terminate();
        assert!(log.contains("Left the task-lease group."), "{log}");
        ferries.insert(i, flow.start(&format!("ferry-{i}-restarted")));
        wait_sharing(
            &mut all(&mut ferries),
            "the restarted process holds tasks again",
        );
        restarts.push(started.elapsed());
    }
    let written = producer.acknowledged();
    let (comparison, logs) = finish(producer, &clusters.b, &flow.remote, per_partition, ferries);
    let failed: Vec<String> = logs.iter().map(|log| task_restarts(log)).collect();
    let longest = restarts.iter().max().copied().unwrap_or_default();
    println!(
        "rolling restart: restarts took {:?} s ({written} of {} records written when the last \
         was back); task restarts {failed:?}",
        restarts
            .iter()
            .map(|restart| (restart.as_secs_f64() * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        comparison.expected
    );
    report("rolling-restart", mode, &comparison, longest);
    mode.check(&comparison);
    assert_eq!(
        comparison.duplicates, 0,
        "a graceful handover copied records twice: {comparison:?}"
    );
}

#[test]
fn rolling_restart_of_three_instances_under_load() {
    rolling_restart_of_three_instances_under_load_in(Mode::AtLeastOnce);
}

#[test]
fn rolling_restart_of_three_instances_under_load_exactly_once() {
    rolling_restart_of_three_instances_under_load_in(Mode::ExactlyOnce);
}

/// Whether `ferry` has the flow's leader duties now (it owns task 0).
fn leads(ferry: &Ferry) -> bool {
    let log = ferry.log_text();
    log.matches("Flow leader duties taken.").count()
        > log.matches("Flow leader duties released.").count()
}

/// Two processes under a steady load; the one with the leader duties is paused (SIGSTOP) until
/// the other holds every task (longer than the lease session, 6 s), then let go on (SIGCONT):
/// the zombie learns that it lost its tasks, releases them, joins again and shares the tasks;
/// 0 lost (what the zombie still wrote after SIGCONT is duplicated, at least once).
/// Recovery (the failover time): from the pause until the other process holds every task.
fn a_zombie_instance_paused_past_its_session_is_fenced_in(mode: Mode) {
    let clusters = support::clusters();
    let (per_partition, rate) = (5_000, 1_600);
    let flow = Flow::new(ConfigBuilder::new(), &clusters.a, "chzombie", mode, "");
    let mut first = flow.start("first");
    let mut second = flow.start("second");
    wait_sharing(
        &mut [&mut first, &mut second],
        "the two processes share the tasks",
    );
    // The zombie is the owner of task 0, which also has the flow's leader duties to give up.
    let (mut zombie, mut other) = if leads(&first) {
        (first, second)
    } else {
        (second, first)
    };
    let producer = SteadyProducer::start(&clusters.a, &flow.topic, PARTITIONS, per_partition, rate);
    wait_under_way(&mut [&mut zombie, &mut other], 4_000.0);

    let before = zombie.metric_sum("ferry_records_replicated_total");
    let held = zombie.tasks_held();
    zombie.pause();
    let paused = Instant::now();
    support::wait_until(HANDOVER, "the other process holds every task", || {
        other.assert_running();
        other.tasks_held() == 8
    });
    // Every task the other process took over has started: exactly once, each start fenced
    // the zombie's producer of that task (before, a zombie woken up in between could still
    // commit, legitimately: nobody else had written that task yet).
    support::wait_until(HANDOVER, "the other process started every task", || {
        other.assert_running();
        other.log_text().matches("Task started.").count() >= 8
    });
    let failover = paused.elapsed();
    zombie.resume();
    let resumed = Instant::now();
    // Fenced: the lease group tells the zombie that its assignment is lost, and it releases
    // every task it held.
    support::wait_until(HANDOVER, "the zombie released the tasks it lost", || {
        zombie.assert_running();
        let log = zombie.log_text();
        log.split_once("lost=true").is_some_and(|(_, since)| {
            since.matches("Task released.").count() >= usize::try_from(held).unwrap()
        })
    });
    let fenced = resumed.elapsed();
    let after = (zombie.metric_sum("ferry_records_replicated_total") - before) as u64;
    let released = zombie
        .log_text()
        .lines()
        .find(|line| line.contains("lost=true"))
        .unwrap_or_default()
        .to_owned();
    wait_sharing(
        &mut [&mut zombie, &mut other],
        "the zombie joined again and the two share the tasks",
    );
    let rejoined = resumed.elapsed();
    let (comparison, logs) = finish(
        producer,
        &clusters.b,
        &flow.remote,
        per_partition,
        vec![zombie, other],
    );
    let (zombie_log, other_log) = (&logs[0], &logs[1]);
    println!(
        "zombie paused {:.1} s (until the other held every task); after SIGCONT it wrote {after} \
         records until it had released the {held} tasks it lost, {:.1} s later ({released}); \
         shared again {:.1} s after SIGCONT; task restarts {} and {}",
        failover.as_secs_f64(),
        fenced.as_secs_f64(),
        rejoined.as_secs_f64(),
        task_restarts(zombie_log),
        task_restarts(other_log)
    );
    report("zombie-paused", mode, &comparison, failover);
    mode.check(&comparison);
    if mode == Mode::ExactlyOnce {
        // A zombie task with records in its open transaction finds out at its next write or
        // commit that a newer owner fenced it, and says so; one whose transaction was empty, or
        // whose lease was revoked first, has nothing to find out with (CI on 4400997 saw a run
        // where none did). What the test asserts is the outcome: 0 lost, 0 duplicates above,
        // and the lost tasks released.
        let fenced = zombie_log.matches("Task fenced").count();
        println!("zombie tasks that noticed their fencing: {fenced} of {held}");
    }
}

#[test]
fn a_zombie_instance_paused_past_its_session_is_fenced() {
    a_zombie_instance_paused_past_its_session_is_fenced_in(Mode::AtLeastOnce);
}

#[test]
fn a_zombie_instance_paused_past_its_session_is_fenced_exactly_once() {
    a_zombie_instance_paused_past_its_session_is_fenced_in(Mode::ExactlyOnce);
}
