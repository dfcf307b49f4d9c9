//! One timeline for the whole run, and the measured life of every fault.
//!
//! Everything that happens lands here with the time since the run began: nodes starting and
//! exiting, faults injected, banners from scenarios, and the coordinator's own events
//! (membership, jobs). The [`FaultTracker`] watches the coordinator's events after each fault
//! to measure two things a class wants to see:
//!
//! - **detected**: when the cluster noticed — the coordinator declared the broken worker dead —
//!   and who noticed;
//! - **recovered**: when the cluster had repaired itself — every job the dead worker held was
//!   running again on another worker (at once, if it held none).

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::protocol::message::JobId;
use crate::role::event::{ClusterEvent, EventKind};

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    /// Milliseconds since the run began.
    pub at_ms: u64,
    /// Who it comes from: a node's name, `supervisor`, or `scenario`.
    pub source: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: TimelineKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineKind {
    /// A node was launched (and is ready).
    NodeStarted {
        /// The node.
        node: String,
        /// Its process id, for a process.
        pid: Option<u32>,
        /// Where it listens, for a server.
        address: Option<String>,
    },
    /// A node's process ended.
    NodeExited {
        /// The node.
        node: String,
        /// How: "exit code 0", "killed by SIGKILL" …
        status: String,
    },
    /// The operator (or a scenario) did something to the cluster.
    Action {
        /// Fault number, for the disruptive actions that are measured.
        fault: Option<usize>,
        /// `kill`, `pause`, `partition` …
        action: String,
        /// The node or link acted on.
        target: String,
        /// The action as written (`partition coordinator <-> worker-2`).
        text: String,
    },
    /// A fault was noticed by the cluster.
    Detected {
        /// The fault.
        fault: usize,
        /// Its action.
        action: String,
        /// Its target.
        target: String,
        /// Who noticed.
        by: String,
        /// Milliseconds after the fault.
        after_ms: u64,
    },
    /// The cluster repaired itself after a fault.
    Recovered {
        /// The fault.
        fault: usize,
        /// Its action.
        action: String,
        /// Its target.
        target: String,
        /// Milliseconds after the fault.
        after_ms: u64,
    },
    /// An event of a coordinator.
    Cluster {
        /// The event.
        event: ClusterEvent,
    },
    /// A banner (`say`).
    Say {
        /// The text.
        text: String,
    },
    /// A note from the supervisor (a node that did not join in time, …).
    Note {
        /// The text.
        text: String,
    },
}

impl fmt::Display for TimelineEvent {
    /// `  4.012s  coordinator   worker-2 is dead (connection closed)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.at_ms as f64 / 1000.0;
        write!(f, "{seconds:8.3}s  {:<12}  ", self.source)?;
        match &self.kind {
            TimelineKind::NodeStarted { node, pid, address } => {
                write!(f, "{node} started")?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid})")?;
                }
                if let Some(address) = address {
                    write!(f, " on {address}")?;
                }
                Ok(())
            }
            TimelineKind::NodeExited { node, status } => write!(f, "{node} exited: {status}"),
            TimelineKind::Action {
                fault: Some(n),
                text,
                ..
            } => write!(f, "FAULT #{n}: {text}"),
            TimelineKind::Action { text, .. } => write!(f, "{text}"),
            TimelineKind::Detected {
                fault,
                action,
                target,
                by,
                after_ms,
            } => {
                write!(
                    f,
                    "DETECTED #{fault} ({action} {target}) by {by} after {after_ms}ms"
                )
            }
            TimelineKind::Recovered {
                fault,
                action,
                target,
                after_ms,
            } => {
                write!(
                    f,
                    "RECOVERED #{fault} ({action} {target}) after {after_ms}ms"
                )
            }
            TimelineKind::Cluster { event } => write!(f, "{}", event.kind),
            TimelineKind::Say { text } => write!(f, ">>> {text}"),
            TimelineKind::Note { text } => write!(f, "note: {text}"),
        }
    }
}

/// A fault and what came of it, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultRecord {
    /// `kill`, `pause`, `restart`, `partition`, `latency`, `loss`, `skew`.
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
    #[serde(skip)]
    phase: Phase,
}

/// Where a fault is in being noticed and repaired.
#[derive(Debug, Clone, PartialEq, Default)]
enum Phase {
    /// Nothing to watch for (a fault on a link nobody uses, on a master …).
    #[default]
    Unwatched,
    /// Waiting for the coordinator to declare this worker dead.
    Waiting(String),
    /// Declared dead; its jobs are being requeued (they follow the death in one burst).
    Requeuing(String, BTreeSet<JobId>),
    /// Waiting for these requeued jobs to run again.
    Recovering(BTreeSet<JobId>),
    /// Done.
    Recovered,
    /// Waiting for a backup to take over from this primary: that is both noticing the fault
    /// and recovering from it (a new primary serves).
    WaitingTakeover,
    /// A partition between masters: noticed when one of them starts an election (and if one
    /// takes over, recovered then).
    WaitingElection(Vec<String>),
}

/// Measures detection and recovery of every fault.
#[derive(Debug, Default)]
pub struct FaultTracker {
    faults: Vec<FaultRecord>,
}

/// How long after a detection its burst of requeues is surely over.
const BURST_MS: u64 = 100;

impl FaultTracker {
    /// Records a fault at `at_ms`; `watch` is the worker it should make the coordinator declare
    /// dead, if any. Returns its number (from 1).
    pub fn fault(
        &mut self,
        at_ms: u64,
        action: &str,
        target: &str,
        watch: Option<String>,
    ) -> usize {
        // A newer fault on the same worker takes over: what is noticed from now on is its doing
        // (a partition after a latency change kills the worker, not the latency).
        if let Some(worker) = &watch {
            for older in &mut self.faults {
                if older.phase == Phase::Waiting(worker.clone()) {
                    older.phase = Phase::Unwatched;
                }
            }
        }
        self.faults.push(FaultRecord {
            action: action.to_string(),
            target: target.to_string(),
            at_ms,
            detected_ms: None,
            detected_by: None,
            recovered_ms: None,
            phase: watch.map_or(Phase::Unwatched, Phase::Waiting),
        });
        self.faults.len()
    }

    /// Records a fault on the primary: it is detected and recovered when a backup takes over.
    pub fn fault_on_primary(&mut self, at_ms: u64, action: &str, target: &str) -> usize {
        let n = self.fault(at_ms, action, target, None);
        self.faults[n - 1].phase = Phase::WaitingTakeover;
        n
    }

    /// Records a partition between two masters: it is detected when one of them starts an
    /// election.
    pub fn fault_between_masters(
        &mut self,
        at_ms: u64,
        action: &str,
        target: &str,
        masters: Vec<String>,
    ) -> usize {
        let n = self.fault(at_ms, action, target, None);
        self.faults[n - 1].phase = Phase::WaitingElection(masters);
        n
    }

    /// Every fault so far.
    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    /// Looks at one coordinator event (from `source`, seen at `at_ms`); returns the timeline
    /// entries it completes.
    pub fn observe(&mut self, at_ms: u64, source: &str, event: &ClusterEvent) -> Vec<TimelineKind> {
        let mut out = Vec::new();
        for (i, fault) in self.faults.iter_mut().enumerate() {
            let number = i + 1;
            match (&mut fault.phase, &event.kind) {
                (Phase::Waiting(watched), EventKind::WorkerDead { worker, .. })
                    if worker == watched =>
                {
                    fault.detected_ms = Some(at_ms);
                    fault.detected_by = Some(source.to_string());
                    out.push(TimelineKind::Detected {
                        fault: number,
                        action: fault.action.clone(),
                        target: fault.target.clone(),
                        by: source.to_string(),
                        after_ms: at_ms.saturating_sub(fault.at_ms),
                    });
                    fault.phase = Phase::Requeuing(worker.clone(), BTreeSet::new());
                }
                (Phase::WaitingTakeover, EventKind::Takeover { coordinator, .. }) => {
                    // Noticing a dead primary and replacing it are one act; a partition between
                    // masters was noticed earlier, by the election.
                    if fault.detected_ms.is_none() {
                        fault.detected_ms = Some(at_ms);
                        fault.detected_by = Some(coordinator.clone());
                        out.push(TimelineKind::Detected {
                            fault: number,
                            action: fault.action.clone(),
                            target: fault.target.clone(),
                            by: coordinator.clone(),
                            after_ms: at_ms.saturating_sub(fault.at_ms),
                        });
                    }
                    out.extend(fault.recovered(number, at_ms));
                }
                (Phase::WaitingElection(masters), EventKind::ElectionStarted { candidate, .. })
                    if masters.contains(candidate) =>
                {
                    fault.detected_ms = Some(at_ms);
                    fault.detected_by = Some(candidate.clone());
                    out.push(TimelineKind::Detected {
                        fault: number,
                        action: fault.action.clone(),
                        target: fault.target.clone(),
                        by: candidate.clone(),
                        after_ms: at_ms.saturating_sub(fault.at_ms),
                    });
                    fault.phase = Phase::WaitingTakeover;
                }
                (Phase::Requeuing(watched, jobs), EventKind::JobRequeued { job, worker, .. })
                    if worker == watched =>
                {
                    jobs.insert(*job);
                }
                (Phase::Requeuing(_, jobs), _) => {
                    // The burst of requeues is over.
                    let jobs = std::mem::take(jobs);
                    fault.phase = Phase::Recovering(jobs);
                    out.extend(fault.progress(number, at_ms, &event.kind));
                }
                (Phase::Recovering(_), kind) => out.extend(fault.progress(number, at_ms, kind)),
                _ => {}
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
                fault.phase = Phase::Recovering(jobs);
            }
            if fault.phase == Phase::Recovering(BTreeSet::new()) {
                out.extend(fault.recovered(i + 1, detected));
            }
        }
        out
    }
}

impl FaultRecord {
    /// A requeued job ran again (or finished): the fault recovers when none is left.
    fn progress(&mut self, number: usize, at_ms: u64, kind: &EventKind) -> Option<TimelineKind> {
        let Phase::Recovering(jobs) = &mut self.phase else {
            return None;
        };
        if let EventKind::JobStarted { job, .. }
        | EventKind::JobCompleted { job, .. }
        | EventKind::JobReclaimed { job, .. } = kind
        {
            jobs.remove(job);
        }
        if !jobs.is_empty() {
            return None;
        }
        // No jobs at all: recovered when detected; otherwise now.
        let at = if kind_moves_a_job(kind) {
            at_ms
        } else {
            self.detected_ms.unwrap_or(at_ms)
        };
        self.recovered(number, at)
    }

    fn recovered(&mut self, number: usize, at_ms: u64) -> Option<TimelineKind> {
        self.phase = Phase::Recovered;
        self.recovered_ms = Some(at_ms);
        Some(TimelineKind::Recovered {
            fault: number,
            action: self.action.clone(),
            target: self.target.clone(),
            after_ms: at_ms.saturating_sub(self.at_ms),
        })
    }
}

fn kind_moves_a_job(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::JobStarted { .. }
            | EventKind::JobCompleted { .. }
            | EventKind::JobReclaimed { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: EventKind) -> ClusterEvent {
        ClusterEvent {
            at_ms: 0,
            clock: 0,
            kind,
        }
    }

    #[test]
    fn detection_then_recovery_when_the_requeued_jobs_run_again() {
        let mut t = FaultTracker::default();
        let n = t.fault(1000, "kill", "w2", Some("w2".into()));
        assert!(
            t.observe(
                1100,
                "c",
                &ev(EventKind::WorkerDead {
                    worker: "w1".into(),
                    reason: "x".into()
                })
            )
            .is_empty()
        );
        let out = t.observe(
            1300,
            "c",
            &ev(EventKind::WorkerDead {
                worker: "w2".into(),
                reason: "x".into(),
            }),
        );
        assert!(
            matches!(out[..], [TimelineKind::Detected { fault, after_ms: 300, .. }] if fault == n)
        );
        for job in [1, 2] {
            t.observe(
                1300,
                "c",
                &ev(EventKind::JobRequeued {
                    job: JobId(job),
                    worker: "w2".into(),
                    reason: "r".into(),
                }),
            );
        }
        t.observe(
            1300,
            "c",
            &ev(EventKind::JobAssigned {
                job: JobId(1),
                worker: "w1".into(),
                attempt: 2,
            }),
        );
        assert!(
            t.observe(
                1350,
                "c",
                &ev(EventKind::JobStarted {
                    job: JobId(1),
                    worker: "w1".into()
                })
            )
            .is_empty()
        );
        let out = t.observe(
            1400,
            "c",
            &ev(EventKind::JobStarted {
                job: JobId(2),
                worker: "w3".into(),
            }),
        );
        assert!(matches!(
            out[..],
            [TimelineKind::Recovered { after_ms: 400, .. }]
        ));
        let f = &t.faults()[0];
        assert_eq!(
            (f.detected_ms, f.detected_by.as_deref(), f.recovered_ms),
            (Some(1300), Some("c"), Some(1400))
        );
    }

    #[test]
    fn a_newer_fault_on_the_same_worker_takes_over_the_watch() {
        let mut t = FaultTracker::default();
        t.fault(1000, "latency", "c <-> w", Some("w".into()));
        t.fault(5000, "partition", "c <-> w", Some("w".into()));
        t.observe(
            6500,
            "c",
            &ev(EventKind::WorkerDead {
                worker: "w".into(),
                reason: "x".into(),
            }),
        );
        assert_eq!(
            t.faults()[0].detected_ms,
            None,
            "the latency did not kill it"
        );
        assert_eq!(t.faults()[1].detected_ms, Some(6500));
    }

    #[test]
    fn a_worker_without_jobs_recovers_when_detected() {
        let mut t = FaultTracker::default();
        t.fault(1000, "pause", "w", Some("w".into()));
        t.observe(
            2500,
            "c",
            &ev(EventKind::WorkerDead {
                worker: "w".into(),
                reason: "x".into(),
            }),
        );
        assert!(t.settle(2550).is_empty(), "the burst may still be arriving");
        let out = t.settle(2700);
        assert!(matches!(
            out[..],
            [TimelineKind::Recovered { after_ms: 1500, .. }]
        ));
        assert_eq!(t.faults()[0].recovered_ms, Some(2500));
        assert!(t.settle(3000).is_empty(), "reported once");
    }
}
