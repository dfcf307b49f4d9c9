//! `tcluster run --headless` as a lecturer rehearses a demo: a scenario kills one worker and
//! pauses another while jobs run; every job completes, none is lost, and both faults are
//! detected within the heartbeat timeout (plus a margin for a busy machine). And no node
//! outlives tcluster, however tcluster ends.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const TIMEOUT_MS: u64 = 800;

const TOPOLOGY: &str = "
set SYSTEM_NAME HeadlessTest
node coordinator { type master }
node worker { type worker; count 3; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario faults {
    at 0.2s submit \"sleep 600ms\" count 18
    at 0.5s kill worker-1
    at 0.6s pause worker-2
    at 3s   resume worker-2
    at 3.1s say \"worker-2 is back\"
}
";

#[test]
fn a_headless_scenario_kills_and_pauses_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), TOPOLOGY, "faults");

    // The timeline was printed as it happened, one readable line per event.
    for expected in [
        "FAULT #1: kill worker-1",
        "FAULT #2: pause worker-2",
        "DETECTED #1",
        "DETECTED #2",
        ">>> worker-2 is back",
        "scenario faults ends",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }

    assert_eq!(report["system"], "HeadlessTest");
    assert_eq!(report["primary"], "coordinator");
    assert_eq!(report["term"], 1);
    assert_eq!(report["jobs"]["submitted"], 18, "{report}");
    assert_eq!(report["jobs"]["completed"], 18, "{report}");
    assert_eq!(report["jobs"]["failed"], 0);
    assert_eq!(report["jobs"]["lost"], 0);
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert!(nodes.iter().all(|n| n["name"].is_string()
        && n["type"].is_string()
        && n["role"].is_string()
        && n["state"].is_string()));

    let faults = report["faults"].as_array().unwrap();
    let fault = |action: &str| {
        faults
            .iter()
            .find(|f| f["action"] == action)
            .unwrap_or_else(|| panic!("no {action} fault in {report}"))
    };
    let after = |f: &Value, key: &str| {
        f[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} missing in {f}"))
            - f["at_ms"].as_u64().unwrap()
    };
    // A generous margin: detection must be bounded by the policy, not by this machine's load.
    const MARGIN_MS: u64 = 2000;
    let kill = fault("kill");
    assert_eq!(kill["target"], "worker-1");
    assert_eq!(kill["detected_by"], "coordinator");
    assert!(
        after(kill, "detected_ms") <= TIMEOUT_MS + MARGIN_MS,
        "{kill}"
    );
    assert!(kill["recovered_ms"].as_u64().unwrap() >= kill["detected_ms"].as_u64().unwrap());
    let pause = fault("pause");
    assert_eq!(pause["target"], "worker-2");
    assert!(
        after(pause, "detected_ms") >= 400,
        "a paused worker is only noticed by its silence: {pause}"
    );
    assert!(
        after(pause, "detected_ms") <= TIMEOUT_MS + MARGIN_MS,
        "{pause}"
    );
    assert!(pause["recovered_ms"].is_u64(), "{pause}");

    // Every node's log was written under the state directory.
    for node in ["coordinator", "worker-1", "worker-2", "worker-3"] {
        let log = dir.path().join(format!("state/logs/{node}.log"));
        assert!(
            std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
            "{} is empty",
            log.display()
        );
    }
}

#[test]
fn an_unknown_scenario_or_a_cluster_that_cannot_start_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let out = tcluster()
        .args([
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--scenario",
            "fault",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `faults`?"));

    // A coordinator whose port is taken cannot start: non-zero exit, and why.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let text =
        format!("node coordinator {{ type master; port {port} }}\nnode w {{ type worker }}\n");
    let busy = dir.path().join("busy.top");
    std::fs::write(&busy, text).unwrap();
    let out = tcluster()
        .args([
            "run",
            busy.to_str().unwrap(),
            "--headless",
            "--for",
            "5s",
            "--state-dir",
        ])
        .arg(dir.path().join("busy"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot start coordinator"), "{stderr}");
    assert!(
        stderr.contains("Address already in use")
            || stderr.contains("address in use")
            || stderr.contains("in use"),
        "{stderr}"
    );

    // Workers without a master have nothing to run them: refused before anything starts
    // (chat servers alone run without one).
    let orphans = dir.path().join("orphans.top");
    std::fs::write(
        &orphans,
        "node w { type worker }\nnode chat { type chat }\n",
    )
    .unwrap();
    let out = tcluster()
        .args([
            "run",
            orphans.to_str().unwrap(),
            "--headless",
            "--for",
            "5s",
        ])
        .arg("--state-dir")
        .arg(dir.path().join("orphans"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("has no master to register with"),
        "{stderr}"
    );
}

/// A headless run of `text` in the background, once every node has started; returns it and the
/// pids of its nodes.
fn running(dir: &std::path::Path, text: &str) -> (Child, Vec<i32>) {
    let topology = topology(dir, text);
    let mut child = tcluster()
        .args([
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--state-dir",
        ])
        .arg(dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut pids = Vec::new();
    let mut joined = 0;
    while joined < 2 {
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("the run prints its nodes and the workers joining");
        if let Some(pid) = line
            .split(" pid ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
        {
            pids.push(pid);
        }
        if line.contains("joined") {
            joined += 1;
        }
    }
    // Keep draining so the run never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    assert_eq!(pids.len(), 3, "a coordinator and two workers");
    (child, pids)
}

/// True while `pid` is a live process (a zombie waiting to be reaped counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

const SMALL: &str = "node coordinator { type master }\nnode worker { type worker; count 2 }\n";

#[test]
fn no_node_outlives_a_sigkilled_tcluster() {
    let dir = tempfile::tempdir().unwrap();
    let (mut tcluster, pids) = running(dir.path(), SMALL);
    assert!(pids.iter().all(|&p| alive(p)));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tcluster.id() as i32),
        Signal::SIGKILL,
    )
    .unwrap();
    let _ = tcluster.wait();
    wait_until("every node of the killed tcluster is gone", || {
        pids.iter().all(|&p| !alive(p)).then_some(())
    });
}

#[test]
fn losing_the_terminal_stops_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let (mut tcluster, pids) = running(dir.path(), SMALL);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(tcluster.id() as i32),
        Signal::SIGHUP,
    )
    .unwrap();
    let status = wait_until("tcluster stops after SIGHUP", || {
        tcluster.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
    wait_until("every node is gone", || {
        pids.iter().all(|&p| !alive(p)).then_some(())
    });
}

#[test]
fn a_timed_run_stops_every_node_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), SMALL);
    let out = tcluster()
        .args([
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--for",
            "1s",
            "--state-dir",
        ])
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("-- 1s have passed: stopping"), "{stdout}");
    let pids: Vec<i32> = stdout
        .lines()
        .filter_map(|l| {
            l.split(" pid ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(pids.len(), 3);
    wait_until("every node is gone", || {
        pids.iter().all(|&p| !alive(p)).then_some(())
    });
}

#[test]
fn a_students_outside_program_is_launched_and_takes_jobs() {
    if !std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
node coordinator { type master }
node mine { type worker; command "python3 examples/worker.py {coordinator} {name}" }
scenario jobs { at 0.3s submit "echo from python" count 4 }
"#;
    let (stdout, report) = headless(dir.path(), text, "jobs");
    assert!(stdout.contains("mine joined (2 slots)"), "{stdout}");
    assert_eq!(
        stdout.matches("completed by mine: from python").count(),
        4,
        "{stdout}"
    );
    assert_eq!(report["jobs"]["completed"], 4);
}

#[test]
fn skew_restart_and_a_one_way_partition_play_out_on_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let text = "
node coordinator { type master }
node worker { type worker; count 2 }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario clocks {
    at 0.3s skew worker-1 -2s
    at 0.4s restart worker-2
    at 3.5s partition worker-2 -> coordinator
    at 5.5s heal
    at 6.5s say \"done\"
}
";
    let (stdout, report) = headless(dir.path(), text, "clocks");
    // A clock that jumps back stops the worker's heartbeats until it catches up.
    assert!(
        stdout.contains("FAULT #1: skew worker-1 -2000ms"),
        "{stdout}"
    );
    assert!(
        stdout.contains("worker-1 is dead (no heartbeat"),
        "{stdout}"
    );
    assert!(stdout.contains("worker-1 rejoined"), "{stdout}");
    // A restart is a kill and a start under the same name.
    assert!(
        stdout.contains("worker-2 exited: killed by SIGKILL"),
        "{stdout}"
    );
    assert!(stdout.contains("worker-2 started (pid"), "{stdout}");
    // Only worker-2's heartbeats are cut, and that is enough to be declared dead; heal brings it back.
    assert!(
        stdout.contains("worker-2 is dead (no heartbeat"),
        "{stdout}"
    );
    assert!(
        stdout.matches("worker-2 rejoined").count() >= 2,
        "after the restart and after the heal:\n{stdout}"
    );
    let faults = report["faults"].as_array().unwrap();
    let skew = faults.iter().find(|f| f["action"] == "skew").unwrap();
    assert!(skew["detected_ms"].is_u64(), "{skew}");
    let partition = faults.iter().find(|f| f["action"] == "partition").unwrap();
    assert_eq!(partition["target"], "worker-2 -> coordinator");
    assert!(partition["detected_ms"].is_u64(), "{partition}");
}

/// A run cut short while jobs still run: the summary says how many are unfinished, in the JSON
/// and in words, and its counts add up.
#[test]
fn a_run_cut_short_reports_its_unfinished_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let text = "
set SYSTEM_NAME CutShort
node coordinator { type master }
node worker { type worker; resources { cpu 1 } }
scenario long {
    at 0s submit \"sleep 30s\" count 3
}
";
    let (stdout, report) = headless_with(dir.path(), text, "long", &["--for", "2s"]);
    let jobs = &report["jobs"];
    let n = |key: &str| {
        jobs[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    assert_eq!(n("submitted"), 3, "{report}");
    assert_eq!(n("unfinished"), 3, "{report}");
    assert_eq!(
        n("submitted"),
        n("completed") + n("failed") + n("lost") + n("unfinished"),
        "{report}"
    );
    assert!(stdout.contains("0 lost, 3 unfinished"), "{stdout}");
}
