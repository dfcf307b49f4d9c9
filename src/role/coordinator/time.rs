//! Berkeley clock synchronisation (`policy clock { sync berkeley }`): the primary is the time
//! master.
//!
//! | step | who → whom | message | here |
//! | --- | --- | --- | --- |
//! | 1 | master → every worker and backup (on their connections), every chat server (on its own) | `clock_poll` | [`Coordinator::tick_clocks`] |
//! | 2 | node → master | `clock_reading` (its clock) | [`Coordinator::clock_read`] |
//! | 3 | master → each node off by more than `tolerance` | `clock_adjust` (by how much) | [`Coordinator::close_round`] |
//!
//! The arithmetic of a round (the round trip, the mean, the outliers, each node's move) is
//! [`crate::role::berkeley`]'s, shared with a chat server elected time master; this file says
//! whom the primary polls and how. Nodes that do not answer before the round closes (half an
//! interval) are left out of it.

use std::collections::BTreeMap;

use tracing::info;

use super::{Coordinator, Output};
use crate::cluster::event::EventKind;
use crate::protocol::message::{Envelope, Message};
use crate::role::ConnId;
use crate::role::berkeley::{Due, Rounds};

pub use crate::role::berkeley::MAX_ADJUST_MS;

/// A server's answer to the time master over a connection the master opened (chat servers,
/// brokers): to `clock_poll`, its clock; to `clock_adjust`, the move (bounded) and its clock as
/// moved — an answer either way, which keeps the master's connection in step. `from_master`:
/// the connection proved to be a master of the topology; anyone else gets the refusal.
pub fn answer_time_master(
    message: &Message,
    from_master: bool,
    wall_ms: &mut i64,
) -> (Option<i64>, Message) {
    if !from_master {
        let kind = message.kind();
        let message = format!(
            "`{kind}` is accepted only from a master of this topology, proven with the peer secret"
        );
        return (None, Message::Error { message });
    }
    let (round, moved) = match *message {
        Message::ClockAdjust { round, adjust_ms } => {
            let by = adjust_ms.clamp(-MAX_ADJUST_MS, MAX_ADJUST_MS);
            *wall_ms = wall_ms.saturating_add(by);
            (round, Some(by))
        }
        Message::ClockPoll { round } => (round, None),
        _ => {
            let message = "not a clock message".to_string();
            return (None, Message::Error { message });
        }
    };
    let reading = Message::ClockReading {
        round,
        clock_ms: *wall_ms,
    };
    (moved, reading)
}

/// What a coordinator keeps about clocks.
#[derive(Debug, Default)]
pub(super) struct TimeKeeping {
    /// This node's wall clock (milliseconds since 1970), as its driver read it for this step.
    pub(super) wall_ms: i64,
    /// The rounds, each node polled on its connection (a worker's, a bot's, or a backup's as
    /// a follower) or, for `None`, a chat server or broker over the master's own connection.
    rounds: Rounds<Option<ConnId>>,
    /// Bots that asked to be read (`clock_join`), on their connections.
    bots: BTreeMap<String, ConnId>,
}

impl Coordinator {
    /// The driver's reading of this node's wall clock, before each step.
    pub fn set_wall_clock(&mut self, unix_ms: i64) {
        self.time.wall_ms = unix_ms;
    }

    /// On every tick of a primary with `policy clock`: opens a round every interval, and
    /// closes the open one once everyone answered or half an interval passed.
    pub(super) fn tick_clocks(&mut self) {
        let Some(policy) = self.config.clock_sync else {
            return;
        };
        let id = match self.time.rounds.due(self.now, &policy) {
            Due::Nothing => return,
            Due::Close => return self.close_round(),
            Due::Open(id) => id,
        };
        let wall = self.time.wall_ms;
        // Workers connected here (a classic worker cannot read its clock to anyone)…
        let mut workers: Vec<(String, ConnId)> = self
            .worker_conns
            .iter()
            .filter(|(name, _)| {
                self.state.workers.get(*name).is_some_and(|w| {
                    !w.classic && w.health != crate::protocol::message::Health::Dead
                })
            })
            .map(|(name, conn)| (name.clone(), *conn))
            .collect();
        workers.sort();
        // … the bots that joined (on the connection they joined on, if still open) …
        let conns = &self.conns;
        self.time.bots.retain(|_, conn| conns.contains_key(conn));
        workers.extend(
            self.time
                .bots
                .iter()
                .map(|(name, conn)| (name.clone(), *conn)),
        );
        // … and the backups following it.
        workers.extend(
            self.primary()
                .map(|p| {
                    p.followers
                        .iter()
                        .map(|(conn, f)| (f.name.clone(), *conn))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
        for (name, conn) in workers {
            self.send(conn, Message::ClockPoll { round: id });
            self.time.rounds.polled(&name, Some(conn), wall);
        }
        // … and the chat servers, each over a connection of the master's own.
        let wait = policy.interval / 2;
        let chat: Vec<String> = self
            .config
            .time_peers
            .iter()
            .map(|p| p.name.clone())
            .collect();
        for name in chat {
            let envelope = self.envelope(Message::ClockPoll { round: id });
            self.out.push(Output::ToMaster {
                master: name.clone(),
                envelope,
                wait,
            });
            self.time.rounds.polled(&name, None, wall);
        }
    }

    /// Step 2: a node's clock, on the connection it was polled on, once per round.
    pub(super) fn clock_read(&mut self, conn: ConnId, round: u64, clock_ms: i64) {
        if let Some(name) = self.time.rounds.polled_over(|c| *c == Some(conn)) {
            self.reading(&name, round, clock_ms);
        }
    }

    /// Step 2 for a chat server: its answer on the master's own connection to it.
    pub(super) fn chat_clock_read(&mut self, server: &str, reply: Option<Envelope>) {
        if let Some(Envelope {
            message: Message::ClockReading { round, clock_ms },
            ..
        }) = reply
        {
            self.reading(server, round, clock_ms);
        }
    }

    /// A reading from node `name`, polled in round `round`.
    fn reading(&mut self, name: &str, round: u64, clock_ms: i64) {
        let wall = self.time.wall_ms;
        if self.time.rounds.reading(name, round, clock_ms, wall) {
            self.close_round();
        }
    }

    /// Step 3: averages, and tells each node (and itself) how far to move.
    fn close_round(&mut self) {
        let Some(policy) = self.config.clock_sync else {
            return;
        };
        let me = self.config.name.clone();
        let Some(closed) = self.time.rounds.close(&me, &policy) else {
            return;
        };
        for (name, by) in &closed.adjusted {
            let adjust = Message::ClockAdjust {
                round: closed.round,
                adjust_ms: *by,
            };
            match closed.routes.get(name) {
                Some(None) => self.out.push(Output::AdjustClock(*by)),
                Some(Some(Some(conn))) => self.send(*conn, adjust),
                Some(Some(None)) => {
                    let envelope = self.envelope(adjust);
                    self.out.push(Output::ToMaster {
                        master: name.clone(),
                        envelope,
                        wait: policy.interval / 2,
                    });
                }
                None => {}
            }
        }
        if !closed.adjusted.is_empty() || !closed.silent.is_empty() {
            info!(
                round = closed.round,
                average = closed.average_ms,
                adjusted = ?closed.adjusted,
                missing = ?closed.silent,
                "clock round"
            );
        }
        self.emit(EventKind::ClockRound {
            round: closed.round,
            clock_ms: self.time.wall_ms,
            offsets: closed.offsets,
            left_out: closed.left_out,
            average_ms: closed.average_ms,
            adjusted: closed.adjusted,
            silent: closed.silent,
        });
    }

    /// `clock_join` from a bot of the topology (by its node name): read its clock too, on this
    /// connection, from the next round on. Anyone else is refused.
    pub(super) fn clock_join(&mut self, conn: ConnId, from: &str) {
        if self.config.clock_sync.is_none() || !self.config.bots.iter().any(|b| b == from) {
            self.refused.rules += 1;
            let message = format!(
                "`clock_join` is for the bots of this topology under policy clock; `{from}` is not one"
            );
            self.send(conn, Message::Error { message });
            return;
        }
        self.time.bots.insert(from.to_string(), conn);
    }

    /// A node's side, for a backup (its primary polls it like a worker).
    pub(super) fn clock_asked(&mut self, message: &Message) -> bool {
        match *message {
            Message::ClockPoll { round } => {
                let clock_ms = self.time.wall_ms;
                self.out
                    .push(Output::ToPrimary(Message::ClockReading { round, clock_ms }));
                true
            }
            Message::ClockAdjust { adjust_ms, .. } => {
                self.out.push(Output::AdjustClock(
                    adjust_ms.clamp(-MAX_ADJUST_MS, MAX_ADJUST_MS),
                ));
                true
            }
            _ => false,
        }
    }
}
