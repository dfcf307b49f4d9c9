//! Berkeley clock synchronisation (`policy clock { sync berkeley }`): the primary is the time
//! master.
//!
//! | step | who → whom | message | here |
//! | --- | --- | --- | --- |
//! | 1 | master → every worker and backup (on their connections), every chat server (on its own) | `clock_poll` | [`Coordinator::tick_clocks`] |
//! | 2 | node → master | `clock_reading` (its clock) | [`Coordinator::clock_read`] |
//! | 3 | master → each node off by more than `tolerance` | `clock_adjust` (by how much) | [`Coordinator::close_round`] |
//!
//! The master compensates each reading for the round trip (the node read its clock about half
//! way through it), takes the mean of every offset with its own (zero), leaves out readings
//! further than `outlier` from that mean, and averages the rest. Each node is told how far to
//! move — never a time, which would be stale on arrival — and so is the master itself. Nodes
//! that do not answer before the round closes (half an interval) are left out of it.

use std::collections::BTreeMap;

use tracing::{debug, info};

use super::{Coordinator, Output};
use crate::clock::Millis;
use crate::cluster::event::EventKind;
use crate::protocol::message::{Envelope, Message};
use crate::role::ConnId;

/// The furthest a clock is ever told to move in one round (a day): a reading beyond it is a
/// hostile or broken peer's, and the arithmetic stays far from overflow.
pub const MAX_ADJUST_MS: i64 = 86_400_000;

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
    /// The last round's number.
    rounds: u64,
    /// When the last round opened.
    last_round: Option<Millis>,
    /// The round waiting for readings.
    open: Option<Round>,
    /// Bots that asked to be read (`clock_join`), on their connections.
    bots: BTreeMap<String, ConnId>,
}

/// One round of polls.
#[derive(Debug)]
struct Round {
    id: u64,
    opened: Millis,
    /// Per node polled: its connection (a worker's, or a backup's as a follower; `None`: a
    /// chat server, over the time master's own connection to it) and this clock when the poll
    /// went out.
    polled: BTreeMap<String, (Option<ConnId>, i64)>,
    /// Per node that answered: its clock minus this one, compensated for the round trip.
    offsets: BTreeMap<String, i64>,
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
        let interval = policy.interval.as_millis() as Millis;
        if let Some(round) = &self.time.open {
            let everyone = round.offsets.len() == round.polled.len();
            if everyone || self.now.saturating_sub(round.opened) >= (interval / 2).max(1) {
                self.close_round();
            }
            return;
        }
        if self
            .time
            .last_round
            .is_some_and(|at| self.now.saturating_sub(at) < interval)
        {
            return;
        }
        self.time.last_round = Some(self.now);
        self.time.rounds += 1;
        let id = self.time.rounds;
        let wall = self.time.wall_ms;
        let mut polled = BTreeMap::new();
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
            polled.insert(name, (Some(conn), wall));
        }
        // … and the chat servers, each over a connection of the master's own.
        let wait = std::time::Duration::from_millis((interval / 2).max(1));
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
            polled.insert(name, (None, wall));
        }
        self.time.open = Some(Round {
            id,
            opened: self.now,
            polled,
            offsets: BTreeMap::new(),
        });
    }

    /// Step 2: a node's clock, on the connection it was polled on, once per round.
    pub(super) fn clock_read(&mut self, conn: ConnId, round: u64, clock_ms: i64) {
        let polled_here = self.time.open.as_ref().and_then(|r| {
            r.polled
                .iter()
                .find(|(_, (c, _))| *c == Some(conn))
                .map(|(name, _)| name.clone())
        });
        if let Some(name) = polled_here {
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
        let Some(r) = self.time.open.as_mut().filter(|r| r.id == round) else {
            debug!(%name, round, "a clock reading for no open round: ignored");
            return;
        };
        let Some((name, sent)) = r
            .polled
            .get_key_value(name)
            .map(|(name, (_, sent))| (name.clone(), *sent))
        else {
            return;
        };
        if r.offsets.contains_key(&name) {
            return;
        }
        // The node read its clock about half way through the round trip.
        let trip = wall.saturating_sub(sent).max(0);
        let then = wall.saturating_sub(trip / 2);
        let offset = clock_ms
            .saturating_sub(then)
            .clamp(-MAX_ADJUST_MS, MAX_ADJUST_MS);
        r.offsets.insert(name, offset);
        if r.offsets.len() == r.polled.len() {
            self.close_round();
        }
    }

    /// Step 3: averages, and tells each node (and itself) how far to move.
    fn close_round(&mut self) {
        let Some(round) = self.time.open.take() else {
            return;
        };
        let Some(policy) = self.config.clock_sync else {
            return;
        };
        if round.polled.is_empty() {
            // No clock but its own: nothing to agree on.
            return;
        }
        let me = self.config.name.clone();
        let mut offsets = round.offsets;
        offsets.insert(me.clone(), 0);
        let mean = offsets.values().sum::<i64>() / offsets.len() as i64;
        let bound = policy.outlier.as_millis() as i64;
        // Readings within `outlier` of the mean count. With few clocks one far off can drag
        // the mean away from all of them: then the median is the centre instead.
        let around = |centre: i64| -> Vec<i64> {
            offsets
                .values()
                .copied()
                .filter(|o| (o - centre).abs() <= bound)
                .collect()
        };
        let mut centre = mean;
        let mut within = around(mean);
        if within.is_empty() {
            let mut sorted: Vec<i64> = offsets.values().copied().collect();
            sorted.sort_unstable();
            centre = sorted[sorted.len() / 2];
            within = around(centre);
        }
        let average = if within.is_empty() {
            mean
        } else {
            within.iter().sum::<i64>() / within.len() as i64
        };
        let left_out: Vec<String> = offsets
            .iter()
            .filter(|(_, o)| (**o - centre).abs() > bound)
            .map(|(name, _)| name.clone())
            .collect();
        let tolerance = policy.tolerance.as_millis() as i64;
        let mut adjusted = BTreeMap::new();
        for (name, offset) in &offsets {
            let by = (average - offset).clamp(-MAX_ADJUST_MS, MAX_ADJUST_MS);
            if by.abs() <= tolerance {
                continue;
            }
            adjusted.insert(name.clone(), by);
            let adjust = Message::ClockAdjust {
                round: round.id,
                adjust_ms: by,
            };
            match round.polled.get(name) {
                _ if *name == me => self.out.push(Output::AdjustClock(by)),
                Some((Some(conn), _)) => self.send(*conn, adjust),
                Some((None, _)) => {
                    let envelope = self.envelope(adjust);
                    let wait = policy.interval / 2;
                    self.out.push(Output::ToMaster {
                        master: name.clone(),
                        envelope,
                        wait,
                    });
                }
                None => {}
            }
        }
        let missing: Vec<String> = round
            .polled
            .keys()
            .filter(|n| !offsets.contains_key(*n))
            .cloned()
            .collect();
        if !adjusted.is_empty() || !missing.is_empty() {
            info!(
                round = round.id,
                average,
                ?adjusted,
                ?missing,
                "clock round"
            );
        }
        self.emit(EventKind::ClockRound {
            round: round.id,
            clock_ms: self.time.wall_ms,
            offsets,
            left_out,
            average_ms: average,
            adjusted,
            silent: missing,
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
