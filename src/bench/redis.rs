//! Just enough of Redis's wire protocol (RESP) for the chat benchmark to publish and subscribe
//! on a Redis server beside tcluster's chat server.

use std::io;

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{Decoder, FramedRead};

use super::BenchError;

/// Sends a Redis command.
pub(super) async fn command(write: &mut OwnedWriteHalf, words: &[&str]) -> Result<(), BenchError> {
    use tokio::io::AsyncWriteExt;
    write
        .write_all(resp(words).as_bytes())
        .await
        .map_err(|e| BenchError::Setup(format!("redis: {e}")))
}

/// A Redis command in its wire form.
fn resp(words: &[&str]) -> String {
    let mut out = format!("*{}\r\n", words.len());
    for w in words {
        out.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    out
}

/// Redis's replies on one connection, each cut whole out of what one `read` brought, as a Redis
/// client library reads them: many replies per system call, none waited for line by line.
pub(super) type Replies = FramedRead<OwnedReadHalf, Resp>;

/// Opens a connection to Redis at `addr`.
pub(super) async fn connect(addr: &str) -> Result<(Replies, OwnedWriteHalf), BenchError> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| BenchError::Setup(format!("cannot connect to redis at {addr}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    Ok((FramedRead::new(read, Resp), write))
}

/// The next reply: its strings (an array's items, or the one value).
pub(super) async fn reply(read: &mut Replies) -> Result<Vec<String>, BenchError> {
    match read.next().await {
        Some(Ok(strings)) => Ok(strings),
        Some(Err(e)) => Err(BenchError::Setup(format!("redis: {e}"))),
        None => Err(BenchError::Setup("redis: closed".into())),
    }
}

/// The reader of Redis's replies (RESP 2): an array of values, or one value; a value is a bulk
/// string (`$`), a simple string (`+`) or an integer (`:`). An error reply (`-`) is an error
/// that says what Redis said.
#[derive(Debug, Default)]
pub(super) struct Resp;

impl Decoder for Resp {
    type Item = Vec<String>;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Vec<String>>> {
        let mut at = 0;
        let items = if buf.first() == Some(&b'*') {
            let Some(head) = line(buf, &mut at)? else {
                return Ok(None);
            };
            number(&head[1..])?
        } else {
            1
        };
        if items > MAX_ITEMS {
            return Err(bad("an array longer than a reply here can be"));
        }
        let mut out = Vec::with_capacity(items.min(8));
        for _ in 0..items {
            let Some(value) = value(buf, &mut at)? else {
                return Ok(None);
            };
            out.push(value);
        }
        buf.advance(at);
        Ok(Some(out))
    }
}

/// The most items an array may say it has, and the longest bulk string: far beyond any reply
/// the benchmark asks for, and small enough that a broken server cannot make it wait for, or
/// reserve room for, more than that.
const MAX_ITEMS: usize = 1024;
const MAX_BULK: usize = 16 << 20;

/// The line at `at` without its `\r\n`, moving `at` past it; `None` until it has all come.
fn line<'a>(buf: &'a [u8], at: &mut usize) -> io::Result<Option<&'a [u8]>> {
    let Some(end) = memchr::memchr(b'\n', &buf[*at..]) else {
        return Ok(None);
    };
    let text = &buf[*at..*at + end];
    let Some(text) = text.strip_suffix(b"\r") else {
        return Err(bad("a line that does not end in \\r\\n"));
    };
    *at += end + 1;
    Ok(Some(text))
}

/// One value at `at`, moving `at` past it; `None` until it has all come.
fn value(buf: &[u8], at: &mut usize) -> io::Result<Option<String>> {
    let Some(head) = line(buf, at)? else {
        return Ok(None);
    };
    let bytes = match head.first() {
        Some(b'$') if head == b"$-1" => &[][..],
        Some(b'$') => {
            let length = number(&head[1..])?;
            if length > MAX_BULK {
                return Err(bad("a bulk string longer than a reply here can be"));
            }
            let Some(body) = buf.get(*at..*at + length + 2) else {
                return Ok(None);
            };
            let Some(body) = body.strip_suffix(b"\r\n") else {
                return Err(bad("a bulk string longer than it said"));
            };
            *at += length + 2;
            body
        }
        Some(b'+' | b':') => &head[1..],
        Some(b'-') => {
            let said = String::from_utf8_lossy(&head[1..]).into_owned();
            return Err(io::Error::other(said));
        }
        _ => return Err(bad("a reply that is not RESP")),
    };
    String::from_utf8(bytes.to_vec())
        .map(Some)
        .map_err(|_| bad("a string that is not UTF-8"))
}

/// A length or a count.
fn number(digits: &[u8]) -> io::Result<usize> {
    let fail = || bad("a length that is not a number");
    if digits.is_empty() || digits.len() > 18 {
        return Err(fail());
    }
    digits.iter().try_fold(0usize, |n, &d| match d {
        b'0'..=b'9' => Ok(n * 10 + usize::from(d - b'0')),
        _ => Err(fail()),
    })
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("redis sent {what}"))
}

/// The Redis server's process id (`INFO server`), if it runs on this machine: its CPU is then
/// read from /proc like a node's. `None` for a server elsewhere or a reply without it.
pub(super) async fn process_id(
    read: &mut Replies,
    write: &mut OwnedWriteHalf,
) -> Result<Option<u32>, BenchError> {
    command(write, &["INFO", "server"]).await?;
    let info = match read.next().await {
        Some(Ok(strings)) if strings.len() == 1 => strings.concat(),
        Some(Ok(strings)) => {
            let said = strings.join(" ");
            return Err(BenchError::Setup(format!("redis: INFO answered {said:?}")));
        }
        Some(Err(e)) => return Err(BenchError::Setup(format!("redis: INFO answered {e}"))),
        None => return Err(BenchError::Setup("redis: closed".into())),
    };
    let local = read
        .get_ref()
        .peer_addr()
        .is_ok_and(|a| a.ip().is_loopback());
    Ok(pid_in_info(&info).filter(|_| local))
}

/// The `process_id` field of an `INFO` reply.
fn pid_in_info(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::{Decoder, FramedRead};

    use super::Resp;

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
        super::process_id(&mut FramedRead::new(read, Resp), &mut write).await
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

    /// Replies come in pieces and many to a read: each is cut out whole, and only once it has
    /// all come.
    #[test]
    fn replies_are_read_whole_from_whatever_has_arrived() {
        let wire = b"*3\r\n$7\r\nmessage\r\n$5\r\nbench\r\n$9\r\n1234.5678\r\n:50\r\n+OK\r\n";
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        // One byte at a time: nothing is taken before its reply is complete.
        for &b in wire {
            buf.extend_from_slice(&[b]);
            while let Some(reply) = Resp.decode(&mut buf).unwrap() {
                got.push(reply);
            }
        }
        assert_eq!(
            got,
            [
                vec!["message", "bench", "1234.5678"],
                vec!["50"],
                vec!["OK"]
            ]
        );
        assert!(buf.is_empty());
        // All at once: the same.
        let mut buf = BytesMut::from(&wire[..]);
        let mut again = Vec::new();
        while let Some(reply) = Resp.decode(&mut buf).unwrap() {
            again.push(reply);
        }
        assert_eq!(again, got);
    }

    /// What is not RESP, or says it is longer than it is, is an error that says so.
    #[test]
    fn a_reply_that_is_not_resp_is_refused() {
        let refused = |wire: &[u8]| Resp.decode(&mut BytesMut::from(wire)).unwrap_err();
        assert!(refused(b"hello\r\n").to_string().contains("not RESP"));
        assert!(refused(b"$3\r\nhello\r\n").to_string().contains("longer"));
        assert!(refused(b"*x\r\n").to_string().contains("not a number"));
        assert!(refused(b"+OK\n").to_string().contains("\\r\\n"));
        assert_eq!(refused(b"-ERR no\r\n").to_string(), "ERR no");
        // Lengths that would have it reserve, or wait for, more than any reply here.
        assert!(
            refused(b"*99999999999999\r\n")
                .to_string()
                .contains("array longer")
        );
        assert!(
            refused(b"$99999999999999\r\n")
                .to_string()
                .contains("bulk string longer")
        );
        assert!(
            refused(b"*999999999999999999999\r\n")
                .to_string()
                .contains("not a number")
        );
    }

    #[test]
    fn the_process_id_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\ntcp_port:6391\r\n";
        assert_eq!(super::pid_in_info(info), Some(4242));
        assert_eq!(super::pid_in_info("# Server\r\nprocess_id:?\r\n"), None);
        assert_eq!(super::pid_in_info(""), None);
    }
}
