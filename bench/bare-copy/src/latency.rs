//! End-to-end latency on the target: the time from a record's send (stamped in its value by
//! `pace`) to its arrival in this consumer, for the measured records only.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::args::Flags;
use crate::record;

/// `latency --bootstrap B --topic R --partitions P --expect M --timeout S`: reads R from its
/// beginning until M measured records arrived (or S seconds passed). Prints
/// `p50_ms p99_ms max_ms count` (`nan nan nan 0` if none arrived).
pub fn run(flags: &Flags) -> Result<(), String> {
    let topic = flags.text("topic")?;
    let partitions: i32 = flags.value("partitions")?;
    let expect: usize = flags.value("expect")?;
    let timeout = Duration::from_secs(flags.value_or("timeout", 300)?);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", flags.text("bootstrap")?)
        .set(
            "group.id",
            format!("bare-copy.latency.{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|error| format!("consumer: {error}"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|error| error.to_string())?;
    }
    consumer
        .assign(&assignment)
        .map_err(|error| format!("assign: {error}"))?;

    let began = Instant::now();
    let mut micros: Vec<u64> = Vec::with_capacity(expect);
    while micros.len() < expect && began.elapsed() < timeout {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.map_err(|error| format!("consume: {error}"))?;
        let arrived = record::now_micros();
        if let Some((sent, record::MEASURED)) = message.payload().and_then(record::read) {
            micros.push(arrived.saturating_sub(sent));
        }
    }
    // A copier that cannot keep up leaves records behind at the timeout: the percentiles are
    // then those of the records that arrived (the script marks them as lower bounds).
    if micros.is_empty() {
        println!("nan nan nan 0");
        return Ok(());
    }
    micros.sort_unstable();
    let [p50, p99, max] = [50, 99, 100].map(|percent| percentile(&micros, percent) as f64 / 1000.0);
    println!("{p50:.2} {p99:.2} {max:.2} {}", micros.len());
    Ok(())
}

/// The nearest-rank percentile of sorted values (not empty).
fn percentile(sorted: &[u64], percent: usize) -> u64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 99), 99);
        assert_eq!(percentile(&values, 100), 100);
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[1, 2, 3], 99), 3);
    }
}
