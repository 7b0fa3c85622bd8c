//! A cluster's client settings: `bootstrap.servers` and `security.protocol` from
//! `<alias>.<key>`, else the top-level key, then its SASL settings ([`super::sasl`]), TLS
//! settings ([`super::tls`]) and per-role client keys ([`super::roles`]), read into a
//! [`Cluster`].
//!
//! This module owns which security protocols an MM2 file may use with Ferry, and the reasons
//! given for the SASL and TLS keys of a cluster whose protocol uses neither.

use std::collections::BTreeMap;

use super::Resolver;
use crate::config::{Cluster, ClusterName, SecurityProtocol};

impl Resolver<'_> {
    /// The cluster `alias`, used by the enabled `flows` (`(source, target)` pairs); `None` when
    /// one of its settings is wrong (reported).
    pub(super) fn cluster(&mut self, alias: &str, flows: &[(String, String)]) -> Option<Cluster> {
        let name = ClusterName::new(alias).ok()?;
        let bootstrap_servers = match self.client_key(alias, "bootstrap.servers") {
            Some((key, value)) if value.is_empty() => {
                self.report(&key, "must not be empty");
                None
            }
            // A Kafka list: entries trimmed, joined as librdkafka expects.
            Some((_, value)) => Some(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|server| !server.is_empty())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            None => {
                self.report(
                    &format!("{alias}.bootstrap.servers"),
                    format!("missing: cluster `{alias}` is used by an enabled flow"),
                );
                None
            }
        };
        let (protocol_key, protocol_value) = self
            .client_key(alias, "security.protocol")
            .unwrap_or_else(|| (format!("{alias}.security.protocol"), "PLAINTEXT".to_owned()));
        let security_protocol = SecurityProtocol::from_name(&protocol_value);
        if security_protocol.is_none() {
            self.report(
                &protocol_key,
                format!(
                    "unknown security protocol `{protocol_value}` (expected one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
                ),
            );
        }
        let mut librdkafka = BTreeMap::new();
        let sasl = match security_protocol {
            Some(protocol) if protocol.is_sasl() => {
                self.sasl(alias, &protocol_key, &mut librdkafka)
            }
            _ => {
                self.skip_cluster_keys(
                    alias,
                    "sasl.",
                    "the cluster's security.protocol is not SASL",
                );
                Some(None)
            }
        };
        let ssl = match security_protocol {
            Some(protocol) if protocol.is_tls() => self.tls(alias, &mut librdkafka),
            _ => {
                self.skip_cluster_keys(
                    alias,
                    "ssl.",
                    "the cluster's security.protocol does not use TLS",
                );
                Some(None)
            }
        };
        let [consumer, producer, admin] = self.roles(alias, flows)?;
        Some(Cluster {
            name,
            bootstrap_servers: bootstrap_servers?,
            security_protocol: security_protocol?,
            sasl: sasl?,
            ssl: ssl?,
            librdkafka,
            consumer,
            producer,
            admin,
        })
    }

    /// Gives `reason` to every `<alias>.<prefix>*` key (not the top-level defaults, which
    /// another cluster may use).
    fn skip_cluster_keys(&mut self, alias: &str, prefix: &str, reason: &'static str) {
        let prefix = format!("{alias}.{prefix}");
        let keys: Vec<String> = self
            .props
            .keys()
            .filter(|key| key.starts_with(&prefix))
            .cloned()
            .collect();
        for key in keys {
            self.skip(&key, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::mm2::tests::{APPENDIX_A, errors};

    #[test]
    fn appendix_a_verbatim_needs_sasl_credentials() {
        let text = APPENDIX_A
            .lines()
            .filter(|line| !line.starts_with("sasl."))
            .collect::<Vec<_>>()
            .join("\n");
        let errors = errors(&text);
        assert!(
            errors
                .iter()
                .all(|error| error.key == "security.protocol" && error.line == Some(4))
        );
        assert!(errors.iter().any(|error| error.message.contains("GSSAPI")));
    }
}
