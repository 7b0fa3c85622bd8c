//! Ferry: a Kafka replication host that replaces MirrorMaker 2.
//!
//! The native host consumes, produces, stores positions and balances work across processes;
//! everything users customise (remote topic naming, filters and transforms) is a
//! WebAssembly component loaded through [`plugins`].
//!
//! Module map (the folders are the architecture; `ARCHITECTURE.md` has the whole picture):
//! * `replication`: a record's path: the task worker loop (consume, filter/transform,
//!   produce, acknowledge), stored positions and offset syncs, the catalog it follows.
//! * `flow`: a flow's control plane: start/stop, the topic manager, task leases, the leader
//!   duties (heartbeats, checkpoints, group offset sync), config/ACL sync, hot swap.
//! * [`mm2`]: MirrorMaker 2's formats and rules (internal records, positions, translation).
//! * `kafka`: every rdkafka client role's settings and the admin calls (a leaf; its `ffi`
//!   holds the librdkafka calls rdkafka does not wrap).
//! * [`config`]: the TOML file, MM2's properties file, validation, client settings.
//! * [`plugins`]: the wasmtime host; the only module that uses wasmtime.
//! * `events`: every observable happening, logged and counted in one place; [`metrics`]:
//!   the Prometheus metric families and the `/metrics` endpoint.
//! * [`admin`]: the admin endpoint and the plugin file watcher; `http`: the HTTP server loop
//!   both endpoints share.
//! * [`cli`]: the `ferry` commands.

pub mod admin;
pub mod cli;
pub mod config;
pub(crate) mod events;
pub(crate) mod flow;
pub mod health;
pub(crate) mod http;
pub(crate) mod kafka;
pub mod metrics;
pub mod mm2;
pub mod plugins;
pub(crate) mod replication;

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
