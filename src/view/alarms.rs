//! Live invariant checks: the promises a cluster makes, checked against what it says as it
//! runs, and an [`Alarm`] with the evidence the moment one breaks.
//!
//! The [`Checker`] reads what the supervisor reads — every master's event stream (not only the
//! primary's), the one reading of the cluster ([`ClusterView`]) once it has applied an event,
//! the jobs acknowledged to the operator, and the chat servers' entry counts — and keeps only
//! what the checks need. No I/O here.
//!
//! | kind | raised when | |
//! | --- | --- | --- |
//! | `split_brain` | two masters take over in the same term, or give the same job id to two different jobs while one of them acknowledges without replicating (it dropped its backup; or, with `replication async`, it took the job after the other took over): both accepted jobs at once (said once per pair of masters) | alarm |
//! | `lost_job` | a job acknowledged to the operator is unknown to the new primary after a failover | alarm |
//! | `double_run` | a job's result comes a second time (it ran twice: at-least-once) | warning |
//! | `over_slots` | a worker holds more jobs than its slots | alarm |
//! | `clock_backwards` | the primary's events (those the reading takes) go back in Lamport time | alarm |
//! | `term_backwards` | the reading's term goes down, or a master takes over in a lower term than it took over in before | alarm |
//! | `chat_diverged` | live chat servers still hold different histories [`CHAT_DIVERGED_MS`] after every link between them is whole | alarm |

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use super::ClusterView;
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::message::JobId;

/// How long chat servers may disagree, with every link between them whole, before it is an
/// alarm (replication takes milliseconds; anti-entropy every five seconds fills what a cut lost).
pub const CHAT_DIVERGED_MS: u64 = 12_000;
/// Alarms and warnings kept (the newest), for the summary and the console's list.
pub const ALARMS_KEPT: usize = 10_000;
/// Job ids remembered for the same-id check (the newest).
const SUBMISSIONS_KEPT: usize = 100_000;

/// What broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    SplitBrain,
    LostJob,
    DoubleRun,
    OverSlots,
    ClockBackwards,
    TermBackwards,
    ChatDiverged,
}

impl AlarmKind {
    /// Its name in the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::SplitBrain => "split_brain",
            AlarmKind::LostJob => "lost_job",
            AlarmKind::DoubleRun => "double_run",
            AlarmKind::OverSlots => "over_slots",
            AlarmKind::ClockBackwards => "clock_backwards",
            AlarmKind::TermBackwards => "term_backwards",
            AlarmKind::ChatDiverged => "chat_diverged",
        }
    }
}

/// A promise broken, when, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// Run milliseconds.
    pub at_ms: u64,
    pub kind: AlarmKind,
    /// The evidence, in words.
    pub text: String,
    /// The nodes involved.
    pub nodes: Vec<String>,
    /// A warning (at-least-once), not a broken promise.
    pub warning: bool,
}

/// The versions of one job id seen: nearly always one.
#[derive(Debug)]
struct Versions {
    first: Version,
    more: Vec<Version>,
}

/// A `job_submitted` as a master said it: by whom, its clock and data, and when it was heard.
#[derive(Debug, Clone)]
struct Version {
    master: Arc<str>,
    clock: u64,
    data: String,
    at_ms: u64,
}

/// `name` as kept in `names`, kept there if new.
fn intern(names: &mut Vec<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(kept) = names.iter().find(|n| ***n == *name) {
        return kept.clone();
    }
    let kept: Arc<str> = Arc::from(name);
    names.push(kept.clone());
    kept
}

/// Checks the promises; see the module's table.
#[derive(Debug, Default)]
pub struct Checker {
    /// The reading's last event: its Lamport clock (the primary's own; reset when the reading
    /// starts over from a new primary), and the highest term it has read.
    reading_clock: u64,
    reading_term: u64,
    /// Per master, the highest term it took over in itself.
    own_terms: BTreeMap<String, u64>,
    /// Takeovers seen (who, term, clock): the same one again is a replica or a history read
    /// again, not news.
    seen_takeovers: BTreeSet<(String, u64, u64)>,
    /// Per job id: each `job_submitted` seen for it — first by whom, its clock and data. A
    /// replica (on a backup's stream, or replayed by a master that steps down) is the same
    /// event: same clock, same data.
    submitted: BTreeMap<JobId, Versions>,
    submitted_order: VecDeque<JobId>,
    /// The masters' names, each kept once.
    masters: Vec<Arc<str>>,
    /// Per term: the master that took over in it.
    takeovers: BTreeMap<u64, String>,
    /// Per master: when it last took over (run ms).
    took_over_at: BTreeMap<String, u64>,
    /// Masters that accept jobs without replicating them: they dropped their backup (every
    /// master, with asynchronous replication). A job a master took while holding its reply for
    /// a backup that never acknowledged was never accepted.
    alone: BTreeSet<String>,
    /// Backup events seen (master, clock): one read again (a history) changes nothing.
    seen_backup_events: BTreeSet<(String, u64)>,
    /// Replication is asynchronous: every primary acknowledges before replicating.
    pub async_replication: bool,
    /// Alarms raised, so each is raised once.
    raised: BTreeSet<(AlarmKind, String)>,
    /// Since when live chat servers have disagreed with every link whole.
    chat_apart_since: Option<u64>,
    /// Every alarm and warning, in order.
    pub alarms: VecDeque<Alarm>,
    /// Alarms (not warnings) raised in all, kept or not.
    raised_alarms: usize,
}

impl Checker {
    /// Alarms (not warnings) raised so far (kept or not).
    pub fn alarm_count(&self) -> usize {
        self.raised_alarms
    }

    fn raise(
        &mut self,
        at_ms: u64,
        kind: AlarmKind,
        key: String,
        text: String,
        nodes: Vec<String>,
    ) -> Option<Alarm> {
        if !self.raised.insert((kind, key)) {
            return None;
        }
        let alarm = Alarm {
            at_ms,
            kind,
            text,
            nodes,
            warning: kind == AlarmKind::DoubleRun,
        };
        self.raised_alarms += usize::from(!alarm.warning);
        self.alarms.push_back(alarm.clone());
        // A long run of a broken cluster keeps the newest (the count stays whole).
        if self.alarms.len() > ALARMS_KEPT {
            self.alarms.pop_front();
        }
        Some(alarm)
    }

    /// A master's history, at the start of a (new) subscription: read like live events (what
    /// was seen before is recognised as such).
    pub fn history(&mut self, at_ms: u64, master: &str, events: &[ClusterEvent]) -> Vec<Alarm> {
        let mut out = Vec::new();
        for event in events {
            out.extend(self.stream_event(at_ms, master, event));
        }
        out
    }

    /// One event of master `master`'s stream (its own, or a replica of its primary's), before
    /// the reading takes it: takeovers and the job ids given out.
    pub fn stream_event(&mut self, at_ms: u64, master: &str, event: &ClusterEvent) -> Vec<Alarm> {
        let mut out = Vec::new();
        match &event.kind {
            // Read again (a history after a new subscription): already taken in.
            EventKind::BackupLost { .. } | EventKind::BackupFollows { .. }
                if !self
                    .seen_backup_events
                    .insert((master.to_string(), event.clock)) => {}
            // The primary goes on without its backup: what it accepts now, it alone knows.
            EventKind::BackupLost { .. } => {
                self.alone.insert(master.to_string());
            }
            // A master that follows is no primary; a primary followed again replicates again.
            EventKind::BackupFollows { backup, .. } => {
                self.alone.remove(backup);
                self.alone.remove(master);
            }
            EventKind::Takeover {
                coordinator, term, ..
            } => {
                let first = self
                    .seen_takeovers
                    .insert((coordinator.clone(), *term, event.clock));
                if !first {
                    return out;
                }
                // Its own terms only go up.
                let last = self.own_terms.get(coordinator).copied().unwrap_or(0);
                if *term < last {
                    let text = format!(
                        "{coordinator} took over in term {term} after taking over in term {last}: terms only go up"
                    );
                    out.extend(self.raise(
                        at_ms,
                        AlarmKind::TermBackwards,
                        format!("{coordinator}:{term}"),
                        text,
                        vec![coordinator.clone()],
                    ));
                }
                self.own_terms.insert(coordinator.clone(), last.max(*term));
                self.took_over_at.insert(coordinator.clone(), at_ms);
                match self.takeovers.get(term).cloned() {
                    Some(other) if other != *coordinator => {
                        let text = format!(
                            "{other} and {coordinator} both took over in term {term}: two primaries in one term"
                        );
                        out.extend(self.raise(
                            at_ms,
                            AlarmKind::SplitBrain,
                            format!("term {term}"),
                            text,
                            vec![other, coordinator.clone()],
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.takeovers.insert(*term, coordinator.clone());
                    }
                }
            }
            EventKind::JobSubmitted { job, data, .. } => {
                let (asynchronous, alone) = (self.async_replication, &self.alone);
                let took_over = &self.took_over_at;
                // `a` acknowledged its version without replicating it while `b` served: it went
                // on alone (dropped its backup: the replies it held went out unreplicated), or,
                // replicating asynchronously, took it after `b` had taken over (one taken
                // before, by a primary that died, is lost, not split).
                let at_once = |a: &str, a_at: u64, b: &str| {
                    alone.contains(a)
                        || (asynchronous && took_over.get(b).is_some_and(|t| a_at >= *t))
                };
                let version = Version {
                    master: intern(&mut self.masters, master),
                    clock: event.clock,
                    data: data.clone(),
                    at_ms,
                };
                let Some(versions) = self.submitted.get_mut(job) else {
                    // The first version of this id: nothing to compare it with.
                    self.submitted.insert(
                        *job,
                        Versions {
                            first: version,
                            more: Vec::new(),
                        },
                    );
                    self.submitted_order.push_back(*job);
                    if self.submitted_order.len() > SUBMISSIONS_KEPT
                        && let Some(old) = self.submitted_order.pop_front()
                    {
                        self.submitted.remove(&old);
                    }
                    return out;
                };
                let same = |v: &Version| v.clock == event.clock && v.data == *data;
                if same(&versions.first) || versions.more.iter().any(same) {
                    return out;
                }
                let first = versions.first.clone();
                versions.more.push(version);
                // Two versions of one id: a split brain if one of the two masters accepted it
                // without replicating while the other had taken over (otherwise it was never
                // acknowledged, or its master was gone before the other began).
                if !(at_once(&first.master, first.at_ms, master)
                    || at_once(master, at_ms, &first.master))
                {
                    return out;
                }
                let (first, first_data) = (first.master.to_string(), first.data);
                let text = if first == master {
                    format!("{job} was given twice by {master} ({first_data:?}, then {data:?})")
                } else {
                    format!(
                        "{job} is {first_data:?} at {first} and {data:?} at {master}: two masters accepted jobs at once"
                    )
                };
                let mut nodes = vec![first, master.to_string()];
                nodes.sort();
                nodes.dedup();
                // Said once per pair of masters: the first job is the evidence.
                let key = format!("jobs {}", nodes.join(" "));
                out.extend(self.raise(at_ms, AlarmKind::SplitBrain, key, text, nodes));
            }
            _ => {}
        }
        out
    }

    /// An event the reading took, once applied to `view`; `own`: it came from the primary
    /// (not an election event of another master). The primary's clock and the reading's term
    /// only go up (a takeover starts the clock over from the new primary's); results, and what
    /// each worker holds.
    pub fn applied(
        &mut self,
        at_ms: u64,
        event: &ClusterEvent,
        own: bool,
        view: &ClusterView,
    ) -> Vec<Alarm> {
        let mut out = Vec::new();
        let primary = view.primary.as_str();
        if matches!(event.kind, EventKind::Takeover { .. }) {
            self.reading_clock = event.clock;
        } else if own && event.clock < self.reading_clock {
            let text = format!(
                "{primary}'s events went back in Lamport time: {} after {} ({})",
                event.clock,
                self.reading_clock,
                event.kind.name()
            );
            let key = format!("{primary}@{}", event.clock);
            out.extend(self.raise(
                at_ms,
                AlarmKind::ClockBackwards,
                key,
                text,
                vec![primary.to_string()],
            ));
        }
        if own {
            self.reading_clock = self.reading_clock.max(event.clock);
        }
        if view.term < self.reading_term {
            let text = format!(
                "the cluster's term went back from {} to {} (primary {primary})",
                self.reading_term, view.term
            );
            out.extend(self.raise(
                at_ms,
                AlarmKind::TermBackwards,
                format!("reading:{}", view.term),
                text,
                vec![primary.to_string()],
            ));
        }
        self.reading_term = self.reading_term.max(view.term);
        match &event.kind {
            EventKind::DuplicateResult { job, worker } => {
                let text =
                    format!("{job} ran twice: a second result came from {worker} (at-least-once)");
                out.extend(self.raise(
                    at_ms,
                    AlarmKind::DoubleRun,
                    format!("{job}"),
                    text,
                    vec![worker.clone()],
                ));
            }
            EventKind::JobAssigned { worker, .. } | EventKind::JobStarted { worker, .. } => {
                if let Some(w) = view.state.workers.get(worker)
                    && w.running.len() > w.slots as usize
                {
                    let text = format!(
                        "{worker} holds {} jobs with {} slots",
                        w.running.len(),
                        w.slots
                    );
                    let key = format!("{worker}:{}", w.running.len());
                    out.extend(self.raise(
                        at_ms,
                        AlarmKind::OverSlots,
                        key,
                        text,
                        vec![worker.clone()],
                    ));
                }
            }
            _ => {}
        }
        out
    }

    /// After a failover (the reading started over from the new primary): its clock counts from
    /// here, and every job acknowledged to the operator must still be known.
    pub fn after_failover<'a>(
        &mut self,
        at_ms: u64,
        view: &ClusterView,
        acknowledged: impl IntoIterator<Item = &'a JobId>,
    ) -> Vec<Alarm> {
        self.reading_clock = view.state.last_clock;
        let lost: Vec<JobId> = acknowledged
            .into_iter()
            .filter(|id| !view.state.jobs.contains_key(id))
            .copied()
            .collect();
        let mut out = Vec::new();
        for job in lost {
            let text = format!(
                "{job} was acknowledged, and {} (primary in term {}) does not know it",
                view.primary, view.term
            );
            out.extend(self.raise(
                at_ms,
                AlarmKind::LostJob,
                format!("{job}"),
                text,
                vec![view.primary.clone()],
            ));
        }
        out
    }

    /// The chat servers' entry counts as last read (the live ones), and whether every link
    /// between chat servers is whole (not cut, not lossy).
    pub fn chat(
        &mut self,
        at_ms: u64,
        entries: &BTreeMap<String, u64>,
        links_whole: bool,
    ) -> Vec<Alarm> {
        let low = entries.iter().min_by_key(|(_, n)| **n);
        let high = entries.iter().max_by_key(|(_, n)| **n);
        let apart = matches!((low, high), (Some((_, l)), Some((_, h))) if l != h);
        if !(apart && links_whole) {
            self.chat_apart_since = None;
            return Vec::new();
        }
        let since = *self.chat_apart_since.get_or_insert(at_ms);
        if at_ms.saturating_sub(since) < CHAT_DIVERGED_MS {
            return Vec::new();
        }
        let (Some((l, ln)), Some((h, hn))) = (low, high) else {
            return Vec::new();
        };
        let text = format!(
            "{h} holds {hn} entries and {l} {ln}, {}s after every link between them was whole",
            CHAT_DIVERGED_MS / 1000
        );
        let key = format!("since {since}");
        self.raise(
            at_ms,
            AlarmKind::ChatDiverged,
            key,
            text,
            vec![h.clone(), l.clone()],
        )
        .into_iter()
        .collect()
    }
}

#[cfg(test)]
mod tests;
