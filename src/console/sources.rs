//! The tasks that feed the console's loop: the terminal, a ticker, the primary's view of its
//! workers, the supervisor's updates and logs, the links and process usage, the chat link (or,
//! attached to a cluster it did not launch, the coordinator's own events). Each turns what it
//! hears into [`Input`]s on the one channel; none of them touches the [`App`](super::app::App).

use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc;

use super::app::{self, LinkView};
use super::keymap::Action;
use crate::client::Client;
use crate::protocol::message::{Message, PeerRole};
use crate::supervisor::shaper::LinkShaper;
use crate::supervisor::{Request, SupervisorHandle};

/// What feeds the loop.
pub(super) enum Input {
    /// A key, a mouse event, a resize.
    Terminal(Event),
    /// Anything else, already an action.
    Action(Action),
}

/// Starts the tasks that feed the loop.
pub(super) fn spawn_sources(
    tx: &mpsc::UnboundedSender<Input>,
    handle: Option<&SupervisorHandle>,
    coordinator: String,
    secret: Option<String>,
    started: Instant,
) {
    read_terminal(tx.clone());
    tick(tx.clone(), started);
    // The primary first, then every master (none without masters: nothing to poll).
    let mut masters: Vec<String> = [coordinator]
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(h) = handle {
        let others = h.nodes.iter().filter(|n| n.kind == "master");
        masters.extend(others.filter_map(|n| n.address.clone()));
        masters.dedup();
    }
    tokio::spawn(poll_workers(tx.clone(), masters.clone(), secret.clone()));
    let Some(handle) = handle else {
        // Attached to a cluster it did not launch: the console reads the coordinator's events
        // itself, history first.
        tokio::spawn(follow_coordinator(tx.clone(), masters, secret, started));
        return;
    };
    let (updates, logs) = handle.watch();
    // A node that changed between the launch and this subscription: hear its state again.
    let _ = handle.commands.try_send(Request::Republish);
    forward(tx, updates, Action::Update);
    forward(tx, logs, Action::Log);
    forward(tx, handle.shaper.watch(), Action::Message);
    tokio::spawn(sample_links_and_usage(tx.clone(), handle.shaper.clone()));
    tokio::spawn(watch_held(tx.clone(), handle.shaper.clone()));
}

/// The terminal, read on a thread of its own (reading blocks).
fn read_terminal(tx: mpsc::UnboundedSender<Input>) {
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if tx.send(Input::Terminal(event)).is_err() {
                break;
            }
        }
    });
}

/// Ticks: the clock in the status bar, expiring banners, throughput buckets.
fn tick(tx: mpsc::UnboundedSender<Input>, started: Instant) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        loop {
            interval.tick().await;
            let now = started.elapsed().as_millis() as u64;
            if tx.send(Input::Action(Action::Tick(now))).is_err() {
                break;
            }
        }
    });
}

/// The primary's view of its workers (heartbeat ages, load, clocks), twice a second. After a
/// takeover the primary is another master: the poll finds whichever one says it is the primary.
async fn poll_workers(
    tx: mpsc::UnboundedSender<Input>,
    masters: Vec<String>,
    secret: Option<String>,
) {
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
                if tx.send(Input::Action(Action::Workers(workers))).is_err() {
                    break;
                }
            }
            _ => client = None,
        }
    }
}

/// A connection to the first of `masters` that answers and does not say it is a backup.
async fn find_primary(masters: &[String], secret: Option<&str>) -> Option<Client> {
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

/// The links' state, and the CPU and memory of each process tcluster launched, once a second.
async fn sample_links_and_usage(tx: mpsc::UnboundedSender<Input>, shaper: LinkShaper) {
    let mut system = sysinfo::System::new();
    let mut interval = tokio::time::interval(Duration::from_millis(1000));
    loop {
        interval.tick().await;
        let links = shaper
            .all()
            .into_iter()
            .map(|((from, to), s)| LinkView {
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
        if tx.send(Input::Action(Action::Links(links))).is_err() {
            break;
        }
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
            .map(|(pid, p)| app::ProcessUsage {
                pid: pid.as_u32(),
                cpu_percent: p.cpu_usage(),
                memory_bytes: p.memory(),
            })
            .collect();
        let _ = tx.send(Input::Action(Action::Usage(usage)));
    }
}

/// An attached console's reading of the cluster: it subscribes to the coordinator it was given
/// (its history first, then every event), and starts over whenever the connection does.
async fn follow_coordinator(
    tx: mpsc::UnboundedSender<Input>,
    masters: Vec<String>,
    secret: Option<String>,
    started: Instant,
) {
    use crate::supervisor::Update;
    use crate::supervisor::timeline::{TimelineEvent, TimelineKind};
    use crate::view::ClusterView;
    let Some(addr) = masters.first().cloned() else {
        return;
    };
    loop {
        if let Ok(mut client) = Client::connect(&addr, "console", secret.as_deref()).await
            && client
                .send(Message::Subscribe { history: true })
                .await
                .is_ok()
        {
            let mut history = Vec::new();
            let mut primary = String::new();
            while let Ok(envelope) = client.receive().await {
                let action = match envelope.message {
                    Message::History { events, done } => {
                        history.extend(events);
                        if !done {
                            continue;
                        }
                        primary = envelope.from;
                        let mut view = ClusterView::new(&primary, 1, false);
                        view.resync(&std::mem::take(&mut history));
                        Action::Update(Update::View(std::sync::Arc::new(view)))
                    }
                    Message::Event { event } => Action::Update(Update::Timeline(TimelineEvent {
                        at_ms: started.elapsed().as_millis() as u64,
                        source: primary.clone(),
                        kind: TimelineKind::Cluster { event },
                    })),
                    _ => continue,
                };
                if tx.send(Input::Action(action)).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The chat pane's connection: to one of the chat servers, logged in as the operator, subscribed
/// to every channel. When its server goes, the link moves to the next one and the pane fetches
/// the recent history of each channel again, so nothing posted meanwhile is missing. Returns
/// where to send the operator's posts; none when the cluster has no chat server.
pub(super) fn spawn_chat(
    tx: &mpsc::UnboundedSender<Input>,
    handle: &SupervisorHandle,
) -> Option<mpsc::UnboundedSender<Message>> {
    use crate::client::{Link, LinkNews, Pick};
    use app::{ChatNews, OPERATOR};
    /// Messages fetched per channel after connecting.
    const HISTORY: usize = 200;
    // Through the brokers when the topology has any, else to the chat servers themselves.
    let kind = if handle.nodes.iter().any(|n| n.kind == "broker") {
        "broker"
    } else {
        "chat"
    };
    let servers: Vec<(String, String)> = handle
        .nodes
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
    let key = (handle.peer_key.clone(), PeerRole::Supervisor);
    let mut link = Link::spawn(
        addresses,
        "console".to_string(),
        Some(key),
        Pick::Any,
        tokio_util::sync::CancellationToken::new(),
    );
    let sender = link.sender();
    let tx = tx.clone();
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
                    link.send(Message::ChatSubscribe {
                        channel: "*".to_string(),
                    });
                    link.send(Message::ChatChannels);
                    ChatNews::Up(name_of(&addr))
                }
                LinkNews::Down(addr, why) => ChatNews::Down(name_of(&addr), why),
                LinkNews::Message(message) => match message {
                    Message::ChatMessage { entry } | Message::ChatDone { entry: Some(entry) } => {
                        ChatNews::Entries(vec![entry])
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
            if tx.send(Input::Action(Action::Chat(news))).is_err() {
                break;
            }
        }
    });
    Some(sender)
}

/// Hands what a broadcast channel carries to the loop, as actions; says so when it falls behind.
fn forward<T: Clone + Send + 'static>(
    tx: &mpsc::UnboundedSender<Input>,
    mut rx: tokio::sync::broadcast::Receiver<T>,
    wrap: impl Fn(T) -> Action + Send + 'static,
) {
    let tx = tx.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(item) => {
                    if tx.send(Input::Action(wrap(item))).is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let _ = tx.send(Input::Action(Action::Flash(format!(
                        "the console fell {n} updates behind"
                    ))));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// The messages waiting on held links, whenever they change (read five times a second).
async fn watch_held(tx: mpsc::UnboundedSender<Input>, shaper: LinkShaper) {
    let mut last = Vec::new();
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        let now = shaper.held();
        if now != last {
            last = now.clone();
            if tx.send(Input::Action(Action::Held(now))).is_err() {
                break;
            }
        }
    }
}
