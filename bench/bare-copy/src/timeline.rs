//! Records on the target over time: the remote topic's summed watermarks, sampled every 250 ms
//! (`bench/failover`).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;

use crate::args::Flags;
use crate::watch;

/// `timeline --bootstrap B --topic R --partitions P --seconds S`: prints `elapsed_s records`
/// every 250 ms for S seconds (one line per sample; 0 while R does not exist).
pub fn run(flags: &Flags) -> Result<(), String> {
    let topic = flags.text("topic")?;
    let partitions: i32 = flags.value("partitions")?;
    let seconds: f64 = flags.value("seconds")?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", flags.text("bootstrap")?)
        .set(
            "group.id",
            format!("bare-copy.timeline.{}", std::process::id()),
        )
        .create()
        .map_err(|error| format!("timeline: {error}"))?;
    let began = Instant::now();
    let mut next = Duration::ZERO;
    while began.elapsed().as_secs_f64() < seconds {
        let copied = watch::copied(&consumer, topic, partitions);
        println!("{:.3} {copied}", began.elapsed().as_secs_f64());
        next += Duration::from_millis(250);
        if let Some(wait) = next.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok(())
}
