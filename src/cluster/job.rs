//! Jobs as everyone sees them: their ids, states, views and counts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::Millis;

/// A job's id, written `JOB-1`, `JOB-2`, … on the wire and on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JOB-{}", self.0)
    }
}

/// Text that is not a job id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not a job id (they look like JOB-12)")]
pub struct NotAJobId(pub String);

impl FromStr for JobId {
    type Err = NotAJobId;

    /// Accepts `JOB-12`, `job-12` and `12`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s
            .strip_prefix("JOB-")
            .or_else(|| s.strip_prefix("job-"))
            .unwrap_or(s);
        digits
            .parse::<u64>()
            .map(JobId)
            .map_err(|_| NotAJobId(s.to_string()))
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // `JOB-` and the number, built on the stack: every message of a job carries one.
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(self.0);
        let mut text = [0u8; 4 + 20];
        text[..4].copy_from_slice(b"JOB-");
        text[4..4 + digits.len()].copy_from_slice(digits.as_bytes());
        let text =
            std::str::from_utf8(&text[..4 + digits.len()]).map_err(serde::ser::Error::custom)?;
        s.serialize_str(text)
    }
}

/// `"JOB-12"`, `"job-12"`, `"12"` or `12` (read directly: every message of a job carries one).
impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Id;
        impl serde::de::Visitor<'_> for Id {
            type Value = JobId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a job id like \"JOB-12\"")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<JobId, E> {
                s.parse().map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<JobId, E> {
                Ok(JobId(n))
            }

            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<JobId, E> {
                u64::try_from(n).map(JobId).map_err(|_| {
                    E::invalid_value(
                        serde::de::Unexpected::Signed(n),
                        &"a job id like \"JOB-12\"",
                    )
                })
            }
        }
        d.deserialize_any(Id)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a worker (also between retries).
    Queued,
    /// Sent to a worker, not yet started.
    Assigned,
    /// Running on a worker.
    Running,
    /// Finished with a result.
    Completed,
    /// Failed on its last allowed attempt.
    Failed,
}

impl JobState {
    /// Every state, in life order.
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Assigned,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
    ];

    /// The word used on the wire and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Assigned => "assigned",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
        }
    }

    /// True for completed and failed.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a job state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not a job state (queued, assigned, running, completed, failed)")]
pub struct NotAJobState(pub String);

impl FromStr for JobState {
    type Err = NotAJobState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| NotAJobState(s.to_string()))
    }
}

/// A job as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: JobId,
    pub data: String,
    /// Where it is in its life.
    pub state: JobState,
    /// Priority; higher runs first.
    pub priority: i32,
    /// The worker running it, or the last one that did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// How many times it was sent to a worker.
    pub attempts: u32,
    /// Progress of the current run, 0 to 100.
    pub progress: u8,
    /// When it was submitted, in the coordinator's milliseconds.
    pub submitted_ms: u64,
    /// When it finished, if it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// The result, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The last error, if a run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Results that arrived after the first one (a job that ran twice).
    #[serde(default)]
    pub duplicates: u32,
}

/// Jobs by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Waiting.
    pub queued: usize,
    /// Sent, not started.
    pub assigned: usize,
    /// Running.
    pub running: usize,
    /// Done.
    pub completed: usize,
    /// Failed for good.
    pub failed: usize,
}

impl JobCounts {
    /// Adds one job in `state`.
    pub fn add(&mut self, state: JobState) {
        *self.get_mut(state) += 1;
    }

    /// Removes one job in `state`.
    pub fn remove(&mut self, state: JobState) {
        let n = self.get_mut(state);
        *n = n.saturating_sub(1);
    }

    /// The count for `state`.
    pub fn get(&self, state: JobState) -> usize {
        match state {
            JobState::Queued => self.queued,
            JobState::Assigned => self.assigned,
            JobState::Running => self.running,
            JobState::Completed => self.completed,
            JobState::Failed => self.failed,
        }
    }

    fn get_mut(&mut self, state: JobState) -> &mut usize {
        match state {
            JobState::Queued => &mut self.queued,
            JobState::Assigned => &mut self.assigned,
            JobState::Running => &mut self.running,
            JobState::Completed => &mut self.completed,
            JobState::Failed => &mut self.failed,
        }
    }

    /// Every job.
    pub fn total(&self) -> usize {
        self.queued + self.assigned + self.running + self.completed + self.failed
    }
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Its id; ids grow in submission order.
    pub id: JobId,
    /// What to do.
    pub data: String,
    /// Higher runs first.
    pub priority: i32,
    /// Where it is in its life.
    pub state: JobState,
    /// The worker it is on, or the last one it was on.
    pub worker: Option<String>,
    /// How many times it was sent to a worker.
    pub attempts: u32,
    /// How many runs failed (the retry policy counts these).
    pub failures: u32,
    /// Progress of the current run.
    pub progress: u8,
    /// Who submitted it.
    pub by: String,
    /// When it was submitted.
    pub submitted_ms: Millis,
    /// When it completed or failed for good.
    pub finished_ms: Option<Millis>,
    /// The first result.
    pub result: Option<String>,
    /// The last error.
    pub error: Option<String>,
    /// Extra results (runs after the first that finished).
    pub duplicates: u32,
    /// Every worker it was sent to, once each: only these may report on it.
    pub sent_to: Vec<String>,
    /// Finished, and its result has reached a client (compaction may forget it then).
    #[serde(default)]
    pub read: bool,
}

impl Job {
    /// The job as clients see it.
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id,
            data: self.data.clone(),
            state: self.state,
            priority: self.priority,
            worker: self.worker.clone(),
            attempts: self.attempts,
            progress: self.progress,
            submitted_ms: self.submitted_ms,
            finished_ms: self.finished_ms,
            result: self.result.clone(),
            error: self.error.clone(),
            duplicates: self.duplicates,
        }
    }
}
