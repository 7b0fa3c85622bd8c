//! Runs a [`Filter`] or [`Transform`] natively, in a plugin's own unit tests, through the same
//! packing code the exported component uses:
//!
//! ```
//! use ferry_plugin_sdk::testing::{TestOutcome, TestRecord, run_transform};
//! use ferry_plugin_sdk::{Outcome, RecordRef, Transform};
//!
//! #[derive(Default)]
//! struct Reverse;
//!
//! impl Transform for Reverse {
//!     fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
//!         let mut value = record.value().unwrap_or_default().to_vec();
//!         value.reverse();
//!         Ok(Outcome::Replace(record.edit().value(value)))
//!     }
//! }
//!
//! let outcomes = run_transform(&mut Reverse, &[TestRecord::new("abc").key("k")]);
//! assert_eq!(outcomes, vec![TestOutcome::Replace(TestRecord::new("cba").key("k"))]);
//! ```

use crate::bindings::transform::ferry::plugin::types::{BatchOrigin, RecordBatch};
use crate::data::{Filter, Transform, filter_batch, transform_batch};
use crate::records::{BatchView, BatchWriter, DROP, FAIL, KEEP, NewRecord, REPLACE};

/// An owned record for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The source topic (`"topic"` by default). Not part of a replacement.
    pub topic: String,
    /// The source partition (0 by default). Not part of a replacement.
    pub partition: i32,
    /// The source offset (the record's index by default). Not part of a replacement.
    pub offset: Option<i64>,
}

impl TestRecord {
    /// A record with `value`, no key, no timestamp, no headers, on partition 0 of `topic`.
    pub fn new(value: impl Into<Vec<u8>>) -> TestRecord {
        TestRecord {
            key: None,
            value: Some(value.into()),
            timestamp: None,
            headers: Vec::new(),
            topic: "topic".to_owned(),
            partition: 0,
            offset: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> TestRecord {
        self.key = Some(key.into());
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: &str, value: impl Into<Vec<u8>>) -> TestRecord {
        self.headers.push((key.to_owned(), Some(value.into())));
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> TestRecord {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the source topic, partition and offset.
    pub fn at(mut self, topic: &str, partition: i32, offset: i64) -> TestRecord {
        self.topic = topic.to_owned();
        self.partition = partition;
        self.offset = Some(offset);
        self
    }

    /// Sets the value to `None` (a tombstone).
    pub fn tombstone(mut self) -> TestRecord {
        self.value = None;
        self
    }

    /// The record as it would come back as a replacement (only key, value, timestamp and
    /// headers cross).
    fn replacement_part(&self) -> TestRecord {
        TestRecord {
            topic: "topic".to_owned(),
            partition: 0,
            offset: None,
            ..self.clone()
        }
    }
}

/// What a plugin answered for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    /// Kept unchanged.
    Keep,
    /// Dropped.
    Drop,
    /// Replaced by this record (its topic, partition and offset are the defaults).
    Replace(TestRecord),
    /// Failed with this message.
    Fail(String),
}

/// Packs `records` into a batch, as the host does.
fn pack(records: &[TestRecord]) -> (BatchOrigin, RecordBatch) {
    let mut origin = BatchOrigin {
        topics: Vec::new(),
        remote_topics: Vec::new(),
        topic_indexes: Vec::new(),
        partitions: Vec::new(),
        offsets: Vec::new(),
    };
    let mut writer = BatchWriter::new();
    for (index, record) in records.iter().enumerate() {
        let topic_index = match origin
            .topics
            .iter()
            .position(|topic| *topic == record.topic)
        {
            Some(position) => position,
            None => {
                origin.topics.push(record.topic.clone());
                origin
                    .remote_topics
                    .push(format!("source.{}", record.topic));
                origin.topics.len() - 1
            }
        };
        origin.topic_indexes.push(topic_index as u32);
        origin.partitions.push(record.partition);
        origin.offsets.push(record.offset.unwrap_or(index as i64));
        let mut new = NewRecord::new().timestamp(record.timestamp);
        if let Some(key) = &record.key {
            new = new.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            new = new.value(value.as_slice());
        }
        for (key, value) in &record.headers {
            new = match value {
                Some(value) => new.header(key.as_str(), value.as_slice()),
                None => new.null_header(key.as_str()),
            };
        }
        writer.push(&new);
    }
    (origin, writer.finish())
}

/// Reads record `index` of a packed batch back into a [`TestRecord`].
fn unpack(origin: &BatchOrigin, batch: &RecordBatch, index: usize) -> TestRecord {
    let record = BatchView::new(origin, batch).record(index);
    TestRecord {
        key: record.key().map(<[u8]>::to_vec),
        value: record.value().map(<[u8]>::to_vec),
        timestamp: record.timestamp(),
        headers: record
            .headers()
            .map(|header| (header.key().to_owned(), header.value().map(<[u8]>::to_vec)))
            .collect(),
        topic: "topic".to_owned(),
        partition: 0,
        offset: None,
    }
}

/// Runs `filter` over `records` as one batch. Checks the packed answer the way the host does
/// and panics (failing the test) when it is malformed.
#[allow(
    clippy::panic,
    reason = "a test helper: a malformed answer fails the test"
)]
pub fn run_filter<F: Filter>(filter: &mut F, records: &[TestRecord]) -> Vec<TestOutcome> {
    let (origin, batch) = pack(records);
    let result = filter_batch(filter, &origin, &batch);
    assert_eq!(
        result.verdicts.len(),
        records.len(),
        "one verdict per record"
    );
    let mut errors = result.errors.into_iter();
    result
        .verdicts
        .iter()
        .enumerate()
        .map(|(index, verdict)| match *verdict {
            KEEP => TestOutcome::Keep,
            DROP => TestOutcome::Drop,
            FAIL => match errors.next() {
                Some(error) if error.index as usize == index => TestOutcome::Fail(error.message),
                other => panic!("record {index} failed but the next error is {other:?}"),
            },
            other => panic!("verdict {other} is not valid for a filter"),
        })
        .collect()
}

/// Runs `transform` over `records` as one batch, checking the packed answer as
/// [`run_filter`] does.
#[allow(
    clippy::panic,
    reason = "a test helper: a malformed answer fails the test"
)]
pub fn run_transform<T: Transform>(transform: &mut T, records: &[TestRecord]) -> Vec<TestOutcome> {
    let (origin, batch) = pack(records);
    let result = transform_batch(transform, &origin, &batch);
    assert_eq!(
        result.verdicts.len(),
        records.len(),
        "one verdict per record"
    );
    let mut errors = result.errors.into_iter();
    let mut replaced = 0;
    let outcomes = result
        .verdicts
        .iter()
        .enumerate()
        .map(|(index, verdict)| match *verdict {
            KEEP => TestOutcome::Keep,
            DROP => TestOutcome::Drop,
            REPLACE => {
                replaced += 1;
                TestOutcome::Replace(unpack(&origin, &result.replacements, replaced - 1))
            }
            FAIL => match errors.next() {
                Some(error) if error.index as usize == index => TestOutcome::Fail(error.message),
                other => panic!("record {index} failed but the next error is {other:?}"),
            },
            other => panic!("verdict {other} is not valid"),
        })
        .collect();
    assert_eq!(
        result.replacements.records.len() / crate::records::RECORD_STRIDE,
        replaced,
        "one replacement per replace verdict"
    );
    outcomes
}

/// The outcome a [`Transform`] would need to leave `record` unchanged when it replaces it with
/// [`RecordRef::edit`](crate::RecordRef::edit) and no change: handy to compare against.
pub fn unchanged(record: &TestRecord) -> TestOutcome {
    TestOutcome::Replace(record.replacement_part())
}

#[cfg(test)]
mod tests {
    use super::{TestOutcome, TestRecord, run_filter, run_transform, unchanged};
    use crate::{Filter, Outcome, RecordRef, Transform};

    struct DropOdd;

    impl Filter for DropOdd {
        fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
            match record.value() {
                Some(b"bad") => Err(format!("bad record at {}", record.offset())),
                _ => Ok(record.offset() % 2 == 0),
            }
        }
    }

    #[test]
    fn filter_verdicts_and_errors() {
        let records: Vec<TestRecord> = ["a", "b", "bad", "d"].map(TestRecord::new).to_vec();
        assert_eq!(
            run_filter(&mut DropOdd, &records),
            vec![
                TestOutcome::Keep,
                TestOutcome::Drop,
                TestOutcome::Fail("bad record at 2".to_owned()),
                TestOutcome::Drop,
            ]
        );
    }

    struct Edit;

    impl Transform for Edit {
        fn transform<'a>(&mut self, record: RecordRef<'a>) -> Result<Outcome<'a>, String> {
            Ok(match record.value_str() {
                Some("keep") => Outcome::Keep,
                Some("drop") => Outcome::Drop,
                Some("same") => Outcome::Replace(record.edit()),
                Some("headers") => Outcome::Replace(
                    record
                        .edit()
                        .remove_header("a")
                        .header("c", "3")
                        .null_header("n")
                        .no_key()
                        .timestamp(None),
                ),
                Some(other) => Outcome::Replace(
                    record
                        .edit()
                        .value(format!("{other}!"))
                        .key(record.topic())
                        .timestamp(Some(record.partition().into())),
                ),
                None => return Err("tombstone".to_owned()),
            })
        }
    }

    #[test]
    fn transform_outcomes_round_trip() {
        let base = |value: &str| {
            TestRecord::new(value)
                .key("k")
                .timestamp(1_700_000_000_000)
                .header("a", "1")
                .header("b", "")
                .at("orders", 3, 42)
        };
        let records = vec![
            base("keep"),
            base("drop"),
            base("same"),
            base("headers"),
            base("x"),
            base("y").tombstone(),
        ];
        let outcomes = run_transform(&mut Edit, &records);
        let mut headers = TestRecord::new("headers");
        headers.headers = vec![
            ("b".to_owned(), Some(Vec::new())),
            ("c".to_owned(), Some(b"3".to_vec())),
            ("n".to_owned(), None),
        ];
        let mut changed = base("x!").key("orders").timestamp(3);
        changed.topic = "topic".to_owned();
        changed.partition = 0;
        changed.offset = None;
        assert_eq!(
            outcomes,
            vec![
                TestOutcome::Keep,
                TestOutcome::Drop,
                unchanged(&base("same")),
                TestOutcome::Replace(headers),
                TestOutcome::Replace(changed),
                TestOutcome::Fail("tombstone".to_owned()),
            ]
        );
    }

    #[test]
    fn views_read_every_field() {
        struct Check;
        impl Filter for Check {
            fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
                assert_eq!(record.key(), Some(&b"k"[..]));
                assert_eq!(record.key_str(), Some("k"));
                assert_eq!(record.value_str(), Some("v"));
                assert_eq!(record.timestamp(), Some(5));
                assert_eq!(record.topic(), "t2");
                assert_eq!(record.remote_topic(), "source.t2");
                assert_eq!(record.partition(), 7);
                assert_eq!(record.offset(), 9);
                assert_eq!(record.index(), 1);
                assert_eq!(record.headers().len(), 3);
                let header = record.header("h").unwrap();
                assert_eq!(header.value_str(), Some("second"));
                assert_eq!(record.header("nope"), None);
                Ok(true)
            }
        }
        let mut first = TestRecord::new("x").at("t1", 0, 0);
        first.key = None;
        let second = TestRecord::new("v")
            .key("k")
            .timestamp(5)
            .header("h", "first")
            .header("g", "")
            .header("h", "second")
            .at("t2", 7, 9);
        struct Skip(usize);
        impl Filter for Skip {
            fn keep(&mut self, record: RecordRef<'_>) -> Result<bool, String> {
                self.0 += 1;
                if record.index() == 1 {
                    Check.keep(record)
                } else {
                    assert_eq!(record.key(), None);
                    Ok(false)
                }
            }
        }
        let mut skip = Skip(0);
        assert_eq!(
            run_filter(&mut skip, &[first, second]),
            vec![TestOutcome::Drop, TestOutcome::Keep]
        );
        assert_eq!(skip.0, 2);
    }
}
