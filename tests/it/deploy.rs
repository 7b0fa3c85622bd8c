//! Deployment artefacts (`deploy/`, issue 14 point 7), each checked with what this machine has:
//! the systemd unit with `systemd-analyze verify`, the Kubernetes manifest and the Containerfile
//! for what the operators rely on, the alert rules with `promtool`, and every metric the Grafana
//! dashboard and the alert rules query against a running Ferry's `/metrics`, started with the
//! deployed configuration file on the SASL/PLAIN clusters. There is no container runtime here:
//! the image is not built (docs/deploy.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use yaml_rust::{Yaml, YamlLoader};

use crate::support::{self, Ferry, TempDir};

/// The longest a stopping process drains one flow: a task worker waits up to 30 s for its
/// records in flight (`DRAIN_TIMEOUT`, host/src/replication/worker/mod.rs), then gives its
/// position writes what is left and at least 5 s more. The stop timeouts must exceed it.
const DRAIN_BOUND: Duration = Duration::from_secs(35);

/// The port the operators scrape.
const METRICS_PORT: i64 = 7070;

fn deploy_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_file(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// Runs `program` with `args`: (success, stdout + stderr).
fn run(program: &str, args: &[&str], env: &BTreeMap<String, String>) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .envs(env)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} (scripts/setup installs it): {error}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// `ferry validate --offline` of the deployed configuration file with `env` as its environment.
fn validate_offline(env: &BTreeMap<String, String>) -> (bool, String) {
    let file = deploy_file("ferry.toml");
    run(
        env!("CARGO_BIN_EXE_ferry"),
        &[
            "validate",
            "--offline",
            "--no-plugin-cache",
            "--config",
            file.to_str().unwrap(),
        ],
        env,
    )
}

/// `VAR=value` lines, as systemd's `EnvironmentFile=` reads them (comments and blank lines
/// skipped).
fn environment_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The value of `key=` in the unit's lines, if set.
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// The systemd unit verifies clean (`systemd-analyze verify`, the binary path pointed at the
/// built `ferry`), gives the drain room before SIGKILL, reads its secrets from an environment
/// file, and that file's example makes the deployed configuration valid.
#[test]
fn systemd_unit_verifies_and_gives_the_drain_room() {
    let unit = read("systemd/ferry.service");
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart");
    assert_eq!(
        exec,
        "/usr/local/bin/ferry run --config /etc/ferry/ferry.toml"
    );
    let dir = TempDir::new("deploy-unit");
    let path = dir.0.join("ferry.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/ferry", env!("CARGO_BIN_EXE_ferry")),
    )
    .unwrap();
    let (verified, output) = run(
        "systemd-analyze",
        &["verify", "--man=no", path.to_str().unwrap()],
        &BTreeMap::new(),
    );
    // Unknown keys and bad values are warnings (exit 0): nothing may be printed.
    assert!(
        verified && output.trim().is_empty(),
        "systemd-analyze verify:\n{output}"
    );

    let stop: u64 = unit_value(&unit, "TimeoutStopSec")
        .expect("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        Duration::from_secs(stop) > DRAIN_BOUND,
        "TimeoutStopSec={stop} leaves no room for the drain ({DRAIN_BOUND:?})"
    );
    assert_eq!(unit_value(&unit, "KillSignal"), Some("SIGTERM"));
    assert_eq!(unit_value(&unit, "RestartPreventExitStatus"), Some("2"));
    assert_eq!(
        unit_value(&unit, "Environment=FERRY_METRICS_BIND"),
        Some(format!("0.0.0.0:{METRICS_PORT}").as_str())
    );
    assert_eq!(
        unit_value(&unit, "EnvironmentFile"),
        Some("/etc/ferry/ferry.env")
    );
    let env = environment_file(&read("systemd/ferry.env.example"));
    assert!(env.contains_key("FERRY_SOURCE_SASL_PASSWORD"), "{env:?}");
    let (valid, output) = validate_offline(&env);
    assert!(valid, "ferry.toml with ferry.env.example:\n{output}");
    // Without the file's variables the configuration is refused, naming each one.
    let (valid, output) = validate_offline(&BTreeMap::new());
    assert!(!valid, "{output}");
    for variable in env.keys().filter(|name| *name != "FERRY_SECURITY_PROTOCOL") {
        assert!(
            output.contains(&format!("`{variable}`")),
            "{variable}: {output}"
        );
    }
}

/// The manifest's objects, by kind.
fn manifest() -> BTreeMap<String, Yaml> {
    YamlLoader::load_from_str(&read("kubernetes/ferry.yaml"))
        .expect("the manifest is YAML")
        .into_iter()
        .map(|object| {
            let kind = object["kind"].as_str().expect("kind").to_owned();
            (kind, object)
        })
        .collect()
}

/// The Kubernetes manifest: 3 replicas; liveness on `/healthz` and readiness on `/readyz`, both
/// on the metrics port Ferry binds (7070); Prometheus scrape annotations on the pods; the SASL
/// credentials from the Secret (every key referenced exists); the ConfigMap's file is
/// deploy/ferry.toml, and with the pod's environment it is valid; the grace period gives the
/// drain room.
#[test]
fn kubernetes_manifest_runs_three_probed_scraped_replicas_with_a_sasl_secret() {
    let objects = manifest();
    let deployment = &objects["Deployment"];
    assert_eq!(deployment["spec"]["replicas"].as_i64(), Some(3));
    let pod = &deployment["spec"]["template"];
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(METRICS_PORT.to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .and_then(|seconds| u64::try_from(seconds).ok())
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace) > DRAIN_BOUND,
        "terminationGracePeriodSeconds {grace} leaves no room for the drain ({DRAIN_BOUND:?})"
    );
    assert_eq!(
        pod["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );

    let containers = pod["spec"]["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let named_ports: BTreeMap<&str, i64> = container["ports"]
        .as_vec()
        .expect("ports")
        .iter()
        .filter_map(|port| Some((port["name"].as_str()?, port["containerPort"].as_i64()?)))
        .collect();
    let port_number = |port: &Yaml| -> Option<i64> {
        port.as_i64()
            .or_else(|| named_ports.get(port.as_str()?).copied())
    };
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert_eq!(port_number(&get["port"]), Some(METRICS_PORT), "{probe}");
    }

    let secret = &objects["Secret"];
    let secret_name = secret["metadata"]["name"].as_str().expect("Secret name");
    let secret_data = &secret["stringData"];
    let mut env = BTreeMap::new();
    let mut from_secret = BTreeSet::new();
    for variable in container["env"].as_vec().expect("env") {
        let name = variable["name"].as_str().expect("env name").to_owned();
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_owned()
        } else {
            let reference = &variable["valueFrom"]["secretKeyRef"];
            assert_eq!(reference["name"].as_str(), Some(secret_name), "{name}");
            let key = reference["key"].as_str().expect("secret key");
            from_secret.insert(name.clone());
            secret_data[key]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no key `{key}` in Secret {secret_name}"))
                .to_owned()
        };
        env.insert(name, value);
    }
    let sasl: BTreeSet<String> = [
        "FERRY_SOURCE_SASL_USERNAME",
        "FERRY_SOURCE_SASL_PASSWORD",
        "FERRY_TARGET_SASL_USERNAME",
        "FERRY_TARGET_SASL_PASSWORD",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        from_secret, sasl,
        "the SASL credentials come from the Secret"
    );
    assert_eq!(
        env.get("FERRY_METRICS_BIND").map(String::as_str),
        Some(format!("0.0.0.0:{METRICS_PORT}").as_str())
    );

    let config = &objects["ConfigMap"];
    assert_eq!(
        config["data"]["ferry.toml"].as_str(),
        Some(read("ferry.toml").as_str()),
        "the ConfigMap's ferry.toml is deploy/ferry.toml"
    );
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert_eq!(args, ["run", "--config", "/etc/ferry/ferry.toml"]);
    let mounted = container["volumeMounts"]
        .as_vec()
        .expect("volumeMounts")
        .iter()
        .any(|mount| mount["mountPath"].as_str() == Some("/etc/ferry"));
    assert!(mounted, "the ConfigMap is mounted at /etc/ferry");
    env.remove("FERRY_PLUGIN_CACHE");
    let (valid, output) = validate_offline(&env);
    assert!(valid, "ferry.toml with the pod's environment:\n{output}");
}

/// The Containerfile's instructions, continuation lines joined, comments left out, split into
/// stages at each `FROM`: (instruction, arguments).
fn stages(text: &str) -> Vec<Vec<(String, String)>> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for line in joined {
        let (instruction, arguments) = line.split_once(' ').unwrap_or((&line, ""));
        let instruction = instruction.to_uppercase();
        if instruction == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("an instruction before the first FROM")
            .push((instruction, arguments.trim().to_owned()));
    }
    stages
}

/// The Containerfile (cannot be built here: no container runtime): multi-stage; the build stage
/// builds `ferry`; the final stage copies that one binary from it and nothing else (no RUN, no
/// ADD, one COPY), runs as a non-root user and starts the binary.
#[test]
fn containerfile_ships_only_the_binary_as_non_root() {
    let stages = stages(&read("Containerfile"));
    assert!(stages.len() >= 2, "not multi-stage: {stages:?}");
    let build = &stages[0];
    let build_name = build[0]
        .1
        .rsplit_once(" AS ")
        .or_else(|| build[0].1.rsplit_once(" as "))
        .map(|(_, name)| name.trim().to_owned())
        .expect("the build stage is named");
    assert!(
        build
            .iter()
            .any(|(instruction, arguments)| instruction == "RUN"
                && arguments.contains("cargo build --release")
                && arguments.contains("-p ferry-host")),
        "the build stage builds ferry: {build:?}"
    );
    let last = stages.last().unwrap();
    let allowed = ["FROM", "COPY", "USER", "EXPOSE", "ENTRYPOINT", "CMD"];
    for (instruction, arguments) in last {
        assert!(
            allowed.contains(&instruction.as_str()),
            "the final stage runs `{instruction} {arguments}`"
        );
    }
    let copies: Vec<&String> = last
        .iter()
        .filter(|(instruction, _)| instruction == "COPY")
        .map(|(_, arguments)| arguments)
        .collect();
    assert_eq!(copies.len(), 1, "one COPY: {copies:?}");
    let words: Vec<&str> = copies[0].split_whitespace().collect();
    assert_eq!(
        words.first().copied(),
        Some(format!("--from={build_name}").as_str())
    );
    assert_eq!(words.len(), 3, "one source, one destination: {words:?}");
    assert!(words[1].ends_with("/ferry"), "copies the binary: {words:?}");
    let destination = words[2];
    let user = last
        .iter()
        .rev()
        .find(|(instruction, _)| instruction == "USER")
        .map(|(_, user)| user.clone())
        .expect("a USER in the final stage");
    let uid = user.split(':').next().unwrap_or_default();
    assert!(
        !uid.is_empty() && uid != "root" && uid != "0",
        "runs as `{user}`"
    );
    let entrypoint = last
        .iter()
        .find(|(instruction, _)| instruction == "ENTRYPOINT")
        .map(|(_, entrypoint)| entrypoint.clone())
        .expect("ENTRYPOINT");
    assert_eq!(entrypoint, format!("[\"{destination}\"]"));
}

/// The alert rules pass `promtool check rules`, and their unit tests
/// (`ferry-alerts.test.yaml`: each alert fires on the series that should raise it, with its
/// labels and annotations, and not on its look-alikes) pass `promtool test rules`.
#[test]
fn alert_rules_pass_promtool_checks_and_unit_tests() {
    let rules = deploy_file("prometheus/ferry-alerts.yaml");
    let tests = deploy_file("prometheus/ferry-alerts.test.yaml");
    let no_env = BTreeMap::new();
    let (checked, output) = run(
        "promtool",
        &["check", "rules", rules.to_str().unwrap()],
        &no_env,
    );
    assert!(
        checked && output.contains("SUCCESS: 5 rules found"),
        "{output}"
    );
    let (passed, output) = run(
        "promtool",
        &["test", "rules", tests.to_str().unwrap()],
        &no_env,
    );
    assert!(passed, "{output}");
}

/// PromQL words that are not metric names.
const KEYWORDS: [&str; 10] = [
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
];
const AGGREGATIONS: [&str; 13] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
];

/// The metric names a PromQL expression (or a Grafana `label_values(...)` query) selects:
/// identifiers outside label matchers (`{...}`), ranges (`[...]`), strings, Grafana variables
/// (`$flow`, `${datasource}`) and number or duration literals, that are neither functions nor
/// aggregations, keywords, nor the label lists of `by`/`without`/`on`/`ignoring`/
/// `group_left`/`group_right`; `offset 5m` is skipped, and so is the label argument of
/// `label_values`.
fn metric_names(expression: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expression.chars().collect();
    let mut names = BTreeSet::new();
    let mut at = 0;
    // The index of the char that closes the bracket opened at `open`.
    let closing = |open: usize| -> usize {
        let (start, end) = match chars[open] {
            '(' => ('(', ')'),
            '{' => ('{', '}'),
            _ => ('[', ']'),
        };
        let mut depth = 0;
        let mut quote = None;
        for (index, &c) in chars.iter().enumerate().skip(open) {
            match quote {
                Some(q) if c == q && chars[index - 1] != '\\' => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' || c == '`' => quote = Some(c),
                None if c == start => depth += 1,
                None if c == end => {
                    depth -= 1;
                    if depth == 0 {
                        return index;
                    }
                }
                None => {}
            }
        }
        panic!("unbalanced `{start}` in {expression}");
    };
    let next_non_space = |from: usize| {
        (from..chars.len())
            .find(|&index| !chars[index].is_whitespace())
            .map(|index| (index, chars[index]))
    };
    while at < chars.len() {
        let c = chars[at];
        if c == '{' || c == '[' {
            at = closing(at) + 1;
        } else if c == '"' || c == '\'' || c == '`' {
            at += 1;
            while at < chars.len() && (chars[at] != c || chars[at - 1] == '\\') {
                at += 1;
            }
            at += 1;
        } else if c == '$' {
            at += 1;
            if chars.get(at) == Some(&'{') {
                at = closing(at) + 1;
            }
            while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '_') {
                at += 1;
            }
        } else if c.is_ascii_digit() || c == '.' {
            while at < chars.len() && (chars[at].is_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let start = at;
            while at < chars.len()
                && (chars[at].is_alphanumeric() || chars[at] == '_' || chars[at] == ':')
            {
                at += 1;
            }
            let word: String = chars[start..at].iter().collect();
            let next = next_non_space(at);
            if word == "label_values" {
                let open = next.map(|(index, _)| index).expect("label_values(");
                let close = closing(open);
                let inner: String = chars[open + 1..close].iter().collect();
                // label_values(metric, label) selects `metric`; label_values(label) nothing.
                if let Some((metric, _label)) = inner.rsplit_once(',') {
                    names.extend(metric_names(metric));
                }
                at = close + 1;
            } else if [
                "by",
                "without",
                "on",
                "ignoring",
                "group_left",
                "group_right",
            ]
            .contains(&word.as_str())
            {
                if let Some((open, '(')) = next {
                    at = closing(open) + 1;
                }
            } else {
                // Not a metric: `offset` (its duration is skipped as a literal), a keyword, an
                // aggregation, a function.
                let function = matches!(next, Some((_, '(')));
                let word_only = word == "offset"
                    || KEYWORDS.contains(&word.as_str())
                    || AGGREGATIONS.contains(&word.as_str());
                if !function && !word_only {
                    names.insert(word);
                }
            }
        } else {
            at += 1;
        }
    }
    names
}

#[test]
fn metric_names_of_promql_are_the_selected_metrics_only() {
    let check = |expression: &str, expected: &[&str]| {
        let expected: BTreeSet<String> = expected.iter().map(|name| (*name).to_owned()).collect();
        assert_eq!(metric_names(expression), expected, "{expression}");
    };
    check(
        r#"histogram_quantile(0.99, sum by (flow, le) (rate(a_bucket{flow=~"$flow", x="by (y)"}[$__rate_interval])))"#,
        &["a_bucket"],
    );
    check(
        "deriv(sum by (flow) (lag)[15m:1m]) > 0 and sum without (topic) (lag) > 1e4",
        &["lag"],
    );
    check(
        "(sum by (flow) (rate(hb[5m])) or 0 * max by(flow)(tasks)) == 0",
        &["hb", "tasks"],
    );
    check(
        "a - on (flow) group_left (x) b offset 5m unless c",
        &["a", "b", "c"],
    );
    check("topk(10, lag{flow=~\"${flow}\"})", &["lag"]);
    check(
        "label_values(tasks_configured, flow)",
        &["tasks_configured"],
    );
    check("label_values(flow)", &[]);
    check("sum(x:recorded:rate5m)", &["x:recorded:rate5m"]);
}

/// Every PromQL query of the Grafana dashboard: each `expr` of its panels, and the queries of
/// its template variables.
fn dashboard_queries() -> Vec<String> {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr", serde_json::Value::String(expr)) => found.push(expr.clone()),
                        ("definition", serde_json::Value::String(query)) => {
                            found.push(query.clone());
                        }
                        _ => walk(value, found),
                    }
                }
            }
            serde_json::Value::Array(values) => {
                for value in values {
                    walk(value, found);
                }
            }
            _ => {}
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana/ferry-dashboard.json")).expect("dashboard JSON");
    let mut found = Vec::new();
    walk(&dashboard, &mut found);
    found
}

/// Every `expr` of the alert rules.
fn alert_queries() -> Vec<String> {
    let documents = YamlLoader::load_from_str(&read("prometheus/ferry-alerts.yaml"))
        .expect("the alert rules are YAML");
    documents[0]["groups"]
        .as_vec()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_vec().expect("rules").iter())
        .map(|rule| rule["expr"].as_str().expect("expr").to_owned())
        .collect()
}

/// The names of the samples in a `/metrics` text.
fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Issue 14 point 7: every metric the dashboard and the alert rules query is on the `/metrics`
/// of a Ferry that runs the deployed configuration file (its `${VAR}`s from the environment, as
/// systemd and Kubernetes give them) on the SASL/PLAIN clusters and mirrored some records. The
/// gauges the alerts compare (halted partitions, open breakers, tasks configured and owned) are
/// there at 0 from the flow's start; no name is excused.
#[test]
fn every_metric_the_dashboard_and_the_alerts_query_is_on_a_running_ferry() {
    let dashboard = dashboard_queries();
    let alerts = alert_queries();
    assert!(dashboard.len() >= 15, "{dashboard:?}");
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    let wanted: BTreeSet<String> = dashboard
        .iter()
        .chain(&alerts)
        .flat_map(|query| metric_names(query))
        .collect();
    for name in [
        "ferry_records_replicated_total",
        "ferry_partition_lag_records",
        "ferry_replication_latency_seconds_bucket",
        "kafka_connect_mirror_mirrorsourceconnector_record_age_ms_max",
        "ferry_tasks_owned",
        "ferry_partitions_halted",
        "ferry_plugin_errors_total",
        "ferry_checkpoints_written_total",
        "ferry_heartbeats_written_total",
        "ferry_tasks_configured",
        "ferry_plugin_breakers_open",
    ] {
        assert!(wanted.contains(name), "{name} is not queried: {wanted:?}");
    }

    let clusters = support::sasl_clusters();
    let topic = support::unique("deploy_orders");
    let partitions = 3;
    support::create_topic(&clusters.a, &topic, partitions);
    support::produce(&clusters.a, &topic, partitions, 0..100);
    let group = support::unique("deploy.group");
    let env = [
        ("FERRY_SOURCE_BOOTSTRAP", clusters.a.as_str()),
        ("FERRY_TARGET_BOOTSTRAP", clusters.b.as_str()),
        ("FERRY_SECURITY_PROTOCOL", "SASL_PLAINTEXT"),
        ("FERRY_SOURCE_SASL_USERNAME", "ferry"),
        ("FERRY_SOURCE_SASL_PASSWORD", "ferry-secret"),
        ("FERRY_TARGET_SASL_USERNAME", "ferry"),
        ("FERRY_TARGET_SASL_PASSWORD", "ferry-secret"),
        ("FERRY_TOPICS", topic.as_str()),
        ("FERRY_GROUP_ID", group.as_str()),
    ];
    let dir = TempDir::new("deploy-metrics");
    let mut ferry = Ferry::start_with_env(&deploy_file("ferry.toml"), &dir, "ferry", &env);
    let remote = format!("clusterA.{topic}");
    let expected = i64::from(partitions) * 100;
    support::wait_for_value(
        Duration::from_secs(90),
        "the deployed configuration mirrors the records",
        &expected,
        || {
            ferry.assert_running();
            support::record_count(&clusters.b, &remote)
        },
    );
    support::wait_for_value(
        Duration::from_secs(60),
        "every queried metric is on /metrics (last seen: the ones missing)",
        &BTreeSet::new(),
        || {
            ferry.assert_running();
            let exposed = ferry
                .probe("/metrics")
                .map(|(_, text)| exposed_names(&text))
                .unwrap_or_default();
            wanted.difference(&exposed).cloned().collect()
        },
    );
    let log = ferry.terminate();
    assert!(!log.contains("ferry-secret"), "a password in the log");
}
