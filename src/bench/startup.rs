//! Startup: `tcluster run`'s launch of a topology until every worker is registered.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::scratch::Scratch;
use super::{BenchError, PATIENCE, Spread, ms};
use crate::client::Client;
use crate::protocol::message::Message;

/// What [`startup`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
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
    let topology = super::load_topology(topology_path)?;
    let workers = topology.nodes_of(NodeKind::Worker).count();
    let mut samples = Vec::new();
    for _ in 0..runs {
        let scratch = Scratch::new(program, "")?;
        let t0 = Instant::now();
        let handle =
            super::launch_as_run(program, &scratch, topology_path, topology.clone()).await?;
        let addr = handle
            .coordinator
            .ok_or_else(|| BenchError::Setup("the topology has no master to time".into()))?
            .to_string();
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
