//! Ferry: a Kafka replication host that replaces MirrorMaker 2.
//!
//! The native host consumes, produces, stores positions and balances work across processes;
//! everything users customise (remote topic naming, filters and transforms) is a
//! WebAssembly component loaded through [`plugins`].
//!
//! Module map:
//! * [`config`]: the TOML file, its validation and librdkafka client settings.
//! * [`plugins`]: the wasmtime host; the only module that uses wasmtime.
//! * `kafka`: rdkafka client roles and administrative calls.
//! * `offsets`: stored source positions, in MM2's format.
//! * `replication`: the data path (topic selection, task leases, task workers).
//! * `sync`: MM2's topic config sync and topic ACL sync; the only module with `unsafe` code
//!   (`sync::ffi`, librdkafka admin calls rdkafka does not wrap).
//! * [`metrics`]: Prometheus metrics and the `/metrics` endpoint.
//! * [`admin`]: the admin endpoint and the plugin file watcher (hot swap); `http`: the HTTP
//!   server loop both endpoints share.
//! * [`mm2_records`]: MM2's heartbeat, checkpoint and offset-sync record formats.
//! * [`cli`]: what `ferry run` and `ferry validate` do.
//! * [`plugin_cli`]: `ferry plugin check`, for plugin authors.

pub mod admin;
pub mod cli;
pub mod config;
pub(crate) mod http;
pub(crate) mod kafka;
pub mod metrics;
pub mod mm2_records;
pub(crate) mod offsets;
pub mod plugin_cli;
pub mod plugins;
pub(crate) mod replication;
pub(crate) mod sync;
pub(crate) mod translation;

/// Formats an error with its chain of causes, `outer: inner: root`, on one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
