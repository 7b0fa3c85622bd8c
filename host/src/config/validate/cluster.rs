//! The rules of a `[clusters.<name>]` table: bootstrap servers, security protocol, SASL and
//! TLS settings, and the raw librdkafka properties of the `librdkafka` table and of the
//! per-role `consumer`, `producer` and `admin` tables.
//!
//! This module owns which librdkafka properties a typed key already sets (and so refuses in
//! those tables); the host-owned properties and the check of every other property against
//! librdkafka are `config::librdkafka`'s, so that a misspelt property is reported with its line.

use std::collections::{BTreeMap, HashMap};

use super::Validator;
use crate::config::librdkafka::{check_property, host_owned_key};
use crate::config::location::KeyPath;
use crate::config::raw::{ClusterConfig, ScalarString};
use crate::config::{Cluster, ClusterName, Sasl, SaslMechanism, SecurityProtocol, Ssl};

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

        let librdkafka = self.librdkafka_table(path, "librdkafka", raw.librdkafka, &typed_keys);
        let consumer = self.librdkafka_table(path, "consumer", raw.consumer, &typed_keys);
        let producer = self.librdkafka_table(path, "producer", raw.producer, &typed_keys);
        let admin = self.librdkafka_table(path, "admin", raw.admin, &typed_keys);

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
            consumer,
            producer,
            admin,
        })
    }

    /// The raw librdkafka properties of the cluster's table `table` (`librdkafka`, or a role's
    /// `consumer`, `producer` or `admin`): host-owned properties, properties a typed key sets
    /// and properties librdkafka refuses are reported, the others kept.
    fn librdkafka_table(
        &mut self,
        path: &KeyPath,
        table: &str,
        raw: BTreeMap<String, ScalarString>,
        typed_keys: &HashMap<&'static str, &'static str>,
    ) -> BTreeMap<String, String> {
        let mut properties = BTreeMap::new();
        for (key, value) in raw {
            let key_path = path.key(table).key(&key);
            if let Some(reason) = host_owned_key(&key) {
                self.report(&key_path, format!("cannot be set here: {reason}"));
            } else if let Some(typed) = typed_keys.get(key.as_str()) {
                self.report(
                    &key_path,
                    format!("cannot be set here: it is already set by `{typed}` of this cluster"),
                );
            } else if let Err(message) = check_property(&key, &value.0) {
                self.report(&key_path, message);
            } else {
                properties.insert(key, value.0);
            }
        }
        properties
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
