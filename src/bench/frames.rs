//! The console under load: the real console (`tcluster TOPOLOGY --frame-stats FILE`) in a
//! pseudo-terminal of 200×60 launches a coordinator and four workers (8 slots each, the
//! journal on disk) while the benchmark submits no-op jobs at a steady rate (10,000 a second
//! by default) and counts their results. Measured: how long each of the console's frames took
//! to draw (its own figures, written when `q` ends it), the share of one core its process used
//! over the loaded seconds (from /proc), and the jobs per second the cluster completed.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::soak::{Console, console_primary};
use super::{BenchError, Spread, cpu_seconds};
use crate::client::LinkNews;
use crate::protocol::message::Message;

/// What [`frames`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Frames {
    /// The terminal, columns × rows.
    pub size: String,
    /// Jobs per second asked for, and completed over the loaded seconds.
    pub target_jobs_per_second: f64,
    pub jobs_per_second: f64,
    /// Seconds under load.
    pub seconds: f64,
    /// Every frame the console drew in the run, in milliseconds.
    pub frame: Spread,
    /// The console process's CPU over the loaded seconds, percent of one core.
    pub cpu_percent: f64,
    /// The CPU of the nodes it launched (its child processes) over the same seconds, percent
    /// of one core: with the console's, what the machine pays for the cluster being shown.
    pub nodes_cpu_percent: f64,
}

impl Frames {
    /// A readable table.
    pub fn table(&self) -> String {
        format!(
            "console  {} terminal, a coordinator and 4 workers launched by it, {:.0} jobs/s asked\n\
             \x20 completed    {:.0} jobs/s over {:.1} s\n\
             \x20 frame        {}\n\
             \x20 console CPU  {:.1}% of one core\n\
             \x20 nodes' CPU   {:.1}% of one core\n",
            self.size,
            self.target_jobs_per_second,
            self.jobs_per_second,
            self.seconds,
            self.frame.ms(),
            self.cpu_percent,
            self.nodes_cpu_percent
        )
    }
}

/// Jobs submitted at once, every tick of the pace.
const BURST: u32 = 50;

/// Runs the console under `rate` jobs/s for `duration` (see the module's documentation).
pub async fn frames(
    program: &Path,
    rate: f64,
    duration: Duration,
    shaping: crate::supervisor::Shaping,
) -> Result<Frames, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let scratch = super::scratch::ScratchDir::new("frames")?;
    let topology_path = scratch.path().join("load.top");
    std::fs::write(
        &topology_path,
        "node coordinator { type master }\n\
         node worker { type worker; count 4; resources { cpu 8 } }\n\
         policy heartbeat { interval 1s; timeout 10s }\n\
         policy load_balancing { algorithm least_loaded }\n",
    )
    .map_err(|e| setup(&e))?;
    let (topology, _) = crate::topology::load(&topology_path).map_err(|e| setup(&e))?;
    let state = scratch.path().join("state");
    let stats = scratch.path().join("frames.json");
    let shaping = clap::ValueEnum::to_possible_value(&shaping)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let extra = [
        std::ffi::OsStr::new("--frame-stats"),
        stats.as_os_str(),
        std::ffi::OsStr::new("--shaping"),
        std::ffi::OsStr::new(&shaping),
    ];
    let (cols, rows) = (200, 60);
    let mut console = Console::open(
        program,
        (&topology_path, &extra),
        &state,
        scratch.path(),
        (cols, rows),
    )?;

    let primary = console_primary(&topology, &state, "bench").await?;
    let mut link = super::link_to(primary).await?;

    // Bursts of BURST jobs at the pace that makes `rate`; results counted as they come.
    let nodes = children_of(console.pid);
    let nodes_before = cpu_of(&nodes);
    let cpu_before = cpu_seconds(console.pid);
    let started = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_secs_f64(f64::from(BURST) / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = tokio::time::Instant::now() + duration;
    let mut finished = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = pace.tick() => link.send(Message::Submit {
                data: "echo".into(),
                count: BURST,
                priority: 0,
                token: None,
                notify: true,
            }),
            news = link.news.recv() => match news {
                Some(LinkNews::Message(Message::JobFinished { .. })) => finished += 1,
                Some(LinkNews::Down(_, why)) => return Err(BenchError::Setup(why)),
                None => return Err(BenchError::Setup("the link ended".into())),
                _ => {}
            },
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(console.pid);
    let nodes_after = cpu_of(&nodes);
    drop(link);

    // `q`: the console stops its nodes and writes its frame times.
    console.type_keys(b"q")?;
    if !console.exited_within(Duration::from_secs(20)) {
        return Err(BenchError::Timeout("the console did not quit on q".into()));
    }
    let frame: Spread = std::fs::read(&stats)
        .map_err(|e| setup(&format!("the console's frame times: {e}")))
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| setup(&e)))?;
    let cpu_percent = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => (b - a) / seconds * 100.0,
        _ => f64::NAN,
    };
    let nodes_cpu_percent = (nodes_after - nodes_before) / seconds * 100.0;
    Ok(Frames {
        size: format!("{cols}×{rows}"),
        target_jobs_per_second: rate,
        jobs_per_second: finished as f64 / seconds,
        seconds,
        frame,
        cpu_percent,
        nodes_cpu_percent,
    })
}

/// The processes `pid` started (Linux: every thread's `children` in /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The CPU seconds `pids` have used together (one that is gone counts nothing).
fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|p| cpu_seconds(*p)).sum()
}
