//! [`PluginError`]: everything that can go wrong loading or calling a plugin. Each variant names
//! the plugin (or the file) and, for calls, the function and its input; causes are kept in
//! `#[source]` and left out of the message.
//!
//! It also owns [`guest_error`], the one mapping of a failed guest call (a trap, the epoch
//! deadline, a denied blocking call, another guest fault) to a [`PluginError`], shared by
//! policies, name filters and chains, and [`BlockingDenied`], the trap the engine's linker
//! raises when a guest tries to block.

use std::path::PathBuf;
use std::time::Duration;

use wasmtime::Trap;

/// A boxed cause, as `wasmtime::Error` converts into one.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error from loading or calling a plugin.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The wasmtime engine could not be configured.
    #[error("cannot create the WebAssembly engine")]
    Engine {
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// `uses = "<path>"` names a file that does not exist.
    #[error("plugin file `{}` not found", path.display())]
    NotFound {
        /// The resolved path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The plugin file exists but cannot be read.
    #[error("cannot read plugin file `{}`", path.display())]
    Read {
        /// The resolved path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// `uses = "builtin:<name>"` names no builtin plugin.
    #[error("unknown builtin plugin `builtin:{name}` (known: {known})")]
    UnknownBuiltin {
        /// The name after `builtin:`.
        name: String,
        /// The builtins there are, for the message.
        known: String,
    },

    /// The bytes are not a valid WebAssembly component (or a core module was given).
    #[error("plugin `{plugin}` is not a valid WebAssembly component")]
    Compile {
        /// The plugin's name.
        plugin: String,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// The component does not export what the world requires.
    #[error("plugin `{plugin}` is not a replication policy: it does not export `{missing}`")]
    WrongWorld {
        /// The plugin's name.
        plugin: String,
        /// The missing export, e.g. `ferry:plugin/replication-policy@0.1.0`.
        missing: String,
        /// The linker's complaint, when it found a type mismatch rather than a missing name.
        #[source]
        source: Option<BoxError>,
    },

    /// The component is not the kind of plugin its place in the configuration needs (a policy
    /// or a transform listed under `filters`, say).
    #[error("plugin `{plugin}` is not a {kind}: it does not export `{missing}`")]
    WrongKind {
        /// The plugin's name.
        plugin: String,
        /// What it should be: `record filter` or `record transform`.
        kind: &'static str,
        /// The missing export, e.g. `ferry:plugin/record-filter@0.1.0`.
        missing: &'static str,
        /// The linker's complaint, when it found a type mismatch rather than a missing name.
        #[source]
        source: Option<BoxError>,
    },

    /// A filter or transform answered a batch with something that breaks the batch contract
    /// (verdicts of the wrong length, an unknown verdict, missing replacements or errors).
    #[error(
        "plugin `{plugin}` answered `{function}` on {records} record(s) with a malformed result: {problem}"
    )]
    Malformed {
        /// The plugin's name.
        plugin: String,
        /// The WIT function.
        function: &'static str,
        /// Records in the batch.
        records: usize,
        /// What is wrong.
        problem: String,
    },

    /// A filter or transform refused a whole batch (`err(message)`).
    #[error("plugin `{plugin}` refused a batch of {records} record(s) in `{function}`: {message}")]
    Refused {
        /// The plugin's name.
        plugin: String,
        /// The WIT function.
        function: &'static str,
        /// Records in the batch.
        records: usize,
        /// The guest's message.
        message: String,
    },

    /// The component imports something Ferry does not provide (only WASI 0.2 is linked).
    #[error("plugin `{plugin}` needs imports that Ferry does not provide")]
    Link {
        /// The plugin's name.
        plugin: String,
        /// The cause, naming the import.
        #[source]
        source: BoxError,
    },

    /// Instantiation failed (e.g. the instance pool is full, or a start function trapped).
    #[error("plugin `{plugin}` cannot be instantiated")]
    Instantiate {
        /// The plugin's name.
        plugin: String,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// The plugin's `init` returned `err(message)`.
    #[error("plugin `{plugin}` refused its configuration: {message}")]
    Init {
        /// The plugin's name.
        plugin: String,
        /// The guest's message.
        message: String,
    },

    /// The guest trapped (panicked, hit `unreachable`, ran out of memory...). The instance is
    /// discarded; the next call gets a fresh one.
    #[error("plugin `{plugin}` trapped in `{function}({input})`")]
    Trap {
        /// The plugin's name.
        plugin: String,
        /// The WIT function, e.g. `format-remote-topic`.
        function: &'static str,
        /// The arguments, quoted, e.g. `"A", "orders"`.
        input: String,
        /// The trap.
        #[source]
        source: BoxError,
    },

    /// The guest ran past its CPU deadline. The instance is discarded; the next call gets a
    /// fresh one.
    #[error("plugin `{plugin}` ran longer than {deadline:?} in `{function}({input})`")]
    Timeout {
        /// The plugin's name.
        plugin: String,
        /// The WIT function.
        function: &'static str,
        /// The arguments, quoted.
        input: String,
        /// The deadline it exceeded.
        deadline: Duration,
    },

    /// The guest answered with a name that is not a legal Kafka topic name.
    #[error(
        "plugin `{plugin}` answered `{function}({input})` with `{answer}`, which is not a legal \
         Kafka topic name (1 to 249 characters of [a-zA-Z0-9._-], not `.` or `..`)"
    )]
    InvalidAnswer {
        /// The plugin's name.
        plugin: String,
        /// The WIT function.
        function: &'static str,
        /// The arguments, quoted.
        input: String,
        /// What the guest answered.
        answer: String,
    },
}

/// A failed guest call as a [`PluginError`]: [`PluginError::Timeout`] when the epoch deadline
/// (`deadline`, the engine's call deadline) interrupted it, else [`PluginError::Trap`] with the
/// trap, [`BlockingDenied`], or the root cause of another guest fault. Callers log the whole
/// `error` (wasm backtrace included) if they want it; the returned error keeps what reads best.
pub(crate) fn guest_error(
    deadline: Duration,
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
            deadline,
        },
        Some(trap) => PluginError::Trap {
            plugin: plugin.to_owned(),
            function,
            input,
            source: Box::new(*trap),
        },
        None => {
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

/// The trap a guest gets when it tries to block (sleep, or wait on a stream).
#[derive(Debug, thiserror::Error)]
#[error("plugins may not block (sleep or wait); Ferry plugins get no clocks or I/O")]
pub(crate) struct BlockingDenied;

/// Why a guest call failed, when it was not a plain trap: the root cause's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct GuestFault(String);

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::time::Duration;

    use wasmtime::Trap;

    use super::{BlockingDenied, PluginError, guest_error};

    fn map(error: wasmtime::Error) -> PluginError {
        guest_error(
            Duration::from_millis(250),
            "p.wasm",
            "transform",
            "3 record(s)".to_owned(),
            error,
        )
    }

    #[test]
    fn failed_guest_calls_map_to_timeouts_and_traps() {
        let timeout = map(wasmtime::Error::new(Trap::Interrupt));
        assert!(
            matches!(&timeout, PluginError::Timeout { deadline, .. } if *deadline == Duration::from_millis(250)),
            "{timeout:?}"
        );
        assert_eq!(
            timeout.to_string(),
            "plugin `p.wasm` ran longer than 250ms in `transform(3 record(s))`"
        );

        let trap = map(wasmtime::Error::new(Trap::UnreachableCodeReached));
        assert!(matches!(trap, PluginError::Trap { .. }), "{trap:?}");
        assert_eq!(
            trap.to_string(),
            "plugin `p.wasm` trapped in `transform(3 record(s))`"
        );
        assert_eq!(
            trap.source().map(ToString::to_string),
            Some(Trap::UnreachableCodeReached.to_string())
        );

        let blocked = map(wasmtime::Error::new(BlockingDenied));
        assert_eq!(
            blocked.source().map(ToString::to_string),
            Some(BlockingDenied.to_string())
        );

        // Another fault keeps its root cause, not the context added on the way up.
        let fault =
            map(wasmtime::Error::msg("guest ran out of fuel").context("while calling transform"));
        assert!(matches!(fault, PluginError::Trap { .. }), "{fault:?}");
        assert_eq!(
            fault.source().map(ToString::to_string).as_deref(),
            Some("guest ran out of fuel")
        );
    }
}
