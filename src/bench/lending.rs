//! Lending: `topologies/lending.top`'s rush (60 jobs of `sleep 300ms` submitted to east at
//! once) with west lending idle workers, against the same rush with no `policy lending`; and
//! the time from the submission to the first job a borrowed worker starts.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::scratch::Scratch;
use super::{BenchError, PATIENCE, Spread};
use crate::client::Client;
use crate::cluster::event::EventKind;
use crate::protocol::message::Message;
use crate::supervisor::feed::Feed;
use crate::supervisor::timeline::TimelineKind;
use crate::supervisor::{Request, Update};
use crate::topology::{ClusterAction, NodeKind, Topology};

/// The jobs of one rush.
const RUSH: u32 = 60;

/// What [`lending`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct LendingBench {
    pub topology: String,
    /// Submission → the last of the rush's jobs completed, with lending.
    pub with_lending: Spread,
    /// The same without `policy lending`.
    pub without_lending: Spread,
    /// Submission → the first job a borrowed worker starts.
    pub first_borrowed_job: Spread,
    /// Completed jobs per second over the rush, with and without (medians).
    pub jobs_per_second_with: f64,
    pub jobs_per_second_without: f64,
}

impl LendingBench {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "lending  {}: {RUSH} × `sleep 300ms` submitted to east at once\n\
             \x20 rush, with lending       {}   ({:.1} jobs/s)\n\
             \x20 rush, without lending    {}   ({:.1} jobs/s)\n\
             \x20 submit → first job on a borrowed worker   {}\n",
            self.topology,
            self.with_lending.ms(),
            self.jobs_per_second_with,
            self.without_lending.ms(),
            self.jobs_per_second_without,
            self.first_borrowed_job.ms(),
        )
    }
}

/// Runs the rush `runs` times with lending and `runs` times without, launching the topology
/// each time as `tcluster run` does.
pub async fn lending(
    program: &Path,
    topology_path: &Path,
    runs: usize,
) -> Result<LendingBench, BenchError> {
    let topology = super::load_topology(topology_path)?;
    if topology.policies.lending.is_none() || !topology.clusters().contains(&"east") {
        return Err(BenchError::Setup(format!(
            "{} has no policy lending and cluster east (use topologies/lending.top)",
            topology_path.display()
        )));
    }
    // The same file without its lending policy: every node reads the file it is given, so
    // the policy must go from the file, not only from the launcher's copy.
    let scratch = Scratch::new(program, "")?;
    let text = std::fs::read_to_string(topology_path)
        .map_err(|e| BenchError::Setup(format!("{}: {e}", topology_path.display())))?;
    let alone_path = scratch.dir.join("without-lending.top");
    std::fs::write(&alone_path, without_lending(&text))
        .map_err(|e| BenchError::Setup(format!("{}: {e}", alone_path.display())))?;
    let alone = super::load_topology(&alone_path)?;
    if alone.policies.lending.is_some() {
        return Err(BenchError::Setup(
            "the lending policy could not be taken out of the file".into(),
        ));
    }
    let (mut with, mut without, mut first) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (done, borrowed) = rush(program, topology_path, topology.clone()).await?;
        with.push(done);
        first.extend(borrowed);
        let (done, _) = rush(program, &alone_path, alone.clone()).await?;
        without.push(done);
    }
    let rate = |spread: &Spread| f64::from(RUSH) / (spread.median / 1000.0);
    let with_lending = Spread::of(with);
    let without_lending = Spread::of(without);
    Ok(LendingBench {
        topology: topology_path.display().to_string(),
        jobs_per_second_with: rate(&with_lending),
        jobs_per_second_without: rate(&without_lending),
        with_lending,
        without_lending,
        first_borrowed_job: Spread::of(first),
    })
}

/// `text` without its `policy lending { … }` block.
fn without_lending(text: &str) -> String {
    let Some(start) = text.find("policy lending") else {
        return text.to_string();
    };
    let mut depth = 0;
    let mut end = text.len();
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = start + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    format!("{}{}", &text[..start], &text[end..])
}

/// One rush: launches the topology, waits until every worker has been registered and idle for
/// a second, submits the rush to east and waits until its last job completes. Returns the
/// milliseconds to that, and to the first job a borrowed worker started.
async fn rush(
    program: &Path,
    topology_path: &Path,
    topology: Topology,
) -> Result<(f64, Option<f64>), BenchError> {
    let workers = topology.nodes_of(NodeKind::Worker).count();
    let scratch = Scratch::new(program, "")?;
    let handle = super::launch_as_run(program, &scratch, topology_path, topology).await?;
    let mut feed = handle.feed();
    // Every worker registered, as each cluster's primary reports.
    let masters: Vec<String> = handle
        .nodes
        .iter()
        .filter(|n| n.kind == "master")
        .filter_map(|n| n.address.clone())
        .collect();
    let t0 = Instant::now();
    loop {
        let mut healthy = 0;
        for addr in &masters {
            if let Ok(mut client) = Client::connect(addr, "bench", None).await
                && let Ok(Message::StatusReport { report }) =
                    client.request(Message::Status { job: None }).await
                && report.role == "primary"
            {
                healthy += report.workers.healthy;
            }
        }
        if healthy >= workers {
            break;
        }
        if t0.elapsed() > PATIENCE {
            let _ = handle.stop().await;
            return Err(BenchError::Timeout("every worker registered".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Idle long enough to be lent (idle_before_lend), as in a lecture before the rush.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let submit = ClusterAction::Submit {
        data: "sleep 300ms".into(),
        count: RUSH,
        priority: 0,
        cluster: Some("east".into()),
    };
    let t0 = Instant::now();
    let _ = handle.commands.send(Request::Act(submit)).await;
    let (mut completed, mut borrowed, mut first) = (0, Vec::new(), None);
    let deadline = Instant::now() + PATIENCE;
    while completed < RUSH {
        let item = match tokio::time::timeout_at(deadline.into(), feed.recv()).await {
            Ok(Ok(item)) => item,
            Ok(Err(RecvError::Lagged(_))) => continue,
            Ok(Err(RecvError::Closed)) | Err(_) => {
                let _ = handle.stop().await;
                return Err(BenchError::Timeout("the rush's jobs completed".into()));
            }
        };
        let Feed::Update(Update::Timeline(event)) = &item.feed else {
            continue;
        };
        let TimelineKind::Cluster { event } = &event.kind else {
            continue;
        };
        match &event.kind {
            EventKind::WorkerBorrowed { worker, .. } => borrowed.push(worker.clone()),
            EventKind::JobStarted { worker, .. }
                if first.is_none() && borrowed.contains(worker) =>
            {
                first = Some(super::ms(t0.elapsed()));
            }
            // Only east has jobs in a rush.
            EventKind::JobCompleted { .. } => completed += 1,
            _ => {}
        }
    }
    let done = super::ms(t0.elapsed());
    let _ = handle.stop().await;
    Ok((done, first))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lending_policy_block_is_taken_out() {
        let text =
            "node a { type master }\npolicy lending {\n  max_lend 2\n}\nnode b { type worker }\n";
        assert_eq!(
            super::without_lending(text),
            "node a { type master }\n\nnode b { type worker }\n"
        );
    }
}
