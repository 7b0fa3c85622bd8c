//! The `ferry` binary under test: [`Ferry`], a running `ferry run` process (spawn, log, metrics
//! scraping, admin requests, kill, pause or terminate), the HTTP client its endpoints are
//! reached with, and one-shot commands run to completion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::unique::TempDir;

/// A running `ferry run` process, killed on drop.
pub struct Ferry {
    child: Child,
    pub log: PathBuf,
}

impl Ferry {
    /// Starts `ferry run --config <config>`; its stderr goes to `<dir>/<name>.log`.
    pub fn start(config: &Path, dir: &TempDir, name: &str) -> Ferry {
        Ferry::spawn("--config", config, dir, name)
    }

    /// Starts `ferry run --mm2 <properties>` (MM2's own file); its stderr goes to
    /// `<dir>/<name>.log`.
    pub fn start_mm2(properties: &Path, dir: &TempDir, name: &str) -> Ferry {
        Ferry::spawn("--mm2", properties, dir, name)
    }

    /// Starts `ferry run --config <config>` with the admin token `token`.
    pub fn start_with_token(config: &Path, dir: &TempDir, name: &str, token: &str) -> Ferry {
        Ferry::spawn_with(
            "--config",
            config,
            dir,
            name,
            &[("FERRY_ADMIN_TOKEN", token)],
        )
    }

    /// Starts `ferry run --config <config>` with the environment variables `env` set.
    pub fn start_with_env(config: &Path, dir: &TempDir, name: &str, env: &[(&str, &str)]) -> Ferry {
        Ferry::spawn_with("--config", config, dir, name, env)
    }

    fn spawn(option: &str, file: &Path, dir: &TempDir, name: &str) -> Ferry {
        Ferry::spawn_with(option, file, dir, name, &[])
    }

    fn spawn_with(
        option: &str,
        file: &Path,
        dir: &TempDir,
        name: &str,
        env: &[(&str, &str)],
    ) -> Ferry {
        let log = dir.0.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["run", option])
            .arg(file)
            .args([
                "--metrics-bind",
                "127.0.0.1:0",
                "--admin-bind",
                "127.0.0.1:0",
            ])
            .envs(env.iter().copied())
            .env(
                "RUST_LOG",
                std::env::var("FERRY_TEST_LOG")
                    .unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Ferry { child, log }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The address an endpoint of this process logged with `marker` (`address=...`).
    fn address(&self, marker: &str) -> Option<String> {
        self.log_text()
            .lines()
            .find(|line| line.contains(marker))
            .and_then(|line| line.split("address=").nth(1))
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
    }

    /// The body of `GET /metrics` from this process (its address is in its log).
    pub fn metrics(&self) -> String {
        let address = self
            .address("Metrics endpoint listening.")
            .unwrap_or_else(|| panic!("no metrics address in the log:\n{}", self.log_text()));
        let (status, body) = http(&address, "GET", "/metrics", &[], None);
        assert_eq!(status, 200, "metrics answered {body}");
        body
    }

    /// `GET <path>` from this process's metrics endpoint (`/metrics`, `/healthz`, `/readyz`):
    /// (status, body); `None` before the endpoint is up.
    pub fn probe(&self, path: &str) -> Option<(u16, String)> {
        let address = self.address("Metrics endpoint listening.")?;
        Some(http(&address, "GET", path, &[], None))
    }

    /// Waits until `GET <path>` answers `expected` (status, body) while the process keeps
    /// running; fails with `what` and the last answer after `timeout`.
    pub fn wait_for_probe(
        &mut self,
        timeout: Duration,
        what: &str,
        path: &str,
        expected: (u16, &str),
    ) {
        let expected = Some((expected.0, expected.1.to_owned()));
        super::wait_for_value(timeout, what, &expected, || {
            self.assert_running();
            self.probe(path)
        });
    }

    /// Whether the admin endpoint is up (its address is in the log).
    pub fn admin_ready(&self) -> bool {
        self.address("Admin endpoint listening.").is_some()
    }

    /// A request to this process's admin endpoint: (status, body).
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        token: Option<&str>,
    ) -> (u16, String) {
        let address = self
            .address("Admin endpoint listening.")
            .unwrap_or_else(|| panic!("no admin address in the log:\n{}", self.log_text()));
        http(&address, method, path, body, token)
    }

    /// The value of `name` in the metrics text, summed over every label set; 0 before the
    /// metrics endpoint is up.
    pub fn metric_sum(&self, name: &str) -> f64 {
        if self.address("Metrics endpoint listening.").is_none() {
            return 0.0;
        }
        self.metrics()
            .lines()
            .filter(|line| line.starts_with(name))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The value of the sample `name{labels}` in this process's metrics, if present.
    pub fn metric(&self, name_and_labels: &str) -> Option<f64> {
        self.metrics()
            .lines()
            .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
    }

    /// Every sample of family `name` in this process's metrics: its labels and value.
    pub fn samples(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.metrics()
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(name)?.strip_prefix('{')?;
                let (labels, value) = rest.rsplit_once("} ")?;
                let labels = labels
                    .split(',')
                    .filter_map(|pair| {
                        let (key, value) = pair.split_once('=')?;
                        Some((key.to_owned(), value.trim_matches('"').to_owned()))
                    })
                    .collect();
                Some((labels, value.parse().ok()?))
            })
            .collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Number of tasks this process holds now, from its log.
    pub fn tasks_held(&self) -> i64 {
        let log = self.log_text();
        log.matches("Task acquired.").count() as i64 - log.matches("Task released.").count() as i64
    }

    /// Kills the process with SIGKILL: no drain, no goodbye.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (a `kill -<signal>` name) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Stops the process with SIGSTOP: a hung process (a zombie owner, seen from the cluster).
    /// Its endpoints do not answer until [`Ferry::resume`]; its log can still be read.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends SIGTERM and waits for a clean exit; returns the whole log.
    pub fn terminate(self) -> String {
        self.terminate_within(Duration::from_secs(60)).1
    }

    /// Sends SIGTERM and waits up to `bound` for a clean exit (panics with the log past it);
    /// returns how long the exit took and the whole log.
    pub fn terminate_within(mut self, bound: Duration) -> (Duration, String) {
        self.signal("TERM");
        let sent = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let took = sent.elapsed();
                assert!(
                    status.success(),
                    "ferry exited with {status}; log:\n{}",
                    self.log_text()
                );
                return (took, self.log_text());
            }
            assert!(
                sent.elapsed() < bound,
                "ferry did not stop within {bound:?} of SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "ferry exited early with {status}; log:\n{}",
                self.log_text()
            );
        }
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request (`Connection: close`): (status, body).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    body: &[u8],
    token: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

/// Runs the `ferry` binary to completion and returns (exit code, stderr).
pub fn ferry_command(args: &[&str]) -> (i32, String) {
    let (code, _, stderr) = ferry_output(args);
    (code, stderr)
}

/// Runs the `ferry` binary to completion and returns (exit code, stdout, stderr).
pub fn ferry_output(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
