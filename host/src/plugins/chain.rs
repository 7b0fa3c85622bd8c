//! Record filters and transforms on the data path: a flow's chain of `ferry:plugin/record-filter`
//! and `ferry:plugin/record-transform` components (`wit/records.wit`), called once per batch.
//!
//! - [`ChainSpec`]: the flow's loaded plugins, shared by its tasks. Each plugin sits in a
//!   [`PluginSlot`] holding the current [`PluginVersion`] (compiled component, linked
//!   `InstancePre`, `init` configuration). A slot is read at every batch boundary, so replacing
//!   its version (hot swap) takes effect between batches without stopping a task.
//! - [`RecordChain`]: one task's running chain. It owns one `Store` per stage (a trap poisons
//!   only that stage's instance), the packed input ([`PackedBatch`], reused between batches) and
//!   the stages' answers.
//!
//! Faults: a trap, a timeout (CPU deadline per call), a malformed answer or a refused batch
//! fails the call. The instance is discarded when it trapped, and the batch is split in halves,
//! recursively, until the failing records are isolated (⌈log₂ n⌉ levels); records of halves that
//! succeed get their normal verdicts. An isolated record, and a record the plugin failed with a
//! per-record error, comes out as [`Disposition::Fail`]; the caller applies the flow's error
//! policy to it. A stage whose calls keep failing ([`BREAKER_TRIPS`] failed batches within
//! [`BREAKER_WINDOW`]) opens its circuit breaker: every record reaching it then fails with
//! `fatal = true`, which the caller treats as `halt` whatever the flow's policy (fail-closed: a
//! transform may scrub data, so records never bypass it).
//!
//! Nothing here knows about Kafka clients: records come in as byte slices and go out as
//! dispositions and byte views.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::Trap;

use super::PluginSource;
use super::bindings::transform::ferry::plugin::types::{
    BatchOrigin, FilterResult, RecordBatch, RecordError, TransformResult,
};
use super::bindings::{self, FILTER_INTERFACE, TRANSFORM_INTERFACE};
use super::engine::{BlockingDenied, Engine, HostState};
use super::error::{BoxError, PluginError};

/// Failed batches of one stage, within [`BREAKER_WINDOW`], that open its circuit breaker.
pub const BREAKER_TRIPS: usize = 5;
/// The window of [`BREAKER_TRIPS`].
pub const BREAKER_WINDOW: Duration = Duration::from_secs(60);

/// Null length in the packed layout.
const NULL_LENGTH: u32 = u32::MAX;
const RECORD_STRIDE: usize = 6;
const HEADER_STRIDE: usize = 4;
const KEEP: u8 = 0;
const DROP: u8 = 1;
const REPLACE: u8 = 2;
const FAIL: u8 = 3;

/// Which kind of data-path plugin a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// `ferry:plugin/record-filter`.
    Filter,
    /// `ferry:plugin/record-transform`.
    Transform,
}

impl StageKind {
    fn interface(self) -> &'static str {
        match self {
            StageKind::Filter => FILTER_INTERFACE,
            StageKind::Transform => TRANSFORM_INTERFACE,
        }
    }

    /// What it is called in messages: `record filter` or `record transform`.
    pub fn noun(self) -> &'static str {
        match self {
            StageKind::Filter => "record filter",
            StageKind::Transform => "record transform",
        }
    }

    fn function(self) -> &'static str {
        match self {
            StageKind::Filter => "filter",
            StageKind::Transform => "transform",
        }
    }
}

enum Pre {
    Filter(bindings::filter::FilterPre<HostState>),
    Transform(bindings::transform::TransformPre<HostState>),
}

/// One loaded version of a filter or transform: compiled, linked and checked (its `init`
/// accepted the configuration once). Immutable and shared; instances are per task.
pub struct PluginVersion {
    name: Arc<str>,
    kind: StageKind,
    /// The first 12 hex digits of the component's SHA-256: what tells versions apart.
    digest: Arc<str>,
    pre: Pre,
    config: Vec<(String, String)>,
}

impl fmt::Debug for PluginVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PluginVersion")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl PluginVersion {
    /// Loads `source` as a plugin of `kind` and checks that an instance accepts `config`.
    ///
    /// # Errors
    ///
    /// [`PluginError::NotFound`], [`PluginError::Read`], [`PluginError::UnknownBuiltin`],
    /// [`PluginError::Compile`], [`PluginError::WrongKind`], [`PluginError::Link`],
    /// [`PluginError::Instantiate`], [`PluginError::Init`], or a trap or timeout in `init`.
    pub fn load(
        engine: &Engine,
        kind: StageKind,
        source: &PluginSource,
        config: &[(String, String)],
    ) -> Result<PluginVersion, PluginError> {
        let bytes = super::inspect::read(source)?;
        PluginVersion::from_bytes(engine, kind, &source.plugin_name(), &bytes, config)
    }

    /// Loads the component `bytes` (named `name` in logs and errors) as a plugin of `kind` and
    /// checks that an instance accepts `config`: what a hot swap does with an uploaded file.
    ///
    /// # Errors
    ///
    /// As [`PluginVersion::load`], without the file errors.
    pub fn from_bytes(
        engine: &Engine,
        kind: StageKind,
        name: &str,
        bytes: &[u8],
        config: &[(String, String)],
    ) -> Result<PluginVersion, PluginError> {
        let name: Arc<str> = name.into();
        let digest: Arc<str> = short_digest(bytes).into();
        let component = engine.compile(&name, bytes)?;
        let interface = kind.interface();
        let wrong_kind = |source: Option<BoxError>| PluginError::WrongKind {
            plugin: name.to_string(),
            kind: kind.noun(),
            missing: interface,
            source,
        };
        if !engine.exports_instance(&component, interface) {
            return Err(wrong_kind(None));
        }
        let instance_pre = engine.link(&name, &component)?;
        let pre = match kind {
            StageKind::Filter => bindings::filter::FilterPre::new(instance_pre)
                .map(Pre::Filter)
                .map_err(|error| wrong_kind(Some(error.into_boxed_dyn_error())))?,
            StageKind::Transform => bindings::transform::TransformPre::new(instance_pre)
                .map(Pre::Transform)
                .map_err(|error| wrong_kind(Some(error.into_boxed_dyn_error())))?,
        };
        let version = PluginVersion {
            name,
            kind,
            digest,
            pre,
            config: config.to_vec(),
        };
        // A canary: the configuration must be accepted before the flow starts.
        version.instantiate(engine)?;
        Ok(version)
    }

    /// The plugin's name: its file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a filter or a transform.
    pub fn kind(&self) -> StageKind {
        self.kind
    }

    /// The version: the first 12 hex digits of the component's SHA-256.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Runs a fresh instance on the golden batch ([`canary_batch`]): the check a new version
    /// passes before a hot swap makes it live. A trap, a timeout, a refused batch or an answer
    /// that breaks the contract fails it; per-record errors are counted, not failures (a
    /// transform may rightly refuse a sample that is not JSON).
    ///
    /// # Errors
    ///
    /// The instantiation, `init` or call failure.
    pub fn canary(&self, engine: &Engine) -> Result<CanaryReport, PluginError> {
        let batch = canary_batch();
        let mut live = self.instantiate(engine)?;
        let (verdicts, _) = self
            .answer(engine, &mut live, &batch, 0)
            .map_err(|(CallFailure::Answer(error) | CallFailure::Trap(error))| error)?;
        let verdicts = verdicts.into_mapped();
        let mut report = CanaryReport {
            records: verdicts.len(),
            ..CanaryReport::default()
        };
        for verdict in verdicts {
            match verdict {
                Verdict::Keep => report.kept += 1,
                Verdict::Drop => report.dropped += 1,
                Verdict::Replace(..) => report.replaced += 1,
                Verdict::Fail(..) => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// A fresh instance in its own store, `init` called.
    fn instantiate(&self, engine: &Engine) -> Result<Live, PluginError> {
        let mut store = engine.new_store();
        let instantiate_error = |error: wasmtime::Error| PluginError::Instantiate {
            plugin: self.name.to_string(),
            source: error.into_boxed_dyn_error(),
        };
        let (instance, init) = match &self.pre {
            Pre::Filter(pre) => {
                let instance = pre.instantiate(&mut store).map_err(instantiate_error)?;
                let init = instance
                    .ferry_plugin_record_filter()
                    .call_init(&mut store, &self.config);
                (Instance::Filter(instance), init)
            }
            Pre::Transform(pre) => {
                let instance = pre.instantiate(&mut store).map_err(instantiate_error)?;
                let init = instance
                    .ferry_plugin_record_transform()
                    .call_init(&mut store, &self.config);
                (Instance::Transform(instance), init)
            }
        };
        match init {
            Ok(Ok(())) => Ok(Live { store, instance }),
            Ok(Err(message)) => Err(PluginError::Init {
                plugin: self.name.to_string(),
                message,
            }),
            Err(error) => Err(call_error(engine, &self.name, "init", 0, error)),
        }
    }
}

/// The first 12 hex digits of the SHA-256 of `bytes`.
pub fn short_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What a new version did with the golden batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CanaryReport {
    /// Records in the golden batch.
    pub records: usize,
    /// Kept as they are.
    pub kept: usize,
    /// Dropped.
    pub dropped: usize,
    /// Replaced (transforms).
    pub replaced: usize,
    /// Failed with a per-record error.
    pub failed: usize,
}

impl fmt::Display for CanaryReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} records: {} kept, {} dropped, {} replaced, {} failed",
            self.records, self.kept, self.dropped, self.replaced, self.failed
        )
    }
}

/// The golden batch a new version must get through: JSON and plain values, null keys and
/// values, an empty value, binary bytes, a 1 KiB value, headers with and without values, two
/// topics and partitions.
fn canary_batch() -> PackedBatch {
    let large = vec![b'x'; 1024];
    /// Key, value, headers.
    type Sample<'a> = (
        Option<&'a [u8]>,
        Option<&'a [u8]>,
        &'a [(&'a str, Option<&'a [u8]>)],
    );
    let records: [Sample<'_>; 8] = [
        (
            Some(b"order-1"),
            Some(br#"{"id":1,"ssn":"123-45-6789","name":"Ada"}"#),
            &[("env", Some(b"prod"))],
        ),
        (
            Some(b"order-2"),
            Some(br#"{"id":2,"nested":{"ssn":"987-65-4321"},"tags":["a","b"]}"#),
            &[("env", Some(b"test")), ("trace", None)],
        ),
        (Some(b"order-3"), Some(b"plain text, not JSON"), &[]),
        (Some(b"order-4"), None, &[("env", Some(b"prod"))]),
        (None, Some(br#"{"id":5}"#), &[]),
        (Some(b""), Some(b""), &[("", Some(b""))]),
        (
            Some(&[0xff, 0x00, 0xfe]),
            Some(&[0x80, 0x81, 0x00, 0xff]),
            &[("bin", Some(&[0xff]))],
        ),
        (
            Some(b"large"),
            Some(&large),
            &[("a", Some(b"1")), ("b", Some(b"2")), ("a", Some(b"3"))],
        ),
    ];
    let mut batch = PackedBatch::default();
    for (index, (key, value, headers)) in records.into_iter().enumerate() {
        let (topic, remote) = if index % 2 == 0 {
            ("orders", "A.orders")
        } else {
            ("payments", "A.payments")
        };
        batch.push(RecordInput {
            topic,
            remote_topic: remote,
            partition: (index % 3) as i32,
            offset: 1000 + index as i64,
            key,
            value,
            timestamp: (index != 3).then_some(1_764_547_200_000 + index as i64),
            headers: headers.iter().copied(),
        });
    }
    batch
}

/// Turns a failed guest call into [`PluginError::Timeout`] or [`PluginError::Trap`].
fn call_error(
    engine: &Engine,
    plugin: &str,
    function: &'static str,
    records: usize,
    error: wasmtime::Error,
) -> PluginError {
    guest_error(
        engine,
        plugin,
        function,
        format!("{records} record(s)"),
        error,
    )
}

/// A failed guest call as a [`PluginError`]: a timeout (epoch deadline), a trap, or another
/// guest fault (its root cause). Shared by policies and chains.
pub(crate) fn guest_error(
    engine: &Engine,
    plugin: &str,
    function: &'static str,
    input: String,
    error: wasmtime::Error,
) -> PluginError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PluginError::Timeout {
            plugin: plugin.to_owned(),
            function,
            input,
            deadline: engine.options().call_deadline,
        },
        Some(trap) => PluginError::Trap {
            plugin: plugin.to_owned(),
            function,
            input,
            source: Box::new(*trap),
        },
        None => {
            // The root cause reads best; callers log the whole error, wasm backtrace included.
            let source: BoxError = if error.is::<BlockingDenied>() {
                Box::new(BlockingDenied)
            } else {
                Box::new(GuestFault(error.root_cause().to_string()))
            };
            PluginError::Trap {
                plugin: plugin.to_owned(),
                function,
                input,
                source,
            }
        }
    }
}

/// Why a guest call failed, when it was not a plain trap: the root cause's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct GuestFault(String);

/// The place of one filter or transform in a flow's chain. Tasks read the current version at
/// every batch boundary; [`PluginSlot::replace`] installs a new one (hot swap), which each task
/// picks up before its next batch, dropping its instance of the old version.
#[derive(Debug)]
pub struct PluginSlot {
    current: Mutex<Arc<PluginVersion>>,
    /// Bumped by every replacement; tasks compare it (one atomic load per batch) before
    /// taking the lock.
    generation: AtomicU64,
}

impl PluginSlot {
    /// A slot holding `version`.
    pub fn new(version: PluginVersion) -> PluginSlot {
        PluginSlot {
            current: Mutex::new(Arc::new(version)),
            generation: AtomicU64::new(0),
        }
    }

    /// The current version.
    pub fn current(&self) -> Arc<PluginVersion> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Installs `version`; tasks switch to it at their next batch boundary. Returns the version
    /// replaced, which stays alive while a task still runs a batch with it.
    pub fn replace(&self, version: PluginVersion) -> Arc<PluginVersion> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let old = std::mem::replace(&mut *current, Arc::new(version));
        self.generation.fetch_add(1, Ordering::Release);
        old
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A flow's filters and transforms, loaded, in chain order (filters first).
#[derive(Debug, Clone)]
pub struct ChainSpec {
    engine: Engine,
    slots: Vec<Arc<PluginSlot>>,
}

impl ChainSpec {
    /// Loads every plugin: `filters` then `transforms`, each with its `init` configuration.
    ///
    /// # Errors
    ///
    /// The first plugin that fails to load, as [`PluginVersion::load`].
    pub fn load(
        engine: &Engine,
        filters: &[(PluginSource, Vec<(String, String)>)],
        transforms: &[(PluginSource, Vec<(String, String)>)],
    ) -> Result<ChainSpec, PluginError> {
        let mut slots = Vec::new();
        let stages = filters
            .iter()
            .map(|plugin| (StageKind::Filter, plugin))
            .chain(
                transforms
                    .iter()
                    .map(|plugin| (StageKind::Transform, plugin)),
            );
        for (kind, (source, config)) in stages {
            let started = Instant::now();
            let version = PluginVersion::load(engine, kind, source, config)?;
            tracing::info!(plugin = %version.name, kind = kind.noun(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "Plugin loaded.");
            slots.push(Arc::new(PluginSlot::new(version)));
        }
        Ok(ChainSpec {
            engine: engine.clone(),
            slots,
        })
    }

    /// Whether the chain has no plugin (records are copied as they are).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slots, in chain order.
    pub fn slots(&self) -> &[Arc<PluginSlot>] {
        &self.slots
    }

    /// A task's running chain. Instances are created at the first batch.
    pub fn start(&self) -> RecordChain {
        RecordChain {
            engine: self.engine.clone(),
            stages: self
                .slots
                .iter()
                .map(|slot| Stage {
                    version: slot.current(),
                    generation: slot.generation(),
                    slot: Arc::clone(slot),
                    live: None,
                    failures: VecDeque::new(),
                    open: false,
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
}

enum Instance {
    Filter(bindings::filter::Filter),
    Transform(bindings::transform::Transform),
}

/// A running instance and its store.
struct Live {
    store: Store<HostState>,
    instance: Instance,
}

struct Stage {
    slot: Arc<PluginSlot>,
    version: Arc<PluginVersion>,
    generation: u64,
    live: Option<Live>,
    /// When recent batches failed, for the circuit breaker.
    failures: VecDeque<Instant>,
    open: bool,
    calls: u64,
    traps: u64,
}

/// A packed batch, reused between batches: the `batch-origin` and `record-batch` of
/// `wit/records.wit`.
#[derive(Default)]
pub struct PackedBatch {
    origin: BatchOrigin,
    batch: RecordBatch,
}

/// One record to pack: plain slices, no client types.
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a, H> {
    /// Source topic.
    pub topic: &'a str,
    /// Remote topic.
    pub remote_topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value.
    pub value: Option<&'a [u8]>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
    /// Headers, in order.
    pub headers: H,
}

impl PackedBatch {
    /// Empties the batch, keeping its buffers.
    pub fn clear(&mut self) {
        self.origin.topics.clear();
        self.origin.remote_topics.clear();
        self.origin.topic_indexes.clear();
        self.origin.partitions.clear();
        self.origin.offsets.clear();
        self.batch.data.clear();
        self.batch.records.clear();
        self.batch.timestamps.clear();
        self.batch.headers.clear();
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.batch.timestamps.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a record.
    pub fn push<'h, H>(&mut self, record: RecordInput<'_, H>)
    where
        H: IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
    {
        let topic_index = match self
            .origin
            .topics
            .iter()
            .rposition(|topic| topic == record.topic)
        {
            Some(index) => index,
            None => {
                self.origin.topics.push(record.topic.to_owned());
                self.origin
                    .remote_topics
                    .push(record.remote_topic.to_owned());
                self.origin.topics.len() - 1
            }
        };
        self.origin.topic_indexes.push(topic_index as u32);
        self.origin.partitions.push(record.partition);
        self.origin.offsets.push(record.offset);
        push_record(
            &mut self.batch,
            record.key,
            record.value,
            record.timestamp,
            record.headers,
        );
    }

    /// Appends record `index` of `from`.
    fn copy_from(&mut self, from: &PackedBatch, index: usize) {
        let view = RecordView {
            batch: &from.batch,
            index,
        };
        let topic_index = from
            .origin
            .topic_indexes
            .get(index)
            .map_or(0, |index| *index as usize);
        let topic = from
            .origin
            .topics
            .get(topic_index)
            .map_or("", String::as_str);
        let remote = from
            .origin
            .remote_topics
            .get(topic_index)
            .map_or("", String::as_str);
        self.push(RecordInput {
            topic,
            remote_topic: remote,
            partition: from.origin.partitions.get(index).copied().unwrap_or(-1),
            offset: from.origin.offsets.get(index).copied().unwrap_or(-1),
            key: view.key(),
            value: view.value(),
            timestamp: view.timestamp(),
            headers: view.headers(),
        });
    }

    /// Appends `view`'s bytes with the origin of record `index` of `origin_of`.
    fn copy_bytes(&mut self, view: RecordView<'_>, origin_of: &PackedBatch, index: usize) {
        let topic_index = origin_of
            .origin
            .topic_indexes
            .get(index)
            .map_or(0, |index| *index as usize);
        self.push(RecordInput {
            topic: origin_of
                .origin
                .topics
                .get(topic_index)
                .map_or("", String::as_str),
            remote_topic: origin_of
                .origin
                .remote_topics
                .get(topic_index)
                .map_or("", String::as_str),
            partition: origin_of
                .origin
                .partitions
                .get(index)
                .copied()
                .unwrap_or(-1),
            offset: origin_of.origin.offsets.get(index).copied().unwrap_or(-1),
            key: view.key(),
            value: view.value(),
            timestamp: view.timestamp(),
            headers: view.headers(),
        });
    }
}

fn push_bytes(batch: &mut RecordBatch, bytes: Option<&[u8]>) -> (u32, u32) {
    match bytes {
        None => (0, NULL_LENGTH),
        Some(bytes) => {
            let offset = batch.data.len() as u32;
            batch.data.extend_from_slice(bytes);
            (offset, bytes.len() as u32)
        }
    }
}

fn push_record<'h>(
    batch: &mut RecordBatch,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    timestamp: Option<i64>,
    headers: impl IntoIterator<Item = (&'h str, Option<&'h [u8]>)>,
) {
    let (key_offset, key_length) = push_bytes(batch, key);
    let (value_offset, value_length) = push_bytes(batch, value);
    let first = (batch.headers.len() / HEADER_STRIDE) as u32;
    let mut count = 0_u32;
    for (name, header_value) in headers {
        let (name_offset, name_length) = push_bytes(batch, Some(name.as_bytes()));
        let (value_offset, value_length) = push_bytes(batch, header_value);
        batch
            .headers
            .extend_from_slice(&[name_offset, name_length, value_offset, value_length]);
        count += 1;
    }
    batch.records.extend_from_slice(&[
        key_offset,
        key_length,
        value_offset,
        value_length,
        first,
        count,
    ]);
    batch.timestamps.push(timestamp.unwrap_or(-1));
}

/// A view of one record of a packed batch (an input or a plugin's replacements).
#[derive(Clone, Copy)]
pub struct RecordView<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

impl<'a> RecordView<'a> {
    fn field(&self, column: usize) -> u32 {
        self.batch
            .records
            .get(self.index * RECORD_STRIDE + column)
            .copied()
            .unwrap_or(0)
    }

    fn bytes(&self, offset: u32, length: u32) -> Option<&'a [u8]> {
        if length == NULL_LENGTH {
            return None;
        }
        let start = offset as usize;
        let end = start.saturating_add(length as usize);
        Some(self.batch.data.get(start..end).unwrap_or_default())
    }

    /// The key.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.bytes(self.field(0), self.field(1))
    }

    /// The value.
    pub fn value(&self) -> Option<&'a [u8]> {
        self.bytes(self.field(2), self.field(3))
    }

    /// The timestamp.
    pub fn timestamp(&self) -> Option<i64> {
        self.batch
            .timestamps
            .get(self.index)
            .copied()
            .filter(|timestamp| *timestamp >= 0)
    }

    /// The headers, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + use<'a> {
        let first = self.field(4) as usize;
        let count = self.field(5) as usize;
        let view = *self;
        (first..first.saturating_add(count)).map(move |header| {
            let field = |column: usize| {
                view.batch
                    .headers
                    .get(header * HEADER_STRIDE + column)
                    .copied()
                    .unwrap_or(0)
            };
            let name = view
                .bytes(field(0), field(1))
                .and_then(|name| std::str::from_utf8(name).ok())
                .unwrap_or("");
            (name, view.bytes(field(2), field(3)))
        })
    }
}

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
        self.outputs.get(output as usize).map(|batch| RecordView {
            batch,
            index: index as usize,
        })
    }
}

/// A stage's answers for its input, one per record.
enum Verdicts {
    /// Only keep and drop: the verdict bytes as the plugin sent them (checked). The common
    /// answer of a filter, and of a transform that changes nothing; no per-record value built.
    KeepDrop(Vec<u8>),
    /// Any answer.
    Mapped(Vec<Verdict>),
}

impl Verdicts {
    fn into_mapped(self) -> Vec<Verdict> {
        match self {
            Verdicts::KeepDrop(bytes) => bytes
                .iter()
                .map(|verdict| {
                    if *verdict == KEEP {
                        Verdict::Keep
                    } else {
                        Verdict::Drop
                    }
                })
                .collect(),
            Verdicts::Mapped(verdicts) => verdicts,
        }
    }
}

/// A stage's answer for one record of its input.
enum Verdict {
    Keep,
    Drop,
    Replace(u32, u32),
    Fail(String, bool),
}

impl RecordChain {
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
                            let view = self.outputs.get(*output as usize).map(|batch| RecordView {
                                batch,
                                index: *index as usize,
                            });
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
                    if bytes.len() == survivors.len() && bytes.iter().all(|byte| *byte == KEEP) {
                        // Everything kept: the next stage sees the same records.
                        continue;
                    }
                    next.clear();
                    for (position, byte) in bytes.iter().enumerate() {
                        let Some(&original) = survivors.get(position) else {
                            continue;
                        };
                        if *byte == KEEP {
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

    /// Calls that entered wasm, traps (and timeouts), per stage: `(plugin, calls, traps)`.
    pub fn stats(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.stages
            .iter()
            .map(|stage| (stage.version.name(), stage.calls, stage.traps))
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
            stage.failures.clear();
            stage.open = false;
            tracing::info!(plugin = %stage.version.name, "Plugin version switched at a batch boundary.");
        }
        if stage.open {
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
                    let now = Instant::now();
                    stage.failures.push_back(now);
                    while stage
                        .failures
                        .front()
                        .is_some_and(|failed| now.duration_since(*failed) > BREAKER_WINDOW)
                    {
                        stage.failures.pop_front();
                    }
                    if stage.failures.len() >= BREAKER_TRIPS {
                        stage.open = true;
                        tracing::error!(plugin = %stage.version.name, failures = stage.failures.len(),
                            "Plugin circuit breaker open: every record reaching it fails and halts its partition.");
                    }
                    stage.open
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

/// Why a call gave no verdicts.
enum CallFailure {
    /// The plugin answered, but refused the batch or broke the contract; the instance stays.
    Answer(PluginError),
    /// A trap or timeout: the instance must be discarded.
    Trap(PluginError),
}

impl PluginVersion {
    /// Calls `live` (an instance of this version) on `input` under the CPU deadline and checks
    /// its answer; replacements, if any, are returned as output number `output`.
    fn answer(
        &self,
        engine: &Engine,
        live: &mut Live,
        input: &PackedBatch,
        output: u32,
    ) -> Result<(Verdicts, Option<RecordBatch>), CallFailure> {
        engine.arm_deadline(&mut live.store);
        let (name, kind, count) = (&self.name, self.kind, input.len());
        let answer = match &live.instance {
            Instance::Filter(instance) => instance
                .ferry_plugin_record_filter()
                .call_filter(&mut live.store, &input.origin, &input.batch)
                .map(|answer| answer.map(Answer::Filter)),
            Instance::Transform(instance) => instance
                .ferry_plugin_record_transform()
                .call_transform(&mut live.store, &input.origin, &input.batch)
                .map(|answer| answer.map(Answer::Transform)),
        };
        let answer = match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(message)) => {
                return Err(CallFailure::Answer(PluginError::Refused {
                    plugin: name.to_string(),
                    function: kind.function(),
                    records: count,
                    message,
                }));
            }
            Err(error) => {
                return Err(CallFailure::Trap(call_error(
                    engine,
                    name,
                    kind.function(),
                    count,
                    error,
                )));
            }
        };
        let (verdicts, errors, replacements) = match answer {
            Answer::Filter(FilterResult { verdicts, errors }) => (verdicts, errors, None),
            Answer::Transform(TransformResult {
                verdicts,
                replacements,
                errors,
            }) => (verdicts, errors, Some(replacements)),
        };
        let mapped = map_verdicts(kind, count, verdicts, errors, replacements.as_ref(), output)
            .map_err(|problem| {
                CallFailure::Answer(PluginError::Malformed {
                    plugin: name.to_string(),
                    function: kind.function(),
                    records: count,
                    problem,
                })
            })?;
        let replacements = replacements.filter(|batch| !batch.timestamps.is_empty());
        Ok((mapped, replacements))
    }
}

enum Answer {
    Filter(FilterResult),
    Transform(TransformResult),
}

/// Checks a stage's answer against the batch contract and maps it to verdicts.
fn map_verdicts(
    kind: StageKind,
    count: usize,
    verdicts: Vec<u8>,
    errors: Vec<RecordError>,
    replacements: Option<&RecordBatch>,
    output: u32,
) -> Result<Verdicts, String> {
    if verdicts.len() != count {
        return Err(format!("{} verdicts for {count} records", verdicts.len()));
    }
    let replaced = verdicts
        .iter()
        .filter(|verdict| **verdict == REPLACE)
        .count();
    let replacement_count = replacements.map_or(0, |batch| batch.timestamps.len());
    if let Some(batch) = replacements {
        let data = batch.data.len();
        let headers = batch.headers.len() / HEADER_STRIDE;
        let well_formed = batch.records.len() == replacement_count * RECORD_STRIDE
            && batch.headers.len() % HEADER_STRIDE == 0
            && batch.records.chunks_exact(RECORD_STRIDE).all(|row| {
                let fits = |offset: u32, length: u32| {
                    length == NULL_LENGTH
                        || (offset as usize).saturating_add(length as usize) <= data
                };
                fits(row[0], row[1])
                    && fits(row[2], row[3])
                    && (row[4] as usize).saturating_add(row[5] as usize) <= headers
            })
            && batch.headers.chunks_exact(HEADER_STRIDE).all(|row| {
                row[1] != NULL_LENGTH
                    && (row[0] as usize).saturating_add(row[1] as usize) <= data
                    && (row[3] == NULL_LENGTH
                        || (row[2] as usize).saturating_add(row[3] as usize) <= data)
            });
        if !well_formed {
            return Err("the replacement batch's index lists do not fit its data".to_owned());
        }
    }
    if replaced != replacement_count {
        return Err(format!(
            "{replaced} replace verdicts but {replacement_count} replacement records"
        ));
    }
    let failed = verdicts.iter().filter(|verdict| **verdict == FAIL).count();
    if failed != errors.len() {
        return Err(format!(
            "{failed} fail verdicts but {} errors",
            errors.len()
        ));
    }
    if replaced == 0 && failed == 0 && verdicts.iter().all(|verdict| *verdict <= DROP) {
        return Ok(Verdicts::KeepDrop(verdicts));
    }
    let mut errors = errors.into_iter();
    let mut next_replacement = 0_u32;
    let mut mapped = Vec::with_capacity(count);
    for (index, verdict) in verdicts.iter().enumerate() {
        mapped.push(match *verdict {
            KEEP => Verdict::Keep,
            DROP => Verdict::Drop,
            REPLACE if kind == StageKind::Transform => {
                next_replacement += 1;
                Verdict::Replace(output, next_replacement - 1)
            }
            FAIL => match errors.next() {
                Some(error) if error.index as usize == index => Verdict::Fail(error.message, false),
                _ => {
                    return Err(format!(
                        "the errors do not match the fail verdicts at record {index}"
                    ));
                }
            },
            other => {
                return Err(format!(
                    "verdict {other} at record {index} is not valid for a {}",
                    kind.noun()
                ));
            }
        });
    }
    Ok(Verdicts::Mapped(mapped))
}
