//! The chat server: users, channels, posts and private messages, replicated between servers.
//!
//! A synchronous state machine like the coordinator: its driver hands it [`Input`]s with the
//! time, and carries out the [`Output`]s.
//!
//! **One order everywhere.** Every change is a [`ChatEntry`] stamped by the server that made it
//! with its Lamport clock and a sequence number of its own. The history is kept sorted by
//! (clock, server, sequence), so every replica that has the same entries shows them in the same
//! order, whichever order they arrived in.
//!
//! **Replication.** Chat servers link up (one connects to the other; knowing one address is
//! enough). On a link each end sends `chat_sync` with, for each origin, the sequence numbers it
//! has without a gap, and receives every entry it lacks (in batches); then each new entry — its
//! own, or one it got from a third server — flows both ways as `chat_replica`. A server that was
//! down catches up from whichever server it reaches first; duplicates are recognised and ignored.
//! A link that was cut without closing loses what crossed it meanwhile: a replica that arrives
//! after a gap makes the receiver ask for a sync at once, and every few seconds each server asks
//! its links anyway (anti-entropy), so even a gap nothing follows is filled.
//!
//! **Bad input** gets an error to that client only: unknown channels, bad names, empty or
//! oversized text, a name already logged in, a client sending faster than the rate allows
//! (a token bucket). Live deliveries to a subscriber that reads too slowly are dropped and
//! counted by the driver, never waited for.
//!
//! Files: this one holds the server, its entries and the step; `clients.rs` what it does for
//! clients; `links.rs` replication between servers; `time.rs` the time master the servers
//! elect when the topology has no masters; `trust.rs` who may say what.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tracing::{debug, info, warn};

use crate::clock::{LamportClock, Millis};
use crate::protocol::message::{ChatBody, ChatEntry, ChatStats, Encoding, Envelope, Message};
use crate::role::ConnId;
use crate::topology::User;
use crate::topology::names::check_name;

mod clients;
mod links;
mod time;
mod trust;

pub use time::{ANSWER_WAIT_MS, SETTLE_MS, VICTORY_WAIT_MS};

/// The longest text of a post or a private message, in characters.
pub const MAX_TEXT: usize = 1000;
pub use crate::topology::names::MAX_NAME;
/// The most channels a client may create (each keeps up to `policy chat { keep }` entries:
/// this bounds the history).
pub const MAX_CHANNELS: usize = 1_000;
/// How many entries `chat_history` returns when the client does not say.
pub const DEFAULT_HISTORY: usize = 1000;
/// The most bytes of entries in one part of a `chat_history` answer.
pub const HISTORY_PART_BYTES: usize = 48 * 1024;
/// How many entries one `chat_sync` answer carries at most; the asking server asks again.
pub const SYNC_BATCH: usize = 1000;

/// How a chat server behaves.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Its node name.
    pub name: String,
    /// The other chat servers, by name.
    pub peers: Vec<String>,
    /// The masters of the topology: as primary, one of them reads this server's clock
    /// (`policy clock`).
    pub masters: Vec<String>,
    /// Accounts; with any, logging in needs a password or a token.
    pub users: Vec<User>,
    /// Messages a client may send per second, on average.
    pub rate_per_sec: f64,
    /// How many it may send at once.
    pub burst: f64,
    /// Seed for tokens.
    pub seed: u64,
    /// `CLUSTER_SECRET`: with one, clients must prove it before anything else.
    pub secret: Option<String>,
    /// The peer secret other chat servers and the launcher prove.
    pub peer_key: String,
    /// Entries kept per channel (and per pair of users for private messages): older ones are
    /// dropped, in memory and on disk (`policy chat { keep }`).
    pub keep: usize,
    /// Connections kept open at most: past it, the oldest that has not logged in (nor linked
    /// as a chat server) is closed to make room.
    pub max_connections: usize,
    /// `policy clock` in a topology without masters: the chat servers elect a time master
    /// among themselves (Bully) and it runs the Berkeley rounds.
    pub clock_sync: Option<crate::topology::ClockSync>,
    /// Every chat server of the topology, this one included, in the file's order: the first
    /// ranks highest in the election.
    pub ranks: Vec<String>,
}

impl ChatConfig {
    /// A server with the defaults: 20 messages a second, bursts of 40.
    pub fn new(name: &str) -> Self {
        ChatConfig {
            name: name.to_string(),
            peers: Vec::new(),
            masters: Vec::new(),
            users: Vec::new(),
            rate_per_sec: 20.0,
            burst: 40.0,
            seed: 1,
            secret: None,
            peer_key: String::new(),
            keep: 10_000,
            max_connections: 4096,
            clock_sync: None,
            ranks: Vec::new(),
        }
    }
}

/// What the driver hands the chat server.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A connection was accepted.
    Connected(ConnId),
    /// A message arrived on it.
    Received(ConnId, Envelope),
    /// A line that is not a message arrived on it.
    Invalid(ConnId, String),
    /// It closed.
    Disconnected(ConnId),
    /// A peer spoke plaintext to this encrypted port and was refused.
    Plaintext(String),
    /// A live delivery to it was dropped: it reads too slowly.
    Dropped(ConnId),
    /// The link this server opened to peer server `name` is up.
    PeerUp(String),
    /// That link is down.
    PeerLost(String),
    /// Peer server `name` sent this on the link.
    FromPeer(String, Envelope),
    /// Time passed.
    Tick,
}

/// What the chat server asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A reply: it must arrive (a peer that lets its queue fill up is disconnected).
    Send(ConnId, Envelope),
    /// A live delivery to each of these connections (the same message to all): dropped for a
    /// connection whose queue is full (and reported as [`Input::Dropped`]).
    Push(Vec<ConnId>, Envelope),
    /// Close a connection after what is queued (for one that closed itself: let its writer go
    /// once what it was told before is out).
    Close(ConnId),
    /// Send this on the link to peer server `name`.
    ToPeer(String, Message),
    /// Keep this entry on disk before any reply of this step goes out.
    Store(ChatEntry),
    /// Drop this entry from the disk: it is past the retention (in the same commit as the
    /// step's new entries).
    Forget((u64, String, u64)),
    /// Move this node's clock by this many milliseconds (the time master said so).
    AdjustClock(i64),
    /// Write this connection's deliveries in this encoding from now on (it asked).
    Encoding(ConnId, Encoding),
}

#[derive(Debug, Default)]
struct Conn {
    user: Option<String>,
    /// Messages it may still send now (a token bucket).
    tokens: f64,
    refilled_at: Millis,
    /// Channels it receives live (`*`: everything).
    channels: BTreeSet<String>,
    /// Whether `channels` holds `*` (asked of every connection for every entry: a flag, not a
    /// lookup).
    everything: bool,
    /// Another chat server, linked on this connection.
    peer: bool,
    /// Whether that chat server has said anything yet (and been asked for its entries).
    linked: bool,
    /// Set once it proved the cluster secret (or the peer secret).
    authenticated: bool,
    /// The handshake: the challenge sent, the name and role given in `hello`.
    handshake: crate::protocol::handshake::Challenger,
    /// Set once it proved the peer secret.
    trusted: Option<trust::Trusted>,
    /// Live deliveries to it dropped because it reads too slowly.
    dropped: u64,
    /// The launcher subscribed to this server's events on it.
    events: bool,
}

/// Where a message to another chat server goes: a connection it opened, or a link this one did.
#[derive(Debug, Clone)]
enum Link {
    Conn(ConnId),
    Peer(String),
}

/// The chat server.
pub struct ChatServer {
    config: ChatConfig,
    clock: LamportClock,
    now: Millis,
    /// The history, in the order every replica agrees on.
    entries: BTreeMap<(u64, String, u64), ChatEntry>,
    /// The keys of each channel's posts (and each pair's private messages), to drop the
    /// oldest past the retention.
    streams: HashMap<String, BTreeSet<(u64, String, u64)>>,
    /// Of each origin, the sequence numbers of the entries kept (what the retention dropped
    /// is held but not kept: a peer asking for it is told it is forgotten).
    retained: HashMap<String, BTreeSet<u64>>,
    /// For each origin server, the sequence numbers held: every one up to `.0`, and these.
    held: HashMap<String, (u64, BTreeSet<u64>)>,
    /// Channels and who created them.
    channels: BTreeMap<String, String>,
    conns: BTreeMap<ConnId, Conn>,
    online: BTreeMap<String, ConnId>,
    tokens: HashMap<String, String>,
    own_seq: u64,
    /// Links this server opened that are up.
    links: BTreeSet<String>,
    dropped: u64,
    throttled: u64,
    /// Connections refused for speaking plaintext to this encrypted port.
    plaintext: u64,
    /// Connections closed to make room for new ones.
    evicted: u64,
    rng: SmallRng,
    out: Vec<Output>,
    /// Origins with a gap a sync was asked for: one request per gap, not one per replica that
    /// arrives after it (if the answer is lost too, anti-entropy asks again).
    asked_for_gap: BTreeSet<String>,
    /// When every link was last asked for a sync.
    last_anti_entropy: Millis,
    /// Per (author, request) of a `chat_once`: the entry that stands for it — the first in
    /// the history's order of those made for it. Another made for the same request (the
    /// first server died before answering, and its entry reached the others later) is kept,
    /// so every server holds the same entries, but shown to nobody.
    requests: HashMap<(String, String), (u64, String, u64)>,
    /// The request a `chat_once` being carried out is for.
    request: Option<String>,
    /// Entries held back as a second one for a request.
    duplicates: u64,
    /// Its wall clock (milliseconds since 1970), as the driver read it for this step.
    wall_ms: i64,
    /// The time master among the chat servers (without masters, under `policy clock`).
    time: time::TimeMastery,
}

/// The (author, request) a `chat_once` entry was made for.
fn request_of(entry: &ChatEntry) -> Option<(String, String)> {
    let author = match &entry.body {
        ChatBody::Channel { by, .. } => by,
        ChatBody::Post { from, .. } | ChatBody::Direct { from, .. } => from,
    };
    Some((author.to_string(), entry.request.as_ref()?.to_string()))
}

/// Which retention an entry counts against: its channel's, or its pair of users' (channel
/// creations are kept: one per channel).
fn stream_of(body: &ChatBody) -> Option<String> {
    match body {
        ChatBody::Channel { .. } => None,
        ChatBody::Post { channel, .. } => Some(format!("#{channel}")),
        ChatBody::Direct { from, to, .. } => {
            let (a, b) = if from <= to { (from, to) } else { (to, from) };
            Some(format!("@{a}\n{b}"))
        }
    }
}

/// How often a server asks each link for what it lacks, gap or no gap.
pub const ANTI_ENTROPY_MS: Millis = 5_000;

impl ChatServer {
    /// A server with no history.
    pub fn new(config: ChatConfig) -> Self {
        ChatServer {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            clock: LamportClock::default(),
            now: 0,
            entries: BTreeMap::new(),
            streams: HashMap::new(),
            retained: HashMap::new(),
            held: HashMap::new(),
            channels: BTreeMap::new(),
            conns: BTreeMap::new(),
            online: BTreeMap::new(),
            tokens: HashMap::new(),
            own_seq: 0,
            links: BTreeSet::new(),
            dropped: 0,
            throttled: 0,
            plaintext: 0,
            evicted: 0,
            out: Vec::new(),
            asked_for_gap: BTreeSet::new(),
            last_anti_entropy: 0,
            requests: HashMap::new(),
            request: None,
            duplicates: 0,
            wall_ms: 0,
            time: Default::default(),
        }
    }

    /// Takes back a history kept on disk.
    pub fn restore(&mut self, entries: Vec<ChatEntry>) {
        for entry in entries {
            self.insert(entry);
        }
        self.own_seq = self.held.get(&self.config.name).map_or(0, |(upto, extra)| {
            extra
                .iter()
                .next_back()
                .copied()
                .unwrap_or(*upto)
                .max(*upto)
        });
        if !self.entries.is_empty() {
            info!(entries = self.entries.len(), "chat history restored");
        }
    }

    /// The driver's reading of this node's wall clock, before each step (what a time master's
    /// `clock_poll` is answered with).
    pub fn set_wall_clock(&mut self, unix_ms: i64) {
        self.wall_ms = unix_ms;
    }

    /// The history, in order.
    pub fn entries(&self) -> impl Iterator<Item = &ChatEntry> {
        self.entries.values()
    }

    /// Whether an entry is shown: not a second one for a request another stands for.
    pub(super) fn shown(&self, entry: &ChatEntry) -> bool {
        request_of(entry).is_none_or(|id| self.requests.get(&id) == Some(&entry.key()))
    }

    /// The entry that stands for request `request` of `user`, if any.
    pub(super) fn made_for(&self, user: &str, request: &str) -> Option<&ChatEntry> {
        let key = self
            .requests
            .get(&(user.to_string(), request.to_string()))?;
        self.entries.get(key)
    }

    /// Feeds one input at time `now` and returns what to do.
    pub fn step(&mut self, now: Millis, input: Input) -> Vec<Output> {
        self.now = now.max(self.now);
        match input {
            Input::Connected(conn) => {
                self.make_room();
                self.conns.insert(
                    conn,
                    Conn {
                        tokens: self.config.burst,
                        refilled_at: now,
                        ..Conn::default()
                    },
                );
            }
            Input::Received(conn, envelope) => self.received(conn, envelope),
            Input::Invalid(conn, reason) => self.error(conn, reason),
            Input::Disconnected(conn) => self.disconnected(conn),
            Input::Plaintext(peer) => {
                self.plaintext += 1;
                warn!(
                    %peer,
                    refused = self.plaintext,
                    "refused a plaintext connection: this port is encrypted (TLS)"
                );
            }
            Input::Dropped(conn) => {
                self.dropped += 1;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.dropped += 1;
                    // Said in the log (and so in the console) at the first drop, then every
                    // thousand: a slow reader is visible without a line per lost message.
                    if c.dropped == 1 || c.dropped.is_multiple_of(1000) {
                        let who = c
                            .user
                            .clone()
                            .unwrap_or_else(|| format!("connection {conn}"));
                        warn!(
                            conn,
                            dropped = c.dropped,
                            total = self.dropped,
                            "{who} reads too slowly: {} live deliveries to it dropped",
                            c.dropped
                        );
                    }
                }
            }
            Input::PeerUp(peer) => {
                info!(%peer, "linked to the chat server");
                self.links.insert(peer.clone());
                let have = self.held_upto();
                self.send_link(&Link::Peer(peer.clone()), Message::ChatSync { have });
                // A server that links to the time master learns it at once.
                if self.time_master() == Some(self.config.name.as_str()) {
                    self.out.push(Output::ToPeer(peer, Message::Victory));
                }
            }
            Input::PeerLost(peer) => {
                self.links.remove(&peer);
                self.time_peer_lost(&peer);
            }
            Input::FromPeer(peer, envelope) => {
                let _ = self.clock.observe(envelope.clock);
                match envelope.message {
                    Message::ClockReading { round, clock_ms } => {
                        self.clock_reading(&peer, round, clock_ms)
                    }
                    ref m @ (Message::Election | Message::Answer | Message::Victory) => {
                        self.election_message(&peer, m)
                    }
                    message => self.on_link(Link::Peer(peer), message),
                }
            }
            Input::Tick => {
                self.tick_time();
                if now.saturating_sub(self.last_anti_entropy) >= ANTI_ENTROPY_MS {
                    self.last_anti_entropy = now;
                    let have = self.held_upto();
                    for link in self.all_links() {
                        self.send_link(&link, Message::ChatSync { have: have.clone() });
                    }
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    // ----- entries -----

    /// Makes an entry of this server's, keeps it, and passes it on.
    fn new_entry(&mut self, body: ChatBody) -> ChatEntry {
        self.own_seq += 1;
        let entry = ChatEntry {
            clock: self.clock.tick(),
            server: self.config.name.as_str().into(),
            seq: self.own_seq,
            body,
            request: self.request.as_deref().map(Into::into),
        };
        self.accept_entry(entry.clone());
        entry
    }

    /// An entry this server did not have: kept, stored, delivered live, passed to followers.
    fn accept_entry(&mut self, entry: ChatEntry) {
        // A second entry for a request one already stands for: kept and passed on, never
        // delivered (its twin was).
        let twin = request_of(&entry).is_some_and(|id| self.requests.contains_key(&id));
        if !self.insert(entry.clone()) {
            return;
        }
        if twin {
            self.duplicates += 1;
            info!(entry = %entry.key().1, seq = entry.seq, "a second entry for one request: shown to nobody");
        }
        self.out.push(Output::Store(entry.clone()));
        let deliver: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(conn, c)| match &entry.body {
                _ if c.peer || twin => false,
                // Private messages go to their recipient, and to whoever may watch them all.
                ChatBody::Direct { to, .. } => {
                    self.online.get(to.as_str()) == Some(conn)
                        || (c.everything && self.sees_everything(c))
                }
                ChatBody::Post { channel, .. } => {
                    c.everything || c.channels.contains(channel.as_str())
                }
                ChatBody::Channel { .. } => c.everything,
            })
            .map(|(conn, _)| *conn)
            .collect();
        // One message to many subscribers is one send event (one tick of the clock), so the
        // driver can encode it once for all of them.
        if !deliver.is_empty() {
            let envelope = self.envelope(Message::ChatMessage {
                entry: Box::new(entry.clone()),
            });
            self.out.push(Output::Push(deliver, envelope));
        }
        for link in self.all_links() {
            self.send_link(
                &link,
                Message::ChatReplica {
                    entry: Box::new(entry.clone()),
                },
            );
        }
    }

    /// Of `origin`, every entry up to `seq` is held (or gone for good): a gap there closes.
    pub(super) fn mark_held_upto(&mut self, origin: &str, seq: u64) {
        let Some((upto, extra)) = self.held.get_mut(origin) else {
            return;
        };
        // Only a gap below an entry this server has can close: a peer cannot make it skip
        // entries still to come.
        let Some(ceiling) = extra.last().map(|last| last - 1) else {
            return;
        };
        let seq = seq.min(ceiling);
        if seq <= *upto {
            return;
        }
        *upto = seq;
        extra.retain(|s| *s > seq);
        while extra.remove(&(*upto + 1)) {
            *upto += 1;
        }
        if extra.is_empty() {
            self.asked_for_gap.remove(origin);
        }
    }

    /// Adds an entry to the history; false if it was already there.
    fn insert(&mut self, entry: ChatEntry) -> bool {
        let (upto, extra) = self.held.entry(entry.server.to_string()).or_default();
        if entry.seq <= *upto || extra.contains(&entry.seq) {
            return false;
        }
        extra.insert(entry.seq);
        while extra.remove(&(*upto + 1)) {
            *upto += 1;
        }
        self.clock.advance_to(entry.clock);
        if let ChatBody::Channel { channel, by } = &entry.body {
            self.channels
                .entry(channel.to_string())
                .or_insert_with(|| by.to_string());
        }
        let key = entry.key();
        if let Some(id) = request_of(&entry) {
            let standing = self.requests.entry(id).or_insert_with(|| key.clone());
            if key < *standing {
                *standing = key.clone();
            }
        }
        let stream = stream_of(&entry.body);
        self.retained
            .entry(entry.server.to_string())
            .or_default()
            .insert(entry.seq);
        self.entries.insert(key.clone(), entry);
        if let Some(stream) = stream {
            let keys = self.streams.entry(stream).or_default();
            keys.insert(key.clone());
            // Past the retention, the oldest goes (the origin's sequence numbers still say
            // it was held, so no peer's sync brings it back).
            let mut kept = true;
            while keys.len() > self.config.keep.max(1) {
                if let Some(oldest) = keys.pop_first() {
                    if let Some(gone) = self.entries.remove(&oldest)
                        && let Some(id) = request_of(&gone)
                        && self.requests.get(&id) == Some(&oldest)
                    {
                        self.requests.remove(&id);
                    }
                    if let Some(seqs) = self.retained.get_mut(&oldest.1) {
                        seqs.remove(&oldest.2);
                    }
                    if oldest == key {
                        // A late copy of an entry already past the retention: not kept.
                        kept = false;
                    } else {
                        self.out.push(Output::Forget(oldest));
                    }
                }
            }
            return kept;
        }
        true
    }

    // ----- helpers -----

    /// A new connection is coming: if the table is full, the oldest connection that never
    /// logged in (nor linked as a chat server) is closed, so a flood of silent connections
    /// cannot lock out the users.
    fn make_room(&mut self) {
        if self.conns.len() < self.config.max_connections.max(1) {
            return;
        }
        let victim = self
            .conns
            .iter()
            .find(|(_, c)| c.user.is_none() && !c.peer && c.trusted.is_none())
            .map(|(id, _)| *id);
        if let Some(victim) = victim {
            self.evicted += 1;
            debug!(
                conn = victim,
                "too many connections: a silent one is closed"
            );
            self.error(
                victim,
                "too many connections: this one never logged in and is closed".to_string(),
            );
            self.conns.remove(&victim);
            self.out.push(Output::Close(victim));
        }
    }

    /// The most connections it keeps.
    pub fn max_connections(&self) -> usize {
        self.config.max_connections.max(1)
    }

    /// Entries kept, in all.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn envelope(&mut self, message: Message) -> Envelope {
        Envelope {
            from: self.config.name.as_str().into(),
            clock: self.clock.tick(),
            term: None,
            message,
        }
    }

    fn reply(&mut self, conn: ConnId, message: Message) {
        let envelope = self.envelope(message);
        self.out.push(Output::Send(conn, envelope));
    }

    fn error(&mut self, conn: ConnId, message: String) {
        debug!(conn, %message, "chat: refused");
        self.reply(conn, Message::Error { message });
    }
}

#[cfg(test)]
mod tests;
