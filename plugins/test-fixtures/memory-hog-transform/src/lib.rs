//! Test fixture: keeps records, but tries to allocate 4 GiB (in 64 MiB blocks, all kept) on a
//! record whose value contains `marker` (config, default `hog`); the host's memory cap must stop
//! it with a trap.

use ferry_plugin_sdk::{Config, Outcome, RecordRef, Transform};

#[derive(Default)]
struct MemoryHog {
    marker: Vec<u8>,
}

impl Transform for MemoryHog {
    fn init(&mut self, config: &Config) -> Result<(), String> {
        self.marker = config.get("marker").unwrap_or("hog").as_bytes().to_vec();
        Ok(())
    }

    fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
        let value = record.value().unwrap_or_default();
        if value
            .windows(self.marker.len().max(1))
            .any(|window| window == self.marker)
        {
            let mut blocks: Vec<Vec<u8>> = Vec::new();
            for _ in 0..64 {
                blocks.push(vec![1_u8; 64 << 20]);
            }
            if std::hint::black_box(&blocks).len() == 1 {
                return Ok(Outcome::Drop);
            }
        }
        Ok(Outcome::Keep)
    }
}

ferry_plugin_sdk::export_transform!(MemoryHog);
