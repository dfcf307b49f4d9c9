//! The Python worker in examples/, written from docs/PROTOCOL.md alone, joins a real
//! coordinator and runs every kind of job — also with a cluster secret. Skipped (and says so)
//! where python3 is not installed.

mod common;

use std::process::Command;

use common::*;

fn python_worker(dir: &std::path::Path, addr: &str, name: &str, secret: Option<&str>) -> Proc {
    let mut command = Command::new("python3");
    command
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/worker.py"))
        .arg(addr)
        .arg(name);
    if let Some(secret) = secret {
        command.env("TCLUSTER_SECRET", secret);
    }
    let proc = spawn_command(dir, name, command);
    proc.wait_for_line(&format!("READY {name} registered"));
    proc
}

fn run_jobs(addr: &str, secret: Option<&str>) {
    let mut client = Line::connect(addr);
    if let Some(secret) = secret {
        authenticate(&mut client, secret, "tester");
    }
    let jobs = [
        ("sleep 200ms", "completed", "slept 200ms"),
        ("echo hello", "completed", "hello"),
        ("cpu 1000", "completed", "168 primes below 1000"),
        ("relatorio", "completed", "Processado_relatorio_por_py-1"),
    ];
    for (data, _, _) in jobs {
        client.send(&format!(
            r#"{{"type":"submit","from":"tester","data":"{data}","notify":true}}"#
        ));
    }
    // Replies and notices arrive interleaved: a quick job may finish before the next `accepted`.
    let (mut accepted, mut finished) = (0, std::collections::HashMap::new());
    while accepted < jobs.len() || finished.len() < jobs.len() {
        let line = client
            .recv()
            .expect("the coordinator keeps the connection open");
        let message: serde_json::Value = serde_json::from_str(&line).unwrap();
        match message["type"].as_str() {
            Some("accepted") => accepted += 1,
            Some("job_finished") => {
                finished.insert(message["job"].as_str().unwrap().to_string(), message);
            }
            _ => panic!("unexpected {line}"),
        }
    }
    for (i, (data, state, result)) in jobs.iter().enumerate() {
        let done = &finished[&format!("JOB-{}", i + 1)];
        assert_eq!(done["state"], *state, "{data}: {done}");
        assert_eq!(done["result"], *result, "{data}: {done}");
    }
    client.send(r#"{"type":"workers"}"#);
    let workers = client.recv_type("worker_list");
    assert_eq!(workers["workers"][0]["name"], "py-1");
    assert_eq!(workers["workers"][0]["classic"], false);
    assert_eq!(workers["workers"][0]["slots"], 2);
}

/// The handshake from docs/PROTOCOL.md, by hand.
fn authenticate(line: &mut Line, secret: &str, name: &str) {
    use hmac::{Hmac, KeyInit, Mac};
    line.send(&format!(
        r#"{{"type":"hello","from":"{name}","role":"client"}}"#
    ));
    let challenge = line.recv_type("challenge");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for part in ["tcluster-peer", challenge["nonce"].as_str().unwrap(), name] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    let proof = hex::encode(mac.finalize().into_bytes());
    line.send(&format!(r#"{{"type":"auth","proof":"{proof}"}}"#));
    line.recv_type("welcome");
}

#[test]
fn the_python_example_worker_runs_jobs() {
    if !python3_installed() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), "node coordinator { type master }\n");
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = python_worker(dir.path(), &addr, "py-1", None);
    run_jobs(&addr, None);
}

#[test]
fn the_python_example_worker_authenticates_with_a_secret() {
    if !python3_installed() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "set CLUSTER_SECRET \"s3cret\"\nnode coordinator { type master }\n",
    );
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = python_worker(dir.path(), &addr, "py-1", Some("s3cret"));
    run_jobs(&addr, Some("s3cret"));
}
