//! The whole of tcluster SIGKILLed mid-run (its nodes die with it), then started again on the
//! same STATE_DIR: the coordinator replays its journal and every job it had accepted completes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;
use nix::sys::signal::Signal;

const TOPOLOGY: &str = "
set SYSTEM_NAME JournalTest
node coordinator { type master }
node worker { type worker; count 2; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario load { at 0.2s submit \"sleep 700ms\" count 16 }
scenario resume { at 0.1s say \"resuming\" }
";

#[test]
fn a_cluster_killed_mid_run_finishes_every_accepted_job_when_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let state = dir.path().join("state");

    // First run: kill tcluster itself once some jobs have completed and others are running.
    let mut first = tcluster()
        .args([
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--scenario",
            "load",
            "--state-dir",
        ])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let mut completed = 0;
    for line in lines.map_while(Result::ok) {
        if line.contains(" completed by ") {
            completed += 1;
            if completed == 3 {
                break;
            }
        }
    }
    assert_eq!(completed, 3, "the first run got going");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    let _ = first.wait();

    // Second run on the same state: every one of the 16 jobs completes; none is lost.
    let (stdout, report) = headless(dir.path(), TOPOLOGY, "resume");
    assert_eq!(report["jobs"]["submitted"], 16, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["completed"], 16, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0);
    // The jobs that were running when everything died ran again in the second run: requeued
    // when their worker rejoined without them, or already in the first run's journal, when a
    // worker died a moment before its coordinator did. Either way they run a second attempt.
    assert!(stdout.contains("(attempt 2)"), "{stdout}");
}
