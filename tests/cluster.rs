//! A real cluster of processes: a coordinator and three workers on OS-chosen ports. 30 jobs;
//! one worker is SIGKILLed and one SIGSTOPped while they run jobs; every job completes exactly
//! once, and both faults are detected the way the heartbeat policy says.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;

use common::*;
use nix::sys::signal::Signal;
use serde_json::Value;

const TOPOLOGY: &str = "
node coordinator { type master }
node worker { type worker; count 3; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 300ms; timeout 800ms }
";

/// Subscribes to the coordinator's events; they arrive on the returned channel.
fn subscribe(addr: &str) -> mpsc::Receiver<Value> {
    let mut line = Line::connect(addr);
    line.send(r#"{"type":"subscribe","from":"test"}"#);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Some(text) = line.recv() {
            let value: Value = serde_json::from_str(&text).expect("events are JSON");
            if value["type"] == "event" && tx.send(value["event"].clone()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects events until `done` says so.
fn collect_until(
    events: &mpsc::Receiver<Value>,
    seen: &mut Vec<Value>,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !done(seen) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => seen.push(event),
            Err(_) => panic!(
                "timed out waiting until {what}; events so far:\n{}",
                render(seen)
            ),
        }
    }
}

fn render(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn count(events: &[Value], kind: &str, pred: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .filter(|e| e["event"] == kind && pred(e))
        .count()
}

#[test]
fn thirty_jobs_survive_a_killed_and_a_stopped_worker() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let events = subscribe(&addr);
    let w1 = worker(dir.path(), &topology, "worker-1", &addr);
    let w2 = worker(dir.path(), &topology, "worker-2", &addr);
    let _w3 = worker(dir.path(), &topology, "worker-3", &addr);

    let mut submit = Line::connect(&addr);
    submit.send(r#"{"type":"submit","from":"test","data":"sleep 400ms","count":30}"#);
    let accepted = submit.recv_type("accepted");
    assert_eq!(accepted["jobs"].as_array().unwrap().len(), 30);

    // Wait until worker-1 and worker-2 are each running a job, then break them.
    let mut seen = Vec::new();
    let started_on =
        |events: &[Value], w: &str| count(events, "job_started", |e| e["worker"] == w) > 0;
    collect_until(&events, &mut seen, "worker-1 and worker-2 run jobs", |ev| {
        started_on(ev, "worker-1") && started_on(ev, "worker-2")
    });
    w1.signal(Signal::SIGKILL);
    w2.signal(Signal::SIGSTOP);

    collect_until(&events, &mut seen, "all 30 jobs complete", |ev| {
        count(ev, "job_completed", |_| true) >= 30
    });

    // The kill is seen at once (the connection closes); the pause by the heartbeat timeout.
    let dead = |w: &str| {
        seen.iter()
            .find(|e| e["event"] == "worker_dead" && e["worker"] == w)
            .cloned()
    };
    let w1_dead = dead("worker-1").expect("worker-1 declared dead");
    assert_eq!(w1_dead["reason"], "connection closed");
    let w2_dead = dead("worker-2").expect("worker-2 declared dead");
    assert!(
        w2_dead["reason"]
            .as_str()
            .unwrap()
            .starts_with("no heartbeat for"),
        "{w2_dead}"
    );
    assert_eq!(
        count(&seen, "worker_suspect", |e| e["worker"] == "worker-2"),
        1,
        "suspect before dead"
    );
    assert!(
        count(&seen, "job_requeued", |_| true) >= 2,
        "the broken workers' jobs were requeued"
    );

    // worker-2 resumes: it rejoins, and whatever it finishes now is a duplicate, not a second
    // completion.
    w2.signal(Signal::SIGCONT);
    collect_until(&events, &mut seen, "worker-2 rejoins", |ev| {
        count(ev, "worker_rejoined", |e| e["worker"] == "worker-2") > 0
    });

    let mut completions: HashMap<String, usize> = HashMap::new();
    for e in seen.iter().filter(|e| e["event"] == "job_completed") {
        *completions
            .entry(e["job"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(completions.len(), 30, "every job completed");
    assert!(
        completions.values().all(|&n| n == 1),
        "no job completed twice: {completions:?}"
    );

    // The coordinator's own view agrees.
    let mut status = Line::connect(&addr);
    status.send(r#"{"type":"status"}"#);
    let report = status.recv_type("status_report");
    assert_eq!(report["report"]["jobs"]["completed"], 30, "{report}");
    assert_eq!(report["report"]["jobs"]["failed"], 0);
    status.send(r#"{"type":"jobs","state":"completed"}"#);
    let list = status.recv_type("job_list");
    for job in list["jobs"].as_array().unwrap() {
        assert_eq!(job["result"], "slept 400ms");
    }
}

#[test]
fn logs_can_be_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &["--log-format", "json"]);
    let _w = worker(dir.path(), &topology, "worker-1", &addr);
    let line = wait_until("the coordinator logs the join", || {
        coordinator
            .log_text()
            .lines()
            .find(|l| l.contains("worker-1 joined"))
            .map(str::to_string)
    });
    let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["message"], "worker-1 joined (2 slots)");
    assert_eq!(entry["span"]["node"], "coordinator");
}
