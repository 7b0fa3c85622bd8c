//! A cluster's per-role client keys: `<alias>.consumer.<key>`, `<alias>.producer.<key>` and
//! `<alias>.admin.<key>`, and the `<source>-><target>.consumer.<key>` (and `producer`, `admin`)
//! keys of the enabled flows that use the cluster, read into the cluster's `consumer`,
//! `producer` and `admin` librdkafka tables through the table of [`crate::config::mm2`]'s
//! `clients` module.
//!
//! This module owns MM2 3.8's precedence between those forms, as Ferry can keep it. In MM2 a
//! flow's `consumer.*` keys reach its consumers on both clusters, below each cluster's own
//! `<alias>.consumer.*` (`MirrorConnectorConfig#sourceConsumerConfig`: `consumer.*`, then
//! `source.consumer.*`, which `<alias>.consumer.*` becomes). Ferry's client settings are per
//! cluster, shared by every flow, so a flow key applies to a cluster only when every enabled
//! flow using that cluster gives the same value; otherwise it is an error that asks for the
//! `<alias>.` form. Top-level `consumer.*` keys are ignored, as MM2 ignores them.

use std::collections::BTreeMap;

use super::{Resolver, Scope, classify};
use crate::config::ClientRole;
use crate::config::mm2::clients::{ClientKey, client_key};

/// Where the value of one Java key of a role comes from.
struct Source {
    /// The MM2 key that gives the value.
    key: String,
    value: String,
    /// The flow keys that apply with it (empty for a `<alias>.` key).
    flow_keys: Vec<String>,
}

impl Resolver<'_> {
    /// The `consumer`, `producer` and `admin` tables of cluster `alias`, used by the enabled
    /// `flows`; `None` when a key is wrong (reported).
    pub(super) fn roles(
        &mut self,
        alias: &str,
        flows: &[(String, String)],
    ) -> Option<[BTreeMap<String, String>; 3]> {
        let mut ok = true;
        let tables = ClientRole::ALL.map(|role| {
            let (table, role_ok) = self.role(alias, flows, role);
            ok &= role_ok;
            table
        });
        ok.then_some(tables)
    }

    fn role(
        &mut self,
        alias: &str,
        flows: &[(String, String)],
        role: ClientRole,
    ) -> (BTreeMap<String, String>, bool) {
        let prefix = format!("{}.", role.as_str());
        let users: Vec<&(String, String)> = flows
            .iter()
            .filter(|(source, target)| source == alias || target == alias)
            .collect();
        // Java key → the `<alias>.` key, and the flow keys by flow.
        let mut cluster_keys: BTreeMap<String, String> = BTreeMap::new();
        let mut flow_keys: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for key in self.props.keys() {
            match classify(key, &self.aliases).0 {
                Scope::Cluster(owner, rest) if owner == alias => {
                    if let Some(name) = rest.strip_prefix(&prefix) {
                        cluster_keys.insert(name.to_owned(), key.clone());
                    }
                }
                Scope::Flow(source, target, rest)
                    if users.iter().any(|(user_source, user_target)| {
                        user_source == source && user_target == target
                    }) =>
                {
                    if let Some(name) = rest.strip_prefix(&prefix) {
                        flow_keys
                            .entry(name.to_owned())
                            .or_default()
                            .push((format!("{source}->{target}"), key.clone()));
                    }
                }
                _ => {}
            }
        }

        let mut ok = true;
        let mut sources: BTreeMap<String, Source> = BTreeMap::new();
        let names: Vec<String> = cluster_keys
            .keys()
            .chain(flow_keys.keys())
            .cloned()
            .collect();
        for name in names {
            if sources.contains_key(&name) {
                continue;
            }
            let setters = flow_keys.remove(&name).unwrap_or_default();
            if let Some(key) = cluster_keys.get(&name) {
                for (_, flow_key) in &setters {
                    self.skip(
                        flow_key,
                        "each cluster's own `<alias>.consumer.*`, `producer.*` or `admin.*` key overrides it, as in mm2",
                    );
                }
                if let Some((key, value)) = self.peek(key) {
                    sources.insert(
                        name,
                        Source {
                            key,
                            value,
                            flow_keys: Vec::new(),
                        },
                    );
                }
                continue;
            }
            // (flow, key, value) of every flow that sets it.
            let setters: Vec<(String, String, String)> = setters
                .into_iter()
                .filter_map(|(flow, key)| {
                    let (_, value) = self.peek(&key)?;
                    Some((flow, key, value))
                })
                .collect();
            let Some((_, first_key, first_value)) = setters.first().cloned() else {
                continue;
            };
            let disagreeing = users.iter().find(|(source, target)| {
                let flow = format!("{source}->{target}");
                setters
                    .iter()
                    .find(|(setter, _, _)| *setter == flow)
                    .is_none_or(|(_, _, value)| *value != first_value)
            });
            if let Some((source, target)) = disagreeing {
                let other = format!("{source}->{target}");
                let does = if setters.iter().any(|(setter, _, _)| *setter == other) {
                    "sets another value"
                } else {
                    "does not set it"
                };
                self.report(
                    &first_key,
                    format!(
                        "ferry's client settings are per cluster, and cluster `{alias}` is also used by flow {other}, which {does}: set `{alias}.{prefix}{name}` instead"
                    ),
                );
                ok = false;
                continue;
            }
            sources.insert(
                name,
                Source {
                    key: first_key,
                    value: first_value,
                    flow_keys: setters.into_iter().map(|(_, key, _)| key).collect(),
                },
            );
        }

        let mut table = BTreeMap::new();
        let compression = sources
            .get("compression.type")
            .map(|source| source.value.to_ascii_lowercase());
        for (name, source) in &sources {
            let keys = std::iter::once(&source.key).chain(source.flow_keys.iter());
            let mapped = match client_key(role, name) {
                ClientKey::Map(property, convert) => match convert.apply(&source.value) {
                    Ok(value) => Ok(Some((property, value))),
                    Err(message) => Err(message),
                },
                ClientKey::CompressionLevel(codec) if compression.as_deref() == Some(codec) => {
                    Ok(Some(("compression.level", source.value.clone())))
                }
                ClientKey::CompressionLevel(_) => {
                    for key in keys {
                        self.skip(
                            key,
                            "the producer's compression.type is another codec, so mm2 does not use this level either",
                        );
                    }
                    continue;
                }
                ClientKey::Cluster => {
                    let shared = self.peek_client_key(alias, name).map(|(_, value)| value);
                    if shared.as_deref() == Some(source.value.as_str()) {
                        Ok(None)
                    } else {
                        Err(format!(
                            "ferry's clients of a cluster share one `{name}`: set it as `{alias}.{name}` for all of them"
                        ))
                    }
                }
                ClientKey::Unused(reason) => {
                    for key in keys {
                        self.skip(key, reason);
                    }
                    continue;
                }
            };
            match mapped {
                Ok(Some((property, value))) => {
                    if self.librdkafka(&source.key, property, &value) {
                        table.insert(property.to_owned(), value);
                        for key in keys {
                            self.used.insert(key.clone());
                        }
                    } else {
                        ok = false;
                    }
                }
                // The cluster's own setting, which applies anyway.
                Ok(None) => {
                    for key in keys {
                        self.used.insert(key.clone());
                    }
                }
                Err(message) => {
                    self.report(&source.key, message);
                    ok = false;
                }
            }
        }
        (table, ok)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::config::mm2::tests::{errors, reason, resolve};
    use crate::config::{ClientRole, ClusterName};

    const BASE: &str = "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\n";

    fn table(
        config: &crate::config::Config,
        alias: &str,
        role: ClientRole,
    ) -> BTreeMap<String, String> {
        config.clusters[&ClusterName::new(alias).unwrap()]
            .role_properties(role)
            .clone()
    }

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn cluster_and_flow_role_keys_map_to_librdkafka() {
        let (config, unused) = resolve(&format!(
            "{BASE}A.consumer.fetch.max.bytes = 1048576\n\
             A.consumer.fetch.max.wait.ms = 100\n\
             A.consumer.max.poll.records = 500\n\
             A.consumer.auto.offset.reset = latest\n\
             B.producer.linger.ms = 20\n\
             B.producer.batch.size = 65536\n\
             B.producer.compression.type = zstd\n\
             B.producer.compression.zstd.level = 3\n\
             B.producer.compression.gzip.level = 9\n\
             B.producer.buffer.memory = 33554432\n\
             B.producer.acks = 1\n\
             A->B.producer.request.timeout.ms = 20000\n\
             A->B.consumer.fetch.max.bytes = 2097152\n\
             A->B.admin.request.timeout.ms = 15000\n\
             B.admin.client.id = mm2-admin\n\
             consumer.fetch.min.bytes = 10\n"
        ));
        assert_eq!(
            table(&config, "A", ClientRole::Consumer),
            entries(&[
                ("auto.offset.reset", "latest"),
                ("fetch.max.bytes", "1048576"),
                ("fetch.wait.max.ms", "100"),
            ])
        );
        assert_eq!(
            table(&config, "B", ClientRole::Consumer),
            entries(&[("fetch.max.bytes", "2097152")])
        );
        assert_eq!(
            table(&config, "B", ClientRole::Producer),
            entries(&[
                ("batch.size", "65536"),
                ("compression.level", "3"),
                ("compression.type", "zstd"),
                ("linger.ms", "20"),
                ("queue.buffering.max.kbytes", "32768"),
                ("request.timeout.ms", "20000"),
            ])
        );
        assert_eq!(
            table(&config, "A", ClientRole::Producer),
            entries(&[("request.timeout.ms", "20000")])
        );
        assert_eq!(
            table(&config, "B", ClientRole::Admin),
            entries(&[("client.id", "mm2-admin"), ("socket.timeout.ms", "15000")])
        );
        assert_eq!(
            table(&config, "A", ClientRole::Admin),
            entries(&[("socket.timeout.ms", "15000")])
        );
        // The role tables go on top of the cluster's settings, for that role only.
        let a = &config.clusters[&ClusterName::new("A").unwrap()];
        assert_eq!(
            a.client_config(ClientRole::Consumer).get("fetch.max.bytes"),
            Some("1048576")
        );
        assert_eq!(
            a.client_config(ClientRole::Producer).get("fetch.max.bytes"),
            None
        );
        assert!(crate::kafka::starts_at_end(a));

        let reasons: Vec<(&str, usize)> = unused
            .iter()
            .map(|unused| (unused.key.as_str(), unused.line))
            .collect();
        assert_eq!(
            reasons,
            [
                ("A.consumer.max.poll.records", 7),
                ("B.producer.compression.gzip.level", 13),
                ("B.producer.acks", 15),
                ("consumer.fetch.min.bytes", 20),
            ]
        );
        assert!(
            reason(&unused, "A.consumer.max.poll.records")
                .unwrap()
                .reason
                .contains("1000 records")
        );
        assert!(
            reason(&unused, "B.producer.acks")
                .unwrap()
                .reason
                .contains("acks=all")
        );
        assert!(
            reason(&unused, "consumer.fetch.min.bytes")
                .unwrap()
                .reason
                .contains("mm2 ignores")
        );
    }

    #[test]
    fn a_cluster_key_overrides_the_flow_key() {
        let (config, unused) = resolve(&format!(
            "{BASE}A->B.consumer.fetch.max.bytes = 2097152\n\
             A.consumer.fetch.max.bytes = 1048576\n\
             B.consumer.fetch.max.bytes = 1048576\n"
        ));
        assert_eq!(
            table(&config, "A", ClientRole::Consumer),
            entries(&[("fetch.max.bytes", "1048576")])
        );
        assert!(
            reason(&unused, "A->B.consumer.fetch.max.bytes")
                .unwrap()
                .reason
                .contains("overrides it")
        );
    }

    #[test]
    fn flow_keys_must_agree_on_a_shared_cluster() {
        let both = "clusters = A, B\nA.bootstrap.servers = a:9092\nB.bootstrap.servers = b:9092\nA->B.enabled = true\nB->A.enabled = true\n";
        let found = errors(&format!("{both}A->B.consumer.fetch.max.bytes = 2097152\n"));
        let keys: Vec<(&str, Option<usize>)> = found
            .iter()
            .map(|error| (error.key.as_str(), error.line))
            .collect();
        assert_eq!(
            keys,
            [
                ("A->B.consumer.fetch.max.bytes", Some(6)),
                ("A->B.consumer.fetch.max.bytes", Some(6))
            ]
        );
        assert!(found[0].message.contains("cluster `A` is also used by flow B->A, which does not set it: set `A.consumer.fetch.max.bytes` instead"), "{}", found[0].message);
        // The same value from both flows applies.
        let (config, _) = resolve(&format!(
            "{both}A->B.consumer.fetch.max.bytes = 2097152\nB->A.consumer.fetch.max.bytes = 2097152\n"
        ));
        assert_eq!(
            table(&config, "B", ClientRole::Consumer),
            entries(&[("fetch.max.bytes", "2097152")])
        );
    }

    #[test]
    fn bad_role_values_name_key_and_line() {
        let found = errors(&format!(
            "{BASE}A.consumer.auto.offset.reset = none\n\
             B.producer.compression.type = brotli\n\
             B.producer.max.in.flight.requests.per.connection = 10\n\
             A.consumer.ssl.truststore.location = /x/other.pem\n\
             B.producer.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"role-s3cret\";\n"
        ));
        let keys: Vec<(&str, Option<usize>)> = found
            .iter()
            .map(|error| (error.key.as_str(), error.line))
            .collect();
        assert_eq!(
            keys,
            [
                ("A.consumer.auto.offset.reset", Some(5)),
                ("B.producer.compression.type", Some(6)),
                ("B.producer.max.in.flight.requests.per.connection", Some(7)),
                ("A.consumer.ssl.truststore.location", Some(8)),
                ("B.producer.sasl.jaas.config", Some(9)),
            ]
        );
        assert!(
            found[1]
                .message
                .contains("as librdkafka `compression.type`"),
            "{}",
            found[1].message
        );
        assert!(
            found[3]
                .message
                .contains("set it as `A.ssl.truststore.location`"),
            "{}",
            found[3].message
        );
        assert!(
            found
                .iter()
                .all(|error| !error.message.contains("role-s3cret"))
        );
    }
}
