//! Soak: the console as a lecturer runs it, for a long while, with a steady stream of jobs.
//!
//! The real console (`tcluster TOPOLOGY`) runs in a pseudo-terminal of 160×48 and launches the
//! topology (by default the demo: two masters, three workers, two chat servers and a bot that
//! chats); the benchmark submits a job every `job_every` and samples the resident memory of
//! the console and of every node it launched, at the start and then every `sample_every`.
//! Every suspect or dead verdict is counted: the nodes are healthy, so each is a false one.
//! Optional busy threads (`--load`) keep the CPUs loaded beside the cluster.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::BenchError;
use super::detect::event_feed;
use crate::client::Client;
use crate::cluster::event::EventKind;
use crate::protocol::message::Message;
use crate::topology::NodeKind;

/// Resident memory at one moment, MB, by process (`console`, then each node's name).
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the cluster was up.
    pub at_s: u64,
    pub rss_mb: BTreeMap<String, f64>,
    /// Each process's proportional share (PSS, Linux's /proc): its own pages, and the pages it
    /// shares with others (the binary's code, shared by every node) divided among them.
    pub pss_mb: BTreeMap<String, f64>,
}

/// What [`soak`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// The topology launched.
    pub topology: String,
    /// How long, seconds.
    pub seconds: f64,
    /// Jobs submitted, and completed by the end (as the primary counts them).
    pub jobs_submitted: u64,
    pub jobs_completed: u64,
    /// Busy threads burning CPU beside the cluster.
    pub load_threads: usize,
    /// Healthy workers wrongly declared suspect, and dead.
    pub false_suspects: u64,
    pub false_deaths: u64,
    pub samples: Vec<Sample>,
}

impl Soak {
    /// A readable table: each process's memory at (up to) seven moments, and its growth.
    pub fn table(&self) -> String {
        let mut out = format!(
            "soak  {:.0} s of {}: the console in a 160×48 terminal, {} jobs submitted, {} completed, {} busy threads\n\
             \x20 false suspects {}, false deaths {}\n",
            self.seconds,
            self.topology,
            self.jobs_submitted,
            self.jobs_completed,
            self.load_threads,
            self.false_suspects,
            self.false_deaths
        );
        let n = self.samples.len();
        if n == 0 {
            return out;
        }
        let shown: Vec<&Sample> = if n <= 7 {
            self.samples.iter().collect()
        } else {
            (0..7).map(|i| &self.samples[i * (n - 1) / 6]).collect()
        };
        out.push_str(&format!("  {:<14}", "RSS (MB) at"));
        for s in &shown {
            out.push_str(&format!(" {:>7}", format_at(s.at_s)));
        }
        out.push_str("   growth\n");
        let names: Vec<&String> = self.samples[n - 1].rss_mb.keys().collect();
        for name in names {
            out.push_str(&format!("  {name:<14}"));
            for s in &shown {
                match s.rss_mb.get(name) {
                    Some(mb) => out.push_str(&format!(" {mb:>7.1}")),
                    None => out.push_str(&format!(" {:>7}", "-")),
                }
            }
            let first = self.samples.iter().find_map(|s| s.rss_mb.get(name));
            let last = self.samples[n - 1].rss_mb.get(name);
            if let (Some(a), Some(b)) = (first, last) {
                out.push_str(&format!("   {:+.1}", b - a));
            }
            out.push('\n');
        }
        let pss = &self.samples[n - 1].pss_mb;
        if !pss.is_empty() {
            let each: Vec<String> = pss
                .iter()
                .map(|(name, mb)| format!("{name} {mb:.1}"))
                .collect();
            out.push_str(&format!(
                "  PSS (MB) at the end (shared code divided among the processes): {}\n",
                each.join(", ")
            ));
        }
        out
    }
}

/// A process's proportional set size in MB (`Pss:` in /proc/PID/smaps_rollup, in KiB).
fn pss_mb(pid: u32) -> Option<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    pss_in_rollup(&rollup)
}

fn pss_in_rollup(rollup: &str) -> Option<f64> {
    let kib: f64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0 / 1e6)
}

fn format_at(s: u64) -> String {
    if s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// What the soak runs.
#[derive(Debug, Clone)]
pub struct SoakPlan<'a> {
    pub topology: &'a Path,
    pub duration: Duration,
    pub job_every: Duration,
    pub sample_every: Duration,
    pub load_threads: usize,
}

/// Runs the soak (see the module's documentation).
pub async fn soak(program: &Path, plan: SoakPlan<'_>) -> Result<Soak, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let (topology, _) = crate::topology::load(plan.topology).map_err(|e| setup(&e))?;
    let scratch = super::scratch::ScratchDir::new("soak")?;
    let state = scratch.path().join("state");
    let console = Console::open(
        program,
        (plan.topology, &[]),
        &state,
        scratch.path(),
        (160, 48),
    )?;

    let primary = console_primary(&topology, &state, "bench-soak").await?;
    let secret = topology.globals.cluster_secret.clone();
    let mut feed = event_feed(&primary).await?;
    let mut submitter = Client::connect(&primary, "bench-soak", secret.as_deref()).await?;

    let load = super::BusyThreads::start(plan.load_threads);

    let mut system = System::new();
    let started = Instant::now();
    let end = tokio::time::Instant::now() + plan.duration;
    let mut jobs = tokio::time::interval(plan.job_every);
    let mut samples = tokio::time::interval(plan.sample_every);
    let (mut suspects, mut deaths, mut submitted) = (0u64, 0u64, 0u64);
    let mut taken = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = samples.tick() => {
                let (rss_mb, pss_mb) = console.memory(&mut system);
                taken.push(Sample {
                    at_s: started.elapsed().as_secs(),
                    rss_mb,
                    pss_mb,
                });
            }
            _ = jobs.tick() => {
                let submit = Message::Submit {
                    data: "sleep 100ms".into(),
                    count: 1,
                    priority: 0,
                    token: None,
                    notify: false,
                };
                if submitter.send(submit).await.is_ok() {
                    submitted += 1;
                }
            }
            Some((_, kind)) = feed.recv() => match kind {
                EventKind::WorkerSuspect { .. } => suspects += 1,
                EventKind::WorkerDead { .. } => deaths += 1,
                _ => {}
            },
            // The submitter's replies (accepted) are read so its connection never backs up.
            _ = submitter.receive() => {}
        }
    }
    let (rss_mb, pss_mb) = console.memory(&mut system);
    taken.push(Sample {
        at_s: started.elapsed().as_secs(),
        rss_mb,
        pss_mb,
    });
    drop(load);
    let mut asker = Client::connect(&primary, "bench-soak", secret.as_deref()).await?;
    let completed = match asker.request(Message::Status { job: None }).await? {
        Message::StatusReport { report } => report.jobs.completed as u64,
        _ => 0,
    };
    drop(console);
    Ok(Soak {
        topology: plan.topology.display().to_string(),
        seconds: started.elapsed().as_secs_f64(),
        jobs_submitted: submitted,
        jobs_completed: completed,
        load_threads: plan.load_threads,
        false_suspects: suspects,
        false_deaths: deaths,
        samples: taken,
    })
}

/// The primary of the cluster a console launched on `state`: it is up when its run record
/// names the masters and one of them answers as primary (within a minute).
pub(super) async fn console_primary(
    topology: &crate::topology::Topology,
    state: &Path,
    who: &str,
) -> Result<String, BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if Instant::now() > deadline {
            return Err(BenchError::Timeout(
                "the console's cluster did not come up in 60 s".into(),
            ));
        }
        if let Some(masters) = running_masters(topology, state)
            && let Ok((addr, _)) = crate::client::find_primary(
                &masters,
                who,
                topology.globals.cluster_secret.as_deref(),
            )
            .await
        {
            return Ok(addr);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the masters of the run on `state` listen, as its run record says (once it does).
pub(super) fn running_masters(
    topology: &crate::topology::Topology,
    state: &Path,
) -> Option<Vec<String>> {
    let record = crate::state_dir::running(state)?;
    let masters: Vec<String> = record
        .servers
        .iter()
        .filter(|(name, _)| {
            topology
                .node(name)
                .is_some_and(|n| n.kind == NodeKind::Master)
        })
        .map(|(_, addr)| addr.clone())
        .collect();
    (!masters.is_empty()).then_some(masters)
}

/// The console running in a pseudo-terminal; stopped (with every node it launched) on drop.
pub(super) struct Console {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    pub(super) pid: u32,
    /// The terminal's master end: the console lives as long as it is open.
    master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Console {
    /// The console on `topology` in a terminal of `cols`×`rows`, with `extra` arguments.
    pub(super) fn open(
        program: &Path,
        (topology, extra): (&Path, &[&std::ffi::OsStr]),
        state: &Path,
        home: &Path,
        (cols, rows): (u16, u16),
    ) -> Result<Self, BenchError> {
        let setup = |e: &dyn std::fmt::Display| BenchError::Setup(format!("the console: {e}"));
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .map_err(|e| setup(&e))?;
        let mut command = CommandBuilder::new(program);
        if let Ok(here) = std::env::current_dir() {
            command.cwd(here);
        }
        command.arg(topology);
        command.arg("--state-dir");
        command.arg(state);
        command.arg("--fresh");
        for arg in extra {
            command.arg(arg);
        }
        command.env("TERM", "xterm-256color");
        // Personal settings of whoever runs the benchmark do not apply.
        command.env("XDG_CONFIG_HOME", home);
        let child = pty.slave.spawn_command(command).map_err(|e| setup(&e))?;
        drop(pty.slave);
        let pid = child
            .process_id()
            .ok_or_else(|| setup(&"it has no process id"))?;
        // Its screen is drawn into the void, as fast as it draws it.
        let mut reader = pty.master.try_clone_reader().map_err(|e| setup(&e))?;
        std::thread::spawn(move || {
            let mut buffer = [0u8; 16 * 1024];
            while matches!(reader.read(&mut buffer), Ok(n) if n > 0) {}
        });
        Ok(Console {
            child,
            pid,
            master: pty.master,
        })
    }

    /// Resident memory of the console and of each node it launched, MB, and each one's
    /// proportional share where the system tells it.
    fn memory(&self, system: &mut System) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .with_memory()
                .with_cmd(UpdateKind::OnlyIfNotSet),
        );
        let console = Pid::from_u32(self.pid);
        let mut rss = BTreeMap::new();
        let mut pss = BTreeMap::new();
        for (pid, process) in system.processes() {
            let name = if *pid == console {
                "console".to_string()
            } else if process.parent() == Some(console) {
                let cmd: Vec<String> = process
                    .cmd()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect();
                match cmd.iter().position(|a| a == "--name") {
                    Some(i) if i + 1 < cmd.len() => cmd[i + 1].clone(),
                    _ => continue,
                }
            } else {
                continue;
            };
            if let Some(mb) = pss_mb(pid.as_u32()) {
                pss.insert(name.clone(), mb);
            }
            rss.insert(name, process.memory() as f64 / 1e6);
        }
        (rss, pss)
    }
}

impl Console {
    /// Types `keys` into its terminal.
    pub(super) fn type_keys(&mut self, keys: &[u8]) -> Result<(), BenchError> {
        let fail =
            |e: &dyn std::fmt::Display| BenchError::Setup(format!("the console's terminal: {e}"));
        let mut writer = self.master.take_writer().map_err(|e| fail(&e))?;
        writer
            .write_all(keys)
            .and_then(|_| writer.flush())
            .map_err(|e| fail(&e))
    }

    /// True once the console has exited (within `patience`).
    pub(super) fn exited_within(&mut self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // SIGTERM lets the console stop its nodes; SIGKILL if it does not within a few seconds
        // (its nodes then stop when their control pipe closes).
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if self.exited_within(Duration::from_secs(5)) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_proportional_share_is_read_from_the_rollup() {
        let rollup = "55d0-7ffe ---p 00000000 00:00 0 [rollup]\nRss:  11424 kB\nPss:   2851 kB\nPss_Dirty:  1696 kB\n";
        let mb = super::pss_in_rollup(rollup).unwrap();
        assert!((mb - 2.919).abs() < 0.001, "{mb}");
        assert_eq!(super::pss_in_rollup("Rss: 1 kB\n"), None);
        assert_eq!(super::pss_in_rollup("Pss: many kB\n"), None);
    }
}
