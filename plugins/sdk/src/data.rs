//! The data-path plugin traits, [`Filter`] and [`Transform`], and the per-batch glue that runs
//! them over a packed batch and packs their answers (verdict bytes, replacements, errors).

use crate::Config;
use crate::bindings::transform::ferry::plugin::types::{
    BatchOrigin, FilterResult, RecordBatch, RecordError, TransformResult,
};
use crate::records::{BatchView, BatchWriter, DROP, FAIL, KEEP, NewRecord, REPLACE, RecordRef};

/// A record filter: decides, per record, whether it is replicated. Export it with
/// [`export_filter!`](crate::export_filter).
///
/// ```
/// use ferry_plugin_sdk::{Config, Filter, RecordRef};
///
/// /// Drops records whose `env` header is `test`.
/// #[derive(Default)]
/// struct NoTestRecords;
///
/// impl Filter for NoTestRecords {
///     fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
///         Ok(record.header("env").and_then(|header| header.value()) != Some(b"test"))
///     }
/// }
///
/// ferry_plugin_sdk::export_filter!(NoTestRecords);
/// # fn main() {}
/// ```
pub trait Filter {
    /// Reads the configuration: the flow's `with` table for this plugin, then
    /// `source.cluster.alias` and `target.cluster.alias`. Called once per instance, on a value
    /// built with `Default::default()`, before any record. `Err(message)` refuses the
    /// configuration and the flow does not start. The default accepts anything.
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// `Ok(true)` to replicate `record`, `Ok(false)` to drop it. `Err(message)` means this
    /// record cannot be handled: the host applies the flow's error policy (`on_error`: halt,
    /// skip or dead-letter) to it alone. A panic traps the instance: the host re-creates it and
    /// finds the record that caused it, which is slower, so prefer `Err`.
    fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String>;
}

/// What a [`Transform`] does with one record.
#[derive(Debug, Clone)]
pub enum Outcome<'a> {
    /// Replicate the record unchanged (free: the host reuses its original bytes).
    Keep,
    /// Do not replicate the record.
    Drop,
    /// Replicate this record instead, to the same remote topic and partition.
    Replace(NewRecord<'a>),
}

/// A record transform: keeps, drops or rewrites each record. Export it with
/// [`export_transform!`](crate::export_transform).
///
/// ```
/// use ferry_plugin_sdk::{Outcome, RecordRef, Transform};
///
/// /// Upper-cases UTF-8 values and marks them with a header.
/// #[derive(Default)]
/// struct Shout;
///
/// impl Transform for Shout {
///     fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
///         let Some(text) = record.value_str() else {
///             return Ok(Outcome::Keep);
///         };
///         Ok(Outcome::Replace(record.edit().value(text.to_uppercase()).header("shouted", "yes")))
///     }
/// }
///
/// ferry_plugin_sdk::export_transform!(Shout);
/// # fn main() {}
/// ```
pub trait Transform {
    /// Reads the configuration, as [`Filter::init`].
    fn init(&mut self, config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// What to do with `record`. `Err(message)` means this record cannot be handled; the host
    /// applies the flow's error policy to it alone (see [`Filter::keep`]).
    fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String>;
}

/// Runs `filter` over a batch and packs its answer.
pub(crate) fn filter_batch<F: Filter>(
    filter: &mut F,
    origin: &BatchOrigin,
    batch: &RecordBatch,
) -> FilterResult {
    let view = BatchView::new(origin, batch);
    let count = view.len();
    let mut verdicts = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for index in 0..count {
        let verdict = match filter.keep(view.record(index)) {
            Ok(true) => KEEP,
            Ok(false) => DROP,
            Err(message) => {
                errors.push(RecordError {
                    index: index as u32,
                    message,
                });
                FAIL
            }
        };
        verdicts.push(verdict);
    }
    FilterResult { verdicts, errors }
}

/// Runs `transform` over a batch and packs its answer.
pub(crate) fn transform_batch<T: Transform>(
    transform: &mut T,
    origin: &BatchOrigin,
    batch: &RecordBatch,
) -> TransformResult {
    let view = BatchView::new(origin, batch);
    let count = view.len();
    let mut verdicts = Vec::with_capacity(count);
    let mut replacements = BatchWriter::new();
    let mut errors = Vec::new();
    for index in 0..count {
        let verdict = match transform.transform(view.record(index)) {
            Ok(Outcome::Keep) => KEEP,
            Ok(Outcome::Drop) => DROP,
            Ok(Outcome::Replace(record)) => {
                replacements.push(&record);
                REPLACE
            }
            Err(message) => {
                errors.push(RecordError {
                    index: index as u32,
                    message,
                });
                FAIL
            }
        };
        verdicts.push(verdict);
    }
    TransformResult {
        verdicts,
        replacements: replacements.finish(),
        errors,
    }
}
