//! The wire protocol, in three layers, as `docs/PROTOCOL.md` documents for students:
//!
//! ```text
//! bytes ──frame──▶ lines of text ──message──▶ Envelope { from, clock, term, Message }
//!                        └──classic──▶ the same Messages, from `COMMAND:data` lines
//! ```
//!
//! - [`frame`]: newline-delimited lines with a size limit enforced while reading.
//! - [`message`]: the typed messages (serde, tagged by `type`), one JSON object per line.
//! - [`classic`]: the classic lab's line protocol, translated to and from the same messages.
//! - [`auth`]: HMAC challenge–response for clusters with a secret; [`handshake`]: a peer's
//!   side of it, shared by workers and clients.
//! - [`packed`]: chat deliveries as MessagePack frames, for a connection that asks for them.
//! - [`decode`]: one line of either protocol → a message, or a reason it is not one.

pub mod auth;
pub mod classic;
pub mod frame;
pub mod handshake;
pub(crate) mod hot;
mod hot_read;
pub mod hot_write;
pub mod message;
pub mod packed;

use message::Envelope;

/// Which protocol a connection speaks, decided by its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// JSON lines.
    Native,
    /// `COMMAND:data` lines.
    Classic,
}

/// Why a line is not a message, in words the peer is sent back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON.
    #[error("invalid JSON at column {column}: {detail}")]
    Json {
        /// Where it went wrong.
        column: usize,
        /// serde's account.
        detail: String,
    },
    /// JSON, but no `type`.
    #[error("a message is a JSON object with a \"type\" field, such as {{\"type\":\"ping\"}}")]
    NoType,
    /// A `type`, but not a message of that type (unknown, or a field missing or wrong).
    #[error("bad `{kind}` message: {detail}")]
    Bad {
        /// The `type` asked for.
        kind: String,
        /// serde's account.
        detail: String,
    },
    /// A MessagePack frame that is not a delivery.
    #[error("bad MessagePack delivery, value {value}: {detail}")]
    Packed {
        /// Which of the body's values (from 0).
        value: usize,
        /// What it should be.
        detail: String,
    },
    /// A classic line that is not one of the classic commands.
    #[error(transparent)]
    Classic(#[from] classic::ClassicError),
}

/// Decodes one line of text in `dialect`. For classic lines, `name` is the name the peer gave
/// earlier on this connection (classic lines do not repeat it).
pub fn decode(dialect: Dialect, line: &str, name: &str) -> Result<Envelope, DecodeError> {
    match dialect {
        Dialect::Native => match hot::decode(line) {
            Some(envelope) => Ok(envelope),
            None => {
                serde_json::from_str::<Envelope>(line).map_err(|e| describe_json_error(line, &e))
            }
        },
        Dialect::Classic => {
            let parsed = classic::parse(line)?;
            Ok(Envelope {
                from: parsed.name.map_or_else(|| name.into(), Into::into),
                clock: 0,
                term: None,
                message: parsed.message,
            })
        }
    }
}

/// Encodes a message for a peer speaking `dialect`; `None` if a classic peer has no such line.
pub fn encode(dialect: Dialect, envelope: &Envelope) -> Option<String> {
    match dialect {
        Dialect::Native => Some(envelope.to_json()),
        Dialect::Classic => classic::render(&envelope.message),
    }
}

/// A JSON error in words a student can act on.
fn describe_json_error(line: &str, e: &serde_json::Error) -> DecodeError {
    if e.is_syntax() || e.is_eof() {
        return DecodeError::Json {
            column: e.column(),
            detail: e.to_string(),
        };
    }
    // Well-formed JSON that is not a message: say which type was asked for, if any.
    let kind = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string));
    match kind {
        None => DecodeError::NoType,
        Some(kind) => DecodeError::Bad {
            kind,
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_explained() {
        assert!(
            decode(Dialect::Native, "{oops", "")
                .unwrap_err()
                .to_string()
                .starts_with("invalid JSON")
        );
        assert!(
            decode(Dialect::Native, "[1,2]", "")
                .unwrap_err()
                .to_string()
                .contains("\"type\" field")
        );
        let unknown = decode(Dialect::Native, r#"{"type":"dance"}"#, "")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("bad `dance` message"), "{unknown}");
        let missing = decode(Dialect::Native, r#"{"type":"submit"}"#, "")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("data"), "{missing}");
        // A job id that is not one says what one looks like, from the decoder's shortcut's
        // messages (`started`) as from any other.
        for line in [
            r#"{"type":"started","job":1.5}"#,
            r#"{"type":"started","job":-3}"#,
            r#"{"type":"cancel","job":true}"#,
        ] {
            let bad = decode(Dialect::Native, line, "").unwrap_err().to_string();
            assert!(bad.contains("JOB-12"), "{line}: {bad}");
        }
        let text = decode(Dialect::Native, r#"{"type":"started","job":"JOB-x"}"#, "")
            .unwrap_err()
            .to_string();
        assert!(text.contains("`JOB-x` is not a job id"), "{text}");
    }
}
