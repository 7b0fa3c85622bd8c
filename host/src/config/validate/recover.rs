//! Deserialising the [`RawConfig`] so that one bad value does not hide the others.
//!
//! serde stops at the first value of the wrong type and at the first missing required key. This
//! module owns the recovery: it reports that problem, repairs the document, and deserialises
//! again, until the document deserialises or cannot be repaired. A value of the wrong type is
//! removed (its key then takes its default); a missing required key gets a placeholder, an
//! empty string (every required key of the `raw` structs is a string). Each repaired key is
//! returned, so that the later checks do not report it a second time. Unknown keys are
//! collected over every attempt.
//!
//! It never puts a secret into a message, and it never changes the index of an array element,
//! so that key paths and lines stay those of the file.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::unknown::unknown_key_message;
use super::{is_secret_path, one_line};
use crate::config::ConfigError;
use crate::config::location::{KeyPath, Segment, SpanIndex};
use crate::config::raw::RawConfig;

/// What deserialising found.
pub(super) struct Deserialized {
    /// The raw structs, unless the document could not be repaired.
    pub(super) raw: Option<RawConfig>,
    /// Unknown keys, values of the wrong type and missing required keys.
    pub(super) errors: Vec<ConfigError>,
    /// The keys that were removed or given a placeholder; their values are not checked further.
    pub(super) repaired: HashSet<KeyPath>,
}

/// How the document is changed after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repair {
    /// The key's value has the wrong type: remove the key.
    Remove(KeyPath),
    /// A required key is missing: insert an empty string.
    Placeholder(KeyPath),
}

/// Deserialises `table` (the whole document, whose span is `span`), repairing it after each
/// failed attempt. Each repair is tried once, so this ends after at most two attempts per key.
pub(super) fn deserialize(
    mut table: DeTable<'_>,
    span: Range<usize>,
    index: &SpanIndex,
) -> Deserialized {
    let mut errors = Vec::new();
    let mut unknown_keys: Vec<KeyPath> = Vec::new();
    let mut repairs: HashSet<Repair> = HashSet::new();
    let mut repaired = HashSet::new();
    loop {
        let deserializer = toml::de::Deserializer::from(Spanned::new(span.clone(), table.clone()));
        let attempt: Result<RawConfig, toml::de::Error> =
            serde_ignored::deserialize(deserializer, |path| {
                let path = KeyPath::from_ignored(&path);
                if !unknown_keys.contains(&path) {
                    unknown_keys.push(path);
                }
            });
        let error = match attempt {
            Ok(raw) => {
                errors.extend(unknown_errors(&unknown_keys, index));
                return Deserialized {
                    raw: Some(raw),
                    errors,
                    repaired,
                };
            }
            Err(error) => error,
        };
        let path = error
            .span()
            .map(|span| index.path_at(&span))
            .unwrap_or_default();
        // serde's `de::Error::missing_field` message; toml keeps serde's default wording.
        let missing = error
            .message()
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        let repair = match missing {
            Some(field) => Repair::Placeholder(path.key(field)),
            None => Repair::Remove(table_key(&path)),
        };
        let placeholder_for_removed = matches!(
            &repair,
            Repair::Placeholder(key) if repairs.contains(&Repair::Remove(key.clone()))
        );
        // A required key whose value had the wrong type is reported once, not also as missing.
        if !placeholder_for_removed {
            errors.push(type_error(&error, &path, index));
        }
        let applied = !repairs.contains(&repair) && apply(&mut table, &repair, index);
        if !applied {
            errors.extend(unknown_errors(&unknown_keys, index));
            return Deserialized {
                raw: None,
                errors,
                repaired,
            };
        }
        let (Repair::Remove(key) | Repair::Placeholder(key)) = &repair;
        repaired.insert(key.clone());
        repairs.insert(repair);
    }
}

/// The error for a failed attempt at `path`.
fn type_error(error: &toml::de::Error, path: &KeyPath, index: &SpanIndex) -> ConfigError {
    let message = if is_secret_path(path) {
        "has the wrong type (the value is not shown because it is a secret)".to_owned()
    } else {
        one_line(error.message())
    };
    ConfigError {
        line: error.span().map(|span| index.line_of_offset(span.start)),
        key: path.to_string(),
        message,
    }
}

fn unknown_errors<'a>(
    paths: &'a [KeyPath],
    index: &'a SpanIndex,
) -> impl Iterator<Item = ConfigError> + 'a {
    paths.iter().map(|path| ConfigError {
        line: index.line(path),
        key: path.to_string(),
        message: unknown_key_message(path),
    })
}

/// The innermost table key that holds `path`: a bad array element removes its whole array,
/// so that the indices of the other elements do not change.
fn table_key(path: &KeyPath) -> KeyPath {
    let mut key = path.clone();
    while let Some(Segment::Index(_)) = key.segments().last() {
        match key.parent() {
            Some(parent) => key = parent,
            None => break,
        }
    }
    key
}

/// Applies `repair` to `table`; false if the path does not lead to a table key.
fn apply(table: &mut DeTable<'_>, repair: &Repair, index: &SpanIndex) -> bool {
    let (Repair::Remove(path) | Repair::Placeholder(path)) = repair;
    let Some((Segment::Key(key), parent_segments)) = path.segments().split_last() else {
        return false;
    };
    let Some(parent) = table_at(table, parent_segments) else {
        return false;
    };
    match repair {
        Repair::Remove(_) => parent.remove(key.as_str()).is_some(),
        Repair::Placeholder(_) => {
            // The placeholder spans its whole table, so that a problem serde finds in it is
            // reported at the table, never at a key written in it.
            let span = path
                .parent()
                .and_then(|parent| index.value_span(&parent))
                .unwrap_or(0..0);
            parent.insert(
                Spanned::new(span.clone(), Cow::Owned(key.clone())),
                Spanned::new(span, DeValue::String(Cow::Borrowed(""))),
            );
            true
        }
    }
}

/// The table at `segments` inside `table`.
fn table_at<'t, 'i>(
    table: &'t mut DeTable<'i>,
    segments: &[Segment],
) -> Option<&'t mut DeTable<'i>> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(table);
    };
    let Segment::Key(key) = first else {
        return None;
    };
    let mut value = table.get_mut(key.as_str())?.get_mut();
    let mut rest = rest;
    loop {
        match (value, rest.split_first()) {
            (DeValue::Table(inner), _) => return table_at(inner, rest),
            (DeValue::Array(array), Some((Segment::Index(position), tail))) => {
                value = array.get_mut(*position)?.get_mut();
                rest = tail;
            }
            _ => return None,
        }
    }
}
