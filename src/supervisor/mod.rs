//! The supervisor: launches a topology, breaks it on request, and tells what happens.
//!
//! It is an actor: one task owns every node, the link shaper and the fault tracker, and
//! everything else talks to it through [`Command`]s (act on the cluster, run a scenario, stop)
//! and listens to its [`Update`]s (the timeline and node states) and log lines. The headless run
//! prints them; the console will draw them.
//!
//! ```text
//!  commands (console keys, scenario runner, headless) ──▶ ┐
//!  node processes: READY lines, exits ──────────────────▶ ├─▶ Supervisor ──▶ updates (timeline, nodes)
//!  coordinator events (TCP subscribe) ──────────────────▶ ┘      │  │
//!                                            LinkShaper ◀────────┘  └──▶ kill / SIGSTOP / skew …
//! ```
//!
//! Start order: masters first, each listening before anything else starts; then workers, each
//! connected through its own shaping proxy to the primary. A worker counts as started when the
//! coordinator reports it joined, which also works for outside programs that print nothing.

pub mod launch;
pub mod logs;
pub mod scenario;
pub mod shaper;
pub mod timeline;

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
use crate::node::{self, NodeControl, NodeOptions, PauseSwitch};
use crate::protocol::message::{Health, JobId, JobState, Message};
use crate::role::event::{ClusterEvent, EventKind};
use crate::topology::{Action, Launch, Node, NodeKind, Topology};
use logs::{LogLine, LogSink};
use shaper::LinkShaper;
use timeline::{FaultRecord, FaultTracker, TimelineEvent, TimelineKind};

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
    /// A node's state changed.
    Node(NodeStatus),
}

/// A node as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// `master`, `worker` …
    #[serde(rename = "type")]
    pub kind: String,
    /// `primary`, `backup`, or the kind for other nodes.
    pub role: String,
    /// What it is doing.
    pub state: NodeState,
    /// Its process id, if it is a running process.
    #[serde(skip)]
    pub pid: Option<u32>,
    /// Where it listens, for a master.
    #[serde(skip)]
    pub address: Option<String>,
}

/// A node's state, combining what the supervisor did and what the coordinator sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Launched, not ready yet.
    Starting,
    /// Running and, for a worker, heartbeating.
    Healthy,
    /// Its heartbeats are late.
    Suspect,
    /// Declared dead, or its process ended.
    Dead,
    /// Stopped with SIGSTOP (or paused in-process).
    Paused,
    /// Some of its links are cut.
    Partitioned,
    /// Being restarted.
    Restarting,
    /// Stopped at the end of the run.
    Stopped,
    /// Not launched (a kind that runs on its own, such as a client).
    NotLaunched,
}

impl NodeState {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Starting => "starting",
            NodeState::Healthy => "healthy",
            NodeState::Suspect => "suspect",
            NodeState::Dead => "dead",
            NodeState::Paused => "paused",
            NodeState::Partitioned => "partitioned",
            NodeState::Restarting => "restarting",
            NodeState::Stopped => "stopped",
            NodeState::NotLaunched => "not launched",
        }
    }
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
    pub nodes: Vec<NodeStatus>,
    /// Every fault, with its measured detection and recovery.
    pub faults: Vec<FaultRecord>,
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
    /// The links, to read their state and watch the messages they carry.
    pub shaper: LinkShaper,
    task: tokio::task::JoinHandle<()>,
}

impl SupervisorHandle {
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
    health: Option<Health>,
    ready: bool,
    paused: bool,
    restart_pending: bool,
    /// The operator killed it (an in-process node then reports "aborted").
    killed: bool,
    exited: bool,
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
    /// The primary acknowledged these jobs to the operator.
    Accepted(Vec<JobId>),
}

struct Supervisor {
    topology: Topology,
    options: RunOptions,
    started: Instant,
    nodes: BTreeMap<String, Managed>,
    order: Vec<String>,
    primary: String,
    primary_addr: Option<SocketAddr>,
    /// The primary's term, as last reported.
    term: u64,
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
    /// Final states seen for jobs, from the coordinator's events.
    job_states: BTreeMap<JobId, JobState>,
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
    let (updates, _) = broadcast::channel(16_384);
    let (log_updates, _) = broadcast::channel(16_384);

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
                health: None,
                ready: false,
                paused: false,
                restart_pending: false,
                killed: false,
                exited: false,
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
        primary,
        primary_addr: None,
        term: 1,
        shaper,
        tracker: FaultTracker::default(),
        updates: updates.clone(),
        sink,
        internal: internal_tx,
        submits,
        commands: None,
        job_states: BTreeMap::new(),
        acknowledged: BTreeSet::new(),
        shutdown,
    };
    let mut internal_rx = internal_rx;
    if let Err(e) = supervisor.start_all(&mut internal_rx).await {
        supervisor.stop_all().await;
        return Err(e);
    }
    let coordinator = supervisor.primary_addr.ok_or(LaunchError::NoMaster)?;
    let nodes = supervisor.statuses();
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
        shaper,
        task,
    })
}

impl Supervisor {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn timeline(&self, source: &str, kind: TimelineKind) {
        let event = TimelineEvent {
            at_ms: self.now(),
            source: source.to_string(),
            kind,
        };
        let _ = self.updates.send(Update::Timeline(event));
    }

    fn note(&self, text: impl Into<String>) {
        self.timeline("supervisor", TimelineKind::Note { text: text.into() });
    }

    // ----- starting -----

    async fn start_all(
        &mut self,
        internal: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> Result<(), LaunchError> {
        let masters: Vec<String> = self
            .order
            .iter()
            .filter(|n| self.nodes[*n].node.kind == NodeKind::Master)
            .cloned()
            .collect();
        let chat_servers: Vec<String> = self
            .order
            .iter()
            .filter(|n| self.nodes[*n].node.kind == NodeKind::Chat)
            .cloned()
            .collect();
        self.link_peers(&masters).await?;
        self.link_peers(&chat_servers).await?;
        for name in &masters {
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        for name in &chat_servers {
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        let Some(primary_addr) = self.nodes[&self.primary]
            .address
            .as_ref()
            .and_then(|a| a.parse().ok())
        else {
            return Err(LaunchError::Node {
                node: self.primary.clone(),
                reason: "it reported no address".into(),
            });
        };
        self.primary_addr = Some(primary_addr);
        for (name, addr) in self.master_addresses() {
            tokio::spawn(follow_master(
                name,
                addr,
                self.topology.globals.cluster_secret.clone(),
                self.internal.clone(),
                self.shutdown.clone(),
            ));
        }
        let others: Vec<String> = self
            .order
            .iter()
            .filter(|n| !self.nodes[*n].node.listens())
            .cloned()
            .collect();
        for name in others {
            match self.nodes[&name].node.kind {
                NodeKind::Worker => {
                    // One shaped link per master, the primary's first: a worker moves to the next
                    // master when the one it uses is gone or is not the primary.
                    let links = self.links_to(&name, &masters).await?;
                    if let Some(m) = self.nodes.get_mut(&name) {
                        m.connect_to = Some(links.join(","));
                    }
                    self.start_node(&name).await?;
                }
                NodeKind::Bot => {
                    // A bot submits to the primary and posts to a chat server, over shaped links
                    // it is told as `name=proxy` pairs.
                    let named = |servers: &[String], links: Vec<String>| -> String {
                        servers
                            .iter()
                            .zip(links)
                            .map(|(s, l)| format!("{s}={l}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let mut ordered = masters.clone();
                    ordered.sort_by_key(|s| *s != self.primary);
                    let to_masters = self.links_to(&name, &ordered).await?;
                    let to_chat = self.links_to(&name, &chat_servers).await?;
                    if let Some(m) = self.nodes.get_mut(&name) {
                        m.connect_to = Some(named(&ordered, to_masters));
                        m.chat_links = Some(named(&chat_servers, to_chat));
                    }
                    self.start_node(&name).await?;
                }
                NodeKind::Client => self.set_state_note(
                    &name,
                    "clients are run by people (tcluster client), not launched",
                ),
                NodeKind::Master | NodeKind::Chat => {}
            }
        }
        Ok(())
    }

    /// `from`'s shaped links to `servers`, as `host:port` of each proxy, in the order given (the
    /// primary first, for masters).
    async fn links_to(
        &mut self,
        from: &str,
        servers: &[String],
    ) -> Result<Vec<String>, LaunchError> {
        let mut ordered: Vec<&String> = servers.iter().collect();
        ordered.sort_by_key(|s| **s != self.primary);
        let mut links = Vec::new();
        for server in ordered {
            let proxy = self
                .shaper
                .proxy(from, server)
                .await
                .map_err(|e| LaunchError::Node {
                    node: from.to_string(),
                    reason: format!("cannot open its link to {server}: {e}"),
                })?;
            links.push(proxy.to_string());
        }
        Ok(links)
    }

    /// Servers of one kind reach each other through shaped links, so a partition between two
    /// of them is real: each is told its peers as `name=proxy` pairs.
    async fn link_peers(&mut self, servers: &[String]) -> Result<(), LaunchError> {
        for name in servers {
            let mut links = Vec::new();
            for peer in servers.iter().filter(|p| *p != name) {
                let proxy = self
                    .shaper
                    .proxy(name, peer)
                    .await
                    .map_err(|e| LaunchError::Node {
                        node: name.clone(),
                        reason: format!("cannot open its link to {peer}: {e}"),
                    })?;
                links.push(format!("{peer}={proxy}"));
            }
            if let Some(m) = self.nodes.get_mut(name) {
                m.connect_to = Some(links.join(","));
            }
        }
        Ok(())
    }

    /// Every master that has an address, the primary first, then in launch order.
    fn master_addresses(&self) -> Vec<(String, SocketAddr)> {
        let mut masters: Vec<(String, SocketAddr)> = self
            .order
            .iter()
            .filter_map(|n| {
                let m = &self.nodes[n];
                (m.node.kind == NodeKind::Master).then_some(())?;
                Some((n.clone(), m.address.as_ref()?.parse().ok()?))
            })
            .collect();
        masters.sort_by_key(|(n, _)| *n != self.primary);
        masters
    }

    fn set_state_note(&self, name: &str, why: &str) {
        self.note(format!("{name}: {why}"));
    }

    /// Waits until a master says where it listens (or fails).
    async fn wait_ready(
        &mut self,
        name: &str,
        internal: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !self.nodes[name].ready {
            let message = tokio::time::timeout_at(deadline, internal.recv()).await;
            match message {
                Ok(Some(message)) => {
                    if let Internal::Exited { node, .. } = &message
                        && node == name
                    {
                        let status = match &message {
                            Internal::Exited { status, .. } => status.clone(),
                            _ => String::new(),
                        };
                        return Err(LaunchError::Node {
                            node: name.into(),
                            reason: format!("it exited ({status}){}", self.last_log_lines(name)),
                        });
                    }
                    self.internal_message(message).await;
                }
                Ok(None) => break,
                Err(_) => {
                    return Err(LaunchError::Node {
                        node: name.into(),
                        reason: format!(
                            "it was not listening after {START_TIMEOUT:?}{}",
                            self.last_log_lines(name)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn last_log_lines(&self, name: &str) -> String {
        let path = self
            .options
            .state_dir
            .join("logs")
            .join(format!("{name}.log"));
        let lines = self.sink.recent(name);
        if lines.is_empty() {
            return String::new();
        }
        format!(
            "; its last log lines ({}):\n    {}",
            path.display(),
            lines.join("\n    ")
        )
    }

    /// Starts (or starts again) one node.
    async fn start_node(&mut self, name: &str) -> Result<(), LaunchError> {
        let topology_path = self.options.topology_path.clone();
        let state_dir = self.options.state_dir.clone();
        let program = self.options.program.clone();
        let secret = self.topology.globals.cluster_secret.clone();
        let heartbeat_ms = self.topology.policies.heartbeat.interval.as_millis() as u64;
        let internal = self.internal.clone();
        let sink = self.sink.clone();
        let topology = self.topology.clone();

        let Some(m) = self.nodes.get_mut(name) else {
            return Ok(());
        };
        m.generation += 1;
        m.ready = false;
        m.exited = false;
        m.killed = false;
        m.paused = false;
        m.health = None;
        m.launched_at = Instant::now();
        let generation = m.generation;
        let node = m.node.clone();
        let listen = match (node.kind, &m.address) {
            // A restarted master listens where it did before: its workers' links point there.
            (NodeKind::Master | NodeKind::Chat, Some(addr)) => Some(addr.clone()),
            (NodeKind::Master | NodeKind::Chat, None) => {
                Some(format!("{}:{}", node.address, node.port.unwrap_or(0)))
            }
            _ => None,
        };
        // A worker is told its links to every master; a master, its links to the others.
        let connect_to = m.connect_to.clone();
        let chat_links = m.chat_links.clone();
        let node_name: Arc<str> = Arc::from(name);

        if node.launch == Launch::Inproc && node.command.is_none() {
            let (control, pause) = NodeControl::new();
            control.set_skew(m.control.skew());
            m.control = control.clone();
            let shutdown = self.shutdown.child_token();
            let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
            let options = NodeOptions {
                listen,
                coordinator: connect_to,
                chat: chat_links,
                max_connections: None,
                announce: false,
                control,
                ready: Some(ready_tx),
                state_dir: Some(state_dir.clone()),
            };
            m.running = Some(Running::Inproc {
                shutdown: shutdown.clone(),
                pause,
            });
            let (task_internal, task_name) = (internal.clone(), name.to_string());
            tokio::spawn(async move {
                while let Some(address) = ready_rx.recv().await {
                    let _ = task_internal.send(Internal::Ready {
                        node: task_name.clone(),
                        generation,
                        address,
                    });
                }
            });
            let task_name = name.to_string();
            tokio::spawn(async move {
                let status = match node::run(&topology, &task_name, options, shutdown).await {
                    Ok(()) => "stopped".to_string(),
                    Err(e) => e.to_string(),
                };
                let _ = internal.send(Internal::Exited {
                    node: task_name,
                    generation,
                    status,
                });
            });
            self.timeline(
                name,
                TimelineKind::NodeStarted {
                    node: name.to_string(),
                    pid: None,
                    address: None,
                },
            );
            self.publish(name);
            return Ok(());
        }

        let command = match &node.command {
            Some(template) => launch::outside_command(
                template,
                &launch::Placement {
                    name,
                    coordinator: connect_to.as_deref(),
                    slots: node.resources.cpu,
                    secret: secret.as_deref(),
                    heartbeat_ms,
                },
            ),
            None => launch::builtin_command(
                &program,
                &topology_path,
                name,
                listen.as_deref(),
                connect_to.as_deref(),
                chat_links.as_deref(),
                Some(&state_dir),
            ),
        };
        let mut child = launch::spawn(command).map_err(|e| LaunchError::Node {
            node: name.into(),
            reason: e.to_string(),
        })?;
        let pid = child.id().unwrap_or_default();
        let stdin = child.stdin.take();
        let mut captures = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let (internal, task_name) = (internal.clone(), name.to_string());
            captures.push(tokio::spawn(sink.clone().capture(
                node_name.clone(),
                false,
                stdout,
                move |line| {
                    let Some(rest) = line.strip_prefix("READY ") else {
                        return false;
                    };
                    let address = rest
                        .split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_string();
                    let _ = internal.send(Internal::Ready {
                        node: task_name.clone(),
                        generation,
                        address,
                    });
                    true
                },
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            captures.push(tokio::spawn(sink.clone().capture(
                node_name.clone(),
                true,
                stderr,
                |_| false,
            )));
        }
        {
            let (internal, task_name) = (internal.clone(), name.to_string());
            tokio::spawn(async move {
                let status = match child.wait().await {
                    Ok(status) => launch::describe_exit(status),
                    Err(e) => format!("lost track of it: {e}"),
                };
                // What it said last is read before its exit is reported (not longer than a
                // moment: a program it started may still hold the pipes open).
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    futures::future::join_all(captures),
                )
                .await;
                let _ = internal.send(Internal::Exited {
                    node: task_name,
                    generation,
                    status,
                });
            });
        }
        if let Some(m) = self.nodes.get_mut(name) {
            m.running = Some(Running::Process { pid, stdin });
            // A restarted node keeps its skew.
            let skew = m.control.skew();
            if skew != 0 {
                self.send_skew(name, skew).await;
            }
        }
        self.timeline(
            name,
            TimelineKind::NodeStarted {
                node: name.to_string(),
                pid: Some(pid),
                address: None,
            },
        );
        self.publish(name);
        Ok(())
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
                        for name in self.order.clone() {
                            self.publish(&name);
                        }
                    }
                    Some(Command::ScenarioEnded(name)) => self.timeline("scenario", TimelineKind::Note { text: format!("scenario {name} ends") }),Some(Command::Stop(reply)) => {
                        let report = self.report().await;
                        self.stop_all().await;
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
                if let EventKind::Takeover {
                    coordinator, term, ..
                } = &event.kind
                    && *term > self.term
                {
                    // The master that took over is the primary now, whatever it was before.
                    if let Some(addr) = self
                        .nodes
                        .get(coordinator)
                        .and_then(|m| m.address.as_ref())
                        .and_then(|a| a.parse().ok())
                    {
                        self.primary_addr = Some(addr);
                    }
                    self.primary = coordinator.clone();
                    self.term = *term;

                    let names: Vec<String> = self.nodes.keys().cloned().collect();
                    for name in names {
                        self.publish(&name);
                    }
                    self.cluster_event(&from, event)
                } else if from == self.primary || event.kind.is_election() {
                    self.cluster_event(&from, event);
                }
            }
        }
    }

    /// An event from master `from` (the primary's, or an election's).
    fn cluster_event(&mut self, from: &str, event: ClusterEvent) {
        let now = self.now();
        let source = from.to_string();
        let changed = match &event.kind {
            EventKind::WorkerJoined { worker, .. }
            | EventKind::WorkerRejoined { worker, .. }
            | EventKind::WorkerRecovered { worker } => self.set_health(worker, Health::Healthy),
            EventKind::WorkerSuspect { worker, .. } => self.set_health(worker, Health::Suspect),
            EventKind::WorkerDead { worker, .. } => self.set_health(worker, Health::Dead),
            EventKind::JobSubmitted { job, .. } => {
                self.job_states.insert(*job, JobState::Queued);
                None
            }
            EventKind::JobCompleted { job, .. } => {
                self.job_states.insert(*job, JobState::Completed);
                None
            }
            EventKind::JobFailed {
                job,
                retry_in_ms: None,
                ..
            } => {
                self.job_states.insert(*job, JobState::Failed);
                None
            }
            _ => None,
        };
        if let Some(name) = changed {
            self.publish(&name);
        }
        let completed = self.tracker.observe(now, &source, &event);
        self.timeline(&source, TimelineKind::Cluster { event });
        for kind in completed {
            self.timeline("supervisor", kind);
        }
    }

    fn set_health(&mut self, worker: &str, health: Health) -> Option<String> {
        let m = self.nodes.get_mut(worker)?;
        m.health = Some(health);
        if health == Health::Healthy {
            m.ready = true;
        }
        Some(worker.to_string())
    }

    // ----- acting on the cluster -----

    async fn act(&mut self, action: Action) {
        let now = self.now();
        let text = action.to_string();
        let (target, watch) = self.fault_target(&action);
        let measured = matches!(
            action,
            Action::Kill(_)
                | Action::Pause(_)
                | Action::Restart(_)
                | Action::Partition { .. }
                | Action::Latency { .. }
                | Action::Loss { .. }
                | Action::Skew { .. }
        );
        let on_primary = matches!(&action, Action::Kill(n) | Action::Pause(n) | Action::Restart(n) if *n == self.primary)
            || matches!(&action, Action::Partition { a, b: None, .. } if *a == self.primary);
        let is_master = |n: &str| {
            self.nodes
                .get(n)
                .is_some_and(|m| m.node.kind == NodeKind::Master)
        };
        let between_masters = match &action {
            Action::Partition { a, b: Some(b), .. } if is_master(a) && is_master(b) => {
                Some(vec![a.clone(), b.clone()])
            }
            _ => None,
        };
        let fault = measured.then(|| {
            if let Some(masters) = between_masters {
                self.tracker
                    .fault_between_masters(now, action.name(), &target, masters)
            } else if on_primary
                && self
                    .nodes
                    .values()
                    .filter(|m| m.node.kind == NodeKind::Master)
                    .count()
                    > 1
            {
                self.tracker.fault_on_primary(now, action.name(), &target)
            } else {
                self.tracker.fault(now, action.name(), &target, watch)
            }
        });
        if !matches!(action, Action::Say(_) | Action::Submit { .. }) {
            self.timeline(
                "operator",
                TimelineKind::Action {
                    fault,
                    action: action.name().to_string(),
                    target: target.clone(),
                    text,
                },
            );
        }
        let unknown = |s: &Self, n: &str| !s.nodes.contains_key(n);
        match action {
            Action::Say(text) => self.timeline("scenario", TimelineKind::Say { text }),
            Action::Submit {
                data,
                count,
                priority,
            } => self.submit(data, count, priority),
            Action::Kill(n)
            | Action::Pause(n)
            | Action::Resume(n)
            | Action::Restart(n)
            | Action::Skew { node: n, .. }
                if unknown(self, &n) =>
            {
                self.note(format!("no node named {n}"));
            }
            Action::Kill(n) => self.kill(&n),
            Action::Pause(n) => self.pause(&n, true),
            Action::Resume(n) => self.pause(&n, false),
            Action::Restart(n) => self.restart(&n).await,
            Action::Partition { a, b, one_way } => {
                self.shaper.cut(&a, b.as_deref(), one_way);
                self.refresh_partitions();
            }
            Action::Heal { a, b } => {
                self.shaper.heal(a.as_deref(), b.as_deref());
                self.refresh_partitions();
            }
            Action::Latency {
                a,
                b,
                latency,
                jitter,
            } => self.shaper.set_latency(&a, &b, latency, jitter),
            Action::Loss { a, b, loss } => self.shaper.set_loss(&a, &b, loss),
            Action::Skew { node, offset_ms } => {
                if let Some(m) = self.nodes.get(&node) {
                    m.control.set_skew(offset_ms);
                }
                self.send_skew(&node, offset_ms).await;
            }
        }
    }

    /// The target shown for an action, and the worker whose death means it was detected.
    fn fault_target(&self, action: &Action) -> (String, Option<String>) {
        let worker = |n: &str| {
            (self
                .nodes
                .get(n)
                .is_some_and(|m| m.node.kind == NodeKind::Worker))
            .then(|| n.to_string())
        };
        match action {
            Action::Kill(n)
            | Action::Pause(n)
            | Action::Resume(n)
            | Action::Restart(n)
            | Action::Skew { node: n, .. } => (n.clone(), worker(n)),
            Action::Partition { a, b: None, .. } => (a.clone(), worker(a)),
            Action::Partition {
                a,
                b: Some(b),
                one_way,
            } => {
                let arrow = if *one_way { "->" } else { "<->" };
                (format!("{a} {arrow} {b}"), worker(a).or_else(|| worker(b)))
            }
            Action::Latency { a, b, .. } | Action::Loss { a, b, .. } => {
                (format!("{a} <-> {b}"), worker(a).or_else(|| worker(b)))
            }
            Action::Heal { a, b } => (
                match (a, b) {
                    (Some(a), Some(b)) => format!("{a} <-> {b}"),
                    (Some(a), None) => a.clone(),
                    _ => "every link".to_string(),
                },
                None,
            ),
            Action::Submit { data, .. } => (data.clone(), None),
            Action::Say(text) => (text.clone(), None),
        }
    }

    fn kill(&mut self, name: &str) {
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        m.killed = true;
        match &m.running {
            Some(Running::Process { pid, .. }) => {
                // A paused process dies of SIGKILL too; no need to continue it first.
                launch::signal_group(*pid, Signal::SIGKILL);
            }
            Some(Running::Inproc { shutdown, .. }) => shutdown.cancel(),
            None => self.note(format!("{name} is not running")),
        }
    }

    fn pause(&mut self, name: &str, paused: bool) {
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        match &m.running {
            Some(Running::Process { pid, .. }) => {
                launch::signal_group(
                    *pid,
                    if paused {
                        Signal::SIGSTOP
                    } else {
                        Signal::SIGCONT
                    },
                );
            }
            Some(Running::Inproc { pause, .. }) => pause.set(paused),
            None => {
                self.note(format!("{name} is not running"));
                return;
            }
        }
        m.paused = paused;
        self.publish(name);
    }

    async fn restart(&mut self, name: &str) {
        let running = self.nodes.get(name).is_some_and(|m| m.running.is_some());
        if running {
            if let Some(m) = self.nodes.get_mut(name) {
                m.restart_pending = true;
            }
            self.kill(name);
            self.publish(name);
        } else if let Err(e) = self.start_node(name).await {
            self.note(format!("restart failed: {e}"));
        }
    }

    async fn send_skew(&mut self, name: &str, offset_ms: i64) {
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        if let Some(Running::Process {
            stdin: Some(stdin), ..
        }) = &mut m.running
            && stdin
                .write_all(format!("skew {offset_ms}\n").as_bytes())
                .await
                .is_err()
        {
            warn!(node = name, "cannot reach the node's control channel");
        }
        if m.node.command.is_some() {
            self.note(format!(
                "{name} runs an outside program, which ignores clock skew"
            ));
        }
    }

    fn refresh_partitions(&mut self) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.publish(&name);
        }
    }

    /// Hands a submission to the submitter, which waits for the primary's reply on its own (a
    /// primary waiting for its backup must not stall the supervisor, nor its timeline).
    fn submit(&mut self, data: String, count: u32, priority: i32) {
        let Some(addr) = self.primary_addr else {
            return;
        };
        let _ = self.submits.send(Submission {
            addr,
            data,
            count,
            priority,
        });
    }

    fn run_scenario(&mut self, name: &str) {
        let Some(scenario) = self.topology.scenario(name).cloned() else {
            self.note(format!("no scenario named {name}"));
            return;
        };
        let Some(commands) = self.commands_sender() else {
            return;
        };
        let scale = self.topology.globals.time_scale;
        self.timeline(
            "scenario",
            TimelineKind::Note {
                text: format!("scenario {name} begins ({} steps)", scenario.steps.len()),
            },
        );
        tokio::spawn(scenario::run(scenario, scale, commands));
    }

    fn commands_sender(&self) -> Option<mpsc::Sender<Command>> {
        self.commands.as_ref().and_then(mpsc::WeakSender::upgrade)
    }

    // ----- status -----

    fn status(&self, name: &str) -> Option<NodeStatus> {
        let m = self.nodes.get(name)?;
        let partitioned = self
            .shaper
            .all()
            .iter()
            .any(|((from, to), s)| s.cut && (from == name || to == name));
        let state = if m.stopped {
            NodeState::Stopped
        } else if m.node.kind == NodeKind::Client || m.running.is_none() && !m.exited {
            NodeState::NotLaunched
        } else if m.restart_pending {
            NodeState::Restarting
        } else if m.exited || m.running.is_none() {
            NodeState::Dead
        } else if m.paused {
            NodeState::Paused
        } else if partitioned {
            NodeState::Partitioned
        } else {
            match (m.health, m.ready) {
                (Some(Health::Suspect), _) => NodeState::Suspect,
                (Some(Health::Dead), _) => NodeState::Dead,
                (_, true) => NodeState::Healthy,
                (_, false) => NodeState::Starting,
            }
        };
        // Roles change with a takeover: the primary is whichever master the supervisor follows.
        let role = match m.node.kind {
            NodeKind::Master if name == self.primary => "primary".to_string(),
            NodeKind::Master => "backup".to_string(),
            kind => kind.as_str().to_string(),
        };
        let pid = match &m.running {
            Some(Running::Process { pid, .. }) => Some(*pid),
            _ => None,
        };
        Some(NodeStatus {
            name: name.to_string(),
            kind: m.node.kind.as_str().to_string(),
            role,
            state,
            pid,
            address: m.address.clone(),
        })
    }

    fn statuses(&self) -> Vec<NodeStatus> {
        self.order.iter().filter_map(|n| self.status(n)).collect()
    }

    fn publish(&self, name: &str) {
        if let Some(status) = self.status(name) {
            let _ = self.updates.send(Update::Node(status));
        }
    }

    /// The run's summary, asked of the coordinator while it still runs.
    async fn report(&mut self) -> RunReport {
        let mut jobs = JobTotals::default();
        let mut term = 1;
        if let Some(addr) = self.primary_addr
            && let Ok(mut client) = Client::connect(
                &addr.to_string(),
                "supervisor",
                self.topology.globals.cluster_secret.as_deref(),
            )
            .await
        {
            if let Ok(Message::StatusReport { report }) =
                client.request(Message::Status { job: None }).await
            {
                term = report.term;
                jobs.completed = report.jobs.completed;
                jobs.failed = report.jobs.failed;
                jobs.submitted = report.jobs.total();
            }
            // Jobs acknowledged and not seen to end: the coordinator must still know them. (A
            // job an old primary took but never acknowledged — it could not replicate it — was
            // never accepted, and the new primary rightly does not know it.)
            let open: Vec<JobId> = self
                .job_states
                .iter()
                .filter(|(_, s)| !s.is_final())
                .map(|(id, _)| *id)
                .collect();
            for id in open {
                if let Ok(Message::Error { .. }) =
                    client.request(Message::Status { job: Some(id) }).await
                    && self.acknowledged.contains(&id)
                {
                    jobs.lost += 1;
                }
            }
            jobs.submitted += jobs.lost;
        } else {
            jobs.lost = self.job_states.values().filter(|s| !s.is_final()).count();
            jobs.completed = self
                .job_states
                .values()
                .filter(|s| **s == JobState::Completed)
                .count();
            jobs.failed = self
                .job_states
                .values()
                .filter(|s| **s == JobState::Failed)
                .count();
            jobs.submitted = self.job_states.len();
        }
        RunReport {
            system: self.topology.globals.system_name.clone(),
            primary: self.primary.clone(),
            term,
            jobs,
            nodes: self.statuses(),
            faults: self.tracker.faults().to_vec(),
        }
    }

    /// Stops every node: workers first, masters last; SIGTERM, then SIGKILL after a grace.
    async fn stop_all(&mut self) {
        let names: Vec<String> = self.order.iter().rev().cloned().collect();
        for name in &names {
            let Some(m) = self.nodes.get_mut(name) else {
                continue;
            };
            m.stopped = true;
            match &m.running {
                Some(Running::Process { pid, .. }) => {
                    launch::signal_group(*pid, Signal::SIGCONT);
                    launch::signal_group(*pid, Signal::SIGTERM);
                }
                Some(Running::Inproc { shutdown, pause }) => {
                    pause.set(false);
                    shutdown.cancel();
                }
                None => {}
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.nodes.values().any(|m| m.running.is_some()) && Instant::now() < deadline {
            // Exits arrive as internal messages; the loop is not running, so poll the pids.
            for m in self.nodes.values_mut() {
                if let Some(Running::Process { pid, .. }) = &m.running
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), None)
                        .is_err()
                {
                    m.running = None;
                }
                if let Some(Running::Inproc { shutdown, .. }) = &m.running
                    && shutdown.is_cancelled()
                {
                    m.running = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for m in self.nodes.values_mut() {
            if let Some(Running::Process { pid, .. }) = m.running.take() {
                launch::signal_group(pid, Signal::SIGKILL);
            }
        }
        self.shutdown.cancel();
        info!("every node stopped");
    }
}

/// A submission for the primary at `addr`.
struct Submission {
    addr: SocketAddr,
    data: String,
    count: u32,
    priority: i32,
}

/// Submits jobs in the order given, on one connection per primary, and says on the timeline
/// what became of each.
async fn submitter(
    mut submissions: mpsc::UnboundedReceiver<Submission>,
    secret: Option<String>,
    updates: broadcast::Sender<Update>,
    internal: mpsc::UnboundedSender<Internal>,
    started: Instant,
) {
    let note = |text: String| {
        let _ = updates.send(Update::Timeline(TimelineEvent {
            at_ms: started.elapsed().as_millis() as u64,
            source: "operator".to_string(),
            kind: TimelineKind::Note { text },
        }));
    };
    let mut client: Option<(SocketAddr, Client)> = None;
    while let Some(s) = submissions.recv().await {
        if client.as_ref().is_none_or(|(addr, _)| *addr != s.addr) {
            match Client::connect(&s.addr.to_string(), "operator", secret.as_deref()).await {
                Ok(c) => client = Some((s.addr, c)),
                Err(e) => {
                    note(format!("cannot submit: {e}"));
                    continue;
                }
            }
        }
        let Some((_, c)) = client.as_mut() else {
            continue;
        };
        let request = c.request(Message::Submit {
            data: s.data.clone(),
            count: s.count,
            priority: s.priority,
            token: None,
            notify: false,
        });
        // A paused primary never answers: give up after a while rather than hold the rest.
        match tokio::time::timeout(Duration::from_secs(30), request).await {
            Ok(Ok(Message::Accepted { jobs, last })) => {
                let jobs = crate::protocol::message::accepted_ids(&jobs, last);
                let range = match (jobs.first(), jobs.last()) {
                    (Some(a), Some(b)) if a != b => format!("{a} … {b}"),
                    (Some(a), _) => a.to_string(),
                    _ => String::new(),
                };
                note(format!("submitted {} × {:?}: {range}", s.count, s.data));
                let _ = internal.send(Internal::Accepted(jobs));
            }
            Ok(Ok(Message::Error { message })) => note(format!("submit refused: {message}")),
            Ok(Ok(Message::NotPrimary { .. })) => {
                client = None;
                note(format!(
                    "{} × {:?} not accepted: that master is no longer the primary; submit again",
                    s.count, s.data
                ));
            }
            Ok(Ok(other)) => note(format!("submit: unexpected reply {other:?}")),
            Ok(Err(e)) => {
                client = None;
                note(format!("cannot submit: {e}"));
            }
            Err(_) => {
                client = None;
                note("submit: no reply from the primary in 30s".to_string());
            }
        }
    }
}

/// Subscribes to one master's events, reconnecting whenever it is gone. Every master is
/// followed at once: events count from the primary, and a takeover from any master (which makes
/// it the primary) is seen the moment it happens.
async fn follow_master(
    name: String,
    addr: SocketAddr,
    secret: Option<String>,
    internal: mpsc::UnboundedSender<Internal>,
    shutdown: CancellationToken,
) {
    let addr = addr.to_string();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if let Ok(mut client) = Client::connect(&addr, "supervisor", secret.as_deref()).await
            && client.send(Message::Subscribe).await.is_ok()
        {
            loop {
                let message = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    m = client.receive() => m,
                };
                match message {
                    Ok(envelope) => {
                        if let Message::Event { event } = envelope.message
                            && internal
                                .send(Internal::Cluster {
                                    from: name.clone(),
                                    event,
                                })
                                .is_err()
                        {
                            return;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}
