//! Chat servers run as a user runs them (`tcluster node`, `tcluster client … chat`): replication
//! in one order across servers, catch-up after a restart, history kept across a full restart,
//! and every kind of bad input answered without disturbing the other clients.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Servers started by hand link up only if they share the peer secret.
const TOPOLOGY: &str =
    "set PEER_SECRET \"lab-7\"\nnode chat-a { type chat }\nnode chat-b { type chat }\n";

/// A chat server on a free port, linked to `peer` if given; returns it and its address.
fn chat_server(dir: &Path, topology: &Path, name: &str, peer: Option<&str>) -> (Proc, String) {
    let state = dir.join("state");
    let mut args = vec![
        "node",
        topology.to_str().unwrap(),
        "--name",
        name,
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let link;
    if let Some(peer) = peer {
        link = peer.to_string();
        args.extend(["--coordinator", &link]);
    }
    let proc = spawn(dir, name, &args);
    let line = proc.wait_for_line(&format!("READY {name} "));
    let addr = line.rsplit(' ').next().unwrap().to_string();
    (proc, addr)
}

fn chat(topology: &Path, server: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "client",
        topology.to_str().unwrap(),
        "chat",
        "--server",
        server,
    ];
    all.extend_from_slice(args);
    tcluster().args(&all).output().unwrap()
}

fn history(topology: &Path, server: &str, channel: &str) -> Vec<String> {
    let out = chat(topology, server, &["history", channel]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn send(topology: &Path, server: &str, channel: &str, text: &str, user: &str) {
    let out = chat(topology, server, &["send", channel, text, "--as", user]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Two {
    dir: tempfile::TempDir,
    topology: PathBuf,
    a: Proc,
    a_addr: String,
    b: Proc,
    b_addr: String,
}

fn two_servers() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (a, a_addr) = chat_server(dir.path(), &topology, "chat-a", None);
    let (b, b_addr) = chat_server(
        dir.path(),
        &topology,
        "chat-b",
        Some(&format!("chat-a={a_addr}")),
    );
    Two {
        dir,
        topology,
        a,
        a_addr,
        b,
        b_addr,
    }
}

#[test]
fn two_servers_show_the_same_history_in_the_same_order() {
    let t = two_servers();
    // Posts on both servers, interleaved; each server learns the other's.
    for i in 0..6 {
        let (server, user) = if i % 2 == 0 {
            (&t.a_addr, "ada")
        } else {
            (&t.b_addr, "bob")
        };
        send(
            &t.topology,
            server,
            "general",
            &format!("message {i}"),
            user,
        );
    }
    let on_a = wait_until("both servers have all six posts", || {
        let a = history(&t.topology, &t.a_addr, "general");
        let b = history(&t.topology, &t.b_addr, "general");
        (a.len() == 6 && a == b).then_some(a)
    });
    // One line per message: clock, channel, sender, text; clocks never go down.
    for i in 0..6 {
        assert!(
            on_a.iter().any(|l| l.ends_with(&format!(": message {i}"))),
            "{on_a:?}"
        );
    }
    let clocks: Vec<u64> = on_a
        .iter()
        .map(|l| l[1..l.find(']').unwrap()].parse().unwrap())
        .collect();
    assert!(clocks.windows(2).all(|w| w[0] <= w[1]), "{on_a:?}");
    // A post made on b after it saw a's is ordered after it everywhere (Lamport).
    assert!(on_a[0].contains("ada: message 0"), "{on_a:?}");
    assert!(on_a[5].contains("bob: message 5"), "{on_a:?}");
}

#[test]
fn a_server_that_was_down_catches_up_and_history_survives_a_full_restart() {
    let t = two_servers();
    send(&t.topology, &t.a_addr, "general", "before", "ada");
    wait_until("b has the first post", || {
        (history(&t.topology, &t.b_addr, "general").len() == 1).then_some(())
    });
    // b goes down; a goes on.
    let Two {
        dir,
        topology,
        a,
        a_addr,
        b,
        ..
    } = t;
    drop(b);
    send(&topology, &a_addr, "general", "while b was down", "ada");
    send(&topology, &a_addr, "random", "elsewhere", "ada");
    // b comes back (on another port, with its history on disk) and catches up from a.
    let (b, b_addr) = chat_server(
        dir.path(),
        &topology,
        "chat-b",
        Some(&format!("chat-a={a_addr}")),
    );
    let caught_up = wait_until("b catches up", || {
        let h = history(&topology, &b_addr, "general");
        (h.len() == 2).then_some(h)
    });
    assert!(caught_up[1].contains("while b was down"), "{caught_up:?}");
    assert_eq!(history(&topology, &b_addr, "random").len(), 1);

    // Both stop; started again on the same state directory, each has every message, and they
    // still agree.
    let expected = history(&topology, &a_addr, "general");
    drop(a);
    drop(b);
    let (_a, a_addr) = chat_server(dir.path(), &topology, "chat-a", None);
    assert_eq!(history(&topology, &a_addr, "general"), expected);
    let (_b, b_addr) = chat_server(dir.path(), &topology, "chat-b", None);
    assert_eq!(history(&topology, &b_addr, "general"), expected);
}

/// Every post the server answered is on disk, and only the newest `keep` of them: hundreds
/// are sent without waiting (so several batches wait for the disk at once), every answer is
/// read, then the server is killed with SIGKILL and started again on its state directory.
#[test]
fn every_answered_post_survives_a_kill_and_the_retention_holds_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node chat-a { type chat }\npolicy chat {\n    rate 0\n    keep 100\n}\n",
    );
    let (server, addr) = chat_server(dir.path(), &topology, "chat-a", None);
    post_without_waiting(&addr, 0..300);
    drop(server);

    let (_server, addr) = chat_server(dir.path(), &topology, "chat-a", None);
    let kept = history(&topology, &addr, "general");
    assert_eq!(kept.len(), 100, "{kept:?}");
    assert!(kept[0].ends_with("post 200"), "{kept:?}");
    assert!(kept[99].ends_with("post 299"), "{kept:?}");
}

/// Under `durability periodic` a post is answered before its commit is forced to disk, and
/// reaches the disk within the interval: what a kill then leaves (read from a copy of the file
/// as it is, the way a server killed now would find it) soon holds every answered post, and a
/// server killed and started again has them all. A server stopped the usual way (SIGTERM)
/// forces what is left to disk before it exits.
#[test]
fn under_periodic_durability_answered_posts_reach_the_disk_and_a_stop_forces_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node chat-a { type chat }\npolicy chat {\n    rate 0\n    durability periodic 50ms\n}\n",
    );
    let file = tcluster::journal::chat_history_path(&dir.path().join("state"), "chat-a");
    let posts_after_a_crash = || {
        let copy = dir.path().join("copy.redb");
        std::fs::copy(&file, &copy).ok()?;
        let (_, entries) = tcluster::journal::ChatHistory::open(&copy).ok()?;
        let posts = entries
            .iter()
            .filter(|e| matches!(e.body, tcluster::protocol::message::ChatBody::Post { .. }))
            .count();
        Some(posts)
    };
    let (server, addr) = chat_server(dir.path(), &topology, "chat-a", None);
    post_without_waiting(&addr, 0..200);
    wait_until("the answered posts are forced to disk", || {
        (posts_after_a_crash() == Some(200)).then_some(())
    });
    drop(server); // SIGKILL
    let (mut server, addr) = chat_server(dir.path(), &topology, "chat-a", None);
    assert_eq!(history(&topology, &addr, "general").len(), 200);

    post_without_waiting(&addr, 200..250);
    server.terminate();
    assert_eq!(posts_after_a_crash(), Some(250));
    let (_server, addr) = chat_server(dir.path(), &topology, "chat-a", None);
    let kept = history(&topology, &addr, "general");
    assert_eq!(kept.len(), 250, "{kept:?}");
    assert!(kept[249].ends_with("post 249"), "{kept:?}");
}

/// Under `durability periodic` a server tells its peers about its posts only once they are on
/// its disk. A server killed before its commit loses its last posts, and no peer has them: the
/// posts it makes after it starts again (numbered from what its disk holds) are the same posts
/// on every server, and the two agree.
#[test]
fn under_periodic_durability_peers_hear_of_posts_only_once_they_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        &format!("{TOPOLOGY}policy chat {{\n    rate 0\n    durability periodic 1m\n}}\n"),
    );
    let (_b, b_addr) = chat_server(dir.path(), &topology, "chat-b", None);
    let peer = format!("chat-b={b_addr}");
    let linked = |a: &Proc| {
        wait_until("chat-a follows chat-b", || {
            a.log_text()
                .contains("following the chat server")
                .then_some(())
        })
    };
    let (a, a_addr) = chat_server(dir.path(), &topology, "chat-a", Some(&peer));
    linked(&a);
    for i in 0..3 {
        send(&topology, &a_addr, "general", &format!("lost {i}"), "ada");
    }
    // Answered, delivered, not yet on a's disk (a minute to go): b has not heard of them.
    let on_b = chat(&topology, &b_addr, &["history", "general"]);
    assert!(!String::from_utf8_lossy(&on_b.stdout).contains("lost"));
    drop(a); // SIGKILL: the three posts are gone

    let (mut a, a_addr) = chat_server(dir.path(), &topology, "chat-a", Some(&peer));
    linked(&a);
    send(&topology, &a_addr, "general", "kept", "ada");
    a.terminate(); // a stop commits what is staged

    let (a, a_addr) = chat_server(dir.path(), &topology, "chat-a", Some(&peer));
    linked(&a);
    let agreed = wait_until("both servers agree", || {
        let on_a = history(&topology, &a_addr, "general");
        let on_b = chat(&topology, &b_addr, &["history", "general"]);
        let on_b: Vec<String> = String::from_utf8_lossy(&on_b.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        (on_a.len() == 1 && on_a == on_b).then_some(on_a)
    });
    assert!(agreed[0].ends_with("ada: kept"), "{agreed:?}");
}

/// As `ada`, creates #general (answered `chat_done` whether or not it was there) and sends
/// the posts `post N` for each N of `posts` without waiting, then reads every answer.
fn post_without_waiting(addr: &str, posts: std::ops::Range<usize>) {
    let mut ada = Raw::login(addr, "ada");
    assert_eq!(
        ada.ask(r#"{"type":"chat_create","channel":"general"}"#)["type"],
        "chat_done"
    );
    for i in posts.clone() {
        ada.send(&format!(
            r#"{{"type":"chat_publish","channel":"general","text":"post {i}"}}"#
        ));
    }
    for _ in posts {
        let answer = ada.reply();
        assert_eq!(answer["type"], "chat_done", "{answer}");
    }
}

/// A raw connection speaking JSON lines.
struct Raw {
    lines: BufReader<TcpStream>,
    write: TcpStream,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            write: stream.try_clone().unwrap(),
            lines: BufReader::new(stream),
        }
    }

    fn send(&mut self, json: &str) {
        self.write.write_all(json.as_bytes()).unwrap();
        self.write.write_all(b"\n").unwrap();
    }

    /// The next reply that is not a live delivery.
    fn reply(&mut self) -> serde_json::Value {
        loop {
            let mut line = String::new();
            assert!(self.lines.read_line(&mut line).unwrap() > 0, "closed");
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["type"] != "chat_message" {
                return v;
            }
        }
    }

    fn ask(&mut self, json: &str) -> serde_json::Value {
        self.send(json);
        self.reply()
    }

    /// A connection whose receive buffer is as small as the system allows, so that a reader
    /// that does not read is soon seen as slow.
    fn connect_small(addr: &str) -> Raw {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, connect, setsockopt, socket, sockopt,
        };
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        setsockopt(&fd, sockopt::RcvBuf, &4096).unwrap();
        let target: std::net::SocketAddrV4 = addr.parse().unwrap();
        connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrIn::from(target),
        )
        .unwrap();
        let stream = TcpStream::from(fd);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Raw {
            write: stream.try_clone().unwrap(),
            lines: BufReader::new(stream),
        }
    }

    fn login(addr: &str, user: &str) -> Raw {
        let mut raw = Raw::connect(addr);
        let welcome = raw.ask(&format!(r#"{{"type":"chat_login","user":"{user}"}}"#));
        assert_eq!(welcome["type"], "chat_welcome", "{welcome}");
        raw
    }
}

fn error_of(v: &serde_json::Value) -> String {
    assert_eq!(v["type"], "error", "{v}");
    v["message"].as_str().unwrap().to_string()
}

#[test]
fn bad_input_gets_a_clear_error_and_the_server_serves_the_others() {
    let t = two_servers();
    let mut ada = Raw::login(&t.a_addr, "ada");
    assert_eq!(
        ada.ask(r#"{"type":"chat_create","channel":"general"}"#)["type"],
        "chat_done"
    );

    // Names.
    let mut c = Raw::connect(&t.a_addr);
    assert!(error_of(&c.ask(r#"{"type":"chat_login","user":""}"#)).contains("empty"));
    assert!(
        error_of(&c.ask(r#"{"type":"chat_login","user":"ada"}"#)).contains("already logged in")
    );
    let long = "x".repeat(40);
    assert!(
        error_of(&c.ask(&format!(r#"{{"type":"chat_login","user":"{long}"}}"#)))
            .contains("longer than 32")
    );
    // Before logging in.
    assert!(
        error_of(&c.ask(r#"{"type":"chat_publish","channel":"general","text":"hi"}"#))
            .contains("log in first")
    );
    let mut cy = Raw::login(&t.a_addr, "cy");
    // Unknown channels, with a hint.
    assert!(
        error_of(&cy.ask(r#"{"type":"chat_publish","channel":"genral","text":"hi"}"#))
            .contains("did you mean `general`?")
    );
    assert!(
        error_of(&cy.ask(r#"{"type":"chat_history","channel":"nope"}"#))
            .contains("no channel named `nope`")
    );
    assert!(error_of(&cy.ask(r#"{"type":"chat_create","channel":"a b"}"#)).contains("cannot"));
    // Empty and oversized messages.
    assert!(
        error_of(&cy.ask(r#"{"type":"chat_publish","channel":"general","text":"  "}"#))
            .contains("empty")
    );
    let big = "y".repeat(1001);
    assert!(
        error_of(&cy.ask(&format!(
            r#"{{"type":"chat_publish","channel":"general","text":"{big}"}}"#
        )))
        .contains("longer than 1000")
    );
    // Not JSON, and a line past the frame limit (the connection is closed after the error).
    assert!(error_of(&cy.ask("this is not json")).len() > 5);
    let mut huge = Raw::connect(&t.a_addr);
    huge.send(&format!(
        r#"{{"type":"chat_publish","channel":"general","text":"{}"}}"#,
        "z".repeat(70_000)
    ));
    assert!(error_of(&huge.reply()).contains("longer than"));

    // A flood: past the burst, the flooder is told to slow down; the others are served.
    let mut flood = Raw::login(&t.a_addr, "flood");
    for i in 0..100 {
        flood.send(&format!(
            r#"{{"type":"chat_publish","channel":"general","text":"spam {i}"}}"#
        ));
    }
    let replies: Vec<serde_json::Value> = (0..100).map(|_| flood.reply()).collect();
    let throttled = replies.iter().filter(|r| r["type"] == "error").count();
    assert!(throttled >= 50, "{throttled} of 100 refused");
    assert!(replies.iter().any(|r| {
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("slow down"))
    }));
    assert_eq!(
        ada.ask(r#"{"type":"chat_publish","channel":"general","text":"still here"}"#)["type"],
        "chat_done"
    );

    // A subscriber that never reads does not stall the others: its deliveries are dropped
    // and counted.
    let mut slow = Raw::connect_small(&t.a_addr);
    assert_eq!(
        slow.ask(r#"{"type":"chat_login","user":"slow"}"#)["type"],
        "chat_welcome"
    );
    assert_eq!(
        slow.ask(r#"{"type":"chat_subscribe","channel":"*"}"#)["type"],
        "chat_done"
    );
    // Many writers (each within its rate) post until the kernel's buffers towards the slow
    // subscriber are full and its queue overflows; meanwhile ada is answered every time.
    let text = "w".repeat(1000);
    let mut writers: Vec<Raw> = (0..20)
        .map(|i| Raw::login(&t.a_addr, &format!("w{i}")))
        .collect();
    let stats = wait_until("deliveries to the slow subscriber are dropped", || {
        for w in &mut writers {
            for _ in 0..10 {
                w.send(&format!(
                    r#"{{"type":"chat_publish","channel":"general","text":"{text}"}}"#
                ));
            }
            // Read the writer's replies, so that only the subscriber is slow.
            for _ in 0..10 {
                w.reply();
            }
        }
        let s = ada.ask(r#"{"type":"chat_stats"}"#);
        (s["dropped"].as_u64().unwrap_or(0) > 0).then_some(s)
    });
    assert_eq!(stats["type"], "chat_stats_report", "{stats}");
    // Shown: in the server's log (and so in the console's Logs pane), and by `chat stats`.
    wait_until("the server logs the slow reader", || {
        t.a.log_text().contains("reads too slowly").then_some(())
    });
    let out = chat(&t.topology, &t.a_addr, &["stats"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let dropped: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("dropped")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(dropped > 0, "{text}");
    // The other server kept up too: it has every entry (replication is not a subscriber).
    let entries =
        |addr: &str| Raw::connect(addr).ask(r#"{"type":"chat_stats"}"#)["entries"].clone();
    wait_until("b has every entry a has", || {
        (entries(&t.a_addr) == entries(&t.b_addr)).then_some(())
    });
    drop(slow);
    let _ = (&t.a, &t.b, &t.dir);
}

/// A bot as `tcluster node` runs it: it logs in as `bot_0001`, posts to its channels, submits
/// jobs that workers run, and moves to the other chat server when its own is killed.
/// A client that sends a request and at once closes its side (`echo … | nc`) gets its answer
/// before the server closes the connection: every time, not most times.
#[test]
fn a_request_followed_at_once_by_the_end_of_input_is_answered() {
    use std::io::Read;
    let t = two_servers();
    for attempt in 0..30 {
        let mut raw = Raw::connect(&t.a_addr);
        raw.send(&format!(r#"{{"type":"chat_login","user":"nc-{attempt}"}}"#));
        raw.write.shutdown(std::net::Shutdown::Write).unwrap();
        let mut all = String::new();
        let _ = raw.lines.read_to_string(&mut all);
        assert!(all.contains("chat_welcome"), "attempt {attempt}: {all:?}");
    }
}

#[test]
fn a_bot_posts_and_submits_and_moves_when_its_chat_server_dies() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "set PEER_SECRET \"lab-7\"\nnode coordinator { type master }\n\
         node worker-1 { type worker; resources { cpu 4 } }\n\
         node chat-a { type chat }\nnode chat-b { type chat }\n\
         node bot-1 { type bot; bot { channels general lab; posts 10/s; jobs 5/s; job \"echo hi\" } }\n",
    );
    let (_coordinator, master) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "worker-1", &master);
    let (a, a_addr) = chat_server(dir.path(), &topology, "chat-a", None);
    let (_b, b_addr) = chat_server(
        dir.path(),
        &topology,
        "chat-b",
        Some(&format!("chat-a={a_addr}")),
    );
    let links = format!("chat-a={a_addr},chat-b={b_addr}");
    let bot = spawn(
        dir.path(),
        "bot-1",
        &[
            "node",
            topology.to_str().unwrap(),
            "--name",
            "bot-1",
            "--coordinator",
            &master,
            "--chat",
            &links,
        ],
    );
    bot.wait_for_line("READY bot-1 as bot_0001");
    let bot_lines = |server: &str, channel: &str| {
        let out = chat(&topology, server, &["history", channel]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" bot_0001: "))
            .count()
    };
    // Both channels fill, and the posts reach the other server too.
    wait_until("the bot posted to both channels", || {
        (bot_lines(&b_addr, "general") >= 3 && bot_lines(&b_addr, "lab") >= 3).then_some(())
    });
    // Its jobs run.
    let completed = || {
        let out = tcluster()
            .args([
                "client",
                topology.to_str().unwrap(),
                "--coordinator",
                &master,
                "--json",
                "status",
            ])
            .output()
            .unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        report["report"]["jobs"]["completed"].as_u64()
    };
    wait_until("the bot's jobs completed", || {
        completed().filter(|n| *n >= 5)
    });
    // Its server dies; it goes on posting on the other one.
    a.signal(nix::sys::signal::Signal::SIGKILL);
    let before = bot_lines(&b_addr, "general") + bot_lines(&b_addr, "lab");
    wait_until("the bot posts on chat-b", || {
        (bot_lines(&b_addr, "general") + bot_lines(&b_addr, "lab") >= before + 5).then_some(())
    });
    wait_until("the bot logged the move", || {
        bot.log_text()
            .contains("posting to chat-b as bot_0001")
            .then_some(())
    });
}

/// The interactive prompt takes the same `chat` commands as the command line.
#[test]
fn the_interactive_prompt_has_chat_commands() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node coordinator { type master }\nnode chat-a { type chat }\n",
    );
    let (_coordinator, master) = coordinator(dir.path(), &topology, &[]);
    let (_a, a_addr) = chat_server(dir.path(), &topology, "chat-a", None);
    let mut child = tcluster()
        .args([
            "client",
            topology.to_str().unwrap(),
            "--coordinator",
            &master,
        ])
        .env("XDG_STATE_HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "help\nchat send general \"hello from the prompt\" --as ada --server {a_addr}\n\
         chat history general --server {a_addr}\nchat frobnicate\nchat history nowhere --server {a_addr}\nexit\n"
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (text, errors) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{text}{errors}");
    assert!(text.contains("chat send CHANNEL TEXT --as USER"), "{text}");
    assert_eq!(
        text.matches("#general ada: hello from the prompt").count(),
        2,
        "posted, then in the history:\n{text}"
    );
    assert!(errors.contains("frobnicate"), "{errors}");
    assert!(
        errors.contains("no channel `nowhere`") || errors.contains("nowhere"),
        "{errors}"
    );
}

/// Launched by tcluster with bots on both servers, a partition between the chat servers loses
/// the replicas that cross it; after the heal each server asks for what it missed, and both
/// histories (read back from disk afterwards) are the same. (The bots are stopped a second
/// before the end, so that no post is still on its way when the cluster stops.)
#[test]
fn after_a_partition_heals_both_chat_servers_have_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = headless(
        dir.path(),
        "node chat-a { type chat }\nnode chat-b { type chat }\n\
         node master { type master }\n\
         node bot { type bot; count 4; bot { channels general; posts 8/s } }\n\
         scenario split {\n  at 1s partition chat-a chat-b\n  at 3s heal\n\
         at 4s kill bot-1\n  at 4s kill bot-2\n  at 4s kill bot-3\n  at 4s kill bot-4\n\
         at 5s say \"done\"\n}\n",
        "split",
    );
    assert!(stdout.contains("partition chat-a <-> chat-b"), "{stdout}");
    let topology = dir.path().join("test.top");
    let state = dir.path().join("state");
    let mut histories = Vec::new();
    for name in ["chat-a", "chat-b"] {
        let server = spawn(
            dir.path(),
            &format!("{name}-after"),
            &[
                "node",
                topology.to_str().unwrap(),
                "--name",
                name,
                "--listen",
                "127.0.0.1:0",
                "--state-dir",
                state.to_str().unwrap(),
            ],
        );
        let line = server.wait_for_line(&format!("READY {name} "));
        let addr = line.rsplit(' ').next().unwrap().to_string();
        histories.push(history(&topology, &addr, "general"));
    }
    let posts = histories[0].iter().filter(|l| l.contains(" bot_")).count();
    assert!(posts > 40, "{posts} posts: {:?}", histories[0]);
    assert_eq!(histories[0], histories[1]);
}

/// A paused chat server closes nothing: its clients notice its silence (a `ping` unanswered)
/// and move to another server.
#[test]
fn a_bot_leaves_a_paused_chat_server() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node chat-a { type chat }\nnode chat-b { type chat }\n\
         node bot-1 { type bot; bot { channels general; posts 10/s } }\n",
    );
    let (a, a_addr) = chat_server(dir.path(), &topology, "chat-a", None);
    let (_b, b_addr) = chat_server(
        dir.path(),
        &topology,
        "chat-b",
        Some(&format!("chat-a={a_addr}")),
    );
    let links = format!("chat-a={a_addr},chat-b={b_addr}");
    let bot = spawn(
        dir.path(),
        "bot-1",
        &[
            "node",
            topology.to_str().unwrap(),
            "--name",
            "bot-1",
            "--chat",
            &links,
        ],
    );
    bot.wait_for_line("READY bot-1 as bot_0001");
    wait_until("the bot posts on chat-a", || {
        bot.log_text().contains("posting to chat-a").then_some(())
    });
    a.signal(nix::sys::signal::Signal::SIGSTOP);
    wait_until("the bot leaves the silent chat-a for chat-b", || {
        let log = bot.log_text();
        (log.contains("lost chat-a (silent for") && log.contains("posting to chat-b")).then_some(())
    });
    let posts_on_b = || {
        let out = chat(&topology, &b_addr, &["history", "general"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" bot_0001: "))
            .count()
    };
    let before = posts_on_b();
    wait_until("the bot goes on posting on chat-b", || {
        (posts_on_b() >= before + 5).then_some(())
    });
    a.signal(nix::sys::signal::Signal::SIGCONT);
}

/// A chat server whose peer is gone retries with a growing delay and says nothing until the
/// peer answers: the shaping proxy in between accepts a connection even while the peer is down,
/// which must not read as "linked" (once it did, dozens of times a second, burying the log).
#[test]
fn a_chat_server_waits_quietly_for_a_peer_that_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = headless(
        dir.path(),
        "node master { type master }\nnode chat { type chat; count 2 }\n\
         scenario outage {\n  at 0.5s kill chat-1\n  at 4.5s restart chat-1\n  at 6s say \"done\"\n}\n",
        "outage",
    );
    assert!(stdout.contains("FAULT #1: kill chat-1"), "{stdout}");
    let log = std::fs::read_to_string(dir.path().join("state/logs/chat-2.log")).unwrap();
    let linked = log.matches("linked to the chat server").count();
    let lost = log.matches("lost the chat server").count();
    assert!(
        linked <= 3 && lost <= 2,
        "linked {linked} times, lost {lost} times in 6s:\n{log}"
    );
    // And it did link again once chat-1 was back.
    let after = log
        .rsplit("lost the chat server")
        .next()
        .unwrap_or_default();
    assert!(after.contains("linked to the chat server"), "{log}");
}
