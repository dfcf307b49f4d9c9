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
    let twin = spawn(
        dir.path(),
        "twin",
        &[
            "node",
            topology.to_str().unwrap(),
            "--name",
            "w",
            "--coordinator",
            &addr,
        ],
    );
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
