//! Every scenario shipped in `topologies/` checks its own narration with `expect` steps, and
//! `cargo test` runs each one headless (on ports the OS picks): a run whose expectations do not
//! all hold exits 3, which fails the test. Scenarios another test already runs from the shipped
//! file are listed with that test; the rest run here. An expectation that fails makes the run
//! exit 3, and the summary says which and what was seen.

mod common;

use common::*;

/// Every shipped scenario, and the test that runs it headless from the shipped file.
const COVERED: &[(&str, &str, &str)] = &[
    ("demo", "lecture", "tests/scenarios.rs"),
    ("time", "drift", "tests/time.rs"),
    ("bully", "drift", "tests/time.rs"),
    ("broker", "outage", "tests/broker.rs"),
    ("lending", "rush", "tests/lending.rs"),
    ("lending", "borrower-dies", "tests/lending.rs"),
    ("failover", "failover", "tests/shipped_scenarios.rs"),
    ("election", "bully", "tests/shipped_scenarios.rs"),
    ("election", "split", "tests/shipped_scenarios.rs"),
    ("election", "pause", "tests/shipped_scenarios.rs"),
    ("chat", "outage", "tests/shipped_scenarios.rs"),
    ("big", "flood", "tests/shipped_scenarios.rs"),
    ("splitbrain", "split", "tests/shipped_scenarios.rs"),
    ("encrypted", "cut", "tests/tls.rs"),
];

/// Runs scenario `scenario` of `topologies/FILE.top` headless; its expectations must all hold.
fn passes(file: &str, scenario: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), text, scenario);
    let expectations = report["expectations"].as_array().expect("expectations");
    assert!(
        !expectations.is_empty(),
        "{file} {scenario}: none\n{stdout}"
    );
    for e in expectations {
        assert_eq!(e["ok"], true, "{file} {scenario}: {e}\n{stdout}");
    }
}

#[test]
fn every_shipped_scenario_checks_its_narration_and_is_run_by_a_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("top") {
            continue;
        }
        let file = path.file_stem().unwrap().to_str().unwrap().to_string();
        let (topology, _) = tcluster::topology::load(&path).expect("valid");
        for scenario in &topology.scenarios {
            let says = scenario
                .steps
                .iter()
                .filter(|s| s.action.name() == "say")
                .count();
            let expects = scenario
                .steps
                .iter()
                .filter(|s| s.action.name() == "expect")
                .count();
            assert!(
                expects > 0 && expects * 2 >= says,
                "{file} {}: {says} say lines, {expects} expectations",
                scenario.name
            );
            found.push((file.clone(), scenario.name.clone()));
        }
    }
    for (file, scenario) in &found {
        assert!(
            COVERED.iter().any(|(f, s, _)| f == file && s == scenario),
            "topologies/{file}.top's {scenario} is run by no test: add it to COVERED"
        );
    }
    assert_eq!(found.len(), COVERED.len(), "{found:?}");
}

#[test]
fn failover_checks_itself() {
    passes("failover", "failover", &shipped_on_free_ports("failover"));
}

#[test]
fn the_three_elections_check_themselves() {
    let text = shipped_on_free_ports("election");
    for scenario in ["bully", "split", "pause"] {
        passes("election", scenario, &text);
    }
}

#[test]
fn the_chat_outage_checks_itself() {
    passes("chat", "outage", &shipped_on_free_ports("chat"));
}

/// 150 in-process workers and 1,300 jobs: stretched (`TIME_SCALE`) so that an unoptimised
/// build on a small machine keeps to its windows; the narration is the same.
#[test]
fn the_big_flood_checks_itself() {
    let text = shipped_on_free_ports("big").replace(
        "set SYSTEM_NAME \"BigCluster\"",
        "set SYSTEM_NAME \"BigCluster\"\nset TIME_SCALE 2",
    );
    assert!(text.contains("TIME_SCALE 2"));
    passes("big", "flood", &text);
}

#[test]
fn an_expectation_that_does_not_hold_makes_the_run_exit_3_and_says_what_it_saw() {
    let text = r#"
node coordinator { type master }
node worker { type worker; count 2 }
scenario wrong {
    at 0.5s submit "sleep 100ms" count 2
    at 0.5s expect within 2s completed == 2 "both jobs complete"
    at 1s   expect within 300ms dead(worker-1) "worker-1 is dead (it is not)"
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr, report) = headless_run(dir.path(), text, "wrong");
    assert_eq!(code, Some(3), "{stdout}");
    assert!(
        stdout.contains("✓ as expected: both jobs complete (completed 2)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✗ NOT AS EXPECTED") && stdout.contains("(saw worker-1 is healthy)"),
        "{stdout}"
    );
    assert!(stdout.contains("expectations: 1 of 2 held"), "{stdout}");
    assert!(
        stderr.contains("1 of the scenario's expectations did not hold"),
        "{stderr}"
    );
    let e = &report["expectations"];
    assert_eq!(e[0]["ok"], true, "{report}");
    assert_eq!(e[1]["ok"], false, "{report}");
    assert_eq!(e[1]["expr"], "dead(worker-1)");
    assert_eq!(e[1]["text"], "worker-1 is dead (it is not)");
    assert!(
        e[1]["at_ms"].is_u64() && e[1]["settled_ms"].is_u64(),
        "{report}"
    );
}

/// A topology built to break: two masters, no workers, a cut between them. The live checks
/// raise `split_brain` with the evidence, and the scenario's expectations (which expect it) hold.
#[test]
fn the_split_brain_topology_raises_its_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let text = shipped_on_free_ports("splitbrain");
    let (code, stdout, _, report) = headless_run(dir.path(), &text, "split");
    assert_eq!(code, Some(0), "{stdout}");
    let alarms = report["alarms"].as_array().unwrap();
    let split: Vec<_> = alarms
        .iter()
        .filter(|a| a["kind"] == "split_brain")
        .collect();
    assert_eq!(
        split.len(),
        1,
        "one alarm for the pair: {alarms:?}\n{stdout}"
    );
    assert_eq!(
        split[0]["nodes"],
        serde_json::json!(["m1", "m2"]),
        "{report}"
    );
    assert!(
        split[0]["text"]
            .as_str()
            .unwrap()
            .contains("two masters accepted jobs at once"),
        "{report}"
    );
    assert!(split[0]["at_ms"].is_u64(), "{report}");
    assert!(stdout.contains("ALARM split_brain: JOB-"), "{stdout}");
    for e in report["expectations"].as_array().unwrap() {
        assert_eq!(e["ok"], true, "{e}\n{stdout}");
    }
}
