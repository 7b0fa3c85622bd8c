//! MM2's internal record formats: heartbeats, checkpoints and offset syncs, byte for byte.
//!
//! MirrorMaker 2 writes these with Kafka's protocol `Struct` encoding (`docs/mm2-facts.md`, "Internal records"): fields in
//! declaration order, big-endian integers, strings as an INT16 byte length followed by UTF-8,
//! no framing. Heartbeat and checkpoint values start with an INT16 version (0); offset syncs have
//! none. Readers ignore bytes after the last field, as Kafka's do. Tools that read MM2's topics
//! (`RemoteClusterUtils`, the `*Formatter` classes) read Ferry's records through this module's
//! encoders; `Display` prints what MM2's formatters print.
//!
//! This module owns only the codecs; which topic and partition a record goes to is the caller's
//! business (MM2 writes all three to partition 0 of single-partition compacted topics).

use std::fmt;

/// Why bytes did not decode.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the field.
    #[error("record ends before field `{field}`")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A string length is negative.
    #[error("field `{field}` has a negative length")]
    NegativeLength {
        /// The field being read.
        field: &'static str,
    },
    /// A string is not UTF-8.
    #[error("field `{field}` is not UTF-8")]
    NotUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// The version header is not 0.
    #[error("unsupported version {version}")]
    Version {
        /// The version read.
        version: i16,
    },
}

/// Why a record could not be encoded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string is longer than Kafka's `STRING` type allows (32 767 bytes).
    #[error("field `{field}` is {length} bytes long; at most 32767 fit")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        length: usize,
    },
}

/// A heartbeat (`MC/Heartbeat.java`): emitted by the flow `source -> target` into the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The flow's source cluster alias.
    pub source_cluster_alias: String,
    /// The flow's target cluster alias.
    pub target_cluster_alias: String,
    /// Emission time, epoch milliseconds.
    pub timestamp: i64,
}

/// A checkpoint (`MC/Checkpoint.java`): a consumer group's position translated to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The consumer group.
    pub consumer_group_id: String,
    /// The topic as named on the target (the remote topic).
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset on the source.
    pub upstream_offset: i64,
    /// The translated offset on the target.
    pub downstream_offset: i64,
    /// The group's commit metadata.
    pub metadata: String,
}

/// An offset sync (`M/OffsetSync.java`): a source offset and the target offset it was copied to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSync {
    /// The topic as named on the source.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The source offset.
    pub upstream_offset: i64,
    /// The target offset.
    pub downstream_offset: i64,
}

const VERSION: i16 = 0;

struct Writer(Vec<u8>);

impl Writer {
    fn string(&mut self, field: &'static str, value: &str) -> Result<(), EncodeError> {
        let length = i16::try_from(value.len()).map_err(|_| EncodeError::TooLong {
            field,
            length: value.len(),
        })?;
        self.0.extend_from_slice(&length.to_be_bytes());
        self.0.extend_from_slice(value.as_bytes());
        Ok(())
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, field: &'static str, count: usize) -> Result<&[u8], DecodeError> {
        if self.0.len() < count {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.0.split_at(count);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(field, N)?);
        Ok(bytes)
    }

    fn i16(&mut self, field: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let length =
            usize::try_from(self.i16(field)?).map_err(|_| DecodeError::NegativeLength { field })?;
        let bytes = self.take(field, length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { field })
    }

    fn version(&mut self) -> Result<(), DecodeError> {
        match self.i16("version")? {
            VERSION => Ok(()),
            version => Err(DecodeError::Version { version }),
        }
    }
}

impl Heartbeat {
    /// The record key: source alias, target alias.
    ///
    /// # Errors
    /// An alias longer than 32 767 bytes.
    pub fn key(&self) -> Result<Vec<u8>, EncodeError> {
        let mut writer = Writer(Vec::new());
        writer.string("sourceClusterAlias", &self.source_cluster_alias)?;
        writer.string("targetClusterAlias", &self.target_cluster_alias)?;
        Ok(writer.0)
    }

    /// The record value: version 0, timestamp.
    pub fn value(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(10);
        bytes.extend_from_slice(&VERSION.to_be_bytes());
        bytes.extend_from_slice(&self.timestamp.to_be_bytes());
        bytes
    }

    /// Decodes a heartbeat record.
    ///
    /// # Errors
    /// Truncated or malformed bytes, or a version other than 0.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Heartbeat, DecodeError> {
        let mut key = Reader(key);
        let mut value = Reader(value);
        let source_cluster_alias = key.string("sourceClusterAlias")?;
        let target_cluster_alias = key.string("targetClusterAlias")?;
        value.version()?;
        Ok(Heartbeat {
            source_cluster_alias,
            target_cluster_alias,
            timestamp: value.i64("timestamp")?,
        })
    }
}

impl Checkpoint {
    /// The record key: group, topic, partition.
    ///
    /// # Errors
    /// A group or topic longer than 32 767 bytes.
    pub fn key(&self) -> Result<Vec<u8>, EncodeError> {
        let mut writer = Writer(Vec::new());
        writer.string("group", &self.consumer_group_id)?;
        writer.string("topic", &self.topic)?;
        writer.0.extend_from_slice(&self.partition.to_be_bytes());
        Ok(writer.0)
    }

    /// The record value: version 0, upstream offset, downstream offset, metadata.
    ///
    /// # Errors
    /// Metadata longer than 32 767 bytes.
    pub fn value(&self) -> Result<Vec<u8>, EncodeError> {
        let mut writer = Writer(Vec::with_capacity(20 + self.metadata.len()));
        writer.0.extend_from_slice(&VERSION.to_be_bytes());
        writer
            .0
            .extend_from_slice(&self.upstream_offset.to_be_bytes());
        writer
            .0
            .extend_from_slice(&self.downstream_offset.to_be_bytes());
        writer.string("metadata", &self.metadata)?;
        Ok(writer.0)
    }

    /// Decodes a checkpoint record.
    ///
    /// # Errors
    /// Truncated or malformed bytes, or a version other than 0.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Checkpoint, DecodeError> {
        let mut key = Reader(key);
        let mut value = Reader(value);
        let consumer_group_id = key.string("group")?;
        let topic = key.string("topic")?;
        let partition = key.i32("partition")?;
        value.version()?;
        Ok(Checkpoint {
            consumer_group_id,
            topic,
            partition,
            upstream_offset: value.i64("upstreamOffset")?,
            downstream_offset: value.i64("offset")?,
            metadata: value.string("metadata")?,
        })
    }
}

impl OffsetSync {
    /// The record key: topic, partition.
    ///
    /// # Errors
    /// A topic longer than 32 767 bytes.
    pub fn key(&self) -> Result<Vec<u8>, EncodeError> {
        let mut writer = Writer(Vec::new());
        writer.string("topic", &self.topic)?;
        writer.0.extend_from_slice(&self.partition.to_be_bytes());
        Ok(writer.0)
    }

    /// The record value: upstream offset, downstream offset (no version header).
    pub fn value(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&self.upstream_offset.to_be_bytes());
        bytes.extend_from_slice(&self.downstream_offset.to_be_bytes());
        bytes
    }

    /// Decodes an offset-sync record.
    ///
    /// # Errors
    /// Truncated or malformed bytes.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<OffsetSync, DecodeError> {
        let mut key = Reader(key);
        let mut value = Reader(value);
        Ok(OffsetSync {
            topic: key.string("topic")?,
            partition: key.i32("partition")?,
            upstream_offset: value.i64("upstreamOffset")?,
            downstream_offset: value.i64("offset")?,
        })
    }
}

impl fmt::Display for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Heartbeat{{sourceClusterAlias={}, targetClusterAlias={}, timestamp={}}}",
            self.source_cluster_alias, self.target_cluster_alias, self.timestamp
        )
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Checkpoint{{consumerGroupId={}, topicPartition={}-{}, upstreamOffset={}, downstreamOffset={}, metadata={}}}",
            self.consumer_group_id,
            self.topic,
            self.partition,
            self.upstream_offset,
            self.downstream_offset,
            self.metadata
        )
    }
}

impl fmt::Display for OffsetSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OffsetSync{{topicPartition={}-{}, upstreamOffset={}, downstreamOffset={}}}",
            self.topic, self.partition, self.upstream_offset, self.downstream_offset
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace()
            .map(|byte| u8::from_str_radix(byte, 16).unwrap())
            .collect()
    }

    /// Golden bytes of `docs/mm2-facts.md`, "Internal records".
    #[test]
    fn heartbeat_matches_golden_bytes() {
        let heartbeat = Heartbeat {
            source_cluster_alias: "A".into(),
            target_cluster_alias: "B".into(),
            timestamp: 1_700_000_000_000,
        };
        assert_eq!(heartbeat.key().unwrap(), hex("00 01 41 00 01 42"));
        assert_eq!(heartbeat.value(), hex("00 00 00 00 01 8b cf e5 68 00"));
        assert_eq!(
            Heartbeat::decode(&heartbeat.key().unwrap(), &heartbeat.value()),
            Ok(heartbeat.clone())
        );
        assert_eq!(
            heartbeat.to_string(),
            "Heartbeat{sourceClusterAlias=A, targetClusterAlias=B, timestamp=1700000000000}"
        );
    }

    #[test]
    fn checkpoint_matches_golden_bytes() {
        let checkpoint = Checkpoint {
            consumer_group_id: "g1".into(),
            topic: "A.orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 990,
            metadata: String::new(),
        };
        assert_eq!(
            checkpoint.key().unwrap(),
            hex("00 02 67 31 00 08 41 2e 6f 72 64 65 72 73 00 00 00 03")
        );
        assert_eq!(
            checkpoint.value().unwrap(),
            hex("00 00 00 00 00 00 00 00 03 e8 00 00 00 00 00 00 03 de 00 00")
        );
        let decoded = Checkpoint::decode(&checkpoint.key().unwrap(), &checkpoint.value().unwrap());
        assert_eq!(decoded, Ok(checkpoint.clone()));
        assert_eq!(
            checkpoint.to_string(),
            "Checkpoint{consumerGroupId=g1, topicPartition=A.orders-3, upstreamOffset=1000, downstreamOffset=990, metadata=}"
        );
    }

    #[test]
    fn offset_sync_matches_golden_bytes() {
        let sync = OffsetSync {
            topic: "orders".into(),
            partition: 3,
            upstream_offset: 1000,
            downstream_offset: 990,
        };
        assert_eq!(
            sync.key().unwrap(),
            hex("00 06 6f 72 64 65 72 73 00 00 00 03")
        );
        assert_eq!(
            sync.value(),
            hex("00 00 00 00 00 00 03 e8 00 00 00 00 00 00 03 de")
        );
        assert_eq!(
            OffsetSync::decode(&sync.key().unwrap(), &sync.value()),
            Ok(sync.clone())
        );
        assert_eq!(
            sync.to_string(),
            "OffsetSync{topicPartition=orders-3, upstreamOffset=1000, downstreamOffset=990}"
        );
    }

    #[test]
    fn malformed_bytes_are_errors() {
        assert_eq!(
            Heartbeat::decode(&hex("00 01 41"), &[]),
            Err(DecodeError::Truncated {
                field: "targetClusterAlias"
            })
        );
        assert_eq!(
            Heartbeat::decode(
                &hex("00 01 41 00 01 42"),
                &hex("00 01 00 00 00 00 00 00 00 00")
            ),
            Err(DecodeError::Version { version: 1 })
        );
        assert_eq!(
            OffsetSync::decode(&hex("ff ff"), &[]),
            Err(DecodeError::NegativeLength { field: "topic" })
        );
        assert_eq!(
            Checkpoint::decode(&hex("00 01 ff 00 00 00 00 00 00"), &[]),
            Err(DecodeError::NotUtf8 { field: "group" })
        );
        // Bytes after the last field are ignored, as Kafka's readers do.
        let sync = OffsetSync::decode(
            &hex("00 01 74 00 00 00 00 ff"),
            &hex("00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 02 aa"),
        );
        assert_eq!(
            sync.map(|sync| (sync.upstream_offset, sync.downstream_offset)),
            Ok((1, 2))
        );
        let long = "x".repeat(40_000);
        let checkpoint = Checkpoint {
            consumer_group_id: long,
            topic: "t".into(),
            partition: 0,
            upstream_offset: 0,
            downstream_offset: 0,
            metadata: String::new(),
        };
        assert_eq!(
            checkpoint.key(),
            Err(EncodeError::TooLong {
                field: "group",
                length: 40_000
            })
        );
    }
}
