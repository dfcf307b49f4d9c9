//! Random message sequences from peers that are not who they would need to be: unauthenticated,
//! wrongly authenticated, or workers reporting on jobs they were never given. Whatever they
//! send, terms, job ownership and chat histories change only through legitimate peers.

mod common;

use proptest::prelude::*;

use tcluster::cluster::event::EventKind;
use tcluster::protocol::Dialect;
use tcluster::protocol::message::{
    ChatBody, ChatEntry, Envelope, JobId, JobState, Message, PeerRole,
};
use tcluster::role::chat::{ChatConfig, ChatServer};
use tcluster::role::coordinator::{Coordinator, CoordinatorConfig, Input, Output, PeerMaster};
use tcluster::topology::MasterRole;

/// The names a hostile peer may claim.
const NAMES: [&str; 6] = ["backup", "coordinator", "w1", "evil", "chat-2", "server-1"];

/// One hostile line: who sends it (one of a few connections) and what.
#[derive(Debug, Clone)]
struct Hostile {
    conn: u64,
    from: &'static str,
    term: Option<u64>,
    message: Message,
}

fn job() -> impl Strategy<Value = JobId> {
    (1u64..=6).prop_map(JobId)
}

fn message() -> impl Strategy<Value = Message> {
    let role = prop_oneof![
        Just(PeerRole::Master),
        Just(PeerRole::Supervisor),
        Just(PeerRole::ChatPeer),
        Just(PeerRole::Worker),
        Just(PeerRole::Client),
    ];
    prop_oneof![
        Just(Message::Victory),
        Just(Message::Election),
        (0u64..10).prop_map(|after| Message::Follow { after }),
        (0u64..20, prop::collection::vec(0u64..20, 0..3)).prop_map(|(seq, missing)| {
            Message::ReplicaAck {
                seq,
                missing,
                seeded: None,
            }
        }),
        (role, prop::option::of("[0-9a-f]{8}"))
            .prop_map(|(role, nonce)| Message::Hello { role, nonce }),
        "[0-9a-f]{0,64}".prop_map(|proof| Message::Auth { proof }),
        (1u32..4).prop_map(|slots| Message::Register {
            slots,
            running: vec![JobId(1), JobId(2)],
            owner: None,
        }),
        prop::collection::vec(job(), 0..3).prop_map(|r| Message::Heartbeat {
            running: Some(r),
            token: None,
        }),
        (job(), prop::option::of(0u32..3)).prop_map(|(job, attempt)| Message::JobDone {
            job,
            result: "forged".into(),
            attempt,
        }),
        (job(), prop::option::of(0u32..3)).prop_map(|(job, attempt)| Message::JobFailed {
            job,
            error: "forged".into(),
            attempt,
        }),
        job().prop_map(|job| Message::Started { job }),
        Just(Message::ChatSyncMore),
        // Lending, as if from another cluster's primary, and lent workers.
        (1u32..4).prop_map(|want| Message::WorkerRequest {
            cluster: "east".into(),
            address: "evil:1".into(),
            want,
        }),
        Just(Message::CommandRelease {
            cluster: "east".into(),
            workers: vec!["w1".into()],
            lost: vec!["w1".into()],
        }),
        Just(Message::ReleaseCompleted {
            cluster: "east".into(),
            workers: vec!["w1".into()],
        }),
        Just(Message::PeerHeartbeat {
            cluster: "east".into()
        }),
        (1u32..4).prop_map(|slots| Message::Register {
            slots,
            running: vec![JobId(1)],
            owner: Some("east".into()),
        }),
    ]
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let term = prop_oneof![Just(None), (1u64..6).prop_map(Some), Just(Some(u64::MAX))];
    (100u64..104, 0..NAMES.len(), term, message()).prop_map(|(conn, name, term, message)| Hostile {
        conn,
        from: NAMES[name],
        term,
        message,
    })
}

fn env(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

/// A hostile line as it arrives.
fn arrive(line: Hostile) -> (u64, Envelope) {
    let envelope = Envelope {
        term: line.term,
        ..env(line.from, line.message)
    };
    (line.conn, envelope)
}

/// Proves `key` on `conn` as `name` in `role`, as a legitimate peer does.
fn prove(c: &mut Coordinator, conn: u64, name: &str, role: PeerRole, key: &str) {
    common::prove_on(c, conn, name, role, key);
}

/// A primary (with a backup in its topology) whose worker `w1` runs JOB-1 and JOB-2; JOB-3 …
/// JOB-6 are queued. With a `secret`, the worker and the client prove it first.
fn primary(secret: Option<&str>) -> Coordinator {
    let mut config = CoordinatorConfig::for_tests("coordinator");
    config.secret = secret.map(str::to_string);
    config.peers.push(PeerMaster {
        name: "backup".into(),
        address: "backup:0".into(),
        rank: 1,
    });
    config.sync = false;
    // Another cluster, east, that it may lend to (only east's proven master may ask).
    config.lending = Some(tcluster::topology::Lending::default());
    config
        .clusters
        .push(tcluster::role::coordinator::PeerCluster {
            name: "east".into(),
            masters: vec![PeerMaster {
                name: "server-1".into(),
                address: "server-1:0".into(),
                rank: 0,
            }],
        });
    let mut c = Coordinator::new(config);
    let register = Message::Register {
        slots: 2,
        running: vec![],
        owner: None,
    };
    let submit = Message::Submit {
        data: "sleep 9s".into(),
        count: 6,
        priority: 0,
        token: None,
        notify: false,
    };
    for (conn, from, role, message) in [
        (1, "w1", PeerRole::Worker, register),
        (2, "client", PeerRole::Client, submit),
    ] {
        c.step(0, Input::Connected(conn));
        if let Some(secret) = secret {
            prove(&mut c, conn, from, role, secret);
        }
        c.step(
            0,
            Input::Received(conn, Dialect::Native, env(from, message)),
        );
    }
    assert_eq!(c.state().jobs.len(), 6);
    assert_eq!(c.state().jobs[&JobId(2)].worker.as_deref(), Some("w1"));
    c
}

/// What must hold however the hostile lines went.
fn check_primary(c: &Coordinator, outputs: &[Output]) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.term(), 1, "the term changed");
    prop_assert!(c.is_serving(), "the primary stepped down");
    for o in outputs {
        prop_assert!(
            !matches!(o, Output::Follow { .. }),
            "the primary followed someone: {:?}",
            o
        );
        if let Output::Event(e) = o {
            match &e.kind {
                EventKind::BackupFollows { .. } => {
                    prop_assert!(false, "a hostile peer became a follower")
                }
                EventKind::Takeover { .. } | EventKind::ElectionUpdate { .. } => {
                    prop_assert!(false, "an election from outside: {:?}", e.kind)
                }
                EventKind::WorkerLent { .. }
                | EventKind::WorkerBorrowed { .. }
                | EventKind::LoanEnded { .. }
                | EventKind::WorkerReleased { .. } => {
                    prop_assert!(false, "a loan from outside: {:?}", e.kind)
                }
                _ => {}
            }
        }
    }
    // w1's jobs stay w1's, unfinished.
    for id in [JobId(1), JobId(2)] {
        let j = &c.state().jobs[&id];
        prop_assert_eq!(j.worker.as_deref(), Some("w1"));
        prop_assert!(
            matches!(j.state, JobState::Assigned | JobState::Running),
            "{id} is {:?}",
            j.state
        );
    }
    // Any job that did end, ended by a worker it was sent to.
    for j in c.state().jobs.values().filter(|j| j.state.is_final()) {
        let by = j.worker.clone().unwrap_or_default();
        prop_assert!(j.sent_to.contains(&by), "{} ended by {by}", j.id);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn hostile_lines_change_nothing_they_do_not_own(lines in prop::collection::vec(hostile(), 1..60)) {
        let mut c = primary(None);
        for conn in 100..104 {
            c.step(0, Input::Connected(conn));
        }
        for line in lines {
            let (conn, envelope) = arrive(line);
            let out = c.step(0, Input::Received(conn, Dialect::Native, envelope));
            check_primary(&c, &out)?;
        }
    }

    #[test]
    fn without_the_secret_nothing_changes_at_all(lines in prop::collection::vec(hostile(), 1..60)) {
        let mut c = primary(Some("correct horse"));
        let before = c.history_len();
        for conn in 100..104 {
            c.step(0, Input::Connected(conn));
        }
        for line in lines {
            let (conn, envelope) = arrive(line);
            let out = c.step(0, Input::Received(conn, Dialect::Native, envelope));
            check_primary(&c, &out)?;
        }
        prop_assert_eq!(c.history_len(), before, "an event from an unauthenticated peer");
    }

    #[test]
    fn a_backup_takes_no_term_and_no_primary_from_outside(lines in prop::collection::vec(hostile(), 1..60)) {
        let mut config = CoordinatorConfig::for_tests("backup");
        config.role = MasterRole::Backup;
        config.follow = Some("coordinator".into());
        config.peers.push(PeerMaster { name: "coordinator".into(), address: "c:0".into(), rank: 2 });
        let mut c = Coordinator::new(config);
        for conn in 100..104 {
            c.step(0, Input::Connected(conn));
        }
        for line in lines {
            let (conn, envelope) = arrive(line);
            let out = c.step(0, Input::Received(conn, Dialect::Native, envelope));
            prop_assert_eq!(c.term(), 1);
            prop_assert!(!c.is_serving(), "the backup took over");
            for o in &out {
                prop_assert!(!matches!(o, Output::Follow { .. }), "it followed: {:?}", o);
            }
        }
    }

    #[test]
    fn chat_history_changes_only_through_proven_servers(lines in prop::collection::vec(hostile(), 1..40), texts in prop::collection::vec("[a-z]{1,8}", 1..5)) {
        let mut config = ChatConfig::new("chat-1");
        config.peers = vec!["chat-2".into()];
        config.peer_key = "peers".into();
        let mut s = ChatServer::new(config);
        use tcluster::role::chat::Input as ChatInput;
        for conn in 100..104 {
            s.step(0, ChatInput::Connected(conn));
        }
        for (i, line) in lines.into_iter().enumerate() {
            // Interleave replicas claiming any origin with the other hostile lines.
            let text = &texts[i % texts.len()];
            let entry = ChatEntry {
                request: None,
                clock: i as u64,
                server: line.from.into(),
                seq: i as u64 + 1,
                body: ChatBody::Post { channel: "general".into(), from: "alice".into(), text: text.as_str().into() },
            };
            s.step(0, ChatInput::Received(line.conn, env(line.from, Message::ChatReplica { entry: Box::new(entry) })));
            s.step(0, ChatInput::Received(line.conn, env(line.from, line.message)));
        }
        prop_assert_eq!(s.entries().count(), 0, "a hostile connection added to the history");
    }
}

/// One step of a busy, messy cluster: honest and hostile lines, ticks and disconnections.
#[derive(Debug, Clone)]
enum Step {
    Line(Hostile),
    Submit(u32),
    Tick(u64),
    Close(u64),
    Open(u64),
    Datagram(Hostile),
}

fn step() -> impl Strategy<Value = Step> {
    let worker_line = (
        1u64..4,
        prop_oneof![Just("w1"), Just("w2"), Just("w3")],
        message(),
    )
        .prop_map(|(conn, from, message)| {
            Step::Line(Hostile {
                conn,
                from,
                term: None,
                message,
            })
        });
    prop_oneof![
        4 => worker_line,
        2 => hostile().prop_map(Step::Line),
        1 => (1u32..5).prop_map(Step::Submit),
        1 => (1u64..900).prop_map(Step::Tick),
        1 => (1u64..4).prop_map(Step::Close),
        1 => (1u64..4).prop_map(Step::Open),
        1 => hostile().prop_map(Step::Datagram),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The coordinator fuzz target's invariants, checked in every `cargo test`: whatever arrives,
    /// a job waits in the queue only while queued, no worker holds more jobs than its slots or a
    /// job not assigned to it, and the term never goes down.
    #[test]
    fn any_sequence_keeps_the_invariants(steps in prop::collection::vec(step(), 1..120)) {
        let mut config = CoordinatorConfig::for_tests("coordinator");
        config.heartbeat.udp = steps.len() % 2 == 0;
        let mut c = Coordinator::new(config);
        let mut now = 0;
        for conn in (1..4).chain(100..104) {
            c.step(now, Input::Connected(conn));
        }
        c.step(now, Input::Connected(9));
        for s in steps {
            let input = match s {
                Step::Line(line) => {
                    let (conn, envelope) = arrive(line);
                    Input::Received(conn, Dialect::Native, envelope)
                }
                Step::Submit(count) => Input::Received(
                    9,
                    Dialect::Native,
                    env("client", Message::Submit {
                        data: "sleep 1s".into(),
                        count,
                        priority: 0,
                        token: None,
                        notify: false,
                    }),
                ),
                Step::Tick(ms) => {
                    now += ms;
                    Input::Tick
                }
                Step::Close(conn) => Input::Disconnected(conn),
                Step::Open(conn) => Input::Connected(conn),
                // Anything at all on the UDP port, with heartbeats over UDP or not.
                Step::Datagram(line) => Input::Datagram(arrive(line).1),
            };
            let term = c.term();
            c.step(now, input);
            prop_assert!(c.term() >= term);
            if let Err(broken) = c.state().check_invariants() {
                prop_assert!(false, "{}", broken);
            }
        }
    }
}

#[test]
fn a_worker_claiming_every_job_takes_none_of_them() {
    let mut c = primary(None);
    c.step(0, Input::Connected(7));
    let register = Message::Register {
        slots: 4096,
        running: (1..=6).map(JobId).collect(),
        owner: None,
    };
    let out = c.step(
        0,
        Input::Received(7, Dialect::Native, env("evil", register)),
    );
    let heartbeat = Message::Heartbeat {
        running: Some((1..=500).map(JobId).collect()),
        token: None,
    };
    let out2 = c.step(
        0,
        Input::Received(7, Dialect::Native, env("evil", heartbeat)),
    );
    // w1 keeps its two jobs; evil may be given queued jobs (it registered like anyone), but
    // not the ones it claimed that were someone else's, and every claim on another's job is
    // cancelled on it.
    for id in [JobId(1), JobId(2)] {
        assert_eq!(c.state().jobs[&id].worker.as_deref(), Some("w1"));
    }
    let cancels = out
        .iter()
        .chain(&out2)
        .filter(|o| matches!(o, Output::Send(7, e) if matches!(e.message, Message::Cancel { job } if job == JobId(1))))
        .count();
    assert!(cancels >= 1, "JOB-1 is cancelled on evil");
    c.state().check_invariants().unwrap();
}

/// An assignment leaves before its job is journaled; a master after a crash in that instant
/// may not know the job. The worker's result (and the job it says it runs) changes nothing
/// there: the result is acknowledged, so the worker stops sending it, and no event is made.
#[test]
fn a_result_for_a_job_this_master_never_had_is_acknowledged_and_dropped() {
    let mut c = primary(None);
    let before = c.state().jobs.len();
    let out = c.step(
        0,
        Input::Received(
            1,
            Dialect::Native,
            env(
                "w1",
                Message::JobDone {
                    job: JobId(99),
                    result: "ran before the crash".into(),
                    attempt: Some(1),
                },
            ),
        ),
    );
    assert!(
        out.iter().any(|o| matches!(o, Output::Send(1, e)
            if matches!(e.message, Message::ResultAck { job, .. } if job == JobId(99)))),
        "{out:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Event(_))),
        "{out:?}"
    );
    assert_eq!(c.state().jobs.len(), before);
    c.state().check_invariants().unwrap();
}
