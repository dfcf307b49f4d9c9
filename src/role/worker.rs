//! The worker: registers with its slots, runs jobs, reports results, sends heartbeats.
//!
//! Like the coordinator it is a state machine: its driver tells it when the connection to the
//! coordinator opens and closes, what arrives, when a job it started has progressed or ended,
//! and when time passes. It answers with messages to send and jobs to start or stop; the driver
//! does the running.
//!
//! Two ideas from the course show here. Results are never lost, to a broken connection or to a
//! lossy link: a result is kept until the coordinator acknowledges it (`result_ack`), sent again
//! with a growing pause until it is, and sent again at once after the worker registers (with a
//! new primary, too). And the worker tells the coordinator which jobs it is running — when it
//! registers, and in every heartbeat — so a job is neither run twice by mistake nor forgotten
//! when an `assign` or a `cancel` is lost.

use std::collections::BTreeMap;

use tracing::{debug, info, warn};

use crate::clock::{LamportClock, Millis};
use crate::protocol::message::{Envelope, JobId, Message, fit_result};

/// The least time between two `register`s on one connection.
const REGISTER_RETRY_MS: Millis = 1_000;
/// The first pause before an unacknowledged result is sent again; it doubles each time.
const RESEND_FIRST_MS: Millis = 250;
/// The longest pause between two sends of one result.
const RESEND_MAX_MS: Millis = 4_000;
/// How the coordinator's error to an unregistered worker begins.
pub const NOT_REGISTERED: &str = "register first";
/// The most lines a second a worker logs about the jobs it is given and finishes (at `INFO`;
/// at `DEBUG` it logs every one).
pub const JOB_LINES_PER_SECOND: u32 = 40;

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub name: String,
    /// How many jobs it runs at once.
    pub slots: u32,
    /// How often it sends a heartbeat.
    pub heartbeat_ms: Millis,
    /// Its home cluster (`cluster NAME` in the topology): what it says when lent elsewhere.
    pub cluster: String,
}

/// What the driver hands the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The connection to the coordinator is open (and authenticated, if the cluster has a secret).
    Connected,
    /// The connection closed.
    Disconnected,
    /// A message from the coordinator.
    Received(Envelope),
    /// A running job got this far.
    Progress {
        job: JobId,
        /// 0 to 100.
        percent: u8,
    },
    /// A running job ended.
    Finished {
        job: JobId,
        /// Its result, or why it failed.
        outcome: Result<String, String>,
    },
    /// Time passed.
    Tick,
}

/// What the worker asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this to the coordinator.
    Send(Envelope),
    /// Start running a job.
    Run { job: JobId, data: String },
    /// Stop a running job; its result is no longer wanted.
    Stop(JobId),
    /// Leave the coordinator it is connected to and connect to `Some` master of another
    /// cluster (lent: its own link to `master` if it has one, else `address`), or `None`: home
    /// again, to its own cluster's masters.
    Move(Option<Lent>),
    /// Move this node's wall clock by this many milliseconds (the time master said so).
    AdjustClock(i64),
    /// Send this as a UDP datagram to the coordinator's address (a heartbeat, when the
    /// coordinator gave a `udp_token`).
    Datagram(Envelope),
}

/// Where a lent worker works: the borrowing cluster and its primary.
#[derive(Debug, Clone, PartialEq)]
pub struct Lent {
    /// The borrowing cluster.
    pub cluster: String,
    /// Its primary's node name.
    pub master: String,
    /// Where its primary listens, as the owner said.
    pub address: String,
}

/// A job being run.
#[derive(Debug, Clone)]
struct Running {
    started_ms: Millis,
    last_percent: u8,
    /// The run (`attempt` of its `assign`).
    attempt: u32,
}

/// A result the coordinator has not acknowledged yet.
#[derive(Debug, Clone)]
struct Unacked {
    /// `job_done` or `job_failed`.
    message: Message,
    /// When it was last sent (none yet: not connected when it was made).
    sent_ms: Option<Millis>,
    /// The pause before the next send.
    pause_ms: Millis,
}

impl Unacked {
    /// The run it is the result of.
    fn attempt(&self) -> Option<u32> {
        match &self.message {
            Message::JobDone { attempt, .. } | Message::JobFailed { attempt, .. } => *attempt,
            _ => None,
        }
    }
}

/// The worker.
pub struct Worker {
    config: WorkerConfig,
    clock: LamportClock,
    now: Millis,
    /// Its wall clock (milliseconds since 1970), as the driver read it for this step.
    wall_ms: i64,
    /// The token heartbeat datagrams carry, when the coordinator wants them over UDP.
    udp_token: Option<String>,
    connected: bool,
    /// When `register` was last sent on this connection.
    register_sent: Millis,
    running: BTreeMap<JobId, Running>,
    /// Results kept until the coordinator acknowledges them.
    unacked: BTreeMap<JobId, Unacked>,
    last_heartbeat: Millis,
    /// The highest coordinator term seen; orders from a lower term are refused.
    term: u64,
    done: u64,
    /// The cluster it works for while lent (`None`: at home).
    lent: Option<Lent>,
    /// A move it was told to make (`Some(None)`: home), made once it runs nothing and every
    /// result is acknowledged.
    moving: Option<Option<Lent>>,
    /// It asked to move: the connection that closes next is the one it left.
    leaving: bool,
    job_lines: JobLines,
    out: Vec<Output>,
}

/// Keeps a busy worker's log readable: a line for each job it is given and finishes, up to
/// [`JOB_LINES_PER_SECOND`]; past that, one line when the second is over says how many were
/// left out (every job is still in the coordinator's reading: the console's jobs pane,
/// `tcluster client status`). A failed job is always logged.
#[derive(Debug, Default)]
struct JobLines {
    /// When the current second began.
    since_ms: Millis,
    said: u32,
    left_out: u64,
}

impl JobLines {
    /// Whether a job line may be logged now.
    fn allow(&mut self, now: Millis) -> bool {
        self.roll(now);
        if self.said < JOB_LINES_PER_SECOND || tracing::enabled!(tracing::Level::DEBUG) {
            self.said += 1;
            true
        } else {
            self.left_out += 1;
            false
        }
    }

    /// Starts a new second once the last is over, saying what it left out.
    fn roll(&mut self, now: Millis) {
        if now.saturating_sub(self.since_ms) < 1_000 {
            return;
        }
        if self.left_out > 0 {
            info!(
                "busy: {} job lines left out in the last second (at most {} a second are logged)",
                self.left_out, JOB_LINES_PER_SECOND
            );
        }
        *self = JobLines {
            since_ms: now,
            ..JobLines::default()
        };
    }
}

impl Worker {
    /// A worker that has not connected yet.
    pub fn new(config: WorkerConfig) -> Self {
        Worker {
            config,
            clock: LamportClock::default(),
            now: 0,
            wall_ms: 0,
            udp_token: None,
            connected: false,
            register_sent: 0,
            running: BTreeMap::new(),
            unacked: BTreeMap::new(),
            last_heartbeat: 0,
            term: 0,
            done: 0,
            lent: None,
            moving: None,
            leaving: false,
            job_lines: JobLines::default(),
            out: Vec::new(),
        }
    }

    /// The cluster it works for while lent.
    pub fn lent(&self) -> Option<&Lent> {
        self.lent.as_ref()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Jobs it is running.
    pub fn running(&self) -> impl Iterator<Item = JobId> + '_ {
        self.running.keys().copied()
    }

    /// Jobs it has finished.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Its Lamport clock.
    pub fn clock(&self) -> u64 {
        self.clock.now()
    }

    /// The driver's reading of this node's wall clock, before each step (what a time
    /// master's `clock_poll` is answered with).
    pub fn set_wall_clock(&mut self, unix_ms: i64) {
        self.wall_ms = unix_ms;
    }

    /// Feeds one input at time `now` and returns what to do.
    pub fn step(&mut self, now: Millis, input: Input) -> Vec<Output> {
        self.now = now.max(self.now);
        match input {
            Input::Connected => {
                self.connected = true;
                // A new connection registers anew, and gets a new token if any.
                self.udp_token = None;
                self.register();
                // Every result not acknowledged yet, at once: this may be a new primary.
                for job in self.unacked.keys().copied().collect::<Vec<_>>() {
                    self.send_result(job, RESEND_FIRST_MS);
                }
                self.last_heartbeat = self.now;
            }
            Input::Disconnected => {
                self.connected = false;
                if std::mem::take(&mut self.leaving) {
                    // The connection it left on purpose.
                } else if let Some(lent) = self.lent.take() {
                    // The borrower is gone (or cut off): home at once. Its jobs here are the
                    // borrower's, requeued by it (or by its journal when it comes back).
                    info!(cluster = %lent.cluster, "lost the borrowing cluster: going home");
                    for job in std::mem::take(&mut self.running).into_keys() {
                        self.out.push(Output::Stop(job));
                    }
                    self.unacked.clear();
                    self.moving = None;
                    self.term = 0;
                    self.out.push(Output::Move(None));
                }
            }
            Input::Received(env) => self.received(env),
            Input::Progress { job, percent } => {
                let Some(r) = self.running.get_mut(&job) else {
                    return std::mem::take(&mut self.out);
                };
                if percent > r.last_percent && self.connected {
                    r.last_percent = percent;
                    self.send(Message::Progress { job, percent });
                }
            }
            Input::Finished { job, outcome } => {
                let Some(r) = self.running.remove(&job) else {
                    debug!(%job, "finished after it was cancelled; result dropped");
                    return std::mem::take(&mut self.out);
                };
                let took = self.now.saturating_sub(r.started_ms);
                let attempt = Some(r.attempt);
                let message = match outcome {
                    Ok(result) => {
                        self.done += 1;
                        if self.job_lines.allow(self.now) {
                            info!(%job, took_ms = took, "job done");
                        }
                        // Cut here as the coordinator would: the line must reach it.
                        Message::JobDone {
                            job,
                            result: fit_result(result),
                            attempt,
                        }
                    }
                    Err(error) => {
                        warn!(%job, %error, "job failed");
                        Message::JobFailed {
                            job,
                            error: fit_result(error),
                            attempt,
                        }
                    }
                };
                self.unacked.insert(
                    job,
                    Unacked {
                        message,
                        sent_ms: None,
                        pause_ms: RESEND_FIRST_MS,
                    },
                );
                if self.connected {
                    self.send_result(job, RESEND_FIRST_MS);
                }
            }
            Input::Tick => {
                self.job_lines.roll(self.now);
                if !self.connected {
                    return std::mem::take(&mut self.out);
                }
                if self.move_if_free() {
                    return std::mem::take(&mut self.out);
                }
                if self.now.saturating_sub(self.last_heartbeat) >= self.config.heartbeat_ms {
                    self.last_heartbeat = self.now;
                    let running = Some(self.running.keys().copied().collect());
                    match self.udp_token.clone() {
                        Some(token) => {
                            let envelope = self.envelope(Message::Heartbeat {
                                running,
                                token: Some(token),
                            });
                            self.out.push(Output::Datagram(envelope));
                        }
                        None => self.send(Message::Heartbeat {
                            running,
                            token: None,
                        }),
                    }
                }
                self.resend_due();
            }
        }
        // A move waits for the last result's acknowledgement, whatever brought it.
        self.move_if_free();
        std::mem::take(&mut self.out)
    }

    fn received(&mut self, env: Envelope) {
        if let Err(e) = self.clock.observe(env.clock) {
            warn!(from = %env.from, "{e}");
            self.send(Message::Error {
                message: e.to_string(),
            });
            return;
        }
        if let Some(term) = env.term {
            if term < self.term {
                warn!(term, current = self.term, from = %env.from, "order from an old term refused");
                self.send(Message::Error {
                    message: format!("term {term} is older than {}", self.term),
                });
                return;
            }
            self.term = term;
        }
        match env.message {
            Message::Assign { job, data, attempt } => self.assigned(job, data, attempt),
            Message::ResultAck { job, attempt } => {
                let this_run = self
                    .unacked
                    .get(&job)
                    .is_some_and(|u| attempt.is_none_or(|a| Some(a) == u.attempt()));
                if this_run {
                    self.unacked.remove(&job);
                    debug!(%job, "result acknowledged");
                }
            }
            Message::Cancel { job } => {
                if self.running.remove(&job).is_some() {
                    info!(%job, "job cancelled: another worker finished it");
                    self.out.push(Output::Stop(job));
                }
            }
            Message::Registered {
                heartbeat_ms,
                udp_token,
            } => {
                info!(heartbeat_ms, udp = udp_token.is_some(), "registered");
                self.config.heartbeat_ms = heartbeat_ms.max(1);
                self.udp_token = udp_token.filter(|t| !t.is_empty() && t.len() <= 128);
            }
            // A `register` lost on the way (a lossy link, or a cut one that healed) leaves the
            // coordinator not knowing this connection: it says so, and the worker registers
            // again (not more than once a second).
            Message::Error { message } if message.starts_with(NOT_REGISTERED) => {
                if self.now.saturating_sub(self.register_sent) >= REGISTER_RETRY_MS {
                    info!("the coordinator does not know this connection: registering again");
                    self.register();
                } else {
                    debug!("not registered yet: the answer may still be on its way");
                }
            }
            // Its owner lends it (only a worker at home can be lent).
            Message::Redirect {
                to,
                cluster,
                address,
            } if self.lent.is_none() && cluster != self.config.cluster => {
                info!(%cluster, master = %to, "lent: moving once idle");
                self.moving = Some(Some(Lent {
                    cluster,
                    master: to,
                    address,
                }));
                self.move_if_free();
            }
            // The borrower gives it back (only the cluster it serves can).
            Message::Return { .. } if self.lent.is_some() => {
                info!("returned: going home once idle");
                self.moving = Some(None);
                self.move_if_free();
            }
            Message::Redirect { .. } | Message::Return { .. } => {
                warn!(from = %env.from, "a move that does not fit where this worker is: ignored");
            }
            // Berkeley: the coordinator it works for reads its clock, then moves it.
            Message::ClockPoll { round } => {
                let clock_ms = self.wall_ms;
                self.send(Message::ClockReading { round, clock_ms });
            }
            Message::ClockAdjust { adjust_ms, .. } => {
                let max = crate::role::coordinator::MAX_ADJUST_MS;
                self.out
                    .push(Output::AdjustClock(adjust_ms.clamp(-max, max)));
            }
            Message::Error { message } => warn!(%message, "coordinator reports an error"),
            Message::Welcome { .. } | Message::Pong => {}
            other => debug!(?other, "unexpected message ignored"),
        }
    }

    /// `assign`: runs the job, unless it runs already (the `assign` was sent again) or has
    /// ended (its result was lost on the way: it is sent again instead of running twice).
    fn assigned(&mut self, job: JobId, data: String, attempt: u32) {
        if self.running.contains_key(&job) {
            debug!(%job, "assigned again while running; ignored");
        } else if self
            .unacked
            .get(&job)
            .is_some_and(|u| u.attempt() >= Some(attempt))
        {
            debug!(%job, "assigned again after it ended: its result is sent again");
            self.send_result(job, RESEND_FIRST_MS);
        } else if self.running.len() as u32 >= self.config.slots {
            // The coordinator thinks a slot is free: this worker still runs a job it gave to
            // someone else, whose `cancel` was lost. The heartbeat shows it; the `cancel` comes
            // again, and then this `assign` does (it is not a failure of the job).
            info!(%job, "no free slot yet: the assign will come again");
        } else {
            if self.job_lines.allow(self.now) {
                info!(%job, attempt, %data, "job assigned");
            }
            // A result of an earlier run still kept: the coordinator has moved on from it.
            self.unacked.remove(&job);
            self.running.insert(
                job,
                Running {
                    started_ms: self.now,
                    last_percent: 0,
                    attempt,
                },
            );
            self.out.push(Output::Run { job, data });
            self.send(Message::Started { job });
        }
    }

    /// Makes the move it was told to, if it runs nothing and every result is acknowledged
    /// (a lent worker finishes what it holds where it got it). Returns whether it moved.
    fn move_if_free(&mut self) -> bool {
        if self.moving.is_none() || !self.running.is_empty() || !self.unacked.is_empty() {
            return false;
        }
        let Some(to) = self.moving.take() else {
            return false;
        };
        self.lent = to.clone();
        // Another cluster's primary counts its own terms.
        self.term = 0;
        self.leaving = true;
        self.out.push(Output::Move(to));
        true
    }

    /// Sends a kept result now, and waits `pause_ms` before sending it again.
    fn send_result(&mut self, job: JobId, pause_ms: Millis) {
        let Some(u) = self.unacked.get_mut(&job) else {
            return;
        };
        u.sent_ms = Some(self.now);
        u.pause_ms = pause_ms;
        let message = u.message.clone();
        self.send(message);
    }

    /// Sends again the results whose acknowledgement is overdue, each pause twice the last.
    fn resend_due(&mut self) {
        let now = self.now;
        let due: Vec<(JobId, Millis)> = self
            .unacked
            .iter()
            .filter(|(_, u)| {
                u.sent_ms
                    .is_none_or(|at| now.saturating_sub(at) >= u.pause_ms)
            })
            .map(|(job, u)| (*job, u.pause_ms))
            .collect();
        for (job, pause) in due {
            debug!(%job, "no acknowledgement yet: the result is sent again");
            self.send_result(job, (pause * 2).min(RESEND_MAX_MS));
        }
    }

    /// Results kept until the coordinator acknowledges them.
    pub fn unacknowledged(&self) -> impl Iterator<Item = JobId> + '_ {
        self.unacked.keys().copied()
    }

    /// Registers on the connection, with the jobs it still holds: those it runs, and those it
    /// has finished whose results are not acknowledged yet (sent right after), so that the
    /// coordinator does not give them to someone else meanwhile.
    fn register(&mut self) {
        self.register_sent = self.now;
        let mut running: Vec<JobId> = self.running.keys().copied().collect();
        running.extend(
            self.unacked
                .keys()
                .filter(|j| !self.running.contains_key(j)),
        );
        let owner = self.lent.as_ref().map(|_| self.config.cluster.clone());
        self.send(Message::Register {
            slots: self.config.slots,
            running,
            owner,
        });
    }

    fn send(&mut self, message: Message) {
        let envelope = self.envelope(message);
        self.out.push(Output::Send(envelope));
    }

    fn envelope(&mut self, message: Message) -> Envelope {
        Envelope {
            from: self.config.name.as_str().into(),
            clock: self.clock.tick(),
            term: (self.term > 0).then_some(self.term),
            message,
        }
    }
}

#[cfg(test)]
mod tests;
