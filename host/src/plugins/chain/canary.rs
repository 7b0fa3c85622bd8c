//! The canary: the golden batch a new filter or transform version must get through before a hot
//! swap makes it live ([`PluginVersion::canary`]), and what the version did with it
//! ([`CanaryReport`]).

use std::fmt;

use super::packed::{PackedBatch, RecordInput, Verdict};
use super::version::{CallFailure, PluginVersion};
use crate::plugins::engine::Engine;
use crate::plugins::error::PluginError;

impl PluginVersion {
    /// Runs a fresh instance on the golden batch (`canary_batch`): the check a new version
    /// passes before a hot swap makes it live. A trap, a timeout, a refused batch or an answer
    /// that breaks the contract fails it; per-record errors are counted, not failures (a
    /// transform may rightly refuse a sample that is not JSON).
    ///
    /// # Errors
    ///
    /// The instantiation, `init` or call failure.
    pub fn canary(&self, engine: &Engine) -> Result<CanaryReport, PluginError> {
        let batch = canary_batch();
        let mut live = self.instantiate(engine)?;
        let (verdicts, _) = self
            .answer(engine, &mut live, &batch, 0)
            .map_err(|(CallFailure::Answer(error) | CallFailure::Trap(error))| error)?;
        let verdicts = verdicts.into_mapped();
        let mut report = CanaryReport {
            records: verdicts.len(),
            ..CanaryReport::default()
        };
        for verdict in verdicts {
            match verdict {
                Verdict::Keep => report.kept += 1,
                Verdict::Drop => report.dropped += 1,
                Verdict::Replace(..) => report.replaced += 1,
                Verdict::Fail(..) => report.failed += 1,
            }
        }
        Ok(report)
    }
}

/// What a new version did with the golden batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CanaryReport {
    /// Records in the golden batch.
    pub records: usize,
    /// Kept as they are.
    pub kept: usize,
    /// Dropped.
    pub dropped: usize,
    /// Replaced (transforms).
    pub replaced: usize,
    /// Failed with a per-record error.
    pub failed: usize,
}

impl fmt::Display for CanaryReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} records: {} kept, {} dropped, {} replaced, {} failed",
            self.records, self.kept, self.dropped, self.replaced, self.failed
        )
    }
}

/// The golden batch a new version must get through: JSON and plain values, null keys and
/// values, an empty value, binary bytes, a 1 KiB value, headers with and without values, two
/// topics and partitions.
fn canary_batch() -> PackedBatch {
    let large = vec![b'x'; 1024];
    /// Key, value, headers.
    type Sample<'a> = (
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        &'a [(&'a str, Option<&'a [u8]>)],
    );
    let records: [Sample<'_>; 8] = [
        (
            Some(b"order-1"),
            Some(br#"{"id":1,"ssn":"123-45-6789","name":"Ada"}"#),
            &[("env", Some(b"prod"))],
        ),
        (
            Some(b"order-2"),
            Some(br#"{"id":2,"nested":{"ssn":"987-65-4321"},"tags":["a","b"]}"#),
            &[("env", Some(b"test")), ("trace", None)],
        ),
        (Some(b"order-3"), Some(b"plain text, not JSON"), &[]),
        (Some(b"order-4"), None, &[("env", Some(b"prod"))]),
        (None, Some(br#"{"id":5}"#), &[]),
        (Some(b""), Some(b""), &[("", Some(b""))]),
        (
            Some(&[0xff, 0x00, 0xfe]),
            Some(&[0x80, 0x81, 0x00, 0xff]),
            &[("bin", Some(&[0xff]))],
        ),
        (
            Some(b"large"),
            Some(&large),
            &[("a", Some(b"1")), ("b", Some(b"2")), ("a", Some(b"3"))],
        ),
    ];
    let mut batch = PackedBatch::default();
    for (index, (key, value, headers)) in records.into_iter().enumerate() {
        let (topic, remote) = if index % 2 == 0 {
            ("orders", "A.orders")
        } else {
            ("payments", "A.payments")
        };
        batch.push(RecordInput {
            topic,
            remote_topic: remote,
            partition: (index % 3) as i32,
            offset: 1000 + index as i64,
            key,
            value,
            timestamp: (index != 3).then_some(1_764_547_200_000 + index as i64),
            headers: headers.iter().copied(),
        });
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::CanaryReport;
    use crate::plugins::{Engine, PluginError, PluginSource, PluginVersion, StageKind};

    fn version(
        engine: &Engine,
        file: &str,
        kind: StageKind,
        with: &[(&str, &str)],
    ) -> PluginVersion {
        let with: Vec<(String, String)> = with
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        let source = PluginSource::File(std::path::Path::new(env!("FERRY_PLUGIN_DIR")).join(file));
        PluginVersion::load(engine, kind, &source, &with).unwrap()
    }

    fn report(
        records: usize,
        kept: usize,
        dropped: usize,
        replaced: usize,
        failed: usize,
    ) -> CanaryReport {
        CanaryReport {
            records,
            kept,
            dropped,
            replaced,
            failed,
        }
    }

    #[test]
    fn canary_counts_verdicts_and_a_failed_call_rejects_the_version() {
        let engine = Engine::new().unwrap();
        let check = |file: &str,
                     kind: StageKind,
                     with: &[(&str, &str)],
                     expected: Result<CanaryReport, &str>| {
            let answer = version(&engine, file, kind, with).canary(&engine);
            let answer = answer.map_err(|error: PluginError| error.to_string());
            assert_eq!(
                answer.as_ref().copied().map_err(String::as_str),
                expected,
                "{file} {with:?}"
            );
        };
        check(
            "identity_transform.wasm",
            StageKind::Transform,
            &[],
            Ok(report(8, 8, 0, 0, 0)),
        );
        // Every value but the null one gets the suffix.
        check(
            "suffix_transform.wasm",
            StageKind::Transform,
            &[],
            Ok(report(8, 1, 0, 7, 0)),
        );
        // Two samples carry `env=prod`.
        check(
            "header_filter.wasm",
            StageKind::Filter,
            &[("header", "env"), ("value", "prod")],
            Ok(report(8, 6, 2, 0, 0)),
        );
        // A per-record error is counted, not a failure: the sample that is not JSON.
        check(
            "trap_transform.wasm",
            StageKind::Transform,
            &[("fail_marker", "not JSON")],
            Ok(report(8, 7, 0, 0, 1)),
        );
        check(
            "trap_transform.wasm",
            StageKind::Transform,
            &[("marker", "ssn")],
            Err("plugin `trap_transform.wasm` trapped in `transform(8 record(s))`"),
        );
        check(
            "malformed_transform.wasm",
            StageKind::Transform,
            &[],
            Err(
                "plugin `malformed_transform.wasm` answered `transform` on 8 record(s) with a malformed result: 7 verdicts for 8 records",
            ),
        );
    }
}
