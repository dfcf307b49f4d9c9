//! The console's state: plain data, changed only by [`super::update::update`], read by the
//! drawing code. Long lists keep bounded, indexed storage: the log is a ring with absolute line
//! numbers, jobs are a map plus a filtered view rebuilt when the filter or the data changes.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use ratatui_textarea::TextArea;

use super::config::Config;
use crate::protocol::message::{ChatBody, ChatEntry, JobCounts, JobId, JobState};
use crate::supervisor::NodeState;
use crate::supervisor::logs::{Level, LogLine};
use crate::supervisor::shaper::MessageSeen;
use crate::supervisor::timeline::TimelineEvent;

/// Heartbeat ages kept per node, for its sparkline.
pub const HEARTBEAT_HISTORY: usize = 40;
/// Timeline entries kept.
pub const TIMELINE_CAP: usize = 10_000;
/// Messages kept for the space-time diagram.
pub const MESSAGES_CAP: usize = 4_000;
/// Seconds of throughput history.
pub const THROUGHPUT_HISTORY: usize = 120;

/// The panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    /// Nodes and their health.
    Nodes,
    /// The job queue.
    Jobs,
    /// Chat channels.
    Chat,
    /// Every node's log.
    Logs,
    /// Nodes and links (its own view).
    Map,
    /// Faults and messages (its own view).
    Timeline,
}

impl Pane {
    /// The panes of the overview, in focus order.
    pub const OVERVIEW: [Pane; 4] = [Pane::Nodes, Pane::Jobs, Pane::Chat, Pane::Logs];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Nodes => "Nodes",
            Pane::Jobs => "Jobs",
            Pane::Chat => "Chat",
            Pane::Logs => "Logs",
            Pane::Map => "Map",
            Pane::Timeline => "Timeline",
        }
    }
}

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Nodes, Jobs, Chat and Logs at once.
    Overview,
    /// The map, full screen.
    Map,
    /// The timeline and space-time diagram, full screen.
    Timeline,
}

/// What the keyboard is doing.
#[derive(Debug)]
pub enum Mode {
    /// Keys are commands.
    Normal,
    /// Typing a `:` command.
    Command(TextArea<'static>),
    /// Typing a log search.
    Search(TextArea<'static>),
    /// Filling the submit form (boxed: it is much larger than the other modes).
    Submit(Box<SubmitForm>),
    /// Typing a chat message.
    Chat(TextArea<'static>),
    /// Waiting for y/n on a destructive action.
    Confirm(crate::topology::Action),
    /// The help overlay.
    Help,
    /// One job's history.
    JobDetail(JobId),
}

/// The `s` form.
#[derive(Debug)]
pub struct SubmitForm {
    /// Data, count, priority.
    pub fields: [TextArea<'static>; 3],
    /// The field being edited.
    pub field: usize,
    /// Fields typed into (a field not yet touched is replaced by the first character typed).
    pub touched: [bool; 3],
}

impl SubmitForm {
    /// Labels of the fields.
    pub const LABELS: [&'static str; 3] = ["data", "count", "priority"];

    /// An empty form with sensible defaults.
    pub fn new() -> Self {
        let field = |text: &str| {
            let mut area = TextArea::new(vec![text.to_string()]);
            area.move_cursor(ratatui_textarea::CursorMove::End);
            area
        };
        SubmitForm {
            fields: [field("sleep 2s"), field("1"), field("0")],
            field: 0,
            touched: [false; 3],
        }
    }
}

impl Default for SubmitForm {
    fn default() -> Self {
        Self::new()
    }
}

/// One node's row.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Its name.
    pub name: String,
    /// `master`, `worker` …
    pub kind: String,
    /// `primary`, `backup`, `worker` …
    pub role: String,
    /// Its state.
    pub state: NodeState,
    /// Its process id.
    pub pid: Option<u32>,
    /// Milliseconds since its coordinator last heard from it.
    pub heartbeat_age_ms: Option<u64>,
    /// Recent heartbeat ages, oldest first.
    pub heartbeat_history: VecDeque<u64>,
    /// Jobs running.
    pub running: u32,
    /// Job slots.
    pub slots: u32,
    /// Jobs done.
    pub done: u64,
    /// Its Lamport clock, as last seen.
    pub clock: u64,
    /// CPU use, percent of one core.
    pub cpu: Option<f32>,
    /// Resident memory, bytes.
    pub memory: Option<u64>,
}

impl NodeRow {
    /// A row for a node not heard from yet.
    pub fn new(name: &str, kind: &str, role: &str) -> Self {
        NodeRow {
            name: name.to_string(),
            kind: kind.to_string(),
            role: role.to_string(),
            state: NodeState::Starting,
            pid: None,
            heartbeat_age_ms: None,
            heartbeat_history: VecDeque::new(),
            running: 0,
            slots: 0,
            done: 0,
            clock: 0,
            cpu: None,
            memory: None,
        }
    }
}

/// One job's row, with its history.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// Its id.
    pub id: JobId,
    /// Its data.
    pub data: String,
    /// Its state.
    pub state: JobState,
    /// The worker running it (or that last did).
    pub worker: Option<String>,
    /// Runs so far.
    pub attempts: u32,
    /// When submitted (run milliseconds).
    pub submitted_ms: u64,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// Progress 0–100.
    pub progress: u8,
    /// Result or error.
    pub outcome: Option<String>,
    /// What happened to it: (run milliseconds, description).
    pub history: Vec<(u64, String)>,
}

/// Jobs, counted and filtered.
#[derive(Debug, Default)]
pub struct Jobs {
    /// Every job by id.
    pub all: BTreeMap<JobId, JobRow>,
    /// Jobs per state.
    pub counts: JobCounts,
    /// Show only this state.
    pub filter: Option<JobState>,
    /// Ids shown, in order (rebuilt when stale).
    pub visible: Vec<JobId>,
    /// The visible list needs rebuilding.
    pub stale: bool,
    /// Jobs completed in each of the last seconds, oldest first.
    pub throughput: VecDeque<u64>,
    /// Results that arrived for jobs already completed (they ran twice).
    pub duplicates: u64,
}

impl Jobs {
    /// Rebuilds the visible list if needed.
    pub fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        self.visible = self
            .all
            .values()
            .filter(|j| self.filter.is_none_or(|f| j.state == f))
            .map(|j| j.id)
            .collect();
        self.stale = false;
    }
}

/// The log: a ring of lines with absolute numbers, and how it is viewed.
#[derive(Debug)]
pub struct Logs {
    /// The lines, oldest first.
    pub lines: VecDeque<LogLine>,
    /// Most lines kept.
    pub cap: usize,
    /// Lines that fell off the front (so line `n` is at `n - first`).
    pub first: u64,
    /// Stick to the newest line.
    pub follow: bool,
    /// When not following: the absolute number of the bottom line shown.
    pub bottom: u64,
    /// Wrap long lines.
    pub wrap: bool,
    /// Hide lines below this level.
    pub min_level: Level,
    /// Show only this node.
    pub node: Option<String>,
    /// The search, its matches (absolute numbers) and the current one.
    pub search: Option<Search>,
    /// A colour index per node.
    pub colours: HashMap<Arc<str>, usize>,
}

/// A log search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// What is searched (case-insensitive).
    pub query: String,
    /// Matching lines, oldest first.
    pub matches: Vec<u64>,
    /// The match shown.
    pub current: Option<usize>,
}

impl Logs {
    /// An empty log keeping `cap` lines.
    pub fn new(cap: usize) -> Self {
        Logs {
            lines: VecDeque::new(),
            cap: cap.max(1),
            first: 0,
            follow: true,
            bottom: 0,
            wrap: false,
            min_level: Level::Trace,
            node: None,
            search: None,
            colours: HashMap::new(),
        }
    }

    /// The number the next line gets.
    pub fn end(&self) -> u64 {
        self.first + self.lines.len() as u64
    }

    /// Line number `n`, if still kept.
    pub fn get(&self, n: u64) -> Option<&LogLine> {
        n.checked_sub(self.first)
            .and_then(|i| self.lines.get(i as usize))
    }

    /// Whether line `n` passes the filters.
    pub fn shown(&self, line: &LogLine) -> bool {
        line.level >= self.min_level && self.node.as_deref().is_none_or(|n| *line.node == *n)
    }
}

/// Chat entries and notices the pane keeps.
pub const CHAT_CAP: usize = 10_000;
/// The name the console posts as.
pub const OPERATOR: &str = "operator";

/// Where an item of the chat pane sorts: the Lamport order every chat server agrees on
/// (clock, origin server, origin sequence number).
pub type ChatKey = (u64, String, u64);

/// One line of the chat pane.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatItem {
    /// A message from a chat server.
    Entry(ChatEntry),
    /// Something about the pane's own connection ("chat-a is gone; moving…").
    Notice(String),
}

/// What the chat pane's connection reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatNews {
    /// Connected to this chat server (by name).
    Up(String),
    /// Lost this chat server, for this reason.
    Down(String, String),
    /// Messages: live, the pane's own posts, or history after connecting.
    Entries(Vec<ChatEntry>),
    /// The channels the server knows.
    Channels(Vec<String>),
    /// The server refused a request.
    Refused(String),
    /// Logged in under this name (`operator`, or `operator-2` … when it was taken).
    LoggedIn(String),
}

/// The chat pane.
#[derive(Debug, Default)]
pub struct Chat {
    /// Whether the topology has a chat server.
    pub has_server: bool,
    /// The chat server the pane is connected to now.
    pub server: Option<String>,
    /// Messages and notices, in the Lamport order (at most [`CHAT_CAP`]).
    pub items: BTreeMap<ChatKey, ChatItem>,
    /// The channels the server knows, sorted.
    pub channels: Vec<String>,
    /// The channel shown and posted to; `None` shows every channel.
    pub channel: Option<String>,
    /// Lines scrolled back from the newest (0: following).
    pub back: usize,
    /// Notices added, to key them apart.
    pub notices: u64,
    /// The name the pane posts as, once logged in (empty: [`OPERATOR`]).
    pub login: String,
}

impl Chat {
    /// The name the pane posts as.
    pub fn login_name(&self) -> &str {
        if self.login.is_empty() {
            OPERATOR
        } else {
            &self.login
        }
    }

    /// The channel a post goes to: the one shown, else `general`, else the first.
    pub fn post_channel(&self) -> String {
        self.channel.clone().unwrap_or_else(|| {
            if self.channels.is_empty() || self.channels.iter().any(|c| c == "general") {
                "general".to_string()
            } else {
                self.channels[0].clone()
            }
        })
    }

    /// Whether an item shows with the current channel filter.
    pub fn shows(&self, item: &ChatItem) -> bool {
        match (item, &self.channel) {
            (_, None) | (ChatItem::Notice(_), _) => true,
            (ChatItem::Entry(e), Some(wanted)) => match &e.body {
                ChatBody::Post { channel, .. } | ChatBody::Channel { channel, .. } => {
                    channel == wanted
                }
                ChatBody::Direct { .. } => false,
            },
        }
    }
}

/// A link as the map shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkView {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Cut.
    pub cut: bool,
    /// Latency in milliseconds.
    pub latency_ms: u64,
    /// Loss, percent.
    pub loss: f64,
}

/// A fault as the timeline shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultView {
    /// Its number.
    pub number: usize,
    /// What was done.
    pub text: String,
    /// When.
    pub at_ms: u64,
    /// When noticed, and by whom.
    pub detected: Option<(u64, String)>,
    /// When repaired.
    pub recovered_ms: Option<u64>,
}

/// Everything the console shows.
#[derive(Debug)]
pub struct App {
    /// `SYSTEM_NAME`.
    pub system: String,
    /// The primary's name.
    pub primary: String,
    /// Its term.
    pub term: u64,
    /// Milliseconds since the run began, as of the last tick.
    pub now_ms: u64,
    /// Nodes in launch order.
    pub nodes: Vec<NodeRow>,
    /// Jobs.
    pub jobs: Jobs,
    /// Logs.
    pub logs: Logs,
    /// The timeline, oldest first.
    pub timeline: VecDeque<TimelineEvent>,
    /// Faults and what came of them.
    pub faults: Vec<FaultView>,
    /// Messages seen on links, oldest first.
    pub messages: VecDeque<MessageSeen>,
    /// Links, for the map.
    pub links: Vec<LinkView>,
    /// Chat.
    pub chat: Chat,
    /// Scenarios of the topology, for `:scenario` completion.
    pub scenarios: Vec<String>,
    /// A banner from `say`, and when it was shown.
    pub banner: Option<(String, u64)>,
    /// A one-line message in the status bar, and when.
    pub flash: Option<(String, u64)>,
    /// What is on screen.
    pub view: View,
    /// The pane with the keyboard.
    pub focus: Pane,
    /// Whether the focused pane fills the screen.
    pub zoom: bool,
    /// Selected row per pane.
    pub selected: HashMap<Pane, usize>,
    /// What the keyboard is doing.
    pub mode: Mode,
    /// Commands typed before, oldest first.
    pub history: Vec<String>,
    /// Where in the history Up/Down is.
    pub history_pos: Option<usize>,
    /// Personal settings.
    pub config: Config,
    /// Whether this console launched the cluster (faults need that).
    pub launched: bool,
    /// The terminal's size.
    pub size: (u16, u16),
    /// Set when the console should end.
    pub quit: bool,
}

impl App {
    /// An app for a cluster named `system` with these nodes.
    pub fn new(system: &str, primary: &str, nodes: Vec<NodeRow>, config: Config) -> Self {
        let cap = config.log_history;
        App {
            system: system.to_string(),
            primary: primary.to_string(),
            term: 1,
            now_ms: 0,
            nodes,
            jobs: Jobs::default(),
            logs: Logs::new(cap),
            timeline: VecDeque::new(),
            faults: Vec::new(),
            messages: VecDeque::new(),
            links: Vec::new(),
            chat: Chat::default(),
            scenarios: Vec::new(),
            banner: None,
            flash: None,
            view: View::Overview,
            focus: Pane::Nodes,
            zoom: false,
            selected: HashMap::new(),
            mode: Mode::Normal,
            history: Vec::new(),
            history_pos: None,
            config,
            launched: true,
            size: (80, 24),
            quit: false,
        }
    }

    /// The selected row of a pane.
    pub fn selected(&self, pane: Pane) -> usize {
        self.selected.get(&pane).copied().unwrap_or(0)
    }

    /// The node selected in the Nodes pane.
    pub fn selected_node(&self) -> Option<&NodeRow> {
        self.nodes.get(self.selected(Pane::Nodes))
    }

    /// The index of a node.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }
}
