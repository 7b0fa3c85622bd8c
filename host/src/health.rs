//! Readiness: what `GET /readyz` answers (`crate::metrics` serves it), kept as plain state that
//! the flow code updates when something changes, so that a probe never waits on Kafka.
//!
//! The process is ready when every enabled flow started, every cluster of each flow answered
//! its last check (`flow::probe_clusters`, every few seconds) and the process is a member of
//! each flow's task-lease group (it was given an assignment, possibly empty, and has not lost
//! it). Not ready is one line per reason, each naming its flow. Liveness (`/healthz`) needs no
//! state: the process answers.
//!
//! This module only holds and renders the state; it never calls Kafka and never logs (the
//! happenings behind a change are logged by `crate::events`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The readiness of every enabled flow of the process, in configuration order.
#[derive(Default)]
pub struct Health {
    flows: Mutex<Vec<Arc<FlowHealth>>>,
}

impl Health {
    /// No flow yet: ready until a flow is added (a process with no enabled flow has nothing to
    /// wait for).
    pub fn new() -> Health {
        Health::default()
    }

    /// Adds flow `id`, not started yet, and returns the handle its code updates.
    pub(crate) fn flow(&self, id: &str) -> Arc<FlowHealth> {
        let flow = Arc::new(FlowHealth {
            id: id.to_owned(),
            state: Mutex::new(FlowState {
                not_started: Some("starting".to_owned()),
                ..FlowState::default()
            }),
        });
        self.flows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&flow));
        flow
    }

    /// Why the process is not ready, one line per reason; empty when it is ready.
    pub fn not_ready(&self) -> Vec<String> {
        let flows = self.flows.lock().unwrap_or_else(PoisonError::into_inner);
        flows.iter().flat_map(|flow| flow.reasons()).collect()
    }
}

/// The readiness of one flow.
pub(crate) struct FlowHealth {
    id: String,
    state: Mutex<FlowState>,
}

#[derive(Default)]
struct FlowState {
    /// Why the flow is not running; `None` once started.
    not_started: Option<String>,
    /// Whether the process is a member of the flow's task-lease group.
    member: bool,
    /// The clusters whose last check failed, by name, with the error.
    unanswered: BTreeMap<String, String>,
}

impl FlowHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, FlowState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The flow is not running yet, for `reason` (a start that waits for its clusters).
    pub(crate) fn waiting(&self, reason: String) {
        self.state().not_started = Some(reason);
    }

    /// The flow started: its bookkeeping is ready and it joins its task-lease group.
    pub(crate) fn started(&self) {
        self.state().not_started = None;
    }

    /// The flow stopped (the process shuts down).
    pub(crate) fn stopped(&self) {
        let mut state = self.state();
        state.not_started = Some("stopped".to_owned());
        state.member = false;
    }

    /// The group gave this process an assignment (possibly empty): it is a member.
    pub(crate) fn joined(&self) {
        self.state().member = true;
    }

    /// The process lost its assignment (session timed out) or left the group.
    pub(crate) fn left(&self) {
        self.state().member = false;
    }

    /// Records the outcome of checking `cluster`; returns whether it changed (answering again,
    /// or no longer answering), so that the caller logs only transitions.
    pub(crate) fn cluster_checked(&self, cluster: &str, outcome: Result<(), String>) -> bool {
        let mut state = self.state();
        match outcome {
            Ok(()) => state.unanswered.remove(cluster).is_some(),
            Err(error) => state.unanswered.insert(cluster.to_owned(), error).is_none(),
        }
    }

    fn reasons(&self) -> Vec<String> {
        let state = self.state();
        let mut reasons = Vec::new();
        if let Some(why) = &state.not_started {
            reasons.push(format!("flow {}: not started: {why}", self.id));
        }
        for (cluster, error) in &state.unanswered {
            reasons.push(format!(
                "flow {}: cluster `{cluster}` is not answering: {error}",
                self.id
            ));
        }
        if state.not_started.is_none() && !state.member {
            reasons.push(format!(
                "flow {}: not a member of its task-lease group yet",
                self.id
            ));
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn ready_only_when_started_answering_and_a_member() {
        let health = Health::new();
        assert!(
            health.not_ready().is_empty(),
            "no flow: nothing to wait for"
        );
        let flow = health.flow("a->b");
        assert_eq!(health.not_ready(), ["flow a->b: not started: starting"]);
        flow.waiting("cluster `a` is unreachable".to_owned());
        assert!(flow.cluster_checked("a", Err("timed out".to_owned())));
        assert!(
            !flow.cluster_checked("a", Err("timed out again".to_owned())),
            "still failing is no change"
        );
        assert_eq!(
            health.not_ready(),
            [
                "flow a->b: not started: cluster `a` is unreachable",
                "flow a->b: cluster `a` is not answering: timed out again",
            ]
        );
        assert!(flow.cluster_checked("a", Ok(())));
        assert!(!flow.cluster_checked("b", Ok(())), "answering all along");
        flow.started();
        assert_eq!(
            health.not_ready(),
            ["flow a->b: not a member of its task-lease group yet"]
        );
        flow.joined();
        assert!(health.not_ready().is_empty());
        let other = health.flow("b->a");
        other.started();
        other.joined();
        flow.left();
        assert_eq!(
            health.not_ready(),
            ["flow a->b: not a member of its task-lease group yet"]
        );
        flow.stopped();
        assert_eq!(health.not_ready(), ["flow a->b: not started: stopped"]);
    }
}
