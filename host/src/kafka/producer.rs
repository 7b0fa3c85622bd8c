//! [`WakingProducer`]: the tasks' producers, whose waits for delivery reports end when a report
//! arrives.
//!
//! rdkafka 0.39's `BaseProducer::poll(t)` returns only when `t` has passed, and its `flush`
//! serves reports in `poll(100 ms)` slices: every flush with anything outstanding took at least
//! 100 ms, and so did the flush inside `commit_transaction` (measured: an exactly-once commit
//! stalled its task 300 to 800 ms, in 100 ms steps; `docs/performance.md` 6e). The waits here
//! block on [`ffi::ReportWaker`] instead and serve reports with `poll(ZERO)`.

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
    waker: ffi::ReportWaker,
    producer: BaseProducer<C>,
}

impl<C: ProducerContext + 'static> WakingProducer<C> {
    /// Hooks the wake-up on `producer`.
    ///
    /// # Errors
    /// `KafkaError::ClientCreation` when librdkafka gives no main queue to hook on (it always
    /// gives one to a producer).
    pub(crate) fn new(producer: BaseProducer<C>) -> KafkaResult<Self> {
        let waker = ffi::ReportWaker::new(producer.client()).ok_or_else(|| {
            KafkaError::ClientCreation("the producer has no main queue".to_owned())
        })?;
        Ok(Self { waker, producer })
    }

    /// Serves the delivery reports (and errors) that have arrived; when none had, waits at most
    /// `timeout` for the first and serves what came. Returns when something was served or
    /// `timeout` passed, not later.
    pub(crate) fn poll(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.waker.arrivals();
            if self.serve() > 0 {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.waker.wait(seen, left.min(WAIT_SLICE));
        }
    }

    /// Serves every event waiting in the queue, at most [`SERVE_MAX`]; how many.
    fn serve(&self) -> usize {
        let mut served = 0;
        while served < SERVE_MAX && self.waker.waiting() > 0 {
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
            let seen = self.waker.arrivals();
            self.serve();
            // Records not yet acknowledged, plus reports not yet served.
            if self.producer.in_flight_count() == 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            self.waker.wait(seen, left.min(WAIT_SLICE));
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
        assert!(producer.waker.arrivals() >= 1, "the callback fired");
    }
}
