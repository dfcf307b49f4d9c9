//! A backup that follows a long history, or a burst of events, receives them in a window of
//! unacknowledged replicas: never more than `REPLICA_WINDOW` in flight, so its connection's queue
//! cannot overflow, and every event arrives once, in order.

mod common;

use tcluster::protocol::Dialect;
use tcluster::protocol::message::{Envelope, Message, PeerRole};
use tcluster::role::coordinator::{
    ConnId, Coordinator, CoordinatorConfig, Input, Output, PeerMaster, REPLICA_WINDOW,
};

fn native(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

/// A primary whose topology has a backup named `backup`.
fn primary() -> Coordinator {
    let mut config = CoordinatorConfig::for_tests("coordinator");
    config.peers.push(PeerMaster {
        name: "backup".into(),
        address: "backup:0".into(),
        rank: 1,
    });
    Coordinator::new(config)
}

/// Connection `conn` proves it is the master `backup`, with the peer secret.
fn backup_proves(c: &mut Coordinator, conn: ConnId) {
    let key = CoordinatorConfig::for_tests("coordinator").peer_key;
    let out = common::prove_on(c, conn, "backup", PeerRole::Master, &key);
    assert!(out.iter().any(
        |o| matches!(o, Output::Send(_, env) if matches!(env.message, Message::Welcome { .. }))
    ));
}

/// A primary whose backup (connection 2) follows it from the start, and a client on
/// connection 1.
fn primary_with_backup_and_client() -> Coordinator {
    let mut c = primary();
    c.step(0, Input::Connected(2));
    backup_proves(&mut c, 2);
    c.step(
        0,
        Input::Received(
            2,
            Dialect::Native,
            native("backup", Message::Follow { after: 0 }),
        ),
    );
    c.step(0, Input::Connected(1));
    c
}

/// The sequence numbers of the replicas sent on `conn`.
fn replicas(outputs: &[Output], conn: ConnId) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(c, env) if *c == conn => match &env.message {
                Message::Replica { seq, .. } => Some(*seq),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn submit(c: &mut Coordinator, conn: ConnId, count: u32) -> Vec<Output> {
    c.step(
        0,
        Input::Received(
            conn,
            Dialect::Native,
            native(
                "alice",
                Message::Submit {
                    data: "sleep 1s".into(),
                    count,
                    priority: 0,
                    token: None,
                    notify: false,
                },
            ),
        ),
    )
}

/// Acknowledges every replica the backup has, one by one as a backup does; returns every
/// replica received, and every output of the last acknowledgement.
fn ack_all(c: &mut Coordinator, conn: ConnId, mut pending: Vec<u64>) -> (Vec<u64>, Vec<Output>) {
    let mut received = Vec::new();
    let mut last = Vec::new();
    while let Some(seq) = pending.first().copied() {
        pending.remove(0);
        received.push(seq);
        let out = c.step(
            0,
            Input::Received(
                conn,
                Dialect::Native,
                native(
                    "backup",
                    Message::ReplicaAck {
                        seq,
                        missing: Vec::new(),
                        seeded: None,
                    },
                ),
            ),
        );
        let more = replicas(&out, conn);
        last = out;
        assert!(
            (pending.len() + more.len()) as u64 <= REPLICA_WINDOW,
            "never more than the window in flight"
        );
        pending.extend(more);
    }
    (received, last)
}

#[test]
fn a_long_history_is_sent_a_window_at_a_time() {
    let mut c = primary();
    c.step(0, Input::Connected(1));
    submit(&mut c, 1, 5000);
    let history = c.history_len();
    assert!(history >= 5000);

    c.step(0, Input::Connected(2));
    backup_proves(&mut c, 2);
    let out = c.step(
        0,
        Input::Received(
            2,
            Dialect::Native,
            native("backup", Message::Follow { after: 0 }),
        ),
    );
    let first = replicas(&out, 2);
    assert_eq!(first.len() as u64, REPLICA_WINDOW);
    let (received, _) = ack_all(&mut c, 2, first);
    assert_eq!(received, (0..history).collect::<Vec<_>>());
}

#[test]
fn a_burst_of_events_is_sent_a_window_at_a_time_and_replies_wait_for_all_of_it() {
    let mut c = primary_with_backup_and_client();
    let before = c.history_len();
    let out = submit(&mut c, 1, 3000);
    let first = replicas(&out, 2);
    assert_eq!(first.len() as u64, REPLICA_WINDOW);
    // Synchronous replication: the client hears nothing until the backup has every event.
    let accepted = |outs: &[Output]| {
        outs.iter().any(|o| {
            matches!(o, Output::Send(1, env) if matches!(env.message, Message::Accepted { .. }))
        })
    };
    assert!(!accepted(&out));
    let (received, last) = ack_all(&mut c, 2, first);
    assert_eq!(received, (before..c.history_len()).collect::<Vec<_>>());
    // The last acknowledgement let the reply out.
    assert!(accepted(&last));
}

#[test]
fn a_large_submission_is_acknowledged_in_a_short_line() {
    use tcluster::protocol::frame::MAX_LINE;
    use tcluster::protocol::message::{ACCEPTED_LISTED, JobId, accepted_ids};
    let mut c = Coordinator::new(CoordinatorConfig::for_tests("coordinator"));
    c.step(0, Input::Connected(1));
    let out = submit(&mut c, 1, 100_000);
    let reply = out
        .iter()
        .find_map(|o| match o {
            Output::Send(1, env) => Some(env),
            _ => None,
        })
        .expect("a reply");
    let Message::Accepted { jobs, last } = &reply.message else {
        panic!("{reply:?}");
    };
    assert_eq!(jobs.len(), ACCEPTED_LISTED);
    assert_eq!(*last, Some(JobId(100_000)));
    assert!(
        reply.to_json().len() < MAX_LINE,
        "the reply fits in one line"
    );
    let all = accepted_ids(jobs, *last);
    assert_eq!(all.len(), 100_000);
    assert_eq!((all[0], all[99_999]), (JobId(1), JobId(100_000)));
}

/// A client that submits and closes its side at once (`echo … | nc`) is still told `accepted`:
/// with a sync backup the reply waits for the backup, and the close of the client's connection
/// waits behind it.
#[test]
fn a_client_gone_before_its_reply_is_released_still_gets_it_first() {
    let mut c = primary_with_backup_and_client();
    let first = replicas(&submit(&mut c, 1, 1), 2);
    let gone = c.step(0, Input::Disconnected(1));
    assert!(
        !gone.iter().any(|o| matches!(o, Output::Close(1))),
        "the close waits behind the held reply: {gone:?}"
    );
    let (_, last) = ack_all(&mut c, 2, first);
    let to_client: Vec<&Output> = last
        .iter()
        .filter(|o| matches!(o, Output::Send(1, _) | Output::Close(1)))
        .collect();
    assert!(
        matches!(
            to_client[..],
            [Output::Send(1, env), Output::Close(1)] if matches!(env.message, Message::Accepted { .. })
        ),
        "{to_client:?}"
    );
}
