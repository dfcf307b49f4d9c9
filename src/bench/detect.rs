//! Failure detection: a worker SIGKILLed (its connection closes) and one SIGSTOPped (it falls
//! silent), until the coordinator declares it dead, and until its jobs run elsewhere.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::signal::Signal;
use serde::Serialize;
use tokio::sync::mpsc;

use super::scratch::Scratch;
use super::{BenchError, PATIENCE, Spread, ms};
use crate::client::Client;
use crate::cluster::event::EventKind;
use crate::protocol::message::{JobId, Message};

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
pub(super) async fn event_feed(
    addr: &str,
) -> Result<mpsc::UnboundedReceiver<(Instant, EventKind)>, BenchError> {
    let mut client = Client::connect(addr, "bench-events", None).await?;
    client.send(Message::Subscribe { history: false }).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(envelope) = client.receive().await {
            if let Message::Event { event } = envelope.message
                && tx
                    .send((Instant::now(), Arc::unwrap_or_clone(event).kind))
                    .is_err()
            {
                break;
            }
        }
    });
    Ok(rx)
}

/// Waits for the first event `pick` accepts; returns when it arrived and what `pick` made of it.
pub(super) async fn wait_event<T>(
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
        let (s, addr) = Scratch::cluster(
            program,
            4,
            4,
            &format!(
                "policy heartbeat {{ interval {heartbeat_ms}ms; suspect_after {}ms; timeout {timeout_ms}ms }}\n\
                 policy load_balancing {{ algorithm least_loaded }}\n",
                (timeout_ms / 2).max(heartbeat_ms)
            ),
            true,
        )
        .await?;
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
