//! The journal's file format: one event per line, `<seq> <crc> <event as JSON>`, where `crc` is
//! the CRC-32 of the seq (8 bytes, little-endian) and the JSON, in 8 hex digits. A reader can
//! `less` it; a line cut short by a crash (or one whose checksum does not match, at the very
//! end) is what the crash interrupted, never a line that had been acknowledged. A line never
//! holds a zero byte (JSON escapes it), and the file's unwritten space reads as zeros: a bad
//! line with zeros in it is where a crash stopped the last write from landing whole (its blocks
//! may land in any order), so it and everything after it are that write's, and dropped.
//!
//! ```text
//! 41 9c1f03aa {"at_ms":1203,"clock":88,"event":"job_submitted","job":"JOB-1",...}
//! 42 07d2be41 {"at_ms":1207,"clock":91,"event":"job_assigned","job":"JOB-1",...}
//! ```

use crate::cluster::event::ClusterEvent;

/// Appends `event`'s line, numbered `seq`, to `out`.
pub(super) fn encode(seq: u64, event: &ClusterEvent, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.push(b' ');
    let crc_at = out.len();
    out.extend_from_slice(b"00000000 ");
    let json_at = out.len();
    crate::protocol::hot_write::event(out, event)?;
    let crc = checksum(seq, &out[json_at..]);
    out[crc_at..crc_at + 8].copy_from_slice(&hex8(crc));
    out.push(b'\n');
    Ok(())
}

/// `n` in 8 lowercase hex digits.
fn hex8(n: u32) -> [u8; 8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    std::array::from_fn(|i| DIGITS[(n >> (28 - 4 * i)) as usize & 0xf])
}

fn checksum(seq: u64, json: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(json);
    hasher.finalize()
}

/// What a journal file holds.
#[derive(Debug, Default)]
pub(super) struct Contents {
    /// Every event, with its seq, oldest first.
    pub events: Vec<(u64, ClusterEvent)>,
    /// Where the last whole, good line ends: what follows it (if anything) was cut short by a
    /// crash and is dropped.
    pub good_len: usize,
}

/// A line that cannot be read, with good lines after it: not a crash's cut, but damage.
#[derive(Debug, PartialEq)]
pub(super) struct Damage {
    /// Its line number, from 1.
    pub line: usize,
    /// The seq it should have held.
    pub seq: u64,
    pub message: String,
}

/// Reads a journal file's bytes. The tail after the last good line is dropped if nothing after
/// it reads, or if the first bad line holds zeros (a crash cut it short); a bad line with good
/// ones after it is [`Damage`].
pub(super) fn read(bytes: &[u8]) -> Result<Contents, Damage> {
    let mut contents = Contents::default();
    let mut at = 0;
    let mut number = 0;
    while at < bytes.len() {
        number += 1;
        let expected = contents.events.last().map(|(seq, _)| seq + 1);
        let Some(end) = memchr::memchr(b'\n', &bytes[at..]).map(|n| at + n) else {
            break; // cut short: no newline yet
        };
        match line(&bytes[at..end], expected) {
            Ok(event) => {
                contents.events.push(event);
                contents.good_len = end + 1;
                at = end + 1;
            }
            Err(message) => {
                // Unwritten space (zeros) is the crash's cut, whatever follows it; otherwise
                // damage if anything readable follows.
                if bytes[at..end].contains(&0) {
                    break;
                }
                let rest = &bytes[end + 1..];
                let later_good = rest
                    .split(|b| *b == b'\n')
                    .any(|l| !l.is_empty() && line(l, None).is_ok());
                if later_good {
                    return Err(Damage {
                        line: number,
                        seq: expected.unwrap_or(0),
                        message,
                    });
                }
                break;
            }
        }
    }
    Ok(contents)
}

/// One line (without its newline): its seq and event, or what is wrong with it.
fn line(bytes: &[u8], expected: Option<u64>) -> Result<(u64, ClusterEvent), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let mut parts = text.splitn(3, ' ');
    let (Some(seq), Some(crc), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not `<seq> <crc> <event>`".into());
    };
    let seq: u64 = seq
        .parse()
        .map_err(|_| format!("`{seq}` is not a sequence number"))?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| format!("`{crc}` is not a checksum"))?;
    if checksum(seq, json.as_bytes()) != crc {
        return Err(format!("entry {seq}: the checksum does not match"));
    }
    if let Some(expected) = expected
        && seq != expected
    {
        return Err(format!("entry {seq} where {expected} was due"));
    }
    let event = serde_json::from_str(json).map_err(|e| format!("entry {seq}: {e}"))?;
    Ok((seq, event))
}

/// Where the line holding `seq` (or the first after it) starts in `bytes`, a file whose lines
/// are good; `bytes.len()` if every line is before it.
pub(super) fn offset_of(bytes: &[u8], seq: u64) -> usize {
    let mut at = 0;
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
        let head = &bytes[at..end];
        let digits = head.iter().take_while(|b| b.is_ascii_digit()).count();
        let this: u64 = std::str::from_utf8(&head[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if this >= seq {
            return at;
        }
        at = end + 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::super::tests::submitted;
    use super::*;

    fn file(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in 0..n {
            encode(seq, &submitted(seq), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_checksum_is_eight_hex_digits() {
        for n in [0, 1, 0xa, 0x9c1f03aa, 0x07d2be41, u32::MAX] {
            assert_eq!(hex8(n), format!("{n:08x}").as_bytes());
        }
    }

    #[test]
    fn lines_read_back_as_written() {
        let bytes = file(3);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with("0 "), "{text}");
        let contents = read(&bytes).unwrap();
        assert_eq!(contents.good_len, bytes.len());
        let seqs: Vec<u64> = contents.events.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [0, 1, 2]);
        assert_eq!(contents.events[2].1, submitted(2));
        assert_eq!(offset_of(&bytes, 1), text.find("\n1 ").unwrap() + 1);
        assert_eq!(offset_of(&bytes, 9), bytes.len());
    }

    /// Every way a crash can cut the last write short loses that write only.
    #[test]
    fn a_cut_tail_is_dropped_and_the_lines_before_it_kept() {
        let whole = file(3);
        let two = offset_of(&whole, 2);
        for cut in two..whole.len() {
            let contents = read(&whole[..cut]).unwrap();
            assert_eq!(contents.events.len(), 2, "cut at {cut}");
            assert_eq!(contents.good_len, two);
        }
        // Zeros where the data had not landed yet, with or without a newline.
        let mut zeros = whole[..two].to_vec();
        zeros.extend_from_slice(&[0; 300]);
        assert_eq!(read(&zeros).unwrap().good_len, two);
        zeros.push(b'\n');
        assert_eq!(read(&zeros).unwrap().events.len(), 2);
    }

    /// A last write whose blocks landed out of order: zeros where its first block should be,
    /// its later lines whole. It was never acknowledged: dropped from the zeros on.
    #[test]
    fn zeros_then_good_lines_are_a_cut_not_damage() {
        let whole = file(4);
        let one = offset_of(&whole, 1);
        let mut torn = whole.clone();
        torn[one..offset_of(&whole, 3) - 5].fill(0);
        let contents = read(&torn).unwrap();
        assert_eq!(contents.events.len(), 1);
        assert_eq!(contents.good_len, one);
    }

    /// A changed byte in a line with good lines after it is damage, said with its line number.
    #[test]
    fn damage_before_good_lines_is_an_error_naming_the_line() {
        let mut bytes = file(3);
        let at = offset_of(&bytes, 1) + 14;
        bytes[at] ^= 1;
        let damage = read(&bytes).unwrap_err();
        assert_eq!((damage.line, damage.seq), (2, 1));
        assert!(damage.message.contains("checksum"), "{}", damage.message);
        // The same change in the last line is a cut write.
        let mut bytes = file(3);
        let at = offset_of(&bytes, 2) + 14;
        bytes[at] ^= 1;
        assert_eq!(read(&bytes).unwrap().events.len(), 2);
    }

    #[test]
    fn a_line_out_of_order_is_damage() {
        let mut bytes = Vec::new();
        for seq in [0, 2, 3] {
            encode(seq, &submitted(seq), &mut bytes).unwrap();
        }
        let damage = read(&bytes).unwrap_err();
        assert!(damage.message.contains("where 1 was due"), "{damage:?}");
    }
}
