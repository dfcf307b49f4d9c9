//! The chat server on its own: two servers linked by hand, a cut link, retention.
use super::*;

/// Server `a` with a client on connection 10, and server `b` linked to it (b opened the
/// link; on a's side it is connection 1). `cut` drops what a sends b.
struct Pair {
    a: ChatServer,
    b: ChatServer,
    now: Millis,
    cut: bool,
}

pub(super) fn env(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

/// Connection `conn` of `server` opens and proves `who`, in `role`, with the peer secret.
pub(super) fn prove(
    server: &mut ChatServer,
    conn: ConnId,
    who: &str,
    role: crate::protocol::message::PeerRole,
) {
    server.step(0, Input::Connected(conn));
    let hello = Message::Hello { role, nonce: None };
    let out = server.step(0, Input::Received(conn, env(who, hello)));
    let Some(Output::Send(_, challenge)) = out.first() else {
        panic!("a challenge: {out:?}");
    };
    let Message::Challenge { nonce, .. } = &challenge.message else {
        panic!("a challenge: {challenge:?}");
    };
    let proof = crate::protocol::auth::proof("", crate::protocol::auth::PEER, nonce, who);
    server.step(0, Input::Received(conn, env(who, Message::Auth { proof })));
}

impl Pair {
    fn new() -> Pair {
        Pair::keeping(10_000)
    }

    /// A pair whose servers keep `keep` entries per channel.
    fn keeping(keep: usize) -> Pair {
        let config = |name: &str, peer: &str| ChatConfig {
            peers: vec![peer.to_string()],
            keep,
            ..ChatConfig::new(name)
        };
        let mut p = Pair {
            a: ChatServer::new(config("a", "b")),
            b: ChatServer::new(config("b", "a")),
            now: 0,
            cut: false,
        };
        // b proves to a that it is a chat server of the cluster.
        prove(
            &mut p.a,
            1,
            "b",
            crate::protocol::message::PeerRole::ChatPeer,
        );
        p.a.step(0, Input::Connected(10));
        let out = p.b.step(0, Input::PeerUp("a".into()));
        p.route_b(out);
        p.send_to_a(Message::ChatLogin {
            user: "ada".into(),
            password: None,
            token: None,
        });
        p.send_to_a(Message::ChatCreate {
            channel: "general".into(),
        });
        p
    }

    /// Delivers a's outputs to b (unless cut), and b's answers back, until quiet.
    fn route_a(&mut self, out: Vec<Output>) {
        for o in out {
            if let Output::Send(1, envelope) = o
                && !self.cut
            {
                let back = self.b.step(self.now, Input::FromPeer("a".into(), envelope));
                self.route_b(back);
            }
        }
    }

    fn route_b(&mut self, out: Vec<Output>) {
        for o in out {
            if let Output::ToPeer(_, message) = o {
                let back = self.a.step(self.now, Input::Received(1, env("b", message)));
                self.route_a(back);
            }
        }
    }

    fn send_to_a(&mut self, message: Message) {
        self.now += 100;
        let out = self
            .a
            .step(self.now, Input::Received(10, env("ada", message)));
        self.route_a(out);
    }

    fn post(&mut self, text: &str) {
        self.send_to_a(Message::ChatPublish {
            channel: "general".into(),
            text: text.into(),
        });
    }

    fn texts(server: &ChatServer) -> Vec<String> {
        server
            .entries()
            .filter_map(|e| match &e.body {
                ChatBody::Post { text, .. } => Some(text.to_string()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_replica_after_a_gap_brings_the_missing_ones() {
    let mut p = Pair::new();
    p.post("one");
    p.cut = true;
    p.post("two");
    p.post("three");
    assert_eq!(
        Pair::texts(&p.b),
        ["one"],
        "the cut link lost two and three"
    );
    p.cut = false;
    p.post("four");
    assert_eq!(Pair::texts(&p.b), ["one", "two", "three", "four"]);
    assert_eq!(Pair::texts(&p.a), Pair::texts(&p.b));
}

#[test]
fn anti_entropy_fills_a_gap_nothing_follows() {
    let mut p = Pair::new();
    p.post("one");
    p.cut = true;
    p.post("two");
    p.cut = false;
    assert_eq!(Pair::texts(&p.b), ["one"]);
    // Nothing more is posted; b asks on its own a few seconds later.
    p.now += ANTI_ENTROPY_MS;
    let out = p.b.step(p.now, Input::Tick);
    p.route_b(out);
    assert_eq!(Pair::texts(&p.b), ["one", "two"]);
}

#[test]
fn a_channel_keeps_its_newest_entries_and_says_which_it_dropped() {
    let mut p = Pair::keeping(3);
    let mut forgotten = 0;
    for i in 0..6 {
        p.now += 100;
        let out = p.a.step(
            p.now,
            Input::Received(
                10,
                env(
                    "ada",
                    Message::ChatPublish {
                        channel: "general".into(),
                        text: format!("m{i}"),
                    },
                ),
            ),
        );
        forgotten += out
            .iter()
            .filter(|o| matches!(o, Output::Forget(_)))
            .count();
        p.route_a(out);
    }
    assert_eq!(Pair::texts(&p.a), ["m3", "m4", "m5"]);
    assert_eq!(Pair::texts(&p.b), ["m3", "m4", "m5"]);
    assert_eq!(
        forgotten, 3,
        "each dropped entry is dropped from the disk too"
    );
    // The channel's creation is kept: the channel still exists.
    assert!(
        p.a.entries()
            .any(|e| matches!(e.body, ChatBody::Channel { .. }))
    );
}

#[test]
fn a_peer_behind_the_retention_is_told_what_is_gone_and_stops_asking() {
    let mut p = Pair::keeping(3);
    p.cut = true;
    for i in 0..8 {
        p.post(&format!("m{i}"));
    }
    assert_eq!(Pair::texts(&p.b), Vec::<String>::new());
    p.cut = false;
    p.now += ANTI_ENTROPY_MS;
    let out = p.b.step(p.now, Input::Tick);
    p.route_b(out);
    assert_eq!(Pair::texts(&p.b), ["m5", "m6", "m7"]);
    // b's gap is closed: it no longer asks for what a dropped.
    let (upto, extra) = p.b.held.get("a").cloned().unwrap();
    assert!(extra.is_empty(), "a gap stays open below {upto}: {extra:?}");
    // And a later post arrives as usual.
    p.post("m8");
    assert_eq!(Pair::texts(&p.b), ["m6", "m7", "m8"]);
}

#[test]
fn a_peer_cannot_make_a_server_skip_entries_still_to_come() {
    let mut p = Pair::new();
    p.post("one");
    let upto = std::collections::BTreeMap::from([("a".to_string(), u64::MAX)]);
    let out = p.b.step(
        p.now,
        Input::FromPeer("a".into(), env("a", Message::ChatForgotten { upto })),
    );
    assert!(out.is_empty() || !out.iter().any(|o| matches!(o, Output::Store(_))));
    p.post("two");
    assert_eq!(Pair::texts(&p.b), ["one", "two"]);
}

#[test]
fn channels_are_bounded_with_a_clear_refusal() {
    let mut p = Pair::new();
    for i in 1..MAX_CHANNELS {
        p.now += 100;
        p.a.step(
            p.now,
            Input::Received(
                10,
                env(
                    "ada",
                    Message::ChatCreate {
                        channel: format!("c{i}"),
                    },
                ),
            ),
        );
    }
    p.now += 100;
    let out = p.a.step(
        p.now,
        Input::Received(
            10,
            env(
                "ada",
                Message::ChatCreate {
                    channel: "one-too-many".into(),
                },
            ),
        ),
    );
    let refused = out.iter().any(|o| {
        matches!(o, Output::Send(10, e) if matches!(&e.message, Message::Error { message } if message.contains("the most it keeps")))
    });
    assert!(refused, "{out:?}");
}

/// What server `s` shows of channel general, as `chat_history` answers `conn`.
fn shown(s: &mut ChatServer, conn: ConnId) -> Vec<String> {
    let out = s.step(
        0,
        Input::Received(
            conn,
            env(
                "ada",
                Message::ChatHistory {
                    channel: Some("general".into()),
                    with: None,
                    limit: None,
                },
            ),
        ),
    );
    out.iter()
        .filter_map(|o| match o {
            Output::Send(_, e) => match &e.message {
                Message::ChatHistoryList { entries, .. } => Some(entries.clone()),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .filter_map(|e| match e.body {
            ChatBody::Post { text, .. } => Some(text.into()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_request_retried_on_another_server_is_shown_once_everywhere() {
    let once = |request: &str, text: &str| Message::ChatOnce {
        request: request.into(),
        message: Box::new(Message::ChatPublish {
            channel: "general".into(),
            text: text.into(),
        }),
    };
    let mut p = Pair::new();
    // Sent twice to one server: one entry, and the answer names it both times.
    p.send_to_a(once("r1", "hello"));
    p.send_to_a(once("r1", "hello"));
    assert_eq!(Pair::texts(&p.a), ["hello"]);
    assert_eq!(Pair::texts(&p.b), ["hello"]);

    // a makes an entry for r2 and its replica is lost (a died before passing it on, say):
    // the broker, with no answer, sends r2 to b.
    p.cut = true;
    p.send_to_a(once("r2", "again"));
    p.b.step(p.now, Input::Connected(20));
    let login = Message::ChatLogin {
        user: "ada".into(),
        password: None,
        token: None,
    };
    p.b.step(p.now, Input::Received(20, env("ada", login)));
    let out =
        p.b.step(p.now, Input::Received(20, env("ada", once("r2", "again"))));
    assert!(
        out.iter().any(|o| matches!(o, Output::Send(20, e)
            if matches!(&e.message, Message::ChatDone { entry: Some(_) }))),
        "{out:?}"
    );
    p.route_b(out);
    // The link heals: both servers hold both entries (the same set, so they stay in step)…
    p.cut = false;
    p.now += ANTI_ENTROPY_MS;
    let out = p.b.step(p.now, Input::Tick);
    p.route_b(out);
    assert_eq!(Pair::texts(&p.a), ["hello", "again", "again"]);
    assert_eq!(Pair::texts(&p.a), Pair::texts(&p.b));
    // … and both show one of them, the same one.
    assert_eq!(shown(&mut p.a, 10), ["hello", "again"]);
    assert_eq!(shown(&mut p.b, 20), ["hello", "again"]);
    assert!(p.a.duplicates + p.b.duplicates >= 1);
    // A retry after all this still makes nothing new.
    let out =
        p.b.step(p.now, Input::Received(20, env("ada", once("r2", "again"))));
    p.route_b(out);
    assert_eq!(Pair::texts(&p.b).len(), 3);
}

#[test]
fn only_a_proven_master_reads_and_moves_a_chat_servers_clock() {
    let mut s = ChatServer::new(ChatConfig {
        masters: vec!["m".into()],
        ..ChatConfig::new("c")
    });
    s.set_wall_clock(1_000_000);
    // Anyone else is refused.
    s.step(0, Input::Connected(1));
    let out = s.step(
        0,
        Input::Received(1, env("x", Message::ClockPoll { round: 1 })),
    );
    assert!(
        matches!(&out[..], [Output::Send(1, e)] if matches!(&e.message, Message::Error { .. })),
        "{out:?}"
    );
    // The master proves the peer secret, then reads and moves the clock.
    prove(&mut s, 2, "m", crate::protocol::message::PeerRole::Master);
    let reading = |out: &[Output]| {
        out.iter().find_map(|o| match o {
            Output::Send(2, e) => match e.message {
                Message::ClockReading { clock_ms, .. } => Some(clock_ms),
                _ => None,
            },
            _ => None,
        })
    };
    let out = s.step(
        0,
        Input::Received(2, env("m", Message::ClockPoll { round: 3 })),
    );
    assert_eq!(reading(&out), Some(1_000_000));
    let adjust = Message::ClockAdjust {
        round: 3,
        adjust_ms: -400,
    };
    let out = s.step(0, Input::Received(2, env("m", adjust)));
    assert!(out.contains(&Output::AdjustClock(-400)), "{out:?}");
    assert_eq!(
        reading(&out),
        Some(999_600),
        "answered with the clock as moved"
    );
}

#[test]
fn chat_once_with_a_bad_request_id_or_no_request_inside_is_refused() {
    let mut p = Pair::new();
    let errors = |out: &[Output]| {
        out.iter()
            .filter_map(|o| match o {
                Output::Send(10, e) => match &e.message {
                    Message::Error { message } => Some(message.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let once = |request: &str, message: Message| Message::ChatOnce {
        request: request.into(),
        message: Box::new(message),
    };
    let post = Message::ChatPublish {
        channel: "general".into(),
        text: "x".into(),
    };
    for (request, inner) in [
        (String::new(), post.clone()),
        ("r".repeat(129), post.clone()),
        ("a\nb".to_string(), post),
        ("r9".to_string(), Message::ChatChannels),
    ] {
        let out = p.a.step(
            p.now,
            Input::Received(10, env("ada", once(&request, inner))),
        );
        assert_eq!(errors(&out).len(), 1, "{out:?}");
    }
    assert!(Pair::texts(&p.a).is_empty(), "nothing was posted");
}
