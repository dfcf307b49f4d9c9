//! What a caller holds: [`launch`] starts a topology and returns a [`SupervisorHandle`], through
//! which it sends commands, reads the run's feed (updates, log lines and the rest), and finally
//! stops the run.

use std::path::Path;

use super::*;

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
    /// The topology has no master, and no chat servers to run without one.
    #[error(
        "the topology has no master: without one only chat servers (and their brokers and bots) run, and it has none"
    )]
    NoMaster,
    /// The state directory cannot be used.
    #[error("{0}")]
    InUse(#[from] crate::state_dir::StateDirError),
    /// The certificates of encrypted links could not be made or read.
    #[error("encrypted links: {0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A running topology.
pub struct SupervisorHandle {
    /// Where to send commands.
    pub commands: mpsc::Sender<Request>,
    /// The primary's real address (none in a topology without masters: chat servers only).
    pub coordinator: Option<SocketAddr>,
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
    /// The run's peer secret: what the launcher's own connections (the console's) prove.
    pub peer_key: String,
    /// Where feed items go.
    pub feeder: feed::Feeder,
    /// Where the console's chat pane posts (none without chat servers).
    pub chat: Option<mpsc::UnboundedSender<Message>>,
    /// What the run is, as its recording begins.
    pub info: feed::RunInfo,
    /// Where this run is recorded.
    pub recording: PathBuf,
    /// The one reading of the main cluster, which the supervisor advances: the console shows
    /// this one rather than reading the events a second time.
    pub reading: Reading,
    /// The other clusters' readings, by cluster.
    pub other_readings: BTreeMap<String, Reading>,
    /// The feed since the launch began, for the first [`SupervisorHandle::feed`].
    first_feed: std::sync::Mutex<Option<broadcast::Receiver<Arc<feed::Stamped>>>>,
    recorder: tokio::task::JoinHandle<()>,
    submits_in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    loans_open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SupervisorHandle {
    /// The feed: the first call gets everything since the launch began, later calls what comes
    /// from now on.
    pub fn feed(&self) -> broadcast::Receiver<Arc<feed::Stamped>> {
        let first = self
            .first_feed
            .lock()
            .ok()
            .and_then(|mut first| first.take());
        first.unwrap_or_else(|| self.feeder.subscribe())
    }

    /// Submissions (scenario steps, the console's) sent to the primary and not yet answered.
    pub fn submissions_in_flight(&self) -> usize {
        self.submits_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Loans of workers between clusters not over yet (lent workers not home).
    pub fn loans_open(&self) -> usize {
        self.loans_open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stops every node and returns the report.
    pub async fn stop(self) -> Option<RunReport> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Request::Stop(tx)).await.ok()?;
        let report = rx.await.ok();
        let _ = self.task.await;
        // The recording's last lines, written once the nodes are stopped.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.recorder).await;
        report
    }
}

/// Launches `topology`: every master listening, every worker started. Returns once the masters
/// are ready; workers join while the run goes on.
pub async fn launch(
    mut topology: Topology,
    options: RunOptions,
) -> Result<SupervisorHandle, LaunchError> {
    let decision = crate::state_dir::prepare(&options.state_dir, options.start)?;
    crate::memory::keep_freed_pages();
    std::fs::create_dir_all(options.state_dir.join("logs")).map_err(|source| {
        LaunchError::StateDir {
            path: options.state_dir.clone(),
            source,
        }
    })?;
    let (primary, newest_term) = primary_to_start(&topology, &options.state_dir)?;
    // The peer secret of this run: the topology's, or a fresh one that only the nodes started
    // here are given (in their environment, never on a command line).
    topology.globals.peer_secret = Some(topology.peer_key());
    let started = Instant::now();
    // The supervisor's updates and the nodes' log lines go into the feed as they are said; the
    // recorder and the first reader (a console, a headless run) read it from the start, so what
    // the launch itself says (a resumed run, nodes starting) reaches them however late they
    // begin to read.
    let (feeder, to_record) = feed::Feeder::new(started);
    let first_feed = feeder.subscribe();
    let to_feed = feed::News::new(feeder.clone(), feed::Feed::Update);
    let logs_to_feed = feed::News::new(feeder.clone(), feed::Feed::Log);

    let sink = LogSink::start(options.state_dir.join("logs"), logs_to_feed, started);
    let shutdown = CancellationToken::new();
    let declared = topology
        .connections
        .iter()
        .map(|c| (c.from.clone(), c.to.clone(), c.link.clone()));
    let mut shaper = LinkShaper::new(declared, options.seed, shutdown.clone());
    if topology.policies.heartbeat.udp {
        shaper.carry_datagrams();
    }
    let tls = super::secure::LaunchTls::prepare(&topology, &options.state_dir, &mut shaper)?;
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    // Changes of the rules of links nodes shape themselves go out on their control channels.
    let (link_control, mut to_nodes) = mpsc::unbounded_channel();
    shaper.tell_nodes_by(link_control);
    let news = internal_tx.clone();
    tokio::spawn(async move {
        while let Some((node, line)) = to_nodes.recv().await {
            if news.send(TaskNews::LinkControl { node, line }).is_err() {
                return;
            }
        }
    });
    let order = start_order(&topology, &primary);
    let nodes = order
        .iter()
        .filter_map(|name| topology.node(name))
        .map(|node| (node.name.clone(), SupervisedNode::new(node, started)))
        .collect();
    let submits_in_flight = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let loans_open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let submits = {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(submitter(
            rx,
            submits_in_flight.clone(),
            topology.peer_key(),
            to_feed.clone(),
            internal_tx.clone(),
            started,
        ));
        tx
    };
    let pace = crate::clock::Pace::new(topology.policies.time.scale);
    let job_histories = options.job_histories;
    let mut supervisor = Supervisor {
        topology,
        shared_topology: None,
        options,
        started,
        nodes,
        order,
        others: BTreeMap::new(),
        loans: Default::default(),
        loans_open: loans_open.clone(),
        view: Reading::new(ClusterView::new(&primary, newest_term, job_histories)),
        primary_addr: None,
        resubscribe: BTreeMap::new(),
        last_live: BTreeMap::new(),
        subscribed: BTreeSet::new(),
        resumed: match &decision {
            Decision::Resume { earlier, .. } => Some(earlier.clone()),
            Decision::Fresh { .. } => None,
        },
        record: RunRecord::begin().resuming(match &decision {
            Decision::Resume { earlier, .. } => earlier.as_ref(),
            Decision::Fresh { .. } => None,
        }),
        shaper,
        tls,
        pace,
        tracker: FaultTracker::default(),
        updates: to_feed,
        sink,
        internal: internal_tx,
        submits,
        submits_in_flight: submits_in_flight.clone(),
        commands: None,
        acknowledged: BTreeSet::new(),
        expectations: Default::default(),
        chat_entries: BTreeMap::new(),
        checkers: BTreeMap::new(),
        shutdown,
    };
    // The other clusters, each read from its own primary (the topology's, until one takes
    // over).
    let main = supervisor.main_cluster().to_string();
    let others: Vec<(String, String)> = supervisor
        .topology
        .clusters()
        .into_iter()
        .filter(|c| *c != main)
        .filter_map(|c| {
            Some((
                c.to_string(),
                supervisor.topology.primary_of(c)?.name.clone(),
            ))
        })
        .collect();
    for (cluster, primary) in others {
        supervisor
            .others
            .insert(cluster, super::clusters::OtherCluster::new(&primary));
    }
    // Clocks are read against the launcher's own.
    let epoch = crate::clock::system_ms_at(started);
    supervisor.view.write().clocks = crate::view::Clocks::new(epoch);
    for other in supervisor.others.values_mut() {
        other.view.write().clocks = crate::view::Clocks::new(epoch);
    }
    if supervisor.topology.has_clusters() {
        let masters: Vec<(String, String)> = supervisor
            .topology
            .nodes_of(NodeKind::Master)
            .map(|n| (n.name.clone(), n.cluster.clone()))
            .collect();
        supervisor.tracker.know_clusters(masters);
    }
    let mut internal_rx = internal_rx;
    if let Err(e) = supervisor.start_all(&mut internal_rx).await {
        supervisor.stop_all().await;
        return Err(e);
    }
    let coordinator = supervisor.primary_addr;
    supervisor.write_record();
    let nodes = supervisor.statuses();
    let primary = (
        supervisor.view.read().primary.clone(),
        supervisor.view.read().term,
    );

    let shaper = supervisor.shaper.clone();
    let peer_key = supervisor.topology.peer_key();
    let (commands, commands_rx) = mpsc::channel(256);
    supervisor.commands = Some(commands.downgrade());
    let info = supervisor.run_info(&nodes);
    let masters = supervisor
        .master_addresses()
        .into_iter()
        .map(|(_, addr)| addr.to_string())
        .collect();
    feed::spawn(
        &feeder,
        feed::Sources {
            shaper: shaper.clone(),
            masters,
            secret: supervisor.topology.globals.cluster_secret.clone(),
        },
        supervisor.shutdown.clone(),
    );
    let chat = feed::spawn_chat(
        &feeder,
        &nodes,
        peer_key.clone(),
        supervisor.shutdown.clone(),
    );
    let recording = record::new_dir(&supervisor.options.state_dir);
    let recorder = record::spawn(
        recording.clone(),
        info.clone(),
        to_record,
        commands.downgrade(),
        supervisor.shutdown.clone(),
    );
    let reading = supervisor.view.clone();
    let other_readings = supervisor
        .others
        .iter()
        .map(|(cluster, other)| (cluster.clone(), other.view.clone()))
        .collect();
    let task = tokio::spawn(supervisor.run(commands_rx, internal_rx));
    Ok(SupervisorHandle {
        reading,
        other_readings,
        commands,
        coordinator,
        started,
        nodes,
        primary,
        start: decision,
        shaper,
        peer_key,
        feeder,
        chat,
        info,
        recording,
        first_feed: std::sync::Mutex::new(Some(first_feed)),
        recorder,
        submits_in_flight,
        loans_open,
        task,
    })
}

/// The master to start first, and its term: whoever took over last, as the journals say
/// (after a failover that is not the topology's primary); the others find it and follow.
/// Without masters, none ("" in term 0): only chat servers, brokers and bots run then, and
/// workers, which need a master, cannot.
fn primary_to_start(topology: &Topology, state_dir: &Path) -> Result<(String, u64), LaunchError> {
    let Some(primary) = topology.primary() else {
        let chat_only = topology.nodes_of(NodeKind::Chat).next().is_some()
            && topology.nodes_of(NodeKind::Worker).next().is_none();
        return if chat_only {
            Ok((String::new(), 0))
        } else {
            Err(LaunchError::NoMaster)
        };
    };
    let mut primary = primary.name.clone();
    let mut newest_term = 0;
    for master in topology.nodes_of(NodeKind::Master) {
        let path = crate::journal::path_for(state_dir, &master.name);
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
    Ok((primary, newest_term))
}

/// Every node, in the order they start: masters (the primary first), then the other kinds.
fn start_order(topology: &Topology, primary: &str) -> Vec<String> {
    NodeKind::ALL
        .iter()
        .flat_map(|kind| {
            let mut of_kind: Vec<&Node> = topology.nodes_of(*kind).collect();
            of_kind.sort_by_key(|n| n.name != primary);
            of_kind
                .into_iter()
                .map(|n| n.name.clone())
                .collect::<Vec<_>>()
        })
        .collect()
}
