//! The producer of the source data: as fast as it can (filling the topic before a throughput
//! run) or at a steady rate (the latency runs), each value stamped with its send time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};

use crate::args::Flags;
use crate::record;

/// Counts failed deliveries.
#[derive(Default)]
struct Failures(AtomicU64);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `pace --bootstrap B --topic T --size S --rate R --warmup-records W --records N`: writes W
/// warm-up records then N measured ones, R per second (0: as fast as possible), values of S
/// bytes, no key; waits for every acknowledgement. Prints `records seconds`.
pub fn run(flags: &Flags) -> Result<(), String> {
    let topic = flags.text("topic")?;
    let size: usize = flags.value::<usize>("size")?.max(9);
    let rate: f64 = flags.value("rate")?;
    let warmup: u64 = flags.value_or("warmup-records", 0)?;
    let total = warmup + flags.value::<u64>("records")?;
    let producer: BaseProducer<Failures> = ClientConfig::new()
        .set("bootstrap.servers", flags.text("bootstrap")?)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create_with_context(Failures::default())
        .map_err(|error| format!("producer: {error}"))?;

    let mut value = vec![0x5a_u8; size];
    let began = Instant::now();
    let mut sent = 0;
    while sent < total {
        let due = match rate > 0.0 {
            true => total.min((began.elapsed().as_secs_f64() * rate) as u64),
            false => total,
        };
        while sent < due {
            let kind = if sent < warmup {
                record::WARMUP
            } else {
                record::MEASURED
            };
            record::stamp(&mut value, kind);
            let mut message = BaseRecord::<(), [u8]>::to(topic).payload(&value);
            while let Err((error, returned)) = producer.send(message) {
                match error {
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => {
                        producer.poll(Duration::from_millis(5));
                        message = returned;
                    }
                    error => return Err(format!("produce: {error}")),
                }
            }
            sent += 1;
            producer.poll(Duration::ZERO);
        }
        if sent < total {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|error| format!("flush: {error}"))?;
    let failed = producer.context().0.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} of {total} records were not delivered"));
    }
    println!("{total} {:.3}", began.elapsed().as_secs_f64());
    Ok(())
}
