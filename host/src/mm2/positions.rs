//! Source positions: how far each source partition has been replicated, stored on the target.
//!
//! Ferry keeps positions exactly as MirrorMaker 2 does (`docs/mm2-facts.md`, "Positions"), in the compacted topic
//! `mm2-offsets.<source alias>.internal` on the target cluster, so that Ferry can take over from a
//! running MM2 in place and hand back to it:
//!
//! * key: `["MirrorSourceConnector",{"cluster":"<source alias>","partition":<p>,"topic":"<source topic>"}]`
//! * value: `{"offset":<last replicated source offset>}`; replication resumes at `offset + 1`.
//!
//! Keys are written in the byte form Kafka Connect's `JsonConverter` writes (the field order is
//! that of Java's `HashMap` for these three names), and partitioned with Java's murmur2, so MM2's
//! and Ferry's records for one source partition land in the same partition of the compacted
//! topic and compact together.
//!
//! This module owns the codec only; `replication::positions` reads the topic, and each task's
//! producer (`replication::worker`) writes positions only after the target acknowledged the
//! records they cover.

/// Connect's name for MM2's source connector; the namespace of every position key.
pub(crate) const CONNECTOR_NAME: &str = "MirrorSourceConnector";

/// Partitions of the positions topic when Ferry creates it (Connect's `offset.storage.partitions`).
pub(crate) const POSITIONS_TOPIC_PARTITIONS: i32 = 25;

/// The positions topic for flows from the cluster `source_alias` (MM2's default
/// `offset.storage.topic`).
pub(crate) fn positions_topic(source_alias: &str) -> String {
    format!("mm2-offsets.{source_alias}.internal")
}

/// Encodes the key of the position of `topic`/`partition` replicated from `source_alias`.
pub(crate) fn encode_key(source_alias: &str, topic: &str, partition: i32) -> Vec<u8> {
    let cluster = json_string(source_alias);
    let topic = json_string(topic);
    format!(
        r#"["{CONNECTOR_NAME}",{{"cluster":{cluster},"partition":{partition},"topic":{topic}}}]"#
    )
    .into_bytes()
}

/// Encodes a position value: the last replicated source offset.
pub(crate) fn encode_value(last_replicated: i64) -> Vec<u8> {
    format!(r#"{{"offset":{last_replicated}}}"#).into_bytes()
}

fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// A decoded position key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PositionKey {
    pub(crate) cluster: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

/// Decodes a key written by Ferry or MM2; `None` for keys of other connectors or of another
/// shape (the topic is shared with Connect's own bookkeeping).
pub(crate) fn decode_key(bytes: &[u8]) -> Option<PositionKey> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let array = value.as_array()?;
    if array.len() != 2 || array.first()?.as_str()? != CONNECTOR_NAME {
        return None;
    }
    let map = array.get(1)?.as_object()?;
    Some(PositionKey {
        cluster: map.get("cluster")?.as_str()?.to_owned(),
        topic: map.get("topic")?.as_str()?.to_owned(),
        partition: i32::try_from(map.get("partition")?.as_i64()?).ok()?,
    })
}

/// Decodes a position value (`{"offset":N}`); `None` when malformed or negative.
pub(crate) fn decode_value(bytes: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("offset")?.as_i64().filter(|offset| *offset >= 0)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_connects_byte_form() {
        assert_eq!(
            String::from_utf8(encode_key("A", "orders", 3)).unwrap(),
            r#"["MirrorSourceConnector",{"cluster":"A","partition":3,"topic":"orders"}]"#
        );
        assert_eq!(
            String::from_utf8(encode_value(1234)).unwrap(),
            r#"{"offset":1234}"#
        );
    }

    #[test]
    fn keys_round_trip_and_foreign_keys_are_ignored() {
        let key = encode_key("clusterA", "prod.orders.global", 7);
        assert_eq!(
            decode_key(&key),
            Some(PositionKey {
                cluster: "clusterA".into(),
                topic: "prod.orders.global".into(),
                partition: 7
            })
        );
        // MM2 writes the same map in another order after a JVM change; semantics count.
        let reordered = br#"["MirrorSourceConnector",{"topic":"t","cluster":"A","partition":0}]"#;
        assert_eq!(decode_key(reordered).map(|k| k.topic), Some("t".into()));
        assert_eq!(
            decode_key(br#"["MirrorCheckpointConnector",{"cluster":"A"}]"#),
            None
        );
        assert_eq!(decode_key(b"not json"), None);
        assert_eq!(decode_value(br#"{"offset":41}"#), Some(41));
        assert_eq!(decode_value(br#"{"offset":-1}"#), None);
    }
}
