//! [`RecordChain`]: one task's running chain of filters and transforms, and what it decides per
//! record ([`Disposition`], read through [`ChainOutput`]).
//!
//! It owns one instance (one `Store`) per stage, created at the first batch and after a trap,
//! and switches a stage to a new version at a batch boundary when its slot's generation moved.
//! A failed call (trap, timeout, malformed answer, refused batch) is split in halves,
//! recursively, down to the records responsible: at most 2⌈log₂ n⌉ more calls per failing record
//! of a batch of n, and records of halves that succeed get their normal verdicts. A stage with
//! [`BREAKER_TRIPS`] failed batches within [`BREAKER_WINDOW`] opens its circuit breaker
//! ([`Breaker`]): every record reaching it then fails with `fatal = true` until a new version is
//! swapped in.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::PluginSlot;
use super::packed::{PackedBatch, RecordView, Verdict, Verdicts, is_keep};
use super::version::{CallFailure, Live, PluginVersion};
use crate::plugins::bindings::transform::ferry::plugin::types::RecordBatch;
use crate::plugins::engine::Engine;
use crate::plugins::error::PluginError;

/// Failed batches of one stage, within [`BREAKER_WINDOW`], that open its circuit breaker.
pub const BREAKER_TRIPS: usize = 5;
/// The window of [`BREAKER_TRIPS`].
pub const BREAKER_WINDOW: Duration = Duration::from_secs(60);

/// What the chain decided for one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Replicate the original record unchanged.
    Keep,
    /// Do not replicate it (its position still advances).
    Drop,
    /// Replicate [`ChainOutput::replacement`] instead.
    Replace {
        /// Which stage answer holds it.
        output: u32,
        /// Its index there.
        index: u32,
    },
    /// A plugin failed on this record.
    Fail {
        /// The plugin.
        plugin: Arc<str>,
        /// Why.
        message: String,
        /// Whether the stage's circuit breaker is open: halt whatever the flow's error policy.
        fatal: bool,
    },
}

/// One task's chain: one instance per stage, created at the first batch and after a trap.
pub struct RecordChain {
    engine: Engine,
    stages: Vec<Stage>,
    dispositions: Vec<Disposition>,
    /// Replacement batches of the current run, referenced by [`Disposition::Replace`].
    outputs: Vec<RecordBatch>,
    /// The input of stages after the first, when earlier stages changed something.
    scratch: PackedBatch,
    /// Input indexes of the records shown to the current stage, and of those it passed on:
    /// kept between batches so that a run allocates nothing on its common path.
    survivors: Vec<usize>,
    next: Vec<usize>,
}

/// The chain's answer for one batch.
pub struct ChainOutput<'a> {
    dispositions: &'a [Disposition],
    outputs: &'a [RecordBatch],
}

impl<'a> ChainOutput<'a> {
    /// One disposition per input record, in input order.
    pub fn dispositions(&self) -> &'a [Disposition] {
        self.dispositions
    }

    /// The bytes of a replacement.
    pub fn replacement(&self, output: u32, index: u32) -> Option<RecordView<'a>> {
        self.outputs
            .get(output as usize)
            .map(|batch| RecordView::new(batch, index as usize))
    }
}

/// One stage of a task's chain.
struct Stage {
    slot: Arc<PluginSlot>,
    version: Arc<PluginVersion>,
    /// The slot's generation when `version` was taken from it.
    generation: u64,
    live: Option<Live>,
    breaker: Breaker,
    /// Calls that entered wasm, since the chain started (all versions).
    calls: u64,
    /// Of those, traps and timeouts.
    traps: u64,
}

/// A stage's circuit breaker: when its recent batches failed, and whether it is open.
#[derive(Debug, Default)]
pub(super) struct Breaker {
    failures: VecDeque<Instant>,
    open: bool,
}

impl Breaker {
    /// Counts a failed batch at `now`, forgetting failures older than [`BREAKER_WINDOW`];
    /// returns whether the breaker is open (it opens at [`BREAKER_TRIPS`] failures in the
    /// window and stays open until [`Breaker::reset`]).
    pub(super) fn failed(&mut self, now: Instant) -> bool {
        self.failures.push_back(now);
        while self
            .failures
            .front()
            .is_some_and(|failed| now.duration_since(*failed) > BREAKER_WINDOW)
        {
            self.failures.pop_front();
        }
        if self.failures.len() >= BREAKER_TRIPS {
            self.open = true;
        }
        self.open
    }

    /// Whether every record must fail without a call.
    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    /// Failed batches within the window, as of the last failure.
    fn recent_failures(&self) -> usize {
        self.failures.len()
    }

    /// Closes the breaker and forgets the failures (a new version).
    fn reset(&mut self) {
        self.failures.clear();
        self.open = false;
    }
}

impl RecordChain {
    /// A chain over `slots`, each stage at its slot's current version. Instances are created at
    /// the first batch.
    pub(super) fn new(engine: &Engine, slots: &[Arc<PluginSlot>]) -> RecordChain {
        RecordChain {
            engine: engine.clone(),
            stages: slots
                .iter()
                .map(|slot| Stage {
                    version: slot.current(),
                    generation: slot.generation(),
                    slot: Arc::clone(slot),
                    live: None,
                    breaker: Breaker::default(),
                    calls: 0,
                    traps: 0,
                })
                .collect(),
            dispositions: Vec::new(),
            outputs: Vec::new(),
            scratch: PackedBatch::default(),
            survivors: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Runs `input` through every stage, in order; a record dropped or failed by one stage is
    /// not shown to the next.
    pub fn run(&mut self, input: &PackedBatch) -> ChainOutput<'_> {
        let count = input.len();
        self.dispositions.clear();
        self.dispositions.resize(count, Disposition::Keep);
        self.outputs.clear();
        // `survivors[i]` = input index of record `i` of the current stage input.
        let mut survivors = std::mem::take(&mut self.survivors);
        let mut next = std::mem::take(&mut self.next);
        survivors.clear();
        survivors.extend(0..count);
        let mut changed = false;
        for stage_index in 0..self.stages.len() {
            if survivors.is_empty() {
                break;
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            let stage_input = if changed {
                scratch.clear();
                for &original in &survivors {
                    match &self.dispositions.get(original) {
                        Some(Disposition::Replace { output, index }) => {
                            let view = self
                                .outputs
                                .get(*output as usize)
                                .map(|batch| RecordView::new(batch, *index as usize));
                            if let Some(view) = view {
                                scratch.copy_bytes(view, input, original);
                            }
                        }
                        _ => scratch.copy_from(input, original),
                    }
                }
                &scratch
            } else {
                input
            };
            let verdicts = self.run_stage(stage_index, stage_input);
            self.scratch = scratch;
            let plugin = self
                .stages
                .get(stage_index)
                .map(|stage| Arc::clone(&stage.version.name));
            let verdicts = match verdicts {
                Verdicts::KeepDrop(bytes) => {
                    if bytes.len() == survivors.len() && bytes.iter().all(|byte| is_keep(*byte)) {
                        // Everything kept: the next stage sees the same records.
                        continue;
                    }
                    next.clear();
                    for (position, byte) in bytes.iter().enumerate() {
                        let Some(&original) = survivors.get(position) else {
                            continue;
                        };
                        if is_keep(*byte) {
                            next.push(original);
                        } else if let Some(disposition) = self.dispositions.get_mut(original) {
                            *disposition = Disposition::Drop;
                            changed = true;
                        }
                    }
                    std::mem::swap(&mut survivors, &mut next);
                    continue;
                }
                Verdicts::Mapped(verdicts) => verdicts,
            };
            next.clear();
            for (position, verdict) in verdicts.into_iter().enumerate() {
                let Some(&original) = survivors.get(position) else {
                    continue;
                };
                let Some(disposition) = self.dispositions.get_mut(original) else {
                    continue;
                };
                match verdict {
                    Verdict::Keep => next.push(original),
                    Verdict::Drop => {
                        *disposition = Disposition::Drop;
                        changed = true;
                    }
                    Verdict::Replace(output, index) => {
                        *disposition = Disposition::Replace { output, index };
                        next.push(original);
                        changed = true;
                    }
                    Verdict::Fail(message, fatal) => {
                        *disposition = Disposition::Fail {
                            plugin: plugin.clone().unwrap_or_else(|| Arc::from("")),
                            message,
                            fatal,
                        };
                        changed = true;
                    }
                }
            }
            std::mem::swap(&mut survivors, &mut next);
        }
        self.survivors = survivors;
        self.next = next;
        ChainOutput {
            dispositions: &self.dispositions,
            outputs: &self.outputs,
        }
    }

    /// A number that changes whenever a version is swapped into any stage of the chain (one
    /// atomic load per stage): tasks compare it to resume partitions halted by the old version.
    pub fn generation(&self) -> u64 {
        self.stages
            .iter()
            .map(|stage| stage.slot.generation())
            .fold(0, u64::wrapping_add)
    }

    /// Per stage, in chain order: `(plugin, calls, traps)`, where `plugin` is the name of the
    /// stage's current version, `calls` the calls that entered wasm (one per batch, plus the
    /// calls of bisection; `init` not included) and `traps` those that trapped or timed out.
    /// Both are counted since the chain started, across version switches (a swap does not reset
    /// them), so a reader that reports deltas keeps the last values it read. Reading is a walk
    /// over the stages: cheap enough for every batch.
    pub fn stats(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.stages
            .iter()
            .map(|stage| (stage.version.name(), stage.calls, stage.traps))
    }

    /// How many stages have an open circuit breaker (a stage swapped to a new version counts
    /// as closed from the next batch on, when it switches).
    pub fn open_breakers(&self) -> usize {
        self.stages
            .iter()
            .filter(|stage| stage.breaker.is_open())
            .count()
    }

    /// Runs one stage on `input`, isolating failing records by bisection.
    fn run_stage(&mut self, stage_index: usize, input: &PackedBatch) -> Verdicts {
        let Some(stage) = self.stages.get_mut(stage_index) else {
            return Verdicts::Mapped(Vec::new());
        };
        // Hot swap: a new version takes effect at a batch boundary.
        let generation = stage.slot.generation();
        if generation != stage.generation {
            stage.version = stage.slot.current();
            stage.generation = generation;
            stage.live = None;
            stage.breaker.reset();
            tracing::info!(plugin = %stage.version.name, "Plugin version switched at a batch boundary.");
        }
        if stage.breaker.is_open() {
            return Verdicts::Mapped(
                (0..input.len())
                    .map(|_| {
                        Verdict::Fail(
                            format!(
                                "circuit breaker open: {BREAKER_TRIPS} failed batches within {BREAKER_WINDOW:?}"
                            ),
                            true,
                        )
                    })
                    .collect(),
            );
        }
        match self.call(stage_index, input) {
            Ok(verdicts) => verdicts,
            Err(error) => {
                let tripped = self.stages.get_mut(stage_index).is_some_and(|stage| {
                    // The breaker was closed (an open one calls nothing): open means it opens now.
                    let open = stage.breaker.failed(Instant::now());
                    if open {
                        tracing::error!(plugin = %stage.version.name, failures = stage.breaker.recent_failures(),
                            "Plugin circuit breaker open: every record reaching it fails and halts its partition.");
                    }
                    open
                });
                if tripped {
                    let message = crate::error_chain(&error);
                    return Verdicts::Mapped(
                        (0..input.len())
                            .map(|_| Verdict::Fail(message.clone(), true))
                            .collect(),
                    );
                }
                Verdicts::Mapped(self.bisect(stage_index, input, error))
            }
        }
    }

    /// Splits a failed batch and calls each half, down to single records.
    fn bisect(
        &mut self,
        stage_index: usize,
        input: &PackedBatch,
        error: PluginError,
    ) -> Vec<Verdict> {
        let count = input.len();
        if count <= 1 {
            return vec![Verdict::Fail(crate::error_chain(&error), false)];
        }
        let middle = count / 2;
        let mut verdicts = Vec::with_capacity(count);
        for range in [0..middle, middle..count] {
            let mut half = PackedBatch::default();
            for index in range {
                half.copy_from(input, index);
            }
            match self.call(stage_index, &half) {
                Ok(answer) => verdicts.extend(answer.into_mapped()),
                Err(error) => verdicts.extend(self.bisect(stage_index, &half, error)),
            }
        }
        verdicts
    }

    /// One call of a stage on `input`, its answer checked and mapped to verdicts. A trap or
    /// timeout discards the instance.
    fn call(&mut self, stage_index: usize, input: &PackedBatch) -> Result<Verdicts, PluginError> {
        let engine = &self.engine;
        let Some(stage) = self.stages.get_mut(stage_index) else {
            return Ok(Verdicts::Mapped(Vec::new()));
        };
        let live = match stage.live.take() {
            Some(live) => live,
            None => stage.version.instantiate(engine)?,
        };
        let live = stage.live.insert(live);
        stage.calls += 1;
        let output = self.outputs.len() as u32;
        match stage.version.answer(engine, live, input, output) {
            Ok((verdicts, replacements)) => {
                if let Some(replacements) = replacements {
                    self.outputs.push(replacements);
                }
                Ok(verdicts)
            }
            Err(CallFailure::Answer(error)) => Err(error),
            Err(CallFailure::Trap(error)) => {
                stage.live = None;
                stage.traps += 1;
                tracing::warn!(error = %crate::error_chain(&error),
                    "Plugin call failed; the instance is discarded and the batch split to find the records responsible.");
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use super::{BREAKER_TRIPS, BREAKER_WINDOW, Breaker, ChainOutput, Disposition, RecordChain};
    use crate::plugins::{
        ChainSpec, Engine, PackedBatch, PluginSource, PluginVersion, RecordInput, StageKind,
    };

    /// One engine for the tests, as in the host: one per process.
    fn engine() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| Engine::new().unwrap())
    }

    fn fixture(file: &str) -> PluginSource {
        PluginSource::File(std::path::Path::new(env!("FERRY_PLUGIN_DIR")).join(file))
    }

    fn config(with: &[(&str, &str)]) -> Vec<(String, String)> {
        with.iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    /// A one-transform chain.
    fn transform(file: &str, with: &[(&str, &str)]) -> ChainSpec {
        ChainSpec::load(engine(), &[], &[(fixture(file), config(with))]).unwrap()
    }

    /// One record per value, offsets from 0, on `orders` partition 0.
    fn batch(values: &[&str]) -> PackedBatch {
        let mut batch = PackedBatch::default();
        for (offset, value) in values.iter().enumerate() {
            batch.push(RecordInput {
                topic: "orders",
                remote_topic: "A.orders",
                partition: 0,
                offset: offset as i64,
                key: None,
                value: Some(value.as_bytes()),
                timestamp: None,
                headers: [],
            });
        }
        batch
    }

    /// `count` values `ok-<i>`, except `poison` at the `poisoned` indexes.
    fn values(count: usize, poisoned: &[usize]) -> Vec<String> {
        (0..count)
            .map(|index| {
                if poisoned.contains(&index) {
                    "poison".to_owned()
                } else {
                    format!("ok-{index}")
                }
            })
            .collect()
    }

    /// The dispositions, one letter each: `K` keep, `D` drop, `R` replace, `F` fail, `X` fatal
    /// fail.
    fn letters(output: &ChainOutput<'_>) -> String {
        output
            .dispositions()
            .iter()
            .map(|disposition| match disposition {
                Disposition::Keep => 'K',
                Disposition::Drop => 'D',
                Disposition::Replace { .. } => 'R',
                Disposition::Fail { fatal: false, .. } => 'F',
                Disposition::Fail { fatal: true, .. } => 'X',
            })
            .collect()
    }

    /// The failure messages, in record order.
    fn messages(output: &ChainOutput<'_>) -> Vec<(String, String)> {
        output
            .dispositions()
            .iter()
            .filter_map(|disposition| match disposition {
                Disposition::Fail {
                    plugin, message, ..
                } => Some((plugin.to_string(), message.clone())),
                _ => None,
            })
            .collect()
    }

    /// `(calls, traps)` of the first stage.
    fn counters(chain: &RecordChain) -> (u64, u64) {
        chain
            .stats()
            .next()
            .map(|(_, calls, traps)| (calls, traps))
            .unwrap()
    }

    /// ⌈log₂ n⌉.
    fn levels(count: usize) -> u64 {
        u64::from(count.next_power_of_two().trailing_zeros())
    }

    #[test]
    fn bisection_fails_exactly_the_trapping_records() {
        let spec = transform("trap_transform.wasm", &[]);
        // (records, poisoned indexes, calls, traps): the calls are the failed batch, then two
        // per level on the path of each poisoned record (paths share their top levels).
        let cases: [(usize, &[usize], u64, u64); 6] = [
            (1, &[0], 1, 1),
            (2, &[1], 3, 2),
            (16, &[5], 9, 5),
            (16, &[0, 13], 15, 9),
            (7, &[6], 7, 4),
            (1000, &[0, 499, 500, 999], 67, 37),
        ];
        for (count, poisoned, calls, traps) in cases {
            let mut chain = spec.start();
            let values = values(count, poisoned);
            let input = batch(&values.iter().map(String::as_str).collect::<Vec<_>>());
            let output = chain.run(&input);
            let expected: String = (0..count)
                .map(|index| if poisoned.contains(&index) { 'F' } else { 'K' })
                .collect();
            assert_eq!(letters(&output), expected, "{count} records, {poisoned:?}");
            for (plugin, message) in messages(&output) {
                assert_eq!(plugin, "trap_transform.wasm");
                assert!(
                    message.starts_with(
                        "plugin `trap_transform.wasm` trapped in `transform(1 record(s))`"
                    ),
                    "{message}"
                );
            }
            assert_eq!(
                counters(&chain),
                (calls, traps),
                "{count} records, {poisoned:?}"
            );
            let bound = 1 + 2 * poisoned.len() as u64 * levels(count);
            assert!(calls <= bound, "{calls} calls, bound {bound}");
        }
    }

    #[test]
    fn per_record_errors_fail_their_records_without_bisection() {
        let spec = transform("trap_transform.wasm", &[]);
        let mut chain = spec.start();
        let output = chain.run(&batch(&["ok", "fail", "ok", "fail"]));
        assert_eq!(letters(&output), "KFKF");
        assert_eq!(
            messages(&output),
            [
                (
                    "trap_transform.wasm".to_owned(),
                    "cannot handle the record at offset 1".to_owned()
                ),
                (
                    "trap_transform.wasm".to_owned(),
                    "cannot handle the record at offset 3".to_owned()
                ),
            ]
        );
        assert_eq!(counters(&chain), (1, 0));

        // With a trap in the same batch, the per-record error of the half that answers stays.
        let output = chain.run(&batch(&["fail", "ok", "poison", "ok"]));
        assert_eq!(letters(&output), "FKFK");
        let messages = messages(&output);
        assert_eq!(messages[0].1, "cannot handle the record at offset 0");
        assert!(messages[1].1.contains("trapped"), "{}", messages[1].1);
        assert_eq!(counters(&chain), (1 + 5, 3));
    }

    #[test]
    fn malformed_answers_fail_every_record_and_keep_the_instance() {
        let cases = [
            (
                "short",
                "answered `transform` on 1 record(s) with a malformed result: 0 verdicts for 1 records",
            ),
            (
                "bad-verdict",
                "answered `transform` on 1 record(s) with a malformed result: verdict 9 at record 0 is not valid for a record transform",
            ),
            (
                "missing-replacement",
                "answered `transform` on 1 record(s) with a malformed result: 1 replace verdicts but 0 replacement records",
            ),
            (
                "missing-error",
                "answered `transform` on 1 record(s) with a malformed result: 1 fail verdicts but 0 errors",
            ),
            (
                "refuse",
                "refused a batch of 1 record(s) in `transform`: malformed-transform refuses every batch",
            ),
        ];
        for (mode, problem) in cases {
            let spec = transform("malformed_transform.wasm", &[("mode", mode)]);
            let mut chain = spec.start();
            let output = chain.run(&batch(&["a", "b", "c", "d"]));
            assert_eq!(letters(&output), "FFFF", "{mode}");
            for (plugin, message) in messages(&output) {
                assert_eq!(plugin, "malformed_transform.wasm");
                assert_eq!(
                    message,
                    format!("plugin `malformed_transform.wasm` {problem}"),
                    "{mode}"
                );
            }
            // Every node of the bisection tree is called (1 + 2 + 4); none trapped.
            assert_eq!(counters(&chain), (7, 0), "{mode}");
        }
    }

    #[test]
    fn breaker_opens_after_failed_batches_and_a_new_version_closes_it() {
        let spec = transform("trap_transform.wasm", &[]);
        let mut chain = spec.start();
        let poisoned = batch(&["ok", "poison", "ok", "ok"]);
        let clean = batch(&["ok", "ok", "ok", "ok"]);
        for run in 1..BREAKER_TRIPS {
            assert_eq!(letters(&chain.run(&poisoned)), "KFKK", "failed batch {run}");
            assert_eq!(chain.open_breakers(), 0, "failed batch {run}");
        }
        // Bisecting 4 records around one trap: 1 + 2 × 2 calls per batch.
        assert_eq!(
            counters(&chain),
            (
                5 * (BREAKER_TRIPS as u64 - 1),
                3 * (BREAKER_TRIPS as u64 - 1)
            )
        );

        // The last failed batch opens the breaker: every record fails, fatal, unbisected.
        let output = chain.run(&poisoned);
        assert_eq!(letters(&output), "XXXX");
        for (_, message) in messages(&output) {
            assert!(
                message.starts_with(
                    "plugin `trap_transform.wasm` trapped in `transform(4 record(s))`"
                ),
                "{message}"
            );
        }
        assert_eq!(chain.open_breakers(), 1);
        let (calls, traps) = counters(&chain);
        assert_eq!((calls, traps), (5 * 4 + 1, 3 * 4 + 1));

        // Open: nothing reaches the plugin, even a clean batch.
        let output = chain.run(&clean);
        assert_eq!(letters(&output), "XXXX");
        assert_eq!(
            messages(&output)[0].1,
            format!(
                "circuit breaker open: {BREAKER_TRIPS} failed batches within {BREAKER_WINDOW:?}"
            )
        );
        assert_eq!(counters(&chain), (calls, traps), "no call while open");

        // A new version (here: another marker) closes it at the next batch boundary.
        let generation = chain.generation();
        let version = PluginVersion::load(
            engine(),
            StageKind::Transform,
            &fixture("trap_transform.wasm"),
            &config(&[("marker", "nothing-matches")]),
        )
        .unwrap();
        let old = spec.slots()[0].replace(version);
        assert_eq!(old.name(), "trap_transform.wasm");
        assert_ne!(chain.generation(), generation);
        assert_eq!(chain.open_breakers(), 1, "open until the switch");
        assert_eq!(letters(&chain.run(&poisoned)), "KKKK");
        assert_eq!(chain.open_breakers(), 0);
        assert_eq!(letters(&chain.run(&clean)), "KKKK");
        assert_eq!(
            counters(&chain),
            (calls + 2, traps),
            "counters span versions"
        );
    }

    #[test]
    fn later_stages_see_earlier_replacements_and_not_dropped_records() {
        let spec = ChainSpec::load(
            engine(),
            &[(fixture("header_filter.wasm"), vec![])],
            &[
                (
                    fixture("suffix_transform.wasm"),
                    config(&[("suffix", "-x")]),
                ),
                (
                    fixture("trap_transform.wasm"),
                    config(&[("marker", "poison-x")]),
                ),
            ],
        )
        .unwrap();
        let mut chain = spec.start();
        let mut input = PackedBatch::default();
        for (offset, (value, drop)) in [
            ("a", false),
            ("poison", true),
            ("poison", false),
            ("b", false),
        ]
        .into_iter()
        .enumerate()
        {
            let headers: &[(&str, Option<&[u8]>)] = if drop { &[("drop", None)] } else { &[] };
            input.push(RecordInput {
                topic: "orders",
                remote_topic: "A.orders",
                partition: 0,
                offset: offset as i64,
                key: None,
                value: Some(value.as_bytes()),
                timestamp: None,
                headers: headers.iter().copied(),
            });
        }
        let output = chain.run(&input);
        // The filter drops record 1 (its `poison` never reaches the trap); record 2 becomes
        // `poison-x` in the suffix transform and traps the third stage.
        assert_eq!(letters(&output), "RDFR");
        assert_eq!(messages(&output)[0].0, "trap_transform.wasm");
        let Disposition::Replace {
            output: batch,
            index,
        } = output.dispositions()[3]
        else {
            panic!("{:?}", output.dispositions()[3]);
        };
        let replacement = output.replacement(batch, index).unwrap();
        assert_eq!(replacement.value(), Some(b"b-x".as_slice()));
        assert_eq!(
            replacement.headers().collect::<Vec<_>>(),
            [("transformed-by", Some(b"-x".as_slice()))]
        );
        let stats: Vec<(String, u64, u64)> = chain
            .stats()
            .map(|(plugin, calls, traps)| (plugin.to_owned(), calls, traps))
            .collect();
        assert_eq!(
            stats,
            [
                ("header_filter.wasm".to_owned(), 1, 0),
                ("suffix_transform.wasm".to_owned(), 1, 0),
                // 3 records: the failed batch, [0] and [1..3], then [1] and [2].
                ("trap_transform.wasm".to_owned(), 5, 3),
            ]
        );
    }

    #[test]
    fn breaker_counts_failures_within_the_window_only() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut breaker = Breaker::default();
        for second in 0..4 {
            assert!(!breaker.failed(at(second)), "failure {second}");
        }
        // At 62 s, the failures at 0 s and 1 s are older than the window; 2 s and 3 s are not.
        assert_eq!(BREAKER_WINDOW, Duration::from_secs(60));
        assert!(!breaker.failed(at(62)));
        assert_eq!(breaker.recent_failures(), 3);
        assert!(!breaker.failed(at(62)));
        assert!(breaker.failed(at(62)), "five failures within the window");
        assert!(breaker.is_open());
        breaker.reset();
        assert!(!breaker.is_open());
        assert_eq!(breaker.recent_failures(), 0);
        assert!(!breaker.failed(at(63)));
    }
}
