//! Fault injection for the integration tests, in debug builds only (a release build has none).
//!
//! `FERRY_FAULT_PRODUCER_FATAL_AFTER=<n>`: once the process's tasks have had `n` records
//! acknowledged by the target, the producer of the task whose acknowledgement reached `n` gets
//! a fatal error (`kafka::ffi::inject_fatal_error`), once per process. A real broker gives no
//! practical way to cause a fatal idempotent-producer error; this reproduces what follows one.

#[cfg(debug_assertions)]
mod enabled {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use rdkafka::producer::{BaseProducer, Producer};

    use super::super::callbacks::AckContext;

    /// The variable naming the acknowledgement count after which a producer fails.
    const FATAL_AFTER: &str = "FERRY_FAULT_PRODUCER_FATAL_AFTER";

    static THRESHOLD: OnceLock<Option<u64>> = OnceLock::new();
    static ACKNOWLEDGED: AtomicU64 = AtomicU64::new(0);
    static FIRED: AtomicBool = AtomicBool::new(false);

    /// Counts `count` acknowledged records of `producer`'s task; fails the producer when they
    /// reach the threshold.
    pub(in super::super) fn acknowledged(count: usize, producer: &BaseProducer<AckContext>) {
        let threshold = THRESHOLD.get_or_init(|| {
            std::env::var(FATAL_AFTER)
                .ok()
                .and_then(|value| value.parse().ok())
        });
        let Some(threshold) = *threshold else {
            return;
        };
        let total = ACKNOWLEDGED.fetch_add(count as u64, Ordering::Relaxed) + count as u64;
        if total >= threshold && !FIRED.swap(true, Ordering::Relaxed) {
            let raised = crate::kafka::ffi::inject_fatal_error(
                producer.client(),
                "fault injection: FERRY_FAULT_PRODUCER_FATAL_AFTER",
            );
            tracing::warn!(
                acknowledged = total,
                raised,
                "Fault injection: a fatal producer error."
            );
        }
    }
}

#[cfg(debug_assertions)]
pub(super) use enabled::acknowledged;

/// Fault injection is compiled out of release builds.
#[cfg(not(debug_assertions))]
#[inline]
pub(super) fn acknowledged(
    _count: usize,
    _producer: &rdkafka::producer::BaseProducer<super::callbacks::AckContext>,
) {
}
