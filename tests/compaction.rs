//! Compaction, on the coordinator itself: the history becomes a snapshot of the state, the
//! oldest finished jobs whose results were read are forgotten (the counts keep them), an
//! unfinished job or an unread result never is, and a backup behind the snapshot starts over
//! from it and ends with the primary's state.

mod common;

use tcluster::protocol::Dialect;
use tcluster::protocol::message::{Envelope, JobId, JobState, Message};
use tcluster::role::coordinator::{
    ClusterState, ConnId, Coordinator, CoordinatorConfig, Input, JournalOp, Output, PeerMaster,
    Retention,
};
use tcluster::topology::MasterRole;

const WORKER: ConnId = 1;
const CLIENT: ConnId = 2;
const BACKUP: ConnId = 3;

fn native(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

fn config(name: &str, keep_done: usize, compact_every: u64) -> CoordinatorConfig {
    let mut config = CoordinatorConfig::for_tests(name);
    config.retention = Retention {
        keep_done,
        compact_every,
        ..Retention::default()
    };
    // Replies do not wait for the backup here: the backup is driven by hand.
    config.sync = false;
    config
}

/// A primary with a worker of 8 slots connected and registered.
fn primary(keep_done: usize, compact_every: u64) -> Coordinator {
    let mut config = config("coordinator", keep_done, compact_every);
    config.peers.push(PeerMaster {
        name: "backup".into(),
        address: "backup:0".into(),
        rank: 1,
    });
    let mut c = Coordinator::new(config);
    c.step(0, Input::Connected(WORKER));
    c.step(0, Input::Connected(CLIENT));
    let register = Message::Register {
        slots: 8,
        running: Vec::new(),
        owner: None,
    };
    c.step(
        0,
        Input::Received(WORKER, Dialect::Native, native("w1", register)),
    );
    c
}

/// Submits `count` jobs; with `wait`, the client waits for each (so each result is read).
fn submit(c: &mut Coordinator, now: u64, count: u32, wait: bool) -> Vec<Output> {
    let submit = Message::Submit {
        data: "x".into(),
        count,
        priority: 0,
        token: None,
        notify: wait,
    };
    c.step(
        now,
        Input::Received(CLIENT, Dialect::Native, native("alice", submit)),
    )
}

/// The worker finishes every job assigned in `outputs`, and those assigned while it does.
fn finish_all(c: &mut Coordinator, now: u64, mut outputs: Vec<Output>) -> Vec<Output> {
    let mut all = Vec::new();
    loop {
        let assigned: Vec<(JobId, u32)> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send(WORKER, env) => match env.message {
                    Message::Assign { job, attempt, .. } => Some((job, attempt)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        all.extend(outputs);
        if assigned.is_empty() {
            return all;
        }
        outputs = Vec::new();
        for (job, attempt) in assigned {
            let done = Message::JobDone {
                job,
                result: format!("r{}", job.0),
                attempt: Some(attempt),
            };
            outputs.extend(c.step(
                now,
                Input::Received(WORKER, Dialect::Native, native("w1", done)),
            ));
        }
    }
}

fn status(c: &mut Coordinator, job: JobId) -> Message {
    let out = c.step(
        0,
        Input::Received(
            CLIENT,
            Dialect::Native,
            native("alice", Message::Status { job: Some(job) }),
        ),
    );
    out.into_iter()
        .rev()
        .find_map(|o| match o {
            Output::Send(CLIENT, env) => Some(env.message),
            _ => None,
        })
        .expect("a reply")
}

fn compactions(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .filter(|o| matches!(o, Output::Journal(JournalOp::Compact { .. })))
        .count()
}

fn finished_held(state: &ClusterState) -> usize {
    state.jobs.values().filter(|j| j.state.is_final()).count()
}

#[test]
fn read_results_beyond_the_retention_are_forgotten_and_the_counts_keep_them() {
    let mut c = primary(20, 100);
    let mut outputs = Vec::new();
    for round in 0..10 {
        let out = submit(&mut c, round, 30, true);
        outputs.extend(finish_all(&mut c, round, out));
    }
    assert!(
        compactions(&outputs) >= 2,
        "compacted {}",
        compactions(&outputs)
    );
    let state = c.state();
    assert_eq!(state.counts.completed, 300);
    assert!(state.forgotten > 0);
    assert!(
        finished_held(state) < 300,
        "{} finished jobs held",
        finished_held(state)
    );
    assert_eq!(state.forgotten as usize + state.jobs.len(), 300);
    assert!(c.history_first() > 0, "the history starts at the snapshot");
    // The newest jobs are still there; the oldest are forgotten, and said to be.
    assert!(matches!(
        status(&mut c, JobId(300)),
        Message::JobInfo { .. }
    ));
    match status(&mut c, JobId(1)) {
        Message::Error { message } => assert!(message.contains("forgotten"), "{message}"),
        other => panic!("{other:?}"),
    }
    // The history replayed from where it starts now rebuilds the same state.
    let events = history_of(&mut c);
    let mut again = Coordinator::new(config("coordinator", 20, 100));
    again.restore_from(c.history_first(), &events);
    assert_eq!(again.state().counts, c.state().counts);
    assert_eq!(again.state().jobs, c.state().jobs);
    assert_eq!(again.history_len(), c.history_len());
}

#[test]
fn unfinished_jobs_and_unread_results_are_never_forgotten() {
    let mut c = primary(5, 100);
    // 200 jobs finish with nobody waiting for them: their results are unread.
    let out = submit(&mut c, 0, 200, false);
    let mut outputs = finish_all(&mut c, 0, out);
    // 100 more wait in the queue: the worker is busy with the first 8.
    outputs.extend(submit(&mut c, 1, 100, false));
    assert!(compactions(&outputs) > 0);
    let state = c.state();
    assert_eq!(state.counts.completed, 200);
    assert_eq!(state.unread, 200);
    assert_eq!(state.forgotten, 0, "an unread result was forgotten");
    assert_eq!(
        state.jobs.values().filter(|j| !j.state.is_final()).count(),
        100
    );
    // Reading them lets the next compaction forget the oldest.
    for id in 1..=200 {
        status(&mut c, JobId(id));
    }
    assert_eq!(c.state().unread, 0);
    let out = submit(&mut c, 3, 100, true);
    finish_all(&mut c, 3, out);
    assert!(c.state().forgotten > 0);
    assert!(
        c.state()
            .jobs
            .values()
            .filter(|j| j.state == JobState::Queued)
            .count()
            > 0
    );
    c.state().check_invariants().unwrap();
}

#[test]
fn unread_results_count_against_the_open_jobs_limit() {
    let mut c = primary(5, 100);
    let out = submit(&mut c, 0, 100, false);
    finish_all(&mut c, 0, out);
    assert_eq!(c.state().unread, 100);
    let refused = submit(
        &mut c,
        1,
        tcluster::role::coordinator::MAX_OPEN_JOBS as u32 - 50,
        false,
    );
    let message = refused
        .iter()
        .find_map(|o| match o {
            Output::Send(CLIENT, env) => match &env.message {
                Message::Error { message } => Some(message.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("refused");
    assert!(message.contains("100 results wait to be read"), "{message}");
}

/// Every event of a coordinator's history, as a subscriber with `history` receives it.
fn history_of(c: &mut Coordinator) -> Vec<tcluster::cluster::event::ClusterEvent> {
    const SUB: ConnId = 99;
    c.step(0, Input::Connected(SUB));
    let out = c.step(
        0,
        Input::Received(
            SUB,
            Dialect::Native,
            native("viewer", Message::Subscribe { history: true }),
        ),
    );
    let mut events = Vec::new();
    for o in out {
        if let Output::Send(SUB, env) = o
            && let Message::History { events: part, .. } = env.message
        {
            events.extend(part);
        }
    }
    c.step(0, Input::Disconnected(SUB));
    events
}

/// A backup, driven by hand: what its primary sends goes in, its acknowledgements go out.
fn backup() -> Coordinator {
    let mut config = config("backup", 20, 100);
    config.role = MasterRole::Backup;
    config.follow = Some("coordinator".into());
    config.primary = Some("coordinator".into());
    config.peers.push(PeerMaster {
        name: "coordinator".into(),
        address: "coordinator:0".into(),
        rank: 2,
    });
    Coordinator::new(config)
}

/// Carries the replicas of `outputs` to the backup and its acknowledgements back, until
/// neither has anything more to say. Returns the backup's journal operations.
fn replicate(p: &mut Coordinator, b: &mut Coordinator, outputs: Vec<Output>) -> Vec<JournalOp> {
    let mut ops = Vec::new();
    let mut to_backup: Vec<Envelope> = outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(BACKUP, env) => Some(env),
            _ => None,
        })
        .collect();
    while !to_backup.is_empty() {
        let mut acks = Vec::new();
        for env in to_backup.drain(..) {
            for o in b.step(0, Input::FromPrimary(env)) {
                match o {
                    Output::ToPrimary(m) => acks.push(m),
                    Output::Journal(op) => ops.push(op),
                    _ => {}
                }
            }
        }
        for ack in acks {
            for o in p.step(
                0,
                Input::Received(BACKUP, Dialect::Native, native("backup", ack)),
            ) {
                if let Output::Send(BACKUP, env) = o {
                    to_backup.push(env);
                }
            }
        }
    }
    ops
}

/// The primary's connection `BACKUP` is the proven master `backup`, following from `after`.
fn follow(p: &mut Coordinator, after: u64) -> Vec<Output> {
    p.step(0, Input::Connected(BACKUP));
    let key = CoordinatorConfig::for_tests("coordinator").peer_key;
    let master = tcluster::protocol::message::PeerRole::Master;
    common::prove_on(p, BACKUP, "backup", master, &key);
    p.step(
        0,
        Input::Received(
            BACKUP,
            Dialect::Native,
            native("backup", Message::Follow { after }),
        ),
    )
}

fn same_state(p: &Coordinator, b: &Coordinator) {
    assert_eq!(b.state().counts, p.state().counts);
    assert_eq!(b.state().jobs, p.state().jobs);
    assert_eq!(
        b.state().workers.keys().collect::<Vec<_>>(),
        p.state().workers.keys().collect::<Vec<_>>()
    );
    assert_eq!(b.state().forgotten, p.state().forgotten);
    assert_eq!(b.history_len(), p.history_len());
}

#[test]
fn a_new_backup_starts_from_the_primarys_snapshot_and_follows_on() {
    let mut p = primary(20, 100);
    for round in 0..6 {
        let out = submit(&mut p, round, 30, true);
        finish_all(&mut p, round, out);
    }
    assert!(p.history_first() > 0);
    let mut b = backup();
    let out = follow(&mut p, 0);
    let ops = replicate(&mut p, &mut b, out);
    assert!(
        ops.iter()
            .any(|op| matches!(op, JournalOp::Restart { at } if *at == p.history_first())),
        "{ops:?}"
    );
    same_state(&p, &b);
    // And it follows on: more jobs, more compactions on both sides, the same state.
    let seeded_at = b.history_first();
    let mut own = 0;
    for round in 6..12 {
        let out = submit(&mut p, round, 30, true);
        let out = finish_all(&mut p, round, out);
        let ops = replicate(&mut p, &mut b, out);
        own += ops
            .iter()
            .filter(|op| matches!(op, JournalOp::Compact { .. }))
            .count();
    }
    same_state(&p, &b);
    assert!(own > 0, "the backup compacts its own history too");
    assert!(b.history_first() > seeded_at);
}

#[test]
fn a_backup_behind_the_snapshot_starts_over_and_its_old_acknowledgements_do_not_count() {
    let mut p = primary(20, 100);
    let mut b = backup();
    let out = follow(&mut p, 0);
    replicate(&mut p, &mut b, out);
    // The backup falls behind: what the primary sends it is lost while the primary compacts.
    for round in 0..6 {
        let out = submit(&mut p, round, 30, true);
        finish_all(&mut p, round, out);
    }
    // An acknowledgement of its old history arrives late: it must not count as the snapshot's.
    let stale = Message::ReplicaAck {
        seq: p.history_len() - 1,
        missing: Vec::new(),
        seeded: None,
    };
    p.step(
        0,
        Input::Received(BACKUP, Dialect::Native, native("backup", stale)),
    );
    // The primary sends it everything again after a quiet spell (go-back).
    let out = p.step(1_000_000, Input::Tick);
    let ops = replicate(&mut p, &mut b, out);
    assert!(
        ops.iter()
            .any(|op| matches!(op, JournalOp::Restart { at } if *at > 0)),
        "{ops:?}"
    );
    same_state(&p, &b);
    b.state().check_invariants().unwrap();
}
