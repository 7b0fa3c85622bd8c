//! MirrorMaker 2's formats and rules, as Ferry must match them byte for byte: the records of
//! its internal topics, the stored positions, and offset translation. Pure code: nothing here
//! talks to Kafka, so every rule is unit-tested without a broker. The facts these modules rely
//! on are written down in `docs/mm2-facts.md`.
//!
//! * [`records`]: heartbeat, checkpoint and offset-sync records (Kafka protocol `Struct` bytes).
//! * `positions`: the key and value of a stored source position (Kafka Connect's JSON form).
//! * `translation`: when a task emits an offset sync, the run-length index that translates a
//!   source offset exactly, and MM2's "never move a checkpoint back" rule.

pub(crate) mod positions;
pub mod records;
pub(crate) mod translation;
