//! What the supervisor reports: each node's status (the facts of its process and of what was
//! done to it), and the run's summary.

use super::*;

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
    /// Each cluster (one, in a topology without `cluster` keys): its primary and its jobs;
    /// `jobs` above are their totals.
    pub clusters: Vec<ClusterReport>,
    /// Workers lent between clusters, and when they went back.
    pub loans: Vec<crate::view::Loan>,
    /// In a topology without masters, the chat server the chat servers elected time master
    /// last (`policy clock`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_master: Option<String>,
    /// What the live checks found: `split_brain`, `lost_job` … (warnings: `double_run`).
    pub alarms: Vec<crate::view::alarms::Alarm>,
    /// The scenario's `expect` steps and whether each held.
    pub expectations: Vec<super::expect::ExpectationRecord>,
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
    /// Its home cluster.
    pub cluster: String,
    /// The cluster it works for at the end (its home, unless it is lent).
    pub serving: String,
    /// Its clock against the launcher's, as the time master's last round read it (`policy
    /// clock`; none if no round read it).
    pub clock_offset_ms: Option<i64>,
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
            // A node on another host out of reach runs on there as far as anyone knows.
            let runs_on = m.attachment.dir.is_some()
                && m.exit.as_deref() == Some(crate::view::node::HOST_UNREACHABLE);
            if runs_on && m.ready {
                Process::Running
            } else if m.exited {
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
            cluster: m.node.cluster.clone(),
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
        for ((from, to), state) in self.shaper.links_of(name) {
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

    /// What the run is, for a console opening on it (live, or on its recording).
    pub(super) fn run_info(&self, nodes: &[NodeStatus]) -> super::feed::RunInfo {
        let topology = &self.topology;
        let main = self.main_cluster().to_string();
        let clusters: Vec<String> = if topology.has_clusters() {
            topology.clusters().iter().map(|c| c.to_string()).collect()
        } else {
            Vec::new()
        };
        let others = clusters
            .iter()
            .filter(|c| **c != main)
            .filter_map(|c| Some((c.clone(), topology.primary_of(c)?.name.clone())))
            .collect();
        super::feed::RunInfo {
            system: topology.globals.system_name.clone(),
            topology: self.options.topology_path.display().to_string(),
            began: self.record.began.clone(),
            epoch_ms: crate::clock::system_ms_at(self.started),
            primary: self.view.read().primary.clone(),
            term: self.view.read().term,
            nodes: nodes.to_vec(),
            scenarios: topology.scenarios.iter().map(|s| s.name.clone()).collect(),
            clusters,
            main_cluster: main,
            others,
            chat: topology.nodes_of(NodeKind::Chat).next().is_some(),
            scale: self.pace.scale(),
            segment: 0,
        }
    }

    pub(super) fn statuses(&self) -> Vec<NodeStatus> {
        self.order.iter().filter_map(|n| self.status(n)).collect()
    }

    pub(super) fn publish(&self, name: &str) {
        if let Some(status) = self.status(name) {
            self.updates.send(Update::Node(status));
        }
    }

    /// The run's summary, asked of each cluster's primary while it still runs.
    pub(super) async fn report(&mut self) -> RunReport {
        let (main_jobs, term) = self
            .cluster_totals(self.primary_addr, &self.view, &self.acknowledged)
            .await;
        let mut clusters = vec![ClusterReport {
            name: self.main_cluster().to_string(),
            primary: self.view.read().primary.clone(),
            term,
            jobs: main_jobs.clone(),
        }];
        let mut jobs = main_jobs;
        for (name, other) in &self.others {
            let (totals, term) = self
                .cluster_totals(other.addr, &other.view, &other.acknowledged)
                .await;
            jobs.add(&totals);
            clusters.push(ClusterReport {
                name: name.clone(),
                primary: other.view.read().primary.clone(),
                term,
                jobs: totals,
            });
        }
        let now = self.now();
        let nodes = self
            .statuses()
            .into_iter()
            .map(|status| {
                let home = self
                    .topology
                    .node(&status.name)
                    .map_or(crate::topology::DEFAULT_CLUSTER, |n| n.cluster.as_str())
                    .to_string();
                // Each node is judged by its own cluster's reading.
                let view = self
                    .others
                    .get(&home)
                    .map_or(&self.view, |o| &o.view)
                    .read();
                NodeReport {
                    role: view.role(&status).as_str().to_string(),
                    state: view.verdict(&status, now).as_str().to_string(),
                    tags: status.faults.tags(),
                    serving: self.loans.serving(&status.name, &home).to_string(),
                    clock_offset_ms: view.clocks.reading(&status.name).map(|r| r.offset_ms),
                    cluster: home,
                    name: status.name,
                    kind: status.kind,
                }
            })
            .collect();
        RunReport {
            system: self.topology.globals.system_name.clone(),
            primary: self.view.read().primary.clone(),
            term,
            jobs,
            nodes,
            faults: self.tracker.faults().to_vec(),
            clusters,
            loans: self.loans.loans.clone(),
            time_master: self
                .view
                .read()
                .clocks
                .elected
                .as_ref()
                .map(|(m, _)| m.clone()),
            expectations: self.expectations.settled.clone(),
            alarms: self.all_alarms(),
        }
    }
}

impl std::fmt::Display for RunReport {
    /// The summary the headless run prints, and the console when it quits: the primary, the
    /// jobs (in words, unfinished ones too) and each fault with its measured times.
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let report = self;
        let j = &report.jobs;
        match &report.time_master {
            Some(master) if report.primary.is_empty() => writeln!(
                out,
                "== {}: no masters; time master {master} (elected by the chat servers)",
                report.system
            )?,
            _ if report.primary.is_empty() => writeln!(out, "== {}: no masters", report.system)?,
            _ => writeln!(
                out,
                "== {}: primary {} (term {})",
                report.system, report.primary, report.term
            )?,
        }
        writeln!(
            out,
            "   jobs: {} submitted, {} completed, {} failed, {} lost, {} unfinished",
            j.submitted, j.completed, j.failed, j.lost, j.unfinished
        )?;
        if report.clusters.len() > 1 {
            for c in &report.clusters {
                let j = &c.jobs;
                writeln!(
                    out,
                    "   cluster {}: primary {} (term {}): {} submitted, {} completed, {} failed, {} lost, {} unfinished",
                    c.name,
                    c.primary,
                    c.term,
                    j.submitted,
                    j.completed,
                    j.failed,
                    j.lost,
                    j.unfinished
                )?;
            }
        }
        for l in &report.loans {
            let at = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v}ms"));
            writeln!(
                out,
                "   loan {} → {}: {} at {}ms, released {}, home {}",
                l.lender,
                l.borrower,
                l.workers.join(", "),
                l.at_ms,
                at(l.released_ms),
                at(l.returned_ms)
            )?;
        }
        let clocks: Vec<String> = report
            .nodes
            .iter()
            .filter_map(|n| {
                let ms = n.clock_offset_ms?;
                Some(format!(
                    "{} {}{ms}ms",
                    n.name,
                    if ms >= 0 { "+" } else { "" }
                ))
            })
            .collect();
        if !clocks.is_empty() {
            writeln!(out, "   clocks (last round): {}", clocks.join(", "))?;
        }
        let (warnings, alarms): (Vec<_>, Vec<_>) = report.alarms.iter().partition(|a| a.warning);
        if !alarms.is_empty() {
            writeln!(out, "   ALARMS: {}", alarms.len())?;
        }
        for a in alarms.iter().chain(&warnings) {
            let word = if a.warning { "warning" } else { "ALARM" };
            writeln!(
                out,
                "   {word} {} at {}ms: {}",
                a.kind.as_str(),
                a.at_ms,
                a.text
            )?;
        }
        if !report.expectations.is_empty() {
            let met = report.expectations.iter().filter(|e| e.ok).count();
            writeln!(
                out,
                "   expectations: {met} of {} held",
                report.expectations.len()
            )?;
            for e in report.expectations.iter().filter(|e| !e.ok) {
                writeln!(
                    out,
                    "   ✗ at {}ms: {} — `{}` (saw {})",
                    e.at_ms, e.text, e.expr, e.seen
                )?;
            }
        }
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
