//! MirrorMaker 2's configuration file (`ferry run --mm2 connect-mirror-maker.properties`).
//!
//! This module owns reading MM2 3.8's `.properties` format and resolving it into Ferry's
//! validated [`Config`], following MM2's own rules (`MirrorMakerConfig`):
//!
//! 1. The file is read with `java.util.Properties#load` semantics: `#`/`!` comment lines,
//!    `=`, `:` or whitespace between key and value, trailing-backslash continuation lines and
//!    the `\t \n \r \f \uXXXX \\` escapes. A later duplicate key wins, as in Java. Unlike Java,
//!    which reads the file as ISO-8859-1, the text is taken as UTF-8. As in Java, `#` in the
//!    middle of a line is part of the value, not a comment.
//! 2. `clusters` lists the aliases. Keys are top-level, `<alias>.<key>` (cluster keys) or
//!    `<source>-><target>.<key>` (flow keys).
//! 2. Config providers (`config.providers`, with Kafka's file, env and directory providers)
//!    replace every `${provider:path:key}` reference in a value, as MM2 does before reading it.
//! 3. `clusters` lists the aliases. Keys are top-level, `<alias>.<key>` (cluster keys) or
//!    `<source>-><target>.<key>` (flow keys).
//! 4. Each cluster takes its client keys (`bootstrap.servers`, `security.protocol`, `sasl.*`,
//!    `ssl.*`) from `<alias>.<key>`, else from the top-level key: PLAIN, SCRAM and OAUTHBEARER
//!    (OIDC client credentials) SASL, PEM and PKCS12 stores. Its `<alias>.consumer.*`,
//!    `<alias>.producer.*` and `<alias>.admin.*` keys, and the `<source>-><target>.consumer.*`
//!    (`producer.*`, `admin.*`) keys of the enabled flows using it, become the librdkafka
//!    properties of the cluster's `consumer`, `producer` and `admin` tables, through one table
//!    of Java keys (`clients`).
//! 5. Each flow takes its connector keys from the top level, overridden by
//!    `<source>-><target>.<key>`; its commit interval comes from the Connect worker key
//!    `<target>.offset.flush.interval.ms`. MM2's defaults apply (`replication.factor` 2,
//!    `tasks.max` 1, `refresh.topics.interval.seconds` 600, `offset.flush.interval.ms` 60000).
//!
//! Every key that Ferry does not use is returned as an [`UnusedKey`] with the reason, never
//! silently dropped; every bad value is a [`ConfigError`](super::ConfigError) naming the key and its line, and all
//! of them are collected before returning. No message quotes a secret, nor anything a config
//! provider substituted.
//!
//! The work is split by concept: `properties` lexes the file (rule 1), `providers` substitutes
//! references (rule 2), `resolve` turns the properties into the [`Config`] (rules 3 to 5, with
//! `jaas` for `sasl.jaas.config` and `clients` for the Java client keys), and `unused` gives
//! the reason for every key left over.

mod clients;
mod jaas;
mod properties;
mod providers;
mod resolve;
mod unused;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use self::properties::parse_properties;
use self::resolve::Resolver;
use self::unused::unused_keys;
use super::interpolate::{self, Env};
use super::{Checked, Config, ConfigErrors};

/// A key of the MM2 file that Ferry does not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedKey {
    /// The key as written (after escapes are processed).
    pub key: String,
    /// The 1-based line where the key's (last) definition starts.
    pub line: usize,
    /// Why Ferry does not use it, lowercase, without a trailing period.
    pub reason: &'static str,
}

impl fmt::Display for UnusedKey {
    /// `line <line>: <key>: <reason>`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}: {}: {}",
            self.line, self.key, self.reason
        )
    }
}

/// Reads the MM2 properties file at `path` and resolves it as MM2 3.8 does.
///
/// # Errors
///
/// Returns every problem found: an unreadable file, malformed escapes, unknown cluster
/// aliases, invalid values, and a file in which no flow is enabled.
pub fn load_mm2(path: &Path) -> Result<(Config, Vec<UnusedKey>), ConfigErrors> {
    let (checked, unused) = check_mm2(path);
    checked.into_result().map(|config| (config, unused))
}

/// Reads the MM2 properties file at `path`, as [`load_mm2`] does, and also returns the
/// clusters and flows that resolved when others did not, so that a caller can check their
/// plugins in the same run. The keys Ferry does not use are listed only for a valid file.
pub fn check_mm2(path: &Path) -> (Checked, Vec<UnusedKey>) {
    match std::fs::read_to_string(path) {
        Ok(text) => check_mm2_with_env(&text, path, &interpolate::process_env),
        Err(error) => (
            Checked::unreadable(
                path,
                &format!("cannot read the mm2 properties file: {error}"),
            ),
            Vec::new(),
        ),
    }
}

/// Resolves MM2 properties `text`, read from `origin` (which names the file in messages), into
/// Ferry's configuration and the keys Ferry does not use, ordered by line.
///
/// Only flows whose MM2 source connector would be enabled become [`Flow`](super::Flow)s (all
/// with `enabled: true`). MM2 also starts a Connect herder for every pair that emits heartbeats
/// (`emit.heartbeats.enabled`, default true), even when `A->B.enabled` is false; Ferry does not
/// run such heartbeat-only pairs. Only clusters used by an enabled flow are in
/// [`Config::clusters`]. Each flow's consumer group is `ferry.<source>-<target>` (MM2's Connect
/// group is `<source>-mm2`, set by `<target>.group.id`; Ferry keeps its groups apart from MM2's
/// so both can run during a migration), and its `max_in_flight` is Ferry's default, 10000.
///
/// # Errors
///
/// Returns every problem found, as [`load_mm2`] does.
pub fn parse_mm2(text: &str, origin: &Path) -> Result<(Config, Vec<UnusedKey>), ConfigErrors> {
    parse_mm2_with_env(text, origin, &interpolate::process_env)
}

/// [`parse_mm2`] with an injectable environment for `${env:VAR}` (tests cannot set process
/// variables safely).
pub(crate) fn parse_mm2_with_env(
    text: &str,
    origin: &Path,
    env: Env<'_>,
) -> Result<(Config, Vec<UnusedKey>), ConfigErrors> {
    let (checked, unused) = check_mm2_with_env(text, origin, env);
    checked.into_result().map(|config| (config, unused))
}

/// [`check_mm2`] on `text` read from `origin`, with an injectable environment.
fn check_mm2_with_env(text: &str, origin: &Path, env: Env<'_>) -> (Checked, Vec<UnusedKey>) {
    let (mut props, mut errors) = parse_properties(text);
    let provided = providers::substitute(&mut props, env, &mut errors);
    let mut resolver = Resolver::new(&props, &provided.values);
    resolver.used.extend(provided.used.iter().cloned());
    let resolved = resolver.resolve(origin);
    errors.append(&mut resolver.errors);
    errors.sort_by_key(|error| (error.line.unwrap_or(usize::MAX), error.key.clone()));
    let (config, unused) = match resolved {
        Some((config, clusters_used, flows_enabled)) => {
            let unused = if errors.is_empty() {
                unused_keys(
                    &props,
                    &resolver.used,
                    &resolver.reasons,
                    &clusters_used,
                    &flows_enabled,
                )
            } else {
                Vec::new()
            };
            (config, unused)
        }
        None => (
            Config {
                path: origin.to_path_buf(),
                clusters: BTreeMap::new(),
                flows: Vec::new(),
            },
            Vec::new(),
        ),
    };
    let checked = Checked {
        config,
        errors: ConfigErrors {
            file: origin.to_path_buf(),
            errors,
        },
    };
    (checked, unused)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::{
        ClientRole, ClusterName, ConfigError, PluginSource, SaslMechanism, SecurityProtocol,
    };

    /// The test environment of `${env:VAR}`.
    pub(super) fn env(name: &str) -> Option<String> {
        match name {
            "SCRAM_PASSWORD" => Some("env-s3cret".to_owned()),
            _ => None,
        }
    }

    pub(super) fn resolve(text: &str) -> (Config, Vec<UnusedKey>) {
        match parse_mm2_with_env(text, Path::new("mm2.properties"), &env) {
            Ok(resolved) => resolved,
            Err(errors) => panic!("{errors}"),
        }
    }

    pub(super) fn errors(text: &str) -> Vec<ConfigError> {
        match parse_mm2_with_env(text, Path::new("mm2.properties"), &env) {
            Ok((config, _)) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors.errors,
        }
    }

    pub(super) fn reason<'u>(unused: &'u [UnusedKey], key: &str) -> Option<&'u UnusedKey> {
        unused.iter().find(|unused| unused.key == key)
    }

    /// A typical dedicated-mode MM2 file (named after the appendix of the MM2 notes it was taken
    /// from, which are not in this repository), with its end-of-line annotations removed (Java
    /// has no end-of-line comments) and SASL credentials added as top-level defaults (`SASL_SSL`
    /// needs them in Ferry).
    pub(super) const APPENDIX_A: &str = "\
clusters = A, B
A.bootstrap.servers = a1:9092
B.bootstrap.servers = b1:9092
security.protocol = SASL_SSL
sasl.mechanism = SCRAM-SHA-512
sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"mm2\" password=\"s3cret\";
A.consumer.isolation.level = read_committed
B.producer.compression.type = zstd
B.exactly.once.source.support = enabled
tasks.max = 8
consumer.max.poll.records = 2000
A->B.enabled = true
A->B.topics = orders.*, payments
A->B.exactly.once.support = required
offset.storage.replication.factor = 3
dedicated.mode.enable.internal.rest = true
listeners = http://0.0.0.0:8083
";

    #[test]
    fn appendix_a_resolves_as_mm2() {
        let (config, unused) = resolve(APPENDIX_A);
        assert_eq!(config.flows.len(), 1, "B->A is heartbeat-only");
        let flow = &config.flows[0];
        assert_eq!(flow.id.as_str(), "A->B");
        assert!(flow.enabled);
        assert_eq!(flow.tasks, 8);
        assert_eq!(flow.replication_factor, 2);
        assert_eq!(flow.refresh_topics_interval, Duration::from_secs(600));
        assert_eq!(flow.commit_interval, Duration::from_secs(60));
        assert!(flow.exactly_once, "exactly.once.source.support = enabled");
        assert!(flow.topics.matches("orders.eu") && flow.topics.matches("payments"));
        assert!(!flow.topics.matches("payments2"));
        assert!(flow.topics_exclude.matches("mm2-offsets.A.internal"));
        assert!(flow.topics_exclude.matches("__consumer_offsets"));
        assert_eq!(
            flow.policy.uses,
            PluginSource::Builtin("default-policy".to_owned())
        );
        assert!(flow.heartbeats_replication);
        assert_eq!(flow.group_id, "ferry.A-B");
        for alias in ["A", "B"] {
            let cluster = &config.clusters[&ClusterName::new(alias).unwrap()];
            assert_eq!(cluster.security_protocol, SecurityProtocol::SaslSsl);
            let sasl = cluster.sasl.as_ref().unwrap();
            assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
            assert_eq!(sasl.username, "mm2");
            assert_eq!(sasl.password.expose(), "s3cret");
        }
        assert_eq!(
            config.clusters[&ClusterName::new("A").unwrap()].bootstrap_servers,
            "a1:9092"
        );
        let keys: Vec<&str> = unused.iter().map(|unused| unused.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "consumer.max.poll.records",
                "offset.storage.replication.factor",
                "dedicated.mode.enable.internal.rest",
                "listeners",
            ]
        );
        // The per-role client keys reach their cluster's role tables.
        let role = |alias: &str, role: ClientRole| {
            config.clusters[&ClusterName::new(alias).unwrap()]
                .role_properties(role)
                .clone()
                .into_iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            role("A", ClientRole::Consumer),
            [("isolation.level".to_owned(), "read_committed".to_owned())]
        );
        assert_eq!(
            role("B", ClientRole::Producer),
            [("compression.type".to_owned(), "zstd".to_owned())]
        );
        let top = reason(&unused, "consumer.max.poll.records").unwrap();
        assert_eq!(top.line, 11);
        assert!(top.reason.contains("mm2 ignores"), "{top}");
    }

    /// The operator file of issue 3, shipped as an example (4 comment lines, then the file).
    const ISSUE_3: &str = include_str!("../../../../examples/connect-mirror-maker.properties");

    #[test]
    fn issue_3_operator_file() {
        let (config, unused) = resolve(ISSUE_3);
        assert_eq!(config.flows.len(), 1);
        let flow = &config.flows[0];
        assert_eq!(flow.id.as_str(), "clusterA->clusterB");
        assert_eq!(flow.tasks, 8);
        assert_eq!(flow.replication_factor, 3);
        assert_eq!(flow.refresh_topics_interval, Duration::from_secs(300));
        assert!(flow.topics.matches("prod.orders.global"));
        assert!(!flow.topics.matches("dev.orders.global"));
        assert!(flow.topics_exclude.matches("clusterA.heartbeats"));
        assert!(!flow.topics_exclude.matches("prod.orders.global"));
        assert_eq!(flow.group_id, "ferry.clusterA-clusterB");
        assert_eq!(config.clusters.len(), 2);
        assert_eq!(
            config.clusters[&ClusterName::new("clusterA").unwrap()].bootstrap_servers,
            "brokerA-1:9092,brokerA-2:9092,brokerA-3:9092"
        );
        for cluster in config.clusters.values() {
            assert_eq!(cluster.security_protocol, SecurityProtocol::SaslPlaintext);
            let sasl = cluster.sasl.as_ref().unwrap();
            assert_eq!(sasl.mechanism, SaslMechanism::Plain);
            assert_eq!(sasl.username, "your_user");
            assert_eq!(sasl.password.expose(), "your_password");
            assert!(!format!("{cluster:?}").contains("your_password"));
        }
        // The MM2 features the file turns on.
        assert_eq!(
            flow.positions_topic,
            "mm2-offset.from-clusterA-to-clusterB.internal"
        );
        assert_eq!(flow.emit_checkpoints, Some(Duration::from_secs(60)));
        assert_eq!(flow.emit_heartbeats, Some(Duration::from_secs(1)));
        assert!(flow.emit_offset_syncs);
        assert!(!flow.offset_syncs_on_target);
        assert_eq!(flow.offset_lag_max, 100);
        assert_eq!(flow.sync_group_offsets, Some(Duration::from_secs(60)));
        assert_eq!(flow.sync_topic_acls, Some(Duration::from_secs(300)));
        assert_eq!(flow.sync_topic_configs, Some(Duration::from_secs(600)));
        assert!(flow.groups.matches("produser_consumer_1"));
        assert!(!flow.groups.matches("other"));
        assert!(flow.groups_exclude.matches("console-consumer-1"));
        assert!(
            flow.config_properties_exclude
                .matches("min.insync.replicas")
        );
        assert!(!flow.config_properties_exclude.matches("retention.ms"));
        assert_eq!(
            (
                flow.heartbeats_replication_factor,
                flow.checkpoints_replication_factor,
                flow.offset_syncs_replication_factor
            ),
            (3, 3, 3)
        );
        let storage = reason(&unused, "config.storage.topic").unwrap();
        assert_eq!(storage.line, 26);
        assert!(storage.reason.contains("Connect internal topic"));
        let refresh = reason(
            &unused,
            "clusterA->clusterB.refresh.groups.interval.seconds",
        )
        .unwrap();
        assert!(refresh.reason.contains("every checkpoint"), "{refresh}");
        for key in [
            "clusterA.group.id",
            "name",
            "source.cluster.alias",
            "offset.storage.replication.factor",
        ] {
            assert!(reason(&unused, key).is_some(), "{key} is not reported");
        }
        for key in [
            "tasks.max",
            "clusterA->clusterB.topics",
            "clusterB->clusterA.enabled",
            "clusterA.sasl.jaas.config",
            "clusterA->clusterB.refresh.topics.interval.seconds",
            "clusterA->clusterB.groups",
            "clusterA->clusterB.sync.topic.acls.enabled",
            "clusterA->clusterB.sync.topic.acls.interval.seconds",
            "clusterA->clusterB.sync.group.offsets.enabled",
            "clusterA->clusterB.emit.checkpoints.enabled",
            "clusterA->clusterB.emit.offset-syncs.enabled",
            "checkpoints.topic.replication.factor",
            "heartbeats.topic.replication.factor",
            "offset-syncs.topic.replication.factor",
            "offset.storage.topic",
        ] {
            assert!(reason(&unused, key).is_none(), "{key} is used");
        }
        // Every key is either used or reported.
        assert!(unused.windows(2).all(|pair| pair[0].line < pair[1].line));
        assert_eq!(
            unused[0].to_string(),
            "line 6: clusterA.group.id: a Connect worker group; ferry's flow group is `ferry.<source>-<target>`"
        );
    }

    /// Issue 13: the operator's file with TLS added (SASL_SSL with SCRAM-SHA-512 and a PEM trust
    /// store on clusterA) resolves, unchanged otherwise, to the librdkafka settings of a
    /// SASL_SSL listener, for every client role.
    #[test]
    fn issue_13_operator_file_with_sasl_ssl() {
        let text = ISSUE_3
            .replace(
                "clusterA.sasl.mechanism=PLAIN",
                "clusterA.sasl.mechanism=SCRAM-SHA-512",
            )
            .replace(
                "clusterA.security.protocol=SASL_PLAINTEXT",
                "clusterA.security.protocol=SASL_SSL\nclusterA.ssl.truststore.location=/path/ca.pem\nclusterA.ssl.truststore.type=PEM",
            )
            .replace(
                "clusterA.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule",
                "clusterA.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule",
            );
        let (config, unused) = resolve(&text);
        let cluster = &config.clusters[&ClusterName::new("clusterA").unwrap()];
        for role in ClientRole::ALL {
            let client = cluster.client_config(role);
            let expected = [
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "your_user"),
                ("sasl.password", "your_password"),
                ("ssl.ca.location", "/path/ca.pem"),
            ];
            for (key, value) in expected {
                assert_eq!(client.get(key), Some(value), "{role} {key}");
            }
            client.create_native_config().unwrap();
        }
        let plain = config.clusters[&ClusterName::new("clusterB").unwrap()]
            .client_config(ClientRole::Consumer);
        assert_eq!(plain.get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(plain.get("ssl.ca.location"), None);
        for key in [
            "clusterA.ssl.truststore.location",
            "clusterA.ssl.truststore.type",
        ] {
            assert!(reason(&unused, key).is_none(), "{key} is used");
        }
    }

    /// Issue 13: config providers replace `${env:...}` and `${file:...}` before resolution, and
    /// a value that came from a provider is masked in messages.
    #[test]
    fn issue_13_config_providers() {
        let dir = std::env::temp_dir().join(format!("ferry-mm2-providers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secrets = dir.join("mm2-secrets.properties");
        std::fs::write(&secrets, "user = mm2\n").unwrap();
        let base = format!(
            "config.providers = env, file\n\
             config.providers.env.class = org.apache.kafka.common.config.provider.EnvVarConfigProvider\n\
             config.providers.file.class = org.apache.kafka.common.config.provider.FileConfigProvider\n\
             clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\n\
             A.security.protocol = SASL_PLAINTEXT\nA.sasl.mechanism = SCRAM-SHA-256\n\
             A.sasl.jaas.config = org.apache.kafka.common.security.scram.ScramLoginModule required username=\"${{file:{}:user}}\" password=\"${{env:SCRAM_PASSWORD}}\";\n",
            secrets.display()
        );
        let (config, unused) = resolve(&base);
        let sasl = config.clusters[&ClusterName::new("A").unwrap()]
            .sasl
            .clone()
            .unwrap();
        assert_eq!(sasl.username, "mm2");
        assert_eq!(sasl.password.expose(), "env-s3cret");
        assert!(
            unused
                .iter()
                .all(|unused| !unused.key.starts_with("config.providers")),
            "{unused:?}"
        );
        let found = errors(&format!("{base}A->B.tasks.max = ${{env:SCRAM_PASSWORD}}\n"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "A->B.tasks.max");
        assert_eq!(found[0].line, Some(11));
        assert_eq!(found[0].message, "expected an integer, not `***`");
    }
}
