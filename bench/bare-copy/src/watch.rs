//! Times a copy from the target's side: the summed high watermarks of the remote topic, polled
//! every 50 ms, give the moment the first record arrived (start-up) and the moment all had
//! (the copy); the copier's CPU is read from `/proc` at both moments and its peak RSS at the end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::args::Flags;
use crate::proc_stat;

/// `watch --bootstrap B --topic R --partitions P --records N --pid PID --start T0 --timeout S`:
/// waits until R holds N records; T0 is when the copier was started (Unix seconds). Prints
/// `startup_s copy_s cpu_copy_s cpu_total_s peak_rss_kib`: start-up is T0 → first record on the
/// target, the copy first → N-th record, `cpu_copy_s` the copier's CPU over the copy, `cpu_total_s`
/// its CPU from its start to the end.
pub fn run(flags: &Flags) -> Result<(), String> {
    let topic = flags.text("topic")?;
    let partitions: i32 = flags.value("partitions")?;
    let records: i64 = flags.value("records")?;
    let pid: u32 = flags.value("pid")?;
    let start: f64 = flags.value("start")?;
    let timeout = Duration::from_secs(flags.value_or("timeout", 600)?);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", flags.text("bootstrap")?)
        .set(
            "group.id",
            format!("bare-copy.watch.{}", std::process::id()),
        )
        .create()
        .map_err(|error| format!("watcher: {error}"))?;

    let began = Instant::now();
    let mut first: Option<(f64, f64)> = None;
    loop {
        if began.elapsed() > timeout {
            return Err(format!(
                "{topic} did not reach {records} records in {timeout:?}"
            ));
        }
        let copied = copied(&consumer, topic, partitions);
        let now = unix_seconds();
        let cpu = proc_stat::cpu_seconds(pid).map_err(|error| format!("copier gone? {error}"))?;
        if copied > 0 && first.is_none() {
            first = Some((now, cpu));
        }
        if copied >= records {
            let (first_time, first_cpu) = first.unwrap_or((now, cpu));
            let peak = proc_stat::peak_rss_kib(pid)?;
            println!(
                "{:.3} {:.3} {:.3} {:.3} {peak}",
                first_time - start,
                now - first_time,
                cpu - first_cpu,
                cpu
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Records in `topic` on the target (0 for a partition not there yet).
pub fn copied(consumer: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    (0..partitions)
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(5))
                .map_or(0, |(low, high)| high - low)
        })
        .sum()
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}
