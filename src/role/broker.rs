//! The chat broker: one address in front of the chat servers. Clients send it every request;
//! it forwards each to the next live chat server in turn (round robin) and relays the answer.
//!
//! **Sessions.** A chat server knows a client by its connection (its login, its
//! subscriptions), so the broker keeps, per client, a connection of its own to each server it
//! has used ("upstream"), opened the first time a request goes there, proving the role the
//! client proved to the broker. Before the first request on an upstream it replays the client's
//! login there. Live deliveries come from one upstream only, the client's *feed* (where it logged
//! in and subscribed): a private message reaches every server the user is logged in on, and
//! the client must see it once.
//!
//! **Dead and silent servers.** An upstream that closes, or that leaves a request unanswered
//! for 3 s, marks its server down for 2 s (skipped by the round robin), and every request it
//! held is sent once more, to the next live server; a second failure is an `error` to the
//! client. If the feed was lost, the login and the subscriptions are replayed on another server.
//!
//! **A post is never made twice.** A retried request may have been carried out by the server
//! that died (and its entry may reach the others later, when it comes back). So the broker sends
//! every post, private message and channel creation as `chat_once`, with a request id unique to
//! it (the broker's run, the client, a number); a server that has an entry for that id answers
//! with it, and of two entries made for one id every server shows only the first in history
//! order (see [`crate::role::chat`]).

use std::collections::{BTreeMap, VecDeque};

use tracing::{debug, info, warn};

use crate::clock::{LamportClock, Millis};
use crate::protocol::handshake::{Challenger, Proven, key_for};
use crate::protocol::message::{Encoding, Envelope, Message, PeerRole};
use crate::role::ConnId;

/// A server whose upstream has left a request unanswered this long is taken for dead.
pub const SILENT_MS: Millis = 3_000;
/// How long a server taken for dead is skipped.
pub const DOWN_MS: Millis = 2_000;
/// The most requests one client may have waiting for answers.
pub const MAX_IN_FLIGHT: usize = 256;

/// How a broker behaves.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Its node name.
    pub name: String,
    /// The chat servers, in the topology's order.
    pub servers: Vec<String>,
    /// `CLUSTER_SECRET`, if the topology has one.
    pub secret: Option<String>,
    /// The peer secret (the launcher's console proves it).
    pub peer_key: String,
    /// Unique to this run of the broker: the first part of every request id.
    pub run: String,
    /// The masters of the topology: as primary, one of them reads the broker's clock.
    pub masters: Vec<String>,
}

/// What the driver hands the broker.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A client connected.
    Connected(ConnId),
    /// A client sent a message.
    Received(ConnId, Envelope),
    /// A client's connection closed.
    Closed(ConnId),
    /// Client `conn`'s upstream to server `server` (an index into `servers`) is open.
    UpOpened { conn: ConnId, server: usize },
    /// A message on that upstream.
    UpReceived {
        conn: ConnId,
        server: usize,
        envelope: Envelope,
    },
    /// That upstream closed, or could not be opened.
    UpClosed { conn: ConnId, server: usize },
    /// Time passed.
    Tick,
}

/// What the broker asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this to a client.
    Send(ConnId, Envelope),
    /// Close a client's connection (for one that closed itself: let its writer go, once its
    /// answers are out).
    Close(ConnId),
    /// Open client `conn`'s upstream to server `server`, proving `role` under `name` if the
    /// client proved one.
    Open {
        conn: ConnId,
        server: usize,
        name: String,
        role: Option<PeerRole>,
    },
    /// Send this on that upstream.
    ToServer {
        conn: ConnId,
        server: usize,
        message: Message,
    },
    /// Close that upstream.
    CloseUp { conn: ConnId, server: usize },
    /// Move this node's clock by this many milliseconds (the time master said so).
    AdjustClock(i64),
}

/// A request on its way to a server.
#[derive(Debug, Clone)]
struct Pending {
    message: Message,
    /// The client waits for the answer (else it is the broker's own: a login or a
    /// subscription replayed).
    answered: bool,
    /// Sent once already, to a server that died before answering.
    retried: bool,
    /// Servers that answered it "no channel named …" (a bit per server): a channel made a
    /// moment ago on one server reaches the others a moment later.
    no_channel: u64,
    sent_at: Millis,
}

/// One client's connection to one server.
#[derive(Debug, Default)]
struct Up {
    open: bool,
    /// The client's login has been sent on it.
    logged_in: bool,
    /// Waiting for the connection to open.
    waiting: VecDeque<Pending>,
    /// Sent, in order: each answer is for the oldest.
    sent: VecDeque<Pending>,
}

/// A client of the broker.
#[derive(Debug, Default)]
struct Client {
    challenger: Challenger,
    authenticated: bool,
    /// What it proved: upstreams prove the same.
    proven: Option<(String, PeerRole)>,
    /// Its `chat_login`, replayed on each upstream before anything else.
    login: Option<Message>,
    subscriptions: Vec<String>,
    /// The server its live deliveries come from.
    feed: Option<usize>,
    ups: BTreeMap<usize, Up>,
    next_request: u64,
    /// The server that made its last entry (it knows what the client knows).
    last_write: Option<usize>,
}

impl Client {
    /// Whether a request of its own is still on its way (not a login or subscription the
    /// broker replays).
    fn awaits_answers(&self) -> bool {
        (self.ups.values())
            .any(|up| (up.sent.iter().chain(&up.waiting)).any(|pending| pending.answered))
    }
}

/// A chat server as the broker sees it.
#[derive(Debug, Clone, Default)]
struct Server {
    name: String,
    /// Skipped until then (taken for dead).
    down_until: Millis,
    /// Requests sent to it.
    requests: u64,
}

/// The broker.
pub struct Broker {
    config: BrokerConfig,
    clock: LamportClock,
    now: Millis,
    clients: BTreeMap<ConnId, Client>,
    /// Clients whose connection closed while they waited for answers: each is let go once
    /// its last answer is sent (`echo … | nc` gets its reply).
    closing: std::collections::BTreeSet<ConnId>,
    servers: Vec<Server>,
    /// The server the next request goes to, if live.
    turn: usize,
    retried: u64,
    failed: u64,
    nonces: u64,
    /// Its wall clock (milliseconds since 1970), as the driver read it for this step.
    wall_ms: i64,
    out: Vec<Output>,
}

impl Broker {
    /// A broker with no clients.
    pub fn new(config: BrokerConfig) -> Self {
        let servers = config
            .servers
            .iter()
            .map(|name| Server {
                name: name.clone(),
                ..Server::default()
            })
            .collect();
        Broker {
            config,
            clock: LamportClock::default(),
            now: 0,
            clients: BTreeMap::new(),
            closing: Default::default(),
            servers,
            turn: 0,
            retried: 0,
            failed: 0,
            nonces: 0,
            wall_ms: 0,
            out: Vec::new(),
        }
    }

    /// The driver's reading of this node's wall clock, before each step (what a time master's
    /// `clock_poll` is answered with).
    pub fn set_wall_clock(&mut self, unix_ms: i64) {
        self.wall_ms = unix_ms;
    }

    /// Requests sent to each server so far, by name (the round robin, counted).
    pub fn requests(&self) -> Vec<(String, u64)> {
        self.servers
            .iter()
            .map(|s| (s.name.clone(), s.requests))
            .collect()
    }

    /// Requests sent again after their server died, and requests that failed twice.
    pub fn retries(&self) -> (u64, u64) {
        (self.retried, self.failed)
    }

    /// Feeds one input at time `now` and returns what to do.
    pub fn step(&mut self, now: Millis, input: Input) -> Vec<Output> {
        self.now = now.max(self.now);
        match input {
            Input::Connected(conn) => {
                self.clients.insert(conn, Client::default());
            }
            Input::Received(conn, env) => self.received(conn, env),
            Input::Closed(conn) => {
                if self.clients.get(&conn).is_some_and(Client::awaits_answers) {
                    self.closing.insert(conn);
                } else {
                    self.let_go(conn);
                }
            }
            Input::UpOpened { conn, server } => self.up_opened(conn, server),
            Input::UpReceived {
                conn,
                server,
                envelope,
            } => self.up_received(conn, server, envelope),
            Input::UpClosed { conn, server } => self.up_lost(conn, server),
            Input::Tick => self.find_silent(),
        }
        if !self.closing.is_empty() {
            let answered: Vec<ConnId> = (self.closing.iter())
                .filter(|c| !self.clients.get(c).is_some_and(Client::awaits_answers))
                .copied()
                .collect();
            for conn in answered {
                self.closing.remove(&conn);
                self.let_go(conn);
            }
        }
        std::mem::take(&mut self.out)
    }

    /// A client whose connection closed, with nothing more to tell it: its upstreams close,
    /// and its writer goes once what it was told is out.
    fn let_go(&mut self, conn: ConnId) {
        if let Some(client) = self.clients.remove(&conn) {
            for server in client.ups.into_keys() {
                self.out.push(Output::CloseUp { conn, server });
            }
        }
        self.out.push(Output::Close(conn));
    }

    // ----- clients -----

    fn received(&mut self, conn: ConnId, env: Envelope) {
        let _ = self.clock.observe(env.clock);
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let secret = self.config.secret.clone();
        match env.message {
            Message::Hello { role, nonce } => {
                let key = key_for(role, secret.as_deref(), &self.config.peer_key);
                let Some(key) = key.map(str::to_string) else {
                    client.authenticated = true;
                    return self.reply(conn, self.welcome());
                };
                self.nonces += 1;
                let mine = format!("{}-{}-{}", self.config.run, conn, self.nonces);
                let challenge = client.challenger.hello(
                    &self.config.name,
                    &key,
                    env.from.into(),
                    role,
                    nonce,
                    mine,
                );
                self.reply(conn, challenge);
            }
            Message::Auth { proof } => {
                match client
                    .challenger
                    .check(secret.as_deref(), &self.config.peer_key, &proof)
                {
                    Proven::As(name, role) => {
                        client.authenticated = true;
                        client.proven = Some((name, role));
                        self.reply(conn, self.welcome());
                    }
                    Proven::Nothing => {
                        client.authenticated = true;
                        self.reply(conn, self.welcome());
                    }
                    Proven::Failed(name, _) => {
                        warn!(conn, %name, "broker: authentication failed");
                        self.error(conn, "authentication failed".into());
                        self.out.push(Output::Close(conn));
                    }
                }
            }
            _ if secret.is_some() && !client.authenticated => {
                self.error(
                    conn,
                    "this chat broker requires authentication: start with hello".into(),
                );
                self.out.push(Output::Close(conn));
            }
            Message::Ping => self.reply(conn, Message::Pong),
            Message::Pong => {}
            // Berkeley: the time master (a master of the topology, proven with the peer
            // secret) reads this broker's clock, or moves it (answered with the clock as moved).
            message @ (Message::ClockPoll { .. } | Message::ClockAdjust { .. }) => {
                let master = matches!(&client.proven,
                    Some((name, PeerRole::Master)) if self.config.masters.contains(name));
                let (moved, answer) = crate::role::coordinator::answer_time_master(
                    &message,
                    master,
                    &mut self.wall_ms,
                );
                self.out.extend(moved.map(Output::AdjustClock));
                self.reply(conn, answer);
            }
            message @ Message::ChatLogin { .. } => {
                client.login = Some(message.clone());
                let feed = client.feed;
                let server = feed.or_else(|| self.next_server(None));
                self.forward(conn, server, message);
            }
            Message::ChatSubscribe { channel } => {
                if !client.subscriptions.contains(&channel) {
                    client.subscriptions.push(channel.clone());
                }
                let feed = client.feed;
                let server = feed.or_else(|| self.next_server(None));
                self.forward(conn, server, Message::ChatSubscribe { channel });
            }
            // Deliveries reach a broker's client as the broker's own lines.
            Message::ChatEncoding {
                encoding: Encoding::Json,
            } => self.reply(conn, Message::ChatDone { entry: None }),
            Message::ChatEncoding { .. } => self.error(
                conn,
                "a chat broker sends deliveries as JSON lines only: ask a chat server itself \
                 for msgpack"
                    .into(),
            ),
            message @ (Message::ChatPublish { .. }
            | Message::ChatDm { .. }
            | Message::ChatCreate { .. }) => {
                client.next_request += 1;
                let request = format!("{}-{}-{}", self.config.run, conn, client.next_request);
                let message = Message::ChatOnce {
                    request,
                    message: Box::new(message),
                };
                let server = self.next_server(None);
                self.forward(conn, server, message);
            }
            message @ (Message::ChatOnce { .. }
            | Message::ChatHistory { .. }
            | Message::ChatChannels
            | Message::ChatUsers
            | Message::ChatStats) => {
                let server = self.next_server(None);
                self.forward(conn, server, message);
            }
            other => {
                let kind = other.kind();
                self.error(
                    conn,
                    format!("`{kind}` is not for a chat broker: it forwards chat requests"),
                );
            }
        }
    }

    /// The next live server in turn (not `except`), if any.
    fn next_server(&mut self, except: Option<usize>) -> Option<usize> {
        let n = self.servers.len();
        for i in 0..n {
            let s = (self.turn + i) % n;
            if Some(s) != except && self.servers[s].down_until <= self.now {
                self.turn = (s + 1) % n;
                return Some(s);
            }
        }
        None
    }

    /// Sends a client's request to `server` (none live: the client is told).
    fn forward(&mut self, conn: ConnId, server: Option<usize>, message: Message) {
        let pending = Pending {
            message,
            answered: true,
            retried: false,
            no_channel: 0,
            sent_at: self.now,
        };
        self.send_pending(conn, server, pending);
    }

    fn send_pending(&mut self, conn: ConnId, server: Option<usize>, mut pending: Pending) {
        let Some(server) = server else {
            if pending.answered {
                self.failed += 1;
                self.error(
                    conn,
                    "no chat server answers now: try again in a moment".into(),
                );
            }
            return;
        };
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if client
            .ups
            .values()
            .map(|u| u.sent.len() + u.waiting.len())
            .sum::<usize>()
            >= MAX_IN_FLIGHT
        {
            return self.error(
                conn,
                format!("more than {MAX_IN_FLIGHT} requests wait for answers: slow down"),
            );
        }
        let is_login = matches!(pending.message, Message::ChatLogin { .. });
        let is_subscribe = matches!(pending.message, Message::ChatSubscribe { .. });
        if is_login || is_subscribe {
            client.feed = Some(server);
        }
        pending.sent_at = self.now;
        self.servers[server].requests += 1;
        let login = client.login.clone();
        let up = match client.ups.entry(server) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let (name, role) = match &client.proven {
                    Some((name, role)) => (name.clone(), Some(*role)),
                    None => (format!("{}-client-{conn}", self.config.name), None),
                };
                self.out.push(Output::Open {
                    conn,
                    server,
                    name,
                    role,
                });
                e.insert(Up::default())
            }
        };
        // The login goes first on every upstream (unless this is it).
        if is_login {
            up.logged_in = true;
        } else if !up.logged_in
            && let Some(login) = login
        {
            up.logged_in = true;
            let replay = Pending {
                message: login,
                answered: false,
                retried: false,
                no_channel: 0,
                sent_at: self.now,
            };
            Self::queue(&mut self.out, conn, server, up, replay);
        }
        Self::queue(&mut self.out, conn, server, up, pending);
    }

    /// Sends now if the upstream is open, else when it opens.
    fn queue(out: &mut Vec<Output>, conn: ConnId, server: usize, up: &mut Up, pending: Pending) {
        if up.open {
            out.push(Output::ToServer {
                conn,
                server,
                message: pending.message.clone(),
            });
            up.sent.push_back(pending);
        } else {
            up.waiting.push_back(pending);
        }
    }

    // ----- upstreams -----

    fn up_opened(&mut self, conn: ConnId, server: usize) {
        let Some(up) = self
            .clients
            .get_mut(&conn)
            .and_then(|c| c.ups.get_mut(&server))
        else {
            // The client left meanwhile.
            self.out.push(Output::CloseUp { conn, server });
            return;
        };
        up.open = true;
        while let Some(mut pending) = up.waiting.pop_front() {
            pending.sent_at = self.now;
            self.out.push(Output::ToServer {
                conn,
                server,
                message: pending.message.clone(),
            });
            up.sent.push_back(pending);
        }
    }

    fn up_received(&mut self, conn: ConnId, server: usize, env: Envelope) {
        let _ = self.clock.observe(env.clock);
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if let Message::ChatMessage { .. } = &env.message {
            // Live deliveries from the feed only: elsewhere they are copies.
            if client.feed == Some(server) {
                let message = env.message;
                self.reply(conn, message);
            }
            return;
        }
        let Some(up) = client.ups.get_mut(&server) else {
            return;
        };
        if matches!(env.message, Message::Pong | Message::Welcome { .. }) {
            return;
        }
        // A history in parts: the request is answered by the last one.
        let last_part = !matches!(env.message, Message::ChatHistoryList { more: true, .. });
        let pending = if last_part {
            up.sent.pop_front()
        } else {
            up.sent.front().cloned()
        };
        let Some(pending) = pending else {
            debug!(conn, server, "broker: an answer to nothing");
            return;
        };
        if !pending.answered {
            if let Message::Error { message } = &env.message {
                debug!(conn, server, %message, "broker: a replayed request was refused");
            }
            return;
        }
        // A channel made a moment ago on another server may not have reached this one yet:
        // the request goes to the server that made the client's last entry, then to each other
        // live server in turn (the one that made the channel has it), before the client is
        // told there is no such channel.
        if let Message::Error { message } = &env.message
            && message.starts_with("no channel named")
            && server < 64
        {
            let mut again = pending;
            again.no_channel |= 1 << server;
            let untried = |s: &usize| again.no_channel & (1 << *s) == 0;
            let to = client.last_write.filter(untried).or_else(|| {
                (0..self.servers.len())
                    .find(|s| untried(s) && self.servers[*s].down_until <= self.now)
            });
            if let Some(to) = to {
                self.retried += 1;
                self.send_pending(conn, Some(to), again);
                return;
            }
        }
        if let Message::ChatDone { entry: Some(_) } = &env.message {
            client.last_write = Some(server);
        }
        self.reply(conn, env.message);
    }

    /// An upstream is gone (closed, or taken for dead): its server is skipped for a while,
    /// and what it held goes to the next live server once.
    fn up_lost(&mut self, conn: ConnId, server: usize) {
        let name = self.servers[server].name.clone();
        if self.servers[server].down_until <= self.now {
            info!(server = %name, "broker: chat server lost, skipped for a while");
        }
        self.servers[server].down_until = self.now + DOWN_MS;
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let Some(up) = client.ups.remove(&server) else {
            return;
        };
        let lost_feed = client.feed == Some(server);
        if lost_feed {
            client.feed = None;
        }
        let held: Vec<Pending> = up.sent.into_iter().chain(up.waiting).collect();
        // What the client still waits for goes again below; the rest of its session is
        // replayed here, silently.
        let waiting_for =
            |wanted: &Message| held.iter().any(|p| p.answered && p.message == *wanted);
        // The feed moves first (login, subscriptions), so that retried requests find a session.
        if lost_feed && let Some(login) = client.login.clone().filter(|l| !waiting_for(l)) {
            let subscriptions: Vec<String> = client
                .subscriptions
                .iter()
                .filter(|c| {
                    !waiting_for(&Message::ChatSubscribe {
                        channel: (*c).clone(),
                    })
                })
                .cloned()
                .collect();
            let to = self.next_server(Some(server));
            let replay = |message| Pending {
                message,
                answered: false,
                retried: false,
                no_channel: 0,
                sent_at: 0,
            };
            self.send_pending(conn, to, replay(login));
            for channel in subscriptions {
                self.send_pending(conn, to, replay(Message::ChatSubscribe { channel }));
            }
        }
        for mut pending in held.into_iter().filter(|p| p.answered) {
            // The login and subscriptions were replayed above; their answers are the client's.
            if pending.retried {
                self.failed += 1;
                let kind = pending.message.kind();
                self.error(
                    conn,
                    format!("`{kind}` failed on two chat servers in turn: try again"),
                );
                continue;
            }
            pending.retried = true;
            self.retried += 1;
            let to = match pending.message {
                Message::ChatLogin { .. } | Message::ChatSubscribe { .. } => self
                    .clients
                    .get(&conn)
                    .and_then(|c| c.feed)
                    .or_else(|| self.next_server(Some(server))),
                _ => self.next_server(Some(server)),
            };
            self.send_pending(conn, to, pending);
        }
    }

    /// Upstreams that left a request unanswered past [`SILENT_MS`] are closed and taken for dead.
    fn find_silent(&mut self) {
        let now = self.now;
        let silent: Vec<(ConnId, usize)> = self
            .clients
            .iter()
            .flat_map(|(conn, c)| {
                c.ups.iter().filter_map(move |(server, up)| {
                    up.sent
                        .front()
                        .filter(|p| now.saturating_sub(p.sent_at) >= SILENT_MS)
                        .map(|_| (*conn, *server))
                })
            })
            .collect();
        for (conn, server) in silent {
            warn!(conn, server = %self.servers[server].name, "broker: a chat server is silent");
            self.out.push(Output::CloseUp { conn, server });
            self.up_lost(conn, server);
        }
    }

    // ----- helpers -----

    fn welcome(&self) -> Message {
        Message::Welcome {
            coordinator: self.config.name.clone(),
            heartbeat_ms: 1000,
        }
    }

    fn reply(&mut self, conn: ConnId, message: Message) {
        let envelope = Envelope {
            from: self.config.name.as_str().into(),
            clock: self.clock.tick(),
            term: None,
            message,
        };
        self.out.push(Output::Send(conn, envelope));
    }

    fn error(&mut self, conn: ConnId, message: String) {
        self.reply(conn, Message::Error { message });
    }
}

#[cfg(test)]
mod tests;
