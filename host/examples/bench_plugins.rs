//! Per-record cost of record filters and transforms: packs batches of 1 KiB records the way a
//! task worker does, runs them through a one-stage chain and prints a table. A measurement, not
//! a test: `bench/plugins` runs it in release mode. Never asserts on timing.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "a benchmark binary that prints its table"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use ferry::config::PluginSource;
use ferry::plugins::{ChainSpec, Disposition, Engine, PackedBatch, RecordInput};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch_size: usize = args.get(1).and_then(|arg| arg.parse().ok()).unwrap_or(500);
    let record_size: usize = args.get(2).and_then(|arg| arg.parse().ok()).unwrap_or(1024);
    let engine = Engine::new().unwrap();
    let plugin = |name: &str| PluginSource::File(Path::new(env!("FERRY_PLUGIN_DIR")).join(name));
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

    // Packing alone: the host's share of every batch.
    let mut packed = PackedBatch::default();
    let iterations = 2000;
    let started = Instant::now();
    for _ in 0..iterations {
        pack(&mut packed);
    }
    let pack_ns = per_record(started.elapsed(), iterations, batch_size);

    println!(
        "batch {batch_size} records x {record_size} B value, 2 headers; wasmtime 48, epoch deadline armed per call"
    );
    println!();
    println!("| plugin | what it does | ns/record (call) | ns/record (pack + call) | verdicts |");
    println!("|---|---|---|---|---|");
    println!("| (none) | packing the batch only | - | {pack_ns:.1} | - |");
    let cases: [Case; 3] = [
        (
            "identity_transform.wasm",
            "keep every record (nothing copied back)",
            false,
            &[],
        ),
        (
            "header_filter.wasm",
            "filter: look up a header, keep",
            true,
            &[("header", "drop")],
        ),
        (
            "suffix_transform.wasm",
            "transform: rewrite every value (+1 header)",
            false,
            &[("suffix", "!")],
        ),
    ];
    for (name, what, is_filter, with) in cases {
        let config: Vec<(String, String)> = with
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        let entry = [(plugin(name), config)];
        let spec = if is_filter {
            ChainSpec::load(&engine, &entry, &[]).unwrap()
        } else {
            ChainSpec::load(&engine, &[], &entry).unwrap()
        };
        let mut chain = spec.start();
        pack(&mut packed);
        // Warm up: instantiate, fill caches.
        for _ in 0..50 {
            chain.run(&packed);
        }
        let iterations = 1000;
        let started = Instant::now();
        for _ in 0..iterations {
            let output = chain.run(&packed);
            std::hint::black_box(output.dispositions().len());
        }
        let call_ns = per_record(started.elapsed(), iterations, batch_size);
        let started = Instant::now();
        for _ in 0..iterations {
            pack(&mut packed);
            let output = chain.run(&packed);
            std::hint::black_box(output.dispositions().len());
        }
        let total_ns = per_record(started.elapsed(), iterations, batch_size);
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
        println!(
            "| {name} | {what} | {call_ns:.1} | {total_ns:.1} | {kept} keep, {replaced} replace |"
        );
    }
}

/// A plugin file, what it does, whether it is a filter, its configuration.
type Case = (
    &'static str,
    &'static str,
    bool,
    &'static [(&'static str, &'static str)],
);

fn per_record(elapsed: Duration, iterations: usize, batch: usize) -> f64 {
    elapsed.as_nanos() as f64 / (iterations * batch) as f64
}
