//! Chat deliveries as MessagePack frames, for a connection that asked for them
//! (`chat_encoding` `msgpack`).
//!
//! A frame is the byte [`MARKER`] (0xC1: never used by MessagePack, never the first byte of
//! UTF-8 text, so never the start of a line), the body's length as four bytes, big-endian, and
//! the body: one MessagePack array of ten values, a `chat_message` envelope's fields in the
//! order its JSON line has them:
//!
//! ```text
//! [from, clock, entry.clock, entry.server, entry.seq, kind, a, b, c, request]
//!   post:    a = channel, b = from (the author), c = text
//!   channel: a = channel, b = by,                c = nil
//!   direct:  a = from,    b = to,                c = text
//! ```
//!
//! `request` is nil unless the entry has one. Text lines and frames may follow each other on one
//! connection: replies stay JSON lines. [`delivery`] writes a frame; [`read_delivery`] reads one
//! back by that shape and refuses anything else, saying which value is wrong.

use compact_str::CompactString;
use rmp::encode;

use super::DecodeError;
use super::message::{ChatBody, ChatEntry, Envelope, Message};

/// The first byte of a frame.
pub const MARKER: u8 = 0xC1;
/// The marker and the body's length.
pub const HEADER: usize = 5;
/// Values in a body.
const FIELDS: u32 = 10;

/// Whether bytes cut from a connection (a frame, or a line) are a frame.
pub fn is_frame(item: &[u8]) -> bool {
    item.first() == Some(&MARKER)
}

/// Appends `envelope` as a frame, if it is a delivery (`chat_message` without a term); `false`,
/// with nothing written, for any other message (those go as JSON lines).
pub fn delivery(out: &mut Vec<u8>, envelope: &Envelope) -> bool {
    let Message::ChatMessage { entry } = &envelope.message else {
        return false;
    };
    if envelope.term.is_some() {
        return false;
    }
    let start = out.len();
    out.push(MARKER);
    out.extend_from_slice(&[0; 4]);
    // Writing to a Vec cannot fail.
    let _ = encode::write_array_len(out, FIELDS);
    let _ = encode::write_str(out, &envelope.from);
    let _ = encode::write_uint(out, envelope.clock);
    let _ = encode::write_uint(out, entry.clock);
    let _ = encode::write_str(out, &entry.server);
    let _ = encode::write_uint(out, entry.seq);
    let (kind, a, b, c) = match &entry.body {
        ChatBody::Post {
            channel,
            from,
            text,
        } => ("post", channel, from, Some(text.as_str())),
        ChatBody::Channel { channel, by } => ("channel", channel, by, None),
        ChatBody::Direct { from, to, text } => ("direct", from, to, Some(text.as_str())),
    };
    let _ = encode::write_str(out, kind);
    let _ = encode::write_str(out, a);
    let _ = encode::write_str(out, b);
    string_or_nil(out, c);
    string_or_nil(out, entry.request.as_deref());
    let length = (out.len() - start - HEADER) as u32;
    out[start + 1..start + HEADER].copy_from_slice(&length.to_be_bytes());
    true
}

fn string_or_nil(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            let _ = encode::write_str(out, s);
        }
        None => {
            let _ = encode::write_nil(out);
        }
    }
}

/// The body's length, from a frame's first [`HEADER`] bytes.
pub fn body_length(header: &[u8; HEADER]) -> usize {
    u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize
}

/// What each part of a body must be, in the order they are read: the array, its ten values,
/// and the end.
const EXPECTED: [&str; 12] = [
    "the body is an array of ten values",
    "from is a string",
    "clock is a whole number from 0",
    "the entry's clock is a whole number from 0",
    "server is a string",
    "seq is a whole number from 0",
    "kind is post or direct (with a text) or channel (with nil)",
    "the kind's first field is a string",
    "the kind's second field is a string",
    "the kind's third field is a string or nil",
    "request is a string or nil",
    "nothing may follow the ten values",
];

/// Reads a whole frame (marker and length included) back into its envelope. A connection's
/// reader keeps a [`Deliveries`] instead, which reads the names that repeat faster.
pub fn read_delivery(frame: &[u8]) -> Result<Envelope, DecodeError> {
    Deliveries::default().read(frame)
}

/// The reader of one connection's frames. The names in a delivery (the sender, the server that
/// made the entry, its channel and author) are mostly those of the delivery before: each is
/// kept, and a name whose bytes are the same as last time is copied from there rather than
/// checked and built again.
#[derive(Debug, Default, Clone)]
pub struct Deliveries {
    /// The last sender and server, and the last kind's first and second fields.
    names: [CompactString; 4],
}

impl Deliveries {
    /// Reads a whole frame (marker and length included) back into its envelope.
    pub fn read(&mut self, frame: &[u8]) -> Result<Envelope, DecodeError> {
        let body = match frame.split_first_chunk::<HEADER>() {
            Some((header, body)) if header[0] == MARKER && body.len() == body_length(header) => {
                body
            }
            _ => {
                return Err(bad(
                    0,
                    "a frame is 0xC1, the body's length in four bytes, the body",
                ));
            }
        };
        let mut r = Reader {
            rest: body,
            at: 0,
            wrong: false,
        };
        // The part that is wrong is the one being read; a value is named by its place (from 0).
        self.body(&mut r)
            .ok_or_else(|| bad(r.at.saturating_sub(1).min(10), EXPECTED[r.at]))
    }

    /// The body, read in order; `None` at the first part that is wrong (`r.at` says which).
    fn body(&mut self, r: &mut Reader) -> Option<Envelope> {
        // Ten values: a fixarray, or the same count in the longer forms another writer may use.
        let header = match r.rest {
            [0x9a, ..] => 1,
            [0xdc, 0, 10, ..] => 3,
            [0xdd, 0, 0, 0, 10, ..] => 5,
            _ => return None,
        };
        r.rest = &r.rest[header..];
        let [from, server, a, b] = &mut self.names;
        let from = r.name(from);
        r.ok()?;
        let clock = r.number()?;
        let entry_clock = r.number()?;
        let server = r.name(server);
        r.ok()?;
        let seq = r.number()?;
        let kind = r.bytes()?;
        let a = r.name(a);
        r.ok()?;
        let b = r.name(b);
        r.ok()?;
        let c = r.text()?;
        let body = match (kind, c) {
            (Some(b"post"), Some(text)) => ChatBody::Post {
                channel: a,
                from: b,
                text: owned(text),
            },
            (Some(b"direct"), Some(text)) => ChatBody::Direct {
                from: a,
                to: b,
                text: owned(text),
            },
            (Some(b"channel"), None) => ChatBody::Channel { channel: a, by: b },
            _ => {
                r.at = 6;
                return None;
            }
        };
        let request = r.text()?.map(CompactString::from);
        r.at += 1;
        r.rest.is_empty().then_some(())?;
        // Written straight into its allocation: an entry is larger than a move without a
        // `memcpy` call.
        let entry = Box::write(
            Box::new_uninit(),
            ChatEntry {
                clock: entry_clock,
                server,
                seq,
                body,
                request,
            },
        );
        Some(Envelope {
            from,
            clock,
            term: None,
            message: Message::ChatMessage { entry },
        })
    }
}

/// `text` as an owned string, copied into an empty one. (`CompactString::from` returns it
/// inside a `Result`, and moving it out of that stalls the processor as a name's `Option` did:
/// see [`Reader::name`].)
#[inline]
fn owned(text: &str) -> CompactString {
    let mut owned = CompactString::default();
    owned.push_str(text);
    owned
}

/// The body still to read, and which part of it is being read.
struct Reader<'a> {
    rest: &'a [u8],
    at: usize,
    /// Whether a name read was not one.
    wrong: bool,
}

impl<'a> Reader<'a> {
    /// A string (not nil), the same as `last` or read into it; if it is not one, an empty
    /// name, and [`Reader::ok`] says so. (Returned bare rather than as an `Option`: moved out
    /// of an `Option` it is read back in pieces that straddle the writes that made it, and
    /// the processor stalls on each.)
    #[inline]
    fn name(&mut self, last: &mut CompactString) -> CompactString {
        let read = match self.bytes() {
            Some(Some(bytes)) if bytes == last.as_bytes() => Some(()),
            Some(Some(bytes)) => std::str::from_utf8(bytes)
                .ok()
                .map(|name| *last = name.into()),
            _ => None,
        };
        if read.is_none() {
            self.wrong = true;
            return CompactString::default();
        }
        last.clone()
    }

    /// `None` once a name read was not one.
    #[inline]
    fn ok(&self) -> Option<()> {
        (!self.wrong).then_some(())
    }

    /// A string or nil, borrowed from the frame.
    #[inline]
    fn text(&mut self) -> Option<Option<&'a str>> {
        match self.bytes()? {
            Some(bytes) => Some(Some(std::str::from_utf8(bytes).ok()?)),
            None => Some(None),
        }
    }

    /// A string's bytes (not yet known to be UTF-8), or nil.
    #[inline]
    fn bytes(&mut self) -> Option<Option<&'a [u8]>> {
        self.at += 1;
        let (&marker, rest) = self.rest.split_first()?;
        let (length, rest) = match marker {
            // The short form first: every name and most texts.
            0xa0..=0xbf => (usize::from(marker & 0x1f), rest),
            0xc0 => {
                self.rest = rest;
                return Some(None);
            }
            0xd9 => (usize::from(*rest.first()?), &rest[1..]),
            0xda => (
                usize::from(u16::from_be_bytes(*rest.first_chunk()?)),
                &rest[2..],
            ),
            0xdb => (
                u32::from_be_bytes(*rest.first_chunk()?) as usize,
                &rest[4..],
            ),
            _ => return None,
        };
        let (bytes, rest) = rest.split_at_checked(length)?;
        self.rest = rest;
        Some(Some(bytes))
    }

    /// A whole number from 0, in any of MessagePack's integer forms.
    #[inline]
    fn number(&mut self) -> Option<u64> {
        self.at += 1;
        let (&marker, rest) = self.rest.split_first()?;
        let (n, width) = match marker {
            0x00..=0x7f => (u64::from(marker), 0),
            0xcc | 0xd0 => (u64::from(*rest.first()?), 1),
            0xcd | 0xd1 => (u64::from(u16::from_be_bytes(*rest.first_chunk()?)), 2),
            0xce | 0xd2 => (u64::from(u32::from_be_bytes(*rest.first_chunk()?)), 4),
            0xcf | 0xd3 => (u64::from_be_bytes(*rest.first_chunk()?), 8),
            _ => return None,
        };
        // A signed form (one byte or more) holds a number from 0 only if its top bit is clear.
        let signed = matches!(marker, 0xd0..=0xd3);
        if signed && n >> (width * 8 - 1) != 0 {
            return None;
        }
        self.rest = &rest[width..];
        Some(n)
    }
}

/// Why a frame is not a delivery: which of the ten values (from 0), and what it should be.
fn bad(value: usize, detail: &str) -> DecodeError {
    DecodeError::Packed {
        value,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::hot::tests::chat_entry;
    use proptest::prelude::*;

    fn framed(envelope: &Envelope) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(delivery(&mut out, envelope));
        out
    }

    /// A frame around the values `write` writes (ten of them, or not).
    fn frame_of(count: u32, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut body = Vec::new();
        let _ = encode::write_array_len(&mut body, count);
        write(&mut body);
        let mut out = vec![MARKER];
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// The ten values of a post, with `change` applied to the list first.
    fn post_with(change: impl FnOnce(&mut Vec<Option<Value>>)) -> Vec<u8> {
        let mut values = vec![
            Some(Value::S("chat-1")),
            Some(Value::N(9)),
            Some(Value::N(8)),
            Some(Value::S("chat-1")),
            Some(Value::N(1)),
            Some(Value::S("post")),
            Some(Value::S("general")),
            Some(Value::S("alice")),
            Some(Value::S("hello")),
            None,
        ];
        change(&mut values);
        frame_of(values.len() as u32, |out| {
            for v in values {
                match v {
                    Some(Value::S(s)) => drop(encode::write_str(out, s)),
                    Some(Value::N(n)) => drop(encode::write_uint(out, n)),
                    Some(Value::Negative) => drop(encode::write_sint(out, -1)),
                    Some(Value::NotText) => drop(encode::write_bin(out, b"\xff")),
                    None => drop(encode::write_nil(out)),
                }
            }
        })
    }

    enum Value {
        S(&'static str),
        N(u64),
        Negative,
        NotText,
    }

    fn refused_at(frame: &[u8]) -> usize {
        match read_delivery(frame) {
            Err(DecodeError::Packed { value, .. }) => value,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_post_is_ten_values_in_the_order_of_its_json_line() {
        let frame = post_with(|_| {});
        let e = read_delivery(&frame).unwrap();
        assert_eq!(e.from, "chat-1");
        assert_eq!(e.clock, 9);
        let Message::ChatMessage { entry } = &e.message else {
            panic!("{e:?}")
        };
        assert_eq!(entry.to_string(), "[8 chat-1] #general <alice> hello");
        assert_eq!(entry.seq, 1);
        // Written back, the same bytes.
        assert_eq!(framed(&e), frame);
        // A generic MessagePack library reads the body as ten values.
        type Ten = (
            String,
            u64,
            u64,
            String,
            u64,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let ten: Ten = rmp_serde::from_slice(&frame[HEADER..]).unwrap();
        assert_eq!(ten.5, "post");
        assert_eq!(ten.8.as_deref(), Some("hello"));
        assert_eq!(ten.9, None);
    }

    #[test]
    fn what_is_not_a_delivery_is_refused_with_the_value_that_is_wrong() {
        let mut frame = post_with(|_| {});
        // The header's length must be the body's.
        frame.push(0);
        assert_eq!(refused_at(&frame), 0);
        let mut wrong = post_with(|_| {});
        wrong[0] = b'{';
        assert_eq!(refused_at(&wrong), 0);
        assert_eq!(refused_at(&wrong[..3]), 0);
        // Nine values, or eleven.
        assert_eq!(refused_at(&post_with(|v| v.truncate(9))), 0);
        assert_eq!(refused_at(&post_with(|v| v.push(None))), 0);
        // Each value of the wrong type, named by its place.
        assert_eq!(refused_at(&post_with(|v| v[0] = Some(Value::N(3)))), 0);
        assert_eq!(refused_at(&post_with(|v| v[1] = Some(Value::S("9")))), 1);
        assert_eq!(refused_at(&post_with(|v| v[2] = Some(Value::Negative))), 2);
        assert_eq!(refused_at(&post_with(|v| v[3] = None)), 3);
        assert_eq!(refused_at(&post_with(|v| v[4] = None)), 4);
        assert_eq!(
            refused_at(&post_with(|v| v[5] = Some(Value::S("dance")))),
            5
        );
        assert_eq!(refused_at(&post_with(|v| v[6] = Some(Value::NotText))), 6);
        assert_eq!(refused_at(&post_with(|v| v[7] = None)), 7);
        // A post without its text; a channel with one.
        assert_eq!(refused_at(&post_with(|v| v[8] = None)), 5);
        assert_eq!(
            refused_at(&post_with(|v| v[5] = Some(Value::S("channel")))),
            5
        );
        assert_eq!(refused_at(&post_with(|v| v[9] = Some(Value::N(1)))), 9);
        // Bytes that are not UTF-8 in a string.
        let mut bad_text = post_with(|_| {});
        let at = bad_text.len() - 2;
        bad_text[at] = 0xff;
        assert_eq!(refused_at(&bad_text), 8);
        let mut bad_name = post_with(|_| {});
        let at = bad_name.windows(7).position(|w| w == b"general").unwrap();
        bad_name[at + 2] = 0xff;
        assert_eq!(refused_at(&bad_name), 6);
        // A reader that refused a name reads the next delivery whole.
        let mut reader = Deliveries::default();
        assert!(reader.read(&bad_name).is_err());
        assert_eq!(
            reader.read(&post_with(|_| {})).unwrap(),
            read_delivery(&post_with(|_| {})).unwrap()
        );
        // The error says where, in words.
        let said = read_delivery(&post_with(|v| v[1] = None)).unwrap_err();
        assert_eq!(
            said.to_string(),
            "bad MessagePack delivery, value 1: clock is a whole number from 0"
        );
    }

    /// A text too long to be kept inline reads back whole, as does a short one after it.
    #[test]
    fn a_long_text_reads_back_whole() {
        let long: &'static str = "é".repeat(150).leak();
        let mut reader = Deliveries::default();
        for text in [long, "short", ""] {
            let frame = post_with(|v| v[8] = Some(Value::S(text)));
            let Message::ChatMessage { entry } = reader.read(&frame).unwrap().message else {
                panic!("not a delivery");
            };
            let ChatBody::Post { text: read, .. } = entry.body else {
                panic!("not a post");
            };
            assert_eq!(read, text);
        }
    }

    /// Another writer may choose the longer forms MessagePack allows: they read the same.
    #[test]
    fn a_delivery_in_longer_forms_reads_the_same() {
        let short = read_delivery(&post_with(|_| {})).unwrap();
        let mut body = vec![0xdc, 0, 10]; // an array16 of ten
        body.extend_from_slice(&[0xd9, 6]); // str8
        body.extend_from_slice(b"chat-1");
        body.extend_from_slice(&[0xcd, 0, 9]); // uint16
        body.extend_from_slice(&[0xd0, 8]); // int8, not negative
        body.extend_from_slice(&[0xda, 0, 6]); // str16
        body.extend_from_slice(b"chat-1");
        body.extend_from_slice(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1]); // uint64
        for s in ["post", "general", "alice", "hello"] {
            let _ = encode::write_str(&mut body, s);
        }
        let _ = encode::write_nil(&mut body);
        let mut long = vec![MARKER];
        long.extend_from_slice(&(body.len() as u32).to_be_bytes());
        long.extend_from_slice(&body);
        assert_eq!(read_delivery(&long[..]).ok(), Some(short));
        // A negative number in a signed form is no clock.
        let mut negative = long.clone();
        let at = negative.iter().position(|&b| b == 0xd0).unwrap();
        negative[at + 1] = 0xff;
        assert_eq!(refused_at(&negative), 2);
    }

    #[test]
    fn only_a_delivery_becomes_a_frame() {
        let mut out = Vec::new();
        let ping = Envelope {
            from: "chat-1".into(),
            clock: 1,
            term: None,
            message: Message::Ping,
        };
        assert!(!delivery(&mut out, &ping));
        let e = read_delivery(&post_with(|_| {})).unwrap();
        let with_term = Envelope { term: Some(2), ..e };
        assert!(!delivery(&mut out, &with_term));
        assert!(out.is_empty());
    }

    proptest! {
        #[test]
        fn every_delivery_reads_back_as_written(
            entry in chat_entry(),
            from in ".{0,40}",
            clock in any::<u64>(),
        ) {
            let e = Envelope {
                from: from.into(),
                clock,
                term: None,
                message: Message::ChatMessage { entry: Box::new(entry) },
            };
            prop_assert_eq!(read_delivery(&framed(&e)), Ok(e));
        }

        /// One connection's reader keeps the names of the delivery before: whichever names
        /// repeat or change from one delivery to the next, and whatever frame was refused in
        /// between, each reads back as written.
        #[test]
        fn a_connection_reads_each_delivery_as_written(
            entries in proptest::collection::vec(chat_entry(), 3),
            senders in proptest::collection::vec(".{0,30}", 3),
            order in proptest::collection::vec((0..3usize, 0..3usize, any::<bool>()), 1..24),
        ) {
            let mut reader = Deliveries::default();
            for (entry, from, refused_before) in order {
                if refused_before {
                    // A frame whose last value is wrong, after names that may be new.
                    let mut bad = framed(&Envelope {
                        from: "someone-else".into(),
                        clock: 1,
                        term: None,
                        message: Message::ChatMessage { entry: Box::new(entries[2].clone()) },
                    });
                    *bad.last_mut().unwrap() = 0xc3;
                    prop_assert!(reader.read(&bad).is_err());
                }
                let e = Envelope {
                    from: senders[from].as_str().into(),
                    clock: 7,
                    term: None,
                    message: Message::ChatMessage { entry: Box::new(entries[entry].clone()) },
                };
                prop_assert_eq!(reader.read(&framed(&e)), Ok(e));
            }
        }

        #[test]
        fn a_delivery_with_any_byte_changed_is_read_or_refused(
            entry in chat_entry(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let e = Envelope {
                from: "chat-1".into(),
                clock: 3,
                term: None,
                message: Message::ChatMessage { entry: Box::new(entry) },
            };
            let mut frame = framed(&e);
            let at = HEADER + at.index(frame.len() - HEADER);
            frame[at] = byte;
            // Another writer may choose longer forms than tcluster's; what is read is written
            // back in tcluster's and reads the same.
            if let Ok(e) = read_delivery(&frame) {
                prop_assert_eq!(read_delivery(&framed(&e)), Ok(e));
            }
        }
    }
}
