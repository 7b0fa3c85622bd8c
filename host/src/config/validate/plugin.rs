//! A flow's plugin references: its policy, its `filters` and `transforms` chains and its
//! topic, group and config-property filters (`{ uses = "...", with = { ... } }`).
//!
//! This module owns which plugins may be built in (only policies), the check that a plugin
//! file exists (it loads nothing), and the order of `with` settings (as written in the file).

use super::Validator;
use crate::config::location::KeyPath;
use crate::config::raw::{ChainPluginConfig, PluginConfig};
use crate::config::{PluginRef, PluginSource};

impl Validator<'_> {
    /// A flow's `filters` or `transforms` list: every entry is checked, problems are all
    /// reported.
    pub(super) fn chain(
        &mut self,
        path: &KeyPath,
        raw: Vec<ChainPluginConfig>,
    ) -> Option<Vec<PluginRef>> {
        let mut plugins = Some(Vec::with_capacity(raw.len()));
        for (index, entry) in raw.into_iter().enumerate() {
            let plugin = self.wasm_plugin(&path.index(index), entry);
            match (plugin, &mut plugins) {
                (Some(plugin), Some(list)) => list.push(plugin),
                _ => plugins = None,
            }
        }
        plugins
    }

    /// An optional `.wasm` plugin (`topic_filter`, `group_filter`, `config_property_filter`).
    pub(super) fn optional_plugin(
        &mut self,
        path: &KeyPath,
        raw: Option<ChainPluginConfig>,
    ) -> Option<Option<PluginRef>> {
        match raw {
            None => Some(None),
            Some(entry) => self.wasm_plugin(path, entry).map(Some),
        }
    }

    /// A plugin that must be a `.wasm` file (only policies are built in).
    fn wasm_plugin(&mut self, path: &KeyPath, entry: ChainPluginConfig) -> Option<PluginRef> {
        if PluginSource::builtin_name(entry.uses.trim()).is_some() {
            self.report(
                &path.key("uses"),
                "only policies are built in (MM2's default filters are the flow's `topics`, `groups` and `config_properties_exclude` keys); name a .wasm file",
            );
            return None;
        }
        self.plugin(
            path,
            PluginConfig {
                uses: entry.uses,
                with: entry.with,
            },
        )
    }

    pub(super) fn plugin(&mut self, path: &KeyPath, raw: PluginConfig) -> Option<PluginRef> {
        let uses_path = path.key("uses");
        let uses = raw.uses.trim();
        let source = match PluginSource::parse(uses, &self.base_dir) {
            _ if uses.is_empty() => {
                self.report(&uses_path, "must not be empty");
                None
            }
            PluginSource::Builtin(name) if !PluginSource::is_known_builtin(&name) => {
                self.report(
                    &uses_path,
                    format!(
                        "unknown built-in plugin `{uses}` (expected one of: {}, or the path of a .wasm file)",
                        PluginSource::known_builtins()
                    ),
                );
                None
            }
            builtin @ PluginSource::Builtin(_) => Some(builtin),
            PluginSource::File(file) if file.is_file() => Some(PluginSource::File(file)),
            PluginSource::File(file) => {
                let problem = if file.exists() {
                    format!("plugin `{}` is not a file", file.display())
                } else {
                    format!("plugin file `{}` does not exist", file.display())
                };
                self.report(&uses_path, problem);
                None
            }
        };
        let with_path = path.key("with");
        let mut with: Vec<(String, String)> = raw
            .with
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect();
        with.sort_by_key(|(key, _)| {
            self.index
                .key_offset(&with_path.key(key))
                .unwrap_or(usize::MAX)
        });
        Some(PluginRef {
            uses: source?,
            with,
        })
    }
}
