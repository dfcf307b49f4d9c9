//! Journal: restart time and bytes on disk after a run of N completed jobs, with compaction
//! (the default `policy journal`) and without it.
//!
//! The coordinator's own state machine runs the jobs (no sockets: what is measured is the
//! journal, not the network), and its outputs are written to a real journal exactly as the
//! node writes them ([`crate::journal::write_entries`]), a commit per batch of steps as the node
//! batches them. A restart is what a coordinator does when it starts on that state
//! directory: open the journal, read every row, rebuild the state.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::BenchError;
use crate::journal::{Journal, entries_of, path_for, write_entries};
use crate::protocol::Dialect;
use crate::protocol::message::{Envelope, JobId, Message};
use crate::role::coordinator::{Coordinator, CoordinatorConfig, Input, Output};
use crate::topology::Retention;

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct JournalRun {
    /// Jobs completed.
    pub jobs: u64,
    /// Whether compaction ran (the default retention) or not.
    pub compacted: bool,
    /// Rows in the journal at the end.
    pub rows: u64,
    /// Its file's size, bytes.
    pub bytes: u64,
    /// Opening it and rebuilding the state, ms.
    pub restart_ms: f64,
    /// Jobs the rebuilt state holds (the rest are counted, not kept).
    pub jobs_held: usize,
    /// How long the run itself took, s.
    pub run_s: f64,
}

/// What [`journal`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct JournalBench {
    /// The retention the compacted runs used.
    pub keep_done: usize,
    pub compact_every: u64,
    pub runs: Vec<JournalRun>,
}

impl JournalBench {
    /// A readable table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "journal  restart and disk after N completed jobs (keep_done {}, compact_every {})\n\
             \x20 {:>9}  {:<13} {:>10} {:>11} {:>11} {:>10}\n",
            self.keep_done,
            self.compact_every,
            "jobs",
            "compaction",
            "rows",
            "on disk",
            "restart",
            "jobs held"
        );
        for r in &self.runs {
            out.push_str(&format!(
                "  {:>9}  {:<13} {:>10} {:>8.1} MB {:>8.1} ms {:>10}\n",
                r.jobs,
                if r.compacted { "on" } else { "off" },
                r.rows,
                r.bytes as f64 / 1e6,
                r.restart_ms,
                r.jobs_held
            ));
        }
        out
    }
}

/// Runs `counts` jobs each, with compaction, and (for counts up to `uncompacted_up_to`)
/// without.
pub fn journal(counts: &[u64], uncompacted_up_to: u64) -> Result<JournalBench, BenchError> {
    let retention = Retention::default();
    let mut runs = Vec::new();
    for &jobs in counts {
        runs.push(one(jobs, Some(retention))?);
        if jobs <= uncompacted_up_to {
            runs.push(one(jobs, None)?);
        }
    }
    Ok(JournalBench {
        keep_done: retention.keep_done,
        compact_every: retention.compact_every,
        runs,
    })
}

fn setup(e: impl std::fmt::Display) -> BenchError {
    BenchError::Setup(e.to_string())
}

fn envelope(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

/// The most steps written in one commit, as the node batches them.
const BATCH: usize = 512;
/// Jobs submitted at a time (and waited for, so their results are read).
const ROUND: u32 = 1_000;

fn one(jobs: u64, retention: Option<Retention>) -> Result<JournalRun, BenchError> {
    let dir = super::scratch::ScratchDir::new(&format!("journal-{jobs}"))?;
    let path = path_for(dir.path(), "coordinator");
    let (mut journal, _) = Journal::open(&path).map_err(setup)?;
    let mut config = CoordinatorConfig::for_tests("coordinator");
    config.sync = false;
    config.retention = retention.unwrap_or(Retention {
        keep_done: usize::MAX,
        compact_every: u64::MAX,
        ..Retention::default()
    });
    let mut c = Coordinator::new(config);
    let started = Instant::now();
    let (worker, client) = (1, 2);
    let mut now = 0;
    let mut pending = Vec::new();
    let step = |c: &mut Coordinator, now: u64, input: Input, pending: &mut Vec<Output>| {
        let out = c.step(now, input);
        pending.extend(out.iter().cloned());
        out
    };
    step(&mut c, now, Input::Connected(worker), &mut pending);
    step(&mut c, now, Input::Connected(client), &mut pending);
    let register = Message::Register {
        slots: ROUND,
        running: Vec::new(),
        owner: None,
    };
    step(
        &mut c,
        now,
        Input::Received(worker, Dialect::Native, envelope("w", register)),
        &mut pending,
    );
    let mut done = 0;
    while done < jobs {
        now += 1;
        let count = ROUND.min((jobs - done) as u32);
        let submit = Message::Submit {
            data: "x".into(),
            count,
            priority: 0,
            token: None,
            notify: true,
        };
        let out = step(
            &mut c,
            now,
            Input::Received(client, Dialect::Native, envelope("bench", submit)),
            &mut pending,
        );
        write_entries(&mut journal, entries_of(&pending));
        pending.clear();
        let assigned: Vec<(JobId, u32)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send(w, env) if *w == worker => match env.message {
                    Message::Assign { job, attempt, .. } => Some((job, attempt)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for chunk in assigned.chunks(BATCH) {
            for &(job, attempt) in chunk {
                let result = Message::JobDone {
                    job,
                    result: "ok".into(),
                    attempt: Some(attempt),
                };
                step(
                    &mut c,
                    now,
                    Input::Received(worker, Dialect::Native, envelope("w", result)),
                    &mut pending,
                );
            }
            write_entries(&mut journal, entries_of(&pending));
            pending.clear();
        }
        done += u64::from(count);
    }
    let run_s = started.elapsed().as_secs_f64();
    let rows = journal.len() - journal.first();
    drop(journal);
    drop(c);
    let bytes = std::fs::metadata(&path).map_err(setup)?.len();
    let (restart, jobs_held) = restart(&path)?;
    Ok(JournalRun {
        jobs,
        compacted: retention.is_some(),
        rows,
        bytes,
        restart_ms: restart.as_secs_f64() * 1000.0,
        jobs_held,
        run_s,
    })
}

/// Opens the journal and rebuilds the state, as a coordinator starting on it does.
fn restart(path: &Path) -> Result<(Duration, usize), BenchError> {
    let started = Instant::now();
    let (journal, events) = Journal::open(path).map_err(setup)?;
    let mut c = Coordinator::new(CoordinatorConfig::for_tests("coordinator"));
    c.restore_from(journal.first(), &events);
    let took = started.elapsed();
    Ok((took, c.state().jobs.len()))
}
