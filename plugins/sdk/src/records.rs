//! Zero-copy views of the packed record batch (`ferry:plugin/types.record-batch`) and the writer
//! of replacement records. Owns the layout: nothing else in the SDK reads offsets or lengths.
//!
//! Reading never panics: an index out of range reads as an empty or absent field (the host
//! always sends a well-formed batch; a malformed one must not turn into a guest panic here).

use std::borrow::Cow;

use crate::bindings::transform::ferry::plugin::types::{BatchOrigin, RecordBatch};

/// The length that marks a null key, value or header value.
pub const NULL_LENGTH: u32 = u32::MAX;
/// Numbers per record in `record-batch.records`.
pub(crate) const RECORD_STRIDE: usize = 6;
/// Numbers per header in `record-batch.headers`.
pub(crate) const HEADER_STRIDE: usize = 4;
/// Verdict byte: keep the record unchanged.
pub(crate) const KEEP: u8 = 0;
/// Verdict byte: drop the record.
pub(crate) const DROP: u8 = 1;
/// Verdict byte: replace the record with the next replacement.
pub(crate) const REPLACE: u8 = 2;
/// Verdict byte: the plugin failed on this record; the next error says why.
pub(crate) const FAIL: u8 = 3;

/// A batch as the plugin receives it: the packed records and where they come from.
#[derive(Clone, Copy)]
pub(crate) struct BatchView<'a> {
    origin: &'a BatchOrigin,
    batch: &'a RecordBatch,
}

impl<'a> BatchView<'a> {
    pub(crate) fn new(origin: &'a BatchOrigin, batch: &'a RecordBatch) -> BatchView<'a> {
        BatchView { origin, batch }
    }

    /// Number of records.
    pub(crate) fn len(&self) -> usize {
        self.batch.records.len() / RECORD_STRIDE
    }

    /// Record `index` (`index < len()`).
    pub(crate) fn record(&self, index: usize) -> RecordRef<'a> {
        RecordRef { view: *self, index }
    }

    #[inline]
    fn bytes(&self, offset: u32, length: u32) -> Option<&'a [u8]> {
        if length == NULL_LENGTH {
            return None;
        }
        let start = offset as usize;
        let end = start.saturating_add(length as usize);
        Some(self.batch.data.get(start..end).unwrap_or_default())
    }

    #[inline]
    fn field(&self, index: usize, column: usize) -> u32 {
        self.batch
            .records
            .get(index * RECORD_STRIDE + column)
            .copied()
            .unwrap_or(0)
    }

    /// The header rows `first..first + count`, when all of them are in the batch (the host
    /// always sends such a batch); `None` otherwise, and callers fall back to reading header by
    /// header, which reads missing numbers as 0.
    #[inline]
    fn header_rows(&self, first: usize, count: usize) -> Option<&'a [[u32; HEADER_STRIDE]]> {
        let (rows, _) = self.batch.headers.as_chunks::<HEADER_STRIDE>();
        rows.get(first..first.checked_add(count)?)
    }
}

/// One record of the batch a filter or transform is given: a view into the packed batch, so
/// reading the key, value or headers copies nothing. Cheap to copy.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    view: BatchView<'a>,
    index: usize,
}

impl<'a> RecordRef<'a> {
    /// The record's key; `None` for a record without key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.view.bytes(
            self.view.field(self.index, 0),
            self.view.field(self.index, 1),
        )
    }

    /// The record's value; `None` for a tombstone.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.view.bytes(
            self.view.field(self.index, 2),
            self.view.field(self.index, 3),
        )
    }

    /// The value as UTF-8 text; `None` for a tombstone or a value that is not UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        self.value()
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The key as UTF-8 text; `None` without key or when the key is not UTF-8.
    pub fn key_str(&self) -> Option<&'a str> {
        self.key().and_then(|key| std::str::from_utf8(key).ok())
    }

    /// The record's timestamp in milliseconds since the Unix epoch, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.view
            .batch
            .timestamps
            .get(self.index)
            .copied()
            .filter(|timestamp| *timestamp >= 0)
    }

    /// The record's headers, in order (keys may repeat).
    pub fn headers(&self) -> Headers<'a> {
        let first = self.view.field(self.index, 4) as usize;
        let count = self.view.field(self.index, 5) as usize;
        Headers {
            view: self.view,
            next: first,
            end: first.saturating_add(count),
        }
    }

    /// The last header named `key` (Kafka's `Headers.lastHeader`), if any.
    pub fn header(&self, key: &str) -> Option<Header<'a>> {
        let first = self.view.field(self.index, 4) as usize;
        let count = self.view.field(self.index, 5) as usize;
        let Some(rows) = self.view.header_rows(first, count) else {
            return self.headers().rev().find(|header| header.key() == key);
        };
        // Compares raw key bytes and decodes only the header found: a filter looking up one
        // header per record must not validate the UTF-8 of every other key.
        let wanted = key.as_bytes();
        rows.iter()
            .rev()
            .find_map(|&[key_offset, key_length, value_offset, value_length]| {
                let name = self.view.bytes(key_offset, key_length);
                let matches = match name {
                    Some(name) if name == wanted => true,
                    // A null or non-UTF-8 key reads as "" (see `Header::key`).
                    _ if wanted.is_empty() => {
                        name.is_none_or(|name| std::str::from_utf8(name).is_err())
                    }
                    _ => false,
                };
                matches.then(|| Header {
                    key: name
                        .and_then(|name| std::str::from_utf8(name).ok())
                        .unwrap_or(""),
                    value: self.view.bytes(value_offset, value_length),
                })
            })
    }

    /// The source topic.
    pub fn topic(&self) -> &'a str {
        self.topic_index()
            .and_then(|index| self.view.origin.topics.get(index))
            .map_or("", String::as_str)
    }

    /// The remote topic on the target cluster (the flow's replication policy named it).
    pub fn remote_topic(&self) -> &'a str {
        self.topic_index()
            .and_then(|index| self.view.origin.remote_topics.get(index))
            .map_or("", String::as_str)
    }

    /// The source partition; the record goes to the same partition number on the target.
    pub fn partition(&self) -> i32 {
        self.view
            .origin
            .partitions
            .get(self.index)
            .copied()
            .unwrap_or(-1)
    }

    /// The record's offset in its source partition.
    pub fn offset(&self) -> i64 {
        self.view
            .origin
            .offsets
            .get(self.index)
            .copied()
            .unwrap_or(-1)
    }

    /// The record's position in the batch (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// A replacement that starts as a copy of this record (borrowing its bytes): change what
    /// differs and return it as [`Outcome::Replace`](crate::Outcome::Replace).
    pub fn edit(&self) -> NewRecord<'a> {
        NewRecord {
            key: self.key().map(Cow::Borrowed),
            value: self.value().map(Cow::Borrowed),
            timestamp: self.timestamp(),
            headers: NewHeaders::Same(*self),
        }
    }

    fn topic_index(&self) -> Option<usize> {
        self.view
            .origin
            .topic_indexes
            .get(self.index)
            .map(|index| *index as usize)
    }
}

impl std::fmt::Debug for RecordRef<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RecordRef")
            .field("topic", &self.topic())
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .field("key", &self.key().map(String::from_utf8_lossy))
            .field("value_len", &self.value().map(<[u8]>::len))
            .field("timestamp", &self.timestamp())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .finish()
    }
}

/// One header of a record.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    key: &'a str,
    value: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// The header's key.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The header's value; `None` for a null value.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// The value as UTF-8 text; `None` for a null or non-UTF-8 value.
    pub fn value_str(&self) -> Option<&'a str> {
        self.value.and_then(|value| std::str::from_utf8(value).ok())
    }
}

impl std::fmt::Debug for Header<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_tuple("Header")
            .field(&self.key)
            .field(&self.value.map(String::from_utf8_lossy))
            .finish()
    }
}

/// The headers of a record, in order.
#[derive(Clone)]
pub struct Headers<'a> {
    view: BatchView<'a>,
    next: usize,
    end: usize,
}

impl<'a> Headers<'a> {
    fn header(&self, index: usize) -> Header<'a> {
        let field = |column: usize| {
            self.view
                .batch
                .headers
                .get(index * HEADER_STRIDE + column)
                .copied()
                .unwrap_or(0)
        };
        let key = self
            .view
            .bytes(field(0), field(1))
            .and_then(|key| std::str::from_utf8(key).ok())
            .unwrap_or("");
        Header {
            key,
            value: self.view.bytes(field(2), field(3)),
        }
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.next >= self.end {
            return None;
        }
        let header = self.header(self.next);
        self.next += 1;
        Some(header)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl DoubleEndedIterator for Headers<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        self.end -= 1;
        Some(self.header(self.end))
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Bytes for a key, value or header value: `Vec<u8>`, `String`, `&[u8]`, `&str`, byte-string
/// literals, or a `Cow`. Borrowed bytes are not copied until the replacement is packed.
pub trait IntoBytes<'a> {
    /// The bytes.
    fn into_bytes(self) -> Cow<'a, [u8]>;
}

impl<'a> IntoBytes<'a> for Cow<'a, [u8]> {
    fn into_bytes(self) -> Cow<'a, [u8]> {
        self
    }
}

impl<'a> IntoBytes<'a> for Vec<u8> {
    fn into_bytes(self) -> Cow<'a, [u8]> {
        Cow::Owned(self)
    }
}

impl<'a> IntoBytes<'a> for String {
    fn into_bytes(self) -> Cow<'a, [u8]> {
        Cow::Owned(self.into_bytes())
    }
}

impl<'a> IntoBytes<'a> for &'a [u8] {
    fn into_bytes(self) -> Cow<'a, [u8]> {
        Cow::Borrowed(self)
    }
}

impl<'a, const N: usize> IntoBytes<'a> for &'a [u8; N] {
    fn into_bytes(self) -> Cow<'a, [u8]> {
        Cow::Borrowed(self)
    }
}

impl<'a> IntoBytes<'a> for &'a str {
    fn into_bytes(self) -> Cow<'a, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

/// A replacement record, built with [`RecordRef::edit`] (a copy of the input record) or
/// [`NewRecord::new`] (empty), then changed with the builder methods. It goes to the same remote
/// topic and partition as the record it replaces.
///
/// ```text
/// Ok(Outcome::Replace(record.edit().value(masked).header("masked", "true")))
/// ```
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    key: Option<Cow<'a, [u8]>>,
    value: Option<Cow<'a, [u8]>>,
    timestamp: Option<i64>,
    headers: NewHeaders<'a>,
}

/// An owned-or-borrowed header of a [`NewRecord`]: key and nullable value.
type NewHeader<'a> = (Cow<'a, str>, Option<Cow<'a, [u8]>>);

#[derive(Debug, Clone)]
enum NewHeaders<'a> {
    /// The headers of this input record, unchanged.
    Same(RecordRef<'a>),
    /// An explicit list.
    List(Vec<NewHeader<'a>>),
}

impl Default for NewRecord<'_> {
    fn default() -> Self {
        NewRecord::new()
    }
}

impl<'a> NewRecord<'a> {
    /// A record without key, value (a tombstone), timestamp or headers.
    pub fn new() -> NewRecord<'a> {
        NewRecord {
            key: None,
            value: None,
            timestamp: None,
            headers: NewHeaders::List(Vec::new()),
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl IntoBytes<'a>) -> Self {
        self.key = Some(key.into_bytes());
        self
    }

    /// Removes the key.
    pub fn no_key(mut self) -> Self {
        self.key = None;
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl IntoBytes<'a>) -> Self {
        self.value = Some(value.into_bytes());
        self
    }

    /// Removes the value: the record becomes a tombstone.
    pub fn tombstone(mut self) -> Self {
        self.value = None;
        self
    }

    /// Sets (`Some`) or removes (`None`) the timestamp, in milliseconds since the Unix epoch.
    /// Without timestamp the target broker sets one.
    pub fn timestamp(mut self, timestamp: Option<i64>) -> Self {
        self.timestamp = timestamp.filter(|timestamp| *timestamp >= 0);
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: impl Into<Cow<'a, str>>, value: impl IntoBytes<'a>) -> Self {
        self.headers_mut()
            .push((key.into(), Some(value.into_bytes())));
        self
    }

    /// Appends a header with a null value.
    pub fn null_header(mut self, key: impl Into<Cow<'a, str>>) -> Self {
        self.headers_mut().push((key.into(), None));
        self
    }

    /// Removes every header named `key`.
    pub fn remove_header(mut self, key: &str) -> Self {
        self.headers_mut().retain(|(name, _)| name != key);
        self
    }

    /// Removes every header.
    pub fn clear_headers(mut self) -> Self {
        self.headers = NewHeaders::List(Vec::new());
        self
    }

    fn headers_mut(&mut self) -> &mut Vec<NewHeader<'a>> {
        if let NewHeaders::Same(record) = &self.headers {
            let list = record
                .headers()
                .map(|header| {
                    (
                        Cow::Borrowed(header.key()),
                        header.value().map(Cow::Borrowed),
                    )
                })
                .collect();
            self.headers = NewHeaders::List(list);
        }
        match &mut self.headers {
            NewHeaders::List(list) => list,
            NewHeaders::Same(_) => unreachable_same(),
        }
    }
}

#[allow(
    clippy::panic,
    reason = "unreachable: `headers_mut` has just replaced `Same` with `List`"
)]
fn unreachable_same() -> ! {
    panic!("ferry-plugin-sdk: headers still borrowed after conversion")
}

/// Appends replacement records to a packed `record-batch`.
pub(crate) struct BatchWriter {
    batch: RecordBatch,
}

impl BatchWriter {
    pub(crate) fn new() -> BatchWriter {
        BatchWriter {
            batch: RecordBatch {
                data: Vec::new(),
                records: Vec::new(),
                timestamps: Vec::new(),
                headers: Vec::new(),
            },
        }
    }

    /// Appends `record`.
    pub(crate) fn push(&mut self, record: &NewRecord<'_>) {
        let (key_offset, key_length) = self.bytes(record.key.as_deref());
        let (value_offset, value_length) = self.bytes(record.value.as_deref());
        let first_header = (self.batch.headers.len() / HEADER_STRIDE) as u32;
        let mut count = 0_u32;
        match &record.headers {
            NewHeaders::Same(input) => {
                for header in input.headers() {
                    self.header(header.key().as_bytes(), header.value());
                    count += 1;
                }
            }
            NewHeaders::List(list) => {
                for (key, value) in list {
                    self.header(key.as_bytes(), value.as_deref());
                    count += 1;
                }
            }
        }
        self.batch.records.extend_from_slice(&[
            key_offset,
            key_length,
            value_offset,
            value_length,
            first_header,
            count,
        ]);
        self.batch.timestamps.push(record.timestamp.unwrap_or(-1));
    }

    pub(crate) fn finish(self) -> RecordBatch {
        self.batch
    }

    fn header(&mut self, key: &[u8], value: Option<&[u8]>) {
        let (key_offset, key_length) = self.bytes(Some(key));
        let (value_offset, value_length) = self.bytes(value);
        self.batch
            .headers
            .extend_from_slice(&[key_offset, key_length, value_offset, value_length]);
    }

    fn bytes(&mut self, bytes: Option<&[u8]>) -> (u32, u32) {
        match bytes {
            None => (0, NULL_LENGTH),
            Some(bytes) => {
                let offset = self.batch.data.len() as u32;
                self.batch.data.extend_from_slice(bytes);
                (offset, bytes.len() as u32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record whose headers are: `a`, a non-UTF-8 key, a null key, `""`, `a` again; plus a
    /// record whose header rows lie outside the table.
    fn batch() -> (BatchOrigin, RecordBatch) {
        let data = b"a\xff\xfe12345".to_vec();
        let headers = vec![
            0,
            1,
            3,
            1, // a = "1"
            1,
            2,
            4,
            1, // non-UTF-8 = "2"
            0,
            NULL_LENGTH,
            5,
            1, // null key = "3"
            0,
            0,
            6,
            1, // "" = "4"
            0,
            1,
            7,
            NULL_LENGTH, // a = null
        ];
        let records = vec![0, NULL_LENGTH, 0, NULL_LENGTH, 0, 5, 0, 0, 0, 0, 4, 3];
        let origin = BatchOrigin {
            topics: vec!["t".to_owned()],
            remote_topics: vec!["r.t".to_owned()],
            topic_indexes: vec![0, 0],
            partitions: vec![0, 0],
            offsets: vec![0, 1],
        };
        let batch = RecordBatch {
            data,
            records,
            timestamps: vec![-1, -1],
            headers,
        };
        (origin, batch)
    }

    /// `header(key)` answers as the last match of `headers()` does, for every key, in range
    /// (the raw-byte fast path) and out of range (the field-by-field path).
    #[test]
    fn header_lookup_matches_the_headers_iterator() {
        let (origin, batch) = batch();
        let view = BatchView::new(&origin, &batch);
        for index in 0..view.len() {
            let record = view.record(index);
            for key in ["a", "", "b", "\u{fffd}"] {
                let expected = record.headers().rev().find(|header| header.key() == key);
                assert_eq!(record.header(key), expected, "record {index}, key {key:?}");
            }
        }
        let record = view.record(0);
        assert_eq!(record.header("a").map(|header| header.value()), Some(None));
        assert_eq!(
            record.header("").and_then(|header| header.value()),
            Some(&b"4"[..])
        );
    }
}
