//! Frames: bytes → lines, with a size limit enforced while reading.
//!
//! Both protocols are newline-delimited. [`line_codec`] splits the byte stream at `\n` and
//! refuses a line longer than [`MAX_LINE`] as soon as that many bytes have arrived without a
//! newline, so a peer can never make a node buffer more than that. [`frame_text`] turns one line
//! into text, accepting `\r\n` endings (telnet, Windows) and refusing bytes that are not UTF-8.

use bytes::{Buf, Bytes, BytesMut};

use super::packed;
use tokio_util::codec::{AnyDelimiterCodecError, Decoder};

/// The longest line a node accepts, in bytes (64 KiB): far more than any message needs, small
/// enough that a thousand misbehaving peers cannot exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

/// A codec that splits a byte stream into lines of at most `max` bytes.
pub fn line_codec(max: usize) -> LineCodec {
    LineCodec {
        max,
        searched: 0,
        discarding: false,
        packed: false,
    }
}

/// [`line_codec`] that also cuts out MessagePack frames (see [`super::packed`]) where one
/// starts between lines: a client that asked for deliveries in them reads both.
pub fn frame_codec(max: usize) -> LineCodec {
    LineCodec {
        packed: true,
        ..line_codec(max)
    }
}

/// Splits at `\n` (found with `memchr`, a word at a time): a line of at most `max` bytes, or
/// [`AnyDelimiterCodecError::MaxChunkLengthExceeded`] once more than that has arrived without
/// one — after which the rest of that line is skipped. At the end of the stream, what is left
/// is a last line.
#[derive(Debug, Clone)]
pub struct LineCodec {
    max: usize,
    /// How far the buffer has been searched already.
    searched: usize,
    /// Skipping the rest of a line that was too long.
    discarding: bool,
    /// Whether frames are read too: each is yielded whole, its marker first.
    packed: bool,
}

impl Decoder for LineCodec {
    type Item = Bytes;
    type Error = AnyDelimiterCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Self::Error> {
        match self.frame(buf)? {
            Some(Frame::Whole(length)) => return Ok(Some(buf.split_to(length).freeze())),
            Some(Frame::Partial) => return Ok(None),
            None => {}
        }
        loop {
            let until = buf.len().min(self.max.saturating_add(1));
            let found = memchr::memchr(b'\n', &buf[self.searched.min(until)..until])
                .map(|at| at + self.searched.min(until));
            match (self.discarding, found) {
                (true, Some(at)) => {
                    buf.advance(at + 1);
                    self.discarding = false;
                    self.searched = 0;
                }
                (true, None) => {
                    buf.advance(until);
                    self.searched = 0;
                    if buf.is_empty() {
                        return Ok(None);
                    }
                }
                (false, Some(at)) => {
                    self.searched = 0;
                    let mut line = buf.split_to(at + 1);
                    line.truncate(at);
                    return Ok(Some(line.freeze()));
                }
                (false, None) if buf.len() > self.max => {
                    self.discarding = true;
                    return Err(AnyDelimiterCodecError::MaxChunkLengthExceeded);
                }
                (false, None) => {
                    self.searched = until;
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Self::Error> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if buf.is_empty() || self.discarding {
            buf.clear();
            return Ok(None);
        }
        self.searched = 0;
        Ok(Some(buf.split().freeze()))
    }
}

/// A MessagePack frame at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// All of it has arrived: this many bytes, marker and length included.
    Whole(usize),
    /// Not all of it yet (room for the rest has been reserved).
    Partial,
}

impl LineCodec {
    /// Whether `buf` starts with a MessagePack frame, and if so whether all of it has arrived;
    /// `None` where a line starts (or this codec reads lines only). A frame longer than the
    /// codec's limit is an error, like a line.
    pub fn frame(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, AnyDelimiterCodecError> {
        if !self.packed || self.discarding || !packed::is_frame(buf) {
            return Ok(None);
        }
        let Some(header) = buf.first_chunk::<{ packed::HEADER }>() else {
            return Ok(Some(Frame::Partial));
        };
        let length = packed::body_length(header);
        if length > self.max {
            return Err(AnyDelimiterCodecError::MaxChunkLengthExceeded);
        }
        let whole = packed::HEADER + length;
        if buf.len() < whole {
            buf.reserve(whole - buf.len());
            return Ok(Some(Frame::Partial));
        }
        Ok(Some(Frame::Whole(whole)))
    }
}

/// Appends one item a [`frame_codec`] cut out as it was on the wire: a line with its newline,
/// a MessagePack frame as it is.
pub fn put(out: &mut Vec<u8>, item: &[u8]) {
    out.extend_from_slice(item);
    if !packed::is_frame(item) {
        out.push(b'\n');
    }
}

/// Why a line is not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The line is longer than the limit.
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    /// The line is not UTF-8 text.
    #[error("line is not UTF-8 text (byte {at} is 0x{byte:02x})")]
    NotText {
        /// Offset of the first bad byte.
        at: usize,
        byte: u8,
    },
}

/// One line as text, without its `\r\n` or `\n`.
pub fn frame_text(line: &Bytes) -> Result<&str, FrameError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line).map_err(|e| FrameError::NotText {
        at: e.valid_up_to(),
        byte: line[e.valid_up_to()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_long_ones_refused_before_the_newline_arrives() {
        let mut codec = line_codec(8);
        let mut buf = BytesMut::from(&b"ping\r\npong\n0123456789"[..]);
        assert_eq!(
            frame_text(&codec.decode(&mut buf).unwrap().unwrap()),
            Ok("ping")
        );
        assert_eq!(
            frame_text(&codec.decode(&mut buf).unwrap().unwrap()),
            Ok("pong")
        );
        // Ten bytes and no newline yet: refused now, not when the newline comes.
        assert!(codec.decode(&mut buf).is_err());
        // The rest of that line is skipped; the next one is read.
        buf.extend_from_slice(b"abc\nok\nlast");
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"ok");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert_eq!(&codec.decode_eof(&mut buf).unwrap().unwrap()[..], b"last");
        assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn a_line_split_across_reads_is_found_once_whole() {
        let mut codec = line_codec(64);
        let mut buf = BytesMut::from(&b"hel"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"lo\nx");
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"hello");
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn frames_and_lines_read_whole_however_the_bytes_arrive() {
        let frame = |body: &[u8]| {
            let mut f = vec![packed::MARKER];
            f.extend_from_slice(&(body.len() as u32).to_be_bytes());
            f.extend_from_slice(body);
            f
        };
        // A frame whose body holds newlines, between two lines.
        let one = frame(b"\x92\n\n");
        let mut stream = b"{\"type\":\"chat_done\"}\n".to_vec();
        stream.extend_from_slice(&one);
        stream.extend_from_slice(b"last\n");
        for split in 0..=stream.len() {
            let mut codec = frame_codec(64);
            let mut buf = BytesMut::from(&stream[..split]);
            let mut items = Vec::new();
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                items.push(item);
            }
            buf.extend_from_slice(&stream[split..]);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                items.push(item);
            }
            assert_eq!(items.len(), 3, "split at {split}");
            assert_eq!(&items[1][..], &one[..]);
            // Written back as they came.
            let mut out = Vec::new();
            for item in &items {
                put(&mut out, item);
            }
            assert_eq!(out, stream);
        }
        // A frame longer than the limit is refused on its header.
        let mut codec = frame_codec(8);
        let mut buf = BytesMut::from(&frame(&[0; 9])[..packed::HEADER]);
        assert!(codec.decode(&mut buf).is_err());
        // Where frames are not asked for, the marker is a byte of a line like any other.
        let mut codec = line_codec(64);
        let mut buf = BytesMut::from(&b"\xc1\x00\x00\x00\x01x\n"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap().len(), 6);
    }

    #[test]
    fn binary_is_not_text() {
        let line = Bytes::from_static(b"ok\xff");
        assert_eq!(
            frame_text(&line),
            Err(FrameError::NotText { at: 2, byte: 0xff })
        );
    }
}
