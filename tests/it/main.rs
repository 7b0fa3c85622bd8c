//! Ferry's integration suite: one test binary, real Apache Kafka brokers, the real `ferry`
//! binary and real plugins. Scenarios are grouped by behaviour.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]

mod authoring;
mod bad_input;
mod chaos;
mod checkpoints;
mod cycles;
mod deploy;
mod exactly_once;
mod failover;
mod faults;
mod hot_swap;
mod logging;
mod mm2;
mod mm2_sasl;
mod operations;
mod plan;
mod replication;
mod selection;
mod status;
mod support;
mod sync;
mod takeover;
mod tidy;
mod transforms;
