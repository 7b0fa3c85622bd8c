//! `ferry plan` (issue 14 point 5): what `run` would do, read from the live clusters without
//! writing anything, and then what `run` does is what the plan said.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    self, Acl, ConfigBuilder, Ferry, TempDir, acl_command, acls, client, create_topic_with,
    sasl_admin, sasl_clusters, unique,
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `ferry plan <option> <file> --json`; asserts exit code 0 and returns the document.
fn plan(option: &str, file: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["plan", option])
        .arg(file)
        .arg("--json")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "ferry plan failed:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The one flow's plan, keeping only the topics, groups and ACLs whose names contain `base`
/// (the clusters are shared with other tests).
fn ours(document: &Value, base: &str) -> Value {
    let flows = document["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "{document:#}");
    let flow = &flows[0];
    let keep = |list: &Value, key: &str| -> Value {
        match list.as_array() {
            None => Value::Null,
            Some(items) => Value::Array(
                items
                    .iter()
                    .filter(|item| item[key].as_str().is_some_and(|name| name.contains(base)))
                    .cloned()
                    .collect(),
            ),
        }
    };
    let groups = match flow["groups"].as_object() {
        None => Value::Null,
        Some(groups) => json!({
            "offsets_synced": groups["offsets_synced"],
            "groups": keep(&flow["groups"]["groups"], "group"),
        }),
    };
    json!({
        "flow": flow["flow"],
        "topics": keep(&flow["topics"], "topic"),
        "create_topics": keep(&flow["create_topics"], "topic"),
        "add_partitions": keep(&flow["add_partitions"], "topic"),
        "configs": keep(&flow["configs"], "topic"),
        "acls": keep(&flow["acls"], "topic"),
        "groups": groups,
    })
}

fn excluded(topic: &str, partitions: i32, rule: &str) -> Value {
    json!({"topic": topic, "partitions": partitions, "remote": null, "excluded_by": rule})
}

fn mirrored(topic: &str, partitions: i32, remote: &str) -> Value {
    json!({"topic": topic, "partitions": partitions, "remote": remote, "excluded_by": null})
}

/// The topic lines without their `reason` (words, not a contract).
fn without_reasons(mut plan: Value) -> Value {
    for line in plan["topics"].as_array_mut().unwrap() {
        line.as_object_mut().unwrap().remove("reason");
    }
    plan
}

/// Topics of the cluster at `bootstrap` whose names contain one of `names`.
fn topics_naming(bootstrap: &str, names: &[&str]) -> BTreeSet<String> {
    support::topics(bootstrap)
        .into_keys()
        .filter(|topic| names.iter().any(|name| topic.contains(name)))
        .collect()
}

/// Acceptance (issue 14 point 5): against the plaintext pair, `ferry plan --json` lists every
/// source topic of the test with the rule that decides it (mirrored under its remote name; not
/// in `topics`; `topics_exclude`; the policy's internal-topic rule), the remote topic to create
/// with its partitions, the partitions to add to a smaller remote topic, the config that differs,
/// and the groups the group filter selects; it writes nothing (no topic of the flow's aliases
/// appears, no group offset on the target). `--mm2` with an MM2 file of the same rules gives the
/// same plan. Then `ferry run` does exactly that, and a second plan has nothing left to do.
#[test]
fn plan_lists_what_run_then_does_and_writes_nothing() {
    let clusters = support::clusters();
    let source = unique("plA");
    let target = unique("plB");
    let base = unique("plan");
    let in1 = format!("{base}.in1");
    let in2 = format!("{base}.in2");
    let skip = format!("{base}.skip");
    let other = format!("{base}.other");
    let internal = format!("{base}.y-internal");
    let (remote1, remote2) = (format!("{source}.{in1}"), format!("{source}.{in2}"));
    let group = format!("{base}grp");
    let not_group = format!("{base}nogrp");

    support::create_topic(&clusters.a, &in1, 3);
    support::produce(&clusters.a, &in1, 3, 0..50);
    create_topic_with(&client(&clusters.a), &in2, &[("retention.ms", "3600000")]);
    support::grow_topic(&clusters.a, &in2, 2);
    for topic in [&skip, &other, &internal] {
        support::create_topic(&clusters.a, topic, 1);
    }
    // The remote topic of in2 exists already, with one partition and no override.
    support::create_topic(&clusters.b, &remote2, 1);
    let committed: Vec<(i32, i64)> = (0..3).map(|partition| (partition, 20)).collect();
    support::commit_group(&clusters.a, &group, &in1, &committed);
    support::commit_group(&clusters.a, &not_group, &in1, &committed);

    let topics_regex = format!("{base}\\.(in.*|skip|y-internal)");
    let dir = TempDir::new("plan");
    let extra = format!(
        "topics = {topics_regex:?}\ntopics_exclude = \"{base}\\\\.skip\"\ngroups = {group:?}\n\
         checkpoints_interval = \"1s\"\nsync_group_offsets = true\n\
         sync_group_offsets_interval = \"1s\"\nsync_topic_configs_interval = \"1s\"\n"
    );
    let config = ConfigBuilder::new()
        .cluster(&source, &clusters.a)
        .cluster(&target, &clusters.b)
        .flow(&source, &target, &unique("plan-g"), &extra)
        .write(&dir);
    let mm2_file = dir.0.join("connect-mirror-maker.properties");
    std::fs::write(
        &mm2_file,
        format!(
            "clusters = {source}, {target}\n\
             {source}.bootstrap.servers = {}\n{target}.bootstrap.servers = {}\n\
             {source}->{target}.enabled = true\n\
             {target}->{source}.enabled = false\n\
             {source}->{target}.topics = {}\n\
             {source}->{target}.topics.exclude = {base}\\\\.skip\n\
             {source}->{target}.groups = {group}\n\
             {source}->{target}.sync.group.offsets.enabled = true\n\
             replication.factor = 1\n",
            clusters.a,
            clusters.b,
            // A backslash is an escape in a properties file.
            topics_regex.replace('\\', "\\\\"),
        ),
    )
    .unwrap();
    let aliases = [source.as_str(), target.as_str(), base.as_str()];
    let topics_before = (
        topics_naming(&clusters.a, &aliases),
        topics_naming(&clusters.b, &aliases),
    );

    let planned = ours(&plan("--config", &config), &base);
    let expected = json!({
        "flow": format!("{source}->{target}"),
        "topics": [
            mirrored(&in1, 3, &remote1),
            mirrored(&in2, 2, &remote2),
            excluded(&other, 1, "topics"),
            excluded(&skip, 1, "topics_exclude"),
            excluded(&internal, 1, "internal"),
        ],
        "create_topics": [{"topic": in1, "remote": remote1, "partitions": 3}],
        "add_partitions": [{"topic": in2, "remote": remote2, "from": 1, "to": 2}],
        "configs": [{
            "topic": in2, "remote": remote2,
            "set": {"retention.ms": "3600000"}, "reset": [],
        }],
        // The plaintext clusters have no authorizer: no ACLs.
        "acls": [],
        "groups": {
            "offsets_synced": true,
            "groups": [
                {"group": group, "checkpointed": true, "excluded_by": null},
                {"group": not_group, "checkpointed": false, "excluded_by": "groups"},
            ],
        },
    });
    assert_eq!(without_reasons(planned.clone()), expected, "{planned:#}");
    let from_mm2 = ours(&plan("--mm2", &mm2_file), &base);
    assert_eq!(from_mm2, planned, "the MM2 file's plan differs");
    // Nothing was written: no topic of the flow appeared on either cluster, no group offset.
    let topics_after = (
        topics_naming(&clusters.a, &aliases),
        topics_naming(&clusters.b, &aliases),
    );
    assert_eq!(topics_after, topics_before, "ferry plan created topics");
    assert_eq!(
        support::committed(&clusters.b, &group, &remote2, 1),
        [None],
        "ferry plan committed offsets"
    );

    let mut ferry = Ferry::start(&config, &dir, "ferry");
    // The topics to create and grow, with the planned partitions.
    let planned_partitions = vec![(remote1.clone(), 3), (remote2.clone(), 2)];
    support::wait_for_value(
        TIMEOUT,
        "the remote topics have the planned partitions",
        &planned_partitions,
        || {
            ferry.assert_running();
            let target_topics = support::topics(&clusters.b);
            [&remote1, &remote2]
                .into_iter()
                .filter_map(|remote| Some((remote.clone(), *target_topics.get(remote)?)))
                .collect::<Vec<_>>()
        },
    );
    // The planned config.
    let overrides: std::collections::BTreeMap<String, String> =
        [("retention.ms".to_owned(), "3600000".to_owned())].into();
    support::wait_for_value(
        TIMEOUT,
        "the remote topic has the planned config",
        &overrides,
        || support::topic_overrides(&client(&clusters.b), &remote2),
    );
    // The checkpointed group's offsets reach the target; the other group's never do.
    support::wait_for_value(
        TIMEOUT,
        "the planned group's offsets are synced",
        &vec![Some(20); 3],
        || {
            ferry.assert_running();
            support::committed(&clusters.b, &group, &remote1, 3)
        },
    );
    assert_eq!(
        support::committed(&clusters.b, &not_group, &remote1, 3),
        [None, None, None],
        "a group the plan excluded was synced"
    );
    // Only the planned topics were created for the test's source topics.
    let remotes: BTreeSet<String> = topics_naming(&clusters.b, &[base.as_str()]);
    assert_eq!(
        remotes,
        BTreeSet::from([remote1.clone(), remote2.clone()]),
        "run created other topics than planned"
    );

    // After run, nothing is left to do.
    let again = ours(&plan("--config", &config), &base);
    assert_eq!(again["create_topics"], json!([]), "{again:#}");
    assert_eq!(again["add_partitions"], json!([]), "{again:#}");
    assert_eq!(again["configs"], json!([]), "{again:#}");
    assert_eq!(again["topics"], planned["topics"]);
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

/// Against the SASL pair (it has an authorizer): the plan lists the topic ACLs the ACL sync
/// would create (ALLOW READ copied, ALLOW WRITE not, DENY as is), writes none, and `run` then
/// creates exactly those.
#[test]
fn plan_lists_the_acls_run_then_creates() {
    let clusters = sasl_clusters();
    let admin_a = sasl_admin(&clusters.a);
    let base = unique("planacl");
    let topic = format!("{base}-in");
    let remote = format!("clusterA.{topic}");
    create_topic_with(&admin_a, &topic, &[]);
    let commands: Vec<Vec<String>> = [
        format!(
            "--add --allow-principal User:alice --operation Read --operation Write --topic {topic}"
        ),
        format!("--add --deny-principal User:carol --operation Describe --topic {topic}"),
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

    let dir = TempDir::new("plan-acls");
    let config = ConfigBuilder::sasl()
        .flow(
            "clusterA",
            "clusterB",
            &unique("ferry-plan-acls"),
            &format!(
                "topics = [\"{topic}\"]\nsync_topic_acls = true\nsync_topic_acls_interval = \"1s\"\n"
            ),
        )
        .write(&dir);
    let planned = ours(&plan("--config", &config), &base);
    assert_eq!(
        planned["acls"],
        json!([
            {"topic": remote, "principal": "User:alice", "host": "*", "operation": "READ", "permission": "ALLOW"},
            {"topic": remote, "principal": "User:carol", "host": "*", "operation": "DESCRIBE", "permission": "DENY"},
        ]),
        "{planned:#}"
    );
    let ours_on_target = || {
        acls(&clusters.b)
            .into_iter()
            .filter(|acl| acl.name.contains(&base))
            .collect::<Vec<_>>()
    };
    assert_eq!(ours_on_target(), [], "ferry plan created ACLs");

    let mut ferry = Ferry::start(&config, &dir, "ferry");
    // The planned ACLs, in the `acls` tool's terms.
    let mut expected: Vec<Acl> = planned["acls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|acl| {
            literal(
                acl["topic"].as_str().unwrap(),
                acl["principal"].as_str().unwrap(),
                acl["operation"].as_str().unwrap(),
                acl["permission"].as_str().unwrap(),
            )
        })
        .collect();
    expected.sort();
    support::wait_for_value(
        TIMEOUT,
        "the target has the planned ACLs",
        &expected,
        || {
            ferry.assert_running();
            ours_on_target()
        },
    );
    ferry.terminate();
}
