//! Bytes as a socket delivers them → lines (the codec with its 64 KiB limit) → text → a message
//! in either dialect → encoded again in both. Any panic is a bug.
//!
//!     cargo fuzz run frames

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tcluster::protocol::frame::{MAX_LINE, frame_text, line_codec};
use tcluster::protocol::{Dialect, classic, decode, encode};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut codec = line_codec(MAX_LINE);
    let mut buffer = BytesMut::from(data);
    let mut first = None;
    loop {
        match codec.decode(&mut buffer) {
            Ok(Some(line)) => {
                let Ok(text) = frame_text(&line) else { continue };
                let dialect = *first.get_or_insert(if classic::is_classic(text) {
                    Dialect::Classic
                } else {
                    Dialect::Native
                });
                if let Ok(envelope) = decode(dialect, text, "fuzz") {
                    let _ = encode(Dialect::Native, &envelope);
                    let _ = encode(Dialect::Classic, &envelope);
                }
            }
            Ok(None) => break,
            // Too long: the connection would close.
            Err(_) => break,
        }
    }
});
