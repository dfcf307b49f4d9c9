//! The lines tcluster's own nodes write for every job (and every chat delivery), read by their
//! exact shape.
//!
//! [`super::hot_write`] writes the messages of a job's life, the events a job makes and a chat
//! server's deliveries with their fields always in the same order, numbers in their shortest
//! form and strings escaped as serde escapes them. [`envelope`] reads a line written in exactly
//! that shape — each key in its place, nothing added — straight into the message, without
//! looking up a single key. Any other line, however valid (another order, an unknown field, a
//! student's own spacing), it leaves to [`super::hot`]'s one-pass reader (`None`).
//!
//! Only the shape is assumed, never the values: what it returns for a line is what the
//! general decoder returns for the same line (the property tests in [`super::hot`] hold every
//! reader to that).

use std::borrow::Cow;
use std::sync::Arc;

use super::message::{ChatBody, ChatEntry, ClusterEvent, Envelope, JobId, JobState, Message};
use crate::cluster::event::EventKind;

/// The envelope on `line`, if it is in the exact shape `hot_write` gives it.
pub(super) fn envelope(line: &str) -> Option<Envelope> {
    let mut r = Reader {
        line,
        rest: line.as_bytes(),
    };
    r.lit(b"{\"from\":")?;
    let from = compact_str::CompactString::from(r.string()?);
    r.lit(b",\"clock\":")?;
    let clock = r.u64()?;
    let term = if r.lit(b",\"term\":").is_some() {
        Some(r.u64()?)
    } else {
        None
    };
    r.lit(b",\"type\":")?;
    let message = match &*r.string()? {
        "assign" => Message::Assign {
            job: r.job()?,
            data: r.string_field(b",\"data\":")?,
            attempt: r.u32_field(b",\"attempt\":")?,
        },
        "started" => Message::Started { job: r.job()? },
        "progress" => Message::Progress {
            job: r.job()?,
            percent: r.u8_field(b",\"percent\":")?,
        },
        "job_done" => Message::JobDone {
            job: r.job()?,
            result: r.string_field(b",\"result\":")?,
            attempt: r.attempt()?,
        },
        "job_failed" => Message::JobFailed {
            job: r.job()?,
            error: r.string_field(b",\"error\":")?,
            attempt: r.attempt()?,
        },
        "result_ack" => Message::ResultAck {
            job: r.job()?,
            attempt: r.attempt()?,
        },
        "submit" => Message::Submit {
            data: r.string_field(b",\"data\":")?,
            count: r.u32_field(b",\"count\":")?,
            priority: {
                r.lit(b",\"priority\":")?;
                r.i32()?
            },
            token: r.optional_string_field(b",\"token\":")?,
            notify: r.boolean(b",\"notify\":")?,
        },
        "accepted" => Message::Accepted {
            jobs: r.jobs()?,
            last: if r.lit(b",\"last\":").is_some() {
                Some(r.job_id()?)
            } else {
                None
            },
        },
        "job_finished" => Message::JobFinished {
            job: r.job()?,
            state: r.state()?,
            result: r.string_field(b",\"result\":")?,
        },
        "event" => {
            r.lit(b",\"event\":")?;
            Message::Event {
                event: Arc::new(r.event()?),
            }
        }
        "replica" => {
            r.lit(b",\"seq\":")?;
            let seq = r.u64()?;
            r.lit(b",\"event\":")?;
            Message::Replica {
                seq,
                event: Arc::new(r.event()?),
            }
        }
        "chat_message" => Message::ChatMessage {
            entry: Box::new(r.chat_entry()?),
        },
        // The answer to every post: a publisher reads one per post.
        "chat_done" => Message::ChatDone {
            entry: if r.rest.starts_with(b",\"entry\":") {
                Some(Box::new(r.chat_entry()?))
            } else {
                None
            },
        },
        _ => return None,
    };
    r.lit(b"}")?;
    r.rest.is_empty().then_some(Envelope {
        from,
        clock,
        term,
        message,
    })
}

/// Where the first quote, backslash or control character is in `bytes`, looked for eight bytes
/// at a time (a byte is flagged where it is below 0x20 or equals `"` or `\\`; the lowest flag of
/// a word is always a true one, which is the one taken).
pub(super) fn special_at(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let x = u64::from_le_bytes(word.try_into().ok()?);
        let below = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let found = below
            | zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    (bytes[at..].iter())
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| at + i)
}

/// A line being read, from the front: `rest` is always the end of `line`.
struct Reader<'a> {
    line: &'a str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Consumes `text` if the line goes on with it.
    fn lit(&mut self, text: &[u8]) -> Option<()> {
        self.rest = self.rest.strip_prefix(text)?;
        Some(())
    }

    /// A string between its quotes. One without escapes is borrowed; one with them is
    /// decoded by serde (so every escape means what it means to the general decoder); a raw
    /// control character is an error there, and left to it here.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let body = self.rest.strip_prefix(b"\"")?;
        // Most strings have no escape: their end is the first special byte.
        let mut at = special_at(body)?;
        let mut escaped = false;
        loop {
            match *body.get(at)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    at += 2;
                }
                b if b < 0x20 => return None,
                _ => at += 1,
            }
        }
        // Cut from the line itself, which is already UTF-8: each cut falls on an ASCII quote,
        // a character's boundary, so nothing is validated again.
        let start = self.line.len() - body.len();
        let text = if escaped {
            let quoted = self.line.get(start - 1..start + at + 1)?;
            Cow::Owned(serde_json::from_str::<String>(quoted).ok()?)
        } else {
            Cow::Borrowed(self.line.get(start..start + at)?)
        };
        self.rest = &body[at + 1..];
        Some(text)
    }

    fn string_field<S: From<Cow<'a, str>>>(&mut self, key: &[u8]) -> Option<S> {
        self.lit(key)?;
        self.string().map(S::from)
    }

    /// `key` and a string, or nothing (serde leaves out a field that is `None`).
    fn optional_string_field<S: From<Cow<'a, str>>>(&mut self, key: &[u8]) -> Option<Option<S>> {
        if self.rest.starts_with(key) {
            self.string_field(key).map(Some)
        } else {
            Some(None)
        }
    }

    /// A number in its shortest form (no sign, no leading zero, no fraction or exponent),
    /// as serde writes one; one that does not fit a `u64` is the general decoder's to refuse.
    fn u64(&mut self) -> Option<u64> {
        let digits = self.rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (number, rest) = self.rest.split_at(digits);
        if number.is_empty() || (number[0] == b'0' && digits > 1) {
            return None;
        }
        if matches!(rest.first(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut n: u64 = 0;
        for &d in number {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.rest = rest;
        Some(n)
    }

    fn u32_field(&mut self, key: &[u8]) -> Option<u32> {
        self.lit(key)?;
        u32::try_from(self.u64()?).ok()
    }

    fn u8_field(&mut self, key: &[u8]) -> Option<u8> {
        self.lit(key)?;
        u8::try_from(self.u64()?).ok()
    }

    /// `-N` or `N` that fits an `i32`.
    fn i32(&mut self) -> Option<i32> {
        let negative = self.lit(b"-").is_some();
        let n = i64::try_from(self.u64()?).ok()?;
        i32::try_from(if negative { -n } else { n }).ok()
    }

    /// `true` or `false` after `key`.
    fn boolean(&mut self, key: &[u8]) -> Option<bool> {
        self.lit(key)?;
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|()| false)
        }
    }

    /// `"JOB-N"`, as `JobId` writes itself.
    fn job_id(&mut self) -> Option<JobId> {
        self.lit(b"\"JOB-")?;
        let n = self.u64()?;
        self.lit(b"\"")?;
        Some(JobId(n))
    }

    fn job(&mut self) -> Option<JobId> {
        self.lit(b",\"job\":")?;
        self.job_id()
    }

    /// `,"attempt":N`, or nothing (serde leaves out an attempt there is not).
    fn attempt(&mut self) -> Option<Option<u32>> {
        if self.rest.starts_with(b",\"attempt\":") {
            self.u32_field(b",\"attempt\":").map(Some)
        } else {
            Some(None)
        }
    }

    fn state(&mut self) -> Option<JobState> {
        self.lit(b",\"state\":")?;
        Some(match &*self.string()? {
            "queued" => JobState::Queued,
            "assigned" => JobState::Assigned,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "failed" => JobState::Failed,
            _ => return None,
        })
    }

    /// `,"jobs":["JOB-1","JOB-2"]`.
    fn jobs(&mut self) -> Option<Vec<JobId>> {
        self.lit(b",\"jobs\":[")?;
        let mut jobs = Vec::new();
        if self.lit(b"]").is_some() {
            return Some(jobs);
        }
        loop {
            jobs.push(self.job_id()?);
            if self.lit(b"]").is_some() {
                return Some(jobs);
            }
            self.lit(b",")?;
        }
    }

    /// A chat entry, as `hot_write` writes a delivery's.
    fn chat_entry(&mut self) -> Option<ChatEntry> {
        self.lit(b",\"entry\":{\"clock\":")?;
        let clock = self.u64()?;
        let server = self.string_field(b",\"server\":")?;
        self.lit(b",\"seq\":")?;
        let seq = self.u64()?;
        self.lit(b",\"kind\":")?;
        let body = match &*self.string()? {
            "channel" => ChatBody::Channel {
                channel: self.string_field(b",\"channel\":")?,
                by: self.string_field(b",\"by\":")?,
            },
            "post" => ChatBody::Post {
                channel: self.string_field(b",\"channel\":")?,
                from: self.string_field(b",\"from\":")?,
                text: self.string_field(b",\"text\":")?,
            },
            "direct" => ChatBody::Direct {
                from: self.string_field(b",\"from\":")?,
                to: self.string_field(b",\"to\":")?,
                text: self.string_field(b",\"text\":")?,
            },
            _ => return None,
        };
        let request = self.optional_string_field(b",\"request\":")?;
        self.lit(b"}")?;
        Some(ChatEntry {
            clock,
            server,
            seq,
            body,
            request,
        })
    }

    /// One of the events a job makes, as `hot_write::event` writes it.
    fn event(&mut self) -> Option<ClusterEvent> {
        self.lit(b"{\"at_ms\":")?;
        let at_ms = self.u64()?;
        self.lit(b",\"clock\":")?;
        let clock = self.u64()?;
        self.lit(b",\"event\":")?;
        let kind = match &*self.string()? {
            "job_submitted" => EventKind::JobSubmitted {
                job: self.job()?,
                data: self.string_field(b",\"data\":")?,
                priority: {
                    self.lit(b",\"priority\":")?;
                    self.i32()?
                },
                by: self.string_field(b",\"by\":")?,
            },
            "job_assigned" => EventKind::JobAssigned {
                job: self.job()?,
                worker: self.string_field(b",\"worker\":")?,
                attempt: self.u32_field(b",\"attempt\":")?,
            },
            "job_started" => EventKind::JobStarted {
                job: self.job()?,
                worker: self.string_field(b",\"worker\":")?,
            },
            "job_progress" => EventKind::JobProgress {
                job: self.job()?,
                worker: self.string_field(b",\"worker\":")?,
                percent: self.u8_field(b",\"percent\":")?,
            },
            "job_completed" => EventKind::JobCompleted {
                job: self.job()?,
                worker: self.string_field(b",\"worker\":")?,
                result: self.string_field(b",\"result\":")?,
                read: self.lit(b",\"read\":true").is_some(),
            },
            "results_read" => EventKind::ResultsRead { jobs: self.jobs()? },
            "jobs_forgotten" => EventKind::JobsForgotten { jobs: self.jobs()? },
            _ => return None,
        };
        self.lit(b"}")?;
        Some(ClusterEvent { at_ms, clock, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hot::tests::{job_event, message};
    use proptest::prelude::*;

    fn general(line: &str) -> Option<Envelope> {
        serde_json::from_str::<Envelope>(line).ok()
    }

    /// One of the messages `hot_write` writes by hand, in any envelope.
    fn written() -> impl Strategy<Value = Envelope> {
        let message = prop_oneof![
            message(),
            job_event().prop_map(|event| Message::Event {
                event: Arc::new(event)
            }),
            (any::<u64>(), job_event()).prop_map(|(seq, event)| Message::Replica {
                seq,
                event: Arc::new(event)
            }),
        ];
        (
            message,
            ".{0,8}",
            any::<u64>(),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(message, from, clock, term)| Envelope {
                from: from.into(),
                clock,
                term,
                message,
            })
    }

    /// A change to a line: a byte removed, one put in, one replaced.
    #[derive(Debug, Clone)]
    enum Edit {
        Remove(usize),
        Insert(usize, u8),
        Replace(usize, u8),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let byte = prop_oneof![
            Just(b'"'),
            Just(b'\\'),
            Just(b','),
            Just(b'}'),
            Just(b' '),
            Just(b'0'),
            Just(b'9'),
            Just(b'-'),
            Just(b'.'),
            Just(b'e'),
            Just(b'\n'),
            Just(b'a'),
        ];
        prop_oneof![
            any::<usize>().prop_map(Edit::Remove),
            (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Insert(at, b)),
            (any::<usize>(), byte).prop_map(|(at, b)| Edit::Replace(at, b)),
        ]
    }

    proptest! {
        /// Every line `hot_write` writes is read here, back into what was written.
        #[test]
        fn what_hot_write_writes_reads_back(e in written()) {
            let line = e.to_json();
            prop_assert_eq!(envelope(&line), Some(e), "{}", line);
        }

        /// A line changed anywhere is either left to the other readers or read exactly as
        /// the general decoder reads it.
        #[test]
        fn a_changed_line_reads_as_the_general_decoder_reads_it(
            e in written(),
            edits in proptest::collection::vec(edit(), 1..3),
        ) {
            let mut bytes = e.to_json().into_bytes();
            for edit in edits {
                let len = bytes.len();
                match edit {
                    Edit::Remove(at) if len > 0 => {
                        bytes.remove(at % len);
                    }
                    Edit::Insert(at, b) => bytes.insert(at % (len + 1), b),
                    Edit::Replace(at, b) if len > 0 => bytes[at % len] = b,
                    _ => {}
                }
            }
            // An edit may cut a character in two: such bytes never reach a reader as a line.
            let Ok(line) = String::from_utf8(bytes) else { return Ok(()) };
            if let Some(read) = envelope(&line) {
                prop_assert_eq!(Some(read), general(&line), "{}", line);
            }
        }
    }

    proptest! {
        /// Eight bytes at a time finds what a byte at a time finds.
        #[test]
        fn the_first_special_byte_is_found_as_one_by_one_finds_it(
            bytes in prop::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x21, 0x5Bu8..0x5E, any::<u8>()],
                0..40,
            ),
            start in 0usize..8,
        ) {
            let bytes = &bytes[start.min(bytes.len())..];
            let slow = bytes.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            prop_assert_eq!(special_at(bytes), slow);
        }
    }

    #[test]
    fn an_escaped_string_is_read_as_serde_reads_it() {
        let line =
            r#"{"from":"w\u0031","clock":1,"type":"job_done","job":"JOB-1","result":"a\"b\\c\n"}"#;
        assert_eq!(envelope(line), general(line));
        assert!(envelope(line).is_some());
    }

    #[test]
    fn any_other_shape_is_left_to_the_other_readers() {
        for line in [
            // Another order, spacing, an unknown field, a raw tab, a number in another form.
            r#"{"clock":1,"from":"w","type":"started","job":"JOB-1"}"#,
            r#"{"from":"w", "clock":1,"type":"started","job":"JOB-1"}"#,
            r#"{"from":"w","clock":1,"type":"started","job":"JOB-1","x":1}"#,
            "{\"from\":\"w\tx\",\"clock\":1,\"type\":\"started\",\"job\":\"JOB-1\"}",
            r#"{"from":"w","clock":01,"type":"started","job":"JOB-1"}"#,
            r#"{"from":"w","clock":1.0,"type":"started","job":"JOB-1"}"#,
            r#"{"from":"w","clock":1,"type":"started","job":"job-1"}"#,
            r#"{"from":"w","clock":1,"type":"started","job":1}"#,
            r#"{"from":"w","clock":1,"type":"progress","job":"JOB-1","percent":256}"#,
            r#"{"from":"w","clock":1,"type":"job_done","job":"JOB-1","result":"ok","attempt":null}"#,
            r#"{"from":"w","clock":1,"type":"started","job":"JOB-1"} "#,
            r#"{"from":"w","clock":1,"type":"ping"}"#,
        ] {
            assert_eq!(envelope(line), None, "{line}");
        }
    }

    /// A chat delivery in any other shape than a chat server writes it — an unknown kind, a
    /// field moved, added, null or of the wrong type — is left to the general decoder, which
    /// reads it or says what is wrong with it.
    #[test]
    fn a_chat_delivery_in_another_shape_is_left_to_the_general_decoder() {
        let head = r#"{"from":"chat-1","clock":9,"type":"chat_message","entry":"#;
        let written = format!(
            r#"{head}{{"clock":8,"server":"chat-1","seq":3,"kind":"post","channel":"general","from":"ana","text":"hi"}}}}"#
        );
        assert!(envelope(&written).is_some(), "{written}");
        // Each with what the general decoder makes of it: read, or refused with a reason.
        for (entry, readable) in [
            (
                r#"{"clock":8,"server":"chat-1","seq":3,"kind":"poll","channel":"general","from":"ana","text":"hi"}"#,
                false,
            ),
            (
                r#"{"server":"chat-1","clock":8,"seq":3,"kind":"post","channel":"general","from":"ana","text":"hi"}"#,
                true,
            ),
            (
                r#"{"clock":8,"server":"chat-1","seq":3,"kind":"post","channel":"general","from":"ana","text":"hi","pinned":true}"#,
                true,
            ),
            (
                r#"{"clock":8,"server":"chat-1","seq":3,"kind":"post","channel":"general","from":"ana","text":"hi","request":null}"#,
                true,
            ),
            (
                r#"{"clock":8,"server":"chat-1","seq":"3","kind":"post","channel":"general","from":"ana","text":"hi"}"#,
                false,
            ),
            (
                r#"{"clock":8,"server":"chat-1","seq":3,"kind":"post","channel":"general","from":"ana"}"#,
                false,
            ),
        ] {
            let line = format!("{head}{entry}}}");
            assert_eq!(envelope(&line), None, "{line}");
            let decoded = crate::protocol::decode(crate::protocol::Dialect::Native, &line, "");
            assert_eq!(decoded.is_ok(), readable, "{line}: {decoded:?}");
            if let Err(e) = decoded {
                assert!(e.to_string().contains("chat_message"), "{line}: {e}");
            }
        }
    }
}
