//! A cluster with a `CLUSTER_SECRET` and accounts, on real processes: nodes that know the secret
//! join, others are refused (classic peers too, unless the policy allows them), the secret never
//! crosses the wire, and submitting needs a login token.

mod common;

use common::*;

const SECRET_TOPOLOGY: &str = r#"
set CLUSTER_SECRET "correct horse"
node coordinator { type master }
node w { type worker }
user alice { password "wonderland"; role student }
"#;

#[test]
fn only_nodes_that_know_the_secret_join() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), SECRET_TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    // A worker started from the topology knows the secret and registers.
    let _worker = worker(dir.path(), &topology, "w", &addr);

    // Skipping the handshake: refused and closed.
    let mut intruder = Line::connect(&addr);
    intruder.send(r#"{"type":"register","from":"intruder","slots":1}"#);
    assert!(
        intruder.recv_type("error")["message"]
            .as_str()
            .unwrap()
            .contains("requires authentication")
    );
    assert_eq!(intruder.recv(), None);

    // A wrong proof: refused and closed. The secret is in none of the lines exchanged.
    let mut guesser = Line::connect(&addr);
    guesser.send(r#"{"type":"hello","from":"guesser","role":"worker","nonce":"0011"}"#);
    let challenge = guesser.recv_type("challenge");
    assert!(!challenge.to_string().contains("correct horse"));
    guesser.send(r#"{"type":"auth","proof":"deadbeef"}"#);
    assert_eq!(
        guesser.recv_type("error")["message"],
        "authentication failed"
    );
    assert_eq!(guesser.recv(), None);

    // A classic peer cannot authenticate: refused.
    let mut classic = Line::connect(&addr);
    classic.send(r#"REGISTER:{"id":"old"}"#);
    assert!(classic.recv().unwrap().starts_with("ERROR:"));
    assert_eq!(classic.recv(), None);

    let log = coordinator.log_text();
    assert!(
        log.contains("authentication failed") && log.contains("classic peer refused"),
        "{log}"
    );
    assert!(!log.contains("correct horse"));
}

#[test]
fn classic_peers_may_join_a_secret_cluster_when_the_policy_allows() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{SECRET_TOPOLOGY}\npolicy security {{ allow_classic true }}\n");
    let topology = topology(dir.path(), &text);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let mut classic = Line::connect(&addr);
    classic.send(r#"REGISTER:{"id":"old"}"#);
    classic.send("STATUS");
    assert!(classic.recv().unwrap().starts_with("STATUS:"));
}

#[test]
fn the_client_authenticates_and_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), SECRET_TOPOLOGY);
    let (_coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let _worker = worker(dir.path(), &topology, "w", &addr);
    let client = |args: &[&str]| {
        let mut all = vec!["client", topology.to_str().unwrap(), "--coordinator", &addr];
        all.extend_from_slice(args);
        tcluster().args(&all).output().unwrap()
    };

    // Without an account, submitting is refused.
    let out = client(&["submit", "echo hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log in first"));

    let out = client(&["--user", "alice", "--password", "nope", "submit", "echo hi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong user name or password"));

    let out = client(&[
        "--user",
        "alice",
        "--password",
        "wonderland",
        "submit",
        "echo hi",
        "--wait",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("logged in as alice (student)"));
    assert!(stdout.contains("JOB-1 completed: hi"), "{stdout}");
}
