//! Dispatch: no-op jobs end to end through a coordinator and several worker processes (jobs/s),
//! and the round trip of one job, and of a `ping`, on an idle cluster.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::scratch::Scratch;
use super::{BenchError, PATIENCE, Spread, expect, ms};
use crate::client::{Client, Link, LinkNews, Pick};
use crate::protocol::message::Message;

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
                format!("journal on disk, durability {}", self.durability)
            } else {
                "no journal".to_string()
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
    journal: Option<&str>,
) -> Result<Dispatch, BenchError> {
    let durability = journal.unwrap_or("sync");
    let policies = format!(
        "policy heartbeat {{ interval 1s; timeout 10s }}\npolicy load_balancing {{ algorithm least_loaded }}\npolicy journal {{ durability {durability} }}\n"
    );
    let (_nodes, addr) =
        Scratch::cluster(program, workers, slots, &policies, journal.is_some()).await?;
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
        journal: journal.is_some(),
        durability: durability.to_string(),
        workers,
        slots,
        jobs,
        seconds,
        jobs_per_second: jobs as f64 / seconds,
        round_trip: Spread::of(samples),
    })
}
