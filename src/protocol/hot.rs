//! The messages every job sends, read in one pass.
//!
//! [`Message`] is internally tagged (`"type"` names the variant) inside an [`Envelope`] whose
//! fields sit beside the message's: serde reads such a line into a buffer of untyped values,
//! then reads the buffer again into the type. For the nine messages of a job's life (`submit`,
//! `accepted`, `assign`, `started`, `progress`, `job_done`, `job_failed`, `result_ack`,
//! `job_finished`) [`decode`] reads the line once, straight into typed fields, and builds the
//! message from them.
//!
//! It is only a shortcut: anything it does not read cleanly — another type, a field missing
//! or of the wrong type, a repeated key — it leaves to the general decoder (`None`), which
//! gives the answer and the error a student reads. Whatever it does return is what the general
//! decoder returns for the same line (a property test holds it to that).

use serde::Deserialize;

use super::message::{Envelope, JobId, JobState, Message};

/// Every field of the nine messages and of the envelope. A field of another message than the
/// one `type` names is read and ignored, as the general decoder ignores it.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    clock: u64,
    #[serde(default)]
    term: Option<u64>,
    job: Option<JobId>,
    data: Option<String>,
    attempt: Option<u32>,
    result: Option<String>,
    error: Option<String>,
    percent: Option<u8>,
    count: Option<u32>,
    priority: Option<i32>,
    token: Option<String>,
    notify: Option<bool>,
    jobs: Option<Vec<JobId>>,
    last: Option<JobId>,
    state: Option<JobState>,
}

/// The envelope on `line`, if it is one of the nine messages and reads cleanly; `None` sends
/// the line to the general decoder.
pub(super) fn decode(line: &str) -> Option<Envelope> {
    let l: Line = serde_json::from_str(line).ok()?;
    // A field present but `null` where the message has no default is the general decoder's
    // error to give: `Option` here cannot tell it from a missing one, so `present` checks the
    // text for the few fields that have a default.
    let defaulted = |name: &str, value: bool| value || !present(line, name);
    let message = match &*l.kind {
        "assign" => Message::Assign {
            job: l.job?,
            data: l.data?,
            attempt: l.attempt?,
        },
        "started" => Message::Started { job: l.job? },
        "progress" => Message::Progress {
            job: l.job?,
            percent: l.percent?,
        },
        "job_done" => Message::JobDone {
            job: l.job?,
            result: l.result?,
            attempt: l.attempt,
        },
        "job_failed" => Message::JobFailed {
            job: l.job?,
            error: l.error?,
            attempt: l.attempt,
        },
        "result_ack" => Message::ResultAck {
            job: l.job?,
            attempt: l.attempt,
        },
        "submit" => {
            let ok = defaulted("count", l.count.is_some())
                && defaulted("priority", l.priority.is_some())
                && defaulted("notify", l.notify.is_some());
            if !ok {
                return None;
            }
            Message::Submit {
                data: l.data?,
                count: l.count.unwrap_or(1),
                priority: l.priority.unwrap_or(0),
                token: l.token,
                notify: l.notify.unwrap_or(false),
            }
        }
        "accepted" => Message::Accepted {
            jobs: l.jobs?,
            last: l.last,
        },
        "job_finished" => Message::JobFinished {
            job: l.job?,
            state: l.state?,
            result: l.result?,
        },
        _ => return None,
    };
    Some(Envelope {
        from: l.from,
        clock: l.clock,
        term: l.term,
        message,
    })
}

/// Whether `"name"` appears in `line` as a key (or anywhere: a false "yes" only sends the
/// line to the general decoder).
fn present(line: &str, name: &str) -> bool {
    let line = line.as_bytes();
    memchr::memmem::find_iter(line, name.as_bytes())
        .any(|at| at > 0 && line[at - 1] == b'"' && line.get(at + name.len()) == Some(&b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn general(line: &str) -> Option<Envelope> {
        serde_json::from_str::<Envelope>(line).ok()
    }

    /// Any value a field of these messages might be given, right or wrong.
    fn value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        prop_oneof![
            Just(json!(null)),
            Just(json!(true)),
            any::<u32>().prop_map(|n| json!(n)),
            (-5i64..5).prop_map(|n| json!(n)),
            Just(json!(1.5)),
            Just(json!(300)),
            Just(json!("JOB-7")),
            Just(json!("job-7")),
            Just(json!("7")),
            Just(json!("JOB-x")),
            Just(json!("completed")),
            Just(json!("failed")),
            ".{0,12}".prop_map(|s| json!(s)),
            Just(json!(["JOB-1", 2])),
            Just(json!(["JOB-1", "nope"])),
            Just(json!({"job": 1})),
        ]
    }

    fn kind() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just("assign"),
            Just("started"),
            Just("progress"),
            Just("job_done"),
            Just("job_failed"),
            Just("result_ack"),
            Just("submit"),
            Just("accepted"),
            Just("job_finished"),
            Just("ping"),
            Just("status"),
            Just("dance"),
        ]
        .prop_map(serde_json::Value::from)
    }

    const FIELDS: [&str; 19] = [
        "from", "clock", "term", "job", "data", "attempt", "result", "error", "percent", "count",
        "priority", "token", "notify", "jobs", "last", "state", "extra", "type", "report",
    ];

    /// One of the nine messages, with any contents.
    fn message() -> impl Strategy<Value = Message> {
        let job = any::<u64>().prop_map(JobId);
        let text = ".{0,16}";
        let state = prop_oneof![Just(JobState::Completed), Just(JobState::Failed)];
        prop_oneof![
            (job.clone(), text, any::<u32>()).prop_map(|(job, data, attempt)| Message::Assign {
                job,
                data,
                attempt
            }),
            job.clone().prop_map(|job| Message::Started { job }),
            (job.clone(), any::<u8>())
                .prop_map(|(job, percent)| Message::Progress { job, percent }),
            (job.clone(), text, any::<Option<u32>>()).prop_map(|(job, result, attempt)| {
                Message::JobDone {
                    job,
                    result,
                    attempt,
                }
            }),
            (job.clone(), text, any::<Option<u32>>()).prop_map(|(job, error, attempt)| {
                Message::JobFailed {
                    job,
                    error,
                    attempt,
                }
            }),
            (job.clone(), any::<Option<u32>>())
                .prop_map(|(job, attempt)| Message::ResultAck { job, attempt }),
            (
                text,
                any::<u32>(),
                any::<i32>(),
                proptest::option::of(text),
                any::<bool>()
            )
                .prop_map(|(data, count, priority, token, notify)| Message::Submit {
                    data,
                    count,
                    priority,
                    token,
                    notify,
                }),
            (
                proptest::collection::vec(job.clone(), 0..4),
                proptest::option::of(job.clone())
            )
                .prop_map(|(jobs, last)| Message::Accepted { jobs, last }),
            (job, state, text).prop_map(|(job, state, result)| Message::JobFinished {
                job,
                state,
                result
            }),
        ]
    }

    proptest! {
        /// A message as a node writes it takes the shortcut and reads back as it was; with
        /// fields added after it (unknown ones, other messages' ones, its own again), whatever
        /// the shortcut still reads is what the general decoder reads.
        #[test]
        fn a_message_with_fields_added_reads_as_the_general_decoder_reads_it(
            message in message(),
            from in ".{0,8}",
            clock in any::<u64>(),
            term in any::<Option<u64>>(),
            added in proptest::collection::vec((0..FIELDS.len(), value()), 0..4),
        ) {
            let envelope = Envelope { from, clock, term, message };
            let mut line = envelope.to_json();
            prop_assert_eq!(decode(&line), Some(envelope), "{}", line);
            line.pop();
            for (i, v) in &added {
                line.push_str(&format!(",\"{}\":{v}", FIELDS[*i]));
            }
            line.push('}');
            if let Some(fast) = decode(&line) {
                prop_assert_eq!(Some(fast), general(&line), "{}", line);
            }
        }

        /// Whatever the shortcut reads, the general decoder reads the same (a line of a type
        /// and any mix of fields, right or wrong; `type` itself may be given twice or wrong).
        #[test]
        fn the_shortcut_reads_what_the_general_decoder_reads(
            kind in kind(),
            fields in proptest::collection::vec((0..FIELDS.len(), value()), 0..8),
        ) {
            let mut line = format!("{{\"type\":{kind}");
            for (i, v) in &fields {
                line.push_str(&format!(",\"{}\":{v}", FIELDS[*i]));
            }
            line.push('}');
            if let Some(fast) = decode(&line) {
                prop_assert_eq!(Some(fast), general(&line), "{}", line);
            }
        }
    }

    /// Each of the nine messages, as a node writes it, takes the shortcut.
    #[test]
    fn every_message_of_a_job_takes_the_shortcut() {
        let job = JobId(41);
        let messages = [
            Message::Assign {
                job,
                data: "sleep 1s \"quoted\" ünï".into(),
                attempt: 2,
            },
            Message::Started { job },
            Message::Progress { job, percent: 50 },
            Message::JobDone {
                job,
                result: "ok\nline".into(),
                attempt: Some(1),
            },
            Message::JobDone {
                job,
                result: String::new(),
                attempt: None,
            },
            Message::JobFailed {
                job,
                error: "boom".into(),
                attempt: None,
            },
            Message::ResultAck {
                job,
                attempt: Some(3),
            },
            Message::Submit {
                data: "echo hi".into(),
                count: 3,
                priority: -2,
                token: Some("t".into()),
                notify: true,
            },
            Message::Accepted {
                jobs: vec![JobId(1), JobId(2)],
                last: Some(JobId(9)),
            },
            Message::JobFinished {
                job,
                state: JobState::Completed,
                result: "done".into(),
            },
        ];
        for message in messages {
            let envelope = Envelope {
                from: "worker-1".into(),
                clock: 17,
                term: Some(2),
                message,
            };
            let line = envelope.to_json();
            assert_eq!(decode(&line), Some(envelope), "{line}");
        }
        // Defaults as the general decoder gives them.
        let line = r#"{"type":"submit","data":"echo"}"#;
        assert_eq!(decode(line), general(line));
        assert!(decode(line).is_some());
        // A defaulted field given as null is the general decoder's error, not a default.
        assert_eq!(
            decode(r#"{"type":"submit","data":"echo","count":null}"#),
            None
        );
        // Anything else goes to the general decoder.
        assert_eq!(decode(r#"{"type":"ping"}"#), None);
        assert_eq!(decode(r#"{"type":"started"}"#), None);
    }
}
