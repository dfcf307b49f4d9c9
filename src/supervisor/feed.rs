//! The feed: everything a console reads of a run, in one stream, each item stamped with the
//! run time it was heard at.
//!
//! ```text
//!  supervisor updates (timeline, nodes, the reading) ─┐
//!  node log lines ────────────────────────────────────┤
//!  the shaper's message tap ──────────────────────────┤
//!  links and process usage (each second) ─────────────┼─▶ Feed ─▶ broadcast ─┬─▶ the console
//!  held messages (when they change) ──────────────────┤                      │   (or a headless
//!  the primary's worker figures (twice a second) ─────┤                      │   run's printout)
//!  the chat, as the operator's link hears it ─────────┘                      └─▶ the recorder
//!                                                                                (recording/)
//! ```
//!
//! A live console and a replay read the same items in the same order: the console turns each
//! into an action for its `update`, the recorder writes each as one line, and `tcluster
//! replay` feeds the lines back into the same `update`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Update;
use super::logs::LogLine;
use crate::client::Client;
use crate::cluster::worker::WorkerView;
use crate::protocol::message::{ChatEntry, Encoding, Message};
use crate::shaper::{HeldMessage, LinkShaper, MessageSeen};
use crate::view::NodeStatus;

/// How many items a slow reader may fall behind before it misses some.
const CAPACITY: usize = 65_536;

/// One item of the feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "feed", content = "of", rename_all = "snake_case")]
pub enum Feed {
    /// What the run is: the first item of every recording segment.
    Start(RunInfo),
    /// The supervisor reports something.
    Update(Update),
    /// A node logged a line.
    Log(LogLine),
    /// A message went over a link.
    Message(MessageSeen),
    /// The links' state.
    Links(Vec<LinkView>),
    /// What each launched process uses.
    Usage(Vec<ProcessUsage>),
    /// The messages waiting on held links.
    Held(Vec<HeldMessage>),
    /// The primary's figures for its workers (heartbeat ages, load, clocks).
    Workers(Vec<WorkerView>),
    /// The console's chat pane heard something.
    Chat(ChatNews),
}

/// A feed item and when it was heard (milliseconds since the run began).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stamped {
    #[serde(rename = "t")]
    pub at_ms: u64,
    #[serde(flatten)]
    pub feed: Feed,
}

/// What a console needs to open on a run: the first item of every recording segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `SYSTEM_NAME`.
    pub system: String,
    /// The topology file.
    pub topology: String,
    /// When the run began, local time (`2026-11-26 10:42`).
    pub began: String,
    /// The launcher's clock when the run began (milliseconds since 1970).
    pub epoch_ms: i64,
    /// The primary when the launch finished, and its term.
    pub primary: String,
    pub term: u64,
    /// The nodes as they were when the launch finished, in launch order.
    pub nodes: Vec<NodeStatus>,
    /// The topology's scenarios.
    pub scenarios: Vec<String>,
    /// The clusters of a topology with several (empty with one).
    pub clusters: Vec<String>,
    /// The cluster of the primary.
    pub main_cluster: String,
    /// Each other cluster and its primary in the topology.
    pub others: Vec<(String, String)>,
    /// Whether the topology has a chat server.
    pub chat: bool,
    /// The cluster's pace (`policy time`): cluster time per real time.
    #[serde(default = "real_time")]
    pub scale: f64,
    /// How many recording segments came before this one in the run (0: this is the first).
    #[serde(default)]
    pub segment: u64,
}

fn real_time() -> f64 {
    1.0
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo {
            system: String::new(),
            topology: String::new(),
            began: String::new(),
            epoch_ms: 0,
            primary: String::new(),
            term: 0,
            nodes: Vec::new(),
            scenarios: Vec::new(),
            clusters: Vec::new(),
            main_cluster: String::new(),
            others: Vec::new(),
            chat: false,
            scale: 1.0,
            segment: 0,
        }
    }
}

/// A link as the map shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Cut.
    pub cut: bool,
    /// Latency in milliseconds.
    pub latency_ms: u64,
    /// Jitter in milliseconds.
    pub jitter_ms: u64,
    /// Loss, percent.
    pub loss: f64,
    /// Messages carried so far.
    pub carried: u64,
    /// Its messages wait for the operator.
    pub held: bool,
    /// It is TLS on both hops (its server's port is encrypted).
    #[serde(default)]
    pub encrypted: bool,
    /// Connections refused on it for speaking plaintext.
    #[serde(default)]
    pub plaintext: u64,
}

/// What one process tcluster launched uses, as sampled once a second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// The process.
    pub pid: u32,
    /// CPU, in percent of one core.
    pub cpu_percent: f32,
    /// Resident memory, in bytes.
    pub memory_bytes: u64,
}

/// The name the operator chats as (`operator-2` … when another console holds it).
pub const OPERATOR: &str = "operator";

/// What the chat pane's connection reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "news", content = "of", rename_all = "snake_case")]
pub enum ChatNews {
    /// Connected to this chat server (by name).
    Up(String),
    /// Lost this chat server, for this reason.
    Down(String, String),
    /// Messages: live, the pane's own posts, or history after connecting.
    Entries(Vec<ChatEntry>),
    /// The channels the server knows.
    Channels(Vec<String>),
    /// The server refused a request.
    Refused(String),
    /// Logged in under this name (`operator`, or `operator-2` … when it was taken).
    LoggedIn(String),
}

/// The chat pane's connection, for every run (a headless one records the chat too): to one of
/// the chat servers, logged in as the operator, subscribed to every channel. When its server goes, the link moves to the next one and the pane fetches
/// the recent history of each channel again, so nothing posted meanwhile is missing. Returns
/// where to send the operator's posts (the console's chat pane); none when the cluster has no
/// chat server. What it hears goes into the feed.
pub(super) fn spawn_chat(
    feeder: &Feeder,
    nodes: &[NodeStatus],
    peer_key: String,
    shutdown: CancellationToken,
) -> Option<mpsc::UnboundedSender<Message>> {
    use crate::client::{Link, LinkNews, Pick};
    use crate::protocol::message::PeerRole;
    /// Messages fetched per channel after connecting.
    const HISTORY: usize = 200;
    // Through the brokers when the topology has any, else to the chat servers themselves.
    let kind = if nodes.iter().any(|n| n.kind == "broker") {
        "broker"
    } else {
        "chat"
    };
    let servers: Vec<(String, String)> = nodes
        .iter()
        .filter(|n| n.kind == kind)
        .filter_map(|n| Some((n.name.clone(), n.address.clone()?)))
        .collect();
    if servers.is_empty() {
        return None;
    }
    let addresses = servers.iter().map(|(_, a)| a.clone()).collect();
    // The launcher's console speaks with the launcher's credentials: it may watch every
    // channel and private message, as the lecturer's screen should.
    let key = (peer_key, PeerRole::Supervisor);
    let mut link = Link::spawn(
        addresses,
        "console".to_string(),
        Some(key),
        Pick::Any,
        shutdown,
    );
    let sender = link.sender();
    let feeder = feeder.clone();
    tokio::spawn(async move {
        let name_of = |addr: &str| {
            servers
                .iter()
                .find(|(_, a)| a == addr)
                .map_or(addr.to_string(), |(n, _)| n.clone())
        };
        // The name to log in with; `operator-2` … when another console holds `operator`.
        let mut login = OPERATOR.to_string();
        let mut taken = 0u32;
        let send_login = |link: &Link, user: &str| {
            link.send(Message::ChatLogin {
                user: user.to_string(),
                password: None,
                token: None,
            })
        };
        while let Some(news) = link.news.recv().await {
            let news = match news {
                LinkNews::Up(addr) => {
                    send_login(&link, &login);
                    // Every entry of every channel comes here: as frames, they cost the
                    // console less to read.
                    link.send(Message::ChatEncoding {
                        encoding: Encoding::Msgpack,
                    });
                    link.send(Message::ChatSubscribe {
                        channel: "*".to_string(),
                    });
                    link.send(Message::ChatChannels);
                    ChatNews::Up(name_of(&addr))
                }
                LinkNews::Down(addr, why) => ChatNews::Down(name_of(&addr), why),
                LinkNews::Message(message) => match message {
                    Message::ChatMessage { entry } | Message::ChatDone { entry: Some(entry) } => {
                        ChatNews::Entries(vec![*entry])
                    }
                    Message::ChatHistoryList { entries, .. } => ChatNews::Entries(entries),
                    Message::ChatChannelList { channels } => {
                        for channel in &channels {
                            link.send(Message::ChatHistory {
                                channel: Some(channel.clone()),
                                with: None,
                                limit: Some(HISTORY),
                            });
                        }
                        ChatNews::Channels(channels)
                    }
                    Message::ChatWelcome { user, .. } => ChatNews::LoggedIn(user),
                    Message::Error { message }
                        if message.contains("is already logged in here") && taken < 8 =>
                    {
                        taken += 1;
                        login = format!("{OPERATOR}-{}", taken + 1);
                        send_login(&link, &login);
                        continue;
                    }
                    Message::Error { message } => ChatNews::Refused(message),
                    _ => continue,
                },
            };
            if !feeder.send(Feed::Chat(news)) {
                break;
            }
        }
    });
    Some(sender)
}

/// Where feed items go: cloned by every task that feeds it.
#[derive(Clone)]
pub struct Feeder {
    tx: broadcast::Sender<Arc<Stamped>>,
    started: Instant,
}

impl Feeder {
    /// A feed for a run that began at `started`, and its first reader (which misses nothing
    /// sent from now on).
    pub fn new(started: Instant) -> (Feeder, broadcast::Receiver<Arc<Stamped>>) {
        let (tx, rx) = broadcast::channel(CAPACITY);
        (Feeder { tx, started }, rx)
    }

    /// Stamps an item with the run time and hands it to every reader; false once none is left.
    pub fn send(&self, feed: Feed) -> bool {
        let at_ms = self.started.elapsed().as_millis() as u64;
        self.tx.send(Arc::new(Stamped { at_ms, feed })).is_ok()
    }

    /// A reader of what is sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stamped>> {
        self.tx.subscribe()
    }
}

/// The next item a reader of the feed has at hand, without waiting (`None`: none yet), told
/// as `recv` tells it.
pub fn at_hand(
    feed: &mut broadcast::Receiver<Arc<Stamped>>,
) -> Option<Result<Arc<Stamped>, broadcast::error::RecvError>> {
    use broadcast::error::{RecvError, TryRecvError};
    match feed.try_recv() {
        Ok(item) => Some(Ok(item)),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
    }
}

/// News of one kind (the supervisor's updates, the nodes' log lines) that goes into the feed
/// as it is said, with no task between. Whoever listens reads the feed: the console, the
/// recorder, a headless run printing the timeline.
#[derive(Clone)]
pub struct News<T> {
    feeder: Feeder,
    wrap: fn(T) -> Feed,
}

impl<T> News<T> {
    /// News for `feeder`, made a feed item by `wrap`.
    pub fn new(feeder: Feeder, wrap: fn(T) -> Feed) -> Self {
        News { feeder, wrap }
    }

    /// Says it.
    pub fn send(&self, news: T) {
        self.feeder.send((self.wrap)(news));
    }
}

/// What the feed's tasks read from (the supervisor's updates and the logs come in as
/// [`News`]).
pub(super) struct Sources {
    pub shaper: LinkShaper,
    /// Every master's address, the primary first (none without masters).
    pub masters: Vec<String>,
    /// The cluster secret, to ask the primary for its workers.
    pub secret: Option<String>,
}

/// Starts the tasks that feed `feeder` until `shutdown`.
pub(super) fn spawn(feeder: &Feeder, sources: Sources, shutdown: CancellationToken) {
    let Sources {
        shaper,
        masters,
        secret,
    } = sources;
    let run = |task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = task => {}
                _ = shutdown.cancelled() => {}
            }
        });
    };
    run(Box::pin(forward(
        feeder.clone(),
        shaper.watch(),
        Feed::Message,
    )));
    run(Box::pin(sample_links_and_usage(
        feeder.clone(),
        shaper.clone(),
    )));
    run(Box::pin(watch_held(feeder.clone(), shaper)));
    if !masters.is_empty() {
        run(Box::pin(poll_workers(feeder.clone(), masters, secret)));
    }
}

/// Hands what a broadcast channel carries to the feed; a reader that fell behind is said in
/// the log.
async fn forward<T: Clone + Send + 'static>(
    feeder: Feeder,
    mut rx: broadcast::Receiver<T>,
    wrap: impl Fn(T) -> Feed + Send + 'static,
) {
    loop {
        match rx.recv().await {
            Ok(item) => {
                feeder.send(wrap(item));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("the feed fell {n} items behind");
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// The links' state, and the CPU and memory of each process tcluster launched, once a second.
async fn sample_links_and_usage(feeder: Feeder, shaper: LinkShaper) {
    let mut system = sysinfo::System::new();
    let mut interval = tokio::time::interval(Duration::from_millis(1000));
    loop {
        interval.tick().await;
        let links = shaper
            .all()
            .into_iter()
            .map(|((from, to), s)| LinkView {
                encrypted: shaper.encrypted(&from, &to),
                plaintext: s.plaintext,
                from,
                to,
                cut: s.cut,
                latency_ms: s.link.latency.as_millis() as u64,
                jitter_ms: s.link.jitter.as_millis() as u64,
                loss: s.link.loss.0,
                carried: s.carried,
                held: s.held,
            })
            .collect();
        feeder.send(Feed::Links(links));
        // Only CPU and memory, which is far cheaper than everything sysinfo can read.
        let kind = sysinfo::ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory();
        system.refresh_processes_specifics(sysinfo::ProcessesToUpdate::All, true, kind);
        // Only tcluster's own children: the nodes it launched.
        let me = sysinfo::Pid::from_u32(std::process::id());
        let usage = system
            .processes()
            .iter()
            .filter(|(_, p)| p.parent() == Some(me))
            .map(|(pid, p)| ProcessUsage {
                pid: pid.as_u32(),
                cpu_percent: p.cpu_usage(),
                memory_bytes: p.memory(),
            })
            .collect();
        feeder.send(Feed::Usage(usage));
    }
}

/// The messages waiting on held links, whenever they change (read five times a second).
async fn watch_held(feeder: Feeder, shaper: LinkShaper) {
    let mut last = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        let now = shaper.held();
        if now != last {
            last = now.clone();
            feeder.send(Feed::Held(now));
        }
    }
}

/// The primary's view of its workers (heartbeat ages, load, clocks), twice a second. After a
/// takeover the primary is another master: the poll finds whichever one says it is the primary.
pub async fn poll_workers(feeder: Feeder, masters: Vec<String>, secret: Option<String>) {
    let mut client: Option<Client> = None;
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    loop {
        interval.tick().await;
        if client.is_none() {
            client = find_primary(&masters, secret.as_deref()).await;
        }
        let Some(c) = client.as_mut() else { continue };
        // A paused primary never answers: after a second, look for the primary again
        // (meanwhile the figures on screen are marked stale).
        let reply = tokio::time::timeout(Duration::from_secs(1), c.request(Message::Workers));
        match reply.await {
            Ok(Ok(Message::WorkerList { workers })) => {
                feeder.send(Feed::Workers(workers));
            }
            _ => client = None,
        }
    }
}

/// A connection to the first of `masters` that answers and does not say it is a backup.
pub async fn find_primary(masters: &[String], secret: Option<&str>) -> Option<Client> {
    for addr in masters {
        let connect = Client::connect(addr, "console", secret);
        let Ok(Ok(mut c)) = tokio::time::timeout(Duration::from_secs(1), connect).await else {
            continue;
        };
        let status = c.request(Message::Status { job: None });
        if let Ok(Ok(Message::StatusReport { report })) =
            tokio::time::timeout(Duration::from_secs(1), status).await
            && report.role != "backup"
        {
            return Some(c);
        }
    }
    None
}
