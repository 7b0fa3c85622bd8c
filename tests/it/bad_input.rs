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

/// Issue 14: five problems of four kinds (a misspelt key, a value of the wrong type, an unknown
/// cluster, a bad regex, a missing plugin file) took three runs of `ferry validate` to see.
/// One run of `validate`, and the start of `run`, report all five, each with its key and line,
/// and exit 2 without contacting a cluster (nothing listens on ports 1 and 2).
#[test]
fn issue_14_every_config_problem_in_one_run() {
    let text = "[clusters.clusterA]\nbootstrap_servers = \"127.0.0.1:1\"\n\n\
                [clusters.clusterB]\nbootstrap_servers = \"127.0.0.1:2\"\n\n\
                [[flows]]\nsource = \"clusterA\"\ntarget = \"clusterC\"\n\
                topcis = [\"orders\"]\n\
                topics_exclude = [\"(unclosed\"]\n\
                replication_factor = \"three\"\n\
                filters = [{ uses = \"no-such-filter.wasm\" }]\n";
    for command in ["validate", "run"] {
        let (code, errors) = run(command, text);
        assert_eq!(code, 2, "{command}: exit code; errors: {errors:#?}");
        let expected = [
            (":9:", "flows[0].target", "unknown cluster `clusterC`"),
            (":10:", "flows[0].topcis", "did you mean `topics`?"),
            (
                ":11:",
                "flows[0].topics_exclude",
                "invalid regex `(unclosed`",
            ),
            (":12:", "flows[0].replication_factor", "invalid type"),
            (":13:", "flows[0].filters[0].uses", "no-such-filter.wasm"),
        ];
        assert_eq!(
            errors.len(),
            expected.len(),
            "{command}: one line per problem: {errors:#?}"
        );
        for ((line, key, message), error) in expected.iter().zip(&errors) {
            for needle in [line, key, message] {
                assert!(
                    error.contains(needle),
                    "{command}: `{needle}` missing from {error:?}; all: {errors:#?}"
                );
            }
        }
    }
}

/// Issue 14: the plugins of the flows that are valid are loaded even when another flow has a
/// problem, so a plugin Ferry refuses is reported in the same run as the configuration problem.
#[test]
fn issue_14_plugin_problems_beside_config_problems() {
    let wasm = support::plugin("wrong_world");
    assert!(wasm.exists(), "fixture {} was not built", wasm.display());
    let text = format!(
        "[clusters.clusterA]\nbootstrap_servers = \"127.0.0.1:1\"\n\n\
         [clusters.clusterB]\nbootstrap_servers = \"127.0.0.1:2\"\n\n\
         [[flows]]\nsource = \"clusterA\"\ntarget = \"clusterB\"\ntasks = \"eight\"\n\n\
         [[flows]]\nsource = \"clusterB\"\ntarget = \"clusterA\"\npolicy = {{ uses = {:?} }}\n",
        wasm.display().to_string()
    );
    let (code, errors) = run("validate", &text);
    assert_eq!(code, 2, "exit code; errors: {errors:#?}");
    assert_eq!(errors.len(), 2, "two problems: {errors:#?}");
    assert!(
        errors[0].contains(":10:") && errors[0].contains("flows[0].tasks"),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("flow clusterB->clusterA")
            && errors[1].contains("ferry:plugin/replication-policy"),
        "{errors:#?}"
    );
}
