//! Abuse that must not take a node down or starve honest peers, on the real binary: a refused
//! worker backs off instead of storming, subscribers cannot fill the connection table, and the
//! queue is bounded with a clear refusal.

mod common;

use common::*;

const TOPOLOGY: &str = "node coordinator { type master }\nnode w { type worker }\n";

#[test]
fn a_refused_worker_tries_again_later_and_later() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    // A second process with the same name: refused each time, and each time it waits longer.
    let twin = start_worker(dir.path(), "twin", &topology, "w", &addr);
    wait_until("the twin waits 1.6 s before its next try", || {
        twin.log_text()
            .contains("trying again in 1.6s")
            .then_some(())
    });
    let refusals = coordinator
        .log_text()
        .matches("a second worker with the same name")
        .count();
    assert!(
        (4..=6).contains(&refusals),
        "{refusals} refusals before the wait reached 1.6 s"
    );
}

#[test]
fn random_and_malformed_lines_leave_the_node_serving() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    let messages = [
        r#"{"type":"register","from":"x","slots":4096}"#,
        r#"{"type":"heartbeat","running":["JOB-1","JOB-2","JOB-99"]}"#,
        r#"{"type":"job_done","job":"JOB-1","result":"forged"}"#,
        r#"{"type":"victory","term":18446744073709551615}"#,
        r#"{"type":"follow","after":0}"#,
        r#"{"type":"ping","clock":18446744073709551615}"#,
        r#"{"type":"submit","data":"","count":0}"#,
        r#"{"type":"jobs","limit":18446744073709551615}"#,
        "REGISTER:{",
        "JOB_COMPLETE:JOB-1",
        "\u{0}\u{1}{}{}",
    ];
    let line = prop_oneof![
        proptest::sample::select(messages.to_vec()).prop_map(str::to_string),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).replace('\n', " ")),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 8,
        failure_persistence: None,
        ..Config::default()
    });
    let round = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&proptest::collection::vec(line, 1..60), |lines| {
            let round = round.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut hostile = std::net::TcpStream::connect(&addr).unwrap();
            for l in &lines {
                // The node may close on us (a line it cannot take): that is its right.
                if hostile.write_all(format!("{l}\n").as_bytes()).is_err() {
                    break;
                }
            }
            drop(hostile);
            // Still serving: a ping is answered, and an honest job completes.
            let mut client = Line::connect(&addr);
            client.send(r#"{"type":"ping"}"#);
            client.recv_type("pong");
            client.send(&format!(
                r#"{{"type":"submit","data":"echo round {round}","notify":true}}"#
            ));
            client.recv_type("accepted");
            let finished = client.recv_type("job_finished");
            prop_assert_eq!(&finished["state"], "completed", "{}", finished);
            Ok(())
        })
        .unwrap();
}

#[test]
fn silent_and_slow_connections_do_not_lock_out_workers() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &["--max-connections", "32"]);
    // Two hundred connections that say nothing, and a few that send a line a byte at a time
    // and never finish it (slowloris).
    let mut silent: Vec<std::net::TcpStream> = (0..200)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    for s in silent.iter_mut().take(5) {
        let _ = s.write_all(b"{\"type\":");
    }
    // The worker still gets in, and a client is still answered.
    let _worker = worker(dir.path(), &topology, "w", &addr);
    let mut client = Line::connect(&addr);
    client.send(r#"{"type":"submit","data":"echo still here","notify":true}"#);
    client.recv_type("accepted");
    assert_eq!(client.recv_type("job_finished")["state"], "completed");
    assert!(
        coordinator
            .log_text()
            .contains("too many connections: closing the oldest idle one")
    );
}

#[test]
fn a_client_that_never_reads_is_dropped_and_the_others_are_served() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    // Asks for the worker list over and over and reads nothing.
    let mut greedy = std::net::TcpStream::connect(&addr).unwrap();
    greedy
        .set_write_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let request = b"{\"type\":\"workers\"}\n".repeat(1000);
    for _ in 0..200 {
        if greedy.write_all(&request).is_err() {
            break;
        }
        if coordinator
            .log_text()
            .contains("too slow to read its replies")
        {
            break;
        }
    }
    wait_until("the greedy client is dropped", || {
        coordinator
            .log_text()
            .contains("too slow to read its replies")
            .then_some(())
    });
    let mut client = Line::connect(&addr);
    client.send(r#"{"type":"submit","data":"echo served","notify":true}"#);
    client.recv_type("accepted");
    assert_eq!(client.recv_type("job_finished")["state"], "completed");
}

#[test]
fn a_submit_flood_without_the_secret_is_cut_off_at_the_first_line() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "set CLUSTER_SECRET \"s3\"\nnode coordinator { type master }\nnode w { type worker }\n",
    );
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let mut flood = Line::connect(&addr);
    let lines = r#"{"type":"submit","data":"sleep 1s","count":100000}"#.to_string() + "\n";
    // The node closes after the first line; what follows may find the socket gone.
    let _ = flood.writer_mut().write_all(lines.repeat(1000).as_bytes());
    assert!(
        flood.recv_type("error")["message"]
            .as_str()
            .unwrap()
            .contains("requires authentication")
    );
    assert_eq!(flood.recv(), None, "the connection is closed");
    // Nothing was submitted: a worker that knows the secret joins and finds no job.
    let _worker = worker(dir.path(), &topology, "w", &addr);
    let log = coordinator.log_text();
    assert!(!log.contains("submitted"), "{log}");
    assert_eq!(log.matches("message before authentication").count(), 1);
}

/// `tcluster ARGS` with an open-file limit of `limit`, as on a machine whose default is low
/// (the shell's `ulimit` sets it, then runs tcluster in its place).
fn spawn_limited(dir: &std::path::Path, name: &str, args: &[&str], limit: u64) -> Proc {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tcluster"))
        .args(args)
        .env("NO_COLOR", "1");
    spawn_command(dir, name, command)
}

/// Opens `n` connections to `addr` and keeps them (they say nothing).
fn silent_connections(addr: &str, n: usize) -> Vec<std::net::TcpStream> {
    let target: std::net::SocketAddr = addr.parse().unwrap();
    (0..n)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connection {i} of {n}: {e}"))
        })
        .collect()
}

#[test]
fn ten_thousand_silent_connections_lock_out_neither_a_coordinator_nor_a_chat_server() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // This test holds the connections itself: it needs as many descriptors.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let n = 10_000.min(hard.saturating_sub(500) as usize);
    println!("{n} connections (open-file limit {hard})");
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        &format!("{TOPOLOGY}node chat {{ type chat }}\npolicy chat {{ rate 100/s }}\n"),
    );
    let top = topology.to_str().unwrap();
    // Both servers run with a limit of 1024 descriptors: they keep fewer connections than the
    // 4096 asked, and close silent ones before accept runs out.
    let coordinator = spawn_limited(
        dir.path(),
        "coordinator",
        &[
            "node",
            top,
            "--name",
            "coordinator",
            "--listen",
            "127.0.0.1:0",
        ],
        1024,
    );
    let addr = coordinator
        .wait_for_line("READY coordinator ")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        coordinator
            .log_text()
            .contains("allows fewer connections than asked"),
        "{}",
        coordinator.log_text()
    );
    let flood = silent_connections(&addr, n);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    let mut client = Line::connect(&addr);
    client.send(r#"{"type":"ping"}"#);
    client.recv_type("pong");
    client.send(r#"{"type":"submit","data":"echo still here","notify":true}"#);
    client.recv_type("accepted");
    assert_eq!(client.recv_type("job_finished")["state"], "completed");
    client.send(r#"{"type":"status"}"#);
    let report = client.recv_type("status_report");
    assert!(
        report["report"]["refused"]["limits"].as_u64().unwrap() > 0,
        "{report}"
    );
    drop(flood);

    let chat = spawn_limited(
        dir.path(),
        "chat",
        &["node", top, "--name", "chat", "--listen", "127.0.0.1:0"],
        1024,
    );
    let chat_addr = chat
        .wait_for_line("READY chat ")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    let flood = silent_connections(&chat_addr, n);
    let mut ada = Line::connect(&chat_addr);
    ada.send(r#"{"type":"chat_login","user":"ada"}"#);
    ada.recv_type("chat_welcome");
    ada.send(r#"{"type":"chat_create","channel":"general"}"#);
    ada.recv_type("chat_done");
    ada.send(r#"{"type":"chat_publish","channel":"general","text":"still here"}"#);
    ada.recv_type("chat_done");
    ada.send(r#"{"type":"chat_stats"}"#);
    let stats = ada.recv_type("chat_stats_report");
    assert!(stats["evicted"].as_u64().unwrap() > 0, "{stats}");
    drop(flood);
}
