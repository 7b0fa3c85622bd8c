//! Test fixture: drops every record that has a header named `header` (config, default `drop`);
//! with `value` set, only when the last such header has that value.

use ferry_plugin_sdk::{Config, Filter, RecordRef};

#[derive(Default)]
struct HeaderFilter {
    header: String,
    value: Option<String>,
}

impl Filter for HeaderFilter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.header = config.get("header").unwrap_or("drop").to_owned();
        if self.header.is_empty() {
            return Err("`header` must not be empty".to_owned());
        }
        self.value = config.get("value").map(str::to_owned);
        Ok(())
    }

    fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
        let Some(header) = record.header(&self.header) else {
            return Ok(true);
        };
        Ok(match &self.value {
            None => false,
            Some(value) => header.value() != Some(value.as_bytes()),
        })
    }
}

ferry_plugin_sdk::export_filter!(HeaderFilter);
