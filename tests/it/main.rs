//! Ferry's integration suite: one test binary, real Apache Kafka brokers, the real `ferry`
//! binary and real plugins. Scenarios are grouped by behaviour.

mod bad_input;
mod cycles;
mod failover;
mod replication;
mod selection;
mod support;
