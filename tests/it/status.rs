//! `ferry status` against real clusters: two `ferry run` processes on one flow, one partition
//! halted by a plugin; the command, run as a separate process that only reaches the clusters,
//! shows both instances, every task owned once, the lag of every partition, the halted
//! partition with the record that halted it, and the plugin versions.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, ConfigBuilder, Ferry, TempDir};
use crate::transforms::{Input, produce};

const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 30;
/// The offset of the record the plugin fails on, on partition 0.
const POISON: i64 = 10;

/// `ferry status --json --config <config>`, parsed; panics when it fails.
fn status_json(config: &std::path::Path) -> Value {
    let config = config.display().to_string();
    let (code, stdout, stderr) = support::ferry_output(&["status", "--json", "--config", &config]);
    assert_eq!(code, 0, "ferry status failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

/// What the test expects of one flow report, as a list of problems (empty: as expected).
fn problems(flow: &Value, topic: &str, pids: &[u32], trap_digest: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let instances = flow["instances"].as_array().unwrap();
    let names: BTreeSet<String> = instances
        .iter()
        .map(|instance| instance["instance"].as_str().unwrap().to_owned())
        .collect();
    let wanted: BTreeSet<String> = pids
        .iter()
        .map(|pid| {
            names
                .iter()
                .find(|name| name.ends_with(&format!("-{pid}")))
                .cloned()
                .unwrap_or_else(|| format!("<no instance of pid {pid}>"))
        })
        .collect();
    if names != wanted || names.len() != pids.len() {
        problems.push(format!("instances {names:?}, want one per pid {pids:?}"));
    }
    for instance in instances {
        if instance["reported"] != Value::Bool(true) {
            problems.push(format!("{} has no status record yet", instance["instance"]));
        }
        let plugin = instance["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|plugin| plugin["kind"] == "record transform");
        if plugin.is_none_or(|plugin| plugin["active"] != trap_digest) {
            problems.push(format!(
                "{}: transform version {plugin:?}, want {trap_digest}",
                instance["instance"]
            ));
        }
    }
    // Every task owned exactly once, by an instance that lists it.
    let mut owned = Vec::new();
    for instance in instances {
        for task in instance["tasks"].as_array().unwrap() {
            owned.push(task.as_u64().unwrap());
        }
    }
    owned.sort_unstable();
    let tasks = flow["task_count"].as_u64().unwrap();
    if owned != (0..tasks).collect::<Vec<_>>() {
        problems.push(format!(
            "tasks owned {owned:?}, want each of 0..{tasks} once"
        ));
    }
    for task in flow["tasks"].as_array().unwrap() {
        let owner = task["owner"].as_str().unwrap_or("");
        let listed = instances.iter().any(|instance| {
            instance["instance"] == owner
                && instance["tasks"]
                    .as_array()
                    .unwrap()
                    .contains(&task["task"])
        });
        if !listed {
            problems.push(format!(
                "task {} owner {owner:?} does not hold it",
                task["task"]
            ));
        }
    }
    // Every partition once, with lag = written - copied.
    let partitions = flow["partitions"].as_array().unwrap();
    let mut seen: Vec<i64> = Vec::new();
    for partition in partitions {
        if partition["topic"] != topic {
            problems.push(format!("unexpected partition {partition}"));
            continue;
        }
        let number = partition["partition"].as_i64().unwrap();
        seen.push(number);
        let (position, lag) = if number == 0 {
            (POISON - 1, PER_PARTITION - POISON)
        } else {
            (PER_PARTITION - 1, 0)
        };
        if partition["position"] != position
            || partition["lag"] != lag
            || partition["high_watermark"] != PER_PARTITION
            || partition["halted"] != (number == 0)
        {
            problems.push(format!(
                "partition {number}: {partition}, want position {position}, lag {lag}"
            ));
        }
        let task = partition["task"].as_u64().unwrap();
        let in_task = flow["tasks"][task as usize]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["topic"] == topic && entry["partition"] == number);
        if !in_task || partition["owner"] != flow["tasks"][task as usize]["owner"] {
            problems.push(format!("partition {number} is not in its task {task}"));
        }
    }
    seen.sort_unstable();
    if seen != (0..i64::from(PARTITIONS)).collect::<Vec<_>>() {
        problems.push(format!("partitions {seen:?}"));
    }
    if flow["total_lag"] != PER_PARTITION - POISON {
        problems.push(format!("total lag {}", flow["total_lag"]));
    }
    // The halted partition, at the poison record, reported by the owner of its task.
    let halted = flow["halted"].as_array().unwrap();
    let owner_of_0 = partitions
        .iter()
        .find(|partition| partition["partition"] == 0)
        .map(|partition| partition["owner"].clone());
    let as_expected = halted.len() == 1
        && halted[0]["topic"] == topic
        && halted[0]["partition"] == 0
        && halted[0]["offset"] == POISON
        && halted[0]["error"]
            .as_str()
            .unwrap()
            .contains(&format!("cannot handle the record at offset {POISON}"))
        && Some(halted[0]["instance"].clone()) == owner_of_0
        && instances.iter().all(|instance| {
            instance["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .any(|plugin| plugin["plugin"] == halted[0]["plugin"])
        });
    if !as_expected {
        problems.push(format!("halted {halted:?}, want partition 0 at {POISON}"));
    }
    if !flow["gone"].as_array().unwrap().is_empty() {
        problems.push(format!("gone {}", flow["gone"]));
    }
    problems
}

/// Acceptance (issue 14 point 4): `ferry status` of a flow run by 2 instances, one partition
/// halted by `on_error = "halt"`; then one instance stops and the survivor owns every task.
#[test]
fn status_shows_instances_tasks_lag_and_the_halted_record() {
    let clusters = support::clusters();
    let marker = support::unique("st");
    let alias = format!("st{}", marker.replace('x', ""));
    let topic = format!("{marker}.events");
    support::create_topic(&clusters.a, &topic, PARTITIONS);
    let mut records: Vec<Input> = Vec::new();
    for index in 0..PER_PARTITION {
        for partition in 0..PARTITIONS {
            let value = if partition == 0 && index == POISON {
                // The trap transform answers an error for this record (no trap).
                "fail".to_owned()
            } else {
                format!("p{partition}-{index}")
            };
            records.push((partition, value, vec![]));
        }
    }
    produce(&topic, &records);
    let trap = support::plugin("trap_transform");
    let trap_digest = support::short_digest(&std::fs::read(&trap).unwrap());
    let dir = TempDir::new("status");
    let extra = format!(
        "topics = [\"{marker}.*\"]\ntasks = 4\non_error = \"halt\"\n\
         transforms = [{{ uses = {:?} }}]",
        trap.display().to_string()
    );
    let config = ConfigBuilder::new()
        .cluster(&alias, &clusters.a)
        .flow(&alias, "clusterB", &support::unique("g"), &extra)
        .write(&dir);
    let mut first = Ferry::start(&config, &dir, "first");
    let mut second = Ferry::start(&config, &dir, "second");
    support::wait_until(Duration::from_secs(90), "both processes hold tasks", || {
        first.assert_running();
        second.assert_running();
        first.tasks_held() >= 1 && second.tasks_held() >= 1
    });
    let remote = format!("{alias}.{topic}");
    support::wait_until(
        Duration::from_secs(90),
        "partitions 1..3 are copied and partition 0 halts",
        || {
            let copied = support::read_all(&clusters.b, &remote);
            let halted = first.metric_sum("ferry_partitions_halted")
                + second.metric_sum("ferry_partitions_halted");
            halted >= 1.0 && copied.len() as i64 >= 3 * PER_PARTITION + POISON
        },
    );
    let pids = [first.pid(), second.pid()];
    let mut last = Vec::new();
    support::wait_until(
        Duration::from_secs(60),
        "ferry status shows both instances, every task, the lag and the halt",
        || {
            let report = status_json(&config);
            let flows = report["flows"].as_array().unwrap();
            assert_eq!(flows.len(), 1, "{report}");
            last = problems(&flows[0], &topic, &pids, &trap_digest);
            if !last.is_empty() {
                eprintln!("not yet: {last:?}");
            }
            last.is_empty()
        },
    );
    // The table says the same for people.
    let (code, table, stderr) =
        support::ferry_output(&["status", "--config", &config.display().to_string()]);
    assert_eq!(code, 0, "{stderr}");
    let report = status_json(&config);
    let flow = &report["flows"][0];
    for instance in flow["instances"].as_array().unwrap() {
        assert!(
            table.contains(instance["instance"].as_str().unwrap()),
            "{table}"
        );
    }
    let halted_row = table
        .lines()
        .skip_while(|line| *line != "halted")
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let cells: Vec<&str> = halted_row.split_whitespace().collect();
    assert_eq!(
        cells.get(..3),
        Some(&[topic.as_str(), "0", "10"][..]),
        "{table}"
    );
    assert!(table.contains(&trap_digest), "{table}");
    assert!(table.contains(&format!("{topic}  0")), "{table}");

    // One instance stops gracefully: its record goes, the survivor holds every task.
    let survivor: Vec<String> = flow["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|instance| instance["instance"].as_str())
        .filter(|name| name.ends_with(&format!("-{}", second.pid())))
        .map(str::to_owned)
        .collect();
    assert_eq!(survivor.len(), 1, "{flow}");
    first.terminate();
    support::wait_for_value(
        Duration::from_secs(60),
        "the survivor alone holds every task, and the stopped instance left no record",
        &(survivor.clone(), vec![0_u64, 1, 2, 3], 0_usize),
        || {
            second.assert_running();
            let report = status_json(&config);
            let flow = &report["flows"][0];
            let instances = flow["instances"].as_array().unwrap();
            let names: Vec<String> = instances
                .iter()
                .map(|instance| instance["instance"].as_str().unwrap().to_owned())
                .collect();
            let tasks: Vec<u64> = instances
                .iter()
                .flat_map(|instance| instance["tasks"].as_array().unwrap().clone())
                .map(|task| task.as_u64().unwrap())
                .collect();
            (names, tasks, flow["gone"].as_array().unwrap().len())
        },
    );
    second.terminate();
}

/// A cluster that does not answer: exit code 1 with the reason, nothing on stdout.
#[test]
fn status_of_an_unreachable_cluster_exits_1() {
    let dir = TempDir::new("status-unreachable");
    let config = ConfigBuilder::new()
        .cluster("nowhere", "127.0.0.1:1")
        .flow("nowhere", "clusterB", &support::unique("g"), "")
        .write(&dir);
    let (code, stdout, stderr) = support::ferry_output(&[
        "status",
        "--json",
        "--config",
        &config.display().to_string(),
    ]);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("nowhere"), "{stderr}");
}
