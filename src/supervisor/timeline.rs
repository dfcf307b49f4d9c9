//! One timeline for the whole run.
//!
//! Everything that happens lands here with the time since the run began: nodes starting and
//! exiting, actions taken, lines from scenarios, the masters' own events (membership, jobs,
//! elections), and what [`super::faults::FaultTracker`] measured of each action.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::message::JobId;

/// ` (cluster time at 0.2×)` after a time measured in slow motion; nothing in real time.
pub fn cluster_time(speed: Option<f64>) -> String {
    match speed {
        Some(scale) if scale < 1.0 => format!(" (cluster time at {scale}×)"),
        _ => String::new(),
    }
}

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineKind {
    /// A node was launched (and is ready).
    NodeStarted {
        node: String,
        /// Its process id, for a process.
        pid: Option<u32>,
        /// Where it listens, for a server.
        address: Option<String>,
    },
    /// A node's process ended.
    NodeExited {
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
        fault: usize,
        action: String,
        target: String,
        /// Who noticed.
        by: String,
        /// Milliseconds after the fault (cluster time).
        after_ms: u64,
        /// The cluster's pace when it was measured, if not real time (slow motion).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed: Option<f64>,
    },
    /// The cluster repaired itself after a fault.
    Recovered {
        fault: usize,
        action: String,
        target: String,
        /// Milliseconds after the fault.
        after_ms: u64,
        /// The jobs that moved to other workers, and where (for a dead worker's jobs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moved: Vec<(JobId, String)>,
        /// The cluster's pace when it was measured, if not real time (slow motion).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed: Option<f64>,
    },
    /// What came of an action with nothing for the cluster to detect (a restart, a heal, a
    /// latency change), or of a fault repaired before it was noticed.
    Outcome {
        /// The action's number.
        fault: usize,
        action: String,
        target: String,
        /// What came of it.
        text: String,
        /// Nothing more will come of it.
        settled: bool,
    },
    /// An event of a coordinator.
    Cluster { event: ClusterEvent },
    /// A banner (`say`).
    Say { text: String },
    /// The checker found a promise broken (or, `warning`, a job run twice).
    Alarm {
        /// `split_brain`, `lost_job` … (docs/ARCHITECTURE.md, "Alarms").
        alarm: String,
        text: String,
        nodes: Vec<String>,
        warning: bool,
    },
    /// A scenario's `expect` settled: it held, or its time was up.
    Expected {
        text: String,
        ok: bool,
        /// The values it read.
        seen: String,
        /// How long after its time it settled.
        after_ms: u64,
    },
    /// A note from the supervisor (a node that did not join in time, …).
    Note { text: String },
    /// The cluster's pace changed: cluster time per real time (1: real time).
    Speed { scale: f64 },
    /// A scenario begins: its times count from here.
    ScenarioBegins {
        name: String,
        /// How many steps it has.
        steps: usize,
    },
    /// A scenario's last step is done.
    ScenarioEnded { name: String },
    /// This run resumed an earlier one that did not end: the coordinators replayed their
    /// journals.
    Resumed {
        /// When the earlier run began (`10:42`), if it said.
        began: Option<String>,
        /// Jobs restored.
        jobs: usize,
        /// Of which completed.
        completed: usize,
        /// The primary now.
        primary: String,
        term: u64,
    },
}

impl TimelineKind {
    /// Whether a timeline shows it: job progress (it would drown the rest) and the cluster's
    /// bookkeeping (read results, compaction) advance the reading but are not shown.
    pub fn is_shown(&self) -> bool {
        match self {
            TimelineKind::Cluster { event } => {
                !matches!(event.kind, EventKind::JobProgress { .. }) && !event.kind.is_bookkeeping()
            }
            _ => true,
        }
    }
}

impl fmt::Display for TimelineEvent {
    /// `  4.012s  coordinator   worker-2 is dead (connection closed)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.at_ms as f64 / 1000.0;
        write!(f, "{seconds:8.3}s  {:<12}  {}", self.source, self.kind)
    }
}

impl fmt::Display for TimelineKind {
    /// What happened, in one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
                action,
                ..
            } => {
                let what = if matches!(action.as_str(), "resume" | "heal") {
                    "REPAIR"
                } else {
                    "FAULT"
                };
                write!(f, "{what} #{n}: {text}")
            }
            TimelineKind::Action { text, .. } => write!(f, "{text}"),
            TimelineKind::Detected {
                fault,
                action,
                target,
                by,
                after_ms,
                speed,
            } => {
                write!(
                    f,
                    "DETECTED #{fault} ({action} {target}) by {by} after {after_ms}ms{}",
                    cluster_time(*speed)
                )
            }
            TimelineKind::Recovered {
                fault,
                action,
                target,
                after_ms,
                moved,
                speed,
            } => {
                write!(
                    f,
                    "RECOVERED #{fault} ({action} {target}) after {after_ms}ms{}",
                    cluster_time(*speed)
                )?;
                for (i, (job, worker)) in moved.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { ", " };
                    write!(f, "{sep}{job} → {worker}")?;
                }
                Ok(())
            }
            TimelineKind::Cluster { event } => write!(f, "{}", event.kind),
            TimelineKind::Say { text } => write!(f, ">>> {text}"),
            TimelineKind::Speed { scale } if *scale >= 1.0 => {
                write!(f, "SPEED 1×: the cluster runs in real time again")
            }
            TimelineKind::Speed { scale } => write!(
                f,
                "SPEED {scale}×: the cluster runs {:.3}× slower; measured times are cluster time",
                1.0 / scale
            ),
            TimelineKind::Alarm {
                alarm,
                text,
                warning: false,
                ..
            } => write!(f, "ALARM {alarm}: {text}"),
            TimelineKind::Alarm { alarm, text, .. } => write!(f, "warning {alarm}: {text}"),
            TimelineKind::Expected {
                text,
                ok: true,
                seen,
                ..
            } => {
                write!(f, "✓ as expected: {text} ({seen})")
            }
            TimelineKind::Expected {
                text,
                ok: false,
                seen,
                after_ms,
            } => write!(
                f,
                "✗ NOT AS EXPECTED after {after_ms}ms: {text} (saw {seen})"
            ),
            TimelineKind::Note { text } => write!(f, "note: {text}"),
            TimelineKind::ScenarioBegins { name, steps } => {
                write!(f, "scenario {name} begins ({steps} steps)")
            }
            TimelineKind::ScenarioEnded { name } => write!(f, "scenario {name} ends"),
            TimelineKind::Resumed {
                began,
                jobs,
                completed,
                primary,
                term,
            } => {
                let of = began
                    .as_deref()
                    .map(|b| format!(" of {b}"))
                    .unwrap_or_default();
                write!(
                    f,
                    "resumed the run{of}: {jobs} jobs ({completed} completed), primary {primary}, term {term}"
                )
            }
            TimelineKind::Outcome {
                fault,
                text,
                action,
                target,
                ..
            } => write!(f, "OUTCOME #{fault} ({action} {target}): {text}"),
        }
    }
}
