//! Costs of record filters and transforms, printed as three tables. A measurement, not a test:
//! `bench/plugins` runs it in release mode. Never asserts on timing.
//!
//! 1. Per-record cost: packs batches of records the way a task worker does and runs them
//!    through a one-stage chain, with epoch interruption on (Ferry's setting: it enforces the
//!    CPU deadline) and off (measurement only), to price the epoch checks.
//! 2. Hot swap: what a task running batches in a loop sees when its filter's slot gets a new
//!    version (`PluginSlot::replace`): steady batches, the first batch after the swap (it
//!    instantiates the new version and calls `init`), and the load of that version.
//! 3. Loading a new version: compiled cold, read from the precompiled (`.cwasm`) cache as after
//!    a restart, or from the engine's in-memory copy; each includes linking and the canary
//!    instance's `init`.
//!
//! Timings are medians (and minima) over repeated rounds, so that a busy machine (a build
//! running beside) shows as a wider spread rather than a wrong median.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark binary that prints its table"
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry::plugins::{
    ChainSpec, Disposition, Engine, EngineOptions, PackedBatch, PluginSource, PluginVersion,
    RecordInput, StageKind,
};

/// Rounds per per-record measurement; the table shows their median and minimum.
const ROUNDS: usize = 11;
/// Hot swaps measured.
const SWAPS: usize = 20;
/// Steady batches run between two swaps.
const STEADY_BATCHES: usize = 20;
/// Loads measured per way of loading.
const LOADS: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch_size: usize = args.get(1).and_then(|arg| arg.parse().ok()).unwrap_or(500);
    let record_size: usize = args.get(2).and_then(|arg| arg.parse().ok()).unwrap_or(1024);
    let value = vec![b'x'; record_size];
    let headers = [
        ("trace-id", Some(&b"0123456789abcdef"[..])),
        ("origin", Some(&b"bench"[..])),
    ];
    let pack = |packed: &mut PackedBatch| {
        packed.clear();
        for offset in 0..batch_size as i64 {
            let key = offset.to_le_bytes();
            packed.push(RecordInput {
                topic: "bench.topic",
                remote_topic: "A.bench.topic",
                partition: 0,
                offset,
                key: Some(&key),
                value: Some(&value),
                timestamp: Some(1_700_000_000_000 + offset),
                headers: headers.iter().copied(),
            });
        }
    };

    println!(
        "batch {batch_size} records x {record_size} B value, 2 headers; wasmtime 48; \
         median (min) of {ROUNDS} rounds"
    );
    println!();
    per_record_table(batch_size, &pack);
    println!();
    swap_table(batch_size, &pack);
    println!();
    load_table();
}

/// Table 1: ns per record, with epoch interruption on and off.
fn per_record_table(batch_size: usize, pack: &dyn Fn(&mut PackedBatch)) {
    let mut packed = PackedBatch::default();
    let pack_ns = Stats::rounds(|| {
        let iterations = 200;
        let started = Instant::now();
        for _ in 0..iterations {
            pack(&mut packed);
        }
        per_record(started.elapsed(), iterations, batch_size)
    });
    println!(
        "| plugin | what it does | epoch interruption | ns/record (call) | ns/record (pack + call) | verdicts |"
    );
    println!("|---|---|---|---|---|---|");
    println!("| (none) | packing the batch only | - | - | {pack_ns} | - |");
    let cases: [Case; 3] = [
        (
            "identity_transform.wasm",
            "keep every record (nothing copied back)",
            StageKind::Transform,
            &[],
        ),
        (
            "header_filter.wasm",
            "filter: look up a header, keep",
            StageKind::Filter,
            &[("header", "drop")],
        ),
        (
            "suffix_transform.wasm",
            "transform: rewrite every value (+1 header)",
            StageKind::Transform,
            &[("suffix", "!")],
        ),
    ];
    for (name, what, kind, with) in cases {
        for epoch in [true, false] {
            let engine = Engine::with_options(EngineOptions {
                epoch_interruption: epoch,
                ..EngineOptions::default()
            })
            .unwrap();
            let spec = load_spec(&engine, kind, name, with);
            let mut chain = spec.start();
            pack(&mut packed);
            // Warm up: instantiate, fill caches.
            for _ in 0..50 {
                chain.run(&packed);
            }
            let iterations = if kind == StageKind::Filter || name.starts_with("identity") {
                400
            } else {
                100
            };
            let call_ns = Stats::rounds(|| {
                let started = Instant::now();
                for _ in 0..iterations {
                    let output = chain.run(&packed);
                    std::hint::black_box(output.dispositions().len());
                }
                per_record(started.elapsed(), iterations, batch_size)
            });
            let total_ns = Stats::rounds(|| {
                let started = Instant::now();
                for _ in 0..iterations {
                    pack(&mut packed);
                    let output = chain.run(&packed);
                    std::hint::black_box(output.dispositions().len());
                }
                per_record(started.elapsed(), iterations, batch_size)
            });
            let output = chain.run(&packed);
            let kept = output
                .dispositions()
                .iter()
                .filter(|disposition| **disposition == Disposition::Keep)
                .count();
            let replaced = output
                .dispositions()
                .iter()
                .filter(|disposition| matches!(disposition, Disposition::Replace { .. }))
                .count();
            let epoch = if epoch {
                "on"
            } else {
                "off (measurement only)"
            };
            println!(
                "| {name} | {what} | {epoch} | {call_ns} | {total_ns} | {kept} keep, {replaced} replace |"
            );
        }
    }
}

/// Table 2: a task's batches around hot swaps of its filter.
fn swap_table(batch_size: usize, pack: &dyn Fn(&mut PackedBatch)) {
    let engine = Engine::new().unwrap();
    let spec = load_spec(&engine, StageKind::Filter, "header_filter.wasm", &[]);
    let slot = spec.slots().first().unwrap().clone();
    let mut chain = spec.start();
    let mut packed = PackedBatch::default();
    pack(&mut packed);
    for _ in 0..50 {
        chain.run(&packed);
    }
    let source = plugin_source("header_filter.wasm");
    let mut steady = Vec::new();
    let mut loads = Vec::new();
    let mut replaces = Vec::new();
    let mut firsts = Vec::new();
    let mut seconds = Vec::new();
    let time_batch = |chain: &mut ferry::plugins::RecordChain| {
        let started = Instant::now();
        let output = chain.run(&packed);
        std::hint::black_box(output.dispositions().len());
        started.elapsed()
    };
    for swap in 0..SWAPS {
        for _ in 0..STEADY_BATCHES {
            steady.push(time_batch(&mut chain));
        }
        // A new configuration, so that the new version differs from the old one.
        let config = vec![("header".to_owned(), format!("drop-{swap}"))];
        let started = Instant::now();
        let version = PluginVersion::load(&engine, StageKind::Filter, &source, &config).unwrap();
        loads.push(started.elapsed());
        let started = Instant::now();
        let old = slot.replace(version);
        replaces.push(started.elapsed());
        drop(old);
        firsts.push(time_batch(&mut chain));
        seconds.push(time_batch(&mut chain));
    }
    println!(
        "hot swap of header_filter.wasm under a task running batches of {batch_size} in a loop \
         ({SWAPS} swaps, {STEADY_BATCHES} steady batches before each)"
    );
    println!();
    println!("| what the task sees | p50 | max | samples |");
    println!("|---|---|---|---|");
    let row = |what: &str, samples: &mut Vec<Duration>| {
        samples.sort();
        let p50 = samples.get(samples.len() / 2).copied().unwrap_or_default();
        let max = samples.last().copied().unwrap_or_default();
        println!(
            "| {what} | {} | {} | {} |",
            micros(p50),
            micros(max),
            samples.len()
        );
    };
    row("steady-state batch", &mut steady);
    row(
        "first batch after the swap (instantiate + init + call)",
        &mut firsts,
    );
    row("second batch after the swap", &mut seconds);
    row("`PluginSlot::replace` (the swapper's call)", &mut replaces);
    row(
        "loading the new version (in-memory component: link + canary init); off the task",
        &mut loads,
    );
}

/// Table 3: loading a new version, by where its compiled code comes from.
fn load_table() {
    let source = plugin_source("header_filter.wasm");
    let config = vec![("header".to_owned(), "drop".to_owned())];
    let cache = std::env::temp_dir().join(format!("ferry-bench-plugins-{}", std::process::id()));
    let engine_with = |cache_dir: Option<PathBuf>| {
        Engine::with_options(EngineOptions {
            cache_dir,
            ..EngineOptions::default()
        })
        .unwrap()
    };
    let load = |engine: &Engine| {
        let started = Instant::now();
        let version = PluginVersion::load(engine, StageKind::Filter, &source, &config).unwrap();
        let elapsed = started.elapsed();
        drop(version);
        elapsed
    };
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    let mut memory = Vec::new();
    for _ in 0..LOADS {
        // A new engine per load: a fresh process, as far as the in-memory copy goes.
        let _ = std::fs::remove_dir_all(&cache);
        let engine = engine_with(Some(cache.clone()));
        cold.push(load(&engine));
        memory.push(load(&engine));
        let restarted = engine_with(Some(cache.clone()));
        cached.push(load(&restarted));
    }
    let _ = std::fs::remove_dir_all(&cache);
    let size = std::fs::metadata(Path::new(env!("FERRY_PLUGIN_DIR")).join("header_filter.wasm"))
        .map_or(0, |metadata| metadata.len());
    println!(
        "loading header_filter.wasm ({} KiB) as a new version: `PluginVersion::load` \
         (read, hash, compile or look up, link, canary instance + init), {LOADS} loads each",
        size / 1024
    );
    println!();
    println!("| compiled code from | p50 | max |");
    println!("|---|---|---|");
    for (what, samples) in [
        ("compiled cold (and written to the .cwasm cache)", &mut cold),
        ("the precompiled .cwasm cache (a restart)", &mut cached),
        ("the engine's in-memory copy (same process)", &mut memory),
    ] {
        samples.sort();
        let p50 = samples.get(samples.len() / 2).copied().unwrap_or_default();
        let max = samples.last().copied().unwrap_or_default();
        println!("| {what} | {} | {} |", millis(p50), millis(max));
    }
}

/// A plugin file, what it does, its kind, its configuration.
type Case = (
    &'static str,
    &'static str,
    StageKind,
    &'static [(&'static str, &'static str)],
);

fn plugin_source(name: &str) -> PluginSource {
    PluginSource::File(Path::new(env!("FERRY_PLUGIN_DIR")).join(name))
}

fn load_spec(engine: &Engine, kind: StageKind, name: &str, with: &[(&str, &str)]) -> ChainSpec {
    let config: Vec<(String, String)> = with
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    let entry = [(plugin_source(name), config)];
    match kind {
        StageKind::Filter => ChainSpec::load(engine, &entry, &[]).unwrap(),
        StageKind::Transform => ChainSpec::load(engine, &[], &entry).unwrap(),
    }
}

/// Median and minimum of [`ROUNDS`] measurements.
struct Stats {
    median: f64,
    min: f64,
}

impl Stats {
    fn rounds(mut round: impl FnMut() -> f64) -> Stats {
        let mut values: Vec<f64> = (0..ROUNDS).map(|_| round()).collect();
        values.sort_by(f64::total_cmp);
        Stats {
            median: values.get(values.len() / 2).copied().unwrap_or_default(),
            min: values.first().copied().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{:.1} ({:.1})", self.median, self.min)
    }
}

fn per_record(elapsed: Duration, iterations: usize, batch: usize) -> f64 {
    elapsed.as_nanos() as f64 / (iterations * batch) as f64
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}
