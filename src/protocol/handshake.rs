//! The peer's side of the HMAC handshake (see [`crate::protocol::auth`]), shared by workers and
//! clients: `hello` with a nonce, check the coordinator's proof, answer its challenge, wait for
//! `welcome`.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::frame::{FrameError, frame_text};
use super::message::{Envelope, Message, PeerRole};
use super::{DecodeError, Dialect, auth, decode};

/// How long the whole handshake may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// Nothing came back in [`TIMEOUT`].
    #[error("the coordinator did not answer the handshake in time")]
    Timeout,
    /// The coordinator said no (its words).
    #[error("{0}")]
    Refused(String),
    /// The coordinator sent another message than the step called for.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// What the step called for.
        expected: &'static str,
        /// What came, as Rust writes it.
        got: String,
    },
    /// The coordinator could not prove it knows the secret: it is not this cluster's.
    #[error("{0} could not prove it knows the cluster secret")]
    Unproven(String),
    /// The connection closed.
    #[error("the coordinator closed the connection")]
    Closed,
    /// Reading or writing failed.
    #[error("cannot {0} the coordinator: {1}")]
    Io(&'static str, String),
    /// A line that is not text.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A line that is not a message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Proves to the coordinator that `name` knows `secret`, and checks that it does too: a
/// `welcome` without a proof of its own is refused.
pub async fn prove<S, E, W>(
    lines: &mut S,
    write: &mut W,
    secret: &str,
    name: &str,
    role: PeerRole,
) -> Result<(), HandshakeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
    W: AsyncWrite + Unpin,
{
    prove_within(lines, write, secret, name, role, TIMEOUT).await
}

/// [`prove`] giving up after `timeout`: a server that links to its peers over a lossy network
/// starts over quickly rather than waiting [`TIMEOUT`] for a line that was lost.
pub async fn prove_within<S, E, W>(
    lines: &mut S,
    write: &mut W,
    secret: &str,
    name: &str,
    role: PeerRole,
    timeout: Duration,
) -> Result<(), HandshakeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
    W: AsyncWrite + Unpin,
{
    tokio::time::timeout(timeout, exchange(lines, write, secret, name, role))
        .await
        .map_err(|_| HandshakeError::Timeout)?
}

async fn exchange<S, E, W>(
    lines: &mut S,
    write: &mut W,
    secret: &str,
    name: &str,
    role: PeerRole,
) -> Result<(), HandshakeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
    W: AsyncWrite + Unpin,
{
    let my_nonce = auth::nonce();
    send(
        write,
        name,
        Message::Hello {
            role,
            nonce: Some(my_nonce.clone()),
        },
    )
    .await?;
    let challenge = receive(lines).await?;
    let (nonce, proof) = match challenge.message {
        Message::Challenge { nonce, proof } => (nonce, proof),
        // A server that knows the secret always proves it: one that skips the proof is not
        // this cluster's, whatever it says.
        Message::Welcome { .. } => return Err(HandshakeError::Unproven(challenge.from.into())),
        Message::Error { message } => return Err(HandshakeError::Refused(message)),
        other => {
            return Err(HandshakeError::Unexpected {
                expected: "a challenge",
                got: format!("{other:?}"),
            });
        }
    };
    let coordinator_knows = proof
        .is_some_and(|p| auth::verify(secret, auth::COORDINATOR, &my_nonce, &challenge.from, &p));
    if !coordinator_knows {
        return Err(HandshakeError::Unproven(challenge.from.into()));
    }
    send(
        write,
        name,
        Message::Auth {
            proof: auth::proof(secret, auth::PEER, &nonce, name),
        },
    )
    .await?;
    match receive(lines).await?.message {
        Message::Welcome { .. } => Ok(()),
        Message::Error { message } => Err(HandshakeError::Refused(message)),
        other => Err(HandshakeError::Unexpected {
            expected: "welcome",
            got: format!("{other:?}"),
        }),
    }
}

async fn send<W: AsyncWrite + Unpin>(
    write: &mut W,
    name: &str,
    message: Message,
) -> Result<(), HandshakeError> {
    let line = Envelope {
        from: name.into(),
        clock: 0,
        term: None,
        message,
    }
    .to_json()
        + "\n";
    write
        .write_all(line.as_bytes())
        .await
        .map_err(|e| HandshakeError::Io("write to", e.to_string()))
}

async fn receive<S, E>(lines: &mut S) -> Result<Envelope, HandshakeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    let line = lines
        .next()
        .await
        .ok_or(HandshakeError::Closed)?
        .map_err(|e| HandshakeError::Io("read from", format!("{e:?}")))?;
    let text = frame_text(&line)?;
    Ok(decode(Dialect::Native, text, "")?)
}

/// The secret a peer in `role` proves to a server: the peer secret for masters, chat servers
/// and the launcher; the cluster secret, if there is one, for everyone else.
pub fn key_for<'a>(role: PeerRole, secret: Option<&'a str>, peer_key: &'a str) -> Option<&'a str> {
    if role.is_peer() {
        Some(peer_key)
    } else {
        secret
    }
}

/// What an `auth` proved.
#[derive(Debug, Clone, PartialEq)]
pub enum Proven {
    /// Nothing needed proving (no secret for this role): welcome.
    Nothing,
    /// The peer is `name` in `role`, as it said in `hello`.
    As(String, PeerRole),
    /// The proof was wrong (or came without a challenge).
    Failed(String, PeerRole),
}

/// A server's side of the handshake on one connection: the challenge it sent, and to whom.
#[derive(Debug, Default, Clone)]
pub struct Challenger {
    nonce: Option<String>,
    name: String,
    role: Option<PeerRole>,
}

impl Challenger {
    /// Answers `hello` from `name` in `role`: a `challenge` with `nonce` (fresh and random),
    /// and, when the peer sent a nonce of its own, the proof that `server` knows `key`.
    pub fn hello(
        &mut self,
        server: &str,
        key: &str,
        name: String,
        role: PeerRole,
        peer_nonce: Option<String>,
        nonce: String,
    ) -> Message {
        let proof = peer_nonce.map(|n| auth::proof(key, auth::COORDINATOR, &n, server));
        self.nonce = Some(nonce.clone());
        self.name = name;
        self.role = Some(role);
        Message::Challenge { nonce, proof }
    }

    /// Checks an `auth` proof against the challenge sent (each challenge is good once), with
    /// the key the role given in `hello` proves.
    pub fn check(&mut self, secret: Option<&str>, peer_key: &str, proof: &str) -> Proven {
        let role = self.role.unwrap_or(PeerRole::Client);
        let Some(key) = key_for(role, secret, peer_key) else {
            return Proven::Nothing;
        };
        let name = self.name.clone();
        let good = self
            .nonce
            .take()
            .is_some_and(|nonce| auth::verify(key, auth::PEER, &nonce, &name, proof));
        if good {
            Proven::As(name, role)
        } else {
            Proven::Failed(name, role)
        }
    }

    /// The name the peer gave in `hello`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role the peer gave in `hello`, if it sent one.
    pub fn role(&self) -> Option<PeerRole> {
        self.role
    }
}
