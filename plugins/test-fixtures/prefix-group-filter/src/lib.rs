//! Test fixture: a group filter that checkpoints only groups starting with `prefix` (config,
//! default `keep_`).

use ferry_plugin_sdk::{Config, GroupFilter};

#[derive(Default)]
struct PrefixGroupFilter {
    prefix: String,
}

impl GroupFilter for PrefixGroupFilter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.prefix = config.get("prefix").unwrap_or("keep_").to_owned();
        Ok(())
    }

    fn should_replicate_group(&self, group: &str) -> bool {
        group.starts_with(&self.prefix)
    }
}

ferry_plugin_sdk::export_group_filter!(PrefixGroupFilter);
