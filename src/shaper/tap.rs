//! The shaper's tap: what the links carried, for the console's space-time diagram and the
//! recording.
//!
//! A message at a time when messages come one at a time (a heartbeat, an election, a job a
//! second); under a flood, one item per kind of message and fate in each burst a proxy read at
//! once (`assign ×37`), as the diagram draws it anyway. So what the tap costs follows what can
//! be seen, not how fast the cluster runs: at 10,000 jobs a second, every proxied message its
//! own item would be tens of thousands of feed items a second to record and to hand on.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use memchr::memmem::Finder;

use super::Fate;

/// Messages a proxy groups into one burst before the tap hears of them, at most.
pub(super) const BURST: usize = 256;

/// Messages a link carried, for the console's space-time diagram: one, or several of one kind
/// that met the same fate in one burst.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MessageSeen {
    /// When it entered the link (the first of them), in milliseconds since the shaper started.
    pub at_ms: u64,
    /// Sender.
    pub from: Arc<str>,
    /// Receiver.
    pub to: Arc<str>,
    /// Its `type` (`heartbeat`, `assign` …), or `classic` for a classic line.
    pub kind: String,
    /// The sender's Lamport clock, if the message carries one (the latest, of several).
    pub clock: Option<u64>,
    /// What became of it.
    pub fate: Fate,
    /// How many messages this is.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl MessageSeen {
    /// Whether it was dropped (by the link, or by the operator).
    pub fn dropped(&self) -> bool {
        matches!(self.fate, Fate::Dropped | Fate::Discarded)
    }
}

/// What one proxy direction read in one go, grouped by kind and fate in the order each first
/// came.
#[derive(Debug, Default)]
pub(super) struct Burst {
    seen: Vec<MessageSeen>,
    lines: usize,
}

impl Burst {
    /// Counts `line` in.
    pub(super) fn add(
        &mut self,
        at_ms: u64,
        names: &(Arc<str>, Arc<str>),
        line: &[u8],
        fate: Fate,
    ) {
        self.lines += 1;
        let (kind, clock) = peek(line);
        if let Some(seen) = self
            .seen
            .iter_mut()
            .find(|s| s.fate == fate && s.kind == kind)
        {
            seen.count += 1;
            seen.clock = seen.clock.max(clock);
            return;
        }
        self.seen.push(MessageSeen {
            at_ms,
            from: names.0.clone(),
            to: names.1.clone(),
            kind: kind.into_owned(),
            clock,
            fate,
            count: 1,
        });
    }

    /// Messages counted in so far.
    pub(super) fn len(&self) -> usize {
        self.lines
    }

    /// What was counted, and a fresh start.
    pub(super) fn take(&mut self) -> std::vec::Drain<'_, MessageSeen> {
        self.lines = 0;
        self.seen.drain(..)
    }
}

/// A line's `type` and Lamport clock (`classic` and none for a classic line).
///
/// A node's line is read where its keys are written as a node writes them (`"type":"…"`, then
/// `"clock":N`); any other line is parsed.
pub(super) fn peek(line: &[u8]) -> (Cow<'_, str>, Option<u64>) {
    static TYPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"type\":\""));
    static CLOCK: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"clock\":"));
    if crate::protocol::packed::is_frame(line) {
        let clock = crate::protocol::packed::read_delivery(line).ok();
        return (Cow::Borrowed("chat_message"), clock.map(|e| e.clock));
    }
    if line.first() == Some(&b'{')
        && let Some(kind) = quoted_after(line, &TYPE)
    {
        return (Cow::Borrowed(kind), number_after(line, &CLOCK));
    }
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default)]
        clock: Option<u64>,
    }
    match serde_json::from_slice::<Peek>(line) {
        Ok(peek) => (peek.kind, peek.clock),
        Err(_) => (Cow::Borrowed("classic"), None),
    }
}

/// The text between the key `key` finds and the next quote, if it has no escape in it.
fn quoted_after<'a>(line: &'a [u8], key: &Finder) -> Option<&'a str> {
    let at = key.find(line)? + key.needle().len();
    let rest = &line[at..];
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"')
        .then(|| std::str::from_utf8(&rest[..end]).ok())
        .flatten()
}

/// The whole number right after the key `key` finds, if there is one.
fn number_after(line: &[u8], key: &Finder) -> Option<u64> {
    let at = key.find(line)? + key.needle().len();
    let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_read_for_its_type_and_clock() {
        let line = br#"{"from":"worker-1","clock":42,"type":"heartbeat","load":0}"#;
        assert_eq!(peek(line), (Cow::Borrowed("heartbeat"), Some(42)));
        // Written another way: parsed.
        let line = br#"{ "type" : "assign", "clock" : 7 }"#;
        assert_eq!(peek(line), (Cow::Borrowed("assign"), Some(7)));
        assert_eq!(peek(b"RESULT:JOB-1:ok"), (Cow::Borrowed("classic"), None));
        assert_eq!(peek(br#"{"type":"ping"}"#), (Cow::Borrowed("ping"), None));
    }

    #[test]
    fn whatever_a_peer_sends_is_read_as_something_and_never_panics() {
        // An escaped type, a type that is not UTF-8, a clock past u64, no clock digits, a line
        // cut short, nothing at all: a kind is still said (parsed, or `classic`).
        let lines: [&[u8]; 7] = [
            br#"{"type":"as\"sign","clock":1}"#,
            b"{\"type\":\"\xff\xfe\",\"clock\":1}",
            br#"{"type":"assign","clock":99999999999999999999999}"#,
            br#"{"type":"assign","clock":"x"}"#,
            br#"{"type":"assi"#,
            b"",
            b"\xff\x00{",
        ];
        for line in lines {
            let (kind, _) = peek(line);
            assert!(!kind.is_empty(), "{line:?}");
        }
        assert_eq!(peek(br#"{"type":"as\"sign"}"#).0, "as\"sign");
        assert_eq!(
            peek(br#"{"type":"assign","clock":99999999999999999999999}"#).1,
            None
        );
        assert_eq!(peek(b"").0, "classic");
    }

    #[test]
    fn a_burst_groups_messages_by_kind_and_fate_in_the_order_they_first_came() {
        let names: (Arc<str>, Arc<str>) = (Arc::from("coordinator"), Arc::from("worker-1"));
        let mut burst = Burst::default();
        for clock in 1..=3 {
            let line = format!(r#"{{"clock":{clock},"type":"assign","job":"JOB-{clock}"}}"#);
            burst.add(10, &names, line.as_bytes(), Fate::Carried);
        }
        burst.add(11, &names, br#"{"clock":9,"type":"ping"}"#, Fate::Carried);
        burst.add(11, &names, br#"{"clock":4,"type":"assign"}"#, Fate::Dropped);
        assert_eq!(burst.len(), 5);
        let seen: Vec<_> = burst
            .take()
            .map(|s| (s.kind, s.count, s.clock, s.fate, s.at_ms))
            .collect();
        assert_eq!(
            seen,
            [
                ("assign".to_string(), 3, Some(3), Fate::Carried, 10),
                ("ping".to_string(), 1, Some(9), Fate::Carried, 11),
                ("assign".to_string(), 1, Some(4), Fate::Dropped, 11),
            ]
        );
        assert_eq!(burst.len(), 0);
        assert_eq!(burst.take().count(), 0);
    }

    #[test]
    fn one_message_is_recorded_as_before_and_several_say_how_many() {
        let names: (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut burst = Burst::default();
        burst.add(5, &names, br#"{"type":"heartbeat"}"#, Fate::Carried);
        let lone = burst.take().next().expect("one");
        let json = serde_json::to_string(&lone).expect("encodes");
        assert!(!json.contains("count"), "{json}");
        assert_eq!(
            serde_json::from_str::<MessageSeen>(&json).expect("reads"),
            lone
        );
        let several = MessageSeen { count: 12, ..lone };
        let json = serde_json::to_string(&several).expect("encodes");
        assert_eq!(
            serde_json::from_str::<MessageSeen>(&json)
                .expect("reads")
                .count,
            12
        );
    }
}
