//! `topologies/broker.top` as a lecturer runs it: four bots post through one broker in front
//! of three chat servers; one server is killed behind the broker and comes back. The bots see
//! no error, the round robin reaches every server, and afterwards every server holds the same
//! entries and each post is shown once.

mod common;

use std::collections::BTreeSet;

use common::*;
use tcluster::journal::{ChatHistory, chat_history_path};
use tcluster::protocol::message::ChatBody;

#[test]
fn a_chat_server_killed_behind_the_broker_costs_the_bots_nothing_and_no_post_is_shown_twice() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/broker.top"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_, _report) = headless(dir.path(), &text, "outage");
    let logs = dir.path().join("state/logs");
    // Every bot: every post answered (none refused), at least a few made.
    let mut posted = 0u64;
    for bot in 1..=4 {
        let log = std::fs::read_to_string(logs.join(format!("bot-{bot}.log"))).unwrap();
        let last = log
            .lines()
            .rfind(|l| l.contains("stopping after"))
            .unwrap_or_else(|| panic!("bot-{bot} said nothing at the end:\n{log}"));
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
        assert!(
            last.contains("refused=0"),
            "bot-{bot}: {last}\n{warnings:#?}"
        );
        let n: u64 = last
            .split("posted=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(n >= 5, "bot-{bot} posted {n}");
        posted += n;
    }
    // The broker: requests to each server in turn, none failed.
    let broker = std::fs::read_to_string(logs.join("front.log")).unwrap();
    let counts = broker
        .lines()
        .rfind(|l| l.contains("requests:"))
        .unwrap_or_else(|| panic!("no counts:\n{broker}"));
    assert!(counts.contains("failed 0"), "{counts}");
    for server in ["chat-1", "chat-2", "chat-3"] {
        assert!(!counts.contains(&format!("{server} 0,")), "{counts}");
    }
    // Afterwards: the three servers hold the same entries, and the posts shown (one per
    // request) are as many as the bots were answered for.
    let state = dir.path().join("state");
    let mut sets = Vec::new();
    for server in ["chat-1", "chat-2", "chat-3"] {
        let (_, entries) = ChatHistory::open(&chat_history_path(&state, server)).unwrap();
        sets.push(entries);
    }
    let keys = |entries: &Vec<tcluster::protocol::message::ChatEntry>| -> BTreeSet<_> {
        entries.iter().map(|e| e.key()).collect()
    };
    // chat-1 and chat-3 hold the same entries, but for those made as the run stopped (not
    // passed on yet); chat-2, down for five seconds, caught up on the older ones.
    let (one, three) = (keys(&sets[0]), keys(&sets[2]));
    let apart: Vec<_> = one.symmetric_difference(&three).collect();
    assert!(apart.len() <= 4, "chat-1 and chat-3 differ in {apart:?}");
    let two = keys(&sets[1]);
    let oldest_missing = one.difference(&two).next();
    assert!(
        oldest_missing.is_none_or(|k| k.0 > one.iter().nth(one.len() / 2).unwrap().0),
        "chat-2 lacks old entries: {oldest_missing:?}"
    );
    // Each post (a bot's texts are numbered) has one request id: none was made twice under
    // two requests; a request retried on another server may have two entries, shown once.
    let mut by_text: std::collections::BTreeMap<(String, String), BTreeSet<String>> =
        Default::default();
    // Across the three servers (a post answered as the run stopped may not have reached them
    // all).
    for e in sets.iter().flatten() {
        if let ChatBody::Post { from, text, .. } = &e.body {
            let request = e
                .request
                .clone()
                .expect("the broker sends posts with a request id");
            by_text
                .entry((from.to_string(), text.to_string()))
                .or_default()
                .insert(request.to_string());
        }
    }
    for (post, requests) in &by_text {
        assert_eq!(requests.len(), 1, "{post:?} was made under {requests:?}");
    }
    // As many posts as the bots were answered for, and perhaps one each still in flight when
    // the run stopped.
    let shown = by_text.len() as u64;
    assert!(
        (posted..=posted + 4).contains(&shown),
        "{shown} posts shown, {posted} answered"
    );
}

/// A broker answers bad input as a chat server would — a line that is not a message, a
/// coordinator's message, a post before logging in — with an error naming what is wrong, and
/// carries on: the connection then logs in and posts.
#[test]
fn a_broker_answers_bad_lines_with_errors_and_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node chat { type chat }\nnode front { type broker }\n",
    );
    let (_chat, chat_addr) = listening_node(dir.path(), &topology, "chat", &[]);
    let chat_arg = format!("chat={chat_addr}");
    let (_front, addr) = listening_node(dir.path(), &topology, "front", &["--chat", &chat_arg]);
    // A first line that is not JSON is read as the classic protocol, which has no chat.
    let mut garbage = Line::connect(&addr);
    garbage.send("this is not json");
    let error = garbage.recv_type("error");
    assert!(
        error["message"].as_str().unwrap().contains("unknown line"),
        "{error}"
    );
    let mut line = Line::connect(&addr);
    line.send(r#"{"type":"register","from":"w","clock":1,"slots":1}"#);
    let error = line.recv_type("error");
    assert!(
        error["message"].as_str().unwrap().contains("register"),
        "{error}"
    );
    line.send(r#"{"type":"chat_publish","from":"ada","clock":2,"channel":"general","text":"hi"}"#);
    let error = line.recv_type("error");
    assert!(
        error["message"].as_str().unwrap().contains("log in"),
        "{error}"
    );
    line.send(r#"{"type":"chat_login","from":"ada","clock":3,"user":"ada"}"#);
    assert_eq!(line.recv_type("chat_welcome")["user"], "ada");
    line.send(r#"{"type":"chat_create","from":"ada","clock":4,"channel":"general"}"#);
    line.recv_type("chat_done");
    line.send(r#"{"type":"chat_publish","from":"ada","clock":5,"channel":"general","text":"hi"}"#);
    let done = line.recv_type("chat_done");
    assert_eq!(done["entry"]["text"], "hi", "{done}");
    assert!(
        done["entry"]["request"].is_string(),
        "sent as chat_once: {done}"
    );
    // Deliveries come from the broker as its own lines: MessagePack is for a chat server's
    // own clients.
    line.send(r#"{"type":"chat_encoding","encoding":"msgpack"}"#);
    let error = line.recv_type("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("JSON lines only"),
        "{error}"
    );
    line.send(r#"{"type":"chat_encoding","encoding":"json"}"#);
    line.recv_type("chat_done");
    // `echo … | nc`: a request forwarded to a chat server, the client's side closed at once;
    // the answer still comes back before the broker closes the connection.
    for attempt in 0..10 {
        use std::io::Read;
        let mut once = Line::connect(&addr);
        once.send(r#"{"type":"chat_channels"}"#);
        once.writer_mut()
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
        let mut all = String::new();
        let _ = once.writer_mut().read_to_string(&mut all);
        assert!(
            all.contains("chat_channel_list"),
            "attempt {attempt}: {all:?}"
        );
    }
}
