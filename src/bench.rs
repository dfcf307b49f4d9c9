//! `tcluster bench`: how fast tcluster is, measured on real nodes.
//!
//! Every benchmark starts the nodes it needs as child processes of this one (`tcluster node`,
//! exactly as `tcluster run` starts them), on ports the system picks, with a topology written
//! into a scratch directory; it measures from the outside, as a client sees the cluster, and
//! kills every node it started when it ends. Each returns a report that prints as a table or as
//! JSON. The method behind each figure is in docs/PERFORMANCE.md.
//!
//! - [`dispatch`]: no-op jobs end to end (submit, run on a worker process, result recorded),
//!   jobs/s with several workers, and the round trip of one job on an idle cluster.
//! - [`detect`]: SIGKILL and SIGSTOP of a worker until the coordinator declares it dead, and
//!   until its jobs are assigned again.
//! - [`failover`]: SIGKILL of the primary until the backup is primary, and until it has run a
//!   new job.
//! - [`chat`]: deliveries/s from one chat server to N subscribers, and publish-to-deliver
//!   latency at half that load.
//! - [`startup`]: `tcluster run`'s launch of a topology until every worker is registered.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use crate::client::{Client, Link, LinkNews, Pick};
use crate::protocol::message::{JobId, Message};
use crate::role::event::EventKind;
use crate::supervisor::launch;

/// Why a benchmark could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Setting up (a directory, a process) failed.
    #[error("{0}")]
    Setup(String),
    /// The cluster did not do what the benchmark waits for in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A connection failed.
    #[error("{0}")]
    Client(#[from] crate::client::ClientError),
}

/// How long any one thing a benchmark waits for may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// A spread of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    /// How many samples.
    pub n: usize,
    /// The median.
    pub median: f64,
    /// The 99th percentile (with few samples, the largest).
    pub p99: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples` (in milliseconds).
    pub fn of(mut samples: Vec<f64>) -> Spread {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if samples.is_empty() {
                return f64::NAN;
            }
            let i = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[i]
        };
        Spread {
            n: samples.len(),
            median: at(0.5),
            p99: at(0.99),
            min: samples.first().copied().unwrap_or(f64::NAN),
            max: samples.last().copied().unwrap_or(f64::NAN),
        }
    }

    fn ms(&self) -> String {
        format!(
            "{} ms (min {}, p99 {}, max {}; n={})",
            round(self.median),
            round(self.min),
            round(self.p99),
            round(self.max),
            self.n
        )
    }
}

fn round(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ----- nodes in a scratch directory -----

/// A topology in a scratch directory and the nodes started from it; every node is killed and
/// the directory removed when it is dropped.
struct Scratch {
    dir: PathBuf,
    topology: PathBuf,
    program: PathBuf,
    nodes: HashMap<String, (Child, ChildStdin)>,
    /// Whether servers keep a journal (or chat history) on disk, as under `tcluster run`.
    durable: bool,
}

impl Scratch {
    fn new(program: &Path, text: &str) -> Result<Scratch, BenchError> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tcluster-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        let topology = dir.join("bench.top");
        std::fs::write(&topology, text)
            .map_err(|e| BenchError::Setup(format!("cannot write {}: {e}", topology.display())))?;
        Ok(Scratch {
            dir,
            topology,
            program: program.to_path_buf(),
            nodes: HashMap::new(),
            durable: true,
        })
    }

    /// Starts node `name` and returns what follows its `READY <name> ` line (a server's
    /// address). `listen` for servers; `connect` is `--coordinator`.
    async fn start(
        &mut self,
        name: &str,
        listen: Option<&str>,
        connect: Option<&str>,
    ) -> Result<String, BenchError> {
        let command = launch::builtin_command(
            &self.program,
            &self.topology,
            name,
            listen,
            connect,
            None,
            self.durable.then(|| self.dir.join("state")).as_deref(),
        );
        let mut child = launch::spawn(command)
            .map_err(|e| BenchError::Setup(format!("cannot start {name}: {e}")))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        // Nobody reads a node's log here, but a full pipe would stop the node: drain it.
        if let Some(mut stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut sink = vec![0u8; 64 * 1024];
                while matches!(stderr.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
        let mut lines = BufReader::new(stdout).lines();
        let prefix = format!("READY {name} ");
        let ready = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix(&prefix) {
                    return Some(rest.to_string());
                }
            }
            None
        })
        .await;
        let rest = match ready {
            Ok(Some(rest)) => rest,
            Ok(None) => {
                return Err(BenchError::Setup(format!(
                    "{name} exited before it was ready"
                )));
            }
            Err(_) => return Err(BenchError::Timeout(format!("{name} was not ready"))),
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.nodes.insert(name.to_string(), (child, stdin));
        Ok(rest)
    }

    /// Starts a server on a free port; returns its address.
    async fn server(&mut self, name: &str, connect: Option<&str>) -> Result<String, BenchError> {
        let rest = self.start(name, Some("127.0.0.1:0"), connect).await?;
        Ok(rest
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string())
    }

    /// Sends `signal` to node `name`'s process group.
    fn signal(&self, name: &str, signal: Signal) -> Result<(), BenchError> {
        let pid = self
            .nodes
            .get(name)
            .and_then(|(c, _)| c.id())
            .ok_or_else(|| BenchError::Setup(format!("{name} is not running")))?;
        if launch::signal_group(pid, signal) {
            Ok(())
        } else {
            Err(BenchError::Setup(format!("cannot signal {name}")))
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for (child, _) in self.nodes.values() {
            if let Some(pid) = child.id() {
                launch::signal_group(pid, Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port on 127.0.0.1 (for topologies that must name ports before the nodes start).
fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::Setup(format!("no free port: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .port())
}

/// Waits for the next message `pick` accepts, for at most [`PATIENCE`].
async fn expect<T>(
    client: &mut Client,
    what: &str,
    mut pick: impl FnMut(Message) -> Option<T>,
) -> Result<T, BenchError> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(found) = pick(client.receive().await?.message) {
                return Ok(found);
            }
        }
    })
    .await
    .map_err(|_| BenchError::Timeout(what.to_string()))?
}

// ----- dispatch -----

/// What [`dispatch`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Dispatch {
    /// Worker processes.
    pub workers: u32,
    /// Job slots per worker.
    pub slots: u32,
    /// Whether the coordinator journaled every event to disk (as under `tcluster run`).
    pub journal: bool,
    /// Jobs submitted in the throughput run.
    pub jobs: u64,
    /// Seconds from the first submission to the last result.
    pub seconds: f64,
    /// Jobs per second.
    pub jobs_per_second: f64,
    /// One job at a time on an idle cluster: submit → result, in milliseconds.
    pub round_trip: Spread,
    /// A `ping` to the coordinator and its `pong`: the floor under every round trip.
    pub ping: Spread,
}

impl Dispatch {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "dispatch  {} no-op jobs, {} worker processes × {} slots, over TCP, {}\n\
             \x20 throughput   {:.0} jobs/s ({} jobs in {:.2} s, submitted one by one, pipelined)\n\
             \x20 round trip   {}\n\
             \x20 ping         {}\n",
            self.jobs,
            self.workers,
            self.slots,
            if self.journal {
                "journal on disk (fsync per batch)"
            } else {
                "no journal"
            },
            self.jobs_per_second,
            self.jobs,
            self.seconds,
            self.round_trip.ms(),
            self.ping.ms()
        )
    }
}

/// No-op jobs (`echo`) through a coordinator and `workers` worker processes.
pub async fn dispatch(
    program: &Path,
    workers: u32,
    slots: u32,
    jobs: u64,
    round_trips: usize,
    journal: bool,
) -> Result<Dispatch, BenchError> {
    let mut s = Scratch::new(
        program,
        &format!(
            "set LOG_LEVEL \"WARN\"\nnode coordinator {{ type master }}\n\
             node worker {{ type worker; count {workers}; resources {{ cpu {slots} }} }}\n\
             policy heartbeat {{ interval 1s; timeout 10s }}\npolicy load_balancing {{ algorithm least_loaded }}\n"
        ),
    )?;
    s.durable = journal;
    let addr = s.server("coordinator", None).await?;
    for i in 1..=workers {
        s.start(&format!("worker-{i}"), None, Some(&addr)).await?;
    }
    // Throughput: one submission per job, pipelined; the link reads while it writes.
    let mut link = Link::spawn(
        vec![addr.clone()],
        "bench".to_string(),
        None,
        Pick::Any,
        tokio_util::sync::CancellationToken::new(),
    );
    match tokio::time::timeout(PATIENCE, link.news.recv()).await {
        Ok(Some(LinkNews::Up(_))) => {}
        _ => return Err(BenchError::Timeout("connecting to the coordinator".into())),
    }
    let started = Instant::now();
    for i in 0..jobs {
        link.send(Message::Submit {
            data: format!("echo {i}"),
            count: 1,
            priority: 0,
            token: None,
            notify: true,
        });
    }
    let mut finished = 0u64;
    let waited = tokio::time::timeout(PATIENCE * 5, async {
        while finished < jobs {
            match link.news.recv().await {
                Some(LinkNews::Message(Message::JobFinished { .. })) => finished += 1,
                Some(LinkNews::Down(_, why)) => return Err(why),
                None => return Err("the link ended".to_string()),
                _ => {}
            }
        }
        Ok(())
    })
    .await;
    match waited {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return Err(BenchError::Setup(why)),
        Err(_) => {
            return Err(BenchError::Timeout(format!(
                "{finished} of {jobs} jobs finished"
            )));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(link);

    // Round trip: one job at a time, on the now idle cluster.
    let mut client = Client::connect(&addr, "bench-rtt", None).await?;
    let mut samples = Vec::with_capacity(round_trips);
    for i in 0..round_trips + round_trips / 10 {
        let t = Instant::now();
        client
            .send(Message::Submit {
                data: format!("echo {i}"),
                count: 1,
                priority: 0,
                token: None,
                notify: true,
            })
            .await?;
        expect(&mut client, "a job's result", |m| {
            matches!(m, Message::JobFinished { .. }).then_some(())
        })
        .await?;
        // The first tenth warms up (connections, allocations, caches).
        if i >= round_trips / 10 {
            samples.push(ms(t.elapsed()));
        }
    }
    let mut pings = Vec::with_capacity(round_trips);
    for i in 0..round_trips + round_trips / 10 {
        let t = Instant::now();
        client.request(Message::Ping).await?;
        if i >= round_trips / 10 {
            pings.push(ms(t.elapsed()));
        }
    }
    Ok(Dispatch {
        ping: Spread::of(pings),
        journal,
        workers,
        slots,
        jobs,
        seconds,
        jobs_per_second: jobs as f64 / seconds,
        round_trip: Spread::of(samples),
    })
}

// ----- detect -----

/// What [`detect`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Detect {
    /// The heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// The silence after which a worker is dead, ms.
    pub timeout_ms: u64,
    /// SIGKILL of a worker → the coordinator declares it dead.
    pub kill_detected: Spread,
    /// SIGSTOP of a worker → the coordinator declares it dead.
    pub stop_detected: Spread,
    /// Declared dead → every job it held assigned to another worker.
    pub reassigned: Spread,
}

impl Detect {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "detect  heartbeat every {} ms, dead after {} ms of silence; times seen by a subscriber\n\
             \x20 SIGKILL → dead      {}\n\
             \x20 SIGSTOP → dead      {}\n\
             \x20 dead → reassigned   {}\n",
            self.heartbeat_ms,
            self.timeout_ms,
            self.kill_detected.ms(),
            self.stop_detected.ms(),
            self.reassigned.ms()
        )
    }
}

/// Events of a coordinator as they arrive, each with the moment it arrived.
async fn event_feed(
    addr: &str,
) -> Result<mpsc::UnboundedReceiver<(Instant, EventKind)>, BenchError> {
    let mut client = Client::connect(addr, "bench-events", None).await?;
    client.send(Message::Subscribe { history: false }).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(envelope) = client.receive().await {
            if let Message::Event { event } = envelope.message
                && tx.send((Instant::now(), event.kind)).is_err()
            {
                break;
            }
        }
    });
    Ok(rx)
}

/// Waits for the first event `pick` accepts; returns when it arrived and what `pick` made of it.
async fn wait_event<T>(
    feed: &mut mpsc::UnboundedReceiver<(Instant, EventKind)>,
    what: &str,
    mut pick: impl FnMut(&EventKind) -> Option<T>,
) -> Result<(Instant, T), BenchError> {
    tokio::time::timeout(PATIENCE, async {
        while let Some((at, kind)) = feed.recv().await {
            if let Some(found) = pick(&kind) {
                return Some((at, found));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| BenchError::Timeout(what.to_string()))
}

/// `runs` rounds of: a cluster of a coordinator and four workers with two long jobs each; one
/// worker SIGKILLed, another SIGSTOPped.
pub async fn detect(
    program: &Path,
    heartbeat_ms: u64,
    timeout_ms: u64,
    runs: usize,
) -> Result<Detect, BenchError> {
    let (mut kill, mut stop, mut moved) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut s = Scratch::new(
            program,
            &format!(
                "set LOG_LEVEL \"WARN\"\nnode coordinator {{ type master }}\n\
                 node worker {{ type worker; count 4; resources {{ cpu 4 }} }}\n\
                 policy heartbeat {{ interval {heartbeat_ms}ms; suspect_after {}ms; timeout {timeout_ms}ms }}\n\
                 policy load_balancing {{ algorithm least_loaded }}\n",
                (timeout_ms / 2).max(heartbeat_ms)
            ),
        )?;
        let addr = s.server("coordinator", None).await?;
        for i in 1..=4 {
            s.start(&format!("worker-{i}"), None, Some(&addr)).await?;
        }
        let mut feed = event_feed(&addr).await?;
        let mut client = Client::connect(&addr, "bench", None).await?;
        client
            .send(Message::Submit {
                data: "sleep 10m".into(),
                count: 8,
                priority: 0,
                token: None,
                notify: false,
            })
            .await?;
        // Where each job runs.
        let mut placed: HashMap<JobId, String> = HashMap::new();
        while placed.len() < 8 {
            let (_, (job, worker)) = wait_event(&mut feed, "8 jobs started", |k| match k {
                EventKind::JobStarted { job, worker } => Some((*job, worker.clone())),
                _ => None,
            })
            .await?;
            placed.insert(job, worker);
        }
        let held: HashSet<JobId> = placed
            .iter()
            .filter(|(_, w)| *w == "worker-1")
            .map(|(j, _)| *j)
            .collect();

        let t0 = Instant::now();
        s.signal("worker-1", Signal::SIGKILL)?;
        let (dead_at, ()) = wait_event(&mut feed, "worker-1 declared dead", |k| {
            matches!(k, EventKind::WorkerDead { worker, .. } if worker == "worker-1").then_some(())
        })
        .await?;
        kill.push(ms(dead_at - t0));
        let mut waiting = held.clone();
        let mut last = dead_at;
        while !waiting.is_empty() {
            let (at, job) = wait_event(&mut feed, "worker-1's jobs reassigned", |k| match k {
                EventKind::JobAssigned { job, worker, .. } if worker != "worker-1" => Some(*job),
                _ => None,
            })
            .await?;
            if waiting.remove(&job) {
                last = at;
            }
        }
        moved.push(ms(last - dead_at));

        let t0 = Instant::now();
        s.signal("worker-2", Signal::SIGSTOP)?;
        let (dead_at, ()) = wait_event(&mut feed, "worker-2 declared dead", |k| {
            matches!(k, EventKind::WorkerDead { worker, .. } if worker == "worker-2").then_some(())
        })
        .await?;
        stop.push(ms(dead_at - t0));
        let _ = s.signal("worker-2", Signal::SIGCONT);
    }
    Ok(Detect {
        heartbeat_ms,
        timeout_ms,
        kill_detected: Spread::of(kill),
        stop_detected: Spread::of(stop),
        reassigned: Spread::of(moved),
    })
}

/// What [`soak`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// How long, seconds.
    pub seconds: f64,
    /// The heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// The silence after which a worker is dead, ms.
    pub timeout_ms: u64,
    /// Busy threads burning CPU beside the cluster.
    pub load_threads: usize,
    /// Healthy workers wrongly declared suspect.
    pub false_suspects: u64,
    /// Healthy workers wrongly declared dead.
    pub false_deaths: u64,
}

impl Soak {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "soak  {:.0} s, 4 healthy workers, heartbeat every {} ms, dead after {} ms, {} busy threads beside them\n\
             \x20 false suspects   {}\n\
             \x20 false deaths     {}\n",
            self.seconds,
            self.heartbeat_ms,
            self.timeout_ms,
            self.load_threads,
            self.false_suspects,
            self.false_deaths
        )
    }
}

/// Four healthy workers watched for `duration` while `load_threads` threads keep the CPUs busy:
/// every suspect or dead verdict is a false positive.
pub async fn soak(
    program: &Path,
    heartbeat_ms: u64,
    timeout_ms: u64,
    duration: Duration,
    load_threads: usize,
) -> Result<Soak, BenchError> {
    let mut s = Scratch::new(
        program,
        &format!(
            "set LOG_LEVEL \"WARN\"\nnode coordinator {{ type master }}\n\
             node worker {{ type worker; count 4; resources {{ cpu 2 }} }}\n\
             policy heartbeat {{ interval {heartbeat_ms}ms; suspect_after {}ms; timeout {timeout_ms}ms }}\n",
            (timeout_ms / 2).max(heartbeat_ms)
        ),
    )?;
    let addr = s.server("coordinator", None).await?;
    for i in 1..=4 {
        s.start(&format!("worker-{i}"), None, Some(&addr)).await?;
    }
    let mut feed = event_feed(&addr).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burners: Vec<_> = (0..load_threads)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
        })
        .collect();
    let (mut suspects, mut deaths) = (0u64, 0u64);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    loop {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Ok(Some((_, EventKind::WorkerSuspect { .. }))) => suspects += 1,
            Ok(Some((_, EventKind::WorkerDead { .. }))) => deaths += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for burner in burners {
        let _ = burner.join();
    }
    Ok(Soak {
        seconds: started.elapsed().as_secs_f64(),
        heartbeat_ms,
        timeout_ms,
        load_threads,
        false_suspects: suspects,
        false_deaths: deaths,
    })
}

// ----- failover -----

/// What [`failover`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    /// SIGKILL of the primary → the backup says it is primary.
    pub takeover: Spread,
    /// SIGKILL of the primary → a new job submitted to the backup has completed.
    pub serving: Spread,
}

impl Failover {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "failover  primary + backup (sync replication) + 2 workers; the client polls the backup every ms\n\
             \x20 SIGKILL → backup is primary      {}\n\
             \x20 SIGKILL → a new job completed   {}\n",
            self.takeover.ms(),
            self.serving.ms()
        )
    }
}

/// `runs` rounds of: primary, backup and two workers; the primary SIGKILLed.
pub async fn failover(program: &Path, runs: usize) -> Result<Failover, BenchError> {
    let (mut takeover, mut serving) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (p1, p2) = (free_port()?, free_port()?);
        let mut s = Scratch::new(
            program,
            &format!(
                "set LOG_LEVEL \"WARN\"\nnode coordinator {{ type master; role primary; port {p1} }}\n\
                 node backup {{ type master; role backup; port {p2} }}\n\
                 node worker {{ type worker; count 2; resources {{ cpu 2 }} }}\n\
                 policy heartbeat {{ interval 100ms; timeout 1s }}\n"
            ),
        )?;
        let primary = s
            .start("coordinator", Some(&format!("127.0.0.1:{p1}")), None)
            .await?;
        let primary = primary
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        let backup = format!("127.0.0.1:{p2}");
        s.start("backup", Some(&backup), None).await?;
        let masters = format!("{primary},{backup}");
        s.start("worker-1", None, Some(&masters)).await?;
        s.start("worker-2", None, Some(&masters)).await?;
        // Some history, replicated: ten jobs done.
        let mut client = Client::connect(&primary, "bench", None).await?;
        client
            .send(Message::Submit {
                data: "echo warm".into(),
                count: 10,
                priority: 0,
                token: None,
                notify: true,
            })
            .await?;
        for _ in 0..10 {
            expect(&mut client, "warm-up jobs", |m| {
                matches!(m, Message::JobFinished { .. }).then_some(())
            })
            .await?;
        }
        let mut watch = Client::connect(&backup, "bench-watch", None).await?;

        let t0 = Instant::now();
        s.signal("coordinator", Signal::SIGKILL)?;
        let deadline = t0 + PATIENCE;
        loop {
            if let Ok(Message::StatusReport { report }) =
                watch.request(Message::Status { job: None }).await
                && report.role == "primary"
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Timeout("the backup taking over".into()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        takeover.push(ms(t0.elapsed()));
        watch
            .send(Message::Submit {
                data: "echo after".into(),
                count: 1,
                priority: 0,
                token: None,
                notify: true,
            })
            .await?;
        expect(&mut watch, "a job on the new primary", |m| match m {
            Message::JobFinished { .. } => Some(()),
            _ => None,
        })
        .await?;
        serving.push(ms(t0.elapsed()));
    }
    Ok(Failover {
        takeover: Spread::of(takeover),
        serving: Spread::of(serving),
    })
}

// ----- chat -----

/// What [`chat`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Chat {
    /// What served: `tcluster chat` or `redis pub/sub`.
    pub server: String,
    /// Whether the server kept its history on disk (committed before anything is sent).
    pub history_on_disk: bool,
    /// Subscribers (each subscribed to every channel).
    pub subscribers: usize,
    /// Posts in the throughput run.
    pub posts: usize,
    /// Posts per second the server accepted and delivered.
    pub posts_per_second: f64,
    /// Deliveries per second to all subscribers together.
    pub deliveries_per_second: f64,
    /// Deliveries that never arrived (a tcluster chat server drops them for a subscriber too
    /// slow to read).
    pub lost: u64,
    /// The rate of the latency run, posts/s (half the throughput).
    pub paced_posts_per_second: f64,
    /// Publish → delivery at that rate, ms.
    pub latency: Spread,
}

impl Chat {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "chat  {} ({}), {} subscribers to every channel, one publisher\n\
             \x20 throughput   {:.0} deliveries/s ({:.0} posts/s × {}; {} lost)\n\
             \x20 latency at {:.0} posts/s (half)   {}\n",
            self.server,
            if self.history_on_disk {
                "history on disk, committed before delivery"
            } else {
                "in memory only"
            },
            self.subscribers,
            self.deliveries_per_second,
            self.posts_per_second,
            self.subscribers,
            self.lost,
            self.paced_posts_per_second,
            self.latency.ms()
        )
    }
}

/// Where the fan-out benchmark publishes: a tcluster chat server, or Redis.
enum Publisher {
    Chat(Client),
    Redis(
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    ),
}

impl Publisher {
    async fn send(&mut self, text: String) -> Result<(), BenchError> {
        match self {
            Publisher::Chat(client) => Ok(client
                .send(Message::ChatPublish {
                    channel: "bench".into(),
                    text,
                })
                .await?),
            Publisher::Redis(_, write) => {
                use tokio::io::AsyncWriteExt;
                let command = resp(&["PUBLISH", "bench", &text]);
                write
                    .write_all(command.as_bytes())
                    .await
                    .map_err(|e| BenchError::Setup(format!("redis: {e}")))
            }
        }
    }

    async fn acknowledged(&mut self) -> Result<(), BenchError> {
        match self {
            Publisher::Chat(client) => {
                expect(client, "the publisher's acknowledgements", |m| match m {
                    Message::ChatDone { .. } | Message::Error { .. } => Some(()),
                    _ => None,
                })
                .await
            }
            Publisher::Redis(read, _) => read_resp(read).await.map(|_| ()),
        }
    }

    /// Publishes `n` posts (each text its send time), at most `window` unanswered, paced to
    /// `rate` posts/s if given.
    async fn publish(
        &mut self,
        origin: Instant,
        n: usize,
        window: usize,
        rate: Option<f64>,
    ) -> Result<(), BenchError> {
        let started = Instant::now();
        let (mut sent, mut acked) = (0usize, 0usize);
        while acked < n {
            while sent < n && sent - acked < window {
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(sent as f64 / rate);
                    if due > Instant::now() {
                        if sent > acked {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                let stamp = origin.elapsed().as_secs_f64() * 1000.0;
                self.send(format!("{stamp:.4}")).await?;
                sent += 1;
            }
            if acked < sent {
                self.acknowledged().await?;
                acked += 1;
            }
        }
        Ok(())
    }
}

/// A Redis command in its wire form.
fn resp(words: &[&str]) -> String {
    let mut out = format!("*{}\r\n", words.len());
    for w in words {
        out.push_str(&format!("${}\r\n{w}\r\n", w.len()));
    }
    out
}

/// Reads one Redis reply; returns the bulk strings in it.
async fn read_resp(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<Vec<String>, BenchError> {
    let fail = |e: String| BenchError::Setup(format!("redis: {e}"));
    let mut line = String::new();
    let line_of = async |read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
                         line: &mut String|
           -> Result<(), BenchError> {
        line.clear();
        match read.read_line(line).await {
            Ok(0) => Err(fail("closed".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(fail(e.to_string())),
        }
    };
    line_of(read, &mut line).await?;
    let items = match line.as_bytes().first() {
        Some(b'*') => line[1..].trim().parse::<usize>().unwrap_or(0),
        Some(b'-') => return Err(fail(line.trim().to_string())),
        _ => return Ok(vec![line.trim().to_string()]),
    };
    let mut out = Vec::with_capacity(items);
    for _ in 0..items {
        line_of(read, &mut line).await?;
        if line.starts_with('$') {
            line_of(read, &mut line).await?;
        }
        out.push(line.trim_end().to_string());
    }
    Ok(out)
}

/// The fan-out measurement both servers go through: a throughput run, then a latency run at
/// half that rate. `deliveries` carries (arrival, send time in ms since `origin`).
async fn fan_out(
    publisher: &mut Publisher,
    deliveries: &mut mpsc::UnboundedReceiver<(Instant, f64)>,
    origin: Instant,
    subscribers: usize,
    posts: usize,
    window: usize,
) -> Result<(f64, f64, usize, f64, Spread), BenchError> {
    let started = Instant::now();
    publisher.publish(origin, posts, window, None).await?;
    let expected = posts * subscribers;
    let mut got = 0usize;
    let mut last = started;
    while got < expected {
        match tokio::time::timeout(Duration::from_secs(2), deliveries.recv()).await {
            Ok(Some((at, _))) => {
                got += 1;
                last = at;
            }
            // Whatever has not arrived after two quiet seconds is not coming.
            _ => break,
        }
    }
    let seconds = (last - started).as_secs_f64().max(1e-9);
    let posts_per_second = posts as f64 / seconds;

    let paced = posts_per_second / 2.0;
    let n = ((paced * 3.0) as usize).clamp(100, 200_000);
    publisher.publish(origin, n, window, Some(paced)).await?;
    let mut samples = Vec::with_capacity(n * subscribers);
    while samples.len() < n * subscribers {
        match tokio::time::timeout(Duration::from_secs(2), deliveries.recv()).await {
            Ok(Some((at, sent))) => samples.push((at - origin).as_secs_f64() * 1000.0 - sent),
            _ => break,
        }
    }
    Ok((
        posts_per_second,
        got as f64 / seconds,
        expected - got,
        paced,
        Spread::of(samples),
    ))
}

/// One chat server, `subscribers` subscribers, one publisher with `window` posts in flight.
pub async fn chat(
    program: &Path,
    subscribers: usize,
    posts: usize,
    window: usize,
    history_on_disk: bool,
) -> Result<Chat, BenchError> {
    let mut s = Scratch::new(
        program,
        "set LOG_LEVEL \"WARN\"\nnode chat-1 { type chat }\npolicy chat { rate 0 }\n",
    )?;
    s.durable = history_on_disk;
    let addr = s.server("chat-1", None).await?;
    let origin = Instant::now();
    let (tx, mut deliveries) = mpsc::unbounded_channel::<(Instant, f64)>();
    for i in 0..subscribers {
        let mut c = Client::connect(&addr, &format!("sub-{i}"), None).await?;
        c.send(Message::ChatSubscribe {
            channel: "*".into(),
        })
        .await?;
        expect(&mut c, "subscribed", |m| {
            matches!(m, Message::ChatDone { .. }).then_some(())
        })
        .await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(envelope) = c.receive().await {
                if let Message::ChatMessage { entry } = envelope.message
                    && let crate::protocol::message::ChatBody::Post { text, .. } = entry.body
                    && let Ok(sent) = text.parse::<f64>()
                    && tx.send((Instant::now(), sent)).is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut client = Client::connect(&addr, "publisher", None).await?;
    client
        .request(Message::ChatLogin {
            user: "publisher".into(),
            password: None,
            token: None,
        })
        .await?;
    client
        .request(Message::ChatCreate {
            channel: "bench".into(),
        })
        .await?;
    let mut publisher = Publisher::Chat(client);
    let (posts_per_second, deliveries_per_second, lost, paced, latency) = fan_out(
        &mut publisher,
        &mut deliveries,
        origin,
        subscribers,
        posts,
        window,
    )
    .await?;
    drop(s);
    Ok(Chat {
        server: "tcluster chat".into(),
        history_on_disk,
        subscribers,
        posts,
        posts_per_second,
        deliveries_per_second,
        lost: lost as u64,
        paced_posts_per_second: paced,
        latency,
    })
}

/// The same fan-out through Redis pub/sub at `addr` (a server started by the caller).
pub async fn redis_chat(
    addr: &str,
    subscribers: usize,
    posts: usize,
    window: usize,
) -> Result<Chat, BenchError> {
    let connect = async |addr: &str| {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Setup(format!("cannot connect to redis at {addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        Ok::<_, BenchError>((BufReader::new(read), write))
    };
    let origin = Instant::now();
    let (tx, mut deliveries) = mpsc::unbounded_channel::<(Instant, f64)>();
    for _ in 0..subscribers {
        use tokio::io::AsyncWriteExt;
        let (mut read, mut write) = connect(addr).await?;
        write
            .write_all(resp(&["SUBSCRIBE", "bench"]).as_bytes())
            .await
            .map_err(|e| BenchError::Setup(format!("redis: {e}")))?;
        read_resp(&mut read).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let _write = write;
            while let Ok(reply) = read_resp(&mut read).await {
                if let [kind, _, text] = &reply[..]
                    && kind == "message"
                    && let Ok(sent) = text.parse::<f64>()
                    && tx.send((Instant::now(), sent)).is_err()
                {
                    break;
                }
            }
        });
    }
    drop(tx);
    let (read, write) = connect(addr).await?;
    let mut publisher = Publisher::Redis(read, write);
    let (posts_per_second, deliveries_per_second, lost, paced, latency) = fan_out(
        &mut publisher,
        &mut deliveries,
        origin,
        subscribers,
        posts,
        window,
    )
    .await?;
    Ok(Chat {
        server: "redis pub/sub".into(),
        history_on_disk: false,
        subscribers,
        posts,
        posts_per_second,
        deliveries_per_second,
        lost: lost as u64,
        paced_posts_per_second: paced,
        latency,
    })
}

// ----- startup -----

/// What [`startup`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// The topology.
    pub topology: String,
    /// Nodes in it.
    pub nodes: usize,
    /// Launch → every master and chat server listening and every worker registered.
    pub ready: Spread,
}

impl Startup {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "startup  {} ({} nodes), launched as `tcluster run` launches it\n\
             \x20 launch → every node ready   {}\n",
            self.topology,
            self.nodes,
            self.ready.ms()
        )
    }
}

/// Launches `topology` `runs` times, as `tcluster run` does, until every node is ready.
pub async fn startup(
    program: &Path,
    topology_path: &Path,
    runs: usize,
) -> Result<Startup, BenchError> {
    use crate::topology::NodeKind;
    let (topology, _) = crate::topology::load(topology_path)
        .map_err(|e| BenchError::Setup(format!("{}: {e}", topology_path.display())))?;
    let workers = topology.nodes_of(NodeKind::Worker).count();
    let mut samples = Vec::new();
    for _ in 0..runs {
        let scratch = Scratch::new(program, "")?;
        let options = crate::supervisor::RunOptions {
            topology_path: topology_path.to_path_buf(),
            state_dir: scratch.dir.join("state"),
            program: program.to_path_buf(),
            seed: 1,
            start: crate::state_dir::Start::Fresh,
        };
        let t0 = Instant::now();
        let handle = crate::supervisor::launch(topology.clone(), options)
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let addr = handle.coordinator.to_string();
        let mut client = Client::connect(&addr, "bench", None).await?;
        loop {
            if let Message::StatusReport { report } =
                client.request(Message::Status { job: None }).await?
                && report.workers.healthy >= workers
            {
                break;
            }
            if t0.elapsed() > PATIENCE {
                return Err(BenchError::Timeout("every worker registered".into()));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(ms(t0.elapsed()));
        let _ = handle.stop().await;
    }
    Ok(Startup {
        topology: topology_path.display().to_string(),
        nodes: topology.nodes.len(),
        ready: Spread::of(samples),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads() {
        let s = Spread::of(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((s.n, s.median, s.min, s.max), (5, 3.0, 1.0, 5.0));
        let big = Spread::of((1..=1000).map(f64::from).collect());
        assert_eq!(big.p99, 990.0);
        assert!(Spread::of(Vec::new()).median.is_nan());
    }
}
