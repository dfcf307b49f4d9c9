//! Heartbeats over UDP (`policy heartbeat { transport udp }`) as a lecturer runs them: jobs go
//! over TCP, heartbeats as datagrams through the same shaped links, so a partition silences
//! them and a lossy link makes a worker flap between suspect and healthy.

mod common;

use common::*;

const UDP: &str = r#"
node coordinator { type master }
node worker { type worker; count 3 }
policy heartbeat { interval 200ms; suspect_after 500ms; timeout 1500ms; transport udp }
scenario lossy {
    at 0s submit "sleep 200ms" count 30
    at 1s partition worker-2
    at 1s loss worker-1 coordinator 60%
    at 5s heal
    at 5s loss worker-1 coordinator 0%
    at 7s say "end"
}
"#;

#[test]
fn a_partition_silences_heartbeat_datagrams_and_every_job_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), UDP, "lossy");
    assert_eq!(report["jobs"]["completed"], 30, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
    // The partition: declared dead by the coordinator, back after the heal.
    let faults = report["faults"].as_array().unwrap();
    let partition = faults.iter().find(|f| f["action"] == "partition").unwrap();
    assert_eq!(partition["detected_by"], "coordinator", "{stdout}");
    assert!(
        stdout.contains("worker-2 is dead (no heartbeat for"),
        "{stdout}"
    );
    assert!(stdout.contains("worker-2 rejoined"), "{stdout}");
    // worker-3, on a clean link, lives on its datagrams alone (none would be a death 1.5s in).
    assert!(!stdout.contains("worker-3 is dead"), "{stdout}");
    // The coordinator listened for them.
    let log = std::fs::read_to_string(dir.path().join("state/logs/coordinator.log")).unwrap();
    assert!(log.contains("receiving heartbeats over UDP"), "{log}");
}
