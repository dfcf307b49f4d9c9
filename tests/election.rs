//! Elections and partitions between masters, in headless runs.
//!
//! - Three masters: the primary is killed, the highest-ranked master left wins the Bully election
//!   (the one below it defers and follows); then that one is killed too and the last takes over.
//! - A paused primary among three: replaced, and it steps down when it resumes.
//! - Primary and backup cut off from each other while both live: the backup starts an election
//!   but does not take over (the workers still hear the primary), the primary keeps serving, and
//!   after the heal the backup follows again. No job is lost.
//! - The primary cut off from everyone: the workers lose it too, so the backup takes over; the old
//!   primary acknowledges nothing it cannot replicate, and steps down after the heal.

mod common;

use common::*;
use serde_json::Value;

const THREE: &str = "
node m1 { type master; role primary }
node m2 { type master }
node m3 { type master }
node worker { type worker; count 3; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario kill2 {
    at 0.3s submit \"sleep 800ms\" count 6
    at 1s   kill m1
    at 2s   submit \"sleep 300ms\" count 3
    at 3s   kill m2
    at 4s   submit \"echo three\" count 3
}
scenario pause {
    at 0.3s submit \"sleep 300ms\" count 6
    at 1s   pause m1
    at 4s   resume m1
    at 5s   submit \"echo after\" count 3
}
";

const TWO: &str = "
node coordinator { type master; role primary }
node backup { type master; role backup }
node worker { type worker; count 2; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
scenario split {
    at 0.3s submit \"sleep 500ms\" count 4
    at 1s   partition coordinator backup
    at 1.5s submit \"sleep 300ms\" count 4
    at 3.5s heal
    at 4s   submit \"echo after the heal\" count 2
}
scenario isolate {
    at 0.3s submit \"sleep 500ms\" count 4
    at 1s   partition coordinator
    at 1.5s submit \"sleep 300ms\" count 4
    at 4s   heal
    at 5s   submit \"echo after the heal\" count 2
}
";

fn assert_nothing_lost(report: &Value, completed: u64, stdout: &str) {
    assert_eq!(report["jobs"]["lost"], 0, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["failed"], 0, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["completed"], completed, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["submitted"], completed, "{report}\n{stdout}");
}

#[test]
fn the_highest_master_alive_wins_each_election() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), THREE, "kill2");
    // m1 killed: m2 outranks m3, so m2 takes over and m3 follows it.
    assert!(
        stdout.contains("m2 takes over as primary in term 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("m3's election: m2 is primary in term 2: following it"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("m3 takes over as primary in term 2"),
        "{stdout}"
    );
    // m2 killed: m3 is the last master, in term 3.
    assert!(
        stdout.contains("m3 takes over as primary in term 3"),
        "{stdout}"
    );
    assert_eq!(report["primary"], "m3", "{report}");
    assert_eq!(report["term"], 3, "{report}");
    assert_nothing_lost(&report, 12, &stdout);
    // Detected by the first backup to start an election (either may be first), recovered when
    // m2 took over — never before.
    let faults = report["faults"].as_array().unwrap();
    assert!(
        faults[0]["detected_by"] == "m2" || faults[0]["detected_by"] == "m3",
        "{report}"
    );
    assert_eq!(faults[1]["detected_by"], "m3", "{report}");
    for fault in faults {
        assert!(
            fault["detected_ms"].as_u64() <= fault["recovered_ms"].as_u64(),
            "{fault}"
        );
    }
}

#[test]
fn a_paused_primary_among_three_is_replaced_and_steps_down_when_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), THREE, "pause");
    assert!(
        stdout.contains("m2 takes over as primary in term 2 (the primary was silent for"),
        "{stdout}"
    );
    // Silence alone is not proof: the workers lost m1 too.
    assert!(stdout.contains("workers lost it too"), "{stdout}");
    assert!(
        stdout.contains("m1's election: m2 is primary in term 2: stepping down"),
        "{stdout}"
    );
    assert_eq!(report["primary"], "m2", "{report}");
    assert_nothing_lost(&report, 9, &stdout);
}

#[test]
fn a_backup_cut_off_from_its_primary_does_not_take_over_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), TWO, "split");
    assert!(
        stdout.contains("backup starts an election (the primary was silent for"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not taking over: the primary is silent here, but 0 of 2 workers lost it"),
        "{stdout}"
    );
    assert!(!stdout.contains("takes over"), "{stdout}");
    assert!(
        stdout.contains("backup's election: coordinator is primary in term 1: following it"),
        "{stdout}"
    );
    assert_eq!(report["primary"], "coordinator", "{report}");
    assert_eq!(report["term"], 1, "{report}");
    assert_nothing_lost(&report, 10, &stdout);
    // The partition was noticed by the backup's election.
    assert_eq!(report["faults"][0]["detected_by"], "backup", "{report}");
    // After the heal the backup caught up from where it was, not from the start.
    let log = std::fs::read_to_string(dir.path().join("state/logs/backup.log")).unwrap();
    let resumed = log
        .lines()
        .filter(|l| l.contains("following the primary") && l.contains(" after="))
        .nth(1)
        .unwrap_or_else(|| panic!("the backup follows again after the heal:\n{log}"));
    assert!(!resumed.contains("after=0 "), "{resumed}");
}

#[test]
fn a_primary_cut_off_from_everyone_is_replaced_and_acknowledges_nothing_it_cannot_keep() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), TWO, "isolate");
    assert!(
        stdout.contains("backup takes over as primary in term 2"),
        "{stdout}"
    );
    assert!(stdout.contains("lost it too"), "{stdout}");
    // The jobs sent to the old primary while it was cut off were never acknowledged.
    assert!(
        stdout.contains("4 × \"sleep 300ms\" not accepted: that master is no longer the primary"),
        "{stdout}"
    );
    assert!(
        stdout.contains("coordinator's election: backup is primary in term 2: stepping down"),
        "{stdout}"
    );
    assert_eq!(report["primary"], "backup", "{report}");
    assert_nothing_lost(&report, 6, &stdout);
}
