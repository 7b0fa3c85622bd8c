//! The policy's instance: created (instantiated, `init` called) at load and after a trap or
//! timeout discarded it, each call made under the engine's CPU deadline (the `Store` also has
//! the engine's memory cap and an empty WASI context), and a failed call turned into a
//! [`PluginError`] and logged. Also the check, before linking, that a component exports the
//! whole policy interface.

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, PoisonError};

use wasmtime::Store;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::{Policy, State};
use crate::plugins::bindings::exports::ferry::plugin::replication_policy::Guest;
use crate::plugins::bindings::{self, POLICY_FUNCTIONS, POLICY_INTERFACE};
use crate::plugins::engine::{Engine, HostState};
use crate::plugins::error::{PluginError, guest_error};

/// A running instance and its store.
pub(super) struct Live {
    store: Store<HostState>,
    bindings: bindings::Policy,
}

impl Policy {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic cannot leave `State` half-updated in a way that matters: at worst an instance
        // is kept that should have been dropped, and the next trap drops it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls the guest with a CPU deadline, creating the instance first if the last one was
    /// discarded. A trap or timeout discards the instance.
    pub(super) fn call<V>(
        &self,
        state: &mut State,
        function: &'static str,
        input: &dyn Fn() -> String,
        call: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<V>,
    ) -> Result<V, PluginError> {
        let live = match state.live.take() {
            Some(live) => live,
            None => self.start(&state.pre, &state.config)?,
        };
        let live = state.live.insert(live);
        self.engine.arm_deadline(&mut live.store);
        self.calls.fetch_add(1, Ordering::Relaxed);
        match call(
            live.bindings.ferry_plugin_replication_policy(),
            &mut live.store,
        ) {
            Ok(answer) => Ok(answer),
            Err(error) => {
                state.live = None;
                Err(self.call_failed(function, input(), error))
            }
        }
    }

    /// Creates an instance and calls `init`.
    pub(super) fn start(
        &self,
        pre: &bindings::PolicyPre<HostState>,
        config: &[(String, String)],
    ) -> Result<Live, PluginError> {
        let mut store = self.engine.new_store();
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|error| PluginError::Instantiate {
                plugin: self.name.clone(),
                source: error.into_boxed_dyn_error(),
            })?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let result = bindings
            .ferry_plugin_replication_policy()
            .call_init(&mut store, config);
        match result {
            Ok(Ok(())) => Ok(Live { store, bindings }),
            Ok(Err(message)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Err(PluginError::Init {
                    plugin: self.name.clone(),
                    message,
                })
            }
            Err(error) => {
                let keys: Vec<&str> = config.iter().map(|(key, _)| key.as_str()).collect();
                Err(self.call_failed("init", format!("{{{}}}", keys.join(", ")), error))
            }
        }
    }

    /// Turns a failed call into [`PluginError::Timeout`] or [`PluginError::Trap`] and logs it.
    fn call_failed(
        &self,
        function: &'static str,
        input: String,
        error: wasmtime::Error,
    ) -> PluginError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            plugin = %self.name,
            function,
            input = %input,
            error = ?error,
            "Plugin call failed; its instance is discarded and re-created on the next call."
        );
        guest_error(
            self.engine.options().call_deadline,
            &self.name,
            function,
            input,
            error,
        )
    }
}

/// Checks that the component exports the policy interface with all its functions, naming the
/// first thing missing. Type mismatches are found later, when the bindings are built.
pub(super) fn check_exports(
    engine: &Engine,
    plugin: &str,
    component: &Component,
) -> Result<(), PluginError> {
    let wrong_world = |missing: String| PluginError::WrongWorld {
        plugin: plugin.to_owned(),
        missing,
        source: None,
    };
    let component_type = component.component_type();
    let Some(export) = component_type.get_export(engine.wasmtime(), POLICY_INTERFACE) else {
        return Err(wrong_world(POLICY_INTERFACE.to_owned()));
    };
    let ComponentItem::ComponentInstance(instance) = export.ty else {
        return Err(wrong_world(format!("{POLICY_INTERFACE} (as an instance)")));
    };
    for function in POLICY_FUNCTIONS {
        if instance.get_export(engine.wasmtime(), function).is_none() {
            return Err(wrong_world(format!("{POLICY_INTERFACE}#{function}")));
        }
    }
    Ok(())
}
