//! The worker's driver: connects to the coordinator, runs jobs, feeds the [`Worker`].
//!
//! It connects (authenticating if the cluster has a secret), tells the worker it is connected,
//! and then loops over three sources: lines from the coordinator, progress and results from
//! running jobs, and a ticker for heartbeats. When the connection breaks it tells the worker and
//! connects again, waiting 100ms, then 200ms, … up to 2s between tries, so a cluster whose
//! coordinator restarts finds its workers back by themselves.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::protocol::frame::{MAX_LINE, frame_text, line_codec};
use crate::protocol::message::{JobId, Message};
use crate::protocol::{Dialect, decode};
use crate::role::job::{CLASSIC_DELAY, JobKind, classic_result, count_primes};
use crate::role::worker::{Worker, WorkerConfig, WorkerInput, WorkerOutput};

use super::control::NodeControl;
use super::handshake;

/// Where and how a worker connects.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The worker's own settings.
    pub config: WorkerConfig,
    /// Every master's address, `host:port`, the primary first. The worker connects to one; when
    /// it is told that one is not the primary, or loses it, it tries the next.
    pub coordinators: Vec<String>,
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

/// Runs a worker until `shutdown` is cancelled.
pub async fn run(options: WorkerOptions, shutdown: CancellationToken) {
    let started = Instant::now();
    let control = options.control.clone();
    let mut pause = control.clone();
    let now = move || control.now(started);
    let mut worker = Worker::new(options.config.clone());
    let (results_tx, mut results) = mpsc::unbounded_channel::<WorkerInput>();
    let mut jobs: HashMap<JobId, (AbortHandle, Arc<AtomicBool>)> = HashMap::new();
    let mut announced = false;
    let mut backoff = Duration::from_millis(100);
    // Which master to try, as an index into `coordinators` (wrapping).
    let mut target = 0usize;

    'reconnect: loop {
        let stream = tokio::select! {
        _ = shutdown.cancelled() => break,
        s = TcpStream::connect(current(&options, target)) => s,};
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                debug!(coordinator = %current(&options, target), "connect failed: {e}; retrying in {backoff:?}");
                target += 1;
                // Jobs keep running while disconnected; their results wait in the worker.
                let deadline = tokio::time::sleep(backoff);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break 'reconnect,
                        _ = &mut deadline => break,
                        Some(input) = results.recv() => {
                            let out = worker.step(now(), input);
                            act(out, &mut jobs, &results_tx, &options, None).await;
                        }
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let mut lines = FramedRead::new(read, line_codec(MAX_LINE));
        if let Some(secret) = &options.secret
            && let Err(e) = handshake::prove(
                &mut lines,
                &mut write,
                secret,
                &options.config.name,
                crate::protocol::message::PeerRole::Worker,
            )
            .await
        {
            warn!("authentication with the coordinator failed: {e}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        }
        info!(coordinator = %current(&options, target), "connected");
        backoff = Duration::from_millis(100);
        let out = worker.step(now(), WorkerInput::Connected);
        if !act(out, &mut jobs, &results_tx, &options, Some(&mut write)).await {
            worker.step(now(), WorkerInput::Disconnected);
            continue;
        }
        let mut last_heard = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(
            (options.config.heartbeat_ms / 4).clamp(5, 250),
        ));
        loop {
            tokio::select! {
                _ = pause.wait_while_paused() => {}
                _ = shutdown.cancelled() => break 'reconnect,
            }
            let input = tokio::select! {
            _ = shutdown.cancelled() => break 'reconnect,line = lines.next() => match line.inspect(|_| last_heard = Instant::now()) {Some(Ok(bytes)) => match frame_text(&bytes).map_err(|e| e.to_string()).and_then(|t| decode(Dialect::Native, t, "")) {
                    Ok(envelope) if matches!(envelope.message, Message::NotPrimary { .. }) => {
                        // A backup: the primary is elsewhere (maybe this one after a failover).
                        info!(coordinator = %current(&options, target), "not the primary; trying the next master");
                        target += 1;
                        break;
                    }
                    Ok(envelope) => {if !announced && options.announce && matches!(envelope.message, Message::Registered { .. }) {
                            announced = true;
                            println!("READY {} registered with {}", options.config.name, current(&options, target));
                        }
                        WorkerInput::Received(envelope)
                    }
                    Err(e) => {
                        warn!("bad line from the coordinator: {e}");
                        continue;
                    }
                },
                Some(Err(e)) => {
                    warn!("connection to the coordinator failed: {e:?}");
                    break;
                }
                None => {
                    info!("the coordinator closed the connection");
                    // It may be gone for good: the next master may have taken over.
                    target += 1;
                    break;
                }
            },
            Some(input) = results.recv() => input,
            _ = ticker.tick() => {
                if last_heard.elapsed() > Duration::from_millis(options.silence_ms) {
                    warn!(coordinator = %current(&options, target), "the coordinator is silent; trying the next master");
                    target += 1;
                    break;
                }
                WorkerInput::Tick
            }};
            let out = worker.step(now(), input);
            if !act(out, &mut jobs, &results_tx, &options, Some(&mut write)).await {
                break;
            }
        }
        worker.step(now(), WorkerInput::Disconnected);
    }
    for (_, (abort, cancelled)) in jobs.drain() {
        cancelled.store(true, Ordering::Relaxed);
        abort.abort();
    }
}

/// Carries out the worker's outputs. Returns false if the connection broke.
async fn act(
    outputs: Vec<WorkerOutput>,
    jobs: &mut HashMap<JobId, (AbortHandle, Arc<AtomicBool>)>,
    results: &mpsc::UnboundedSender<WorkerInput>,
    options: &WorkerOptions,
    write: Option<&mut tokio::net::tcp::OwnedWriteHalf>,
) -> bool {
    let mut ok = true;
    let mut buffer = Vec::new();
    for output in outputs {
        match output {
            WorkerOutput::Send(envelope) => {
                buffer.extend_from_slice(envelope.to_json().as_bytes());
                buffer.push(b'\n');
            }
            WorkerOutput::Run { job, data } => {
                let cancelled = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(execute(
                    job,
                    data,
                    options.config.name.clone(),
                    results.clone(),
                    cancelled.clone(),
                ));
                jobs.insert(job, (task.abort_handle(), cancelled));
            }
            WorkerOutput::Stop(job) => {
                if let Some((abort, cancelled)) = jobs.remove(&job) {
                    cancelled.store(true, Ordering::Relaxed);
                    abort.abort();
                }
            }
        }
    }
    jobs.retain(|_, (abort, _)| !abort.is_finished());
    if let Some(write) = write
        && !buffer.is_empty()
    {
        ok = write.write_all(&buffer).await.is_ok();
    }
    ok
}

/// Runs one job to its end, reporting progress and the outcome.
async fn execute(
    job: JobId,
    data: String,
    worker: String,
    results: mpsc::UnboundedSender<WorkerInput>,
    cancelled: Arc<AtomicBool>,
) {
    let progress = |percent: u8| {
        let _ = results.send(WorkerInput::Progress { job, percent });
    };
    let outcome = match JobKind::parse(&data) {
        Err(e) => Err(e),
        Ok(JobKind::Echo(text)) => Ok(text),
        Ok(JobKind::Fail(why)) => Err(why),
        Ok(JobKind::Classic(text)) => {
            tokio::time::sleep(CLASSIC_DELAY).await;
            Ok(classic_result(&text, &worker))
        }
        Ok(JobKind::Sleep(total)) => {
            // Report progress about ten times, but not more often than every 200ms.
            let step = (total / 10).max(Duration::from_millis(200));
            let start = Instant::now();
            loop {
                let left = total.saturating_sub(start.elapsed());
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(step)).await;
                let done = start.elapsed().as_secs_f64() / total.as_secs_f64();
                progress((done * 100.0).min(100.0) as u8);
            }
            Ok(format!(
                "slept {}",
                crate::topology::units::format_duration(total)
            ))
        }
        Ok(JobKind::Cpu(n)) => {
            let results = results.clone();
            let flag = cancelled.clone();
            let counted = tokio::task::spawn_blocking(move || {
                let mut last = 0;
                count_primes(n, |percent| {
                    if percent >= last + 10 {
                        last = percent;
                        let _ = results.send(WorkerInput::Progress { job, percent });
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
        let _ = results.send(WorkerInput::Finished { job, outcome });
    }
}
