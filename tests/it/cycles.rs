//! Replication cycles: with flows both ways and the default policy, remote topics never go back.

use std::time::Duration;

use crate::support::{self, ConfigBuilder, Ferry, TempDir};

/// Acceptance: with A→B and B→A enabled and the default policy, `clusterA.x` on B is not
/// mirrored back to A (nor `clusterB.y` on A to B).
#[test]
fn bidirectional_flows_do_not_loop() {
    let clusters = support::clusters();
    let marker = support::unique("cyc");
    let on_a = format!("{marker}x");
    let on_b = format!("{marker}y");
    support::create_topic(&clusters.a, &on_a, 1);
    support::create_topic(&clusters.b, &on_b, 1);
    support::produce(&clusters.a, &on_a, 1, 0..10);
    support::produce(&clusters.b, &on_b, 1, 0..10);

    let dir = TempDir::new("cycles");
    // Both flows take every topic that carries the marker, remote ones included, so only cycle
    // detection can stop `clusterA.<marker>x` from going back to A.
    let topics = format!("topics = \".*{marker}.*\"");
    let config = ConfigBuilder::new()
        .flow("clusterA", "clusterB", &support::unique("g"), &topics)
        .flow("clusterB", "clusterA", &support::unique("g"), &topics)
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    support::wait_until(Duration::from_secs(60), "both topics are mirrored", || {
        ferry.assert_running();
        support::record_count(&clusters.b, &format!("clusterA.{on_a}")) >= 10
            && support::record_count(&clusters.a, &format!("clusterB.{on_b}")) >= 10
    });
    // Topics created now are seen by refreshes that also saw the remote topics above.
    let later_a = format!("{marker}later");
    let later_b = format!("{marker}laterb");
    support::create_topic(&clusters.a, &later_a, 1);
    support::create_topic(&clusters.b, &later_b, 1);
    support::wait_until(
        Duration::from_secs(30),
        "later topics are mirrored both ways",
        || {
            support::topics(&clusters.b).contains_key(&format!("clusterA.{later_a}"))
                && support::topics(&clusters.a).contains_key(&format!("clusterB.{later_b}"))
        },
    );
    let (topics_a, topics_b) = (support::topics(&clusters.a), support::topics(&clusters.b));
    ferry.terminate();
    for (bootstrap, remote) in [
        (&clusters.b, format!("clusterA.{on_a}")),
        (&clusters.a, format!("clusterB.{on_b}")),
    ] {
        let comparison = support::compare(&support::read_all(bootstrap, &remote), 1, 10);
        assert_eq!(
            (comparison.lost, comparison.duplicates, comparison.received),
            (0, 0, 10),
            "{remote}"
        );
    }
    assert!(
        !topics_a.contains_key(&format!("clusterB.clusterA.{on_a}")),
        "looped back to A"
    );
    assert!(
        !topics_b.contains_key(&format!("clusterA.clusterB.{on_b}")),
        "looped back to B"
    );
    let looping: Vec<&String> = topics_a
        .keys()
        .chain(topics_b.keys())
        .filter(|topic| topic.contains(&marker) && topic.matches("cluster").count() > 1)
        .collect();
    assert!(looping.is_empty(), "topics that went round: {looping:?}");
}

/// Acceptance (issue 3, heartbeats and cycles): with flows both ways under consistent aliases,
/// each side's heartbeats are mirrored once (`X.heartbeats` on Y's cluster, `Y.heartbeats` on
/// X's) and never come back (`Y.X.heartbeats` / `X.Y.heartbeats` never appear); a flow with
/// `heartbeats_replication = false` (MM2 4.0) does not mirror heartbeat topics at all.
#[test]
fn heartbeats_are_mirrored_once_and_never_loop() {
    let clusters = support::clusters();
    // Aliases of this test only: heartbeat topics of other tests (other aliases for the same
    // clusters) would be mirrored too, as MM2 does with inconsistent aliases (KAFKA-9914).
    let x = support::unique("hbX");
    let y = support::unique("hbY");
    let quiet = support::unique("hbQ");
    let marker = support::unique("hbm");
    let dir = TempDir::new("heartbeats");
    let topics = format!("topics = \"{marker}.*\"\nheartbeats_interval = \"200ms\"");
    let config = ConfigBuilder::new()
        .cluster(&x, &clusters.a)
        .cluster(&y, &clusters.b)
        .cluster(&quiet, &clusters.a)
        .flow(&x, &y, &support::unique("g"), &topics)
        .flow(&y, &x, &support::unique("g"), &topics)
        .flow(
            &quiet,
            &y,
            &support::unique("g"),
            &format!("{topics}\nheartbeats_replication = false\nemit_heartbeats = false"),
        )
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    let heartbeat_of = |from: &str, to: &str| {
        let key = [from, to]
            .iter()
            .flat_map(|alias| {
                let mut bytes = (alias.len() as u16).to_be_bytes().to_vec();
                bytes.extend_from_slice(alias.as_bytes());
                bytes
            })
            .collect::<Vec<u8>>();
        move |records: Vec<(Vec<u8>, Vec<u8>)>| records.iter().any(|(k, _)| *k == key)
    };
    let x_on_b = format!("{x}.heartbeats");
    let y_on_a = format!("{y}.heartbeats");
    support::wait_until(
        Duration::from_secs(60),
        "heartbeats mirrored both ways",
        || {
            ferry.assert_running();
            // X->Y writes (X, Y) into B's heartbeats; Y->X writes (Y, X) into A's, which
            // X->Y mirrors to B as `X.heartbeats`, and the other way round.
            heartbeat_of(&y, &x)(support::read_raw(&clusters.b, &x_on_b))
                && heartbeat_of(&x, &y)(support::read_raw(&clusters.a, &y_on_a))
        },
    );
    // Topics created now are mirrored by refreshes (of every flow) that also saw the remote
    // heartbeat topics.
    let later = format!("{marker}later");
    let later_b = format!("{marker}laterb");
    support::create_topic(&clusters.a, &later, 1);
    support::create_topic(&clusters.b, &later_b, 1);
    support::wait_until(Duration::from_secs(30), "later topics are mirrored", || {
        let on_b = support::topics(&clusters.b);
        on_b.contains_key(&format!("{x}.{later}"))
            && on_b.contains_key(&format!("{quiet}.{later}"))
            && support::topics(&clusters.a).contains_key(&format!("{y}.{later_b}"))
    });
    let (topics_a, topics_b) = (support::topics(&clusters.a), support::topics(&clusters.b));
    ferry.terminate();
    for looped in [format!("{y}.{x}.heartbeats"), format!("{x}.{y}.heartbeats")] {
        assert!(
            !topics_a.contains_key(&looped) && !topics_b.contains_key(&looped),
            "{looped} exists"
        );
    }
    assert!(
        !topics_b.contains_key(&format!("{quiet}.heartbeats")),
        "heartbeats_replication = false still mirrored heartbeats"
    );
}
