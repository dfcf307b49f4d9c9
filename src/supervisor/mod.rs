//! The supervisor: launches a topology, breaks it on request, and tells what happens.
//!
//! It is an actor: one task owns every node, the link shaper, the fault tracker and the
//! reading of the cluster ([`ClusterView`]), and everything else talks to it through
//! [`Request`]s (act on the cluster, run a scenario, stop) and listens to its [`Update`]s (the
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
mod alarms;
pub mod child;
mod clusters;
mod expect;
pub mod faults;
pub mod feed;
mod handle;
mod hosts;
mod links;
pub mod logs;
pub mod record;
pub mod remote;
mod report;
pub mod scenario;
mod secure;
mod start;
pub mod timeline;
mod watch;

pub use crate::view::{NodeStatus, Process};
pub use clusters::ClusterReport;
pub use expect::ExpectationRecord;
pub use handle::{LaunchError, SupervisorHandle, launch};
pub use report::{JobTotals, NodeReport, RunReport};

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
use crate::shaper::LinkShaper;
use crate::state_dir::{Decision, RunRecord, Start};
use crate::topology::{ClusterAction, Launch, Node, NodeKind, Topology};
use crate::view::{ClusterView, Reading};
use faults::{FaultRecord, FaultTracker};
use logs::LogSink;
use timeline::{TimelineEvent, TimelineKind};
use watch::{Submission, follow_master, submitter};

/// How long a master may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node on another machine may take to start there (ssh connects, the topology is
/// sent, the node says its process id).
const SSH_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often tcluster tries again to reach a host whose ssh session ended.
const RECONNECT_EVERY: Duration = Duration::from_secs(2);
/// How long a worker may take to join before the timeline says so.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping node may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How to run a topology.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The topology file (child processes read it too).
    pub topology_path: PathBuf,
    /// Where journals, chat histories, logs and `run.json` go.
    pub state_dir: PathBuf,
    /// The tcluster binary, for child processes.
    pub program: PathBuf,
    /// Seed for the link shaper's randomness.
    pub seed: u64,
    /// Whether to resume the state directory's last run or start fresh.
    pub start: Start,
    /// Where the faults of links between tcluster's own nodes are applied.
    pub shaping: Shaping,
    /// Whether the reading keeps each job's history (the console shows it; a headless run
    /// does not need it).
    pub job_histories: bool,
}

/// Where the faults of a link are applied (latency, loss, cuts, held messages): the same rules
/// either way ([`crate::shaper`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Shaping {
    /// By the node at the link's client end, when it is one of tcluster's own in a process of
    /// its own on this machine: its messages cross the loopback once and the launcher carries
    /// none of them. Other links go through the launcher's proxies.
    #[default]
    Nodes,
    /// By a proxy in the launcher for every link.
    Proxies,
}

/// What can be asked of the supervisor.
#[derive(Debug)]
pub enum Request {
    /// Do something to the cluster: a fault, a repair, a submission, a banner.
    Act(ClusterAction),
    /// Run a scenario of the topology.
    RunScenario(String),
    /// The scenario runner is done with this scenario.
    ScenarioEnded(String),
    /// Stop every node and report.
    Stop(oneshot::Sender<RunReport>),
    /// For a recording's new segment: the reading as it is now (handed back, not broadcast:
    /// the console has it already), and every node's status again on the feed.
    Republish(oneshot::Sender<Arc<ClusterView>>),
}

/// What the supervisor reports, into the feed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "update", content = "of", rename_all = "snake_case")]
pub enum Update {
    /// Something happened.
    /// Shared: every listener (the feed, the recorder, the console, a headless run) reads the
    /// same one.
    Timeline(Arc<TimelineEvent>),
    /// A node's facts changed (its process, what was done to it).
    Node(NodeStatus),
    /// The supervisor's reading of the cluster started over (from a master's history): the
    /// console takes this copy and goes on applying the events that follow.
    View(Arc<ClusterView>),
}

/// How a node is running.
enum RunningAs {
    Process {
        pid: u32,
        stdin: Option<ChildStdin>,
    },
    Inproc {
        shutdown: CancellationToken,
        pause: PauseSwitch,
    },
}

struct SupervisedNode {
    node: Node,
    generation: u64,
    running: Option<RunningAs>,
    control: NodeControl,
    /// Where a master listens.
    address: Option<String>,
    /// Where a worker or bot connects (its links to the masters); a server's links to its peers.
    connect_to: Option<String>,
    /// A bot's links to the chat servers.
    chat_links: Option<String>,
    /// It applies the faults of some of its links itself (`--shaping nodes`).
    shapes_links: bool,
    ready: bool,
    paused: bool,
    restart_pending: bool,
    /// The operator killed it (an in-process node then reports "aborted").
    killed: bool,
    exited: bool,
    /// How its process ended, the last time it did.
    exit: Option<String>,
    /// On another host: its signals, once it said its process group there.
    signals: Option<remote::Signals>,
    /// On another host: where its node runs there, and how much of its output was read.
    attachment: remote::Attachment,
    launched_at: Instant,
    stopped: bool,
}

impl SupervisedNode {
    /// A node of the topology, not started yet.
    fn new(node: &Node, launched_at: Instant) -> Self {
        SupervisedNode {
            node: node.clone(),
            generation: 0,
            running: None,
            control: NodeControl::default(),
            address: None,
            connect_to: None,
            chat_links: None,
            shapes_links: false,
            ready: false,
            paused: false,
            restart_pending: false,
            killed: false,
            exited: false,
            exit: None,
            signals: None,
            attachment: Default::default(),
            launched_at,
            stopped: false,
        }
    }
}

/// What the supervisor's own tasks tell it.
enum TaskNews {
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
    /// Events of a master, in order (as many as had arrived together).
    Cluster {
        /// The master they came from.
        from: String,
        events: Vec<ClusterEvent>,
    },
    /// A master's history, at the start of a subscription.
    History {
        /// The master.
        from: String,
        /// Its durable events so far.
        events: Vec<ClusterEvent>,
    },
    /// Time to try again to start a node whose host was out of reach.
    Reconnect { node: String, generation: u64 },
    /// A node on another host: its session said where the node runs there.
    RemoteDir {
        node: String,
        generation: u64,
        dir: String,
    },
    /// A node on another host: a new session found its node running on.
    Reattached { node: String, generation: u64 },
    /// A control line for a node that shapes its own links (a change of their rules).
    LinkControl { node: String, line: String },
    /// A node on another host said its process id there (its process group).
    RemotePid {
        node: String,
        generation: u64,
        pid: u32,
    },
    /// The primary of a cluster (`None`: the main one) acknowledged these jobs to the operator.
    Accepted(Option<String>, Vec<JobId>),
    /// A chat server's entries and users as last read (`None`: it did not answer).
    ChatEntries {
        server: String,
        entries: Option<(u64, u64)>,
    },
}

struct Supervisor {
    topology: Topology,
    /// The same topology, shared with the nodes that run in this process (made at their first
    /// start: the launch sets the run's peer secret in it first).
    shared_topology: Option<std::sync::Arc<Topology>>,
    options: RunOptions,
    started: Instant,
    nodes: BTreeMap<String, SupervisedNode>,
    order: Vec<String>,
    /// The cluster as its events tell it: the primary, its term, jobs, workers, verdicts.
    view: Reading,
    primary_addr: Option<SocketAddr>,
    /// The other clusters of a topology with several, each read from its own primary.
    others: BTreeMap<String, clusters::OtherCluster>,
    /// Loans of workers between clusters, read from every cluster's events.
    loans: crate::view::Loans,
    /// How many of them are not over (for the headless run's end).
    loans_open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Per master: a way to make its subscription start over (and bring its history again).
    resubscribe: BTreeMap<String, mpsc::UnboundedSender<()>>,
    /// Per master, the clock of the newest event heard live from it.
    last_live: BTreeMap<String, u64>,
    /// Masters whose subscription has begun (their history arrived).
    subscribed: BTreeSet<String>,
    /// This run resumes an earlier one (with its record, if it left one); said once the
    /// primary's history is read.
    resumed: Option<Option<RunRecord>>,
    /// What `run.json` says of this run.
    record: RunRecord,
    shaper: LinkShaper,
    /// Encrypted links: the certificates, and the servers' real addresses trusted.
    tls: secure::LaunchTls,
    /// The cluster's pace (slow motion): in-process nodes share it, processes are told.
    pace: crate::clock::Pace,
    tracker: FaultTracker,
    updates: feed::News<Update>,
    sink: LogSink,
    internal: mpsc::UnboundedSender<TaskNews>,
    /// Submissions, carried out in order by the submitter task.
    submits: mpsc::UnboundedSender<Submission>,
    /// Submissions handed to the submitter and not yet answered.
    submits_in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The supervisor's own command queue, for the scenario runner (weak, so that dropping
    /// every handle still ends the supervisor).
    commands: Option<mpsc::WeakSender<Request>>,
    /// Jobs the primary acknowledged to the operator: these must never be lost.
    acknowledged: BTreeSet<JobId>,
    /// The scenario's expectations, pending and settled.
    expectations: expect::Expectations,
    /// The live invariant checks, per cluster (job ids are each cluster's own).
    checkers: BTreeMap<String, crate::view::alarms::Checker>,
    /// Each live chat server's entries and users logged in, as last read.
    chat_entries: BTreeMap<String, (u64, u64)>,
    shutdown: CancellationToken,
}

impl Supervisor {
    /// Real milliseconds since the run began: when things happened.
    pub(super) fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Cluster milliseconds since the run began: what the cluster's timers count (the same as
    /// [`Supervisor::now`] unless the cluster runs in slow motion). Measured times and scenario
    /// times are in cluster time.
    pub(super) fn cluster_now(&self) -> u64 {
        self.pace.elapsed(self.started).as_millis() as u64
    }

    pub(super) fn timeline(&self, source: &str, kind: TimelineKind) {
        self.timeline_at(self.now(), source, kind);
    }

    /// Puts something on the timeline as of `at_ms` (an event the reading applied then).
    fn timeline_at(&self, at_ms: u64, source: &str, mut kind: TimelineKind) {
        // A time measured in slow motion says so.
        let scale = self.pace.scale();
        if let TimelineKind::Detected { speed, .. } | TimelineKind::Recovered { speed, .. } =
            &mut kind
            && scale < 1.0
        {
            *speed = Some(scale);
        }
        let event = TimelineEvent {
            at_ms,
            source: source.to_string(),
            kind,
        };
        self.updates.send(Update::Timeline(Arc::new(event)));
    }

    pub(super) fn note(&self, text: impl Into<String>) {
        self.timeline("supervisor", TimelineKind::Note { text: text.into() });
    }

    // ----- the loop -----

    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Request>,
        mut internal: mpsc::UnboundedReceiver<TaskNews>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Request::Act(action)) => self.act(action).await,
                    Some(Request::RunScenario(name)) => self.run_scenario(&name),
                    Some(Request::Republish(reply)) => {
                        let _ = reply.send(Arc::new(self.view.read().without_notes()));
                        for name in self.order.clone() {
                            self.publish(&name);
                        }
                    }
                    Some(Request::ScenarioEnded(name)) => self.scenario_ended(name),
                    Some(Request::Stop(reply)) => {
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
                    // The tracker measures in cluster time (slow motion stretches it).
                    let now = self.cluster_now();
                    for kind in self.tracker.settle(now) {
                        self.timeline("supervisor", kind);
                    }
                    self.say_late_workers();
                    self.check_expectations();
                }
            }
        }
    }

    /// Workers started long ago that have not joined yet: said once per `JOIN_TIMEOUT`.
    fn say_late_workers(&mut self) {
        let late: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, m)| {
                m.node.kind == NodeKind::Worker
                    && !m.ready
                    && !m.exited
                    && m.running.is_some()
                    && m.launched_at.elapsed() > JOIN_TIMEOUT
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in late {
            if let Some(m) = self.nodes.get_mut(&name) {
                m.launched_at = Instant::now();
            }
            self.note(format!(
                "{name} has not joined the coordinator after {JOIN_TIMEOUT:?}; see its log"
            ));
        }
    }

    async fn internal_message(&mut self, message: TaskNews) {
        match message {
            TaskNews::Ready {
                node,
                generation,
                address,
            } => self.node_ready(&node, generation, address),
            TaskNews::Exited {
                node,
                generation,
                status,
            } => self.node_exited(&node, generation, status).await,
            TaskNews::RemotePid {
                node,
                generation,
                pid,
            } => self.remote_pid(&node, generation, pid),
            TaskNews::Reconnect { node, generation } => self.reconnect(&node, generation).await,
            TaskNews::RemoteDir {
                node,
                generation,
                dir,
            } => self.remote_dir(&node, generation, dir),
            TaskNews::Reattached { node, generation } => self.reattached(&node, generation),
            TaskNews::LinkControl { node, line } => {
                self.send_control(&node, &line).await;
            }
            TaskNews::Accepted(None, jobs) => self.acknowledge(jobs),
            TaskNews::Accepted(Some(cluster), jobs) => {
                if let Some(other) = self.others.get_mut(&cluster) {
                    other.acknowledged.extend(jobs);
                }
            }
            TaskNews::Cluster { from, events } => {
                for event in events {
                    self.heard_event(&from, event);
                }
            }
            TaskNews::History { from, events } => self.heard_history(&from, events),
            TaskNews::ChatEntries { server, entries } => {
                match entries {
                    Some(n) => self.chat_entries.insert(server, n),
                    None => self.chat_entries.remove(&server),
                };
                self.check_chat();
            }
        }
    }

    /// A node is up (a master listening): the faults waiting for it are told, and a server's
    /// address goes to the link shaper.
    fn node_ready(&mut self, node: &str, generation: u64, address: String) {
        let Some(m) = self.nodes.get_mut(node) else {
            return;
        };
        if m.generation != generation {
            return;
        }
        m.ready = true;
        let now = self.cluster_now();
        for kind in self.tracker.up(now, node) {
            self.timeline("supervisor", kind);
        }
        // A server on another host listens on all its addresses: it is reached by the host's.
        let address = self.reachable(node, address);
        if self.nodes.get(node).is_some_and(|m| m.node.listens()) {
            self.trust_server(node, &address);
        }
        let Some(m) = self.nodes.get_mut(node) else {
            return;
        };
        if m.node.listens() {
            m.address = Some(address.clone());
            if let Ok(addr) = address.parse() {
                self.shaper.set_address(node, addr);
            }
            let pid = match &m.running {
                Some(RunningAs::Process { pid, .. }) => Some(*pid),
                _ => None,
            };
            self.timeline(
                node,
                TimelineKind::Note {
                    text: format!(
                        "{node} listening on {address}{}",
                        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
                    ),
                },
            );
        }
        self.publish(node);
    }

    /// A node's process (or task) ended: said on the timeline unless it was stopped, and
    /// started again if a restart waits for it.
    async fn node_exited(&mut self, node: &str, generation: u64, status: String) {
        let Some(m) = self.nodes.get_mut(node) else {
            return;
        };
        if m.generation != generation {
            return;
        }
        m.running = None;
        m.exited = true;
        m.exit = Some(status.clone());
        // What its own links held went with it.
        self.shaper.forget_held_of(node);
        let restart = std::mem::take(&mut m.restart_pending);
        let stopped = m.stopped;
        // On another host, the session's end is not always the node's: the host out of reach,
        // or a session that came back and found the node gone (`hosts`).
        if m.node.host.is_some() && !m.killed && !stopped && self.session_ended(node, &status).await
        {
            return;
        }
        let Some(m) = self.nodes.get_mut(node) else {
            return;
        };
        let status =
            if m.killed && matches!(m.node.launch, Launch::Inproc) && m.node.command.is_none() {
                "aborted".to_string()
            } else {
                status
            };
        if !stopped {
            self.timeline(
                node,
                TimelineKind::NodeExited {
                    node: node.to_string(),
                    status,
                },
            );
        }
        self.publish(node);
        if restart && let Err(e) = self.start_node(node).await {
            self.note(format!("restart failed: {e}"));
        }
    }

    /// A master's event: counted if it comes from the primary (or moves the primary).
    fn heard_event(&mut self, from: &str, event: ClusterEvent) {
        let now = self.now();
        let alarms = self.checker_of(from).stream_event(now, from, &event);
        self.alarms(alarms);
        if let Some(cluster) = self.other_cluster_of(from) {
            self.other_event(&cluster, from, event);
            return;
        }
        let takeover = {
            let view = self.view.read();
            if !view.accepts(from, &event) {
                return;
            }
            match &event.kind {
                EventKind::Takeover { coordinator, .. } if *coordinator != view.primary => {
                    Some(coordinator.clone())
                }
                _ => None,
            }
        };
        self.cluster_event(from, event);
        if let Some(primary) = takeover {
            self.new_primary(&primary);
        }
    }

    /// A master's history, at the start of its subscription: the reading starts over from the
    /// primary's, and a resumed run says what it found.
    fn heard_history(&mut self, from: &str, events: Vec<ClusterEvent>) {
        self.subscribed.insert(from.to_string());
        let now = self.now();
        let alarms = self.checker_of(from).history(now, from, &events);
        self.alarms(alarms);
        if let Some(cluster) = self.other_cluster_of(from) {
            self.other_history(&cluster, from, &events);
            return;
        }
        if from != self.view.read().primary {
            return;
        }
        // Subscribing again (after a takeover) leaves a moment with no subscription: what the
        // master did in it is in its history only. Those events go on the timeline now, after
        // the last one heard live from it; a first subscription's history is the past.
        let missed: Vec<ClusterEvent> = match self.last_live.get(from) {
            Some(&seen) => events.iter().filter(|e| e.clock > seen).cloned().collect(),
            None => Vec::new(),
        };
        self.view.write().resync(&events);
        self.updates
            .send(Update::View(Arc::new(self.view.read().without_notes())));
        // The reading starts over from this primary: whatever was acknowledged, it must know.
        let main = self.main_cluster().to_string();
        let checker = self
            .checkers
            .entry(main)
            .or_insert_with(|| alarms::fresh_checker(&self.topology));
        let alarms = checker.after_failover(now, &self.view.read(), &self.acknowledged);
        self.alarms(alarms);
        for event in missed {
            self.told(now, from, event);
        }
        if let Some(earlier) = self.resumed.take() {
            let counts = self.view.read().state.counts;
            self.timeline(
                "supervisor",
                TimelineKind::Resumed {
                    began: earlier.map(|r| r.time_of_day().to_string()),
                    jobs: counts.total(),
                    completed: counts.completed,
                    primary: self.view.read().primary.clone(),
                    term: self.view.read().term,
                },
            );
        }
        for name in self.order.clone() {
            self.publish(&name);
        }
    }

    /// Jobs the primary acknowledged to the operator: kept until they end (a job that ended is
    /// the cluster's to remember, and compaction may forget it), so the set stays small.
    fn acknowledge(&mut self, jobs: Vec<JobId>) {
        let ended = |id: &JobId| {
            self.view
                .read()
                .state
                .jobs
                .get(id)
                .is_some_and(|j| j.state.is_final())
        };
        let open: Vec<JobId> = jobs.into_iter().filter(|id| !ended(id)).collect();
        self.acknowledged.extend(open);
    }

    /// An event the cluster's story is made of (see [`ClusterView::accepts`]).
    fn cluster_event(&mut self, from: &str, event: ClusterEvent) {
        let now = self.now();
        let own = {
            let mut view = self.view.write();
            let own = from == view.primary;
            view.apply(now, &event);
            own
        };
        let view = self.view.read();
        // Looked up before it is made: an event of a known cluster allocates nothing.
        let main = self
            .topology
            .node(&view.primary)
            .map_or(crate::topology::DEFAULT_CLUSTER, |n| n.cluster.as_str());
        let checker = match self.checkers.get_mut(main) {
            Some(checker) => checker,
            None => self
                .checkers
                .entry(main.to_string())
                .or_insert_with(|| alarms::fresh_checker(&self.topology)),
        };
        let alarms = checker.applied(now, &event, own, &view);
        let main = main.to_string();
        drop(view);
        self.alarms(alarms);
        self.read_loan(&main, now, &event);
        match &event.kind {
            EventKind::JobCompleted { job, .. }
            | EventKind::JobFailed {
                job,
                retry_in_ms: None,
                ..
            } => {
                self.acknowledged.remove(job);
            }
            EventKind::JobsForgotten { jobs } => {
                for job in jobs {
                    self.acknowledged.remove(job);
                }
            }
            _ => {}
        }
        self.worker_started(&event);
        self.expectations_hear(&event.kind);
        self.told(now, from, event);
    }

    /// A worker counts as started once a coordinator says it joined (an outside program
    /// prints nothing to say so).
    fn worker_started(&mut self, event: &ClusterEvent) {
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
    }

    /// Puts an event on the timeline as of `at_ms` (when the reading applied it), and tells
    /// the fault tracker.
    fn told(&mut self, at_ms: u64, from: &str, event: ClusterEvent) {
        match self.last_live.get_mut(from) {
            Some(seen) => *seen = (*seen).max(event.clock),
            None => {
                self.last_live.insert(from.to_string(), event.clock);
            }
        }
        let completed = self.tracker.observe(self.cluster_now(), from, &event);
        self.timeline_at(at_ms, from, TimelineKind::Cluster { event });
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
        self.record.primary = self.view.read().primary.clone();
        if let Err(e) = self.record.write(&self.options.state_dir) {
            warn!("{e}");
        }
    }
}
