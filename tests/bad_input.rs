//! Bad input on a real coordinator's socket: each gets an error reply (or a closed connection)
//! and a log line, and the coordinator keeps serving everyone else — a worker stays registered
//! and jobs still complete.

mod common;

use common::*;

const TOPOLOGY: &str = "node coordinator { type master }\nnode w { type worker }\n";

/// The coordinator still works: a job submitted now completes.
fn still_serving(addr: &str) {
    let mut client = Line::connect(addr);
    client.send(r#"{"type":"submit","data":"echo still here","notify":true}"#);
    client.recv_type("accepted");
    let done = client.recv_type("job_finished");
    assert_eq!(done["result"], "still here");
}

#[test]
fn bad_lines_get_an_error_and_the_connection_stays() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);

    let mut peer = Line::connect(&addr);
    peer.send("{not json");
    let error = peer.recv_type("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON at column"),
        "{error}"
    );

    peer.send(r#"{"type":"dance","steps":3}"#);
    let error = peer.recv_type("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("bad `dance` message"),
        "{error}"
    );

    peer.send(r#"{"type":"submit"}"#);
    let error = peer.recv_type("error");
    assert!(
        error["message"].as_str().unwrap().contains("data"),
        "{error}"
    );

    peer.send_bytes(b"\xff\xfe\x00binary\x01\x02\n");
    let error = peer.recv_type("error");
    assert!(
        error["message"].as_str().unwrap().contains("not UTF-8"),
        "{error}"
    );

    peer.send(r#"[1, 2, 3]"#);
    assert!(
        peer.recv_type("error")["message"]
            .as_str()
            .unwrap()
            .contains("\"type\" field")
    );

    // After all that, the same connection still works.
    peer.send(r#"{"type":"ping"}"#);
    peer.recv_type("pong");
    still_serving(&addr);
    assert!(
        coordinator.log_text().contains("bad input"),
        "a log line for bad input"
    );
}

#[test]
fn an_oversized_line_is_refused_before_it_is_all_read() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);

    let mut peer = Line::connect(&addr);
    // 100 KiB with no newline: the coordinator answers and closes without waiting for the end.
    peer.send_bytes(&vec![b'x'; 100 * 1024]);
    let error = peer.recv_type("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("longer than 65536 bytes"),
        "{error}"
    );
    assert_eq!(peer.recv(), None, "the connection is closed");
    still_serving(&addr);
    assert!(coordinator.log_text().contains("longer than"));
}

#[test]
fn a_flood_of_idle_connections_does_not_lock_anyone_out() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &["--max-connections", "16"]);
    let _worker = worker(dir.path(), &topology, "w", &addr);

    let flood: Vec<Line> = (0..100).map(|_| Line::connect(&addr)).collect();
    // The registered worker keeps its place, and a new client is served.
    still_serving(&addr);
    assert!(coordinator.log_text().contains("too many connections"));
    drop(flood);
}

#[test]
fn a_second_worker_with_a_live_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);

    let mut impostor = Line::connect(&addr);
    impostor.send(r#"{"type":"register","from":"w","slots":1}"#);
    let error = impostor.recv_type("error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("already connected")
    );
    assert_eq!(impostor.recv(), None);
    still_serving(&addr);
}

/// `subscribe` with `history`: the coordinator's durable events so far, in parts, then live
/// events; a `history` that is not a boolean is refused with the reason.
#[test]
fn a_subscription_with_history_starts_from_the_whole_state_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    still_serving(&addr);

    let mut peer = Line::connect(&addr);
    peer.send(r#"{"type":"subscribe","history":"yes"}"#);
    let error = peer.recv_type("error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("bad `subscribe` message") && message.contains("expected a boolean"),
        "{error}"
    );

    peer.send(r#"{"type":"subscribe","history":true}"#);
    let mut events = Vec::new();
    loop {
        let part = peer.recv_type("history");
        events.extend(part["events"].as_array().unwrap().iter().cloned());
        if part["done"] == true {
            break;
        }
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"worker_joined"), "{kinds:?}");
    assert!(kinds.contains(&"job_completed"), "{kinds:?}");
    // Then what happens now.
    still_serving(&addr);
    let live = peer.recv_type("event");
    assert_eq!(live["event"]["event"], "job_submitted", "{live}");
}
