//! The chat server's driver: TCP in, [`ChatServer`] steps, TCP out; links to the other chat
//! servers; the history on disk.
//!
//! ```text
//!  accept ─▶ per connection: reader ──(ChatEvent)──▶ ┐
//!  per peer server: link (follows it) ──────────────▶ ├─▶ one loop owns the ChatServer
//!  ticker ──────────────────────────────────────────▶ ┘      │ Store (one commit per batch)
//!  per connection: writer ◀── bounded queue ◀───────────────┤ Send (full: disconnect)
//!                                                            │ Push (full: dropped, counted)
//! ```

use std::collections::HashMap;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::conn::{CONN_QUEUE, ConnNews, connection};
use super::control::NodeControl;
use crate::journal::ChatHistory;
use crate::protocol::message::{ChatEntry, Envelope, Message};
use crate::role::ConnId;
use crate::role::chat::{ChatConfig, ChatServer, Input, Output};

/// Lines waiting for one connection beyond which live deliveries to it are dropped (replies
/// still go into the rest of its queue): a subscriber may lag this far behind, no further.
const SUBSCRIBER_QUEUE: usize = 256;
/// The kernel send buffer of a chat connection, in bytes.
const SEND_BUFFER: usize = 64 * 1024;
/// The most inputs handled between two commits of the history.
const MAX_BATCH: usize = 512;

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
    listener: TcpListener,
    peers: Vec<(String, String)>,
    history: Option<(ChatHistory, Vec<ChatEntry>)>,
    control: NodeControl,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("node", node = %config.name);
    serve(config, listener, peers, history, control, shutdown)
        .instrument(span)
        .await
}

async fn serve(
    config: ChatConfig,
    listener: TcpListener,
    peers: Vec<(String, String)>,
    history: Option<(ChatHistory, Vec<ChatEntry>)>,
    control: NodeControl,
    shutdown: CancellationToken,
) {
    let name = config.name.clone();
    let mut server = ChatServer::new(config);
    let mut store = match history {
        Some((store, entries)) => {
            server.restore(entries);
            Some(store)
        }
        None => None,
    };
    let (inputs_tx, mut inputs) = mpsc::channel::<(ConnId, ChatEvent)>(CONN_QUEUE);
    for (peer, addr) in peers {
        tokio::spawn(
            follow_peer(
                name.clone(),
                peer,
                addr,
                inputs_tx.clone(),
                shutdown.clone(),
            )
            .in_current_span(),
        );
    }
    let started = Instant::now();
    let mut pause = control.clone();
    let now = || control.now(started);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut writers: HashMap<ConnId, (mpsc::Sender<Bytes>, CancellationToken)> = HashMap::new();
    let mut peer_links: HashMap<String, mpsc::UnboundedSender<Message>> = HashMap::new();
    let mut next_conn: ConnId = 1;
    let mut pending: Vec<Input> = Vec::new();

    loop {
        tokio::select! {
            _ = pause.wait_while_paused() => {}
            _ = shutdown.cancelled() => break,
        }
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => {
                match accepted {
                    Ok((stream, peer)) => {
                        // A small kernel send buffer: what a slow reader cannot take waits in
                        // the connection's own queue, where it is bounded and counted.
                        let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &SEND_BUFFER);
                        let conn = next_conn;
                        next_conn += 1;
                        debug!(conn, %peer, "connection");
                        tokio::spawn(connection(conn, stream, inputs_tx.clone(), shutdown.child_token()).in_current_span());
                    }
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                continue;
            }
            Some((conn, event)) = inputs.recv() => event_input(conn, event, &mut writers, &mut peer_links),
            _ = ticker.tick() => Some(Input::Tick),
        };
        pending.extend(first);
        // What has already arrived goes in the same batch: one commit for all of it.
        while pending.len() < MAX_BATCH {
            let Ok((conn, event)) = inputs.try_recv() else {
                break;
            };
            pending.extend(event_input(conn, event, &mut writers, &mut peer_links));
        }
        let mut outputs = Vec::new();
        for input in pending.drain(..) {
            outputs.extend(server.step(now(), input));
        }
        if let Some(store) = store.as_mut() {
            let entries: Vec<&ChatEntry> = outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Store(e) => Some(e),
                    _ => None,
                })
                .collect();
            if let Err(e) = store.append(&entries) {
                tracing::error!("{e}: entries of this step are not on disk");
            }
        }
        for output in outputs {
            match output {
                Output::Send(conn, envelope) => {
                    if let Some((tx, cancel)) = writers.get(&conn)
                        && tx.try_send(Bytes::from(envelope.to_json())).is_err()
                    {
                        warn!(conn, "peer too slow to read its replies: disconnecting");
                        cancel.cancel();
                    }
                }
                Output::Push(conns, envelope) => {
                    // Encoded once; each queue holds a reference to the same bytes.
                    let line = Bytes::from(envelope.to_json());
                    for conn in conns {
                        if let Some((tx, _)) = writers.get(&conn) {
                            // Keep room for replies: live deliveries use only part of the queue.
                            if CONN_QUEUE - tx.capacity() >= SUBSCRIBER_QUEUE
                                || tx.try_send(line.clone()).is_err()
                            {
                                pending.push(Input::Dropped(conn));
                            }
                        }
                    }
                }
                Output::Close(conn) => {
                    if let Some((_, cancel)) = writers.remove(&conn) {
                        cancel.cancel();
                    }
                }
                Output::ToPeer(peer, message) => {
                    if let Some(tx) = peer_links.get(&peer) {
                        let _ = tx.send(message);
                    }
                }
                Output::Store(_) => {}
            }
        }
    }
    info!("chat server stopping");
    for (_, (_, cancel)) in writers.drain() {
        cancel.cancel();
    }
}

fn event_input(
    conn: ConnId,
    event: ChatEvent,
    writers: &mut HashMap<ConnId, (mpsc::Sender<Bytes>, CancellationToken)>,
    peer_links: &mut HashMap<String, mpsc::UnboundedSender<Message>>,
) -> Option<Input> {
    Some(match event {
        ChatEvent::Conn(ConnNews::Opened(tx, cancel)) => {
            writers.insert(conn, (tx, cancel));
            Input::Connected(conn)
        }
        ChatEvent::Conn(ConnNews::Line(_, envelope)) => Input::Received(conn, envelope),
        ChatEvent::Conn(ConnNews::Invalid(reason, fatal)) => {
            if fatal && let Some((_, cancel)) = writers.get(&conn) {
                cancel.cancel();
            }
            Input::Invalid(conn, reason)
        }
        ChatEvent::Conn(ConnNews::Closed) => {
            writers.remove(&conn);
            Input::Disconnected(conn)
        }
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
    peer: String,
    addr: String,
    inputs: mpsc::Sender<(ConnId, ChatEvent)>,
    shutdown: CancellationToken,
) {
    use crate::client::Client;
    let mut delay = Duration::from_millis(100);
    loop {
        // A link counts once the peer answers: a shaping proxy accepts a connection even while
        // its server is down (and closes it at once), which must not read as "linked" — nor
        // reset the backoff, or a dead peer is retried and logged dozens of times a second.
        let answered = async {
            let mut client = Client::connect(&addr, &name, None).await.ok()?;
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
                            if inputs.send((0, ChatEvent::PeerMessage(peer.clone(), envelope))).await.is_err() {
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
