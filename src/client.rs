//! A client connection to a coordinator: send a request, read its reply.
//!
//! Used by `tcluster client` (one-shot commands and the interactive prompt), by tests, and later
//! by the console. It speaks the native protocol, authenticates when the cluster has a secret,
//! and keeps a Lamport clock like every other node.

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{AnyDelimiterCodecError, Decoder, FramedRead};

use crate::clock::LamportClock;
use crate::protocol::frame::{Frame, FrameError, LineCodec, MAX_LINE, frame_codec, frame_text};
use crate::protocol::handshake::{self, HandshakeError};
use crate::protocol::message::{Envelope, Message, PeerRole};
use crate::protocol::{DecodeError, Dialect, decode, packed};

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The handshake failed.
    #[error("authentication failed: {0}")]
    Auth(#[from] HandshakeError),
    /// The server (a coordinator or a chat server) closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// Reading or writing failed.
    #[error("the connection failed: {0}")]
    Io(String),
    /// The server sent a line that is not text.
    #[error("the server sent something unexpected: {0}")]
    Frame(#[from] FrameError),
    /// The server sent something that is not a message.
    #[error("the server sent something unexpected: {0}")]
    Protocol(#[from] DecodeError),
}

impl ClientError {
    /// Whether one side could not prove the secret to the other (rather than being away).
    pub fn is_unproven(&self) -> bool {
        matches!(
            self,
            ClientError::Auth(HandshakeError::Unproven(_) | HandshakeError::Refused(_))
        )
    }
}

/// What a server says when it and a peer do not share the peer secret.
pub const PEER_SECRET_HINT: &str = "the two do not share the peer secret: servers started by \
     hand need the same PEER_SECRET in their topology (or TCLUSTER_PEER_KEY)";

/// A connection to a server: a coordinator or a chat server.
pub struct Client {
    messages: FramedRead<crate::tls::Reader, Messages>,
    write: crate::tls::Writer,
    /// The name every envelope it sends carries.
    name: compact_str::CompactString,
    clock: LamportClock,
}

/// Cuts what a server sends into messages: JSON lines, and the MessagePack deliveries a chat
/// server sends a client that asked for them, each read where it lies in the buffer. An item that
/// is not a message is an error for that item alone: the connection reads on.
struct Messages {
    frames: LineCodec,
    deliveries: packed::Deliveries,
}

impl Decoder for Messages {
    type Item = Result<Envelope, ClientError>;
    type Error = AnyDelimiterCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.frames.frame(buf)? {
            Some(Frame::Whole(length)) => {
                let envelope = self.deliveries.read(&buf[..length]);
                buf.advance(length);
                Ok(Some(envelope.map_err(ClientError::from)))
            }
            Some(Frame::Partial) => Ok(None),
            None => Ok(self.frames.decode(buf)?.map(|line| line_message(&line))),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None => Ok(self.frames.decode_eof(buf)?.map(|line| line_message(&line))),
        }
    }
}

/// One line's message.
fn line_message(line: &Bytes) -> Result<Envelope, ClientError> {
    Ok(decode(Dialect::Native, frame_text(line)?, "")?)
}

impl Client {
    /// Connects to `addr` as a client named `name`, proving knowledge of the cluster secret if
    /// there is one.
    pub async fn connect(
        addr: &str,
        name: &str,
        secret: Option<&str>,
    ) -> Result<Client, ClientError> {
        let key = secret.map(|s| (s, PeerRole::Client));
        Client::connect_as(addr, name, key, handshake::TIMEOUT).await
    }

    /// Connects to `addr` as `name` in a role, proving it with a key (the cluster secret for a
    /// worker or a client, the peer secret for a master, a chat server or the launcher) within
    /// `timeout`.
    pub async fn connect_as(
        addr: &str,
        name: &str,
        key: Option<(&str, PeerRole)>,
        timeout: std::time::Duration,
    ) -> Result<Client, ClientError> {
        // TLS when `addr` is an encrypted server's (the process's trust table says so).
        let stream = crate::tls::dial(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let (read, mut write) = stream.split();
        // Lines, and MessagePack frames if this client asks a chat server for them.
        let mut lines = FramedRead::new(read, frame_codec(MAX_LINE));
        if let Some((key, role)) = key {
            handshake::prove_within(&mut lines, &mut write, key, name, role, timeout).await?;
        }
        Ok(Client {
            messages: lines.map_decoder(|frames| Messages {
                frames,
                deliveries: packed::Deliveries::default(),
            }),
            write,
            name: name.into(),
            clock: LamportClock::default(),
        })
    }

    /// Sends a message without waiting for anything.
    pub async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        self.send_all(std::iter::once(message)).await
    }

    /// Sends several messages in one write.
    pub async fn send_all(
        &mut self,
        messages: impl IntoIterator<Item = Message>,
    ) -> Result<(), ClientError> {
        let mut lines = String::new();
        for message in messages {
            let envelope = Envelope {
                from: self.name.clone(),
                clock: self.clock.tick(),
                term: None,
                message,
            };
            lines.push_str(&envelope.to_json());
            lines.push('\n');
        }
        self.write
            .write_all(lines.as_bytes())
            .await
            .map_err(|e| ClientError::Io(e.to_string()))
    }

    /// Sends an envelope made by its caller (a coordinator speaking for itself).
    pub async fn send_envelope(&mut self, envelope: &Envelope) -> Result<(), ClientError> {
        let line = envelope.to_json() + "\n";
        self.write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| ClientError::Io(e.to_string()))
    }

    /// The next message that arrives.
    pub async fn receive(&mut self) -> Result<Envelope, ClientError> {
        let envelope = self
            .messages
            .next()
            .await
            .ok_or(ClientError::Closed)?
            .map_err(|e| ClientError::Io(format!("{e:?}")))??;
        // A server's stamp too far ahead is not merged; the message still counts.
        let _ = self.clock.observe(envelope.clock);
        Ok(envelope)
    }

    /// Sends a request and returns the first reply that is not an event or a job notice.
    pub async fn request(&mut self, message: Message) -> Result<Message, ClientError> {
        self.send(message).await?;
        loop {
            let reply = self.receive().await?.message;
            if !matches!(reply, Message::Event { .. } | Message::JobFinished { .. }) {
                return Ok(reply);
            }
        }
    }
}

/// Of `masters`, the one that says it is primary in the highest term; failing that, the first
/// that answers at all. Returns its address and the connection.
pub async fn find_primary(
    masters: &[String],
    name: &str,
    secret: Option<&str>,
) -> Result<(String, Client), ClientError> {
    find_primary_as(masters, name, secret.map(|s| (s, PeerRole::Client))).await
}

/// [`find_primary`] proving `key` in a role.
pub async fn find_primary_as(
    masters: &[String],
    name: &str,
    key: Option<(&str, PeerRole)>,
) -> Result<(String, Client), ClientError> {
    let mut best: Option<(u64, String, Client)> = None;
    let mut first: Option<(String, Client)> = None;
    let mut last_error = None;
    for addr in masters {
        let ask = async {
            let mut client = Client::connect_as(addr, name, key, handshake::TIMEOUT).await?;
            let reply = client.request(Message::Status { job: None }).await?;
            Ok::<_, ClientError>((client, reply))
        };
        match tokio::time::timeout(std::time::Duration::from_secs(2), ask).await {
            Ok(Ok((client, Message::StatusReport { report }))) if report.role == "primary" => {
                if best.as_ref().is_none_or(|(term, ..)| report.term > *term) {
                    best = Some((report.term, addr.clone(), client));
                }
            }
            Ok(Ok((client, _))) => {
                first.get_or_insert((addr.clone(), client));
            }
            Ok(Err(e)) => last_error = Some(e),
            Err(_) => {
                last_error = Some(ClientError::Io(format!("{addr} did not answer in 2s")));
            }
        }
    }
    match (best, first) {
        (Some((_, addr, client)), _) | (None, Some((addr, client))) => Ok((addr, client)),
        (None, None) => Err(last_error.unwrap_or(ClientError::Closed)),
    }
}

/// How long a [`Link`]'s server may be quiet before it is asked whether it is there.
pub const LINK_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a [`Link`]'s server may be silent (not even answering a `ping`) before the link
/// leaves it for another.
pub const LINK_SILENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// The most queued messages a link writes at once.
const LINK_BURST: usize = 256;

/// What a [`Link`] tells its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkNews {
    /// Connected to this server; messages sent from now on go to it.
    Up(String),
    /// A message from the server.
    Message(Message),
    /// The connection to this server is gone, for this reason; the link looks for another.
    Down(String, String),
}

/// Which server a [`Link`] connects to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The master that says it is primary (after a failover, the new one).
    Primary,
    /// Any server: the next one in the list after the one that was lost.
    Any,
}

/// A connection that stays up: to one of several servers, connecting again (to another one when
/// that is possible) whenever it is lost.
///
/// Messages are sent through [`Link::send`]; what arrives, and every change of server, comes
/// out of [`Link::news`]. A closed connection is noticed at once; a paused or cut-off server by
/// its silence ([`LINK_SILENCE`], with a `ping` after [`LINK_KEEPALIVE`] of quiet). Messages sent while no server is connected are dropped: whoever owns
/// the link learns from [`LinkNews::Up`] that it should say again what a new server needs to
/// hear (a login, a subscription).
pub struct Link {
    outgoing: tokio::sync::mpsc::UnboundedSender<Message>,
    /// What the link hears.
    pub news: tokio::sync::mpsc::UnboundedReceiver<LinkNews>,
}

impl Link {
    /// Starts a link to one of `servers`, as `name` (proving `key` in a role, if given); it
    /// ends when `shutdown` is cancelled or the link is dropped.
    pub fn spawn(
        servers: Vec<String>,
        name: String,
        key: Option<(String, PeerRole)>,
        pick: Pick,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Link {
        let (outgoing, out_rx) = tokio::sync::mpsc::unbounded_channel();
        let (news_tx, news) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(run_link(
            servers, name, key, pick, out_rx, news_tx, shutdown,
        ));
        Link { outgoing, news }
    }

    /// Sends a message to the server connected now (dropped if none is).
    pub fn send(&self, message: Message) {
        let _ = self.outgoing.send(message);
    }

    /// A handle that sends on this link, for another task.
    pub fn sender(&self) -> tokio::sync::mpsc::UnboundedSender<Message> {
        self.outgoing.clone()
    }
}

async fn run_link(
    servers: Vec<String>,
    name: String,
    key: Option<(String, PeerRole)>,
    pick: Pick,
    mut outgoing: tokio::sync::mpsc::UnboundedReceiver<Message>,
    news: tokio::sync::mpsc::UnboundedSender<LinkNews>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use std::time::Duration;
    let mut next = 0usize;
    let mut backoff = Duration::from_millis(50);
    loop {
        let key = key.as_ref().map(|(k, role)| (k.as_str(), *role));
        let connect = async {
            match pick {
                Pick::Primary => find_primary_as(&servers, &name, key).await,
                Pick::Any => {
                    let mut last = ClientError::Closed;
                    for i in 0..servers.len() {
                        let addr = &servers[(next + i) % servers.len()];
                        match Client::connect_as(addr, &name, key, handshake::TIMEOUT).await {
                            Ok(client) => return Ok((addr.clone(), client)),
                            Err(e) => last = e,
                        }
                    }
                    Err(last)
                }
            }
        };
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = connect => c,
        };
        let (addr, mut client) = match connected {
            Ok(c) => c,
            Err(_) => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        // What was sent while no server was connected was meant for the old one.
        while outgoing.try_recv().is_ok() {}
        if news.send(LinkNews::Up(addr.clone())).is_err() {
            return;
        }
        // A server that says nothing for a while is asked (`ping`); one silent for longer is
        // left: it may be paused or cut off, which a closed connection would not show.
        let mut heard = tokio::time::Instant::now();
        let mut keepalive = tokio::time::interval(LINK_KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = keepalive.tick() => {
                    let silent = heard.elapsed();
                    if silent >= LINK_SILENCE {
                        break format!("silent for {:.1}s", silent.as_secs_f64());
                    }
                    if silent >= LINK_KEEPALIVE {
                        let ping = client.send(Message::Ping);
                        if tokio::time::timeout(LINK_SILENCE, ping).await.is_err() {
                            break "it stopped reading".to_string();
                        }
                    }
                }
                message = outgoing.recv() => match message {
                    None => return,
                    Some(message) => {
                        // With whatever else is queued already: one write for a burst.
                        let mut burst = vec![message];
                        while burst.len() < LINK_BURST
                            && let Ok(more) = outgoing.try_recv()
                        {
                            burst.push(more);
                        }
                        let sent = client.send_all(burst);
                        match tokio::time::timeout(LINK_SILENCE, sent).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break e.to_string(),
                            Err(_) => break "it stopped reading".to_string(),
                        }
                    }
                },
                incoming = client.receive() => match incoming {
                    Ok(envelope) => {
                        heard = tokio::time::Instant::now();
                        if matches!(envelope.message, Message::Pong) {
                            continue;
                        }
                        if news.send(LinkNews::Message(envelope.message)).is_err() {
                            return;
                        }
                    }
                    Err(ClientError::Closed) => {
                        break "the server closed the connection".to_string();
                    }
                    Err(e) => break e.to_string(),
                },
            }
        };
        if let Some(i) = servers.iter().position(|s| *s == addr) {
            next = i + 1;
        }
        if news.send(LinkNews::Down(addr, reason)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::{ChatBody, ChatEntry};

    fn delivery(text: &str) -> Envelope {
        Envelope {
            from: "chat-1".into(),
            clock: 3,
            term: None,
            message: Message::ChatMessage {
                entry: Box::new(ChatEntry {
                    clock: 2,
                    server: "chat-1".into(),
                    seq: 1,
                    body: ChatBody::Post {
                        channel: "general".into(),
                        from: "ada".into(),
                        text: text.into(),
                    },
                    request: None,
                }),
            },
        }
    }

    /// Frames and lines in one buffer, in pieces: each message is read in turn, a line that is
    /// not a message is an error for that item alone, and a frame cut short waits for the rest.
    #[test]
    fn frames_and_lines_are_read_in_turn_and_a_bad_one_alone_is_refused() {
        let mut codec = Messages {
            frames: frame_codec(MAX_LINE),
            deliveries: packed::Deliveries::default(),
        };
        let (first, second) = (delivery("one"), delivery("two"));
        let mut wire = Vec::new();
        assert!(packed::delivery(&mut wire, &first));
        wire.extend_from_slice(b"{\"type\":\"no_such_thing\"}\n");
        wire.extend_from_slice(b"\xff\xfe\n");
        let reply = Envelope {
            from: "chat-1".into(),
            clock: 4,
            term: None,
            message: Message::ChatDone { entry: None },
        };
        wire.extend_from_slice((reply.to_json() + "\n").as_bytes());
        let cut = wire.len();
        assert!(packed::delivery(&mut wire, &second));

        let mut buf = BytesMut::from(&wire[..cut + 3]);
        let mut next = |buf: &mut BytesMut| codec.decode(buf).expect("not a framing error");
        assert_eq!(next(&mut buf).unwrap().unwrap(), first);
        assert!(matches!(
            next(&mut buf),
            Some(Err(ClientError::Protocol(_)))
        ));
        assert!(matches!(next(&mut buf), Some(Err(ClientError::Frame(_)))));
        assert_eq!(next(&mut buf).unwrap().unwrap(), reply);
        assert!(
            next(&mut buf).is_none(),
            "the second frame is not all there"
        );
        buf.extend_from_slice(&wire[cut + 3..]);
        assert_eq!(next(&mut buf).unwrap().unwrap(), second);
        assert!(next(&mut buf).is_none() && buf.is_empty());
    }
}
