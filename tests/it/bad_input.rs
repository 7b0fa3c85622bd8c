//! Bad configurations and plugins: each stops Ferry with a non-zero exit and one clear line.

use crate::support::{self, TempDir};

/// Runs `ferry <command> --config <file>` on `text` and returns (exit code, error lines).
fn run(command: &str, text: &str) -> (i32, Vec<String>) {
    let dir = TempDir::new("bad");
    let path = dir.0.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    let (code, stderr) = support::ferry_command(&[command, "--config", path.to_str().unwrap()]);
    let errors = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .map(str::to_owned)
        .collect();
    (code, errors)
}

fn config(cluster_a: &str, flow_extra: &str) -> String {
    let clusters = support::clusters();
    format!(
        "[clusters.clusterA]\nbootstrap_servers = \"{cluster_a}\"\n\n\
         [clusters.clusterB]\nbootstrap_servers = \"{}\"\n\n\
         [[flows]]\nsource = \"clusterA\"\ntarget = \"clusterB\"\n{flow_extra}\n",
        clusters.b
    )
}

fn assert_one_line(
    case: &str,
    (code, errors): (i32, Vec<String>),
    code_wanted: i32,
    needles: &[&str],
) {
    assert_eq!(code, code_wanted, "{case}: exit code; errors: {errors:?}");
    assert_eq!(
        errors.len(),
        1,
        "{case}: exactly one error line expected: {errors:?}"
    );
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{case}: `{needle}` missing from {:?}",
            errors[0]
        );
    }
}

#[test]
fn unknown_key_names_the_key_and_line() {
    let a = support::clusters().a.clone();
    let result = run("validate", &config(&a, "topic = \"orders\""));
    // Line 10 of the generated file holds the flow's extra line.
    assert_one_line("unknown key", result, 2, &["topic", ":10:"]);
}

#[test]
fn bad_regex_names_the_key_and_line() {
    let a = support::clusters().a.clone();
    let result = run("validate", &config(&a, "topics = \"prod.(*.global\""));
    assert_one_line("bad regex", result, 2, &["topics", ":10:"]);
}

#[test]
fn unreachable_cluster_is_named() {
    // Port 1 on loopback: nothing listens there.
    let result = run("run", &config("127.0.0.1:1", ""));
    assert_one_line(
        "unreachable",
        result,
        1,
        &["clusterA", "127.0.0.1:1", "unreachable"],
    );
}

#[test]
fn missing_plugin_file_is_named() {
    let a = support::clusters().a.clone();
    let result = run(
        "validate",
        &config(&a, "policy = { uses = \"no-such-policy.wasm\" }"),
    );
    assert_one_line("missing plugin", result, 2, &["no-such-policy.wasm"]);
}

#[test]
fn plugin_of_the_wrong_world_is_refused() {
    let a = support::clusters().a.clone();
    let wasm = support::plugin("wrong_world");
    assert!(wasm.exists(), "fixture {} was not built", wasm.display());
    let extra = format!("policy = {{ uses = \"{}\" }}", wasm.display());
    let result = run("validate", &config(&a, &extra));
    assert_one_line(
        "wrong world",
        result,
        2,
        &["wrong_world.wasm", "ferry:plugin/replication-policy"],
    );
}

/// `ferry validate` loads every plugin of a flow, not only its policy: a filter, transform or
/// name filter that is not what its key says is refused with exit code 2, naming the plugin
/// and the export it lacks.
#[test]
fn validate_checks_filters_transforms_and_name_filters() {
    let a = support::clusters().a.clone();
    let plugin = |name: &str| support::plugin(name).display().to_string();
    let cases = [
        (
            format!(
                "filters = [{{ uses = {:?} }}]",
                plugin("identity_transform")
            ),
            "ferry:plugin/record-filter",
        ),
        (
            format!("transforms = [{{ uses = {:?} }}]", plugin("header_filter")),
            "ferry:plugin/record-transform",
        ),
        (
            format!(
                "topic_filter = {{ uses = {:?} }}",
                plugin("prefix_group_filter")
            ),
            "ferry:plugin/topic-filter",
        ),
        (
            format!("group_filter = {{ uses = {:?} }}", plugin("wrong_world")),
            "ferry:plugin/group-filter",
        ),
        (
            format!(
                "config_property_filter = {{ uses = {:?} }}",
                plugin("prefix_topic_filter")
            ),
            "ferry:plugin/config-property-filter",
        ),
    ];
    for (extra, missing) in cases {
        let result = run("validate", &config(&a, &extra));
        assert_one_line(&extra, result, 2, &["flow clusterA->clusterB", missing]);
    }
}

/// Issue 13: a per-role table (`[clusters.<name>.consumer]`) refuses a key Ferry owns, naming
/// the key and its line, before any cluster is contacted.
#[test]
fn role_table_refuses_a_host_owned_key() {
    let text = "[clusters.clusterA]\nbootstrap_servers = \"127.0.0.1:1\"\n\n\
                [clusters.clusterA.consumer]\n\"fetch.max.bytes\" = 1048576\n\"enable.auto.commit\" = true\n\n\
                [clusters.clusterB]\nbootstrap_servers = \"127.0.0.1:2\"\n\n\
                [[flows]]\nsource = \"clusterA\"\ntarget = \"clusterB\"\n";
    let result = run("validate", text);
    assert_one_line(
        "host-owned key in a role table",
        result,
        2,
        &[
            ":6:",
            "clusters.clusterA.consumer.\"enable.auto.commit\"",
            "cannot be set here",
        ],
    );
}
