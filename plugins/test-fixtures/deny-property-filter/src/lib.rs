//! Test fixture: a config-property filter that copies every property except those listed in
//! `deny` (config, comma-separated, default `retention.ms`).

use ferry_plugin_sdk::{Config, ConfigPropertyFilter};

#[derive(Default)]
struct DenyPropertyFilter {
    deny: Vec<String>,
}

impl ConfigPropertyFilter for DenyPropertyFilter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.deny = config
            .get("deny")
            .unwrap_or("retention.ms")
            .split(',')
            .map(|name| name.trim().to_owned())
            .collect();
        Ok(())
    }

    fn should_replicate_config_property(&self, name: &str) -> bool {
        !self.deny.iter().any(|denied| denied == name)
    }
}

ferry_plugin_sdk::export_config_property_filter!(DenyPropertyFilter);
