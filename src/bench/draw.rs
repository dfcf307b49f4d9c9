//! The console's frame with a large history: an `App` holding 200 nodes (each with a heartbeat
//! history), `jobs` jobs (half of them ended) and `log_lines` log lines, drawn at 200×60 into
//! ratatui's in-memory terminal 320 times, the job selection moving every frame so each has new
//! content; the first 20 frames are warm-up. The same with 1,000 log lines shows whether the
//! history's size changes a frame's cost; then the timeline and map views. Last, the Jobs
//! pane's order (open jobs first, then the ended ones, latest first) rebuilt as a tick does it
//! when jobs changed, best of 20. Nothing is written to a real terminal: this is building the
//! frame and diffing it in memory.

use std::sync::Arc;
use std::time::Instant;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde::Serialize;

use super::{BenchError, Spread};
use crate::cluster::event::{ClusterEvent, EventKind};
use crate::console::app::{App, NodeRow, Pane, View};
use crate::console::config::Config;
use crate::console::draw;
use crate::console::keymap::{self, Action};
use crate::console::update::update;
use crate::protocol::message::JobId;
use crate::supervisor::logs::{Level, LogLine};
use crate::supervisor::timeline::{TimelineEvent, TimelineKind};
use crate::supervisor::{Process, Update};

/// Nodes in the drawn cluster.
const NODES: u64 = 200;
/// The terminal's size.
const SIZE: (u16, u16) = (200, 60);
/// Frames drawn per case, and how many of them are warm-up.
const FRAMES: usize = 320;
const WARM_UP: usize = 20;

/// What [`draw`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Draw {
    /// The terminal, columns × rows.
    pub size: String,
    /// Nodes and jobs the console holds.
    pub nodes: u64,
    pub jobs: u64,
    /// Each view drawn, in order.
    pub cases: Vec<DrawCase>,
    /// Rebuilding the Jobs pane's order, best of 20, in milliseconds.
    pub reorder_ms: f64,
}

/// One case: a view with a log of some length.
#[derive(Debug, Clone, Serialize)]
pub struct DrawCase {
    /// `overview`, `timeline` or `map`.
    pub view: String,
    /// Log lines the console holds.
    pub log_lines: usize,
    /// Each measured frame, in milliseconds.
    pub frame: Spread,
}

impl Draw {
    /// The report as a table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "draw     a frame at {} into memory, {} nodes, {} jobs (half ended), {} frames each\n",
            self.size,
            self.nodes,
            self.jobs,
            FRAMES - WARM_UP
        );
        for case in &self.cases {
            let label = format!("{}, {} log lines", case.view, case.log_lines);
            out.push_str(&format!("  {label:<30} {}\n", case.frame.ms()));
        }
        out.push_str(&format!(
            "  {:<30} {} ms (best of 20; a tick does it at most 4 times a second)\n",
            "jobs re-ordered",
            super::round(self.reorder_ms)
        ));
        out
    }
}

/// Measures the console's frame (see the module's documentation).
pub fn draw(jobs: u64, log_lines: usize) -> Result<Draw, BenchError> {
    let jobs = jobs.max(2);
    let short = log_lines.min(1_000);
    let mut cases = Vec::new();
    let mut big = console(jobs, log_lines);
    cases.push(measure(&mut big, View::Overview, Pane::Jobs, log_lines)?);
    let mut small = console(jobs, short);
    cases.push(measure(&mut small, View::Overview, Pane::Jobs, short)?);
    cases.push(measure(
        &mut big,
        View::Timeline,
        Pane::Timeline,
        log_lines,
    )?);
    cases.push(measure(&mut big, View::Map, Pane::Map, log_lines)?);
    let reorder_ms = reorder(&mut small);
    Ok(Draw {
        size: format!("{}×{}", SIZE.0, SIZE.1),
        nodes: NODES,
        jobs,
        cases,
        reorder_ms,
    })
}

/// A console that has heard `jobs` submitted, half of them run, and `log_lines` log lines.
fn console(jobs: u64, log_lines: usize) -> App {
    let nodes = (0..NODES)
        .map(|i| {
            let mut row = NodeRow::new(&format!("worker-{i}"), "worker");
            row.status.process = Process::Running;
            row.heartbeat_history = (0..40).map(|k| k * 37 % 250).collect();
            row
        })
        .collect();
    let mut app = App::new(
        "Bench",
        "coordinator",
        nodes,
        Config {
            log_history: log_lines.max(1),
            ..Config::default()
        },
    );
    let hear = |app: &mut App, at: u64, kind: EventKind| {
        let event = ClusterEvent {
            at_ms: at,
            clock: at,
            kind,
        };
        let timeline = TimelineEvent {
            at_ms: at,
            source: "coordinator".into(),
            kind: TimelineKind::Cluster { event },
        };
        update(app, Action::Update(Update::Timeline(Arc::new(timeline))));
    };
    for i in 0..NODES {
        let worker = format!("worker-{i}");
        let slots = 4;
        hear(
            &mut app,
            i,
            EventKind::WorkerJoined {
                worker,
                slots,
                classic: false,
            },
        );
    }
    for i in 1..=jobs {
        let submitted = EventKind::JobSubmitted {
            job: JobId(i),
            data: "sleep 1s".into(),
            priority: 0,
            by: "bench".into(),
        };
        hear(&mut app, i, submitted);
    }
    // Half of the jobs have run: the Jobs pane lists the open ones first, then these.
    for i in 1..=jobs / 2 {
        let worker = format!("worker-{}", i % NODES);
        let at = jobs + i;
        let assigned = EventKind::JobAssigned {
            job: JobId(i),
            worker: worker.clone(),
            attempt: 1,
        };
        hear(&mut app, at, assigned);
        let completed = EventKind::JobCompleted {
            job: JobId(i),
            worker,
            result: "slept 1s".into(),
            read: false,
        };
        hear(&mut app, at, completed);
    }
    let node: Arc<str> = Arc::from("worker-7");
    for i in 0..log_lines as u64 {
        let line = LogLine {
            at_ms: i,
            node: node.clone(),
            level: Level::Info,
            text: format!("job JOB-{i} assigned attempt=1 data=sleep 1s"),
        };
        update(&mut app, Action::Log(line));
    }
    update(&mut app, Action::Tick(2 * jobs));
    app.size = SIZE;
    app
}

/// Draws `FRAMES` frames of one view.
fn measure(
    app: &mut App,
    view: View,
    focus: Pane,
    log_lines: usize,
) -> Result<DrawCase, BenchError> {
    let name = match view {
        View::Overview => "overview",
        View::Timeline => "timeline",
        View::Map => "map",
    };
    app.view = view;
    app.focus = focus;
    let bindings = keymap::default_bindings();
    let backend = TestBackend::new(SIZE.0, SIZE.1);
    let mut terminal = Terminal::new(backend).map_err(|e| BenchError::Setup(e.to_string()))?;
    let jobs = app.cluster.read().state.jobs.len().max(1);
    let mut samples = Vec::with_capacity(FRAMES - WARM_UP);
    for frame in 0..FRAMES {
        // Move the selection so every frame draws something new, as a busy screen does.
        app.selected.insert(Pane::Jobs, (frame * 311) % jobs);
        let start = Instant::now();
        terminal
            .draw(|f| draw::draw(app, &bindings, f))
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        if frame >= WARM_UP {
            samples.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(DrawCase {
        view: name.to_string(),
        log_lines,
        frame: Spread::of(samples),
    })
}

/// The Jobs pane's order rebuilt as a busy cluster's tick rebuilds it: best of 20, in ms.
fn reorder(app: &mut App) -> f64 {
    let mut best = f64::MAX;
    let base = 4 * app.cluster.read().state.jobs.len() as u64;
    for k in 0..20u64 {
        app.jobs.stale = true;
        let start = Instant::now();
        update(app, Action::Tick(base + k * 250));
        best = best.min(start.elapsed().as_secs_f64() * 1e3);
    }
    best
}
