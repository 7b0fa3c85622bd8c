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
