//! Only the right peer may say each thing, on the real binary: what only masters say is refused
//! from anyone else (with or without a cluster secret, from a student's authenticated session
//! too), a worker never takes a coordinator's word without its proof, a coordinator never
//! follows a process squatting on a peer's port, and the launcher's own scenario steps act with
//! its credentials when the cluster has accounts.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::*;
use tcluster::protocol::auth;

const SECRET_TOPOLOGY: &str = r#"
set CLUSTER_SECRET "correct horse"
node coordinator { type master }
node w { type worker }
user alice { password "wonderland"; role operator }
user bob { password "builder"; role student }
"#;

/// Proves the cluster secret on `line` as `name` in `role`, the way a student's program would.
fn prove(line: &mut Line, name: &str, role: &str, secret: &str) {
    line.send(&format!(
        r#"{{"type":"hello","from":"{name}","role":"{role}","nonce":"00"}}"#
    ));
    let challenge = line.recv_type("challenge");
    let nonce = challenge["nonce"].as_str().unwrap();
    let proof = auth::proof(secret, auth::PEER, nonce, name);
    line.send(&format!(r#"{{"type":"auth","proof":"{proof}"}}"#));
    line.recv_type("welcome");
}

/// The coordinator's status report.
fn status_jobs(line: &mut Line) -> serde_json::Value {
    line.send(r#"{"type":"status"}"#);
    line.recv_type("status_report")["report"].clone()
}

#[test]
fn a_victory_from_outside_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node coordinator { type master }\nnode w { type worker }\n",
    );
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    let mut client = Line::connect(&addr);
    client.send(r#"{"type":"submit","data":"sleep 30s","count":3}"#);
    client.recv_type("accepted");
    let before = status_jobs(&mut client);

    let mut attacker = Line::connect(&addr);
    attacker.send(r#"{"type":"victory","from":"backup","term":2}"#);
    let refusal = attacker.recv_type("error");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("accepted only from another master"),
        "{refusal}"
    );
    attacker.send(r#"{"type":"follow","from":"backup","after":0}"#);
    attacker.recv_type("error");

    // Still the primary, in term 1, with every job and its worker; the refusals are counted.
    let mut after = status_jobs(&mut client);
    assert_eq!(after["refused"]["rules"], 2, "{after}");
    after.as_object_mut().unwrap().remove("refused");
    assert_eq!(after, before);
    assert_eq!(after["role"], "primary");
    assert_eq!(after["term"], 1);
    client.send(r#"{"type":"status","job":"JOB-1"}"#);
    assert_eq!(client.recv_type("job_info")["job"]["data"], "sleep 30s");
}

#[test]
fn a_students_authenticated_session_cannot_speak_for_a_master() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), SECRET_TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);

    // bob knows the cluster secret (every student's worker does) and logs in.
    let mut bob = Line::connect(&addr);
    prove(&mut bob, "bob", "client", "correct horse");
    bob.send(r#"{"type":"victory","from":"backup","term":2}"#);
    assert!(
        bob.recv_type("error")["message"]
            .as_str()
            .unwrap()
            .contains("accepted only from another master")
    );
    // Claiming to be a master with the cluster secret: the proof is checked against the peer
    // secret, which bob does not have.
    let mut fake = Line::connect(&addr);
    fake.send(r#"{"type":"hello","from":"backup","role":"master","nonce":"00"}"#);
    let challenge = fake.recv_type("challenge");
    let proof = auth::proof(
        "correct horse",
        auth::PEER,
        challenge["nonce"].as_str().unwrap(),
        "backup",
    );
    fake.send(&format!(r#"{{"type":"auth","proof":"{proof}"}}"#));
    assert_eq!(fake.recv_type("error")["message"], "authentication failed");
    assert_eq!(fake.recv(), None);

    assert_eq!(status_jobs(&mut bob)["term"], 1);
}

#[test]
fn a_worker_refuses_a_coordinator_that_skips_its_proof() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), SECRET_TOPOLOGY);
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap().to_string();
    let worker = start_worker(dir.path(), "w", &topology, "w", &addr);
    let (stream, _) = fake.accept().unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut hello = String::new();
    reader.read_line(&mut hello).unwrap();
    assert!(hello.contains(r#""type":"hello""#), "{hello}");
    // Welcome without a challenge, then a term no real coordinator has.
    let mut writer = stream;
    writer
        .write_all(
            b"{\"type\":\"welcome\",\"from\":\"fake\",\"coordinator\":\"fake\",\"heartbeat_ms\":100}\n\
              {\"type\":\"registered\",\"from\":\"fake\",\"term\":18446744073709551615,\"heartbeat_ms\":100}\n",
        )
        .unwrap();
    // The worker hangs up without registering.
    let mut rest = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => rest.push(line),
            Err(e) => panic!("the worker kept the connection open: {e}"),
        }
    }
    assert!(
        rest.iter().all(|l| !l.contains("register")),
        "the worker registered with a coordinator that proved nothing: {rest:?}"
    );
    wait_until("the worker says why", || {
        worker
            .log_text()
            .contains("could not prove it knows the cluster secret")
            .then_some(())
    });
}

#[test]
fn scenario_steps_act_with_the_launchers_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{SECRET_TOPOLOGY}\nscenario work {{\n    at 0.2s submit \"echo hi\" count 3\n}}\n"
    );
    let (stdout, report) = headless(dir.path(), &text, "work");
    assert_eq!(report["jobs"]["submitted"], 3, "{report}\n{stdout}");
    assert_eq!(report["jobs"]["completed"], 3, "{report}\n{stdout}");
    assert!(!stdout.contains("log in first"), "{stdout}");
}

#[test]
fn a_coordinator_does_not_follow_a_process_squatting_on_its_peers_port() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node coordinator { type master; role primary }\nnode backup { type master; role backup }\n",
    );
    let state = dir.path().join("state");
    let start = |name: &str, peers: Option<&str>| {
        let mut args = vec![
            "node",
            topology.to_str().unwrap(),
            "--name",
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--state-dir",
            state.to_str().unwrap(),
        ];
        if let Some(peers) = peers {
            args.extend(["--coordinator", peers]);
        }
        let proc = spawn(dir.path(), name, &args);
        let line = proc.wait_for_line("READY coordinator ");
        (proc, line.rsplit(' ').next().unwrap().to_string())
    };
    // A first run keeps a job in the journal.
    let (first, addr) = start("first", None);
    let mut client = Line::connect(&addr);
    client.send(r#"{"type":"submit","data":"sleep 30s"}"#);
    client.recv_type("accepted");
    drop(client);
    drop(first);

    // Something on the backup's port answers every line with "I am the primary, term 9".
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in fake.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    if line.is_err() {
                        return;
                    }
                    let _ = writer.write_all(
                        br#"{"type":"status_report","report":{"coordinator":"backup","role":"primary","term":9,"workers":{"healthy":0,"suspect":0,"dead":0},"jobs":{"queued":0,"assigned":0,"running":0,"completed":0,"failed":0},"duplicates":0}}
"#,
                    );
                }
            });
        }
    });
    let (second, addr) = start("second", Some(&format!("backup={fake_addr}")));
    let mut client = Line::connect(&addr);
    let report = status_jobs(&mut client);
    assert_eq!(report["role"], "primary", "{report}");
    assert_eq!(report["term"], 1, "{report}");
    client.send(r#"{"type":"status","job":"JOB-1"}"#);
    assert_eq!(client.recv_type("job_info")["job"]["data"], "sleep 30s");
    assert!(
        !second.log_text().contains("following it as the backup"),
        "{}",
        second.log_text()
    );
}
