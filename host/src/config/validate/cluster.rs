//! The rules of a `[clusters.<name>]` table: bootstrap servers, security protocol, SASL and
//! TLS settings, and the raw `librdkafka` properties.
//!
//! This module owns which librdkafka properties Ferry sets itself (and so refuses in the
//! `librdkafka` table), which ones a typed key already sets, and the check of every other
//! property against librdkafka, so that a misspelt property is reported with its line.

use std::collections::{BTreeMap, HashMap};

use rdkafka::error::KafkaError;

use super::{Validator, one_line};
use crate::config::location::KeyPath;
use crate::config::raw::ClusterConfig;
use crate::config::{
    Cluster, ClusterName, Sasl, SaslMechanism, SecurityProtocol, Ssl, is_secret_librdkafka_key,
};

impl Validator<'_> {
    pub(super) fn cluster(
        &mut self,
        path: &KeyPath,
        name: String,
        raw: ClusterConfig,
    ) -> Option<Cluster> {
        let name = ClusterName::new(name)
            .map_err(|message| self.report(path, message))
            .ok();

        let bootstrap_servers = raw.bootstrap_servers.trim().to_owned();
        if bootstrap_servers.is_empty() {
            self.report(&path.key("bootstrap_servers"), "must not be empty");
        }

        let security_protocol = SecurityProtocol::from_name(raw.security_protocol.trim());
        if security_protocol.is_none() {
            self.report(
                &path.key("security_protocol"),
                format!(
                    "unknown security protocol `{}` (expected one of: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
                    raw.security_protocol
                ),
            );
        }
        if let Some(protocol) = security_protocol {
            if protocol.is_sasl() && raw.sasl.is_none() {
                self.report(
                    &path.key("security_protocol"),
                    format!(
                        "{protocol} needs SASL credentials: add `sasl = {{ mechanism = \"...\", username = \"...\", password = \"...\" }}`"
                    ),
                );
            }
            if !protocol.is_sasl() && raw.sasl.is_some() {
                self.report(
                    &path.key("sasl"),
                    format!(
                        "`sasl` needs security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}"
                    ),
                );
            }
            if !protocol.is_tls() && raw.ssl.is_some() {
                self.report(
                    &path.key("ssl"),
                    format!("`ssl` needs security_protocol SSL or SASL_SSL, not {protocol}"),
                );
            }
        }

        let typed_keys = typed_librdkafka_keys(&raw);
        let sasl = raw.sasl.map(|sasl| {
            let sasl_path = path.key("sasl");
            let mechanism = SaslMechanism::from_name(sasl.mechanism.trim());
            if mechanism.is_none() {
                self.report(
                    &sasl_path.key("mechanism"),
                    format!(
                        "unknown SASL mechanism `{}` (expected one of: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
                        sasl.mechanism
                    ),
                );
            }
            if sasl.username.is_empty() {
                self.report(&sasl_path.key("username"), "must not be empty");
            }
            if sasl.password.expose().is_empty() {
                self.report(&sasl_path.key("password"), "must not be empty");
            }
            mechanism.map(|mechanism| Sasl {
                mechanism,
                username: sasl.username,
                password: sasl.password,
            })
        });
        let ssl = raw.ssl.map(|ssl| {
            let ssl_path = path.key("ssl");
            let mut file = |key: &str, location: Option<String>| {
                let location = location?;
                if location.trim().is_empty() {
                    self.report(&ssl_path.key(key), "must not be empty");
                    return None;
                }
                Some(self.base_dir.join(location))
            };
            Ssl {
                ca_location: file("ca_location", ssl.ca_location),
                certificate_location: file("certificate_location", ssl.certificate_location),
                key_location: file("key_location", ssl.key_location),
                key_password: ssl.key_password,
            }
        });

        let mut librdkafka = BTreeMap::new();
        for (key, value) in raw.librdkafka {
            let key_path = path.key("librdkafka").key(&key);
            if let Some(reason) = host_owned_key(&key) {
                self.report(&key_path, format!("cannot be set here: {reason}"));
            } else if let Some(typed) = typed_keys.get(key.as_str()) {
                self.report(
                    &key_path,
                    format!("cannot be set here: it is already set by `{typed}` of this cluster"),
                );
            } else if let Err(message) = check_librdkafka_property(&key, &value.0) {
                self.report(&key_path, message);
            } else {
                librdkafka.insert(key, value.0);
            }
        }

        let sasl = match sasl {
            Some(None) => return None,
            Some(Some(sasl)) => Some(sasl),
            None => None,
        };
        Some(Cluster {
            name: name?,
            bootstrap_servers,
            security_protocol: security_protocol?,
            sasl,
            ssl,
            librdkafka,
        })
    }
}

/// Why a librdkafka property belongs to Ferry, if it does.
fn host_owned_key(key: &str) -> Option<&'static str> {
    match key.trim().to_ascii_lowercase().as_str() {
        "bootstrap.servers" | "metadata.broker.list" => {
            Some("Ferry sets it from `bootstrap_servers`")
        }
        "security.protocol" => Some("Ferry sets it from `security_protocol`"),
        "group.id" => Some("Ferry sets it from each flow's `group_id`"),
        "enable.auto.commit" | "enable.auto.offset.store" => Some(
            "Ferry stores source positions itself, only after the target acknowledged the records",
        ),
        "enable.idempotence" | "transactional.id" | "acks" | "request.required.acks" => {
            Some("Ferry chooses its producers' delivery guarantees itself")
        }
        "partitioner" => Some("Ferry writes each record to its source partition number"),
        "enable.partition.eof" | "partition.assignment.strategy" => {
            Some("Ferry's consumers depend on its own setting")
        }
        _ => None,
    }
}

/// The librdkafka properties that this cluster's `sasl`/`ssl` tables set, with the typed key
/// that sets each.
fn typed_librdkafka_keys(raw: &ClusterConfig) -> HashMap<&'static str, &'static str> {
    let mut keys = HashMap::new();
    if raw.sasl.is_some() {
        keys.insert("sasl.mechanism", "sasl.mechanism");
        keys.insert("sasl.mechanisms", "sasl.mechanism");
        keys.insert("sasl.username", "sasl.username");
        keys.insert("sasl.password", "sasl.password");
    }
    if let Some(ssl) = &raw.ssl {
        if ssl.ca_location.is_some() {
            keys.insert("ssl.ca.location", "ssl.ca_location");
        }
        if ssl.certificate_location.is_some() {
            keys.insert("ssl.certificate.location", "ssl.certificate_location");
        }
        if ssl.key_location.is_some() {
            keys.insert("ssl.key.location", "ssl.key_location");
        }
        if ssl.key_password.is_some() {
            keys.insert("ssl.key.password", "ssl.key_password");
        }
    }
    keys
}

/// Asks librdkafka whether it knows `key` and accepts `value`, so that a misspelt property is
/// reported now, with its line, rather than when the first client is created.
fn check_librdkafka_property(key: &str, value: &str) -> Result<(), String> {
    let mut client_config = rdkafka::ClientConfig::new();
    client_config.set(key, value);
    match client_config.create_native_config() {
        Ok(_) => Ok(()),
        Err(_) if is_secret_librdkafka_key(key) => {
            Err("rejected by librdkafka (the value is not shown because it is a secret)".to_owned())
        }
        Err(KafkaError::ClientConfig(_, description, _, _)) => Err(format!(
            "rejected by librdkafka: {}",
            one_line(&description)
        )),
        Err(error) => Err(format!("rejected by librdkafka: {error}")),
    }
}
