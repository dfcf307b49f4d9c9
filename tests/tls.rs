//! Encrypted links, end to end: a cluster whose links are TLS runs jobs and is cut by a
//! partition like any other (its shipped scenario checks itself); a plaintext peer of an
//! encrypted port is refused with a clear error, counted in `status` and logged; the Python
//! example worker joins over TLS with the CA tcluster hands it. The bytes on the wire are
//! checked to be TLS in the shaper's own tests (src/supervisor/shaper/tests.rs).

mod common;

use std::io::{BufRead, BufReader, Write};

use common::*;

const TOPOLOGY: &str = "set SYSTEM_NAME Sealed
set CLUSTER_SECRET lab-secret
set TLS on
node coordinator { type master }
node worker { type worker; count 2 }
policy heartbeat { interval 100ms; timeout 800ms }
";

/// A cluster of `TOPOLOGY` running headless in `dir`, and its coordinator's address.
fn launched(dir: &std::path::Path) -> (Proc, std::path::PathBuf, String) {
    let topology = topology(dir, TOPOLOGY);
    let state = dir.join("state");
    let run = spawn(
        dir,
        "run",
        &[
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    run.wait_for_line("Sealed: ");
    let record = wait_until("the cluster says where it listens", || {
        std::fs::read_to_string(state.join("run.json"))
            .ok()
            .filter(|t| t.contains("coordinator"))
    });
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let addr = record["servers"]["coordinator"]
        .as_str()
        .unwrap()
        .to_string();
    (run, topology, addr)
}

fn status(dir: &std::path::Path, topology: &std::path::Path) -> String {
    let out = tcluster()
        .args(["client", topology.to_str().unwrap(), "--state-dir"])
        .arg(dir.join("state"))
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn the_encrypted_topology_checks_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (_, report) = headless(dir.path(), &shipped_on_free_ports("encrypted"), "cut");
    let expectations = report["expectations"].as_array().expect("expectations");
    assert!(!expectations.is_empty());
    for e in expectations {
        assert_eq!(e["ok"], true, "{e}");
    }
    assert!(
        dir.path().join("state/tls/ca.pem").is_file(),
        "the CA was made"
    );
}

#[test]
fn a_plaintext_peer_of_an_encrypted_port_is_refused_counted_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (_run, topology, addr) = launched(dir.path());
    // The cluster itself works over TLS: the client sees both workers.
    wait_until("both workers joined, over TLS", || {
        status(dir.path(), &topology)
            .contains("workers: 2 healthy")
            .then_some(())
    });
    // Old lab code, in plaintext: told what is wrong in its own dialect, and closed.
    for (hello, answer) in [
        (
            "REGISTER:{\"id\":\"old-lab-worker\"}",
            "ERROR:this link is encrypted",
        ),
        (
            "{\"type\":\"hello\",\"role\":\"worker\"}",
            "{\"message\":\"this link is encrypted",
        ),
    ] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        writeln!(stream, "{hello}").unwrap();
        let mut lines = BufReader::new(stream).lines();
        let line = lines.next().expect("an answer").unwrap();
        assert!(line.starts_with(answer), "{line}");
        assert!(lines.next().is_none(), "then the connection closes");
    }
    wait_until("the refusals are counted in status", || {
        status(dir.path(), &topology)
            .contains("2 plaintext connections to an encrypted port")
            .then_some(())
    });
    let log = std::fs::read_to_string(dir.path().join("state/logs/coordinator.log")).unwrap();
    assert!(
        log.contains("refused a plaintext connection"),
        "the coordinator's log says so:\n{log}"
    );
}

#[test]
fn the_python_example_worker_joins_over_tls_with_the_ca_it_is_given() {
    if !python3_installed() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_run, topology, addr) = launched(dir.path());
    let mut python = std::process::Command::new("python3");
    python
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/worker.py"))
        .arg(&addr)
        .arg("py-tls")
        .env("TCLUSTER_SECRET", "lab-secret")
        .env("TCLUSTER_CA", dir.path().join("state/tls/ca.pem"));
    let worker = spawn_command(dir.path(), "py-tls", python);
    worker.wait_for_line("READY py-tls registered");
    wait_until("the Python worker is one of three", || {
        status(dir.path(), &topology)
            .contains("workers: 3 healthy")
            .then_some(())
    });
    // Without the CA, it cannot connect: the port is TLS only.
    let mut plain = std::process::Command::new("python3");
    plain
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/worker.py"))
        .arg(&addr)
        .arg("py-plain")
        .env("TCLUSTER_SECRET", "lab-secret");
    let out = plain.output().unwrap();
    assert!(!out.status.success());
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
