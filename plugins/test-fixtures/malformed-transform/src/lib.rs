//! Test fixture: a transform written against the raw bindings whose answers break the batch
//! contract, by `mode` (config):
//!
//! * `short` (default): one verdict fewer than records;
//! * `bad-verdict`: verdict byte 9 for every record;
//! * `missing-replacement`: verdict `replace` for every record, no replacement records;
//! * `missing-error`: verdict `fail` for every record, no error entries;
//! * `refuse`: `err(..)` for the whole call.
//!
//! The host must treat each as a plugin failure, never as dropped records.

use std::cell::RefCell;

use ferry_plugin_sdk::bindings::transform::exports::ferry::plugin::record_transform::Guest;
use ferry_plugin_sdk::bindings::transform::ferry::plugin::types::{
    BatchOrigin, RecordBatch, TransformResult,
};

std::thread_local! {
    static MODE: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Malformed;

impl Guest for Malformed {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let mode = config
            .iter()
            .rev()
            .find(|(key, _)| key == "mode")
            .map_or("short", |(_, value)| value.as_str())
            .to_owned();
        MODE.with(|cell| *cell.borrow_mut() = mode);
        Ok(())
    }

    fn transform(_origin: BatchOrigin, batch: RecordBatch) -> Result<TransformResult, String> {
        let count = batch.records.len() / 6;
        let empty = RecordBatch {
            data: Vec::new(),
            records: Vec::new(),
            timestamps: Vec::new(),
            headers: Vec::new(),
        };
        let verdicts = |byte: u8, len: usize| vec![byte; len];
        MODE.with(|cell| match cell.borrow().as_str() {
            "bad-verdict" => Ok(TransformResult {
                verdicts: verdicts(9, count),
                replacements: empty,
                errors: Vec::new(),
            }),
            "missing-replacement" => Ok(TransformResult {
                verdicts: verdicts(2, count),
                replacements: empty,
                errors: Vec::new(),
            }),
            "missing-error" => Ok(TransformResult {
                verdicts: verdicts(3, count),
                replacements: empty,
                errors: Vec::new(),
            }),
            "refuse" => Err("malformed-transform refuses every batch".to_owned()),
            _ => Ok(TransformResult {
                verdicts: verdicts(0, count.saturating_sub(1)),
                replacements: empty,
                errors: Vec::new(),
            }),
        })
    }
}

ferry_plugin_sdk::bindings::transform::__export_transform_world!(
    Malformed with_types_in ferry_plugin_sdk::bindings::transform
);
