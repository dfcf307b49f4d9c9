//! Nodes in a scratch directory: a topology written there, `tcluster node` processes started
//! from it (exactly as `tcluster run` starts them), killed and the directory removed on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin};

use super::{BenchError, PATIENCE};
use crate::supervisor::child;

/// A topology in a scratch directory and the nodes started from it; every node is killed and
/// the directory removed when it is dropped.
pub(super) struct Scratch {
    pub(super) dir: PathBuf,
    topology: PathBuf,
    program: PathBuf,
    nodes: HashMap<String, (Child, ChildStdin)>,
    /// Whether servers keep a journal (or chat history) on disk, as under `tcluster run`.
    pub(super) durable: bool,
    /// The secret the masters and chat servers prove to each other, the same for every node
    /// started here, as `tcluster run` gives its built-in nodes one.
    peer_key: String,
}

impl Scratch {
    /// The cluster most benchmarks use: a coordinator and `workers` worker processes of
    /// `slots` slots each, with the `policies` given (lines of `policy …`), journaled or not.
    /// Returns the scratch and the coordinator's address, once every worker is registered.
    pub(super) async fn cluster(
        program: &Path,
        workers: u32,
        slots: u32,
        policies: &str,
        durable: bool,
    ) -> Result<(Scratch, String), BenchError> {
        let mut s = Scratch::new(
            program,
            &format!(
                "set LOG_LEVEL \"WARN\"\nnode coordinator {{ type master }}\n\
                 node worker {{ type worker; count {workers}; resources {{ cpu {slots} }} }}\n\
                 {policies}"
            ),
        )?;
        s.durable = durable;
        let addr = s.server("coordinator", None).await?;
        for i in 1..=workers {
            s.start(&format!("worker-{i}"), None, Some(&addr)).await?;
        }
        Ok((s, addr))
    }

    pub(super) fn new(program: &Path, text: &str) -> Result<Scratch, BenchError> {
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
            peer_key: hex::encode(rand::random::<[u8; 16]>()),
        })
    }

    /// Starts node `name` and returns what follows its `READY <name> ` line (a server's
    /// address). `listen` for servers; `connect` is `--coordinator`.
    pub(super) async fn start(
        &mut self,
        name: &str,
        listen: Option<&str>,
        connect: Option<&str>,
    ) -> Result<String, BenchError> {
        let mut command = child::builtin_command(
            &self.program,
            &self.topology,
            name,
            listen,
            connect,
            None,
            self.durable.then(|| self.dir.join("state")).as_deref(),
        );
        command.env(crate::node::PEER_KEY_ENV, &self.peer_key);
        let mut child = child::spawn(command)
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
    pub(super) async fn server(
        &mut self,
        name: &str,
        connect: Option<&str>,
    ) -> Result<String, BenchError> {
        let rest = self.start(name, Some("127.0.0.1:0"), connect).await?;
        Ok(rest
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string())
    }

    /// CPU seconds node `name`'s process has used so far (Linux), if it is running.
    pub(super) fn cpu_seconds(&self, name: &str) -> Option<f64> {
        super::cpu_seconds(self.pid(name)?)
    }

    /// Node `name`'s process id, while it runs.
    pub(super) fn pid(&self, name: &str) -> Option<u32> {
        self.nodes.get(name)?.0.id()
    }

    /// Sends `signal` to node `name`'s process group.
    pub(super) fn signal(&self, name: &str, signal: Signal) -> Result<(), BenchError> {
        let pid = self
            .nodes
            .get(name)
            .and_then(|(c, _)| c.id())
            .ok_or_else(|| BenchError::Setup(format!("{name} is not running")))?;
        if child::signal_group(pid, signal) {
            Ok(())
        } else {
            Err(BenchError::Setup(format!("cannot signal {name}")))
        }
    }
}

impl Drop for Scratch {
    /// Every node is asked to end (SIGTERM, and SIGCONT for one a benchmark paused), given a
    /// moment, then killed: a node ends as a process does, so that a profiler or an
    /// instruction counter wrapped around it (`valgrind --trace-children=yes`) writes its
    /// results.
    fn drop(&mut self) {
        let groups: Vec<u32> = self.nodes.values().filter_map(|(c, _)| c.id()).collect();
        for &pid in &groups {
            child::signal_group(pid, Signal::SIGTERM);
            child::signal_group(pid, Signal::SIGCONT);
        }
        let deadline = std::time::Instant::now() + ENDING;
        while std::time::Instant::now() < deadline
            && self
                .nodes
                .values_mut()
                .any(|(child, _)| matches!(child.try_wait(), Ok(None)))
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The whole group, whether its node ended or not: what it started goes too.
        for pid in groups {
            child::signal_group(pid, Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long the nodes of a scratch have to end before they are killed.
const ENDING: std::time::Duration = std::time::Duration::from_secs(5);

/// A scratch directory alone (no nodes), removed when dropped.
pub(super) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A new directory under the system's temporary one, named after `label`.
    pub(super) fn new(label: &str) -> Result<Self, BenchError> {
        let dir =
            std::env::temp_dir().join(format!("tcluster-bench-{label}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        Ok(ScratchDir(dir))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
