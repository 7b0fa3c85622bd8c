//! Test support: the real Kafka clusters of this run, record generators and checkers, and
//! `ferry` and MirrorMaker 2 processes. One concept per file; every helper a scenario uses is
//! re-exported here, so tests name it `support::<item>`. Helpers only the support files use
//! (`ferry::http`, `acls::kafka_tool`) are not re-exported.
//!
//! The clusters are started once per test run by `scripts/kafka-local start` (the test command
//! `scripts/test-all` does it), which writes their addresses to `$FERRY_KAFKA_STATE/env`
//! (default `/tmp/ferry-kafka/env`). Tests never skip for want of a broker: without clusters they
//! fail and say how to start them.
//!
//! * `clusters`: where the clusters are, client settings for them, and faults of one broker of
//!   the chaos pair (`scripts/kafka-local node`);
//! * `topics`: create, grow, list and count topics, and their topic-level configs;
//! * `records`: the records tests write, the producer, and the readers;
//! * `load`: a steady producer on a thread, for tests that disturb the clusters or Ferry meanwhile;
//! * `compare`: a mirrored topic checked against what was produced (lost, duplicated, altered);
//! * `groups`: committed offsets of consumer groups, and a member that stays in a group;
//! * `positions`: replication positions in MM2's Connect-offsets format;
//! * `acls`: ACLs on the SASL clusters, through Kafka's CLI tools;
//! * `config`: Ferry configuration files for the test clusters;
//! * `ferry`: `ferry` processes, their metrics and admin endpoints, one-shot commands (and
//!   their output);
//! * `mm2`: MirrorMaker 2 processes;
//! * `oidc`: an OIDC token endpoint for the OAUTHBEARER listeners;
//! * `plugins`: the compiled plugins and their version names;
//! * `wait`: polling until a condition holds;
//! * `unique`: unique names and temporary directories.

mod acls;
mod clusters;
mod compare;
mod config;
mod ferry;
mod groups;
mod load;
mod mm2;
mod oidc;
mod plugins;
mod positions;
mod records;
mod topics;
mod unique;
mod wait;

pub use acls::{Acl, acl_command, acls};
pub use clusters::{Clusters, chaos_clusters, client, clusters, sasl_admin, sasl_clusters};
pub use compare::{Comparison, compare};
pub use config::ConfigBuilder;
pub use ferry::{Ferry, ferry_command, ferry_output};
pub use groups::{ActiveMember, commit_group, committed};
pub use load::SteadyProducer;
pub use mm2::Mm2;
pub use oidc::TokenEndpoint;
pub use plugins::{plugin, short_digest};
pub use positions::positions;
pub use records::{
    TestRecord, produce, produce_records, read_all, read_all_with_offsets, read_raw, record,
    target_offsets,
};
pub use topics::{
    create_topic, create_topic_with, delete_records_before, delete_topic, grow_topic,
    high_watermarks, record_count, replace_topic_configs, topic_overrides, topics,
};
pub use unique::{TempDir, unique};
pub use wait::{wait_for_value, wait_until};
