//! [`PluginSource`]: where a plugin comes from, and the one parser of a `uses` value
//! (`builtin:<name>`, or the path of a `.wasm` component). It owns the `builtin:` prefix, the
//! names plugins get in logs and errors, which builtin names exist (the table of embedded
//! components is `builtin.rs`) and reading a source's component bytes.
//!
//! The configuration (`crate::config`) validates `uses` with these functions and reports
//! problems with their line; `ferry plugin check` parses its argument with
//! [`PluginSource::parse`]. This module knows nothing about the configuration.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use super::builtin;
use super::error::PluginError;

/// The prefix of a builtin plugin in a `uses` value.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// Where a plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A plugin compiled into Ferry, by name without the `builtin:` prefix
    /// (`default-policy`, `identity-policy`).
    Builtin(String),
    /// A WebAssembly component file.
    File(PathBuf),
}

impl PluginSource {
    /// Parses a `uses` value: `builtin:<name>`, or a path, which is resolved against
    /// `base_dir` (the configuration file's folder) when relative. Nothing is checked here:
    /// the configuration checks that the file exists and that the builtin is known
    /// ([`PluginSource::is_known_builtin`]), and loading reports a missing file or an unknown
    /// builtin.
    pub fn parse(uses: &str, base_dir: &Path) -> PluginSource {
        match PluginSource::builtin_name(uses) {
            Some(name) => PluginSource::Builtin(name.to_owned()),
            // `join` keeps an absolute path as it is.
            None => PluginSource::File(base_dir.join(uses)),
        }
    }

    /// The name after `builtin:` when `uses` names a builtin (known or not), else `None`.
    pub fn builtin_name(uses: &str) -> Option<&str> {
        uses.strip_prefix(BUILTIN_PREFIX)
    }

    /// Whether `name` (without the `builtin:` prefix) is a builtin plugin.
    pub fn is_known_builtin(name: &str) -> bool {
        builtin::lookup(name).is_some()
    }

    /// The builtins, for messages: `builtin:default-policy, builtin:identity-policy`.
    pub fn known_builtins() -> String {
        builtin::names()
            .map(|name| format!("{BUILTIN_PREFIX}{name}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The name used in logs and errors: `builtin:<name>`, or the file name.
    pub fn plugin_name(&self) -> String {
        match self {
            PluginSource::Builtin(name) => format!("{BUILTIN_PREFIX}{name}"),
            PluginSource::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            ),
        }
    }
}

/// `builtin:<name>`, or the whole path.
impl fmt::Display for PluginSource {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::Builtin(name) => write!(formatter, "{BUILTIN_PREFIX}{name}"),
            PluginSource::File(path) => write!(formatter, "{}", path.display()),
        }
    }
}

/// The component bytes: the embedded builtin, or the file's content.
///
/// # Errors
///
/// [`PluginError::UnknownBuiltin`], [`PluginError::NotFound`], [`PluginError::Read`].
pub(crate) fn read(source: &PluginSource) -> Result<Cow<'static, [u8]>, PluginError> {
    match source {
        PluginSource::Builtin(name) => {
            builtin::lookup(name)
                .map(Cow::Borrowed)
                .ok_or_else(|| PluginError::UnknownBuiltin {
                    name: name.clone(),
                    known: PluginSource::known_builtins(),
                })
        }
        PluginSource::File(path) => std::fs::read(path).map(Cow::Owned).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                PluginError::NotFound {
                    path: path.clone(),
                    source: error,
                }
            } else {
                PluginError::Read {
                    path: path.clone(),
                    source: error,
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::PluginSource;

    #[test]
    fn parses_uses() {
        let base = Path::new("/etc/ferry");
        let check = |uses: &str, expected: PluginSource, name: &str, display: &str| {
            let source = PluginSource::parse(uses, base);
            assert_eq!(source, expected, "{uses}");
            assert_eq!(source.plugin_name(), name, "{uses}");
            assert_eq!(source.to_string(), display, "{uses}");
        };
        check(
            "builtin:default-policy",
            PluginSource::Builtin("default-policy".to_owned()),
            "builtin:default-policy",
            "builtin:default-policy",
        );
        check(
            "builtin:nope",
            PluginSource::Builtin("nope".to_owned()),
            "builtin:nope",
            "builtin:nope",
        );
        check(
            "plugins/my_policy.wasm",
            PluginSource::File(PathBuf::from("/etc/ferry/plugins/my_policy.wasm")),
            "my_policy.wasm",
            "/etc/ferry/plugins/my_policy.wasm",
        );
        check(
            "/opt/p.wasm",
            PluginSource::File(PathBuf::from("/opt/p.wasm")),
            "p.wasm",
            "/opt/p.wasm",
        );
    }

    #[test]
    fn knows_the_builtins() {
        assert!(PluginSource::is_known_builtin("default-policy"));
        assert!(PluginSource::is_known_builtin("identity-policy"));
        assert!(!PluginSource::is_known_builtin("nope"));
        assert!(!PluginSource::is_known_builtin(""));
        assert_eq!(
            PluginSource::known_builtins(),
            "builtin:default-policy, builtin:identity-policy"
        );
        assert_eq!(
            PluginSource::builtin_name("builtin:x"),
            Some("x"),
            "known or not"
        );
        assert_eq!(PluginSource::builtin_name("x.wasm"), None);
    }
}
