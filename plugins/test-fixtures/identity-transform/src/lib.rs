//! Test fixture and benchmark baseline: keeps every record unchanged (verdict `keep`, nothing
//! copied back).

use ferry_plugin_sdk::{Outcome, RecordRef, Transform};

#[derive(Default)]
struct Identity;

impl Transform for Identity {
    fn transform<'a>(&mut self, _record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
        Ok(Outcome::Keep)
    }
}

ferry_plugin_sdk::export_transform!(Identity);
