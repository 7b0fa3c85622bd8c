//! Tests of [`Policy`] against the builtins and the policy fixtures (`plugins/test-fixtures`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Policy;
use crate::plugins::{Engine, EngineOptions, PluginError, PluginSource};

/// One engine for the tests, as in the host: one per process.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().unwrap())
}

fn fixture(file: &str) -> PluginSource {
    PluginSource::File(Path::new(env!("FERRY_PLUGIN_DIR")).join(file))
}

fn flow_config(with: &[(&str, &str)]) -> Vec<(String, String)> {
    with.iter()
        .chain(&[("source.cluster.alias", "A"), ("target.cluster.alias", "B")])
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn load(source: &PluginSource, with: &[(&str, &str)]) -> Result<Policy, PluginError> {
    Policy::load(engine(), source, &flow_config(with))
}

fn builtin(name: &str) -> PluginSource {
    PluginSource::Builtin(name.to_owned())
}

#[test]
fn default_policy_answers_like_mm2() {
    let policy = load(&builtin("default-policy"), &[]).unwrap();
    assert_eq!(policy.name(), "builtin:default-policy");
    assert_eq!(
        policy.format_remote_topic("A", "orders").unwrap(),
        "A.orders"
    );
    let check = |topic: &str, source: Option<&str>, upstream: Option<&str>, original: &str| {
        assert_eq!(
            policy.topic_source(topic).unwrap().as_deref(),
            source,
            "{topic}"
        );
        assert_eq!(
            policy.upstream_topic(topic).unwrap().as_deref(),
            upstream,
            "{topic}"
        );
        assert_eq!(policy.original_topic(topic).unwrap(), original, "{topic}");
    };
    check("topic", None, None, "topic");
    check("A.B.topic", Some("A"), Some("B.topic"), "topic");
    check(".topic", Some(""), Some("topic"), "topic");
    check("topic.", None, None, "topic.");
    check("..", None, None, "..");
    check("A..topic", Some("A"), Some(".topic"), "topic");
    check("x.heartbeats.y", Some("x"), Some("heartbeats.y"), "y");
    assert_eq!(policy.heartbeats_topic().unwrap(), "heartbeats");
    assert_eq!(
        policy.offset_syncs_topic("B").unwrap(),
        "mm2-offset-syncs.B.internal"
    );
    assert_eq!(
        policy.checkpoints_topic("A").unwrap(),
        "A.checkpoints.internal"
    );
    assert!(policy.is_heartbeats_topic("A.B.heartbeats").unwrap());
    assert!(!policy.is_heartbeats_topic("x.heartbeats.y").unwrap());
    assert!(
        policy
            .is_checkpoints_topic("A.checkpoints.internal")
            .unwrap()
    );
    assert!(
        policy
            .is_mm2_internal_topic("mm2-offset-syncs.B.internal")
            .unwrap()
    );
    assert!(policy.is_internal_topic("__consumer_offsets").unwrap());
    assert!(!policy.is_internal_topic("orders").unwrap());
    assert_eq!(policy.errors(), 0);
}

#[test]
fn default_policy_reads_the_separator() {
    let policy = load(
        &builtin("default-policy"),
        &[
            ("replication.policy.separator", "_"),
            (
                "replication.policy.internal.topic.separator.enabled",
                "false",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        policy.format_remote_topic("A", "orders").unwrap(),
        "A_orders"
    );
    assert_eq!(
        policy.topic_source("A_orders").unwrap().as_deref(),
        Some("A")
    );
    assert_eq!(
        policy.offset_syncs_topic("B").unwrap(),
        "mm2-offset-syncs.B.internal"
    );
}

#[test]
fn identity_policy_keeps_names() {
    let policy = load(&builtin("identity-policy"), &[]).unwrap();
    assert_eq!(policy.name(), "builtin:identity-policy");
    assert_eq!(policy.format_remote_topic("A", "orders").unwrap(), "orders");
    assert_eq!(
        policy.format_remote_topic("A", "heartbeats").unwrap(),
        "A.heartbeats"
    );
    assert_eq!(policy.topic_source("orders").unwrap().as_deref(), Some("A"));
    assert_eq!(
        policy.upstream_topic("orders").unwrap().as_deref(),
        Some("orders")
    );
    assert_eq!(
        policy.original_topic("C.B.heartbeats").unwrap(),
        "heartbeats"
    );
}

#[test]
fn cached_answers_do_not_enter_wasm() {
    let policy = load(&builtin("default-policy"), &[]).unwrap();
    assert_eq!(policy.calls(), 1, "init");
    assert_eq!(
        policy.format_remote_topic("A", "orders").unwrap(),
        "A.orders"
    );
    assert_eq!(policy.calls(), 2);
    for _ in 0..10 {
        assert_eq!(
            policy.format_remote_topic("A", "orders").unwrap(),
            "A.orders"
        );
    }
    assert_eq!(policy.calls(), 2);
    assert_eq!(
        policy.format_remote_topic("C", "orders").unwrap(),
        "C.orders"
    );
    assert_eq!(policy.calls(), 3);
    policy.heartbeats_topic().unwrap();
    policy.heartbeats_topic().unwrap();
    policy.topic_source("A.orders").unwrap();
    policy.topic_source("A.orders").unwrap();
    policy.is_internal_topic("A.orders").unwrap();
    policy.is_internal_topic("A.orders").unwrap();
    assert_eq!(policy.calls(), 6);
}

#[test]
fn wrong_world_names_the_missing_export() {
    let error = load(&fixture("wrong_world.wasm"), &[]).unwrap_err();
    assert!(
        matches!(&error, PluginError::WrongWorld { plugin, missing, .. }
            if plugin == "wrong_world.wasm" && missing == "ferry:plugin/replication-policy@0.1.0"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "plugin `wrong_world.wasm` is not a replication policy: it does not export \
         `ferry:plugin/replication-policy@0.1.0`"
    );
    assert!(std::error::Error::source(&error).is_none());
}

#[test]
fn trap_is_an_error_and_the_next_call_works() {
    let policy = load(&fixture("trap_policy.wasm"), &[]).unwrap();
    let error = policy.format_remote_topic("A", "boom-1").unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::Trap {
                function: "format-remote-topic",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        r#"plugin `trap_policy.wasm` trapped in `format-remote-topic("A", "boom-1")`"#
    );
    assert!(std::error::Error::source(&error).is_some());
    assert_eq!(policy.errors(), 1);
    let calls = policy.calls();
    assert_eq!(
        policy.format_remote_topic("A", "orders").unwrap(),
        "A.orders"
    );
    assert_eq!(policy.calls(), calls + 2, "init again, then the call");
    // Errors are not cached: the same input traps again.
    assert!(policy.format_remote_topic("A", "boom-1").is_err());
    assert_eq!(
        policy.topic_source("A.orders").unwrap().as_deref(),
        Some("A")
    );
    assert_eq!(policy.errors(), 2);
}

#[test]
fn infinite_loop_times_out() {
    let policy = load(&fixture("loop_policy.wasm"), &[]).unwrap();
    let started = Instant::now();
    let error = policy.format_remote_topic("A", "orders").unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("loop_policy.wasm timed out after {elapsed:?}");
    assert!(
        matches!(&error, PluginError::Timeout { deadline, .. } if *deadline == Duration::from_secs(1)),
        "{error:?}"
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(
        error.to_string(),
        r#"plugin `loop_policy.wasm` ran longer than 1s in `format-remote-topic("A", "orders")`"#
    );
    assert_eq!(
        policy.topic_source("A.orders").unwrap().as_deref(),
        Some("A")
    );
}

#[test]
fn short_deadline_is_configurable() {
    let engine = Engine::with_options(EngineOptions {
        call_deadline: Duration::from_millis(50),
        pooled_instances: 0,
        ..EngineOptions::default()
    })
    .unwrap();
    let policy = Policy::load(&engine, &fixture("loop_policy.wasm"), &flow_config(&[])).unwrap();
    let started = Instant::now();
    let error = policy.format_remote_topic("A", "orders").unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sleeping_traps_at_once() {
    let policy = load(&fixture("sleep_policy.wasm"), &[]).unwrap();
    let started = Instant::now();
    let error = policy.format_remote_topic("A", "orders").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(error, PluginError::Trap { .. }), "{error:?}");
    let cause = std::error::Error::source(&error).unwrap().to_string();
    assert!(cause.contains("may not block"), "{cause}");
    assert_eq!(
        policy.topic_source("A.orders").unwrap().as_deref(),
        Some("A")
    );
}

#[test]
fn memory_cap_traps() {
    let policy = load(&fixture("memory_hog_policy.wasm"), &[]).unwrap();
    let error = policy.format_remote_topic("A", "orders").unwrap_err();
    assert!(matches!(error, PluginError::Trap { .. }), "{error:?}");
    assert_eq!(
        policy.topic_source("A.orders").unwrap().as_deref(),
        Some("A")
    );
}

#[test]
fn illegal_name_is_an_invalid_answer() {
    let policy = load(&fixture("bad_name_policy.wasm"), &[]).unwrap();
    let error = policy.format_remote_topic("A", "orders").unwrap_err();
    assert!(
        matches!(&error, PluginError::InvalidAnswer { answer, function: "format-remote-topic", .. } if answer == "bad/name"),
        "{error:?}"
    );
    assert!(error.to_string().starts_with(
        r#"plugin `bad_name_policy.wasm` answered `format-remote-topic("A", "orders")` with `bad/name`"#
    ));
    assert_eq!(policy.errors(), 1);
    // The instance is fine; other answers still come.
    assert_eq!(
        policy.topic_source("A.orders").unwrap().as_deref(),
        Some("A")
    );
}

#[test]
fn init_error_carries_the_guest_message() {
    let error = load(&fixture("init_fails_policy.wasm"), &[("k", "v")]).unwrap_err();
    assert!(
        matches!(&error, PluginError::Init { plugin, message }
            if plugin == "init_fails_policy.wasm"
            && message == "init-fails-policy refuses every configuration (config size 3)"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "plugin `init_fails_policy.wasm` refused its configuration: init-fails-policy \
         refuses every configuration (config size 3)"
    );
}

#[test]
fn missing_file_is_not_found() {
    let path = PathBuf::from("/nonexistent/ferry/missing.wasm");
    let error = load(&PluginSource::File(path.clone()), &[]).unwrap_err();
    assert!(
        matches!(&error, PluginError::NotFound { path: found, .. } if *found == path),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "plugin file `/nonexistent/ferry/missing.wasm` not found"
    );
}

#[test]
fn unknown_builtin_lists_the_known_ones() {
    let error = load(&builtin("nope"), &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown builtin plugin `builtin:nope` (known: builtin:default-policy, builtin:identity-policy)"
    );
}

#[test]
fn not_a_component_is_a_compile_error() {
    let path =
        std::env::temp_dir().join(format!("ferry-not-a-component-{}.wasm", std::process::id()));
    std::fs::write(&path, b"\0asm not really").unwrap();
    let error = load(&PluginSource::File(path.clone()), &[]).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(error, PluginError::Compile { .. }), "{error:?}");
}

#[test]
fn policy_and_engine_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<Engine>();
}

/// Prints the cold load time (fresh engine: compile, instantiate, init) and the cost of an
/// uncached and a cached call; run with `--release -- --nocapture` for meaningful numbers.
#[test]
fn measures_load_and_call_cost() {
    let engine = Engine::new().unwrap();
    let started = Instant::now();
    let policy = Policy::load(&engine, &builtin("default-policy"), &flow_config(&[])).unwrap();
    let cold = started.elapsed();
    let started = Instant::now();
    let again = Policy::load(&engine, &builtin("default-policy"), &flow_config(&[])).unwrap();
    let warm = started.elapsed();
    drop(again);

    let topics: Vec<String> = (0..2000).map(|index| format!("topic-{index}")).collect();
    let started = Instant::now();
    for topic in &topics {
        policy.format_remote_topic("A", topic).unwrap();
    }
    let uncached = started.elapsed() / 2000;
    let started = Instant::now();
    for topic in &topics {
        policy.format_remote_topic("A", topic).unwrap();
    }
    let cached = started.elapsed() / 2000;
    eprintln!(
        "default-policy: cold load {cold:?}, load of compiled component {warm:?}, \
         uncached format-remote-topic {uncached:?}/call, cached {cached:?}/call"
    );
    assert_eq!(policy.calls(), 2001);
}
