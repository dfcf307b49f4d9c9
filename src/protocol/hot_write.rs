//! The messages every job sends, written in one pass: the other half of [`super::hot`].
//!
//! serde writes an [`Envelope`] (and a [`ClusterEvent`]) through two flattened layers and an
//! internally tagged enum, which costs several times what the bytes do. For the messages of a
//! job's life (its submission and acceptance too), the cluster events every job makes, a job
//! as a snapshot restores it (a compaction writes one per job it keeps) and a chat server's
//! delivery (`chat_message`, one per post for all its subscribers) and its answer to a post
//! (`chat_done`), [`envelope`] and [`event`] write the same bytes by hand; anything else goes
//! to serde. The coordinator writes each event to its subscribers, its backup and its journal,
//! and the launcher records it once more, so this is on the hottest path there is.
//!
//! Whatever they write is byte for byte what serde writes for the same value (a property test
//! holds them to that), so a reader never sees which of the two wrote a line.

use super::message::{ChatBody, ChatEntry, ClusterEvent, Envelope, JobId, Message};
use crate::cluster::event::EventKind;
use crate::cluster::job::Job;

/// Appends `envelope` as one line of JSON (without the newline).
pub fn envelope(out: &mut Vec<u8>, envelope: &Envelope) -> serde_json::Result<()> {
    // Each arm starts the line with the envelope and the message's `type`.
    let head = |out: &mut Vec<u8>, kind: &str| {
        out.extend_from_slice(b"{\"from\":");
        string(out, &envelope.from);
        number(out, b",\"clock\":", envelope.clock);
        if let Some(term) = envelope.term {
            number(out, b",\"term\":", term);
        }
        string_field(out, b",\"type\":", kind);
    };
    match &envelope.message {
        Message::Assign { job, data, attempt } => {
            head(out, "assign");
            job_field(out, *job);
            string_field(out, b",\"data\":", data);
            number(out, b",\"attempt\":", u64::from(*attempt));
        }
        Message::Started { job } => {
            head(out, "started");
            job_field(out, *job);
        }
        Message::Progress { job, percent } => {
            head(out, "progress");
            job_field(out, *job);
            number(out, b",\"percent\":", u64::from(*percent));
        }
        Message::JobDone {
            job,
            result,
            attempt,
        } => {
            head(out, "job_done");
            job_field(out, *job);
            string_field(out, b",\"result\":", result);
            attempt_field(out, *attempt);
        }
        Message::JobFailed {
            job,
            error,
            attempt,
        } => {
            head(out, "job_failed");
            job_field(out, *job);
            string_field(out, b",\"error\":", error);
            attempt_field(out, *attempt);
        }
        Message::ResultAck { job, attempt } => {
            head(out, "result_ack");
            job_field(out, *job);
            attempt_field(out, *attempt);
        }
        Message::Submit {
            data,
            count,
            priority,
            token,
            notify,
        } => {
            head(out, "submit");
            string_field(out, b",\"data\":", data);
            number(out, b",\"count\":", u64::from(*count));
            out.extend_from_slice(b",\"priority\":");
            out.extend_from_slice(itoa::Buffer::new().format(*priority).as_bytes());
            if let Some(token) = token {
                string_field(out, b",\"token\":", token);
            }
            out.extend_from_slice(if *notify {
                b",\"notify\":true"
            } else {
                b",\"notify\":false"
            });
        }
        Message::Accepted { jobs, last } => {
            head(out, "accepted");
            jobs_field(out, jobs);
            if let Some(last) = last {
                out.extend_from_slice(b",\"last\":");
                job_id(out, *last);
            }
        }
        Message::JobFinished { job, state, result } => {
            head(out, "job_finished");
            job_field(out, *job);
            string_field(out, b",\"state\":", state.as_str());
            string_field(out, b",\"result\":", result);
        }
        Message::Event { event: e } => {
            head(out, "event");
            out.extend_from_slice(b",\"event\":");
            event(out, e)?;
        }
        Message::Replica { seq, event: e } => {
            head(out, "replica");
            number(out, b",\"seq\":", *seq);
            out.extend_from_slice(b",\"event\":");
            event(out, e)?;
        }
        Message::ChatMessage { entry } => {
            head(out, "chat_message");
            out.extend_from_slice(b",\"entry\":");
            chat_entry(out, entry);
        }
        Message::ChatDone { entry } => {
            head(out, "chat_done");
            if let Some(entry) = entry {
                out.extend_from_slice(b",\"entry\":");
                chat_entry(out, entry);
            }
        }
        _ => return serde_json::to_writer(out, envelope),
    }
    out.push(b'}');
    Ok(())
}

/// Appends a chat entry (what a chat server delivers to every subscriber) as JSON.
fn chat_entry(out: &mut Vec<u8>, entry: &ChatEntry) {
    number(out, b"{\"clock\":", entry.clock);
    string_field(out, b",\"server\":", &entry.server);
    number(out, b",\"seq\":", entry.seq);
    match &entry.body {
        ChatBody::Channel { channel, by } => {
            out.extend_from_slice(b",\"kind\":\"channel\"");
            string_field(out, b",\"channel\":", channel);
            string_field(out, b",\"by\":", by);
        }
        ChatBody::Post {
            channel,
            from,
            text,
        } => {
            out.extend_from_slice(b",\"kind\":\"post\"");
            string_field(out, b",\"channel\":", channel);
            string_field(out, b",\"from\":", from);
            string_field(out, b",\"text\":", text);
        }
        ChatBody::Direct { from, to, text } => {
            out.extend_from_slice(b",\"kind\":\"direct\"");
            string_field(out, b",\"from\":", from);
            string_field(out, b",\"to\":", to);
            string_field(out, b",\"text\":", text);
        }
    }
    if let Some(request) = &entry.request {
        string_field(out, b",\"request\":", request);
    }
    out.push(b'}');
}

/// Appends `event` as JSON.
pub fn event(out: &mut Vec<u8>, event: &ClusterEvent) -> serde_json::Result<()> {
    // Each arm starts the object with the event's time, clock and kind.
    let head = |out: &mut Vec<u8>, kind: &str| {
        number(out, b"{\"at_ms\":", event.at_ms);
        number(out, b",\"clock\":", event.clock);
        string_field(out, b",\"event\":", kind);
    };
    match &event.kind {
        EventKind::JobSubmitted {
            job,
            data,
            priority,
            by,
        } => {
            head(out, "job_submitted");
            job_field(out, *job);
            string_field(out, b",\"data\":", data);
            out.extend_from_slice(b",\"priority\":");
            out.extend_from_slice(itoa::Buffer::new().format(*priority).as_bytes());
            string_field(out, b",\"by\":", by);
        }
        EventKind::JobAssigned {
            job,
            worker,
            attempt,
        } => {
            head(out, "job_assigned");
            job_on(out, *job, worker);
            number(out, b",\"attempt\":", u64::from(*attempt));
        }
        EventKind::JobStarted { job, worker } => {
            head(out, "job_started");
            job_on(out, *job, worker);
        }
        EventKind::JobProgress {
            job,
            worker,
            percent,
        } => {
            head(out, "job_progress");
            job_on(out, *job, worker);
            number(out, b",\"percent\":", u64::from(*percent));
        }
        EventKind::JobCompleted {
            job,
            worker,
            result,
            read,
        } => {
            head(out, "job_completed");
            job_on(out, *job, worker);
            string_field(out, b",\"result\":", result);
            if *read {
                out.extend_from_slice(b",\"read\":true");
            }
        }
        EventKind::JobRestored { job, due } => {
            head(out, "job_restored");
            out.extend_from_slice(b",\"job\":");
            job_record(out, job);
            if let Some(due) = due {
                number(out, b",\"due\":", *due);
            }
        }
        EventKind::ResultsRead { jobs } => {
            head(out, "results_read");
            jobs_field(out, jobs);
        }
        EventKind::JobsForgotten { jobs } => {
            head(out, "jobs_forgotten");
            jobs_field(out, jobs);
        }
        _ => return serde_json::to_writer(out, event),
    }
    out.push(b'}');
    Ok(())
}

/// A whole job, as a snapshot restores it (every field, `null` for one it has not).
fn job_record(out: &mut Vec<u8>, job: &Job) {
    out.extend_from_slice(b"{\"id\":");
    job_id(out, job.id);
    string_field(out, b",\"data\":", &job.data);
    out.extend_from_slice(b",\"priority\":");
    out.extend_from_slice(itoa::Buffer::new().format(job.priority).as_bytes());
    string_field(out, b",\"state\":", job.state.as_str());
    optional_string(out, b",\"worker\":", job.worker.as_deref());
    number(out, b",\"attempts\":", u64::from(job.attempts));
    number(out, b",\"failures\":", u64::from(job.failures));
    number(out, b",\"progress\":", u64::from(job.progress));
    string_field(out, b",\"by\":", &job.by);
    number(out, b",\"submitted_ms\":", job.submitted_ms);
    out.extend_from_slice(b",\"finished_ms\":");
    match job.finished_ms {
        Some(ms) => out.extend_from_slice(itoa::Buffer::new().format(ms).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    optional_string(out, b",\"result\":", job.result.as_deref());
    optional_string(out, b",\"error\":", job.error.as_deref());
    number(out, b",\"duplicates\":", u64::from(job.duplicates));
    out.extend_from_slice(b",\"sent_to\":[");
    for (i, worker) in job.sent_to.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, worker);
    }
    out.extend_from_slice(if job.read {
        b"],\"read\":true}"
    } else {
        b"],\"read\":false}"
    });
}

/// `,"key":"text"`, or `,"key":null` when there is none.
fn optional_string(out: &mut Vec<u8>, key: &[u8], text: Option<&str>) {
    match text {
        Some(text) => string_field(out, key, text),
        None => {
            out.extend_from_slice(key);
            out.extend_from_slice(b"null");
        }
    }
}

/// `,"job":"JOB-12","worker":"worker-1"`.
fn job_on(out: &mut Vec<u8>, job: JobId, worker: &str) {
    job_field(out, job);
    string_field(out, b",\"worker\":", worker);
}

/// `,"jobs":["JOB-1","JOB-2"]`.
fn jobs_field(out: &mut Vec<u8>, jobs: &[JobId]) {
    out.extend_from_slice(b",\"jobs\":[");
    for (i, job) in jobs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        job_id(out, *job);
    }
    out.push(b']');
}

fn number(out: &mut Vec<u8>, key: &[u8], n: u64) {
    out.extend_from_slice(key);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `,"attempt":N` when there is one (serde skips it when there is none).
fn attempt_field(out: &mut Vec<u8>, attempt: Option<u32>) {
    if let Some(attempt) = attempt {
        number(out, b",\"attempt\":", u64::from(attempt));
    }
}

fn job_field(out: &mut Vec<u8>, job: JobId) {
    out.extend_from_slice(b",\"job\":");
    job_id(out, job);
}

/// `"JOB-12"`, as [`JobId`]'s `Serialize` writes it.
fn job_id(out: &mut Vec<u8>, job: JobId) {
    out.extend_from_slice(b"\"JOB-");
    out.extend_from_slice(itoa::Buffer::new().format(job.0).as_bytes());
    out.push(b'"');
}

fn string_field(out: &mut Vec<u8>, key: &[u8], text: &str) {
    out.extend_from_slice(key);
    string(out, text);
}

/// `text` as a JSON string, escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, text: &str) {
    // serde escapes only quotes, backslashes and control characters: text without any is
    // copied as it is (most names, data and results).
    if super::hot_read::special_at(text.as_bytes()).is_none() {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    // Into a `Vec` nothing can fail: the writer never errs and a `str` always serialises.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hot::tests::{job_event, message};
    use proptest::prelude::*;

    fn by_hand(e: &Envelope) -> String {
        let mut out = Vec::new();
        envelope(&mut out, e).unwrap();
        String::from_utf8(out).unwrap()
    }

    proptest! {
        #[test]
        fn a_message_is_written_as_serde_writes_it(
            message in message(),
            from in ".{0,8}",
            clock in any::<u64>(),
            term in proptest::option::of(any::<u64>()),
        ) {
            let e = Envelope { from: from.into(), clock, term, message };
            prop_assert_eq!(by_hand(&e), serde_json::to_string(&e).unwrap());
        }

        #[test]
        fn an_event_is_written_as_serde_writes_it(
            event in job_event(),
            seq in any::<u64>(),
        ) {
            let mut out = Vec::new();
            super::event(&mut out, &event).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&event).unwrap());
            let event = std::sync::Arc::new(event);
            for message in [Message::Event { event: event.clone() }, Message::Replica { seq, event }] {
                let e = Envelope { from: "m1".into(), clock: 3, term: Some(2), message };
                prop_assert_eq!(by_hand(&e), serde_json::to_string(&e).unwrap());
            }
        }
    }

    /// Any job, in any state, as a snapshot may hold it.
    fn job() -> impl Strategy<Value = Job> {
        use crate::cluster::job::JobState;
        let text = ".{0,8}";
        let state = prop_oneof![
            Just(JobState::Queued),
            Just(JobState::Assigned),
            Just(JobState::Running),
            Just(JobState::Completed),
            Just(JobState::Failed),
        ];
        (
            (
                any::<u64>(),
                text,
                any::<i32>(),
                state,
                proptest::option::of(text),
            ),
            (any::<u32>(), any::<u32>(), any::<u8>(), text, any::<u64>()),
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of(text),
                proptest::option::of(text),
                any::<u32>(),
                proptest::collection::vec(text, 0..3),
                any::<bool>(),
            ),
        )
            .prop_map(
                |(
                    (id, data, priority, state, worker),
                    (attempts, failures, progress, by, submitted_ms),
                    (finished_ms, result, error, duplicates, sent_to, read),
                )| Job {
                    id: JobId(id),
                    data,
                    priority,
                    state,
                    worker,
                    attempts,
                    failures,
                    progress,
                    by,
                    submitted_ms,
                    finished_ms,
                    result,
                    error,
                    duplicates,
                    sent_to,
                    read,
                },
            )
    }

    proptest! {
        #[test]
        fn a_restored_job_is_written_as_serde_writes_it(
            job in job(),
            due in proptest::option::of(any::<u64>()),
            at_ms in any::<u64>(),
            clock in any::<u64>(),
        ) {
            let event = ClusterEvent {
                at_ms,
                clock,
                kind: EventKind::JobRestored { job: Box::new(job), due },
            };
            let mut out = Vec::new();
            super::event(&mut out, &event).unwrap();
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&event).unwrap());
        }
    }

    #[test]
    fn text_that_needs_escaping_is_escaped_as_serde_escapes_it() {
        for text in [
            "plain",
            "a\"b",
            "back\\slash",
            "line\nbreak",
            "\u{1}\u{1f}",
            "é ✓ \u{7f}",
            "",
        ] {
            let e = Envelope {
                from: text.into(),
                clock: 1,
                term: None,
                message: Message::JobDone {
                    job: JobId(3),
                    result: text.into(),
                    attempt: Some(1),
                },
            };
            assert_eq!(by_hand(&e), serde_json::to_string(&e).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn other_messages_and_events_are_left_to_serde() {
        let e = Envelope {
            from: "worker-1".into(),
            clock: 7,
            term: None,
            message: Message::Ping,
        };
        assert_eq!(by_hand(&e), serde_json::to_string(&e).unwrap());
        let event = ClusterEvent {
            at_ms: 5,
            clock: 9,
            kind: EventKind::WorkerDead {
                worker: "w\"1".into(),
                reason: "no heartbeat".into(),
            },
        };
        let mut out = Vec::new();
        super::event(&mut out, &event).unwrap();
        assert_eq!(out, serde_json::to_vec(&event).unwrap());
        // Inside an envelope written by hand, the event serde writes.
        let e = Envelope {
            from: "coordinator".into(),
            clock: 11,
            term: Some(3),
            message: Message::Event {
                event: std::sync::Arc::new(event),
            },
        };
        assert_eq!(by_hand(&e), serde_json::to_string(&e).unwrap());
    }
}
