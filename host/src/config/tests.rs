//! Tests of the whole pipeline: text in, `Config` or rendered errors out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::validate::{self, parse_with_env};
use super::*;

/// The environment every test sees.
fn test_env(name: &str) -> Option<String> {
    let variables: HashMap<&str, &str> = HashMap::from([
        ("CLUSTER_A_PASSWORD", "hunter2-from-env"),
        ("BROKERS", "kafka-1:9092,kafka-2:9092"),
        ("EMPTY", ""),
        ("TWO_LINES", "a\nb"),
    ]);
    variables.get(name).map(|value| (*value).to_owned())
}

fn parse_ok(text: &str) -> Config {
    parse_at(text, Path::new("ferry.toml")).unwrap_or_else(|errors| panic!("{errors}"))
}

fn parse_at(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(text, origin, &test_env)
}

/// Parses `text` as `ferry.toml` and compares the rendered errors with `expected`.
fn check_errors(text: &str, expected: &str) {
    let errors = match parse_at(text, Path::new("ferry.toml")) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => errors,
    };
    assert_eq!(errors.to_string(), expected.trim(), "input:\n{text}");
}

/// A directory of its own for a test that needs files.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-config-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const TWO_CLUSTERS: &str = r#"
[clusters.a]
bootstrap_servers = "a:9092"

[clusters.b]
bootstrap_servers = "b:9092"
"#;

/// `TWO_CLUSTERS` plus `flow` as the one `[[flows]]` table; the flow starts on line 8.
fn with_flow(flow: &str) -> String {
    format!("{TWO_CLUSTERS}\n[[flows]]\nsource = \"a\"\ntarget = \"b\"\n{flow}")
}

/// `TWO_CLUSTERS` with `extra` appended to `[clusters.b]` (from line 7 on), then a flow a->b.
fn with_cluster_b(extra: &str) -> String {
    format!("{TWO_CLUSTERS}{extra}\n\n[[flows]]\nsource = \"a\"\ntarget = \"b\"\n")
}

#[test]
fn full_file() {
    let dir = scratch_dir("full");
    std::fs::write(dir.join("my-policy.wasm"), b"\0asm").unwrap();
    let text = r#"
[clusters.clusterA]
bootstrap_servers = "127.0.0.1:19092"
security_protocol = "sasl_ssl"
sasl = { mechanism = "scram-sha-512", username = "ferry", password = "${CLUSTER_A_PASSWORD}" }
ssl = { ca_location = "ca.pem", certificate_location = "/etc/c.pem", key_location = "k.pem", key_password = "kp" }
librdkafka = { "fetch.max.bytes" = "52428800", "socket.keepalive.enable" = true, "linger.ms" = 5 }

[clusters.clusterB]
bootstrap_servers = "${BROKERS}"

[[flows]]
source = "clusterA"
target = "clusterB"
enabled = false
topics = ["orders\\..*", "payments"]
topics_exclude = "orders\\.tmp.*"
policy = { uses = "my-policy.wasm", with = { "z.last" = "1", "a.first" = 2, "m.middle" = true } }
replication_factor = 3
tasks = 16
refresh_topics_interval = "2m"
commit_interval = "250ms"
heartbeats_replication = false
group_id = "mirror-a-b"
max_in_flight = 500
"#;
    let origin = dir.join("ferry.toml");
    let config = parse_at(text, &origin).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.path, origin);

    let a = &config.clusters[&ClusterName::new("clusterA").unwrap()];
    assert_eq!(a.name.as_str(), "clusterA");
    assert_eq!(a.bootstrap_servers, "127.0.0.1:19092");
    assert_eq!(a.security_protocol, SecurityProtocol::SaslSsl);
    let sasl = a.sasl.as_ref().unwrap();
    assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
    assert_eq!(sasl.username, "ferry");
    assert_eq!(sasl.password.expose(), "hunter2-from-env");
    let ssl = a.ssl.as_ref().unwrap();
    assert_eq!(
        ssl.ca_location.as_deref(),
        Some(dir.join("ca.pem").as_path())
    );
    assert_eq!(
        ssl.certificate_location.as_deref(),
        Some(Path::new("/etc/c.pem"))
    );
    assert_eq!(
        ssl.key_location.as_deref(),
        Some(dir.join("k.pem").as_path())
    );
    assert_eq!(
        ssl.key_password.as_ref().map(|p| p.expose().as_str()),
        Some("kp")
    );
    assert_eq!(
        a.librdkafka,
        BTreeMap::from([
            ("fetch.max.bytes".to_owned(), "52428800".to_owned()),
            ("linger.ms".to_owned(), "5".to_owned()),
            ("socket.keepalive.enable".to_owned(), "true".to_owned()),
        ])
    );
    let b = &config.clusters[&ClusterName::new("clusterB").unwrap()];
    assert_eq!(b.bootstrap_servers, "kafka-1:9092,kafka-2:9092");

    let [flow] = config.flows.as_slice() else {
        panic!("one flow expected")
    };
    assert_eq!(flow.id.as_str(), "clusterA->clusterB");
    assert_eq!(flow.id.to_string(), "clusterA->clusterB");
    assert_eq!(flow.source.as_str(), "clusterA");
    assert_eq!(flow.target.as_str(), "clusterB");
    assert!(!flow.enabled);
    assert_eq!(flow.topics.patterns(), ["orders\\..*", "payments"]);
    assert!(flow.topics.matches("orders.eu"));
    assert!(!flow.topics.matches("payments2"));
    assert_eq!(flow.topics_exclude.patterns(), ["orders\\.tmp.*"]);
    assert_eq!(
        flow.policy.uses,
        PluginSource::File(dir.join("my-policy.wasm"))
    );
    // File order, not alphabetical order.
    assert_eq!(
        flow.policy.with,
        [
            ("z.last".to_owned(), "1".to_owned()),
            ("a.first".to_owned(), "2".to_owned()),
            ("m.middle".to_owned(), "true".to_owned()),
        ]
    );
    assert_eq!(flow.replication_factor, 3);
    assert_eq!(flow.tasks, 16);
    assert_eq!(flow.refresh_topics_interval, Duration::from_secs(120));
    assert_eq!(flow.commit_interval, Duration::from_millis(250));
    assert!(!flow.heartbeats_replication);
    assert_eq!(flow.group_id, "mirror-a-b");
    assert_eq!(flow.max_in_flight, 500);
}

#[test]
fn defaults() {
    let config = parse_ok(&with_flow(""));
    let a = &config.clusters[&ClusterName::new("a").unwrap()];
    assert_eq!(a.security_protocol, SecurityProtocol::Plaintext);
    assert!(a.sasl.is_none());
    assert!(a.ssl.is_none());
    assert!(a.librdkafka.is_empty());

    let [flow] = config.flows.as_slice() else {
        panic!("one flow expected")
    };
    assert_eq!(flow.id.as_str(), "a->b");
    assert!(flow.enabled);
    assert_eq!(flow.topics.patterns(), [".*"]);
    assert_eq!(
        flow.topics_exclude.patterns(),
        [r".*[\-\.]internal", r".*\.replica", "__.*"]
    );
    for (topic, replicated) in [
        ("orders", true),
        ("mm2-offsets.A.internal", false),
        ("__consumer_offsets", false),
        ("x.replica", false),
        ("foo-internal", false),
    ] {
        let selected = flow.topics.matches(topic) && !flow.topics_exclude.matches(topic);
        assert_eq!(selected, replicated, "{topic}");
    }
    assert_eq!(
        flow.policy,
        PluginRef {
            uses: PluginSource::Builtin("default-policy".to_owned()),
            with: Vec::new(),
        }
    );
    assert_eq!(flow.replication_factor, 0, "auto");
    assert_eq!(flow.tasks, 8);
    assert_eq!(flow.refresh_topics_interval, Duration::from_secs(30));
    assert_eq!(flow.commit_interval, Duration::from_secs(1));
    assert!(flow.heartbeats_replication);
    assert_eq!(flow.group_id, "ferry.a-b");
    assert_eq!(flow.max_in_flight, 2_000);
}

#[test]
fn accepted_variants() {
    let config = parse_ok(&with_flow(
        r#"topics = ""
policy = { uses = "builtin:identity-policy" }
replication_factor = 32767
tasks = 1024
max_in_flight = 1000000
"#,
    ));
    let flow = &config.flows[0];
    assert!(flow.topics.patterns().is_empty());
    assert!(!flow.topics.matches("orders"));
    assert_eq!(
        flow.policy.uses,
        PluginSource::Builtin("identity-policy".to_owned())
    );
    assert_eq!(flow.replication_factor, i16::MAX);

    let config = parse_ok(&with_flow("topics = []\ntasks = 1\nmax_in_flight = 1\n"));
    assert!(config.flows[0].topics.patterns().is_empty());
}

#[test]
fn each_error_kind() {
    let cases: &[(&str, &str)] = &[
        // TOML syntax.
        (
            "[clusters.a]\nbootstrap_servers = \"x\nfoo = 1\n",
            "ferry.toml:2: invalid basic string, expected `\"`",
        ),
        // A type error names the key and the line.
        (
            &with_flow("tasks = \"eight\"\n"),
            "ferry.toml:11: flows[0].tasks: invalid type: string \"eight\", expected i64",
        ),
        (
            &with_flow("topics = 3\n"),
            "ferry.toml:11: flows[0].topics: invalid type: integer `3`, expected a comma-separated string or an array of regexes",
        ),
        // A missing required key points at its table.
        (
            &format!("{TWO_CLUSTERS}\n[[flows]]\nsource = \"a\"\n"),
            "ferry.toml:8: flows[0]: missing field `target`",
        ),
        // A missing key stops no other check.
        (
            "[clusters.a]\nsecurity_protocol = \"SSL\"\n[[flows]]\nsource = \"a\"\ntarget = \"a\"\n",
            "ferry.toml:1: clusters.a: missing field `bootstrap_servers`
ferry.toml:5: flows[0].target: must differ from `source`",
        ),
        // No flows, no clusters.
        ("", "ferry.toml: flows: at least one flow is required: add a `[[flows]]` table"),
        (
            "[[flows]]\nsource = \"a\"\ntarget = \"b\"\n",
            "ferry.toml:2: flows[0].source: unknown cluster `a` (no cluster is defined)
ferry.toml:3: flows[0].target: unknown cluster `b` (no cluster is defined)",
        ),
        // Flow endpoints.
        (
            &format!("{TWO_CLUSTERS}\n[[flows]]\nsource = \"a\"\ntarget = \"c\"\n"),
            "ferry.toml:10: flows[0].target: unknown cluster `c` (defined clusters: a, b)",
        ),
        (
            &format!("{TWO_CLUSTERS}\n[[flows]]\nsource = \"a\"\ntarget = \"a\"\n"),
            "ferry.toml:10: flows[0].target: must differ from `source`",
        ),
        // Regexes.
        (
            &with_flow("topics = \"ok, (broken\"\n"),
            "ferry.toml:11: flows[0].topics: invalid regex `(broken`: Parsing error at position 7: Opening parenthesis without closing parenthesis",
        ),
        (
            &with_flow("topics_exclude = [\"\"]\n"),
            "ferry.toml:11: flows[0].topics_exclude: an empty regex matches no topic; use an empty list to select nothing",
        ),
        // Durations.
        (
            &with_flow("refresh_topics_interval = \"30\"\n"),
            "ferry.toml:11: flows[0].refresh_topics_interval: invalid duration `30`: time unit needed, for example 30sec or 30ms (write e.g. \"500ms\", \"30s\", \"5m\")",
        ),
        (
            &with_flow("commit_interval = \"0s\"\n"),
            "ferry.toml:11: flows[0].commit_interval: must be greater than zero",
        ),
        // Numeric ranges.
        (
            &with_flow("replication_factor = -2\n"),
            "ferry.toml:11: flows[0].replication_factor: must be 0 (auto: up to 3, as the target's brokers allow), -1 (the broker's default.replication.factor) or between 1 and 32767, not -2",
        ),
        (
            &with_flow("replication_factor = 40000\n"),
            "ferry.toml:11: flows[0].replication_factor: must be 0 (auto: up to 3, as the target's brokers allow), -1 (the broker's default.replication.factor) or between 1 and 32767, not 40000",
        ),
        (
            &with_flow("tasks = 0\n"),
            "ferry.toml:11: flows[0].tasks: must be between 1 and 1024, not 0",
        ),
        (
            &with_flow("tasks = 1025\n"),
            "ferry.toml:11: flows[0].tasks: must be between 1 and 1024, not 1025",
        ),
        (
            &with_flow("max_in_flight = 0\n"),
            "ferry.toml:11: flows[0].max_in_flight: must be between 1 and 1000000, not 0",
        ),
        (
            &with_flow("max_in_flight = 1000001\n"),
            "ferry.toml:11: flows[0].max_in_flight: must be between 1 and 1000000, not 1000001",
        ),
        (
            &with_flow("group_id = \" \"\n"),
            "ferry.toml:11: flows[0].group_id: must not be empty",
        ),
        // Security protocol and SASL.
        (
            "[clusters.a]\nbootstrap_servers = \"x\"\nsecurity_protocol = \"TLS\"\n",
            "ferry.toml:3: clusters.a.security_protocol: unknown security protocol `TLS` (expected one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)
ferry.toml: flows: at least one flow is required: add a `[[flows]]` table",
        ),
        (
            &with_cluster_b("security_protocol = \"SASL_SSL\""),
            "ferry.toml:7: clusters.b.security_protocol: SASL_SSL needs SASL credentials: add `sasl = { mechanism = \"...\", username = \"...\", password = \"...\" }`",
        ),
        (
            &with_cluster_b("sasl = { mechanism = \"PLAIN\", username = \"u\", password = \"p\" }"),
            "ferry.toml:7: clusters.b.sasl: `sasl` needs security_protocol SASL_PLAINTEXT or SASL_SSL, not PLAINTEXT",
        ),
        (
            &with_cluster_b("security_protocol = \"SASL_PLAINTEXT\"\nsasl = { mechanism = \"GSSAPI\", username = \"\", password = \"\" }"),
            "ferry.toml:8: clusters.b.sasl.mechanism: unknown SASL mechanism `GSSAPI` (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)
ferry.toml:8: clusters.b.sasl.username: must not be empty
ferry.toml:8: clusters.b.sasl.password: must not be empty",
        ),
        (
            &with_cluster_b("security_protocol = \"SASL_PLAINTEXT\"\nssl = { ca_location = \"ca.pem\" }\nsasl = { mechanism = \"PLAIN\", username = \"u\", password = \"p\" }"),
            "ferry.toml:8: clusters.b.ssl: `ssl` needs security_protocol SSL or SASL_SSL, not SASL_PLAINTEXT",
        ),
        (
            "[clusters.\"a b\"]\nbootstrap_servers = \" \"\n[[flows]]\nsource = \"a b\"\ntarget = \"c\"\n",
            "ferry.toml:1: clusters.\"a b\": cluster name `a b` may contain only ASCII letters, digits, `.`, `_` and `-` (it becomes part of topic names)
ferry.toml:2: clusters.\"a b\".bootstrap_servers: must not be empty
ferry.toml:5: flows[0].target: unknown cluster `c` (defined clusters: a b)",
        ),
        // Plugins.
        (
            &with_flow("policy = { uses = \"builtin:nope\" }\n"),
            "ferry.toml:11: flows[0].policy.uses: unknown built-in plugin `builtin:nope` (expected one of: builtin:default-policy, builtin:identity-policy, or the path of a .wasm file)",
        ),
        (
            &with_flow("\n[flows.policy]\nuses = \"plugins/missing.wasm\"\n"),
            "ferry.toml:13: flows[0].policy.uses: plugin file `plugins/missing.wasm` does not exist",
        ),
        // librdkafka keys that Ferry owns or that typed keys set.
        (
            &with_cluster_b("librdkafka = { \"group.id\" = \"g\", \"enable.auto.commit\" = true, \"bootstrap.servers\" = \"x\" }"),
            "ferry.toml:7: clusters.b.librdkafka.\"bootstrap.servers\": cannot be set here: Ferry sets it from `bootstrap_servers`
ferry.toml:7: clusters.b.librdkafka.\"enable.auto.commit\": cannot be set here: Ferry stores source positions itself, only after the target acknowledged the records
ferry.toml:7: clusters.b.librdkafka.\"group.id\": cannot be set here: Ferry sets it from each flow's `group_id`",
        ),
        (
            &with_cluster_b("[clusters.b.librdkafka]\n\"security.protocol\" = \"ssl\"\n\"enable.auto.offset.store\" = \"false\"\n\"enable.idempotence\" = \"true\"\n\"transactional.id\" = \"t\""),
            "ferry.toml:8: clusters.b.librdkafka.\"security.protocol\": cannot be set here: Ferry sets it from `security_protocol`
ferry.toml:9: clusters.b.librdkafka.\"enable.auto.offset.store\": cannot be set here: Ferry stores source positions itself, only after the target acknowledged the records
ferry.toml:10: clusters.b.librdkafka.\"enable.idempotence\": cannot be set here: Ferry chooses its producers' delivery guarantees itself
ferry.toml:11: clusters.b.librdkafka.\"transactional.id\": cannot be set here: Ferry chooses its producers' delivery guarantees itself",
        ),
        (
            &with_cluster_b("security_protocol = \"SASL_SSL\"\nsasl = { mechanism = \"PLAIN\", username = \"u\", password = \"p\" }\nssl = { ca_location = \"ca.pem\" }\n[clusters.b.librdkafka]\n\"sasl.mechanisms\" = \"PLAIN\"\n\"sasl.password\" = \"p2\"\n\"ssl.ca.location\" = \"x\"\n\"ssl.key.location\" = \"k.pem\""),
            "ferry.toml:11: clusters.b.librdkafka.\"sasl.mechanisms\": cannot be set here: it is already set by `sasl.mechanism` of this cluster
ferry.toml:12: clusters.b.librdkafka.\"sasl.password\": cannot be set here: it is already set by `sasl.password` of this cluster
ferry.toml:13: clusters.b.librdkafka.\"ssl.ca.location\": cannot be set here: it is already set by `ssl.ca_location` of this cluster",
        ),
        (
            &with_cluster_b("librdkafka = { \"fetch.max.byte\" = 1, \"linger.ms\" = \"soon\" }"),
            "ferry.toml:7: clusters.b.librdkafka.\"fetch.max.byte\": rejected by librdkafka: No such configuration property: \"fetch.max.byte\"
ferry.toml:7: clusters.b.librdkafka.\"linger.ms\": rejected by librdkafka: Invalid value for configuration property \"queue.buffering.max.ms\"",
        ),
        // Duplicates.
        (
            &format!("{}\n[[flows]]\nsource = \"a\"\ntarget = \"b\"\n", with_flow("")),
            "ferry.toml:12: flows[1]: duplicate flow a->b (first defined at line 8)",
        ),
        (
            &format!("{}group_id = \"g\"\n[[flows]]\nsource = \"b\"\ntarget = \"a\"\ngroup_id = \"g\"\n", with_flow("")),
            "ferry.toml:15: flows[1].group_id: group `g` is already used by flow a->b; each flow needs its own group",
        ),
    ];
    for (text, expected) in cases {
        check_errors(text, expected);
    }
}

#[test]
fn unknown_keys_everywhere_at_once() {
    let text = r#"version = 2

[clusters.a]
bootstrap_server = "a:9092"
bootstrap_servers = "a:9092"
security_protocol = "SASL_SSL"
sasl = { mechanism = "PLAIN", username = "u", password = "p", pasword = "p" }
ssl = { ca = "ca.pem" }

[clusters.b]
bootstrap_servers = "b:9092"

[[flows]]
source = "a"
target = "b"
topic = "x"
"topics.exclude" = "y"
policy = { uses = "builtin:default-policy", width = {} }
"#;
    check_errors(
        text,
        r#"
ferry.toml:1: version: unknown key (expected one of: clusters, flows)
ferry.toml:4: clusters.a.bootstrap_server: unknown key, did you mean `bootstrap_servers`? (expected one of: bootstrap_servers, security_protocol, sasl, ssl, librdkafka, consumer, producer, admin)
ferry.toml:7: clusters.a.sasl.pasword: unknown key, did you mean `password`? (expected one of: mechanism, username, password)
ferry.toml:8: clusters.a.ssl.ca: unknown key (expected one of: ca_location, certificate_location, key_location, key_password)
ferry.toml:16: flows[0].topic: unknown key, did you mean `topics`? (expected one of: source, target, enabled, topics, topics_exclude, policy, filters, transforms, topic_filter, group_filter, config_property_filter, on_error, dead_letter_topic, replication_factor, tasks, refresh_topics_interval, commit_interval, exactly_once, transaction_interval, transaction_records, heartbeats_replication, group_id, max_in_flight, positions_topic, emit_heartbeats, heartbeats_interval, emit_offset_syncs, offset_lag_max, offset_syncs_location, emit_checkpoints, checkpoints_interval, groups, groups_exclude, sync_group_offsets, sync_group_offsets_interval, sync_topic_configs, sync_topic_configs_interval, config_properties_exclude, use_source_defaults, sync_topic_acls, sync_topic_acls_interval, internal_replication_factor)
ferry.toml:17: flows[0]."topics.exclude": unknown key, did you mean `topics_exclude`? (expected one of: source, target, enabled, topics, topics_exclude, policy, filters, transforms, topic_filter, group_filter, config_property_filter, on_error, dead_letter_topic, replication_factor, tasks, refresh_topics_interval, commit_interval, exactly_once, transaction_interval, transaction_records, heartbeats_replication, group_id, max_in_flight, positions_topic, emit_heartbeats, heartbeats_interval, emit_offset_syncs, offset_lag_max, offset_syncs_location, emit_checkpoints, checkpoints_interval, groups, groups_exclude, sync_group_offsets, sync_group_offsets_interval, sync_topic_configs, sync_topic_configs_interval, config_properties_exclude, use_source_defaults, sync_topic_acls, sync_topic_acls_interval, internal_replication_factor)
ferry.toml:18: flows[0].policy.width: unknown key, did you mean `with`? (expected one of: uses, with)
"#,
    );
}

#[test]
fn several_errors_at_once_in_line_order() {
    let text = r#"[clusters.a]
bootstrap_servers = "a:9092"
security_protocol = "SASL_PLAINTEXT"
librdkafka = { "group.id" = "mine" }

[clusters.b]
bootstrap_servers = "${MISSING_BROKERS}"

[[flows]]
source = "a"
target = "c"
topics = ["ok", "(unclosed"]
refresh_topics_interval = "soon"
tasks = 0
colour = "blue"

[[flows]]
source = "b"
target = "a"
policy = { uses = "plugins/absent.wasm" }
"#;
    check_errors(
        text,
        r#"
ferry.toml:3: clusters.a.security_protocol: SASL_PLAINTEXT needs SASL credentials: add `sasl = { mechanism = "...", username = "...", password = "..." }`
ferry.toml:4: clusters.a.librdkafka."group.id": cannot be set here: Ferry sets it from each flow's `group_id`
ferry.toml:7: clusters.b.bootstrap_servers: environment variable `MISSING_BROKERS` is not set (use `${MISSING_BROKERS:-default}` for a default)
ferry.toml:11: flows[0].target: unknown cluster `c` (defined clusters: a, b)
ferry.toml:12: flows[0].topics: invalid regex `(unclosed`: Parsing error at position 9: Opening parenthesis without closing parenthesis
ferry.toml:13: flows[0].refresh_topics_interval: invalid duration `soon`: expected number at 0 (write e.g. "500ms", "30s", "5m")
ferry.toml:14: flows[0].tasks: must be between 1 and 1024, not 0
ferry.toml:15: flows[0].colour: unknown key (expected one of: source, target, enabled, topics, topics_exclude, policy, filters, transforms, topic_filter, group_filter, config_property_filter, on_error, dead_letter_topic, replication_factor, tasks, refresh_topics_interval, commit_interval, exactly_once, transaction_interval, transaction_records, heartbeats_replication, group_id, max_in_flight, positions_topic, emit_heartbeats, heartbeats_interval, emit_offset_syncs, offset_lag_max, offset_syncs_location, emit_checkpoints, checkpoints_interval, groups, groups_exclude, sync_group_offsets, sync_group_offsets_interval, sync_topic_configs, sync_topic_configs_interval, config_properties_exclude, use_source_defaults, sync_topic_acls, sync_topic_acls_interval, internal_replication_factor)
ferry.toml:20: flows[1].policy.uses: plugin file `plugins/absent.wasm` does not exist
"#,
    );
}

/// Issue 14: the file a user tried, with five problems of four kinds (a misspelt key, a value
/// of the wrong type, an unknown cluster, a bad regex, a missing plugin file), needed three
/// runs: serde stopped at the type error, and that stopped the later checks. All five are
/// reported at once, each with its key and line.
#[test]
fn issue_14_five_problems_in_one_run() {
    let text = r#"[clusters.a]
bootstrap_servers = "a:9092"

[clusters.b]
bootstrap_servers = "b:9092"

[[flows]]
source = "a"
target = "c"
topcis = ["orders\\..*"]
topics_exclude = ["(unclosed"]
replication_factor = "three"
filters = [{ uses = "plugins/missing.wasm" }]
"#;
    check_errors(
        text,
        r#"
ferry.toml:9: flows[0].target: unknown cluster `c` (defined clusters: a, b)
ferry.toml:10: flows[0].topcis: unknown key, did you mean `topics`? (expected one of: source, target, enabled, topics, topics_exclude, policy, filters, transforms, topic_filter, group_filter, config_property_filter, on_error, dead_letter_topic, replication_factor, tasks, refresh_topics_interval, commit_interval, exactly_once, transaction_interval, transaction_records, heartbeats_replication, group_id, max_in_flight, positions_topic, emit_heartbeats, heartbeats_interval, emit_offset_syncs, offset_lag_max, offset_syncs_location, emit_checkpoints, checkpoints_interval, groups, groups_exclude, sync_group_offsets, sync_group_offsets_interval, sync_topic_configs, sync_topic_configs_interval, config_properties_exclude, use_source_defaults, sync_topic_acls, sync_topic_acls_interval, internal_replication_factor)
ferry.toml:11: flows[0].topics_exclude: invalid regex `(unclosed`: Parsing error at position 9: Opening parenthesis without closing parenthesis
ferry.toml:12: flows[0].replication_factor: invalid type: string "three", expected i64
ferry.toml:13: flows[0].filters[0].uses: plugin file `plugins/missing.wasm` does not exist
"#,
    );
}

/// Values of the wrong type in several tables, a bad array element and a missing key are all
/// reported, and the rest of each table is still checked; a required key of the wrong type is
/// reported once, not also as missing.
#[test]
fn type_errors_hide_no_other_problem() {
    let text = r#"[clusters.a]
bootstrap_servers = 9092
librdkafka = { "linger.ms" = [1] }

[clusters.b]
bootstrap_servers = "b:9092"
security_protocol = "TLS"

[[flows]]
source = "a"
target = "b"
tasks = "eight"
max_in_flight = 0
topics = ["ok", 3]
policy = { uses = 1, with = { w = "x" } }

[[flows]]
source = 7
target = "a"
enabled = "yes"
commit_interval = "soon"

[[flows]]
target = "a"
filters = [{ with = {} }]
"#;
    check_errors(
        text,
        r#"
ferry.toml:2: clusters.a.bootstrap_servers: invalid type: integer `9092`, expected a string
ferry.toml:3: clusters.a.librdkafka."linger.ms": invalid type: sequence, expected a string, number or boolean
ferry.toml:7: clusters.b.security_protocol: unknown security protocol `TLS` (expected one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)
ferry.toml:12: flows[0].tasks: invalid type: string "eight", expected i64
ferry.toml:13: flows[0].max_in_flight: must be between 1 and 1000000, not 0
ferry.toml:14: flows[0].topics[1]: invalid type: integer `3`, expected a string
ferry.toml:15: flows[0].policy.uses: invalid type: integer `1`, expected a string
ferry.toml:18: flows[1].source: invalid type: integer `7`, expected a string
ferry.toml:20: flows[1].enabled: invalid type: string "yes", expected a boolean
ferry.toml:21: flows[1].commit_interval: invalid duration `soon`: expected number at 0 (write e.g. "500ms", "30s", "5m")
ferry.toml:23: flows[2]: missing field `source`
ferry.toml:25: flows[2].filters[0]: missing field `uses`
"#,
    );
}

/// The clusters and flows without a problem are returned beside the problems (for the
/// plugin checks of `ferry validate`); a flow with a problem is not.
#[test]
fn check_returns_the_valid_part() {
    let text = with_flow("tasks = \"eight\"\n[[flows]]\nsource = \"b\"\ntarget = \"a\"\n");
    let checked = validate::check_with_env(&text, Path::new("ferry.toml"), &test_env);
    assert_eq!(checked.errors.errors.len(), 1, "{}", checked.errors);
    assert_eq!(checked.config.clusters.len(), 2);
    let flows: Vec<&str> = checked
        .config
        .flows
        .iter()
        .map(|flow| flow.id.as_str())
        .collect();
    assert_eq!(flows, ["b->a"]);
}

#[test]
fn relative_plugin_paths_resolve_against_the_file() {
    let dir = scratch_dir("plugin-path");
    std::fs::create_dir_all(dir.join("plugins/dir.wasm")).unwrap();
    std::fs::write(dir.join("plugins/p.wasm"), b"\0asm").unwrap();
    let origin = dir.join("ferry.toml");

    let config = parse_at(
        &with_flow("policy = { uses = \"plugins/p.wasm\" }\n"),
        &origin,
    )
    .unwrap();
    assert_eq!(
        config.flows[0].policy.uses,
        PluginSource::File(dir.join("plugins/p.wasm"))
    );

    let errors = parse_at(
        &with_flow("policy = { uses = \"plugins/q.wasm\" }\n"),
        &origin,
    )
    .unwrap_err()
    .to_string();
    let expected = format!(
        "{}:11: flows[0].policy.uses: plugin file `{}` does not exist",
        origin.display(),
        dir.join("plugins/q.wasm").display()
    );
    assert_eq!(errors, expected);

    let errors = parse_at(
        &with_flow("policy = { uses = \"plugins/dir.wasm\" }\n"),
        &origin,
    )
    .unwrap_err()
    .to_string();
    assert!(errors.ends_with("is not a file"), "{errors}");
}

#[test]
fn environment_interpolation() {
    let config = parse_ok(&format!(
        "{}topics = \"${{TOPICS:-orders.*}}, cost$$\"\ngroup_id = \"${{EMPTY:-fallback}}\"\n",
        with_flow("")
    ));
    assert_eq!(config.flows[0].topics.patterns(), ["orders.*", "cost$"]);
    assert_eq!(config.flows[0].group_id, "fallback");

    // Comments are not interpolated, and errors carry the line of the string.
    check_errors(
        &format!(
            "# password = \"${{NOT_INTERPOLATED}}\"\n{}group_id = \"${{EMPTY:?set EMPTY to the group}}\"\ncommit_interval = \"${{TWO_LINES}}\"\n\n\n\n\nmax_in_flight = 0\n",
            with_flow("")
        ),
        r#"
ferry.toml:12: flows[0].group_id: environment variable `EMPTY` is not set or empty: set EMPTY to the group
ferry.toml:13: flows[0].commit_interval: the value of environment variable `TWO_LINES` contains a line break
ferry.toml:18: flows[0].max_in_flight: must be between 1 and 1000000, not 0
"#,
    );
}

#[test]
fn secrets_are_never_printed() {
    let secret = "hunter2-from-env";
    let file_secret = "file-secret-42";
    let text = format!(
        r#"
[clusters.a]
bootstrap_servers = "a:9092"
security_protocol = "SASL_SSL"
sasl = {{ mechanism = "PLAIN", username = "u", password = "${{CLUSTER_A_PASSWORD}}" }}
ssl = {{ key_password = "{file_secret}" }}
librdkafka = {{ "sasl.oauthbearer.config" = "clientSecret={file_secret}", "ssl.keystore.password" = "{file_secret}" }}

[clusters.b]
bootstrap_servers = "b:9092"
"#
    );
    let valid = format!("{text}\n[[flows]]\nsource = \"a\"\ntarget = \"b\"\n");
    let config = parse_ok(&valid);
    let cluster = &config.clusters[&ClusterName::new("a").unwrap()];
    for printed in [
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{cluster:?}"),
    ] {
        assert!(!printed.contains(secret), "{printed}");
        assert!(!printed.contains(file_secret), "{printed}");
    }
    // rdkafka's own `Debug` hides the passwords Ferry sets (but not every passthrough secret,
    // such as `sasl.oauthbearer.config`; never print a `ClientConfig`).
    let client_config = format!("{:?}", cluster.client_config(ClientRole::Consumer));
    assert!(!client_config.contains(secret), "{client_config}");
    assert!(
        !client_config.contains(&format!("\"{file_secret}\"")),
        "{client_config}"
    );
    assert!(format!("{cluster:?}").contains("***"));
    assert_eq!(Sensitive::new("x").to_string(), "***");
    assert_eq!(format!("{:?}", Sensitive::new("x")), "***");

    // Invalid files: messages about secret keys never quote the value.
    for invalid in [
        text.clone(), // no flows
        text.replace("\"PLAIN\"", "\"NOPE\""),
        text.replace(
            &format!("key_password = \"{file_secret}\""),
            "key_password = 424242",
        ),
        text.replace("${CLUSTER_A_PASSWORD}", "${UNSET_PASSWORD}"),
        text.replace("ssl.keystore.password", "ssl.keystore.pasword"),
        text.replace("\"sasl.oauthbearer.config\"", "\"sasl.password\""),
    ] {
        let errors = parse_at(&invalid, Path::new("ferry.toml")).unwrap_err();
        for printed in [errors.to_string(), format!("{errors:?}")] {
            assert!(!printed.contains(secret), "{printed}");
            assert!(!printed.contains(file_secret), "{printed}");
            assert!(!printed.contains("424242"), "{printed}");
        }
    }
    check_errors(
        &text.replace(
            &format!("key_password = \"{file_secret}\""),
            "key_password = 424242",
        ),
        // `text` has no flow: reported too, since the type error no longer stops the checks.
        "ferry.toml:6: clusters.a.ssl.key_password: has the wrong type (the value is not shown because it is a secret)
ferry.toml: flows: at least one flow is required: add a `[[flows]]` table",
    );
}

#[test]
fn client_config() {
    let config = parse_ok(
        r#"
[clusters.a]
bootstrap_servers = "a:9092"
security_protocol = "SASL_SSL"
sasl = { mechanism = "SCRAM-SHA-256", username = "u", password = "p" }
ssl = { ca_location = "/etc/ca.pem", key_password = "kp" }
librdkafka = { "fetch.max.bytes" = 52428800, "client.id" = "ferry-a" }

[clusters.b]
bootstrap_servers = "b:9092"

[[flows]]
source = "a"
target = "b"
"#,
    );
    let client_config =
        config.clusters[&ClusterName::new("a").unwrap()].client_config(ClientRole::Producer);
    let expected = [
        ("bootstrap.servers", "a:9092"),
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "u"),
        ("sasl.password", "p"),
        ("ssl.ca.location", "/etc/ca.pem"),
        ("ssl.key.password", "kp"),
        ("fetch.max.bytes", "52428800"),
        ("client.id", "ferry-a"),
    ];
    for (key, value) in expected {
        assert_eq!(client_config.get(key), Some(value), "{key}");
    }
    assert_eq!(client_config.get("ssl.certificate.location"), None);
    // librdkafka accepts every key Ferry sets.
    client_config.create_native_config().unwrap();

    let plain = config.clusters[&ClusterName::new("b").unwrap()].client_config(ClientRole::Admin);
    assert_eq!(plain.get("security.protocol"), Some("plaintext"));
    assert_eq!(plain.get("sasl.mechanism"), None);
}

/// Issue 13: `[clusters.<name>.consumer]`, `.producer` and `.admin` go on top of `librdkafka`
/// for their role only.
#[test]
fn role_tables_apply_to_their_role_only() {
    let config = parse_ok(
        r#"
[clusters.a]
bootstrap_servers = "a:9092"
librdkafka = { "client.id" = "ferry-a", "socket.timeout.ms" = 30000 }

[clusters.a.consumer]
"fetch.max.bytes" = 1048576
"client.id" = "ferry-a-consumer"
"auto.offset.reset" = "latest"

[clusters.a.producer]
"linger.ms" = 20
"compression.type" = "zstd"
"sasl.oauthbearer.config" = "principal=role-s3cret"

[clusters.a.admin]
"socket.timeout.ms" = 5000

[clusters.b]
bootstrap_servers = "b:9092"

[[flows]]
source = "a"
target = "b"
"#,
    );
    let a = &config.clusters[&ClusterName::new("a").unwrap()];
    let check = |role: ClientRole, expected: &[(&str, Option<&str>)]| {
        let client_config = a.client_config(role);
        for (key, value) in expected {
            assert_eq!(client_config.get(key), *value, "{role} {key}");
        }
        client_config.create_native_config().unwrap();
    };
    check(
        ClientRole::Consumer,
        &[
            ("client.id", Some("ferry-a-consumer")),
            ("fetch.max.bytes", Some("1048576")),
            ("linger.ms", None),
            ("socket.timeout.ms", Some("30000")),
        ],
    );
    check(
        ClientRole::Producer,
        &[
            ("client.id", Some("ferry-a")),
            ("linger.ms", Some("20")),
            ("compression.type", Some("zstd")),
            ("fetch.max.bytes", None),
        ],
    );
    check(
        ClientRole::Admin,
        &[
            ("client.id", Some("ferry-a")),
            ("socket.timeout.ms", Some("5000")),
        ],
    );
    // The builders of `kafka` ask for their role; host-owned keys stay the host's.
    let source = crate::kafka::source_consumer(a, false);
    assert_eq!(source.get("fetch.max.bytes"), Some("1048576"));
    assert_eq!(source.get("auto.offset.reset"), Some("error"));
    assert_eq!(source.get("isolation.level"), Some("read_uncommitted"));
    // Exactly once, the source is read committed, and so is everything Ferry reads back.
    let source = crate::kafka::source_consumer(a, true);
    assert_eq!(source.get("isolation.level"), Some("read_committed"));
    assert_eq!(
        crate::kafka::plain_consumer(a).get("isolation.level"),
        Some("read_committed")
    );
    assert!(crate::kafka::starts_at_end(a));
    let producer = crate::kafka::target_producer(a, None);
    assert_eq!(producer.get("linger.ms"), Some("20"));
    assert_eq!(producer.get("enable.idempotence"), Some("true"));
    assert_eq!(producer.get("transactional.id"), None);
    let producer = crate::kafka::target_producer(a, Some("ferry.a-b.task-3"));
    assert_eq!(producer.get("transactional.id"), Some("ferry.a-b.task-3"));
    assert_eq!(producer.get("transaction.timeout.ms"), Some("30000"));
    assert_eq!(
        crate::kafka::admin_client(a).get("socket.timeout.ms"),
        Some("5000")
    );
    assert!(!format!("{a:?}").contains("role-s3cret"));
    assert!(!crate::kafka::starts_at_end(
        &config.clusters[&ClusterName::new("b").unwrap()]
    ));
}

/// Issue 13: the role tables refuse what `librdkafka` refuses, each problem with its line.
#[test]
fn role_tables_are_validated_like_librdkafka() {
    check_errors(
        &with_cluster_b(
            "security_protocol = \"SASL_PLAINTEXT\"\nsasl = { mechanism = \"PLAIN\", username = \"u\", password = \"p\" }\n\
             [clusters.b.consumer]\n\"enable.auto.commit\" = true\n\"fetch.max.byte\" = 1\n\
             [clusters.b.producer]\n\"acks\" = 1\n\"sasl.password\" = \"role-s3cret\"\n\"linger.ms\" = \"soon\"\n\
             [clusters.b.admin]\n\"group.id\" = \"g\"\n\"ssl.keystore.password\" = 7\n\
             [clusters.b.consumers]\n\"fetch.max.bytes\" = 1",
        ),
        "ferry.toml:10: clusters.b.consumer.\"enable.auto.commit\": cannot be set here: Ferry stores source positions itself, only after the target acknowledged the records
ferry.toml:11: clusters.b.consumer.\"fetch.max.byte\": rejected by librdkafka: No such configuration property: \"fetch.max.byte\"
ferry.toml:13: clusters.b.producer.acks: cannot be set here: Ferry chooses its producers' delivery guarantees itself
ferry.toml:14: clusters.b.producer.\"sasl.password\": cannot be set here: it is already set by `sasl.password` of this cluster
ferry.toml:15: clusters.b.producer.\"linger.ms\": rejected by librdkafka: Invalid value for configuration property \"queue.buffering.max.ms\"
ferry.toml:17: clusters.b.admin.\"group.id\": cannot be set here: Ferry sets it from each flow's `group_id`
ferry.toml:19: clusters.b.consumers: unknown key, did you mean `consumer`? (expected one of: bootstrap_servers, security_protocol, sasl, ssl, librdkafka, consumer, producer, admin)",
    );
    // A secret of a role table has the wrong type: its value is not quoted.
    let errors = parse_at(
        &with_cluster_b("[clusters.b.admin]\n\"ssl.key.password\" = [\"role-s3cret\"]"),
        Path::new("ferry.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        errors.contains("the value is not shown because it is a secret"),
        "{errors}"
    );
    assert!(!errors.contains("role-s3cret"), "{errors}");
}

#[test]
fn unreadable_file() {
    let missing = Path::new("/nonexistent/ferry.toml");
    let errors = load(missing).unwrap_err();
    assert_eq!(errors.errors.len(), 1);
    assert!(
        errors
            .to_string()
            .starts_with("/nonexistent/ferry.toml: cannot read the configuration file: "),
        "{errors}"
    );
}

#[test]
fn load_reads_the_file() {
    let dir = scratch_dir("load");
    let path = dir.join("ferry.toml");
    std::fs::write(&path, with_flow("")).unwrap();
    let config = load(&path).unwrap();
    assert_eq!(config.path, path);
    assert_eq!(config.flows.len(), 1);
}

#[test]
fn example_basic_toml_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/basic.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = parse(&text, &path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.clusters.len(), 2);
    let [flow] = config.flows.as_slice() else {
        panic!("one flow expected")
    };
    assert_eq!(flow.id.as_str(), "clusterA->clusterB");
    assert!(flow.topics.matches("prod.orders.global"));
    assert!(!flow.topics.matches("xprod.orders.global"));
    assert_eq!(flow.replication_factor, 1);
    assert_eq!(flow.refresh_topics_interval, Duration::from_secs(5));
    let cluster_a = &config.clusters[&ClusterName::new("clusterA").unwrap()];
    assert_eq!(cluster_a.bootstrap_servers, "127.0.0.1:19092");
    let cluster_b = &config.clusters[&ClusterName::new("clusterB").unwrap()];
    assert_eq!(cluster_b.bootstrap_servers, "127.0.0.1:29092");
}

#[test]
fn raw_field_names_match_the_structs() {
    assert_eq!(raw::field_names::<raw::RawConfig>(), ["clusters", "flows"]);
    assert_eq!(raw::field_names::<raw::PluginConfig>(), ["uses", "with"]);
    assert_eq!(raw::field_names::<raw::FlowConfig>().len(), 42);
    assert_eq!(
        raw::field_names::<raw::ChainPluginConfig>(),
        ["uses", "with"]
    );
}

#[test]
fn cluster_names() {
    for valid in ["a", "clusterA", "eu-west.1_b"] {
        assert_eq!(ClusterName::new(valid).unwrap().as_str(), valid);
    }
    for invalid in ["", "a b", "a->b", "é"] {
        assert!(ClusterName::new(invalid).is_err(), "{invalid:?}");
    }
}

#[test]
fn filters_transforms_and_error_policy() {
    let dir = std::env::temp_dir().join(format!("ferry-chain-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.wasm"), b"").unwrap();
    let text = r#"
[clusters.a]
bootstrap_servers = "a:9092"
[clusters.b]
bootstrap_servers = "b:9092"
[[flows]]
source = "a"
target = "b"
filters = [{ uses = "f.wasm", with = { z = "1", a = 2 } }]
transforms = [{ uses = "f.wasm" }, { uses = "f.wasm", with = { k = "v" } }]
on_error = "dead-letter"
"#;
    let config = super::parse(text, &dir.join("ferry.toml")).unwrap();
    let flow = &config.flows[0];
    assert_eq!(flow.filters.len(), 1);
    assert_eq!(
        flow.filters[0].with,
        [
            ("z".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned())
        ],
        "file order"
    );
    assert_eq!(flow.transforms.len(), 2);
    assert_eq!(flow.transforms[1].with, [("k".to_owned(), "v".to_owned())]);
    assert_eq!(flow.on_error, super::ErrorPolicy::DeadLetter);
    assert_eq!(flow.dead_letter_topic, "ferry-dlq.a.internal");

    let bad = text
        .replace(
            "on_error = \"dead-letter\"",
            "on_error = \"ignore\"\ndead_letter_topic = \"a/b\"",
        )
        .replace("uses = \"f.wasm\" }", "uses = \"builtin:x\", colour = 1 }");
    let errors = super::parse(&bad, &dir.join("ferry.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        errors
            .contains("flows[0].on_error: expected `halt`, `skip` or `dead-letter`, not `ignore`"),
        "{errors}"
    );
    assert!(
        errors.contains("flows[0].dead_letter_topic: `a/b` is not a legal Kafka topic name"),
        "{errors}"
    );
    assert!(
        errors.contains("flows[0].transforms[0].uses: only policies are built in"),
        "{errors}"
    );
    assert!(
        errors.contains("flows[0].transforms[0].colour: unknown key (expected one of: uses, with)"),
        "{errors}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn name_filter_plugins() {
    let dir = std::env::temp_dir().join(format!("ferry-name-filters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("t.wasm"), b"").unwrap();
    let text = r#"
[clusters.a]
bootstrap_servers = "a:9092"
[clusters.b]
bootstrap_servers = "b:9092"
[[flows]]
source = "a"
target = "b"
topic_filter = { uses = "t.wasm", with = { prefix = "keep." } }
config_property_filter = { uses = "t.wasm" }
"#;
    let config = super::parse(text, &dir.join("ferry.toml")).unwrap();
    let flow = &config.flows[0];
    let topic_filter = flow.topic_filter.as_ref().unwrap();
    assert_eq!(topic_filter.uses, PluginSource::File(dir.join("t.wasm")));
    assert_eq!(
        topic_filter.with,
        [("prefix".to_owned(), "keep.".to_owned())]
    );
    assert!(flow.group_filter.is_none());
    assert!(flow.config_property_filter.is_some());

    let bad = text
        .replace("uses = \"t.wasm\" }", "uses = \"builtin:default\" }")
        .replace("with = { prefix", "colour = 1, with = { prefix");
    let errors = super::parse(&bad, &dir.join("ferry.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(
            "ferry.toml:10: flows[0].config_property_filter.uses: only policies are built in"
        ),
        "{errors}"
    );
    assert!(
        errors.contains(
            "ferry.toml:9: flows[0].topic_filter.colour: unknown key (expected one of: uses, with)"
        ),
        "{errors}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
