//! Failover: the primary SIGKILLed until its backup says it is primary, and until a new job
//! submitted to the backup has completed.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::Serialize;

use super::scratch::Scratch;
use super::{BenchError, PATIENCE, Spread, expect, free_port, ms};
use crate::client::Client;
use crate::protocol::message::Message;

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
        following(&mut watch).await?;

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

/// Waits until the backup holds the ten warm-up jobs as completed (it follows the primary and
/// has its history) and is still a backup; anything else is a setup that would measure a
/// silence timer, not a failover, and is said.
async fn following(watch: &mut Client) -> Result<(), BenchError> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let report = match watch.request(Message::Status { job: None }).await? {
            Message::StatusReport { report } => report,
            other => {
                return Err(BenchError::Setup(format!(
                    "the backup answered status with {}",
                    other.kind()
                )));
            }
        };
        if report.role != "backup" {
            return Err(BenchError::Setup(format!(
                "the backup is {} before the primary was killed: it does not follow the primary",
                report.role
            )));
        }
        if report.jobs.completed >= 10 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(format!(
                "the backup following the primary (it holds {} of the 10 jobs done)",
                report.jobs.completed
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
