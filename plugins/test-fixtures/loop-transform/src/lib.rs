//! Test fixture: keeps records, but loops forever on a record whose value contains `marker`
//! (config, default `loop`); the host's CPU deadline must stop it.

use ferry_plugin_sdk::{Config, Outcome, RecordRef, Transform};

#[derive(Default)]
struct LoopTransform {
    marker: Vec<u8>,
}

impl Transform for LoopTransform {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.marker = config.get("marker").unwrap_or("loop").as_bytes().to_vec();
        Ok(())
    }

    fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
        let value = record.value().unwrap_or_default();
        if value
            .windows(self.marker.len().max(1))
            .any(|window| window == self.marker)
        {
            let mut spins: u64 = 0;
            loop {
                spins = std::hint::black_box(spins.wrapping_add(value.len() as u64));
            }
        }
        Ok(Outcome::Keep)
    }
}

ferry_plugin_sdk::export_transform!(LoopTransform);
