//! In-place takeover from and to real MirrorMaker 2 (Kafka 3.8.1, dedicated mode): both keep
//! their source positions in MM2's Connect-offsets topic, so either resumes where the other
//! stopped.

use std::time::{Duration, Instant};

use crate::support::{self, Ferry, Mm2, TempDir};

/// The separator of remote topic names in this test (`<source>_<topic>`).
///
/// MM2 3.8 mirrors every topic whose name ends in `.heartbeats` whatever the topic filter says
/// (`docs/mm2-facts.md`, "Topic selection"). Long-lived test clusters hold thousands of such topics (chains built by
/// flows with per-test aliases), some so long that a `<alias>.` prefix passes Kafka's 249
/// characters; MM2's task then dies on the invalid topic ("Task is being killed and will not
/// recover until manually restarted") and stops mirroring this test's topic too. (Ferry skips
/// such a topic with an error and mirrors the rest.) With another separator, only the topic
/// named `heartbeats` is a heartbeats topic, so each run adds one remote topic of it, not
/// thousands; positions do not depend on the separator.
const SEPARATOR: &str = "_";

/// The MM2 file of the test: one flow `source -> target` for `topic`, replication factor 1 for
/// every topic MM2 creates (one-broker clusters), positions committed every second. With
/// `exactly_once`, MM2's own exactly-once settings (which Ferry reads as `exactly_once = true`):
/// `<target>.exactly.once.source.support = enabled`, the internal REST server that mode needs
/// (on a free loopback port), and a `read_committed` source consumer.
fn mm2_file(source: &str, target: &str, topic: &str, exactly_once: bool) -> String {
    let clusters = support::clusters();
    let exactly_once = if exactly_once {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!(
            "{target}.exactly.once.source.support = enabled\n\
             {source}.consumer.isolation.level = read_committed\n\
             dedicated.mode.enable.internal.rest = true\n\
             listeners = http://127.0.0.1:{port}\n\
             rest.advertised.host.name = 127.0.0.1\n"
        )
    } else {
        String::new()
    };
    format!(
        "{exactly_once}clusters = {source}, {target}\n\
         {source}.bootstrap.servers = {a}\n\
         {target}.bootstrap.servers = {b}\n\
         {source}->{target}.enabled = true\n\
         {target}->{source}.enabled = false\n\
         {source}->{target}.topics = {topic_pattern}\n\
         tasks.max = 2\n\
         replication.policy.separator = {SEPARATOR}\n\
         # Positions (Connect offsets) are flushed every second instead of every minute.\n\
         {target}.offset.flush.interval.ms = 1000\n\
         # No heartbeats (so no {target}->{source} herder either) and no checkpoints: the\n\
         # shared clusters have hundreds of groups; positions are what this test is about.\n\
         emit.heartbeats.enabled = false\n\
         emit.checkpoints.enabled = false\n\
         replication.factor = 1\n\
         checkpoints.topic.replication.factor = 1\n\
         heartbeats.topic.replication.factor = 1\n\
         offset-syncs.topic.replication.factor = 1\n\
         offset.storage.replication.factor = 1\n\
         config.storage.replication.factor = 1\n\
         status.storage.replication.factor = 1\n",
        a = clusters.a,
        b = clusters.b,
        topic_pattern = topic.replace('.', "\\\\."),
    )
}

/// The mirrored topic of the test and where its positions are stored.
struct Mirror<'a> {
    topic: &'a str,
    partitions: i32,
    source: &'a str,
    remote: &'a str,
    positions_topic: &'a str,
    /// Whether the copies are transactional: the remote topic's watermarks then count
    /// transaction markers too, so records are counted by reading them (`read_committed`).
    exactly_once: bool,
}

impl Mirror<'_> {
    fn total(&self, per_partition: u64) -> i64 {
        i64::from(self.partitions) * i64::try_from(per_partition).unwrap()
    }

    /// Waits until records `0..per_partition` of every partition are on the remote topic and
    /// the positions topic holds, for every partition, the offset of its last record; returns
    /// the time from `started` until the first record beyond `from` (per partition) arrived.
    fn wait_mirrored(
        &self,
        what: &str,
        is_running: &mut dyn FnMut(),
        started: Instant,
        from: u64,
        per_partition: u64,
    ) -> Duration {
        let clusters = support::clusters();
        let (before, count) = (self.total(from), self.total(per_partition));
        let mut first = None;
        support::wait_until(
            Duration::from_secs(300),
            &format!("{what}: all {count} records mirrored"),
            || {
                is_running();
                let now = if self.exactly_once {
                    support::read_all(&clusters.b, self.remote).len() as i64
                } else {
                    support::record_count(&clusters.b, self.remote)
                };
                if now > before && first.is_none() {
                    first = Some(started.elapsed());
                }
                now >= count
            },
        );
        let last = i64::try_from(per_partition).unwrap() - 1;
        support::wait_until(
            Duration::from_secs(60),
            &format!("{what}: every partition's stored position is {last}"),
            || {
                is_running();
                let positions = support::positions(&clusters.b, self.positions_topic, self.source);
                (0..self.partitions).all(|partition| {
                    positions.get(&(self.topic.to_owned(), partition)) == Some(&last)
                })
            },
        );
        first.unwrap_or_else(|| started.elapsed())
    }
}

/// Acceptance (issue 4): MM2 3.8.1 mirrors N records and stops; `ferry run --mm2` with the same
/// file resumes at MM2's positions and mirrors M more; MM2 started again resumes at Ferry's
/// positions and mirrors K more. The remote topic then holds every record exactly once, in
/// order, byte-equal (keys, values, headers, timestamps).
#[test]
fn ferry_and_mm2_take_over_from_each_other_in_place() {
    take_over_from_each_other_in_place(false);
}

/// Issue 9: the same round trip with exactly-once on both sides (MM2's exactly-once source
/// support; Ferry reads the same file as `exactly_once = true`): each resumes at the positions
/// the other committed, and a `read_committed` reader sees every record once, in order.
#[test]
fn ferry_and_mm2_take_over_from_each_other_in_place_exactly_once() {
    take_over_from_each_other_in_place(true);
}

fn take_over_from_each_other_in_place(exactly_once: bool) {
    let clusters = support::clusters();
    let uniq = support::unique("").replace('x', "");
    let (source, target) = (format!("tkA{uniq}"), format!("tkB{uniq}"));
    let topic = support::unique("takeover.orders");
    let remote = format!("{source}{SEPARATOR}{topic}");
    let positions_topic = format!("mm2-offsets.{source}.internal");
    let partitions = 4;
    let (n, m, k) = (2_000_u64, 1_000_u64, 1_000_u64);
    let mirror = Mirror {
        topic: &topic,
        partitions,
        source: &source,
        remote: &remote,
        positions_topic: &positions_topic,
        exactly_once,
    };
    // MM2 copies topics that exist when it starts (or after its 10-minute refresh).
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..n);

    let dir = TempDir::new("takeover");
    let file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(&file, mm2_file(&source, &target, &topic, exactly_once)).unwrap();

    // 1. MM2 mirrors the first N per partition and stores its positions.
    let started = Instant::now();
    let mut mm2 = Mm2::start(&file, &dir, "mm2-first");
    let mm2_first_record = mirror.wait_mirrored("MM2", &mut || mm2.assert_running(), started, 0, n);
    let mm2_all = started.elapsed();
    let mm2_stop = mm2.terminate();
    // MM2 wrote in transactions exactly when asked to: only then do the remote partitions hold
    // transaction markers beside the records.
    let markers = support::record_count(&clusters.b, &remote)
        - support::read_all(&clusters.b, &remote).len() as i64;
    assert_eq!(
        markers > 0,
        exactly_once,
        "MM2 left {markers} transaction markers (exactly once: {exactly_once})"
    );

    // 2. Ferry, with the same file, resumes at MM2's positions.
    support::produce(&clusters.a, &topic, partitions, n..n + m);
    let started = Instant::now();
    let mut ferry = Ferry::start_mm2(&file, &dir, "ferry");
    let ferry_first_record =
        mirror.wait_mirrored("Ferry", &mut || ferry.assert_running(), started, n, n + m);
    let ferry_all = started.elapsed();
    // Every partition started at MM2's position + 1, not at the beginning.
    let log = ferry.log_text();
    assert!(
        log.contains(&format!("Task started. task=0 exactly_once={exactly_once}")),
        "the file's mode was not Ferry's; log:\n{log}"
    );
    let resumed = log
        .lines()
        .filter(|line| {
            line.contains("Partition assigned.")
                && line.contains(&topic)
                && line.contains(&format!("Offset({n})"))
        })
        .count();
    assert_eq!(
        resumed,
        usize::try_from(partitions).unwrap(),
        "not every partition resumed at {n}; log:\n{log}"
    );
    let stopping = Instant::now();
    ferry.terminate();
    let ferry_stop = stopping.elapsed();

    // 3. MM2 again, from Ferry's positions.
    support::produce(&clusters.a, &topic, partitions, n + m..n + m + k);
    let started = Instant::now();
    let mut mm2 = Mm2::start(&file, &dir, "mm2-second");
    let mm2_again_first_record = mirror.wait_mirrored(
        "MM2 again",
        &mut || mm2.assert_running(),
        started,
        n + m,
        n + m + k,
    );
    let mm2_again_all = started.elapsed();
    mm2.terminate();

    let records = support::read_all(&clusters.b, &remote);
    let comparison = support::compare(&records, partitions, n + m + k);
    let mode = if exactly_once {
        "exactly once"
    } else {
        "at least once"
    };
    println!(
        "takeover ({mode}): {n}+{m}+{k} records x {partitions} partitions; {comparison:?}\n\
         MM2 start to first record {mm2_first_record:.1?}, to all positions stored {mm2_all:.1?}, \
         SIGTERM to exit {mm2_stop:.1?}\n\
         Ferry start to first record {ferry_first_record:.1?}, to all positions stored \
         {ferry_all:.1?}, SIGTERM to exit {ferry_stop:.1?}\n\
         MM2 again: start to first record {mm2_again_first_record:.1?}, to all positions stored \
         {mm2_again_all:.1?}"
    );
    assert_eq!(comparison.lost, 0, "{comparison:?}");
    assert_eq!(comparison.duplicates, 0, "{comparison:?}");
    assert_eq!(comparison.received, mirror.total(n + m + k) as u64);
}
