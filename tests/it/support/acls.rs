//! ACLs on the SASL clusters, listed, added and removed with Kafka's `acls` CLI tool as the super
//! user `admin` (rdkafka has no ACL admin calls), and the runner of those CLI tools.

use std::path::Path;
use std::process::{Command, Stdio};

use super::clusters::sasl_clusters;

/// Runs `scripts/kafka-local tool <args>` (a Kafka 3.8.1 CLI tool) and returns its stdout;
/// panics with its output when it fails.
pub fn kafka_tool(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-local");
    let output = Command::new(script)
        .arg("tool")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kafka-local tool {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// One ACL binding as the `acls` tool lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Acl {
    /// `TOPIC`, `GROUP`, ...
    pub resource_type: String,
    pub name: String,
    /// `LITERAL` or `PREFIXED`.
    pub pattern: String,
    pub principal: String,
    pub host: String,
    /// `READ`, `WRITE`, `ALL`, ...
    pub operation: String,
    /// `ALLOW` or `DENY`.
    pub permission: String,
}

/// Every ACL of the SASL cluster at `bootstrap`, listed with the `acls` tool as `admin`.
pub fn acls(bootstrap: &str) -> Vec<Acl> {
    let properties = sasl_clusters()
        .admin_properties
        .to_string_lossy()
        .into_owned();
    let output = kafka_tool(&[
        "acls",
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        &properties,
        "--list",
    ]);
    parse_acls(&output)
}

/// Parses `AclCommand --list` output:
/// ```text
/// Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`:
///     (principal=User:alice, host=*, operation=READ, permissionType=ALLOW)
/// ```
fn parse_acls(output: &str) -> Vec<Acl> {
    let field = |text: &str, key: &str| -> String {
        text.split(&format!("{key}="))
            .nth(1)
            .and_then(|rest| rest.split([',', ')']).next())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut acls = Vec::new();
    let mut resource: Option<(String, String, String)> = None;
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("Current ACLs for resource") {
            resource = Some((
                field(line, "resourceType"),
                field(line, "name"),
                field(line, "patternType"),
            ));
        } else if line.starts_with("(principal=") {
            let (resource_type, name, pattern) = resource.clone().unwrap();
            acls.push(Acl {
                resource_type,
                name,
                pattern,
                principal: field(line, "principal"),
                host: field(line, "host"),
                operation: field(line, "operation"),
                permission: field(line, "permissionType"),
            });
        }
    }
    acls.sort();
    acls
}

/// Adds (or with `--remove --force`, removes) ACLs on the SASL cluster at `bootstrap` as
/// `admin`: `args` are the `acls` tool's arguments after the connection options.
pub fn acl_command(bootstrap: &str, args: &[&str]) {
    let properties = sasl_clusters()
        .admin_properties
        .to_string_lossy()
        .into_owned();
    let mut all = vec![
        "acls",
        "--bootstrap-server",
        bootstrap,
        "--command-config",
        &properties,
    ];
    all.extend_from_slice(args);
    kafka_tool(&all);
}
