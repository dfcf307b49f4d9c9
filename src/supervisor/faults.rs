//! The measured life of every action the operator takes: what the cluster noticed, when, and
//! how it recovered — or, for an action with nothing to notice, what came of it.
//!
//! The [`FaultTracker`] watches the cluster's events after each action to measure what a class
//! wants to see:
//!
//! - **detected**: when the cluster noticed, and who — the coordinator declared the broken
//!   worker dead, or a backup started an election because its primary went silent or away;
//! - **recovered**: when the cluster had repaired itself — every job the dead worker held was
//!   running again elsewhere (at once, if it held none), or a backup served as the new primary;
//! - **outcome**, for the rest: a restarted node is up again (after how long), a resumed or
//!   healed worker rejoined, a latency or loss change was applied, a repair came before anyone
//!   noticed the fault.
//!
//! Recovery is never earlier than detection, and every row ends: a fault repaired before the
//! cluster noticed it says so instead of waiting forever.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::timeline::TimelineKind;
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::message::JobId;

/// How long after a detection its burst of requeues is surely over.
const BURST_MS: u64 = 100;

/// What the cluster should do in answer to an action, for the tracker to watch for.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    /// Nothing to notice: this is the outcome, at once (`applied`).
    Done(String),
    /// This worker should be declared dead (a kill, pause or partition of a worker).
    Worker(String),
    /// Done at once (this is what came of it), but it may make this worker late enough to be
    /// declared dead (a skew, latency or loss on its link): that would be its detection.
    Affects(String, String),
    /// The primary is hit: a backup's election notices, a takeover recovers.
    Primary(String),
    /// A partition between these masters: one of them starting an election notices.
    Masters(Vec<String>),
    /// A backup is hit: the primary noticing it no longer follows is the detection.
    Backup(String),
    /// A restart: done when this node is up again.
    Up(String),
    /// A repair (resume, heal): these workers, dead now, should come back.
    Rejoin(Vec<String>),
    /// Done at once (this is what came of it), and the time master should notice this clock
    /// is off (a round moves it) and bring it back (a round finds it within tolerance).
    Clock(String, String),
    /// The chat servers' elected time master is hit (a topology without masters): another's
    /// election notices, its first round recovers.
    TimeMaster(String),
}

/// An action and what came of it, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRecord {
    /// `kill`, `pause`, `resume`, `restart`, `partition`, `heal`, `latency`, `loss`, `skew`.
    pub action: String,
    /// The node (or link) it hit.
    pub target: String,
    /// When, in milliseconds since the run began.
    pub at_ms: u64,
    /// When the cluster noticed.
    pub detected_ms: Option<u64>,
    /// Who noticed.
    pub detected_by: Option<String>,
    /// When the cluster had repaired itself.
    pub recovered_ms: Option<u64>,
    /// What came of it, when there was nothing to detect (`up again after 0.42 s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip)]
    phase: Phase,
}

/// Where an action is in being noticed and repaired.
#[derive(Debug, Clone, PartialEq, Default)]
enum Phase {
    /// Nothing more will come of it.
    #[default]
    Settled,
    /// Waiting for the coordinator to declare this worker dead.
    Waiting(String),
    /// Declared dead; its jobs are being requeued (they follow the death in one burst).
    Requeuing(String, BTreeSet<JobId>),
    /// Waiting for these requeued jobs to run again; the ones that did, and where.
    Recovering(BTreeSet<JobId>, Vec<(JobId, String)>),
    /// Waiting for an election by one of these masters (any master but the target, if none).
    WaitingElection(Option<Vec<String>>),
    /// Noticed by an election: waiting for a master to take over.
    WaitingTakeover,
    /// Waiting for the primary to lose this backup.
    WaitingBackup(String),
    /// Waiting for this node to be up again.
    WaitingUp(String),
    /// Waiting for these workers to rejoin.
    WaitingRejoin(BTreeSet<String>),
    /// Waiting for a clock round to move this node's clock.
    WaitingClock(String),
    /// Moved: waiting for a round that finds it within tolerance.
    Correcting(String),
    /// Waiting for the chat servers to elect a time master other than this one.
    WaitingTimeMaster(String),
    /// Elected: waiting for this time master's first round.
    WaitingRound(String),
}

/// Measures what came of every action.
#[derive(Debug, Default)]
pub struct FaultTracker {
    faults: Vec<FaultRecord>,
    /// Each master's cluster, in a topology of several: another cluster declaring it dead
    /// (`peer_dead`) notices a fault on it.
    clusters: BTreeMap<String, String>,
}

impl FaultTracker {
    /// Says which cluster each master belongs to (a topology with several clusters).
    pub fn know_clusters(&mut self, masters: impl IntoIterator<Item = (String, String)>) {
        self.clusters = masters.into_iter().collect();
    }

    /// Records an action at `at_ms` and what to watch for. Returns its number (from 1) and the
    /// timeline entries it settles at once.
    pub fn record(
        &mut self,
        at_ms: u64,
        action: &str,
        target: &str,
        watch: Watch,
    ) -> (usize, Vec<TimelineKind>) {
        // A newer fault on the same worker takes over: what is noticed from now on is its doing
        // (a partition after a latency change kills the worker, not the latency).
        if let Watch::Worker(worker) | Watch::Affects(worker, _) = &watch {
            for older in &mut self.faults {
                if older.phase == Phase::Waiting(worker.clone()) {
                    older.phase = Phase::Settled;
                }
            }
        }
        let (phase, outcome) = match watch {
            Watch::Done(text) => (Phase::Settled, Some(text)),
            Watch::Worker(worker) => (Phase::Waiting(worker), None),
            Watch::Affects(worker, text) => (Phase::Waiting(worker), Some(text)),
            Watch::Clock(node, text) => (Phase::WaitingClock(node), Some(text)),
            Watch::TimeMaster(node) => (Phase::WaitingTimeMaster(node), None),
            Watch::Primary(_) => (Phase::WaitingElection(None), None),
            Watch::Masters(masters) => (Phase::WaitingElection(Some(masters)), None),
            Watch::Backup(backup) => (Phase::WaitingBackup(backup), None),
            Watch::Up(node) => (Phase::WaitingUp(node), None),
            Watch::Rejoin(workers) if workers.is_empty() => (Phase::Settled, None),
            Watch::Rejoin(workers) => (Phase::WaitingRejoin(workers.into_iter().collect()), None),
        };
        self.faults.push(FaultRecord {
            action: action.to_string(),
            target: target.to_string(),
            at_ms,
            detected_ms: None,
            detected_by: None,
            recovered_ms: None,
            outcome: None,
            phase,
        });
        let number = self.faults.len();
        let fault = &mut self.faults[number - 1];
        let out = match outcome {
            Some(text) => {
                // Said, and nothing more is expected; a worker it makes late is still watched.
                let phase = std::mem::take(&mut fault.phase);
                let said = fault.outcome(number, text, true);
                fault.phase = phase;
                vec![said]
            }
            None => Vec::new(),
        };
        (number, out)
    }

    /// Every action so far.
    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    /// The nodes in `repaired` were resumed or their links healed: faults on them still waiting
    /// to be noticed never will be, and say so.
    pub fn repaired(&mut self, repaired: &[String]) -> Vec<TimelineKind> {
        let mut out = Vec::new();
        for (i, fault) in self.faults.iter_mut().enumerate() {
            let hit = |name: &str| repaired.iter().any(|r| r == name);
            let targets: Vec<&str> = fault.target.split(' ').collect();
            let text = match &fault.phase {
                Phase::Waiting(worker) if hit(worker) => "repaired before the cluster noticed",
                Phase::WaitingElection(_) if targets.iter().any(|t| hit(t)) => {
                    "repaired before anyone noticed"
                }
                Phase::WaitingTakeover if targets.iter().any(|t| hit(t)) => {
                    "repaired: no master took over"
                }
                Phase::WaitingBackup(backup) if hit(backup) => {
                    "repaired before the primary noticed"
                }
                _ => continue,
            };
            out.push(fault.outcome(i + 1, text.to_string(), true));
        }
        out
    }

    /// Node `name` is up (a server listens, a worker joined): restarts of it are done.
    pub fn up(&mut self, at_ms: u64, name: &str) -> Vec<TimelineKind> {
        let mut out = Vec::new();
        for (i, fault) in self.faults.iter_mut().enumerate() {
            if fault.phase == Phase::WaitingUp(name.to_string()) {
                let text = format!(
                    "up again after {}",
                    seconds(at_ms.saturating_sub(fault.at_ms))
                );
                out.push(fault.outcome(i + 1, text, true));
            }
        }
        out
    }

    /// Looks at one cluster event (from master `source`, seen at `at_ms`); returns the timeline
    /// entries it completes.
    pub fn observe(&mut self, at_ms: u64, source: &str, event: &ClusterEvent) -> Vec<TimelineKind> {
        if let EventKind::WorkerJoined { worker, .. } | EventKind::WorkerRejoined { worker, .. } =
            &event.kind
        {
            let mut out = self.up(at_ms, worker);
            out.extend(self.rejoined(at_ms, worker));
            return out;
        }
        let mut out = Vec::new();
        for (i, fault) in self.faults.iter_mut().enumerate() {
            let number = i + 1;
            match (&mut fault.phase, &event.kind) {
                (Phase::Waiting(watched), EventKind::WorkerDead { worker, .. })
                    if worker == watched =>
                {
                    out.push(fault.detected(number, at_ms, source));
                    fault.phase = Phase::Requeuing(worker.clone(), BTreeSet::new());
                }
                (Phase::WaitingElection(masters), EventKind::ElectionStarted { candidate, .. })
                    if masters.as_ref().map_or(
                        // A fault on the primary: any other master's election notices.
                        fault.target.split(' ').all(|t| t != candidate),
                        |m| m.contains(candidate),
                    ) =>
                {
                    out.push(fault.detected(number, at_ms, candidate));
                    fault.phase = Phase::WaitingTakeover;
                }
                // Another cluster's primary finds this cluster's primary dead: noticed.
                (Phase::WaitingElection(_), EventKind::PeerDead { cluster, .. })
                    if fault
                        .target
                        .split(' ')
                        .any(|t| self.clusters.get(t) == Some(cluster)) =>
                {
                    out.push(fault.detected(number, at_ms, source));
                    out.push(fault.outcome(
                        number,
                        format!(
                            "cluster {cluster} is dead to the other clusters: workers lent to it go home"
                        ),
                        false,
                    ));
                    fault.phase = Phase::WaitingTakeover;
                }
                (
                    Phase::WaitingElection(_) | Phase::WaitingTakeover,
                    EventKind::Takeover { coordinator, .. },
                ) => {
                    // A takeover without an election seen first: noticing and replacing were
                    // one act.
                    if fault.detected_ms.is_none() {
                        out.push(fault.detected(number, at_ms, coordinator));
                    }
                    out.push(fault.recovered(number, at_ms, Vec::new()));
                }
                (Phase::WaitingBackup(watched), EventKind::BackupLost { backup, .. })
                    if backup == watched =>
                {
                    out.push(fault.detected(number, at_ms, source));
                    out.push(fault.outcome(
                        number,
                        "the primary goes on without this backup".to_string(),
                        true,
                    ));
                }
                // The time master moves the clock: it noticed.
                (Phase::WaitingClock(node), EventKind::ClockRound { adjusted, .. })
                    if adjusted.contains_key(node.as_str()) =>
                {
                    let node = node.clone();
                    out.push(fault.detected(number, at_ms, source));
                    fault.phase = Phase::Correcting(node);
                }
                // A round finds it within tolerance: the clocks agree again.
                (
                    Phase::WaitingClock(node) | Phase::Correcting(node),
                    EventKind::ClockRound {
                        offsets, adjusted, ..
                    },
                ) if offsets.contains_key(node.as_str())
                    && !adjusted.contains_key(node.as_str()) =>
                {
                    if fault.detected_ms.is_none() {
                        out.push(fault.detected(number, at_ms, source));
                    }
                    out.push(fault.recovered(number, at_ms, Vec::new()));
                }
                // Another chat server won the election: noticed; its first round: recovered.
                (Phase::WaitingTimeMaster(old), EventKind::TimeMaster { master })
                    if master != old =>
                {
                    out.push(fault.detected(number, at_ms, master));
                    fault.phase = Phase::WaitingRound(master.clone());
                }
                (Phase::WaitingRound(master), EventKind::ClockRound { .. }) if source == master => {
                    out.push(fault.recovered(number, at_ms, Vec::new()));
                }
                (Phase::Requeuing(watched, jobs), EventKind::JobRequeued { job, worker, .. })
                    if worker == watched =>
                {
                    jobs.insert(*job);
                }
                (Phase::Requeuing(_, jobs), kind) => {
                    // The burst of requeues is over.
                    let jobs = std::mem::take(jobs);
                    fault.phase = Phase::Recovering(jobs, Vec::new());
                    out.extend(fault.progress(number, at_ms, kind));
                }
                (Phase::Recovering(..), kind) => out.extend(fault.progress(number, at_ms, kind)),
                _ => {}
            }
        }
        out
    }

    /// A worker came back: repairs that waited for it say so.
    fn rejoined(&mut self, at_ms: u64, worker: &str) -> Vec<TimelineKind> {
        let mut out = Vec::new();
        for (i, fault) in self.faults.iter_mut().enumerate() {
            if let Phase::WaitingRejoin(workers) = &mut fault.phase
                && workers.remove(worker)
            {
                let done = workers.is_empty();
                let text = format!(
                    "{worker} rejoined after {}",
                    seconds(at_ms.saturating_sub(fault.at_ms))
                );
                let text = match &fault.outcome {
                    Some(before) => format!("{before}; {text}"),
                    None => text,
                };
                out.push(fault.outcome(i + 1, text, done));
            }
        }
        out
    }

    /// Called now and then: a fault detected a while ago whose worker held no jobs has
    /// recovered the moment it was detected.
    pub fn settle(&mut self, at_ms: u64) -> Vec<TimelineKind> {
        let mut out = Vec::new();
        for (i, fault) in self.faults.iter_mut().enumerate() {
            let Some(detected) = fault.detected_ms else {
                continue;
            };
            let quiet = at_ms.saturating_sub(detected) >= BURST_MS;
            if let Phase::Requeuing(_, jobs) = &mut fault.phase
                && quiet
            {
                let jobs = std::mem::take(jobs);
                fault.phase = Phase::Recovering(jobs, Vec::new());
            }
            if matches!(&fault.phase, Phase::Recovering(jobs, _) if jobs.is_empty()) {
                let moved = match std::mem::take(&mut fault.phase) {
                    Phase::Recovering(_, moved) => moved,
                    _ => Vec::new(),
                };
                let at = if moved.is_empty() { detected } else { at_ms };
                out.push(fault.recovered(i + 1, at, moved));
            }
        }
        out
    }
}

impl FaultRecord {
    fn detected(&mut self, number: usize, at_ms: u64, by: &str) -> TimelineKind {
        self.detected_ms = Some(at_ms);
        self.detected_by = Some(by.to_string());
        TimelineKind::Detected {
            fault: number,
            action: self.action.clone(),
            target: self.target.clone(),
            by: by.to_string(),
            after_ms: at_ms.saturating_sub(self.at_ms),
            speed: None,
        }
    }

    /// A requeued job ran again (or finished): the fault recovers when none is left.
    fn progress(&mut self, number: usize, at_ms: u64, kind: &EventKind) -> Option<TimelineKind> {
        let Phase::Recovering(jobs, moved) = &mut self.phase else {
            return None;
        };
        if let EventKind::JobStarted { job, worker }
        | EventKind::JobCompleted { job, worker, .. }
        | EventKind::JobReclaimed { job, worker } = kind
            && jobs.remove(job)
        {
            moved.push((*job, worker.clone()));
        }
        if !jobs.is_empty() {
            return None;
        }
        let moved = std::mem::take(moved);
        // No jobs at all: recovered when detected; otherwise now.
        let at = if moved.is_empty() {
            self.detected_ms.unwrap_or(at_ms)
        } else {
            at_ms
        };
        Some(self.recovered(number, at, moved))
    }

    fn recovered(
        &mut self,
        number: usize,
        at_ms: u64,
        moved: Vec<(JobId, String)>,
    ) -> TimelineKind {
        // Never before it was noticed.
        let at_ms = at_ms.max(self.detected_ms.unwrap_or(0));
        self.phase = Phase::Settled;
        self.recovered_ms = Some(at_ms);
        TimelineKind::Recovered {
            fault: number,
            action: self.action.clone(),
            target: self.target.clone(),
            after_ms: at_ms.saturating_sub(self.at_ms),
            moved,
            speed: None,
        }
    }

    fn outcome(&mut self, number: usize, text: String, settled: bool) -> TimelineKind {
        if settled {
            self.phase = Phase::Settled;
        }
        self.outcome = Some(text.clone());
        TimelineKind::Outcome {
            fault: number,
            action: self.action.clone(),
            target: self.target.clone(),
            text,
            settled,
        }
    }
}

/// `0.42 s`, `12 ms`.
fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests;
