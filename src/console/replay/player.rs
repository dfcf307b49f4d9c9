//! A recording turned back into a console: [`Player::seek`] feeds the recorded items, up to a
//! moment, through the console's own `update`, exactly as a live console received them.
//! Going back starts over from the recording's beginning (what the screen looks at — the view,
//! the focus, the selection — is kept).

use serde::Serialize;

use crate::cluster::event::EventKind;
use crate::console::app::{App, Mark, MarkKind, Scrubber};
use crate::console::config::Config;
use crate::console::keymap::Action;
use crate::console::update::update;
use crate::supervisor::Update;
use crate::supervisor::feed::{Feed, Stamped};
use crate::supervisor::record::Recording;
use crate::supervisor::timeline::TimelineKind;

/// How often the live console ticks; a replay ticks as often, in run time.
const TICK_MS: u64 = 250;

/// A recording and the console at one moment of it.
pub struct Player {
    recording: Recording,
    config: Config,
    /// The console as it was at [`Player::at_ms`].
    pub app: App,
    /// The next item to apply.
    next: usize,
    last_tick: u64,
    /// Where the replay is, and how it plays.
    pub scrubber: Scrubber,
}

impl Player {
    /// A player at the recording's first moment.
    pub fn new(recording: Recording, config: Config) -> Player {
        let (start_ms, end_ms) = recording.span();
        let scrubber = Scrubber {
            at_ms: start_ms,
            start_ms,
            end_ms,
            playing: false,
            speed: 1.0,
            marks: marks(&recording.items),
            live: false,
            goto: None,
        };
        let app = App::for_run(&recording.info, config.clone());
        let mut player = Player {
            recording,
            config,
            app,
            next: 0,
            last_tick: 0,
            scrubber,
        };
        player.seek(start_ms);
        player
    }

    /// The recording.
    pub fn recording(&self) -> &Recording {
        &self.recording
    }

    /// The moment on screen.
    pub fn at_ms(&self) -> u64 {
        self.scrubber.at_ms
    }

    /// Takes in items recorded since (a live console looking back: the run goes on).
    pub fn extend(&mut self, items: impl IntoIterator<Item = Stamped>) {
        for mut item in items {
            let last = self.recording.items.last().map_or(0, |i| i.at_ms);
            item.at_ms = item.at_ms.max(last);
            if let Some(mark) = mark(&item) {
                self.scrubber.marks.push(mark);
            }
            self.scrubber.end_ms = item.at_ms;
            self.recording.items.push(item);
        }
    }

    /// Shows the console as it was at `at_ms` (kept within the recording).
    pub fn seek(&mut self, at_ms: u64) {
        let at_ms = at_ms.clamp(self.scrubber.start_ms, self.scrubber.end_ms);
        if at_ms < self.app.now_ms || self.next == 0 {
            self.start_over();
        }
        while let Some(item) = self.recording.items.get(self.next)
            && item.at_ms <= at_ms
        {
            if item.at_ms >= self.last_tick + TICK_MS {
                self.last_tick = item.at_ms;
                update(&mut self.app, Action::Tick(item.at_ms));
            }
            if let Some(action) = Action::from_feed(item.feed.clone()) {
                update(&mut self.app, action);
            }
            self.next += 1;
        }
        self.last_tick = at_ms;
        update(&mut self.app, Action::Tick(at_ms));
        self.scrubber.at_ms = at_ms;
        self.app.scrubber = Some(self.scrubber.clone());
    }

    /// Shows the scrubber's state (play, speed, a time being typed) without moving.
    pub fn refresh(&mut self) {
        self.app.scrubber = Some(self.scrubber.clone());
    }

    /// A fresh console at the recording's beginning, looking where this one looked.
    fn start_over(&mut self) {
        let fresh = App::for_run(&self.recording.info, self.config.clone());
        let old = std::mem::replace(&mut self.app, fresh);
        let app = &mut self.app;
        app.view = old.view;
        app.focus = old.focus;
        app.zoom = old.zoom;
        app.selected = old.selected;
        app.timeline_view = old.timeline_view;
        app.size = old.size;
        app.mode = old.mode;
        app.history = old.history;
        app.show_keys = old.show_keys;
        app.keys_pressed = old.keys_pressed;
        app.chat.channel = old.chat.channel;
        app.launched = old.launched;
        self.next = 0;
        self.last_tick = 0;
    }

    /// The mark before the moment on screen (or after, with `forward`).
    pub fn mark_from_here(&self, forward: bool) -> Option<&Mark> {
        let at = self.scrubber.at_ms;
        if forward {
            self.scrubber.marks.iter().find(|m| m.at_ms > at)
        } else {
            self.scrubber.marks.iter().rev().find(|m| m.at_ms < at)
        }
    }

    /// The state on screen, for `--json`: the one reading the panes draw from.
    pub fn state(&self) -> State<'_> {
        let app = &self.app;
        let view = app.cluster.read();
        let nodes = app
            .nodes
            .iter()
            .map(|row| NodeState {
                name: &row.status.name,
                kind: &row.status.kind,
                process: row.status.process,
                role: view.role(&row.status),
                verdict: view.verdict(&row.status, app.now_ms),
                faults: &row.status.faults,
            })
            .collect();
        State {
            at_ms: app.now_ms,
            system: &app.system,
            primary: view.primary.clone(),
            term: view.term,
            nodes,
            counts: view.state.counts,
            jobs: view
                .state
                .jobs
                .values()
                .map(|j| crate::cluster::job::Job::clone(j))
                .collect(),
            alarms: app
                .alarms
                .iter()
                .map(|(at_ms, kind, text, warning)| AlarmState {
                    at_ms: *at_ms,
                    kind,
                    text,
                    warning: *warning,
                })
                .collect(),
        }
    }
}

/// The state at a moment of a recording, as `tcluster replay --json` prints it.
#[derive(Debug, Serialize)]
pub struct State<'a> {
    pub at_ms: u64,
    pub system: &'a str,
    pub primary: String,
    pub term: u64,
    pub nodes: Vec<NodeState<'a>>,
    pub counts: crate::protocol::message::JobCounts,
    pub jobs: Vec<crate::cluster::job::Job>,
    pub alarms: Vec<AlarmState<'a>>,
}

/// One node at a moment: its process, and the cluster's verdict on it.
#[derive(Debug, Serialize)]
pub struct NodeState<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub process: crate::view::Process,
    pub role: crate::view::Role,
    pub verdict: crate::view::Verdict,
    pub faults: &'a crate::view::Faults,
}

/// An alarm raised up to a moment.
#[derive(Debug, Serialize)]
pub struct AlarmState<'a> {
    pub at_ms: u64,
    pub kind: &'a str,
    pub text: &'a str,
    pub warning: bool,
}

/// The moments worth jumping to: faults done, alarms raised, failovers.
fn marks(items: &[Stamped]) -> Vec<Mark> {
    items.iter().filter_map(mark).collect()
}

fn mark(item: &Stamped) -> Option<Mark> {
    let Feed::Update(Update::Timeline(event)) = &item.feed else {
        return None;
    };
    let (kind, label) = match &event.kind {
        TimelineKind::Action {
            fault: Some(_),
            text,
            ..
        } => (MarkKind::Fault, text.clone()),
        TimelineKind::Alarm {
            text,
            warning: false,
            ..
        } => (MarkKind::Alarm, text.clone()),
        TimelineKind::Cluster { event: e } => match &e.kind {
            EventKind::Takeover {
                coordinator, term, ..
            } => (
                MarkKind::Failover,
                format!("failover: {coordinator} took over in term {term}"),
            ),
            _ => return None,
        },
        _ => return None,
    };
    Some(Mark {
        at_ms: item.at_ms,
        kind,
        label,
    })
}
