//! Just enough of Redis's wire protocol (RESP) for the chat benchmark to publish and subscribe
//! on a Redis server beside tcluster's chat server.

use tokio::io::{AsyncBufReadExt, BufReader};

use super::BenchError;

/// A Redis command in its wire form.
pub(super) fn resp(words: &[&str]) -> String {
    let mut out = format!("*{}\r\n", words.len());
    for w in words {
        out.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    out
}

/// Reads one Redis reply; returns the bulk strings in it.
pub(super) async fn read_resp(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<Vec<String>, BenchError> {
    let fail = |e: String| BenchError::Setup(format!("redis: {e}"));
    let mut line = String::new();
    let line_of = async |read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
                         line: &mut String|
           -> Result<(), BenchError> {
        line.clear();
        match read.read_line(line).await {
            Ok(0) => Err(fail("closed".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(fail(e.to_string())),
        }
    };
    line_of(read, &mut line).await?;
    let items = match line.as_bytes().first() {
        Some(b'*') => line[1..].trim().parse::<usize>().unwrap_or(0),
        Some(b'-') => return Err(fail(line.trim().to_string())),
        _ => return Ok(vec![line.trim().to_string()]),
    };
    let mut out = Vec::with_capacity(items);
    for _ in 0..items {
        line_of(read, &mut line).await?;
        if line.starts_with('$') {
            line_of(read, &mut line).await?;
        }
        out.push(line.trim_end().to_string());
    }
    Ok(out)
}
