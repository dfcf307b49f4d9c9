//! A client connection to a coordinator: send a request, read its reply.
//!
//! Used by `tcluster client` (one-shot commands and the interactive prompt), by tests, and later
//! by the console. It speaks the native protocol, authenticates when the cluster has a secret,
//! and keeps a Lamport clock like every other node.

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{AnyDelimiterCodec, FramedRead};

use crate::clock::LamportClock;
use crate::node::handshake;
use crate::protocol::frame::{MAX_LINE, frame_text, line_codec};
use crate::protocol::message::{Envelope, Message, PeerRole};
use crate::protocol::{Dialect, decode};

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No connection could be made.
    #[error("cannot connect to the coordinator at {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The handshake failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The coordinator closed the connection.
    #[error("the coordinator closed the connection")]
    Closed,
    /// Reading or writing failed.
    #[error("connection to the coordinator failed: {0}")]
    Io(String),
    /// The coordinator sent something that is not a message.
    #[error("the coordinator sent something unexpected: {0}")]
    Protocol(String),
}

/// A connection to a coordinator.
pub struct Client {
    lines: FramedRead<OwnedReadHalf, AnyDelimiterCodec>,
    write: OwnedWriteHalf,
    name: String,
    clock: LamportClock,
}

impl Client {
    /// Connects to `addr` as `name`, proving knowledge of `secret` if there is one.
    pub async fn connect(
        addr: &str,
        name: &str,
        secret: Option<&str>,
    ) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let mut lines = FramedRead::new(read, line_codec(MAX_LINE));
        if let Some(secret) = secret {
            handshake::prove(&mut lines, &mut write, secret, name, PeerRole::Client)
                .await
                .map_err(ClientError::Auth)?;
        }
        Ok(Client {
            lines,
            write,
            name: name.to_string(),
            clock: LamportClock::default(),
        })
    }

    /// Sends a message without waiting for anything.
    pub async fn send(&mut self, message: Message) -> Result<(), ClientError> {
        let envelope = Envelope {
            from: self.name.clone(),
            clock: self.clock.tick(),
            term: None,
            message,
        };
        let line = envelope.to_json() + "\n";
        self.write
            .write_all(line.as_bytes())
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
        let line = self
            .lines
            .next()
            .await
            .ok_or(ClientError::Closed)?
            .map_err(|e| ClientError::Io(format!("{e:?}")))?;
        let text = frame_text(&line).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let envelope = decode(Dialect::Native, text, "").map_err(ClientError::Protocol)?;
        self.clock.observe(envelope.clock);
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
