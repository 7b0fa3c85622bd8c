//! Topic creation and deletion (the script's setup and clean-up), and the one-shot future
//! runner the admin calls need.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::args::Flags;

/// `create --bootstrap B --topic T --partitions P`: creates T (replication factor 1).
pub fn create(flags: &Flags) -> Result<(), String> {
    let admin = client(flags.text("bootstrap")?)?;
    let topic = NewTopic::new(
        flags.text("topic")?,
        flags.value("partitions")?,
        TopicReplication::Fixed(1),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.create_topics([&topic], &options)).map_err(|e| e.to_string())?;
    for result in results {
        result.map_err(|(topic, code)| format!("create {topic}: {code}"))?;
    }
    Ok(())
}

/// `delete --bootstrap B --topic T`: deletes T (comma-separated names for several).
pub fn delete(flags: &Flags) -> Result<(), String> {
    let admin = client(flags.text("bootstrap")?)?;
    let topics: Vec<&str> = flags.text("topic")?.split(',').collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.delete_topics(&topics, &options)).map_err(|e| e.to_string())?;
    for result in results {
        result.map_err(|(topic, code)| format!("delete {topic}: {code}"))?;
    }
    Ok(())
}

fn client(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, String> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|error| error.to_string())
}

/// Wakes the thread that polls.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread (rdkafka's admin futures complete from
/// librdkafka's own thread).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}
