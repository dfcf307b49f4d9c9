//! `tcluster run TOPOLOGY --headless`: the whole cluster without a screen.
//!
//! It launches the topology, runs the scenario if one is named, prints every timeline event as
//! it happens (one line each), stops everything at the end, and writes the summary.
//!
//! When does it end? After `--for` if given. Otherwise, with a scenario, once the scenario has
//! ended and every job has completed or failed (waiting at most a minute for them); without a
//! scenario, at Ctrl-C (or SIGTERM, SIGHUP). Exit status: 0 when the run itself worked, even if
//! jobs failed; 1 when the cluster could not be started.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::client::Client;
use crate::logging::{self, LogFormat};
use crate::protocol::message::Message;
use crate::supervisor::feed::{Feed, Stamped};
use crate::supervisor::timeline::{TimelineEvent, TimelineKind};
use crate::supervisor::{self, RunOptions, RunReport, Update};
use crate::topology::diagnostic::did_you_mean;
use crate::topology::units::{format_duration, parse_duration};
use crate::topology::{LogLevel, Topology};

/// How long a run with a scenario waits for its jobs after the scenario ends.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// `tcluster run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The topology file.
    #[arg(value_name = "TOPOLOGY")]
    pub topology: PathBuf,

    /// Run without the console, printing the timeline (`tcluster TOPOLOGY` opens the console).
    #[arg(long)]
    pub headless: bool,

    /// Run this scenario of the topology.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,

    /// Stop after this long (`30s`, `2m`).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Write the run's summary as JSON here.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Where logs go (default: the topology's STATE_DIR, else $XDG_STATE_HOME/tcluster/<system>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Print every node's log lines too.
    #[arg(long)]
    pub logs: bool,

    /// How to treat the state directory's last run (default: resume it if it did not end).
    #[command(flatten)]
    pub start: StartArgs,
}

/// `--fresh`, `--resume` and `--shaping`, for the console and the headless run.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct StartArgs {
    /// Start a fresh cluster even if the last run did not end (its state is moved aside to
    /// STATE_DIR/previous/, not deleted).
    #[arg(long, conflicts_with = "resume")]
    pub fresh: bool,

    /// Resume the last run even if it ended (its jobs and chat history are kept).
    #[arg(long)]
    pub resume: bool,

    /// Where the faults of links between tcluster's own nodes are applied: by the node at the
    /// link's client end (nodes), or by a proxy in tcluster (proxies). The same faults either
    /// way; links of outside programs, of nodes on other machines or in tcluster's own process,
    /// and between masters always go through proxies.
    #[arg(long, value_enum, default_value_t)]
    pub shaping: crate::supervisor::Shaping,
}

impl StartArgs {
    /// What the flags ask for.
    pub fn start(self) -> crate::state_dir::Start {
        use crate::state_dir::Start;
        match (self.fresh, self.resume) {
            (true, _) => Start::Fresh,
            (_, true) => Start::Resume,
            _ => Start::Auto,
        }
    }
}

/// Runs `tcluster run`.
pub fn run(args: RunArgs) -> ExitCode {
    let Some((topology, _)) = super::check::load(&args.topology) else {
        return ExitCode::from(1);
    };
    if !args.headless {
        eprintln!(
            "error: `tcluster run` is the run without a screen: add --headless (for the console, run `tcluster {}`)",
            args.topology.display()
        );
        return ExitCode::from(2);
    }
    if let Some(name) = &args.scenario
        && topology.scenario(name).is_none()
    {
        let names: Vec<&str> = topology.scenarios.iter().map(|s| s.name.as_str()).collect();
        let hint =
            did_you_mean(name, names.iter().copied()).unwrap_or_else(|| match names.as_slice() {
                [] => "the topology has no scenarios".to_string(),
                names => format!("its scenarios: {}", names.join(", ")),
            });
        eprintln!(
            "error: no scenario named `{name}` in {}: {hint}",
            args.topology.display()
        );
        return ExitCode::from(1);
    }
    // tcluster's own messages; nodes log into their files.
    logging::init(LogLevel::Warn, LogFormat::Text);
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| default_state_dir(&topology));
    let Some(program) = this_program() else {
        return ExitCode::from(1);
    };
    let options = RunOptions {
        topology_path: args.topology.clone(),
        state_dir: state_dir.clone(),
        program,
        seed: crate::node::seed_from_env(),
        start: args.start.start(),
        shaping: args.start.shaping,
        job_histories: false,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(headless(topology, options, args))
}

/// The tcluster binary, to start nodes with (says why not, if it cannot be found).
pub fn this_program() -> Option<PathBuf> {
    std::env::current_exe()
        .map_err(|e| eprintln!("error: cannot find the tcluster binary to start nodes: {e}"))
        .ok()
}

/// `$XDG_STATE_HOME/tcluster/<system>`, or the topology's `STATE_DIR`.
pub fn default_state_dir(topology: &Topology) -> PathBuf {
    if let Some(dir) = &topology.globals.state_dir {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    let system: String = topology
        .globals
        .system_name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("tcluster").join(system)
}

async fn headless(topology: Topology, options: RunOptions, args: RunArgs) -> ExitCode {
    let secret = topology.globals.cluster_secret.clone();
    let system = topology.globals.system_name.clone();
    let state_dir = options.state_dir.clone();
    // Each cluster's primary, as the topology names it, and the cluster of each master.
    let clusters: Vec<(String, String, bool)> = topology
        .nodes_of(crate::topology::NodeKind::Master)
        .map(|n| {
            let primary = topology.primary_of(&n.cluster).map(|p| &p.name) == Some(&n.name);
            (n.name.clone(), n.cluster.clone(), primary)
        })
        .collect();
    let handle = match supervisor::launch(topology, options).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut feed = handle.feed();
    // Every master, by cluster: after a failover the primary is another one.
    let mut masters: Vec<Vec<String>> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (_, cluster, _) in &clusters {
        if seen.contains(&cluster.as_str()) {
            continue;
        }
        seen.push(cluster);
        let of_cluster = handle
            .nodes
            .iter()
            .filter(|n| {
                clusters
                    .iter()
                    .any(|(m, c, _)| *m == n.name && c == cluster)
            })
            .filter_map(|n| n.address.clone())
            .collect();
        masters.push(of_cluster);
    }
    print_launch(&handle, &system, &state_dir, &clusters);
    if let Some(name) = &args.scenario {
        let _ = handle
            .commands
            .send(supervisor::Request::RunScenario(name.clone()))
            .await;
    }
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let stop_signal = stop_signal();
    tokio::pin!(stop_signal);
    let mut scenario_over = false;
    let mut settle_until = None;
    // Without workers no job ever ends: the run stops with its scenario.
    let no_workers = !handle.nodes.iter().any(|n| n.kind == "worker");
    let mut check = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            item = feed.recv() => match item {
                Ok(item) => {
                    if let Some(event) = show(&item, args.logs)
                        && let TimelineKind::ScenarioEnded { name } = &event.kind
                        && args.scenario.as_ref() == Some(name)
                    {
                        scenario_over = true;
                        settle_until = Some(tokio::time::Instant::now() + SETTLE_LIMIT);
                    }
                }
                Err(RecvError::Lagged(n)) => outln!("(…{n} items of the run not shown: the terminal is slower than the cluster)"),
                Err(RecvError::Closed) => break,
            },
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                outln!("-- {} have passed: stopping", format_duration(args.duration.unwrap_or_default()));
                break;
            }
            _ = check.tick(), if scenario_over && deadline.is_none() => {
                if no_workers {
                    outln!("-- the scenario is over (no worker will run its jobs): stopping");
                    break;
                }
                if handle.submissions_in_flight() == 0
                    && handle.loans_open() == 0
                    && open_jobs(&masters, secret.as_deref()).await == Some(0)
                {
                    outln!("-- the scenario is over and every job has ended: stopping");
                    break;
                }
                if settle_until.is_some_and(|t| tokio::time::Instant::now() > t) {
                    outln!("-- jobs still open {} after the scenario: stopping", format_duration(SETTLE_LIMIT));
                    break;
                }
            }
            _ = &mut stop_signal => {
                outln!("-- interrupted: stopping");
                break;
            }
        }
    }
    catch_up(&mut feed, args.logs).await;
    let report = handle.stop().await;
    // Events that arrived while stopping are part of the run: show them.
    while let Ok(item) = feed.try_recv() {
        show(&item, args.logs);
    }
    let Some(report) = report else {
        eprintln!("error: the supervisor ended without a report");
        return ExitCode::from(1);
    };
    print_report(&report);
    if let Some(path) = &args.summary_json
        && let Err(e) = write_summary(path, &report)
    {
        eprintln!("error: cannot write the summary to {}: {e}", path.display());
        return ExitCode::from(1);
    }
    // A scenario that promised what the cluster did not do: a failed run, said by status 3.
    let missed = report.expectations.iter().filter(|e| !e.ok).count();
    if missed > 0 {
        eprintln!("error: {missed} of the scenario's expectations did not hold");
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

/// The run's first lines: the system, where the primary listens, each node and the state.
fn print_launch(
    handle: &supervisor::SupervisorHandle,
    system: &str,
    state_dir: &std::path::Path,
    masters: &[(String, String, bool)],
) {
    // The main cluster's primary is the one the launch found; another cluster's, the
    // topology's.
    let main = masters
        .iter()
        .find(|(n, _, _)| *n == handle.primary.0)
        .map(|(_, c, _)| c.clone());
    let primary = |name: &str| {
        name == handle.primary.0
            || masters
                .iter()
                .any(|(n, c, p)| n == name && *p && Some(c) != main.as_ref())
    };
    let serving = match handle.coordinator {
        Some(addr) => format!("coordinator on {addr}"),
        None => "no masters (the chat servers elect a time master)".to_string(),
    };
    outln!(
        "{system}: {} nodes; {serving}; logs in {}",
        handle.nodes.len(),
        state_dir.join("logs").display()
    );
    for node in &handle.nodes {
        let pid = node.pid.map(|p| format!(" pid {p}")).unwrap_or_default();
        let address = node
            .address
            .as_deref()
            .map(|a| format!(" on {a}"))
            .unwrap_or_default();
        let role = match node.kind.as_str() {
            "master" if primary(&node.name) => "primary",
            "master" => "backup",
            kind => kind,
        };
        outln!(
            "   {:<14} {:<8} {}{pid}{address}",
            node.name,
            role,
            node.process.as_str()
        );
    }
    outln!("   {}", handle.start.describe(state_dir));
    outln!(
        "   recording in {} (tcluster replay {})",
        handle.recording.display(),
        state_dir.display()
    );
}

/// Lets the timeline catch up with the cluster before stopping it: on a busy machine the
/// events of the last seconds may still be on their way (shown until no timeline event has
/// come for 0.5 s, at most 10 s).
async fn catch_up(feed: &mut Receiver<Arc<Stamped>>, logs: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut quiet = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(item) = tokio::time::timeout_at(quiet.min(deadline), feed.recv()).await {
        match item {
            Ok(item) => {
                if show(&item, logs).is_some() {
                    quiet = tokio::time::Instant::now() + Duration::from_millis(500);
                }
            }
            Err(RecvError::Lagged(n)) => {
                outln!("(…{n} items of the run not shown: the terminal is slower than the cluster)")
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Prints what a headless run shows of a feed item: a timeline event, or with `--logs` a log
/// line. Returns the timeline event, if it was one.
fn show(item: &Stamped, logs: bool) -> Option<&TimelineEvent> {
    match &item.feed {
        Feed::Update(Update::Timeline(event)) => {
            print_event(event);
            Some(event)
        }
        Feed::Log(line) if logs => {
            outln!(
                "{:8.3}s  {:<12}  [{}] {}",
                line.at_ms as f64 / 1000.0,
                line.node,
                line.level.as_str(),
                line.text
            );
            None
        }
        _ => None,
    }
}

/// Prints one timeline event, if a timeline shows it.
fn print_event(event: &crate::supervisor::timeline::TimelineEvent) {
    if event.kind.is_shown() {
        outln!("{event}");
    }
}

/// Jobs queued, assigned or running, as the primary (whichever master it is now) reports.
async fn open_jobs(clusters: &[Vec<String>], secret: Option<&str>) -> Option<usize> {
    let mut open = 0;
    for masters in clusters {
        open += cluster_open_jobs(masters, secret).await?;
    }
    Some(open)
}

/// Jobs open in one cluster, as its primary (whichever of `masters` it is now) reports.
async fn cluster_open_jobs(masters: &[String], secret: Option<&str>) -> Option<usize> {
    for addr in masters {
        let Ok(mut client) = Client::connect(addr, "headless", secret).await else {
            continue;
        };
        if let Ok(Message::StatusReport { report }) =
            client.request(Message::Status { job: None }).await
            && report.role == "primary"
        {
            return Some(report.jobs.queued + report.jobs.assigned + report.jobs.running);
        }
    }
    None
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

fn print_report(report: &RunReport) {
    out!("{report}");
}

fn write_summary(path: &Path, report: &RunReport) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, json + "\n")
}
