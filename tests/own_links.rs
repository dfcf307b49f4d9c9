//! Links a node shapes itself (`--shaping nodes`, the default): a worker in a process of its
//! own applies its links' faults, and the cluster sees exactly what a proxy would have shown
//! it — a cut worker that is then killed dies of silence, not of a closed connection; a held
//! link's messages wait and are delivered in order on release; every message reaches the
//! timeline's recording.

mod common;

use common::*;

const TOPOLOGY: &str = "
set SYSTEM_NAME OwnLinks
node coordinator { type master }
node worker { type worker; count 2; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario faults {
    at 0.2s submit \"sleep 100ms\" count 4
    at 0.6s partition coordinator worker-2
    at 0.8s kill worker-2
    at 0.8s expect within 3s dead(worker-2) \"worker-2 is dead to the coordinator\"
    at 2.5s heal
    at 2.5s hold coordinator worker-1
    at 2.6s submit \"sleep 100ms\" count 3
    at 3.5s release
    at 3.5s expect within 5s completed == submitted and lost == 0 \"every job completed\"
}
";

/// The headless run's output and its state directory's recording, in the mode asked for.
fn run(shaping: &str) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless_with(dir.path(), TOPOLOGY, "faults", &["--shaping", shaping]);
    assert_eq!(report["jobs"]["submitted"], 7, "{report}");
    assert_eq!(report["jobs"]["completed"], 7, "{report}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
    let recordings = dir.path().join("state/recordings");
    let mut recorded = String::new();
    for run in std::fs::read_dir(&recordings).unwrap() {
        for segment in std::fs::read_dir(run.unwrap().path()).unwrap() {
            recorded += &std::fs::read_to_string(segment.unwrap().path()).unwrap();
        }
    }
    (stdout, recorded, dir)
}

#[test]
fn a_node_shaping_its_own_links_shows_the_cluster_what_a_proxy_would() {
    for shaping in ["nodes", "proxies"] {
        let (stdout, recorded, dir) = run(shaping);
        // Shaped where asked: the worker says so in its log, or it went through a proxy.
        let log = std::fs::read_to_string(dir.path().join("state/logs/worker-1.log")).unwrap();
        assert_eq!(
            log.contains("shaping its own links to coordinator"),
            shaping == "nodes",
            "{shaping}: {log}"
        );
        // Killed behind a cut, worker-2 is found dead by its silence: its closed connection
        // did not cross the partition.
        assert!(
            stdout.contains("worker-2 is dead (no heartbeat"),
            "{shaping}: {stdout}"
        );
        assert!(
            !stdout.contains("worker-2 is dead (connection closed)"),
            "{shaping}: {stdout}"
        );
        // The held link kept messages and delivered them in order on release.
        assert!(
            stdout.contains("held messages delivered in order"),
            "{shaping}: {stdout}"
        );
        // Every fate reached the timeline's recording: carried, dropped by the cut, held,
        // delivered on release.
        for (from, fate) in [
            ("worker-1", r#""fate":"carried""#),
            ("worker-2", r#""fate":"dropped""#),
            ("coordinator", r#""fate":"held""#),
            ("coordinator", r#""fate":{"delivered""#),
        ] {
            let from = format!(r#""from":"{from}""#);
            assert!(
                recorded.lines().any(|l| l.contains(r#""feed":"message""#)
                    && l.contains(&from)
                    && l.contains(fate)),
                "{shaping}: no message from {from} with {fate}"
            );
        }
    }
}

/// A node told to shape links to a server whose address is not `host:port` says so and stops;
/// `--shape-links` without the launcher's control channel is a usage error, and so is a
/// `--shaping` that is neither `nodes` nor `proxies`.
#[test]
fn a_node_told_a_bad_address_for_its_own_link_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let out = tcluster()
        .args(["node", topology.to_str().unwrap(), "--name", "worker-1"])
        .args(["--control-stdin", "--shape-links", "7"])
        .args(["--coordinator", "coordinator=nowhere"])
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the address of coordinator, `nowhere`, is not host:port"),
        "{stderr}"
    );
    let out = tcluster()
        .args(["node", topology.to_str().unwrap(), "--name", "worker-1"])
        .args(["--shape-links", "7"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--control-stdin"), "{stderr}");
    // Where links are shaped is one of two words, for a run, the console and the benchmark.
    for args in [
        vec![
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--shaping",
            "sideways",
        ],
        vec![topology.to_str().unwrap(), "--shaping", "sideways"],
        vec!["bench", "console", "--shaping", "sideways"],
    ] {
        let out = tcluster().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--shaping") && stderr.contains("nodes") && stderr.contains("proxies"),
            "{args:?}: {stderr}"
        );
    }
}

/// An outside program (a student's) never shapes its links: a line of its own that looks like a
/// node's report on them is one of its log lines, kept as it said it.
#[test]
fn a_students_line_that_looks_like_a_link_report_stays_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
node coordinator { type master }
node mine { type worker; command "printf 'LINK {\"held\":{}}\n'; sleep 1" }
scenario quiet { at 0.5s say "nothing to do" }
"#;
    let (code, stdout, stderr, _) = headless_run(dir.path(), text, "quiet");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let log = std::fs::read_to_string(dir.path().join("state/logs/mine.log")).unwrap();
    assert!(log.contains(r#"LINK {"held":{}}"#), "{log}");
}
