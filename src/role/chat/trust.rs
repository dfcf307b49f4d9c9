//! Who may say what to a chat server: the handshake (the cluster secret for clients, the peer
//! secret for other chat servers and the launcher), the gate every message passes, and the
//! checks on what a peer passes on.

use tracing::{debug, warn};

use super::*;
use crate::protocol::handshake::{Proven, key_for};
use crate::protocol::message::PeerRole;
use compact_str::CompactString;

/// Who a connection proved itself to be with the peer secret.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Trusted {
    /// Another chat server of this cluster, by its name.
    Peer(String),
    /// The launcher (the lecturer's console).
    Supervisor,
    /// A master of the topology (as primary, the time master reads this server's clock).
    Master(String),
}

impl ChatServer {
    /// The gate: the handshake is carried out here; with a secret nothing else is heard before
    /// it; what only chat servers say needs a proven one. Returns whether `message` may go on.
    pub(super) fn admit(&mut self, conn: ConnId, from: &str, message: &Message) -> bool {
        match message {
            Message::Hello { role, nonce } => {
                self.hello(conn, from, *role, nonce.clone());
                return false;
            }
            Message::Auth { proof } => {
                self.auth(conn, proof);
                return false;
            }
            _ => {}
        }
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if self.config.secret.is_some() && !c.authenticated {
            warn!(conn, %from, "chat: a message before authentication");
            self.error(
                conn,
                "this chat server requires authentication: start with hello".to_string(),
            );
            self.out.push(Output::Close(conn));
            return false;
        }
        // With a secret, every client operation needs a login too (the launcher's console
        // logs in as well).
        let asks = matches!(
            message,
            Message::ChatUsers
                | Message::ChatChannels
                | Message::ChatSubscribe { .. }
                | Message::ChatHistory { .. }
                | Message::ChatStats
        );
        if self.config.secret.is_some() && asks && c.user.is_none() && c.trusted.is_none() {
            self.error(conn, "log in first (chat_login)".to_string());
            return false;
        }
        let from_peer = matches!(c.trusted, Some(Trusted::Peer(_)));
        if matches!(
            message,
            Message::ChatSync { .. }
                | Message::ChatSyncMore
                | Message::ChatForgotten { .. }
                | Message::ChatReplica { .. }
        ) && !from_peer
        {
            let kind = message.kind();
            warn!(conn, %from, "chat: `{kind}` from a connection that is no chat server");
            self.error(
                conn,
                format!(
                    "`{kind}` is accepted only from another chat server of this cluster, \
                     proven with the peer secret (hello as chat_peer)"
                ),
            );
            return false;
        }
        true
    }

    fn hello(&mut self, conn: ConnId, from: &str, role: PeerRole, nonce: Option<String>) {
        let peer_key = &self.config.peer_key;
        let Some(key) = key_for(role, self.config.secret.as_deref(), peer_key).map(str::to_string)
        else {
            self.welcome(conn);
            return;
        };
        let mine = format!("{:032x}", self.rng.random::<u128>());
        let server = self.config.name.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let challenge = c
            .handshake
            .hello(&server, &key, from.to_string(), role, nonce, mine);
        self.reply(conn, challenge);
    }

    fn auth(&mut self, conn: ConnId, proof: &str) {
        let (secret, peer_key) = (self.config.secret.clone(), self.config.peer_key.clone());
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (name, role, trusted) = match c.handshake.check(secret.as_deref(), &peer_key, proof) {
            Proven::Nothing => return self.welcome(conn),
            Proven::Failed(name, role) => (name, role, Err("authentication failed".to_string())),
            Proven::As(name, role) => {
                let trusted = match role {
                    PeerRole::ChatPeer if self.config.peers.contains(&name) => {
                        Ok(Some(Trusted::Peer(name.clone())))
                    }
                    PeerRole::ChatPeer => Err(format!("`{name}` is not a chat server here")),
                    PeerRole::Supervisor => Ok(Some(Trusted::Supervisor)),
                    PeerRole::Master if self.config.masters.contains(&name) => {
                        Ok(Some(Trusted::Master(name.clone())))
                    }
                    PeerRole::Master => Err(format!("`{name}` is not a master of this topology")),
                    _ => Ok(None),
                };
                (name, role, trusted)
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match trusted {
            Ok(trusted) => {
                c.authenticated = true;
                c.peer = matches!(trusted, Some(Trusted::Peer(_)));
                c.trusted = trusted;
                debug!(conn, peer = %name, ?role, "chat: authenticated");
                self.welcome(conn);
            }
            Err(message) => {
                warn!(conn, peer = %name, ?role, "chat: {message}");
                self.error(conn, message);
                self.out.push(Output::Close(conn));
            }
        }
    }

    fn welcome(&mut self, conn: ConnId) {
        self.reply(
            conn,
            Message::Welcome {
                coordinator: self.config.name.clone(),
                heartbeat_ms: 0,
            },
        );
    }

    /// Whether a connection may watch every private message: the launcher's, or an operator's.
    pub(super) fn sees_everything(&self, c: &Conn) -> bool {
        c.trusted == Some(Trusted::Supervisor)
            || c.user.as_ref().is_some_and(|u| {
                self.config
                    .users
                    .iter()
                    .any(|a| &a.name == u && a.role == crate::topology::UserRole::Operator)
            })
    }

    /// Whether an entry a peer passed on could have been made by a chat server of this
    /// cluster: its origin is one, and its names and text are within the limits (so it fits
    /// every line it is passed on in).
    pub(super) fn plausible(&self, entry: &ChatEntry) -> Result<(), String> {
        let origin = &entry.server;
        if *origin != self.config.name && !self.config.peers.iter().any(|p| p == origin) {
            return Err(format!(
                "an entry from `{origin}`, which is no chat server here"
            ));
        }
        let (names, text): (Vec<(&str, &CompactString)>, Option<&CompactString>) = match &entry.body
        {
            ChatBody::Post {
                channel,
                from,
                text,
            } => (vec![("channel", channel), ("user", from)], Some(text)),
            ChatBody::Direct { from, to, text } => (vec![("user", from), ("user", to)], Some(text)),
            ChatBody::Channel { channel, by } => (vec![("channel", channel), ("user", by)], None),
        };
        for (kind, name) in names {
            check_name(kind, name, kind == "channel").map_err(|e| e.to_string())?;
        }
        if let Some(text) = text
            && text.chars().count() > MAX_TEXT
        {
            return Err(format!("a text longer than {MAX_TEXT} characters"));
        }
        Ok(())
    }
}
