//! The messages every job sends, read in one pass.
//!
//! [`Message`] is internally tagged (`"type"` names the variant) inside an [`Envelope`] whose
//! fields sit beside the message's: serde reads such a line into a buffer of untyped values,
//! then reads the buffer again into the type. For the nine messages of a job's life (`submit`,
//! `accepted`, `assign`, `started`, `progress`, `job_done`, `job_failed`, `result_ack`,
//! `job_finished`) [`decode`] reads the line once, straight into typed fields, and builds the
//! message from them. The same goes for the cluster events every job makes (`job_submitted`,
//! `job_assigned`, `job_started`, `job_progress`, `job_completed`, `results_read`,
//! `jobs_forgotten`) as a subscriber's `event` or a backup's `replica` carries them.
//!
//! It is only a shortcut: anything it does not read cleanly — another type, a field missing
//! or of the wrong type, a repeated key — it leaves to the general decoder (`None`), which
//! gives the answer and the error a student reads. Whatever it does return is what the general
//! decoder returns for the same line (a property test holds it to that).

use serde::Deserialize;

use super::message::{ClusterEvent, Envelope, JobId, JobState, Message};
use crate::cluster::event::EventKind;
use memchr::memmem::Finder;
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

/// The types [`decode`] reads; any other goes straight to the general decoder.
const TYPES: [&str; 11] = [
    "assign",
    "started",
    "progress",
    "job_done",
    "job_failed",
    "result_ack",
    "submit",
    "accepted",
    "job_finished",
    "event",
    "replica",
];

/// Every field of the nine messages and of the envelope. A field of another message than the
/// one `type` names is read and ignored, as the general decoder ignores it.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    from: compact_str::CompactString,
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
    seq: Option<u64>,
    #[serde(borrow)]
    event: Option<EventLine<'a>>,
}

/// Every field of the cluster events a job makes. As in [`Line`], a field of another event is
/// read and ignored.
#[derive(Deserialize)]
struct EventLine<'a> {
    #[serde(rename = "event", borrow)]
    kind: Cow<'a, str>,
    at_ms: Option<crate::clock::Millis>,
    clock: Option<u64>,
    job: Option<JobId>,
    worker: Option<String>,
    attempt: Option<u32>,
    data: Option<String>,
    priority: Option<i32>,
    by: Option<String>,
    result: Option<String>,
    read: Option<bool>,
    percent: Option<u8>,
    jobs: Option<Vec<JobId>>,
}

/// The envelope on `line`, if it is one of the nine messages and reads cleanly; `None` sends
/// the line to the general decoder.
pub(super) fn decode(line: &str) -> Option<Envelope> {
    // Lines in the exact shape tcluster's nodes write them first, without serde.
    if let Some(envelope) = super::hot_read::envelope(line) {
        return Some(envelope);
    }
    if kind_of(line).is_some_and(|kind| !TYPES.contains(&kind)) {
        return None;
    }
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
        "event" => Message::Event {
            event: Arc::new(event(l.event?, &defaulted)?),
        },
        "replica" => Message::Replica {
            seq: l.seq?,
            event: Arc::new(event(l.event?, &defaulted)?),
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

/// The event, if it is one a job makes and reads cleanly.
fn event(e: EventLine, defaulted: &dyn Fn(&str, bool) -> bool) -> Option<ClusterEvent> {
    let kind = match &*e.kind {
        "job_submitted" => EventKind::JobSubmitted {
            job: e.job?,
            data: e.data?,
            priority: e.priority?,
            by: e.by?,
        },
        "job_assigned" => EventKind::JobAssigned {
            job: e.job?,
            worker: e.worker?,
            attempt: e.attempt?,
        },
        "job_started" => EventKind::JobStarted {
            job: e.job?,
            worker: e.worker?,
        },
        "job_progress" => EventKind::JobProgress {
            job: e.job?,
            worker: e.worker?,
            percent: e.percent?,
        },
        "job_completed" => {
            if !defaulted("read", e.read.is_some()) {
                return None;
            }
            EventKind::JobCompleted {
                job: e.job?,
                worker: e.worker?,
                result: e.result?,
                read: e.read.unwrap_or(false),
            }
        }
        "results_read" => EventKind::ResultsRead { jobs: e.jobs? },
        "jobs_forgotten" => EventKind::JobsForgotten { jobs: e.jobs? },
        _ => return None,
    };
    Some(ClusterEvent {
        at_ms: e.at_ms?,
        clock: e.clock?,
        kind,
    })
}

/// The value of the first `"type":"…"` in `line`, if there is one written that way. Inside a
/// string every quote is escaped, so the first such text is the message's own key unless the
/// line nests objects (which the general decoder reads anyway).
fn kind_of(line: &str) -> Option<&str> {
    const KEY: &str = "\"type\":\"";
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(KEY));
    let at = FINDER.find(line.as_bytes())? + KEY.len();
    let rest = &line[at..];
    let end = memchr::memchr2(b'"', b'\\', rest.as_bytes())?;
    (rest.as_bytes()[end] == b'"').then(|| &rest[..end])
}

/// Whether `"name"` appears in `line` as a key (or anywhere: a false "yes" only sends the
/// line to the general decoder).
fn present(line: &str, name: &str) -> bool {
    let bytes = line.as_bytes();
    line.match_indices(name)
        .any(|(at, _)| at > 0 && bytes[at - 1] == b'"' && bytes.get(at + name.len()) == Some(&b'"'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::message::{ChatBody, ChatEntry};
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

    /// One of the nine messages of a job's life, or a chat server's delivery, with any
    /// contents.
    pub(crate) fn message() -> impl Strategy<Value = Message> {
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
            chat_entry().prop_map(|entry| Message::ChatMessage {
                entry: Box::new(entry)
            }),
            proptest::option::of(chat_entry()).prop_map(|entry| Message::ChatDone {
                entry: entry.map(Box::new)
            }),
        ]
    }

    /// A chat entry of any kind, with any contents.
    pub(crate) fn chat_entry() -> impl Strategy<Value = ChatEntry> {
        let text = ".{0,16}";
        let body = prop_oneof![
            (text, text).prop_map(|(channel, by): (String, String)| ChatBody::Channel {
                channel: channel.into(),
                by: by.into()
            }),
            (text, text, text).prop_map(|(channel, from, text): (String, String, String)| {
                ChatBody::Post {
                    channel: channel.into(),
                    from: from.into(),
                    text: text.into(),
                }
            }),
            (text, text, text).prop_map(|(from, to, text): (String, String, String)| {
                ChatBody::Direct {
                    from: from.into(),
                    to: to.into(),
                    text: text.into(),
                }
            }),
        ];
        (
            any::<u64>(),
            text,
            any::<u64>(),
            body,
            proptest::option::of(text),
        )
            .prop_map(
                |(clock, server, seq, body, request): (_, String, _, _, Option<String>)| {
                    ChatEntry {
                        clock,
                        server: server.into(),
                        seq,
                        body,
                        request: request.map(Into::into),
                    }
                },
            )
    }

    /// One of the events a job makes, with any contents.
    pub(crate) fn job_event() -> impl Strategy<Value = ClusterEvent> {
        let job = any::<u64>().prop_map(JobId);
        let text = ".{0,16}";
        let jobs = proptest::collection::vec(job.clone(), 0..4);
        let kind = prop_oneof![
            (job.clone(), text, any::<i32>(), text).prop_map(|(job, data, priority, by)| {
                EventKind::JobSubmitted {
                    job,
                    data,
                    priority,
                    by,
                }
            }),
            (job.clone(), text, any::<u32>()).prop_map(|(job, worker, attempt)| {
                EventKind::JobAssigned {
                    job,
                    worker,
                    attempt,
                }
            }),
            (job.clone(), text).prop_map(|(job, worker)| EventKind::JobStarted { job, worker }),
            (job.clone(), text, any::<u8>()).prop_map(|(job, worker, percent)| {
                EventKind::JobProgress {
                    job,
                    worker,
                    percent,
                }
            }),
            (job, text, text, any::<bool>()).prop_map(|(job, worker, result, read)| {
                EventKind::JobCompleted {
                    job,
                    worker,
                    result,
                    read,
                }
            }),
            jobs.clone()
                .prop_map(|jobs| EventKind::ResultsRead { jobs }),
            jobs.prop_map(|jobs| EventKind::JobsForgotten { jobs }),
        ];
        (any::<u64>(), any::<u64>(), kind).prop_map(|(at_ms, clock, kind)| ClusterEvent {
            at_ms,
            clock,
            kind,
        })
    }

    /// Every field of the events, and some of other events and of none.
    const EVENT_FIELDS: [&str; 16] = [
        "event", "at_ms", "clock", "job", "worker", "attempt", "data", "priority", "by", "result",
        "read", "percent", "jobs", "reason", "slots", "extra",
    ];

    proptest! {
        /// An event as a coordinator sends it (to a subscriber, to a backup) takes the
        /// shortcut and reads back as it was; with fields added inside the event (unknown
        /// ones, other events' ones, its own again, any value), whatever the shortcut still
        /// reads is what the general decoder reads.
        #[test]
        fn an_event_with_fields_added_reads_as_the_general_decoder_reads_it(
            event in job_event(),
            replica in proptest::option::of(any::<u64>()),
            added in proptest::collection::vec((0..EVENT_FIELDS.len(), value()), 0..4),
        ) {
            let event = Arc::new(event);
            let message = match replica {
                Some(seq) => Message::Replica { seq, event },
                None => Message::Event { event },
            };
            let envelope = Envelope { from: "coordinator".into(), clock: 9, term: Some(1), message };
            let line = envelope.to_json();
            prop_assert_eq!(decode(&line), Some(envelope.clone()), "{}", line);
            let (Message::Replica { event, .. } | Message::Event { event }) = &envelope.message
            else {
                unreachable!()
            };
            let mut inner = serde_json::to_string(event).unwrap();
            inner.pop();
            for (i, v) in &added {
                inner.push_str(&format!(",\"{}\":{v}", EVENT_FIELDS[*i]));
            }
            inner.push('}');
            let seq = replica.map(|s| format!(",\"seq\":{s}")).unwrap_or_default();
            let kind = if replica.is_some() { "replica" } else { "event" };
            let line = format!(r#"{{"type":"{kind}","from":"c","clock":3{seq},"event":{inner}}}"#);
            if let Some(fast) = decode(&line) {
                prop_assert_eq!(Some(fast), general(&line), "{}", line);
            }
        }

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
            let envelope = Envelope { from: from.into(), clock, term, message };
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

    /// Each of the nine messages, and an event as `event` and `replica` carry it, takes the
    /// shortcut as a node writes it.
    #[test]
    fn every_message_of_a_job_takes_the_shortcut() {
        let job = JobId(41);
        let event = ClusterEvent {
            at_ms: 12,
            clock: 30,
            kind: EventKind::JobCompleted {
                job,
                worker: "worker-1".into(),
                result: "ok".into(),
                read: false,
            },
        };
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
            // An event a job makes, to a subscriber or to a backup.
            Message::Event {
                event: Arc::new(event.clone()),
            },
            Message::Replica {
                seq: 4,
                event: Arc::new(event),
            },
            // A chat server's answer to a post, and to a request that made nothing.
            Message::ChatDone {
                entry: Some(Box::new(ChatEntry {
                    clock: 5,
                    server: "chat-1".into(),
                    seq: 2,
                    body: ChatBody::Post {
                        channel: "general".into(),
                        from: "ada".into(),
                        text: "hi".into(),
                    },
                    request: Some("front-1-1".into()),
                })),
            },
            Message::ChatDone { entry: None },
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
        // A defaulted field of an event given as null is the general decoder's error too.
        let line = r#"{"type":"event","event":{"event":"job_completed","at_ms":1,"clock":1,"job":"JOB-1","worker":"w","result":"","read":null}}"#;
        assert_eq!(decode(line), None);
        // Other events, and anything else, go to the general decoder.
        let line = r#"{"type":"event","event":{"event":"worker_dead","at_ms":1,"clock":1,"worker":"w","reason":"r"}}"#;
        assert_eq!(decode(line), None);
        assert!(general(line).is_some());
        assert_eq!(decode(r#"{"type":"ping"}"#), None);
        assert_eq!(decode(r#"{"type":"started"}"#), None);
    }
}
