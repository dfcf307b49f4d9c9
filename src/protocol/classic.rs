//! The classic lab's line protocol, as an adapter into the native messages.
//!
//! Old lab code speaks `COMMAND:data` lines. A connection whose first line does not start with
//! `{` is classic, and every line of it is translated here into the same typed [`Message`]s the
//! native protocol uses, so one coordinator serves both. Its replies are translated back. The
//! lines are exactly those of the classic lab:
//!
//! | direction | line | message |
//! | --- | --- | --- |
//! | worker → coordinator | `REGISTER:{"id":"worker1","type":"data_processor"}` | `register` |
//! | worker → coordinator | `HEARTBEAT:<unix seconds>` | `heartbeat` |
//! | worker → coordinator | `JOB_COMPLETE:<job id>:<result>` | `job_done` |
//! | coordinator → worker | `PROCESS_JOB:<job id>:<data>` | `assign` |
//! | client → coordinator | `SUBMIT_JOB:<data>` | `submit` (with `notify`) |
//! | coordinator → client | `JOB_ACCEPTED:<job id>` | `accepted` |
//! | coordinator → client | `JOB_DONE:<job id>:<result>` | `job_finished` |
//! | client → coordinator | `STATUS` | `status` |
//! | coordinator → client | `STATUS:{json}` | `status_report` |
//!
//! Two lines are tcluster's own, sent only where the classic protocol has nothing to say:
//! `JOB_FAILED:<job id>:<error>` when a submitted job fails for good, and `ERROR:<message>` for a
//! line that could not be understood. Classic peers carry no Lamport clock or term.

use serde::Deserialize;

use super::message::{JobId, JobState, Message, NotAJobId};

/// A classic line understood.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicLine {
    /// The name the peer gave (`REGISTER`'s `id`), if this line gives one.
    pub name: Option<String>,
    /// The message it means.
    pub message: Message,
}

/// Whether a connection's first line is classic (anything but a JSON object).
pub fn is_classic(first_line: &str) -> bool {
    !first_line.trim_start().starts_with('{')
}

/// The `REGISTER:` payload. Only `id` is required; `slots` (or `capacity`) is tcluster's
/// addition for workers that run more than one job at once.
#[derive(Deserialize)]
struct Registration {
    id: String,
    #[serde(default)]
    slots: Option<u32>,
    #[serde(default)]
    capacity: Option<u32>,
}

/// Why a classic line is not one of the classic commands.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassicError {
    /// `REGISTER:` followed by something that is not the registration JSON.
    #[error("REGISTER needs JSON such as {{\"id\":\"worker1\"}}: {0}")]
    Registration(String),
    /// `REGISTER:` without a name.
    #[error("REGISTER needs a non-empty \"id\"")]
    NoId,
    /// `JOB_COMPLETE:` without a result.
    #[error("JOB_COMPLETE needs JOB_COMPLETE:<job id>:<result>")]
    Completion,
    /// A job id that is not one.
    #[error(transparent)]
    JobId(#[from] NotAJobId),
    /// Another command (shortened to 60 characters).
    #[error("unknown line `{0}`: expected REGISTER, HEARTBEAT, JOB_COMPLETE, SUBMIT_JOB or STATUS")]
    Unknown(String),
}

/// Translates one classic line.
pub fn parse(line: &str) -> Result<ClassicLine, ClassicError> {
    let line = line.trim_end();
    let (command, rest) = match line.split_once(':') {
        Some((command, rest)) => (command, Some(rest)),
        None => (line, None),
    };
    let plain = |message| {
        Ok(ClassicLine {
            name: None,
            message,
        })
    };
    match (command, rest) {
        ("REGISTER", Some(json)) => {
            let reg: Registration = serde_json::from_str(json)
                .map_err(|e| ClassicError::Registration(e.to_string()))?;
            if reg.id.trim().is_empty() {
                return Err(ClassicError::NoId);
            }
            Ok(ClassicLine {
                name: Some(reg.id),
                message: Message::Register {
                    slots: reg.slots.or(reg.capacity).unwrap_or(1).max(1),
                    running: Vec::new(),
                    owner: None,
                },
            })
        }
        ("HEARTBEAT", _) => plain(Message::Heartbeat {
            running: None,
            token: None,
        }),
        ("JOB_COMPLETE", Some(rest)) => {
            let (id, result) = rest.split_once(':').ok_or(ClassicError::Completion)?;
            plain(Message::JobDone {
                job: id.parse::<JobId>()?,
                result: result.to_string(),
                attempt: None,
            })
        }
        ("SUBMIT_JOB", Some(data)) => plain(Message::Submit {
            data: data.to_string(),
            count: 1,
            priority: 0,
            token: None,
            notify: true,
        }),
        ("STATUS", None) => plain(Message::Status { job: None }),
        _ => Err(ClassicError::Unknown(truncate(line, 60))),
    }
}

/// The classic line for a message to a classic peer, or `None` if the classic protocol has no
/// such line (the message is then not sent).
pub fn render(message: &Message) -> Option<String> {
    Some(match message {
        Message::Assign { job, data, .. } => format!("PROCESS_JOB:{job}:{data}"),
        Message::Accepted { jobs, .. } => {
            let ids: Vec<String> = jobs.iter().map(JobId::to_string).collect();
            format!("JOB_ACCEPTED:{}", ids.join(","))
        }
        Message::JobFinished {
            job,
            state: JobState::Completed,
            result,
        } => format!("JOB_DONE:{job}:{result}"),
        Message::JobFinished { job, result, .. } => format!("JOB_FAILED:{job}:{result}"),
        Message::StatusReport { report } => {
            format!("STATUS:{}", serde_json::to_string(report).ok()?)
        }
        Message::Error { message } => format!("ERROR:{message}"),
        _ => return None,
    })
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_lines_translate() {
        let reg = parse(r#"REGISTER:{"id":"worker1","type":"data_processor"}"#).unwrap();
        assert_eq!(reg.name.as_deref(), Some("worker1"));
        assert_eq!(
            reg.message,
            Message::Register {
                slots: 1,
                running: vec![],
                owner: None
            }
        );
        assert_eq!(
            parse("HEARTBEAT:1700000000").unwrap().message,
            Message::Heartbeat {
                running: None,
                token: None,
            }
        );
        assert_eq!(
            parse("JOB_COMPLETE:JOB-4:Processado_x:y_por_w")
                .unwrap()
                .message,
            Message::JobDone {
                job: JobId(4),
                result: "Processado_x:y_por_w".into(),
                attempt: None,
            }
        );
        assert!(matches!(
            parse("SUBMIT_JOB:hello world").unwrap().message,
            Message::Submit { ref data, notify: true, .. } if data == "hello world"
        ));
        assert_eq!(
            parse("STATUS").unwrap().message,
            Message::Status { job: None }
        );
    }

    #[test]
    fn bad_lines_say_what_was_expected() {
        assert!(
            parse("REGISTER:not json")
                .unwrap_err()
                .to_string()
                .contains("REGISTER needs JSON")
        );
        assert!(parse("JOB_COMPLETE:JOB-1").is_err());
        assert!(
            parse("JOB_COMPLETE:banana:x")
                .unwrap_err()
                .to_string()
                .contains("not a job id")
        );
        assert!(
            parse("HELLO")
                .unwrap_err()
                .to_string()
                .contains("unknown line")
        );
    }

    #[test]
    fn replies_render_as_the_lab_wrote_them() {
        let assign = Message::Assign {
            job: JobId(1),
            data: "abc".into(),
            attempt: 1,
        };
        assert_eq!(render(&assign).unwrap(), "PROCESS_JOB:JOB-1:abc");
        assert_eq!(
            render(&Message::Accepted {
                jobs: vec![JobId(7)],
                last: None,
            })
            .unwrap(),
            "JOB_ACCEPTED:JOB-7"
        );
        let done = Message::JobFinished {
            job: JobId(7),
            state: JobState::Completed,
            result: "r".into(),
        };
        assert_eq!(render(&done).unwrap(), "JOB_DONE:JOB-7:r");
        assert_eq!(render(&Message::Pong), None);
    }
}
