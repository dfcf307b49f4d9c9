//! Jobs and workers: submitting, registering, heartbeats and results, the failure detector
//! and dispatch.
//!
//! The **failure detector** runs on every tick: a worker silent past `suspect_after` is
//! *suspect* (no new jobs go to it), past `timeout` *dead*; a closed connection is death at
//! once. A dead worker's jobs are **requeued** and, in the same step, **reassigned**
//! ([`Coordinator::dispatch`]). A worker that comes back *rejoins* and reconciles what it runs
//! with what the cluster thinks it runs.

use tracing::{debug, info, warn};

use super::balancer::Candidate;
use super::lending::{Arrival, HeldRegister};
use super::session::Peer;
use super::{ConnId, Coordinator, MAX_COUNT, MAX_DATA, MAX_OPEN_JOBS};
use crate::clock::Millis;
use crate::cluster::event::EventKind;
use crate::protocol::Dialect;
use crate::protocol::message::{
    ACCEPTED_LISTED, Health, JobCounts, JobId, JobState, Message, StatusReport, WorkerCounts,
    WorkerView,
};
use crate::role::job::JobKind;

/// When a worker was last heard from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Liveness {
    pub(super) last_heard: Millis,
    pub(super) last_clock: u64,
}

/// How many times an `assign` is sent again to a worker whose heartbeats do not list the job
/// before the job is given to another worker.
const MAX_RESENDS: u32 = 3;

impl Coordinator {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn submit(
        &mut self,
        conn: ConnId,
        from: String,
        data: String,
        count: u32,
        priority: i32,
        token: Option<String>,
        notify: bool,
    ) {
        self.mark_client(conn);
        let by = if self.config.users.is_empty() || self.is_supervisor(conn) {
            if from.is_empty() {
                "client".to_string()
            } else {
                from
            }
        } else {
            match token.as_ref().and_then(|t| self.tokens.get(t)) {
                Some(user) => user.clone(),
                None => {
                    self.send(
                        conn,
                        Message::Error {
                            message: "log in first: this cluster has accounts (send login)".into(),
                        },
                    );
                    return;
                }
            }
        };
        if let Err(message) = check_job(&data, count) {
            self.send(conn, Message::Error { message });
            return;
        }
        let c = &self.state.counts;
        let open = c.queued + c.assigned + c.running;
        let unread = self.state.unread;
        if open + unread + count as usize > MAX_OPEN_JOBS {
            self.refused.limits += 1;
            let message = format!(
                "the queue is full: {open} jobs are open and {unread} results wait to be read \
                 (status JOB, jobs, or submit … wait); {count} more would pass the \
                 {MAX_OPEN_JOBS} a coordinator keeps: submit again when some have finished"
            );
            self.send(conn, Message::Error { message });
            return;
        }
        let mut jobs = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let job = JobId(self.state.next_job);
            self.emit(EventKind::JobSubmitted {
                job,
                data: data.clone(),
                priority,
                by: by.clone(),
            });
            if notify {
                self.notify.insert(job, conn);
            }
            jobs.push(job);
        }
        let last = (jobs.len() > ACCEPTED_LISTED).then(|| jobs[jobs.len() - 1]);
        jobs.truncate(ACCEPTED_LISTED);
        self.send(conn, Message::Accepted { jobs, last });
    }

    pub(super) fn register(
        &mut self,
        conn: ConnId,
        dialect: Dialect,
        name: String,
        slots: u32,
        running: Option<Vec<JobId>>,
        owner: Option<String>,
    ) {
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            self.send(
                conn,
                Message::Error {
                    message: "register needs a worker name in `from`".into(),
                },
            );
            return;
        }
        if !(1..=4096).contains(&slots) {
            self.send(
                conn,
                Message::Error {
                    message: format!("slots must be from 1 to 4096, found {slots}"),
                },
            );
            return;
        }
        if let Some(Peer::Worker(own)) = self.conns.get(&conn).map(|c| &c.peer)
            && *own != name
        {
            let message = format!(
                "this connection is worker {own}: a connection registers once, under one name"
            );
            warn!(conn, worker = %name, "{message}");
            self.send(conn, Message::Error { message });
            return;
        }
        if let Some(proven) = self.proven_name(conn)
            && proven != name
        {
            let message =
                format!("this connection proved the name {proven}: it cannot register as {name}");
            warn!(conn, worker = %name, "{message}");
            self.send(conn, Message::Error { message });
            return;
        }
        if let Some(&other) = self.worker_conns.get(&name)
            && other != conn
        {
            if self.health(&name) == Some(Health::Dead) {
                // The old connection belongs to a worker declared dead: the newcomer replaces it.
                self.close(other);
            } else {
                warn!(conn, worker = %name, "a second worker with the same name");
                self.send(
                    conn,
                    Message::Error {
                        message: format!("a worker named {name} is already connected"),
                    },
                );
                self.close(conn);
                return;
            }
        }
        // A lent worker: only if its owner said so. One at home that was lent: back.
        let owner = owner.filter(|o| *o != self.config.cluster);
        if let Some(owner) = &owner {
            match self.borrowed_registers(conn, &name, owner) {
                Arrival::Expected => {}
                Arrival::Refused => return,
                Arrival::Early => {
                    let owner = owner.clone();
                    self.hold_register(HeldRegister {
                        conn,
                        dialect,
                        name,
                        slots,
                        running,
                        owner,
                    });
                    return;
                }
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Peer::Worker(name.clone());
        }
        // Known but not connected: restored from the journal, or its connection went unnoticed.
        let reconnected = !self.worker_conns.contains_key(&name);
        self.worker_conns.insert(name.clone(), conn);
        self.liveness.insert(
            name.clone(),
            Liveness {
                last_heard: self.now,
                last_clock: 0,
            },
        );
        let classic = dialect == Dialect::Classic;
        match self.state.workers.get(&name) {
            None => self.emit(EventKind::WorkerJoined {
                worker: name.clone(),
                slots,
                classic,
            }),
            Some(record)
                if record.health == Health::Dead || record.slots != slots || reconnected =>
            {
                self.emit(EventKind::WorkerRejoined {
                    worker: name.clone(),
                    slots,
                });
            }
            Some(record) if record.health == Health::Suspect => {
                self.emit(EventKind::WorkerRecovered {
                    worker: name.clone(),
                });
            }
            Some(_) => {}
        }
        match &owner {
            Some(owner) => self.borrowed_arrived(&name, owner),
            None => self.home_again(&name),
        }
        let heartbeat_ms = self.config.heartbeat.interval.as_millis() as u64;
        let udp_token = self.udp_token_for(&name, classic);
        self.send(
            conn,
            Message::Registered {
                heartbeat_ms,
                udp_token,
            },
        );
        if let Some(running) = running.filter(|_| !classic) {
            self.reconcile(&name, conn, &running);
        }
        // Registered again with fewer slots than the jobs it holds: the newest go elsewhere.
        let excess: Vec<JobId> = self
            .state
            .workers
            .get(&name)
            .map(|w| w.running.iter().copied().skip(slots as usize).collect())
            .unwrap_or_default();
        for job in excess {
            self.emit(EventKind::JobRequeued {
                job,
                worker: name.clone(),
                reason: format!("{name} has only {slots} slots now"),
            });
            self.send(conn, Message::Cancel { job });
        }
    }

    /// After a (re)registration: the worker says what it runs. Jobs nobody else took stay with
    /// it; jobs others took are cancelled on it; jobs it lost go back to the queue.
    fn reconcile(&mut self, name: &str, conn: ConnId, running: &[JobId]) {
        for &job in running {
            let Some(j) = self.state.jobs.get(&job) else {
                self.send(conn, Message::Cancel { job });
                continue;
            };
            let was_ours = j.worker.as_deref() == Some(name);
            match j.state {
                // Requeued when it died, and nobody has taken it since: it keeps the job.
                JobState::Queued if was_ours => self.emit(EventKind::JobReclaimed {
                    job,
                    worker: name.to_string(),
                }),
                JobState::Assigned | JobState::Running if was_ours => {}
                _ => self.send(conn, Message::Cancel { job }),
            }
        }
        let lost: Vec<JobId> = self
            .state
            .workers
            .get(name)
            .map(|w| {
                w.running
                    .iter()
                    .copied()
                    .filter(|j| !running.contains(j))
                    .collect()
            })
            .unwrap_or_default();
        for job in lost {
            self.emit(EventKind::JobRequeued {
                job,
                worker: name.to_string(),
                reason: format!("{name} no longer runs it"),
            });
        }
    }

    /// On a heartbeat, what the worker runs is compared with what this coordinator gave it:
    /// jobs it runs that were given to others are cancelled on it (again: a `cancel` may have
    /// been lost); jobs it runs that still read *assigned* have started (their `started` was
    /// lost); jobs given to it that it does not run are sent again, once the `assign` has had
    /// time to arrive (it was lost, or the result is: the worker then sends the result again).
    fn reconcile_running(&mut self, name: &str, conn: ConnId, running: &[JobId]) {
        self.cancel_taken(name, conn, running);
        if running.iter().any(|j| self.runs_on(*j, name)) {
            self.stalled.remove(name);
            for job in running {
                self.resends.remove(job);
            }
        }
        for &job in running {
            let assigned_here = self.state.jobs.get(&job).is_some_and(|j| {
                j.state == JobState::Assigned && j.worker.as_deref() == Some(name)
            });
            if assigned_here {
                self.emit(EventKind::JobStarted {
                    job,
                    worker: name.to_string(),
                });
            }
        }
        let grace = 2 * self.config.heartbeat.interval.as_millis() as u64;
        let held: Vec<JobId> = self
            .state
            .workers
            .get(name)
            .map(|w| w.running.iter().copied().collect())
            .unwrap_or_default();
        for job in held {
            let sent = self.assigned_at.get(&job).copied().unwrap_or(0);
            if running.contains(&job) || self.now.saturating_sub(sent) < grace {
                continue;
            }
            let Some(j) = self.state.jobs.get(&job) else {
                continue;
            };
            let (data, attempt) = (j.data.clone(), j.attempts);
            let resends = self.resends.entry(job).or_default();
            *resends += 1;
            if *resends > MAX_RESENDS {
                // It says what it runs, and this is not in it however often it is sent: a
                // worker that takes jobs and never starts them. Someone else runs it.
                self.resends.remove(&job);
                self.assigned_at.remove(&job);
                self.stalled.insert(name.to_string());
                warn!(%job, worker = name, "assigned {MAX_RESENDS} times and never started: moved");
                self.emit(EventKind::JobRequeued {
                    job,
                    worker: name.to_string(),
                    reason: format!("{name} did not start it after {MAX_RESENDS} assigns"),
                });
                continue;
            }
            debug!(%job, worker = name, "not in its heartbeat: the assign is sent again");
            self.assigned_at.insert(job, self.now);
            self.send(conn, Message::Assign { job, data, attempt });
        }
    }

    /// `started` overdue: a job still *assigned* (never started) three heartbeat timeouts after
    /// it was last sent, on a native worker whose heartbeats do not say what it runs (those are
    /// handled as they arrive, by `reconcile_running`), goes to another worker, and its worker
    /// is put on probation. Classic workers never say `started`, so they are left alone.
    pub(super) fn check_started(&mut self) {
        let overdue_ms = 3 * self.timeout_ms();
        let now = self.now;
        let mut overdue: Vec<(JobId, String)> = self
            .assigned_at
            .iter()
            .filter(|(_, at)| now.saturating_sub(**at) > overdue_ms)
            .filter_map(|(job, _)| {
                let j = self.state.jobs.get(job)?;
                let worker = j.worker.clone()?;
                let native = self.state.workers.get(&worker).is_some_and(|w| !w.classic);
                let silent = native && !self.lists_running.contains(&worker);
                (j.state == JobState::Assigned && silent).then_some((*job, worker))
            })
            .collect();
        overdue.sort();
        for (job, worker) in overdue {
            self.assigned_at.remove(&job);
            self.resends.remove(&job);
            self.stalled.insert(worker.clone());
            warn!(%job, %worker, "assigned and never started: moved");
            self.emit(EventKind::JobRequeued {
                job,
                worker: worker.clone(),
                reason: format!("{worker} never said it started it"),
            });
        }
    }

    /// Jobs the worker still runs that were given to others are cancelled on it.
    pub(super) fn cancel_taken(&mut self, name: &str, conn: ConnId, running: &[JobId]) {
        for &job in running {
            let taken = match self.state.jobs.get(&job) {
                Some(j) => j.state.is_final() || j.worker.as_deref() != Some(name),
                None => true,
            };
            if taken {
                self.send(conn, Message::Cancel { job });
            }
        }
    }

    pub(super) fn heard_from(&mut self, name: &str, clock: u64) {
        self.liveness.insert(
            name.to_string(),
            Liveness {
                last_heard: self.now,
                last_clock: clock,
            },
        );
        match self.health(name) {
            Some(Health::Suspect) => self.emit(EventKind::WorkerRecovered {
                worker: name.to_string(),
            }),
            Some(Health::Dead) => {
                let slots = self.state.workers.get(name).map_or(1, |w| w.slots);
                self.emit(EventKind::WorkerRejoined {
                    worker: name.to_string(),
                    slots,
                });
            }
            _ => {}
        }
    }

    /// `job_done`: the first result wins; a second one from another worker is counted (the job
    /// ran twice); the same result sent again (its acknowledgement was lost) is only
    /// acknowledged again. Every result is acknowledged, once its event is kept.
    pub(super) fn job_done(
        &mut self,
        conn: ConnId,
        name: &str,
        job: JobId,
        result: String,
        attempt: Option<u32>,
    ) {
        let Some(j) = self.state.jobs.get(&job) else {
            // A job this master never had (an old primary accepted it and could not replicate
            // it): nothing to keep, and nothing for the worker to keep sending.
            debug!(%job, worker = name, "result of a job this master does not know");
            self.send(conn, Message::ResultAck { job, attempt });
            return;
        };
        if !j.sent_to.iter().any(|w| w == name) {
            self.not_yours(conn, name, job);
            return;
        }
        if j.state.is_final() {
            // The same worker's result again: its acknowledgement was lost. (A worker that
            // really ran a job twice is counted once: the two runs cannot be told apart.)
            if j.worker.as_deref() == Some(name) {
                debug!(%job, worker = name, "a result sent again: acknowledged again");
            } else {
                self.emit(EventKind::DuplicateResult {
                    job,
                    worker: name.to_string(),
                });
            }
            self.send(conn, Message::ResultAck { job, attempt });
            return;
        }
        if !self.runs_on(job, name) || attempt.is_some_and(|a| a != j.attempts) {
            // A run the job was taken from (its worker was given up on): the run it is on now
            // decides. Acknowledged, so that the worker stops sending it.
            debug!(%job, worker = name, ?attempt, "a result of an earlier run: ignored");
            self.send(conn, Message::ResultAck { job, attempt });
            return;
        }
        let read = self.result_will_reach_a_client(job);
        self.emit(EventKind::JobCompleted {
            job,
            worker: name.to_string(),
            result: result.clone(),
            read,
        });
        self.send(conn, Message::ResultAck { job, attempt });
        self.assigned_at.remove(&job);
        self.resends.remove(&job);
        self.finished(job, JobState::Completed, result);
    }

    /// `job_failed`: counted against the retry policy if it is the failure of the run the
    /// worker holds now (not of an earlier run, sent again); always acknowledged.
    pub(super) fn job_failed(
        &mut self,
        conn: ConnId,
        name: &str,
        job: JobId,
        error: String,
        attempt: Option<u32>,
    ) {
        let Some(j) = self.state.jobs.get(&job) else {
            self.send(conn, Message::ResultAck { job, attempt });
            return;
        };
        if !j.sent_to.iter().any(|w| w == name) {
            self.not_yours(conn, name, job);
            return;
        }
        let current = j.attempts;
        self.send(conn, Message::ResultAck { job, attempt });
        let Some(j) = self.state.jobs.get(&job) else {
            return;
        };
        if !self.runs_on(job, name) || attempt.is_some_and(|a| a != current) {
            debug!(%job, worker = name, "failure of an earlier run, or of a run that was reassigned; ignored");
            return;
        }
        let failures = j.failures + 1;
        let retry_in_ms = (failures < self.config.retry.max_attempts).then(|| {
            let backoff = self.config.retry.backoff.as_millis() as u64;
            backoff.saturating_mul(1 << (failures - 1).min(20))
        });
        let read = retry_in_ms.is_none() && self.result_will_reach_a_client(job);
        self.emit(EventKind::JobFailed {
            job,
            worker: name.to_string(),
            error: error.clone(),
            retry_in_ms,
            read,
        });
        self.assigned_at.remove(&job);
        self.resends.remove(&job);
        if retry_in_ms.is_none() {
            self.finished(job, JobState::Failed, error);
        }
    }

    /// A worker reported on a job it was never given: refused, and nothing changes.
    fn not_yours(&mut self, conn: ConnId, name: &str, job: JobId) {
        warn!(%job, worker = name, "a report on a job this worker was never given: refused");
        self.send(
            conn,
            Message::Error {
                message: format!(
                    "{job} was never given to {name}: only a worker it was sent to may report on it"
                ),
            },
        );
    }

    /// Whether a job's result reaches a client the moment it ends: the one that waits for it,
    /// or the launcher, whose event stream carries every result to the console. Said in the
    /// ending event itself (`read`), so no `results_read` is needed for it.
    fn result_will_reach_a_client(&self, job: JobId) -> bool {
        self.notify
            .get(&job)
            .is_some_and(|c| self.conns.contains_key(c))
            || self.subscribers.iter().any(|&c| self.is_supervisor(c))
    }

    /// Tells whoever asked that a job ended.
    fn finished(&mut self, job: JobId, state: JobState, result: String) {
        if let Some(conn) = self.notify.remove(&job) {
            self.send(conn, Message::JobFinished { job, state, result });
        }
    }

    pub(super) fn declare_dead(&mut self, name: &str, reason: String) {
        info!(worker = name, %reason, "worker declared dead");
        self.emit(EventKind::WorkerDead {
            worker: name.to_string(),
            reason,
        });
        let running: Vec<JobId> = self
            .state
            .workers
            .get(name)
            .map(|w| w.running.iter().copied().collect())
            .unwrap_or_default();
        for job in running {
            self.emit(EventKind::JobRequeued {
                job,
                worker: name.to_string(),
                reason: format!("{name} died"),
            });
        }
        // A borrowed worker that died here: its owner hears of it.
        self.borrowed_died(name);
    }

    /// `started`: a worker began a job it holds.
    pub(super) fn job_started(&mut self, conn: ConnId, job: JobId) {
        if let Some(name) = self.worker_of(conn)
            && self.runs_on(job, &name)
        {
            self.stalled.remove(&name);
            self.resends.remove(&job);
            self.emit(EventKind::JobStarted { job, worker: name });
        }
    }

    /// `progress`: how far a worker is with a job it holds.
    pub(super) fn job_progress(&mut self, conn: ConnId, job: JobId, percent: u8) {
        if let Some(name) = self.worker_of(conn)
            && self.runs_on(job, &name)
        {
            self.emit(EventKind::JobProgress {
                job,
                worker: name,
                percent: percent.min(100),
            });
        }
    }

    /// `heartbeat`: jobs the worker still runs that were given to others are cancelled on it.
    pub(super) fn heartbeat(&mut self, conn: ConnId, running: Option<Vec<JobId>>) {
        if let Some(name) = self.worker_of(conn)
            && let Some(running) = running
        {
            if !self.lists_running.contains(&name) {
                self.lists_running.insert(name.clone());
            }
            self.reconcile_running(&name, conn, &running);
        }
    }

    /// The failure detector, in name order: silent workers turn suspect, then dead.
    pub(super) fn detect_failures(&mut self) {
        let checks: Vec<(String, Health, bool)> = self
            .state
            .workers
            .iter()
            // A lent worker heartbeats to its borrower, not here.
            .filter(|(_, w)| w.health != Health::Dead && w.lent_to.is_none())
            .map(|(name, w)| (name.clone(), w.health, w.classic))
            .collect();
        for (name, health, classic) in checks {
            let Some(live) = self.liveness.get(&name) else {
                continue;
            };
            let silent = self.now.saturating_sub(live.last_heard);
            let (suspect_after, timeout) = if classic {
                (self.config.classic_timeout / 2, self.config.classic_timeout)
            } else {
                (
                    self.config.heartbeat.suspect_after,
                    self.config.heartbeat.timeout,
                )
            };
            if silent > timeout.as_millis() as u64 {
                self.declare_dead(&name, format!("no heartbeat for {silent}ms"));
            } else if health == Health::Healthy && silent > suspect_after.as_millis() as u64 {
                self.emit(EventKind::WorkerSuspect {
                    worker: name,
                    silent_ms: silent,
                });
            }
        }
    }

    /// Assigns ready jobs to workers with free slots, as long as there are both.
    pub(super) fn dispatch(&mut self) {
        while let Some(job) = self.state.queue.first_ready() {
            let candidates: Vec<Candidate> = self
                .state
                .workers
                .iter()
                // A worker on probation (it let assigns go unanswered) holds one job at a time
                // until it runs one: it can prove itself, but not swallow the queue.
                .filter(|(name, w)| {
                    w.has_free_slot()
                        && self.worker_conns.contains_key(*name)
                        && (!self.stalled.contains(*name) || w.running.is_empty())
                })
                .map(|(name, w)| Candidate {
                    name,
                    slots: w.slots,
                    running: w.running.len() as u32,
                })
                .collect();
            if candidates.is_empty() {
                return;
            }
            let worker = candidates[self.balancer.pick(&candidates)].name.to_string();
            let Some(j) = self.state.jobs.get(&job) else {
                return;
            };
            let (attempt, data) = (j.attempts + 1, j.data.clone());
            self.emit(EventKind::JobAssigned {
                job,
                worker: worker.clone(),
                attempt,
            });
            self.assigned_at.insert(job, self.now);
            self.resends.remove(&job);
            if let Some(&conn) = self.worker_conns.get(&worker) {
                self.send(conn, Message::Assign { job, data, attempt });
            }
        }
    }

    /// The worker registered on `conn`; replies with an error if there is none.
    pub(super) fn worker_of(&mut self, conn: ConnId) -> Option<String> {
        match self.conns.get(&conn).map(|c| &c.peer) {
            Some(Peer::Worker(name)) => Some(name.clone()),
            Some(_) => {
                self.send(
                    conn,
                    Message::Error {
                        message: format!(
                            "{}: this message is for workers",
                            crate::role::worker::NOT_REGISTERED
                        ),
                    },
                );
                None
            }
            None => None,
        }
    }

    /// Whether `worker` holds `job` now (assigned or running there).
    pub(super) fn runs_on(&self, job: JobId, worker: &str) -> bool {
        self.state.jobs.get(&job).is_some_and(|j| {
            matches!(j.state, JobState::Assigned | JobState::Running)
                && j.worker.as_deref() == Some(worker)
        })
    }

    /// Every worker as `workers` lists it, with how long ago each was heard from.
    pub(super) fn worker_views(&self) -> Vec<WorkerView> {
        self.state
            .workers
            .iter()
            .map(|(name, w)| {
                let live = self.liveness.get(name);
                let age = live.map(|l| self.now.saturating_sub(l.last_heard));
                w.view(name, age, live.map_or(0, |l| l.last_clock))
            })
            .collect()
    }

    /// The cluster at a glance.
    pub fn status_report(&self) -> StatusReport {
        let mut workers = WorkerCounts::default();
        for w in self.state.workers.values() {
            match w.health {
                Health::Healthy => workers.healthy += 1,
                Health::Suspect => workers.suspect += 1,
                Health::Dead => workers.dead += 1,
            }
        }
        let jobs: JobCounts = self.state.counts;
        StatusReport {
            coordinator: self.config.name.clone(),
            role: if self.is_serving() {
                "primary"
            } else {
                "backup"
            }
            .to_string(),
            term: self.term(),
            workers,
            jobs,
            refused: self.refused,
            duplicates: self.state.duplicates,
        }
    }
}

/// Checks a submission before any job is made.
fn check_job(data: &str, count: u32) -> Result<(), String> {
    if data.trim().is_empty() {
        return Err("a job needs data, such as \"sleep 1s\" or \"echo hello\"".into());
    }
    if data.len() > MAX_DATA {
        return Err(format!(
            "job data is {} bytes; at most {MAX_DATA}",
            data.len()
        ));
    }
    if data.chars().any(char::is_control) {
        return Err("job data must be one line of text without control characters".into());
    }
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(format!(
            "count must be from 1 to {MAX_COUNT}, found {count}"
        ));
    }
    JobKind::parse(data).map(|_| ()).map_err(|e| e.to_string())
}
