//! The whole of tcluster SIGKILLed mid-run (its nodes die with it), then started again on the
//! same STATE_DIR: the coordinator replays its journal and every job it had accepted completes.
//! And while the journal commits a flood, subscribers that join see each event exactly once.

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
    killed_mid_run_then_started_again(TOPOLOGY);
}

/// `durability none` and `periodic` keep the same promise against a crashed process (the
/// coordinator writes each batch's lines before the batch's replies go out, without waiting
/// for them to be forced to disk).
#[test]
fn under_durability_none_a_killed_cluster_also_finishes_every_accepted_job() {
    let none = format!("{TOPOLOGY}policy journal {{ durability none }}\n");
    killed_mid_run_then_started_again(&none);
}

#[test]
fn under_durability_periodic_a_killed_cluster_also_finishes_every_accepted_job() {
    let periodic = format!("{TOPOLOGY}policy journal {{ durability periodic 50ms }}\n");
    killed_mid_run_then_started_again(&periodic);
}

fn killed_mid_run_then_started_again(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), text);
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
    let (stdout, report) = headless(dir.path(), text, "resume");
    assert_eq!(report["jobs"]["submitted"], 16, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["completed"], 16, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0);
    // The jobs that were running when everything died ran again in the second run: requeued
    // when their worker rejoined without them, or already in the first run's journal, when a
    // worker died a moment before its coordinator did. Either way they run a second attempt.
    assert!(stdout.contains("(attempt 2)"), "{stdout}");
}

/// Subscribers that join while a flood of submissions is being forced to disk (replies and
/// events held until their commit) see each event once — in their history or live, never both —
/// and live events in the order they happened.
#[test]
fn subscribers_joining_while_jobs_are_committed_see_each_event_once_in_order() {
    const JOBS: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let state = dir.path().join("state");
    let (_coordinator, addr) = coordinator(
        dir.path(),
        &topology,
        &["--state-dir", state.to_str().unwrap()],
    );

    // The flood, on a connection of its own whose replies are read as they come.
    let mut flood = Line::connect(&addr);
    let mut writer = flood.writer_mut().try_clone().unwrap();
    let replies = std::thread::spawn(move || {
        let mut accepted = 0;
        while accepted < JOBS {
            match flood.recv() {
                Some(line) if line.contains("\"accepted\"") => accepted += 1,
                Some(_) => {}
                None => break,
            }
        }
        accepted
    });
    let submit = r#"{"type":"submit","data":"echo x"}"#.to_string() + "\n";
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        for _ in 0..JOBS {
            writer.write_all(submit.as_bytes()).unwrap();
        }
    });

    // Subscribers join one after another while it runs.
    let watchers: Vec<_> = (0..6)
        .map(|i| {
            std::thread::sleep(std::time::Duration::from_millis(15));
            let mut line = Line::connect(&addr);
            line.send(r#"{"type":"subscribe","history":true}"#);
            std::thread::spawn(move || {
                let mut history: Vec<String> = Vec::new();
                let mut live: Vec<(u64, String)> = Vec::new();
                let last = format!("JOB-{JOBS}\"");
                loop {
                    let text = line.recv().expect("the subscription stays open");
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "history" {
                        for event in value["events"].as_array().unwrap() {
                            history.push(event.to_string());
                        }
                    } else if value["type"] == "event" {
                        let event = &value["event"];
                        live.push((event["clock"].as_u64().unwrap(), event.to_string()));
                    } else {
                        continue;
                    }
                    if text.contains(&last) {
                        return (i, history, live);
                    }
                }
            })
        })
        .collect();
    sender.join().unwrap();
    assert_eq!(replies.join().unwrap(), JOBS, "every job accepted");
    for watcher in watchers {
        let (i, history, live) = watcher.join().unwrap();
        let mut seen = std::collections::HashSet::new();
        for event in history.iter().chain(live.iter().map(|(_, e)| e)) {
            assert!(
                seen.insert(event.clone()),
                "subscriber {i} got twice: {event}"
            );
        }
        for pair in live.windows(2) {
            assert!(
                pair[0].0 <= pair[1].0,
                "subscriber {i}: live events went back in time: {} then {}",
                pair[0].1,
                pair[1].1
            );
        }
    }
}

/// A journal damaged on disk (not cut short by a crash: good lines follow the bad one) stops
/// the coordinator from starting, with the file and the line, and is left as it was.
#[test]
fn a_damaged_journal_is_refused_naming_the_file_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let state = dir.path().join("state");
    let run = |how: &str| {
        tcluster()
            .args([
                "run",
                topology.to_str().unwrap(),
                "--headless",
                "--for",
                "1s",
            ])
            .args([how, "--state-dir"])
            .arg(&state)
            .output()
            .unwrap()
    };
    assert!(run("--fresh").status.success());
    let path = state.join("journal/coordinator.journal");
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.iter().filter(|b| **b == b'\n').count() >= 2,
        "a journal of several lines"
    );
    // A byte inside the first line's event (after `<seq> <crc> `).
    bytes[12] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let second = run("--resume");
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("coordinator.journal: line 1") && stderr.contains("damaged"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is left as it was"
    );
}
