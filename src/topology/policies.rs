//! The policies of a topology (`policy NAME { … }`), each with its defaults.

use std::collections::BTreeMap;
use std::time::Duration;

/// The policies, each with its defaults when the file leaves it out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policies {
    /// `policy load_balancing`.
    pub load_balancing: LoadBalancing,
    /// `policy heartbeat`.
    pub heartbeat: Heartbeat,
    /// `policy retry`.
    pub retry: Retry,
    /// `policy replication`.
    pub replication: Replication,
    /// `policy election`.
    pub election: Election,
    /// `policy security`.
    pub security: Security,
    /// `policy chat`.
    pub chat: ChatPolicy,
    /// `policy journal`.
    pub journal: Retention,
    /// `policy lending`: `None` when the file has none (then no cluster lends or borrows).
    pub lending: Option<Lending>,
    /// `policy clock`: `None` when the file has none (then no clock is corrected).
    pub clock: Option<ClockSync>,
    /// `policy time`: the pace of the cluster (slow motion).
    pub time: TimePolicy,
    /// Names of the policies the file declares (the others are defaults).
    pub declared: Vec<String>,
    /// Policies tcluster does not know, kept as written and shown.
    pub other: BTreeMap<String, Vec<(String, String)>>,
}

/// The slowest and fastest a cluster may run (`policy time { scale }`, `speed`, `:speed`).
pub const SCALES: (f64, f64) = (0.01, 1.0);

/// `policy time`: how fast the cluster runs. `scale 0.1` runs every timer of every built-in
/// node ten times slower — heartbeats, timeouts, backoffs, `sleep` jobs, bot rates — and the
/// scenarios with them, so a failover can be followed message by message. The console's
/// `:speed` changes it while the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimePolicy {
    /// Cluster time per real time, 0.01 to 1.
    pub scale: f64,
}

impl Default for TimePolicy {
    fn default() -> Self {
        TimePolicy { scale: 1.0 }
    }
}

/// `policy load_balancing`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancing {
    /// How the coordinator picks a worker for a job.
    pub algorithm: Algorithm,
    /// How often the coordinator reports the health of its workers.
    pub health_check_interval: Duration,
    /// Whether a backup may take over from a dead primary.
    pub failover: bool,
}

impl Default for LoadBalancing {
    fn default() -> Self {
        LoadBalancing {
            algorithm: Algorithm::RoundRobin,
            health_check_interval: Duration::from_secs(30),
            failover: true,
        }
    }
}

/// Load-balancing algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Each worker in turn.
    RoundRobin,
    /// The worker with the fewest running jobs per slot.
    LeastLoaded,
    /// A worker at random (seeded, so runs can be replayed).
    Random,
    /// Each worker in proportion to its slots.
    Weighted,
}

impl Algorithm {
    /// The names accepted in files.
    pub const NAMES: [&str; 4] = ["round_robin", "least_loaded", "random", "weighted"];

    /// The word used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastLoaded => "least_loaded",
            Algorithm::Random => "random",
            Algorithm::Weighted => "weighted",
        }
    }

    /// Parses the word used in files.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Algorithm::RoundRobin,
            Algorithm::LeastLoaded,
            Algorithm::Random,
            Algorithm::Weighted,
        ]
        .into_iter()
        .find(|a| a.as_str() == text)
    }
}

/// `policy heartbeat`: how failures are detected.
#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    /// How often nodes send a heartbeat.
    pub interval: Duration,
    /// Silence after which a node is suspect.
    pub suspect_after: Duration,
    /// Silence after which a node is dead and its work reassigned.
    pub timeout: Duration,
    /// How workers send their heartbeats: on their TCP connection, or as UDP datagrams.
    pub udp: bool,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_millis(500),
            suspect_after: Duration::from_millis(1000),
            timeout: Duration::from_secs(2),
            udp: false,
        }
    }
}

/// `policy retry`: what happens to a job that fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    /// Runs before a job is marked failed (the first run counts).
    pub max_attempts: u32,
    /// Wait before the second run; doubled for each run after it.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// `policy replication`: how the backup follows the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replication {
    /// Sync or async.
    pub mode: ReplicationMode,
}

/// Replication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicationMode {
    /// The backup acknowledges each change before the client is answered.
    #[default]
    Sync,
    /// The client is answered first; the backup may lag behind.
    Async,
}

/// `policy election`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Election {
    /// Only the Bully algorithm is offered.
    pub algorithm: ElectionAlgorithm,
}

/// Election algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ElectionAlgorithm {
    /// The highest-ranked master alive wins.
    #[default]
    Bully,
}

/// `policy security`: what a cluster with a `CLUSTER_SECRET` lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Security {
    /// Whether classic-protocol peers (which cannot authenticate) may still connect.
    pub allow_classic: bool,
}

/// `policy chat`: how fast one client may send to a chat server, how much each channel keeps,
/// and when the history on disk is forced there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChatPolicy {
    /// Messages a second per connection; 0 for no limit.
    pub rate_per_second: f64,
    /// How many may come at once.
    pub burst: u32,
    /// Messages kept per channel (and per pair of users, for direct messages): older ones
    /// are dropped from the history, in memory and on disk.
    pub keep: usize,
    /// When a batch's commit of the history reaches the disk: [`Durability::Sync`] (each batch
    /// forced to disk before anyone hears of it, the default) or [`Durability::Periodic`].
    pub durability: Durability,
}

impl Default for ChatPolicy {
    fn default() -> Self {
        ChatPolicy {
            rate_per_second: 20.0,
            burst: 40,
            keep: 10_000,
            durability: Durability::Sync,
        }
    }
}

/// `policy journal`: what a master's compaction keeps, how often it runs, and when what it
/// writes is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Finished jobs kept (the oldest read ones beyond are forgotten; the counts keep them).
    pub keep_done: usize,
    /// Events since the last snapshot that make the next one.
    pub compact_every: u64,
    /// `durability`: when a commit reaches the disk.
    pub durability: Durability,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_done: 10_000,
            compact_every: 50_000,
            durability: Durability::Sync,
        }
    }
}

/// How long a `group` commit may wait for company when the topology does not say.
pub const DEFAULT_GROUP_WINDOW: Duration = Duration::from_millis(1);

/// When the journal's commits reach the disk (`policy journal { durability … }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every batch's commit is on disk (fsync) before any of its replies is sent: an accepted
    /// job survives any crash. The default.
    #[default]
    Sync,
    /// As `Sync`, but each fsync first waits up to this long for more commits to share it:
    /// fewer fsyncs on a slow disk, each reply up to that much later.
    Group(Duration),
    /// Commits are written at once and forced to disk this often: a crash of the machine (not
    /// of the process) can lose what was accepted in the last interval.
    Periodic(Duration),
    /// Commits are forced to disk only when the master stops: a crash of the machine can lose
    /// everything since it started; a crash of the process alone loses nothing.
    None,
}

impl Durability {
    /// The words that say it, as written in a topology.
    pub fn describe(self) -> String {
        match self {
            Durability::Sync => "sync".to_string(),
            Durability::Group(window) => format!("group {window:?}"),
            Durability::Periodic(every) => format!("periodic {every:?}"),
            Durability::None => "none".to_string(),
        }
    }
}

/// `policy lending`: when a cluster's primary borrows workers from the other clusters, and
/// when it lends its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lending {
    /// A primary whose queue holds more jobs than this that it cannot start asks its peers.
    pub queue_threshold: usize,
    /// The most of its workers an owner lends at once.
    pub max_lend: usize,
    /// How long a worker must have been idle before its owner lends it.
    pub idle_before_lend: Duration,
    /// How long a borrowed worker may stay idle before the borrower gives it back.
    pub return_after_idle: Duration,
}

impl Default for Lending {
    fn default() -> Self {
        Lending {
            queue_threshold: 4,
            max_lend: 2,
            idle_before_lend: Duration::from_millis(500),
            return_after_idle: Duration::from_secs(2),
        }
    }
}

/// `policy clock { sync berkeley; … }`: the Berkeley algorithm. Each round the time master
/// (the primary) reads every clock it can reach, averages those within `outlier` of the mean,
/// and tells each node how far to move its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    /// How often a round runs.
    pub interval: Duration,
    /// Clocks this close to the average are left alone.
    pub tolerance: Duration,
    /// Readings further than this from the mean are left out of the average (and still
    /// corrected).
    pub outlier: Duration,
}

impl Default for ClockSync {
    fn default() -> Self {
        ClockSync {
            interval: Duration::from_secs(1),
            tolerance: Duration::from_millis(20),
            outlier: Duration::from_secs(1),
        }
    }
}
