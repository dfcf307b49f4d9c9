//! Compaction across SIGKILL, on real processes: a coordinator killed the moment it has made a
//! snapshot (while it writes it to its journal) and started again on the same STATE_DIR loses
//! no unfinished job and no unread result; a chat server killed while it drops posts past its
//! retention keeps every post inside it.

mod common;

use std::path::Path;

use common::*;
use nix::sys::signal::Signal;

const COORDINATOR: &str = "
set SYSTEM_NAME CompactionTest
node coordinator { type master }
node worker { type worker; resources { cpu 4 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
policy journal { keep_done 20; compact_every 100 }
";

/// Server `name` of `topology` on `port` (0: any) with its state under `state`, as process
/// `NAME-RUN`; returns it and its address.
fn server(
    dir: &Path,
    topology: &Path,
    state: &Path,
    name: &str,
    port: u16,
    run: usize,
) -> (Proc, String) {
    let listen = format!("127.0.0.1:{port}");
    let proc = spawn(
        dir,
        &format!("{name}-{run}"),
        &[
            "node",
            topology.to_str().unwrap(),
            "--name",
            name,
            "--listen",
            &listen,
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    let line = proc.wait_for_line(&format!("READY {name} "));
    let addr = line.rsplit(' ').next().unwrap().to_string();
    (proc, addr)
}

/// The coordinator (see [`server`]).
fn start(dir: &Path, topology: &Path, state: &Path, port: u16, run: usize) -> (Proc, String) {
    server(dir, topology, state, "coordinator", port, run)
}

fn ask(addr: &str, line: &str, kind: &str) -> serde_json::Value {
    let mut c = Line::connect(addr);
    c.send(line);
    c.recv_type(kind)
}

fn counts(addr: &str) -> serde_json::Value {
    ask(addr, r#"{"type":"status"}"#, "status_report")["report"]["jobs"].clone()
}

/// How many jobs the test has submitted so far.
struct Submitted(u64);

impl Submitted {
    /// Submits `count` jobs whose results nobody reads yet.
    fn more(&mut self, addr: &str, count: u64) {
        let accepted = ask(
            addr,
            &format!(r#"{{"type":"submit","data":"sleep 5ms","count":{count}}}"#),
            "accepted",
        );
        assert!(accepted["jobs"].is_array(), "{accepted}");
        self.0 += count;
    }
}

/// Waits until the coordinator's log says it has made one more snapshot than `seen`. A
/// snapshot is due only after as many events as the state holds jobs; should the queue run
/// dry before then (a kill that landed after the snapshot reached the disk leaves a fresh
/// start), 300 more jobs make the events.
fn wait_for_compaction(proc: &Proc, addr: &str, seen: usize, jobs: &mut Submitted) -> usize {
    wait_until("the coordinator compacts", || {
        let n = proc.log_text().matches("compacted").count();
        if n > seen {
            return Some(n);
        }
        if counts(addr)["queued"] == 0 {
            jobs.more(addr, 300);
        }
        None
    })
}

fn total(c: &serde_json::Value) -> u64 {
    ["queued", "assigned", "running", "completed", "failed"]
        .iter()
        .map(|k| c[k].as_u64().unwrap())
        .sum()
}

#[test]
fn a_coordinator_killed_while_it_compacts_loses_no_job_and_no_unread_result() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), COORDINATOR);
    let state = dir.path().join("state");
    let (mut coordinator, addr) = start(dir.path(), &topology, &state, 0, 0);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let _worker = start_worker(dir.path(), "worker", &topology, "worker", &addr);

    // 1500 jobs nobody waits for: their results stay unread, so none may be forgotten, and
    // the queue makes every snapshot large (slow to write: a kill lands inside it).
    let mut jobs = Submitted(0);
    jobs.more(&addr, 1500);

    // Kill it the moment it has made a snapshot, five times; each time it starts again on
    // the same journal and the worker comes back to it.
    for run in 1..=5 {
        wait_for_compaction(&coordinator, &addr, 0, &mut jobs);
        coordinator.signal(Signal::SIGKILL);
        drop(coordinator);
        coordinator = start(dir.path(), &topology, &state, port, run).0;
        let c = counts(&addr);
        assert_eq!(total(&c), jobs.0, "after kill {run}: {c}");
    }
    let unread = jobs.0;
    let done = wait_until("every job completes", || {
        let c = counts(&addr);
        (c["completed"] == unread).then_some(c)
    });
    assert_eq!(done["failed"], 0, "{done}");
    // No result was read, so every one is still there.
    for id in [1, 2, 750, unread - 1, unread] {
        let info = ask(
            &addr,
            &format!(r#"{{"type":"status","job":"JOB-{id}"}}"#),
            "job_info",
        );
        assert_eq!(info["job"]["state"], "completed", "{info}");
        assert_eq!(info["job"]["result"], "slept 5ms", "{info}");
    }

    // Now read them all (a page of `jobs` at a time), and run 800 more whose clients wait: the
    // next snapshots forget the oldest finished jobs, and a kill right after one keeps that.
    let mut before: Option<String> = None;
    loop {
        let line = match &before {
            Some(b) => format!(r#"{{"type":"jobs","limit":1000,"before":"{b}"}}"#),
            None => r#"{"type":"jobs","limit":1000}"#.to_string(),
        };
        let page = ask(&addr, &line, "job_list");
        match page["before"].as_str() {
            Some(b) => before = Some(b.to_string()),
            None => break,
        }
    }
    let mut waiting = Line::connect(&addr);
    waiting.send(r#"{"type":"submit","data":"sleep 5ms","count":200,"notify":true}"#);
    for _ in 0..200 {
        waiting.recv_type("job_finished");
    }
    jobs.0 += 200;
    let seen = coordinator.log_text().matches("compacted").count();
    let mut more = Line::connect(&addr);
    more.send(r#"{"type":"submit","data":"sleep 5ms","count":600,"notify":true}"#);
    more.recv_type("accepted");
    jobs.0 += 600;
    wait_for_compaction(&coordinator, &addr, seen, &mut jobs);
    coordinator.signal(Signal::SIGKILL);
    drop(coordinator);
    let (_coordinator, _) = start(dir.path(), &topology, &state, port, 6);
    let done = wait_until("the last jobs complete", || {
        let c = counts(&addr);
        (c["completed"] == jobs.0).then_some(c)
    });
    assert_eq!(done["queued"], 0, "{done}");
    let old = ask(&addr, r#"{"type":"status","job":"JOB-1"}"#, "error");
    assert!(
        old["message"].as_str().unwrap().contains("forgotten"),
        "{old}"
    );
    let newest = ask(
        &addr,
        &format!(r#"{{"type":"status","job":"JOB-{}"}}"#, jobs.0),
        "job_info",
    );
    assert_eq!(newest["job"]["state"], "completed", "{newest}");
}

const CHAT: &str = "
set SYSTEM_NAME ChatRetention
node chat { type chat }
policy chat { keep 50; rate 1000/s; burst 1000 }
";

fn chat_server(dir: &Path, topology: &Path, state: &Path, port: u16, run: usize) -> (Proc, String) {
    server(dir, topology, state, "chat", port, run)
}

#[test]
fn a_chat_server_killed_while_it_drops_old_posts_keeps_every_post_inside_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), CHAT);
    let state = dir.path().join("state");
    let (mut server, addr) = chat_server(dir.path(), &topology, &state, 0, 0);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut n = 0;
    for run in 1..=4 {
        let mut ada = Line::connect(&addr);
        ada.send(r#"{"type":"chat_login","user":"ada"}"#);
        ada.recv_type("chat_welcome");
        ada.send(r#"{"type":"chat_create","channel":"general"}"#);
        ada.recv();
        // Past the retention, every post drops the oldest one: each commit is a compaction.
        // The server is killed while posts are in flight.
        for _ in 0..80 {
            n += 1;
            ada.send(&format!(
                r#"{{"type":"chat_publish","channel":"general","text":"post {n}"}}"#
            ));
        }
        let mut answered = 0;
        while answered < 60 {
            let line = ada.recv().expect("an answer");
            if line.contains("chat_done") {
                answered += 1;
            }
        }
        acknowledged.extend((n - 79..=n - 20).map(|i| format!("post {i}")));
        server.signal(Signal::SIGKILL);
        drop(server);
        server = chat_server(dir.path(), &topology, &state, port, run).0;
    }
    let mut reader = Line::connect(&addr);
    reader.send(r#"{"type":"chat_login","user":"reader"}"#);
    reader.recv_type("chat_welcome");
    reader.send(r#"{"type":"chat_history","channel":"general","limit":1000}"#);
    let mut texts = Vec::new();
    loop {
        let part = reader.recv_type("chat_history_list");
        for e in part["entries"].as_array().unwrap() {
            if let Some(t) = e["text"].as_str() {
                texts.push(t.to_string());
            }
        }
        if part["more"] != true {
            break;
        }
    }
    assert!(texts.len() <= 50, "{} posts kept: {texts:?}", texts.len());
    // Every acknowledged post among the newest 50 sent is there (posts sent after it and
    // committed before the kill may have pushed older ones out; nothing else may).
    let inside: Vec<&String> = acknowledged
        .iter()
        .filter(|p| p[5..].parse::<usize>().unwrap() > n - 50)
        .collect();
    assert!(inside.len() >= 20, "{inside:?}");
    for post in &inside {
        assert!(texts.contains(post), "{post} is missing: {texts:?}");
    }
    drop(server);
}

const COMPACTING_RUN: &str = "
set SYSTEM_NAME CompactingRun
node coordinator { type master; role primary }
node backup { type master; role backup }
node worker { type worker; count 2; resources { cpu 4 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
policy journal { keep_done 10; compact_every 100 }
scenario flood {
    at 0.2s submit \"sleep 5ms\" count 150
    at 1s submit \"sleep 5ms\" count 150
}
scenario resume { at 0.1s say \"resuming\" }
";

#[test]
fn a_run_that_compacts_many_times_reports_every_job_and_resumes_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), COMPACTING_RUN, "flood");
    assert_eq!(report["jobs"]["submitted"], 300, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["completed"], 300, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
    let logs = dir.path().join("state").join("logs");
    let compacted = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .map(|text| text.matches("compacted").count())
        .sum::<usize>();
    assert!(
        compacted >= 2,
        "{compacted} compactions in the masters' logs"
    );
    // Bookkeeping is not news: the timeline does not show it.
    assert!(!stdout.contains("snapshot of the state"), "{stdout}");
    assert!(!stdout.contains("results read"), "{stdout}");
    // The next run starts from the journal's snapshot, with the same counts.
    let (stdout, report) = headless_with(dir.path(), COMPACTING_RUN, "resume", &["--resume"]);
    assert_eq!(report["jobs"]["completed"], 300, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
}
