//! A client that asks a chat server (`tcluster node`) for its deliveries as MessagePack, as a
//! student's program does from docs/PROTOCOL.md alone: plain sockets, a generic MessagePack
//! reader. Replies stay JSON lines; another subscriber still gets JSON; bad requests get clear
//! errors.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A connection reading JSON lines and, once asked for, MessagePack frames.
struct Conn {
    read: BufReader<TcpStream>,
    write: TcpStream,
}

/// What came: a line (as JSON) or a frame's body (its ten values).
#[derive(Debug)]
enum Item {
    Line(serde_json::Value),
    Frame(Ten),
}

/// A delivery's ten values, as a generic MessagePack library reads them.
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

impl Conn {
    fn connect(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            write: stream.try_clone().unwrap(),
            read: BufReader::new(stream),
        }
    }

    fn send(&mut self, json: &str) {
        self.write.write_all(json.as_bytes()).unwrap();
        self.write.write_all(b"\n").unwrap();
    }

    /// The next item: a frame starts with the byte 0xC1, a line with anything else.
    fn next(&mut self) -> Item {
        let first = self.read.fill_buf().unwrap()[0];
        if first == 0xC1 {
            let mut header = [0u8; 5];
            self.read.read_exact(&mut header).unwrap();
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
            let mut body = vec![0u8; length as usize];
            self.read.read_exact(&mut body).unwrap();
            Item::Frame(rmp_serde::from_slice(&body).expect("ten MessagePack values"))
        } else {
            let mut line = String::new();
            self.read.read_line(&mut line).unwrap();
            Item::Line(serde_json::from_str(&line).unwrap())
        }
    }

    fn line(&mut self) -> serde_json::Value {
        match self.next() {
            Item::Line(v) => v,
            other => panic!("expected a line, got {other:?}"),
        }
    }

    fn ask(&mut self, json: &str) -> serde_json::Value {
        self.send(json);
        self.line()
    }
}

fn chat_server(dir: &std::path::Path, topology: &str) -> (Proc, String) {
    let topology = common::topology(dir, topology);
    listening_node(dir, &topology, "chat", &[])
}

#[test]
fn a_subscriber_that_asks_gets_its_deliveries_as_messagepack_frames_and_others_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = chat_server(dir.path(), "node chat { type chat }\n");

    let mut packed = Conn::connect(&addr);
    assert_eq!(
        packed.ask(r#"{"type":"chat_login","user":"pat"}"#)["type"],
        "chat_welcome"
    );
    let done = packed.ask(r#"{"type":"chat_encoding","encoding":"msgpack"}"#);
    assert_eq!(done["type"], "chat_done", "{done}");
    assert_eq!(
        packed.ask(r#"{"type":"chat_subscribe","channel":"*"}"#)["type"],
        "chat_done"
    );
    let mut plain = Conn::connect(&addr);
    assert_eq!(
        plain.ask(r#"{"type":"chat_subscribe","channel":"*"}"#)["type"],
        "chat_done"
    );

    let mut ada = Conn::connect(&addr);
    ada.ask(r#"{"type":"chat_login","user":"ada"}"#);
    ada.ask(r#"{"type":"chat_create","channel":"general"}"#);
    let posted = ada.ask(r#"{"type":"chat_publish","channel":"general","text":"hé\nllo"}"#);
    assert_eq!(posted["type"], "chat_done", "{posted}");

    // The channel made, then the post: each a frame of ten values in the JSON line's order.
    let Item::Frame(made) = packed.next() else {
        panic!("not a frame")
    };
    assert_eq!(made.5, "channel");
    assert_eq!(
        (made.6.as_str(), made.7.as_str(), &made.8),
        ("general", "ada", &None)
    );
    let Item::Frame(post) = packed.next() else {
        panic!("not a frame")
    };
    let entry = &posted["entry"];
    assert_eq!(post.0, "chat");
    assert_eq!(post.2, entry["clock"].as_u64().unwrap());
    assert_eq!(post.3, "chat");
    assert_eq!(post.4, entry["seq"].as_u64().unwrap());
    assert_eq!(
        (post.5.as_str(), post.6.as_str(), post.7.as_str()),
        ("post", "general", "ada")
    );
    assert_eq!(post.8.as_deref(), Some("hé\nllo"));
    assert!(post.1 > post.2, "the envelope's clock follows the entry's");
    // Replies on that connection are lines still.
    assert_eq!(
        packed.ask(r#"{"type":"chat_channels"}"#)["channels"][0],
        "general"
    );
    // The other subscriber, which did not ask, reads the same delivery as a JSON line.
    plain.line();
    let line = plain.line();
    assert_eq!(line["type"], "chat_message");
    assert_eq!(line["entry"]["text"], "hé\nllo");

    // Back to JSON on request.
    packed.ask(r#"{"type":"chat_encoding","encoding":"json"}"#);
    ada.ask(r#"{"type":"chat_publish","channel":"general","text":"again"}"#);
    assert_eq!(packed.line()["entry"]["text"], "again");

    // An encoding it does not know, or none, is an error that says which there are.
    for bad in [
        r#"{"type":"chat_encoding","encoding":"cbor"}"#,
        r#"{"type":"chat_encoding"}"#,
    ] {
        let error = packed.ask(bad);
        assert_eq!(error["type"], "error", "{error}");
        let said = error["message"].as_str().unwrap();
        assert!(said.contains("chat_encoding"), "{said}");
    }
}

/// tcluster's own client reads a frame as the JSON line's message: `tcluster bench chat` reads
/// deliveries so, and the result must be the same entry a JSON subscriber sees.
#[test]
fn tclusters_client_reads_frames_as_the_same_messages() {
    use tcluster::client::Client;
    use tcluster::protocol::message::{Encoding, Message};
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = chat_server(dir.path(), "node chat { type chat }\n");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let addr = addr.as_str();
        let subscribe = |encoding| async move {
            let mut c = Client::connect(addr, "sub", None).await.unwrap();
            let asked = c.request(Message::ChatEncoding { encoding }).await;
            assert!(matches!(asked, Ok(Message::ChatDone { .. })), "{asked:?}");
            let subscribed = c
                .request(Message::ChatSubscribe {
                    channel: "*".into(),
                })
                .await;
            assert!(matches!(subscribed, Ok(Message::ChatDone { .. })));
            c
        };
        let mut packed = subscribe(Encoding::Msgpack).await;
        let mut plain = subscribe(Encoding::Json).await;
        let mut ada = Client::connect(addr, "ada", None).await.unwrap();
        for message in [
            Message::ChatLogin {
                user: "ada".into(),
                password: None,
                token: None,
            },
            Message::ChatCreate {
                channel: "general".into(),
            },
            Message::ChatPublish {
                channel: "general".into(),
                text: "hello \"world\"".into(),
            },
        ] {
            ada.request(message).await.unwrap();
        }
        for _ in 0..2 {
            let (a, b) = (
                packed.receive().await.unwrap(),
                plain.receive().await.unwrap(),
            );
            assert!(matches!(a.message, Message::ChatMessage { .. }), "{a:?}");
            assert_eq!(a, b);
        }
    });
}
