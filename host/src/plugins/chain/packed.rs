//! The packed record batch of `wit/records.wit` on the host side: the only host file that knows
//! its layout (the guest side is `plugins/sdk/src/records.rs`).
//!
//! - [`PackedBatch`]: the struct-of-arrays input of a call (`batch-origin` + `record-batch`),
//!   filled from plain slices ([`RecordInput`]) and reused between batches.
//! - [`RecordView`]: one record of a packed batch (an input or a transform's replacements), read
//!   back as slices.
//! - The verdict bytes a filter or transform answers with (`keep`, `drop`, `replace`, `fail`),
//!   checked against the batch contract and mapped to [`Verdicts`] ([`map_verdicts`]).
//!
//! Layout: every key, value, header name and header value is an `(offset, length)` pair into
//! one `data` buffer, with length `u32::MAX` for null. A record is six `u32`s in `records` (key
//! offset and length, value offset and length, first header and header count), a header four
//! `u32`s in `headers` (name offset and length, value offset and length), and a timestamp one
//! `i64` in `timestamps` (`-1` for none).

use super::StageKind;
use crate::plugins::bindings::transform::ferry::plugin::types::{
    BatchOrigin, RecordBatch, RecordError,
};

/// Null length in the packed layout.
const NULL_LENGTH: u32 = u32::MAX;
/// `u32`s per record in `records`.
const RECORD_STRIDE: usize = 6;
/// `u32`s per header in `headers`.
const HEADER_STRIDE: usize = 4;
/// Verdict `keep`.
const KEEP: u8 = 0;
/// Verdict `drop`.
const DROP: u8 = 1;
/// Verdict `replace` (transforms only).
const REPLACE: u8 = 2;
/// Verdict `fail`, with an entry in the answer's errors.
const FAIL: u8 = 3;

/// A packed batch, reused between batches: the `batch-origin` and `record-batch` of
/// `wit/records.wit`.
#[derive(Default)]
pub struct PackedBatch {
    pub(super) origin: BatchOrigin,
    pub(super) batch: RecordBatch,
}

/// One record to pack: plain slices, no client types.
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a, H> {
    /// Source topic.
    pub topic: &'a str,
    /// Remote topic.
    pub remote_topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Headers, in order.
    pub headers: H,
}

impl PackedBatch {
    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.origin.topics.clear();
        self.origin.remote_topics.clear();
        self.origin.topic_indexes.clear();
        self.origin.partitions.clear();
        self.origin.offsets.clear();
        self.batch.data.clear();
        self.batch.records.clear();
        self.batch.timestamps.clear();
        self.batch.headers.clear();
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.batch.timestamps.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a record.
    pub fn push<'h, H>(&mut self, record: RecordInput<'_, H>)
    where
        H: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    {
        let topic_index = match self
            .origin
            .topics
            .iter()
            .rposition(|topic| topic == record.topic)
        {
            Some(index) => index,
            None => {
                self.origin.topics.push(record.topic.to_owned());
                self.origin
                    .remote_topics
                    .push(record.remote_topic.to_owned());
                self.origin.topics.len() - 1
            }
        };
        self.origin.topic_indexes.push(topic_index as u32);
        self.origin.partitions.push(record.partition);
        self.origin.offsets.push(record.offset);
        push_record(
            &mut self.batch,
            record.key,
            record.value,
            record.timestamp,
            record.headers,
        );
    }

    /// Record `index`.
    pub(super) fn view(&self, index: usize) -> RecordView<'_> {
        RecordView::new(&self.batch, index)
    }

    /// Appends record `index` of `from`.
    pub(super) fn copy_from(&mut self, from: &PackedBatch, index: usize) {
        self.copy_bytes(from.view(index), from, index);
    }

    /// Appends `view`'s bytes with the origin of record `index` of `origin_of`.
    pub(super) fn copy_bytes(
        &mut self,
        view: RecordView<'_>,
        origin_of: &PackedBatch,
        index: usize,
    ) {
        let origin = &origin_of.origin;
        let topic_index = origin
            .topic_indexes
            .get(index)
            .map_or(0, |index| *index as usize);
        self.push(RecordInput {
            topic: origin.topics.get(topic_index).map_or("", String::as_str),
            remote_topic: origin
                .remote_topics
                .get(topic_index)
                .map_or("", String::as_str),
            partition: origin.partitions.get(index).copied().unwrap_or(-1),
            offset: origin.offsets.get(index).copied().unwrap_or(-1),
            key: view.key(),
            value: view.value(),
            timestamp: view.timestamp(),
            headers: view.headers(),
        });
    }
}

fn push_bytes(batch: &mut RecordBatch, bytes: Option<&[u8]>) -> (u32, u32) {
    match bytes {
        None => (0, NULL_LENGTH),
        Some(bytes) => {
            let offset = batch.data.len() as u32;
            batch.data.extend_from_slice(bytes);
            (offset, bytes.len() as u32)
        }
    }
}

fn push_record<'h>(
    batch: &mut RecordBatch,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    timestamp: Option<i64>,
    headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
) {
    let (key_offset, key_length) = push_bytes(batch, key);
    let (value_offset, value_length) = push_bytes(batch, value);
    let first = (batch.headers.len() / HEADER_STRIDE) as u32;
    let mut count = 0_u32;
    for (name, header_value) in headers {
        let (name_offset, name_length) = push_bytes(batch, Some(name.as_bytes()));
        let (value_offset, value_length) = push_bytes(batch, header_value);
        batch
            .headers
            .extend_from_slice(&[name_offset, name_length, value_offset, value_length]);
        count += 1;
    }
    batch.records.extend_from_slice(&[
        key_offset,
        key_length,
        value_offset,
        value_length,
        first,
        count,
    ]);
    batch.timestamps.push(timestamp.unwrap_or(-1));
}

/// A view of one record of a packed batch (an input or a plugin's replacements).
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

impl<'a> RecordView<'a> {
    /// Record `index` of `batch`; out of range reads as an empty record.
    pub(super) fn new(batch: &'a RecordBatch, index: usize) -> RecordView<'a> {
        RecordView { batch, index }
    }

    fn field(&self, column: usize) -> u32 {
        self.batch
            .records
            .get(self.index * RECORD_STRIDE + column)
            .copied()
            .unwrap_or(0)
    }

    fn bytes(&self, offset: u32, length: u32) -> Option<&'a [u8]> {
        if length == NULL_LENGTH {
            return None;
        }
        let start = offset as usize;
        let end = start.saturating_add(length as usize);
        Some(self.batch.data.get(start..end).unwrap_or_default())
    }

    /// The key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.bytes(self.field(0), self.field(1))
    }

    /// The value.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.bytes(self.field(2), self.field(3))
    }

    /// The timestamp.
    pub fn timestamp(&self) -> Option<i64> {
        self.batch
            .timestamps
            .get(self.index)
            .copied()
            .filter(|timestamp| *timestamp >= 0)
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + use<'a> {
        let first = self.field(4) as usize;
        let count = self.field(5) as usize;
        let view = *self;
        (first..first.saturating_add(count)).map(move |header| {
            let field = |column: usize| {
                view.batch
                    .headers
                    .get(header * HEADER_STRIDE + column)
                    .copied()
                    .unwrap_or(0)
            };
            let name = view
                .bytes(field(0), field(1))
                .and_then(|name| std::str::from_utf8(name).ok())
                .unwrap_or("");
            (name, view.bytes(field(2), field(3)))
        })
    }
}

/// A stage's answers for its input, one per record.
pub(super) enum Verdicts {
    /// Only keep and drop: the verdict bytes as the plugin sent them (checked). The common
    /// answer of a filter, and of a transform that changes nothing; no per-record value built.
    /// Read them with [`is_keep`].
    KeepDrop(Vec<u8>),
    /// Any answer.
    Mapped(Vec<Verdict>),
}

impl Verdicts {
    pub(super) fn into_mapped(self) -> Vec<Verdict> {
        match self {
            Verdicts::KeepDrop(bytes) => bytes
                .iter()
                .map(|verdict| {
                    if is_keep(*verdict) {
                        Verdict::Keep
                    } else {
                        Verdict::Drop
                    }
                })
                .collect(),
            Verdicts::Mapped(verdicts) => verdicts,
        }
    }
}

/// Whether a byte of [`Verdicts::KeepDrop`] keeps its record (else it drops it).
pub(super) fn is_keep(verdict: u8) -> bool {
    verdict == KEEP
}

/// A stage's answer for one record of its input.
pub(super) enum Verdict {
    Keep,
    Drop,
    /// Record `.1` of the replacement batch numbered `.0`.
    Replace(u32, u32),
    /// The message, and whether it is fatal (the stage's circuit breaker is open).
    Fail(String, bool),
}

/// Checks a stage's answer against the batch contract and maps it to verdicts: one verdict
/// per input record, one replacement record per `replace` (transforms only), one error entry per
/// `fail`, at that record's index, and replacement index lists that fit their data.
/// Replacements are numbered `output` in the verdicts.
///
/// # Errors
///
/// What breaks the contract, for [`crate::plugins::PluginError::Malformed`].
pub(super) fn map_verdicts(
    kind: StageKind,
    count: usize,
    verdicts: Vec<u8>,
    errors: Vec<RecordError>,
    replacements: Option<&RecordBatch>,
    output: u32,
) -> Result<Verdicts, String> {
    if verdicts.len() != count {
        return Err(format!("{} verdicts for {count} records", verdicts.len()));
    }
    let replaced = verdicts
        .iter()
        .filter(|verdict| **verdict == REPLACE)
        .count();
    let replacement_count = replacements.map_or(0, |batch| batch.timestamps.len());
    if let Some(batch) = replacements {
        let data = batch.data.len();
        let headers = batch.headers.len() / HEADER_STRIDE;
        let well_formed = batch.records.len() == replacement_count * RECORD_STRIDE
            && batch.headers.len() % HEADER_STRIDE == 0
            && batch.records.chunks_exact(RECORD_STRIDE).all(|row| {
                let fits = |offset: u32, length: u32| {
                    length == NULL_LENGTH
                        || (offset as usize).saturating_add(length as usize) <= data
                };
                fits(row[0], row[1])
                    && fits(row[2], row[3])
                    && (row[4] as usize).saturating_add(row[5] as usize) <= headers
            })
            && batch.headers.chunks_exact(HEADER_STRIDE).all(|row| {
                row[1] != NULL_LENGTH
                    && (row[0] as usize).saturating_add(row[1] as usize) <= data
                    && (row[3] == NULL_LENGTH
                        || (row[2] as usize).saturating_add(row[3] as usize) <= data)
            });
        if !well_formed {
            return Err("the replacement batch's index lists do not fit its data".to_owned());
        }
    }
    if replaced != replacement_count {
        return Err(format!(
            "{replaced} replace verdicts but {replacement_count} replacement records"
        ));
    }
    let failed = verdicts.iter().filter(|verdict| **verdict == FAIL).count();
    if failed != errors.len() {
        return Err(format!(
            "{failed} fail verdicts but {} errors",
            errors.len()
        ));
    }
    if replaced == 0 && failed == 0 && verdicts.iter().all(|verdict| *verdict <= DROP) {
        return Ok(Verdicts::KeepDrop(verdicts));
    }
    let mut errors = errors.into_iter();
    let mut next_replacement = 0_u32;
    let mut mapped = Vec::with_capacity(count);
    for (index, verdict) in verdicts.iter().enumerate() {
        mapped.push(match *verdict {
            KEEP => Verdict::Keep,
            DROP => Verdict::Drop,
            REPLACE if kind == StageKind::Transform => {
                next_replacement += 1;
                Verdict::Replace(output, next_replacement - 1)
            }
            FAIL => match errors.next() {
                Some(error) if error.index as usize == index => Verdict::Fail(error.message, false),
                _ => {
                    return Err(format!(
                        "the errors do not match the fail verdicts at record {index}"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "verdict {other} at record {index} is not valid for a {}",
                    kind.noun()
                ));
            }
        });
    }
    Ok(Verdicts::Mapped(mapped))
}

#[cfg(test)]
mod tests {
    use super::{PackedBatch, RecordInput, Verdict, Verdicts, map_verdicts};
    use crate::plugins::StageKind;
    use crate::plugins::bindings::transform::ferry::plugin::types::{RecordBatch, RecordError};

    type Headers<'a> = &'a [(&'a str, Option<&'a [u8]>)];
    /// Key, value, timestamp, headers.
    type Expected<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<i64>, Headers<'a>);

    fn push(
        batch: &mut PackedBatch,
        topic: &str,
        offset: i64,
        value: Option<&[u8]>,
        headers: Headers<'_>,
    ) {
        batch.push(RecordInput {
            topic,
            remote_topic: &format!("A.{topic}"),
            partition: 2,
            offset,
            key: (offset % 2 == 0).then_some(b"k".as_slice()),
            value,
            timestamp: (offset != 0).then_some(offset * 10),
            headers: headers.iter().copied(),
        });
    }

    #[test]
    fn records_read_back_as_packed_and_topics_are_listed_once() {
        let mut batch = PackedBatch::default();
        push(
            &mut batch,
            "orders",
            0,
            Some(b"v0"),
            &[("a", Some(b"1")), ("n", None)],
        );
        push(&mut batch, "payments", 1, None, &[]);
        push(&mut batch, "orders", 2, Some(b""), &[("", Some(b""))]);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch.origin.topics, ["orders", "payments"]);
        assert_eq!(batch.origin.remote_topics, ["A.orders", "A.payments"]);
        assert_eq!(batch.origin.topic_indexes, [0, 1, 0]);

        let check = |batch: &PackedBatch, index: usize, expected: Expected<'_>| {
            let view = batch.view(index);
            assert_eq!(view.key(), expected.0, "key of {index}");
            assert_eq!(view.value(), expected.1, "value of {index}");
            assert_eq!(view.timestamp(), expected.2, "timestamp of {index}");
            assert_eq!(
                view.headers().collect::<Vec<_>>(),
                expected.3,
                "headers of {index}"
            );
        };
        let first_headers: Headers<'_> = &[("a", Some(b"1")), ("n", None)];
        let first = (
            Some(b"k".as_slice()),
            Some(b"v0".as_slice()),
            None,
            first_headers,
        );
        check(&batch, 0, first);
        check(&batch, 1, (None, None, Some(10), &[]));
        check(
            &batch,
            2,
            (Some(b"k"), Some(b""), Some(20), &[("", Some(b""))]),
        );

        // A copy keeps bytes and origin.
        let mut copy = PackedBatch::default();
        copy.copy_from(&batch, 1);
        copy.copy_from(&batch, 0);
        assert_eq!(copy.origin.topics, ["payments", "orders"]);
        assert_eq!(copy.origin.offsets, [1, 0]);
        assert_eq!(copy.origin.partitions, [2, 2]);
        check(&copy, 0, (None, None, Some(10), &[]));
        check(&copy, 1, first);

        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.origin.topics.is_empty());
    }

    fn error(index: u32) -> RecordError {
        RecordError {
            index,
            message: format!("bad {index}"),
        }
    }

    /// `map_verdicts` on `count` records, as a readable summary: `K`, `D`, `R<n>`, `F`, or the
    /// contract violation.
    fn check(
        kind: StageKind,
        count: usize,
        verdicts: &[u8],
        errors: Vec<RecordError>,
        replacements: Option<&RecordBatch>,
        expected: Result<&str, &str>,
    ) {
        let answer = map_verdicts(kind, count, verdicts.to_vec(), errors, replacements, 7);
        let summary = answer.map(|verdicts| match verdicts {
            Verdicts::KeepDrop(bytes) => format!("keep-drop {bytes:?}"),
            Verdicts::Mapped(verdicts) => verdicts
                .iter()
                .map(|verdict| match verdict {
                    Verdict::Keep => "K".to_owned(),
                    Verdict::Drop => "D".to_owned(),
                    Verdict::Replace(output, index) => format!("R{output}.{index}"),
                    Verdict::Fail(message, fatal) => format!("F({message},{fatal})"),
                })
                .collect::<Vec<_>>()
                .join(" "),
        });
        assert_eq!(
            summary.as_deref().map_err(String::as_str),
            expected,
            "{verdicts:?}"
        );
    }

    #[test]
    fn verdicts_are_checked_against_the_batch_contract() {
        use StageKind::{Filter, Transform};
        check(
            Filter,
            3,
            &[0, 1, 0],
            vec![],
            None,
            Ok("keep-drop [0, 1, 0]"),
        );
        check(
            Filter,
            3,
            &[0, 3, 1],
            vec![error(1)],
            None,
            Ok("K F(bad 1,false) D"),
        );
        check(
            Filter,
            3,
            &[0, 1],
            vec![],
            None,
            Err("2 verdicts for 3 records"),
        );
        check(
            Filter,
            2,
            &[3, 3],
            vec![error(0)],
            None,
            Err("2 fail verdicts but 1 errors"),
        );
        check(
            Filter,
            2,
            &[3, 3],
            vec![error(1), error(0)],
            None,
            Err("the errors do not match the fail verdicts at record 0"),
        );
        check(
            Filter,
            1,
            &[9],
            vec![],
            None,
            Err("verdict 9 at record 0 is not valid for a record filter"),
        );
        // A filter has no replacements to point at.
        check(
            Filter,
            1,
            &[2],
            vec![],
            None,
            Err("1 replace verdicts but 0 replacement records"),
        );

        let mut replacements = PackedBatch::default();
        push(&mut replacements, "orders", 5, Some(b"new"), &[("h", None)]);
        let replacements = replacements.batch;
        check(
            Transform,
            2,
            &[0, 2],
            vec![],
            Some(&replacements),
            Ok("K R7.0"),
        );
        check(
            Transform,
            2,
            &[2, 2],
            vec![],
            Some(&replacements),
            Err("2 replace verdicts but 1 replacement records"),
        );
        check(
            Transform,
            1,
            &[2],
            vec![],
            Some(&RecordBatch::default()),
            Err("1 replace verdicts but 0 replacement records"),
        );
        let mut overflowing = replacements.clone();
        overflowing.data.truncate(1);
        check(
            Transform,
            1,
            &[2],
            vec![],
            Some(&overflowing),
            Err("the replacement batch's index lists do not fit its data"),
        );
    }
}
