//! The one reading of the cluster: what it concluded, read from its own events, once.
//!
//! The coordinator changes its state only by applying events ([`ClusterState::apply`]). A
//! [`ClusterView`] applies the same events with the same function to the same state, and keeps
//! beside it what a watcher needs and the coordinator does not: who is primary and in which
//! term, what the masters concluded about each other (elections, takeovers, backups that follow
//! or are lost), when each verdict was reached, and what happened to each job.
//!
//! ```text
//!  primary's events ──▶ supervisor: ClusterView::apply, once ──▶ summary, fault measurements
//!  (history, then live)       │ one Reading, shared
//!                             └──────────────────▶ console: reads it ──▶ every pane
//! ```
//!
//! The supervisor keeps the [`Reading`] and hands the console the same one: the Nodes pane,
//! the Jobs pane and the status bar all read one state, the coordinator's, applied once. A
//! console with no supervisor (a recording, `tcluster attach`) advances a reading of its own
//! with the same events.

pub mod alarms;
pub mod clocks;
pub mod expect;
pub mod loans;
pub mod node;
pub mod note;
pub mod reading;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use clocks::{ClockReading, Clocks};
pub use loans::{Loan, Loans};
pub use node::{Faults, NodeStatus, Process, Role, Verdict};
pub use note::Note;
pub use reading::Reading;

use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::message::{Health, JobId};
use crate::role::coordinator::ClusterState;

/// How long a node that came back reads `rejoined` before it reads `healthy` again.
pub const REJOINED_MS: u64 = 5_000;
/// Lines of history kept per job.
const NOTES_PER_JOB: usize = 64;

/// A verdict, when it was reached (run milliseconds) and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concluded {
    pub verdict: Verdict,
    /// When.
    pub at_ms: u64,
    /// Why, in the cluster's words (`no heartbeat for 1536ms`, `backup took over in term 2`).
    pub why: String,
}

/// What happened to one job, for its history and for showing that it moved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobNotes {
    /// (run milliseconds, what happened), oldest first.
    pub history: Vec<(u64, Note)>,
    /// When it last went back to the queue or on to another worker.
    pub moved_at: Option<u64>,
    /// It was submitted before this run (a resumed journal): its early history is not here.
    pub earlier: bool,
}

/// The cluster as its own events tell it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterView {
    /// Jobs, workers and the queue, by the coordinator's own [`ClusterState::apply`].
    pub state: ClusterState,
    /// The master that serves.
    pub primary: String,
    pub term: u64,
    /// What the masters concluded about each other, per master.
    masters: BTreeMap<String, Concluded>,
    /// When each worker's verdict last changed, and why.
    workers: BTreeMap<String, Concluded>,
    /// Masters that were primary and have not followed the new primary yet.
    deposed: BTreeSet<String>,
    /// Per job: what happened to it. Kept only when asked for (the console shows it).
    notes: Option<BTreeMap<JobId, JobNotes>>,
    /// The clocks, as the time master's last round read them.
    pub clocks: Clocks,
}

impl ClusterView {
    /// A view of a cluster whose primary is `primary` in `term`; with `notes`, it keeps each
    /// job's history.
    pub fn new(primary: &str, term: u64, notes: bool) -> Self {
        ClusterView {
            state: ClusterState::new(),
            primary: primary.to_string(),
            term: term.max(1),
            notes: notes.then(BTreeMap::new),
            ..ClusterView::default()
        }
    }

    /// Whether an event from master `source` tells the cluster's story: the primary's events,
    /// every master's election, and a takeover into a newer term from whoever takes over.
    pub fn accepts(&self, source: &str, event: &ClusterEvent) -> bool {
        match &event.kind {
            EventKind::Takeover { term, .. } => *term > self.term || source == self.primary,
            kind if kind.is_election() => true,
            // Without masters, the chat servers' time master publishes the rounds.
            EventKind::ClockRound { .. } | EventKind::TimeMaster { .. }
                if self.primary.is_empty() =>
            {
                true
            }
            _ => source == self.primary,
        }
    }

    /// Applies one event, seen at `at_ms` (milliseconds since the run began).
    pub fn apply(&mut self, at_ms: u64, event: &ClusterEvent) {
        // A worker that registers again was dead (it rejoined), or only moved to a new primary
        // that knew it alive (after a takeover): only the first is news.
        let was_dead = match &event.kind {
            EventKind::WorkerRejoined { worker, .. } => self
                .state
                .workers
                .get(worker)
                .is_some_and(|w| w.health == Health::Dead),
            _ => false,
        };
        self.state.apply(event);
        if let Some((worker, verdict, why)) = self.worker_verdict(&event.kind, was_dead) {
            let concluded = Concluded {
                verdict,
                at_ms,
                why,
            };
            self.workers.insert(worker.to_string(), concluded);
        }
        for (master, verdict, why) in self.master_verdicts(&event.kind) {
            let concluded = Concluded {
                verdict,
                at_ms,
                why,
            };
            self.masters.insert(master, concluded);
        }
        self.note(at_ms, &event.kind);
        self.clocks.apply(at_ms, &self.primary, &event.kind);
        // What compaction forgets, the view forgets too.
        if let Some(notes) = self.notes.as_mut() {
            match &event.kind {
                EventKind::JobsForgotten { jobs } => {
                    for job in jobs {
                        notes.remove(job);
                    }
                }
                EventKind::Snapshot { .. } => notes.clear(),
                _ => {}
            }
        }
    }

    /// What an event says of a worker, if anything.
    fn worker_verdict<'e>(
        &self,
        kind: &'e EventKind,
        was_dead: bool,
    ) -> Option<(&'e str, Verdict, String)> {
        Some(match kind {
            EventKind::WorkerJoined { worker, .. } => (worker, Verdict::Healthy, "joined".into()),
            EventKind::WorkerRejoined { worker, .. } if was_dead => {
                (worker, Verdict::Rejoined, "came back".into())
            }
            EventKind::WorkerRejoined { worker, .. } => (
                worker,
                Verdict::Healthy,
                format!("registered with {}", self.primary),
            ),
            EventKind::WorkerSuspect { worker, silent_ms } => {
                (worker, Verdict::Suspect, format!("silent {silent_ms}ms"))
            }
            EventKind::WorkerRecovered { worker } => {
                (worker, Verdict::Healthy, "heard again".into())
            }
            EventKind::WorkerDead { worker, reason } => (worker, Verdict::Dead, reason.clone()),
            _ => return None,
        })
    }

    /// What an event says of the masters, in order; a takeover also moves the primary and
    /// the term.
    fn master_verdicts(&mut self, kind: &EventKind) -> Vec<(String, Verdict, String)> {
        let mut said = Vec::new();
        match kind {
            EventKind::Takeover {
                coordinator,
                term,
                reason,
            } => {
                let old = std::mem::replace(&mut self.primary, coordinator.clone());
                self.term = self.term.max(*term);
                if old != *coordinator {
                    let why = format!("{coordinator} took over in term {term}: {reason}");
                    said.push((old.clone(), Verdict::Dead, why));
                    self.deposed.insert(old);
                }
                self.deposed.remove(coordinator);
                let why = format!("primary in term {term}");
                said.push((coordinator.clone(), Verdict::Healthy, why));
            }
            EventKind::ElectionStarted { candidate, reason } => {
                let already_dead = self.verdict_is(&self.primary, Verdict::Dead);
                if *candidate != self.primary && !already_dead {
                    let why = format!("{candidate}: {reason}");
                    said.push((self.primary.clone(), Verdict::Suspect, why));
                }
            }
            EventKind::ElectionUpdate {
                candidate,
                primary: Some(primary),
                ..
            } if *primary == self.primary && self.verdict_is(primary, Verdict::Suspect) => {
                let why = format!("{candidate} hears it again");
                said.push((primary.clone(), Verdict::Healthy, why));
            }
            EventKind::BackupFollows { backup, .. } => {
                let was_dead =
                    self.deposed.remove(backup) || self.verdict_is(backup, Verdict::Dead);
                let verdict = if was_dead {
                    Verdict::Rejoined
                } else {
                    Verdict::Healthy
                };
                said.push((backup.clone(), verdict, format!("follows {}", self.primary)));
            }
            EventKind::BackupLost { backup, reason } => {
                said.push((backup.clone(), Verdict::Dead, reason.clone()));
            }
            _ => {}
        }
        said
    }

    /// Whether the last verdict on master `name` is `verdict`.
    fn verdict_is(&self, name: &str, verdict: Verdict) -> bool {
        self.masters.get(name).is_some_and(|c| c.verdict == verdict)
    }

    /// Starts over from a master's whole history (a journal resumed, or the events of a new
    /// primary after a takeover). Job histories already kept stay; jobs first seen here are
    /// marked as from before.
    pub fn resync(&mut self, events: &[ClusterEvent]) {
        let mut state = ClusterState::new();
        for event in events {
            state.apply(event);
        }
        self.term = self.term.max(state.term);
        self.state = state;
        for (name, worker) in &self.state.workers {
            let verdict = match worker.health {
                Health::Healthy => Verdict::Healthy,
                Health::Suspect => Verdict::Suspect,
                Health::Dead => Verdict::Dead,
            };
            if self.workers.get(name).is_none_or(|c| {
                c.verdict != verdict
                    && !(c.verdict == Verdict::Rejoined && verdict == Verdict::Healthy)
            }) {
                self.workers.insert(
                    name.clone(),
                    Concluded {
                        verdict,
                        at_ms: 0,
                        why: "as the journal says".into(),
                    },
                );
            }
        }
        self.fit_notes();
    }

    /// Takes on another view's reading (the supervisor's, after it started over), keeping the
    /// job histories this one has.
    pub fn adopt(&mut self, other: &ClusterView) {
        let notes = self.notes.take();
        *self = ClusterView {
            notes,
            ..other.clone()
        };
        if self.notes.is_some() {
            self.fit_notes();
        }
    }

    /// A copy without the job histories: what a recording keeps of a reading (a replay keeps
    /// histories of its own, and [`ClusterView::adopt`] keeps them).
    pub fn without_notes(&self) -> ClusterView {
        ClusterView {
            state: self.state.clone(),
            primary: self.primary.clone(),
            term: self.term,
            masters: self.masters.clone(),
            workers: self.workers.clone(),
            deposed: self.deposed.clone(),
            notes: None,
            clocks: self.clocks.clone(),
        }
    }

    /// Job histories for exactly the jobs the state has.
    fn fit_notes(&mut self) {
        let Some(notes) = self.notes.as_mut() else {
            return;
        };
        notes.retain(|id, _| self.state.jobs.contains_key(id));
        for id in self.state.jobs.keys() {
            notes.entry(*id).or_insert_with(|| JobNotes {
                earlier: true,
                ..JobNotes::default()
            });
        }
    }

    /// A job's history, if kept.
    pub fn notes(&self, job: JobId) -> Option<&JobNotes> {
        self.notes.as_ref()?.get(&job)
    }

    /// Every job's notes, in the order of their ids (as the state keeps its jobs).
    pub fn all_notes(&self) -> impl Iterator<Item = (JobId, &JobNotes)> {
        self.notes.iter().flatten().map(|(id, notes)| (*id, notes))
    }

    fn note(&mut self, at_ms: u64, kind: &EventKind) {
        let Some(notes) = self.notes.as_mut() else {
            return;
        };
        let Some((job, note)) = Note::of(kind) else {
            return;
        };
        // Only jobs the state knows: an event about an unknown job changed nothing.
        if !self.state.jobs.contains_key(&job) {
            return;
        }
        let entry = notes.entry(job).or_default();
        if note.moved() {
            entry.moved_at = Some(at_ms);
        }
        if entry.history.len() < NOTES_PER_JOB {
            entry.history.push((at_ms, note));
        }
    }

    /// What the cluster concluded about this node now.
    pub fn verdict(&self, node: &NodeStatus, now_ms: u64) -> Verdict {
        match node.process {
            Process::Stopped => return Verdict::Stopped,
            // A student's worker tcluster did not launch still has the cluster's verdict.
            Process::NotLaunched if !self.state.workers.contains_key(&node.name) => {
                return Verdict::NotRun;
            }
            _ => {}
        }
        let recent = |c: &Concluded| match c.verdict {
            Verdict::Rejoined if now_ms.saturating_sub(c.at_ms) >= REJOINED_MS => Verdict::Healthy,
            v => v,
        };
        match node.kind.as_str() {
            "worker" => match self.state.workers.get(&node.name) {
                Some(record) => match (record.health, self.workers.get(&node.name)) {
                    (Health::Healthy, Some(c)) if c.verdict == Verdict::Rejoined => recent(c),
                    (Health::Healthy, _) => Verdict::Healthy,
                    (Health::Suspect, _) => Verdict::Suspect,
                    (Health::Dead, _) => Verdict::Dead,
                },
                None => process_verdict(node.process),
            },
            "master" => match self.masters.get(&node.name) {
                // A master nobody has concluded anything about yet, or one that left and came
                // back (its process is running again but nobody has heard it yet).
                Some(c) if !(c.verdict == Verdict::Healthy && node.process == Process::Exited) => {
                    recent(c)
                }
                _ => process_verdict(node.process),
            },
            // Chat servers and bots are watched by no coordinator: their process is all there is.
            _ => process_verdict(node.process),
        }
    }

    /// Why the node's verdict is what it is, and since when, if the cluster said.
    pub fn concluded(&self, node: &str) -> Option<&Concluded> {
        self.workers.get(node).or_else(|| self.masters.get(node))
    }

    /// The node's role now.
    pub fn role(&self, node: &NodeStatus) -> Role {
        match node.kind.as_str() {
            "master" if node.name == self.primary => Role::Primary,
            "master" if self.deposed.contains(&node.name) => Role::WasPrimary,
            "master" => Role::Backup,
            "chat" => Role::Chat,
            "bot" => Role::Bot,
            "broker" => Role::Broker,
            "client" => Role::Client,
            _ => Role::Worker,
        }
    }
}

/// The verdict for a node nobody watches: its process is all there is to go by.
fn process_verdict(process: Process) -> Verdict {
    match process {
        Process::NotLaunched => Verdict::NotRun,
        Process::Starting => Verdict::Starting,
        Process::Running => Verdict::Healthy,
        Process::Exited => Verdict::Dead,
        Process::Stopped => Verdict::Stopped,
    }
}

#[cfg(test)]
mod tests;
