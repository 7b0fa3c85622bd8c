//! How `ferry` writes to stderr: `--log-format json` makes every line one JSON object.

use std::process::{Command, Stdio};

use crate::support::TempDir;

/// Runs `ferry <args>` at log level info and returns (exit code, stderr lines).
fn ferry(args: &[&str]) -> (i32, Vec<String>) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("FERRY_LOG_FORMAT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        stderr.lines().map(str::to_owned).collect(),
    )
}

/// Every line parsed as a JSON object with a string `level` and `message`.
fn json_lines(lines: &[String]) -> Vec<(String, String)> {
    assert!(!lines.is_empty(), "nothing was logged");
    lines
        .iter()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
            let field = |name: &str| {
                value[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("no string `{name}` in {line}"))
                    .to_owned()
            };
            assert!(value["timestamp"].is_string(), "no timestamp in {line}");
            (field("level"), field("message"))
        })
        .collect()
}

fn write_config(dir: &TempDir, flow_extra: &str) -> String {
    let path = dir.0.join("ferry.toml");
    let text = format!(
        "[clusters.a]\nbootstrap_servers = \"127.0.0.1:1\"\n\n\
         [clusters.b]\nbootstrap_servers = \"127.0.0.1:2\"\n\n\
         [[flows]]\nsource = \"a\"\ntarget = \"b\"\n{flow_extra}"
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A valid file, offline: the engine's log lines and the result of `validate` are all JSON.
#[test]
fn json_log_format_of_a_valid_file() {
    let dir = TempDir::new("log-json");
    let config = write_config(&dir, "");
    let (code, lines) = ferry(&[
        "validate",
        "--offline",
        "--no-plugin-cache",
        "--log-format",
        "json",
        "--config",
        &config,
    ]);
    assert_eq!(code, 0, "{lines:#?}");
    let events = json_lines(&lines);
    assert!(
        events
            .iter()
            .any(|(level, message)| level == "INFO" && message.contains("valid (2 clusters")),
        "the result of validate is not an INFO event: {events:#?}"
    );
}

/// An invalid file: each problem is an ERROR event instead of an `error:` line, and the
/// flag also works before the subcommand.
#[test]
fn json_log_format_of_problems() {
    let dir = TempDir::new("log-json-bad");
    let config = write_config(&dir, "tasks = \"eight\"\ntopcis = []\n");
    let (code, lines) = ferry(&["--log-format", "json", "run", "--config", &config]);
    assert_eq!(code, 2, "{lines:#?}");
    let events = json_lines(&lines);
    let errors: Vec<&str> = events
        .iter()
        .filter(|(level, _)| level == "ERROR")
        .map(|(_, message)| message.as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{events:#?}");
    assert!(errors[0].contains(":10: flows[0].tasks"), "{errors:#?}");
    assert!(errors[1].contains(":11: flows[0].topcis"), "{errors:#?}");
}

/// The default stays text: the same invalid file gives `error:` lines, not JSON.
#[test]
fn text_log_format_is_the_default() {
    let dir = TempDir::new("log-text");
    let config = write_config(&dir, "tasks = \"eight\"\n");
    let (code, lines) = ferry(&["validate", "--config", &config]);
    assert_eq!(code, 2, "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("error: "), "{lines:#?}");
    assert!(serde_json::from_str::<serde_json::Value>(&lines[0]).is_err());
}
