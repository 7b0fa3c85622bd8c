//! Operating Ferry: what `/metrics` shows while tasks move between processes, and the health
//! endpoints (`/healthz`, `/readyz`) a Kubernetes probe or a load balancer uses.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::{self, ConfigBuilder, Ferry, TempDir};

/// The partitions of source `topic` that have a `ferry_partition_lag_records` series in
/// `ferry`'s metrics; none before the endpoint is up.
fn lag_partitions(ferry: &Ferry, topic: &str) -> BTreeSet<i32> {
    let topic_label = format!("topic=\"{topic}\"");
    let Some((200, text)) = ferry.probe("/metrics") else {
        return BTreeSet::new();
    };
    text.lines()
        .filter(|line| line.starts_with("ferry_partition_lag_records{"))
        .filter(|line| line.contains(&topic_label))
        .filter_map(|line| {
            let rest = line.split("partition=\"").nth(1)?;
            rest.split('"').next()?.parse().ok()
        })
        .collect()
}

/// The partitions of remote topic `remote` that have MM2's
/// `kafka_connect_mirror_mirrorsourceconnector_record_count` series in `ferry`'s metrics.
fn mm2_partitions(ferry: &Ferry, remote: &str) -> BTreeSet<i32> {
    if ferry.probe("/metrics").is_none() {
        return BTreeSet::new();
    }
    ferry
        .samples("kafka_connect_mirror_mirrorsourceconnector_record_count")
        .into_iter()
        .filter(|(labels, _)| labels.get("topic").map(String::as_str) == Some(remote))
        .filter_map(|(labels, _)| labels.get("partition")?.parse().ok())
        .collect()
}

/// Issue 14, no stale series: two processes share one flow; once the second took some tasks,
/// the partitions that moved to it are gone from the first process's `/metrics` (the lag
/// gauge is the one per-partition series), the first still shows its own, and between them
/// every partition shows exactly once. Build info and process metrics are on `/metrics`.
#[test]
fn issue_14_a_partition_that_moved_away_leaves_the_first_process_metrics() {
    let clusters = support::clusters();
    let source = support::unique("opA");
    let target = support::unique("opB");
    let topic = support::unique("op.orders");
    let partitions = 4;
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..200);

    let dir = TempDir::new("stale-series");
    let extra = format!("topics = \"{}\"\ntasks = 4", topic.replace('.', "\\\\."));
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let all: BTreeSet<i32> = (0..partitions).collect();
    let mut first = Ferry::start(&config, &dir, "first");
    support::wait_for_value(
        Duration::from_secs(60),
        "the first process holds every task and shows the lag of every partition",
        &(4, all.clone()),
        || {
            first.assert_running();
            (first.tasks_held(), lag_partitions(&first, &topic))
        },
    );

    let text = first.metrics();
    let build = format!(
        "ferry_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build), "no `{build}` in\n{text}");
    // The prometheus crate counts CPU time in whole seconds: 0 is possible this early.
    let cpu = first.metric("process_cpu_seconds_total");
    assert!(
        cpu.is_some_and(|seconds| seconds >= 0.0),
        "CPU {cpu:?} in\n{text}"
    );
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
    ] {
        let value = first
            .metric(name)
            .unwrap_or_else(|| panic!("no {name} in\n{text}"));
        assert!(value > 0.0, "{name} is {value}");
    }

    let mut second = Ferry::start(&config, &dir, "second");
    support::wait_until(Duration::from_secs(60), "both processes hold tasks", || {
        first.assert_running();
        second.assert_running();
        first.tasks_held() > 0 && second.tasks_held() > 0
    });
    // Each partition shows in exactly one process: in the second once its task started there,
    // and no longer in the first once the first gave the task up; MM2's series (remote topic
    // name) follow the same partitions.
    let remote = format!("{source}.{topic}");
    let mut last = Default::default();
    support::wait_until(
        Duration::from_secs(60),
        "the processes show disjoint lag and MM2 series that cover every partition",
        || {
            first.assert_running();
            second.assert_running();
            last = (
                lag_partitions(&first, &topic),
                lag_partitions(&second, &topic),
                mm2_partitions(&first, &remote),
                mm2_partitions(&second, &remote),
            );
            let (mine, theirs, mine_mm2, theirs_mm2) = &last;
            !mine.is_empty()
                && !theirs.is_empty()
                && mine.is_disjoint(theirs)
                && mine.union(theirs).copied().collect::<BTreeSet<_>>() == all
                && mine == mine_mm2
                && theirs == theirs_mm2
        },
    );
    let (kept, moved, _, _) = last;
    println!("lag and MM2 series: first {kept:?}, second {moved:?}");
    assert_eq!(
        first.metric(&format!("ferry_tasks_owned{{flow=\"{source}->{target}\"}}")),
        Some(first.tasks_held() as f64),
        "the first process's task gauge follows its leases"
    );
    second.terminate();
    first.terminate();
}

/// Issue 14, readiness: `/readyz` answers 503, naming the flow, while the process is not a
/// member of the flow's task-lease group, then 200 `ready` once it joined; `/healthz` answers
/// 200 throughout. A consumer of another assignment protocol holds the lease group first, so
/// the broker refuses Ferry's join until that consumer leaves: "before the join" is a state the
/// test holds, not a race it hopes to win.
#[test]
fn issue_14_readyz_answers_ready_once_the_flow_joined_its_group() {
    let clusters = support::clusters();
    let source = support::unique("rdA");
    let target = support::unique("rdB");
    let topic = support::unique("rd.orders");
    let group = support::unique("g");
    support::create_topic(&clusters.a, &topic, 2);
    let lease_topic = format!("ferry-tasks.{source}.internal");
    support::create_topic(&clusters.b, &lease_topic, 2);
    // librdkafka's default protocols (range, roundrobin): Ferry's cooperative-sticky member
    // cannot join the group while this one is in it.
    let blocker = support::ActiveMember::join(&clusters.b, &group, &lease_topic);
    support::wait_until(
        Duration::from_secs(60),
        "the blocker holds the lease group",
        || blocker.is_assigned(),
    );

    let dir = TempDir::new("readyz");
    let extra = format!("topics = \"{}\"\ntasks = 2", topic.replace('.', "\\\\."));
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &group, &extra)
        .write(&dir);
    let flow = format!("flow {source}->{target}");
    let mut ferry = Ferry::start(&config, &dir, "ready");
    let not_member = format!("{flow}: not a member of its task-lease group yet\n");
    ferry.wait_for_probe(
        Duration::from_secs(60),
        "/readyz says the started flow is not a member of its group",
        "/readyz",
        (503, &not_member),
    );
    assert!(
        ferry.log_text().contains("Flow started."),
        "not a member, and started"
    );
    assert_eq!(ferry.probe("/healthz"), Some((200, "ok\n".to_owned())));
    // Still refused a few seconds later: the 503 is the state, not a passing moment.
    let started = std::time::Instant::now();
    support::wait_until(
        Duration::from_secs(30),
        "three seconds pass not ready",
        || {
            ferry.assert_running();
            assert_eq!(ferry.probe("/readyz"), Some((503, not_member.clone())));
            started.elapsed() >= Duration::from_secs(3)
        },
    );

    drop(blocker);
    ferry.wait_for_probe(
        Duration::from_secs(60),
        "/readyz answers ready once the flow joined its group",
        "/readyz",
        (200, "ready\n"),
    );
    assert!(
        ferry.log_text().contains("Acquiring tasks."),
        "ready only after the group assigned tasks"
    );
    assert_eq!(ferry.probe("/healthz"), Some((200, "ok\n".to_owned())));
    ferry.terminate();
}

/// Issue 14, readiness: with `--wait-for-clusters`, a flow whose source is a closed loopback
/// port keeps the process alive (`/healthz` 200) and `/readyz` at 503 with a reason naming the
/// flow and the cluster, check after check.
#[test]
fn issue_14_a_flow_whose_source_does_not_answer_is_not_ready() {
    let clusters = support::clusters();
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let source = support::unique("downA");
    let target = support::unique("downB");
    let dir = TempDir::new("not-ready");
    let config = ConfigBuilder::new()
        .cluster(&source, &closed.to_string())
        .cluster(&target, &clusters.b)
        .flow(
            &source,
            &target,
            &support::unique("g"),
            "topics = \"nothing\"",
        )
        .write(&dir);
    let mut ferry = Ferry::start_with_env(
        &config,
        &dir,
        "down",
        &[("FERRY_WAIT_FOR_CLUSTERS", "true")],
    );
    let flow = format!("flow {source}->{target}");
    let not_ready = |ferry: &Ferry| match ferry.probe("/readyz") {
        Some((503, body)) => body.contains(&flow) && body.contains(&closed.to_string()),
        _ => false,
    };
    support::wait_until(
        Duration::from_secs(60),
        "/readyz says the flow waits for its source",
        || {
            ferry.assert_running();
            not_ready(&ferry)
        },
    );
    // Two more failed checks later, still alive and still not ready.
    let waits = |ferry: &Ferry| {
        ferry
            .log_text()
            .matches("Waiting for clusters to answer before starting the flows.")
            .count()
    };
    let before = waits(&ferry);
    support::wait_until(Duration::from_secs(60), "two more cluster checks", || {
        ferry.assert_running();
        waits(&ferry) >= before + 2
    });
    ferry.assert_running();
    let (status, body) = ferry.probe("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&flow), "{body}");
    assert_eq!(ferry.probe("/healthz").map(|(status, _)| status), Some(200));
    ferry.terminate();
}

/// A SIGTERM that arrives while the flows start (the metrics endpoint is up, no flow has started
/// yet) is answered like any other: the flows finish starting, are drained, and the process
/// exits 0; it is never killed by the signal's default action.
#[test]
fn a_sigterm_during_start_drains_and_exits_cleanly() {
    let clusters = support::clusters();
    let source = support::unique("stA");
    let target = support::unique("stB");
    let topic = support::unique("st.orders");
    support::create_topic(&clusters.a, &topic, 2);
    let dir = TempDir::new("sigterm-start");
    let extra = format!("topics = \"{}\"\ntasks = 2", topic.replace('.', "\\\\."));
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &support::unique("g"), &extra)
        .write(&dir);
    let ferry = Ferry::start(&config, &dir, "sigterm");
    // Polled more often than support::wait_until does: the window is the flow's start (its
    // bookkeeping topics are created on a new target prefix), a few hundred milliseconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ferry.log_text().contains("Metrics endpoint listening.") {
        assert!(
            std::time::Instant::now() < deadline,
            "no metrics endpoint:\n{}",
            ferry.log_text()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let log_at_signal = ferry.log_text();
    let log = ferry.terminate();
    assert!(
        !log_at_signal.contains("Flow started."),
        "the signal came after the start, so this run shows nothing:\n{log}"
    );
    assert!(log.contains("Flow started."), "{log}");
    assert!(log.contains("Shutting down"), "{log}");
}
