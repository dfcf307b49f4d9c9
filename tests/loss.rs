//! tcluster's own nodes over lossy links, run as a lecturer runs them (`tcluster run --headless`
//! with a scenario): every job finishes, none is counted twice, and a term never has two
//! primaries — with loss on every link, loss one way only, and a primary paused while its
//! worker finishes a job.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// A coordinator, a backup and three workers; heartbeats every 100 ms, dead after 3 s of
/// silence (so that loss alone, even at 50%, does not declare a node dead).
const CLUSTER: &str = "
node coordinator { type master; role primary }
node backup { type master; role backup }
node worker { type worker; count 3; resources { cpu 4 } }
policy heartbeat { interval 100ms; suspect_after 1s; timeout 3s }
";

/// `loss` on every link of [`CLUSTER`] (each worker talks to both masters).
fn every_link(percent: u32) -> String {
    let mut steps = String::new();
    for (a, b) in [
        ("coordinator", "backup"),
        ("coordinator", "worker-1"),
        ("coordinator", "worker-2"),
        ("coordinator", "worker-3"),
        ("backup", "worker-1"),
        ("backup", "worker-2"),
        ("backup", "worker-3"),
    ] {
        steps.push_str(&format!("    at 100ms loss {a} {b} {percent}%\n"));
    }
    steps
}

/// Each term and who took over in it, from the printed timeline; panics if a term has two.
fn takeovers(stdout: &str) -> BTreeMap<u64, String> {
    let mut terms = BTreeMap::new();
    for line in stdout.lines() {
        let Some((who, rest)) = line.split_once(" takes over as primary in term ") else {
            continue;
        };
        let who = who
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_string();
        let term: u64 = rest
            .split_whitespace()
            .next()
            .and_then(|t| t.parse().ok())
            .expect("a term number");
        let first = terms.entry(term).or_insert(who.clone());
        assert_eq!(*first, who, "two primaries in term {term}:\n{stdout}");
    }
    terms
}

/// Every job submitted finished, and the counts add up.
fn all_finished(report: &Value, jobs: u64, stdout: &str) {
    let n = |key: &str| report["jobs"][key].as_u64().unwrap();
    assert_eq!(n("submitted"), jobs, "{report}\n{stdout}");
    assert_eq!(n("completed"), jobs, "{report}\n{stdout}");
    assert_eq!(
        (n("failed"), n("lost"), n("unfinished")),
        (0, 0, 0),
        "{report}"
    );
}

fn lossy_run(percent: u32) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "set SYSTEM_NAME Lossy{percent}\n{CLUSTER}scenario lossy {{\n{}    at 300ms submit \"sleep 20ms\" count 200\n}}\n",
        every_link(percent)
    );
    let (stdout, report) = headless(dir.path(), &text, "lossy");
    all_finished(&report, 200, &stdout);
    takeovers(&stdout);
}

#[test]
fn every_job_finishes_with_20_percent_loss_on_every_link() {
    lossy_run(20);
}

#[test]
fn every_job_finishes_with_50_percent_loss_on_every_link() {
    lossy_run(50);
}

#[test]
fn every_job_finishes_with_loss_one_way_then_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "set SYSTEM_NAME OneWay\n{CLUSTER}scenario one_way {{
    at 100ms loss coordinator -> worker-1 50%
    at 100ms loss coordinator -> worker-2 50%
    at 300ms submit \"sleep 20ms\" count 60
    at 3s loss coordinator -> worker-1 0%
    at 3s loss coordinator -> worker-2 0%
    at 3s loss worker-1 -> coordinator 50%
    at 3s loss worker-2 -> coordinator 50%
    at 3.2s submit \"sleep 20ms\" count 60
}}\n"
    );
    let (stdout, report) = headless(dir.path(), &text, "one_way");
    all_finished(&report, 120, &stdout);
    assert_eq!(report["primary"], "coordinator", "{report}");
    assert_eq!(report["term"], 1, "no takeover was needed: {report}");
}

/// The primary is paused while its only worker runs a job. The worker finishes it and sends the
/// result into the silence; the backup takes over; the worker moves to it and sends the result
/// again, which completes the job there — it does not run a second time.
#[test]
fn a_result_made_while_the_primary_is_paused_reaches_the_new_primary() {
    let dir = tempfile::tempdir().unwrap();
    let text = "
set SYSTEM_NAME PausedPrimary
node coordinator { type master; role primary }
node backup { type master; role backup }
node worker { type worker; resources { cpu 1 } }
policy heartbeat { interval 100ms; suspect_after 300ms; timeout 800ms }
scenario pause {
    at 200ms submit \"sleep 1s\" count 1
    at 600ms pause coordinator
    at 6s resume coordinator
}
";
    let (stdout, report) = headless(dir.path(), text, "pause");
    all_finished(&report, 1, &stdout);
    assert_eq!(report["primary"], "backup", "{report}\n{stdout}");
    let terms = takeovers(&stdout);
    assert_eq!(
        terms.get(&2).map(String::as_str),
        Some("backup"),
        "{stdout}"
    );
    let runs = stdout.matches("JOB-1 assigned to").count();
    assert_eq!(runs, 1, "JOB-1 ran once:\n{stdout}");
    assert!(!stdout.contains("ran twice"), "{stdout}");
    assert_eq!(report["jobs"]["completed"], 1);
}

/// A random schedule of faults (seeded, so a failure can be replayed): workers killed and
/// restarted, paused and resumed; either master paused for a while; links cut one way, and
/// lossy; jobs submitted throughout. At the end every fault is repaired, and every job must
/// finish, with one primary per term.
fn random_faults(seed: u64) {
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(seed);
    let nodes = ["coordinator", "backup", "worker-1", "worker-2", "worker-3"];
    let workers = &nodes[2..];
    let mut steps = Vec::new();
    let mut jobs = 0;
    for tenth in 2..80u32 {
        let at = format!("{}.{}s", tenth / 10, tenth % 10);
        let step = match rng.random_range(0..14) {
            0 => {
                let w = workers[rng.random_range(0..3)];
                format!("kill {w}")
            }
            1 => {
                let w = workers[rng.random_range(0..3)];
                format!("restart {w}")
            }
            2 => format!("pause {}", workers[rng.random_range(0..3)]),
            3 => format!("resume {}", workers[rng.random_range(0..3)]),
            4 => format!("pause {}", nodes[rng.random_range(0..2)]),
            5 | 6 => format!("resume {}", nodes[rng.random_range(0..2)]),
            7 => {
                let a = nodes[rng.random_range(0..5)];
                let b = nodes[rng.random_range(0..5)];
                if a == b {
                    continue;
                }
                format!("partition {a} -> {b}")
            }
            8 => "heal".to_string(),
            9 | 10 => {
                let a = nodes[rng.random_range(0..2)];
                let b = nodes[rng.random_range(1..5)];
                if a == b {
                    continue;
                }
                let p = rng.random_range(0..4) * 10;
                format!("loss {a} {b} {p}%")
            }
            _ => {
                let n = rng.random_range(1..8);
                jobs += n;
                format!("submit \"sleep 50ms\" count {n}")
            }
        };
        steps.push(format!("    at {at} {step}"));
    }
    // Everything repaired: every node running, every link whole and loss-free.
    for node in nodes {
        steps.push(format!("    at 8.5s resume {node}"));
    }
    for w in workers {
        steps.push(format!("    at 8.6s restart {w}"));
    }
    steps.push("    at 8.7s heal".to_string());
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            steps.push(format!("    at 8.8s loss {a} {b} 0%"));
        }
    }
    jobs += 10;
    steps.push("    at 9s submit \"sleep 50ms\" count 10".to_string());
    let text = format!(
        "set SYSTEM_NAME RandomFaults{seed}\n{CLUSTER}scenario faults {{\n{}\n}}\n",
        steps.join("\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), &text, "faults");
    all_finished(&report, jobs, &format!("{text}\n{stdout}"));
    takeovers(&stdout);
}

#[test]
fn random_faults_with_loss_and_one_way_cuts_lose_no_job() {
    for seed in 1..=3 {
        random_faults(seed);
    }
}
