//! `topologies/time.top` as a lecturer runs it: two clocks are skewed ±2–3 s, the time master's
//! Berkeley rounds bring them back, and when the time master dies the new primary carries on
//! the rounds. Checked against the run's summary and what it printed.

mod common;

use common::*;

#[test]
fn drift_two_skewed_clocks_are_brought_back_and_the_new_primary_carries_on() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/time.top"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), &text, "drift");

    // Each skew: noticed by the time master (a round moved that clock), then over (a later
    // round found it within tolerance).
    let faults = report["faults"].as_array().unwrap();
    for (fault, node) in faults.iter().zip(["worker-2", "worker-3"]) {
        assert_eq!(fault["action"], "skew", "{report}");
        assert_eq!(fault["target"], node, "{report}");
        assert_eq!(fault["detected_by"], "server-1", "{fault}\n{stdout}");
        assert!(fault["recovered_ms"].is_u64(), "{fault}\n{stdout}");
    }
    assert!(
        stdout.contains("left out of the average: worker-2, worker-3"),
        "{stdout}"
    );
    // The time master dies: server-2 takes over and runs the rounds.
    assert_eq!(faults[2]["action"], "kill", "{report}");
    assert!(faults[2]["recovered_ms"].is_u64(), "{report}");
    assert_eq!(report["primary"], "server-2", "{report}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("server-2") && l.contains("clock round")),
        "{stdout}"
    );
    // At the end every live clock agrees with the others (read by server-2's last round);
    // the dead master has no reading.
    let mut offsets = Vec::new();
    for node in report["nodes"].as_array().unwrap() {
        match node["name"].as_str().unwrap() {
            "server-1" => assert!(node["clock_offset_ms"].is_null(), "{node}"),
            _ => offsets.push(node["clock_offset_ms"].as_i64().expect("read")),
        }
    }
    // Four workers, the backup (now primary), the chat server and the bot.
    assert_eq!(offsets.len(), 7, "{report}");
    let spread = offsets.iter().max().unwrap() - offsets.iter().min().unwrap();
    assert!(
        spread <= 200,
        "clocks still apart by {spread}ms: {offsets:?}\n{stdout}"
    );
}

/// A student's worker (examples/worker.py, from docs/PROTOCOL.md) answers the time master's
/// polls like a built-in node, and its clock is read and shown; a classic worker is never
/// polled. Skipped (and says so) where python3 is not installed.
#[test]
fn a_students_python_worker_answers_the_clock_polls() {
    if !python3_installed() {
        eprintln!("python3 is not installed: skipped");
        return;
    }
    let text = r#"
node server { type master }
node worker { type worker }
node py { type worker; command "python3 examples/worker.py" }
policy heartbeat { interval 250ms; timeout 1500ms }
policy clock { sync berkeley; interval 500ms; tolerance 20ms }
scenario short {
    at 0s submit "echo hi" count 4
    at 3s say "end"
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), text, "short");
    assert_eq!(report["jobs"]["completed"], 4, "{report}");
    let offset = |name: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()["clock_offset_ms"]
            .clone()
    };
    assert!(
        offset("py").is_i64(),
        "py answered no poll: {report}\n{stdout}"
    );
    assert!(offset("worker").is_i64(), "{report}");
    // Every clock is the machine's own: they agree within a few milliseconds.
    assert!(offset("py").as_i64().unwrap().abs() < 200, "{report}");
}

/// `topologies/bully.top`: no masters. The chat servers elect the first in the file time
/// master, its rounds bring two skewed clocks back; killed, the next elected carries on the
/// rounds; back, it outranks that one and takes them over again.
#[test]
fn without_masters_the_chat_servers_elect_a_time_master_and_elect_again_when_it_dies() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/bully.top"),
    )
    .unwrap()
    // Ports the OS picks.
    .replace("; port 7720", "");
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), &text, "drift");
    let faults = report["faults"].as_array().unwrap();
    for (fault, node) in faults.iter().zip(["chat-2", "chat-3"]) {
        assert_eq!(fault["action"], "skew", "{report}");
        assert_eq!(fault["target"], node, "{report}");
        assert_eq!(fault["detected_by"], "chat-1", "{fault}\n{stdout}");
        assert!(fault["recovered_ms"].is_u64(), "{fault}\n{stdout}");
    }
    // Killing the time master: chat-2's election notices, its first round recovers.
    assert_eq!(faults[2]["action"], "kill", "{report}");
    assert_eq!(faults[2]["detected_by"], "chat-2", "{report}\n{stdout}");
    assert!(faults[2]["recovered_ms"].is_u64(), "{report}\n{stdout}");
    let elected: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("is the time master (elected by the chat servers)"))
        .collect();
    assert_eq!(elected.len(), 3, "chat-1, chat-2, chat-1 again:\n{stdout}");
    assert!(elected[0].contains("chat-1 is the time master"), "{stdout}");
    assert!(elected[1].contains("chat-2 is the time master"), "{stdout}");
    assert!(elected[2].contains("chat-1 is the time master"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("chat-2") && l.contains("clock round")),
        "{stdout}"
    );
    assert_eq!(report["time_master"], "chat-1", "{report}");
    assert!(
        stdout.contains("no masters; time master chat-1"),
        "{stdout}"
    );
    // At the end the three clocks agree.
    let offsets: Vec<i64> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "chat")
        .map(|n| n["clock_offset_ms"].as_i64().expect("read"))
        .collect();
    assert_eq!(offsets.len(), 3, "{report}");
    let spread = offsets.iter().max().unwrap() - offsets.iter().min().unwrap();
    assert!(
        spread <= 200,
        "clocks still apart by {spread}ms: {offsets:?}\n{stdout}"
    );
}
