//! From file text to a validated [`Config`].
//!
//! This module owns the pipeline (parse, interpolate, deserialize, check), the [`Validator`]
//! that collects problems, the file-level rules (at least one flow, no duplicate flow, one
//! consumer group per flow) and the typed reading of ranges and durations. The rules of a
//! cluster are in [`cluster`], those of a flow in [`flow`] (its plugin references in
//! [`plugin`]), and the messages for unknown keys in [`unknown`].
//!
//! It collects all problems before returning: a value of the wrong type or a missing key does
//! not stop the checks ([`recover`]), and the clusters and flows without a problem are returned
//! beside the problems, so that their plugins can be checked in the same run. Each problem has
//! the key path and the line where the key is written (or, for a defaulted key, where its table
//! starts). It never puts a secret into a message.

mod cluster;
mod flow;
mod plugin;
mod recover;
mod unknown;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeTable;

use super::interpolate::{self, Env};
use super::location::{KeyPath, SpanIndex};
use super::raw::RawConfig;
use super::{Checked, Config, ConfigError, ConfigErrors, FlowId, is_secret_librdkafka_key};

/// [`super::parse`] with an injectable environment (tests cannot set process variables safely).
#[cfg(test)]
pub(crate) fn parse_with_env(
    text: &str,
    origin: &Path,
    env: Env<'_>,
) -> Result<Config, ConfigErrors> {
    check_with_env(text, origin, env).into_result()
}

/// [`super::check`] with an injectable environment.
pub(crate) fn check_with_env(text: &str, origin: &Path, env: Env<'_>) -> Checked {
    let finish = |config: Config, mut errors: Vec<ConfigError>| {
        errors.sort_by_key(|error| (error.line.is_none(), error.line));
        Checked {
            config,
            errors: ConfigErrors {
                file: origin.to_path_buf(),
                errors,
            },
        }
    };
    let empty = || Config {
        path: origin.to_path_buf(),
        clusters: BTreeMap::new(),
        flows: Vec::new(),
    };

    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let lines = SpanIndex::lines_only(text);
            let error = ConfigError {
                line: error.span().map(|span| lines.line_of_offset(span.start)),
                key: String::new(),
                message: one_line(error.message()),
            };
            return finish(empty(), vec![error]);
        }
    };
    let index = SpanIndex::build(&document, text);
    let span = document.span();
    let mut table = document.into_inner();

    let mut errors = Vec::new();
    let mut interpolation_errors = Vec::new();
    interpolate::interpolate_table(&mut table, &KeyPath::root(), env, &mut interpolation_errors);
    let mut suppressed = HashSet::new();
    for (path, error) in interpolation_errors {
        errors.push(ConfigError {
            line: index.line(&path),
            key: path.to_string(),
            message: error.to_string(),
        });
        suppressed.insert(path);
    }

    let deserialized = recover::deserialize(table, span, &index);
    errors.extend(deserialized.errors);
    suppressed.extend(deserialized.repaired);
    let Some(raw) = deserialized.raw else {
        return finish(empty(), errors);
    };

    let base_dir = origin
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .to_path_buf();
    let mut validator = Validator {
        index: &index,
        base_dir,
        suppressed,
        errors,
    };
    let config = validator.config(raw, origin);
    finish(config, validator.errors)
}

/// Collects problems while building typed values.
struct Validator<'a> {
    index: &'a SpanIndex,
    /// The configuration file's directory, against which relative paths are resolved.
    base_dir: PathBuf,
    /// Keys whose environment interpolation failed; their values are not checked further.
    suppressed: HashSet<KeyPath>,
    errors: Vec<ConfigError>,
}

impl Validator<'_> {
    fn report(&mut self, path: &KeyPath, message: impl Into<String>) {
        let related = |other: &KeyPath| {
            let (short, long) = if other.segments().len() <= path.segments().len() {
                (other.segments(), path.segments())
            } else {
                (path.segments(), other.segments())
            };
            long.starts_with(short)
        };
        if self.suppressed.iter().any(related) {
            return;
        }
        self.errors.push(ConfigError {
            line: self.index.line(path),
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// The clusters and flows of `raw` without a problem; every problem is reported.
    fn config(&mut self, raw: RawConfig, origin: &Path) -> Config {
        let root = KeyPath::root();
        let cluster_names: Vec<String> = raw.clusters.keys().cloned().collect();
        let mut clusters = BTreeMap::new();
        for (name, cluster) in raw.clusters {
            let path = root.key("clusters").key(&name);
            match self.cluster(&path, name, cluster) {
                Some(cluster) if self.is_clean(&path) => {
                    clusters.insert(cluster.name.clone(), cluster);
                }
                _ => {}
            }
        }

        if raw.flows.is_empty() {
            self.report(
                &root.key("flows"),
                "at least one flow is required: add a `[[flows]]` table",
            );
        }
        let mut flows = Vec::new();
        let mut first_flow_at: HashMap<(String, String), usize> = HashMap::new();
        let mut group_owner: HashMap<String, FlowId> = HashMap::new();
        for (position, flow) in raw.flows.into_iter().enumerate() {
            let path = root.key("flows").index(position);
            let pair = (flow.source.clone(), flow.target.clone());
            let duplicate_of = first_flow_at.get(&pair).copied();
            if let Some(first) = duplicate_of {
                let first_line = self
                    .index
                    .line(&root.key("flows").index(first))
                    .map_or_else(String::new, |line| {
                        format!(" (first defined at line {line})")
                    });
                self.report(
                    &path,
                    format!("duplicate flow {}->{}{first_line}", pair.0, pair.1),
                );
            } else {
                first_flow_at.insert(pair, position);
            }
            let Some(flow) = self.flow(&path, flow, &cluster_names) else {
                continue;
            };
            if duplicate_of.is_some() {
                continue;
            }
            if let Some(owner) = group_owner.get(&flow.group_id) {
                self.report(
                    &path.key("group_id"),
                    format!(
                        "group `{}` is already used by flow {owner}; each flow needs its own group",
                        flow.group_id
                    ),
                );
                continue;
            }
            group_owner.insert(flow.group_id.clone(), flow.id.clone());
            if self.is_clean(&path) {
                flows.push(flow);
            }
        }

        Config {
            path: origin.to_path_buf(),
            clusters,
            flows,
        }
    }

    /// Whether no problem was found at `path` or inside it (a reported one, or a value that
    /// interpolation or deserialisation could not use).
    fn is_clean(&self, path: &KeyPath) -> bool {
        let prefix = path.to_string();
        let inside = |key: &str| {
            key.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        !self.errors.iter().any(|error| inside(&error.key))
            && !self.suppressed.iter().any(|key| inside(&key.to_string()))
    }

    fn in_range(&mut self, path: &KeyPath, value: i64, min: i64, max: i64) -> Option<i64> {
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            self.report(
                path,
                format!("must be between {min} and {max}, not {value}"),
            );
            None
        }
    }

    fn duration(&mut self, path: &KeyPath, text: &str) -> Option<Duration> {
        match humantime::parse_duration(text.trim()) {
            Ok(duration) if duration.is_zero() => {
                self.report(path, "must be greater than zero");
                None
            }
            Ok(duration) => Some(duration),
            Err(error) => {
                self.report(
                    path,
                    format!(
                        "invalid duration `{text}`: {error} (write e.g. \"500ms\", \"30s\", \"5m\")"
                    ),
                );
                None
            }
        }
    }
}

/// Whether the value at `path` is a secret, so that no message may quote it.
pub(super) fn is_secret_path(path: &KeyPath) -> bool {
    let Some(key) = path.last_key() else {
        return false;
    };
    if matches!(key, "password" | "key_password") {
        return true;
    }
    let parent = path.parent();
    matches!(
        parent.as_ref().and_then(KeyPath::last_key),
        Some("librdkafka" | "consumer" | "producer" | "admin")
    ) && is_secret_librdkafka_key(key)
}

/// Keeps a message on one line, so that each problem is one line of output.
pub(in crate::config) fn one_line(message: &str) -> String {
    message.trim().replace(['\n', '\r'], "; ")
}
