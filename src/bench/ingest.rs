//! Log ingest on one core: log lines written by the very formatter a node uses under a launcher
//! (`logging::json_lines`), parsed as the supervisor parses a node's stderr
//! ([`LogLine::parse`]), then added to the console's ring as the console adds them
//! (`Action::Log` through `update`). Each step is timed apart, best of three; then the same
//! events written with everything tracing can add (time, target, span list) are parsed, to
//! show what the lean format saves. No nodes are started: this is the console's own work.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::console::app::App;
use crate::console::config::Config;
use crate::console::keymap::Action;
use crate::console::update::update;
use crate::supervisor::logs::LogLine;

/// What [`ingest`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Ingest {
    /// Lines in each pass.
    pub lines: usize,
    /// Bytes of one line as a node writes it (the first).
    pub line_bytes: usize,
    /// Lines parsed per second, one core (best of three).
    pub parse_lines_per_second: f64,
    /// Parsed lines added to the console's ring per second (best of three).
    pub ring_lines_per_second: f64,
    /// Both steps, one after the other, per line.
    pub lines_per_second: f64,
    /// Bytes of one line with time, target and spans, and how fast those parse.
    pub full_line_bytes: usize,
    pub full_parse_lines_per_second: f64,
}

impl Ingest {
    /// The report as a table.
    pub fn table(&self) -> String {
        let m = |x: f64| x / 1e6;
        format!(
            "ingest   {} log lines as a node writes them ({} bytes each), one core, best of three\n\
             \x20 parsed              {:.2}M lines/s\n\
             \x20 into the ring       {:.2}M lines/s\n\
             \x20 both                {:.2}M lines/s\n\
             \x20 with time, target and spans ({} bytes): parsed {:.2}M lines/s\n",
            self.lines,
            self.line_bytes,
            m(self.parse_lines_per_second),
            m(self.ring_lines_per_second),
            m(self.lines_per_second),
            self.full_line_bytes,
            m(self.full_parse_lines_per_second),
        )
    }
}

/// Measures ingest of `lines` log lines (see the module's documentation).
pub fn ingest(lines: usize) -> Result<Ingest, super::BenchError> {
    let lines = lines.max(1);
    let node: Arc<str> = Arc::from("worker-7");
    let raw = node_lines(lines)?;
    let parse_seconds = best_parse(&raw, &node);
    let mut best_ring = f64::MAX;
    for _ in 0..3 {
        let parsed: Vec<LogLine> = raw
            .iter()
            .enumerate()
            .map(|(i, line)| LogLine::parse(i as u64, node.clone(), true, line))
            .collect();
        let mut app = App::new(
            "Bench",
            "coordinator",
            Vec::new(),
            Config {
                log_history: lines,
                ..Config::default()
            },
        );
        let start = Instant::now();
        for line in parsed {
            update(&mut app, Action::Log(line));
        }
        best_ring = best_ring.min(start.elapsed().as_secs_f64());
    }
    // The same events as a logger configured otherwise writes them.
    let full: Vec<String> = (0..lines)
        .map(|i| {
            format!(
                r#"{{"timestamp":"2026-11-22T10:00:00.{:06}Z","level":"INFO","message":"job done","job":"JOB-{i}","took_ms":3,"target":"tcluster::node::worker","span":{{"node":"worker-7","name":"node"}},"spans":[{{"node":"worker-7","name":"node"}}]}}"#,
                i % 1_000_000
            )
        })
        .collect();
    let full_seconds = best_parse(&full, &node);
    let per_second = |seconds: f64| lines as f64 / seconds.max(f64::MIN_POSITIVE);
    Ok(Ingest {
        lines,
        line_bytes: raw[0].len(),
        parse_lines_per_second: per_second(parse_seconds),
        ring_lines_per_second: per_second(best_ring),
        lines_per_second: per_second(parse_seconds + best_ring),
        full_line_bytes: full[0].len(),
        full_parse_lines_per_second: per_second(full_seconds),
    })
}

/// Seconds to parse every line as the supervisor does, best of three: each line read and handed
/// on (here: dropped), so the allocator reuses what the last one freed, as it does in a run.
fn best_parse(lines: &[String], node: &Arc<str>) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for (i, line) in lines.iter().enumerate() {
            std::hint::black_box(LogLine::parse(i as u64, node.clone(), true, line));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    best
}

/// `lines` log lines written by a node's own formatter, one event each: a job done.
fn node_lines(lines: usize) -> Result<Vec<String>, super::BenchError> {
    let written = crate::logging::InMemory::default();
    let sink = written.clone();
    let subscriber =
        crate::logging::json_lines(tracing_subscriber::EnvFilter::new("info"), move || {
            sink.clone()
        });
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("node", node = "worker-7");
        let _inside = span.enter();
        for i in 0..lines {
            tracing::info!(job = %format_args!("JOB-{i}"), took_ms = 3, "job done");
        }
    });
    let text = String::from_utf8(written.take())
        .map_err(|e| super::BenchError::Setup(format!("the formatter wrote non-UTF-8: {e}")))?;
    let raw: Vec<String> = text.lines().map(str::to_string).collect();
    if raw.len() != lines {
        return Err(super::BenchError::Setup(format!(
            "the formatter wrote {} lines for {lines} events",
            raw.len()
        )));
    }
    Ok(raw)
}
