//! The chat server's driver: TCP in, [`ChatServer`] steps, TCP out; links to the other chat
//! servers; the history on disk.
//!
//! ```text
//!  accept ─▶ per connection: reader ──(ChatEvent)──▶ ┐
//!  per peer server: link (follows it) ──────────────▶ ├─▶ one loop owns the ChatServer
//!  ticker ──────────────────────────────────────────▶ ┘      │ Store (a commit per batch, or
//!                                                            │   staged: one per periodic sync)
//!  per connection: writer ◀── bounded queue ◀── outbox ◀───┤ Send (full: disconnect)
//!                                                            │ Push (lagging: dropped, counted)
//! ```
//!
//! A batch is everything that arrived together: after the first input the loop lets the other
//! tasks that are ready run once (the readers of connections whose lines came in the same
//! moment), then takes all that is queued. What the batch gives a connection is gathered in its
//! outbox and handed to its writer as one chunk when the batch is done: one queue operation and
//! one wake-up per connection per batch, not per line, and fewer, fuller writes.

use std::collections::HashMap;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use super::conn::{
    CONN_QUEUE, ConnNews, OpenSockets, Outgoing, Port, accept, accept_failed, accept_within,
};
use super::control::NodeControl;
use crate::journal::{ChatHistory, HistoryChange, Staged};
use crate::protocol::message::{ChatEntry, Encoding, Envelope, Message, PeerRole};
use crate::protocol::packed;
use crate::role::ConnId;
use crate::role::chat::{ChatConfig, ChatServer, Input, Output};
use crate::topology::policies::Durability;

/// Lines waiting for one connection beyond which live deliveries to it are dropped (replies
/// still go into its queue): a subscriber may lag this far behind, no further.
const SUBSCRIBER_QUEUE: usize = 256;
/// The kernel send buffer of a chat connection, in bytes.
const SEND_BUFFER: usize = 64 * 1024;
/// The most inputs handled between two commits of the history.
const MAX_BATCH: usize = 512;
/// Under `durability periodic`, the most changes staged before they are committed ahead of
/// the interval (a long interval at a high rate must not hold a large
/// share of memory).
const MAX_STAGED: usize = 10_000;

/// Where a chat server's history goes, batch by batch.
enum History {
    /// `durability sync`: each batch's changes in one commit forced to disk before anyone
    /// hears of the batch.
    EachBatch(ChatHistory),
    /// `durability periodic`: each batch's changes staged, and written in one commit forced to
    /// disk once `every` has passed since the first of them (or once [`MAX_STAGED`] wait). In
    /// the loop, not on a thread of its own: on two cores a third busy thread cost the fan-out
    /// more than the loop's wait for one commit every `every`.
    Periodic {
        history: ChatHistory,
        staged: Staged,
        since: Option<Instant>,
        every: Duration,
        /// What this server sends the other chat servers about entries (replicas, and the sync
        /// messages around them), held while changes are staged and sent once they are on
        /// disk: no peer ever holds an entry of this server's that its own disk could lose,
        /// so a server that crashed and lost its last posts never numbers a new one like a
        /// post its peers already have.
        held: Vec<Output>,
    },
}

impl History {
    fn start(history: ChatHistory, durability: Durability) -> History {
        match durability {
            Durability::Periodic(every) => History::Periodic {
                history,
                staged: Staged::default(),
                since: None,
                every,
                held: Vec::new(),
            },
            _ => History::EachBatch(history),
        }
    }

    /// Keeps the batch's new entries and drops those past the retention, in the order the
    /// steps asked: under `sync` on disk before anyone hears of them; under `periodic` staged,
    /// and committed if the batch made that due (a busy loop may not be idle when it falls
    /// due). Returns the outputs to carry out now, in order: under `periodic`, those released
    /// by a commit first, and the batch's own messages to peers about entries held while
    /// anything is staged.
    fn store(&mut self, outputs: Vec<Output>) -> Vec<Output> {
        let changes: Vec<HistoryChange<'_>> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Store(entry) => Some(HistoryChange::Keep(entry)),
                Output::Forget(key) => Some(HistoryChange::Forget(key)),
                _ => None,
            })
            .collect();
        let failed = match self {
            _ if changes.is_empty() => None,
            History::EachBatch(history) => history.write(&changes).err().map(|e| e.to_string()),
            History::Periodic { staged, since, .. } => {
                since.get_or_insert_with(Instant::now);
                staged.add(&changes).err().map(|e| e.to_string())
            }
        };
        if let Some(e) = failed {
            tracing::error!("{e}: entries of this step are not on disk");
        }
        let History::Periodic { since, held, .. } = self else {
            return outputs;
        };
        if since.is_some() {
            let (to_hold, now): (Vec<Output>, Vec<Output>) =
                outputs.into_iter().partition(about_entries);
            held.extend(to_hold);
            if self.due().is_some_and(|due| due <= Instant::now()) {
                let mut released = self.commit_staged();
                released.extend(now);
                return released;
            }
            return now;
        }
        outputs
    }

    /// When what is staged must be committed (`periodic`), if anything is.
    fn due(&self) -> Option<Instant> {
        match self {
            History::EachBatch(_) => None,
            History::Periodic {
                staged,
                since,
                every,
                ..
            } => {
                let since = (*since)?;
                Some(if staged.len() >= MAX_STAGED {
                    since
                } else {
                    since + *every
                })
            }
        }
    }

    /// Writes what is staged in one commit forced to disk; returns the messages held for it.
    fn commit_staged(&mut self) -> Vec<Output> {
        let History::Periodic {
            history,
            staged,
            since,
            held,
            ..
        } = self
        else {
            return Vec::new();
        };
        if since.take().is_some()
            && let Err(e) = history.commit(std::mem::take(staged))
        {
            tracing::error!("{e}: the latest entries are not on disk");
        }
        std::mem::take(held)
    }
}

/// Whether this output tells another chat server about entries (a replica, or the sync
/// messages sent with them, whose order they keep).
fn about_entries(output: &Output) -> bool {
    let message = match output {
        Output::Send(_, envelope) => &envelope.message,
        Output::ToPeer(_, message) => message,
        _ => return false,
    };
    matches!(
        message,
        Message::ChatReplica { .. } | Message::ChatSyncMore | Message::ChatForgotten { .. }
    )
}

/// Sleeps until `due` (forever without one: the branch is then disabled anyway).
async fn until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// What the loop hears.
enum ChatEvent {
    Conn(ConnNews),
    /// The link to a peer server is up: messages for it go into this queue.
    PeerUp(String, mpsc::UnboundedSender<Message>),
    PeerMessage(String, Envelope),
    PeerLost(String),
}

impl From<ConnNews> for ChatEvent {
    fn from(news: ConnNews) -> Self {
        ChatEvent::Conn(news)
    }
}

/// Runs a chat server on `listener` until `shutdown`; `peers` are the other chat servers
/// (`name`, `host:port`).
pub async fn run(
    config: ChatConfig,
    (listener, tls): (
        TcpListener,
        Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
    ),
    peers: Vec<(String, String)>,
    history: Option<(ChatHistory, Vec<ChatEntry>, Durability)>,
    control: NodeControl,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("node", node = %config.name);
    serve(config, (listener, tls), peers, history, control, shutdown)
        .instrument(span)
        .await
}

/// What the chat server's loop owns besides the server.
struct Driver {
    server: ChatServer,
    /// Sockets held open now (no more are accepted past the connection limit, and a little),
    /// and TLS if the port is encrypted.
    port: Port,
    /// The history on disk, if the server keeps one.
    history: Option<History>,
    /// Each connection's writer (looked up for every delivery: foldhash, not SipHash).
    writers: foldhash::HashMap<ConnId, Writer>,
    /// The connections this batch answers (a reply, perhaps with deliveries), then those it
    /// only gives deliveries to: handed over in that order, so that the writers' tasks run in
    /// it and a request's answer does not wait behind the batch's fan-out.
    replied: Vec<ConnId>,
    written: Vec<ConnId>,
    /// The links to the other chat servers that are up.
    peer_links: HashMap<String, mpsc::UnboundedSender<Message>>,
    inputs_tx: mpsc::Sender<(ConnId, ChatEvent)>,
    shutdown: CancellationToken,
    control: NodeControl,
    started: Instant,
    next_conn: ConnId,
    /// Inputs for the next batch (deliveries dropped by this one come back as inputs).
    pending: Vec<Input>,
}

async fn serve(
    config: ChatConfig,
    (listener, tls): (
        TcpListener,
        Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
    ),
    peers: Vec<(String, String)>,
    history: Option<(ChatHistory, Vec<ChatEntry>, Durability)>,
    control: NodeControl,
    shutdown: CancellationToken,
) {
    let name = config.name.clone();
    let peer_key = config.peer_key.clone();
    let mut server = ChatServer::new(config);
    let history = match history {
        Some((history, entries, durability)) => {
            server.restore(entries);
            Some(History::start(history, durability))
        }
        None => None,
    };
    let (inputs_tx, mut inputs) = mpsc::channel::<(ConnId, ChatEvent)>(CONN_QUEUE);
    for (peer, addr) in peers {
        tokio::spawn(
            follow_peer(
                name.clone(),
                peer_key.clone(),
                peer,
                addr,
                inputs_tx.clone(),
                shutdown.clone(),
            )
            .in_current_span(),
        );
    }
    let mut pause = control.clone();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut driver = Driver {
        server,
        port: Port {
            open: OpenSockets::default(),
            tls,
        },
        history,
        writers: foldhash::HashMap::default(),
        peer_links: HashMap::new(),
        inputs_tx,
        shutdown: shutdown.clone(),
        control,
        started: Instant::now(),
        next_conn: 1,
        pending: Vec::new(),
        replied: Vec::new(),
        written: Vec::new(),
    };
    loop {
        // Even paused, what was answered reaches the disk on time.
        let sync_due = driver.history.as_ref().and_then(History::due);
        tokio::select! {
            _ = pause.wait_while_paused() => {}
            _ = shutdown.cancelled() => break,
            _ = until(sync_due), if sync_due.is_some() => {
                driver.commit_history();
                continue;
            }
        }
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = accept_within(&listener, &driver.port.open, driver.server.max_connections()) => {
                match accepted {
                    Ok((stream, peer)) => driver.accept(stream, peer),
                    Err(e) => accept_failed(e).await,
                }
                continue;
            }
            Some((conn, event)) = inputs.recv() => driver.input_of(conn, event),
            _ = ticker.tick() => Some(Input::Tick),
            _ = until(sync_due), if sync_due.is_some() => {
                driver.commit_history();
                continue;
            }
        };
        driver.pending.extend(first);
        // What arrived in the same moment (another connection's lines, a reader's next ones)
        // joins this batch: the loop lets the readers run (each yield also polls the sockets)
        // until one round brings nothing more, or the batch is full.
        loop {
            tokio::task::yield_now().await;
            if driver.gather(&mut inputs) == 0 || driver.pending.len() >= MAX_BATCH {
                break;
            }
        }
        let mut outputs = driver.step_batch();
        if let Some(history) = driver.history.as_mut() {
            outputs = history.store(outputs);
        }
        for output in outputs {
            driver.carry_out(output);
        }
        driver.hand_over();
    }
    // What was held for the commit is not sent: the links close with the server.
    if let Some(history) = driver.history.as_mut() {
        history.commit_staged();
    }
    info!("chat server stopping");
    for (_, writer) in driver.writers.drain() {
        writer.cancel.cancel();
    }
}

impl Driver {
    /// A new connection: its reader and writer tasks start.
    fn accept(&mut self, stream: tokio::net::TcpStream, peer: std::net::SocketAddr) {
        // A small kernel send buffer: what a slow reader cannot take waits in the
        // connection's own queue, where it is bounded and counted.
        let _ =
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
        accept(
            &mut self.next_conn,
            stream,
            peer,
            &self.inputs_tx,
            &self.shutdown,
            &self.port,
        );
    }

    fn input_of(&mut self, conn: ConnId, event: ChatEvent) -> Option<Input> {
        event_input(conn, event, &mut self.writers, &mut self.peer_links)
    }

    /// Takes what has arrived into the batch, up to [`MAX_BATCH`]; how many came.
    fn gather(&mut self, inputs: &mut mpsc::Receiver<(ConnId, ChatEvent)>) -> usize {
        let mut came = 0;
        while self.pending.len() < MAX_BATCH {
            let Ok((conn, event)) = inputs.try_recv() else {
                break;
            };
            came += 1;
            let input = self.input_of(conn, event);
            self.pending.extend(input);
        }
        came
    }

    /// Steps the server with the batch: one batch, one commit of the history.
    fn step_batch(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        for input in std::mem::take(&mut self.pending) {
            let now = self.control.now(self.started);
            self.server.set_wall_clock(self.control.wall_ms());
            outputs.extend(self.server.step(now, input));
        }
        outputs
    }

    /// Commits what the history staged (`durability periodic`), then sends what waited for it.
    fn commit_history(&mut self) {
        let Some(history) = self.history.as_mut() else {
            return;
        };
        for output in history.commit_staged() {
            self.carry_out(output);
        }
        self.hand_over();
    }

    /// Hands each connection what the batch gave it, as one chunk: those with a reply first.
    fn hand_over(&mut self) {
        for conn in self.replied.drain(..).chain(self.written.drain(..)) {
            if let Some(writer) = self.writers.get_mut(&conn) {
                writer.hand_over(conn);
            }
        }
    }

    /// Carries out one output of the server.
    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Send(conn, envelope) => {
                if let Some(writer) = self.writers.get_mut(&conn)
                    && writer.add(envelope.to_json().as_bytes())
                {
                    self.replied.push(conn);
                }
            }
            Output::Push(conns, envelope) => {
                // Encoded once in each encoding its subscribers asked for (a message that is no
                // delivery has no frame, and goes as a line to all).
                let mut line = None::<String>;
                let mut frame = None::<Option<Vec<u8>>>;
                for conn in conns {
                    let Some(writer) = self.writers.get_mut(&conn) else {
                        continue;
                    };
                    // Replies are never dropped: only live deliveries to a subscriber already
                    // this far behind.
                    if writer.out.waiting() + writer.lines >= SUBSCRIBER_QUEUE {
                        self.pending.push(Input::Dropped(conn));
                        continue;
                    }
                    let frame = match writer.encoding {
                        Encoding::Msgpack => frame
                            .get_or_insert_with(|| {
                                let mut out = Vec::with_capacity(96);
                                packed::delivery(&mut out, &envelope).then_some(out)
                            })
                            .as_deref(),
                        Encoding::Json => None,
                    };
                    let first = match frame {
                        Some(frame) => writer.add_frame(frame),
                        None => {
                            writer.add(line.get_or_insert_with(|| envelope.to_json()).as_bytes())
                        }
                    };
                    if first {
                        self.written.push(conn);
                    }
                }
            }
            Output::Encoding(conn, encoding) => {
                if let Some(writer) = self.writers.get_mut(&conn) {
                    writer.encoding = encoding;
                }
            }
            Output::Close(conn) => {
                if let Some(mut writer) = self.writers.remove(&conn) {
                    // What it was told before it is closed still goes.
                    writer.hand_over(conn);
                    writer.cancel.cancel();
                }
            }
            Output::ToPeer(peer, message) => {
                if let Some(tx) = self.peer_links.get(&peer) {
                    let _ = tx.send(message);
                }
            }
            Output::Store(_) | Output::Forget(_) => {}
            Output::AdjustClock(ms) => {
                info!(by_ms = ms, "clock adjusted by the time master");
                self.control.adjust(ms);
            }
        }
    }
}

/// A connection as the loop holds it: its queue, how to close it, and what this batch gives it.
struct Writer {
    out: Outgoing,
    cancel: CancellationToken,
    /// This batch's lines for it, each with its newline, and frames (one buffer, reused batch
    /// after batch).
    batch: BytesMut,
    lines: usize,
    /// How it asked for its deliveries.
    encoding: Encoding,
}

impl Writer {
    fn new(out: Outgoing, cancel: CancellationToken) -> Self {
        Self {
            out,
            cancel,
            batch: BytesMut::new(),
            lines: 0,
            encoding: Encoding::Json,
        }
    }

    /// Adds a line to this batch's; true when it is the first (the connection is then one
    /// the batch hands something to).
    fn add(&mut self, line: &[u8]) -> bool {
        self.batch.reserve(line.len() + 1);
        self.batch.extend_from_slice(line);
        self.batch.extend_from_slice(b"\n");
        self.lines += 1;
        self.lines == 1
    }

    /// [`Writer::add`] for a MessagePack frame (which carries its own length, no newline).
    fn add_frame(&mut self, frame: &[u8]) -> bool {
        self.batch.extend_from_slice(frame);
        self.lines += 1;
        self.lines == 1
    }

    /// Queues the batch's lines as one chunk; a connection whose queue is full is closed.
    fn hand_over(&mut self, conn: ConnId) {
        if self.lines == 0 {
            return;
        }
        let chunk = self.batch.split().freeze();
        let lines = std::mem::take(&mut self.lines);
        if self.out.send_lines(chunk, lines).is_err() {
            warn!(conn, "peer too slow to read its replies: disconnecting");
            self.cancel.cancel();
        }
    }
}

fn event_input(
    conn: ConnId,
    event: ChatEvent,
    writers: &mut foldhash::HashMap<ConnId, Writer>,
    peer_links: &mut HashMap<String, mpsc::UnboundedSender<Message>>,
) -> Option<Input> {
    Some(match event {
        ChatEvent::Conn(ConnNews::Opened(tx, cancel)) => {
            writers.insert(conn, Writer::new(tx, cancel));
            Input::Connected(conn)
        }
        ChatEvent::Conn(ConnNews::Line(_, envelope)) => Input::Received(conn, envelope),
        ChatEvent::Conn(ConnNews::Invalid(reason, fatal)) => {
            if fatal && let Some(writer) = writers.get(&conn) {
                writer.cancel.cancel();
            }
            Input::Invalid(conn, reason)
        }
        // Its writer is let go when the server says so (`Output::Close`), after what the
        // connection was told before it closed.
        ChatEvent::Conn(ConnNews::Closed) => Input::Disconnected(conn),
        ChatEvent::Conn(ConnNews::Plaintext(peer)) => Input::Plaintext(peer.to_string()),
        ChatEvent::PeerUp(peer, tx) => {
            peer_links.insert(peer.clone(), tx);
            Input::PeerUp(peer)
        }
        ChatEvent::PeerMessage(peer, envelope) => Input::FromPeer(peer, envelope),
        ChatEvent::PeerLost(peer) => {
            peer_links.remove(&peer);
            Input::PeerLost(peer)
        }
    })
}

/// Follows peer server `peer` at `addr`: connects (again and again, while it is away), hands
/// over what it sends, and sends what the loop gives it.
async fn follow_peer(
    name: String,
    peer_key: String,
    peer: String,
    addr: String,
    inputs: mpsc::Sender<(ConnId, ChatEvent)>,
    shutdown: CancellationToken,
) {
    use crate::client::Client;
    let mut delay = Duration::from_millis(100);
    let mut warned = false;
    loop {
        // A link counts once the peer answers: a shaping proxy accepts a connection even while
        // its server is down (and closes it at once), which must not read as "linked" — nor
        // reset the backoff, or a dead peer is retried and logged dozens of times a second.
        let answered = async {
            // Both sides prove the peer secret: a process on a chat server's port that cannot
            // is not linked to.
            let key = Some((peer_key.as_str(), PeerRole::ChatPeer));
            let patience = Duration::from_secs(1);
            let mut client = match Client::connect_as(&addr, &name, key, patience).await {
                Ok(client) => client,
                Err(e) if e.is_unproven() && !warned => {
                    warned = true;
                    warn!(%peer, "cannot link: {e}; {}", crate::client::PEER_SECRET_HINT);
                    return None;
                }
                Err(_) => return None,
            };
            let pong = tokio::time::timeout(Duration::from_secs(1), client.request(Message::Ping));
            matches!(pong.await, Ok(Ok(Message::Pong))).then_some(client)
        };
        if let Some(mut client) = answered.await {
            delay = Duration::from_millis(100);
            info!(%peer, "following the chat server");
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            if inputs
                .send((0, ChatEvent::PeerUp(peer.clone(), tx)))
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    Some(message) = rx.recv() => {
                        if client.send(message).await.is_err() {
                            break;
                        }
                    }
                    next = client.receive() => match next {
                        Ok(envelope) => {
                            let news = ChatEvent::PeerMessage(peer.clone(), envelope);
                            if inputs.send((0, news)).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => break,
                    },
                }
            }
            info!(%peer, "lost the chat server");
            let _ = inputs.send((0, ChatEvent::PeerLost(peer.clone()))).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
