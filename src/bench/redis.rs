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

/// The Redis server's process id (`INFO server`), if it runs on this machine: its CPU is then
/// read from /proc like a node's. `None` for a server elsewhere or a reply without it.
pub(super) async fn process_id(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Result<Option<u32>, BenchError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fail = |e: String| BenchError::Setup(format!("redis: {e}"));
    write
        .write_all(resp(&["INFO", "server"]).as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    // A bulk string: `$<length>`, then that many bytes and a line end.
    let mut head = String::new();
    read.read_line(&mut head)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let Some(length) = head
        .strip_prefix('$')
        .and_then(|n| n.trim().parse::<usize>().ok())
    else {
        return Err(fail(format!("INFO answered {:?}", head.trim())));
    };
    let mut body = vec![0; length + 2];
    read.read_exact(&mut body)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let pid = pid_in_info(&String::from_utf8_lossy(&body));
    let local = read
        .get_ref()
        .peer_addr()
        .is_ok_and(|a| a.ip().is_loopback());
    Ok(pid.filter(|_| local))
}

/// The `process_id` field of an `INFO` reply.
fn pid_in_info(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

    /// A server on 127.0.0.1 that answers its first request with `reply`; what the benchmark
    /// makes of it.
    async fn asked(reply: &'static str) -> Result<Option<u32>, super::BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 64];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(reply.as_bytes()).await;
        });
        let (read, mut write) = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap()
            .into_split();
        super::process_id(&mut BufReader::new(read), &mut write).await
    }

    /// A local server's `INFO` gives its process; an error or garbage is said, not guessed.
    #[tokio::test]
    async fn the_process_is_asked_of_the_server_and_garbage_is_refused() {
        let info = "# Server\r\nprocess_id:4242\r\n";
        let reply: &'static str = Box::leak(format!("${}\r\n{info}\r\n", info.len()).into());
        assert_eq!(asked(reply).await.unwrap(), Some(4242));
        let refused = asked("-ERR unknown command 'INFO'\r\n").await.unwrap_err();
        assert!(refused.to_string().contains("INFO answered"), "{refused}");
        assert!(asked("hello\r\n").await.is_err());
        // Cut short: the server closes before the whole reply.
        assert!(asked("$500\r\nprocess_id:1\r\n").await.is_err());
    }

    #[test]
    fn the_process_id_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\ntcp_port:6391\r\n";
        assert_eq!(super::pid_in_info(info), Some(4242));
        assert_eq!(super::pid_in_info("# Server\r\nprocess_id:?\r\n"), None);
        assert_eq!(super::pid_in_info(""), None);
    }
}
