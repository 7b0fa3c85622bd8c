//! A steady load on a source topic: [`SteadyProducer`], one idempotent producer on its own thread
//! writing the records of [`record`] at a fixed rate while a test takes brokers or Ferry processes
//! away, and how many of them the source has acknowledged so far.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext, PurgeConfig};

use super::clusters::client;
use super::records::{message, record, send};

/// What the producer thread shares with the test.
struct Progress {
    /// Records acknowledged per partition. The producer is idempotent and a failed delivery
    /// fails the test, so partition `p` holds exactly records `0..acked[p]` of [`record`].
    acked: Vec<AtomicU64>,
    /// The first failed delivery.
    failed: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// Counts the delivery reports into [`Progress`].
struct Counting(Arc<Progress>);

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                self.0.acked[message.partition() as usize].fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let mut failed = self.0.failed.lock().unwrap_or_else(PoisonError::into_inner);
                failed.get_or_insert_with(|| {
                    format!(
                        "partition {} offset {}: {error}",
                        message.partition(),
                        message.offset()
                    )
                });
            }
        }
    }
}

/// A producer writing records `0..per_partition` of every partition of a topic, index by index
/// (every partition's record `i` before any record `i + 1`), at a steady rate, on a thread.
/// Stops (and joins) when dropped.
pub struct SteadyProducer {
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
}

impl SteadyProducer {
    /// Starts writing to `topic` of `partitions` partitions on `bootstrap`, `rate` records per
    /// second over all partitions.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        partitions: i32,
        per_partition: u64,
        rate: u64,
    ) -> SteadyProducer {
        let progress = Arc::new(Progress {
            acked: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
            failed: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let producer: BaseProducer<Counting> = client(bootstrap)
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .set("queue.buffering.max.messages", "1000000")
            .create_with_context(Counting(Arc::clone(&progress)))
            .unwrap();
        let shared = Arc::clone(&progress);
        let topic = topic.to_owned();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            let width = u64::try_from(partitions).unwrap();
            let total = width * per_partition;
            let mut sent = 0_u64;
            while sent < total {
                if shared.stop.load(Ordering::Relaxed) {
                    // The test failed: drop what is not written yet, wait for nothing.
                    producer.purge(PurgeConfig::default().queue().inflight());
                    return;
                }
                let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap();
                let due = (rate * elapsed / 1_000).min(total);
                while sent < due {
                    let partition = i32::try_from(sent % width).unwrap();
                    send(&producer, message(&topic, &record(partition, sent / width)));
                    sent += 1;
                }
                // Serves delivery reports; also the pace (at most 10 ms between sends).
                producer.poll(Duration::from_millis(10));
            }
            // librdkafka retries a record until message.timeout.ms (5 minutes), so a source broker
            // that is away for a while delays the acknowledgements but fails nothing.
            producer.flush(Duration::from_secs(180)).unwrap();
        });
        SteadyProducer {
            progress,
            thread: Some(thread),
            started,
        }
    }

    /// Records the source acknowledged so far, in all.
    pub fn acknowledged(&self) -> u64 {
        self.progress
            .acked
            .iter()
            .map(|acked| acked.load(Ordering::Relaxed))
            .sum()
    }

    /// The fewest records acknowledged on any partition: every partition holds at least its
    /// records `0..acknowledged_each()`.
    pub fn acknowledged_each(&self) -> u64 {
        self.progress
            .acked
            .iter()
            .map(|acked| acked.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    /// Waits until every record was written and acknowledged; panics if a delivery failed.
    /// Returns how long producing took.
    pub fn finish(mut self) -> Duration {
        let thread = self.thread.take().unwrap();
        thread.join().expect("the steady producer failed");
        let failed = self
            .progress
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        assert!(failed.is_none(), "a source write failed: {failed:?}");
        self.started.elapsed()
    }
}

impl Drop for SteadyProducer {
    fn drop(&mut self) {
        self.progress.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
