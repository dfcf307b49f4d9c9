//! The coordinator: registers workers, queues jobs, assigns them, detects failures.
//!
//! It is a synchronous state machine. Its driver feeds it [`Input`]s — a connection opened, a
//! message received, a connection closed, a clock tick — each with the current time in
//! milliseconds, and carries out the [`Output`]s it returns: messages to send, connections to
//! close, events to publish. It never touches a socket or reads a clock, so the tests drive it
//! with made-up time and no network.
//!
//! How a fault plays out, in the terms of a lecture:
//!
//! 1. Workers send a heartbeat every `interval`. On each tick the **failure detector** looks at
//!    how long each worker has been silent: past `suspect_after` it is *suspect* (no new jobs go
//!    to it), past `timeout` it is *dead*. A worker whose connection closes is dead at once.
//! 2. A dead worker's unfinished jobs are **requeued** and, in the same step, **reassigned** to
//!    the workers that have free slots.
//! 3. If the "dead" worker was only paused, it comes back: it *rejoins*, and the jobs it still
//!    runs that others have taken are cancelled on it. If it finishes one anyway, the first
//!    result is kept and the second is counted as a **duplicate** — at-least-once execution,
//!    made visible.
//!
//! Every change of jobs and workers is an [`EventKind`] applied by [`ClusterState::apply`].

pub mod balancer;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, info, warn};

use crate::clock::{LamportClock, Millis};
use crate::protocol::Dialect;
use crate::protocol::auth;
use crate::protocol::message::{
    ACCEPTED_LISTED, Envelope, Health, JobCounts, JobId, JobState, Message, StatusReport,
    WorkerCounts,
};
use crate::role::event::{ClusterEvent, EventKind};
use crate::role::job::JobKind;
use crate::topology::{Algorithm, Heartbeat, MasterRole, Retry, Topology, User, UserRole};
use balancer::{Balancer, Candidate};
pub use state::{ClusterState, Job, JobQueue, WorkerRecord};

pub use crate::role::ConnId;

/// The longest job data accepted, in bytes.
pub const MAX_DATA: usize = 4096;
/// The most copies one `submit` may ask for.
pub const MAX_COUNT: u32 = 100_000;
/// How many jobs `jobs` lists when the client does not say.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// The most events sent to a backup and not yet acknowledged (well under a connection's queue).
pub const REPLICA_WINDOW: u64 = 1024;
/// The most bytes of events in one `history` part, well under the 64 KiB line limit.
pub const HISTORY_PART: usize = 32 * 1024;

/// How a coordinator behaves: from the topology, or made up by tests.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Its node name.
    pub name: String,
    /// Its term (1 until failover exists).
    pub term: u64,
    /// Failure detection for native workers.
    pub heartbeat: Heartbeat,
    /// Silence after which a classic worker is dead: classic lab code heartbeats far less often
    /// than the heartbeat policy asks, so it is held to `health_check_interval` (if longer).
    pub classic_timeout: Duration,
    /// How workers are chosen.
    pub algorithm: Algorithm,
    /// What happens to failed jobs.
    pub retry: Retry,
    /// `CLUSTER_SECRET`: nodes must prove they know it.
    pub secret: Option<String>,
    /// Whether classic peers may connect when there is a secret (they cannot authenticate).
    pub allow_classic: bool,
    /// Accounts; when there are any, submitting needs a login token.
    pub users: Vec<User>,
    /// Seed for the random choices (the `random` algorithm, tokens, nonces).
    pub seed: u64,
    /// Connections kept open at most; past this the oldest idle client is dropped.
    pub max_connections: usize,
    /// A connection that has said nothing valid for this long is closed.
    pub idle_timeout: Duration,
    /// Primary (serves) or backup (follows the primary, takes over when it dies).
    pub role: MasterRole,
    /// Whether a backup may take over (`policy load_balancing { failover }`).
    pub failover: bool,
    /// The primary's name, for a backup to tell workers where to go.
    pub primary: Option<String>,
    /// A backup: the name of the master to follow (one of `peers`).
    pub follow: Option<String>,
    /// Synchronous replication: replies wait until the backup has every event so far.
    pub sync: bool,
    /// Its rank in a Bully election: the highest-ranked master alive becomes primary.
    pub rank: u32,
    /// The other masters: how to reach each, and its rank.
    pub peers: Vec<PeerMaster>,
}

/// Another master, as a coordinator knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerMaster {
    /// Its node name.
    pub name: String,
    /// Where to reach it (`host:port`; a shaped link when tcluster launched the cluster).
    pub address: String,
    /// Its rank.
    pub rank: u32,
}

/// Each master's rank for the Bully election: the primary the topology names ranks highest, the
/// other masters follow in the order the file declares them.
pub fn master_ranks(topology: &Topology) -> Vec<(String, u32)> {
    let primary = topology.primary().map(|n| n.name.clone());
    let mut masters: Vec<String> = topology
        .nodes_of(crate::topology::NodeKind::Master)
        .map(|n| n.name.clone())
        .collect();
    masters.sort_by_key(|n| Some(n) != primary.as_ref());
    let n = masters.len() as u32;
    masters
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, n - i as u32))
        .collect()
}

impl CoordinatorConfig {
    /// The configuration for master `name` of a topology.
    pub fn from_topology(topology: &Topology, name: &str, seed: u64) -> Self {
        let p = &topology.policies;
        let ranks = master_ranks(topology);
        CoordinatorConfig {
            name: name.to_string(),
            term: 1,
            heartbeat: p.heartbeat.clone(),
            classic_timeout: p
                .heartbeat
                .timeout
                .max(p.load_balancing.health_check_interval),
            algorithm: p.load_balancing.algorithm,
            retry: p.retry.clone(),
            secret: topology.globals.cluster_secret.clone(),
            allow_classic: p.security.allow_classic,
            users: topology.users.clone(),
            seed,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(60),
            role: topology
                .node(name)
                .and_then(|n| n.role)
                .unwrap_or(MasterRole::Primary),
            failover: p.load_balancing.failover,
            primary: topology.primary().map(|n| n.name.clone()),
            follow: None,
            sync: p.replication.mode == crate::topology::ReplicationMode::Sync,
            rank: ranks.iter().find(|(n, _)| n == name).map_or(0, |(_, r)| *r),
            peers: topology
                .nodes_of(crate::topology::NodeKind::Master)
                .filter(|n| n.name != name)
                .filter_map(|n| {
                    Some(PeerMaster {
                        name: n.name.clone(),
                        address: format!("{}:{}", n.address, n.port?),
                        rank: ranks.iter().find(|(r, _)| *r == n.name)?.1,
                    })
                })
                .collect(),
        }
    }

    /// A configuration for tests: defaults everywhere.
    pub fn for_tests(name: &str) -> Self {
        CoordinatorConfig {
            name: name.to_string(),
            term: 1,
            heartbeat: Heartbeat::default(),
            classic_timeout: Duration::from_secs(5),
            algorithm: Algorithm::RoundRobin,
            retry: Retry::default(),
            secret: None,
            allow_classic: true,
            users: Vec::new(),
            seed: 1,
            max_connections: 64,
            idle_timeout: Duration::from_secs(60),
            role: MasterRole::Primary,
            failover: true,
            primary: None,
            follow: None,
            sync: true,
            rank: 1,
            peers: Vec::new(),
        }
    }
}

/// What the driver hands the coordinator.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A connection was accepted.
    Connected(ConnId),
    /// A message arrived on a connection, in the dialect of that connection.
    Received(ConnId, Dialect, Envelope),
    /// A connection closed.
    Disconnected(ConnId),
    /// A backup's link to its primary delivered a message.
    FromPrimary(Envelope),
    /// A backup's link to its primary closed (the primary died, or cannot be reached).
    PrimaryLost,
    /// The reply of another master to what [`Output::ToMaster`] sent it; `None` if it could not
    /// be reached or did not answer in time.
    FromMaster {
        /// The master.
        master: String,
        /// Its reply.
        reply: Option<Envelope>,
    },
    /// A line arrived that is not a message (bad JSON, an unknown type, not text, too long).
    /// The peer gets an error reply; with `fatal`, its connection is closed too.
    Invalid {
        /// The connection.
        conn: ConnId,
        /// What was wrong, for the reply and the log.
        reason: String,
        /// Close the connection (the line was too long to resynchronise safely).
        fatal: bool,
    },
    /// Time passed.
    Tick,
}

/// What the coordinator asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message on a connection.
    Send(ConnId, Envelope),
    /// Close a connection, after sending what is queued on it.
    Close(ConnId),
    /// An event happened: publish it to [`Coordinator::subscribers`] and watchers.
    Event(ClusterEvent),
    /// A backup: send this to the primary it follows.
    ToPrimary(Message),
    /// Send this to another master on a connection of its own, and hand back its first reply
    /// (or `None`) within `wait` as [`Input::FromMaster`].
    ToMaster {
        /// The master, one of [`CoordinatorConfig::peers`].
        master: String,
        /// What to send.
        envelope: Envelope,
        /// How long to wait for the reply.
        wait: Duration,
    },
    /// Follow this master (a name from [`CoordinatorConfig::peers`]): ask for its events after
    /// the ones this coordinator has. With `reset`, the coordinator has forgotten its state
    /// and starts over from the first event, and the journal must be emptied too.
    Follow {
        /// The master to follow.
        primary: String,
        /// Start over from the first event.
        reset: bool,
    },
}

/// What a connection turned out to be.
#[derive(Debug, Clone, PartialEq)]
enum Peer {
    /// Nothing valid said yet.
    Unknown,
    /// A registered worker.
    Worker(String),
    /// A client (submits, asks).
    Client,
    /// Receives every event.
    Subscriber,
    /// A backup, receiving the durable events.
    Follower,
}

#[derive(Debug)]
struct Conn {
    peer: Peer,
    dialect: Option<Dialect>,
    opened_at: Millis,
    /// Set once the peer proved it knows the secret (always true without a secret).
    authenticated: bool,
    /// The nonce this coordinator sent in its challenge.
    challenge: Option<String>,
    /// The name the peer gave in `hello`.
    hello_name: String,
}

/// When a worker was last heard from.
#[derive(Debug, Clone, Copy)]
struct Liveness {
    last_heard: Millis,
    last_clock: u64,
}

/// The coordinator.
pub struct Coordinator {
    config: CoordinatorConfig,
    state: ClusterState,
    clock: LamportClock,
    now: Millis,
    conns: BTreeMap<ConnId, Conn>,
    /// The connection of each connected worker.
    worker_conns: HashMap<String, ConnId>,
    liveness: HashMap<String, Liveness>,
    balancer: Balancer,
    /// Login tokens and the account they belong to.
    tokens: HashMap<String, String>,
    /// Who asked to hear when a job ends.
    notify: HashMap<JobId, ConnId>,
    subscribers: BTreeSet<ConnId>,
    rng: SmallRng,
    out: Vec<Output>,
    /// Serving as primary (a backup is not, until it takes over).
    serving: bool,
    /// Every durable event so far, for backups that follow (replica sequence numbers index it).
    history: Vec<ClusterEvent>,
    /// Backups following this primary.
    followers: BTreeSet<ConnId>,
    /// A backup: when the primary was last heard from.
    last_primary_heard: Millis,
    /// A primary: when followers were last pinged.
    last_follower_ping: Millis,
    /// A primary: how many events each follower has acknowledged.
    acked: BTreeMap<ConnId, u64>,
    /// A primary: how many events each follower has been sent.
    streamed: BTreeMap<ConnId, u64>,
    /// A primary with a sync backup: replies waiting until the backup has this many events.
    held: VecDeque<(u64, Output)>,
    /// When the oldest held reply started waiting.
    held_since: Millis,
    /// Not serving: the master this one follows, and whether its link is up.
    leader: Option<String>,
    link_up: bool,
    /// Not serving: the link to the leader closed — it died or left — rather than fell silent.
    leader_closed: bool,
    /// A Bully election this master is running, if any.
    election: Option<Election>,
    /// Not serving: workers that came here having lost the primary, their registrations held
    /// until this master serves (or gives up on them).
    pending: BTreeMap<ConnId, PendingWorker>,
    /// Not serving: workers that lost the primary too, and when they came — the witnesses a
    /// master needs before it takes over from a primary that is only silent.
    witnesses: BTreeMap<String, Millis>,
    /// Masters following this primary, by connection.
    follower_names: BTreeMap<ConnId, String>,
    /// A primary: why the follower being closed now is dropped (for its `backup_lost` event).
    dropping: Option<String>,
    /// Serving: when to announce the victory again to masters that do not follow yet.
    next_announce: Millis,
    /// Serving: replies are held because the backup and the workers are both silent.
    holding_alone: bool,
}

/// One round of a Bully election.
#[derive(Debug, Clone)]
struct Election {
    /// When this round began.
    started: Millis,
    /// Why the election began, for the takeover's reason.
    cause: String,
    /// Masters that outrank this one, asked and not heard from yet.
    waiting: BTreeSet<String>,
    /// A master that outranks this one answered: wait for its victory.
    answered: Option<String>,
    /// The last thing said on the timeline, so a repeated round does not repeat it.
    said: Option<String>,
}

/// A worker's registration, held by a master that does not serve (yet).
#[derive(Debug, Clone)]
struct PendingWorker {
    dialect: Dialect,
    name: String,
    slots: u32,
    running: Vec<JobId>,
    at: Millis,
}

impl Coordinator {
    /// A coordinator with no jobs and no workers.
    pub fn new(config: CoordinatorConfig) -> Self {
        let mut coordinator = Coordinator {
            balancer: Balancer::new(config.algorithm, config.seed),
            rng: SmallRng::seed_from_u64(config.seed.wrapping_add(1)),
            serving: config.role == MasterRole::Primary,
            config,
            state: ClusterState::new(),
            clock: LamportClock::default(),
            now: 0,
            conns: BTreeMap::new(),
            worker_conns: HashMap::new(),
            liveness: HashMap::new(),
            tokens: HashMap::new(),
            notify: HashMap::new(),
            subscribers: BTreeSet::new(),
            out: Vec::new(),
            history: Vec::new(),
            followers: BTreeSet::new(),
            last_primary_heard: 0,
            last_follower_ping: 0,
            acked: BTreeMap::new(),
            streamed: BTreeMap::new(),
            held: VecDeque::new(),
            held_since: 0,
            leader: None,
            link_up: false,
            leader_closed: false,
            election: None,
            pending: BTreeMap::new(),
            witnesses: BTreeMap::new(),
            follower_names: BTreeMap::new(),
            dropping: None,
            next_announce: 0,
            holding_alone: false,
        };
        coordinator.leader = coordinator.config.follow.clone();
        coordinator.link_up = coordinator.leader.is_some();
        coordinator
    }

    /// Its configuration.
    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Jobs, workers and the queue.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// Connections that receive every event.
    pub fn subscribers(&self) -> &BTreeSet<ConnId> {
        &self.subscribers
    }

    /// Its Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock.now()
    }

    /// Rebuilds the state from a journal's events. Workers that were alive get one timeout to
    /// register again (with the jobs they still run) before their jobs are requeued; jobs that
    /// were waiting out a retry backoff may run at once (their times were the old run's clock).
    pub fn restore(&mut self, events: &[ClusterEvent]) {
        for event in events {
            self.state.apply(event);
            self.clock.advance_to(event.clock);
            if event.kind.is_durable() {
                self.history.push(event.clone());
            }
        }
        self.grace_for_known_workers();
        if !events.is_empty() {
            info!(
                events = events.len(),
                jobs = self.state.jobs.len(),
                workers = self.state.workers.len(),
                "state restored from the journal"
            );
        }
    }

    /// After a restore or a takeover: workers that were alive get one timeout from now to
    /// register (with the jobs they run) before their jobs are requeued, and jobs waiting out a
    /// retry backoff (timed by another clock) may run at once.
    fn grace_for_known_workers(&mut self) {
        for (name, worker) in &self.state.workers {
            if worker.health != Health::Dead {
                self.liveness.insert(
                    name.clone(),
                    Liveness {
                        last_heard: self.now,
                        last_clock: 0,
                    },
                );
            }
        }
        self.state.queue.promote_due(Millis::MAX);
    }

    /// Feeds one input at time `now` and returns what to do.
    pub fn step(&mut self, now: Millis, input: Input) -> Vec<Output> {
        self.now = now.max(self.now);
        match input {
            Input::Connected(conn) => self.connected(conn),
            Input::Received(conn, dialect, envelope) => self.received(conn, dialect, envelope),
            Input::Disconnected(conn) => self.disconnected(conn),
            Input::Invalid {
                conn,
                reason,
                fatal,
            } => {
                warn!(conn, %reason, "bad input");
                self.send(conn, Message::Error { message: reason });
                if fatal {
                    self.close(conn);
                }
            }
            Input::Tick => self.tick(),
            Input::FromPrimary(envelope) => self.on_primary_message(envelope),
            Input::PrimaryLost => {
                self.link_up = false;
                if !self.serving {
                    // A new round even if one runs: what the masters above said before the link
                    // closed (a cut healing, say) is out of date.
                    self.leader_closed = true;
                    self.start_election("the primary's connection closed".to_string());
                }
            }
            Input::FromMaster { master, reply } => self.master_replied(master, reply),
        }
        self.state.queue.promote_due(self.now);
        if self.serving {
            self.dispatch();
        }
        self.hold_for_backup();
        std::mem::take(&mut self.out)
    }

    // ----- connections -----

    fn connected(&mut self, conn: ConnId) {
        if self.conns.len() >= self.config.max_connections {
            // Make room: a flood of idle connections must not lock out the cluster. The oldest
            // connection that never said anything valid goes first; failing that, the oldest
            // client not waiting for job notices. Workers and subscribers are never dropped.
            let waiting: BTreeSet<ConnId> = self.notify.values().copied().collect();
            let victim = self
                .conns
                .iter()
                .filter_map(|(&id, c)| match c.peer {
                    Peer::Unknown => Some((0, c.opened_at, id)),
                    Peer::Client if !waiting.contains(&id) => Some((1, c.opened_at, id)),
                    _ => None,
                })
                .min()
                .map(|(_, _, id)| id);
            match victim {
                Some(victim) => {
                    warn!(
                        conn = victim,
                        "too many connections: closing the oldest idle one"
                    );
                    self.send(
                        victim,
                        Message::Error {
                            message: "too many connections: closing this idle one".into(),
                        },
                    );
                    self.close(victim);
                }
                None => {
                    warn!(conn, "too many connections: refusing a new one");
                    self.send_raw(
                        conn,
                        Message::Error {
                            message: "too many connections".into(),
                        },
                    );
                    self.out.push(Output::Close(conn));
                    return;
                }
            }
        }
        self.conns.insert(
            conn,
            Conn {
                peer: Peer::Unknown,
                dialect: None,
                opened_at: self.now,
                authenticated: self.config.secret.is_none(),
                challenge: None,
                hello_name: String::new(),
            },
        );
    }

    fn disconnected(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.subscribers.remove(&conn);
        self.pending.remove(&conn);
        let backup = self.follower_names.remove(&conn);
        if self.followers.remove(&conn) {
            self.acked.remove(&conn);
            self.streamed.remove(&conn);
            if self.serving
                && let Some(backup) = backup
            {
                let reason = std::mem::take(&mut self.dropping)
                    .unwrap_or_else(|| "its link closed".to_string());
                self.emit(EventKind::BackupLost { backup, reason });
            }
            if self.followers.is_empty() && !self.held.is_empty() {
                warn!("the backup is gone: replies no longer wait for it");
            }
            self.release_held();
        }
        self.notify.retain(|_, c| *c != conn);
        if let Peer::Worker(name) = c.peer
            && self.worker_conns.get(&name) == Some(&conn)
        {
            self.worker_conns.remove(&name);
            if self.health(&name) != Some(Health::Dead) {
                self.declare_dead(&name, "connection closed".to_string());
            }
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.out.push(Output::Close(conn));
        self.disconnected(conn);
    }

    // ----- messages -----

    fn received(&mut self, conn: ConnId, dialect: Dialect, env: Envelope) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let first = c.dialect.is_none();
        c.dialect.get_or_insert(dialect);
        if first && dialect == Dialect::Classic && !c.authenticated && !self.config.allow_classic {
            warn!(conn, "classic peer refused: the cluster has a secret");
            self.send(
                conn,
                Message::Error {
                    message:
                        "this cluster requires authentication, which the classic protocol cannot do"
                            .into(),
                },
            );
            self.close(conn);
            return;
        }
        if dialect == Dialect::Classic {
            // A classic peer cannot authenticate; it is let in only where policy allows.
            c.authenticated = true;
        }
        self.clock.observe(env.clock);
        if let Some(term) = env.term
            && term > self.config.term
        {
            debug!(conn, term, "peer reports a higher term");
        }

        let authenticated = self.conns.get(&conn).is_some_and(|c| c.authenticated);
        if !authenticated && !matches!(env.message, Message::Hello { .. } | Message::Auth { .. }) {
            warn!(conn, from = %env.from, "message before authentication");
            self.send(
                conn,
                Message::Error {
                    message: "this cluster requires authentication: start with hello".into(),
                },
            );
            self.close(conn);
            return;
        }

        // Any message from a worker is a sign of life.
        if let Some(Peer::Worker(name)) = self.conns.get(&conn).map(|c| c.peer.clone()) {
            self.heard_from(&name, env.clock);
        }

        // A backup holds a worker that comes to it: the worker lost the primary, which is what
        // this master needs to know before it takes over from a primary that is only silent.
        if !self.serving
            && let Message::Register { slots, running } = &env.message
            && !env.from.is_empty()
        {
            info!(worker = %env.from, "a worker lost the primary and came here: holding it");
            self.witnesses.insert(env.from.clone(), self.now);
            self.pending.insert(
                conn,
                PendingWorker {
                    dialect,
                    name: env.from.clone(),
                    slots: *slots,
                    running: running.clone(),
                    at: self.now,
                },
            );
            self.advance_election();
            return;
        }
        // A held worker's heartbeats and results wait with it (it is told where to go if this
        // master does not take over).
        if !self.serving && self.pending.contains_key(&conn) {
            return;
        }
        // A backup serves nobody: workers and clients are sent to the primary.
        if !self.serving
            && matches!(
                env.message,
                Message::Register { .. }
                    | Message::Submit { .. }
                    | Message::Heartbeat { .. }
                    | Message::Follow { .. }
                    | Message::JobDone { .. }
                    | Message::JobFailed { .. }
                    | Message::Started { .. }
                    | Message::Progress { .. }
            )
        {
            self.send(
                conn,
                Message::NotPrimary {
                    primary: self.config.primary.clone(),
                },
            );
            if matches!(
                env.message,
                Message::Register { .. } | Message::Follow { .. }
            ) {
                self.close(conn);
            }
            return;
        }

        let from = env.from.clone();
        let term = env.term;
        match env.message {
            Message::Hello { nonce, .. } => self.hello(conn, from, nonce),
            Message::Election => {
                if self.serving {
                    self.send(conn, Message::Victory);
                } else {
                    self.send(conn, Message::Answer);
                    if self.election.is_none()
                        && let Some(cause) = self.leader_lost()
                    {
                        self.start_election(cause);
                    }
                }
            }
            Message::Victory => self.victory_from(&from, term),
            Message::Auth { proof } => self.auth(conn, &proof),
            Message::Register { slots, running } => {
                self.register(conn, dialect, from, slots, Some(running));
            }
            Message::Heartbeat { running } => {
                if let Some(name) = self.worker_of(conn)
                    && let Some(running) = running
                {
                    self.cancel_taken(&name, conn, &running);
                }
            }
            Message::Started { job } => {
                if let Some(name) = self.worker_of(conn)
                    && self.runs_on(job, &name)
                {
                    self.emit(EventKind::JobStarted { job, worker: name });
                }
            }
            Message::Progress { job, percent } => {
                if let Some(name) = self.worker_of(conn)
                    && self.runs_on(job, &name)
                {
                    self.emit(EventKind::JobProgress {
                        job,
                        worker: name,
                        percent: percent.min(100),
                    });
                }
            }
            Message::JobDone { job, result } => {
                if let Some(name) = self.worker_of(conn) {
                    self.job_done(conn, &name, job, result);
                }
            }
            Message::JobFailed { job, error } => {
                if let Some(name) = self.worker_of(conn) {
                    self.job_failed(&name, job, error);
                }
            }
            Message::Login { user, password } => self.login(conn, &user, &password),
            Message::Submit {
                data,
                count,
                priority,
                token,
                notify,
            } => {
                self.submit(conn, from, data, count, priority, token, notify);
            }
            Message::Status { job } => {
                self.mark_client(conn);
                let reply = match job {
                    Some(id) => match self.state.jobs.get(&id) {
                        Some(j) => Message::JobInfo { job: j.view() },
                        None => Message::Error {
                            message: format!("unknown job {id}"),
                        },
                    },
                    None => Message::StatusReport {
                        report: self.status_report(),
                    },
                };
                self.send(conn, reply);
            }
            Message::Jobs { state, limit } => {
                self.mark_client(conn);
                let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT);
                let matching: Vec<&Job> = self
                    .state
                    .jobs
                    .values()
                    .filter(|j| state.is_none_or(|s| j.state == s))
                    .collect();
                let total = matching.len();
                let jobs = matching[total.saturating_sub(limit)..]
                    .iter()
                    .map(|j| j.view())
                    .collect();
                self.send(conn, Message::JobList { jobs, total });
            }
            Message::Workers => {
                self.mark_client(conn);
                let workers = self.worker_views();
                self.send(conn, Message::WorkerList { workers });
            }

            Message::ReplicaAck { seq } => {
                if self.followers.contains(&conn) {
                    let count = self.acked.entry(conn).or_default();
                    *count = (*count).max(seq + 1);
                    self.stream_to(conn);
                    self.release_held();
                }
            }
            Message::Follow { after } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.peer = Peer::Follower;
                }
                self.followers.insert(conn);
                self.follower_names.insert(conn, from.clone());
                self.acked.insert(conn, after);
                info!(conn, from = %from, after, "a backup follows");
                self.emit(EventKind::BackupFollows {
                    backup: from.clone(),
                    after,
                });
                self.streamed.insert(conn, after.min(self.history_len()));
                self.stream_to(conn);
            }
            Message::Subscribe { history } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.peer = Peer::Subscriber;
                }
                self.subscribers.insert(conn);
                if history {
                    self.send_history(conn);
                    return;
                }
                let workers = self.worker_views();
                self.send(conn, Message::WorkerList { workers });
                let total = self.state.jobs.len();
                let jobs = self
                    .state
                    .jobs
                    .values()
                    .skip(total.saturating_sub(DEFAULT_LIST_LIMIT))
                    .map(Job::view)
                    .collect();
                self.send(conn, Message::JobList { jobs, total });
            }
            Message::Ping => self.send(conn, Message::Pong),
            Message::Error { message } => {
                info!(conn, from = %from, "peer reports an error: {message}");
            }
            other => {
                let json = Envelope {
                    from: String::new(),
                    clock: 0,
                    term: None,
                    message: other,
                }
                .to_json();
                let kind = serde_json::from_str::<serde_json::Value>(&json)
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
                    .unwrap_or_default();
                self.send(
                    conn,
                    Message::Error {
                        message: format!("`{kind}` is sent by a coordinator, not to one"),
                    },
                );
            }
        }
    }

    fn hello(&mut self, conn: ConnId, name: String, peer_nonce: Option<String>) {
        let Some(secret) = self.config.secret.clone() else {
            self.welcome(conn);
            return;
        };
        let nonce = self.random_hex();
        let proof =
            peer_nonce.map(|n| auth::proof(&secret, auth::COORDINATOR, &n, &self.config.name));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.challenge = Some(nonce.clone());
            c.hello_name = name;
        }
        self.send(conn, Message::Challenge { nonce, proof });
    }

    fn auth(&mut self, conn: ConnId, proof: &str) {
        let Some(secret) = self.config.secret.clone() else {
            self.welcome(conn);
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ok = c
            .challenge
            .take()
            .is_some_and(|nonce| auth::verify(&secret, auth::PEER, &nonce, &c.hello_name, proof));
        if ok {
            c.authenticated = true;
            info!(conn, peer = %c.hello_name, "authenticated");
            self.welcome(conn);
        } else {
            warn!(conn, peer = %c.hello_name, "authentication failed");
            self.send(
                conn,
                Message::Error {
                    message: "authentication failed".into(),
                },
            );
            self.close(conn);
        }
    }

    fn welcome(&mut self, conn: ConnId) {
        let heartbeat_ms = self.config.heartbeat.interval.as_millis() as u64;
        self.send(
            conn,
            Message::Welcome {
                coordinator: self.config.name.clone(),
                heartbeat_ms,
            },
        );
    }

    fn login(&mut self, conn: ConnId, user: &str, password: &str) {
        self.mark_client(conn);
        let role = self
            .config
            .users
            .iter()
            .find(|u| u.name == user && u.password == password)
            .map(|u| u.role);
        match role {
            Some(role) => {
                let token = self.random_hex();
                let role = match role {
                    UserRole::Operator => "operator",
                    UserRole::Student => "student",
                };
                self.tokens.insert(token.clone(), user.to_string());
                info!(conn, user, "logged in");
                self.send(
                    conn,
                    Message::LoggedIn {
                        token,
                        role: role.to_string(),
                    },
                );
            }
            None => {
                warn!(conn, user, "login failed");
                self.send(
                    conn,
                    Message::Error {
                        message: "wrong user name or password".into(),
                    },
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn submit(
        &mut self,
        conn: ConnId,
        from: String,
        data: String,
        count: u32,
        priority: i32,
        token: Option<String>,
        notify: bool,
    ) {
        self.mark_client(conn);
        let by = if self.config.users.is_empty() {
            if from.is_empty() {
                "client".to_string()
            } else {
                from
            }
        } else {
            match token.as_ref().and_then(|t| self.tokens.get(t)) {
                Some(user) => user.clone(),
                None => {
                    self.send(
                        conn,
                        Message::Error {
                            message: "log in first: this cluster has accounts (send login)".into(),
                        },
                    );
                    return;
                }
            }
        };
        if let Err(message) = check_job(&data, count) {
            self.send(conn, Message::Error { message });
            return;
        }
        let mut jobs = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let job = JobId(self.state.next_job);
            self.emit(EventKind::JobSubmitted {
                job,
                data: data.clone(),
                priority,
                by: by.clone(),
            });
            if notify {
                self.notify.insert(job, conn);
            }
            jobs.push(job);
        }
        let last = (jobs.len() > ACCEPTED_LISTED).then(|| jobs[jobs.len() - 1]);
        jobs.truncate(ACCEPTED_LISTED);
        self.send(conn, Message::Accepted { jobs, last });
    }

    // ----- workers -----

    fn register(
        &mut self,
        conn: ConnId,
        dialect: Dialect,
        name: String,
        slots: u32,
        running: Option<Vec<JobId>>,
    ) {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            self.send(
                conn,
                Message::Error {
                    message: "register needs a worker name in `from`".into(),
                },
            );
            return;
        }
        if !(1..=4096).contains(&slots) {
            self.send(
                conn,
                Message::Error {
                    message: format!("slots must be from 1 to 4096, found {slots}"),
                },
            );
            return;
        }
        if let Some(&other) = self.worker_conns.get(&name)
            && other != conn
        {
            if self.health(&name) == Some(Health::Dead) {
                // The old connection belongs to a worker declared dead: the newcomer replaces it.
                self.close(other);
            } else {
                warn!(conn, worker = %name, "a second worker with the same name");
                self.send(
                    conn,
                    Message::Error {
                        message: format!("a worker named {name} is already connected"),
                    },
                );
                self.close(conn);
                return;
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Peer::Worker(name.clone());
        }
        // Known but not connected: restored from the journal, or its connection went unnoticed.
        let reconnected = !self.worker_conns.contains_key(&name);
        self.worker_conns.insert(name.clone(), conn);
        self.liveness.insert(
            name.clone(),
            Liveness {
                last_heard: self.now,
                last_clock: 0,
            },
        );
        let classic = dialect == Dialect::Classic;
        match self.state.workers.get(&name) {
            None => self.emit(EventKind::WorkerJoined {
                worker: name.clone(),
                slots,
                classic,
            }),
            Some(record)
                if record.health == Health::Dead || record.slots != slots || reconnected =>
            {
                self.emit(EventKind::WorkerRejoined {
                    worker: name.clone(),
                    slots,
                });
            }
            Some(record) if record.health == Health::Suspect => {
                self.emit(EventKind::WorkerRecovered {
                    worker: name.clone(),
                });
            }
            Some(_) => {}
        }
        let heartbeat_ms = self.config.heartbeat.interval.as_millis() as u64;
        self.send(conn, Message::Registered { heartbeat_ms });
        if let Some(running) = running.filter(|_| !classic) {
            self.reconcile(&name, conn, &running);
        }
    }

    /// After a (re)registration: the worker says what it runs. Jobs nobody else took stay with
    /// it; jobs others took are cancelled on it; jobs it lost go back to the queue.
    fn reconcile(&mut self, name: &str, conn: ConnId, running: &[JobId]) {
        for &job in running {
            let Some(j) = self.state.jobs.get(&job) else {
                self.send(conn, Message::Cancel { job });
                continue;
            };
            let was_ours = j.worker.as_deref() == Some(name);
            match j.state {
                // Requeued when it died, and nobody has taken it since: it keeps the job.
                JobState::Queued if was_ours => self.emit(EventKind::JobReclaimed {
                    job,
                    worker: name.to_string(),
                }),
                JobState::Assigned | JobState::Running if was_ours => {}
                _ => self.send(conn, Message::Cancel { job }),
            }
        }
        let lost: Vec<JobId> = self
            .state
            .workers
            .get(name)
            .map(|w| {
                w.running
                    .iter()
                    .copied()
                    .filter(|j| !running.contains(j))
                    .collect()
            })
            .unwrap_or_default();
        for job in lost {
            self.emit(EventKind::JobRequeued {
                job,
                worker: name.to_string(),
                reason: format!("{name} no longer runs it"),
            });
        }
    }

    /// On a heartbeat: jobs the worker still runs that were given to others are cancelled on
    /// it. (Jobs missing from a heartbeat are not requeued: an `assign` may be in flight.)
    fn cancel_taken(&mut self, name: &str, conn: ConnId, running: &[JobId]) {
        for &job in running {
            let taken = match self.state.jobs.get(&job) {
                Some(j) => j.state.is_final() || j.worker.as_deref() != Some(name),
                None => true,
            };
            if taken {
                self.send(conn, Message::Cancel { job });
            }
        }
    }

    fn heard_from(&mut self, name: &str, clock: u64) {
        self.liveness.insert(
            name.to_string(),
            Liveness {
                last_heard: self.now,
                last_clock: clock,
            },
        );
        match self.health(name) {
            Some(Health::Suspect) => self.emit(EventKind::WorkerRecovered {
                worker: name.to_string(),
            }),
            Some(Health::Dead) => {
                let slots = self.state.workers.get(name).map_or(1, |w| w.slots);
                self.emit(EventKind::WorkerRejoined {
                    worker: name.to_string(),
                    slots,
                });
            }
            _ => {}
        }
    }

    fn job_done(&mut self, conn: ConnId, name: &str, job: JobId, result: String) {
        let Some(j) = self.state.jobs.get(&job) else {
            self.send(
                conn,
                Message::Error {
                    message: format!("unknown job {job}"),
                },
            );
            return;
        };
        if j.state.is_final() {
            self.emit(EventKind::DuplicateResult {
                job,
                worker: name.to_string(),
            });
            return;
        }
        // The first result wins, even from a worker that was given up on: the job is done.
        let also_on = j
            .worker
            .clone()
            .filter(|w| w != name && matches!(j.state, JobState::Assigned | JobState::Running));
        self.emit(EventKind::JobCompleted {
            job,
            worker: name.to_string(),
            result: result.clone(),
        });
        if let Some(other) = also_on
            && let Some(&other_conn) = self.worker_conns.get(&other)
        {
            self.send(other_conn, Message::Cancel { job });
        }
        self.finished(job, JobState::Completed, result);
    }

    fn job_failed(&mut self, name: &str, job: JobId, error: String) {
        let Some(j) = self.state.jobs.get(&job) else {
            return;
        };
        if !self.runs_on(job, name) {
            debug!(%job, worker = name, "failure of a run that was reassigned; ignored");
            return;
        }
        let failures = j.failures + 1;
        let retry_in_ms = (failures < self.config.retry.max_attempts).then(|| {
            let backoff = self.config.retry.backoff.as_millis() as u64;
            backoff.saturating_mul(1 << (failures - 1).min(20))
        });
        self.emit(EventKind::JobFailed {
            job,
            worker: name.to_string(),
            error: error.clone(),
            retry_in_ms,
        });
        if retry_in_ms.is_none() {
            self.finished(job, JobState::Failed, error);
        }
    }

    /// Tells whoever asked that a job ended.
    fn finished(&mut self, job: JobId, state: JobState, result: String) {
        if let Some(conn) = self.notify.remove(&job) {
            self.send(conn, Message::JobFinished { job, state, result });
        }
    }

    fn declare_dead(&mut self, name: &str, reason: String) {
        info!(worker = name, %reason, "worker declared dead");
        self.emit(EventKind::WorkerDead {
            worker: name.to_string(),
            reason,
        });
        let running: Vec<JobId> = self
            .state
            .workers
            .get(name)
            .map(|w| w.running.iter().copied().collect())
            .unwrap_or_default();
        for job in running {
            self.emit(EventKind::JobRequeued {
                job,
                worker: name.to_string(),
                reason: format!("{name} died"),
            });
        }
    }

    // ----- time -----

    fn tick(&mut self) {
        if !self.serving {
            self.expire_pending();
            if self.election.is_some() {
                self.advance_election();
            } else if let Some(cause) = self.leader_lost() {
                self.start_election(cause);
            }
            return;
        }
        // Masters that do not follow this primary hear of it again now and then: one that was
        // away (paused, cut off) learns the term and steps down or follows.
        if self.now >= self.next_announce {
            self.next_announce = self.now + self.timeout_ms();
            self.announce_victory();
        }
        // A backup that does not acknowledge within the heartbeat timeout is dropped, so a dead
        // or paused backup cannot stall the cluster (the replies then go out unreplicated).
        // But only while the workers still hear this primary: one cut off from everyone must
        // not promise what it cannot replicate, since a backup may take over meanwhile.
        if !self.held.is_empty()
            && self.now.saturating_sub(self.held_since)
                > self.config.heartbeat.timeout.as_millis() as u64
        {
            match self.workers_still_here() {
                Ok(()) => {
                    warn!("the backup has not acknowledged for too long: dropping it");
                    let silent = self.now.saturating_sub(self.held_since);
                    for conn in self.followers.clone() {
                        self.dropping = Some(format!("no acknowledgement for {silent}ms: dropped"));
                        self.close(conn);
                    }
                }
                Err(why) => {
                    if !self.holding_alone {
                        warn!("the backup and the workers are silent ({why}): holding every reply");
                        self.holding_alone = true;
                    }
                }
            }
        } else {
            self.holding_alone = false;
        }
        // Backups learn the primary is alive from these, even when nothing happens.
        let interval = (self.config.heartbeat.interval.as_millis() as u64 / 2).max(1);
        if self.now.saturating_sub(self.last_follower_ping) >= interval {
            self.last_follower_ping = self.now;
            // Workers learn from these too: a worker whose primary falls silent moves on.
            // In name order, so every run (and every transcript) is the same.
            let workers: Vec<ConnId> = self
                .state
                .workers
                .keys()
                .filter_map(|name| self.worker_conns.get(name).copied())
                .collect();
            for conn in self.followers.clone().into_iter().chain(workers) {
                self.send(conn, Message::Ping);
            }
        } // Failure detection, in name order.
        let checks: Vec<(String, Health, bool)> = self
            .state
            .workers
            .iter()
            .filter(|(_, w)| w.health != Health::Dead)
            .map(|(name, w)| (name.clone(), w.health, w.classic))
            .collect();
        for (name, health, classic) in checks {
            let Some(live) = self.liveness.get(&name) else {
                continue;
            };
            let silent = self.now.saturating_sub(live.last_heard);
            let (suspect_after, timeout) = if classic {
                (self.config.classic_timeout / 2, self.config.classic_timeout)
            } else {
                (
                    self.config.heartbeat.suspect_after,
                    self.config.heartbeat.timeout,
                )
            };
            if silent > timeout.as_millis() as u64 {
                self.declare_dead(&name, format!("no heartbeat for {silent}ms"));
            } else if health == Health::Healthy && silent > suspect_after.as_millis() as u64 {
                self.emit(EventKind::WorkerSuspect {
                    worker: name,
                    silent_ms: silent,
                });
            }
        }
        // Connections that never said anything valid.
        let idle_ms = self.config.idle_timeout.as_millis() as u64;
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.peer == Peer::Unknown && self.now.saturating_sub(c.opened_at) > idle_ms
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            info!(conn, "closing a connection that said nothing");
            self.close(conn);
        }
    }

    /// Assigns ready jobs to workers with free slots, as long as there are both.
    fn dispatch(&mut self) {
        while let Some(job) = self.state.queue.first_ready() {
            let candidates: Vec<Candidate> = self
                .state
                .workers
                .iter()
                .filter(|(name, w)| w.has_free_slot() && self.worker_conns.contains_key(*name))
                .map(|(name, w)| Candidate {
                    name,
                    slots: w.slots,
                    running: w.running.len() as u32,
                })
                .collect();
            if candidates.is_empty() {
                return;
            }
            let worker = candidates[self.balancer.pick(&candidates)].name.to_string();
            let Some(j) = self.state.jobs.get(&job) else {
                return;
            };
            let (attempt, data) = (j.attempts + 1, j.data.clone());
            self.emit(EventKind::JobAssigned {
                job,
                worker: worker.clone(),
                attempt,
            });
            if let Some(&conn) = self.worker_conns.get(&worker) {
                self.send(conn, Message::Assign { job, data, attempt });
            }
        }
    }

    // ----- helpers -----

    fn emit(&mut self, kind: EventKind) {
        let event = ClusterEvent {
            at_ms: self.now,
            clock: self.clock.tick(),
            kind,
        };
        self.state.apply(&event);
        self.record(event);
    }

    /// Keeps a durable event for backups, sends it to those following, and publishes it.
    fn record(&mut self, event: ClusterEvent) {
        if event.kind.is_durable() {
            self.history.push(event.clone());
            for conn in self.followers.clone() {
                self.stream_to(conn);
            }
        }
        self.out.push(Output::Event(event));
    }

    /// Sends a follower the events it has not been sent, keeping at most [`REPLICA_WINDOW`]
    /// unacknowledged: a backup catching up on a long history, or a burst of events (a submit
    /// of 100,000 jobs), never overflows its connection's queue.
    fn stream_to(&mut self, conn: ConnId) {
        let Some(&next) = self.streamed.get(&conn) else {
            return;
        };
        let acked = self.acked.get(&conn).copied().unwrap_or(0);
        let until = (acked + REPLICA_WINDOW).min(self.history_len());
        for seq in next..until {
            let event = self.history[seq as usize].clone();
            self.send(conn, Message::Replica { seq, event });
        }
        self.streamed.insert(conn, until.max(next));
    }

    /// Sends a subscriber every durable event so far, in parts of at most [`HISTORY_PART`]
    /// bytes of JSON (one event always fits a part: an event is smaller than a line).
    fn send_history(&mut self, conn: ConnId) {
        let mut part = Vec::new();
        let mut bytes = 0;
        let mut parts = Vec::new();
        for event in &self.history {
            let size = serde_json::to_vec(event).map_or(0, |v| v.len()) + 1;
            if bytes + size > HISTORY_PART && !part.is_empty() {
                parts.push(std::mem::take(&mut part));
                bytes = 0;
            }
            bytes += size;
            part.push(event.clone());
        }
        parts.push(part);
        let last = parts.len() - 1;
        for (i, events) in parts.into_iter().enumerate() {
            self.send(
                conn,
                Message::History {
                    events,
                    done: i == last,
                },
            );
        }
    }

    /// Durable events so far (what a backup following from scratch would receive).
    pub fn history_len(&self) -> u64 {
        self.history.len() as u64
    }

    /// The term now: the configured one, or the highest a takeover reached.
    pub fn term(&self) -> u64 {
        self.config.term.max(self.state.term)
    }

    /// Whether this coordinator serves (a backup does not, until it takes over).
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// A backup applies what its primary sends: the primary's events, in order.
    fn on_primary_message(&mut self, envelope: Envelope) {
        if self.serving {
            // An old primary that still talks after a takeover: its orders are of the past.
            return;
        }
        self.last_primary_heard = self.now;
        self.leader_closed = false;
        if self.election.take().is_some() {
            info!("the primary is heard again: election abandoned");
            self.emit(EventKind::ElectionUpdate {
                candidate: self.config.name.clone(),
                reason: "the primary is heard again: election abandoned".to_string(),
                primary: self.leader.clone(),
            });
        }
        self.clock.observe(envelope.clock);
        if let Message::Replica { seq, event } = envelope.message {
            let have = self.history.len() as u64;
            if seq < have {
                return;
            }
            if seq > have {
                warn!(seq, have, "replication gap: events are missing");
                return;
            }
            self.state.apply(&event);
            self.clock.advance_to(event.clock);
            self.history.push(event.clone());
            self.out.push(Output::Event(event));
            self.out
                .push(Output::ToPrimary(Message::ReplicaAck { seq }));
        }
    }

    /// An old primary stops serving: its workers and clients are sent away (they find the new
    /// primary), and it follows the new primary as a backup, from its first event. Subscribers
    /// stay: they watch every master, serving or not.
    fn step_down(&mut self, primary: &str) {
        self.serving = false;
        self.held.clear();
        let conns: Vec<ConnId> = self
            .conns
            .keys()
            .filter(|c| !self.subscribers.contains(c))
            .copied()
            .collect();
        for conn in conns {
            self.send(
                conn,
                Message::NotPrimary {
                    primary: Some(primary.to_string()),
                },
            );
            self.close(conn);
        }
        self.follow(primary);
    }

    /// Follows `primary`. A master that followed another (or served) forgets its state and
    /// starts over from the first event: its history may hold events the new primary never had.
    fn follow(&mut self, primary: &str) {
        let reset = self.leader.as_deref() != Some(primary) || self.history_len() == 0;
        if reset {
            self.state = ClusterState::new();
            self.history.clear();
            self.liveness.clear();
            self.worker_conns.clear();
        }
        self.leader = Some(primary.to_string());
        self.config.primary = Some(primary.to_string());
        self.link_up = true;
        self.leader_closed = false;
        self.last_primary_heard = self.now;
        self.election = None;
        self.out.push(Output::Follow {
            primary: primary.to_string(),
            reset,
        });
    }

    // ----- election -----

    fn timeout_ms(&self) -> u64 {
        self.config.heartbeat.timeout.as_millis() as u64
    }

    /// How long a master waits for the masters above it to answer: two heartbeats, within the
    /// timeout. A dead master's link closes at once, so only a silent one costs this long.
    fn answer_wait(&self) -> Duration {
        (self.config.heartbeat.interval * 2)
            .clamp(Duration::from_millis(50), self.config.heartbeat.timeout)
    }

    /// Why the primary counts as lost, if it does: its link closed, or it was silent too long.
    fn leader_lost(&self) -> Option<String> {
        if self.serving {
            return None;
        }
        if self.leader_closed {
            return Some("the primary's connection closed".to_string());
        }
        let silent = self.now.saturating_sub(self.last_primary_heard);
        (silent > self.timeout_ms()).then(|| format!("the primary was silent for {silent}ms"))
    }

    /// Starts a round of the Bully election: every master that outranks this one is asked
    /// whether it is alive.
    fn start_election(&mut self, cause: String) {
        let higher: BTreeSet<String> = self
            .config
            .peers
            .iter()
            .filter(|p| p.rank > self.config.rank)
            .map(|p| p.name.clone())
            .collect();
        if self.election.is_none() {
            info!(%cause, asks = higher.len(), "starting an election");
            self.emit(EventKind::ElectionStarted {
                candidate: self.config.name.clone(),
                reason: cause.clone(),
            });
        }
        let said = self.election.take().and_then(|e| e.said);
        let wait = self.answer_wait();
        for master in &higher {
            let envelope = self.envelope(Message::Election);
            self.out.push(Output::ToMaster {
                master: master.clone(),
                envelope,
                wait,
            });
        }
        self.election = Some(Election {
            started: self.now,
            cause,
            waiting: higher,
            answered: None,
            said,
        });
        self.advance_election();
    }

    /// Decides what a running election does next.
    fn advance_election(&mut self) {
        let now = self.now;
        let wait = self.answer_wait().as_millis() as u64;
        let timeout = self.timeout_ms();
        let Some(e) = self.election.as_mut() else {
            return;
        };
        let age = now.saturating_sub(e.started);
        if !e.waiting.is_empty() {
            if age <= wait {
                return;
            }
            e.waiting.clear();
        }
        if let Some(higher) = e.answered.clone() {
            // A master above is alive: it runs its own election and announces its victory. If
            // it does not, in time, the round starts over.
            self.say(format!(
                "{higher} outranks it and is alive: waiting for its victory"
            ));
            if age > timeout + wait {
                let cause = self
                    .election
                    .as_ref()
                    .map(|e| e.cause.clone())
                    .unwrap_or_default();
                self.start_election(cause);
            }
            return;
        }
        // No master above is alive: this one is the highest. A closed link is proof enough that
        // the primary is gone; silence is not (a cut link is silent too), so the workers must
        // have lost it as well.
        match self.witness_count() {
            Ok(evidence) => {
                let cause = self
                    .election
                    .as_ref()
                    .map(|e| e.cause.clone())
                    .unwrap_or_default();
                let reason = match evidence {
                    Some(evidence) => format!("{cause}; {evidence}"),
                    None => cause,
                };
                self.take_over(reason);
            }
            Err(why) => {
                self.say(format!("not taking over: {why}"));
                if age > timeout {
                    let cause = self
                        .election
                        .as_ref()
                        .map(|e| e.cause.clone())
                        .unwrap_or_default();
                    self.start_election(cause);
                }
            }
        }
    }

    /// Whether the highest master alive may take over: `Ok` with what convinced it, or `Err`
    /// with why not.
    fn witness_count(&self) -> Result<Option<String>, String> {
        if self.leader_closed {
            return Ok(None);
        }
        let live = self
            .state
            .workers
            .values()
            .filter(|w| w.health != Health::Dead)
            .count();
        let lost = self
            .state
            .workers
            .iter()
            .filter(|(name, w)| w.health != Health::Dead && self.witnesses.contains_key(*name))
            .count();
        if live == 0 {
            return Ok(Some("no worker to ask".to_string()));
        }
        if lost * 2 >= live && lost > 0 {
            let s = if live == 1 { "" } else { "s" };
            Ok(Some(format!("{lost} of {live} worker{s} lost it too")))
        } else {
            let s = if live == 1 { "" } else { "s" };
            Err(format!(
                "the primary is silent here, but {lost} of {live} worker{s} lost it (a partition?)"
            ))
        }
    }

    /// Says how the election stands on the timeline, once per change.
    fn say(&mut self, text: String) {
        let Some(e) = self.election.as_mut() else {
            return;
        };
        if e.said.as_deref() == Some(text.as_str()) {
            return;
        }
        e.said = Some(text.clone());
        info!("election: {text}");
        self.emit(EventKind::ElectionUpdate {
            candidate: self.config.name.clone(),
            reason: text,
            primary: None,
        });
    }

    /// Another master replied to what this one sent it.
    fn master_replied(&mut self, master: String, reply: Option<Envelope>) {
        let reply = match reply {
            Some(envelope) => {
                self.clock.observe(envelope.clock);
                Some((envelope.term, envelope.message))
            }
            None => None,
        };
        if let Some((term, Message::Victory)) = reply {
            self.victory_from(&master, term);
            return;
        }
        if let Some(e) = self.election.as_mut() {
            e.waiting.remove(&master);
            if let Some((_, Message::Answer)) = reply {
                e.answered = Some(master);
            }
            self.advance_election();
        }
    }

    /// `master` says it is the primary in `term`.
    fn victory_from(&mut self, master: &str, term: Option<u64>) {
        let Some(rank) = self
            .config
            .peers
            .iter()
            .find(|p| p.name == master)
            .map(|p| p.rank)
        else {
            warn!(%master, "a victory from a master this one does not know: ignored");
            return;
        };
        let term = term.unwrap_or(0);
        if self.serving {
            // Two primaries: the higher term wins, then the higher rank.
            if (term, rank) > (self.term(), self.config.rank) {
                warn!(%master, term, "another master is primary in a higher term: stepping down");
                self.emit(EventKind::ElectionUpdate {
                    candidate: self.config.name.clone(),
                    reason: format!("{master} is primary in term {term}: stepping down"),
                    primary: Some(master.to_string()),
                });
                self.step_down(master);
            } else {
                let envelope = self.envelope(Message::Victory);
                let wait = self.answer_wait();
                self.out.push(Output::ToMaster {
                    master: master.to_string(),
                    envelope,
                    wait,
                });
            }
            return;
        }
        if term < self.term() {
            debug!(%master, term, "a victory from an older term: ignored");
            return;
        }
        // Terms only go up, even while this master starts over from nothing.
        self.config.term = self.config.term.max(term);
        if self.leader.as_deref() == Some(master) && self.link_up {
            // The primary it follows, heard again (a link that was cut, healed).
            self.last_primary_heard = self.now;
            self.leader_closed = false;
            if self.election.is_some() {
                self.emit(EventKind::ElectionUpdate {
                    candidate: self.config.name.clone(),
                    reason: format!("{master} is primary in term {term}: following it"),
                    primary: Some(master.to_string()),
                });
                self.election = None;
            }
            return;
        }
        info!(%master, term, "following the master that won");
        if self.election.is_some() || self.leader.as_deref() != Some(master) {
            self.emit(EventKind::ElectionUpdate {
                candidate: self.config.name.clone(),
                reason: format!("{master} is primary in term {term}: following it"),
                primary: Some(master.to_string()),
            });
        }
        self.follow(master);
    }

    /// Whether this primary still has its workers: at least half of those connected heard
    /// within the timeout. A cluster that never had a worker has nobody to ask.
    fn workers_still_here(&self) -> Result<(), String> {
        let timeout = self.timeout_ms();
        let connected = self.worker_conns.len();
        let heard = self
            .worker_conns
            .keys()
            .filter(|name| {
                self.liveness
                    .get(*name)
                    .is_some_and(|l| self.now.saturating_sub(l.last_heard) <= timeout)
            })
            .count();
        if self.state.workers.is_empty() || (heard > 0 && heard * 2 >= connected) {
            Ok(())
        } else {
            Err(format!("{heard} of {connected} workers heard from"))
        }
    }

    /// Tells every master that does not follow this primary yet that it is the primary.
    fn announce_victory(&mut self) {
        let following: BTreeSet<&String> = self.follower_names.values().collect();
        let others: Vec<String> = self
            .config
            .peers
            .iter()
            .filter(|p| !following.contains(&p.name))
            .map(|p| p.name.clone())
            .collect();
        let wait = self.answer_wait();
        for master in others {
            let envelope = self.envelope(Message::Victory);
            self.out.push(Output::ToMaster {
                master,
                envelope,
                wait,
            });
        }
    }

    /// Held workers that waited a whole timeout are sent away: this master is not taking over,
    /// so they try the next one. Old witnesses are forgotten.
    fn expire_pending(&mut self) {
        let timeout = self.timeout_ms();
        let now = self.now;
        let expired: Vec<ConnId> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.at) > timeout)
            .map(|(c, _)| *c)
            .collect();
        for conn in expired {
            self.send(
                conn,
                Message::NotPrimary {
                    primary: self.leader.clone(),
                },
            );
            self.close(conn);
        }
        self.witnesses
            .retain(|_, at| now.saturating_sub(*at) <= 3 * timeout);
    }

    /// With a sync backup, replies leave only once the backup has every event made so far:
    /// a client told `accepted`, or a worker told `assign`, can rely on the backup knowing it.
    fn hold_for_backup(&mut self) {
        if !self.config.sync || self.followers.is_empty() {
            return;
        }
        let needed = self.history.len() as u64;
        if needed <= self.min_acked() && self.held.is_empty() {
            return;
        }
        if self.held.is_empty() {
            self.held_since = self.now;
        }
        let followers = self.followers.clone();
        let mut keep = Vec::new();
        for output in std::mem::take(&mut self.out) {
            match &output {
                // Only replies wait: events, replication, elections and pings (which promise
                // nothing, and keep workers from thinking this primary dead) do not.
                Output::Event(_)
                | Output::ToPrimary(_)
                | Output::ToMaster { .. }
                | Output::Follow { .. } => keep.push(output),
                Output::Send(_, envelope) if envelope.message == Message::Ping => keep.push(output),
                Output::Send(conn, _) if followers.contains(conn) => keep.push(output),
                _ => self.held.push_back((needed, output)),
            }
        }
        self.out = keep;
    }

    /// The fewest events any follower has acknowledged (everything, with no follower).
    fn min_acked(&self) -> u64 {
        self.followers
            .iter()
            .map(|c| self.acked.get(c).copied().unwrap_or(0))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Lets out the held replies whose events the backup now has (all of them, with no backup).
    fn release_held(&mut self) {
        let acked = self.min_acked();
        while self
            .held
            .front()
            .is_some_and(|(needed, _)| *needed <= acked)
        {
            if let Some((_, output)) = self.held.pop_front() {
                self.out.push(output);
            }
        }
        self.held_since = self.now;
    }

    /// A backup becomes the primary, in a new term. Workers that were alive get one timeout
    /// to come over, with the jobs they run, before those jobs are requeued.
    fn take_over(&mut self, reason: String) {
        if !self.config.failover {
            warn!(%reason, "the primary is gone, but failover is off: not taking over");
            return;
        }
        self.serving = true;
        self.election = None;
        self.leader = None;
        self.config.primary = Some(self.config.name.clone());
        let term = self.term() + 1;
        info!(term, %reason, "taking over as primary");
        self.emit(EventKind::Takeover {
            coordinator: self.config.name.clone(),
            term,
            reason,
        });
        // The other masters follow; an old primary that is only paused or cut off hears this
        // when it can (it is said again every timeout until every master follows).
        self.next_announce = self.now + self.timeout_ms();
        self.announce_victory();
        self.grace_for_known_workers();
        // The workers that came here while this master decided.
        for (conn, p) in std::mem::take(&mut self.pending) {
            self.register(conn, p.dialect, p.name, p.slots, Some(p.running));
        }
        self.witnesses.clear();
    }

    fn send(&mut self, conn: ConnId, message: Message) {
        if self.conns.contains_key(&conn) {
            self.send_raw(conn, message);
        }
    }

    /// A message from this coordinator, stamped with its clock and term.
    fn envelope(&mut self, message: Message) -> Envelope {
        Envelope {
            from: self.config.name.clone(),
            clock: self.clock.tick(),
            term: Some(self.term()),
            message,
        }
    }

    fn send_raw(&mut self, conn: ConnId, message: Message) {
        let envelope = self.envelope(message);
        self.out.push(Output::Send(conn, envelope));
    }

    fn mark_client(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.peer == Peer::Unknown
        {
            c.peer = Peer::Client;
        }
    }

    /// The worker registered on `conn`; replies with an error if there is none.
    fn worker_of(&mut self, conn: ConnId) -> Option<String> {
        match self.conns.get(&conn).map(|c| &c.peer) {
            Some(Peer::Worker(name)) => Some(name.clone()),
            Some(_) => {
                self.send(
                    conn,
                    Message::Error {
                        message: format!(
                            "{}: this message is for workers",
                            crate::role::worker::NOT_REGISTERED
                        ),
                    },
                );
                None
            }
            None => None,
        }
    }

    fn runs_on(&self, job: JobId, worker: &str) -> bool {
        self.state.jobs.get(&job).is_some_and(|j| {
            matches!(j.state, JobState::Assigned | JobState::Running)
                && j.worker.as_deref() == Some(worker)
        })
    }

    fn health(&self, worker: &str) -> Option<Health> {
        self.state.workers.get(worker).map(|w| w.health)
    }

    fn random_hex(&mut self) -> String {
        let bytes: [u8; 16] = self.rng.random();
        hex::encode(bytes)
    }

    fn worker_views(&self) -> Vec<crate::protocol::message::WorkerView> {
        self.state
            .workers
            .iter()
            .map(|(name, w)| {
                let live = self.liveness.get(name);
                let age = live.map(|l| self.now.saturating_sub(l.last_heard));
                w.view(name, age, live.map_or(0, |l| l.last_clock))
            })
            .collect()
    }

    /// The cluster at a glance.
    pub fn status_report(&self) -> StatusReport {
        let mut workers = WorkerCounts::default();
        for w in self.state.workers.values() {
            match w.health {
                Health::Healthy => workers.healthy += 1,
                Health::Suspect => workers.suspect += 1,
                Health::Dead => workers.dead += 1,
            }
        }
        let jobs: JobCounts = self.state.counts;
        StatusReport {
            coordinator: self.config.name.clone(),
            role: if self.serving { "primary" } else { "backup" }.to_string(),
            term: self.term(),
            workers,
            jobs,
            duplicates: self.state.duplicates,
        }
    }
}

/// Checks a submission before any job is made.
fn check_job(data: &str, count: u32) -> Result<(), String> {
    if data.trim().is_empty() {
        return Err("a job needs data, such as \"sleep 1s\" or \"echo hello\"".into());
    }
    if data.len() > MAX_DATA {
        return Err(format!(
            "job data is {} bytes; at most {MAX_DATA}",
            data.len()
        ));
    }
    if data.chars().any(char::is_control) {
        return Err("job data must be one line of text without control characters".into());
    }
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(format!(
            "count must be from 1 to {MAX_COUNT}, found {count}"
        ));
    }
    JobKind::parse(data).map(|_| ())
}

/// The seed a driver should use: random, unless `TCLUSTER_SEED` fixes it (to replay a run).
pub fn seed_from_env() -> u64 {
    std::env::var("TCLUSTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}
