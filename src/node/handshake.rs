//! The peer's side of the HMAC handshake (see [`crate::protocol::auth`]), shared by workers and
//! clients: `hello` with a nonce, check the coordinator's proof, answer its challenge, wait for
//! `welcome`.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::protocol::frame::frame_text;
use crate::protocol::message::{Envelope, Message, PeerRole};
use crate::protocol::{Dialect, auth, decode};

/// How long the whole handshake may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Proves to the coordinator that `name` knows `secret`, and checks that it does too.
pub async fn prove<S, E, W>(
    lines: &mut S,
    write: &mut W,
    secret: &str,
    name: &str,
    role: PeerRole,
) -> Result<(), String>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
    W: AsyncWrite + Unpin,
{
    tokio::time::timeout(TIMEOUT, exchange(lines, write, secret, name, role))
        .await
        .map_err(|_| "the coordinator did not answer the handshake in time".to_string())?
}

async fn exchange<S, E, W>(
    lines: &mut S,
    write: &mut W,
    secret: &str,
    name: &str,
    role: PeerRole,
) -> Result<(), String>
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
        Message::Welcome { .. } => return Ok(()), // the coordinator has no secret
        Message::Error { message } => return Err(message),
        other => return Err(format!("expected a challenge, got {other:?}")),
    };
    let coordinator_knows = proof
        .is_some_and(|p| auth::verify(secret, auth::COORDINATOR, &my_nonce, &challenge.from, &p));
    if !coordinator_knows {
        return Err(format!(
            "{} could not prove it knows the cluster secret",
            challenge.from
        ));
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
        Message::Error { message } => Err(message),
        other => Err(format!("expected welcome, got {other:?}")),
    }
}

async fn send<W: AsyncWrite + Unpin>(
    write: &mut W,
    name: &str,
    message: Message,
) -> Result<(), String> {
    let line = Envelope {
        from: name.to_string(),
        clock: 0,
        term: None,
        message,
    }
    .to_json()
        + "\n";
    write
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("cannot write to the coordinator: {e}"))
}

async fn receive<S, E>(lines: &mut S) -> Result<Envelope, String>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    let line = lines
        .next()
        .await
        .ok_or("the coordinator closed the connection")?
        .map_err(|e| format!("cannot read from the coordinator: {e:?}"))?;
    let text = frame_text(&line).map_err(|e| e.to_string())?;
    decode(Dialect::Native, text, "")
}
