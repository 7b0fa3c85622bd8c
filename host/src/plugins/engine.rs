//! The process-wide wasmtime [`Engine`]: compiler and allocator configuration, the epoch ticker
//! thread that enforces CPU deadlines, the WASI-only linker, the sandbox every `Store` gets
//! (memory cap, empty WASI context) and a cache of compiled components.
//!
//! It knows nothing about what a plugin does; `policy.rs` owns calling one.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use wasmtime::StoreLimitsBuilder;
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::error::{BoxError, PluginError};

/// Limits and timing of the plugin sandbox. [`EngineOptions::default`] is what
/// [`Engine::new`] uses.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How often the ticker thread advances the epoch; CPU deadlines are measured in ticks.
    /// Default 10 ms (wasmCloud and Extism tick every 1 to 10 ms).
    pub epoch_tick: Duration,
    /// CPU deadline of one guest call, `init` included. Default 1 s: a policy answers in
    /// microseconds, so only a runaway guest comes near it.
    pub call_deadline: Duration,
    /// Cap on a plugin instance's linear memory. Default 64 MiB.
    pub memory_limit: usize,
    /// Slots in the pooling allocator (instances alive at once); `0` selects on-demand
    /// allocation. Default 256.
    pub pooled_instances: u32,
    /// Folder for wasmtime's on-disk cache of compiled code; `None` (the default) compiles
    /// every component once per process.
    pub cache_dir: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            epoch_tick: Duration::from_millis(10),
            call_deadline: Duration::from_secs(1),
            memory_limit: 64 << 20,
            pooled_instances: 256,
            cache_dir: None,
        }
    }
}

/// State of every plugin `Store`: an empty WASI context (no files, network, environment,
/// arguments or stdio; frozen clocks) and the memory limits.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The wasmtime engine shared by every plugin of the process. Cheap to clone.
///
/// Creating one starts a ticker thread that advances the engine's epoch every
/// [`EngineOptions::epoch_tick`]; the thread holds only a weak reference and exits once the
/// engine and every plugin loaded with it are dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    wasmtime: wasmtime::Engine,
    linker: Linker<HostState>,
    options: EngineOptions,
    /// Compiled components by their bytes, so that a plugin used by several flows compiles once.
    components: Mutex<HashMap<Vec<u8>, Component>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Engine")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the default sandbox ([`EngineOptions::default`]).
    ///
    /// # Errors
    ///
    /// [`PluginError::Engine`] when wasmtime rejects the configuration (e.g. the pooling
    /// allocator cannot reserve its address space) or the ticker thread cannot start.
    pub fn new() -> Result<Engine, PluginError> {
        Engine::with_options(EngineOptions::default())
    }

    /// An engine with the given sandbox limits.
    ///
    /// # Errors
    ///
    /// As [`Engine::new`].
    pub fn with_options(options: EngineOptions) -> Result<Engine, PluginError> {
        let engine_error = |source: BoxError| PluginError::Engine { source };
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            // Component-model async adds per-call state: ~530 ns instead of ~165 ns per call.
            .concurrency_support(false)
            .parallel_compilation(true);
        if options.pooled_instances > 0 {
            let mut pooling = PoolingAllocationConfig::default();
            pooling
                .total_component_instances(options.pooled_instances)
                .total_core_instances(options.pooled_instances.saturating_mul(4))
                .total_memories(options.pooled_instances.saturating_mul(2))
                .total_tables(options.pooled_instances.saturating_mul(4))
                .total_stacks(options.pooled_instances)
                .max_memory_size(options.memory_limit);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        }
        if let Some(directory) = &options.cache_dir {
            let mut cache_config = wasmtime::CacheConfig::new();
            cache_config.with_directory(directory);
            let cache = wasmtime::Cache::new(cache_config)
                .map_err(|error| engine_error(error.into_boxed_dyn_error()))?;
            config.cache(Some(cache));
        }
        let wasmtime = wasmtime::Engine::new(&config)
            .map_err(|error| engine_error(error.into_boxed_dyn_error()))?;

        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|error| engine_error(error.into_boxed_dyn_error()))?;
        deny_blocking(&mut linker).map_err(|error| engine_error(error.into_boxed_dyn_error()))?;

        let weak = wasmtime.weak();
        let tick = options.epoch_tick;
        thread::Builder::new()
            .name("ferry-wasm-epoch".to_owned())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    thread::sleep(tick);
                }
                tracing::debug!("WebAssembly engine dropped; epoch ticker stopped.");
            })
            .map_err(|error| engine_error(Box::new(error)))?;

        Ok(Engine {
            inner: Arc::new(EngineInner {
                wasmtime,
                linker,
                options,
                components: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The sandbox limits in force.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Compiles `bytes` as a component, or returns the copy compiled earlier.
    ///
    /// The lock is not held while compiling, so two threads may compile the same bytes at once;
    /// both get a working component.
    pub(crate) fn compile(&self, plugin: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        let components = || {
            self.inner
                .components
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if let Some(component) = components().get(bytes) {
            return Ok(component.clone());
        }
        let component =
            Component::new(&self.inner.wasmtime, bytes).map_err(|error| PluginError::Compile {
                plugin: plugin.to_owned(),
                source: error.into_boxed_dyn_error(),
            })?;
        components().insert(bytes.to_vec(), component.clone());
        Ok(component)
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner.wasmtime
    }

    /// A fresh `Store` with the sandbox: memory cap, empty WASI context, and a CPU deadline
    /// that traps (set per call with [`Engine::arm_deadline`]).
    pub(crate) fn new_store(&self) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.inner.options.memory_limit)
            .trap_on_grow_failure(true)
            .build();
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
        };
        let mut store = Store::new(&self.inner.wasmtime, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        self.arm_deadline(&mut store);
        store
    }

    /// Gives the next guest call in `store` [`EngineOptions::call_deadline`] of CPU time.
    pub(crate) fn arm_deadline(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(self.deadline_ticks());
    }

    /// The call deadline in epoch ticks, rounded up, plus one because the first tick may come
    /// at once.
    fn deadline_ticks(&self) -> u64 {
        let options = &self.inner.options;
        let tick = options.epoch_tick.as_nanos().max(1);
        let ticks = options.call_deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }
}

/// WASI clocks that always read the Unix epoch: plugin answers are cached, so they must not
/// depend on time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The trap a guest gets when it tries to block (sleep, or wait on a stream).
#[derive(Debug, thiserror::Error)]
#[error("plugins may not block (sleep or wait); Ferry plugins get no clocks or I/O")]
pub(crate) struct BlockingDenied;

/// Replaces the WASI functions that block the calling thread (`poll`, `pollable.block`) with
/// traps. A blocked guest sits in host code, where the epoch deadline cannot stop it; a guest
/// that sleeps traps at once instead.
fn deny_blocking(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    type Pollable = Resource<DynPollable>;
    linker.allow_shadowing(true);
    let mut poll = linker.instance("wasi:io/poll@0.2.12")?;
    poll.func_wrap(
        "poll",
        |_store, _: (Vec<Pollable>,)| -> wasmtime::Result<(Vec<u32>,)> {
            Err(wasmtime::Error::new(BlockingDenied))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_store, _: (Pollable,)| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(BlockingDenied))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
