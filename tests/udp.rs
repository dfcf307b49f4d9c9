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

/// Garbage on the UDP port — bytes that are not text, text that is not a message, a message
/// that is not a heartbeat, a heartbeat with a forged token, one far too large — changes
/// nothing: the coordinator keeps running, counts what it refused, and its real worker, whose
/// datagrams carry the right token, stays healthy.
#[test]
fn garbage_datagrams_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node coordinator { type master }\nnode worker { type worker }\n\
         policy heartbeat { interval 200ms; timeout 2500ms; transport udp }\n",
    );
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "worker", &addr);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let junk: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00, 0x80],
        b"not json at all".to_vec(),
        br#"{"type":"submit","from":"x","clock":1,"data":"sleep 1s"}"#.to_vec(),
        br#"{"type":"heartbeat","from":"worker","clock":2,"token":"0000000000000000"}"#.to_vec(),
        br#"{"type":"heartbeat","from":"nobody","clock":2,"token":"abc"}"#.to_vec(),
        vec![b'x'; 60_000],
    ];
    for datagram in &junk {
        socket.send_to(datagram, &addr).unwrap();
    }
    // Three of them decode as messages and are refused by rule; the rest never get that far.
    let status = wait_until("the refusals are counted", || {
        let mut line = Line::connect(&addr);
        line.send(r#"{"type":"status","from":"tester"}"#);
        let status = line.recv_type("status_report");
        (status["report"]["refused"]["rules"].as_u64() >= Some(3)).then_some(status)
    });
    // More than a heartbeat timeout later the real worker is alive: its datagrams count.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let mut line = Line::connect(&addr);
    line.send(r#"{"type":"workers","from":"tester"}"#);
    let workers = line.recv_type("worker_list");
    assert_ne!(
        workers["workers"][0]["health"], "dead",
        "{workers}\n{status}"
    );
}
