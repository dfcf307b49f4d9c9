//! Verdicts: four healthy workers watched while busy threads keep every CPU loaded; any suspect
//! or dead verdict is a false positive.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchError;
use super::detect::event_feed;
use super::scratch::Scratch;
use crate::cluster::event::EventKind;

/// What [`verdicts`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct Verdicts {
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

impl Verdicts {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "verdicts  {:.0} s, 4 healthy workers, heartbeat every {} ms, dead after {} ms, {} busy threads beside them\n\
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
pub async fn verdicts(
    program: &Path,
    heartbeat_ms: u64,
    timeout_ms: u64,
    duration: Duration,
    load_threads: usize,
) -> Result<Verdicts, BenchError> {
    let (_nodes, addr) = Scratch::cluster(
        program,
        4,
        2,
        &format!(
            "policy heartbeat {{ interval {heartbeat_ms}ms; suspect_after {}ms; timeout {timeout_ms}ms }}\n",
            (timeout_ms / 2).max(heartbeat_ms)
        ),
        true,
    )
    .await?;
    let mut feed = event_feed(&addr).await?;
    let load = super::BusyThreads::start(load_threads);
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
    drop(load);
    Ok(Verdicts {
        seconds: started.elapsed().as_secs_f64(),
        heartbeat_ms,
        timeout_ms,
        load_threads,
        false_suspects: suspects,
        false_deaths: deaths,
    })
}
