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
//!
//! The files here, one concern each:
//!
//! | file | what it holds |
//! |---|---|
//! | `config.rs` | [`CoordinatorConfig`]: from a topology or for tests |
//! | `session.rs` | connections: accept (and evict), hello/auth, login, queries, the gate every message passes |
//! | `jobs.rs` | submit, register, heartbeats, results, the failure detector, dispatch |
//! | `replication.rs` | a primary streaming events to its backups, holding replies for a sync backup; a backup applying them |
//! | `history.rs` | the events kept for backups and subscribers, and compaction into a snapshot |
//! | `election.rs` | a backup noticing the primary is gone, the Bully election, takeover, stepping down |
//! | `state.rs` | [`ClusterState`] and the one function that changes it |
//! | `balancer.rs` | which worker gets the next job |
//!
//! A master is either a `Standing::Primary` (it serves) or a `Standing::Backup` (it follows
//! a primary, or looks for one); each variant holds only what that standing needs.

pub mod balancer;
mod config;
mod election;
mod history;
mod jobs;
mod lending;
mod replication;
mod session;
mod time;
mod udp;

pub use time::{MAX_ADJUST_MS, answer_time_master};
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tracing::{info, warn};

use crate::clock::{LamportClock, Millis};
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::Dialect;
use crate::protocol::message::{Envelope, Health, Message};
use crate::topology::MasterRole;
pub use crate::topology::Retention;
use balancer::Balancer;
pub use config::{CoordinatorConfig, PeerCluster, PeerMaster, master_ranks};
use election::Backup;
use history::History;
use jobs::Liveness;
use replication::Primary;
use session::Conn;
pub use state::{ClusterState, Job, JobQueue, WorkerRecord};

pub use crate::role::ConnId;

/// The longest job data accepted, in bytes.
pub const MAX_DATA: usize = 4096;
/// The most copies one `submit` may ask for.
pub const MAX_COUNT: u32 = 100_000;
/// The most jobs open at once (queued, assigned or running), with the finished ones whose
/// results no client has read: past it `submit` is refused until some finish (or are read), so
/// no client can make a coordinator's memory grow without bound, and compaction never has to
/// forget a result nobody has seen.
pub const MAX_OPEN_JOBS: usize = 100_000;
/// How many jobs `jobs` lists when the client does not say.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// The most events sent to a backup and not yet acknowledged (well under a connection's queue).
pub const REPLICA_WINDOW: u64 = 1024;
/// The most bytes of events in one `history` part, well under the 64 KiB line limit.
pub const HISTORY_PART: usize = 32 * 1024;
/// Room for a step's outputs before they need more.
const STEP_OUTPUTS: usize = 8;
/// The most workers one `available` makes a borrower expect (whatever an owner claims).
pub const MAX_LENT_AT_ONCE: usize = 64;

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
        master: String,
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
    /// A peer spoke plaintext to this encrypted port and was refused (counted in `status`).
    Plaintext {
        /// Who it was.
        peer: String,
    },
    /// A datagram arrived on the coordinator's UDP port (a heartbeat, with `policy heartbeat
    /// { transport udp }`).
    Datagram(Envelope),
    /// Time passed.
    Tick,
}

/// What the coordinator asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message on a connection.
    Send(ConnId, Envelope),
    /// Close a connection, after sending what is queued on it (for one that closed itself: let
    /// its writer go once what it was told before is out).
    Close(ConnId),
    /// An event happened: publish it to [`Coordinator::subscribers`] and watchers. (Shared with
    /// the history that keeps it and the journal entry that writes it: one event, not copies.)
    Event(std::sync::Arc<ClusterEvent>),
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
    /// Change the journal beyond appending this step's events (in order with them).
    Journal(JournalOp),
    /// Move this node's wall clock by this many milliseconds (`policy clock`).
    AdjustClock(i64),
}

/// What a journal must do besides appending events.
#[derive(Debug, Clone, PartialEq)]
pub enum JournalOp {
    /// Forget every event: the next one written is seq `at` (a backup that starts over from
    /// its primary's snapshot).
    Restart { at: u64 },
    /// Compaction: every event before `base` is replaced by `snapshot`, numbered to end just
    /// before `base`.
    Compact {
        base: u64,
        snapshot: Vec<Arc<ClusterEvent>>,
    },
}

/// What a master is doing now, with what only that standing needs.
#[derive(Debug)]
enum Standing {
    /// Serving clients and workers, streaming events to the backups that follow.
    Primary(Primary),
    /// Serving nobody: following a primary, or (its link lost) electing a new one.
    Backup(Backup),
}

/// The coordinator.
pub struct Coordinator {
    config: CoordinatorConfig,
    state: ClusterState,
    clock: LamportClock,
    now: Millis,
    conns: BTreeMap<ConnId, Conn>,
    /// The connection of each connected worker. (The maps looked up for every job are hashed
    /// with foldhash, seeded per process: a few times cheaper than SipHash for these short
    /// keys, which are this coordinator's own numbers or its registered workers' names.)
    worker_conns: foldhash::HashMap<String, ConnId>,
    liveness: foldhash::HashMap<String, Liveness>,
    balancer: Balancer,
    /// Login tokens and the account they belong to.
    tokens: HashMap<String, String>,
    /// What it refused, by why (reported in `status`).
    refused: crate::cluster::worker::Refusals,
    /// When each job was last sent to its worker (a job missing from that worker's heartbeat
    /// well after this is sent again).
    assigned_at: foldhash::HashMap<crate::protocol::message::JobId, Millis>,
    /// How many times each job's `assign` was sent again to a worker that did not run it.
    resends: foldhash::HashMap<crate::protocol::message::JobId, u32>,
    /// Workers whose heartbeats list what they run (checked as they arrive).
    lists_running: BTreeSet<String>,
    /// Workers that let a job's assigns go unanswered: one job at a time until they run one.
    stalled: BTreeSet<String>,
    /// Who asked to hear when a job ends.
    notify: foldhash::HashMap<crate::protocol::message::JobId, ConnId>,
    subscribers: BTreeSet<ConnId>,
    /// The connection that subscribed in the last step, if one did.
    new_subscriber: Option<ConnId>,
    rng: SmallRng,
    out: Vec<Output>,
    /// The durable events kept for backups that follow (replica sequence numbers index it).
    history: History,
    /// Finished jobs whose results reached a client in this step (one `results_read` event).
    reads: Vec<crate::protocol::message::JobId>,
    /// Lending workers to other clusters and borrowing theirs.
    loans: lending::Loans,
    /// Clock synchronisation: this node's wall clock, and the rounds it runs as time master.
    time: time::TimeKeeping,
    /// Per worker whose heartbeats come as datagrams: the token they must carry.
    udp_tokens: HashMap<String, String>,
    standing: Standing,
}

impl Coordinator {
    /// A coordinator with no jobs and no workers.
    pub fn new(config: CoordinatorConfig) -> Self {
        let standing = match config.role {
            MasterRole::Primary => Standing::Primary(Primary::default()),
            MasterRole::Backup => Standing::Backup(Backup::following(config.follow.clone(), 0)),
        };
        Coordinator {
            balancer: Balancer::new(config.algorithm, config.seed),
            rng: SmallRng::seed_from_u64(config.seed.wrapping_add(1)),
            config,
            state: ClusterState::new(),
            clock: LamportClock::default(),
            now: 0,
            conns: BTreeMap::new(),
            worker_conns: foldhash::HashMap::default(),
            liveness: foldhash::HashMap::default(),
            tokens: HashMap::new(),
            refused: Default::default(),
            assigned_at: foldhash::HashMap::default(),
            resends: foldhash::HashMap::default(),
            stalled: BTreeSet::new(),
            lists_running: BTreeSet::new(),
            notify: foldhash::HashMap::default(),
            subscribers: BTreeSet::new(),
            new_subscriber: None,
            out: Vec::new(),
            history: History::default(),
            reads: Vec::new(),
            loans: Default::default(),
            time: Default::default(),
            udp_tokens: HashMap::new(),
            standing,
        }
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

    /// The connection that subscribed in the last step (asked once: the next call says none).
    /// Its history was read at that step: events of earlier steps, whatever the driver still
    /// has to publish of them, are not sent to it again.
    pub fn take_new_subscriber(&mut self) -> Option<ConnId> {
        self.new_subscriber.take()
    }

    /// Its Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock.now()
    }

    /// Rebuilds the state from a journal's events, the first of which is seq `first` (a
    /// snapshot's header, after a compaction). Workers that were alive get one timeout to
    /// register again (with the jobs they still run) before their jobs are requeued; jobs that
    /// were waiting out a retry backoff may run at once (their times were the old run's clock).
    pub fn restore_from(&mut self, first: u64, events: &[ClusterEvent]) {
        self.history.restart_at(first);
        for event in events {
            self.state.apply(event);
            self.clock.advance_to(event.clock);
            if event.kind.is_durable() {
                self.history.push(std::sync::Arc::new(event.clone()));
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

    /// Rebuilds the state from a whole journal's events (see [`Self::restore_from`]).
    pub fn restore(&mut self, events: &[ClusterEvent]) {
        self.restore_from(0, events);
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
            Input::Plaintext { peer } => {
                self.refused.plaintext += 1;
                warn!(
                    %peer,
                    refused = self.refused.plaintext,
                    "refused a plaintext connection: this port is encrypted (TLS)"
                );
            }
            Input::Tick => self.tick(),
            Input::Datagram(envelope) => {
                if self.is_serving() {
                    self.datagram(envelope);
                }
            }
            Input::FromPrimary(envelope) => self.apply_replica(envelope),
            Input::PrimaryLost => self.primary_lost(),
            Input::FromMaster { master, reply } => self.master_replied(master, reply),
        }
        self.state.queue.promote_due(self.now);
        if self.is_serving() {
            self.dispatch();
        }
        self.note_reads();
        self.compact_if_due();
        self.hold_for_backup();
        // A step's outputs are a handful (a job's reply, events, the next assignment): room
        // for them from the start, not grown by copying.
        std::mem::replace(&mut self.out, Vec::with_capacity(STEP_OUTPUTS))
    }

    /// Time passed: a primary checks its backups and workers, a backup its primary.
    fn tick(&mut self) {
        if self.is_serving() {
            self.tick_replication();
            self.detect_failures();
            self.check_started();
            self.close_idle();
            self.tick_lending();
            self.tick_clocks();
        } else {
            self.tick_election();
        }
    }

    /// Durable events so far (what a backup following from scratch would receive).
    pub fn history_len(&self) -> u64 {
        self.history.len()
    }

    /// The seq of the first event of its history still kept (after a compaction, the
    /// snapshot's header).
    pub fn history_first(&self) -> u64 {
        self.history.first()
    }

    /// The term now: the configured one, or the highest a takeover reached.
    pub fn term(&self) -> u64 {
        self.config.term.max(self.state.term)
    }

    /// Whether this coordinator serves (a backup does not, until it takes over).
    pub fn is_serving(&self) -> bool {
        matches!(self.standing, Standing::Primary(_))
    }

    /// What only a primary keeps, if this master serves.
    fn primary(&self) -> Option<&Primary> {
        match &self.standing {
            Standing::Primary(p) => Some(p),
            Standing::Backup(_) => None,
        }
    }

    fn primary_mut(&mut self) -> Option<&mut Primary> {
        match &mut self.standing {
            Standing::Primary(p) => Some(p),
            Standing::Backup(_) => None,
        }
    }

    /// What only a backup keeps, if this master does not serve.
    fn backup(&self) -> Option<&Backup> {
        match &self.standing {
            Standing::Backup(b) => Some(b),
            Standing::Primary(_) => None,
        }
    }

    fn backup_mut(&mut self) -> Option<&mut Backup> {
        match &mut self.standing {
            Standing::Backup(b) => Some(b),
            Standing::Primary(_) => None,
        }
    }

    /// Makes an event now: applies it to the state, records it, publishes it.
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
        let event = std::sync::Arc::new(event);
        if event.kind.is_durable() {
            self.history.push(event.clone());
            self.stream_to_followers();
        }
        self.out.push(Output::Event(event));
    }

    /// A finished job's result has reached a client (said in one `results_read` event at the
    /// end of the step).
    fn result_read(&mut self, job: crate::protocol::message::JobId) {
        if self
            .state
            .jobs
            .get(&job)
            .is_some_and(|j| j.state.is_final() && !j.read)
            && !self.reads.contains(&job)
        {
            self.reads.push(job);
        }
    }

    /// Says which results reached a client in this step (a backup has none to say).
    fn note_reads(&mut self) {
        if self.reads.is_empty() || !self.is_serving() {
            self.reads.clear();
            return;
        }
        let reads = std::mem::take(&mut self.reads);
        for jobs in reads.chunks(history::IDS_PER_EVENT) {
            self.emit(EventKind::ResultsRead {
                jobs: jobs.to_vec(),
            });
        }
    }

    /// Compaction, when enough events have passed since the last snapshot: a primary first
    /// forgets the oldest finished jobs beyond the retention (in events, so its backups do the
    /// same); then the history is replaced by a snapshot of the state, and so is the journal.
    /// A primary waits for its backups to have every event (one that is behind would have to
    /// start over from the snapshot), unless they lag by far more than a compaction's worth.
    fn compact_if_due(&mut self) {
        let retention = self.config.retention;
        if !history::due(&self.history, &self.state, retention) {
            return;
        }
        let len = self.history.len();
        if let Some(p) = self.primary() {
            let lagging = p.followers.values().any(|f| f.acked() < len);
            let far = self.history.since_snapshot() >= retention.compact_every.saturating_mul(4);
            if lagging && !far {
                return;
            }
            let forget = self.state.forgettable(retention.keep_done);
            for jobs in forget.chunks(history::IDS_PER_EVENT) {
                self.emit(EventKind::JobsForgotten {
                    jobs: jobs.to_vec(),
                });
            }
        }
        let primary = if self.is_serving() {
            Some(self.config.name.clone())
        } else {
            self.backup().and_then(|b| b.leader.clone())
        };
        // Shared by the history, the journal and the followers reseeded from it: one copy.
        let snapshot: Vec<Arc<ClusterEvent>> = self
            .state
            .snapshot(self.now, self.clock.now(), primary.as_deref().unwrap_or(""))
            .into_iter()
            .map(Arc::new)
            .collect();
        if !self.history.compact(&snapshot) {
            return;
        }
        let base = self.history.len();
        info!(
            events = snapshot.len(),
            jobs = self.state.jobs.len(),
            forgotten = self.state.forgotten,
            "compacted: the history is a snapshot of the state"
        );
        self.out
            .push(Output::Journal(JournalOp::Compact { base, snapshot }));
        self.reseed_lagging_followers();
    }

    /// Sends a message on a connection that is still open.
    fn send(&mut self, conn: ConnId, message: Message) {
        if self.conns.contains_key(&conn) {
            self.send_raw(conn, message);
        }
    }

    /// A message from this coordinator, stamped with its clock and term.
    fn envelope(&mut self, message: Message) -> Envelope {
        Envelope {
            from: self.config.name.as_str().into(),
            clock: self.clock.tick(),
            term: Some(self.term()),
            message,
        }
    }

    /// Sends a message on a connection, known or not (a refusal before it is accepted).
    fn send_raw(&mut self, conn: ConnId, message: Message) {
        let envelope = self.envelope(message);
        self.out.push(Output::Send(conn, envelope));
    }

    /// 16 random bytes in hex: a nonce or a login token.
    fn random_hex(&mut self) -> String {
        use rand::RngExt;
        let bytes: [u8; 16] = self.rng.random();
        hex::encode(bytes)
    }

    /// What the cluster thinks of a worker it knows.
    fn health(&self, worker: &str) -> Option<Health> {
        self.state.workers.get(worker).map(|w| w.health)
    }

    /// The heartbeat timeout: silence past it is death, for workers and masters alike.
    fn timeout_ms(&self) -> u64 {
        self.config.heartbeat.timeout.as_millis() as u64
    }
}
