//! Resolution of MM2's properties into Ferry's [`Config`], following MM2 3.8's prefixes and
//! precedence (`MirrorMakerConfig`).
//!
//! This module owns the [`Resolver`] (which keys were read, why others were not, the problems
//! found), the classification of a key as top-level, cluster (`<alias>.<key>`) or flow
//! (`<source>-><target>.<key>`), which flows MM2 would run, and the typed reading of values
//! (booleans, integers, replication factors). A flow's settings are read in [`flow`], a
//! cluster's connection in [`cluster`], its SASL settings in [`sasl`], its TLS settings in
//! [`tls`] and its per-role client keys in [`roles`].

mod cluster;
mod flow;
mod roles;
mod sasl;
mod tls;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::properties::Property;
use crate::config::librdkafka::check_property;
use crate::config::{ClusterName, Config, ConfigError};

/// Where a key belongs, found by matching the aliases of `clusters`.
pub(super) enum Scope<'k> {
    /// `clusters`, or any key without an alias prefix.
    Top,
    /// `<alias>.<rest>`.
    Cluster(&'k str, &'k str),
    /// `<source>-><target>.<rest>`.
    Flow(&'k str, &'k str, &'k str),
    /// A `->` key whose aliases are not all in `clusters` (an error has been reported).
    BadFlow,
}

/// Reads the properties into typed values, recording the keys it read and every problem.
pub(super) struct Resolver<'p> {
    pub(super) props: &'p BTreeMap<String, Property>,
    /// The values config providers substituted, by key: masked in every message about the key.
    pub(super) provided: &'p HashMap<String, Vec<String>>,
    /// The aliases of `clusters`, once read.
    pub(super) aliases: Vec<String>,
    /// Keys Ferry read.
    pub(super) used: HashSet<String>,
    /// Keys Ferry looked at and does not use, with why; a key both used and given a reason
    /// (a top-level default one cluster uses and another does not) is used.
    pub(super) reasons: HashMap<String, &'static str>,
    pub(super) errors: Vec<ConfigError>,
}

/// The resolved configuration, the clusters used by enabled flows and the enabled flows as
/// `(source, target)`.
pub(super) type Resolved = (Config, HashSet<String>, HashSet<(String, String)>);

impl<'p> Resolver<'p> {
    /// A resolver of `props`, whose values `provided` took from config providers.
    pub(super) fn new(
        props: &'p BTreeMap<String, Property>,
        provided: &'p HashMap<String, Vec<String>>,
    ) -> Self {
        Resolver {
            props,
            provided,
            aliases: Vec::new(),
            used: HashSet::new(),
            reasons: HashMap::new(),
            errors: Vec::new(),
        }
    }
}

impl Resolver<'_> {
    /// Reports a problem with `key`. What a config provider gave the key is masked as `***`,
    /// so that a value read from a secrets file never reaches a message.
    fn report(&mut self, key: &str, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(pieces) = self.provided.get(key) {
            for piece in pieces.iter().map(|piece| piece.trim()) {
                if !piece.is_empty() {
                    message = message.replace(piece, "***");
                }
            }
        }
        self.errors.push(ConfigError {
            line: self.props.get(key).map(|property| property.line),
            key: key.to_owned(),
            message,
        });
    }

    /// The trimmed value of `key`, marking it used (Kafka's `ConfigDef` trims values).
    fn take(&mut self, key: &str) -> Option<(String, String)> {
        let property = self.props.get(key)?;
        self.used.insert(key.to_owned());
        Some((key.to_owned(), property.value.trim().to_owned()))
    }

    /// The trimmed value of `key`, without marking it used.
    fn peek(&self, key: &str) -> Option<(String, String)> {
        let property = self.props.get(key)?;
        Some((key.to_owned(), property.value.trim().to_owned()))
    }

    /// Gives the reason why `key` is not used, unless it is.
    fn skip(&mut self, key: &str, reason: &'static str) {
        if self.props.contains_key(key) {
            self.reasons.insert(key.to_owned(), reason);
        }
    }

    /// Checks that librdkafka accepts `property = value`, reporting a refusal on `key`, the MM2
    /// key it came from.
    fn librdkafka(&mut self, key: &str, property: &str, value: &str) -> bool {
        match check_property(property, value) {
            Ok(()) => true,
            Err(message) => {
                self.report(key, format!("as librdkafka `{property}`: {message}"));
                false
            }
        }
    }

    pub(super) fn resolve(&mut self, origin: &Path) -> Option<Resolved> {
        let Some((_, clusters_value)) = self.take("clusters") else {
            self.report(
                "clusters",
                "missing: list the cluster aliases, e.g. `clusters = A, B`",
            );
            return None;
        };
        let mut aliases: Vec<String> = Vec::new();
        for alias in clusters_value.split(',').map(str::trim) {
            if alias.is_empty() {
                self.report("clusters", "an alias in the list is empty");
            } else if let Err(message) = ClusterName::new(alias) {
                self.report("clusters", message);
            } else if !aliases.iter().any(|known| known == alias) {
                aliases.push(alias.to_owned());
            }
        }
        if aliases.is_empty() {
            if clusters_value.is_empty() {
                self.report("clusters", "must list at least one cluster alias");
            }
            return None;
        }
        self.aliases = aliases.clone();

        // Flow keys naming unknown aliases are errors.
        let keys: Vec<&String> = self.props.keys().collect();
        for key in keys {
            if let Scope::BadFlow = self.scope(key, &aliases) {
                self.used.insert(key.clone());
            }
        }

        let mut flows = Vec::new();
        let mut clusters_used = HashSet::new();
        let mut flows_enabled = HashSet::new();
        let mut order: Vec<(usize, usize, String, String)> = Vec::new();
        for (source_index, source) in aliases.iter().enumerate() {
            for (target_index, target) in aliases.iter().enumerate() {
                if source == target || !self.flow_enabled(source, target) {
                    continue;
                }
                let line = self
                    .props
                    .get(&format!("{source}->{target}.enabled"))
                    .map_or(usize::MAX, |property| property.line);
                let rank = source_index * aliases.len() + target_index;
                order.push((line, rank, source.clone(), target.clone()));
            }
        }
        order.sort();
        for (_, _, source, target) in order {
            clusters_used.insert(source.clone());
            clusters_used.insert(target.clone());
            flows_enabled.insert((source.clone(), target.clone()));
            if let Some(flow) = self.flow(&source, &target) {
                flows.push(flow);
            }
        }
        let mut clusters = BTreeMap::new();
        let mut enabled: Vec<(String, String)> = flows_enabled.iter().cloned().collect();
        enabled.sort();
        for alias in aliases
            .iter()
            .filter(|alias| clusters_used.contains(*alias))
        {
            if let Some(cluster) = self.cluster(alias, &enabled) {
                clusters.insert(cluster.name.clone(), cluster);
            }
        }
        if flows_enabled.is_empty() {
            self.errors.push(ConfigError {
                line: None,
                key: String::new(),
                message: "no flow is enabled: set `A->B.enabled = true`".to_owned(),
            });
        }
        let config = Config {
            path: origin.to_path_buf(),
            clusters,
            flows,
        };
        Some((config, clusters_used, flows_enabled))
    }

    /// Classifies `key`, reporting a `->` key whose aliases are not in `clusters`.
    fn scope<'k>(&mut self, key: &'k str, aliases: &[String]) -> Scope<'k> {
        let (scope, problem) = classify(key, aliases);
        if let Some(message) = problem {
            self.report(key, message);
        }
        scope
    }

    /// Whether MM2 would run the flow's source connector: a herder exists for the pair
    /// (`A->B.enabled=true`, or heartbeats enabled for it), and the connector's `enabled`
    /// (`A->B.enabled`, else a top-level `enabled`, else false) is true.
    fn flow_enabled(&mut self, source: &str, target: &str) -> bool {
        let flow_key = format!("{source}->{target}.enabled");
        let flow_value = self.take(&flow_key);
        let flow_enabled = match &flow_value {
            Some((key, value)) => self.boolean(key, value),
            None => None,
        };
        if flow_enabled == Some(true) {
            return true;
        }
        if flow_value.is_some() {
            return false;
        }
        // Herder creation reads heartbeats with `Boolean.parseBoolean` (lenient).
        let heartbeats = self
            .props
            .get(&format!("{source}->{target}.emit.heartbeats.enabled"))
            .or_else(|| self.props.get("emit.heartbeats.enabled"))
            .is_none_or(|property| property.value.trim().eq_ignore_ascii_case("true"));
        if !heartbeats || !self.props.contains_key("enabled") {
            return false;
        }
        match self.take("enabled") {
            Some((key, value)) => self.boolean(&key, &value) == Some(true),
            None => false,
        }
    }

    fn boolean(&mut self, key: &str, value: &str) -> Option<bool> {
        if value.eq_ignore_ascii_case("true") {
            Some(true)
        } else if value.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.report(key, format!("expected `true` or `false`, not `{value}`"));
            None
        }
    }

    /// A connector key of flow `source->target`: `<source>-><target>.<name>`, else the
    /// top-level `<name>`.
    fn connector_key(
        &mut self,
        source: &str,
        target: &str,
        name: &str,
    ) -> Option<(String, String)> {
        let flow_key = format!("{source}->{target}.{name}");
        if self.props.contains_key(&flow_key) {
            self.take(&flow_key)
        } else {
            self.take(name)
        }
    }

    /// A client key of cluster `alias`: `<alias>.<name>`, else the top-level `<name>` (MM2's
    /// `clusterProps`: top-level client keys are every cluster's defaults).
    fn client_key(&mut self, alias: &str, name: &str) -> Option<(String, String)> {
        let found = self.peek_client_key(alias, name)?;
        self.used.insert(found.0.clone());
        Some(found)
    }

    /// [`Self::client_key`] without marking the key used.
    fn peek_client_key(&self, alias: &str, name: &str) -> Option<(String, String)> {
        let cluster_key = format!("{alias}.{name}");
        self.peek(&cluster_key).or_else(|| self.peek(name))
    }

    /// Gives the reason why the client key `name` of cluster `alias` is not used, if set.
    fn skip_client_key(&mut self, alias: &str, name: &str, reason: &'static str) {
        if let Some((key, _)) = self.peek_client_key(alias, name) {
            self.skip(&key, reason);
        }
    }

    fn integer(&mut self, key: &str, value: &str, min: i64, max: i64) -> Option<i64> {
        match value.parse::<i64>() {
            Ok(number) if (min..=max).contains(&number) => Some(number),
            Ok(number) => {
                self.report(
                    key,
                    format!("must be between {min} and {max}, not {number}"),
                );
                None
            }
            Err(_) => {
                self.report(key, format!("expected an integer, not `{value}`"));
                None
            }
        }
    }

    /// A replication factor: -1 (broker default) or 1 to 32767.
    fn factor(&mut self, key: &str, value: &str) -> Option<i16> {
        match value.parse::<i64>() {
            Ok(factor) if factor == -1 || (1..=i64::from(i16::MAX)).contains(&factor) => {
                i16::try_from(factor).ok()
            }
            Ok(factor) => {
                self.report(
                    key,
                    format!(
                        "must be -1 (the broker's default.replication.factor) or between 1 and 32767, not {factor}"
                    ),
                );
                None
            }
            Err(_) => {
                self.report(key, format!("expected an integer, not `{value}`"));
                None
            }
        }
    }
}

/// Classifies `key` against the aliases: a `->` key is a flow key (its source is the text
/// before `->`, its target the longest alias followed by `.`), else a key starting with the
/// longest `<alias>.` is a cluster key, else a top-level key. Returns an error message for a
/// flow key whose aliases are not in `clusters`.
pub(super) fn classify<'k>(key: &'k str, aliases: &[String]) -> (Scope<'k>, Option<String>) {
    let longest_prefix = |text: &'k str| -> Option<(&'k str, &'k str)> {
        aliases
            .iter()
            .filter(|alias| {
                text.len() > alias.len()
                    && text.starts_with(alias.as_str())
                    && text[alias.len()..].starts_with('.')
            })
            .max_by_key(|alias| alias.len())
            .map(|alias| (&text[..alias.len()], &text[alias.len() + 1..]))
    };
    let known = || aliases.join(", ");
    if let Some((source, after)) = key.split_once("->") {
        if !aliases.iter().any(|alias| alias == source) {
            let message = format!(
                "unknown cluster `{source}` in flow key (clusters: {})",
                known()
            );
            return (Scope::BadFlow, Some(message));
        }
        return match longest_prefix(after) {
            Some((target, _)) if target == source => (
                Scope::BadFlow,
                Some("a flow's source and target must differ".to_owned()),
            ),
            Some((target, rest)) => (Scope::Flow(source, target, rest), None),
            None => {
                let target = after.split('.').next().unwrap_or(after);
                let message = format!(
                    "unknown cluster `{target}` in flow key (clusters: {})",
                    known()
                );
                (Scope::BadFlow, Some(message))
            }
        };
    }
    match longest_prefix(key) {
        Some((alias, rest)) => (Scope::Cluster(alias, rest), None),
        None => (Scope::Top, None),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::mm2::tests::{errors, reason, resolve};

    #[test]
    fn top_level_enabled_needs_heartbeat_herders() {
        let base = "clusters = A, B\nA.bootstrap.servers = a:1\nB.bootstrap.servers = b:1\nenabled = true\n";
        let (config, _) = resolve(base);
        let ids: Vec<&str> = config.flows.iter().map(|flow| flow.id.as_str()).collect();
        assert_eq!(ids, ["A->B", "B->A"]);
        let (config, _) = resolve(&format!("{base}B->A.emit.heartbeats.enabled = false\n"));
        assert_eq!(config.flows.len(), 1);
        let (config, unused) = resolve(&format!("{base}A->B.enabled = false\n"));
        assert_eq!(config.flows[0].id.as_str(), "B->A");
        assert!(reason(&unused, "A->B.enabled").is_none());
    }

    #[test]
    fn errors_name_key_and_line() {
        let errors = errors(
            "clusters = A, B\n\
             A.bootstrap.servers = a:1\n\
             A->B.enabled = true\n\
             A->B.replication.factor = three\n\
             A->B.topics = (unclosed\n\
             A->C.enabled = true\n\
             X->B.topics = a\n\
             tasks.max = 0\n\
             replication.policy.class = com.example.MyPolicy\n\
             B.security.protocol = SASL_PLAINTEXT\n\
             B.sasl.mechanism = PLAIN\n\
             B.sasl.jaas.config = org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";\n",
        );
        let found: Vec<(Option<usize>, &str)> = errors
            .iter()
            .map(|error| (error.line, error.key.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(4), "A->B.replication.factor"),
                (Some(5), "A->B.topics"),
                (Some(6), "A->C.enabled"),
                (Some(7), "X->B.topics"),
                (Some(8), "tasks.max"),
                (Some(9), "replication.policy.class"),
                (Some(12), "B.sasl.jaas.config"),
                (None, "B.bootstrap.servers"),
            ]
        );
        assert!(errors[0].message.contains("`three`"));
        assert!(errors[2].message.contains("unknown cluster `C`"));
        assert!(errors[3].message.contains("unknown cluster `X`"));
        assert!(errors[5].message.contains("com.example.MyPolicy"));
        assert!(
            errors
                .iter()
                .all(|error| !error.message.contains("your_password"))
        );
    }

    #[test]
    fn no_enabled_flow_and_missing_clusters() {
        let errors_found = errors("clusters = A, B\nA->B.enabled = false\n");
        assert_eq!(errors_found.len(), 1);
        assert_eq!(
            errors_found[0].message,
            "no flow is enabled: set `A->B.enabled = true`"
        );
        let errors_found = errors("A->B.enabled = true\n");
        assert_eq!(errors_found[0].key, "clusters");
    }
}
