//! The validated model of a topology: what every other part of tcluster reads.
//!
//! A [`Topology`] is only built from a file that passed validation, so its invariants hold:
//! node names are unique (after `count` expansion), every connection and scenario step names
//! a node that exists, there is at most one primary, and every value has its unit applied.

use std::fmt;
use std::time::Duration;

pub use super::policies::*;

use super::diagnostic::Span;
use super::units::{Percent, Rate, Size};

/// A whole topology file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Every `set NAME VALUE`, in file order, and the typed ones tcluster uses.
    pub globals: Globals,
    /// Every node, in file order, `count` already expanded.
    pub nodes: Vec<Node>,
    /// Every link, one entry per direction (`A <-> B` gives two).
    pub connections: Vec<Connection>,
    /// The policies, with defaults for those the file leaves out.
    pub policies: Policies,
    /// Accounts that may log in.
    pub users: Vec<User>,
    /// Scripted demos, in file order.
    pub scenarios: Vec<Scenario>,
}

impl Topology {
    /// The peer secret masters, chat servers and the launcher prove to each other: the
    /// topology's `PEER_SECRET` when it sets one (the launcher sets its own for the nodes it
    /// starts), else one made for this process — a server started by hand without it can then
    /// prove itself to nobody, which is the safe way to fail.
    pub fn peer_key(&self) -> String {
        static OWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        match &self.globals.peer_secret {
            Some(key) => key.clone(),
            None => OWN
                .get_or_init(|| hex::encode(rand::random::<[u8; 16]>()))
                .clone(),
        }
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The nodes of one kind, in file order.
    pub fn nodes_of(&self, kind: NodeKind) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.kind == kind)
    }

    /// The primary of the default cluster (the only one, in a topology without `cluster`
    /// keys); else the first cluster's.
    pub fn primary(&self) -> Option<&Node> {
        self.primary_of(DEFAULT_CLUSTER)
            .or_else(|| self.clusters().first().and_then(|c| self.primary_of(c)))
    }

    /// The master whose role is primary in cluster `cluster`.
    pub fn primary_of(&self, cluster: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| {
            n.kind == NodeKind::Master
                && n.role == Some(MasterRole::Primary)
                && n.cluster == cluster
        })
    }

    /// The masters of cluster `cluster`, in file order.
    pub fn masters_of<'t>(&'t self, cluster: &'t str) -> impl Iterator<Item = &'t Node> {
        self.nodes
            .iter()
            .filter(move |n| n.kind == NodeKind::Master && n.cluster == cluster)
    }

    /// The clusters that have masters, in the order their first master is written.
    pub fn clusters(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for node in self.nodes_of(NodeKind::Master) {
            if !names.contains(&node.cluster.as_str()) {
                names.push(&node.cluster);
            }
        }
        names
    }

    /// Whether the file has more than one cluster (then screens and summaries name them).
    pub fn has_clusters(&self) -> bool {
        self.clusters().len() > 1
    }

    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// The link from `from` to `to`, if the file declares one.
    pub fn link(&self, from: &str, to: &str) -> Option<&Connection> {
        self.connections
            .iter()
            .find(|c| c.from == from && c.to == to)
    }

    /// Whether the link between `a` and `b` (either way) is encrypted: `set TLS "on"`, or a
    /// connection between them marked `encrypted true`.
    pub fn encrypted_link(&self, a: &str, b: &str) -> bool {
        self.globals.tls
            || self.connections.iter().any(|c| {
                c.link.encrypted && ((c.from == a && c.to == b) || (c.from == b && c.to == a))
            })
    }

    /// Whether any link is encrypted (`set TLS "on"`, or a connection marked `encrypted`).
    pub fn any_encrypted(&self) -> bool {
        self.globals.tls || self.connections.iter().any(|c| c.link.encrypted)
    }

    /// Whether server `name` serves TLS (and so holds a certificate): `set TLS "on"`, or an
    /// encrypted link reaches it.
    pub fn encrypted(&self, name: &str) -> bool {
        self.any_encrypted() && self.node(name).is_some_and(|n| self.serves_tls(n))
    }

    /// [`Topology::encrypted`] for a node in hand.
    fn serves_tls(&self, node: &Node) -> bool {
        node.listens()
            && (self.globals.tls
                || self
                    .connections
                    .iter()
                    .any(|c| c.link.encrypted && (c.from == node.name || c.to == node.name)))
    }

    /// Whether server `name`'s port takes TLS only (`set TLS "on"`). Otherwise a server that
    /// serves TLS takes plaintext peers too (old lab code joins unchanged), telling them apart
    /// by their first byte; its encrypted links refuse plaintext where they begin.
    pub fn tls_only(&self, name: &str) -> bool {
        self.globals.tls && self.node(name).is_some_and(Node::listens)
    }

    /// The servers that serve TLS, in file order.
    pub fn encrypted_servers(&self) -> impl Iterator<Item = &Node> {
        let any = self.any_encrypted();
        self.nodes.iter().filter(move |n| any && self.serves_tls(n))
    }
}

/// The cluster of nodes that do not say `cluster NAME`.
pub const DEFAULT_CLUSTER: &str = "default";

/// The `set` commands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Globals {
    /// Every global as written, in file order (unknown ones are kept and shown).
    pub all: Vec<(String, String)>,
    /// `SYSTEM_NAME`, or the file's name without `.top`.
    pub system_name: String,
    /// `VERSION`, if set.
    pub version: Option<String>,
    /// `LOG_LEVEL` (default `INFO`).
    pub log_level: LogLevel,
    /// `CLUSTER_SECRET`: when set, nodes authenticate to each other with it.
    pub cluster_secret: Option<String>,
    /// `PEER_SECRET`: what masters and chat servers prove to each other (and the launcher to
    /// them). Without it, tcluster makes a fresh one for every run and hands it only to the
    /// nodes it starts; set it to start servers by hand.
    pub peer_secret: Option<String>,
    /// `TIME_SCALE`: scenario and policy times are multiplied by it (default 1).
    pub time_scale: f64,
    /// `STATE_DIR`: where journals, chat history and logs are kept, if set.
    pub state_dir: Option<String>,
    /// `TLS "on"`: every link is encrypted.
    pub tls: bool,
    /// `TLS_DIR`: the lab's own certificates (`ca.pem`, and `NODE.pem` with `NODE.key` for each
    /// encrypted server) instead of those tcluster makes.
    pub tls_dir: Option<String>,
}

/// `LOG_LEVEL` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Detail for debugging.
    Debug,
    /// Normal operation (the default).
    #[default]
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The names accepted by `set LOG_LEVEL`.
    pub const NAMES: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

    /// Parses a level name, in any case (`WARNING` is accepted for `WARN`).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.to_ascii_uppercase().as_str() {
            "TRACE" => LogLevel::Trace,
            "DEBUG" => LogLevel::Debug,
            "INFO" => LogLevel::Info,
            "WARN" | "WARNING" => LogLevel::Warn,
            "ERROR" => LogLevel::Error,
            _ => return None,
        })
    }
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name (`worker-2` for the second copy of a `count 3` node called `worker`).
    pub name: String,
    /// For a copy made by `count`, the name written in the file (`worker`).
    pub group: Option<String>,
    /// What the node does.
    pub kind: NodeKind,
    /// For masters: primary or backup. `None` for other kinds.
    pub role: Option<MasterRole>,
    /// `cluster NAME`: the cluster it belongs to ([`DEFAULT_CLUSTER`] when not written). A
    /// worker's home: its cluster's masters are the ones it registers with, and lend it.
    pub cluster: String,
    /// Host to listen on or connect from (default `127.0.0.1`).
    pub address: String,
    /// TCP port; `None` lets tcluster pick a free one when it launches the node.
    pub port: Option<u16>,
    /// `resources { … }`; `cpu` is a worker's number of concurrent job slots.
    pub resources: Resources,
    /// `services { NAME bool … }`, in file order.
    pub services: Vec<(String, bool)>,
    /// For bots: `bot { … }`, or the defaults.
    pub bot: Option<BotSettings>,
    /// An outside program to run instead of the built-in node.
    pub command: Option<String>,
    /// How tcluster starts the node.
    pub launch: Launch,
    /// `host "ssh://user@lab-12"`: the machine it runs on, reached over SSH (`None`: this one).
    pub host: Option<Remote>,
    /// Where the node's name is written, for later messages about it.
    pub span: Span,
}

/// A node's machine, reached with the system's `ssh` (so `~/.ssh/config` applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The login, if the URL names one (else ssh's own default).
    pub user: Option<String>,
    /// The host name or address.
    pub host: String,
    /// The SSH port, if not ssh's default.
    pub port: Option<u16>,
    /// `identity "PATH"`: the private key to log in with.
    pub identity: Option<String>,
    /// `remote_binary "PATH"`: tcluster on that machine (default `tcluster`, on its PATH).
    pub binary: String,
}

impl Remote {
    /// Reads `ssh://[user@]host[:port]`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Remote, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("`{url}` is not an ssh:// address"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => (Some(user), hostport),
            None => (None, rest),
        };
        if let Some(user) = user
            && (user.is_empty()
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)))
        {
            return Err(format!("`{user}` is not a login name"));
        }
        // `[::1]:22` or `host:22` or `host`.
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("`{hostport}` opens `[` and does not close it"))?;
                (host, after.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            },
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
        {
            return Err(format!("`{host}` is not a host name"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => return Err(format!("`{p}` is not a port from 1 to 65535")),
            },
        };
        Ok(Remote {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
            identity: None,
            binary: "tcluster".to_string(),
        })
    }

    /// `ssh://user@host:port`, as written back.
    pub fn url(&self) -> String {
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("ssh://{user}{host}{port}")
    }
}

impl Node {
    /// `address:port`; `address:auto` for a server whose port is picked at launch; the bare
    /// address for a node that only connects out (a worker, client or bot without a port).
    pub fn endpoint(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.address),
            None if self.listens() => format!("{}:auto", self.address),
            None => self.address.clone(),
        }
    }

    /// Whether the node serves connections (masters, chat servers and brokers do).
    pub fn listens(&self) -> bool {
        matches!(
            self.kind,
            NodeKind::Master | NodeKind::Chat | NodeKind::Broker
        )
    }
}

/// What a bot does (`bot { channels …; posts 2/s; jobs 0.5/s; job "sleep 200ms" }`).
#[derive(Debug, Clone, PartialEq)]
pub struct BotSettings {
    /// The channels it posts to (created if they do not exist).
    pub channels: Vec<String>,
    /// Chat messages per second.
    pub posts_per_second: f64,
    /// Job submissions per second.
    pub jobs_per_second: f64,
    /// The job it submits.
    pub job: String,
}

impl Default for BotSettings {
    fn default() -> Self {
        BotSettings {
            channels: vec!["general".to_string()],
            posts_per_second: 1.0,
            jobs_per_second: 0.0,
            job: "sleep 500ms".to_string(),
        }
    }
}

/// The kinds of node (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    /// A coordinator: primary or backup.
    Master,
    /// Runs jobs.
    Worker,
    /// Submits jobs.
    Client,
    /// A chat server.
    Chat,
    /// Generates load: chat messages and jobs.
    Bot,
    /// One address in front of the chat servers: forwards each request to the next live one.
    Broker,
}

impl NodeKind {
    /// Every kind, in launch order.
    pub const ALL: [NodeKind; 6] = [
        NodeKind::Master,
        NodeKind::Worker,
        NodeKind::Chat,
        NodeKind::Broker,
        NodeKind::Bot,
        NodeKind::Client,
    ];

    /// The word used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Master => "master",
            NodeKind::Worker => "worker",
            NodeKind::Client => "client",
            NodeKind::Chat => "chat",
            NodeKind::Bot => "bot",
            NodeKind::Broker => "broker",
        }
    }

    /// Parses the word used in files.
    pub fn parse(text: &str) -> Option<Self> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A master's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterRole {
    /// Serves clients and workers.
    Primary,
    /// Follows the primary and takes over when it dies.
    Backup,
}

impl MasterRole {
    /// The word used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            MasterRole::Primary => "primary",
            MasterRole::Backup => "backup",
        }
    }
}

/// `resources { … }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// CPUs; on a worker, how many jobs it runs at once (default 1).
    pub cpu: u32,
    /// Memory, if declared (shown, not enforced).
    pub memory: Option<Size>,
    /// Storage, if declared (shown, not enforced).
    pub storage: Option<Size>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu: 1,
            memory: None,
            storage: None,
        }
    }
}

/// `launch process|inproc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Launch {
    /// A child process of tcluster (the default): can be SIGKILLed and SIGSTOPped for real.
    #[default]
    Process,
    /// A task inside tcluster: cheaper, for large topologies.
    Inproc,
}

/// A link from one node to another, with the properties the shaping proxy applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// Sending node.
    pub from: String,
    /// Receiving node.
    pub to: String,
    /// True if the file wrote `<->` (this entry is one of the two directions).
    pub both_ways: bool,
    /// The link's properties.
    pub link: Link,
    /// Where the connection is written.
    pub span: Span,
}

/// Properties of a link.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    /// `protocol` (only `tcp` is carried; others are shown as written).
    pub protocol: Option<String>,
    /// Bandwidth cap.
    pub bandwidth: Option<Rate>,
    /// Added one-way delay.
    pub latency: Duration,
    /// Random extra delay, up to this much.
    pub jitter: Duration,
    /// Share of messages dropped.
    pub loss: Percent,
    /// `encrypted`: the servers at its ends speak TLS only (see [`Topology::encrypted`]).
    pub encrypted: bool,
}

/// A login account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Password, as written in the file.
    pub password: String,
    /// What the account may do.
    pub role: UserRole,
}

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserRole {
    /// Everything, faults included.
    Operator,
    /// Submit jobs and chat.
    #[default]
    Student,
}

/// A scripted demo.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name (`tcluster run --scenario NAME`).
    pub name: String,
    /// Steps in the order written; each has its own time.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The time of the last step.
    pub fn length(&self) -> Duration {
        self.steps.iter().map(|s| s.at).max().unwrap_or_default()
    }
}

/// `at TIME ACTION ARGS...`
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Time since the scenario started.
    pub at: Duration,
    /// What happens then.
    pub action: ClusterAction,
    /// Where the step is written.
    pub span: Span,
}

/// What a scenario step does.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterAction {
    /// `submit DATA [count N] [priority P] [to CLUSTER]`
    Submit {
        /// The job's data (`sleep 1s`, `cpu 100000`, `echo hi`, or free text).
        data: String,
        /// How many copies.
        count: u32,
        /// Higher runs first.
        priority: i32,
        /// The cluster whose primary takes them (`None`: the default cluster).
        cluster: Option<String>,
    },
    /// `kill NODE`
    Kill(String),
    /// `pause NODE`
    Pause(String),
    /// `resume NODE`
    Resume(String),
    /// `restart NODE`
    Restart(String),
    /// `partition A B`, `partition A -> B` (one way), or `partition A` (from all).
    Partition {
        /// One side.
        a: String,
        /// The other side; `None` cuts `a` from every node.
        b: Option<String>,
        /// Only traffic from `a` to `b` is cut.
        one_way: bool,
    },
    /// `heal`, `heal A` or `heal A B`.
    Heal {
        /// Only links of this node (`None`: every link).
        a: Option<String>,
        /// Only the link between `a` and this node.
        b: Option<String>,
    },
    /// `latency A B DURATION [jitter DURATION]`
    Latency {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// Added delay.
        latency: Duration,
        /// Random extra delay.
        jitter: Duration,
    },
    /// `loss A B PERCENT`
    Loss {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// Share of messages dropped.
        loss: Percent,
        /// Only messages from `a` to `b` (`loss A -> B 20%`).
        one_way: bool,
    },
    /// `skew NODE OFFSET`: the node's clock runs ahead (or behind, negative).
    Skew {
        node: String,
        /// Offset in milliseconds.
        offset_ms: i64,
    },
    /// `say "TEXT"`: a banner on screen and a line in the log.
    Say(String),
    /// `expect [within DURATION] EXPR "TEXT"`: what the class should see, checked.
    Expect(super::expect::Expectation),
    /// `hold A B` or `hold A -> B`: the link's messages wait for the operator.
    Hold { a: String, b: String, one_way: bool },
    /// `release`, `release A`, `release A B`: held links deliver what waits, in order.
    Release {
        a: Option<String>,
        b: Option<String>,
    },
    /// `speed SCALE`: the whole cluster runs at this pace from now on (slow motion: 0.1 is ten
    /// times slower; 1 is real time again).
    Speed(f64),
}

/// What a scenario step or a console command calls whichever master is primary when it runs
/// (unless a node has this name): after a failover, `partition primary worker-3` still cuts
/// the worker from the master that serves.
pub const PRIMARY_WORD: &str = "primary";

impl ClusterAction {
    /// The names of the nodes the action acts on, to change them (a step's `primary` is named
    /// when the step runs).
    pub fn nodes_mut(&mut self) -> Vec<&mut String> {
        match self {
            ClusterAction::Kill(n)
            | ClusterAction::Pause(n)
            | ClusterAction::Resume(n)
            | ClusterAction::Restart(n)
            | ClusterAction::Skew { node: n, .. } => vec![n],
            ClusterAction::Partition { a, b, .. } => std::iter::once(a).chain(b).collect(),
            ClusterAction::Heal { a, b } | ClusterAction::Release { a, b } => {
                a.iter_mut().chain(b).collect()
            }
            ClusterAction::Latency { a, b, .. }
            | ClusterAction::Loss { a, b, .. }
            | ClusterAction::Hold { a, b, .. } => vec![a, b],
            ClusterAction::Submit { .. }
            | ClusterAction::Say(_)
            | ClusterAction::Expect(_)
            | ClusterAction::Speed(_) => Vec::new(),
        }
    }

    /// The action's word in files.
    pub fn name(&self) -> &'static str {
        match self {
            ClusterAction::Submit { .. } => "submit",
            ClusterAction::Kill(_) => "kill",
            ClusterAction::Pause(_) => "pause",
            ClusterAction::Resume(_) => "resume",
            ClusterAction::Restart(_) => "restart",
            ClusterAction::Partition { .. } => "partition",
            ClusterAction::Heal { .. } => "heal",
            ClusterAction::Latency { .. } => "latency",
            ClusterAction::Loss { .. } => "loss",
            ClusterAction::Skew { .. } => "skew",
            ClusterAction::Say(_) => "say",
            ClusterAction::Expect(_) => "expect",
            ClusterAction::Hold { .. } => "hold",
            ClusterAction::Release { .. } => "release",
            ClusterAction::Speed(_) => "speed",
        }
    }

    /// Every action word.
    pub const NAMES: [&str; 15] = [
        "submit",
        "kill",
        "pause",
        "resume",
        "restart",
        "partition",
        "heal",
        "latency",
        "loss",
        "skew",
        "say",
        "expect",
        "hold",
        "release",
        "speed",
    ];
}

impl fmt::Display for ClusterAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::units::format_duration as d;
        match self {
            ClusterAction::Submit {
                data,
                count,
                priority,
                cluster,
            } => {
                write!(f, "submit {data:?}")?;
                if *count != 1 {
                    write!(f, " count {count}")?;
                }
                if *priority != 0 {
                    write!(f, " priority {priority}")?;
                }
                if let Some(cluster) = cluster {
                    write!(f, " to {cluster}")?;
                }
                Ok(())
            }
            ClusterAction::Kill(n)
            | ClusterAction::Pause(n)
            | ClusterAction::Resume(n)
            | ClusterAction::Restart(n) => {
                write!(f, "{} {n}", self.name())
            }
            ClusterAction::Partition { a, b: None, .. } => write!(f, "partition {a} (from all)"),
            ClusterAction::Partition {
                a,
                b: Some(b),
                one_way,
            } => write!(
                f,
                "partition {a} {} {b}",
                if *one_way { "->" } else { "<->" }
            ),
            ClusterAction::Heal { a: None, .. } => write!(f, "heal (every link)"),
            ClusterAction::Heal {
                a: Some(a),
                b: None,
            } => write!(f, "heal {a}"),
            ClusterAction::Heal {
                a: Some(a),
                b: Some(b),
            } => write!(f, "heal {a} {b}"),
            ClusterAction::Latency {
                a,
                b,
                latency,
                jitter,
            } => {
                write!(f, "latency {a} {b} {}", d(*latency))?;
                if !jitter.is_zero() {
                    write!(f, " jitter {}", d(*jitter))?;
                }
                Ok(())
            }
            ClusterAction::Loss {
                a,
                b,
                loss,
                one_way: false,
            } => write!(f, "loss {a} {b} {loss}"),
            ClusterAction::Loss { a, b, loss, .. } => write!(f, "loss {a} -> {b} {loss}"),
            ClusterAction::Skew { node, offset_ms } => write!(f, "skew {node} {offset_ms:+}ms"),
            ClusterAction::Say(text) => write!(f, "say {text:?}"),
            ClusterAction::Expect(expectation) => write!(f, "{expectation}"),
            ClusterAction::Hold { a, b, one_way } => {
                write!(f, "hold {a} {} {b}", if *one_way { "->" } else { "<->" })
            }
            ClusterAction::Release { a: None, .. } => write!(f, "release (every held link)"),
            ClusterAction::Release {
                a: Some(a),
                b: None,
            } => write!(f, "release {a}"),
            ClusterAction::Release {
                a: Some(a),
                b: Some(b),
            } => write!(f, "release {a} {b}"),
            ClusterAction::Speed(scale) => write!(f, "speed {scale}"),
        }
    }
}
