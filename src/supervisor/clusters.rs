//! The other clusters of a topology with several (`cluster NAME`): the supervisor reads each
//! from its own primary's events, as it reads the main one (the cluster of the topology's
//! primary, whose reading is `Supervisor::view`); and the loans between them.

use super::*;

/// Another cluster, as its own primary's events tell it.
pub(super) struct OtherCluster {
    /// Its jobs, workers and primary, by the coordinator's own reading.
    pub(super) view: Reading,
    /// Where its primary listens.
    pub(super) addr: Option<SocketAddr>,
    /// Jobs its primary acknowledged to the operator that have not ended.
    pub(super) acknowledged: BTreeSet<JobId>,
}

impl OtherCluster {
    /// A cluster whose primary is `primary`, not heard from yet.
    pub(super) fn new(primary: &str) -> Self {
        OtherCluster {
            view: Reading::new(ClusterView::new(primary, 1, false)),
            addr: None,
            acknowledged: BTreeSet::new(),
        }
    }
}

/// One cluster in the run's summary.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub name: String,
    /// Its primary at the end.
    pub primary: String,
    pub term: u64,
    pub jobs: JobTotals,
}

impl Supervisor {
    /// The cluster of the main reading (`self.view`).
    pub(super) fn main_cluster(&self) -> &str {
        self.topology
            .node(&self.view.read().primary)
            .map_or(crate::topology::DEFAULT_CLUSTER, |n| n.cluster.as_str())
    }

    /// The cluster of node `name` when it is not the main one.
    pub(super) fn other_cluster_of(&self, name: &str) -> Option<String> {
        let cluster = &self.topology.node(name)?.cluster;
        self.others.contains_key(cluster).then(|| cluster.clone())
    }

    /// An event from a master of another cluster: read if it comes from that cluster's
    /// primary (or moves its primary), and put on the timeline.
    pub(super) fn other_event(&mut self, cluster: &str, from: &str, event: ClusterEvent) {
        let now = self.now();
        let Some(other) = self.others.get_mut(cluster) else {
            return;
        };
        if !other.view.read().accepts(from, &event) {
            return;
        }
        let before = other.view.read().primary.clone();
        other.view.write().apply(now, &event);
        if let EventKind::JobCompleted { job, .. }
        | EventKind::JobFailed {
            job,
            retry_in_ms: None,
            ..
        } = &event.kind
        {
            other.acknowledged.remove(job);
        }
        let moved =
            (other.view.read().primary != before).then(|| other.view.read().primary.clone());
        self.read_loan(cluster, now, &event);
        if let Some(primary) = moved {
            let addr = self
                .nodes
                .get(&primary)
                .and_then(|m| m.address.as_ref())
                .and_then(|a| a.parse().ok());
            if let Some(other) = self.others.get_mut(cluster) {
                other.addr = addr;
            }
            if let Some(resubscribe) = self.resubscribe.get(&primary) {
                let _ = resubscribe.send(());
            }
        }
        self.worker_started(&event);
        self.told(now, from, event);
    }

    /// Reads an event of cluster `cluster`'s primary into the loans.
    pub(super) fn read_loan(&mut self, cluster: &str, now: u64, event: &ClusterEvent) {
        self.loans.apply(cluster, now, event);
        let open = self.loans.open_count();
        self.loans_open
            .store(open, std::sync::atomic::Ordering::SeqCst);
    }

    /// A master of another cluster's history, at the start of its subscription.
    pub(super) fn other_history(&mut self, cluster: &str, from: &str, events: &[ClusterEvent]) {
        if let Some(other) = self.others.get_mut(cluster)
            && other.view.read().primary == from
        {
            other.view.write().resync(events);
        }
    }

    /// Where the primary of each other cluster listens, once the masters are up.
    pub(super) fn find_other_primaries(&mut self) {
        let addrs: Vec<(String, Option<SocketAddr>)> = self
            .others
            .iter()
            .map(|(c, o)| {
                let addr = self
                    .nodes
                    .get(&o.view.read().primary)
                    .and_then(|m| m.address.as_ref())
                    .and_then(|a| a.parse().ok());
                (c.clone(), addr)
            })
            .collect();
        for (cluster, addr) in addrs {
            if let Some(o) = self.others.get_mut(&cluster) {
                o.addr = addr;
            }
        }
    }

    /// Jobs one primary reports (the last reading's counts when it cannot be asked), and the
    /// acknowledged ones it no longer knows (lost).
    pub(super) async fn cluster_totals(
        &self,
        addr: Option<SocketAddr>,
        view: &Reading,
        acknowledged: &BTreeSet<JobId>,
    ) -> (JobTotals, u64) {
        use crate::protocol::message::PeerRole;
        let mut jobs = JobTotals::default();
        // Jobs acknowledged to the operator and not seen to end: the primary must still know
        // them. (A job an old primary took but never acknowledged — it could not replicate it
        // — was never accepted, and the new primary rightly does not know it.)
        let (mut term, counts, open) = {
            let view = view.read();
            let open: Vec<JobId> = acknowledged
                .iter()
                .filter(|id| view.state.jobs.get(id).is_none_or(|j| !j.state.is_final()))
                .copied()
                .collect();
            (view.term, view.state.counts, open)
        };
        let client = match addr {
            Some(addr) => Client::connect_as(
                &addr.to_string(),
                "supervisor",
                Some((&self.topology.peer_key(), PeerRole::Supervisor)),
                crate::protocol::handshake::TIMEOUT,
            )
            .await
            .ok(),
            None => None,
        };
        let Some(mut client) = client else {
            // No primary to ask: the last reading's open jobs are unfinished, not known lost.
            jobs.completed = counts.completed;
            jobs.failed = counts.failed;
            jobs.submitted = counts.total();
            jobs.unfinished = counts.queued + counts.assigned + counts.running;
            return (jobs, term);
        };
        if let Ok(Message::StatusReport { report }) =
            client.request(Message::Status { job: None }).await
        {
            term = report.term;
            jobs.completed = report.jobs.completed;
            jobs.failed = report.jobs.failed;
            jobs.unfinished = report.jobs.queued + report.jobs.assigned + report.jobs.running;
            jobs.submitted = report.jobs.total();
        }
        for id in open {
            if let Ok(Message::Error { .. }) =
                client.request(Message::Status { job: Some(id) }).await
            {
                jobs.lost += 1;
            }
        }
        jobs.submitted += jobs.lost;
        (jobs, term)
    }
}

impl JobTotals {
    /// These and `other` together.
    pub fn add(&mut self, other: &JobTotals) {
        self.submitted += other.submitted;
        self.completed += other.completed;
        self.failed += other.failed;
        self.lost += other.lost;
        self.unfinished += other.unfinished;
    }
}
