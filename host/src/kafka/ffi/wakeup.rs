//! Wake-ups when events arrive on a client's queue: librdkafka's
//! `rd_kafka_queue_cb_event_enable`, signalling a condition variable ([`Wakeup`]). A
//! [`QueueHook`] hooks one wake-up on one queue: a producer's main queue (the queue rdkafka's
//! `BaseProducer::poll` serves: delivery reports) or a consumer's queue (the queue rdkafka's
//! `BaseConsumer::poll` serves: fetched records). One wake-up may be hooked on several queues,
//! so that one wait ends at the first arrival on any of them.
//!
//! Why: rdkafka 0.39's `BaseProducer::poll(t)` returns only when `t` has passed, whatever arrived
//! (its `flush` serves reports with `poll(100 ms)`), and it hands librdkafka the time left
//! truncated to whole milliseconds, so it spins through the last fraction of a millisecond of
//! every call. Waiting on a [`Wakeup`] instead and serving with `poll(ZERO)` ends a wait when
//! the first report arrives, without spinning (`docs/performance.md` 6e, 6f). A task waiting for
//! its delivery reports must also wake when its consumer fetched records, or those records wait
//! out the task's wait (`docs/performance.md` 6h).
//!
//! librdkafka calls the callback from its own threads, with the queue's lock held, when an event
//! is enqueued on the empty queue. The callback only bumps a counter under a Rust mutex and
//! notifies; no librdkafka call is made while that mutex is held, so the two locks are always
//! taken in one order.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
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
    // SAFETY: `opaque` is the `Signal` of the `Arc` a `QueueHook` holds, which unhooks this
    // callback (under the queue's lock, so no call is running) before it lets go of the `Arc`.
    let signal = unsafe { &*opaque.cast::<Signal>() };
    *signal
        .arrivals
        .lock()
        .unwrap_or_else(PoisonError::into_inner) += 1;
    signal.arrived.notify_all();
}

/// A counter of arrivals on the queues it is hooked on ([`QueueHook`]), and a wait for the next.
#[derive(Clone, Default)]
pub(crate) struct Wakeup(Arc<Signal>);

impl Wakeup {
    /// How many times an event arrived on one of the hooked queues while it was empty, so far:
    /// read before looking at the queues, and pass it to [`Wakeup::wait`], so that an arrival
    /// in between is not missed.
    pub(crate) fn arrivals(&self) -> u64 {
        *self
            .0
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until an event arrives after `seen` (an [`Wakeup::arrivals`] count) or `timeout`
    /// passes; at once while events are waiting in one of `queues` (the callback fires only when
    /// a queue was empty, so a queue left non-empty would otherwise sleep out the timeout).
    /// An arrival on a hooked queue not in `queues` ends the wait too.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration, queues: &[&QueueHook]) {
        // Before taking the mutex: librdkafka's queue lock is never taken under it.
        if queues.iter().any(|queue| queue.waiting() > 0) {
            return;
        }
        let arrivals = self
            .0
            .arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(
            self.0
                .arrived
                .wait_timeout_while(arrivals, timeout, |arrivals| *arrivals == seen)
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

/// A handle on a client's queue with a [`Wakeup`]'s callback hooked on it, unhooked on drop.
/// Must be dropped before the client (its owner holds both: `kafka::WakingProducer`, the task
/// worker for its consumer).
pub(crate) struct QueueHook {
    queue: NonNull<sys::rd_kafka_queue_t>,
    /// Kept alive while the callback may run: its pointer is the callback's opaque.
    _signal: Arc<Signal>,
}

// SAFETY: librdkafka's queue calls are thread-safe; `Signal` is Send and Sync.
unsafe impl Send for QueueHook {}
// SAFETY: as above; every method takes `&self` and makes only thread-safe calls.
unsafe impl Sync for QueueHook {}

impl QueueHook {
    /// Hooks `wakeup` on `client`'s main queue (a producer's delivery reports). `None` only if
    /// librdkafka gives no main queue (it always does for a producer).
    pub(crate) fn main<C: ClientContext>(client: &Client<C>, wakeup: &Wakeup) -> Option<Self> {
        // SAFETY: the client pointer is valid while `client` lives; the returned handle holds
        // a reference on the queue until `rd_kafka_queue_destroy`.
        let queue = unsafe { sys::rd_kafka_queue_get_main(client.native_ptr()) };
        Self::hook(queue, wakeup)
    }

    /// Hooks `wakeup` on `client`'s consumer queue (what `BaseConsumer::poll` serves when the
    /// consumer has a `group.id`, as every Ferry consumer does). `None` if librdkafka gives no
    /// consumer queue (a client without `group.id`).
    pub(crate) fn consumer<C: ClientContext>(client: &Client<C>, wakeup: &Wakeup) -> Option<Self> {
        // SAFETY: as in `main`.
        let queue = unsafe { sys::rd_kafka_queue_get_consumer(client.native_ptr()) };
        Self::hook(queue, wakeup)
    }

    fn hook(queue: *mut sys::rd_kafka_queue_t, wakeup: &Wakeup) -> Option<Self> {
        let queue = NonNull::new(queue)?;
        let signal = Arc::clone(&wakeup.0);
        // SAFETY: `queue` is a valid handle; `signal` stays allocated until `drop` unhooks the
        // callback (this hook holds a strong reference until then).
        unsafe {
            sys::rd_kafka_queue_cb_event_enable(
                queue.as_ptr(),
                Some(on_arrival),
                Arc::as_ptr(&signal).cast_mut().cast::<c_void>(),
            );
        }
        Some(Self {
            queue,
            _signal: signal,
        })
    }

    /// Events waiting in the queue, to be served with `poll(ZERO)`.
    pub(crate) fn waiting(&self) -> usize {
        // SAFETY: a valid queue handle.
        unsafe { sys::rd_kafka_queue_length(self.queue.as_ptr()) }
    }
}

impl Drop for QueueHook {
    fn drop(&mut self) {
        // SAFETY: unhooking takes the queue's lock, so when it returns no callback runs or will
        // run; then the handle is released, once. `_signal` is released after this, with the
        // fields.
        unsafe {
            sys::rd_kafka_queue_cb_event_enable(self.queue.as_ptr(), None, std::ptr::null_mut());
            sys::rd_kafka_queue_destroy(self.queue.as_ptr());
        }
    }
}
