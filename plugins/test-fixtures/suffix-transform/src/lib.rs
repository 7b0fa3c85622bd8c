//! Test fixture and benchmark transform: appends `suffix` (config, default `!`) to every value
//! and appends a header `transformed-by` whose value is the suffix, so a chain's order shows in
//! the output. Tombstones are kept.

use ferry_plugin_sdk::{Config, Outcome, RecordRef, Transform};

#[derive(Default)]
struct Suffix {
    suffix: String,
}

impl Transform for Suffix {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.suffix = config.get("suffix").unwrap_or("!").to_owned();
        Ok(())
    }

    fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
        let Some(value) = record.value() else {
            return Ok(Outcome::Keep);
        };
        let mut changed = Vec::with_capacity(value.len() + self.suffix.len());
        changed.extend_from_slice(value);
        changed.extend_from_slice(self.suffix.as_bytes());
        Ok(Outcome::Replace(
            record
                .edit()
                .value(changed)
                .header("transformed-by", self.suffix.clone()),
        ))
    }
}

ferry_plugin_sdk::export_transform!(Suffix);
