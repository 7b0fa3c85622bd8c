//! [`WakingProducer`]: the tasks' producers, whose waits for delivery reports end when a report
//! arrives.
//!
//! rdkafka 0.39's `BaseProducer::poll(t)` returns only when `t` has passed, and its `flush`
//! serves reports in `poll(100 ms)` slices: every flush with anything outstanding took at least
//! 100 ms, and so did the flush inside `commit_transaction` (measured: an exactly-once commit
//! stalled its task 300 to 800 ms, in 100 ms steps; `docs/performance.md` 6e). The waits here
//! block on a [`ffi::Wakeup`] instead and serve reports with `poll(ZERO)`. The same wake-up may
//! be hooked on a consumer's queue too ([`WakingProducer::wakeup`]), so that a task waits for
//! its reports and its next records at once ([`WakingProducer::poll_or`]).

use std::ops::Deref;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

use super::ffi;

/// The most events one [`WakingProducer::poll`] serves before it returns, so that a stream of
/// reports cannot hold the caller's loop (each event carries the reports of a whole batch).
const SERVE_MAX: usize = 1_000;

/// The longest one wait for the wake-up lasts before the producer is looked at again: a
/// safety net, never needed while librdkafka signals every arrival.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// A `BaseProducer` with a wake-up on its delivery reports. Its [`poll`](Self::poll),
/// [`flush`](Self::flush) and [`commit_transaction`](Self::commit_transaction) replace rdkafka's;
/// everything else is the producer's own (through `Deref`).
pub(crate) struct WakingProducer<C: ProducerContext + 'static> {
    // Declared first, so dropped first: it unhooks its callback from the producer's queue.
    reports: ffi::QueueHook,
    wakeup: ffi::Wakeup,
    producer: BaseProducer<C>,
}

impl<C: ProducerContext + 'static> WakingProducer<C> {
    /// Hooks the wake-up on `producer`.
    ///
    /// # Errors
    /// `KafkaError::ClientCreation` when librdkafka gives no main queue to hook on (it always
    /// gives one to a producer).
    pub(crate) fn new(producer: BaseProducer<C>) -> KafkaResult<Self> {
        let wakeup = ffi::Wakeup::default();
        let reports = ffi::QueueHook::main(producer.client(), &wakeup).ok_or_else(|| {
            KafkaError::ClientCreation("the producer has no main queue".to_owned())
        })?;
        Ok(Self {
            reports,
            wakeup,
            producer,
        })
    }

    /// The wake-up of this producer's waits, to hook on another queue
    /// ([`ffi::QueueHook::consumer`]) whose arrivals [`poll_or`](Self::poll_or) should wait for.
    pub(crate) fn wakeup(&self) -> &ffi::Wakeup {
        &self.wakeup
    }

    /// Serves the delivery reports (and errors) that have arrived; when none had, waits at most
    /// `timeout` for the first and serves what came. Returns when something was served or
    /// `timeout` passed, not later.
    pub(crate) fn poll(&self, timeout: Duration) {
        self.poll_until(timeout, None);
    }

    /// As [`poll`](Self::poll), but returns as well as soon as events wait in `other` (a queue
    /// this producer's [`wakeup`](Self::wakeup) is hooked on).
    pub(crate) fn poll_or(&self, timeout: Duration, other: &ffi::QueueHook) {
        self.poll_until(timeout, Some(other));
    }

    fn poll_until(&self, timeout: Duration, other: Option<&ffi::QueueHook>) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.wakeup.arrivals();
            if self.serve() > 0 || other.is_some_and(|other| other.waiting() > 0) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let slice = left.min(WAIT_SLICE);
            match other {
                Some(other) => self.wakeup.wait(seen, slice, &[&self.reports, other]),
                None => self.wakeup.wait(seen, slice, &[&self.reports]),
            }
        }
    }

    /// Serves every event waiting in the queue, at most [`SERVE_MAX`]; how many.
    fn serve(&self) -> usize {
        let mut served = 0;
        while served < SERVE_MAX && self.reports.waiting() > 0 {
            self.producer.poll(Duration::ZERO);
            served += 1;
        }
        served
    }

    /// Waits until every record given to the producer is delivered and its report served (its
    /// callback ran), at most `timeout`.
    ///
    /// # Errors
    /// `KafkaError::Flush(OperationTimedOut)` when records are still outstanding at `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        let deadline = Instant::now() + timeout;
        // Once: ends `linger.ms` at once for what is queued (librdkafka wakes every broker
        // thread), and returns at once when nothing is outstanding. Not in the loop: each call
        // wakes every broker thread.
        match self.producer.flush(Duration::ZERO) {
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
            outcome => return outcome,
        }
        loop {
            let seen = self.wakeup.arrivals();
            self.serve();
            // Records not yet acknowledged, plus reports not yet served.
            if self.producer.in_flight_count() == 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            self.wakeup
                .wait(seen, left.min(WAIT_SLICE), &[&self.reports]);
        }
    }

    /// Commits the open transaction: [`flush`](Self::flush) first, so that rdkafka's own flush
    /// inside the commit finds nothing outstanding; each step at most `timeout` (as rdkafka's).
    ///
    /// # Errors
    /// The flush's timeout, or the commit's error (`KafkaError::Transaction`).
    pub(crate) fn commit_transaction(&self, timeout: Duration) -> KafkaResult<()> {
        self.flush(timeout)?;
        self.producer.commit_transaction(timeout)
    }
}

impl<C: ProducerContext + 'static> Deref for WakingProducer<C> {
    type Target = BaseProducer<C>;

    fn deref(&self) -> &BaseProducer<C> {
        &self.producer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rdkafka::ClientConfig;
    use rdkafka::ClientContext;
    use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext};

    use super::WakingProducer;
    use crate::kafka::ffi::QueueHook;

    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl ClientContext for Counting {}

    impl ProducerContext for Counting {
        type DeliveryOpaque = ();

        fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// No broker listens on 127.0.0.1:1, so the record's report is its timeout, 300 ms after it
    /// was sent: `flush` must serve it (the callback ran) and return, and the wake-up must have
    /// fired for it. The failed connection's error events count as in flight too (librdkafka's
    /// `outq_len`) until served; the reconnect back-off keeps new ones out of the test's second.
    #[test]
    fn flush_serves_the_reports_that_arrive_and_the_wake_up_fires() {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("message.timeout.ms", "300")
            .set("reconnect.backoff.ms", "10000")
            .set("reconnect.backoff.max.ms", "10000")
            .create_with_context(Counting::default())
            .and_then(WakingProducer::new)
            .expect("a producer needs no broker to be created");
        producer
            .send(BaseRecord::<(), [u8], ()>::to("t").payload(&b"record"[..]))
            .map_err(|(error, _)| error)
            .expect("queued");
        assert!(producer.in_flight_count() >= 1, "the record is in flight");
        producer
            .flush(std::time::Duration::from_secs(30))
            .expect("the report (a timeout) arrives long before 30 s");
        assert_eq!(producer.context().0.load(Ordering::Relaxed), 1, "served");
        assert_eq!(producer.in_flight_count(), 0);
        assert!(producer.wakeup.arrivals() >= 1, "the callback fired");
    }

    /// A consumer whose broker refuses the connection gets error events on its consumer queue.
    /// With a producer's wake-up hooked there, a wait on that wake-up must end when they come
    /// (the callback fired), within 30 s; and the producer's `poll_or` must then return at once,
    /// leaving them for the consumer to serve. (The producer, without brokers, may report once
    /// at its creation; that ends a wait early too, so the wait is repeated until the
    /// consumer's events are there.)
    #[test]
    fn a_consumer_queue_wakes_the_producer_s_waits() {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use std::time::{Duration, Instant};
        let producer = ClientConfig::new()
            .create_with_context(Counting::default())
            .and_then(WakingProducer::new)
            .expect("a producer needs no broker to be created");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "wake-up-test")
            .create()
            .expect("a consumer needs no broker to be created");
        let hook = QueueHook::consumer(consumer.client(), producer.wakeup())
            .expect("a consumer with a group.id has a consumer queue");
        let deadline = Instant::now() + Duration::from_secs(30);
        while hook.waiting() == 0 && Instant::now() < deadline {
            let seen = producer.wakeup().arrivals();
            producer.wakeup().wait(
                seen,
                deadline.saturating_duration_since(Instant::now()),
                &[&hook],
            );
        }
        assert!(Instant::now() < deadline, "the wake-up ended the wait");
        assert!(hook.waiting() > 0, "the consumer got its events");
        let started = Instant::now();
        producer.poll_or(Duration::from_secs(30), &hook);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "poll_or returned"
        );
        assert!(hook.waiting() > 0, "the consumer's events are left to it");
    }
}
