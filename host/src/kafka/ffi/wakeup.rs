//! A wake-up when a producer's delivery reports arrive: librdkafka's
//! `rd_kafka_queue_cb_event_enable` on the producer's main queue (the queue rdkafka's
//! `BaseProducer::poll` serves), signalling a condition variable.
//!
//! Why: rdkafka 0.39's `BaseProducer::poll(t)` returns only when `t` has passed, whatever arrived
//! (its `flush` serves reports with `poll(100 ms)`), and it hands librdkafka the time left
//! truncated to whole milliseconds, so it spins through the last fraction of a millisecond of
//! every call. Waiting on [`ReportWaker`] instead and serving with `poll(ZERO)` ends a wait when
//! the first report arrives, without spinning (`docs/performance.md` 6e, 6f).
//!
//! librdkafka calls the callback from its own threads, with the queue's lock held, when an event
//! is enqueued on the empty queue. The callback only bumps a counter under a Rust mutex and
//! notifies; no librdkafka call is made while that mutex is held, so the two locks are always
//! taken in one order.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka_sys::bindings as sys;

/// The counter the callback bumps, and the condition variable it notifies.
#[derive(Default)]
struct Signal {
    arrivals: Mutex<u64>,
    arrived: Condvar,
}

/// Called by librdkafka (any of its threads, the queue's lock held) when an event is enqueued
/// on the empty queue. Cannot panic: a poisoned mutex is taken as it is.
unsafe extern "C" fn on_arrival(_client: *mut sys::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Signal` boxed by `ReportWaker::new`, which unhooks this callback
    // (under the queue's lock, so no call is running) before it frees the box.
    let signal = unsafe { &*opaque.cast::<Signal>() };
    *signal
        .arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner) += 1;
    signal.arrived.notify_all();
}

/// A handle on a client's main queue with the arrival callback hooked on it, unhooked on drop.
/// Must be dropped before the client (the owner holds both: `kafka::WakingProducer`).
pub(crate) struct ReportWaker {
    queue: NonNull<sys::rd_kafka_queue_t>,
    signal: NonNull<Signal>,
}

// SAFETY: librdkafka's queue calls are thread-safe; `Signal` is Send and Sync.
unsafe impl Send for ReportWaker {}
// SAFETY: as above; every method takes `&self` and makes only thread-safe calls.
unsafe impl Sync for ReportWaker {}

impl ReportWaker {
    /// Hooks the callback on `client`'s main queue. `None` only if librdkafka gives no main
    /// queue (it always does for a producer).
    pub(crate) fn new<C: ClientContext>(client: &Client<C>) -> Option<Self> {
        // SAFETY: the client pointer is valid while `client` lives; the returned handle holds
        // a reference on the queue until `rd_kafka_queue_destroy`.
        let queue = NonNull::new(unsafe { sys::rd_kafka_queue_get_main(client.native_ptr()) })?;
        let signal = NonNull::from(Box::leak(Box::<Signal>::default()));
        // SAFETY: `queue` is a valid handle; `signal` stays allocated until `drop` unhooks the
        // callback.
        unsafe {
            sys::rd_kafka_queue_cb_event_enable(
                queue.as_ptr(),
                Some(on_arrival),
                signal.as_ptr().cast::<c_void>(),
            );
        }
        Some(Self { queue, signal })
    }

    fn signal(&self) -> &Signal {
        // SAFETY: allocated in `new`, freed only in `drop`.
        unsafe { self.signal.as_ref() }
    }

    /// How many times an event arrived on the empty queue so far: read before looking at the
    /// queue, and pass it to [`ReportWaker::wait`], so that an arrival in between is not missed.
    pub(crate) fn arrivals(&self) -> u64 {
        *self
            .signal()
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Events waiting in the queue, to be served with `poll(ZERO)`.
    pub(crate) fn waiting(&self) -> usize {
        // SAFETY: a valid queue handle.
        unsafe { sys::rd_kafka_queue_length(self.queue.as_ptr()) }
    }

    /// Blocks until an event arrives after `seen` (an [`ReportWaker::arrivals`] count) or
    /// `timeout` passes; at once while events are waiting (the callback fires only when the
    /// queue was empty, so a queue left non-empty would otherwise sleep out the timeout).
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) {
        // Before taking the mutex: librdkafka's queue lock is never taken under it.
        if self.waiting() > 0 {
            return;
        }
        let signal = self.signal();
        let arrivals = signal
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(
            signal
                .arrived
                .wait_timeout_while(arrivals, timeout, |arrivals| *arrivals == seen)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

impl Drop for ReportWaker {
    fn drop(&mut self) {
        // SAFETY: unhooking takes the queue's lock, so when it returns no callback runs or will
        // run; then the handle is released and the signal freed, each once.
        unsafe {
            sys::rd_kafka_queue_cb_event_enable(self.queue.as_ptr(), None, std::ptr::null_mut());
            sys::rd_kafka_queue_destroy(self.queue.as_ptr());
            drop(Box::from_raw(self.signal.as_ptr()));
        }
    }
}
