//! Frame time of the console with a large cluster: 200 nodes, 100,000 jobs and 1,000,000 log
//! lines, drawn at 200×60 into an in-memory terminal — and the same with 1,000 log lines, to
//! show that the cost of a frame does not grow with the history.
//!
//!     cargo bench --bench console
//!
//! It prints the median and the 99th percentile of 300 frames per case. Method and results are
//! in docs/performance/console.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tcluster::console::app::{App, NodeRow, Pane, View};
use tcluster::console::config::Config;
use tcluster::console::draw;
use tcluster::console::keymap::{self, Action};
use tcluster::console::update::update;
use tcluster::protocol::message::JobId;
use tcluster::role::event::{ClusterEvent, EventKind};
use tcluster::supervisor::logs::{Level, LogLine};
use tcluster::supervisor::timeline::{TimelineEvent, TimelineKind};
use tcluster::supervisor::{Process, Update};

fn app(log_lines: usize) -> App {
    let nodes = (0..200)
        .map(|i| {
            let mut row = NodeRow::new(&format!("worker-{i}"), "worker");
            row.status.process = Process::Running;
            row.heartbeat_history = (0..40).map(|k| (k * 37 % 250) as u64).collect();
            row
        })
        .collect();
    let mut app = App::new(
        "Bench",
        "coordinator",
        nodes,
        Config {
            log_history: 1_000_000,
            ..Config::default()
        },
    );
    for i in 0..200u64 {
        let event = ClusterEvent {
            at_ms: i,
            clock: i,
            kind: EventKind::WorkerJoined {
                worker: format!("worker-{i}"),
                slots: 4,
                classic: false,
            },
        };
        update(
            &mut app,
            Action::Update(Update::Timeline(Arc::new(TimelineEvent {
                at_ms: i,
                source: "coordinator".into(),
                kind: TimelineKind::Cluster { event },
            }))),
        );
    }
    for i in 1..=100_000u64 {
        let event = ClusterEvent {
            at_ms: i,
            clock: i,
            kind: EventKind::JobSubmitted {
                job: JobId(i),
                data: "sleep 1s".into(),
                priority: 0,
                by: "bench".into(),
            },
        };
        update(
            &mut app,
            Action::Update(Update::Timeline(Arc::new(TimelineEvent {
                at_ms: i,
                source: "coordinator".into(),
                kind: TimelineKind::Cluster { event },
            }))),
        );
    }
    // Half of the jobs have run: the Jobs pane lists the open ones first, then these.
    for i in 1..=50_000u64 {
        let worker = format!("worker-{}", i % 200);
        for kind in [
            EventKind::JobAssigned {
                job: JobId(i),
                worker: worker.clone(),
                attempt: 1,
            },
            EventKind::JobCompleted {
                job: JobId(i),
                worker: worker.clone(),
                result: "slept 1s".into(),
                read: false,
            },
        ] {
            let event = ClusterEvent {
                at_ms: 100_000 + i,
                clock: 100_000 + i,
                kind,
            };
            update(
                &mut app,
                Action::Update(Update::Timeline(Arc::new(TimelineEvent {
                    at_ms: 100_000 + i,
                    source: "coordinator".into(),
                    kind: TimelineKind::Cluster { event },
                }))),
            );
        }
    }
    let node: Arc<str> = Arc::from("worker-7");
    for i in 0..log_lines as u64 {
        update(
            &mut app,
            Action::Log(LogLine {
                at_ms: i,
                node: node.clone(),
                level: Level::Info,
                text: format!("job JOB-{i} assigned attempt=1 data=sleep 1s"),
            }),
        );
    }
    update(&mut app, Action::Tick(100_000));
    app.size = (200, 60);
    app
}

fn measure(name: &str, app: &mut App) -> (Duration, Duration) {
    let bindings = keymap::default_bindings();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut times = Vec::with_capacity(300);
    for frame in 0..320 {
        // Move the selection so every frame draws something new, as a busy screen does.
        app.selected.insert(Pane::Jobs, (frame * 311) % 100_000);
        let start = Instant::now();
        terminal.draw(|f| draw::draw(app, &bindings, f)).unwrap();
        if frame >= 20 {
            times.push(start.elapsed());
        }
    }
    times.sort();
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    println!(
        "{name:<46} p50 {:>8.3} ms   p99 {:>8.3} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    (p50, p99)
}

/// Log lines as a node writes them (JSON on stderr), parsed as the supervisor parses them and
/// added to the console's ring as the console adds them: lines per second, best of three.
fn log_ingest() {
    let node: Arc<str> = Arc::from("worker-7");
    // Written by the very formatter a node uses (`tcluster node --log-format json`).
    let written = tcluster::logging::InMemory::default();
    let sink = written.clone();
    let writer = move || sink.clone();
    let subscriber =
        tcluster::logging::json_lines(tracing_subscriber::EnvFilter::new("info"), writer);
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("node", node = "worker-7");
        let _inside = span.enter();
        for i in 0..1_000_000u64 {
            tracing::info!(job = %format_args!("JOB-{i}"), took_ms = 3, "job done");
        }
    });
    let written = written.take();
    let raw: Vec<String> = String::from_utf8(written)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(raw.len(), 1_000_000);
    println!(
        "a node's JSON log line ({} bytes): {}",
        raw[0].len(),
        raw[0]
    );
    let mut best_parse = f64::MAX;
    let mut best_ring = f64::MAX;
    for _ in 0..3 {
        // Parsing as the supervisor does it: each line read and handed on (here: dropped), so
        // the allocator reuses what the last one freed, as it does in a run.
        let start = Instant::now();
        for (i, r) in raw.iter().enumerate() {
            std::hint::black_box(LogLine::parse(i as u64, node.clone(), true, r));
        }
        best_parse = best_parse.min(start.elapsed().as_secs_f64());
        let lines: Vec<LogLine> = raw
            .iter()
            .enumerate()
            .map(|(i, r)| LogLine::parse(i as u64, node.clone(), true, r))
            .collect();
        let mut app = App::new(
            "Bench",
            "coordinator",
            Vec::new(),
            Config {
                log_history: 1_000_000,
                ..Config::default()
            },
        );
        let start = Instant::now();
        for line in lines {
            update(&mut app, Action::Log(line));
        }
        best_ring = best_ring.min(start.elapsed().as_secs_f64());
    }
    println!(
        "log ingest, 1M JSON lines: parse {:.2} M lines/s, into the console's ring {:.2} M lines/s, both {:.2} M lines/s",
        1.0 / best_parse,
        1.0 / best_ring,
        1.0 / (best_parse + best_ring)
    );
    // The same events with everything tracing can add (time, target, span, spans), as lines
    // from a logger configured otherwise look: what the leaner format saves.
    let full: Vec<String> = (0..1_000_000u64)
        .map(|i| {
            format!(
                r#"{{"timestamp":"2026-11-22T10:00:00.{i:06}Z","level":"INFO","message":"job done","job":"JOB-{i}","took_ms":3,"target":"tcluster::node::worker","span":{{"node":"worker-7","name":"node"}},"spans":[{{"node":"worker-7","name":"node"}}]}}"#
            )
        })
        .collect();
    let mut best_full = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for (i, r) in full.iter().enumerate() {
            std::hint::black_box(LogLine::parse(i as u64, node.clone(), true, r));
        }
        best_full = best_full.min(start.elapsed().as_secs_f64());
    }
    println!(
        "  the same with time, target and spans ({} bytes): parse {:.2} M lines/s",
        full[0].len(),
        1.0 / best_full
    );
}

/// A tick re-orders the jobs (the open ones first, then the ended ones, latest first): what
/// it costs with 100,000 jobs, half of them ended, best of 20.
fn tick(app: &mut App) {
    let mut best = Duration::MAX;
    for k in 0..20u64 {
        // As on a busy cluster: jobs changed since the last tick.
        app.jobs.stale = true;
        let start = Instant::now();
        update(app, Action::Tick(200_000 + k * 250));
        best = best.min(start.elapsed());
    }
    println!(
        "{:<46} best {:>7.3} ms (4 a second)",
        "tick: re-order 100k jobs",
        best.as_secs_f64() * 1e3
    );
}

fn main() {
    log_ingest();
    println!("console frame at 200×60 (300 frames each)");
    let mut big = app(1_000_000);
    measure("overview, 200 nodes, 100k jobs, 1M log lines", &mut big);
    let mut small = app(1_000);
    measure("overview, 200 nodes, 100k jobs, 1k log lines", &mut small);
    big.view = View::Timeline;
    big.focus = Pane::Timeline;
    measure("timeline view, same data", &mut big);
    big.view = View::Map;
    big.focus = Pane::Map;
    measure("map view, same data", &mut big);
    tick(&mut small);
}
