//! Why Ferry does not use a key of the MM2 file.
//!
//! This module owns the list of keys left over after resolution and the reason given for each:
//! the reason resolution gave (a client key with no librdkafka counterpart, a trust store
//! password of a PEM store, ...), else MM2 settings Ferry has no counterpart for, settings of
//! clusters or flows that are not used, and keys MM2 itself ignores. No key is dropped without
//! a reason.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::UnusedKey;
use super::properties::Property;
use super::resolve::{Scope, classify};

/// Every key not read during resolution, by line, with the reason.
pub(super) fn unused_keys(
    props: &BTreeMap<String, Property>,
    used: &HashSet<String>,
    reasons: &HashMap<String, &'static str>,
    clusters_used: &HashSet<String>,
    flows_enabled: &HashSet<(String, String)>,
) -> Vec<UnusedKey> {
    let aliases: Vec<String> = props
        .get("clusters")
        .map(|property| {
            property
                .value
                .split(',')
                .map(|alias| alias.trim().to_owned())
                .filter(|alias| !alias.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut unused: Vec<UnusedKey> = props
        .iter()
        .filter(|(key, _)| !used.contains(key.as_str()))
        .map(|(key, property)| {
            let reason = match classify(key, &aliases).0 {
                _ if reasons.contains_key(key) => reasons[key],
                Scope::Top => top_level_reason(key),
                Scope::Cluster(alias, rest) => {
                    if clusters_used.contains(alias) {
                        cluster_reason(rest)
                    } else {
                        "no enabled flow uses this cluster"
                    }
                }
                Scope::Flow(source, target, rest) => {
                    if flows_enabled.contains(&(source.to_owned(), target.to_owned())) {
                        flow_reason(rest)
                    } else {
                        "the flow is not enabled; ferry runs only enabled flows"
                    }
                }
                Scope::BadFlow => "the flow names a cluster that is not in `clusters`",
            };
            UnusedKey {
                key: key.clone(),
                line: property.line,
                reason,
            }
        })
        .collect();
    unused.sort_by(|left, right| (left.line, &left.key).cmp(&(right.line, &right.key)));
    unused
}

/// Why a connector or worker key is not used, for the keys MM2 knows under any prefix.
fn known_reason(name: &str) -> Option<&'static str> {
    let prefixed = |prefixes: &[&str]| prefixes.iter().any(|prefix| name.starts_with(prefix));
    let reason = match name {
        "groups.blacklist" => "`groups.exclude` is set, which wins over its old alias",
        "config.properties.blacklist" => {
            "`config.properties.exclude` is set, which wins over its old alias"
        }
        "group.filter.class" => {
            "custom group filters are not supported; use `groups` and `groups.exclude`"
        }
        "config.property.filter.class" => {
            "custom config property filters are not supported; use `config.properties.exclude`"
        }
        "refresh.groups.enabled" | "refresh.groups.interval.seconds" => {
            "ferry lists the source groups at every checkpoint"
        }
        "use.incremental.alter.configs" => {
            "ferry always uses incremental alter configs, so target-only settings survive"
        }
        "offset-syncs.topic.partitions" => "the offset-syncs topic has one partition, as in mm2",
        "topics.blacklist" => "`topics.exclude` is set, which wins over its old alias",
        "topic.filter.class" => {
            "custom topic filters are not supported; use `topics` and `topics.exclude`"
        }
        "forwarding.admin.class" => "custom admin clients are not supported",
        "refresh.topics.enabled" => "ferry always looks for new topics and partitions",
        "consumer.poll.timeout.ms" | "admin.timeout.ms" => "ferry uses its own timeouts",
        "metric.reporters" | "auto.include.jmx.reporter" | "add.source.alias.to.metrics" => {
            "ferry exports its own metrics"
        }
        "name" | "connector.class" | "source.cluster.alias" | "target.cluster.alias" => {
            "ferry has no connectors and takes the aliases from the flow name `A->B`"
        }
        "group.id" => "a Connect worker group; ferry's flow group is `ferry.<source>-<target>`",
        "client.id" => "ferry names its own clients",
        "enabled" => "no flow is enabled by it (`A->B.enabled` or heartbeats decide)",
        "exactly.once.source.support" => {
            "mm2 reads it only as `<target>.exactly.once.source.support`, which turns exactly-once on"
        }
        "exactly.once.support" => {
            "mm2 reads it only as `<source>-><target>.exactly.once.support`, where `required` turns exactly-once on"
        }
        "offset.flush.interval.ms" => {
            "mm2 reads it only as `<target>.offset.flush.interval.ms`, which sets a flow's commit interval"
        }
        "dedicated.mode.enable.internal.rest"
        | "listeners"
        | "access.control.allow.origin"
        | "access.control.allow.methods"
        | "response.http.headers.config"
        | "ssl.client.auth" => "mm2's internal rest server; ferry has none",
        _ if prefixed(&["offset.storage."]) => {
            "ferry creates the positions topic (`offset.storage.topic`) with the flow's replication.factor and 25 partitions"
        }
        _ if prefixed(&["config.storage.", "status.storage."]) => {
            "a Connect internal topic; ferry has no Connect worker"
        }
        _ if prefixed(&["key.converter", "value.converter", "header.converter"]) => {
            "ferry copies record bytes unchanged, as mm2's ByteArrayConverter does"
        }
        _ if prefixed(&["transforms", "predicates"]) => {
            "single message transforms are not supported"
        }
        _ if prefixed(&["transaction.boundary", "exactly.once."]) => {
            "ferry commits each task's transaction every 100 ms (1 s while it catches up) or 10000 records (`transaction_interval`, `transaction_records` in ferry.toml)"
        }
        _ if prefixed(&["topic.creation."]) => "ferry creates target topics from the source topics",
        _ if prefixed(&["errors.", "tasks.max.enforce", "config.action.reload"]) => {
            "a Connect connector setting; ferry has no Connect worker"
        }
        _ if prefixed(&["rest.", "admin.listeners"]) => {
            "mm2's internal rest server; ferry has none"
        }
        _ if prefixed(&["config.providers"]) => {
            "a config provider setting ferry does not use (providers are top-level `config.providers`, with the `allowed.paths` and `allowlist.pattern` parameters)"
        }
        "ssl.protocol" | "ssl.enabled.protocols" => {
            "librdkafka negotiates the tls version with openssl's defaults (tls 1.2 or 1.3)"
        }
        "ssl.cipher.suites" => {
            "java's cipher suite names are not openssl's; librdkafka uses openssl's defaults"
        }
        "ssl.provider"
        | "ssl.keymanager.algorithm"
        | "ssl.trustmanager.algorithm"
        | "ssl.secure.random.implementation"
        | "ssl.engine.factory.class" => "a java security provider setting; librdkafka uses openssl",
        "sasl.login.callback.handler.class" | "sasl.oauthbearer.token.endpoint.url" => {
            "used only with sasl.mechanism OAUTHBEARER"
        }
        "sasl.oauthbearer.scope.claim.name" => {
            "librdkafka does not check the token's scope claim; the broker does"
        }
        "sasl.oauthbearer.sub.claim.name" => {
            "librdkafka takes the principal from the token's `sub` claim"
        }
        "sasl.client.callback.handler.class" | "sasl.login.class" => {
            "a java login class cannot run in ferry"
        }
        _ if prefixed(&[
            "sasl.oauthbearer.jwks.endpoint.",
            "sasl.oauthbearer.expected.",
            "sasl.oauthbearer.clock.skew.seconds",
        ]) =>
        {
            "a broker-side token validation setting; clients do not use it"
        }
        _ if prefixed(&["sasl.login."]) => {
            "librdkafka refreshes tokens and retries the token endpoint on its own schedule"
        }
        _ if prefixed(&["sasl.kerberos."]) => "GSSAPI (kerberos) is not supported",
        _ if prefixed(&[
            "task.",
            "worker.",
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "rebalance.timeout.ms",
            "scheduled.rebalance.max.delay.ms",
            "connect.protocol",
            "offset.flush.timeout.ms",
            "inter.worker.",
        ]) =>
        {
            "a Connect worker setting; ferry has no Connect worker"
        }
        _ => return None,
    };
    Some(reason)
}

fn top_level_reason(key: &str) -> &'static str {
    if ["consumer.", "producer.", "admin."]
        .iter()
        .any(|prefix| key.starts_with(prefix))
    {
        return "mm2 ignores top-level consumer.*, producer.* and admin.* keys too; use `<alias>.consumer.*`";
    }
    if matches!(
        key,
        "security.protocol" | "sasl.mechanism" | "sasl.jaas.config"
    ) {
        return "every cluster of an enabled flow sets its own value, or does not need it";
    }
    if key == "bootstrap.servers" {
        return "every cluster of an enabled flow sets its own value";
    }
    if let Some(reason) = known_reason(key) {
        return reason;
    }
    if key.starts_with("ssl.") {
        return "no cluster of an enabled flow uses TLS with it";
    }
    if key.starts_with("sasl.") {
        return "no cluster of an enabled flow uses SASL with it";
    }
    "not an mm2 top-level setting; mm2 ignores it too"
}

fn cluster_reason(rest: &str) -> &'static str {
    if rest == "sasl.mechanism" || rest == "sasl.jaas.config" {
        return "the cluster's security.protocol is not SASL";
    }
    if let Some(reason) = known_reason(rest) {
        return reason;
    }
    if rest.starts_with("ssl.") {
        return "not a tls setting ferry maps to librdkafka";
    }
    if rest.starts_with("sasl.") {
        return "not a sasl setting ferry maps to librdkafka";
    }
    "ferry does not use this cluster setting"
}

fn flow_reason(rest: &str) -> &'static str {
    if ["source.", "target."].iter().any(|side| {
        ["consumer.", "producer.", "admin."]
            .iter()
            .any(|role| rest.starts_with(&format!("{side}{role}")))
    }) {
        return "ferry's client settings are per cluster: set `<alias>.consumer.*`, `<alias>.producer.*` or `<alias>.admin.*` instead";
    }
    known_reason(rest).unwrap_or("ferry does not use this flow setting")
}
