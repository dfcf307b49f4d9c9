//! Connections: accepting them (and evicting idle ones when there are too many), the gate every
//! message passes (dialect, authentication, standing), hello/auth, login, and the questions
//! any client may ask (`status`, `jobs`, `workers`, `subscribe`).

use std::collections::BTreeSet;

use tracing::{debug, info, warn};

use super::{ConnId, Coordinator, DEFAULT_LIST_LIMIT, Job, Output};
use crate::clock::Millis;
use crate::protocol::Dialect;
use crate::protocol::handshake::{Challenger, Proven, key_for};
use crate::protocol::message::{Envelope, Health, JobId, JobState, Message, PeerRole, fit_result};
use crate::topology::UserRole;

/// What a connection turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Peer {
    /// Nothing valid said yet.
    Unknown,
    /// A registered worker.
    Worker(String),
    /// A client (submits, asks).
    Client,
    /// Receives every event.
    Subscriber,
    /// A backup, receiving the durable events.
    Follower,
}

/// Who a connection proved itself to be with the peer secret.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Trusted {
    /// Another master of this cluster, by its name.
    Master(String),
    /// A master of another cluster: (its name, its cluster).
    Cluster(String, String),
    /// The launcher: scenario steps and the console's commands.
    Supervisor,
}

/// One connection, as the coordinator knows it.
#[derive(Debug)]
pub(super) struct Conn {
    /// What it turned out to be.
    pub(super) peer: Peer,
    /// The dialect of its first line.
    dialect: Option<Dialect>,
    /// When it was accepted.
    opened_at: Millis,
    /// Set once the peer proved it knows the secret (always true without a secret).
    authenticated: bool,
    /// The handshake: the challenge sent, the name and role the peer gave in `hello`.
    handshake: Challenger,
    /// Set once it proved the peer secret.
    pub(super) trusted: Option<Trusted>,
}

/// Room in one line for the jobs of a `job_list`, leaving some for its envelope.
const PAGE_BYTES: usize = crate::protocol::frame::MAX_LINE - 1024;

/// A `job_list` of `total` matching jobs: the views of `newest` (newest first) that fit in one
/// line, oldest first, and the oldest one listed when some did not fit (where the next page
/// starts).
fn job_list<'a>(newest: impl Iterator<Item = &'a Job>, total: usize) -> Message {
    let mut used = 0;
    let mut jobs = Vec::new();
    let mut more = false;
    for job in newest {
        let view = job.view();
        let size = serde_json::to_string(&view).map_or(PAGE_BYTES, |s| s.len() + 1);
        if used + size > PAGE_BYTES {
            more = true;
            break;
        }
        used += size;
        jobs.push(view);
    }
    jobs.reverse();
    let before = if more {
        jobs.first().map(|j| j.id)
    } else {
        None
    };
    Message::JobList {
        jobs,
        total,
        before,
    }
}

impl Coordinator {
    pub(super) fn connected(&mut self, conn: ConnId) {
        if self.conns.len() >= self.config.max_connections {
            // Make room: a flood of idle connections must not lock out the cluster. The oldest
            // connection that never said anything valid goes first; failing that, the oldest
            // client not waiting for job notices. Workers and subscribers are never dropped.
            let waiting: BTreeSet<ConnId> = self.notify.values().copied().collect();
            let victim = self
                .conns
                .iter()
                .filter_map(|(&id, c)| match c.peer {
                    Peer::Unknown => Some((0, c.opened_at, id)),
                    Peer::Client if !waiting.contains(&id) => Some((1, c.opened_at, id)),
                    _ => None,
                })
                .min()
                .map(|(_, _, id)| id);
            self.refused.limits += 1;
            match victim {
                Some(victim) => {
                    warn!(
                        conn = victim,
                        "too many connections: closing the oldest idle one"
                    );
                    self.send(
                        victim,
                        Message::Error {
                            message: "too many connections: closing this idle one".into(),
                        },
                    );
                    self.close(victim);
                }
                None => {
                    warn!(conn, "too many connections: refusing a new one");
                    self.send_raw(
                        conn,
                        Message::Error {
                            message: "too many connections".into(),
                        },
                    );
                    self.out.push(Output::Close(conn));
                    return;
                }
            }
        }
        self.conns.insert(
            conn,
            Conn {
                peer: Peer::Unknown,
                dialect: None,
                opened_at: self.now,
                authenticated: self.config.secret.is_none(),
                handshake: Challenger::default(),
                trusted: None,
            },
        );
    }

    pub(super) fn disconnected(&mut self, conn: ConnId) {
        // Its writer is let go after what it was told before (a reply held for the backup
        // included): `echo … | nc` still gets its answer.
        self.out.push(Output::Close(conn));
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.subscribers.remove(&conn);
        if let Some(b) = self.backup_mut() {
            b.pending.remove(&conn);
        }
        self.follower_gone(conn);
        self.notify.retain(|_, c| *c != conn);
        if let Peer::Worker(name) = c.peer
            && self.worker_conns.get(&name) == Some(&conn)
        {
            self.worker_conns.remove(&name);
            // Its datagrams' token was for this connection's registration.
            self.udp_tokens.remove(&name);
            // A worker lent elsewhere left for its borrower: no death.
            if self.health(&name) != Some(Health::Dead) && !self.lent_worker_left(&name) {
                self.declare_dead(&name, "connection closed".to_string());
            }
        }
    }

    pub(super) fn close(&mut self, conn: ConnId) {
        self.disconnected(conn);
    }

    /// A message arrived: it passes the gate, then goes where its type says.
    pub(super) fn received(&mut self, conn: ConnId, dialect: Dialect, env: Envelope) {
        if !self.admit(conn, dialect, &env) {
            return;
        }
        // Any message from a worker is a sign of life.
        if let Some(Peer::Worker(name)) = self.conns.get(&conn).map(|c| c.peer.clone()) {
            self.heard_from(&name, env.clock);
        }
        if let Err(rule) = self.permitted(conn, &env.message) {
            self.refused.rules += 1;
            warn!(conn, from = %env.from, "{rule}");
            self.send(conn, Message::Error { message: rule });
            return;
        }
        if !self.is_serving() && self.backup_turns_away(conn, dialect, &env) {
            return;
        }
        self.handle(conn, dialect, env);
    }

    /// The gate: a classic peer where the cluster needs authentication is refused, and nothing
    /// but `hello`/`auth` is heard before authentication. Returns whether the message may pass.
    fn admit(&mut self, conn: ConnId, dialect: Dialect, env: &Envelope) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let first = c.dialect.is_none();
        c.dialect.get_or_insert(dialect);
        if first && dialect == Dialect::Classic && !c.authenticated && !self.config.allow_classic {
            warn!(conn, "classic peer refused: the cluster has a secret");
            self.send(
                conn,
                Message::Error {
                    message:
                        "this cluster requires authentication, which the classic protocol cannot do"
                            .into(),
                },
            );
            self.close(conn);
            return false;
        }
        if dialect == Dialect::Classic {
            // A classic peer cannot authenticate; it is let in only where policy allows.
            c.authenticated = true;
        }
        let authenticated = c.authenticated;
        if let Err(e) = self.clock.observe(env.clock) {
            self.refused.clock += 1;
            // Said once in the log (and counted in `status`): a flood must not fill the disk.
            if self.refused.clock == 1 {
                warn!(conn, from = %env.from, "{e}");
            }
            self.send(
                conn,
                Message::Error {
                    message: e.to_string(),
                },
            );
            return false;
        }
        if let Some(term) = env.term
            && term > self.config.term
        {
            debug!(conn, term, "peer reports a higher term");
        }
        if !authenticated && !matches!(env.message, Message::Hello { .. } | Message::Auth { .. }) {
            warn!(conn, from = %env.from, "message before authentication");
            self.send(
                conn,
                Message::Error {
                    message: "this cluster requires authentication: start with hello".into(),
                },
            );
            self.close(conn);
            return false;
        }
        true
    }

    /// Carries out a message that passed the gate.
    fn handle(&mut self, conn: ConnId, dialect: Dialect, env: Envelope) {
        let from = String::from(env.from);
        match env.message {
            Message::Hello { role, nonce } => self.hello(conn, from, role, nonce),
            Message::Auth { proof } => self.auth(conn, &proof),
            Message::Election => self.election_asked(conn),
            Message::Victory => {
                if let Some(master) = self.master_of(conn) {
                    self.victory_from(&master, env.term);
                }
            }
            Message::Register {
                slots,
                running,
                owner,
            } => {
                self.register(conn, dialect, from, slots, Some(running), owner);
            }
            Message::PeerHeartbeat { .. } => {
                let reply = if self.is_serving() {
                    Message::PeerAlive {
                        cluster: self.config.cluster.clone(),
                    }
                } else {
                    Message::NotPrimary {
                        primary: self.backup().and_then(|b| b.leader.clone()),
                    }
                };
                self.send(conn, reply);
            }
            Message::WorkerRequest {
                cluster,
                address,
                want,
            } => self.worker_request(conn, &from, cluster, address, want),
            Message::CommandRelease {
                cluster,
                workers,
                lost,
            } => self.command_release(conn, cluster, workers, lost),
            Message::ReleaseCompleted { cluster, workers } => {
                info!(conn, %cluster, ?workers, "lent workers are home again");
                self.release_ack(conn, workers);
            }
            Message::Heartbeat { running, .. } => self.heartbeat(conn, running),
            Message::ClockReading { round, clock_ms } => self.clock_read(conn, round, clock_ms),
            Message::ClockJoin => self.clock_join(conn, &from),
            Message::Started { job } => self.job_started(conn, job),
            Message::Progress { job, percent } => self.job_progress(conn, job, percent),
            Message::JobDone {
                job,
                result,
                attempt,
            } => {
                if let Some(name) = self.worker_of(conn) {
                    self.job_done(conn, &name, job, fit_result(result), attempt);
                }
            }
            Message::JobFailed {
                job,
                error,
                attempt,
            } => {
                if let Some(name) = self.worker_of(conn) {
                    self.job_failed(conn, &name, job, fit_result(error), attempt);
                }
            }
            Message::Login { user, password } => self.login(conn, &user, &password),
            Message::Submit {
                data,
                count,
                priority,
                token,
                notify,
            } => {
                self.submit(conn, from, data, count, priority, token, notify);
            }
            Message::Status { job } => self.status(conn, job),
            Message::Jobs {
                state,
                limit,
                before,
            } => self.list_jobs(conn, state, limit, before),
            Message::Workers => {
                self.mark_client(conn);
                let workers = self.worker_views();
                self.send(conn, Message::WorkerList { workers });
            }
            Message::ReplicaAck {
                seq,
                missing,
                seeded,
            } => self.replica_acked(conn, seq, &missing, seeded),
            Message::Follow { after } => {
                if let Some(master) = self.master_of(conn) {
                    self.backup_follows(conn, master, after);
                }
            }
            Message::Subscribe { history } => self.subscribe(conn, history),
            Message::Ping => self.send(conn, Message::Pong),
            Message::Error { message } => {
                info!(conn, from = %from, "peer reports an error: {message}");
            }
            other => self.misdirected(conn, other),
        }
    }

    /// A message only a coordinator sends, sent to one.
    fn misdirected(&mut self, conn: ConnId, message: Message) {
        let kind = message.kind();
        self.send(
            conn,
            Message::Error {
                message: format!("`{kind}` is sent by a coordinator, not to one"),
            },
        );
    }

    pub(super) fn hello(
        &mut self,
        conn: ConnId,
        name: String,
        role: PeerRole,
        peer_nonce: Option<String>,
    ) {
        let peer_key = &self.config.peer_key;
        let Some(key) = key_for(role, self.config.secret.as_deref(), peer_key).map(str::to_string)
        else {
            self.welcome(conn);
            return;
        };
        let nonce = self.random_hex();
        let server = self.config.name.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let challenge = c
            .handshake
            .hello(&server, &key, name, role, peer_nonce, nonce);
        self.send(conn, challenge);
    }

    pub(super) fn auth(&mut self, conn: ConnId, proof: &str) {
        let (secret, peer_key) = (self.config.secret.clone(), self.config.peer_key.clone());
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (name, role, trusted) = match c.handshake.check(secret.as_deref(), &peer_key, proof) {
            Proven::Nothing => return self.welcome(conn),
            Proven::Failed(name, role) => (name, role, Err("authentication failed".to_string())),
            Proven::As(name, role) => {
                let trusted = match role {
                    PeerRole::Master if self.config.peers.iter().any(|p| p.name == name) => {
                        Ok(Some(Trusted::Master(name.clone())))
                    }
                    PeerRole::Master if self.config.cluster_of(&name).is_some() => {
                        let cluster = self.config.cluster_of(&name).unwrap_or_default();
                        Ok(Some(Trusted::Cluster(name.clone(), cluster.to_string())))
                    }
                    PeerRole::Master => Err(format!("`{name}` is not a master of this cluster")),
                    PeerRole::Supervisor => Ok(Some(Trusted::Supervisor)),
                    PeerRole::ChatPeer => {
                        Err("a chat server has nothing to say to a coordinator".into())
                    }
                    _ => Ok(None),
                };
                (name, role, trusted)
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match trusted {
            Ok(trusted) => {
                c.authenticated = true;
                c.trusted = trusted;
                // Every election message and CLI command is a connection of its own: not news.
                debug!(conn, peer = %name, ?role, "authenticated");
                self.welcome(conn);
            }
            Err(message) => {
                self.refused.auth += 1;
                warn!(conn, peer = %name, ?role, "{message}");
                self.send(conn, Message::Error { message });
                self.close(conn);
            }
        }
    }

    /// The rule a message breaks, if its sender may not send it: what only masters say needs a
    /// master proven with the peer secret; what only workers say never comes from a master or
    /// the launcher.
    fn permitted(&self, conn: ConnId, message: &Message) -> Result<(), String> {
        let trusted = self.conns.get(&conn).and_then(|c| c.trusted.as_ref());
        let kind = || message.kind();
        match message {
            Message::Election
            | Message::Victory
            | Message::Follow { .. }
            | Message::ReplicaAck { .. }
                if !matches!(trusted, Some(Trusted::Master(_))) =>
            {
                Err(format!(
                    "`{}` is accepted only from another master of this cluster, proven with \
                     the peer secret (hello as master)",
                    kind()
                ))
            }
            // What only another cluster's primary says, about that cluster.
            Message::WorkerRequest { cluster, .. }
            | Message::CommandRelease { cluster, .. }
            | Message::ReleaseCompleted { cluster, .. }
            | Message::PeerHeartbeat { cluster }
                if !matches!(trusted, Some(Trusted::Cluster(_, c)) if c == cluster) =>
            {
                Err(format!(
                    "`{}` is accepted only from a master of cluster {cluster}, proven with the \
                     peer secret (hello as master)",
                    kind()
                ))
            }
            Message::Register { .. }
            | Message::Heartbeat { .. }
            | Message::Started { .. }
            | Message::Progress { .. }
            | Message::JobDone { .. }
            | Message::JobFailed { .. }
                if trusted.is_some() =>
            {
                Err(format!(
                    "`{}` is for workers: a master or the launcher runs no jobs",
                    kind()
                ))
            }
            _ => Ok(()),
        }
    }

    /// The master a connection proved itself to be.
    fn master_of(&self, conn: ConnId) -> Option<String> {
        match self.conns.get(&conn).and_then(|c| c.trusted.as_ref()) {
            Some(Trusted::Master(name)) => Some(name.clone()),
            _ => None,
        }
    }

    /// The name a connection proved in the handshake, when the cluster has a secret.
    pub(super) fn proven_name(&self, conn: ConnId) -> Option<String> {
        self.conns
            .get(&conn)
            .filter(|c| {
                c.authenticated && c.handshake.role().is_some() && self.config.secret.is_some()
            })
            .map(|c| c.handshake.name().to_string())
    }

    /// Whether a connection is the launcher's.
    pub(super) fn is_supervisor(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| c.trusted == Some(Trusted::Supervisor))
    }

    pub(super) fn welcome(&mut self, conn: ConnId) {
        let heartbeat_ms = self.config.heartbeat.interval.as_millis() as u64;
        self.send(
            conn,
            Message::Welcome {
                coordinator: self.config.name.clone(),
                heartbeat_ms,
            },
        );
    }

    pub(super) fn login(&mut self, conn: ConnId, user: &str, password: &str) {
        self.mark_client(conn);
        let role = self
            .config
            .users
            .iter()
            .find(|u| u.name == user && u.password == password)
            .map(|u| u.role);
        match role {
            Some(role) => {
                let token = self.random_hex();
                let role = match role {
                    UserRole::Operator => "operator",
                    UserRole::Student => "student",
                };
                self.tokens.insert(token.clone(), user.to_string());
                info!(conn, user, "logged in");
                self.send(
                    conn,
                    Message::LoggedIn {
                        token,
                        role: role.to_string(),
                    },
                );
            }
            None => {
                warn!(conn, user, "login failed");
                self.send(
                    conn,
                    Message::Error {
                        message: "wrong user name or password".into(),
                    },
                );
            }
        }
    }

    /// `status`: the cluster at a glance, or one job.
    fn status(&mut self, conn: ConnId, job: Option<JobId>) {
        self.mark_client(conn);
        let reply = match job {
            Some(id) => match self.state.jobs.get(&id) {
                Some(j) => {
                    let job = Box::new(j.view());
                    self.result_read(id);
                    Message::JobInfo { job }
                }
                None if id.0 < self.state.next_job && self.state.forgotten > 0 => Message::Error {
                    message: format!(
                        "{id} finished long ago and was forgotten (the coordinator keeps the \
                             newest {} finished jobs: policy journal {{ keep_done }})",
                        self.config.retention.keep_done
                    ),
                },
                None => Message::Error {
                    message: format!("unknown job {id}"),
                },
            },
            None => Message::StatusReport {
                report: Box::new(self.status_report()),
            },
        };
        self.send(conn, reply);
    }

    /// `jobs`: the newest `limit` jobs, of one state or all, older than `before` if given — as
    /// many as fit in one line; `before` in the reply says where the next page starts.
    fn list_jobs(
        &mut self,
        conn: ConnId,
        state: Option<JobState>,
        limit: Option<usize>,
        before: Option<JobId>,
    ) {
        self.mark_client(conn);
        let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT);
        let matching = self
            .state
            .jobs
            .range(..before.unwrap_or(JobId(u64::MAX)))
            .map(|(_, j)| &**j)
            .filter(|j| state.is_none_or(|s| j.state == s));
        let total = matching.clone().count();
        let reply = job_list(matching.rev().take(limit), total);
        if let Message::JobList { jobs, .. } = &reply {
            let listed: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            for id in listed {
                self.result_read(id);
            }
        }
        self.send(conn, reply);
    }

    /// `subscribe`: every event from now on, after the history (or the workers and the newest
    /// jobs) so far.
    fn subscribe(&mut self, conn: ConnId, history: bool) {
        // Subscribers are never evicted, so they get a quarter of the table at most (the
        // launcher's own are not counted): the rest stays for workers, masters and clients.
        let quota = (self.config.max_connections / 4).max(1);
        let counted = self
            .subscribers
            .iter()
            .filter(|s| self.conns.get(s).is_some_and(|c| c.trusted.is_none()))
            .count();
        let trusted = self.conns.get(&conn).is_some_and(|c| c.trusted.is_some());
        if !trusted && !self.subscribers.contains(&conn) && counted >= quota {
            self.refused.limits += 1;
            self.mark_client(conn);
            self.send(
                conn,
                Message::Error {
                    message: format!(
                        "too many subscribers (at most {quota}): try again later, or ask with status"
                    ),
                },
            );
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.peer = Peer::Subscriber;
        }
        self.subscribers.insert(conn);
        self.new_subscriber = Some(conn);
        if history {
            self.send_history(conn);
            return;
        }
        let workers = self.worker_views();
        self.send(conn, Message::WorkerList { workers });
        let newest = self
            .state
            .jobs
            .values()
            .rev()
            .take(DEFAULT_LIST_LIMIT)
            .map(|j| &**j);
        let reply = job_list(newest, self.state.jobs.len());
        self.send(conn, reply);
    }

    pub(super) fn mark_client(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.peer == Peer::Unknown
        {
            c.peer = Peer::Client;
        }
    }

    /// Closes connections that never said anything valid.
    pub(super) fn close_idle(&mut self) {
        let idle_ms = self.config.idle_timeout.as_millis() as u64;
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.peer == Peer::Unknown && self.now.saturating_sub(c.opened_at) > idle_ms
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in idle {
            info!(conn, "closing a connection that said nothing");
            self.close(conn);
        }
    }
}
