//! Clusters lending each other idle workers (`policy lending`), between the primaries of two
//! clusters, and the heartbeats with which those primaries watch each other.
//!
//! The seven steps, as a student traces them on the space-time diagram:
//!
//! | step | from → to | message | here |
//! | --- | --- | --- | --- |
//! | 1 | borrower → owner | `worker_request` (its address) | [`Coordinator::ask_for_workers`] |
//! | 2 | owner → borrower | `available` (workers) / `unavailable` | [`Coordinator::worker_request`] |
//! | 3 | owner → worker | `redirect` (the borrower's address) | [`Coordinator::worker_request`] |
//! | — | worker → borrower | `register` with `owner` | [`Coordinator::borrowed_registers`] |
//! | 4 | borrower → owner | `command_release` (workers) | [`Coordinator::release_idle`] |
//! | 5 | owner → borrower | `release_ack` | [`Coordinator::command_release`] |
//! | 6 | borrower → worker | `return` (the owner's address) | [`Coordinator::release_acked`] |
//! | 7 | owner → borrower | `release_completed` | [`Coordinator::home_again`] |
//!
//! Faults, each answered without losing an acknowledged job: a borrower that dies (or is cut
//! off) loses its connections to the lent workers, which go home by themselves and end their
//! loans there; an owner that dies leaves its lent workers with the borrower, which releases
//! them only once the owner answers again; a lent worker that dies is declared dead by the
//! borrower like any worker (its jobs requeued) and reported to the owner as `lost`. An owner
//! lends only workers that are idle and at home, marks each lent before it says so, and lends
//! nothing while it borrows or is itself past its threshold, so crossing requests lend no
//! worker twice and wait for nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::{info, warn};

use super::{Coordinator, Output};
use crate::clock::Millis;
use crate::cluster::event::EventKind;
use crate::protocol::Dialect;
use crate::protocol::message::JobId;
use crate::protocol::message::{Envelope, Health, Message};
use crate::role::ConnId;

/// How long a lent worker may take to arrive before the borrower stops expecting it.
const ARRIVAL_MS: Millis = 10_000;

/// What a primary keeps about lending (not replicated: a new primary starts over, and the
/// durable part — who is lent where — is in the workers' records).
#[derive(Debug, Default)]
pub(super) struct Loans {
    /// Per other cluster: how its primary answers our heartbeats.
    peers: BTreeMap<String, PeerWatch>,
    /// When the last heartbeats were sent.
    last_beat: Millis,
    /// Borrower: a request in flight, to which cluster, since when.
    asking: Option<(String, Millis)>,
    /// Borrower: when to ask again (after a refusal, or after workers arrived).
    quiet_until: Millis,
    /// Borrower: workers announced by an owner (`available`) and not arrived yet.
    expected: BTreeMap<String, (String, Millis)>,
    /// Borrower: registers of workers that arrived before their owner's `available` did
    /// (the worker's path can be the faster one), held until the owner answers.
    held: Vec<HeldRegister>,
    /// Borrower: workers whose release was asked of their owner, since when.
    releasing: BTreeMap<String, Millis>,
    /// Per worker: since when it has been idle (for lending, and for giving back).
    idle_since: BTreeMap<String, Millis>,
    /// The first tick as primary has passed (borrowed workers from before were let go).
    started: bool,
}

/// A worker's `register` naming an owner we asked and that has not answered yet.
#[derive(Debug)]
pub(super) struct HeldRegister {
    pub conn: ConnId,
    pub dialect: Dialect,
    pub name: String,
    pub slots: u32,
    pub running: Option<Vec<JobId>>,
    pub owner: String,
}

/// What becomes of the register of a worker that says it is lent here.
pub(super) enum Arrival {
    /// Its owner announced it (or it is borrowed already): register it.
    Expected,
    /// Its owner has not answered our request yet: held until it does.
    Early,
    /// Nobody lent it here: sent home.
    Refused,
}

/// Another cluster's primary, as our heartbeats find it.
#[derive(Debug, Clone)]
struct PeerWatch {
    last_heard: Millis,
    health: Health,
}

impl Coordinator {
    /// Sends `message` to every master of cluster `cluster` (only its primary acts on it).
    fn send_to_cluster(&mut self, cluster: &str, message: Message, wait: Duration) {
        let masters: Vec<String> = self
            .config
            .clusters
            .iter()
            .filter(|c| c.name == cluster)
            .flat_map(|c| c.masters.iter().map(|m| m.name.clone()))
            .collect();
        for master in masters {
            let envelope = self.envelope(message.clone());
            self.out.push(Output::ToMaster {
                master,
                envelope,
                wait,
            });
        }
    }

    fn peer_health(&self, cluster: &str) -> Health {
        self.loans
            .peers
            .get(cluster)
            .map_or(Health::Healthy, |p| p.health)
    }

    /// On every tick of a primary: heartbeats to the other clusters, verdicts on their
    /// silence, idle times, asking for workers, giving back idle ones.
    pub(super) fn tick_lending(&mut self) {
        if self.config.clusters.is_empty() || !self.is_serving() {
            return;
        }
        if !std::mem::replace(&mut self.loans.started, true) {
            self.let_go_of_stale_loans();
        }
        let interval = self.config.heartbeat.interval.as_millis() as Millis;
        if self.now.saturating_sub(self.loans.last_beat) >= interval {
            self.loans.last_beat = self.now;
            let cluster = self.config.cluster.clone();
            let names: Vec<String> = self
                .config
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .collect();
            for peer in names {
                let now = self.now;
                self.loans.peers.entry(peer.clone()).or_insert(PeerWatch {
                    last_heard: now,
                    health: Health::Healthy,
                });
                self.send_to_cluster(
                    &peer,
                    Message::PeerHeartbeat {
                        cluster: cluster.clone(),
                    },
                    self.config.heartbeat.interval,
                );
            }
        }
        self.judge_peers();
        if self.config.lending.is_none() {
            return;
        }
        self.note_idle();
        let now = self.now;
        self.loans
            .expected
            .retain(|_, (_, since)| now.saturating_sub(*since) < ARRIVAL_MS);
        let wait = 4 * self.timeout_ms();
        self.loans
            .releasing
            .retain(|_, since| now.saturating_sub(*since) < wait);
        if let Some((gone, _)) = self
            .loans
            .asking
            .take_if(|(_, since)| now.saturating_sub(*since) >= wait)
        {
            self.settle_held(&gone);
        }
        self.ask_for_workers();
        self.release_idle();
    }

    /// A primary that starts (from its journal) or takes over: the workers it knows as
    /// borrowed were connected to the master that held the loans, lost it, and went home by
    /// their own rule. Their jobs go back to the queue and their records end here; their
    /// owners saw them come home, so nothing is reported lost.
    fn let_go_of_stale_loans(&mut self) {
        let stale: Vec<(String, String)> = self
            .state
            .workers
            .iter()
            .filter(|(name, _)| !self.worker_conns.contains_key(*name))
            .filter_map(|(name, w)| Some((name.clone(), w.owner.clone()?)))
            .collect();
        for (worker, owner) in stale {
            let running: Vec<_> = self.state.workers[&worker]
                .running
                .iter()
                .copied()
                .collect();
            for job in running {
                self.emit(EventKind::JobRequeued {
                    job,
                    worker: worker.clone(),
                    reason: format!("{worker} went home to {owner} when this primary restarted"),
                });
            }
            self.emit(EventKind::WorkerReleased {
                worker,
                to: owner,
                reason: "it went home when the borrower restarted".to_string(),
            });
        }
    }

    /// Suspect and dead verdicts on the other clusters' primaries, as for workers.
    fn judge_peers(&mut self) {
        let suspect_after = self.config.heartbeat.suspect_after.as_millis() as Millis;
        let timeout = self.timeout_ms();
        let verdicts: Vec<(String, Health, Millis)> = self
            .loans
            .peers
            .iter()
            .map(|(c, p)| (c.clone(), p.health, self.now.saturating_sub(p.last_heard)))
            .collect();
        for (cluster, health, silent) in verdicts {
            let next = if silent > timeout {
                Health::Dead
            } else if silent > suspect_after {
                Health::Suspect
            } else {
                Health::Healthy
            };
            if next == health || next == Health::Healthy {
                continue;
            }
            if let Some(p) = self.loans.peers.get_mut(&cluster) {
                p.health = next;
            }
            let kind = if next == Health::Dead {
                EventKind::PeerDead {
                    cluster,
                    reason: format!("no answer for {silent}ms"),
                }
            } else {
                EventKind::PeerSuspect {
                    cluster,
                    silent_ms: silent,
                }
            };
            self.emit(kind);
        }
    }

    /// Keeps, per connected worker, since when it has run nothing.
    fn note_idle(&mut self) {
        let now = self.now;
        let idle: Vec<String> = self
            .state
            .workers
            .iter()
            .filter(|(name, w)| w.running.is_empty() && self.worker_conns.contains_key(*name))
            .map(|(name, _)| name.clone())
            .collect();
        self.loans.idle_since.retain(|name, _| idle.contains(name));
        for name in idle {
            self.loans.idle_since.entry(name).or_insert(now);
        }
    }

    fn idle_for(&self, worker: &str) -> Millis {
        self.loans
            .idle_since
            .get(worker)
            .map_or(0, |since| self.now.saturating_sub(*since))
    }

    /// Ready jobs this primary cannot start now.
    fn backlog(&self) -> usize {
        self.state.queue.ready_len()
    }

    /// Step 1: past the threshold, ask the next live cluster for workers (one request at a
    /// time, none while lent workers are still on their way). A borrower still past it with
    /// fewer than it wants (an owner lends only workers idle long enough: another may be soon)
    /// asks again for the rest, never holding more than `max_lend`.
    fn ask_for_workers(&mut self) {
        let Some(policy) = self.config.lending else {
            return;
        };
        let backlog = self.backlog();
        let wanted = backlog
            .saturating_sub(policy.queue_threshold)
            .min(policy.max_lend.max(1));
        let borrowed = self.borrowed();
        if wanted <= borrowed
            || self.loans.asking.is_some()
            || !self.loans.expected.is_empty()
            || self.now < self.loans.quiet_until
            || self.lent_out() > 0
        {
            return;
        }
        let Some(address) = self.config.address.clone() else {
            return;
        };
        // The clusters in order, starting after the one asked last, skipping dead ones.
        let names: Vec<String> = self
            .config
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .filter(|c| self.peer_health(c) != Health::Dead)
            .collect();
        let Some(from) = names.first().cloned() else {
            return;
        };
        let want = (wanted - borrowed) as u32;
        self.loans.asking = Some((from.clone(), self.now));
        self.emit(EventKind::LoanRequested {
            from: from.clone(),
            want,
        });
        let cluster = self.config.cluster.clone();
        self.send_to_cluster(
            &from,
            Message::WorkerRequest {
                cluster,
                address,
                want,
            },
            Duration::from_millis(self.timeout_ms()),
        );
        // Another cluster next time.
        if let Some(i) = self.config.clusters.iter().position(|c| c.name == from) {
            let c = self.config.clusters.remove(i);
            self.config.clusters.push(c);
        }
    }

    /// Whether a request for workers to cluster `cluster` is in flight.
    fn asked(&self, cluster: &str) -> bool {
        self.loans
            .asking
            .as_ref()
            .is_some_and(|(a, _)| a == cluster)
    }

    /// How many of its own workers this cluster has lent out now.
    fn lent_out(&self) -> usize {
        self.state
            .workers
            .values()
            .filter(|w| w.lent_to.is_some())
            .count()
    }

    /// How many workers this cluster has borrowed now.
    fn borrowed(&self) -> usize {
        self.state
            .workers
            .values()
            .filter(|w| w.owner.is_some())
            .count()
    }

    /// Steps 2 and 3, at the owner: lends idle workers at home, up to `max_lend`, and sends
    /// each to the borrower. `from` is the borrower's primary.
    pub(super) fn worker_request(
        &mut self,
        conn: ConnId,
        from: &str,
        cluster: String,
        address: String,
        want: u32,
    ) {
        let mine = self.config.cluster.clone();
        let refuse = |reason: &str| Message::Unavailable {
            cluster: mine.clone(),
            reason: reason.to_string(),
        };
        let Some(policy) = self.config.lending.filter(|_| self.is_serving()) else {
            let reason = if self.is_serving() {
                "this cluster lends no workers (no policy lending)"
            } else {
                "not the primary"
            };
            self.send(conn, refuse(reason));
            return;
        };
        if self.borrowed() > 0 || self.backlog() > policy.queue_threshold {
            self.send(conn, refuse("busy itself"));
            return;
        }
        let room = policy.max_lend.saturating_sub(self.lent_out());
        let idle_before = policy.idle_before_lend.as_millis() as Millis;
        let lendable: Vec<String> = self
            .state
            .workers
            .iter()
            .filter(|(name, w)| {
                w.health == Health::Healthy
                    && w.lent_to.is_none()
                    && w.owner.is_none()
                    && !w.classic
                    && w.running.is_empty()
                    && self.worker_conns.contains_key(*name)
                    && self.idle_for(name) >= idle_before
            })
            .map(|(name, _)| name.clone())
            .take(room.min(want as usize))
            .collect();
        if lendable.is_empty() {
            let reason = if room == 0 {
                format!("{} workers lent already", self.lent_out())
            } else {
                "no worker idle long enough".to_string()
            };
            self.send(conn, refuse(&reason));
            return;
        }
        for worker in &lendable {
            info!(%worker, to = %cluster, "lending a worker");
            self.emit(EventKind::WorkerLent {
                worker: worker.clone(),
                to: cluster.clone(),
            });
            if let Some(&wconn) = self.worker_conns.get(worker) {
                self.send(
                    wconn,
                    Message::Redirect {
                        to: from.to_string(),
                        cluster: cluster.clone(),
                        address: address.clone(),
                    },
                );
            }
        }
        self.send(
            conn,
            Message::Available {
                cluster: mine,
                workers: lendable,
            },
        );
    }

    /// A lent worker connected to its owner leaves: no death, no jobs to move.
    pub(super) fn lent_worker_left(&self, worker: &str) -> bool {
        self.state
            .workers
            .get(worker)
            .is_some_and(|w| w.lent_to.is_some())
    }

    /// The register of a worker that names an owner: accepted only if that owner announced
    /// it (`available`); held while that owner has not answered our request (the worker may
    /// arrive first); otherwise it is sent home.
    pub(super) fn borrowed_registers(
        &mut self,
        conn: ConnId,
        worker: &str,
        owner: &str,
    ) -> Arrival {
        let expected = self
            .loans
            .expected
            .get(worker)
            .is_some_and(|(o, _)| o == owner);
        let known = self
            .state
            .workers
            .get(worker)
            .is_some_and(|w| w.owner.as_deref() == Some(owner));
        if expected || known {
            return Arrival::Expected;
        }
        if self.asked(owner)
            && self.loans.held.len() < crate::role::coordinator::MAX_LENT_AT_ONCE
            && self.loans.held.iter().all(|h| h.conn != conn)
        {
            return Arrival::Early;
        }
        warn!(%worker, %owner, "a worker says it is lent here, and it is not: sent home");
        self.send(
            conn,
            Message::Error {
                message: format!("{worker} is not lent to cluster {}", self.config.cluster),
            },
        );
        self.send_home(conn, owner);
        Arrival::Refused
    }

    /// Keeps a register that arrived before its owner's answer.
    pub(super) fn hold_register(&mut self, held: HeldRegister) {
        info!(worker = %held.name, owner = %held.owner, "a lent worker arrived before its owner's answer: held");
        self.loans.held.push(held);
    }

    /// Our request to cluster `owner` is answered (or given up): the registers held for it
    /// are taken up again — announced workers register, the others are sent home.
    fn settle_held(&mut self, owner: &str) {
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.loans.held)
            .into_iter()
            .partition(|h| h.owner == owner);
        self.loans.held = others;
        for h in mine {
            if self.conns.contains_key(&h.conn) {
                self.register(h.conn, h.dialect, h.name, h.slots, h.running, Some(h.owner));
            }
        }
    }

    /// After a lent worker registered: it is borrowed from now on.
    pub(super) fn borrowed_arrived(&mut self, worker: &str, owner: &str) {
        self.loans.expected.remove(worker);
        if self
            .state
            .workers
            .get(worker)
            .is_some_and(|w| w.owner.as_deref() != Some(owner))
        {
            self.emit(EventKind::WorkerBorrowed {
                worker: worker.to_string(),
                from: owner.to_string(),
            });
        }
    }

    /// Step 6's message to a worker on `conn`: home to cluster `owner`.
    fn send_home(&mut self, conn: ConnId, owner: &str) {
        let (to, address) = self
            .config
            .clusters
            .iter()
            .find(|c| c.name == owner)
            .and_then(|c| c.masters.first())
            .map_or((String::new(), String::new()), |m| {
                (m.name.clone(), m.address.clone())
            });
        self.send(
            conn,
            Message::Return {
                to,
                cluster: owner.to_string(),
                address,
            },
        );
    }

    /// Step 4, at the borrower: a borrowed worker idle for `return_after_idle` is released —
    /// once its owner answers (an owner that is dead gets its workers back when it is back).
    fn release_idle(&mut self) {
        let Some(policy) = self.config.lending else {
            return;
        };
        let after = policy.return_after_idle.as_millis() as Millis;
        let due: Vec<(String, String)> = self
            .state
            .workers
            .iter()
            .filter_map(|(name, w)| {
                let owner = w.owner.clone()?;
                (w.health == Health::Healthy
                    && w.running.is_empty()
                    && !self.loans.releasing.contains_key(name)
                    && self.idle_for(name) >= after
                    && self.backlog() == 0)
                    .then_some((name.clone(), owner))
            })
            .collect();
        let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (worker, owner) in due {
            if self.peer_health(&owner) == Health::Healthy {
                by_owner.entry(owner).or_default().push(worker);
            }
        }
        for (owner, workers) in by_owner {
            for w in &workers {
                self.loans.releasing.insert(w.clone(), self.now);
            }
            let cluster = self.config.cluster.clone();
            self.send_to_cluster(
                &owner,
                Message::CommandRelease {
                    cluster,
                    workers,
                    lost: Vec::new(),
                },
                Duration::from_millis(self.timeout_ms()),
            );
        }
    }

    /// A borrowed worker died here (its jobs requeued already): its record ends, and its
    /// owner is told it was lost.
    pub(super) fn borrowed_died(&mut self, worker: &str) {
        let Some(owner) = self.state.workers.get(worker).and_then(|w| w.owner.clone()) else {
            return;
        };
        self.loans.releasing.remove(worker);
        self.emit(EventKind::WorkerReleased {
            worker: worker.to_string(),
            to: owner.clone(),
            reason: "died here".to_string(),
        });
        let cluster = self.config.cluster.clone();
        self.send_to_cluster(
            &owner,
            Message::CommandRelease {
                cluster,
                workers: Vec::new(),
                lost: vec![worker.to_string()],
            },
            Duration::from_millis(self.timeout_ms()),
        );
    }

    /// Steps 4 and 5, at the owner: the borrower no longer needs these workers (they come home
    /// next); the lost ones died there.
    pub(super) fn command_release(
        &mut self,
        conn: ConnId,
        cluster: String,
        workers: Vec<String>,
        lost: Vec<String>,
    ) {
        let lent_there = |s: &Self, w: &str| {
            s.state.workers.get(w).and_then(|r| r.lent_to.as_deref()) == Some(&cluster)
        };
        let workers: Vec<String> = workers
            .into_iter()
            .filter(|w| lent_there(self, w))
            .collect();
        for worker in lost {
            if !lent_there(self, &worker) {
                continue;
            }
            self.emit(EventKind::LoanEnded {
                worker: worker.clone(),
                borrower: cluster.clone(),
                reason: format!("died while lent to {cluster}"),
            });
            self.declare_dead(&worker, format!("died while lent to {cluster}"));
        }
        self.release_ack(conn, workers);
    }

    /// Step 5's answer (and the borrower's to step 7): noted.
    pub(super) fn release_ack(&mut self, conn: ConnId, workers: Vec<String>) {
        let cluster = self.config.cluster.clone();
        self.send(conn, Message::ReleaseAck { cluster, workers });
    }

    /// Step 6, at the borrower: the owner acknowledged; the workers go home.
    fn release_acked(&mut self, owner: &str, workers: Vec<String>) {
        for worker in workers {
            if self.loans.releasing.remove(&worker).is_none() {
                continue;
            }
            let idle = self
                .state
                .workers
                .get(&worker)
                .is_some_and(|w| w.owner.as_deref() == Some(owner) && w.running.is_empty());
            if !idle {
                continue;
            }
            let Some(&conn) = self.worker_conns.get(&worker) else {
                continue;
            };
            self.send_home(conn, owner);
            self.emit(EventKind::WorkerReleased {
                worker: worker.clone(),
                to: owner.to_string(),
                reason: "idle".to_string(),
            });
            // It leaves on its own; its connection closing is no death.
            self.worker_conns.remove(&worker);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.peer = super::session::Peer::Unknown;
            }
        }
    }

    /// Step 7, at the owner: a lent worker registered at home again; its loan is over and the
    /// borrower is told.
    pub(super) fn home_again(&mut self, worker: &str) {
        let Some(borrower) = self
            .state
            .workers
            .get(worker)
            .and_then(|w| w.lent_to.clone())
        else {
            return;
        };
        self.emit(EventKind::LoanEnded {
            worker: worker.to_string(),
            borrower: borrower.clone(),
            reason: "back home".to_string(),
        });
        let cluster = self.config.cluster.clone();
        self.send_to_cluster(
            &borrower,
            Message::ReleaseCompleted {
                cluster,
                workers: vec![worker.to_string()],
            },
            Duration::from_millis(self.timeout_ms()),
        );
    }

    /// What another cluster's master answered to what this one sent it (`None`: no answer in
    /// time — the deadlines in [`Self::tick_lending`] take care of it).
    pub(super) fn cluster_replied(&mut self, cluster: &str, reply: Option<Envelope>) {
        let Some(env) = reply else {
            return;
        };
        match env.message {
            Message::PeerAlive { cluster: c } if c == cluster => {
                let now = self.now;
                let was = self.loans.peers.insert(
                    c.clone(),
                    PeerWatch {
                        last_heard: now,
                        health: Health::Healthy,
                    },
                );
                if was.is_some_and(|p| p.health != Health::Healthy) {
                    self.emit(EventKind::PeerAlive { cluster: c });
                }
            }
            // Only an answer to a request of ours makes workers expected here.
            Message::Available {
                cluster: c,
                workers,
            } if c == cluster && self.asked(&c) => {
                self.loans.asking = None;
                for w in workers
                    .into_iter()
                    .take(crate::role::coordinator::MAX_LENT_AT_ONCE)
                {
                    self.loans.expected.insert(w, (c.clone(), self.now));
                }
                self.settle_held(&c);
            }
            Message::Unavailable { cluster: c, reason } if c == cluster && self.asked(&c) => {
                self.loans.asking = None;
                self.loans.quiet_until =
                    self.now + self.config.heartbeat.interval.as_millis() as Millis;
                self.settle_held(&c);
                self.emit(EventKind::LoanRefused { from: c, reason });
            }
            Message::ReleaseAck {
                cluster: c,
                workers,
            } if c == cluster => {
                self.release_acked(&c, workers);
            }
            // A backup of that cluster, or an answer with nothing to act on.
            _ => {}
        }
    }
}
