//! Ferry configuration files for the test clusters: [`ConfigBuilder`] writes the TOML that a
//! `ferry run --config` process reads.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::clusters::{chaos_clusters, clusters, sasl_clusters};
use super::unique::TempDir;

/// Builds a config file for the test clusters.
pub struct ConfigBuilder {
    text: String,
}

impl ConfigBuilder {
    /// Clusters `clusterA` and `clusterB` of this run's SASL pair, as user `ferry`.
    pub fn sasl() -> ConfigBuilder {
        let clusters = sasl_clusters();
        let mut text = String::new();
        for (name, bootstrap) in [("clusterA", &clusters.a), ("clusterB", &clusters.b)] {
            writeln!(
                text,
                "[clusters.{name}]\nbootstrap_servers = \"{bootstrap}\"\n\
                 security_protocol = \"SASL_PLAINTEXT\"\n\
                 sasl = {{ mechanism = \"PLAIN\", username = \"ferry\", password = \"ferry-secret\" }}\n"
            )
            .unwrap();
        }
        ConfigBuilder { text }
    }

    /// Clusters `clusterA` and `clusterB` of this run.
    pub fn new() -> ConfigBuilder {
        let clusters = clusters();
        ConfigBuilder::plaintext(&clusters.a, &clusters.b)
    }

    /// A file with no cluster yet (for clusters other than the plaintext pairs).
    pub fn empty() -> ConfigBuilder {
        ConfigBuilder {
            text: String::new(),
        }
    }

    /// Clusters `clusterA` and `clusterB` of this run's chaos pair (a 3-broker target).
    pub fn chaos() -> ConfigBuilder {
        let clusters = chaos_clusters();
        ConfigBuilder::plaintext(&clusters.a, &clusters.b)
    }

    fn plaintext(a: &str, b: &str) -> ConfigBuilder {
        let text = format!(
            "[clusters.clusterA]\nbootstrap_servers = \"{a}\"\n\n\
             [clusters.clusterB]\nbootstrap_servers = \"{b}\"\n\n"
        );
        ConfigBuilder { text }
    }

    /// Adds a cluster alias for `bootstrap`.
    pub fn cluster(mut self, name: &str, bootstrap: &str) -> ConfigBuilder {
        writeln!(
            self.text,
            "[clusters.{name}]\nbootstrap_servers = \"{bootstrap}\"\n"
        )
        .unwrap();
        self
    }

    /// Adds a flow; `extra` is TOML lines inside the `[[flows]]` table.
    ///
    /// Tests share two physical clusters under many aliases. Heartbeat topics bypass the topic
    /// filter, so flows between aliases other than the suite's `clusterA`/`clusterB` would
    /// mirror each other's heartbeat topics round and round (what MM2 does with inconsistent
    /// aliases, KAFKA-9914); such flows get `heartbeats_replication = false` unless `extra`
    /// sets it. Positions are stored every 500 ms unless `extra` sets `commit_interval`.
    pub fn flow(mut self, source: &str, target: &str, group: &str, extra: &str) -> ConfigBuilder {
        let standard = |alias: &str| alias == "clusterA" || alias == "clusterB";
        let consistent = standard(source) && standard(target);
        let heartbeats = if consistent || extra.contains("heartbeats_replication") {
            ""
        } else {
            "heartbeats_replication = false\n"
        };
        let replication = if extra.contains("replication_factor") {
            ""
        } else {
            "replication_factor = 1\n"
        };
        let commit_interval = if extra.contains("commit_interval") {
            ""
        } else {
            "commit_interval = \"500ms\"\n"
        };
        writeln!(
            self.text,
            "[[flows]]\nsource = \"{source}\"\ntarget = \"{target}\"\ngroup_id = \"{group}\"\n\
             {replication}refresh_topics_interval = \"1s\"\n{commit_interval}\
             {heartbeats}{extra}\n"
        )
        .unwrap();
        self
    }

    /// Adds TOML text as is (e.g. a client-role table of a cluster).
    pub fn raw(mut self, text: &str) -> ConfigBuilder {
        writeln!(self.text, "{text}").unwrap();
        self
    }

    /// Writes the file into `dir`.
    pub fn write(&self, dir: &TempDir) -> PathBuf {
        let path = dir.0.join("ferry.toml");
        std::fs::write(&path, &self.text).unwrap();
        path
    }
}
