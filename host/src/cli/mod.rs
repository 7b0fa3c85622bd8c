//! The command line: `ferry run`, `ferry validate`, `ferry plan`, `ferry status` and `ferry
//! plugin check`.
//!
//! Exit codes: 0 success; 1 a runtime failure (a cluster unreachable, unless `run
//! --wait-for-clusters` waits for it; a flow that cannot start); 2 the configuration or a
//! plugin is invalid. Start-up problems are printed to stderr as `error: ...` lines, one per
//! problem, all of them in one run (a configuration problem does not stop the plugin checks of
//! the flows that are valid), so they read well without a log pipeline. This module also owns
//! logging: tracing to stderr, as text or, with `--log-format json`, one JSON object per line;
//! then the command's own lines are log events too (`Console`).
//!
//! `plugin.rs` is `ferry plugin check`; `plan.rs` is `ferry plan`; `status.rs` is `ferry
//! status`; `failure.rs` the exit codes they use.

mod failure;
mod plan;
pub mod plugin;
mod status;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Config, Flow};
use crate::flow;
use crate::health::{FlowHealth, Health};
use crate::kafka::Admin;
use crate::metrics::Metrics;
use crate::plugins::{Engine, EngineOptions, Policy};
use failure::Failure;
use plugin::CheckRequest;

/// Ferry: Kafka replication with WebAssembly plugins, a MirrorMaker 2 replacement.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
pub struct Arguments {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: `text` for people, `json` for a log pipeline
    /// (Loki, ELK): one JSON object per line, with `timestamp`, `level`, `message`, `target` and
    /// the event's fields. Under `json`, the command's own lines (problems, notes, the result
    /// of `validate`) are log events too.
    #[arg(long, global = true, value_enum, env = "FERRY_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines (tracing's default format).
    Text,
    /// One JSON object per line.
    Json,
}

/// Writes the command's own lines (problems, notes, the result of `validate`) to stderr: as
/// prefixed text lines, or, under `--log-format json`, as log events like every other line, so
/// that stderr stays one JSON object per line.
#[derive(Debug, Clone, Copy)]
struct Console(LogFormat);

impl Console {
    /// A problem that stops the command (`error: ...`).
    fn error(self, line: &str) {
        match self.0 {
            LogFormat::Text => eprintln!("error: {line}"),
            LogFormat::Json => tracing::error!("{line}"),
        }
    }

    /// Something worth knowing that stops nothing (`note: ...`).
    fn note(self, line: &str) {
        match self.0 {
            LogFormat::Text => eprintln!("note: {line}"),
            LogFormat::Json => tracing::info!("{line}"),
        }
    }

    /// The outcome of a command that succeeded.
    fn outcome(self, line: &str) {
        match self.0 {
            LogFormat::Text => eprintln!("{line}"),
            LogFormat::Json => tracing::info!("{line}"),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mirrors topics as the configuration says, until SIGINT or SIGTERM.
    Run {
        /// The configuration file (TOML).
        #[arg(long, short, required_unless_present = "mm2", conflicts_with = "mm2")]
        config: Option<PathBuf>,
        /// A MirrorMaker 2 properties file (`connect-mirror-maker.properties`), used as is.
        #[arg(long)]
        mm2: Option<PathBuf>,
        /// Address of the Prometheus endpoint (`/metrics`). Port 7070 is where MM2 users'
        /// scrapers already look; use 127.0.0.1:7070 to keep it local.
        #[arg(long, env = "FERRY_METRICS_BIND", default_value = "0.0.0.0:7070")]
        metrics_bind: SocketAddr,
        /// Wait for clusters that do not answer at start (retrying every 5 s; `/readyz` says
        /// which) instead of exiting with code 1.
        #[arg(long, env = "FERRY_WAIT_FOR_CLUSTERS")]
        wait_for_clusters: bool,
        #[command(flatten)]
        admin: AdminArguments,
        #[command(flatten)]
        cache: CacheArguments,
    },
    /// Checks a configuration: syntax, values, plugins, and that the clusters answer.
    Validate {
        /// The configuration file (TOML).
        #[arg(long, short, required_unless_present = "mm2", conflicts_with = "mm2")]
        config: Option<PathBuf>,
        /// A MirrorMaker 2 properties file (`connect-mirror-maker.properties`), used as is.
        #[arg(long)]
        mm2: Option<PathBuf>,
        /// Do not contact the clusters.
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        cache: CacheArguments,
    },
    /// Prints what `run` would do against the live clusters, writing nothing: which source
    /// topics are mirrored under which remote name (and which rule excludes the others), topics
    /// to create, partitions to add, configs and ACLs to sync, groups to checkpoint.
    Plan {
        /// The configuration file (TOML).
        #[arg(long, short, required_unless_present = "mm2", conflicts_with = "mm2")]
        config: Option<PathBuf>,
        /// A MirrorMaker 2 properties file (`connect-mirror-maker.properties`), used as is.
        #[arg(long)]
        mm2: Option<PathBuf>,
        /// Print the plan as one JSON document instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        cache: CacheArguments,
    },
    /// Shows each flow's task group, task and partition ownership, lag per partition, halted
    /// partitions and plugin versions, read from the clusters (works from any machine that
    /// reaches them).
    Status {
        /// The configuration file (TOML).
        #[arg(long, short, required_unless_present = "mm2", conflicts_with = "mm2")]
        config: Option<PathBuf>,
        /// A MirrorMaker 2 properties file (`connect-mirror-maker.properties`), used as is.
        #[arg(long)]
        mm2: Option<PathBuf>,
        /// Print JSON (the shape is documented in docs/operations.md) instead of tables.
        #[arg(long)]
        json: bool,
        /// Only this flow, `SOURCE->TARGET`.
        #[arg(long, value_name = "SOURCE->TARGET")]
        flow: Option<String>,
    },
    /// Plugin authoring tools.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Names the world a component implements, loads it in Ferry's sandbox, calls `init` and
    /// prints its answers on sample inputs. Exit code 2 for a plugin Ferry would refuse.
    Check {
        /// The component (`.wasm`), or `builtin:<name>`.
        plugin: String,
        /// A `with` setting passed to `init`, as in the flow's `policy.with`; repeatable.
        #[arg(long = "with", value_name = "KEY=VALUE", value_parser = plugin::parse_key_value)]
        with: Vec<(String, String)>,
        /// The flow's source cluster alias (`source.cluster.alias`).
        #[arg(long, default_value = "A")]
        source_alias: String,
        /// The flow's target cluster alias (`target.cluster.alias`).
        #[arg(long, default_value = "B")]
        target_alias: String,
        /// A topic to show instead of the samples (policies); repeatable.
        #[arg(long = "topic")]
        topics: Vec<String>,
        /// A record to run instead of the samples (filters and transforms), as JSON:
        /// '{"key": "k", "value": "v", "headers": {"env": "test"}}'; repeatable.
        #[arg(long = "record", value_name = "JSON", value_parser = plugin::parse_record)]
        records: Vec<plugin::SampleRecord>,
        #[command(flatten)]
        cache: CacheArguments,
    },
}

/// The admin endpoint and the plugin file watcher (hot swap).
#[derive(Debug, Args)]
struct AdminArguments {
    /// Address of the admin endpoint (`GET /status`, plugin and policy swaps), or `off`.
    /// Without FERRY_ADMIN_TOKEN it must be a loopback address.
    #[arg(long, env = "FERRY_ADMIN_BIND", default_value = "127.0.0.1:7071", value_parser = parse_admin_bind)]
    admin_bind: AdminBind,
    /// The admin endpoint's bearer token; requests must send `Authorization: Bearer <token>`.
    #[arg(long, env = "FERRY_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Do not watch plugin files: swap only through the admin endpoint.
    #[arg(long)]
    no_watch_plugins: bool,
}

/// `--admin-bind`: an address, or `off`.
#[derive(Debug, Clone, Copy)]
struct AdminBind(Option<SocketAddr>);

fn parse_admin_bind(text: &str) -> Result<AdminBind, String> {
    if text == "off" {
        return Ok(AdminBind(None));
    }
    text.parse()
        .map(|address| AdminBind(Some(address)))
        .map_err(|error| format!("expected an address like 127.0.0.1:7071, or `off`: {error}"))
}

/// Where compiled plugins are kept between runs.
#[derive(Debug, Args)]
struct CacheArguments {
    /// Folder of the precompiled-plugin cache [default: $XDG_CACHE_HOME/ferry/plugins, else
    /// ~/.cache/ferry/plugins].
    #[arg(long, env = "FERRY_PLUGIN_CACHE", value_name = "DIR")]
    plugin_cache: Option<PathBuf>,
    /// Compile plugins in memory at every start; read and write no cache.
    #[arg(long, conflicts_with = "plugin_cache")]
    no_plugin_cache: bool,
}

impl CacheArguments {
    /// The engine options these arguments select.
    fn engine_options(&self) -> EngineOptions {
        let cache_dir = if self.no_plugin_cache {
            None
        } else {
            self.plugin_cache
                .clone()
                .or_else(crate::plugins::default_cache_dir)
        };
        EngineOptions {
            cache_dir,
            ..EngineOptions::default()
        }
    }
}

/// Runs the command and returns the process exit code.
pub fn main(arguments: Arguments) -> ExitCode {
    // The plugin tools print a report; their logs are only for what goes wrong.
    let default_level = match arguments.command {
        Command::Plugin { .. } | Command::Plan { .. } | Command::Status { .. } => "warn",
        Command::Run { .. } | Command::Validate { .. } => "info",
    };
    init_tracing(default_level, arguments.log_format);
    let console = Console(arguments.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            console.error(&format!("starting the async runtime failed: {error}"));
            return ExitCode::from(1);
        }
    };
    let result = match arguments.command {
        Command::Run {
            config,
            mm2,
            metrics_bind,
            wait_for_clusters,
            admin,
            cache,
        } => runtime.block_on(run(
            Source::from(config, mm2),
            metrics_bind,
            wait_for_clusters,
            admin,
            cache.engine_options(),
        )),
        Command::Validate {
            config,
            mm2,
            offline,
            cache,
        } => runtime.block_on(validate::validate(
            Source::from(config, mm2),
            offline,
            cache.engine_options(),
            console,
        )),
        Command::Plan {
            config,
            mm2,
            json,
            cache,
        } => runtime.block_on(plan::plan(
            Source::from(config, mm2),
            json,
            cache.engine_options(),
            console,
        )),
        Command::Status {
            config,
            mm2,
            json,
            flow,
        } => status::status(&Source::from(config, mm2), json, flow.as_deref(), console),
        Command::Plugin {
            command:
                PluginCommand::Check {
                    plugin,
                    with,
                    source_alias,
                    target_alias,
                    topics,
                    records,
                    cache,
                },
        } => new_engine(cache.engine_options()).and_then(|engine| {
            let mut report = String::new();
            let result = plugin::check(
                &engine,
                &CheckRequest {
                    plugin,
                    with,
                    source_alias,
                    target_alias,
                    topics,
                    records,
                },
                &mut report,
            );
            print_report(&report);
            result
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            for line in failure.lines {
                console.error(&line);
            }
            ExitCode::from(failure.code)
        }
    }
}

fn init_tracing(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // Fields at the top level (`message` beside `level`), as Loki and ELK expect them.
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).init(),
    }
}

/// Where the configuration comes from.
enum Source {
    Toml(PathBuf),
    Mm2(PathBuf),
}

impl Source {
    fn from(config: Option<PathBuf>, mm2: Option<PathBuf>) -> Source {
        match (config, mm2) {
            (_, Some(path)) => Source::Mm2(path),
            (Some(path), None) => Source::Toml(path),
            // clap requires one of the two.
            (None, None) => Source::Toml(PathBuf::from("ferry.toml")),
        }
    }

    fn path(&self) -> &std::path::Path {
        match self {
            Source::Toml(path) | Source::Mm2(path) => path,
        }
    }
}

/// An enabled flow whose plugins loaded, with its policy.
type LoadedFlow = (Flow, Arc<Policy>);

/// Checks the configuration, then loads the plugins of every enabled flow that is valid, even
/// when other flows or clusters are not, so that one run reports every problem. Keys of a valid
/// MM2 file that Ferry does not use are reported once, with the reason, never dropped silently.
///
/// # Errors
///
/// Exit code 2 with every configuration and plugin problem, after the `problems` the caller
/// found first; exit code 1 if the plugin engine does not start.
fn load_checked(
    source: &Source,
    options: EngineOptions,
    mut problems: Vec<String>,
    report_unused: impl Fn(&config::mm2::UnusedKey),
) -> Result<(Config, Vec<LoadedFlow>), Failure> {
    let checked = match source {
        Source::Toml(path) => config::check(path),
        Source::Mm2(path) => {
            let (checked, unused) = config::mm2::check_mm2(path);
            for key in &unused {
                report_unused(key);
            }
            checked
        }
    };
    if !checked.errors.errors.is_empty() {
        problems.extend(checked.errors.to_string().lines().map(str::to_owned));
    }
    let (policies, plugin_problems) = load_policies(&checked.config, options)?;
    problems.extend(plugin_problems);
    if problems.is_empty() {
        Ok((checked.config, policies))
    } else {
        Err(Failure::config(problems))
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the report is the command's output, for a terminal or a pipe"
)]
fn print_report(report: &str) {
    print!("{report}");
}

fn new_engine(options: EngineOptions) -> Result<Engine, Failure> {
    Engine::with_options(options).map_err(|error| {
        Failure::runtime(format!(
            "starting the plugin engine failed: {}",
            crate::error_chain(&error)
        ))
    })
}

/// Loads the policy plugin of every enabled flow, and checks its other plugins (filters,
/// transforms, name filters) load and accept their configuration. Returns the loaded policies
/// and one line per flow whose plugins failed.
///
/// # Errors
///
/// Exit code 1 if the plugin engine does not start; no engine starts for a configuration
/// without enabled flows.
fn load_policies(
    config: &Config,
    options: EngineOptions,
) -> Result<(Vec<LoadedFlow>, Vec<String>), Failure> {
    let mut loaded = Vec::new();
    let mut problems = Vec::new();
    let mut enabled = config.flows.iter().filter(|flow| flow.enabled).peekable();
    if enabled.peek().is_none() {
        return Ok((loaded, problems));
    }
    let engine = new_engine(options)?;
    for flow in enabled {
        let policy = Policy::load(&engine, &flow.policy.uses, &flow.plugin_init(&flow.policy))
            .and_then(|policy| {
                flow::check_plugins(&engine, flow)?;
                Ok(policy)
            });
        match policy {
            Ok(policy) => loaded.push((flow.clone(), Arc::new(policy))),
            Err(error) => {
                problems.push(format!("flow {}: {}", flow.id, crate::error_chain(&error)))
            }
        }
    }
    Ok((loaded, problems))
}

/// Checks that every cluster an enabled flow uses answers a metadata request.
async fn check_clusters(config: &Config) -> Result<(), Failure> {
    let problems: Vec<String> = cluster_problems(config).await.into_values().collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            lines: problems,
        })
    }
}

/// Why each cluster an enabled flow uses does not answer a metadata request, by name; empty
/// when every one answers.
async fn cluster_problems(config: &Config) -> BTreeMap<config::ClusterName, String> {
    let mut names: Vec<&config::ClusterName> = config
        .flows
        .iter()
        .filter(|flow| flow.enabled)
        .flat_map(|flow| [&flow.source, &flow.target])
        .collect();
    names.sort();
    names.dedup();
    let mut problems = BTreeMap::new();
    for name in names {
        let Some(cluster) = config.clusters.get(name) else {
            continue;
        };
        let client = cluster.clone();
        let alias = name.to_string();
        let bootstrap = cluster.bootstrap_servers.clone();
        let answer = tokio::task::spawn_blocking(move || {
            Admin::new(&alias, &client).and_then(|admin| admin.topic_partitions().map(|_| ()))
        })
        .await;
        let problem = match answer {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => format!(
                "cluster `{name}` ({bootstrap}) is unreachable: {}",
                crate::error_chain(&error)
            ),
            Err(error) => format!("checking cluster `{name}` failed: {error}"),
        };
        problems.insert(name.clone(), problem);
    }
    problems
}

/// How often `--wait-for-clusters` checks the clusters again.
const WAIT_FOR_CLUSTERS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks the clusters of `flows` until every one answers, showing each flow that waits in its
/// readiness. Returns `false` when a signal asked the process to stop meanwhile.
async fn wait_for_clusters(
    config: &Config,
    flows: &[(Flow, Arc<Policy>, Arc<FlowHealth>)],
    signals: &mut StopSignals,
) -> bool {
    loop {
        let problems = tokio::select! {
            problems = cluster_problems(config) => problems,
            () = signals.recv() => return false,
        };
        if problems.is_empty() {
            return true;
        }
        for (flow, _, health) in flows {
            let waits_for: Vec<&str> = [&flow.source, &flow.target]
                .into_iter()
                .filter_map(|name| problems.get(name).map(String::as_str))
                .collect();
            if !waits_for.is_empty() {
                health.waiting(format!("waiting: {}", waits_for.join("; ")));
            }
        }
        tracing::warn!(problems = ?problems.values().collect::<Vec<_>>(), retry_in = ?WAIT_FOR_CLUSTERS_INTERVAL,
            "Waiting for clusters to answer before starting the flows.");
        tokio::select! {
            () = tokio::time::sleep(WAIT_FOR_CLUSTERS_INTERVAL) => {}
            () = signals.recv() => return false,
        }
    }
}

async fn run(
    source: Source,
    metrics_bind: SocketAddr,
    wait: bool,
    admin: AdminArguments,
    options: EngineOptions,
) -> Result<(), Failure> {
    // Listening from the first moment: a SIGTERM that arrives while the flows start is kept
    // and answered by a drain once they run, never by the default action (exit, no drain).
    let mut signals = StopSignals::listen();
    let mut problems = Vec::new();
    if let AdminBind(Some(address)) = admin.admin_bind
        && let Err(error) = crate::admin::check_bind(address, admin.admin_token.as_deref())
    {
        problems.push(error.to_string());
    }
    let (config, policies) = load_checked(&source, options, problems, |unused| {
        tracing::info!(key = %unused.key, line = unused.line, reason = unused.reason, "Key not used by Ferry.");
    })?;
    if !wait {
        check_clusters(&config).await?;
    }
    let metrics =
        Arc::new(Metrics::new().map_err(|error| Failure::runtime(crate::error_chain(&error)))?);
    let health = Arc::new(Health::new());
    let flows: Vec<_> = policies
        .into_iter()
        .map(|(flow, policy)| {
            let readiness = health.flow(&flow.id.to_string());
            (flow, policy, readiness)
        })
        .collect();
    let bound = Arc::clone(&metrics)
        .serve(Arc::clone(&health), metrics_bind)
        .await
        .map_err(|error| Failure::runtime(crate::error_chain(&error)))?;
    tracing::info!(address = %bound, "Metrics endpoint listening.");
    if wait && !wait_for_clusters(&config, &flows, &mut signals).await {
        tracing::info!("Stopped while waiting for clusters.");
        return Ok(());
    }
    let mut running = Vec::new();
    for (flow, policy, readiness) in flows {
        match flow::start(&config, &flow, policy, Arc::clone(&metrics), readiness).await {
            Ok(flow) => running.push(flow),
            Err(error) => {
                for flow in running {
                    flow.stop().await;
                }
                return Err(Failure::runtime(crate::error_chain(&error)));
            }
        }
    }
    if running.is_empty() {
        tracing::warn!("No flow is enabled; nothing to do.");
    }
    let plugins: Vec<_> = running.iter().map(flow::RunningFlow::plugins).collect();
    if let AdminBind(Some(address)) = admin.admin_bind {
        match crate::admin::serve(address, admin.admin_token, plugins.clone()).await {
            Ok(bound) => tracing::info!(address = %bound, "Admin endpoint listening."),
            Err(error) => {
                for flow in running {
                    flow.stop().await;
                }
                return Err(Failure::runtime(crate::error_chain(&error)));
            }
        }
    }
    crate::admin::watch(plugins, !admin.no_watch_plugins);
    signals.recv().await;
    tracing::info!("Shutting down: draining tasks and storing positions.");
    for flow in running {
        flow.stop().await;
    }
    Ok(())
}

/// SIGTERM and SIGINT, registered when made: a signal that arrives before [`StopSignals::recv`]
/// is awaited is kept for it.
struct StopSignals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn listen() -> StopSignals {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(
                    |error| tracing::warn!(%error, signal = name, "Cannot listen for a signal."),
                )
                .ok()
        };
        StopSignals {
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
            interrupt: listen(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// Waits for either signal (forever when neither could be listened for).
    async fn recv(&mut self) {
        async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = one(&mut self.terminate) => {}
            () = one(&mut self.interrupt) => {}
        }
    }
}
