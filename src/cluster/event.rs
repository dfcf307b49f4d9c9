//! Cluster events: every change of the coordinator's state, as a value.
//!
//! The coordinator never changes its jobs or its worker records directly: it decides what
//! happened, makes a [`ClusterEvent`], and applies it with one function
//! ([`crate::role::coordinator::ClusterState::apply`]). The same events go to subscribers (the
//! console's timeline), and are what a journal stores and a backup replays: applying the same
//! events in the same order gives the same state. This is the idea behind state-machine
//! replication.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::job::{Job, JobCounts, JobId};
use super::worker::WorkerRecord;
use crate::clock::Millis;

/// One event, stamped with when it happened and the coordinator's Lamport clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    /// Milliseconds since the coordinator started.
    pub at_ms: Millis,
    /// The coordinator's Lamport clock at the event.
    pub clock: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A worker registered for the first time.
    WorkerJoined {
        /// Its name.
        worker: String,
        /// Its job slots.
        slots: u32,
        /// True if it speaks the classic line protocol.
        classic: bool,
    },
    /// A worker that was dead is back (it was paused, or restarted, or its link healed).
    WorkerRejoined {
        /// Its name.
        worker: String,
        /// Its job slots.
        slots: u32,
    },
    /// A worker's heartbeats are late.
    WorkerSuspect {
        /// Its name.
        worker: String,
        /// How long it has been silent.
        silent_ms: u64,
    },
    /// A suspect worker's heartbeats arrive again.
    WorkerRecovered {
        /// Its name.
        worker: String,
    },
    /// A worker is declared dead; its unfinished jobs are requeued right after.
    WorkerDead {
        /// Its name.
        worker: String,
        /// Why: "connection closed", or "no heartbeat for 1500ms".
        reason: String,
    },
    /// A client submitted a job.
    JobSubmitted {
        job: JobId,
        data: String,
        priority: i32,
        /// Who submitted it.
        by: String,
    },
    /// The job was sent to a worker.
    JobAssigned {
        job: JobId,
        worker: String,
        /// 1 for the first run.
        attempt: u32,
    },
    /// The worker started the job.
    JobStarted { job: JobId, worker: String },
    /// The job's progress (not kept by a journal: only the latest matters).
    JobProgress {
        job: JobId,
        worker: String,
        /// 0 to 100.
        percent: u8,
    },
    /// The job finished; its first result is kept.
    JobCompleted {
        job: JobId,
        /// The worker that finished it.
        worker: String,
        result: String,
        /// Its result reached a client as it finished (a waiting `submit`, the launcher's
        /// event stream): no `results_read` needed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read: bool,
    },
    /// A run of the job failed.
    JobFailed {
        job: JobId,
        /// The worker it failed on.
        worker: String,
        /// Why.
        error: String,
        /// When it runs again, if it does; `None` means it has failed for good.
        retry_in_ms: Option<u64>,
        /// Failed for good and its error reached a client as it did (see `job_completed`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read: bool,
    },
    /// The job went back to the queue because its worker died.
    JobRequeued {
        job: JobId,
        /// The worker it was on.
        worker: String,
        /// Why.
        reason: String,
    },
    /// A rejoining worker was still running a job nobody else had taken: it keeps it.
    JobReclaimed { job: JobId, worker: String },
    /// A backup took over as primary, in a new term.
    Takeover {
        /// The new primary.
        coordinator: String,
        term: u64,
        /// Why: "the primary's connection closed", "the primary was silent for 1500ms".
        reason: String,
    },
    /// A master lost its primary and starts a Bully election (not kept in the journal).
    ElectionStarted {
        /// The master.
        candidate: String,
        /// Why: the primary's link closed, or it was silent.
        reason: String,
    },
    /// How an election stands: a master above is alive, the evidence is not enough to take
    /// over, or it ended with another master primary (not kept in the journal).
    ElectionUpdate {
        /// The master running the election.
        candidate: String,
        /// What happened.
        reason: String,
        /// Set when the election ended because this master is heard as the primary (its
        /// victory arrived, or its pings again): the one the candidate follows now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primary: Option<String>,
    },
    /// A backup follows this primary: it receives every durable event from now on (not kept in
    /// the journal).
    BackupFollows {
        backup: String,
        /// How many events it already had.
        after: u64,
    },
    /// A backup no longer follows this primary: its link closed, or it stopped acknowledging
    /// and was dropped (not kept in the journal).
    BackupLost {
        backup: String,
        /// Why.
        reason: String,
    },
    /// A result arrived for a job that already had one (it ran twice). Counted, not kept.
    DuplicateResult {
        job: JobId,
        /// The worker that sent the extra result.
        worker: String,
    },
    /// These finished jobs' results have reached a client: a waiting `submit`, a `status` or
    /// `jobs` reply, or the launcher's event stream. Compaction may forget them now.
    ResultsRead { jobs: Vec<JobId> },
    /// Compaction forgets these finished (and read) jobs, the oldest beyond the retention
    /// (`policy journal { keep_done N }`): only the counts remember them.
    JobsForgotten { jobs: Vec<JobId> },
    /// The first event of a snapshot: the state is replaced by the counters here and the jobs
    /// and workers of the `events - 1` events that follow (journal compaction; a backup that
    /// fell behind the primary's snapshot starts over from one).
    Snapshot {
        /// How many events the snapshot is, this one included.
        events: u64,
        counts: JobCounts,
        next_job: u64,
        duplicates: u64,
        term: u64,
        /// Jobs forgotten by compaction so far.
        forgotten: u64,
        /// The master that was primary (in `term`) when the snapshot was made.
        #[serde(default)]
        primary: String,
    },
    /// A job as it stood at the snapshot (`due`: when it may run again, if it waits out a
    /// retry backoff).
    JobRestored {
        job: Box<Job>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<Millis>,
    },
    /// A worker as it stood at the snapshot.
    WorkerRestored {
        worker: String,
        record: WorkerRecord,
    },

    // ----- clusters lending workers -----
    /// A primary's queue is past `queue_threshold`: it asks cluster `from` for workers (not
    /// kept in the journal).
    LoanRequested { from: String, want: u32 },
    /// Cluster `from` has none to lend (not kept in the journal).
    LoanRefused { from: String, reason: String },
    /// At the owner: this idle worker is lent to cluster `to` (it is redirected there).
    WorkerLent { worker: String, to: String },
    /// At the borrower: a worker lent by cluster `from` registered here and takes jobs.
    WorkerBorrowed { worker: String, from: String },
    /// At the borrower: a lent worker goes home to cluster `to` (it was idle, or died here:
    /// its jobs were requeued first). Its record here ends.
    WorkerReleased {
        worker: String,
        to: String,
        reason: String,
    },
    /// At the owner: a loan to cluster `borrower` is over (the worker is back home, or died
    /// while lent).
    LoanEnded {
        worker: String,
        borrower: String,
        reason: String,
    },
    /// Another cluster's primary is silent past `suspect_after` (not kept in the journal).
    PeerSuspect { cluster: String, silent_ms: u64 },
    /// Another cluster's primary is silent past the timeout (not kept in the journal).
    PeerDead { cluster: String, reason: String },
    /// Another cluster's primary answers again (not kept in the journal).
    PeerAlive { cluster: String },

    // ----- clocks -----
    /// The time master closed a round of the Berkeley algorithm (not kept in the journal).
    ClockRound {
        round: u64,
        /// The master's clock as it closed the round (milliseconds since 1970).
        clock_ms: i64,
        /// Per clock read (the master's own is 0): how far ahead of the master's it was.
        offsets: BTreeMap<String, i64>,
        /// Readings too far from the mean to count in the average (still corrected).
        left_out: Vec<String>,
        /// The average offset of the readings that counted.
        average_ms: i64,
        /// Per clock told to move: by how much.
        adjusted: BTreeMap<String, i64>,
        /// Nodes polled that did not answer in time.
        silent: Vec<String>,
    },
    /// In a topology without masters, the chat servers elected this one time master (Bully);
    /// it runs the clock rounds from now on (not kept in the journal).
    TimeMaster { master: String },
}

impl EventKind {
    /// Whether a journal must keep this event to rebuild the state (progress is not needed).
    pub fn is_durable(&self) -> bool {
        !matches!(
            self,
            EventKind::JobProgress { .. }
                | EventKind::ElectionStarted { .. }
                | EventKind::ElectionUpdate { .. }
                | EventKind::BackupFollows { .. }
                | EventKind::BackupLost { .. }
                | EventKind::LoanRequested { .. }
                | EventKind::LoanRefused { .. }
                | EventKind::PeerSuspect { .. }
                | EventKind::PeerDead { .. }
                | EventKind::PeerAlive { .. }
                | EventKind::ClockRound { .. }
                | EventKind::TimeMaster { .. }
        )
    }

    /// Whether it is bookkeeping rather than news: read results, forgotten jobs and the
    /// snapshot a compaction writes change what is kept, not what happened, so the timeline
    /// and the logs leave them out.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(
            self,
            EventKind::ResultsRead { .. }
                | EventKind::JobsForgotten { .. }
                | EventKind::Snapshot { .. }
                | EventKind::JobRestored { .. }
                | EventKind::WorkerRestored { .. }
        )
    }

    /// Whether it tells of a running election, which any master may hold (not only the
    /// primary). The takeover that ends one is a state change like any other.
    pub fn is_election(&self) -> bool {
        matches!(
            self,
            EventKind::ElectionStarted { .. } | EventKind::ElectionUpdate { .. }
        )
    }

    /// The event's name, as on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::WorkerJoined { .. } => "worker_joined",
            EventKind::WorkerRejoined { .. } => "worker_rejoined",
            EventKind::WorkerSuspect { .. } => "worker_suspect",
            EventKind::WorkerRecovered { .. } => "worker_recovered",
            EventKind::WorkerDead { .. } => "worker_dead",
            EventKind::JobSubmitted { .. } => "job_submitted",
            EventKind::JobAssigned { .. } => "job_assigned",
            EventKind::JobStarted { .. } => "job_started",
            EventKind::JobProgress { .. } => "job_progress",
            EventKind::JobCompleted { .. } => "job_completed",
            EventKind::JobFailed { .. } => "job_failed",
            EventKind::JobRequeued { .. } => "job_requeued",
            EventKind::JobReclaimed { .. } => "job_reclaimed",
            EventKind::DuplicateResult { .. } => "duplicate_result",
            EventKind::Takeover { .. } => "takeover",
            EventKind::ElectionStarted { .. } => "election_started",
            EventKind::ElectionUpdate { .. } => "election_update",
            EventKind::BackupFollows { .. } => "backup_follows",
            EventKind::BackupLost { .. } => "backup_lost",
            EventKind::ResultsRead { .. } => "results_read",
            EventKind::JobsForgotten { .. } => "jobs_forgotten",
            EventKind::Snapshot { .. } => "snapshot",
            EventKind::JobRestored { .. } => "job_restored",
            EventKind::WorkerRestored { .. } => "worker_restored",
            EventKind::LoanRequested { .. } => "loan_requested",
            EventKind::LoanRefused { .. } => "loan_refused",
            EventKind::WorkerLent { .. } => "worker_lent",
            EventKind::WorkerBorrowed { .. } => "worker_borrowed",
            EventKind::WorkerReleased { .. } => "worker_released",
            EventKind::LoanEnded { .. } => "loan_ended",
            EventKind::PeerSuspect { .. } => "peer_suspect",
            EventKind::PeerDead { .. } => "peer_dead",
            EventKind::PeerAlive { .. } => "peer_alive",
            EventKind::ClockRound { .. } => "clock_round",
            EventKind::TimeMaster { .. } => "time_master",
        }
    }
}

impl std::fmt::Display for EventKind {
    /// One readable line, as the headless run and the timeline print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventKind::WorkerJoined {
                worker,
                slots,
                classic,
            } => {
                let classic = if *classic { ", classic protocol" } else { "" };
                let s = if *slots == 1 { "" } else { "s" };
                write!(f, "{worker} joined ({slots} slot{s}{classic})")
            }
            EventKind::WorkerRejoined { worker, .. } => write!(f, "{worker} rejoined"),
            EventKind::WorkerSuspect { worker, silent_ms } => {
                write!(f, "{worker} is suspect (silent {silent_ms}ms)")
            }
            EventKind::WorkerRecovered { worker } => write!(f, "{worker} is healthy again"),
            EventKind::WorkerDead { worker, reason } => write!(f, "{worker} is dead ({reason})"),
            EventKind::JobSubmitted { job, data, by, .. } => {
                write!(f, "{job} submitted by {by}: {data}")
            }
            EventKind::JobAssigned {
                job,
                worker,
                attempt,
            } => {
                write!(f, "{job} assigned to {worker} (attempt {attempt})")
            }
            EventKind::JobStarted { job, worker } => write!(f, "{job} started on {worker}"),
            EventKind::JobProgress {
                job,
                worker,
                percent,
            } => {
                write!(f, "{job} on {worker}: {percent}%")
            }
            EventKind::JobCompleted {
                job,
                worker,
                result,
                ..
            } => {
                write!(f, "{job} completed by {worker}: {result}")
            }
            EventKind::JobFailed {
                job,
                worker,
                error,
                retry_in_ms: Some(ms),
                ..
            } => {
                write!(f, "{job} failed on {worker} ({error}); retry in {ms}ms")
            }
            EventKind::JobFailed {
                job,
                worker,
                error,
                retry_in_ms: None,
                ..
            } => {
                write!(f, "{job} failed for good on {worker} ({error})")
            }
            EventKind::JobRequeued {
                job,
                worker,
                reason,
            } => {
                write!(f, "{job} requeued from {worker} ({reason})")
            }
            EventKind::JobReclaimed { job, worker } => write!(f, "{job} kept by {worker}"),
            EventKind::DuplicateResult { job, worker } => {
                write!(f, "{job}: duplicate result from {worker} ignored")
            }
            EventKind::ElectionStarted { candidate, reason } => {
                write!(f, "{candidate} starts an election ({reason})")
            }
            EventKind::ElectionUpdate {
                candidate, reason, ..
            } => {
                write!(f, "{candidate}'s election: {reason}")
            }
            EventKind::BackupFollows { backup, after: 0 } => {
                write!(f, "{backup} follows this primary (from the first event)")
            }
            EventKind::BackupFollows { backup, after } => {
                write!(f, "{backup} follows this primary (it had {after} events)")
            }
            EventKind::BackupLost { backup, reason } => {
                write!(f, "{backup} stopped following this primary ({reason})")
            }
            EventKind::Takeover {
                coordinator,
                term,
                reason,
            } => {
                write!(
                    f,
                    "{coordinator} takes over as primary in term {term} ({reason})"
                )
            }
            EventKind::ResultsRead { jobs } => write!(f, "{} results read", jobs.len()),
            EventKind::JobsForgotten { jobs } => {
                write!(f, "{} finished jobs forgotten by compaction", jobs.len())
            }
            EventKind::Snapshot { events, .. } => {
                write!(f, "snapshot of the state ({events} events)")
            }
            EventKind::JobRestored { job, .. } => write!(f, "{} restored from a snapshot", job.id),
            EventKind::WorkerRestored { worker, .. } => {
                write!(f, "{worker} restored from a snapshot")
            }
            EventKind::LoanRequested { from, want } => {
                write!(
                    f,
                    "asks cluster {from} for {want} workers (queue past the threshold)"
                )
            }
            EventKind::LoanRefused { from, reason } => {
                write!(f, "cluster {from} lends no workers ({reason})")
            }
            EventKind::WorkerLent { worker, to } => write!(f, "{worker} lent to cluster {to}"),
            EventKind::WorkerBorrowed { worker, from } => {
                write!(f, "{worker} borrowed from cluster {from}")
            }
            EventKind::WorkerReleased { worker, to, reason } => {
                write!(f, "{worker} released to cluster {to} ({reason})")
            }
            EventKind::LoanEnded {
                worker,
                borrower,
                reason,
            } => write!(f, "{worker}'s loan to cluster {borrower} ended ({reason})"),
            EventKind::PeerSuspect { cluster, silent_ms } => {
                write!(f, "cluster {cluster} is suspect (silent {silent_ms}ms)")
            }
            EventKind::PeerDead { cluster, reason } => {
                write!(f, "cluster {cluster} is dead ({reason})")
            }
            EventKind::PeerAlive { cluster } => write!(f, "cluster {cluster} answers again"),
            EventKind::ClockRound {
                round,
                offsets,
                left_out,
                average_ms,
                adjusted,
                silent,
                ..
            } => {
                let signed = |ms: i64| format!("{}{ms}ms", if ms >= 0 { "+" } else { "" });
                write!(
                    f,
                    "clock round {round}: {} clocks read, average {}",
                    offsets.len(),
                    signed(*average_ms)
                )?;
                if adjusted.is_empty() {
                    write!(f, "; all agree")?;
                } else {
                    let moves: Vec<String> = adjusted
                        .iter()
                        .map(|(n, by)| format!("{n} {}", signed(*by)))
                        .collect();
                    write!(f, "; moved {}", moves.join(", "))?;
                }
                if !left_out.is_empty() {
                    write!(f, "; left out of the average: {}", left_out.join(", "))?;
                }
                if !silent.is_empty() {
                    write!(f, "; no answer from {}", silent.join(", "))?;
                }
                Ok(())
            }
            EventKind::TimeMaster { master } => write!(
                f,
                "{master} is the time master (elected by the chat servers)"
            ),
        }
    }
}
