//! `bare-copy`: the helpers of `bench/vs-mm2`, one binary with a subcommand each.
//!
//! * `copy`: the bare rdkafka copy, the limit the other contenders are measured against: one
//!   consumer assigned every partition of the source topic from its beginning, one idempotent
//!   producer (`acks=all`) writing each record (key, value, headers, timestamp) to the same
//!   partition of the remote topic; no plugins, no positions, no offset syncs. Runs until killed.
//! * `watch`: times a copy from the target's side (watermarks) and reads the copier's CPU and
//!   peak RSS from `/proc`.
//! * `pace`: writes records of a given size, as fast as possible or at a steady rate, each value
//!   starting with its send time (see `record`).
//! * `latency`: reads the remote topic and reports the end-to-end latency percentiles of the
//!   measured records.
//! * `timeline`: the records on the target over time (`bench/failover`).
//! * `create` / `delete`: topics.
//!
//! Every subcommand prints one line of whitespace-separated numbers (the script parses them) and
//! exits non-zero with a message on error. Nothing here is a test.

mod admin;
mod args;
mod copy;
mod latency;
mod pace;
mod proc_stat;
mod record;
mod timeline;
mod watch;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let flags = match args::Flags::parse(argv) {
        Ok(flags) => flags,
        Err(error) => return fail(&error),
    };
    let result = match command.as_str() {
        "copy" => copy::run(&flags),
        "watch" => watch::run(&flags),
        "pace" => pace::run(&flags),
        "latency" => latency::run(&flags),
        "timeline" => timeline::run(&flags),
        "create" => admin::create(&flags),
        "delete" => admin::delete(&flags),
        _ => Err(format!(
            "usage: bare-copy copy|watch|pace|latency|timeline|create|delete --flag value ... (got '{command}')"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &str) -> ExitCode {
    eprintln!("bare-copy: {error}");
    ExitCode::FAILURE
}
