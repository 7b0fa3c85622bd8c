//! Where things are in the configuration file.
//!
//! This module owns [`KeyPath`] (how a key is named in messages, e.g. `flows[0].topics`) and
//! [`SpanIndex`], which maps key paths and byte offsets of the parsed document to line numbers.
//! It knows nothing about what the keys mean.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a [`KeyPath`]: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Segment {
    /// A key of a table.
    Key(String),
    /// An index into an array.
    Index(usize),
}

/// The path of a key in the document, printed as `flows[0].policy.with."a.b"`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The document itself.
    pub(crate) fn root() -> Self {
        Self(Vec::new())
    }

    /// The path of `key` inside the table at `self`.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// The path of element `index` of the array at `self`.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// The enclosing path, or `None` for the root.
    pub(crate) fn parent(&self) -> Option<Self> {
        let (_, init) = self.0.split_last()?;
        Some(Self(init.to_vec()))
    }

    /// The steps of the path, outermost first.
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// The last key of the path, if the path ends with a key.
    pub(crate) fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Segment::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// Converts the path that `serde_ignored` reports for an unknown key.
    pub(crate) fn from_ignored(path: &serde_ignored::Path<'_>) -> Self {
        match path {
            serde_ignored::Path::Root => Self::root(),
            serde_ignored::Path::Seq { parent, index } => Self::from_ignored(parent).index(*index),
            serde_ignored::Path::Map { parent, key } => Self::from_ignored(parent).key(key),
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => Self::from_ignored(parent),
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(formatter, "[{index}]")?,
                Segment::Key(key) => {
                    if position > 0 {
                        formatter.write_str(".")?;
                    }
                    let bare = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        formatter.write_str(key)?;
                    } else {
                        write!(formatter, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where one key or array element is written.
#[derive(Debug, Clone)]
struct Entry {
    /// The span of the key, absent for array elements.
    key_span: Option<Range<usize>>,
    /// The span of the value (for a table opened by a header, the header).
    value_span: Range<usize>,
}

/// Line numbers of every key of a parsed document.
#[derive(Debug, Default)]
pub(crate) struct SpanIndex {
    entries: HashMap<KeyPath, Entry>,
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
}

impl SpanIndex {
    /// Indexes every key and array element of `root`, which was parsed from `text`.
    pub(crate) fn build(root: &Spanned<DeTable<'_>>, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(offset, _)| offset + 1))
            .collect();
        let mut index = Self {
            entries: HashMap::new(),
            line_starts,
        };
        index.add_table(&KeyPath::root(), root.get_ref());
        index
    }

    /// An index that knows only line starts, for errors found before the document parsed.
    pub(crate) fn lines_only(text: &str) -> Self {
        Self {
            entries: HashMap::new(),
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(offset, _)| offset + 1))
                .collect(),
        }
    }

    fn add_table(&mut self, path: &KeyPath, table: &DeTable<'_>) {
        for (key, value) in table.iter() {
            let child = path.key(key.get_ref());
            self.entries.insert(
                child.clone(),
                Entry {
                    key_span: Some(key.span()),
                    value_span: value.span(),
                },
            );
            self.add_value(&child, value.get_ref());
        }
    }

    fn add_value(&mut self, path: &KeyPath, value: &DeValue<'_>) {
        match value {
            DeValue::Table(table) => self.add_table(path, table),
            DeValue::Array(array) => {
                for (position, element) in array.iter().enumerate() {
                    let child = path.index(position);
                    self.entries.insert(
                        child.clone(),
                        Entry {
                            key_span: None,
                            value_span: element.span(),
                        },
                    );
                    self.add_value(&child, element.get_ref());
                }
            }
            DeValue::String(_)
            | DeValue::Integer(_)
            | DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_) => {}
        }
    }

    /// The 1-based line that contains byte `offset`.
    pub(crate) fn line_of_offset(&self, offset: usize) -> usize {
        self.line_starts
            .partition_point(|&start| start <= offset)
            .max(1)
    }

    /// The line where `path` is written. A path that is not in the file (a defaulted key)
    /// gets the line of its nearest enclosing key; the root has no line.
    pub(crate) fn line(&self, path: &KeyPath) -> Option<usize> {
        let mut current = Some(path.clone());
        while let Some(path) = current {
            if let Some(entry) = self.entries.get(&path) {
                let span = entry.key_span.as_ref().unwrap_or(&entry.value_span);
                return Some(self.line_of_offset(span.start));
            }
            current = path.parent();
        }
        None
    }

    /// The span of the value at `path` (for a table opened by a header, the header), if `path`
    /// is written in the file.
    pub(crate) fn value_span(&self, path: &KeyPath) -> Option<Range<usize>> {
        self.entries.get(path).map(|entry| entry.value_span.clone())
    }

    /// The byte offset of the key at `path`, used to restore file order of map entries.
    pub(crate) fn key_offset(&self, path: &KeyPath) -> Option<usize> {
        let entry = self.entries.get(path)?;
        Some(entry.key_span.as_ref().unwrap_or(&entry.value_span).start)
    }

    /// The innermost key whose value covers `span` (the root if none does).
    pub(crate) fn path_at(&self, span: &Range<usize>) -> KeyPath {
        self.entries
            .iter()
            .filter(|(_, entry)| {
                entry.value_span.start <= span.start && span.end <= entry.value_span.end
            })
            .min_by_key(|(path, entry)| {
                (
                    entry.value_span.end - entry.value_span.start,
                    std::cmp::Reverse(path.segments().len()),
                )
            })
            .map(|(path, _)| path.clone())
            .unwrap_or_default()
    }
}
