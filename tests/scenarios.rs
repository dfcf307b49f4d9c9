//! The shipped lecture tells only what happens: `topologies/demo.top`'s `lecture` scenario run
//! headless (on ports the OS picks), and each of its `say` lines checked against the timeline —
//! the kill and the pause hit workers that run jobs, which move; the paused worker turns
//! suspect, then dead; the slow worker finishes fewer jobs; the heal brings worker-3 back; every
//! job completes.

mod common;

use common::*;

/// The lines of the headless output from the first one containing `from`, to the first after
/// it containing `to`.
fn between<'a>(lines: &[&'a str], from: &str, to: &str) -> Vec<&'a str> {
    let start = lines
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("no line with {from:?}"));
    let end = lines[start..]
        .iter()
        .position(|l| l.contains(to))
        .map_or(lines.len(), |i| start + i);
    lines[start..end].to_vec()
}

#[test]
fn the_demo_lecture_says_only_what_the_class_will_see() {
    let dir = tempfile::tempdir().unwrap();
    let text = demo_on_free_ports();
    let (stdout, report) = headless(dir.path(), &text, "lecture");
    let lines: Vec<&str> = stdout.lines().collect();

    // "worker-2 is killed mid-job: its connection closes, so the coordinator knows at once"
    let kill = between(&lines, "FAULT #1: kill worker-2", "FAULT #2");
    assert!(
        kill.iter()
            .any(|l| l.contains("worker-2 is dead (connection closed)")),
        "{stdout}"
    );
    assert!(
        kill.iter()
            .any(|l| l.contains("RECOVERED #1") && l.contains("→")),
        "its jobs moved:\n{stdout}"
    );
    // "worker-2 restarts and rejoins: it takes jobs again"
    assert!(
        lines
            .iter()
            .any(|l| l.contains("OUTCOME #2 (restart worker-2): up again")),
        "{stdout}"
    );
    // "worker-3 is paused: it falls silent — watch it turn suspect, then dead"
    let pause = between(&lines, "FAULT #3: pause worker-3", "REPAIR #4");
    let suspect = pause
        .iter()
        .position(|l| l.contains("worker-3 is suspect"))
        .expect("suspect while paused");
    let dead = pause
        .iter()
        .position(|l| l.contains("worker-3 is dead (no heartbeat"))
        .expect("dead while paused");
    assert!(suspect < dead, "{stdout}");
    assert!(
        pause
            .iter()
            .any(|l| l.contains("RECOVERED #3") && l.contains("→")),
        "its jobs moved:\n{stdout}"
    );
    // "worker-3 resumes and rejoins the cluster"
    assert!(
        lines
            .iter()
            .any(|l| l.contains("OUTCOME #4 (resume worker-3): worker-3 rejoined")),
        "{stdout}"
    );
    // "A slow link to worker-1 (300 ms each way): watch its DONE count fall behind"
    let slow = between(&lines, "FAULT #5: latency", "FAULT #6");
    let done_by = |worker: &str| {
        slow.iter()
            .filter(|l| {
                l.contains("completed by ") && l.ends_with(&format!("by {worker}: slept 500ms"))
            })
            .count()
    };
    let (w1, w2, w3) = (
        done_by("worker-1"),
        done_by("worker-2"),
        done_by("worker-3"),
    );
    assert_eq!(w1 + w2 + w3, 30, "{stdout}");
    assert!(
        w1 < w2 && w1 < w3,
        "worker-1 {w1}, worker-2 {w2}, worker-3 {w3}"
    );
    // "The link between the coordinator and worker-3 is cut: worker-3 falls silent to it"
    let cut = between(&lines, "FAULT #7: partition", "REPAIR #8");
    assert!(
        cut.iter()
            .any(|l| l.contains("worker-3 is dead (no heartbeat")),
        "{stdout}"
    );
    assert!(
        cut.iter()
            .any(|l| l.contains("RECOVERED #7") && l.contains("→")),
        "its jobs moved:\n{stdout}"
    );
    // "Healed: worker-3 comes back"
    assert!(
        lines
            .iter()
            .any(|l| l.contains("OUTCOME #8 (heal every link): worker-3 rejoined")),
        "{stdout}"
    );
    // "Every job completed, none lost"
    assert_eq!(report["jobs"]["submitted"], 54, "{report}");
    assert_eq!(report["jobs"]["completed"], 54, "{report}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");

    // The run recorded itself: its replay shows the same story at each moment.
    the_recording_replays_the_lecture(&dir.path().join("state"));
}

/// `tcluster replay STATE --at T --json`: the state at a moment of the recording.
fn replayed(state: &std::path::Path, at: &str) -> serde_json::Value {
    let out = replay_ok(&[state.to_str().unwrap(), "--at", at, "--json"]);
    serde_json::from_str(&out).unwrap()
}

/// The row of `node` in the Nodes pane of `tcluster replay STATE --at T --dump`.
fn dumped_row(state: &std::path::Path, at: &str, node: &str) -> String {
    let state = state.to_str().unwrap();
    let screen = replay_ok(&[state, "--at", at, "--dump", "--size", "120x36"]);
    screen
        .lines()
        .find(|l| l.contains(&format!("┃{node} ")))
        .unwrap_or_else(|| panic!("no row for {node}:\n{screen}"))
        .to_string()
}

/// At 2 s worker-2 runs jobs, healthy; at 6 s (killed at 2.5 s, restarted at 6 s of the
/// scenario, which began after the launch) it is dead and those jobs run elsewhere.
fn the_recording_replays_the_lecture(state: &std::path::Path) {
    let verdict = |v: &serde_json::Value, node: &str| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .map(|n| n["verdict"].as_str().unwrap().to_string())
    };
    let before = replayed(state, "2s");
    assert_eq!(before["at_ms"], 2000);
    assert_eq!(verdict(&before, "worker-2").as_deref(), Some("healthy"));
    let on_worker_2: Vec<String> = before["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["worker"] == "worker-2" && j["state"] == "running")
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !on_worker_2.is_empty(),
        "worker-2 runs jobs at 2s: {before}"
    );
    let row = dumped_row(state, "2s", "worker-2");
    assert!(row.contains("healthy"), "{row}");

    let after = replayed(state, "6s");
    assert_eq!(verdict(&after, "worker-2").as_deref(), Some("dead"));
    let moved: Vec<&serde_json::Value> = after["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| on_worker_2.contains(&j["id"].as_str().unwrap().to_string()))
        .collect();
    assert!(
        moved
            .iter()
            .all(|j| j["worker"] != "worker-2" && j["attempts"] == 2),
        "{moved:?}"
    );
    assert!(
        moved
            .iter()
            .any(|j| j["state"] == "running" || j["state"] == "assigned"),
        "{moved:?}"
    );
    let row = dumped_row(state, "6s", "worker-2");
    assert!(row.contains("dead") && row.contains("killed"), "{row}");
}
