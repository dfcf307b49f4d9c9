//! Failover in a headless run: the primary is SIGKILLed mid-run and the backup takes over in a
//! new term; every job submitted before and after completes, none is lost, and the takeover time
//! is measured. An old primary that comes back learns of the higher term and follows as the backup.

mod common;

use common::*;
use serde_json::Value;

const TOPOLOGY: &str = "
set SYSTEM_NAME FailoverTest
node coordinator { type master; role primary }
node backup { type master; role backup }
node worker { type worker; count 2; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario failover {
    at 0.3s submit \"sleep 800ms\" count 8
    at 1s   kill coordinator
    at 2s   submit \"sleep 300ms\" count 4
}
scenario paused {
    at 0.3s submit \"sleep 600ms\" count 4
    at 1s   pause coordinator
    at 4s   resume coordinator
    at 5s   submit \"echo after the pause\" count 2
}
scenario again { at 0.2s say \"started again\" }
scenario comeback {
    at 0.3s submit \"sleep 500ms\" count 4
    at 1s   kill coordinator
    at 2s   restart coordinator
    at 3.5s submit \"echo after the comeback\" count 2
}
scenario primary {
    at 0.3s submit \"sleep 300ms\" count 2
    at 0.5s kill primary
    at 0.5s expect within 3s term == 2 \"the backup took over\"
    at 1.5s partition primary worker-1
    at 1.5s expect within 3s dead(worker-1) \"worker-1 is dead to the new primary\"
    at 1.5s hold primary backup
    at 3s   heal
    at 3s   expect within 3s healthy(worker-1) \"worker-1 came back\"
}
";

fn run(dir: &std::path::Path, scenario: &str) -> (String, Value) {
    headless(dir, TOPOLOGY, scenario)
}

#[test]
fn the_backup_takes_over_from_a_killed_primary_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = run(dir.path(), "failover");
    assert!(
        stdout.contains("backup takes over as primary in term 2"),
        "{stdout}"
    );
    assert_eq!(report["primary"], "backup", "{report}");
    assert!(report["term"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["jobs"]["submitted"], 12, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["completed"], 12, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0);
    let kill = &report["faults"][0];
    assert_eq!(
        (kill["action"].as_str(), kill["target"].as_str()),
        (Some("kill"), Some("coordinator"))
    );
    assert_eq!(kill["detected_by"], "backup");
    // The kill fault recovers when the new primary first serves: its takeover.
    let recovered = kill["recovered_ms"]
        .as_u64()
        .expect("the takeover time is recorded");
    assert!(recovered >= kill["at_ms"].as_u64().unwrap());
    // The backup only replayed what the primary decided (and logged) until it took over: its
    // log does not say it again as if it were news.
    let backup = std::fs::read_to_string(dir.path().join("state/logs/backup.log")).unwrap();
    let before = backup
        .split("taking over as primary")
        .next()
        .unwrap_or_default();
    assert!(!before.contains("joined ("), "{backup}");
    assert!(!before.contains("requeued from"), "{backup}");
}

#[test]
fn an_old_primary_that_comes_back_steps_down_and_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = run(dir.path(), "comeback");
    assert!(
        stdout.contains("backup takes over as primary in term 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("coordinator started (pid"),
        "it was restarted:\n{stdout}"
    );
    let log = std::fs::read_to_string(dir.path().join("state/logs/coordinator.log")).unwrap();
    assert!(
        log.contains("another master is primary: following it as the backup"),
        "{log}"
    );
    assert!(log.contains("following the primary"), "{log}");
    assert_eq!(report["primary"], "backup");
    assert_eq!(report["jobs"]["completed"], 6, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0);
}

#[test]
fn a_paused_primary_is_replaced_and_steps_down_when_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = run(dir.path(), "paused");
    // Only silence gives a paused primary away: the backup waits out the heartbeat timeout.
    assert!(
        stdout.contains("backup takes over as primary in term 2 (the primary was silent for"),
        "{stdout}"
    );
    let pause = &report["faults"][0];
    assert_eq!(pause["detected_by"], "backup", "{report}");
    // Silence counts from the primary's last ping, up to half an interval before the pause.
    let after = pause["detected_ms"].as_u64().unwrap() - pause["at_ms"].as_u64().unwrap();
    assert!((700..=800 + 2000).contains(&after), "{pause}");
    // The workers left the silent primary for the backup, and every job completed.
    let backup_log =
        || std::fs::read_to_string(dir.path().join("state/logs/backup.log")).unwrap_or_default();
    assert!(
        stdout.contains("backup        worker-1 rejoined") || stdout.contains("worker-1 rejoined"),
        "{stdout}\n--- backup.log:\n{}\n--- worker-1.log:\n{}",
        backup_log(),
        std::fs::read_to_string(dir.path().join("state/logs/worker-1.log")).unwrap_or_default()
    );
    assert_eq!(report["jobs"]["completed"], 6, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0);
    // Resumed, the old primary hears of the higher term, steps down and follows.
    let log = wait_until("the old primary steps down", || {
        let log = std::fs::read_to_string(dir.path().join("state/logs/coordinator.log"))
            .unwrap_or_default();
        log.contains("stepping down").then_some(log)
    });
    assert!(log.contains("following the primary"), "{log}");
    assert_eq!(report["primary"], "backup");
}

#[test]
fn a_run_that_ended_is_over_the_next_one_is_fresh_and_the_old_state_is_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = run(dir.path(), "failover");
    assert_eq!(first["jobs"]["submitted"], 12);
    let (stdout, report) = run(dir.path(), "again");
    assert!(!stdout.contains("resumed the run"), "{stdout}");
    assert_eq!(report["primary"], "coordinator", "{report}");
    assert_eq!(report["term"], 1, "{report}");
    assert_eq!(report["jobs"]["submitted"], 0, "a fresh cluster:\n{report}");
    let previous: Vec<_> = std::fs::read_dir(dir.path().join("state/previous"))
        .expect("the first run was moved aside")
        .collect();
    assert_eq!(previous.len(), 1);
    let kept = previous[0].as_ref().unwrap().path();
    assert!(kept.join("journal").is_dir(), "{}", kept.display());
    assert!(kept.join("run.json").is_file());
}

#[test]
fn a_cluster_started_again_after_a_failover_keeps_its_new_primary_and_every_job() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = run(dir.path(), "failover");
    assert_eq!(first["primary"], "backup");
    // Everything stopped; resume the same topology on the same state directory (a run that
    // ended is over unless --resume says otherwise).
    let (stdout, report) = headless_with(dir.path(), TOPOLOGY, "again", &["--resume"]);
    assert!(stdout.contains(">>> started again"), "{stdout}");
    assert!(
        stdout.contains("resumed the run of "),
        "the resumption is said on the timeline:\n{stdout}"
    );
    assert_eq!(
        report["primary"], "backup",
        "the journals say backup was primary last:\n{report}"
    );
    assert_eq!(report["term"], 2, "{report}");
    assert_eq!(report["jobs"]["submitted"], 12, "{report}");
    assert_eq!(report["jobs"]["completed"], 12, "{report}");
    assert_eq!(report["jobs"]["lost"], 0);
    let log = std::fs::read_to_string(dir.path().join("state/logs/coordinator.log")).unwrap();
    assert!(
        log.contains("starting over from the primary's history")
            || log.contains("following it as the backup"),
        "{log}"
    );
}

#[test]
fn primary_in_a_step_names_the_master_that_serves_when_the_step_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = run(dir.path(), "primary");
    // `kill primary` killed the coordinator; after the takeover `primary` is the backup.
    assert!(stdout.contains("FAULT #1: kill coordinator"), "{stdout}");
    assert!(
        stdout.contains("FAULT #2: partition backup <-> worker-1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ as expected: worker-1 is dead to the new primary"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ as expected: worker-1 came back"),
        "{stdout}"
    );
    // A link from the primary to itself is no link: the step is skipped, and says why.
    assert!(
        stdout.contains(
            "hold primary <-> backup: backup is the primary now, so both ends are backup; skipped"
        ),
        "{stdout}"
    );
    assert_eq!(report["primary"], "backup", "{report}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
}
