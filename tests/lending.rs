//! `topologies/lending.top` as a lecturer runs it: two clusters that lend each other idle
//! workers. The `rush` act floods east, west lends two workers, east drains its queue and they
//! go home; in `borrower-dies` east's server dies holding the loans, the lent workers go home
//! by themselves, and east comes back and finishes every job it accepted. Each run is checked
//! against its summary: every job completed, every loan returned, every worker at home.

mod common;

use common::*;
use serde_json::Value;

/// Runs a scenario of `topologies/lending.top` headless (ports picked at launch) and returns
/// what it printed and its summary.
fn lending(scenario: &str) -> (String, Value) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/lending.top"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    headless(dir.path(), &format!("{text}\n{CUT_OFF}"), scenario)
}

/// The borrower cut off from every node while it holds loans (not in lending.top: a test).
const CUT_OFF: &str = "
scenario borrower-cut-off {
    at 0s submit \"sleep 300ms\" count 60 to east
    at 2s partition server-1
    at 6s heal
}
";

/// Every job completed, every loan over, every worker serving its home cluster.
fn all_home(report: &Value) {
    assert_eq!(report["jobs"]["submitted"], 60, "{report}");
    assert_eq!(report["jobs"]["completed"], 60, "{report}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
    let clusters = report["clusters"].as_array().unwrap();
    let names: Vec<&str> = clusters
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["east", "west"]);
    assert_eq!(
        clusters[0]["jobs"]["completed"], 60,
        "east's own jobs, lent workers' too"
    );
    assert_eq!(clusters[1]["jobs"]["submitted"], 0);
    for node in report["nodes"].as_array().unwrap() {
        assert_eq!(node["serving"], node["cluster"], "{node}");
        // Alive: a worker cut off with its server reads `rejoined` for a while after the heal.
        let state = node["state"].as_str().unwrap();
        assert!(["healthy", "rejoined"].contains(&state), "{node}");
    }
    let loans = report["loans"].as_array().unwrap();
    assert!(!loans.is_empty(), "east borrowed: {report}");
    for loan in loans {
        assert_eq!(loan["lender"], "west");
        assert_eq!(loan["borrower"], "east");
        let workers = loan["workers"].as_array().unwrap();
        assert!((1..=2).contains(&workers.len()), "max_lend 2: {loan}");
        let (at, released, returned) = (
            loan["at_ms"].as_u64().unwrap(),
            loan["released_ms"].as_u64().expect("released"),
            loan["returned_ms"].as_u64().expect("home again"),
        );
        assert!(at <= released && released <= returned, "{loan}");
    }
}

#[test]
fn rush_west_lends_two_workers_east_drains_they_go_home() {
    let (stdout, report) = lending("rush");
    all_home(&report);
    let loans = report["loans"].as_array().unwrap();
    assert_eq!(loans.len(), 1, "one loan: {stdout}");
    assert_eq!(loans[0]["workers"].as_array().unwrap().len(), 2);
    // The loan as the timeline tells it, from both servers.
    for line in [
        "asks cluster west for 2 workers",
        "west-1 lent to cluster east",
        "west-1 borrowed from cluster west",
        "released to cluster west (idle)",
        "west-1's loan to cluster east ended (back home)",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    // Lent workers ran east's jobs.
    assert!(
        stdout.contains("completed by west-1") || stdout.contains("completed by west-2"),
        "{stdout}"
    );
}

#[test]
fn borrower_dies_the_lent_workers_go_home_and_east_finishes_every_job() {
    let (stdout, report) = lending("borrower-dies");
    all_home(&report);
    for line in [
        "FAULT #1: kill server-1",
        "'s loan to cluster east ended (back home)",
        "FAULT #2: restart server-1",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

#[test]
fn a_borrower_cut_off_loses_its_lent_workers_to_their_home_and_finishes_after_the_heal() {
    let (stdout, report) = lending("borrower-cut-off");
    all_home(&report);
    for line in [
        "FAULT #1: partition server-1",
        "'s loan to cluster east ended (back home)",
        "cluster east is dead",
        // West noticed: the fault's detection is the other cluster's verdict.
        "DETECTED #1 (partition server-1) by server-2",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

/// A student's worker (examples/worker.py, written from docs/PROTOCOL.md) is lent like a
/// built-in one: it obeys `redirect`, introduces itself with its owner, runs the borrower's
/// jobs and obeys `return`. Skipped (and says so) where python3 is not installed.
#[test]
fn a_students_python_worker_is_lent_and_comes_home() {
    if !python3_installed() {
        eprintln!("python3 is not installed: skipped");
        return;
    }
    let text = r#"
node server-1 { type master; cluster east }
node server-2 { type master; cluster west }
node east { type worker; cluster east }
node py { type worker; cluster west; command "python3 examples/worker.py" }
policy heartbeat { interval 250ms; suspect_after 500ms; timeout 1s }
policy lending { queue_threshold 2; max_lend 1; idle_before_lend 300ms; return_after_idle 1s }
scenario rush { at 1s submit "sleep 300ms" count 20 to east }
"#;
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), text, "rush");
    assert_eq!(report["jobs"]["completed"], 20, "{report}\n{stdout}");
    for line in [
        "py lent to cluster east",
        "py borrowed from cluster west",
        "completed by py",
        "py's loan to cluster east ended (back home)",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    for node in report["nodes"].as_array().unwrap() {
        assert_eq!(node["serving"], node["cluster"], "{node}");
    }
}
