//! The supervisor: launches a topology, breaks it on request, and tells what happens.
//!
//! It is an actor: one task owns every node, the link shaper, the fault tracker and the
//! reading of the cluster ([`ClusterView`]), and everything else talks to it through
//! [`Command`]s (act on the cluster, run a scenario, stop) and listens to its [`Update`]s (the
//! timeline, node facts, and a copy of the reading when it starts over) and log lines. The
//! headless run prints them; the console draws them.
//!
//! ```text
//!  commands (console keys, scenario runner, headless) ──▶ ┐
//!  node processes: READY lines, exits ──────────────────▶ ├─▶ Supervisor ──▶ updates (timeline, nodes)
//!  masters' events (subscribe, history first) ──────────▶ ┘      │  │
//!                                            LinkShaper ◀────────┘  └──▶ kill / SIGSTOP / skew …
//! ```
//!
//! Start order: masters first, each listening before anything else starts; then workers, each
//! connected through its own shaping proxy to the primary. A worker counts as started when the
//! coordinator reports it joined, which also works for outside programs that print nothing.

mod act;
pub mod faults;
pub mod launch;
pub mod logs;
mod masters;
pub mod scenario;
pub mod shaper;
mod start;
mod status;
pub mod timeline;

pub use crate::view::{NodeStatus, Process};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::client::Client;
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::node::{self, NodeControl, NodeOptions, PauseSwitch};
use crate::protocol::message::{JobId, Message};
use crate::state_dir::{Decision, RunRecord, Start};
use crate::topology::{Action, Launch, Node, NodeKind, Topology};
use crate::view::ClusterView;
use faults::{FaultRecord, FaultTracker};
use logs::{LogLine, LogSink};
use masters::{Submission, follow_master, submitter};
use shaper::LinkShaper;
use timeline::{TimelineEvent, TimelineKind};

/// How long a master may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a worker may take to join before the timeline says so.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping node may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How to run a topology.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The topology file (child processes read it too).
    pub topology_path: PathBuf,
    /// Where logs (and, later, journals) go.
    pub state_dir: PathBuf,
    /// The tcluster binary, for child processes.
    pub program: PathBuf,
    /// Seed for the link shaper's randomness.
    pub seed: u64,
    /// Whether to resume the state directory's last run or start fresh.
    pub start: Start,
}

/// What can be asked of the supervisor.
#[derive(Debug)]
pub enum Command {
    /// Do something to the cluster: a fault, a repair, a submission, a banner.
    Act(Action),
    /// Run a scenario of the topology.
    RunScenario(String),
    /// The scenario runner is done with this scenario.
    ScenarioEnded(String),
    /// Stop every node and report.
    Stop(oneshot::Sender<RunReport>),
    /// Send every node's status again (a listener that subscribed late catches up).
    Republish,
}

/// What the supervisor tells its listeners.
#[derive(Debug, Clone)]
pub enum Update {
    /// Something happened.
    Timeline(TimelineEvent),
    /// A node's facts changed (its process, what was done to it).
    Node(NodeStatus),
    /// The supervisor's reading of the cluster started over (from a master's history): the
    /// console takes this copy and goes on applying the events that follow.
    View(Arc<ClusterView>),
}

/// Jobs at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobTotals {
    /// Every job the coordinator knows, and any it lost.
    pub submitted: usize,
    /// Completed.
    pub completed: usize,
    /// Failed for good.
    pub failed: usize,
    /// Accepted, but neither completed, failed, nor still queued or running.
    pub lost: usize,
}

/// The summary of a run (`--summary-json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `SYSTEM_NAME`.
    pub system: String,
    /// The primary at the end.
    pub primary: String,
    /// Its term.
    pub term: u64,
    /// Jobs.
    pub jobs: JobTotals,
    /// Every node.
    pub nodes: Vec<NodeReport>,
    /// Every fault, with its measured detection and recovery.
    pub faults: Vec<FaultRecord>,
}

/// A node in the run's summary: its role and the cluster's verdict at the end, and what was
/// done to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    /// Its name.
    pub name: String,
    /// `master`, `worker` …
    #[serde(rename = "type")]
    pub kind: String,
    /// `primary`, `backup`, `was primary`, `worker` …
    pub role: String,
    /// The cluster's verdict: `healthy`, `dead`, `stopped` …
    pub state: String,
    /// What was done to it that still holds: `paused`, `killed`, `1 link cut` …
    pub tags: Vec<String>,
}

/// Why a topology could not be launched.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The state directory could not be made.
    #[error("cannot create the state directory {}: {source}", path.display())]
    StateDir {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A node could not be started.
    #[error("cannot start {node}: {reason}")]
    Node {
        /// Which.
        node: String,
        /// Why, with its last log lines.
        reason: String,
    },
    /// The topology has no master to run.
    #[error("the topology has no master: there is no cluster to run")]
    NoMaster,
    /// The state directory cannot be used.
    #[error("{0}")]
    InUse(#[from] crate::state_dir::StateDirError),
}

/// A running topology.
pub struct SupervisorHandle {
    /// Where to send commands.
    pub commands: mpsc::Sender<Command>,
    /// Timeline and node updates.
    pub updates: broadcast::Sender<Update>,
    /// Every log line of every node.
    pub logs: broadcast::Sender<LogLine>,
    /// The primary's real address.
    pub coordinator: SocketAddr,
    /// When the run began.
    pub started: Instant,
    /// The nodes as they were when the launch finished.
    pub nodes: Vec<NodeStatus>,
    /// The primary when the launch finished, and its term.
    pub primary: (String, u64),
    /// Whether this run is fresh (and where an earlier run's state went) or resumes one.
    pub start: Decision,
    /// The links, to read their state and watch the messages they carry.
    pub shaper: LinkShaper,
    /// What was published since the launch began, for the first [`SupervisorHandle::watch`].
    first: std::sync::Mutex<Option<(broadcast::Receiver<Update>, broadcast::Receiver<LogLine>)>>,
    task: tokio::task::JoinHandle<()>,
}

impl SupervisorHandle {
    /// The updates and the log lines: the first call gets everything since the launch began,
    /// later calls what comes from now on.
    pub fn watch(&self) -> (broadcast::Receiver<Update>, broadcast::Receiver<LogLine>) {
        let first = self.first.lock().ok().and_then(|mut first| first.take());
        first.unwrap_or_else(|| (self.updates.subscribe(), self.logs.subscribe()))
    }

    /// Stops every node and returns the report.
    pub async fn stop(self) -> Option<RunReport> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stop(tx)).await.ok()?;
        let report = rx.await.ok();
        let _ = self.task.await;
        report
    }
}

/// How a node is running.
enum Running {
    Process {
        pid: u32,
        stdin: Option<ChildStdin>,
    },
    Inproc {
        shutdown: CancellationToken,
        pause: PauseSwitch,
    },
}

struct Managed {
    node: Node,
    generation: u64,
    running: Option<Running>,
    control: NodeControl,
    /// Where a master listens.
    address: Option<String>,
    /// Where a worker or bot connects (its links to the masters); a server's links to its peers.
    connect_to: Option<String>,
    /// A bot's links to the chat servers.
    chat_links: Option<String>,
    ready: bool,
    paused: bool,
    restart_pending: bool,
    /// The operator killed it (an in-process node then reports "aborted").
    killed: bool,
    exited: bool,
    /// How its process ended, the last time it did.
    exit: Option<String>,
    launched_at: Instant,
    stopped: bool,
}

/// What the supervisor's own tasks tell it.
enum Internal {
    Ready {
        node: String,
        generation: u64,
        address: String,
    },
    Exited {
        node: String,
        generation: u64,
        status: String,
    },
    Cluster {
        /// The master it came from.
        from: String,
        /// The event.
        event: ClusterEvent,
    },
    /// A master's history, at the start of a subscription.
    History {
        /// The master.
        from: String,
        /// Its durable events so far.
        events: Vec<ClusterEvent>,
    },
    /// The primary acknowledged these jobs to the operator.
    Accepted(Vec<JobId>),
}

struct Supervisor {
    topology: Topology,
    options: RunOptions,
    started: Instant,
    nodes: BTreeMap<String, Managed>,
    order: Vec<String>,
    /// The cluster as its events tell it: the primary, its term, jobs, workers, verdicts.
    view: ClusterView,
    primary_addr: Option<SocketAddr>,
    /// Per master: a way to make its subscription start over (and bring its history again).
    resubscribe: BTreeMap<String, mpsc::UnboundedSender<()>>,
    /// This run resumes an earlier one (with its record, if it left one); said once the
    /// primary's history is read.
    resumed: Option<Option<RunRecord>>,
    /// What `run.json` says of this run.
    record: RunRecord,
    shaper: LinkShaper,
    tracker: FaultTracker,
    updates: broadcast::Sender<Update>,
    sink: LogSink,
    internal: mpsc::UnboundedSender<Internal>,
    /// Submissions, carried out in order by the submitter task.
    submits: mpsc::UnboundedSender<Submission>,
    /// The supervisor's own command queue, for the scenario runner (weak, so that dropping
    /// every handle still ends the supervisor).
    commands: Option<mpsc::WeakSender<Command>>,
    /// Jobs the primary acknowledged to the operator: these must never be lost.
    acknowledged: BTreeSet<JobId>,
    shutdown: CancellationToken,
}

/// Launches `topology`: every master listening, every worker started. Returns once the masters
/// are ready; workers join while the run goes on.
pub async fn launch(
    topology: Topology,
    options: RunOptions,
) -> Result<SupervisorHandle, LaunchError> {
    let decision = crate::state_dir::prepare(&options.state_dir, options.start)?;
    std::fs::create_dir_all(options.state_dir.join("logs")).map_err(|source| {
        LaunchError::StateDir {
            path: options.state_dir.clone(),
            source,
        }
    })?;
    let mut primary = topology
        .primary()
        .ok_or(LaunchError::NoMaster)?
        .name
        .clone();
    // After a failover the primary is whoever took over last, as the journals say: it starts
    // first, so the others find it and follow.
    let mut newest_term = 0;
    for master in topology.nodes_of(NodeKind::Master) {
        let path = crate::journal::path_for(&options.state_dir, &master.name);
        if !path.exists() {
            continue;
        }
        if let Ok((journal, events)) = crate::journal::Journal::open(&path) {
            drop(journal);
            if let Some((name, term)) = crate::journal::last_takeover(&events)
                && term > newest_term
                && topology
                    .node(&name)
                    .is_some_and(|n| n.kind == NodeKind::Master)
            {
                newest_term = term;
                primary = name;
            }
        }
    }
    let started = Instant::now();
    // Receivers from the start: what the launch itself publishes (a resumed run said, nodes
    // starting) reaches the first watcher, however late it subscribes.
    let (updates, first_updates) = broadcast::channel(16_384);
    let (log_updates, first_logs) = broadcast::channel(16_384);

    let sink = LogSink::start(options.state_dir.join("logs"), log_updates.clone(), started);
    let shutdown = CancellationToken::new();
    let declared = topology
        .connections
        .iter()
        .map(|c| (c.from.clone(), c.to.clone(), c.link.clone()));
    let shaper = LinkShaper::new(declared, options.seed, shutdown.clone());
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let order: Vec<String> = NodeKind::ALL
        .iter()
        .flat_map(|kind| {
            let mut of_kind: Vec<&Node> = topology.nodes_of(*kind).collect();
            // The primary first among masters.
            of_kind.sort_by_key(|n| n.name != primary);
            of_kind
                .into_iter()
                .map(|n| n.name.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let nodes = order
        .iter()
        .filter_map(|name| topology.node(name))
        .map(|node| {
            let managed = Managed {
                node: node.clone(),
                generation: 0,
                running: None,
                control: NodeControl::default(),
                address: None,
                connect_to: None,
                chat_links: None,
                ready: false,
                paused: false,
                restart_pending: false,
                killed: false,
                exited: false,
                exit: None,
                launched_at: started,
                stopped: false,
            };
            (node.name.clone(), managed)
        })
        .collect();
    let submits = {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(submitter(
            rx,
            topology.globals.cluster_secret.clone(),
            updates.clone(),
            internal_tx.clone(),
            started,
        ));
        tx
    };
    let mut supervisor = Supervisor {
        topology,
        options,
        started,
        nodes,
        order,
        view: ClusterView::new(&primary, newest_term, false),
        primary_addr: None,
        resubscribe: BTreeMap::new(),
        resumed: match &decision {
            Decision::Resume { earlier, .. } => Some(earlier.clone()),
            Decision::Fresh { .. } => None,
        },
        record: RunRecord::begin(),
        shaper,
        tracker: FaultTracker::default(),
        updates: updates.clone(),
        sink,
        internal: internal_tx,
        submits,
        commands: None,
        acknowledged: BTreeSet::new(),
        shutdown,
    };
    let mut internal_rx = internal_rx;
    if let Err(e) = supervisor.start_all(&mut internal_rx).await {
        supervisor.stop_all().await;
        return Err(e);
    }
    let coordinator = supervisor.primary_addr.ok_or(LaunchError::NoMaster)?;
    supervisor.write_record();
    let nodes = supervisor.statuses();
    let primary = (supervisor.view.primary.clone(), supervisor.view.term);

    let shaper = supervisor.shaper.clone();
    let (commands, commands_rx) = mpsc::channel(256);
    supervisor.commands = Some(commands.downgrade());
    let task = tokio::spawn(supervisor.run(commands_rx, internal_rx));
    Ok(SupervisorHandle {
        commands,
        updates,
        logs: log_updates,
        coordinator,
        started,
        nodes,
        primary,
        start: decision,
        shaper,
        first: std::sync::Mutex::new(Some((first_updates, first_logs))),
        task,
    })
}

impl Supervisor {
    pub(super) fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn timeline(&self, source: &str, kind: TimelineKind) {
        let event = TimelineEvent {
            at_ms: self.now(),
            source: source.to_string(),
            kind,
        };
        let _ = self.updates.send(Update::Timeline(event));
    }

    pub(super) fn note(&self, text: impl Into<String>) {
        self.timeline("supervisor", TimelineKind::Note { text: text.into() });
    }

    // ----- the loop -----

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::UnboundedReceiver<Internal>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Act(action)) => self.act(action).await,
                    Some(Command::RunScenario(name)) => self.run_scenario(&name),
                    Some(Command::Republish) => {
                        let _ = self.updates.send(Update::View(Arc::new(self.view.clone())));
                        for name in self.order.clone() {
                            self.publish(&name);
                        }
                    }
                    Some(Command::ScenarioEnded(name)) => {
                        self.timeline("scenario", TimelineKind::ScenarioEnded { name });
                    }
                    Some(Command::Stop(reply)) => {
                        let report = self.report().await;
                        self.stop_all().await;
                        self.record.ended = true;
                        self.write_record();
                        let _ = reply.send(report);
                        return;
                    }
                    None => {
                        self.stop_all().await;
                        return;
                    }
                },
                Some(message) = internal.recv() => self.internal_message(message).await,
                _ = tick.tick() => {
                    let now = self.now();
                    for kind in self.tracker.settle(now) {
                        self.timeline("supervisor", kind);
                    }
                    let late: Vec<String> = self
                        .nodes
                        .iter()
                        .filter(|(_, m)| m.node.kind == NodeKind::Worker && !m.ready && !m.exited && m.running.is_some() && m.launched_at.elapsed() > JOIN_TIMEOUT)
                        .map(|(n, _)| n.clone())
                        .collect();
                    for name in late {
                        if let Some(m) = self.nodes.get_mut(&name) {
                            m.launched_at = Instant::now();
                        }
                        self.note(format!("{name} has not joined the coordinator after {JOIN_TIMEOUT:?}; see its log"));
                    }
                }
            }
        }
    }

    async fn internal_message(&mut self, message: Internal) {
        match message {
            Internal::Ready {
                node,
                generation,
                address,
            } => {
                let Some(m) = self.nodes.get_mut(&node) else {
                    return;
                };
                if m.generation != generation {
                    return;
                }
                m.ready = true;
                let now = self.now();
                for kind in self.tracker.up(now, &node) {
                    self.timeline("supervisor", kind);
                }
                let Some(m) = self.nodes.get_mut(&node) else {
                    return;
                };
                if m.node.listens() {
                    m.address = Some(address.clone());
                    if let Ok(addr) = address.parse() {
                        self.shaper.set_address(&node, addr);
                    }
                    let pid = match &m.running {
                        Some(Running::Process { pid, .. }) => Some(*pid),
                        _ => None,
                    };
                    self.timeline(
                        &node,
                        TimelineKind::Note {
                            text: format!(
                                "{node} listening on {address}{}",
                                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                            ),
                        },
                    );
                }
                self.publish(&node);
            }
            Internal::Exited {
                node,
                generation,
                status,
            } => {
                let Some(m) = self.nodes.get_mut(&node) else {
                    return;
                };
                if m.generation != generation {
                    return;
                }
                m.running = None;
                m.exited = true;
                m.exit = Some(status.clone());
                let restart = std::mem::take(&mut m.restart_pending);
                let stopped = m.stopped;
                let status = if m.killed
                    && matches!(m.node.launch, Launch::Inproc)
                    && m.node.command.is_none()
                {
                    "aborted".to_string()
                } else {
                    status
                };
                if !stopped {
                    self.timeline(
                        &node,
                        TimelineKind::NodeExited {
                            node: node.clone(),
                            status,
                        },
                    );
                }
                self.publish(&node);
                if restart && let Err(e) = self.start_node(&node).await {
                    self.note(format!("restart failed: {e}"));
                }
            }
            Internal::Accepted(jobs) => self.acknowledged.extend(jobs),
            Internal::Cluster { from, event } => {
                if !self.view.accepts(&from, &event) {
                    return;
                }
                let takeover = match &event.kind {
                    EventKind::Takeover { coordinator, .. }
                        if *coordinator != self.view.primary =>
                    {
                        Some(coordinator.clone())
                    }
                    _ => None,
                };
                self.cluster_event(&from, event);
                if let Some(primary) = takeover {
                    self.new_primary(&primary);
                }
            }
            Internal::History { from, events } => {
                if from != self.view.primary {
                    return;
                }
                self.view.resync(&events);
                let _ = self.updates.send(Update::View(Arc::new(self.view.clone())));
                if let Some(earlier) = self.resumed.take() {
                    let counts = self.view.state.counts;
                    self.timeline(
                        "supervisor",
                        TimelineKind::Resumed {
                            began: earlier.map(|r| r.time_of_day().to_string()),
                            jobs: counts.total(),
                            completed: counts.completed,
                            primary: self.view.primary.clone(),
                            term: self.view.term,
                        },
                    );
                }
                for name in self.order.clone() {
                    self.publish(&name);
                }
            }
        }
    }

    /// An event the cluster's story is made of (see [`ClusterView::accepts`]).
    fn cluster_event(&mut self, from: &str, event: ClusterEvent) {
        let now = self.now();
        self.view.apply(now, &event);
        // A worker counts as started once the coordinator says it joined (an outside program
        // prints nothing to say so).
        if let EventKind::WorkerJoined { worker, .. } | EventKind::WorkerRejoined { worker, .. } =
            &event.kind
            && let Some(m) = self.nodes.get_mut(worker)
            && !m.ready
            && m.running.is_some()
        {
            m.ready = true;
            let worker = worker.clone();
            self.publish(&worker);
        }
        let completed = self.tracker.observe(now, from, &event);
        self.timeline(from, TimelineKind::Cluster { event });
        for kind in completed {
            self.timeline("supervisor", kind);
        }
    }

    /// Another master took over: submissions go to it, its history becomes the reading (it
    /// may lack what the old primary never replicated), and `run.json` says so.
    fn new_primary(&mut self, primary: &str) {
        if let Some(addr) = self
            .nodes
            .get(primary)
            .and_then(|m| m.address.as_ref())
            .and_then(|a| a.parse().ok())
        {
            self.primary_addr = Some(addr);
        }
        if let Some(resubscribe) = self.resubscribe.get(primary) {
            let _ = resubscribe.send(());
        }
        self.write_record();
        for name in self.order.clone() {
            self.publish(&name);
        }
    }

    /// Writes `run.json`: this run, where its servers listen, and its primary.
    pub(super) fn write_record(&mut self) {
        self.record.servers = self
            .nodes
            .iter()
            .filter_map(|(name, m)| Some((name.clone(), m.address.clone()?)))
            .collect();
        self.record.primary = self.view.primary.clone();
        if let Err(e) = self.record.write(&self.options.state_dir) {
            warn!("{e}");
        }
    }
}
