//! Replication, from both ends.
//!
//! A primary keeps every durable event in `history` and streams it to each backup that sends
//! `follow`, at most [`REPLICA_WINDOW`] unacknowledged at a time. With synchronous replication
//! its replies wait (are *held*) until every backup has acknowledged the events made before
//! them; a backup silent for a whole heartbeat timeout is dropped so it cannot stall the
//! cluster. A backup applies what its primary streams, in order, and acknowledges each event.
//!
//! On a lossy link the stream repairs itself. A backup keeps events that arrive after a gap
//! and acknowledges the last one it has in order, with the ones it lacks after it (*selective
//! repeat*: the primary sends just those again). An event it already had (its acknowledgement
//! was lost) is acknowledged again. And a primary that hears nothing new for a quarter of a
//! heartbeat interval while events are on their way sends everything after the last
//! acknowledged one again (the last events, or every acknowledgement, may have been lost).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tracing::{debug, info, warn};

use super::{
    ClusterState, ConnId, Coordinator, HISTORY_PART, JournalOp, Output, REPLICA_WINDOW, Standing,
};
use crate::clock::Millis;
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::message::{Envelope, Message};

/// What a primary keeps.
#[derive(Debug, Default)]
pub(super) struct Primary {
    /// The backups following it, by connection.
    pub(super) followers: BTreeMap<ConnId, Follower>,
    /// When followers and workers were last pinged.
    last_ping: Millis,
    /// With a sync backup: replies waiting until every backup has this many events.
    held: VecDeque<(u64, Output)>,
    /// When the oldest held reply started waiting.
    held_since: Millis,
    /// Why the follower being closed now is dropped (for its `backup_lost` event).
    dropping: Option<String>,
    /// When to announce the victory again to masters that do not follow yet.
    pub(super) next_announce: Millis,
    /// Replies are held because the backup and the workers are both silent.
    holding_alone: bool,
}

/// A backup following this primary.
#[derive(Debug)]
pub(super) struct Follower {
    /// The master's name.
    pub(super) name: String,
    /// How many events it has acknowledged.
    acked: u64,
    /// How many events it has been sent.
    streamed: u64,
    /// When it last acknowledged something new (or was last sent everything again).
    progress_ms: Millis,
    /// Events sent again on its say-so, and when: not again before a quiet spell has passed.
    resent: BTreeMap<u64, Millis>,
    /// It was behind the snapshot and starts over from the snapshot at this seq: only
    /// acknowledgements that say so count.
    reseed: Option<u64>,
}

impl Follower {
    /// How many events it has acknowledged.
    pub(super) fn acked(&self) -> u64 {
        self.acked
    }
}

impl Primary {
    /// A primary that announces its victory at `next_announce`.
    pub(super) fn announcing_at(next_announce: Millis) -> Self {
        Primary {
            next_announce,
            ..Primary::default()
        }
    }

    /// The fewest events any follower has acknowledged (everything, with no follower).
    fn min_acked(&self) -> u64 {
        self.followers
            .values()
            .map(|f| f.acked)
            .min()
            .unwrap_or(u64::MAX)
    }
}

impl Coordinator {
    /// `follow {after}`: a backup asks for the events after its first `after`.
    pub(super) fn backup_follows(&mut self, conn: ConnId, from: String, after: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = super::session::Peer::Follower;
        }
        info!(conn, from = %from, after, "a backup follows");
        self.emit(EventKind::BackupFollows {
            backup: from.clone(),
            after,
        });
        // A backup behind this master's snapshot (the events it lacks are compacted away)
        // starts over from the snapshot; one claiming more than there is starts over too.
        let behind = after < self.history.snapshot_end() || after > self.history_len();
        let (from_seq, reseed) = if behind {
            (self.history.first(), Some(self.history.first()))
        } else {
            (after, None)
        };
        let now = self.now;
        if let Some(p) = self.primary_mut() {
            p.followers.insert(
                conn,
                Follower {
                    name: from,
                    acked: from_seq,
                    streamed: from_seq,
                    progress_ms: now,
                    resent: BTreeMap::new(),
                    reseed,
                },
            );
        }
        self.stream_to(conn);
    }

    /// `replica_ack {seq}`: a backup has every event up to `seq`.
    pub(super) fn replica_acked(
        &mut self,
        conn: ConnId,
        seq: u64,
        missing: &[u64],
        seeded: Option<u64>,
    ) {
        let now = self.now;
        let quiet = self.resend_after();
        let Some(f) = self.primary_mut().and_then(|p| p.followers.get_mut(&conn)) else {
            return;
        };
        // A backup starting over from the snapshot: what it said of its old history is void.
        if f.reseed.is_some() && seeded != f.reseed {
            return;
        }
        // A backup can only have what was streamed to it.
        let seq = seq.saturating_add(1).min(f.streamed);
        if seq > f.acked {
            f.acked = seq;
            f.progress_ms = now;
        }
        // Selective repeat: the events the backup says it lacks, each at most once per
        // quiet spell (every later event it receives says the same).
        let (acked, streamed) = (f.acked, f.streamed);
        let again: Vec<u64> = missing
            .iter()
            .copied()
            .filter(|s| (acked..streamed).contains(s))
            .filter(|s| {
                f.resent
                    .get(s)
                    .is_none_or(|at| now.saturating_sub(*at) >= quiet)
            })
            .collect();
        for s in &again {
            f.resent.insert(*s, now);
        }
        f.resent.retain(|s, _| *s >= acked);
        for seq in again {
            if let Some(event) = self.history.shared(seq) {
                self.send(conn, Message::Replica { seq, event });
            }
        }
        self.stream_to(conn);
        self.release_held();
    }

    /// After a compaction: a backup that lacks events now compacted away starts over from the
    /// snapshot.
    pub(super) fn reseed_lagging_followers(&mut self) {
        let (first, end) = (self.history.first(), self.history.snapshot_end());
        let mut again = Vec::new();
        if let Some(p) = self.primary_mut() {
            for (conn, f) in p.followers.iter_mut() {
                if f.acked < end {
                    f.acked = first;
                    f.streamed = first;
                    f.reseed = Some(first);
                    f.resent.clear();
                    again.push(*conn);
                }
            }
        }
        for conn in again {
            warn!(
                conn,
                "a backup is behind the snapshot: it starts over from it"
            );
            self.stream_to(conn);
        }
    }

    /// A follower's connection closed: it is no longer waited for.
    pub(super) fn follower_gone(&mut self, conn: ConnId) {
        let Some(p) = self.primary_mut() else {
            return;
        };
        let Some(follower) = p.followers.remove(&conn) else {
            return;
        };
        let reason = p
            .dropping
            .take()
            .unwrap_or_else(|| "its link closed".to_string());
        let unheld = p.followers.is_empty() && !p.held.is_empty();
        self.emit(EventKind::BackupLost {
            backup: follower.name,
            reason,
        });
        if unheld {
            warn!("the backup is gone: replies no longer wait for it");
        }
        self.release_held();
    }

    /// Streams new events to every follower.
    pub(super) fn stream_to_followers(&mut self) {
        let conns: Vec<ConnId> = self
            .primary()
            .map(|p| p.followers.keys().copied().collect())
            .unwrap_or_default();
        for conn in conns {
            self.stream_to(conn);
        }
    }

    /// Sends a follower the events it has not been sent, keeping at most [`REPLICA_WINDOW`]
    /// unacknowledged: a backup catching up on a long history, or a burst of events (a submit
    /// of 100,000 jobs), never overflows its connection's queue.
    fn stream_to(&mut self, conn: ConnId) {
        let len = self.history_len();
        let Some(f) = self.primary_mut().and_then(|p| p.followers.get_mut(&conn)) else {
            return;
        };
        let next = f.streamed;
        let until = f.acked.saturating_add(REPLICA_WINDOW).min(len);
        f.streamed = until.max(next);
        for seq in next..until {
            if let Some(event) = self.history.shared(seq) {
                self.send(conn, Message::Replica { seq, event });
            }
        }
    }

    /// Sends a subscriber every durable event so far, in parts of at most [`HISTORY_PART`]
    /// bytes of JSON (one event always fits a part: an event is smaller than a line).
    pub(super) fn send_history(&mut self, conn: ConnId) {
        let mut part = Vec::new();
        let mut bytes = 0;
        let mut parts = Vec::new();
        for event in self.history.iter() {
            let size = serde_json::to_vec(event).map_or(0, |v| v.len()) + 1;
            if bytes + size > HISTORY_PART && !part.is_empty() {
                parts.push(std::mem::take(&mut part));
                bytes = 0;
            }
            bytes += size;
            part.push(event.clone());
        }
        parts.push(part);
        let last = parts.len() - 1;
        for (i, events) in parts.into_iter().enumerate() {
            self.send(
                conn,
                Message::History {
                    events,
                    done: i == last,
                },
            );
        }
    }

    /// A primary's tick: masters that do not follow hear of it again, a backup too slow to
    /// acknowledge is dropped, and backups and workers are pinged.
    pub(super) fn tick_replication(&mut self) {
        let now = self.now;
        let timeout = self.timeout_ms();
        let Some(p) = self.primary_mut() else {
            return;
        };
        // Masters that do not follow this primary hear of it again now and then: one that was
        // away (paused, cut off) learns the term and steps down or follows.
        let announce = now >= p.next_announce;
        if announce {
            p.next_announce = now + timeout;
            self.announce_victory();
        }
        self.drop_silent_backup();
        self.resend_unacknowledged();
        self.ping_followers_and_workers();
    }

    /// How long a follower may acknowledge nothing new, while events are on their way to it,
    /// before they are all sent again: a quarter of a heartbeat interval (at least 20 ms).
    fn resend_after(&self) -> Millis {
        (self.config.heartbeat.interval.as_millis() as u64 / 4).max(20)
    }

    /// Go-back-N: a follower that has acknowledged nothing new for [`Self::resend_after`]
    /// while events are on their way to it is sent them all again, from the first it lacks
    /// (some were lost, or their acknowledgements were).
    fn resend_unacknowledged(&mut self) {
        let now = self.now;
        let after = self.resend_after();
        let Some(p) = self.primary_mut() else {
            return;
        };
        let mut again = Vec::new();
        for (conn, f) in p.followers.iter_mut() {
            if f.streamed > f.acked && now.saturating_sub(f.progress_ms) >= after {
                f.streamed = f.acked;
                f.progress_ms = now;
                again.push(*conn);
            }
        }
        for conn in again {
            debug!(
                conn,
                "no acknowledgement from the backup: its events are sent again"
            );
            self.stream_to(conn);
        }
    }

    /// A backup that does not acknowledge within the heartbeat timeout is dropped, so a dead
    /// or paused backup cannot stall the cluster (the replies then go out unreplicated). But
    /// only while the workers still hear this primary: one cut off from everyone must not
    /// promise what it cannot replicate, since a backup may take over meanwhile.
    fn drop_silent_backup(&mut self) {
        let now = self.now;
        let timeout = self.timeout_ms();
        let Some(p) = self.primary() else {
            return;
        };
        if p.held.is_empty() || now.saturating_sub(p.held_since) <= timeout {
            if let Some(p) = self.primary_mut() {
                p.holding_alone = false;
            }
            return;
        }
        let silent = now.saturating_sub(p.held_since);
        let followers: Vec<ConnId> = p.followers.keys().copied().collect();
        match self.workers_still_here() {
            Ok(()) => {
                warn!("the backup has not acknowledged for too long: dropping it");
                for conn in followers {
                    if let Some(p) = self.primary_mut() {
                        p.dropping = Some(format!("no acknowledgement for {silent}ms: dropped"));
                    }
                    self.close(conn);
                }
            }
            Err(why) => {
                if let Some(p) = self.primary_mut()
                    && !p.holding_alone
                {
                    warn!("the backup and the workers are silent ({why}): holding every reply");
                    p.holding_alone = true;
                }
            }
        }
    }

    /// Backups learn the primary is alive from these, even when nothing happens; so do
    /// workers, which move on when their primary falls silent. In name order, so every run
    /// (and every transcript) is the same.
    fn ping_followers_and_workers(&mut self) {
        let now = self.now;
        let interval = (self.config.heartbeat.interval.as_millis() as u64 / 2).max(1);
        let Some(p) = self.primary_mut() else {
            return;
        };
        if now.saturating_sub(p.last_ping) < interval {
            return;
        }
        p.last_ping = now;
        let followers: Vec<ConnId> = p.followers.keys().copied().collect();
        let workers: Vec<ConnId> = self
            .state
            .workers
            .keys()
            .filter_map(|name| self.worker_conns.get(name).copied())
            .collect();
        for conn in followers.into_iter().chain(workers) {
            self.send(conn, Message::Ping);
        }
    }

    /// With a sync backup, replies leave only once the backup has every event made so far:
    /// a client told `accepted`, or a worker told `assign`, can rely on the backup knowing it.
    pub(super) fn hold_for_backup(&mut self) {
        if !self.config.sync {
            return;
        }
        let needed = self.history.len();
        let now = self.now;
        let Standing::Primary(p) = &mut self.standing else {
            return;
        };
        if p.followers.is_empty() || (needed <= p.min_acked() && p.held.is_empty()) {
            return;
        }
        if p.held.is_empty() {
            p.held_since = now;
        }
        let mut keep = Vec::new();
        let masters: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.trusted, Some(super::session::Trusted::Master(_))))
            .map(|(id, _)| *id)
            .collect();
        for output in std::mem::take(&mut self.out) {
            match &output {
                // Only replies wait: events, replication, elections, the handshake and pings
                // (which promise nothing, and keep workers from thinking this primary dead) do
                // not. A primary cut off from its backup must still let another master prove
                // itself and say it won.
                Output::Event(_)
                | Output::ToPrimary(_)
                | Output::ToMaster { .. }
                | Output::Follow { .. } => keep.push(output),
                Output::Send(_, envelope)
                    if matches!(
                        envelope.message,
                        Message::Ping | Message::Challenge { .. } | Message::Welcome { .. }
                    ) =>
                {
                    keep.push(output)
                }
                Output::Send(conn, _)
                    if p.followers.contains_key(conn) || masters.contains(conn) =>
                {
                    keep.push(output)
                }
                _ => p.held.push_back((needed, output)),
            }
        }
        self.out = keep;
    }

    /// Lets out the held replies whose events the backup now has (all of them, with no backup).
    fn release_held(&mut self) {
        let now = self.now;
        let Standing::Primary(p) = &mut self.standing else {
            return;
        };
        let acked = p.min_acked();
        while p.held.front().is_some_and(|(needed, _)| *needed <= acked) {
            if let Some((_, output)) = p.held.pop_front() {
                self.out.push(output);
            }
        }
        p.held_since = now;
    }

    /// A backup applies what its primary sends: the primary's events, in order.
    pub(super) fn apply_replica(&mut self, envelope: Envelope) {
        let now = self.now;
        // An old primary that still talks after a takeover: its orders are of the past.
        let Some(b) = self.backup_mut() else {
            return;
        };
        b.last_primary_heard = now;
        b.leader_closed = false;
        if b.election.take().is_some() {
            let primary = b.leader.clone();
            info!("the primary is heard again: election abandoned");
            self.emit(EventKind::ElectionUpdate {
                candidate: self.config.name.clone(),
                reason: "the primary is heard again: election abandoned".to_string(),
                primary,
            });
        }
        // The primary proved itself; a stamp too far ahead is not merged (its content is).
        let _ = self.clock.observe(envelope.clock);
        if self.clock_asked(&envelope.message) {
            return;
        }
        if let Message::Replica { seq, event } = envelope.message {
            // The primary's snapshot: this backup was behind it, and starts over from it.
            if matches!(event.kind, EventKind::Snapshot { .. }) && self.history.seeded != Some(seq)
            {
                self.start_over_from(seq);
            }
            let have = self.history_len();
            if seq > have && seq < have.saturating_add(REPLICA_WINDOW) {
                // After a gap: kept until the missing ones come.
                if let Some(b) = self.backup_mut() {
                    b.early.insert(seq, event);
                }
            } else if seq == have {
                self.apply_in_order(event);
            }
            // Say how far this backup has them in order, and which later ones it lacks (an
            // event it already had was sent again because this acknowledgement was lost).
            let have = self.history_len();
            let missing: Vec<u64> = match self.backup().and_then(|b| b.early.keys().last()) {
                Some(&last) => (have..last)
                    .filter(|s| self.backup().is_some_and(|b| !b.early.contains_key(s)))
                    .take(64)
                    .collect(),
                None => Vec::new(),
            };
            if have > 0 {
                let ack = Message::ReplicaAck {
                    seq: have - 1,
                    missing,
                    seeded: self.history.seeded,
                };
                self.out.push(Output::ToPrimary(ack));
            }
        }
    }

    /// Applies the next event of the primary's history, and the ones kept after it.
    fn apply_in_order(&mut self, event: Arc<ClusterEvent>) {
        let mut next = Some(event);
        while let Some(event) = next {
            self.state.apply(&event);
            self.clock.advance_to(event.clock);
            self.history.push(event.clone());
            self.out.push(Output::Event(event));
            let have = self.history_len();
            next = self.backup_mut().and_then(|b| b.early.remove(&have));
        }
    }

    /// A backup behind its primary's snapshot forgets everything and numbers its history from
    /// the snapshot's seq (its journal too); the snapshot's header, applied next, replaces the
    /// state.
    fn start_over_from(&mut self, seq: u64) {
        info!(seq, "behind the primary's snapshot: starting over from it");
        self.history.restart_at(seq);
        self.history.seeded = Some(seq);
        self.state = ClusterState::new();
        if let Some(b) = self.backup_mut() {
            b.early.clear();
        }
        self.out
            .push(Output::Journal(JournalOp::Restart { at: seq }));
    }

    /// Follows `primary`. A master that followed another (or served) forgets its state and
    /// starts over from the first event: its history may hold events the new primary never had.
    pub(super) fn follow(&mut self, primary: &str) {
        let now = self.now;
        let same = self
            .backup()
            .is_some_and(|b| b.leader.as_deref() == Some(primary));
        let reset = !same || self.history_len() == 0;
        if reset {
            self.state = ClusterState::new();
            self.history.restart_at(0);
            self.history.seeded = None;
            self.liveness.clear();
            self.worker_conns.clear();
        }
        self.config.primary = Some(primary.to_string());
        if let Some(b) = self.backup_mut() {
            b.leader = Some(primary.to_string());
            b.link_up = true;
            b.leader_closed = false;
            b.last_primary_heard = now;
            b.election = None;
            // A new link: a new stream.
            b.early.clear();
        }
        self.out.push(Output::Follow {
            primary: primary.to_string(),
            reset,
        });
    }
}
