//! Every run records itself, and `tcluster replay` reads it back: a run killed with SIGKILL
//! replays up to its end; what is not a recording, a moment outside it or a bad size is said.
//! (The round trip of the demo lecture is checked with the lecture, in tests/scenarios.rs.)

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

#[test]
fn a_run_killed_with_sigkill_replays_up_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), &demo_on_free_ports());
    let state = dir.path().join("state");
    let mut run = tcluster()
        .args([
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--scenario",
        ])
        .arg("lecture")
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once worker-2 was killed and its jobs moved (the lecture's first fault).
    let lines = BufReader::new(run.stdout.take().unwrap()).lines();
    let recovered = lines
        .map_while(Result::ok)
        .any(|l| l.contains("RECOVERED #1"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(run.id() as i32), Signal::SIGKILL).unwrap();
    let _ = run.wait();
    assert!(recovered, "the run got to its first fault");

    // The recording holds the run up to the kill: worker-2 dead at its end.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (code, out, err) = loop {
        let result = replay(&[state.to_str().unwrap(), "--json"]);
        if result.0 == Some(0) || Instant::now() > deadline {
            break result;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "{err}");
    let at_end: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(at_end["at_ms"].as_u64().unwrap() >= 2000, "{at_end}");
    let worker_2 = at_end["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "worker-2")
        .unwrap();
    assert_eq!(worker_2["verdict"], "dead", "{at_end}");
    // Named by its state directory alone, the same run.
    let (code, out, err) = replay(&["--state-dir", state.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["at_ms"], at_end["at_ms"], "{again}");
    // The screen at its end draws too.
    let (code, screen, err) = replay(&[state.to_str().unwrap(), "--dump", "--size", "80x24"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(screen.lines().count(), 24, "{screen}");
    assert!(screen.contains("worker-2"), "{screen}");
}

#[test]
fn what_cannot_be_replayed_is_said_with_where_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let (code, _, err) = replay(&[missing.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nowhere: no such file or directory"), "{err}");

    let (code, _, err) = replay(&[dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no recording in"), "{err}");

    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "hello\n{}\n").unwrap();
    let (code, _, err) = replay(&[junk.to_str().unwrap(), "--dump"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not a tcluster recording"), "{err}");

    // A recording of one line: the run, at 0.
    let one = dir.path().join("one.jsonl");
    std::fs::write(
        &one,
        r#"{"t":0,"feed":"start","of":{"system":"tiny","topology":"t.top","began":"","epoch_ms":0,"primary":"m","term":1,"nodes":[],"scenarios":[],"clusters":[],"main_cluster":"default","others":[],"chat":false}}"#,
    )
    .unwrap();
    let (code, _, err) = replay(&[one.to_str().unwrap(), "--at", "5s", "--json"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--at 5s: the recording runs from 0:00.0 to 0:00.0"),
        "{err}"
    );
    let (code, _, err) = replay(&[one.to_str().unwrap(), "--at", "soon", "--json"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("`soon` is not a time"), "{err}");
    let (code, _, err) = replay(&[one.to_str().unwrap(), "--dump", "--size", "9x9"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("a screen is 20 to 1000 columns wide"), "{err}");
    let (code, out, err) = replay(&[one.to_str().unwrap(), "--dump", "--size", "40x10"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 10);
    // Without a terminal, the interactive replay says what to use instead.
    let (code, _, err) = replay(&[one.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("use --dump or --json"), "{err}");
}
