//! The broker with two chat servers (roles, in memory): the round robin, a server that dies
//! before answering, and a retried post that is shown once.

use super::*;
use crate::protocol::message::{ChatBody, ChatEntry};
use crate::role::chat::{ChatConfig, ChatServer, Input as ChatInput, Output as ChatOutput};

/// A broker, chat servers `a` and `b` (entries copied between them as made, unless one is
/// down), and what the client on connection 1 received.
struct Rig {
    broker: Broker,
    servers: Vec<ChatServer>,
    down: Vec<bool>,
    now: Millis,
    to_client: Vec<Message>,
    /// What a dead server made and could not pass on.
    unsent: Vec<(usize, ChatEntry)>,
    /// Replication is slow: new entries wait (in `unsent`).
    slow: bool,
    /// How many messages the client had been sent when its connection was let go.
    let_go_after: Option<usize>,
}

fn env(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

/// The connection a server sees for client `conn`'s upstream.
fn up_conn(conn: ConnId) -> ConnId {
    100 + conn
}

impl Rig {
    fn new() -> Rig {
        let broker = Broker::new(BrokerConfig {
            name: "broker".into(),
            servers: vec!["a".into(), "b".into()],
            secret: None,
            peer_key: String::new(),
            run: "run1".into(),
            masters: vec!["m".into()],
        });
        let mut rig = Rig {
            broker,
            servers: vec![
                ChatServer::new(ChatConfig::new("a")),
                ChatServer::new(ChatConfig::new("b")),
            ],
            down: vec![false, false],
            now: 0,
            to_client: Vec::new(),
            unsent: Vec::new(),
            slow: false,
            let_go_after: None,
        };
        rig.broker_step(Input::Connected(1));
        rig
    }

    /// A logged-in client whose feed server then stops answering (paused: nothing it says
    /// arrives), and two requests: the round robin sends one to each server, and the silent
    /// one's waits. Returns the rig and the silent server.
    fn with_a_silent_feed() -> (Rig, usize) {
        let mut rig = Rig::new();
        rig.client(login());
        let feed = rig.broker.clients[&1].feed.unwrap();
        rig.down[feed] = true;
        rig.client(Message::ChatChannels);
        rig.client(Message::ChatChannels);
        (rig, feed)
    }

    fn client(&mut self, message: Message) {
        self.now += 10;
        self.broker_step(Input::Received(1, env("ada", message)));
    }

    fn broker_step(&mut self, input: Input) {
        let out = self.broker.step(self.now, input);
        for o in out {
            match o {
                Output::Send(1, e) => self.to_client.push(e.message),
                Output::Close(1) => self.let_go_after = Some(self.to_client.len()),
                Output::Open { conn, server, .. } => {
                    if self.down[server] {
                        self.broker_step(Input::UpClosed { conn, server });
                    } else {
                        self.servers[server].step(self.now, ChatInput::Connected(up_conn(conn)));
                        self.broker_step(Input::UpOpened { conn, server });
                    }
                }
                Output::ToServer {
                    conn,
                    server,
                    message,
                } if !self.down[server] => {
                    let out = self.servers[server].step(
                        self.now,
                        ChatInput::Received(up_conn(conn), env("ada", message)),
                    );
                    self.server_out(server, conn, out);
                }
                _ => {}
            }
        }
    }

    /// A server's outputs: answers go back up, new entries to the other server.
    fn server_out(&mut self, server: usize, conn: ConnId, out: Vec<ChatOutput>) {
        for o in out {
            match o {
                ChatOutput::Send(c, e) if c == up_conn(conn) && !self.down[server] => {
                    self.broker_step(Input::UpReceived {
                        conn,
                        server,
                        envelope: e,
                    });
                }
                ChatOutput::Store(entry) => {
                    let other = 1 - server;
                    if self.down[server] || self.down[other] || self.slow {
                        self.unsent.push((server, entry));
                    } else {
                        self.servers[other].restore(vec![entry]);
                    }
                }
                _ => {}
            }
        }
    }

    /// Server `s` dies with what it holds (its connections close).
    fn kill(&mut self, s: usize) {
        self.down[s] = true;
        self.broker_step(Input::UpClosed { conn: 1, server: s });
    }

    /// Server `s` is back and passes on what it made meanwhile.
    fn revive(&mut self, s: usize) {
        self.down[s] = false;
        for (from, entry) in std::mem::take(&mut self.unsent) {
            self.servers[1 - from].restore(vec![entry]);
        }
    }

    fn posts_held(&self, s: usize) -> usize {
        self.servers[s]
            .entries()
            .filter(|e| matches!(e.body, ChatBody::Post { .. }))
            .count()
    }

    /// The client was told no error.
    fn assert_no_errors(&self) {
        assert!(
            !self
                .to_client
                .iter()
                .any(|m| matches!(m, Message::Error { .. })),
            "{:?}",
            self.to_client
        );
    }

    fn dones(&self) -> usize {
        self.to_client
            .iter()
            .filter(|m| matches!(m, Message::ChatDone { entry: Some(_) }))
            .count()
    }
}

fn publish(text: &str) -> Message {
    Message::ChatPublish {
        channel: "general".into(),
        text: text.into(),
    }
}

fn login() -> Message {
    Message::ChatLogin {
        user: "ada".into(),
        password: None,
        token: None,
    }
}

#[test]
fn requests_go_round_robin_and_each_upstream_logs_in_first() {
    let mut rig = Rig::new();
    rig.client(login());
    rig.client(Message::ChatCreate {
        channel: "general".into(),
    });
    for i in 0..4 {
        rig.client(publish(&format!("post {i}")));
    }
    assert!(
        matches!(rig.to_client[0], Message::ChatWelcome { .. }),
        "{:?}",
        rig.to_client
    );
    // One answer per request, none of them an error (each upstream logged in first).
    assert_eq!(rig.dones(), 5, "{:?}", rig.to_client);
    rig.assert_no_errors();
    // Both servers took requests in turn (the logins replayed count too).
    let counts: Vec<u64> = rig.broker.requests().iter().map(|(_, n)| *n).collect();
    assert!(counts.iter().all(|n| *n >= 3), "{counts:?}");
    assert_eq!(rig.posts_held(0), 4);
    assert_eq!(rig.posts_held(1), 4);
}

#[test]
fn a_post_whose_server_dies_before_answering_is_retried_once_and_shown_once() {
    let mut rig = Rig::new();
    rig.client(login());
    rig.client(Message::ChatCreate {
        channel: "general".into(),
    });
    let before = rig.dones();
    // The next request goes to `b` (the round robin): it makes the entry, then dies before
    // its answer and its replica leave.
    let next = rig.broker.turn;
    rig.down[next] = false;
    // Deliver to the server but lose everything it says: it "dies" right after applying.
    rig.now += 10;
    let out = rig
        .broker
        .step(rig.now, Input::Received(1, env("ada", publish("hello"))));
    for o in out {
        if let Output::ToServer {
            conn,
            server,
            message,
        } = o
        {
            let made = rig.servers[server].step(
                rig.now,
                ChatInput::Received(up_conn(conn), env("ada", message)),
            );
            rig.down[server] = true;
            rig.server_out(server, conn, made);
        }
    }
    assert_eq!(rig.posts_held(next), 1, "the dead server made the entry");
    rig.kill(next);
    // Retried on the other server: one answer to the client.
    assert_eq!(rig.dones(), before + 1, "{:?}", rig.to_client);
    assert_eq!(rig.broker.retries(), (1, 0));
    let other = 1 - next;
    assert_eq!(rig.posts_held(other), 1);
    // The dead server comes back and passes its entry on: both hold two entries for one
    // request, and both show one.
    rig.revive(next);
    assert_eq!(rig.posts_held(other), 2);
    let history = Message::ChatHistory {
        channel: Some("general".into()),
        with: None,
        limit: None,
    };
    for s in 0..2 {
        let out = rig.servers[s].step(
            rig.now,
            ChatInput::Received(up_conn(1), env("ada", history.clone())),
        );
        let shown: usize = out
            .iter()
            .filter_map(|o| match o {
                ChatOutput::Send(_, e) => match &e.message {
                    Message::ChatHistoryList { entries, .. } => Some(
                        entries
                            .iter()
                            .filter(|e| matches!(e.body, ChatBody::Post { .. }))
                            .count(),
                    ),
                    _ => None,
                },
                _ => None,
            })
            .sum();
        assert_eq!(shown, 1, "server {s} shows the post once");
    }
}

#[test]
fn with_every_server_down_a_request_fails_with_a_clear_error() {
    let mut rig = Rig::new();
    rig.client(login());
    rig.kill(0);
    rig.kill(1);
    rig.client(publish("anyone?"));
    let Some(Message::Error { message }) = rig.to_client.last() else {
        panic!("{:?}", rig.to_client);
    };
    assert!(message.contains("no chat server answers"), "{message}");
}

#[test]
fn a_silent_server_is_taken_for_dead_and_its_request_goes_elsewhere() {
    let (mut rig, feed) = Rig::with_a_silent_feed();
    let lists = |rig: &Rig| {
        rig.to_client
            .iter()
            .filter(|m| matches!(m, Message::ChatChannelList { .. }))
            .count()
    };
    assert_eq!(lists(&rig), 1, "{:?}", rig.to_client);
    rig.now += SILENT_MS;
    rig.broker_step(Input::Tick);
    // Taken for dead: the waiting request is answered by the other, and the login moved.
    assert_eq!(lists(&rig), 2, "{:?}", rig.to_client);
    assert_eq!(rig.broker.clients[&1].feed, Some(1 - feed));
    assert_eq!(rig.broker.retries(), (1, 0));
}

#[test]
fn a_post_to_a_channel_made_a_moment_ago_elsewhere_goes_to_the_server_that_made_it() {
    let mut rig = Rig::new();
    rig.client(login());
    // Replication lags: the channel exists only where it was made.
    rig.slow = true;
    rig.client(Message::ChatCreate {
        channel: "general".into(),
    });
    rig.client(publish("first"));
    rig.assert_no_errors();
    assert_eq!(rig.dones(), 2);
    assert_eq!(rig.broker.retries(), (1, 0));
}

#[test]
fn a_login_whose_server_dies_before_answering_is_answered_once_by_the_next() {
    let mut rig = Rig::new();
    // The first server takes the login and dies before its answer leaves.
    let first = rig.broker.turn;
    rig.down[first] = false;
    rig.now += 10;
    let out = rig
        .broker
        .step(rig.now, Input::Received(1, env("ada", login())));
    for o in out {
        match o {
            Output::Open { conn, server, .. } => {
                rig.servers[server].step(rig.now, ChatInput::Connected(up_conn(conn)));
                let out = rig.broker.step(rig.now, Input::UpOpened { conn, server });
                for o in out {
                    if let Output::ToServer { server, .. } = o {
                        assert_eq!(server, first);
                    }
                }
            }
            other => panic!("{other:?}"),
        }
    }
    rig.kill(first);
    // One welcome, from the other server, and no error.
    let welcomes = rig
        .to_client
        .iter()
        .filter(|m| matches!(m, Message::ChatWelcome { .. }))
        .count();
    assert_eq!(welcomes, 1, "{:?}", rig.to_client);
    rig.assert_no_errors();
    assert_eq!(rig.broker.clients[&1].feed, Some(1 - first));
}

#[test]
fn only_a_proven_master_reads_and_moves_the_brokers_clock() {
    let mut rig = Rig::new();
    rig.broker.set_wall_clock(5_000);
    rig.client(Message::ClockPoll { round: 1 });
    assert!(
        matches!(rig.to_client.last(), Some(Message::Error { .. })),
        "{:?}",
        rig.to_client
    );
    // A master proves the peer secret on connection 2.
    let hello = Message::Hello {
        role: PeerRole::Master,
        nonce: None,
    };
    rig.broker.step(0, Input::Connected(2));
    let out = rig.broker.step(0, Input::Received(2, env("m", hello)));
    let Some(Output::Send(2, challenge)) = out.first() else {
        panic!("{out:?}");
    };
    let Message::Challenge { nonce, .. } = &challenge.message else {
        panic!("{challenge:?}");
    };
    let proof = crate::protocol::auth::proof("", crate::protocol::auth::PEER, nonce, "m");
    rig.broker
        .step(0, Input::Received(2, env("m", Message::Auth { proof })));
    let reading = |out: &[Output]| {
        out.iter().find_map(|o| match o {
            Output::Send(2, e) => match e.message {
                Message::ClockReading { clock_ms, .. } => Some(clock_ms),
                _ => None,
            },
            _ => None,
        })
    };
    let out = rig.broker.step(
        0,
        Input::Received(2, env("m", Message::ClockPoll { round: 4 })),
    );
    assert_eq!(reading(&out), Some(5_000));
    let adjust = Message::ClockAdjust {
        round: 4,
        adjust_ms: 250,
    };
    let out = rig.broker.step(0, Input::Received(2, env("m", adjust)));
    assert!(out.contains(&Output::AdjustClock(250)), "{out:?}");
    assert_eq!(reading(&out), Some(5_250));
}

/// A channel another client made a moment ago on one server, where this client last wrote
/// elsewhere: the post goes on to each live server in turn until one has the channel.
#[test]
fn a_post_to_a_channel_another_client_made_elsewhere_finds_the_server_that_has_it() {
    let mut rig = Rig::new();
    rig.client(login());
    rig.slow = true;
    rig.client(Message::ChatCreate {
        channel: "lab".into(),
    });
    let has_lab = |rig: &Rig, s: usize| {
        rig.servers[s]
            .entries()
            .any(|e| matches!(&e.body, ChatBody::Channel { channel, .. } if channel == "lab"))
    };
    let written = (0..2).find(|s| has_lab(&rig, *s)).expect("lab was made");
    // bob made #general on the other server; it has not reached this one yet.
    let other = 1 - written;
    rig.servers[other].restore(vec![ChatEntry {
        clock: 1,
        server: ["a", "b"][other].into(),
        seq: 100,
        body: ChatBody::Channel {
            channel: "general".into(),
            by: "bob".into(),
        },
        request: None,
    }]);
    // A read goes to the other server, so the post's turn falls on the one without #general.
    rig.client(Message::ChatChannels);
    rig.client(publish("first"));
    rig.assert_no_errors();
    assert_eq!(rig.dones(), 2);
    assert_eq!(rig.posts_held(other), 1);
    assert_eq!(rig.broker.retries(), (1, 0));
}

/// A client that sends a request and closes its side at once (`echo … | nc`) is let go only
/// after the answer, however late it comes; one with nothing on its way, at once.
#[test]
fn a_client_that_closes_with_a_request_on_its_way_is_answered_first() {
    let (mut rig, _) = Rig::with_a_silent_feed();
    let told = rig.to_client.len();
    rig.broker_step(Input::Closed(1));
    assert_eq!(rig.let_go_after, None, "one request is still on its way");
    rig.now += SILENT_MS;
    rig.broker_step(Input::Tick);
    // The waiting request went to the other server; its answer, then the close.
    assert_eq!(rig.to_client.len(), told + 1, "{:?}", rig.to_client);
    assert_eq!(rig.let_go_after, Some(told + 1));
    assert!(!rig.broker.clients.contains_key(&1));

    let mut rig = Rig::new();
    rig.client(login());
    rig.broker_step(Input::Closed(1));
    assert_eq!(rig.let_go_after, Some(1));
    assert!(!rig.broker.clients.contains_key(&1));
}
