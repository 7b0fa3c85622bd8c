//! One supervisor for every long-lived duty that runs on its own thread: a task worker, the
//! flow leader. It owns the thread, the stop flag and the restart policy, so that every duty
//! restarts the same way: after an error, wait with a growing back-off (cut short by a stop),
//! then run the duty again from scratch; a duty that ran healthily for a while starts over at
//! the shortest back-off.
//!
//! A duty checks the stop flag it is given at least every few hundred milliseconds and returns
//! `Ok(())` when it is set; [`Supervised::stop`] then returns once the duty did.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long to wait before restarting a failed duty.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    /// The first wait.
    pub(crate) first: Duration,
    /// The longest wait; each failure doubles the wait up to this.
    pub(crate) max: Duration,
    /// A run at least this long counts as healthy: the next failure waits `first` again.
    pub(crate) healthy_after: Duration,
}

impl Backoff {
    /// The wait after a run that lasted `ran`, given the previous wait `previous` (`None`
    /// for the first failure).
    pub(crate) fn next(&self, previous: Option<Duration>, ran: Duration) -> Duration {
        match previous {
            Some(previous) if ran < self.healthy_after => (previous * 2).min(self.max),
            _ => self.first,
        }
    }
}

/// How often a waiting supervisor looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// A duty running on its own thread. Stop it with [`Supervised::stop`]; dropping the handle
/// detaches the thread, which keeps running.
pub(crate) struct Supervised {
    name: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Supervised {
    /// Starts `duty` on a thread named `name`, inside `span`. After each failure `failed` is
    /// told the error and the wait before the next run (to log and count it).
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub(crate) fn spawn<E, D, F>(
        name: String,
        span: tracing::Span,
        backoff: Backoff,
        mut duty: D,
        failed: F,
    ) -> std::io::Result<Supervised>
    where
        D: FnMut(&Arc<AtomicBool>) -> Result<(), E> + Send + 'static,
        F: Fn(&E, Duration) + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let _entered = span.entered();
                let mut wait = None;
                while !thread_stop.load(Ordering::Acquire) {
                    let started = Instant::now();
                    let Err(error) = duty(&thread_stop) else {
                        return;
                    };
                    let next = backoff.next(wait, started.elapsed());
                    failed(&error, next);
                    wait = Some(next);
                    let deadline = Instant::now() + next;
                    while Instant::now() < deadline && !thread_stop.load(Ordering::Acquire) {
                        std::thread::sleep(STOP_POLL);
                    }
                }
            })?;
        Ok(Supervised {
            name,
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the duty to stop without waiting.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Asks the duty to stop and waits until its thread ended.
    pub(crate) fn stop(mut self) {
        self.request_stop();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(thread = %self.name, "A supervised thread panicked.");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc;

    use super::*;

    const BACKOFF: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
        healthy_after: Duration::from_secs(60),
    };

    #[test]
    fn backoff_doubles_to_its_maximum_and_restarts_after_a_healthy_run() {
        let first = BACKOFF.next(None, Duration::ZERO);
        let second = BACKOFF.next(Some(first), Duration::ZERO);
        let third = BACKOFF.next(Some(second), Duration::ZERO);
        let fourth = BACKOFF.next(Some(third), Duration::ZERO);
        assert_eq!(
            [first, second, third, fourth].map(|wait| wait.as_millis()),
            [1, 2, 4, 4]
        );
        assert_eq!(BACKOFF.next(Some(fourth), Duration::from_secs(61)), first);
    }

    #[test]
    fn a_failing_duty_is_restarted_and_reported_until_it_succeeds() {
        let (sender, receiver) = mpsc::channel();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&reports);
        let mut runs = 0;
        let duty = move |_stop: &Arc<AtomicBool>| {
            runs += 1;
            if runs < 3 {
                return Err(format!("run {runs} failed"));
            }
            let _ = sender.send(runs);
            Ok(())
        };
        let supervised = Supervised::spawn(
            "test-duty".to_owned(),
            tracing::Span::none(),
            BACKOFF,
            duty,
            move |error: &String, wait| seen.lock().unwrap().push((error.clone(), wait)),
        )
        .unwrap();
        assert_eq!(receiver.recv_timeout(Duration::from_secs(10)), Ok(3));
        supervised.stop();
        let reports = reports.lock().unwrap();
        assert_eq!(
            *reports,
            [
                ("run 1 failed".to_owned(), Duration::from_millis(1)),
                ("run 2 failed".to_owned(), Duration::from_millis(2)),
            ]
        );
    }

    #[test]
    fn stop_ends_a_duty_that_waits_for_it() {
        let (sender, receiver) = mpsc::channel();
        let supervised = Supervised::spawn(
            "test-stop".to_owned(),
            tracing::Span::none(),
            BACKOFF,
            move |stop: &Arc<AtomicBool>| {
                let _ = sender.send(());
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok::<(), String>(())
            },
            |_: &String, _| {},
        )
        .unwrap();
        assert_eq!(receiver.recv_timeout(Duration::from_secs(10)), Ok(()));
        supervised.stop();
    }
}
