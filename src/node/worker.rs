//! The worker's driver: connects to the coordinator, runs jobs, feeds the [`Worker`].
//!
//! It connects (authenticating if the cluster has a secret), tells the worker it is connected,
//! and then loops over three sources: lines from the coordinator, progress and results from
//! running jobs, and a ticker for heartbeats. When the connection breaks it tells the worker and
//! connects again, waiting 100ms, then 200ms, … up to 2s between tries, so a cluster whose
//! coordinator restarts finds its workers back by themselves.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::tls::{Reader, Writer};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::codec::{AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::Millis;
use crate::protocol::frame::{MAX_LINE, frame_text, line_codec};
use crate::protocol::handshake;
use crate::protocol::message::{Envelope, JobId, Message, PeerRole};
use crate::protocol::{Dialect, decode};
use crate::role::job::{CLASSIC_DELAY, JobKind, classic_result, count_primes};
use crate::role::worker::{Input, Output, Worker, WorkerConfig};

use super::control::NodeControl;

/// Where and how a worker connects.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The worker's own settings.
    pub config: WorkerConfig,
    /// Every master's address, `host:port`, the primary first. The worker connects to one; when
    /// it is told that one is not the primary, or loses it, it tries the next.
    pub coordinators: Vec<String>,
    /// Its own links to the masters of other clusters, by name: where it goes when lent to one
    /// (else to the address its owner gives).
    pub elsewhere: HashMap<String, String>,
    /// `CLUSTER_SECRET`, if the cluster has one.
    pub secret: Option<String>,
    /// Print `READY <name> …` on stdout when first registered (for launchers and tests).
    pub announce: bool,
    /// Clock skew and pause.
    pub control: NodeControl,
    /// A coordinator silent this long (no message, not even a ping) is left for the next
    /// master: it may be paused or cut off, and a backup may have taken over.
    pub silence_ms: u64,
}

fn current(options: &WorkerOptions, target: usize) -> &str {
    options
        .coordinators
        .get(target % options.coordinators.len().max(1))
        .map_or("", String::as_str)
}

/// The longest wait before trying again a master that refused this worker.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);

/// The lines from a coordinator, and where to write to it.
type Lines = FramedRead<Reader, crate::protocol::frame::LineCodec>;

/// What the driver keeps across connections.
struct Driver {
    options: WorkerOptions,
    worker: Worker,
    started: Instant,
    /// Progress and results of running jobs (and the jobs' own inputs) come back here.
    results_tx: mpsc::UnboundedSender<Input>,
    results: mpsc::UnboundedReceiver<Input>,
    jobs: HashMap<JobId, (AbortHandle, Arc<AtomicBool>)>,
    /// `READY` has been printed.
    announced: bool,
    /// How long to wait before the next connection attempt.
    backoff: Duration,
    /// Which master to try, as an index into `coordinators` (wrapping).
    target: usize,
    /// Its home cluster's masters (`coordinators` is another cluster's while it is lent).
    home: Vec<String>,
    /// The coordinator it is connected to (where heartbeat datagrams go).
    peer: Option<SocketAddr>,
    /// Its socket for heartbeat datagrams, opened on the first one.
    udp: Option<UdpSocket>,
    /// Messages said since the last write.
    outgoing: Vec<Envelope>,
    /// The lines [`Self::flush`] writes.
    buffer: Vec<u8>,
}

/// How a connection ended.
enum Ended {
    /// Try again (the next master, or the same one after a while).
    Reconnect,
    /// The worker is shutting down.
    Shutdown,
}

/// Runs a worker until `shutdown` is cancelled.
pub async fn run(options: WorkerOptions, shutdown: CancellationToken) {
    let (results_tx, results) = mpsc::unbounded_channel::<Input>();
    let mut driver = Driver {
        worker: Worker::new(options.config.clone()),
        options,
        started: Instant::now(),
        results_tx,
        results,
        jobs: HashMap::new(),
        announced: false,
        backoff: Duration::from_millis(100),
        target: 0,
        home: Vec::new(),
        peer: None,
        udp: None,
        outgoing: Vec::new(),
        buffer: Vec::new(),
    };
    driver.home = driver.options.coordinators.clone();
    loop {
        let Some((lines, write)) = driver.connect(&shutdown).await else {
            break;
        };
        if let Ended::Shutdown = driver.session(lines, write, &shutdown).await {
            break;
        }
    }
    for (_, (abort, cancelled)) in driver.jobs.drain() {
        cancelled.store(true, Ordering::Relaxed);
        abort.abort();
    }
}

impl Driver {
    fn now(&self) -> Millis {
        self.options.control.now(self.started)
    }

    /// Sends a heartbeat datagram to the coordinator it is connected to. A datagram that
    /// cannot be sent is lost, as the network may lose it: the detector is built for that.
    async fn send_datagram(&mut self, envelope: &Envelope) {
        let Some(peer) = self.peer else {
            return;
        };
        if self.udp.is_none() {
            let local = if peer.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            match UdpSocket::bind(local).await {
                Ok(socket) => self.udp = Some(socket),
                Err(e) => {
                    warn!("cannot open a socket for heartbeat datagrams: {e}");
                    return;
                }
            }
        }
        if let Some(socket) = &self.udp
            && let Err(e) =
                crate::shaper::own::send_datagram(socket, envelope.to_json().as_bytes(), peer).await
        {
            debug!(%peer, "heartbeat datagram not sent: {e}");
        }
    }

    /// The master to try now.
    fn current(&self) -> &str {
        current(&self.options, self.target)
    }

    /// Feeds the worker one input and carries out what it says; its messages wait in
    /// `outgoing` for [`Self::flush`]. Returns false if it leaves this connection (lent, or
    /// going home).
    async fn step(&mut self, input: Input) -> bool {
        self.worker.set_wall_clock(self.options.control.wall_ms());
        let mut out = self.worker.step(self.now(), input);
        for o in &out {
            match o {
                Output::AdjustClock(ms) => {
                    info!(by_ms = ms, "clock adjusted by the time master");
                    self.options.control.adjust(*ms);
                }
                Output::Datagram(envelope) => self.send_datagram(envelope).await,
                _ => {}
            }
        }
        let moving = take_move(&mut out);
        act(
            out,
            &mut self.jobs,
            &self.results_tx,
            &self.options,
            &mut self.outgoing,
        );
        match moving {
            Some(to) => {
                self.move_to(to);
                false
            }
            None => true,
        }
    }

    /// Writes what the steps since the last flush said, in one write. Returns false if the
    /// connection broke.
    async fn flush(&mut self, write: &mut Writer) -> bool {
        if self.outgoing.is_empty() {
            return true;
        }
        encode_burst(&mut self.outgoing, &mut self.buffer);
        let ok = write.write_all(&self.buffer).await.is_ok();
        self.buffer.clear();
        ok
    }

    /// Steps `first` and every other input ready now (a burst of assignments, the results of
    /// jobs that finished together), so that [`Self::flush`] answers them in one write.
    /// Returns false when this connection is over (it ended, the coordinator is not the
    /// primary, or the worker leaves it).
    async fn burst(&mut self, first: Ready, lines: &mut Lines, heard: &mut Heard) -> bool {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(ready) = next.take() {
            let input = match ready {
                Ready::Input(input) => Some(input),
                Ready::Line(line) => {
                    heard.last = Instant::now();
                    match self.line(line) {
                        Ok(input) => input,
                        Err(Over) => return false,
                    }
                }
            };
            if let Some(input) = input {
                heard.note(&input);
                if !self.step(input).await {
                    return false;
                }
            }
            next = self.ready_now(lines, &mut taken);
        }
        true
    }

    /// An input that is ready now, without waiting: a job's result or progress, or a line
    /// already arrived (`None` after [`MAX_BURST`] in one burst, so ticks still come).
    fn ready_now(&mut self, lines: &mut Lines, burst: &mut usize) -> Option<Ready> {
        if *burst >= MAX_BURST {
            return None;
        }
        *burst += 1;
        if let Ok(input) = self.results.try_recv() {
            return Some(Ready::Input(input));
        }
        futures::FutureExt::now_or_never(lines.next()).map(Ready::Line)
    }

    /// Lent to another cluster (its own link to that primary, or the address the owner gave),
    /// or home again: the next connection goes there.
    fn move_to(&mut self, to: Option<crate::role::worker::Lent>) {
        self.options.coordinators = match to {
            Some(lent) => {
                let address = self
                    .options
                    .elsewhere
                    .get(&lent.master)
                    .cloned()
                    .unwrap_or(lent.address);
                info!(cluster = %lent.cluster, %address, "lent: moving to the borrowing cluster");
                vec![address]
            }
            None => {
                info!("going home");
                self.home.clone()
            }
        };
        self.target = 0;
        self.backoff = Duration::from_millis(100);
    }

    /// Connects (and proves the secret) to the current master, trying the next ones with a
    /// growing backoff until one takes; `None` once shutting down.
    async fn connect(&mut self, shutdown: &CancellationToken) -> Option<(Lines, Writer)> {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => return None,
                // TLS when the master's port is encrypted (the trust table says so).
                s = crate::tls::dial(self.current()) => s,
            };
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    debug!(
                        coordinator = %self.current(),
                        "connect failed: {e}; retrying in {:?}",
                        self.backoff
                    );
                    self.target += 1;
                    self.wait_out_backoff(shutdown).await?;
                    continue;
                }
            };
            self.peer = stream.peer_addr().ok();
            let (read, mut write) = stream.split();
            let mut lines = FramedRead::new(read, line_codec(MAX_LINE));
            // A challenge lost on the way (a cut link) is given up on as a silent coordinator
            // would be, not after the whole handshake timeout: the next try may get through.
            let patience = Duration::from_millis(self.options.silence_ms).min(handshake::TIMEOUT);
            if let Some(secret) = &self.options.secret
                && let Err(e) = handshake::prove_within(
                    &mut lines,
                    &mut write,
                    secret,
                    &self.options.config.name,
                    PeerRole::Worker,
                    self.options.control.pace().real(patience),
                )
                .await
            {
                warn!("authentication with the coordinator failed: {e}");
                tokio::time::sleep(self.options.control.pace().real(self.backoff)).await;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
                continue;
            }
            info!(coordinator = %self.current(), "connected");
            return Some((lines, write));
        }
    }

    /// Waits out the backoff, then doubles it (to 2 s at most); `None` once shutting down.
    async fn wait_out_backoff(&mut self, shutdown: &CancellationToken) -> Option<()> {
        self.wait(self.backoff, shutdown).await?;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
        Some(())
    }

    /// Waits (in cluster time); jobs keep running meanwhile, their results waiting in the
    /// worker. `None` once shutting down.
    async fn wait(&mut self, how_long: Duration, shutdown: &CancellationToken) -> Option<()> {
        let deadline = tokio::time::sleep(self.options.control.pace().real(how_long));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = &mut deadline => return Some(()),
                Some(input) = self.results.recv() => {
                    // Not connected: what it would say is said again once it is.
                    self.step(input).await;
                    self.outgoing.clear();
                }
            }
        }
    }

    /// One connection, from `connected` until it breaks, the coordinator falls silent or says
    /// it is not the primary.
    async fn session(
        &mut self,
        mut lines: Lines,
        mut write: Writer,
        shutdown: &CancellationToken,
    ) -> Ended {
        let stay = self.step(Input::Connected).await;
        if !self.flush(&mut write).await || !stay {
            self.disconnected();
            return Ended::Reconnect;
        }
        let mut pause = self.options.control.clone();
        let mut heard = Heard::default();
        let mut ticker = tokio::time::interval(Duration::from_millis(
            (self.options.config.heartbeat_ms / 4).clamp(5, 250),
        ));
        let silence = Duration::from_millis(self.options.silence_ms);
        let ended = loop {
            tokio::select! {
                _ = pause.wait_while_paused() => {}
                _ = shutdown.cancelled() => break Ended::Shutdown,
            }
            let first = tokio::select! {
                _ = shutdown.cancelled() => break Ended::Shutdown,
                line = lines.next() => Ready::Line(line),
                Some(input) = self.results.recv() => Ready::Input(input),
                _ = ticker.tick() => {
                    if self.options.control.pace().elapsed(heard.last) <= silence {
                        Ready::Input(Input::Tick)
                    } else {
                        // Silent — unless this worker was the one paused, and what the
                        // coordinator sent meanwhile is waiting to be read.
                        match futures::FutureExt::now_or_never(lines.next()) {
                            Some(line) => Ready::Line(line),
                            None => {
                                warn!(
                                    coordinator = %self.current(),
                                    "the coordinator is silent; trying the next master"
                                );
                                self.target += 1;
                                break Ended::Reconnect;
                            }
                        }
                    }
                }
            };
            let stay = self.burst(first, &mut lines, &mut heard).await;
            if !self.flush(&mut write).await || !stay {
                break Ended::Reconnect;
            }
        };
        self.outgoing.clear();
        self.disconnected();
        if heard.registered {
            self.backoff = Duration::from_millis(100);
        } else if let (Ended::Reconnect, Some(why)) = (&ended, heard.refused) {
            // Back to the same master: it refused this worker, not failed.
            self.target = self.target.saturating_sub(1);
            self.backoff = (self.backoff * 2).min(REFUSED_BACKOFF);
            warn!(
                coordinator = %self.current(),
                "refused ({why}); trying again in {:?}",
                self.backoff
            );
            if self.wait(self.backoff, shutdown).await.is_none() {
                return Ended::Shutdown;
            }
        }
        ended
    }

    /// Tells the worker its connection is gone (it has nothing to send on it; a lent worker
    /// that lost its borrower stops the borrower's jobs and goes home).
    fn disconnected(&mut self) {
        let now = self.now();
        let mut out = self.worker.step(now, Input::Disconnected);
        if let Some(to) = take_move(&mut out) {
            self.move_to(to);
        }
        for output in out {
            if let Output::Stop(job) = output
                && let Some((abort, cancelled)) = self.jobs.remove(&job)
            {
                cancelled.store(true, Ordering::Relaxed);
                abort.abort();
            }
        }
    }

    /// What a line from the coordinator means: an input, or nothing (a bad line, logged);
    /// `Over` when the connection is over.
    fn line(
        &mut self,
        line: Option<Result<Bytes, AnyDelimiterCodecError>>,
    ) -> Result<Option<Input>, Over> {
        let bytes = match line {
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) => {
                warn!("connection to the coordinator failed: {e:?}");
                return Err(Over);
            }
            None => {
                info!("the coordinator closed the connection");
                // It may be gone for good: the next master may have taken over.
                self.target += 1;
                return Err(Over);
            }
        };
        let decoded = frame_text(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| decode(Dialect::Native, t, "").map_err(|e| e.to_string()));
        let envelope = match decoded {
            Ok(envelope) => envelope,
            Err(e) => {
                warn!("bad line from the coordinator: {e}");
                return Ok(None);
            }
        };
        match envelope.message {
            Message::NotPrimary { .. } => {
                // A backup: the primary is elsewhere (maybe this one after a failover).
                info!(coordinator = %self.current(), "not the primary; trying the next master");
                self.target += 1;
                Err(Over)
            }
            Message::Registered { .. } if !self.announced && self.options.announce => {
                self.announced = true;
                println!(
                    "READY {} registered with {}",
                    self.options.config.name,
                    self.current()
                );
                Ok(Some(Input::Received(envelope)))
            }
            _ => Ok(Some(Input::Received(envelope))),
        }
    }
}

/// The most inputs a worker takes in one burst before it writes and looks at its ticker.
const MAX_BURST: usize = 256;

/// An input ready for the worker.
enum Ready {
    /// A line from the coordinator (or the end of its connection).
    Line(Option<Result<Bytes, AnyDelimiterCodecError>>),
    /// A job's result or progress, or a tick.
    Input(Input),
}

/// The connection to the coordinator is over.
struct Over;

/// What a worker has heard on one connection.
struct Heard {
    /// When it last heard anything.
    last: Instant,
    /// It was registered.
    registered: bool,
    /// Refused before registering (a worker of the same name is connected, a bad name …):
    /// the coordinator will say the same again, so the next try waits, longer each time.
    refused: Option<String>,
}

impl Default for Heard {
    fn default() -> Self {
        Heard {
            last: Instant::now(),
            registered: false,
            refused: None,
        }
    }
}

impl Heard {
    /// Notes whether `input` registered this worker or refused it.
    fn note(&mut self, input: &Input) {
        if let Input::Received(env) = input {
            match &env.message {
                Message::Registered { .. } => self.registered = true,
                Message::Error { message } if !self.registered => {
                    self.refused = Some(message.clone());
                }
                _ => {}
            }
        }
    }
}

/// Takes the move out of a step's outputs, if it made one.
fn take_move(out: &mut Vec<Output>) -> Option<Option<crate::role::worker::Lent>> {
    let i = out.iter().position(|o| matches!(o, Output::Move(_)))?;
    match out.remove(i) {
        Output::Move(to) => Some(to),
        _ => None,
    }
}

/// Encodes a burst's messages as lines into `buffer`, emptying `outgoing`. A job that ended
/// within the burst is reported by its result alone: its `started` is left out (the
/// coordinator reads a result as the end of a job it assigned, started or not).
fn encode_burst(outgoing: &mut Vec<Envelope>, buffer: &mut Vec<u8>) {
    let ended: HashSet<JobId> = outgoing
        .iter()
        .filter_map(|e| match e.message {
            Message::JobDone { job, .. } | Message::JobFailed { job, .. } => Some(job),
            _ => None,
        })
        .collect();
    for envelope in outgoing.drain(..) {
        if let Message::Started { job } = envelope.message
            && ended.contains(&job)
        {
            continue;
        }
        buffer.extend_from_slice(envelope.to_json().as_bytes());
        buffer.push(b'\n');
    }
}

/// The outcome of a job with nothing to wait for (an echo, a failure asked for, or data that
/// is not a job), or the job to run.
fn outcome_now(data: &str) -> Result<Result<String, String>, JobKind> {
    match JobKind::parse(data) {
        Err(e) => Ok(Err(e.to_string())),
        Ok(JobKind::Echo(text)) => Ok(Ok(text)),
        Ok(JobKind::Fail(why)) => Ok(Err(why)),
        Ok(kind) => Err(kind),
    }
}

/// Carries out the worker's outputs; its messages are added to `outgoing`.
fn act(
    outputs: Vec<Output>,
    jobs: &mut HashMap<JobId, (AbortHandle, Arc<AtomicBool>)>,
    results: &mpsc::UnboundedSender<Input>,
    options: &WorkerOptions,
    outgoing: &mut Vec<Envelope>,
) {
    for output in outputs {
        match output {
            Output::Send(envelope) => outgoing.push(envelope),
            Output::Run { job, data } => {
                let kind = match outcome_now(&data) {
                    // Ended already: its result joins this burst (read before the next line).
                    Ok(outcome) => {
                        let _ = results.send(Input::Finished { job, outcome });
                        continue;
                    }
                    Err(kind) => kind,
                };
                let cancelled = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(execute(
                    job,
                    kind,
                    options.config.name.clone(),
                    results.clone(),
                    cancelled.clone(),
                    options.control.pace().clone(),
                ));
                jobs.insert(job, (task.abort_handle(), cancelled));
            }
            Output::Stop(job) => {
                if let Some((abort, cancelled)) = jobs.remove(&job) {
                    cancelled.store(true, Ordering::Relaxed);
                    abort.abort();
                }
            }
            // Carried out by the caller.
            Output::Move(_) | Output::AdjustClock(_) | Output::Datagram(_) => {}
        }
    }
    jobs.retain(|_, (abort, _)| !abort.is_finished());
}

/// Runs one job to its end, reporting progress and the outcome.
async fn execute(
    job: JobId,
    kind: JobKind,
    worker: String,
    results: mpsc::UnboundedSender<Input>,
    cancelled: Arc<AtomicBool>,
    pace: crate::clock::Pace,
) {
    let progress = |percent: u8| {
        let _ = results.send(Input::Progress { job, percent });
    };
    let outcome = match kind {
        JobKind::Echo(text) => Ok(text),
        JobKind::Fail(why) => Err(why),
        JobKind::Classic(text) => {
            tokio::time::sleep(pace.real(CLASSIC_DELAY)).await;
            Ok(classic_result(&text, &worker))
        }
        JobKind::Sleep(total) => {
            // Report progress about ten times, but not more often than every 200ms. In cluster
            // time: in slow motion a job takes longer, and a change of pace counts from then.
            let step = (total / 10).max(Duration::from_millis(200));
            let start = Instant::now();
            loop {
                let left = total.saturating_sub(pace.elapsed(start));
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(pace.real(left.min(step))).await;
                let done = pace.elapsed(start).as_secs_f64() / total.as_secs_f64();
                progress((done * 100.0).min(100.0) as u8);
            }
            Ok(format!(
                "slept {}",
                crate::topology::units::format_duration(total)
            ))
        }
        JobKind::Cpu(n) => {
            let results = results.clone();
            let flag = cancelled.clone();
            let counted = tokio::task::spawn_blocking(move || {
                let mut last = 0;
                count_primes(n, |percent| {
                    if percent >= last + 10 {
                        last = percent;
                        let _ = results.send(Input::Progress { job, percent });
                    }
                    !flag.load(Ordering::Relaxed)
                })
            })
            .await;
            match counted {
                Ok(Some(primes)) => Ok(format!("{primes} primes below {n}")),
                Ok(None) => return,
                Err(e) => Err(format!("cpu job crashed: {e}")),
            }
        }
    };
    if !cancelled.load(Ordering::Relaxed) {
        let _ = results.send(Input::Finished { job, outcome });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(message: Message) -> Envelope {
        Envelope {
            from: "w".into(),
            clock: 1,
            term: None,
            message,
        }
    }

    fn lines(mut outgoing: Vec<Envelope>) -> Vec<String> {
        let mut buffer = Vec::new();
        encode_burst(&mut outgoing, &mut buffer);
        assert!(outgoing.is_empty());
        String::from_utf8(buffer)
            .unwrap()
            .lines()
            .map(|l| l.to_string())
            .collect()
    }

    #[test]
    fn a_job_that_ended_in_the_burst_is_reported_by_its_result_alone() {
        let burst = vec![
            said(Message::Started { job: JobId(1) }),
            said(Message::Started { job: JobId(2) }),
            said(Message::Started { job: JobId(3) }),
            said(Message::JobDone {
                job: JobId(1),
                result: "one".into(),
                attempt: Some(1),
            }),
            said(Message::JobFailed {
                job: JobId(3),
                error: "no".into(),
                attempt: None,
            }),
        ];
        let written = lines(burst);
        assert_eq!(written.len(), 3, "{written:?}");
        assert!(
            written[0].contains(r#""type":"started""#) && written[0].contains(r#""job":"JOB-2""#)
        );
        assert!(
            written[1].contains(r#""type":"job_done""#) && written[1].contains(r#""job":"JOB-1""#)
        );
        assert!(
            written[2].contains(r#""type":"job_failed""#)
                && written[2].contains(r#""job":"JOB-3""#)
        );
    }

    #[test]
    fn a_job_still_running_says_started() {
        let written = lines(vec![said(Message::Started { job: JobId(7) })]);
        assert_eq!(written.len(), 1);
        assert!(written[0].contains(r#""type":"started""#));
        assert!(lines(Vec::new()).is_empty());
    }

    #[test]
    fn echoes_failures_and_bad_data_end_at_once_and_the_rest_run() {
        assert_eq!(outcome_now("echo hi"), Ok(Ok("hi".to_string())));
        assert_eq!(
            outcome_now("fail disk full"),
            Ok(Err("disk full".to_string()))
        );
        assert!(matches!(outcome_now("sleep"), Ok(Err(e)) if e.starts_with("sleep")));
        assert!(matches!(outcome_now("sleep 2s"), Err(JobKind::Sleep(_))));
        assert!(matches!(outcome_now("cpu 1000"), Err(JobKind::Cpu(1000))));
    }
}
