//! A time master among the chat servers, for a topology without masters (`policy clock` and no
//! `type master`): the servers elect one by the Bully algorithm and it runs the Berkeley rounds
//! ([`crate::role::berkeley`]) over its links to the others.
//!
//! | step | who → whom | message |
//! | --- | --- | --- |
//! | a server with no time master asks every server that outranks it | `election` |
//! | one that outranks it and is alive says so (and runs its own election) | `answer` |
//! | a server no one outranking it answered tells every server | `victory` |
//! | the time master, every interval, polls every server it links to | `clock_poll` / `clock_reading` / `clock_adjust` |
//!
//! Ranks follow the file: the chat server listed first ranks highest (as masters do). A server
//! elects again when its link to the time master closes or the master is silent (no poll) for
//! three intervals; a server that outranks the time master (it came back) takes over from it
//! the same way, by an election it wins. Election messages count only from a chat server of
//! this cluster proven with the peer secret, and polls only from the one it knows as master.

use tracing::{debug, info};

use super::*;
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::role::berkeley::{Due, Rounds};

/// How long a server waits for an `answer` from those that outrank it before it wins.
pub const ANSWER_WAIT_MS: Millis = 500;
/// How long it then waits for the `victory` of the one that answered before it tries again.
pub const VICTORY_WAIT_MS: Millis = 2_000;
/// How long a server just started waits for its links before its first election (unless
/// every link is up sooner).
pub const SETTLE_MS: Millis = 500;

/// What a chat server keeps about the time master.
#[derive(Debug, Default)]
pub(super) struct TimeMastery {
    /// The time master, as last elected (this server's own name when it is).
    pub(super) master: Option<String>,
    /// An election this server runs: when it began, and when a server outranking it answered.
    election: Option<(Millis, Option<Millis>)>,
    /// When the time master was last heard from.
    heard_at: Millis,
    /// When this server first ticked.
    began: Option<Millis>,
    /// As time master: the rounds, each server polled over its link (by name).
    rounds: Rounds<String>,
}

impl ChatServer {
    /// The rank of a chat server: its place in the file (0 ranks highest); unknown names last.
    fn rank(&self, name: &str) -> usize {
        self.config
            .ranks
            .iter()
            .position(|n| n == name)
            .unwrap_or(usize::MAX)
    }

    /// Whether this server runs the Bully election for the time master at all.
    fn elects(&self) -> bool {
        self.config.clock_sync.is_some()
    }

    /// The time master, as this server knows it.
    pub fn time_master(&self) -> Option<&str> {
        self.time.master.as_deref()
    }

    /// On every tick: the first election once the links had a moment, an election when the
    /// master fell silent or one in flight timed out, and the rounds as master.
    pub(super) fn tick_time(&mut self) {
        let Some(policy) = self.config.clock_sync else {
            return;
        };
        let now = self.now;
        let began = *self.time.began.get_or_insert(now);
        let interval = policy.interval.as_millis() as Millis;
        let me = self.config.name.clone();
        match (self.time.master.clone(), self.time.election) {
            (_, Some((at, None))) if now.saturating_sub(at) >= ANSWER_WAIT_MS => self.win(),
            (_, Some((_, Some(answered)))) if now.saturating_sub(answered) >= VICTORY_WAIT_MS => {
                info!("the server that answered never said victory: electing again");
                self.elect();
            }
            (_, Some(_)) => {}
            (None, None) => {
                let settled = now.saturating_sub(began) >= SETTLE_MS
                    || self.config.peers.iter().all(|p| self.links.contains(p));
                if settled {
                    self.elect();
                }
            }
            (Some(master), None) if master != me => {
                let silence = (3 * interval).max(3 * ANSWER_WAIT_MS);
                if now.saturating_sub(self.time.heard_at) > silence {
                    info!(%master, "the time master is silent: electing another");
                    self.elect();
                }
            }
            (Some(_), None) => self.tick_rounds(&policy),
        }
    }

    /// Starts an election: `election` to every server that outranks this one; with none
    /// linked, it wins at once.
    fn elect(&mut self) {
        let me = self.rank(&self.config.name);
        let higher: Vec<String> = self
            .links
            .iter()
            .filter(|p| self.rank(p) < me)
            .cloned()
            .collect();
        self.time.rounds.abandon();
        if higher.is_empty() {
            return self.win();
        }
        debug!(?higher, "electing a time master");
        self.time.election = Some((self.now, None));
        for peer in higher {
            self.out.push(Output::ToPeer(peer, Message::Election));
        }
    }

    /// No one outranking this server answered: it is the time master, and tells every server.
    fn win(&mut self) {
        let me = self.config.name.clone();
        self.time.election = None;
        let news = self.time.master.as_deref() != Some(me.as_str());
        self.time.master = Some(me.clone());
        for peer in self.links.clone() {
            self.out.push(Output::ToPeer(peer, Message::Victory));
        }
        if news {
            info!("time master now (Bully election among the chat servers)");
            self.publish_event(EventKind::TimeMaster { master: me });
        }
    }

    /// `election`, `answer` or `victory` from chat server `from` (proven).
    pub(super) fn election_message(&mut self, from: &str, message: &Message) {
        if !self.elects() {
            return;
        }
        let me = self.config.name.clone();
        let outranks_sender = self.rank(&me) < self.rank(from);
        match message {
            Message::Election if outranks_sender => {
                if self.time.master.as_deref() == Some(me.as_str()) {
                    self.out
                        .push(Output::ToPeer(from.to_string(), Message::Victory));
                } else {
                    self.out
                        .push(Output::ToPeer(from.to_string(), Message::Answer));
                    if self.time.election.is_none() {
                        self.elect();
                    }
                }
            }
            Message::Answer if !outranks_sender => {
                if let Some((_, answered)) = self.time.election.as_mut() {
                    answered.get_or_insert(self.now);
                }
            }
            Message::Victory => {
                if outranks_sender {
                    // A lower-ranked server claims it: this one takes over (the bully).
                    if self.time.election.is_none() {
                        self.elect();
                    }
                    return;
                }
                self.time.election = None;
                self.time.heard_at = self.now;
                self.time.rounds.abandon();
                if self.time.master.as_deref() != Some(from) {
                    // The winner publishes its own victory: said once, not by every server.
                    info!(master = from, "time master elected");
                    self.time.master = Some(from.to_string());
                }
            }
            _ => {}
        }
    }

    /// The link this server opened to `peer` closed: if that was the time master, elect.
    pub(super) fn time_peer_lost(&mut self, peer: &str) {
        if self.elects() && self.time.master.as_deref() == Some(peer) {
            info!(master = peer, "lost the time master: electing another");
            self.time.master = None;
            self.elect();
        }
    }

    /// A clock poll (or adjustment) from proven chat server `peer`: whether it comes from this
    /// server's time master (and so is answered). One that does not means two servers each
    /// think they are master (one was paused, or cut off, through an election): the lower
    /// ranked of the two learns of the other — told `victory`, or by an election it loses.
    pub(super) fn polled_by(&mut self, peer: &str) -> bool {
        if !self.elects() {
            return false;
        }
        if self.time.master.as_deref() == Some(peer) {
            self.time.heard_at = self.now;
            return true;
        }
        let me = self.config.name.clone();
        let mine = self.time.master.clone();
        let outranks_master = mine
            .as_deref()
            .is_none_or(|m| self.rank(peer) < self.rank(m));
        if mine.as_deref() == Some(me.as_str()) && self.rank(&me) < self.rank(peer) {
            self.out
                .push(Output::ToPeer(peer.to_string(), Message::Victory));
        } else if outranks_master && self.time.election.is_none() {
            info!(%peer, "polled by a server that outranks the time master: electing");
            self.elect();
        }
        false
    }

    /// As time master: a round every interval over the links to the other servers.
    fn tick_rounds(&mut self, policy: &crate::topology::ClockSync) {
        match self.time.rounds.due(self.now, policy) {
            Due::Nothing => {}
            Due::Close => self.close_round(policy),
            Due::Open(round) => {
                let wall = self.wall_ms;
                for peer in self.links.clone() {
                    self.out
                        .push(Output::ToPeer(peer.clone(), Message::ClockPoll { round }));
                    self.time.rounds.polled(&peer, peer.clone(), wall);
                }
            }
        }
    }

    /// A `clock_reading` on the link to `peer`.
    pub(super) fn clock_reading(&mut self, peer: &str, round: u64, clock_ms: i64) {
        let Some(policy) = self.config.clock_sync else {
            return;
        };
        if self.time.master.as_deref() != Some(self.config.name.as_str()) {
            return;
        }
        if self
            .time
            .rounds
            .reading(peer, round, clock_ms, self.wall_ms)
        {
            self.close_round(&policy);
        }
    }

    fn close_round(&mut self, policy: &crate::topology::ClockSync) {
        let me = self.config.name.clone();
        let Some(closed) = self.time.rounds.close(&me, policy) else {
            return;
        };
        for (name, by) in &closed.adjusted {
            match closed.routes.get(name) {
                Some(None) => self.out.push(Output::AdjustClock(*by)),
                Some(Some(peer)) => self.out.push(Output::ToPeer(
                    peer.clone(),
                    Message::ClockAdjust {
                        round: closed.round,
                        adjust_ms: *by,
                    },
                )),
                None => {}
            }
        }
        if !closed.adjusted.is_empty() {
            info!(round = closed.round, average = closed.average_ms, adjusted = ?closed.adjusted, "clock round");
        }
        self.publish_event(EventKind::ClockRound {
            round: closed.round,
            clock_ms: self.wall_ms,
            offsets: closed.offsets,
            left_out: closed.left_out,
            average_ms: closed.average_ms,
            adjusted: closed.adjusted,
            silent: closed.silent,
        });
    }

    /// `subscribe` from the launcher: its events (the time master's), from now on. A chat
    /// server keeps no history of them, so the history it starts with is empty.
    pub(super) fn subscribe_events(&mut self, conn: ConnId) {
        let supervisor = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.trusted == Some(super::trust::Trusted::Supervisor));
        if !supervisor {
            return self.error(
                conn,
                "`subscribe` is accepted only from the launcher, proven with the peer secret"
                    .into(),
            );
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.events = true;
        }
        self.reply(
            conn,
            Message::History {
                events: Vec::new(),
                done: true,
            },
        );
        // A time master says so to a new subscriber: it may have won before the launcher
        // subscribed (a restarted server wins at once), and that news was heard by no one.
        let me = self.config.name.clone();
        if self.time.master.as_deref() == Some(me.as_str()) {
            self.event_to(vec![conn], EventKind::TimeMaster { master: me });
        }
    }

    /// An event for whoever subscribed (the launcher).
    fn publish_event(&mut self, kind: EventKind) {
        let subscribers: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.events)
            .map(|(conn, _)| *conn)
            .collect();
        self.event_to(subscribers, kind);
    }

    /// An event for `subscribers`.
    fn event_to(&mut self, subscribers: Vec<ConnId>, kind: EventKind) {
        let event = ClusterEvent {
            at_ms: self.now,
            clock: self.clock.tick(),
            kind,
        };
        if !subscribers.is_empty() {
            let envelope = self.envelope(Message::Event {
                event: std::sync::Arc::new(event),
            });
            self.out.push(Output::Push(subscribers, envelope));
        }
    }
}

#[cfg(test)]
mod tests;
