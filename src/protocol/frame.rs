//! Frames: bytes → lines, with a size limit enforced while reading.
//!
//! Both protocols are newline-delimited. [`line_codec`] splits the byte stream at `\n` and
//! refuses a line longer than [`MAX_LINE`] as soon as that many bytes have arrived without a
//! newline, so a peer can never make a node buffer more than that. [`frame_text`] turns one line
//! into text, accepting `\r\n` endings (telnet, Windows) and refusing bytes that are not UTF-8.

use bytes::Bytes;
use tokio_util::codec::AnyDelimiterCodec;

/// The longest line a node accepts, in bytes (64 KiB): far more than any message needs, small
/// enough that a thousand misbehaving peers cannot exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

/// A codec that splits a byte stream into lines of at most `max` bytes.
pub fn line_codec(max: usize) -> AnyDelimiterCodec {
    AnyDelimiterCodec::new_with_max_length(vec![b'\n'], vec![b'\n'], max)
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
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

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
