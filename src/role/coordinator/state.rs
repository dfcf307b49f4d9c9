//! The coordinator's durable state — jobs, the queue, worker records — and the one function
//! that changes it, [`ClusterState::apply`].
//!
//! Everything here is rebuilt by applying the same events in the same order, which is what a
//! journal replay or a backup does. So `apply` must accept any event in any state without
//! panicking: an event about a job it does not know is ignored.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::clock::Millis;
use crate::cluster::event::{ClusterEvent, EventKind};
pub use crate::cluster::job::Job;
pub use crate::cluster::worker::WorkerRecord;
use crate::protocol::message::{Health, JobCounts, JobId, JobState};

/// The job queue: FIFO within priority (higher first), and jobs waiting out a retry backoff.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobQueue {
    /// Ready jobs; ids grow with submission, so within a priority the oldest comes first, and a
    /// requeued job goes back ahead of younger ones.
    ready: BTreeSet<(Reverse<i32>, JobId)>,
    /// Jobs that may run again from a given time.
    delayed: BTreeSet<(Millis, JobId, i32)>,
}

impl JobQueue {
    /// The next job to run, without removing it.
    pub fn first_ready(&self) -> Option<JobId> {
        self.ready.first().map(|(_, id)| *id)
    }

    /// Adds a ready job.
    pub fn push(&mut self, id: JobId, priority: i32) {
        self.ready.insert((Reverse(priority), id));
    }

    /// Adds a job that may run from `due`.
    pub fn push_delayed(&mut self, id: JobId, priority: i32, due: Millis) {
        self.delayed.insert((due, id, priority));
    }

    /// Removes a job wherever it waits.
    pub fn remove(&mut self, id: JobId, priority: i32) {
        if !self.ready.remove(&(Reverse(priority), id)) {
            self.delayed.retain(|(_, d, _)| *d != id);
        }
    }

    /// Moves jobs whose backoff has passed to the ready queue.
    pub fn promote_due(&mut self, now: Millis) {
        while let Some(&(due, id, priority)) = self.delayed.first() {
            if due > now {
                break;
            }
            self.delayed.pop_first();
            self.push(id, priority);
        }
    }

    /// Jobs waiting out a backoff, and when each may run.
    pub fn delayed(&self) -> impl Iterator<Item = (JobId, Millis)> + '_ {
        self.delayed.iter().map(|(due, id, _)| (*id, *due))
    }

    /// Whether a job waits here (ready or delayed).
    pub fn contains(&self, id: JobId, priority: i32) -> bool {
        self.ready.contains(&(Reverse(priority), id)) || self.delayed.iter().any(|d| d.1 == id)
    }

    /// Jobs ready to run now (not waiting out a backoff).
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Jobs ready and waiting.
    pub fn len(&self) -> usize {
        self.ready.len() + self.delayed.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Jobs, workers and the queue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClusterState {
    /// Every job ever submitted (boxed: the map moves its entries as it grows and shrinks, and
    /// a pointer moves faster than a whole job).
    pub jobs: BTreeMap<JobId, Box<Job>>,
    /// Every worker ever registered, by name (so they are visited in name order).
    pub workers: BTreeMap<String, WorkerRecord>,
    /// Jobs waiting for a worker.
    pub queue: JobQueue,
    /// Jobs by state, kept up to date by `apply`.
    pub counts: JobCounts,
    /// The id the next job gets.
    pub next_job: u64,
    /// Results that arrived for jobs that already had one.
    pub duplicates: u64,
    /// The Lamport clock of the last event applied.
    pub last_clock: u64,
    /// The highest term a takeover has reached (0: none yet).
    pub term: u64,
    /// Finished jobs whose results no client has read yet (they count against the open
    /// jobs a coordinator keeps, and compaction never forgets them).
    pub unread: usize,
    /// Finished jobs compaction has forgotten (the counts still include them).
    pub forgotten: u64,
}

impl ClusterState {
    /// An empty cluster: the first job is JOB-1.
    pub fn new() -> Self {
        ClusterState {
            next_job: 1,
            ..ClusterState::default()
        }
    }

    /// What must hold after any sequence of events, whoever sent what: a job waits in the
    /// queue only while it is queued, no worker holds more jobs than its slots, and every job a
    /// worker holds is one assigned to it. The fuzzer and the property tests check it after every
    /// step.
    pub fn check_invariants(&self) -> Result<(), String> {
        for job in self.jobs.values() {
            if self.queue.contains(job.id, job.priority) && job.state != JobState::Queued {
                return Err(format!(
                    "{} is {:?} and waits in the queue",
                    job.id, job.state
                ));
            }
        }
        for (name, w) in &self.workers {
            if w.running.len() > w.slots as usize {
                return Err(format!(
                    "{name} holds {} jobs in {} slots",
                    w.running.len(),
                    w.slots
                ));
            }
            for id in &w.running {
                let held = self.jobs.get(id).is_some_and(|j| {
                    j.worker.as_deref() == Some(name.as_str())
                        && matches!(j.state, JobState::Assigned | JobState::Running)
                });
                if !held {
                    return Err(format!("{name} holds {id}, which is not assigned to it"));
                }
            }
        }
        Ok(())
    }

    /// Applies one event. The only function that changes the state.
    pub fn apply(&mut self, event: &ClusterEvent) {
        self.last_clock = self.last_clock.max(event.clock);
        let at = event.at_ms;
        match &event.kind {
            EventKind::WorkerJoined {
                worker,
                slots,
                classic,
            } => self.worker_joined(worker, *slots, *classic),
            EventKind::WorkerRejoined { worker, slots } => {
                if let Some(record) = self.workers.get_mut(worker) {
                    record.slots = *slots;
                    record.health = Health::Healthy;
                }
            }
            EventKind::WorkerSuspect { worker, .. } => self.set_health(worker, Health::Suspect),
            EventKind::WorkerRecovered { worker } => self.set_health(worker, Health::Healthy),
            EventKind::WorkerDead { worker, .. } => self.set_health(worker, Health::Dead),
            EventKind::JobSubmitted {
                job,
                data,
                priority,
                by,
            } => self.job_submitted(*job, data, *priority, by, at),
            EventKind::JobAssigned {
                job,
                worker,
                attempt,
            } => self.job_assigned(*job, worker, *attempt),
            EventKind::JobStarted { job, worker } => {
                if let Some(j) = self.jobs.get_mut(job)
                    && j.state == JobState::Assigned
                    && j.worker.as_ref() == Some(worker)
                {
                    Self::set_state(&mut self.counts, j, JobState::Running);
                }
            }
            EventKind::JobProgress { job, percent, .. } => {
                if let Some(j) = self.jobs.get_mut(job) {
                    j.progress = *percent;
                }
            }
            EventKind::JobCompleted {
                job,
                worker,
                result,
                read,
            } => self.job_completed(*job, worker, result, *read, at),
            EventKind::JobFailed {
                job,
                worker,
                error,
                retry_in_ms,
                read,
            } => self.job_failed(*job, worker, error, *retry_in_ms, *read, at),
            EventKind::JobRequeued { job, worker, .. } => self.job_requeued(*job, worker),
            EventKind::JobReclaimed { job, worker } => self.job_reclaimed(*job, worker),
            EventKind::Takeover { term, .. } => self.term = self.term.max(*term),
            // Elections change nothing until one ends in a takeover; backups come and go
            // without changing jobs or workers.
            EventKind::ElectionStarted { .. }
            | EventKind::ElectionUpdate { .. }
            | EventKind::BackupFollows { .. }
            | EventKind::BackupLost { .. } => {}
            EventKind::DuplicateResult { job, .. } => {
                if let Some(j) = self.jobs.get_mut(job) {
                    j.duplicates += 1;
                }
                self.duplicates += 1;
            }
            EventKind::ResultsRead { jobs } => {
                for id in jobs {
                    if let Some(j) = self.jobs.get_mut(id)
                        && j.state.is_final()
                        && !j.read
                    {
                        j.read = true;
                        self.unread = self.unread.saturating_sub(1);
                    }
                }
            }
            EventKind::JobsForgotten { jobs } => self.forget(jobs),
            EventKind::Snapshot {
                counts,
                next_job,
                duplicates,
                term,
                forgotten,
                ..
            } => {
                *self = ClusterState {
                    counts: *counts,
                    next_job: *next_job,
                    duplicates: *duplicates,
                    term: *term,
                    forgotten: *forgotten,
                    last_clock: self.last_clock,
                    ..ClusterState::new()
                };
            }
            EventKind::JobRestored { job, due } => self.job_restored(job, *due),
            EventKind::WorkerRestored { worker, record } => {
                self.workers.insert(worker.clone(), record.clone());
            }
            EventKind::WorkerLent { worker, to } => {
                if let Some(w) = self.workers.get_mut(worker) {
                    w.lent_to = Some(to.clone());
                }
            }
            EventKind::WorkerBorrowed { worker, from } => {
                if let Some(w) = self.workers.get_mut(worker) {
                    w.owner = Some(from.clone());
                }
            }
            EventKind::WorkerReleased { worker, .. } => {
                // Its jobs were requeued before (a lent worker is released idle or dead).
                if self
                    .workers
                    .get(worker)
                    .is_some_and(|w| w.running.is_empty())
                {
                    self.workers.remove(worker);
                }
            }
            EventKind::LoanEnded { worker, .. } => {
                if let Some(w) = self.workers.get_mut(worker) {
                    w.lent_to = None;
                }
            }
            EventKind::LoanRequested { .. }
            | EventKind::LoanRefused { .. }
            | EventKind::PeerSuspect { .. }
            | EventKind::PeerDead { .. }
            | EventKind::PeerAlive { .. }
            | EventKind::ClockRound { .. }
            | EventKind::TimeMaster { .. } => {}
        }
    }

    /// Forgets finished jobs (an unfinished one is never forgotten): the counts keep them.
    fn forget(&mut self, jobs: &[JobId]) {
        for id in jobs {
            if self.jobs.get(id).is_some_and(|j| j.state.is_final())
                && let Some(j) = self.jobs.remove(id)
            {
                if !j.read {
                    self.unread = self.unread.saturating_sub(1);
                }
                self.forgotten += 1;
            }
        }
    }

    /// A job of a snapshot: back in the queue if it was waiting (the snapshot's header set
    /// the counts already).
    fn job_restored(&mut self, job: &Job, due: Option<Millis>) {
        if let Some(old) = self.jobs.get(&job.id) {
            self.queue.remove(old.id, old.priority);
        }
        if job.state == JobState::Queued {
            match due {
                Some(due) => self.queue.push_delayed(job.id, job.priority, due),
                None => self.queue.push(job.id, job.priority),
            }
        }
        if job.state.is_final() && !job.read {
            self.unread += 1;
        }
        self.next_job = self.next_job.max(job.id.0 + 1);
        self.jobs.insert(job.id, Box::new(job.clone()));
    }

    /// The events that rebuild this state from nothing: a [`EventKind::Snapshot`] header, then
    /// every job (with when a delayed one may run) and every worker. `at_ms` and `clock` stamp
    /// them all.
    pub fn snapshot(&self, at_ms: Millis, clock: u64, primary: &str) -> Vec<ClusterEvent> {
        let due: BTreeMap<JobId, Millis> = self.queue.delayed().collect();
        let events = 1 + self.jobs.len() as u64 + self.workers.len() as u64;
        let stamp = |kind| ClusterEvent { at_ms, clock, kind };
        let mut out = Vec::with_capacity(events as usize);
        out.push(stamp(EventKind::Snapshot {
            events,
            counts: self.counts,
            next_job: self.next_job,
            duplicates: self.duplicates,
            term: self.term,
            forgotten: self.forgotten,
            primary: primary.to_string(),
        }));
        for job in self.jobs.values() {
            out.push(stamp(EventKind::JobRestored {
                job: job.clone(),
                due: due.get(&job.id).copied(),
            }));
        }
        for (worker, record) in &self.workers {
            out.push(stamp(EventKind::WorkerRestored {
                worker: worker.clone(),
                record: record.clone(),
            }));
        }
        out
    }

    /// The finished jobs compaction may forget to keep at most `keep_done` of them: the
    /// oldest read ones beyond it (a result no client has read yet is kept).
    pub fn forgettable(&self, keep_done: usize) -> Vec<JobId> {
        let finished = self.jobs.values().filter(|j| j.state.is_final()).count();
        let excess = finished.saturating_sub(keep_done);
        self.jobs
            .values()
            .filter(|j| j.state.is_final() && j.read)
            .map(|j| j.id)
            .take(excess)
            .collect()
    }

    fn worker_joined(&mut self, worker: &str, slots: u32, classic: bool) {
        let record = self
            .workers
            .entry(worker.to_string())
            .or_insert(WorkerRecord {
                slots,
                classic,
                health: Health::Healthy,
                running: BTreeSet::new(),
                done: 0,
                lent_to: None,
                owner: None,
            });
        record.slots = slots;
        record.classic = classic;
        record.health = Health::Healthy;
    }

    fn job_submitted(&mut self, job: JobId, data: &str, priority: i32, by: &str, at: Millis) {
        if self.jobs.contains_key(&job) {
            return;
        }
        self.jobs.insert(
            job,
            Box::new(Job {
                id: job,
                data: data.to_string(),
                priority,
                state: JobState::Queued,
                worker: None,
                attempts: 0,
                failures: 0,
                progress: 0,
                by: by.to_string(),
                submitted_ms: at,
                finished_ms: None,
                result: None,
                error: None,
                duplicates: 0,
                sent_to: Vec::new(),
                read: false,
            }),
        );
        self.counts.add(JobState::Queued);
        self.queue.push(job, priority);
        self.next_job = self.next_job.max(job.0 + 1);
    }

    fn job_assigned(&mut self, job: JobId, worker: &str, attempt: u32) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        self.queue.remove(job, j.priority);
        j.worker = Some(worker.to_string());
        if !j.sent_to.iter().any(|w| w == worker) {
            j.sent_to.push(worker.to_string());
        }
        j.attempts = attempt;
        j.progress = 0;
        Self::set_state(&mut self.counts, j, JobState::Assigned);
        if let Some(w) = self.workers.get_mut(worker) {
            w.running.insert(job);
        }
    }

    fn job_completed(&mut self, job: JobId, worker: &str, result: &str, read: bool, at: Millis) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.state.is_final() {
            return;
        }
        self.queue.remove(job, j.priority);
        // The job may be on another worker too (it was reassigned): it is done there.
        if let Some(other) = j.worker.as_ref().and_then(|w| self.workers.get_mut(w)) {
            other.running.remove(&job);
        }
        j.worker = Some(worker.to_string());
        j.result = Some(result.to_string());
        j.finished_ms = Some(at);
        j.progress = 100;
        Self::set_state(&mut self.counts, j, JobState::Completed);
        j.read |= read;
        if !j.read {
            self.unread += 1;
        }
        if let Some(w) = self.workers.get_mut(worker) {
            w.running.remove(&job);
            w.done += 1;
        }
    }

    fn job_failed(
        &mut self,
        job: JobId,
        worker: &str,
        error: &str,
        retry_in_ms: Option<u64>,
        read: bool,
        at: Millis,
    ) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.state.is_final() {
            return;
        }
        if let Some(w) = self.workers.get_mut(worker) {
            w.running.remove(&job);
        }
        j.failures += 1;
        j.error = Some(error.to_string());
        match retry_in_ms {
            Some(delay) => {
                Self::set_state(&mut self.counts, j, JobState::Queued);
                self.queue.push_delayed(job, j.priority, at + delay);
            }
            None => {
                j.finished_ms = Some(at);
                Self::set_state(&mut self.counts, j, JobState::Failed);
                j.read |= read;
                if !j.read {
                    self.unread += 1;
                }
            }
        }
    }

    fn job_requeued(&mut self, job: JobId, worker: &str) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.running.remove(&job);
        }
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.state.is_final() || j.state == JobState::Queued {
            return;
        }
        j.progress = 0;
        Self::set_state(&mut self.counts, j, JobState::Queued);
        self.queue.push(job, j.priority);
    }

    fn job_reclaimed(&mut self, job: JobId, worker: &str) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if j.state != JobState::Queued {
            return;
        }
        self.queue.remove(job, j.priority);
        j.worker = Some(worker.to_string());
        Self::set_state(&mut self.counts, j, JobState::Running);
        if let Some(w) = self.workers.get_mut(worker) {
            w.running.insert(job);
        }
    }

    fn set_health(&mut self, worker: &str, health: Health) {
        if let Some(record) = self.workers.get_mut(worker) {
            record.health = health;
        }
    }

    fn set_state(counts: &mut JobCounts, job: &mut Job, state: JobState) {
        counts.remove(job.state);
        counts.add(state);
        job.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: Millis, kind: EventKind) -> ClusterEvent {
        ClusterEvent {
            at_ms,
            clock: at_ms,
            kind,
        }
    }

    fn submit(id: u64, priority: i32) -> EventKind {
        EventKind::JobSubmitted {
            job: JobId(id),
            data: "x".into(),
            priority,
            by: "t".into(),
        }
    }

    #[test]
    fn queue_is_fifo_within_priority_and_requeued_jobs_go_back_ahead() {
        let mut s = ClusterState::new();
        for (id, p) in [(1, 0), (2, 0), (3, 5), (4, 0)] {
            s.apply(&ev(0, submit(id, p)));
        }
        assert_eq!(s.queue.first_ready(), Some(JobId(3)));
        s.apply(&ev(
            1,
            EventKind::JobAssigned {
                job: JobId(3),
                worker: "w".into(),
                attempt: 1,
            },
        ));
        assert_eq!(s.queue.first_ready(), Some(JobId(1)));
        s.apply(&ev(
            2,
            EventKind::JobAssigned {
                job: JobId(1),
                worker: "w".into(),
                attempt: 1,
            },
        ));
        assert_eq!(s.queue.first_ready(), Some(JobId(2)));
        s.apply(&ev(
            3,
            EventKind::JobRequeued {
                job: JobId(1),
                worker: "w".into(),
                reason: "r".into(),
            },
        ));
        assert_eq!(s.queue.first_ready(), Some(JobId(1)));
        assert_eq!(s.counts.queued, 3);
        assert_eq!(s.counts.assigned, 1);
        assert_eq!(s.next_job, 5);
    }

    #[test]
    fn replaying_the_same_events_gives_the_same_state() {
        let events = vec![
            ev(
                0,
                EventKind::WorkerJoined {
                    worker: "w".into(),
                    slots: 2,
                    classic: false,
                },
            ),
            ev(1, submit(1, 0)),
            ev(
                2,
                EventKind::JobAssigned {
                    job: JobId(1),
                    worker: "w".into(),
                    attempt: 1,
                },
            ),
            ev(
                3,
                EventKind::JobFailed {
                    job: JobId(1),
                    worker: "w".into(),
                    error: "e".into(),
                    retry_in_ms: Some(10),
                    read: false,
                },
            ),
            ev(
                20,
                EventKind::JobCompleted {
                    job: JobId(1),
                    worker: "w".into(),
                    result: "r".into(),
                    read: false,
                },
            ),
            ev(
                21,
                EventKind::DuplicateResult {
                    job: JobId(1),
                    worker: "w".into(),
                },
            ),
            // Events about jobs and workers it does not know are ignored.
            ev(
                22,
                EventKind::JobStarted {
                    job: JobId(99),
                    worker: "nobody".into(),
                },
            ),
        ];
        let mut a = ClusterState::new();
        let mut b = ClusterState::new();
        for e in &events {
            a.apply(e);
        }
        for e in &events {
            b.apply(e);
        }
        assert_eq!(a, b);
        assert_eq!(a.counts.completed, 1);
        assert!(a.queue.is_empty());
        assert_eq!(a.duplicates, 1);
        assert_eq!(a.workers["w"].done, 1);
    }
}
