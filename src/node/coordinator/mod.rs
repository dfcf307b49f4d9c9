//! The coordinator's driver: TCP in, [`Coordinator`] steps, TCP out.
//!
//! ```text
//!  accept ─▶ per connection: reader task ──(ConnEvent)──▶ ┐
//!                                                         ├─▶ one loop owns the Coordinator:
//!  ticker ───────────────────────────────────────────────▶ ┘   step(now, input) → outputs
//!                                                              │
//!  per connection: writer task ◀──(bounded queue of lines)───◀─┤ Send / Close
//!  watchers (broadcast) ◀───────────────────────────────────◀─┘ Event
//! ```
//!
//! The reader tells the protocol apart from the first line (a JSON object is native, anything
//! else classic), decodes each line and hands it over; the writer encodes each reply in the
//! connection's dialect. A slow reader never blocks the loop: its queue is bounded, and a peer
//! that lets it fill up is disconnected (an event subscriber only loses events, counted).

mod masters;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use crate::cluster::event::ClusterEvent;
use crate::protocol::message::{Envelope, Message};
use crate::protocol::{Dialect, encode};
use crate::role::coordinator::{ConnId, Coordinator, CoordinatorConfig, Input, Output};

use super::conn::{
    CONN_QUEUE, ConnNews, OpenSockets, Outgoing, Port, accept, accept_failed, accept_within,
};
use super::control::NodeControl;
use super::hold::Hold;
use crate::journal::{Journal, JournalWriter, Linger};
use masters::{FollowLink, PEER_LINK_QUEUE, ask_master, peer_link};

/// What a connection's reader tells the loop.
enum ConnEvent {
    /// A message on a backup's link to its primary (the link's generation first: messages of
    /// an older link are ignored).
    Primary(u64, Envelope),
    /// That link closed.
    PrimaryLost(u64),
    /// Another master's reply to a message sent to it (`None`: no reply in time).
    Master(String, Option<Envelope>),
    /// News of a connection.
    Conn(ConnNews),
    /// A datagram on the UDP port (heartbeats, with `policy heartbeat { transport udp }`).
    Datagram(Envelope),
}

impl From<ConnNews> for ConnEvent {
    fn from(news: ConnNews) -> Self {
        ConnEvent::Conn(news)
    }
}

/// A running coordinator.
pub struct CoordinatorHandle {
    /// Where it listens.
    pub local_addr: SocketAddr,
    /// Every event, for in-process watchers (the supervisor, tests).
    pub events: broadcast::Sender<ClusterEvent>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl CoordinatorHandle {
    /// Stops the coordinator and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Waits until it stops (after `shutdown` is cancelled).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts a coordinator on `listener`; it stops when `shutdown` is cancelled.
pub fn start(
    config: CoordinatorConfig,
    listener: TcpListener,
    control: NodeControl,
    shutdown: CancellationToken,
) -> std::io::Result<CoordinatorHandle> {
    start_with_journal(config, (listener, None), control, None, shutdown)
}

/// Starts a coordinator that replays `journal` first and writes every durable event to it
/// before sending the replies of the step that made it. With an acceptor, its port speaks TLS
/// only.
pub fn start_with_journal(
    config: CoordinatorConfig,
    (listener, tls): (
        TcpListener,
        Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
    ),
    control: NodeControl,
    journal: Option<(Journal, Vec<ClusterEvent>)>,
    shutdown: CancellationToken,
) -> std::io::Result<CoordinatorHandle> {
    let local_addr = listener.local_addr()?;
    let (events, _) = broadcast::channel(4096);
    let span = tracing::info_span!("node", node = %config.name);
    let task = tokio::spawn(
        run(
            config,
            (listener, tls),
            events.clone(),
            control,
            journal,
            shutdown.clone(),
        )
        .instrument(span),
    );
    Ok(CoordinatorHandle {
        local_addr,
        events,
        shutdown,
        task,
    })
}

/// How often the coordinator looks at its workers' silence: a tenth of the shortest limit, so
/// a failure is detected within 10% of its timeout, but never more often than every 5ms.
fn tick_interval(config: &CoordinatorConfig) -> Duration {
    let shortest = config.heartbeat.suspect_after.min(config.heartbeat.timeout);
    (shortest / 10).clamp(Duration::from_millis(5), Duration::from_millis(100))
}

/// A connection's writer: its queue of lines, how to close it, and its dialect.
type Writer = (Outgoing, CancellationToken, Dialect);

/// What the loop owns besides the coordinator.
struct Driver {
    coordinator: Coordinator,
    /// Sockets held open now (no more are accepted past the connection limit, and a little),
    /// and TLS if the port is encrypted.
    port: Port,
    /// The name and term its published events carry.
    name: String,
    term: u64,
    /// The journal's thread, when the master keeps one.
    journal: Option<JournalWriter>,
    /// Outputs waiting for the journal to commit what they promise.
    hold: Hold,
    /// A backup's link to its primary.
    link: FollowLink,
    /// Each connection's writer (looked up for every reply: foldhash, not SipHash).
    writers: foldhash::HashMap<ConnId, Writer>,
    inputs_tx: mpsc::Sender<(ConnId, ConnEvent)>,
    watchers: broadcast::Sender<ClusterEvent>,
    shutdown: CancellationToken,
    control: NodeControl,
    started: Instant,
    next_conn: ConnId,
    /// Events a slow subscriber missed, so far.
    dropped_events: u64,
    /// Events the coordinator produced, and the driver published, so far: they are
    /// published in the order produced, held or not.
    produced_events: u64,
    published_events: u64,
    /// A subscriber whose history already holds the events produced up to this count (it
    /// subscribed while some were still held): they are not sent to it again.
    subscribed_after: foldhash::HashMap<ConnId, u64>,
    /// One kept connection per master of another cluster (lending, peer heartbeats).
    peer_links: HashMap<String, mpsc::Sender<(Envelope, Duration)>>,
}

async fn run(
    config: CoordinatorConfig,
    (listener, tls): (
        TcpListener,
        Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
    ),
    watchers: broadcast::Sender<ClusterEvent>,
    control: NodeControl,
    journal: Option<(Journal, Vec<ClusterEvent>)>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(tick_interval(&config));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (name, term) = (config.name.clone(), config.term);
    let mut coordinator = Coordinator::new(config);
    let durability = coordinator.config().retention.durability;
    let journal = match journal {
        Some((journal, events)) => {
            coordinator.restore_from(journal.first(), &events);
            Some(JournalWriter::start(journal, durability))
        }
        None => None,
    };
    let (inputs_tx, mut inputs) = mpsc::channel::<(ConnId, ConnEvent)>(CONN_QUEUE);
    if coordinator.config().heartbeat.udp
        && let Ok(addr) = listener.local_addr()
    {
        tokio::spawn(receive_datagrams(addr, inputs_tx.clone(), shutdown.clone()));
    }
    let mut pause = control.clone();
    let mut driver = Driver {
        coordinator,
        port: Port {
            open: OpenSockets::default(),
            tls,
        },
        name,
        term,
        journal,
        hold: Hold::new(is_result_ack),
        link: FollowLink::default(),
        writers: foldhash::HashMap::default(),
        inputs_tx,
        watchers,
        shutdown: shutdown.clone(),
        control,
        started: Instant::now(),
        next_conn: 1,
        dropped_events: 0,
        produced_events: 0,
        published_events: 0,
        subscribed_after: foldhash::HashMap::default(),
        peer_links: HashMap::new(),
    };
    if let (false, Some(primary)) = (
        driver.coordinator.is_serving(),
        driver.coordinator.config().follow.clone(),
    ) {
        driver.follow(&primary);
    }
    // The last ticket the journal's thread said it committed, and news of the next.
    let mut seen = 0;
    let mut committed = driver.journal.as_ref().map(JournalWriter::watch);
    loop {
        // A paused coordinator reads nothing and sends nothing, as a stopped process would.
        tokio::select! {
            _ = pause.wait_while_paused() => {}
            _ = shutdown.cancelled() => break,
        }
        let stay_awake = driver
            .journal
            .as_ref()
            .map_or(Duration::ZERO, JournalWriter::stay_awake);
        // A journal that falls far behind slows the intake rather than let held replies pile up.
        let lagging = driver
            .journal
            .as_ref()
            .is_some_and(|j| j.outstanding() > MAX_OUTSTANDING);
        let input = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = accept_within(&listener, &driver.port.open, driver.coordinator.config().max_connections) => {
                match accepted {
                    Ok((stream, peer)) => driver.accept(stream, peer),
                    Err(e) => accept_failed(e).await,
                }
                continue;
            }
            committed = committed_after(&mut committed, seen, stay_awake), if !driver.hold.is_empty() => {
                seen = committed;
                for output in driver.hold.release(committed) {
                    driver.carry_out(output);
                }
                continue;
            }
            Some((conn, event)) = inputs.recv(), if !lagging => {
                match input_of(conn, event, &mut driver.writers, &driver.link) {
                    Some(input) => input,
                    None => continue,
                }
            }
            _ = ticker.tick() => Input::Tick,
        };
        let outputs = driver.step_batch(input, &mut inputs);
        for output in driver.write_down(outputs).into_iter().flatten() {
            driver.carry_out(output);
        }
    }
    info!("coordinator stopping");
    if let Some(journal) = driver.journal.take() {
        journal.stop().await;
    }
    for (_, (_, cancel, _)) in driver.writers.drain() {
        cancel.cancel();
    }
}

impl Driver {
    /// A new connection: its reader and writer tasks start.
    fn accept(&mut self, stream: tokio::net::TcpStream, peer: SocketAddr) {
        accept(
            &mut self.next_conn,
            stream,
            peer,
            &self.inputs_tx,
            &self.shutdown,
            &self.port,
        );
    }

    /// Steps the coordinator with `input`, and with what has already arrived after it, in one
    /// batch with one journal commit: a backup catching up applies thousands of events a
    /// second, not a few hundred. A batch ends where the link to the primary changes, so that
    /// no message of the old link is read as one of the new.
    fn step_batch(
        &mut self,
        input: Input,
        inputs: &mut mpsc::Receiver<(ConnId, ConnEvent)>,
    ) -> Vec<Vec<Output>> {
        let now = || self.control.now(self.started);
        let now = now();
        if self.coordinator.config().clock_sync.is_some() {
            self.coordinator.set_wall_clock(self.control.wall_ms());
        }
        let outputs = self.step(now, input);
        let mut steps = vec![outputs];
        let follows = |o: &Output| matches!(o, Output::Follow { .. });
        while steps.len() < MAX_BATCH && !steps.iter().flatten().any(follows) {
            let Ok((conn, event)) = inputs.try_recv() else {
                break;
            };
            if let Some(input) = input_of(conn, event, &mut self.writers, &self.link) {
                let now = self.control.now(self.started);
                let more = self.step(now, input);
                steps.push(more);
            }
        }
        steps
    }

    /// One step of the coordinator.
    fn step(&mut self, now: crate::clock::Millis, input: Input) -> Vec<Output> {
        let outputs = self.coordinator.step(now, input);
        self.count_produced(&outputs);
        outputs
    }

    /// Counts a step's events, and notes where a connection that subscribed in it starts.
    fn count_produced(&mut self, outputs: &[Output]) {
        self.produced_events += outputs
            .iter()
            .filter(|o| matches!(o, Output::Event(_)))
            .count() as u64;
        if let Some(conn) = self.coordinator.take_new_subscriber() {
            self.subscribed_after.insert(conn, self.produced_events);
        }
    }

    /// Hands the step's events to the journal, and returns what may be carried out now: a
    /// step that wrote something is held until it is committed (a reply may promise a job
    /// that must survive a crash); one that wrote nothing goes out at once unless it must
    /// keep its place behind a held one ([`Hold`]). The exception: a job's assignment to a
    /// worker leaves at once (ahead of the worker's held result acknowledgements, nothing
    /// else), so the job runs while its submission is being written. That
    /// promises no client anything; if this master dies before the commit, the job was never
    /// acknowledged, and its result reaches a master that does not know it and drops it.
    ///
    /// Step by step, not batch by batch: a `ping` read in the same batch as a finished job
    /// is answered at once. The batch's entries go to the journal together, under one ticket.
    /// A journal written inline (`none`, `periodic`) has them on file when `hand_over`
    /// returns, before anything of the batch is carried out: nothing is held then.
    ///
    /// What may go out is returned step by step as it came (not copied into one vector).
    fn write_down(&mut self, steps: Vec<Vec<Output>>) -> Vec<Vec<Output>> {
        let Some(journal) = self.journal.as_mut() else {
            return steps;
        };
        let mut entries = Vec::new();
        if journal.writes_inline() {
            // Written before anything of the batch is carried out: nothing need be held.
            for outputs in &steps {
                crate::journal::add_entries(outputs, &mut entries);
            }
            if !entries.is_empty() {
                journal.hand_over(entries, Linger::No);
            }
            return steps;
        }
        let ticket = journal.next_ticket();
        let mut now = Vec::new();
        let mut linger = Linger::No;
        for outputs in steps {
            if crate::journal::add_entries(&outputs, &mut entries) == 0 {
                now.extend(self.hold.pass(outputs));
            } else {
                let early = self.hold.hold_except(ticket, outputs, is_assignment);
                if early.iter().any(is_assignment) {
                    linger = Linger::Result;
                }
                now.extend(early);
            }
        }
        if !entries.is_empty() {
            journal.hand_over(entries, linger);
        }
        vec![now]
    }

    /// Carries out one output of the coordinator.
    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Send(conn, envelope) => {
                let Some((tx, cancel, dialect)) = self.writers.get(&conn) else {
                    return;
                };
                let Some(line) = encode(*dialect, &envelope) else {
                    return;
                };
                if tx.send_line(line).is_err() {
                    warn!(conn, "peer too slow to read its replies: disconnecting");
                    cancel.cancel();
                }
            }
            Output::ToPrimary(message) => {
                if let Some(tx) = &self.link.to_primary {
                    let _ = tx.send(message);
                }
            }
            Output::ToMaster {
                master,
                envelope,
                wait,
            } => {
                let config = self.coordinator.config();
                let address = config
                    .master(&master)
                    .map(|p| p.address.clone())
                    .filter(|a| !a.is_empty());
                let key = config.peer_key.clone();
                let inputs = self.inputs_tx.clone();
                if config.cluster_of(&master).is_some() || config.is_time_peer(&master) {
                    // Another cluster's master: over a kept connection, so a heartbeat every
                    // interval is one message each way, not a handshake each time.
                    let link = self.peer_links.entry(master.clone()).or_insert_with(|| {
                        let (tx, rx) = mpsc::channel(PEER_LINK_QUEUE);
                        let task = peer_link(
                            master.clone(),
                            address,
                            key,
                            rx,
                            inputs.clone(),
                            self.shutdown.clone(),
                        );
                        tokio::spawn(task.in_current_span());
                        tx
                    });
                    if link.try_send((envelope, wait)).is_err() {
                        // Too many unanswered already: this one is not answered either.
                        let _ = inputs.try_send((0, ConnEvent::Master(master, None)));
                    }
                    return;
                }
                tokio::spawn(
                    ask_master(master, address, key, envelope, wait, inputs).in_current_span(),
                );
            }
            // A master that starts over has had its journal emptied already (in order with
            // the step's events).
            Output::Follow { primary, .. } => self.follow(&primary),
            Output::Close(conn) => {
                if let Some((_, cancel, _)) = self.writers.remove(&conn) {
                    cancel.cancel();
                }
            }
            Output::Event(event) => self.publish(event),
            // Handed to the journal before anything was carried out.
            Output::Journal(_) => {}
            Output::AdjustClock(ms) => {
                info!(by_ms = ms, "clock adjusted by the time master");
                self.control.adjust(ms);
            }
        }
    }

    /// Opens (or reopens) the link to the primary this backup follows.
    fn follow(&mut self, primary: &str) {
        self.link
            .start(primary, &self.coordinator, &self.inputs_tx, &self.shutdown);
    }

    /// An event: logged, sent to every subscriber (a slow one loses it, counted), and handed
    /// to in-process watchers (a copy only when there are some).
    fn publish(&mut self, event: std::sync::Arc<ClusterEvent>) {
        log_event(&event, self.coordinator.is_serving());
        self.published_events += 1;
        let seq = self.published_events;
        if !self.subscribed_after.is_empty() {
            self.subscribed_after.retain(|_, after| *after >= seq);
        }
        if self.coordinator.subscribers().is_empty() {
            self.tell_watchers(event);
            return;
        }
        let line = super::conn::terminated(
            Envelope {
                from: self.name.as_str().into(),
                clock: event.clock,
                term: Some(self.term),
                message: Message::Event {
                    event: Arc::clone(&event),
                },
            }
            .to_json(),
        );
        for conn in self.coordinator.subscribers() {
            if self.subscribed_after.contains_key(conn) {
                // Its history, read after this event, has it already.
                continue;
            }
            if let Some((tx, _, _)) = self.writers.get(conn)
                && tx.send_lines(line.clone(), 1).is_err()
            {
                self.dropped_events += 1;
                if self.dropped_events.is_power_of_two() {
                    warn!(
                        conn,
                        dropped_events = self.dropped_events,
                        "a subscriber reads too slowly: events dropped"
                    );
                }
            }
        }
        self.tell_watchers(event);
    }

    fn tell_watchers(&self, event: std::sync::Arc<ClusterEvent>) {
        if self.watchers.receiver_count() > 0 {
            let _ = self.watchers.send(std::sync::Arc::unwrap_or_clone(event));
        }
    }
}

/// The most inputs handled between two journal commits.
const MAX_BATCH: usize = 512;

/// The most steps handed to the journal and not yet committed before the loop stops reading.
const MAX_OUTSTANDING: u64 = 256;

/// The next ticket the journal's thread commits after `seen` (never, without a journal),
/// polled for `awake` before the loop sleeps on it (`JournalWriter::stay_awake`: a quick
/// commit is due within about a tenth of a millisecond, and a loop that sleeps is woken by the
/// journal's thread tens of microseconds after it).
async fn committed_after(
    watch: &mut Option<tokio::sync::watch::Receiver<u64>>,
    seen: u64,
    awake: Duration,
) -> u64 {
    let Some(watch) = watch else {
        return std::future::pending().await;
    };
    let since = Instant::now();
    loop {
        let now = *watch.borrow_and_update();
        if now > seen {
            return now;
        }
        if since.elapsed() < awake {
            tokio::task::yield_now().await;
        } else if watch.changed().await.is_err() {
            // The thread is gone: nothing more will be committed.
            return std::future::pending().await;
        }
    }
}

/// The message `output` sends on a connection, if it sends one.
fn sent(output: &Output) -> Option<&Message> {
    match output {
        Output::Send(_, envelope) => Some(&envelope.message),
        _ => None,
    }
}

/// A result's acknowledgement to a worker: a new assignment to the same worker may leave
/// before it (it says nothing about the acknowledged job).
fn is_result_ack(output: &Output) -> bool {
    matches!(sent(output), Some(Message::ResultAck { .. }))
}

/// A job sent to a worker to run (what [`Driver::write_down`] lets leave before the commit).
fn is_assignment(output: &Output) -> bool {
    matches!(sent(output), Some(Message::Assign { .. }))
}

/// What a connection's news means to the coordinator (`None`: nothing, e.g. a message of a link
/// that has since been replaced). Keeps the writers in step with the connections.
fn input_of(
    conn: ConnId,
    event: ConnEvent,
    writers: &mut foldhash::HashMap<ConnId, Writer>,
    link: &FollowLink,
) -> Option<Input> {
    Some(match event {
        ConnEvent::Conn(ConnNews::Opened(tx, cancel)) => {
            writers.insert(conn, (tx, cancel, Dialect::Native));
            Input::Connected(conn)
        }
        ConnEvent::Conn(ConnNews::Line(dialect, envelope)) => {
            if let Some(w) = writers.get_mut(&conn) {
                w.2 = dialect;
            }
            Input::Received(conn, dialect, envelope)
        }
        ConnEvent::Conn(ConnNews::Invalid(reason, fatal)) => Input::Invalid {
            conn,
            reason,
            fatal,
        },
        ConnEvent::Primary(generation, envelope) if generation == link.generation => {
            Input::FromPrimary(envelope)
        }
        ConnEvent::PrimaryLost(generation) if generation == link.generation => Input::PrimaryLost,
        ConnEvent::Primary(..) | ConnEvent::PrimaryLost(_) => return None,
        ConnEvent::Master(master, reply) => Input::FromMaster { master, reply },
        ConnEvent::Datagram(envelope) => Input::Datagram(envelope),
        // Its writer is let go when the coordinator says so (`Output::Close`), after what the
        // connection was told before it closed.
        ConnEvent::Conn(ConnNews::Closed) => Input::Disconnected(conn),
        ConnEvent::Conn(ConnNews::Plaintext(peer)) => Input::Plaintext {
            peer: peer.to_string(),
        },
    })
}

/// The longest heartbeat datagram read: a worker's heartbeat lists the jobs it runs (up to
/// 4096 slots of them), and a datagram that does not fit is dropped.
const MAX_DATAGRAM: usize = 64 * 1024;

/// Reads datagrams on the UDP port of the same number as the TCP one and hands each that
/// decodes to the driver; the rest are dropped (UDP may lose them anyway). A full queue drops
/// datagrams rather than wait: connections come first.
async fn receive_datagrams(
    addr: SocketAddr,
    inputs: mpsc::Sender<(ConnId, ConnEvent)>,
    shutdown: CancellationToken,
) {
    let socket = match tokio::net::UdpSocket::bind(addr).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::error!(%addr, "cannot receive heartbeat datagrams: {e}");
            return;
        }
    };
    info!(%addr, "receiving heartbeats over UDP");
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, from)) = received else { continue };
        let Ok(text) = std::str::from_utf8(&buf[..n]) else {
            debug!(%from, "a datagram that is not text: dropped");
            continue;
        };
        match crate::protocol::decode(Dialect::Native, text.trim_end(), "") {
            Ok(envelope) => {
                let _ = inputs.try_send((0, ConnEvent::Datagram(envelope)));
            }
            Err(e) => debug!(%from, "a datagram that is not a message: {e}"),
        }
    }
}

/// Membership changes and faults are worth a line at `info`; the rest of the job traffic is
/// `debug`, or a busy cluster would drown its own log. A backup only replays what its primary
/// decided (and already logged), so everything it applies is `debug` — also the whole history
/// a master receives when it starts over as a backup, which is not news.
fn log_event(event: &ClusterEvent, serving: bool) {
    use crate::cluster::event::EventKind::*;
    if !serving {
        debug!(clock = event.clock, "{}", event.kind);
        return;
    }
    match &event.kind {
        WorkerJoined { .. }
        | WorkerRejoined { .. }
        | WorkerSuspect { .. }
        | WorkerRecovered { .. }
        | WorkerDead { .. }
        | JobRequeued { .. }
        | JobReclaimed { .. }
        | DuplicateResult { .. }
        | LoanRequested { .. }
        | LoanRefused { .. }
        | WorkerLent { .. }
        | WorkerBorrowed { .. }
        | WorkerReleased { .. }
        | LoanEnded { .. }
        | PeerAlive { .. } => info!(clock = event.clock, "{}", event.kind),
        JobFailed { .. } | PeerSuspect { .. } | PeerDead { .. } => {
            warn!(clock = event.clock, "{}", event.kind)
        }
        _ => debug!(clock = event.clock, "{}", event.kind),
    }
}
