//! MirrorMaker 2 processes (Kafka 3.8.1, dedicated mode) for the takeover tests: start one in
//! its own process group, read its log, stop it with SIGTERM, and never let it outlive a test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::unique::TempDir;

/// A MirrorMaker 2 process (Kafka 3.8.1, dedicated mode) started with `scripts/kafka-local mm2`,
/// in a process group of its own. Dropping it kills the whole group, so no JVM outlives a test,
/// even one that panics.
pub struct Mm2 {
    child: Child,
    pub log: PathBuf,
}

impl Mm2 {
    /// Starts MM2 with `properties`; its stdout and stderr go to `<dir>/<name>.log`.
    pub fn start(properties: &Path, dir: &TempDir, name: &str) -> Mm2 {
        use std::os::unix::process::CommandExt as _;
        let log = dir.0.join(format!("{name}.log"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka-local");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(script)
            .arg("mm2")
            .arg(properties)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        Mm2 { child, log }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("MM2 exited early with {status}; log:\n{}", self.log_text());
        }
    }

    fn signal_group(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Sends SIGTERM to the process group (MM2 stops its connectors and flushes its offsets)
    /// and waits for MM2 to exit; returns how long that took. Kills the group after 60 s.
    pub fn terminate(mut self) -> Duration {
        let started = Instant::now();
        assert!(self.signal_group("-TERM"), "signalling MM2 failed");
        let deadline = started + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "MM2 did not stop within 60 s; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        started.elapsed()
    }
}

impl Drop for Mm2 {
    fn drop(&mut self) {
        // Still running (a test that panicked, or `terminate` not called): kill the group.
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group("-KILL");
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
