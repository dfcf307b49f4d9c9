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
//! - [`journal`]: restart time and bytes on disk after 10k, 100k and 1M completed jobs, with
//!   and without compaction (the coordinator's state machine and a real journal, no sockets).
//! - [`soak`]: the console in a pseudo-terminal on the demo topology for a long while, with a
//!   steady job stream: resident memory of the console and of every node, and false verdicts.
//! - [`verdicts`]: healthy workers watched while busy threads keep the CPUs loaded, to count
//!   false suspects and deaths with a fast heartbeat.
//! - [`frames`]: the real console in a pseudo-terminal while its cluster runs 10,000 jobs a
//!   second: frame time and the console's CPU.
//! - [`draw`] and [`ingest`]: the console's own work without nodes — a frame with a large
//!   history, and log lines parsed and kept — on one core.
//!
//! The nodes of every benchmark live in a `scratch::Scratch` directory (a coordinator and
//! its workers are one call, `scratch::Scratch::cluster`); `redis` is the little Redis
//! client the chat benchmark compares with.

mod chat;
mod detect;
mod dispatch;
mod draw;
mod failover;
mod frames;
mod ingest;
mod journal;
mod lending;
mod redis;
mod scratch;
mod soak;
mod startup;
mod tally;
mod verdicts;

use std::path::Path;
use std::time::Duration;

use crate::client::Client;
use crate::protocol::message::Message;

pub use chat::{Chat, FanOut, chat, redis_chat};
pub use detect::{Detect, detect};
pub use dispatch::{Dispatch, dispatch};
pub use draw::{Draw, DrawCase, draw};
pub use failover::{Failover, failover};
pub use frames::{Frames, frames};
pub use ingest::{Ingest, ingest};
pub use journal::{JournalBench, JournalRun, journal};
pub use lending::{LendingBench, lending};
pub use soak::{Sample, Soak, SoakPlan, soak};
pub use startup::{Startup, startup};
pub use verdicts::{Verdicts, verdicts};

/// Threads that keep the CPUs busy beside the cluster (`--load`), until dropped.
pub(crate) struct BusyThreads {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyThreads {
    /// Starts `n` threads spinning at normal priority.
    pub(crate) fn start(n: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        BusyThreads { stop, threads }
    }
}

impl Drop for BusyThreads {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

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
pub(super) const PATIENCE: Duration = Duration::from_secs(60);

/// A link to the coordinator at `addr` that reads while it writes (for pipelined submissions),
/// once it is up.
pub(super) async fn link_to(addr: String) -> Result<crate::client::Link, BenchError> {
    use crate::client::{Link, LinkNews, Pick};
    let mut link = Link::spawn(
        vec![addr],
        "bench".to_string(),
        None,
        Pick::Any,
        tokio_util::sync::CancellationToken::new(),
    );
    match tokio::time::timeout(PATIENCE, link.news.recv()).await {
        Ok(Some(LinkNews::Up(_))) => Ok(link),
        _ => Err(BenchError::Timeout("connecting to the coordinator".into())),
    }
}

pub use crate::clock::Spread;

impl Spread {
    pub(super) fn ms(&self) -> String {
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

pub(super) fn round(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// The topology at `path`, or why it cannot be benchmarked.
fn load_topology(path: &Path) -> Result<crate::topology::Topology, BenchError> {
    crate::topology::load(path)
        .map(|(topology, _)| topology)
        .map_err(|e| BenchError::Setup(format!("{}: {e}", path.display())))
}

/// Launches `topology` (read from `path`) as `tcluster run` does, fresh, in `scratch`.
async fn launch_as_run(
    program: &Path,
    scratch: &scratch::Scratch,
    path: &Path,
    topology: crate::topology::Topology,
) -> Result<crate::supervisor::SupervisorHandle, BenchError> {
    let options = crate::supervisor::RunOptions {
        topology_path: path.to_path_buf(),
        state_dir: scratch.dir.join("state"),
        program: program.to_path_buf(),
        seed: 1,
        start: crate::state_dir::Start::Fresh,
        shaping: crate::supervisor::Shaping::default(),
        job_histories: false,
    };
    crate::supervisor::launch(topology, options)
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))
}

/// CPU seconds (user and system) process `pid` has used, from /proc (Linux).
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // In USER_HZ, which Linux fixes at 100 a second for every program.
    Some(ticks / 100.0)
}

/// Milliseconds process `pid`'s main thread has spent ready to run but waiting for a core, from
/// /proc (Linux's schedstat): what the machine took from a loop that runs on one thread.
pub(super) fn waited_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: f64 = stat.split_whitespace().nth(1)?.parse().ok()?;
    Some(ns / 1e6)
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A free port on 127.0.0.1 (for topologies that must name ports before the nodes start).
pub(super) fn free_port() -> Result<u16, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::Setup(format!("no free port: {e}")))?;
    Ok(listener
        .local_addr()
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .port())
}

/// Waits for the next message `pick` accepts, for at most [`PATIENCE`].
pub(super) async fn expect<T>(
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
