//! One line of a job's history: what happened, kept as it came and put in words only when
//! someone reads it (the Jobs pane's age, a job's history). A busy cluster's jobs are noted
//! thousands of times a second and almost never read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cluster::event::EventKind;
use crate::protocol::message::JobId;

/// What happened to a job, in the cluster's words when shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Submitted {
        by: String,
    },
    Assigned {
        worker: String,
        attempt: u32,
    },
    Started {
        worker: String,
    },
    Completed {
        worker: String,
        result: String,
    },
    Failed {
        worker: String,
        error: String,
        retry_in_ms: Option<u64>,
    },
    Requeued {
        worker: String,
        reason: String,
    },
    Reclaimed {
        worker: String,
    },
    Duplicate {
        worker: String,
    },
    /// Already in words (a reading read back from a recording).
    Said(String),
}

impl Note {
    /// The job an event is about and what it says of it, if it is news for its history.
    pub fn of(kind: &EventKind) -> Option<(JobId, Note)> {
        let worker = |w: &String| w.clone();
        Some(match kind {
            EventKind::JobSubmitted { job, by, .. } => (*job, Note::Submitted { by: by.clone() }),
            EventKind::JobAssigned {
                job,
                worker: w,
                attempt,
            } => (
                *job,
                Note::Assigned {
                    worker: worker(w),
                    attempt: *attempt,
                },
            ),
            EventKind::JobStarted { job, worker: w } => (*job, Note::Started { worker: worker(w) }),
            EventKind::JobCompleted {
                job,
                worker: w,
                result,
                ..
            } => (
                *job,
                Note::Completed {
                    worker: worker(w),
                    result: result.clone(),
                },
            ),
            EventKind::JobFailed {
                job,
                worker: w,
                error,
                retry_in_ms,
                ..
            } => (
                *job,
                Note::Failed {
                    worker: worker(w),
                    error: error.clone(),
                    retry_in_ms: *retry_in_ms,
                },
            ),
            EventKind::JobRequeued {
                job,
                worker: w,
                reason,
            } => (
                *job,
                Note::Requeued {
                    worker: worker(w),
                    reason: reason.clone(),
                },
            ),
            EventKind::JobReclaimed { job, worker: w } => {
                (*job, Note::Reclaimed { worker: worker(w) })
            }
            EventKind::DuplicateResult { job, worker: w } => {
                (*job, Note::Duplicate { worker: worker(w) })
            }
            _ => return None,
        })
    }

    /// The job went back to the queue or on to another worker.
    pub fn moved(&self) -> bool {
        match self {
            Note::Assigned { attempt, .. } => *attempt > 1,
            Note::Requeued { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Submitted { by } => write!(f, "submitted by {by}"),
            Note::Assigned { worker, attempt } => {
                write!(f, "assigned to {worker} (attempt {attempt})")
            }
            Note::Started { worker } => write!(f, "started on {worker}"),
            Note::Completed { worker, result } => write!(f, "completed by {worker}: {result}"),
            Note::Failed {
                worker,
                error,
                retry_in_ms,
            } => {
                write!(f, "failed on {worker}: {error}")?;
                match retry_in_ms {
                    Some(ms) => write!(f, "; retry in {ms}ms"),
                    None => write!(f, "; failed for good"),
                }
            }
            Note::Requeued { worker, reason } => {
                write!(f, "{reason} → requeued (was on {worker})")
            }
            Note::Reclaimed { worker } => write!(f, "kept by {worker}, which came back"),
            Note::Duplicate { worker } => write!(f, "duplicate result from {worker}, ignored"),
            Note::Said(text) => f.write_str(text),
        }
    }
}

/// Written as its words: a reading on disk reads the same as before notes were kept this way.
impl Serialize for Note {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Note {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Note::Said)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reads_as_the_cluster_says_it_and_is_written_as_its_words() {
        let (job, note) = Note::of(&EventKind::JobFailed {
            job: JobId(4),
            worker: "w1".into(),
            error: "exit 1".into(),
            retry_in_ms: Some(500),
            read: false,
        })
        .expect("a job's news");
        assert_eq!(job, JobId(4));
        assert_eq!(note.to_string(), "failed on w1: exit 1; retry in 500ms");
        let json = serde_json::to_string(&note).expect("writes");
        assert_eq!(json, r#""failed on w1: exit 1; retry in 500ms""#);
        let back: Note = serde_json::from_str(&json).expect("reads");
        assert_eq!(back.to_string(), note.to_string());
        assert!(Note::of(&EventKind::ResultsRead { jobs: vec![] }).is_none());
    }

    #[test]
    fn only_a_requeue_or_a_second_attempt_moves_a_job() {
        let assigned = |attempt| Note::Assigned {
            worker: "w".into(),
            attempt,
        };
        assert!(!assigned(1).moved());
        assert!(assigned(2).moved());
        assert!(
            Note::Requeued {
                worker: "w".into(),
                reason: "w died".into()
            }
            .moved()
        );
        assert!(!Note::Said("x".into()).moved());
    }
}
