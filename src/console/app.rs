//! The console's state: plain data, changed only by [`super::update::update`], read by the
//! drawing code. Long lists keep bounded, indexed storage: the log is a ring with absolute line
//! numbers, jobs are shown through an ordered view rebuilt when the filter or the data changes.
//!
//! What the cluster concluded — jobs, workers, the primary and its term, each node's verdict —
//! is not kept here a second time: it is [`App::cluster`], the one reading
//! ([`crate::view::Reading`]). In a launched run it is the supervisor's own, applied once and
//! only read here; a recording or an attached cluster advances one of its own.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use ratatui_textarea::TextArea;

use super::config::Config;
use crate::protocol::message::{ChatBody, ChatEntry, JobId, JobState};
use crate::shaper::MessageSeen;
use crate::supervisor::feed::RunInfo;
pub use crate::supervisor::feed::{ChatNews, LinkView, ProcessUsage};
use crate::supervisor::logs::{Level, LogLine};
use crate::supervisor::timeline::TimelineEvent;
use crate::view::{ClusterView, NodeStatus, Process, Reading, Role, Verdict};

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
    Confirm(crate::topology::ClusterAction),
    /// The help overlay, scrolled down this many lines.
    Help(u16),
    /// One job's history.
    JobDetail(JobId),
    /// One node: its address, process, links and the cluster's verdict.
    NodeDetail(String),
    /// The alarms the live checks raised.
    Alarms,
    /// Messages waiting on held links: this one selected.
    Held(usize),
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

/// One node's row: the supervisor's facts about it, and the figures the primary reports.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// What tcluster knows of its process and what was done to it.
    pub status: NodeStatus,
    /// Milliseconds since its coordinator last heard from it, as last reported.
    pub heartbeat_age_ms: Option<u64>,
    /// Recent heartbeat ages, oldest first.
    pub heartbeat_history: VecDeque<u64>,
    /// Its Lamport clock, as last seen.
    pub clock: u64,
    /// CPU use, percent of one core.
    pub cpu: Option<f32>,
    /// Resident memory, bytes.
    pub memory: Option<u64>,
}

impl NodeRow {
    /// A row for a node not heard from yet.
    pub fn new(name: &str, kind: &str) -> Self {
        NodeRow::from_status(NodeStatus::starting(name, kind))
    }

    /// A row for a node as the supervisor reports it.
    pub fn from_status(status: NodeStatus) -> Self {
        NodeRow {
            status,
            heartbeat_age_ms: None,
            heartbeat_history: VecDeque::new(),
            clock: 0,
            cpu: None,
            memory: None,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.status.name
    }

    /// `master`, `worker` …
    pub fn kind(&self) -> &str {
        &self.status.kind
    }
}

/// How the jobs are listed: which, and in what order.
#[derive(Debug, Default)]
pub struct Jobs {
    /// Show only this state.
    pub filter: Option<JobState>,
    /// Ids shown, in order (rebuilt when stale): unfiltered, the jobs still in the works come
    /// first (queued, assigned, running, by id), then the ended ones, the latest first.
    pub visible: Vec<JobId>,
    /// The visible list needs rebuilding.
    pub stale: bool,
    /// The job the selection is on, so it stays on the same job when the list is reordered.
    pub selected: Option<JobId>,
    /// Jobs completed in each of the last seconds, oldest first.
    pub throughput: VecDeque<u64>,
    /// Where the ended jobs are sorted: kept from one rebuild to the next, like `visible`, so
    /// that a list of tens of thousands of jobs is not allocated afresh a few times a second.
    ended: Vec<(u64, u64, JobId)>,
    /// When `visible` was last rebuilt (run milliseconds).
    pub rebuilt_ms: u64,
}

/// Jobs in the cluster past which the list's order is rebuilt at most once a second: more than
/// anyone scrolls through while they change, and each rebuild reads every one of them. The
/// rows in view still show each job as it is at every frame.
pub const LONG_JOB_LIST: usize = 10_000;

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
pub use crate::supervisor::feed::OPERATOR;

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

/// An action as the Faults table shows it: what was done, and what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultView {
    pub number: usize,
    /// What was done.
    pub text: String,
    /// When.
    pub at_ms: u64,
    /// The node (or link) it hit.
    pub target: String,
    /// Milliseconds after it the cluster noticed, and who noticed.
    pub detected: Option<(u64, String)>,
    /// Milliseconds after it the cluster had recovered.
    pub recovered: Option<u64>,
    /// What came of it, for actions with nothing to detect (`up again after 0.4s`, `applied`).
    pub outcome: Option<String>,
    /// Nothing more will come of it (its row shows `-` rather than `…`).
    pub settled: bool,
    /// The cluster's pace when its times were measured, if in slow motion.
    pub speed: Option<f64>,
}

/// How a banner reads: what kind of news it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something broke, or was found broken.
    Alarm,
    /// Something is late (a suspect).
    Warning,
    /// The cluster repaired itself.
    Recovery,
    /// News (a resumed run).
    Info,
}

/// A big, brief message over the panes: a fault detected, jobs moved, a failover.
#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    /// What it is about (a node's name, `failover`): later news about it joins this banner.
    pub key: String,
    /// Its lines, each with its tone, oldest first.
    pub lines: Vec<(String, Tone)>,
    /// When it last changed.
    pub at_ms: u64,
}

/// How the Timeline view is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimelineView {
    /// The events list has the keyboard (Tab switches with the Faults table).
    pub events_focused: bool,
    /// Lines the events list is scrolled back from the newest (0: following).
    pub back: usize,
    /// Wrap long events instead of cutting them.
    pub wrap: bool,
    /// Show heartbeats and pings in the messages diagram.
    pub pings: bool,
}

/// Everything the console shows.
#[derive(Debug)]
pub struct App {
    /// `SYSTEM_NAME`.
    pub system: String,
    /// The cluster as its events tell it: the primary, its term, jobs, workers, verdicts. A
    /// launched run's is the supervisor's own reading ([`App::read_from`]).
    pub cluster: Reading,
    /// Whether this console advances its readings itself (a recording, a cluster it attached
    /// to), or shows the ones the supervisor advances.
    pub advances_readings: bool,
    /// Milliseconds since the run began, as of the last tick.
    pub now_ms: u64,
    /// Nodes in launch order.
    pub nodes: Vec<NodeRow>,
    /// When the primary last reported its workers' figures (heartbeat ages): older than a
    /// couple of polls, they are shown as stale.
    pub workers_heard_ms: Option<u64>,
    /// Jobs.
    pub jobs: Jobs,
    /// Logs.
    pub logs: Logs,
    /// The timeline, oldest first.
    pub timeline: VecDeque<Arc<TimelineEvent>>,
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
    /// The clusters of the topology, when it has more than one (for `:submit … to CLUSTER`).
    pub clusters: Vec<String>,
    /// The cluster `cluster` reads (of the primary the console launched with).
    pub main_cluster: String,
    /// The other clusters, each read from its own primary's events.
    pub others: BTreeMap<String, Reading>,
    /// Loans of workers between clusters, read from every cluster's events.
    pub loans: crate::view::Loans,
    /// The last scenario begun, and when: the timeline counts from there, also after it ended.
    pub scenario: Option<(String, u64)>,
    /// Whether that scenario is still running (the status line shows it only then).
    pub scenario_running: bool,
    /// A line from `say`, and when it was shown.
    pub say: Option<(String, u64)>,
    /// Banners about faults and recoveries, oldest first.
    pub banners: VecDeque<Banner>,
    /// What the live checks raised (run ms, kind, text, a warning only), oldest first.
    pub alarms: Vec<(u64, String, String, bool)>,
    /// Each key pressed is shown in a corner for a few seconds (`:keys on`), for the class.
    pub show_keys: bool,
    /// The keys pressed lately, and when (run ms), oldest first.
    pub keys_pressed: VecDeque<(String, u64)>,
    /// Messages waiting on held links, in the order they came.
    pub held: Vec<crate::shaper::HeldMessage>,
    /// How the Timeline view is read.
    pub timeline_view: TimelineView,
    /// Completions of the word being typed on the command line.
    pub completions: Vec<String>,
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
    /// Looking at a recording (or back at the live run so far): where the screen is in it.
    pub scrubber: Option<Scrubber>,
    /// The cluster's pace: cluster time per real time (below 1: slow motion).
    pub speed: f64,
}

/// Where a replay is: the moment on screen, the span, the speed, and the marks to jump to.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrubber {
    /// The moment on screen (run milliseconds).
    pub at_ms: u64,
    /// The recording's first and last moments.
    pub start_ms: u64,
    pub end_ms: u64,
    /// Playing (else paused).
    pub playing: bool,
    /// Run time per real time: ¼ to 16.
    pub speed: f64,
    /// Faults, alarms and failovers, oldest first.
    pub marks: Vec<Mark>,
    /// Looking back at the live run: any key but ← and → returns to it.
    pub live: bool,
    /// Typing a time to go to (`g`).
    pub goto: Option<String>,
}

/// A moment worth jumping to.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at_ms: u64,
    pub kind: MarkKind,
    /// What happened, in the timeline's words.
    pub label: String,
}

/// What a mark shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// The operator (or a scenario) broke something.
    Fault,
    /// A live check raised an alarm.
    Alarm,
    /// A backup took over.
    Failover,
}

impl MarkKind {
    /// Its symbol on the scrubber bar.
    pub fn symbol(self) -> char {
        match self {
            MarkKind::Fault => '✕',
            MarkKind::Alarm => '!',
            MarkKind::Failover => '⇄',
        }
    }
}

impl App {
    /// An app for a cluster named `system` with these nodes.
    pub fn new(system: &str, primary: &str, nodes: Vec<NodeRow>, config: Config) -> Self {
        let cap = config.log_history;
        App {
            system: system.to_string(),
            cluster: Reading::new(ClusterView::new(primary, 1, true)),
            advances_readings: true,
            now_ms: 0,
            nodes,
            workers_heard_ms: None,
            jobs: Jobs::default(),
            logs: Logs::new(cap),
            timeline: VecDeque::new(),
            faults: Vec::new(),
            messages: VecDeque::new(),
            links: Vec::new(),
            chat: Chat::default(),
            scenarios: Vec::new(),
            clusters: Vec::new(),
            main_cluster: crate::topology::DEFAULT_CLUSTER.to_string(),
            others: BTreeMap::new(),
            loans: Default::default(),
            scenario: None,
            scenario_running: false,
            say: None,
            banners: VecDeque::new(),
            alarms: Vec::new(),
            held: Vec::new(),
            show_keys: false,
            keys_pressed: VecDeque::new(),
            timeline_view: TimelineView::default(),
            completions: Vec::new(),
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
            scrubber: None,
            speed: 1.0,
        }
    }

    /// An app for a run, as it was when its launch finished (live, or at the start of its
    /// recording): its nodes, primary, scenarios and clusters, and its clocks read against
    /// the launcher's.
    pub fn for_run(info: &RunInfo, config: Config) -> Self {
        let nodes = info.nodes.iter().cloned().map(NodeRow::from_status);
        let mut app = App::new(&info.system, &info.primary, nodes.collect(), config);
        {
            let mut view = app.cluster.write();
            view.term = info.term;
            view.clocks = crate::view::Clocks::new(info.epoch_ms);
        }
        app.scenarios = info.scenarios.clone();
        app.clusters = info.clusters.clone();
        if !info.clusters.is_empty() {
            app.main_cluster = info.main_cluster.clone();
        }
        // Each other cluster read from its own primary: the main one by `cluster`.
        for (cluster, primary) in &info.others {
            let mut view = ClusterView::new(primary, 1, false);
            view.clocks = crate::view::Clocks::new(info.epoch_ms);
            app.others.insert(cluster.clone(), Reading::new(view));
        }
        app.chat.has_server = info.chat;
        app.speed = info.scale;
        app
    }

    /// The selected row of a pane.
    pub fn selected(&self, pane: Pane) -> usize {
        self.selected.get(&pane).copied().unwrap_or(0)
    }

    /// Each pair of nodes with a shaped link, in the order the Map selects them.
    pub fn link_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .links
            .iter()
            .map(|l| {
                if l.from < l.to {
                    (l.from.clone(), l.to.clone())
                } else {
                    (l.to.clone(), l.from.clone())
                }
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// The link selected in the Map, if any.
    pub fn selected_link(&self) -> Option<(String, String)> {
        self.link_pairs().into_iter().nth(self.selected(Pane::Map))
    }

    /// The node selected in the Nodes pane.
    pub fn selected_node(&self) -> Option<&NodeRow> {
        self.nodes.get(self.selected(Pane::Nodes))
    }

    /// The index of a node.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == name)
    }

    /// Shows the readings a supervisor advances (a launched run's) instead of advancing
    /// readings of its own: the main cluster's and the others', by cluster.
    pub fn read_from(&mut self, main: Reading, others: &BTreeMap<String, Reading>) {
        self.cluster = main;
        for (cluster, reading) in others {
            self.others.insert(cluster.clone(), reading.clone());
        }
        self.advances_readings = false;
    }

    /// The reading of the cluster a node belongs to.
    pub fn view_of(&self, node: &NodeRow) -> &Reading {
        self.others
            .get(&node.status.cluster)
            .unwrap_or(&self.cluster)
    }

    /// The cluster's verdict on a node now (its own cluster's).
    pub fn verdict(&self, node: &NodeRow) -> Verdict {
        self.view_of(node).read().verdict(&node.status, self.now_ms)
    }

    /// A node's role now.
    pub fn role(&self, node: &NodeRow) -> Role {
        self.view_of(node).read().role(&node.status)
    }

    /// The cluster a worker works for while it is lent elsewhere.
    pub fn lent_to(&self, node: &NodeRow) -> Option<String> {
        let home = node.status.cluster.as_str();
        let serving = self.loans.serving(node.name(), home);
        (serving != home).then(|| serving.to_string())
    }

    /// The reading of the cluster a worker works for now: its borrower's while it is lent.
    pub fn serving_view(&self, node: &NodeRow) -> &Reading {
        match self.lent_to(node) {
            Some(to) => self
                .others
                .get(&to)
                .filter(|_| to != self.main_cluster)
                .unwrap_or(&self.cluster),
            None => self.view_of(node),
        }
    }

    /// The cluster of the node called `name`, if the console knows it.
    pub fn cluster_of(&self, name: &str) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.name() == name)
            .map(|n| n.status.cluster.as_str())
    }

    /// Whether the primary's figures about its workers are out of date (the primary does not
    /// answer: paused, cut off, or gone).
    pub fn workers_stale(&self) -> bool {
        self.workers_heard_ms
            .is_some_and(|at| self.now_ms.saturating_sub(at) > STALE_MS)
    }

    /// Rebuilds the jobs' visible list if needed, keeping the selection on the same job.
    pub fn refresh_jobs(&mut self) {
        if !self.jobs.stale {
            return;
        }
        let view = self.cluster.read();
        let jobs = &view.state.jobs;
        let visible = &mut self.jobs.visible;
        visible.clear();
        match self.jobs.filter {
            Some(filter) => {
                visible.extend(jobs.values().filter(|j| j.state == filter).map(|j| j.id))
            }
            None => {
                // Ended jobs, the latest first: by when this console saw them end, then (jobs
                // that ended before it watched, in a resumed run) by the coordinator's time.
                let ended = &mut self.jobs.ended;
                ended.clear();
                // Jobs and their notes are both in id order: read side by side.
                let mut notes = view.all_notes().peekable();
                for job in jobs.values() {
                    while notes.next_if(|(id, _)| *id < job.id).is_some() {}
                    let own = notes.next_if(|(id, _)| *id == job.id).map(|(_, n)| n);
                    if job.state.is_final() {
                        let seen = own
                            .filter(|n| !n.earlier)
                            .and_then(|n| n.history.last())
                            .map_or(0, |(at, _)| *at);
                        ended.push((seen, job.finished_ms.unwrap_or(0), job.id));
                    } else {
                        visible.push(job.id);
                    }
                }
                // Jobs end nearly in the order of their ids, so this list is nearly in order
                // already: a sort that finds runs does little, then the latest go first.
                ended.sort();
                ended.reverse();
                visible.extend(ended.iter().map(|(_, _, id)| *id));
            }
        }
        self.jobs.stale = false;
        self.jobs.rebuilt_ms = self.now_ms;
        if let Some(id) = self.jobs.selected
            && let Some(i) = self.jobs.visible.iter().position(|j| *j == id)
        {
            self.selected.insert(Pane::Jobs, i);
        }
    }

    /// The process of a node, by name (`None` for a node tcluster does not know).
    pub fn process(&self, name: &str) -> Option<Process> {
        self.nodes
            .iter()
            .find(|n| n.name() == name)
            .map(|n| n.status.process)
    }
}

/// How old the primary's figures may be before they are marked stale (it is polled twice a
/// second).
pub const STALE_MS: u64 = 1_600;
