//! The process-wide wasmtime [`Engine`]: compiler and allocator configuration, the epoch ticker
//! thread that enforces CPU deadlines, the WASI-only linker, the sandbox every `Store` gets
//! (memory cap, empty WASI context) and the caches of compiled components: in memory, by content
//! hash, so that a plugin used by several flows compiles once per process; and on disk, as
//! precompiled `.cwasm` files, so that a restart compiles nothing (see [`Engine::compile`]).
//!
//! It knows nothing about what a plugin does; `policy/`, `names.rs` and `chain/` own calling one.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::hash::{Hash as _, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use wasmtime::StoreLimitsBuilder;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker, Resource, ResourceTable};
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::error::{BlockingDenied, BoxError, PluginError};

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
    /// Folder of the precompiled-plugin cache (`<sha256 of the component>-<engine hash>.cwasm`
    /// files); `None` (the default here; the CLI uses [`default_cache_dir`]) compiles every
    /// component once per process and writes nothing.
    pub cache_dir: Option<PathBuf>,
    /// Epoch interruption: the compiled code checks the epoch at function entries and loop
    /// back-edges, which is what enforces [`EngineOptions::call_deadline`]. Default `true`.
    /// **For measurement only** (`host/examples/bench_plugins.rs` prices the checks): with
    /// `false` no ticker thread runs and a guest call has no CPU deadline at all, so an
    /// infinite loop in a plugin hangs its task. Ferry itself never turns it off.
    pub epoch_interruption: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            epoch_tick: Duration::from_millis(10),
            call_deadline: Duration::from_secs(1),
            memory_limit: 64 << 20,
            pooled_instances: 256,
            cache_dir: None,
            epoch_interruption: true,
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
    /// Compiled components by the SHA-256 of their bytes, so that a plugin used by several flows
    /// compiles (or is read from the disk cache) once.
    components: Mutex<HashMap<[u8; 32], Component>>,
    /// The on-disk cache, when [`EngineOptions::cache_dir`] is set.
    disk: Option<DiskCache>,
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
            .epoch_interruption(options.epoch_interruption)
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
        let wasmtime = wasmtime::Engine::new(&config)
            .map_err(|error| engine_error(error.into_boxed_dyn_error()))?;

        let mut linker = Linker::new(&wasmtime);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|error| engine_error(error.into_boxed_dyn_error()))?;
        deny_blocking(&mut linker).map_err(|error| engine_error(error.into_boxed_dyn_error()))?;

        let weak = wasmtime.weak();
        let tick = options.epoch_tick;
        if options.epoch_interruption {
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
        }

        let disk = options
            .cache_dir
            .as_ref()
            .map(|directory| DiskCache::new(directory, &wasmtime));
        Ok(Engine {
            inner: Arc::new(EngineInner {
                wasmtime,
                linker,
                options,
                components: Mutex::new(HashMap::new()),
                disk,
            }),
        })
    }

    /// The sandbox limits in force.
    pub fn options(&self) -> &EngineOptions {
        &self.inner.options
    }

    /// Links `component` (named `plugin` in errors) against the sandbox's imports.
    ///
    /// # Errors
    /// [`PluginError::Link`]: it imports something the sandbox does not provide.
    pub(crate) fn link(
        &self,
        plugin: &str,
        component: &Component,
    ) -> Result<InstancePre<HostState>, PluginError> {
        self.inner
            .linker
            .instantiate_pre(component)
            .map_err(|error| PluginError::Link {
                plugin: plugin.to_owned(),
                source: error.into_boxed_dyn_error(),
            })
    }

    /// Whether `component` exports `interface` as an instance.
    pub(crate) fn exports_instance(&self, component: &Component, interface: &str) -> bool {
        component
            .component_type()
            .get_export(self.wasmtime(), interface)
            .is_some_and(|export| matches!(export.ty, ComponentItem::ComponentInstance(_)))
    }

    /// Compiles `bytes` as a component, or returns the copy compiled earlier.
    ///
    /// Looks, in order, in memory (by the SHA-256 of `bytes`), then in the on-disk cache (a
    /// `.cwasm` file this engine configuration wrote for the same bytes), and only then
    /// compiles, writing the result to the disk cache for the next start. The disk cache is an
    /// optimisation: a file that cannot be read or written is logged and compiling goes on.
    ///
    /// The lock is not held while compiling, so two threads may compile the same bytes at once;
    /// both get a working component.
    pub(crate) fn compile(&self, plugin: &str, bytes: &[u8]) -> Result<Component, PluginError> {
        self.compile_timed(plugin, bytes)
            .map(|(component, _)| component)
    }

    /// [`Engine::compile`], also telling where the component came from and how long it took.
    pub(crate) fn compile_timed(
        &self,
        plugin: &str,
        bytes: &[u8],
    ) -> Result<(Component, Compiled), PluginError> {
        let started = Instant::now();
        let components = || {
            self.inner
                .components
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(component) = components().get(&digest) {
            return Ok((
                component.clone(),
                Compiled {
                    origin: Origin::Memory,
                    elapsed: started.elapsed(),
                },
            ));
        }
        let compile_error = |error: wasmtime::Error| PluginError::Compile {
            plugin: plugin.to_owned(),
            source: error.into_boxed_dyn_error(),
        };
        let (component, origin) = match &self.inner.disk {
            None => (
                Component::new(&self.inner.wasmtime, bytes).map_err(compile_error)?,
                Origin::Compiled { cached: None },
            ),
            Some(disk) => {
                let path = disk.path(&digest);
                match disk.load(&self.inner.wasmtime, plugin, &path) {
                    Some(component) => (component, Origin::Disk(path)),
                    None => {
                        let precompiled = self
                            .inner
                            .wasmtime
                            .precompile_component(bytes)
                            .map_err(compile_error)?;
                        // SAFETY: `precompiled` was produced just above by
                        // `precompile_component` of this very engine, which is what
                        // `deserialize` requires; it is not a file anyone else could touch.
                        #[allow(unsafe_code, reason = "bytes this engine just compiled")]
                        let component =
                            unsafe { Component::deserialize(&self.inner.wasmtime, &precompiled) }
                                .map_err(compile_error)?;
                        let cached = disk.store(plugin, &path, &precompiled).then_some(path);
                        (component, Origin::Compiled { cached })
                    }
                }
            }
        };
        components().insert(digest, component.clone());
        let compiled = Compiled {
            origin,
            elapsed: started.elapsed(),
        };
        tracing::debug!(plugin, origin = %compiled.origin, elapsed_ms = compiled.elapsed.as_secs_f64() * 1e3, "Plugin component ready.");
        Ok((component, compiled))
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
        if self.inner.options.epoch_interruption {
            store.epoch_deadline_trap();
            self.arm_deadline(&mut store);
        }
        store
    }

    /// Gives the next guest call in `store` [`EngineOptions::call_deadline`] of CPU time.
    pub(crate) fn arm_deadline(&self, store: &mut Store<HostState>) {
        if !self.inner.options.epoch_interruption {
            return;
        }
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

/// Where [`Engine::compile_timed`] found a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Compiled earlier in this process.
    Memory,
    /// Read from this precompiled file.
    Disk(PathBuf),
    /// Compiled now; `cached` is the file written for the next start, if any.
    Compiled {
        /// The `.cwasm` file written.
        cached: Option<PathBuf>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Memory => write!(formatter, "already compiled in this process"),
            Origin::Disk(path) => write!(formatter, "precompiled, from {}", path.display()),
            Origin::Compiled { cached: Some(path) } => {
                write!(formatter, "compiled, cached as {}", path.display())
            }
            Origin::Compiled { cached: None } => write!(formatter, "compiled, not cached"),
        }
    }
}

/// How a component was obtained and how long it took.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) origin: Origin,
    pub(crate) elapsed: Duration,
}

/// The default folder of the precompiled-plugin cache: `$FERRY_PLUGIN_CACHE` is read by the CLI;
/// this is `$XDG_CACHE_HOME/ferry/plugins`, else `$HOME/.cache/ferry/plugins`, else `None`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("ferry").join("plugins"))
}

/// The on-disk cache of precompiled components.
///
/// A file is named `<sha256 of the component bytes>-<engine hash>.cwasm`, where the engine hash
/// is a SHA-256 of wasmtime's [`precompile_compatibility_hash`](wasmtime::Engine::precompile_compatibility_hash)
/// (wasmtime's version, the compiler and its settings, the target CPU features, the engine
/// configuration). A file is therefore only ever looked up by an engine that could have written
/// it, for the very bytes it was compiled from: a changed plugin or a new Ferry build misses the
/// cache and compiles. Old entries are not deleted; removing the folder, or any file in it, at
/// any time is safe.
///
/// Loading is `unsafe` in wasmtime (`Component::deserialize_file`): the file holds machine code
/// that is mapped and run without validation. What makes it sound here:
/// - only Ferry writes the files, always whole: into a fresh temporary file in the same folder,
///   flushed, then renamed over the final name (atomic on POSIX), so a reader never sees a
///   partial file and a file is never modified in place — a rename leaves an already mapped
///   inode unchanged, which `deserialize_file` also requires for the lifetime of the component;
/// - the name is the key: the engine hash guarantees the code was generated for this engine,
///   and wasmtime still checks the file's header (its version and configuration) and refuses a
///   mismatch, in which case the file is deleted and the component compiled again;
/// - the folder is created private (mode 0700) and the cache is not used when the folder is
///   writable by group or others, so that only the Ferry user (who can already replace the
///   `ferry` binary and its plugins) can plant a file.
#[derive(Debug)]
struct DiskCache {
    directory: PathBuf,
    /// Hex SHA-256 of the engine's compatibility hash, truncated to 16 characters.
    engine_hash: String,
}

impl DiskCache {
    fn new(directory: &Path, engine: &wasmtime::Engine) -> DiskCache {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let mut engine_hash = hex(&hasher.0.finalize());
        engine_hash.truncate(16);
        DiskCache {
            directory: directory.to_path_buf(),
            engine_hash,
        }
    }

    fn path(&self, digest: &[u8; 32]) -> PathBuf {
        self.directory
            .join(format!("{}-{}.cwasm", hex(digest), self.engine_hash))
    }

    /// The component in `path`, or `None` when there is no usable file (logged unless absent).
    fn load(&self, engine: &wasmtime::Engine, plugin: &str, path: &Path) -> Option<Component> {
        if !path.is_file() || !self.trusted() {
            return None;
        }
        // SAFETY: see the type's documentation. The file was written whole, by this code, for
        // exactly these component bytes and this engine configuration (its name is the key),
        // in a folder only the Ferry user can write, and is never modified in place.
        #[allow(
            unsafe_code,
            reason = "precompiled file this engine wrote, found by its key"
        )]
        let loaded = unsafe { Component::deserialize_file(engine, path) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(
                    plugin,
                    file = %path.display(),
                    error = %error,
                    "Precompiled plugin file unusable; deleting it and compiling again."
                );
                let _ = fs::remove_file(path);
                None
            }
        }
    }

    /// Writes `precompiled` to `path` atomically; returns whether it did (failures are logged).
    fn store(&self, plugin: &str, path: &Path, precompiled: &[u8]) -> bool {
        match self.write_atomically(path, precompiled) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    plugin,
                    file = %path.display(),
                    error = %error,
                    "Cannot write the precompiled plugin cache; the plugin will be compiled again on the next start."
                );
                false
            }
        }
    }

    fn write_atomically(&self, path: &Path, precompiled: &[u8]) -> std::io::Result<()> {
        static TEMPORARY: AtomicU64 = AtomicU64::new(0);
        create_private_dir(&self.directory)?;
        if !self.trusted() {
            return Err(std::io::Error::other(format!(
                "{} is writable by other users; not using it",
                self.directory.display()
            )));
        }
        let temporary = self.directory.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMPORARY.fetch_add(1, Ordering::Relaxed)
        ));
        let written = fs::File::create_new(&temporary).and_then(|mut file| {
            file.write_all(precompiled)?;
            file.sync_all()
        });
        let renamed = written.and_then(|()| fs::rename(&temporary, path));
        if renamed.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        renamed
    }

    /// Whether the folder is writable by its owner only (always true off Unix).
    fn trusted(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            match fs::metadata(&self.directory) {
                Ok(metadata) => metadata.permissions().mode() & 0o022 == 0,
                Err(_) => false,
            }
        }
        #[cfg(not(unix))]
        {
            true
        }
    }
}

/// Creates `directory` and its parents; the last one with mode 0700 on Unix.
fn create_private_dir(directory: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(directory)
}

/// Feeds what a `Hash` implementation writes into SHA-256: a hash that, unlike
/// `DefaultHasher`'s, is the same in every build.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Instant;

    use super::{Engine, EngineOptions, Origin};
    use crate::plugins::builtin;

    fn temporary_dir(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "ferry-engine-{name}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        let _ = std::fs::remove_dir_all(&path);
        path
    }

    fn engine_with_cache(directory: &std::path::Path) -> Engine {
        Engine::with_options(EngineOptions {
            cache_dir: Some(directory.to_path_buf()),
            pooled_instances: 0,
            ..EngineOptions::default()
        })
        .unwrap()
    }

    /// A second engine (a restart) reads the component the first one compiled, and the
    /// component works. Prints cold compile vs cached load; run with `--release -- --nocapture`
    /// for meaningful numbers.
    #[test]
    fn restart_loads_the_precompiled_component() {
        let directory = temporary_dir("restart");
        let bytes = builtin::lookup("default-policy").unwrap();

        let (_, cold) = engine_with_cache(&directory)
            .compile_timed("default", bytes)
            .unwrap();
        let Origin::Compiled { cached: Some(path) } = &cold.origin else {
            panic!("{:?}", cold.origin);
        };
        assert!(path.is_file());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.len() == 64 + 1 + 16 + ".cwasm".len() && name.ends_with(".cwasm"),
            "{name}"
        );

        let engine = engine_with_cache(&directory);
        let (component, warm) = engine.compile_timed("default", bytes).unwrap();
        assert_eq!(warm.origin, Origin::Disk(path.clone()));
        let (_, again) = engine.compile_timed("default", bytes).unwrap();
        assert_eq!(again.origin, Origin::Memory);
        engine
            .link("default", &component)
            .unwrap()
            .instantiate(&mut engine.new_store())
            .unwrap();
        eprintln!(
            "default-policy ({} bytes): cold compile {:?}, load from the precompiled cache {:?}",
            bytes.len(),
            cold.elapsed,
            warm.elapsed
        );
        // No temporary file is left behind.
        let entries: Vec<_> = std::fs::read_dir(&directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&directory).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// A damaged file is not trusted blindly: wasmtime's header check refuses it, Ferry deletes
    /// it, compiles again and rewrites it.
    #[test]
    fn damaged_cache_file_is_replaced() {
        let directory = temporary_dir("damaged");
        let bytes = builtin::lookup("identity-policy").unwrap();
        let (_, first) = engine_with_cache(&directory)
            .compile_timed("identity", bytes)
            .unwrap();
        let Origin::Compiled { cached: Some(path) } = first.origin else {
            panic!("{:?}", first.origin);
        };
        let damaged = directory.join("damaged");
        std::fs::write(&damaged, b"not a precompiled component").unwrap();
        std::fs::rename(&damaged, &path).unwrap();

        let (_, second) = engine_with_cache(&directory)
            .compile_timed("identity", bytes)
            .unwrap();
        assert_eq!(
            second.origin,
            Origin::Compiled {
                cached: Some(path.clone())
            }
        );
        let (_, third) = engine_with_cache(&directory)
            .compile_timed("identity", bytes)
            .unwrap();
        assert_eq!(third.origin, Origin::Disk(path));
        std::fs::remove_dir_all(&directory).unwrap();
    }

    /// A folder other users can write to is not used: anyone could plant machine code there.
    #[cfg(unix)]
    #[test]
    fn shared_writable_folder_is_not_used() {
        use std::os::unix::fs::PermissionsExt as _;
        let directory = temporary_dir("shared");
        std::fs::create_dir_all(&directory).unwrap();
        std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o777)).unwrap();
        let bytes = builtin::lookup("identity-policy").unwrap();
        let (_, compiled) = engine_with_cache(&directory)
            .compile_timed("identity", bytes)
            .unwrap();
        assert_eq!(compiled.origin, Origin::Compiled { cached: None });
        assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn no_cache_dir_compiles_in_memory_only() {
        let engine = Engine::with_options(EngineOptions {
            pooled_instances: 0,
            ..EngineOptions::default()
        })
        .unwrap();
        let bytes = builtin::lookup("identity-policy").unwrap();
        let (_, compiled) = engine.compile_timed("identity", bytes).unwrap();
        assert_eq!(compiled.origin, Origin::Compiled { cached: None });
        let (_, again) = engine.compile_timed("identity", bytes).unwrap();
        assert_eq!(again.origin, Origin::Memory);
    }
}
