//! Topic config sync and topic ACL sync (MM2's `sync.topic.configs` / `sync.topic.acls`),
//! against the SASL clusters (they have an authorizer), through the real `ferry` binary.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{
    Acl, ConfigBuilder, Ferry, TempDir, acl_command, acls, create_topic_with,
    replace_topic_configs, sasl_admin, sasl_clusters, topic_overrides, unique, wait_for_value,
};

const TIMEOUT: Duration = Duration::from_secs(120);

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

#[test]
fn topic_configs_follow_the_source_except_excluded_properties() {
    let clusters = sasl_clusters();
    let (admin_a, admin_b) = (sasl_admin(&clusters.a), sasl_admin(&clusters.b));
    let topic = unique("synccfg");
    let remote = format!("clusterA.{topic}");
    // On the source: two synced properties set at creation, one excluded one.
    create_topic_with(
        &admin_a,
        &topic,
        &[
            ("retention.ms", "3600000"),
            ("max.message.bytes", "2000000"),
            ("min.insync.replicas", "2"),
        ],
    );
    // On the target, before Ferry: an excluded property (must survive) and a synced one the
    // source leaves at its default (MM2 resets it: DELETE).
    create_topic_with(
        &admin_b,
        &remote,
        &[
            ("message.timestamp.type", "LogAppendTime"),
            ("segment.ms", "7200000"),
        ],
    );

    let dir = TempDir::new("sync-configs");
    let config = ConfigBuilder::sasl()
        .flow(
            "clusterA",
            "clusterB",
            &unique("ferry-sync-configs"),
            &format!(
                "topics = [\"{topic}\"]\nsync_topic_configs = true\nsync_topic_configs_interval = \"1s\"\n"
            ),
        )
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");

    let expected = overrides(&[
        ("retention.ms", "3600000"),
        ("max.message.bytes", "2000000"),
        ("message.timestamp.type", "LogAppendTime"),
    ]);
    wait_for_value(
        TIMEOUT,
        "the remote topic has the source's configuration",
        &expected,
        || topic_overrides(&admin_b, &remote),
    );
    ferry.assert_running();

    // A change on the source: one property changed, one reset to default, one added, the
    // excluded one kept.
    replace_topic_configs(
        &admin_a,
        &topic,
        &[
            ("retention.ms", "7200000"),
            ("cleanup.policy", "compact,delete"),
            ("min.insync.replicas", "2"),
        ],
    );
    let expected = overrides(&[
        ("retention.ms", "7200000"),
        ("cleanup.policy", "compact,delete"),
        ("message.timestamp.type", "LogAppendTime"),
    ]);
    wait_for_value(
        TIMEOUT,
        "the source's change reaches the remote topic",
        &expected,
        || topic_overrides(&admin_b, &remote),
    );

    let flow = "flow=\"clusterA->clusterB\"";
    let synced = ferry
        .metric(&format!("ferry_topic_configs_synced_total{{{flow}}}"))
        .unwrap_or(0.0);
    assert!(synced >= 2.0, "ferry_topic_configs_synced_total = {synced}");
    let log = ferry.log_text();
    assert!(
        log.contains("Synced topic configuration to the remote topic."),
        "{log}"
    );
    ferry.terminate();
}

fn literal(name: &str, principal: &str, operation: &str, permission: &str) -> Acl {
    Acl {
        resource_type: "TOPIC".to_owned(),
        name: name.to_owned(),
        pattern: "LITERAL".to_owned(),
        principal: principal.to_owned(),
        host: "*".to_owned(),
        operation: operation.to_owned(),
        permission: permission.to_owned(),
    }
}

#[test]
fn topic_acls_are_copied_as_mm2_does_and_never_deleted() {
    let clusters = sasl_clusters();
    let admin_a = sasl_admin(&clusters.a);
    let base = unique("syncacl");
    let topic = format!("{base}-in");
    let other = format!("{base}-out");
    let remote = format!("clusterA.{topic}");
    create_topic_with(&admin_a, &topic, &[]);
    create_topic_with(&admin_a, &other, &[]);

    // The `acls` tool takes seconds to start: run the commands side by side.
    let commands: Vec<Vec<String>> = [
        // ALLOW READ is copied, ALLOW WRITE is not.
        format!("--add --allow-principal User:alice --operation Read --operation Write --topic {topic}"),
        // ALLOW ALL becomes ALLOW READ.
        format!("--add --allow-principal User:bob --operation All --topic {topic}"),
        // DENY is copied as is.
        format!("--add --deny-principal User:carol --operation Describe --topic {topic}"),
        // A PREFIXED ACL matching the mirrored topic is not copied.
        format!("--add --allow-principal User:alice --operation Read --topic {base} --resource-pattern-type prefixed"),
        // An ACL on a topic that is not mirrored is not copied.
        format!("--add --allow-principal User:alice --operation Read --topic {other}"),
    ]
    .iter()
    .map(|line| line.split_whitespace().map(str::to_owned).collect())
    .collect();
    std::thread::scope(|scope| {
        for command in &commands {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            scope.spawn(move || acl_command(&clusters.a, &args));
        }
    });

    let dir = TempDir::new("sync-acls");
    let config = ConfigBuilder::sasl()
        .flow(
            "clusterA",
            "clusterB",
            &unique("ferry-sync-acls"),
            &format!(
                "topics = [\"{topic}\"]\nsync_topic_acls = true\nsync_topic_acls_interval = \"1s\"\n"
            ),
        )
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");

    let ours = |acl: &Acl| acl.name.contains(&base);
    let mut expected = vec![
        literal(&remote, "User:alice", "READ", "ALLOW"),
        literal(&remote, "User:bob", "READ", "ALLOW"),
        literal(&remote, "User:carol", "DESCRIBE", "DENY"),
    ];
    expected.sort();
    let target_acls = || {
        acls(&clusters.b)
            .into_iter()
            .filter(ours)
            .collect::<Vec<_>>()
    };
    wait_for_value(
        TIMEOUT,
        "the target has the mapped ACLs",
        &expected,
        target_acls,
    );
    ferry.assert_running();

    // Removing a source ACL never deletes its copy. A new source ACL, once copied, shows that
    // a sync ran after the removal.
    acl_command(
        &clusters.a,
        &[
            "--remove",
            "--force",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            &topic,
        ],
    );
    acl_command(
        &clusters.a,
        &[
            "--add",
            "--allow-principal",
            "User:dave",
            "--operation",
            "Describe",
            "--topic",
            &topic,
        ],
    );
    expected.push(literal(&remote, "User:dave", "DESCRIBE", "ALLOW"));
    expected.sort();
    wait_for_value(
        TIMEOUT,
        "the new ACL is copied and none is deleted",
        &expected,
        target_acls,
    );

    let flow = "flow=\"clusterA->clusterB\"";
    assert_eq!(
        ferry.metric(&format!("ferry_acls_synced_total{{{flow}}}")),
        Some(4.0)
    );
    ferry.terminate();
}

/// MM2's `ConfigPropertyFilter` as a plugin (`config_property_filter`): a property it refuses
/// is not copied, while the others are, in the same sync. The plugin refuses
/// `max.message.bytes`; had it been ignored, the one IncrementalAlterConfigs of the topic would
/// have set both properties, and the remote topic would never hold `retention.ms` alone.
#[test]
fn config_property_filter_plugin_keeps_back_what_it_refuses() {
    let clusters = sasl_clusters();
    let (admin_a, admin_b) = (sasl_admin(&clusters.a), sasl_admin(&clusters.b));
    let topic = unique("syncpropfilter");
    let remote = format!("clusterA.{topic}");
    create_topic_with(
        &admin_a,
        &topic,
        &[
            ("retention.ms", "3600000"),
            ("max.message.bytes", "2000000"),
        ],
    );
    let dir = TempDir::new("sync-property-filter");
    let config = ConfigBuilder::sasl()
        .flow(
            "clusterA",
            "clusterB",
            &unique("ferry-sync-property-filter"),
            &format!(
                "topics = [\"{topic}\"]\nsync_topic_configs = true\nsync_topic_configs_interval = \"1s\"\n\
                 config_property_filter = {{ uses = {:?}, with = {{ deny = \"max.message.bytes\" }} }}\n",
                crate::support::plugin("deny_property_filter")
                    .display()
                    .to_string()
            ),
        )
        .write(&dir);
    let mut ferry = Ferry::start(&config, &dir, "ferry");
    wait_for_value(
        TIMEOUT,
        "the remote topic has the allowed property only",
        &overrides(&[("retention.ms", "3600000")]),
        || topic_overrides(&admin_b, &remote),
    );
    ferry.assert_running();
    ferry.terminate();
}
