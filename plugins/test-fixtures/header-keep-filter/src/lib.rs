//! Test fixture: the inverse of `header-filter` with the same configuration. A record whose
//! last header named `header` (default `drop`) does not have the value `value` is dropped;
//! records without that header are kept. With `header-filter` and one `value`, every record
//! carrying the header is kept by exactly one of the two, which is what the hot-swap test
//! reads to know which version filtered it.

use ferry_plugin_sdk::{Config, Filter, RecordRef};

#[derive(Default)]
struct HeaderKeepFilter {
    header: String,
    value: Vec<u8>,
}

impl Filter for HeaderKeepFilter {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.header = config.get("header").unwrap_or("drop").to_owned();
        self.value = config
            .get("value")
            .ok_or("`value` is required")?
            .as_bytes()
            .to_vec();
        Ok(())
    }

    fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
        Ok(match record.header(&self.header) {
            None => true,
            Some(header) => header.value() == Some(self.value.as_slice()),
        })
    }
}

ferry_plugin_sdk::export_filter!(HeaderKeepFilter);
