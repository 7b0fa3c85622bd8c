//! From file text to a validated [`Config`].
//!
//! This module owns the pipeline (parse, interpolate, deserialize, check), the [`Validator`]
//! that collects problems, the file-level rules (at least one flow, no duplicate flow, one
//! consumer group per flow) and the typed reading of ranges and durations. The rules of a
//! cluster are in [`cluster`], those of a flow in [`flow`] (its plugin references in
//! [`plugin`]), and the messages for unknown keys in [`unknown`].
//!
//! It collects all problems before returning, each with the key path and the line where the
//! key is written (or, for a defaulted key, where its table starts). It never puts a secret
//! into a message.

mod cluster;
mod flow;
mod plugin;
mod unknown;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::DeTable;

use self::unknown::unknown_key_message;
use super::interpolate::{self, Env};
use super::location::{KeyPath, SpanIndex};
use super::raw::RawConfig;
use super::{Config, ConfigError, ConfigErrors, FlowId, is_secret_librdkafka_key};

/// [`super::parse`] with an injectable environment (tests cannot set process variables safely).
pub(crate) fn parse_with_env(
    text: &str,
    origin: &Path,
    env: Env<'_>,
) -> Result<Config, ConfigErrors> {
    let fail = |mut errors: Vec<ConfigError>| {
        errors.sort_by_key(|error| (error.line.is_none(), error.line));
        ConfigErrors {
            file: origin.to_path_buf(),
            errors,
        }
    };

    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let lines = SpanIndex::lines_only(text);
            return Err(fail(vec![ConfigError {
                line: error.span().map(|span| lines.line_of_offset(span.start)),
                key: String::new(),
                message: one_line(error.message()),
            }]));
        }
    };
    let index = SpanIndex::build(&document, text);
    let span = document.span();
    let mut table = document.into_inner();

    let mut errors = Vec::new();
    let mut interpolation_errors = Vec::new();
    interpolate::interpolate_table(&mut table, &KeyPath::root(), env, &mut interpolation_errors);
    let mut interpolated_paths = HashSet::new();
    for (path, error) in interpolation_errors {
        errors.push(ConfigError {
            line: index.line(&path),
            key: path.to_string(),
            message: error.to_string(),
        });
        interpolated_paths.insert(path);
    }

    let mut unknown_keys = Vec::new();
    let deserializer = toml::de::Deserializer::from(Spanned::new(span, table));
    let deserialized: Result<RawConfig, toml::de::Error> =
        serde_ignored::deserialize(deserializer, |path| {
            unknown_keys.push(KeyPath::from_ignored(&path));
        });
    for path in unknown_keys {
        errors.push(ConfigError {
            line: index.line(&path),
            key: path.to_string(),
            message: unknown_key_message(&path),
        });
    }
    let raw = match deserialized {
        Ok(raw) => raw,
        Err(error) => {
            let path = error
                .span()
                .map(|span| index.path_at(&span))
                .unwrap_or_default();
            let message = if is_secret_path(&path) {
                "has the wrong type (the value is not shown because it is a secret)".to_owned()
            } else {
                one_line(error.message())
            };
            errors.push(ConfigError {
                line: error.span().map(|span| index.line_of_offset(span.start)),
                key: path.to_string(),
                message,
            });
            return Err(fail(errors));
        }
    };

    let base_dir = origin
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .to_path_buf();
    let mut validator = Validator {
        index: &index,
        base_dir,
        suppressed: interpolated_paths,
        errors,
    };
    let config = validator.config(raw, origin);
    match config {
        Some(config) if validator.errors.is_empty() => Ok(config),
        _ => Err(fail(validator.errors)),
    }
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

    fn config(&mut self, raw: RawConfig, origin: &Path) -> Option<Config> {
        let root = KeyPath::root();
        let cluster_names: Vec<String> = raw.clusters.keys().cloned().collect();
        let mut clusters = BTreeMap::new();
        let mut clusters_ok = true;
        for (name, cluster) in raw.clusters {
            match self.cluster(&root.key("clusters").key(&name), name, cluster) {
                Some(cluster) => {
                    clusters.insert(cluster.name.clone(), cluster);
                }
                None => clusters_ok = false,
            }
        }

        if raw.flows.is_empty() {
            self.report(
                &root.key("flows"),
                "at least one flow is required: add a `[[flows]]` table",
            );
        }
        let mut flows = Vec::new();
        let mut flows_ok = true;
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
            match self.flow(&path, flow, &cluster_names) {
                Some(flow) => {
                    if duplicate_of.is_none() {
                        if let Some(owner) = group_owner.get(&flow.group_id) {
                            self.report(
                                &path.key("group_id"),
                                format!(
                                    "group `{}` is already used by flow {owner}; each flow needs its own group",
                                    flow.group_id
                                ),
                            );
                        } else {
                            group_owner.insert(flow.group_id.clone(), flow.id.clone());
                        }
                    }
                    flows.push(flow);
                }
                None => flows_ok = false,
            }
        }

        (clusters_ok && flows_ok).then(|| Config {
            path: origin.to_path_buf(),
            clusters,
            flows,
        })
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
fn is_secret_path(path: &KeyPath) -> bool {
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
