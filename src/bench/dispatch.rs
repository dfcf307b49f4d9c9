//! Dispatch: no-op jobs end to end through a coordinator and several worker processes (jobs/s),
//! and the round trip of one job, and of a `ping`, on an idle cluster.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::scratch::Scratch;
use super::{BenchError, PATIENCE, Spread, expect, ms};
use crate::client::{Client, LinkNews};
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::protocol::message::{JobId, Message};
use crate::topology::policies::Durability;

/// What [`dispatch`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Dispatch {
    /// Worker processes.
    pub workers: u32,
    /// Job slots per worker.
    pub slots: u32,
    /// Whether the coordinator journaled every event to disk (as under `tcluster run`).
    pub journal: bool,
    /// When its commits reached the disk (`policy journal { durability … }`).
    pub durability: String,
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
    /// A `ping` from another client every millisecond while the lone jobs run: what a message
    /// that promises nothing waits while other clients' jobs are being committed.
    pub ping_beside_jobs: Spread,
    /// With the journal: the disk's own floor, measured the same way in the same directory.
    pub disk: Option<DiskFloor>,
    /// CPU time per job during the throughput run, in microseconds: what each job costs,
    /// whatever else the machine is doing (jobs/s moves with it; this mostly does not).
    pub cpu_per_job: CpuPerJob,
}

/// Microseconds of CPU (user and system) per job of the throughput run, by process (Linux's
/// /proc; NaN elsewhere).
#[derive(Debug, Clone, Serialize)]
pub struct CpuPerJob {
    /// The coordinator (every thread: its loop, connections and journal).
    pub coordinator: f64,
    /// The worker processes together.
    pub workers: f64,
    /// This benchmark's own client, submitting and reading.
    pub client: f64,
}

/// CPU seconds of the coordinator, of the workers together and of this process.
fn cpu_now(nodes: &Scratch, workers: u32) -> [Option<f64>; 3] {
    let together = (1..=workers)
        .map(|i| nodes.cpu_seconds(&format!("worker-{i}")))
        .sum::<Option<f64>>();
    [
        nodes.cpu_seconds("coordinator"),
        together,
        super::cpu_seconds(std::process::id()),
    ]
}

/// What the disk under the journal costs by itself: the floor under a durable round trip, whose
/// quick job pays one commit (its result shares its submission's).
#[derive(Debug, Clone, Serialize)]
pub struct DiskFloor {
    /// 100 bytes written after the last into blocks the file already has, and `fdatasync`ed:
    /// the disk's own floor, for a write like a journal commit's.
    pub fsync: Spread,
    /// One event appended to a journal under `durability sync` (its line written and synced).
    pub commit: Spread,
}

impl Dispatch {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "dispatch  {} no-op jobs, {} worker processes × {} slots, over TCP, {}\n\
             \x20 throughput   {:.0} jobs/s ({} jobs in {:.2} s, submitted one by one, pipelined)\n\
             \x20 round trip   {}\n\
             \x20 ping         {}\n\
             \x20 ping beside  {} (another client, while the lone jobs are committed)\n\
             \x20 CPU per job  coordinator {:.1} µs, workers {:.1} µs, this client {:.1} µs\n{}",
            self.jobs,
            self.workers,
            self.slots,
            if self.journal {
                format!("journal on disk, durability {}", self.durability)
            } else {
                "no journal".to_string()
            },
            self.jobs_per_second,
            self.jobs,
            self.seconds,
            self.round_trip.ms(),
            self.ping.ms(),
            self.ping_beside_jobs.ms(),
            self.cpu_per_job.coordinator,
            self.cpu_per_job.workers,
            self.cpu_per_job.client,
            match &self.disk {
                Some(d) => format!(
                    "  disk fsync   {} (100 bytes, fdatasync)\n  journal commit {} (one event, sync)\n  floor        {:.3} ms of a lone durable job's round trip is its one commit (its result shares its submission's; p50)\n",
                    d.fsync.ms(),
                    d.commit.ms(),
                    d.commit.median
                ),
                None => String::new(),
            }
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
    journal: Option<&str>,
) -> Result<Dispatch, BenchError> {
    let durability = journal.unwrap_or("sync");
    let policies = format!(
        "policy heartbeat {{ interval 1s; timeout 10s }}\npolicy load_balancing {{ algorithm least_loaded }}\npolicy journal {{ durability {durability} }}\n"
    );
    let (nodes, addr) =
        Scratch::cluster(program, workers, slots, &policies, journal.is_some()).await?;
    let disk = match journal {
        Some(_) => {
            let dir = nodes.dir.join("floor");
            let n = round_trips;
            Some(
                tokio::task::spawn_blocking(move || disk_floor(&dir, n))
                    .await
                    .map_err(|e| BenchError::Setup(e.to_string()))??,
            )
        }
        None => None,
    };
    // Throughput: one submission per job, pipelined; the link reads while it writes. At most
    // WINDOW jobs are unfinished at a time, so the coordinator's replies to this one client
    // never pile up past what a client may leave unread, however many jobs are asked for.
    const WINDOW: u64 = 4096;
    let mut link = super::link_to(addr.clone()).await?;
    let submit = |link: &mut crate::client::Link, i: u64| {
        link.send(Message::Submit {
            data: format!("echo {i}"),
            count: 1,
            priority: 0,
            token: None,
            notify: true,
        })
    };
    let cpu_before = cpu_now(&nodes, workers);
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < jobs.min(WINDOW) {
        submit(&mut link, sent);
        sent += 1;
    }
    let mut finished = 0u64;
    let waited = tokio::time::timeout(PATIENCE * 5, async {
        while finished < jobs {
            match link.news.recv().await {
                Some(LinkNews::Message(Message::JobFinished { .. })) => {
                    finished += 1;
                    if sent < jobs {
                        submit(&mut link, sent);
                        sent += 1;
                    }
                }
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
    let cpu_after = cpu_now(&nodes, workers);
    let per_job = |i: usize| match (cpu_before[i], cpu_after[i]) {
        (Some(a), Some(b)) => (b - a) / jobs as f64 * 1e6,
        _ => f64::NAN,
    };
    let cpu_per_job = CpuPerJob {
        coordinator: per_job(0),
        workers: per_job(1),
        client: per_job(2),
    };
    drop(link);

    // Round trip: one job at a time, on the now idle cluster.
    let mut client = Client::connect(&addr, "bench-rtt", None).await?;
    let samples = lone_jobs(&mut client, round_trips).await?;
    // Another client pings all along, on its own connection, while the jobs are committed.
    let pinging = tokio_util::sync::CancellationToken::new();
    let pinger = {
        let mut client = Client::connect(&addr, "bench-ping", None).await?;
        let stop = pinging.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                let t = Instant::now();
                if client.request(Message::Ping).await.is_err() {
                    break;
                }
                samples.push(ms(t.elapsed()));
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            samples
        })
    };
    lone_jobs(&mut client, round_trips / 2).await?;
    pinging.cancel();
    let beside = pinger.await.unwrap_or_default();
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
        ping_beside_jobs: Spread::of(beside),
        disk,
        journal: journal.is_some(),
        durability: durability.to_string(),
        workers,
        slots,
        jobs,
        seconds,
        jobs_per_second: jobs as f64 / seconds,
        round_trip: Spread::of(samples),
        cpu_per_job,
    })
}

/// The disk's floor in `dir`: `n` writes of 100 bytes one after the other into a file already
/// that long (in zeros), each `fdatasync`ed, and `n` one-event
/// journal commits under `durability sync` (after a tenth as many to warm up, as the round
/// trips).
fn disk_floor(dir: &Path, n: usize) -> Result<DiskFloor, BenchError> {
    use std::os::unix::fs::FileExt;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        BenchError::Setup(format!("{what} in {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("cannot create the directory", &e))?;
    let file =
        std::fs::File::create(dir.join("probe")).map_err(|e| fail("cannot create a file", &e))?;
    let rounds = n + n / 10;
    file.write_all_at(&vec![0; rounds * 100], 0)
        .and_then(|_| file.sync_all())
        .map_err(|e| fail("cannot write", &e))?;
    let mut fsync = Vec::with_capacity(n);
    for i in 0..rounds {
        file.write_all_at(&[b'x'; 100], i as u64 * 100)
            .map_err(|e| fail("cannot write", &e))?;
        let t = Instant::now();
        file.sync_data().map_err(|e| fail("cannot sync", &e))?;
        if i >= n / 10 {
            fsync.push(ms(t.elapsed()));
        }
    }
    let (mut journal, _) = crate::journal::Journal::open(&dir.join("probe.journal"))
        .map_err(|e| fail("cannot open a journal", &e))?;
    journal.set_durability(Durability::Sync);
    let mut commit = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let event = ClusterEvent {
            at_ms: i as u64,
            clock: i as u64,
            kind: EventKind::JobSubmitted {
                job: JobId(i as u64),
                data: format!("echo {i}"),
                priority: 0,
                by: "bench".into(),
            },
        };
        let t = Instant::now();
        journal
            .append([&event])
            .map_err(|e| fail("cannot commit", &e))?;
        if i >= n / 10 {
            commit.push(ms(t.elapsed()));
        }
    }
    Ok(DiskFloor {
        fsync: Spread::of(fsync),
        commit: Spread::of(commit),
    })
}

/// `n` jobs one at a time (after a tenth as many to warm up), each submitted once the last one
/// finished: each one's submit → result, in milliseconds.
async fn lone_jobs(client: &mut Client, n: usize) -> Result<Vec<f64>, BenchError> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
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
        expect(client, "a job's result", |m| {
            matches!(m, Message::JobFinished { .. }).then_some(())
        })
        .await?;
        // The first tenth warms up (connections, allocations, caches).
        if i >= n / 10 {
            samples.push(ms(t.elapsed()));
        }
    }
    Ok(samples)
}
