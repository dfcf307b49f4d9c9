//! Three chat servers on a network made by hand: the Bully election of a time master, its
//! Berkeley rounds, a new election when it dies, and it taking over again when it comes back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::protocol::message::PeerRole;
use crate::role::chat::tests::{env, prove};

const NAMES: [&str; 3] = ["a", "b", "c"];
/// The launcher's subscription on every server.
const SUPERVISOR: ConnId = 1;

/// At each server, the connection another server opened to it.
fn conn_from(name: &str) -> ConnId {
    100 + NAMES.iter().position(|n| *n == name).unwrap() as ConnId
}

fn name_of(conn: ConnId) -> &'static str {
    NAMES[(conn - 100) as usize]
}

struct Net {
    servers: BTreeMap<&'static str, ChatServer>,
    /// How far each server's clock is from true time.
    skew: BTreeMap<&'static str, i64>,
    now: Millis,
    queue: VecDeque<(&'static str, Input)>,
    /// What each server published to the launcher.
    events: Vec<(&'static str, EventKind)>,
}

fn server(name: &str) -> ChatServer {
    let mut config = ChatConfig::new(name);
    config.peers = NAMES
        .iter()
        .filter(|n| **n != name)
        .map(|n| n.to_string())
        .collect();
    config.ranks = NAMES.iter().map(|n| n.to_string()).collect();
    config.clock_sync = Some(crate::topology::ClockSync {
        interval: Duration::from_secs(1),
        tolerance: Duration::from_millis(20),
        outlier: Duration::from_secs(10),
    });
    ChatServer::new(config)
}

impl Net {
    fn new() -> Net {
        let mut net = Net {
            servers: BTreeMap::new(),
            skew: NAMES.iter().map(|n| (*n, 0)).collect(),
            now: 0,
            queue: VecDeque::new(),
            events: Vec::new(),
        };
        for name in NAMES {
            net.start(name);
        }
        net
    }

    /// Starts (or starts again) server `name`: the launcher subscribes, and it links with
    /// every server alive both ways.
    fn start(&mut self, name: &'static str) {
        let mut s = server(name);
        prove(&mut s, SUPERVISOR, "supervisor", PeerRole::Supervisor);
        s.step(
            0,
            Input::Received(
                SUPERVISOR,
                env("supervisor", Message::Subscribe { history: true }),
            ),
        );
        for other in NAMES.iter().filter(|n| **n != name) {
            if self.servers.contains_key(other) {
                prove(&mut s, conn_from(other), other, PeerRole::ChatPeer);
            }
        }
        self.servers.insert(name, s);
        let alive: Vec<&'static str> = self
            .servers
            .keys()
            .copied()
            .filter(|n| *n != name)
            .collect();
        for other in alive {
            let theirs = self.servers.get_mut(other).unwrap();
            prove(theirs, conn_from(name), name, PeerRole::ChatPeer);
            self.queue
                .push_back((other, Input::PeerUp(name.to_string())));
            self.queue
                .push_back((name, Input::PeerUp(other.to_string())));
        }
        self.deliver();
    }

    /// Server `name` dies: the others' links to it close.
    fn kill(&mut self, name: &str) {
        self.servers.remove(name);
        for other in self.servers.keys().copied().collect::<Vec<_>>() {
            self.queue
                .push_back((other, Input::PeerLost(name.to_string())));
            self.queue
                .push_back((other, Input::Disconnected(conn_from(name))));
        }
        self.deliver();
    }

    fn step(&mut self, name: &'static str, input: Input) {
        let now = self.now;
        let wall = 1_000_000_000 + now as i64 + self.skew[name];
        let Some(s) = self.servers.get_mut(name) else {
            return;
        };
        s.set_wall_clock(wall);
        for output in s.step(now, input) {
            match output {
                Output::ToPeer(to, message) => {
                    let to = NAMES.iter().copied().find(|n| *n == to).unwrap();
                    self.queue
                        .push_back((to, Input::Received(conn_from(name), env(name, message))));
                }
                Output::Send(conn, envelope) => self.sent(name, conn, envelope),
                Output::Push(conns, envelope) => {
                    for conn in conns {
                        self.sent(name, conn, envelope.clone());
                    }
                }
                Output::AdjustClock(by) => *self.skew.get_mut(name).unwrap() += by,
                _ => {}
            }
        }
    }

    fn sent(&mut self, from: &'static str, conn: ConnId, envelope: Envelope) {
        match (conn, envelope.message) {
            (SUPERVISOR, Message::Event { event }) => {
                self.events.push((from, Arc::unwrap_or_clone(event).kind))
            }
            (c, message) if c >= 100 => {
                let envelope = Envelope {
                    message,
                    ..envelope
                };
                self.queue
                    .push_back((name_of(c), Input::FromPeer(from.to_string(), envelope)));
            }
            _ => {}
        }
    }

    fn deliver(&mut self) {
        while let Some((to, input)) = self.queue.pop_front() {
            self.step(to, input);
        }
    }

    /// Runs until `until` ms, every server ticking every 50ms.
    fn run_until(&mut self, until: Millis) {
        while self.now < until {
            self.now += 50;
            for name in self.servers.keys().copied().collect::<Vec<_>>() {
                self.step(name, Input::Tick);
                self.deliver();
            }
        }
    }

    fn masters(&self) -> BTreeSet<Option<String>> {
        self.servers
            .values()
            .map(|s| s.time_master().map(str::to_string))
            .collect()
    }

    fn spread(&self) -> i64 {
        let alive: Vec<i64> = self.servers.keys().map(|n| self.skew[n]).collect();
        alive.iter().max().unwrap() - alive.iter().min().unwrap()
    }

    /// Within two seconds `master` is everyone's time master again, and `former` runs no
    /// more rounds in the two after.
    fn takes_back(&mut self, master: &str, former: &str) {
        self.run_until(self.now + 2_000);
        assert_eq!(self.masters(), BTreeSet::from([Some(master.to_string())]));
        let since = self.rounds_by(former);
        self.run_until(self.now + 2_000);
        assert_eq!(self.rounds_by(former), since, "{former} stopped its rounds");
    }

    fn rounds_by(&self, master: &str) -> usize {
        self.events
            .iter()
            .filter(|(from, e)| *from == master && matches!(e, EventKind::ClockRound { .. }))
            .count()
    }
}

#[test]
fn the_first_server_in_the_file_is_elected_and_brings_the_clocks_together() {
    let mut net = Net::new();
    *net.skew.get_mut("b").unwrap() = 2_500;
    *net.skew.get_mut("c").unwrap() = -2_000;
    net.run_until(1_000);
    assert_eq!(net.masters(), BTreeSet::from([Some("a".to_string())]));
    assert!(
        net.events
            .contains(&("a", EventKind::TimeMaster { master: "a".into() })),
        "{:?}",
        net.events
    );
    net.run_until(5_000);
    assert!(net.rounds_by("a") >= 3, "{:?}", net.events);
    assert!(net.spread() <= 40, "clocks {:?}", net.skew);
}

#[test]
fn when_the_time_master_dies_the_next_takes_over_and_the_first_takes_back_on_return() {
    let mut net = Net::new();
    net.run_until(2_000);
    net.kill("a");
    net.run_until(3_000);
    assert_eq!(net.masters(), BTreeSet::from([Some("b".to_string())]));
    // b runs the rounds now, and they still correct a skew.
    *net.skew.get_mut("c").unwrap() = 1_500;
    net.run_until(7_000);
    assert!(net.rounds_by("b") >= 3, "{:?}", net.events);
    assert!(net.spread() <= 40, "clocks {:?}", net.skew);
    // a comes back: it outranks b, and takes over.
    net.start("a");
    net.takes_back("a", "b");
}

#[test]
fn a_silent_time_master_is_replaced_and_takes_over_again_when_it_speaks() {
    let mut net = Net::new();
    net.run_until(2_000);
    // a stops (paused): its links stay open but nothing comes from it.
    let a = net.servers.remove("a").unwrap();
    net.run_until(6_000);
    assert_eq!(net.masters(), BTreeSet::from([Some("b".to_string())]));
    // a resumes still thinking it is master: its first polls tell the others, and it is
    // the one master again (b stops its rounds).
    net.servers.insert("a", a);
    net.takes_back("a", "b");
}

#[test]
fn election_messages_and_polls_count_only_from_the_proven_and_the_elected() {
    let mut net = Net::new();
    net.run_until(2_000);
    let b = net.servers.get_mut("b").unwrap();
    // A client that never proved the peer secret claims victory: refused, nothing changes.
    b.step(net.now, Input::Connected(50));
    let out = b.step(net.now, Input::Received(50, env("c", Message::Victory)));
    assert!(
        matches!(&out[..], [Output::Send(50, e)] if matches!(e.message, Message::Error { .. })),
        "{out:?}"
    );
    assert_eq!(b.time_master(), Some("a"));
    // c (a proven chat server, but not the time master) cannot read or move b's clock.
    let adjust = Message::ClockAdjust {
        round: 1,
        adjust_ms: 5_000,
    };
    let out = b.step(net.now, Input::Received(conn_from("c"), env("c", adjust)));
    assert!(
        !out.iter().any(|o| matches!(o, Output::AdjustClock(_))),
        "{out:?}"
    );
    // Only the launcher may subscribe to a chat server's events.
    let out = b.step(
        net.now,
        Input::Received(50, env("x", Message::Subscribe { history: true })),
    );
    assert!(
        matches!(&out[..], [Output::Send(50, e)] if matches!(&e.message, Message::Error { message } if message.contains("launcher"))),
        "{out:?}"
    );
    // c's own claim (it is outranked by b) makes b hold an election, which a wins again.
    net.queue.push_back((
        "b",
        Input::Received(conn_from("c"), env("c", Message::Victory)),
    ));
    net.deliver();
    net.run_until(3_000);
    assert_eq!(net.masters(), BTreeSet::from([Some("a".to_string())]));
}

/// A launcher that subscribes after the election (a restarted server wins before the launcher
/// is back on its link) still hears who the time master is; a server that is not one says
/// nothing.
#[test]
fn a_late_subscriber_hears_who_the_time_master_is() {
    let mut net = Net::new();
    net.run_until(1_000);
    assert_eq!(net.masters(), BTreeSet::from([Some("a".to_string())]));
    const LATE: ConnId = 2;
    for (name, told) in [("a", true), ("b", false)] {
        let s = net.servers.get_mut(name).unwrap();
        prove(s, LATE, "supervisor", PeerRole::Supervisor);
        let out = s.step(
            net.now,
            Input::Received(
                LATE,
                env("supervisor", Message::Subscribe { history: true }),
            ),
        );
        let heard: Vec<&EventKind> = out
            .iter()
            .filter_map(|o| match o {
                Output::Push(conns, e) if conns == &[LATE] => match &e.message {
                    Message::Event { event } => Some(&event.kind),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        if told {
            assert_eq!(
                heard,
                [&EventKind::TimeMaster { master: "a".into() }],
                "{out:?}"
            );
        } else {
            assert!(heard.is_empty(), "{out:?}");
        }
    }
}
