//! Test fixture: keeps records, except that it panics (a trap) on a record whose value contains
//! `marker` (config, default `poison`) and reports a per-record error for a record whose value
//! contains `fail_marker` (config, default `fail`).

use ferry_plugin_sdk::{Config, Outcome, RecordRef, Transform};

#[derive(Default)]
struct TrapTransform {
    marker: Vec<u8>,
    fail_marker: Vec<u8>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

impl Transform for TrapTransform {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.marker = config.get("marker").unwrap_or("poison").as_bytes().to_vec();
        self.fail_marker = config
            .get("fail_marker")
            .unwrap_or("fail")
            .as_bytes()
            .to_vec();
        Ok(())
    }

    #[allow(
        clippy::panic,
        reason = "trapping on the marker is this fixture's purpose"
    )]
    fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
        let value = record.value().unwrap_or_default();
        if contains(value, &self.marker) {
            panic!(
                "trap-transform: poison record at offset {}",
                record.offset()
            );
        }
        if contains(value, &self.fail_marker) {
            return Err(format!(
                "cannot handle the record at offset {}",
                record.offset()
            ));
        }
        Ok(Outcome::Keep)
    }
}

ferry_plugin_sdk::export_transform!(TrapTransform);
