//! A cluster's client settings: `bootstrap.servers`, `security.protocol`, `sasl.mechanism` and
//! `sasl.jaas.config`, from `<alias>.<key>`, else the top-level key, read into a [`Cluster`].
//!
//! This module owns which security protocols and SASL mechanisms an MM2 file may use with
//! Ferry, and the check that the JAAS login module matches the mechanism.

use std::collections::BTreeMap;

use super::Resolver;
use crate::config::mm2::jaas::{PLAIN_LOGIN_MODULE, SCRAM_LOGIN_MODULE, parse_jaas};
use crate::config::{Cluster, ClusterName, Sasl, SaslMechanism, SecurityProtocol, Sensitive};

impl Resolver<'_> {
    pub(super) fn cluster(&mut self, alias: &str) -> Option<Cluster> {
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
        let sasl = match security_protocol {
            Some(protocol) if protocol.is_sasl() => Some(self.sasl(alias, &protocol_key)),
            _ => None,
        };
        let sasl = match sasl {
            Some(None) => return None,
            Some(Some(sasl)) => Some(sasl),
            None => None,
        };
        Some(Cluster {
            name,
            bootstrap_servers: bootstrap_servers?,
            security_protocol: security_protocol?,
            sasl,
            ssl: None,
            librdkafka: BTreeMap::new(),
        })
    }

    fn sasl(&mut self, alias: &str, protocol_key: &str) -> Option<Sasl> {
        let mechanism = match self.client_key(alias, "sasl.mechanism") {
            Some((key, value)) => {
                let mechanism = SaslMechanism::from_name(&value);
                if mechanism.is_none() {
                    self.report(
                        &key,
                        format!(
                            "unsupported SASL mechanism `{value}` (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                        ),
                    );
                }
                mechanism
            }
            None => {
                self.report(
                    protocol_key,
                    format!(
                        "`{alias}.sasl.mechanism` is missing, and kafka's default GSSAPI is not supported (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                    ),
                );
                None
            }
        };
        let Some((jaas_key, jaas_value)) = self.client_key(alias, "sasl.jaas.config") else {
            self.report(
                protocol_key,
                format!(
                    "a SASL protocol needs `{alias}.sasl.jaas.config` with a username and password"
                ),
            );
            return None;
        };
        let jaas = parse_jaas(&jaas_value)
            .map_err(|message| self.report(&jaas_key, message))
            .ok()?;
        let mechanism = mechanism?;
        let expected_module = match mechanism {
            SaslMechanism::Plain => PLAIN_LOGIN_MODULE,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => SCRAM_LOGIN_MODULE,
        };
        if jaas.module != expected_module {
            self.report(
                &jaas_key,
                format!(
                    "login module `{}` does not match sasl.mechanism {mechanism} (expected {expected_module})",
                    jaas.module
                ),
            );
            return None;
        }
        Some(Sasl {
            mechanism,
            username: jaas.username,
            password: Sensitive::new(jaas.password),
        })
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
