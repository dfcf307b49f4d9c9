//! A backup's side of failover: noticing the primary is gone, the Bully election among the
//! masters, taking over in a new term (term fencing: the higher term wins), and an old primary
//! stepping down when it hears of a newer one.
//!
//! A closed link is proof that the primary died. Silence is not — a cut link is silent too — so
//! a backup that only hears nothing takes over only once enough workers have come to it having
//! lost the primary as well (its *witnesses*); until then it holds their registrations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tracing::{debug, info, warn};

use super::replication::Primary;
use super::{ConnId, Coordinator, Output, Standing};
use crate::clock::Millis;
use crate::cluster::event::EventKind;
use crate::protocol::Dialect;
use crate::protocol::message::{Envelope, Health, JobId, Message};

/// What a backup keeps.
#[derive(Debug)]
pub(super) struct Backup {
    /// The master it follows, if it knows one.
    pub(super) leader: Option<String>,
    /// Whether its link to the leader is up.
    pub(super) link_up: bool,
    /// The link to the leader closed — it died or left — rather than fell silent.
    pub(super) leader_closed: bool,
    /// When the leader was last heard from.
    pub(super) last_primary_heard: Millis,
    /// A Bully election this master is running, if any.
    pub(super) election: Option<Election>,
    /// Workers that came here having lost the primary, their registrations held until this
    /// master serves (or gives up on them).
    pub(super) pending: BTreeMap<ConnId, PendingWorker>,
    /// Workers that lost the primary too, and when they came: the witnesses a master needs
    /// before it takes over from a primary that is only silent.
    witnesses: BTreeMap<String, Millis>,
    /// Events of the primary's stream that came after a gap, kept until the gap fills.
    pub(super) early: BTreeMap<u64, std::sync::Arc<crate::cluster::event::ClusterEvent>>,
}

impl Backup {
    /// A backup following `leader` (if any), last heard from at `now`.
    pub(super) fn following(leader: Option<String>, now: Millis) -> Self {
        Backup {
            link_up: leader.is_some(),
            leader,
            leader_closed: false,
            last_primary_heard: now,
            election: None,
            pending: BTreeMap::new(),
            witnesses: BTreeMap::new(),
            early: BTreeMap::new(),
        }
    }
}

/// One round of a Bully election.
#[derive(Debug, Clone)]
pub(super) struct Election {
    /// When this round began.
    started: Millis,
    /// Why the election began, for the takeover's reason.
    cause: String,
    /// Masters that outrank this one, asked and not heard from yet.
    waiting: BTreeSet<String>,
    /// A master that outranks this one answered: wait for its victory.
    answered: Option<String>,
    /// The last thing said on the timeline, so a repeated round does not repeat it.
    said: Option<String>,
}

/// A worker's registration, held by a master that does not serve (yet).
#[derive(Debug, Clone)]
pub(super) struct PendingWorker {
    dialect: Dialect,
    name: String,
    slots: u32,
    running: Vec<JobId>,
    owner: Option<String>,
    at: Millis,
}

impl Coordinator {
    /// A backup serves nobody. A worker that lost the primary is held (a witness); a held
    /// worker's other messages wait with it; other workers and clients are sent to the primary.
    /// Returns whether the message was dealt with here.
    pub(super) fn backup_turns_away(
        &mut self,
        conn: ConnId,
        dialect: Dialect,
        env: &Envelope,
    ) -> bool {
        let now = self.now;
        let Some(b) = self.backup_mut() else {
            return false;
        };
        if let Message::Register {
            slots,
            running,
            owner,
        } = &env.message
            && !env.from.is_empty()
        {
            info!(worker = %env.from, "a worker lost the primary and came here: holding it");
            b.witnesses.insert(env.from.to_string(), now);
            b.pending.insert(
                conn,
                PendingWorker {
                    dialect,
                    name: env.from.to_string(),
                    slots: *slots,
                    running: running.clone(),
                    owner: owner.clone(),
                    at: now,
                },
            );
            self.advance_election();
            return true;
        }
        // It is told where to go if this master does not take over.
        if b.pending.contains_key(&conn) {
            return true;
        }
        let for_the_primary = matches!(
            env.message,
            Message::Register { .. }
                | Message::Submit { .. }
                | Message::Heartbeat { .. }
                | Message::Follow { .. }
                | Message::JobDone { .. }
                | Message::JobFailed { .. }
                | Message::Started { .. }
                | Message::Progress { .. }
        );
        if !for_the_primary {
            return false;
        }
        self.send(
            conn,
            Message::NotPrimary {
                primary: self.config.primary.clone(),
            },
        );
        if matches!(
            env.message,
            Message::Register { .. } | Message::Follow { .. }
        ) {
            self.close(conn);
        }
        true
    }

    /// `election`: a lower-ranked master asks whether this one is alive. A primary says it is
    /// the primary; a backup answers and, if it has lost the primary too, runs its own round.
    pub(super) fn election_asked(&mut self, conn: ConnId) {
        if self.is_serving() {
            self.send(conn, Message::Victory);
            return;
        }
        self.send(conn, Message::Answer);
        let idle = self.backup().is_some_and(|b| b.election.is_none());
        if idle && let Some(cause) = self.leader_lost() {
            self.start_election(cause);
        }
    }

    /// A backup's link to its primary closed. A new round even if one runs: what the masters
    /// above said before the link closed (a cut healing, say) is out of date.
    pub(super) fn primary_lost(&mut self) {
        let Some(b) = self.backup_mut() else {
            return;
        };
        b.link_up = false;
        b.leader_closed = true;
        self.start_election("the primary's connection closed".to_string());
    }

    /// A backup's tick: held workers may give up, and a lost primary starts (or advances) an
    /// election.
    pub(super) fn tick_election(&mut self) {
        self.expire_pending();
        if self.backup().is_some_and(|b| b.election.is_some()) {
            self.advance_election();
        } else if let Some(cause) = self.leader_lost() {
            self.start_election(cause);
        }
    }

    /// How long a master waits for the masters above it to answer: two heartbeats, within the
    /// timeout. A dead master's link closes at once, so only a silent one costs this long.
    fn answer_wait(&self) -> Duration {
        (self.config.heartbeat.interval * 2)
            .clamp(Duration::from_millis(50), self.config.heartbeat.timeout)
    }

    /// Why the primary counts as lost, if it does: its link closed, or it was silent too long.
    fn leader_lost(&self) -> Option<String> {
        let b = self.backup()?;
        if b.leader_closed {
            return Some("the primary's connection closed".to_string());
        }
        let silent = self.now.saturating_sub(b.last_primary_heard);
        (silent > self.timeout_ms()).then(|| format!("the primary was silent for {silent}ms"))
    }

    /// Starts a round of the Bully election: every master that outranks this one is asked
    /// whether it is alive.
    fn start_election(&mut self, cause: String) {
        let higher: BTreeSet<String> = self
            .config
            .peers
            .iter()
            .filter(|p| p.rank > self.config.rank)
            .map(|p| p.name.clone())
            .collect();
        let Some(b) = self.backup_mut() else {
            return;
        };
        let previous = b.election.take();
        if previous.is_none() {
            info!(%cause, asks = higher.len(), "starting an election");
            self.emit(EventKind::ElectionStarted {
                candidate: self.config.name.clone(),
                reason: cause.clone(),
            });
        }
        let said = previous.and_then(|e| e.said);
        let wait = self.answer_wait();
        for master in &higher {
            let envelope = self.envelope(Message::Election);
            self.out.push(Output::ToMaster {
                master: master.clone(),
                envelope,
                wait,
            });
        }
        let started = self.now;
        if let Some(b) = self.backup_mut() {
            b.election = Some(Election {
                started,
                cause,
                waiting: higher,
                answered: None,
                said,
            });
        }
        self.advance_election();
    }

    /// Decides what a running election does next.
    fn advance_election(&mut self) {
        let now = self.now;
        let wait = self.answer_wait().as_millis() as u64;
        let timeout = self.timeout_ms();
        let Some(e) = self.backup_mut().and_then(|b| b.election.as_mut()) else {
            return;
        };
        let age = now.saturating_sub(e.started);
        if !e.waiting.is_empty() {
            if age <= wait {
                return;
            }
            e.waiting.clear();
        }
        let cause = e.cause.clone();
        if let Some(higher) = e.answered.clone() {
            // A master above is alive: it runs its own election and announces its victory. If
            // it does not, in time, the round starts over.
            self.narrate(format!(
                "{higher} outranks it and is alive: waiting for its victory"
            ));
            if age > timeout + wait {
                self.start_election(cause);
            }
            return;
        }
        // No master above is alive: this one is the highest. A closed link is proof enough that
        // the primary is gone; silence is not (a cut link is silent too), so the workers must
        // have lost it as well.
        match self.witness_count() {
            Ok(evidence) => {
                let reason = match evidence {
                    Some(evidence) => format!("{cause}; {evidence}"),
                    None => cause,
                };
                self.take_over(reason);
            }
            Err(why) => {
                self.narrate(format!("not taking over: {why}"));
                if age > timeout {
                    self.start_election(cause);
                }
            }
        }
    }

    /// Whether the highest master alive may take over: `Ok` with what convinced it, or `Err`
    /// with why not.
    fn witness_count(&self) -> Result<Option<String>, String> {
        let Some(b) = self.backup() else {
            return Ok(None);
        };
        if b.leader_closed {
            return Ok(None);
        }
        let alive = |w: &&super::WorkerRecord| w.health != Health::Dead;
        let live = self.state.workers.values().filter(alive).count();
        let lost = self
            .state
            .workers
            .iter()
            .filter(|(name, w)| alive(w) && b.witnesses.contains_key(*name))
            .count();
        if live == 0 {
            return Ok(Some("no worker to ask".to_string()));
        }
        let s = if live == 1 { "" } else { "s" };
        if lost * 2 >= live && lost > 0 {
            Ok(Some(format!("{lost} of {live} worker{s} lost it too")))
        } else {
            Err(format!(
                "the primary is silent here, but {lost} of {live} worker{s} lost it (a partition?)"
            ))
        }
    }

    /// Says how the election stands on the timeline, once per change.
    fn narrate(&mut self, text: String) {
        let Some(e) = self.backup_mut().and_then(|b| b.election.as_mut()) else {
            return;
        };
        if e.said.as_deref() == Some(text.as_str()) {
            return;
        }
        e.said = Some(text.clone());
        info!("election: {text}");
        self.emit(EventKind::ElectionUpdate {
            candidate: self.config.name.clone(),
            reason: text,
            primary: None,
        });
    }

    /// Another master replied to what this one sent it.
    pub(super) fn master_replied(&mut self, master: String, reply: Option<Envelope>) {
        if self.config.is_time_peer(&master) {
            if let Some(env) = &reply {
                let _ = self.clock.observe(env.clock);
            }
            self.chat_clock_read(&master, reply);
            return;
        }
        if let Some(cluster) = self.config.cluster_of(&master).map(str::to_string) {
            if let Some(env) = &reply {
                let _ = self.clock.observe(env.clock);
            }
            self.cluster_replied(&cluster, reply);
            return;
        }
        let reply = match reply {
            Some(envelope) => {
                let _ = self.clock.observe(envelope.clock);
                Some((envelope.term, envelope.message))
            }
            None => None,
        };
        if let Some((term, Message::Victory)) = reply {
            self.victory_from(&master, term);
            return;
        }
        if let Some(e) = self.backup_mut().and_then(|b| b.election.as_mut()) {
            e.waiting.remove(&master);
            if let Some((_, Message::Answer)) = reply {
                e.answered = Some(master);
            }
            self.advance_election();
        }
    }

    /// `master` says it is the primary in `term`.
    pub(super) fn victory_from(&mut self, master: &str, term: Option<u64>) {
        let Some(rank) = self
            .config
            .peers
            .iter()
            .find(|p| p.name == master)
            .map(|p| p.rank)
        else {
            warn!(%master, "a victory from a master this one does not know: ignored");
            return;
        };
        let term = term.unwrap_or(0);
        // A master can only have won a term a round of elections above the highest this one
        // knows: a term from further up (or none) is not one it can justify.
        let masters = self.config.peers.len() as u64 + 1;
        let justified = self.term().saturating_add(2 * masters);
        if term == 0 || term > justified {
            warn!(%master, term, justified, "a victory in a term no election could reach: ignored");
            return;
        }
        if self.is_serving() {
            self.rival_primary(master, term, rank);
            return;
        }
        if term < self.term() {
            debug!(%master, term, "a victory from an older term: ignored");
            return;
        }
        // Terms only go up, even while this master starts over from nothing.
        self.config.term = self.config.term.max(term);
        let now = self.now;
        let Some(b) = self.backup_mut() else {
            return;
        };
        let following = b.leader.as_deref() == Some(master);
        let electing = b.election.is_some();
        if following && b.link_up {
            // The primary it follows, alive. If this master had been hearing nothing on a link
            // that is up, the primary may not know the link is there (its `follow` was lost on
            // the way): the link starts over, and says `follow` again.
            b.last_primary_heard = now;
            b.leader_closed = false;
            b.election = None;
            if electing {
                self.following_said(master, term);
                self.follow(master);
            }
            return;
        }
        info!(%master, term, "following the master that won");
        if electing || !following {
            self.following_said(master, term);
        }
        self.follow(master);
    }

    /// Says on the timeline that this master follows `master`.
    fn following_said(&mut self, master: &str, term: u64) {
        self.emit(EventKind::ElectionUpdate {
            candidate: self.config.name.clone(),
            reason: format!("{master} is primary in term {term}: following it"),
            primary: Some(master.to_string()),
        });
    }

    /// Two primaries: the higher term wins, then the higher rank. The loser steps down; the
    /// winner tells the other it won.
    fn rival_primary(&mut self, master: &str, term: u64, rank: u32) {
        if (term, rank) > (self.term(), self.config.rank) {
            warn!(%master, term, "another master is primary in a higher term: stepping down");
            self.emit(EventKind::ElectionUpdate {
                candidate: self.config.name.clone(),
                reason: format!("{master} is primary in term {term}: stepping down"),
                primary: Some(master.to_string()),
            });
            // The term it lost to is remembered: the next one it may win is above it.
            self.config.term = self.config.term.max(term);
            self.step_down(master);
        } else {
            let envelope = self.envelope(Message::Victory);
            let wait = self.answer_wait();
            self.out.push(Output::ToMaster {
                master: master.to_string(),
                envelope,
                wait,
            });
        }
    }

    /// The term a takeover by this master is in: the first above every term it has seen that
    /// belongs to it. Terms are dealt out among the masters by rank — with M masters, term t
    /// belongs to the master of rank r when t ≡ M − r + 1 (mod M): the first primary (rank M)
    /// has term 1, the next-ranked master term 2 … — so two masters can never take over in the
    /// same term, whatever the network loses or delays.
    pub(super) fn next_term(&self) -> u64 {
        let masters = self.config.peers.len() as u64 + 1;
        let rank = u64::from(self.config.rank) % masters;
        let own = (masters - rank + 1) % masters;
        let above = self.term().saturating_add(1);
        above + (own + masters - above % masters) % masters
    }

    /// Whether this primary still has its workers: at least half of those connected heard
    /// within the timeout. A cluster that never had a worker has nobody to ask.
    pub(super) fn workers_still_here(&self) -> Result<(), String> {
        let timeout = self.timeout_ms();
        let connected = self.worker_conns.len();
        let heard = self
            .worker_conns
            .keys()
            .filter(|name| {
                self.liveness
                    .get(*name)
                    .is_some_and(|l| self.now.saturating_sub(l.last_heard) <= timeout)
            })
            .count();
        if self.state.workers.is_empty() || (heard > 0 && heard * 2 >= connected) {
            Ok(())
        } else {
            Err(format!("{heard} of {connected} workers heard from"))
        }
    }

    /// Tells every master that does not follow this primary yet that it is the primary.
    pub(super) fn announce_victory(&mut self) {
        let following: BTreeSet<&String> = self
            .primary()
            .map(|p| p.followers.values().map(|f| &f.name).collect())
            .unwrap_or_default();
        let others: Vec<String> = self
            .config
            .peers
            .iter()
            .filter(|p| !following.contains(&p.name))
            .map(|p| p.name.clone())
            .collect();
        let wait = self.answer_wait();
        for master in others {
            let envelope = self.envelope(Message::Victory);
            self.out.push(Output::ToMaster {
                master,
                envelope,
                wait,
            });
        }
    }

    /// Held workers that waited a whole timeout are sent away: this master is not taking over,
    /// so they try the next one. Old witnesses are forgotten.
    fn expire_pending(&mut self) {
        let timeout = self.timeout_ms();
        let now = self.now;
        let Some(b) = self.backup_mut() else {
            return;
        };
        b.witnesses
            .retain(|_, at| now.saturating_sub(*at) <= 3 * timeout);
        let expired: Vec<ConnId> = b
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.at) > timeout)
            .map(|(c, _)| *c)
            .collect();
        let leader = b.leader.clone();
        for conn in expired {
            self.send(
                conn,
                Message::NotPrimary {
                    primary: leader.clone(),
                },
            );
            self.close(conn);
        }
    }

    /// A backup becomes the primary, in a new term. Workers that were alive get one timeout
    /// to come over, with the jobs they run, before those jobs are requeued.
    fn take_over(&mut self, reason: String) {
        if !self.config.failover {
            warn!(%reason, "the primary is gone, but failover is off: not taking over");
            return;
        }
        // The other masters follow; an old primary that is only paused or cut off hears this
        // when it can (it is said again every timeout until every master follows).
        let primary = Primary::announcing_at(self.now + self.timeout_ms());
        // What the old primary knew of loans was its own; its borrowed workers went home.
        self.loans = Default::default();
        let Standing::Backup(backup) =
            std::mem::replace(&mut self.standing, Standing::Primary(primary))
        else {
            return;
        };
        self.config.primary = Some(self.config.name.clone());
        let term = self.next_term();
        info!(term, %reason, "taking over as primary");
        self.emit(EventKind::Takeover {
            coordinator: self.config.name.clone(),
            term,
            reason,
        });
        self.announce_victory();
        self.grace_for_known_workers();
        // The workers that came here while this master decided.
        for (conn, p) in backup.pending {
            self.register(conn, p.dialect, p.name, p.slots, Some(p.running), p.owner);
        }
    }

    /// An old primary stops serving: its workers and clients are sent away (they find the new
    /// primary), and it follows the new primary as a backup, from its first event. Subscribers
    /// stay: they watch every master, serving or not.
    fn step_down(&mut self, primary: &str) {
        self.standing = Standing::Backup(Backup::following(None, self.now));
        let conns: Vec<ConnId> = self
            .conns
            .keys()
            .filter(|c| !self.subscribers.contains(c))
            .copied()
            .collect();
        for conn in conns {
            self.send(
                conn,
                Message::NotPrimary {
                    primary: Some(primary.to_string()),
                },
            );
            self.close(conn);
        }
        self.follow(primary);
    }
}
