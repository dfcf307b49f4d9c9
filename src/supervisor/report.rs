//! What the supervisor reports: each node's status (the facts of its process and of what was
//! done to it), and the run's summary.

use super::*;
use crate::protocol::message::PeerRole;

use crate::view::Faults;

/// Jobs at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobTotals {
    /// Every job the coordinator knows, and any it lost.
    pub submitted: usize,
    /// Completed.
    pub completed: usize,
    /// Failed for good.
    pub failed: usize,
    /// Accepted, but neither completed, failed, nor still queued or running.
    pub lost: usize,
    /// Still queued, assigned, running or waiting to retry when the run ended. Always
    /// `submitted == completed + failed + lost + unfinished`.
    pub unfinished: usize,
}

/// The summary of a run (`--summary-json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `SYSTEM_NAME`.
    pub system: String,
    /// The primary at the end.
    pub primary: String,
    pub term: u64,
    /// Jobs.
    pub jobs: JobTotals,
    /// Every node.
    pub nodes: Vec<NodeReport>,
    /// Every fault, with its measured detection and recovery.
    pub faults: Vec<FaultRecord>,
}

/// A node in the run's summary: its role and the cluster's verdict at the end, and what was
/// done to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    pub name: String,
    /// `master`, `worker` …
    #[serde(rename = "type")]
    pub kind: String,
    /// `primary`, `backup`, `was primary`, `worker` …
    pub role: String,
    /// The cluster's verdict: `healthy`, `dead`, `stopped` …
    pub state: String,
    /// What was done to it that still holds: `paused`, `killed`, `1 link cut` …
    pub tags: Vec<String>,
}

impl Supervisor {
    /// The facts about one node: its process, and the faults the operator put on it.
    pub(super) fn status(&self, name: &str) -> Option<NodeStatus> {
        let m = self.nodes.get(name)?;
        let process = if m.stopped {
            Process::Stopped
        } else if m.node.kind == NodeKind::Client {
            Process::NotLaunched
        } else if m.running.is_none() {
            if m.exited {
                Process::Exited
            } else {
                Process::NotLaunched
            }
        } else if m.ready {
            Process::Running
        } else {
            Process::Starting
        };
        let pid = match &m.running {
            Some(RunningAs::Process { pid, .. }) => Some(*pid),
            _ => None,
        };
        Some(NodeStatus {
            name: name.to_string(),
            kind: m.node.kind.as_str().to_string(),
            process,
            pid,
            address: m.address.clone(),
            faults: self.faults_of(name, m),
        })
    }

    /// What was done to a node and still holds: a pause, a kill not yet undone, its links.
    fn faults_of(&self, name: &str, m: &SupervisedNode) -> Faults {
        let mut faults = Faults {
            paused: m.paused && m.running.is_some(),
            killed: m.killed && m.running.is_none(),
            restarting: m.restart_pending,
            exit: (m.exited && m.running.is_none() && !m.killed && !m.stopped)
                .then(|| m.exit.clone())
                .flatten(),
            skew_ms: m.control.skew(),
            ..Faults::default()
        };
        let mut cut = BTreeSet::new();
        let mut links = 0;
        let mut cut_links = 0;
        for ((from, to), state) in self.shaper.all() {
            let peer = if from == name {
                to
            } else if to == name {
                from
            } else {
                continue;
            };
            links += 1;
            if state.cut {
                cut_links += 1;
                cut.insert(peer);
            }
            let latency = state.link.latency.as_millis() as u64;
            if latency > faults.latency_ms {
                faults.latency_ms = latency;
                faults.jitter_ms = state.link.jitter.as_millis() as u64;
            }
            faults.loss = faults.loss.max(state.link.loss.0);
        }
        faults.cut_off = links > 0 && cut_links == links;
        faults.cut = cut.into_iter().collect();
        faults
    }

    pub(super) fn statuses(&self) -> Vec<NodeStatus> {
        self.order.iter().filter_map(|n| self.status(n)).collect()
    }

    pub(super) fn publish(&self, name: &str) {
        if let Some(status) = self.status(name) {
            let _ = self.updates.send(Update::Node(status));
        }
    }

    /// The run's summary, asked of the coordinator while it still runs.
    pub(super) async fn report(&mut self) -> RunReport {
        let mut jobs = JobTotals::default();
        let mut term = self.view.term;
        let counts = self.view.state.counts;
        if let Some(addr) = self.primary_addr
            && let Ok(mut client) = Client::connect_as(
                &addr.to_string(),
                "supervisor",
                Some((&self.topology.peer_key(), PeerRole::Supervisor)),
                crate::protocol::handshake::TIMEOUT,
            )
            .await
        {
            if let Ok(Message::StatusReport { report }) =
                client.request(Message::Status { job: None }).await
            {
                term = report.term;
                jobs.completed = report.jobs.completed;
                jobs.failed = report.jobs.failed;
                jobs.unfinished = report.jobs.queued + report.jobs.assigned + report.jobs.running;
                jobs.submitted = report.jobs.total();
            }
            // Jobs acknowledged to the operator and not seen to end: the primary must still
            // know them. (A job an old primary took but never acknowledged — it could not
            // replicate it — was never accepted, and the new primary rightly does not know it.)
            let open: Vec<JobId> = self
                .acknowledged
                .iter()
                .filter(|id| {
                    self.view
                        .state
                        .jobs
                        .get(id)
                        .is_none_or(|j| !j.state.is_final())
                })
                .copied()
                .collect();
            for id in open {
                if let Ok(Message::Error { .. }) =
                    client.request(Message::Status { job: Some(id) }).await
                {
                    jobs.lost += 1;
                }
            }
            jobs.submitted += jobs.lost;
        } else {
            // No primary to ask: the last reading's open jobs are unfinished, not known lost.
            jobs.completed = counts.completed;
            jobs.failed = counts.failed;
            jobs.submitted = counts.total();
            jobs.unfinished = counts.queued + counts.assigned + counts.running;
        }
        let now = self.now();
        let nodes = self
            .statuses()
            .into_iter()
            .map(|status| NodeReport {
                role: self.view.role(&status).as_str().to_string(),
                state: self.view.verdict(&status, now).as_str().to_string(),
                tags: status.faults.tags(),
                name: status.name,
                kind: status.kind,
            })
            .collect();
        RunReport {
            system: self.topology.globals.system_name.clone(),
            primary: self.view.primary.clone(),
            term,
            jobs,
            nodes,
            faults: self.tracker.faults().to_vec(),
        }
    }
}

impl std::fmt::Display for RunReport {
    /// The summary the headless run prints, and the console when it quits: the primary, the
    /// jobs (in words, unfinished ones too) and each fault with its measured times.
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let report = self;
        let j = &report.jobs;
        writeln!(
            out,
            "== {}: primary {} (term {})",
            report.system, report.primary, report.term
        )?;
        writeln!(
            out,
            "   jobs: {} submitted, {} completed, {} failed, {} lost, {} unfinished",
            j.submitted, j.completed, j.failed, j.lost, j.unfinished
        )?;
        for f in &report.faults {
            let ms = |v: Option<u64>| {
                v.map_or("-".to_string(), |v| {
                    format!("{}ms", v.saturating_sub(f.at_ms))
                })
            };
            let by = f
                .detected_by
                .as_deref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            let outcome = f
                .outcome
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default();
            if f.detected_ms.is_none() && f.recovered_ms.is_none() {
                // A restart, a latency change, a repair: nothing for the cluster to detect; what
                // came of it instead.
                let outcome = f
                    .outcome
                    .as_deref()
                    .map(|o| format!(": {o}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "   {} {} at {}ms{outcome}",
                    f.action, f.target, f.at_ms
                )?;
                continue;
            }
            writeln!(
                out,
                "   {} {} at {}ms: detected after {}{by}, recovered after {}{outcome}",
                f.action,
                f.target,
                f.at_ms,
                ms(f.detected_ms),
                ms(f.recovered_ms)
            )?;
        }
        Ok(())
    }
}
