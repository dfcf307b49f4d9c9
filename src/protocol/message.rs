//! Typed messages: what a frame means.
//!
//! Every frame of the native protocol is one JSON object: an [`Envelope`] with the sender's name
//! (`from`), its Lamport clock (`clock`), the coordinator's term where it applies (`term`), and a
//! [`Message`] whose `type` field says which one it is. On input all three envelope fields may be
//! left out, so that a person typing into `nc` only writes `{"type":"ping"}`.
//! `docs/PROTOCOL.md` documents every message with an example.

use std::fmt;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub use crate::cluster::event::ClusterEvent;
pub use crate::cluster::job::{JobCounts, JobId, JobState, JobView, NotAJobId, NotAJobState};
pub use crate::cluster::worker::{Health, StatusReport, WorkerCounts, WorkerView};

/// A message with its sender, Lamport clock and term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Who sent it: a node name (`worker-2`), a user, or empty when unknown.
    #[serde(default)]
    pub from: CompactString,
    /// The sender's Lamport clock when it sent this.
    #[serde(default)]
    pub clock: u64,
    /// The coordinator term the sender is in, for messages to or from a coordinator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// What it says.
    #[serde(flatten)]
    pub message: Message,
}

impl Envelope {
    /// Encodes as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string and no value is a
        // float that could be NaN.
        let mut out = Vec::with_capacity(128);
        let written = super::hot_write::envelope(&mut out, self)
            .map_err(|e| e.to_string())
            .and_then(|()| String::from_utf8(out).map_err(|e| e.to_string()));
        written.unwrap_or_else(|e| {
            format!(r#"{{"type":"error","message":"tcluster could not encode a message: {e}"}}"#)
        })
    }
}

/// Every message of the native protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    // ----- handshake -----
    /// First message of a node when the cluster has a secret: who it is and a nonce for the
    /// coordinator to prove it knows the secret too.
    Hello {
        /// What the peer is.
        role: PeerRole,
        /// A random string; the coordinator answers with a proof over it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// The coordinator's answer to `hello` when the cluster has a secret.
    Challenge {
        /// The peer must prove it knows the secret by an HMAC over this.
        nonce: String,
        /// The coordinator's own proof over the peer's nonce.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<String>,
    },
    /// The peer's proof: HMAC-SHA256 of the secret over the challenge.
    Auth {
        /// Hex-encoded HMAC.
        proof: String,
    },
    /// The handshake succeeded (or was not needed).
    Welcome {
        /// The coordinator's name.
        coordinator: String,
        /// How often workers should send heartbeats, in milliseconds.
        heartbeat_ms: u64,
    },

    // ----- worker and coordinator -----
    /// A worker joins (or joins again) with its number of job slots and the jobs it is running.
    Register {
        /// How many jobs it runs at once.
        slots: u32,
        /// Jobs it is already running (after a reconnect), so they are not run twice.
        #[serde(default)]
        running: Vec<JobId>,
        /// A lent worker introduces itself with its owner: the cluster that lent it (absent
        /// at home).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// Coordinator to worker: registration accepted.
    Registered {
        /// How often to send heartbeats, in milliseconds.
        heartbeat_ms: u64,
        /// With `policy heartbeat { transport udp }`: send heartbeats as UDP datagrams to the
        /// address you are connected to, each carrying this token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        udp_token: Option<String>,
    },
    /// A worker is alive; `running` lists its jobs (absent from classic workers).
    Heartbeat {
        /// Jobs it is running, if it says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        running: Option<Vec<JobId>>,
        /// In a datagram: the token of its registration (`registered`'s `udp_token`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Coordinator to worker: run this job.
    Assign {
        job: JobId,
        /// Its data, as submitted.
        data: String,
        /// 1 for the first run, 2 for the second …
        attempt: u32,
    },
    /// Coordinator to worker: stop this job; another worker has finished it.
    Cancel { job: JobId },
    /// Worker to coordinator: the job has started. Optional when its result goes in the same
    /// write: a result ends a job assigned to its worker, started or not.
    Started { job: JobId },
    /// Worker to coordinator: how far a long job has come.
    Progress {
        job: JobId,
        /// 0 to 100.
        percent: u8,
    },
    /// Worker to coordinator: the job finished with this result. The built-in worker sends it
    /// again until the coordinator answers `result_ack`.
    JobDone {
        job: JobId,
        result: String,
        /// The run it is the result of (the `attempt` of its `assign`), so that a result sent
        /// again is not taken for a second run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    /// Worker to coordinator: the job failed. It is retried up to the retry policy's attempts.
    /// Sent again until acknowledged, like `job_done`.
    JobFailed {
        job: JobId,
        /// Why.
        error: String,
        /// The run that failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    /// Coordinator to worker: the outcome of this run of the job is kept (journaled, and
    /// replicated when replication is synchronous); the worker may forget it.
    ResultAck {
        job: JobId,
        /// The run, as the result said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },

    // ----- client and coordinator -----
    /// Log in with an account from the topology; answered by `logged_in`.
    Login {
        /// Account name.
        user: String,
        password: String,
    },
    /// A token to put in `submit`.
    LoggedIn {
        token: String,
        /// `operator` or `student`.
        role: String,
    },
    /// Submit jobs; answered by `accepted`.
    Submit {
        /// The job's data: `sleep 2s`, `cpu 100000`, `echo hi`, `fail why`, or any text.
        data: String,
        /// How many copies (default 1).
        #[serde(default = "one")]
        count: u32,
        /// Higher runs first (default 0).
        #[serde(default)]
        priority: i32,
        /// From `logged_in`, when the topology has accounts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Send `job_finished` on this connection when each job ends.
        #[serde(default)]
        notify: bool,
    },
    /// The ids of submitted jobs.
    Accepted {
        /// In submission order; at most [`ACCEPTED_LISTED`] of them, so the line stays short.
        jobs: Vec<JobId>,
        /// When more jobs were accepted than listed, the last one: the ids of one submission are
        /// consecutive, from the first listed to this one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last: Option<JobId>,
    },
    /// A job ended (sent to its submitter when it asked for `notify`).
    JobFinished {
        job: JobId,
        /// `completed` or `failed`.
        state: JobState,
        /// The result, or the last error.
        result: String,
    },
    /// Ask for one job (`job` given) or the whole cluster.
    Status {
        /// The job, or absent for the cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<JobId>,
    },
    /// One job.
    JobInfo { job: Box<JobView> },
    /// The cluster at a glance.
    StatusReport { report: Box<StatusReport> },
    /// List jobs, optionally of one state only.
    Jobs {
        /// Only jobs in this state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<JobState>,
        /// At most this many, newest last (default 1000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        /// Only jobs older than this one: the next page, as `job_list.before` said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<JobId>,
    },
    /// Jobs.
    JobList {
        /// The jobs, oldest first.
        jobs: Vec<JobView>,
        /// How many matched before `limit` was applied.
        total: usize,
        /// Older matching jobs did not fit in this line (it stays under the frame limit): ask
        /// again with `before` set to this for the next page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<JobId>,
    },
    /// List workers.
    Workers,
    /// Workers.
    WorkerList {
        /// In name order.
        workers: Vec<WorkerView>,
    },
    /// Receive every cluster event on this connection from now on. With `history`, the
    /// coordinator first sends what it has applied so far, as `history` parts, so a watcher
    /// that comes late (or to a cluster resumed from its journal) starts from the same state.
    Subscribe {
        /// Send the durable events so far first.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        history: bool,
    },
    /// Part of a coordinator's history of durable events, oldest first, for a subscriber that
    /// asked for it; parts stay well under the line limit.
    History {
        events: Vec<ClusterEvent>,
        /// True on the last part (possibly empty): live `event`s follow.
        done: bool,
    },
    /// A backup asks the primary for its durable events after the first `after`, then every new
    /// one as it happens.
    Follow {
        /// How many events the backup already has.
        after: u64,
    },
    /// Primary to backup: one durable event, numbered from 0 (a `snapshot` event starts the
    /// backup over: its state is replaced and its history numbered from that `seq`).
    Replica {
        /// Its position in the primary's history.
        seq: u64,
        event: Arc<ClusterEvent>,
    },
    /// Backup to primary: every replica up to `seq` is applied (and journaled).
    ReplicaAck {
        /// The highest replica applied.
        seq: u64,
        /// Replicas after `seq` that never arrived while later ones did (at most 64): the
        /// primary sends these again. Empty when nothing is missing.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        missing: Vec<u64>,
        /// The seq of the primary's snapshot this backup started over from, if it did: a
        /// primary that sent one waits for acknowledgements that say so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seeded: Option<u64>,
    },
    /// Bully election, from a master that lost its primary to each master that outranks it:
    /// are you alive?
    Election,
    /// The reply to `election` of a master that outranks the sender and is alive: wait for my
    /// `victory`.
    Answer,
    /// "I am the primary, in the envelope's term": announced by a master that took over (the
    /// Bully algorithm's *coordinator* message), and the primary's reply to an `election`. A
    /// master in a lower term steps down and follows the sender.
    Victory,
    /// A coordinator that is not serving (a backup) tells a worker or client where to go.
    NotPrimary {
        /// The primary, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primary: Option<String>,
    },
    /// One cluster event, to subscribers.
    Event { event: Arc<ClusterEvent> },

    // ----- clusters lending workers (between the primaries of two clusters) -----
    /// 1. Borrower to owner: lend me up to `want` idle workers; send them to `address`.
    WorkerRequest {
        /// The borrowing cluster.
        cluster: String,
        /// Where the borrower's primary listens.
        address: String,
        /// How many workers it would take.
        want: u32,
    },
    /// 2a. Owner to borrower: these workers are on their way (each gets a `redirect`).
    Available {
        /// The lending cluster.
        cluster: String,
        workers: Vec<String>,
    },
    /// 2b. Owner to borrower: none to lend, and why.
    Unavailable { cluster: String, reason: String },
    /// 3. Owner to one of its workers: go and work for cluster `cluster`, whose primary `to`
    ///    listens at `address`; introduce yourself there with your owner.
    Redirect {
        to: String,
        cluster: String,
        address: String,
    },
    /// 4. Borrower to owner: these lent workers are no longer needed (`lost`: these died while
    ///    lent; their jobs were requeued by the borrower).
    CommandRelease {
        cluster: String,
        workers: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lost: Vec<String>,
    },
    /// 5. Owner to borrower: the release is noted.
    ReleaseAck {
        cluster: String,
        workers: Vec<String>,
    },
    /// 6. Borrower to a lent worker: go home to cluster `cluster`, whose primary `to` listens
    ///    at `address`.
    Return {
        to: String,
        cluster: String,
        address: String,
    },
    /// 7. Owner to borrower: these workers are back home; their loans are over.
    ReleaseCompleted {
        cluster: String,
        workers: Vec<String>,
    },
    /// The primaries of two clusters watch each other: are you alive?
    PeerHeartbeat { cluster: String },
    /// The reply to `peer_heartbeat`: alive, serving cluster `cluster`.
    PeerAlive { cluster: String },
    // ----- clocks (policy clock: Berkeley) -----
    /// Time master to a node: what does your clock read? (`round` numbers the rounds.)
    ClockPoll { round: u64 },
    /// A bot to the primary: read my clock too (it has no other connection the time master
    /// could poll it on). Only from a bot of the topology, by its node name in `from`.
    ClockJoin,
    /// A node's answer: its clock, in milliseconds since 1970-01-01 UTC.
    ClockReading { round: u64, clock_ms: i64 },
    /// Time master to a node: move your clock by `adjust_ms` (ahead at once; back by running
    /// slow until it is absorbed, so it never runs backwards).
    ClockAdjust { round: u64, adjust_ms: i64 },
    // ----- chat -----
    /// Log in to a chat server by name; with accounts in the topology, with a password (or
    /// the token a server gave before).
    ChatLogin {
        /// The name to use.
        user: String,
        /// The account's password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// A token from an earlier login.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Logged in.
    ChatWelcome {
        /// The name.
        user: String,
        /// The chat server.
        server: String,
        /// A token to log in again without the password (with accounts only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// Who is logged in on this server?
    ChatUsers,
    /// The users logged in on this server.
    ChatUserList {
        /// Their names, sorted.
        users: Vec<String>,
    },
    /// Create a channel (creating one that exists is not an error).
    ChatCreate {
        /// Its name: letters, digits, `-` and `_`, at most 32.
        channel: String,
    },
    /// Which channels are there?
    ChatChannels,
    /// Every channel.
    ChatChannelList {
        /// Their names, sorted.
        channels: Vec<String>,
    },
    /// Post to a channel.
    ChatPublish { channel: String, text: String },
    /// A private message.
    ChatDm {
        /// The recipient.
        to: String,
        text: String,
    },
    /// Receive every new post of a channel on this connection (`"*"`: every entry).
    ChatSubscribe { channel: String },
    /// How this connection's deliveries (`chat_message`) are to be sent from now on: JSON
    /// lines (the default) or MessagePack frames (see `protocol::packed`). Answered `chat_done`.
    ChatEncoding { encoding: Encoding },
    /// A `chat_publish`, `chat_dm` or `chat_create` that a broker may send twice (to a second
    /// server, when the first died before answering): it makes one entry whatever the number
    /// of servers it reaches, as each entry carries `request`.
    ChatOnce {
        /// Unique to the request (the broker's run, its client, a number).
        request: String,
        /// The request itself.
        message: Box<Message>,
    },
    /// The reply to `chat_create`, `chat_subscribe`, `chat_publish` and `chat_dm`: done, and the
    /// entry it made (if it made one).
    ChatDone {
        /// The entry made, with its clock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry: Option<Box<ChatEntry>>,
    },
    /// A new entry, to a subscriber (or a private message, to its recipient).
    ChatMessage { entry: Box<ChatEntry> },
    /// A channel's history, oldest first (or, with `with`, the private messages between the
    /// logged-in user and that user).
    ChatHistory {
        /// The channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
        /// The other party of private messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// At most this many (the latest); 1000 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// The reply to `chat_history`, in parts of at most about 48 KB: every part but the last
    /// says `more`.
    ChatHistoryList {
        /// The entries, in the order every replica agrees on.
        entries: Vec<ChatEntry>,
        /// More parts follow.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// Chat server to chat server, on a link either one opened: send me every entry I do not
    /// have (`have`: for each origin server, every sequence number up to this one). Both ends
    /// send it when the link opens, and each new entry then flows both ways as `chat_replica`.
    ChatSync {
        /// What the asking server has.
        have: std::collections::BTreeMap<String, u64>,
    },
    /// The answer to `chat_sync` was cut short: ask again.
    ChatSyncMore,
    /// Chat server to chat server, before the entries of a `chat_sync` answer: of each origin,
    /// every entry up to this sequence number that the asker lacks is past this server's
    /// retention (it held it, and dropped it): none will come, so the asker's gap is closed.
    ChatForgotten {
        upto: std::collections::BTreeMap<String, u64>,
    },
    /// Chat server to chat server: an entry.
    ChatReplica { entry: Box<ChatEntry> },
    /// A chat server's counts.
    ChatStats,
    /// The reply to `chat_stats`.
    ChatStatsReport(Box<ChatStats>),
    /// Are you there?
    Ping,
    /// Yes.
    Pong,
    /// Something was wrong with the last message; the connection stays open unless said.
    Error {
        /// What was wrong.
        message: String,
    },
}

/// A chat server's counts: the reply to `chat_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatStats {
    /// The server counted.
    pub server: String,
    /// Users logged in here.
    pub users: usize,
    /// Channels.
    pub channels: usize,
    /// Entries in the history.
    pub entries: usize,
    /// Live deliveries dropped because a subscriber read too slowly.
    pub dropped: u64,
    /// Messages refused because a client sent too many too fast.
    pub throttled: u64,
    /// Connections closed to make room (the table was full; they had not logged in).
    #[serde(default)]
    pub evicted: u64,
    /// Second entries for one `chat_once` request, kept but shown to nobody.
    #[serde(default)]
    pub duplicates: u64,
    /// Connections refused for speaking plaintext to this encrypted port.
    #[serde(default, skip_serializing_if = "crate::cluster::worker::is_zero")]
    pub plaintext: u64,
}

fn one() -> u32 {
    1
}

/// How a chat server sends a connection its deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One JSON line each, as every other message.
    #[default]
    Json,
    /// One binary frame each: a MessagePack array, the entry's fields in a fixed order.
    Msgpack,
}

/// One entry of the chat history: a channel created, a post, a private message. Every replica
/// orders the history the same way: by Lamport clock, then origin server, then its sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatEntry {
    /// The origin server's Lamport clock when it made the entry.
    pub clock: u64,
    /// The server that made it.
    pub server: CompactString,
    /// Its number among that server's entries, from 1.
    pub seq: u64,
    /// What it is.
    #[serde(flatten)]
    pub body: ChatBody,
    /// The request that made it, when a broker sent it with one (`chat_once`): a retry of the
    /// same request makes no second entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<CompactString>,
}

impl ChatEntry {
    /// The key every replica orders the history by.
    pub fn key(&self) -> (u64, String, u64) {
        (self.clock, self.server.to_string(), self.seq)
    }
}

/// What a chat entry says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatBody {
    /// A channel was created.
    Channel {
        /// Its name.
        channel: CompactString,
        /// By whom.
        by: CompactString,
    },
    /// A post to a channel.
    Post {
        channel: CompactString,
        /// The sender.
        from: CompactString,
        text: CompactString,
    },
    /// A private message.
    Direct {
        /// The sender.
        from: CompactString,
        /// The recipient.
        to: CompactString,
        text: CompactString,
    },
}

impl fmt::Display for ChatEntry {
    /// One line: clock, origin, and what it says.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} {}] ", self.clock, self.server)?;
        match &self.body {
            ChatBody::Channel { channel, by } => write!(f, "#{channel} created by {by}"),
            ChatBody::Post {
                channel,
                from,
                text,
            } => write!(f, "#{channel} <{from}> {text}"),
            ChatBody::Direct { from, to, text } => write!(f, "{from} → {to}: {text}"),
        }
    }
}

impl Message {
    /// Its `type`, as the wire spells it (`job_done`).
    pub fn kind(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}

/// What a peer is, as it says in `hello`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    /// Runs jobs.
    Worker,
    /// Submits jobs and asks questions.
    Client,
    /// A console or another watcher.
    Console,
    /// Another coordinator (proves the peer secret).
    Master,
    /// Another chat server (proves the peer secret).
    ChatPeer,
    /// The launcher: its scenario steps and the console's commands (proves the peer secret).
    Supervisor,
}

impl PeerRole {
    /// Whether this role proves the peer secret rather than the cluster secret.
    pub fn is_peer(self) -> bool {
        matches!(
            self,
            PeerRole::Master | PeerRole::ChatPeer | PeerRole::Supervisor
        )
    }
}

/// The longest result (or error) of a job a coordinator keeps, in bytes as JSON writes it
/// (escapes included). Job data is at most 4 KiB of plain text, so a job with both fits every
/// message that carries it — a replica, a journal entry, a `job_info` — well inside
/// [`crate::protocol::frame::MAX_LINE`].
pub const MAX_RESULT: usize = 16 * 1024;

/// How many bytes `c` takes inside a JSON string.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` as it is kept: whole when it fits in [`MAX_RESULT`] bytes of JSON, else cut at a
/// character boundary and marked with how long it was.
pub fn fit_result(text: String) -> String {
    let total: usize = text.chars().map(json_len).sum();
    if total <= MAX_RESULT {
        return text;
    }
    let marker = format!(" … (cut: {} bytes in all)", text.len());
    let budget = MAX_RESULT - marker.len();
    let mut used = 0;
    let end = text
        .char_indices()
        .find(|(_, c)| {
            used += json_len(*c);
            used > budget
        })
        .map_or(text.len(), |(i, _)| i);
    format!("{}{marker}", &text[..end])
}

/// The most job ids an `accepted` message lists (a submission may have 100,000).
pub const ACCEPTED_LISTED: usize = 1000;

/// Every id an `accepted` message stands for: those listed, or the whole range to `last`.
pub fn accepted_ids(jobs: &[JobId], last: Option<JobId>) -> Vec<JobId> {
    match (jobs.first(), last) {
        (Some(first), Some(last)) if last.0 >= first.0 => (first.0..=last.0).map(JobId).collect(),
        _ => jobs.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message is moved a few times on its way (read, stepped, queued, written): a large
    /// and rare variant keeps its content in a `Box` (or an `Arc`, shared with the history),
    /// so that the common ones are not copied at the size of the largest.
    #[test]
    fn messages_stay_small() {
        let (message, envelope) = (size_of::<Message>(), size_of::<Envelope>());
        assert!(message <= 80, "a message takes {message} bytes");
        assert!(envelope <= 128, "an envelope takes {envelope} bytes");
    }

    #[test]
    fn envelope_fields_may_be_left_out_by_hand() {
        let env: Envelope = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert_eq!(env.message, Message::Ping);
        assert_eq!((env.from.as_str(), env.clock, env.term), ("", 0, None));
    }

    #[test]
    fn job_ids_are_written_job_n_and_read_leniently() {
        let env = Envelope {
            from: "coordinator".into(),
            clock: 7,
            term: Some(1),
            message: Message::Assign {
                job: JobId(3),
                data: "sleep 1s".into(),
                attempt: 1,
            },
        };
        let json = env.to_json();
        assert_eq!(
            json,
            r#"{"from":"coordinator","clock":7,"term":1,"type":"assign","job":"JOB-3","data":"sleep 1s","attempt":1}"#
        );
        assert_eq!(serde_json::from_str::<Envelope>(&json).unwrap(), env);
        let by_number: Envelope = serde_json::from_str(r#"{"type":"status","job":3}"#).unwrap();
        assert_eq!(
            by_number.message,
            Message::Status {
                job: Some(JobId(3))
            }
        );
        assert!("JOB-x".parse::<JobId>().is_err());
    }

    #[test]
    fn submit_defaults() {
        let env: Envelope = serde_json::from_str(r#"{"type":"submit","data":"echo hi"}"#).unwrap();
        assert_eq!(
            env.message,
            Message::Submit {
                data: "echo hi".into(),
                count: 1,
                priority: 0,
                token: None,
                notify: false
            }
        );
    }
}
