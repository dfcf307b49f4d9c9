//! A chat server hears peer messages only from a proven chat server, and clients only after the
//! handshake when the cluster has a secret; private messages reach their recipient (and the
//! launcher's console), never a stranger subscribed to everything.

use tcluster::protocol::message::{ChatBody, ChatEntry, Envelope, Message, PeerRole};
use tcluster::protocol::{Dialect, auth, decode};
use tcluster::role::chat::{ChatConfig, ChatServer, Input, Output};

const PEER_KEY: &str = "lab-7 peers";

fn server(secret: Option<&str>) -> ChatServer {
    let mut config = ChatConfig::new("chat-1");
    config.peers = vec!["chat-2".into()];
    config.secret = secret.map(str::to_string);
    config.peer_key = PEER_KEY.into();
    ChatServer::new(config)
}

fn line(text: &str) -> Envelope {
    decode(Dialect::Native, text, "").unwrap()
}

/// The messages sent (or delivered) on `conn`.
fn to(outputs: &[Output], conn: u64) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(c, env) if *c == conn => Some(env.message.clone()),
            Output::Push(cs, env) if cs.contains(&conn) => Some(env.message.clone()),
            _ => None,
        })
        .collect()
}

fn error_text(messages: &[Message]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            Message::Error { message } => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("an error: {messages:?}"))
}

/// Proves `key` on `conn` as `name` in `role`; returns what the server answered the proof.
fn prove(s: &mut ChatServer, conn: u64, name: &str, role: PeerRole, key: &str) -> Vec<Message> {
    let hello = Envelope {
        from: name.into(),
        clock: 0,
        term: None,
        message: Message::Hello { role, nonce: None },
    };
    let out = s.step(0, Input::Received(conn, hello));
    let nonce = to(&out, conn)
        .into_iter()
        .find_map(|m| match m {
            Message::Challenge { nonce, .. } => Some(nonce),
            _ => None,
        })
        .expect("a challenge");
    let proof = auth::proof(key, auth::PEER, &nonce, name);
    let answer = Envelope {
        from: name.into(),
        clock: 0,
        term: None,
        message: Message::Auth { proof },
    };
    to(&s.step(0, Input::Received(conn, answer)), conn)
}

fn login(s: &mut ChatServer, conn: u64, user: &str) {
    s.step(0, Input::Connected(conn));
    let text = format!(r#"{{"type":"chat_login","user":"{user}"}}"#);
    let out = s.step(0, Input::Received(conn, line(&text)));
    assert!(
        matches!(to(&out, conn)[..], [Message::ChatWelcome { .. }]),
        "{out:?}"
    );
}

fn history_texts(s: &ChatServer) -> Vec<String> {
    s.entries()
        .filter_map(|e| match &e.body {
            ChatBody::Post { text, .. } | ChatBody::Direct { text, .. } => Some(text.to_string()),
            ChatBody::Channel { .. } => None,
        })
        .collect()
}

#[test]
fn with_a_secret_nothing_is_heard_before_the_handshake() {
    let mut s = server(Some("correct horse"));
    s.step(0, Input::Connected(1));
    let out = s.step(
        0,
        Input::Received(1, line(r#"{"type":"chat_subscribe","channel":"*"}"#)),
    );
    assert!(error_text(&to(&out, 1)).contains("requires authentication"));
    assert!(out.contains(&Output::Close(1)));

    // A client that proves the cluster secret must still log in before it asks anything.
    s.step(0, Input::Connected(2));
    let answer = prove(&mut s, 2, "alice", PeerRole::Client, "correct horse");
    assert!(
        matches!(answer[..], [Message::Welcome { .. }]),
        "{answer:?}"
    );
    let out = s.step(0, Input::Received(2, line(r#"{"type":"chat_channels"}"#)));
    assert!(error_text(&to(&out, 2)).contains("log in first"));
    let out = s.step(
        0,
        Input::Received(2, line(r#"{"type":"chat_login","user":"alice"}"#)),
    );
    assert!(matches!(to(&out, 2)[..], [Message::ChatWelcome { .. }]));
}

#[test]
fn private_messages_reach_only_their_recipient_and_the_launcher() {
    let mut s = server(None);
    login(&mut s, 1, "alice");
    login(&mut s, 2, "bob");
    login(&mut s, 3, "eve");
    s.step(
        0,
        Input::Received(3, line(r#"{"type":"chat_subscribe","channel":"*"}"#)),
    );
    // The launcher's console proves the peer secret and watches everything.
    s.step(0, Input::Connected(4));
    prove(&mut s, 4, "console", PeerRole::Supervisor, PEER_KEY);
    s.step(
        0,
        Input::Received(4, line(r#"{"type":"chat_subscribe","channel":"*"}"#)),
    );
    let out = s.step(
        0,
        Input::Received(
            1,
            line(r#"{"type":"chat_dm","to":"bob","text":"the answer is 42"}"#),
        ),
    );
    let delivered = |conn| {
        to(&out, conn)
            .iter()
            .any(|m| matches!(m, Message::ChatMessage { .. }))
    };
    assert!(delivered(2), "bob gets it");
    assert!(delivered(4), "the launcher's console sees it");
    assert!(!delivered(3), "eve, subscribed to everything, does not");
}

#[test]
fn peer_messages_need_a_proven_chat_server_and_plausible_entries() {
    let mut s = server(None);
    login(&mut s, 1, "alice");
    s.step(
        0,
        Input::Received(1, line(r#"{"type":"chat_create","channel":"general"}"#)),
    );
    s.step(
        0,
        Input::Received(
            1,
            line(r#"{"type":"chat_publish","channel":"general","text":"hello"}"#),
        ),
    );
    let before = history_texts(&s);

    // A client cannot ask for the whole history as a peer would, nor pass entries on.
    s.step(0, Input::Connected(5));
    let out = s.step(
        0,
        Input::Received(5, line(r#"{"type":"chat_sync","have":{}}"#)),
    );
    assert!(error_text(&to(&out, 5)).contains("accepted only from another chat server"));
    assert!(
        !to(&out, 5)
            .iter()
            .any(|m| matches!(m, Message::ChatReplica { .. }))
    );
    let forged = |server: &str, seq: u64, text: &str| ChatEntry {
        request: None,
        clock: 99,
        server: server.into(),
        seq,
        body: ChatBody::Post {
            channel: "general".into(),
            from: "alice".into(),
            text: text.into(),
        },
    };
    let replica = |entry: ChatEntry| Envelope {
        from: "chat-9".into(),
        clock: 0,
        term: None,
        message: Message::ChatReplica {
            entry: Box::new(entry),
        },
    };
    let out = s.step(
        0,
        Input::Received(5, replica(forged("chat-9", 1, "forged"))),
    );
    assert!(error_text(&to(&out, 5)).contains("accepted only from another chat server"));

    // Claiming to be a chat server without the peer secret fails.
    s.step(0, Input::Connected(6));
    let answer = prove(&mut s, 6, "chat-2", PeerRole::ChatPeer, "a guess");
    assert_eq!(error_text(&answer), "authentication failed");

    // A proven peer passes entries on, but not from servers that do not exist, nor too long.
    s.step(0, Input::Connected(7));
    prove(&mut s, 7, "chat-2", PeerRole::ChatPeer, PEER_KEY);
    s.step(
        0,
        Input::Received(7, replica(forged("chat-9", 1, "forged"))),
    );
    s.step(
        0,
        Input::Received(7, replica(forged("chat-2", 1, &"x".repeat(1001)))),
    );
    assert_eq!(history_texts(&s), before, "nothing forged was kept");
    // At the limit (1,000 characters) it is kept.
    s.step(
        0,
        Input::Received(7, replica(forged("chat-2", 1, &"x".repeat(1000)))),
    );
    assert_eq!(history_texts(&s).len(), before.len() + 1);
}

#[test]
fn a_stamp_far_ahead_is_refused_and_the_clock_stays() {
    let mut s = server(None);
    s.step(0, Input::Connected(1));
    let out = s.step(
        0,
        Input::Received(1, line(r#"{"type":"ping","clock":18446744073709551615}"#)),
    );
    assert!(error_text(&to(&out, 1)).contains("too far ahead"));
    let out = s.step(0, Input::Received(1, line(r#"{"type":"ping","clock":3}"#)));
    let Some(Output::Send(_, pong)) = out.first() else {
        panic!("{out:?}");
    };
    assert_eq!(pong.message, Message::Pong);
    assert!(pong.clock > 3 && pong.clock < 100, "{pong:?}");
}
