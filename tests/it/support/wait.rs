//! Waiting for a condition on the clusters or a process: poll until it holds, fail with what was
//! awaited (and the last value seen) after a timeout.

use std::time::{Duration, Instant};

/// Polls `condition` every 100 ms until it holds; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `read` every 100 ms until it returns `expected`; panics with `what` and the last value
/// after `timeout`.
pub fn wait_for_value<T: PartialEq + std::fmt::Debug>(
    timeout: Duration,
    what: &str,
    expected: &T,
    mut read: impl FnMut() -> T,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let value = read();
        if &value == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}\nexpected: {expected:#?}\nlast seen: {value:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
