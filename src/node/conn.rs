//! One TCP connection of a server node: a reader that decodes lines into messages and a writer
//! that sends queued lines, shared by the coordinator's and the chat server's drivers.
//!
//! The reader tells the protocol apart from the first line (a JSON object is native, anything
//! else classic). The loop that owns the role gets [`ConnNews`] through a channel of its own
//! event type, and answers through the bounded queue handed over in [`ConnNews::Opened`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::{AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::protocol::frame::{MAX_LINE, frame_text, line_codec};
use crate::protocol::message::Envelope;
use crate::protocol::{Dialect, classic, decode};

use crate::role::ConnId;
use crate::tls::{Reader, Writer};

/// Lines (or chunks of lines) queued for one connection before it counts as too slow.
pub const CONN_QUEUE: usize = 8192;

/// What a connection tells the loop that owns the role.
pub enum ConnNews {
    /// It opened; replies go into this queue, and cancelling the token closes it.
    Opened(Outgoing, CancellationToken),
    /// A message arrived, in this dialect.
    Line(Dialect, Envelope),
    /// A line that is not a message; with `true`, the connection closes after the reply.
    Invalid(String, bool),
    /// It closed.
    Closed,
    /// A peer spoke plaintext to this encrypted port: it was told so and closed (it never
    /// opened).
    Plaintext(std::net::SocketAddr),
}

pub use crate::tls::listen;

/// A connection's outgoing queue, as the loop that owns the role holds it: lines for its writer,
/// one at a time or several in one chunk, and how many wait there.
#[derive(Clone, Debug)]
pub struct Outgoing {
    tx: mpsc::Sender<Chunk>,
    /// Lines queued and not yet taken by the writer.
    waiting: Arc<AtomicUsize>,
}

/// Lines, each with its newline, and how many.
#[derive(Debug)]
struct Chunk {
    bytes: Bytes,
    lines: usize,
}

/// The queue is full: the connection reads too slowly (or its writer is gone).
#[derive(Debug)]
pub struct QueueFull;

impl Outgoing {
    /// A queue of `CONN_QUEUE` chunks and its receiving end, for [`write_lines`].
    fn new() -> (Self, mpsc::Receiver<Chunk>) {
        let (tx, rx) = mpsc::channel(CONN_QUEUE);
        let waiting = Arc::new(AtomicUsize::new(0));
        (Self { tx, waiting }, rx)
    }

    /// Queues one line (given without its newline).
    pub fn send_line(&self, line: String) -> Result<(), QueueFull> {
        self.send_lines(terminated(line), 1)
    }

    /// Queues `lines` lines, each with its newline, to be written together.
    pub fn send_lines(&self, bytes: Bytes, lines: usize) -> Result<(), QueueFull> {
        self.waiting.fetch_add(lines, Ordering::Relaxed);
        self.tx.try_send(Chunk { bytes, lines }).map_err(|_| {
            self.waiting.fetch_sub(lines, Ordering::Relaxed);
            QueueFull
        })
    }

    /// Lines queued that the writer has not taken yet.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// `line` with its newline, for [`Outgoing::send_lines`] (one line sent to many).
pub fn terminated(mut line: String) -> Bytes {
    line.push('\n');
    Bytes::from(line)
}

/// How long a closing connection may take to deliver its last replies.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long a closed connection's input is still read and discarded (so the kernel does not
/// reset it and destroy the last reply in flight) before its socket is let go.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// How many sockets a server holds open now, from accept until its connection's task has let
/// the socket go (which may be a moment after the server closed it). A server stops accepting
/// while it holds as many as it may, so it never runs out of file descriptors.
#[derive(Debug, Clone, Default)]
pub struct OpenSockets(std::sync::Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>);

impl OpenSockets {
    /// Sockets open now.
    pub fn count(&self) -> usize {
        self.0.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until fewer than `limit` are open.
    pub async fn room_below(&self, limit: usize) {
        loop {
            let released = self.0.1.notified();
            if self.count() < limit {
                return;
            }
            released.await;
        }
    }

    fn hold(&self) -> SocketHeld {
        self.0.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SocketHeld(self.clone())
    }
}

/// One socket counted in [`OpenSockets`] until dropped.
struct SocketHeld(OpenSockets);

impl Drop for SocketHeld {
    fn drop(&mut self) {
        let shared = &(self.0).0;
        shared.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        shared.1.notify_waiters();
    }
}

/// Sockets a server may hold beyond its connection limit: the one just accepted and those
/// still being let go (the limit's own headroom in file descriptors is larger).
const ACCEPT_SLACK: usize = 32;

/// The next connection to a server that keeps at most `limit` connections, once it holds few
/// enough sockets to take one.
pub async fn accept_within(
    listener: &tokio::net::TcpListener,
    open: &OpenSockets,
    limit: usize,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    open.room_below(limit + ACCEPT_SLACK).await;
    listener.accept().await
}

/// A connection that could not be accepted (out of file descriptors, usually): said, and waited
/// out a little rather than tried again at once.
pub async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Where a server accepts connections: its counts, and its TLS when its port is encrypted.
#[derive(Clone, Default)]
pub struct Port {
    /// Sockets held open now.
    pub open: OpenSockets,
    /// TLS, when the port serves it, and whether plaintext peers are served too.
    pub tls: Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
}

/// Numbers a connection a server just accepted (from `next`) and starts its reader and writer
/// in the current span, after its TLS handshake on an encrypted port; its news comes to
/// `inputs`.
pub fn accept<E: From<ConnNews> + Send + 'static>(
    next: &mut ConnId,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    inputs: &mpsc::Sender<(ConnId, E)>,
    shutdown: &CancellationToken,
    port: &Port,
) {
    let conn = *next;
    *next += 1;
    debug!(conn, %peer, "connection");
    let held = port.open.hold();
    let (inputs, cancel, tls) = (inputs.clone(), shutdown.child_token(), port.tls.clone());
    tokio::spawn(tracing::Instrument::in_current_span(async move {
        let _ = stream.set_nodelay(true);
        let (acceptor, plaintext) = match &tls {
            Some((acceptor, plaintext)) => (Some(acceptor), *plaintext),
            None => (None, crate::tls::Plaintext::Served),
        };
        match crate::tls::open(acceptor, plaintext, stream).await {
            crate::tls::Opening::Ready(stream) => {
                let (read, write) = stream.split();
                connection(conn, read, write, inputs, cancel).await;
            }
            crate::tls::Opening::Plaintext => {
                let _ = inputs.send((conn, ConnNews::Plaintext(peer).into())).await;
            }
            crate::tls::Opening::Failed(why) => debug!(conn, %peer, "not opened: {why}"),
        }
        drop(held);
    }));
}

/// One connection: a reader loop here and a writer task beside it.
///
/// Closing is ordered so that no reply is lost. The writer sends every line the loop queues
/// until the loop drops its end of the queue, which it does when it learns the connection is
/// closed (the reader saw the end, or the coordinator closed it). A peer that sends a request and
/// then shuts down its side (`echo … | nc`) still gets the answer. Before the socket is dropped,
/// input still arriving is read and discarded for a moment: closing a socket with unread input
/// makes the kernel reset the connection, which can destroy the last reply in flight.
pub async fn connection<E: From<ConnNews> + Send + 'static>(
    conn: ConnId,
    read: Reader,
    write: Writer,
    inputs: mpsc::Sender<(ConnId, E)>,
    cancel: CancellationToken,
) {
    let (tx, rx) = Outgoing::new();
    let waiting = Arc::clone(&tx.waiting);
    if inputs
        .send((conn, ConnNews::Opened(tx, cancel.clone()).into()))
        .await
        .is_err()
    {
        return;
    }
    let writer = tokio::spawn(write_lines(write, rx, waiting));
    let mut lines = FramedRead::new(read, line_codec(MAX_LINE));
    let mut said = false;
    let mut peer = None;
    let fatal = tokio::select! {
        fatal = read_lines(conn, &mut lines, &inputs, &mut said, &mut peer) => fatal,
        _ = cancel.cancelled() => false,
    };
    // The end of a connection from a peer whose link here is cut (by the peer itself, which
    // shapes its own links) is heard once the link is back, or a partition would give itself
    // away; a peer merely saying another's name gains only a late goodbye.
    if let Some(peer) = peer.filter(|_| !fatal) {
        tokio::select! {
            _ = super::control::while_silenced(&peer) => {}
            _ = cancel.cancelled() => {}
        }
    }
    if fatal {
        // The loop answers the bad line and then closes the connection: wait for that.
        let _ = tokio::time::timeout(CLOSE_GRACE, cancel.cancelled()).await;
    }
    let _ = inputs.send((conn, ConnNews::Closed.into())).await;
    let _ = tokio::time::timeout(CLOSE_GRACE, writer).await;
    // A peer that never sent a byte has no request in flight whose answer a reset could
    // destroy: its socket is let go at once (a flood of silent connections turns over fast).
    if !said && lines.read_buffer().is_empty() {
        return;
    }
    let mut read = lines.into_inner();
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        let mut sink = [0u8; 4096];
        while matches!(tokio::io::AsyncReadExt::read(&mut read, &mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Reads lines until the end of the stream (`said`: whether anything came; `peer`: the name the
/// first message came from); returns true if it stopped on a line too long to go on safely.
async fn read_lines<E: From<ConnNews>>(
    conn: ConnId,
    lines: &mut FramedRead<Reader, crate::protocol::frame::LineCodec>,
    inputs: &mpsc::Sender<(ConnId, E)>,
    said: &mut bool,
    peer: &mut Option<String>,
) -> bool {
    let mut dialect = None;
    while let Some(next) = lines.next().await {
        *said = true;
        let event = match next {
            Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => {
                let reason = format!("line longer than {MAX_LINE} bytes: closing the connection");
                let _ = inputs
                    .send((conn, ConnNews::Invalid(reason, true).into()))
                    .await;
                return true;
            }
            Err(AnyDelimiterCodecError::Io(e)) => {
                debug!(conn, "read error: {e}");
                return false;
            }
            Ok(line) => match frame_text(&line) {
                Err(e) => ConnNews::Invalid(e.to_string(), false),
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => {
                    let d = *dialect.get_or_insert_with(|| {
                        if classic::is_classic(text) {
                            Dialect::Classic
                        } else {
                            Dialect::Native
                        }
                    });
                    match decode(d, text, "") {
                        Ok(envelope) => {
                            if peer.is_none() && !envelope.from.is_empty() {
                                *peer = Some(envelope.from.to_string());
                            }
                            ConnNews::Line(d, envelope)
                        }
                        Err(reason) => ConnNews::Invalid(reason.to_string(), false),
                    }
                }
            },
        };
        if inputs.send((conn, event.into())).await.is_err() {
            return false;
        }
    }
    false
}

/// How many bytes of queued lines a connection's writer gathers before it writes them (the
/// size of a buffered writer's buffer).
const BURST: usize = 8 * 1024;

/// Writes queued lines until the queue is closed and empty. A peer that does not read is given
/// up on after a while, so a writer never lingers forever. Once the connection is broken, what
/// is queued is let go: the end of the connection is the reader's to say (it may wait for a
/// cut link to heal, see [`connection`]).
///
/// Everything already queued goes out together: a chunk alone is written as it is; several are
/// gathered into one buffer and written with one call per [`BURST`] bytes. `waiting` counts the
/// lines queued; each chunk's are taken off as it leaves the queue.
async fn write_lines(mut out: Writer, mut rx: mpsc::Receiver<Chunk>, waiting: Arc<AtomicUsize>) {
    const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
    let mut buffer: Vec<u8> = Vec::with_capacity(BURST);
    let taken = |chunk: Chunk| {
        waiting.fetch_sub(chunk.lines, Ordering::Relaxed);
        chunk.bytes
    };
    while let Some(chunk) = rx.recv().await {
        let first = taken(chunk);
        let burst = async {
            let Ok(next) = rx.try_recv() else {
                // A chunk alone is written as it is.
                out.write_all(&first).await?;
                return out.flush().await;
            };
            buffer.clear();
            buffer.extend_from_slice(&first);
            buffer.extend_from_slice(&taken(next));
            let mut drained = false;
            while !drained {
                while buffer.len() < BURST {
                    let Ok(chunk) = rx.try_recv() else {
                        drained = true;
                        break;
                    };
                    buffer.extend_from_slice(&taken(chunk));
                }
                out.write_all(&buffer).await?;
                buffer.clear();
            }
            out.flush().await
        };
        let written = tokio::time::timeout(WRITE_TIMEOUT, burst).await;
        // A long line grew the buffer: let it go back to its usual size.
        buffer.shrink_to(BURST);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                while let Some(chunk) = rx.recv().await {
                    taken(chunk);
                }
                return;
            }
            Err(_) => return,
        }
    }
    let _ = out.shutdown().await;
}
