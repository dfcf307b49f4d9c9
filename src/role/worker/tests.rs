//! The worker role on its own: terms, clocks, results kept until acknowledged, moves.
use super::*;

fn worker() -> Worker {
    Worker::new(WorkerConfig {
        name: "w".into(),
        slots: 1,
        heartbeat_ms: 100,
        cluster: "default".into(),
    })
}

fn from_coordinator(term: u64, message: Message) -> Input {
    Input::Received(Envelope {
        from: "c".into(),
        clock: 10,
        term: Some(term),
        message,
    })
}

fn sent(out: &[Output]) -> Vec<&Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(e) => Some(&e.message),
            _ => None,
        })
        .collect()
}

#[test]
fn with_a_udp_token_heartbeats_are_datagrams_and_a_new_connection_starts_without_one() {
    let mut w = worker();
    w.step(0, Input::Connected);
    let registered = Message::Registered {
        heartbeat_ms: 100,
        udp_token: Some("abc123".into()),
    };
    w.step(1, from_coordinator(1, registered));
    let out = w.step(200, Input::Tick);
    let [Output::Datagram(env)] = out.as_slice() else {
        panic!("one datagram: {out:?}");
    };
    assert_eq!(
        env.message,
        Message::Heartbeat {
            running: Some(vec![]),
            token: Some("abc123".into())
        }
    );
    // Reconnected: heartbeats go on the connection until a new token comes.
    w.step(300, Input::Disconnected);
    w.step(301, Input::Connected);
    let out = w.step(500, Input::Tick);
    assert!(
        sent(&out)
            .iter()
            .any(|m| matches!(m, Message::Heartbeat { token: None, .. })),
        "{out:?}"
    );
}

#[test]
fn a_clock_poll_is_answered_with_the_wall_clock_and_an_adjustment_is_carried_out() {
    let mut w = worker();
    w.step(0, Input::Connected);
    w.set_wall_clock(1_700_000_000_123);
    let out = w.step(5, from_coordinator(1, Message::ClockPoll { round: 4 }));
    assert_eq!(
        sent(&out),
        [&Message::ClockReading {
            round: 4,
            clock_ms: 1_700_000_000_123
        }]
    );
    let adjust = |ms| {
        from_coordinator(
            1,
            Message::ClockAdjust {
                round: 4,
                adjust_ms: ms,
            },
        )
    };
    assert_eq!(w.step(6, adjust(-250)), [Output::AdjustClock(-250)]);
    // However far a hostile coordinator says, the move stays within a day.
    let max = crate::role::coordinator::MAX_ADJUST_MS;
    assert_eq!(w.step(7, adjust(i64::MIN)), [Output::AdjustClock(-max)]);
}

#[test]
fn an_order_stamped_far_ahead_is_refused_and_the_clock_stays() {
    let mut w = worker();
    w.step(0, Input::Connected);
    let assign = Input::Received(Envelope {
        from: "c".into(),
        clock: u64::MAX,
        term: Some(1),
        message: Message::Assign {
            job: JobId(1),
            data: "x".into(),
            attempt: 1,
        },
    });
    let out = w.step(1, assign);
    assert!(!out.iter().any(|o| matches!(o, Output::Run { .. })));
    let Some(Output::Send(reply)) = out.iter().find(|o| matches!(o, Output::Send(_))) else {
        panic!("{out:?}");
    };
    assert!(
        matches!(&reply.message, Message::Error { message } if message.contains("too far ahead"))
    );
    assert!(reply.clock < 100, "the clock did not jump: {reply:?}");
}

#[test]
fn results_made_while_disconnected_are_sent_after_registering_again() {
    let mut w = worker();
    w.step(0, Input::Connected);
    let out = w.step(
        1,
        from_coordinator(
            1,
            Message::Assign {
                job: JobId(1),
                data: "x".into(),
                attempt: 1,
            },
        ),
    );
    assert!(out.contains(&Output::Run {
        job: JobId(1),
        data: "x".into()
    }));
    w.step(2, Input::Disconnected);
    assert!(
        sent(&w.step(
            3,
            Input::Finished {
                job: JobId(1),
                outcome: Ok("r".into())
            }
        ))
        .is_empty()
    );
    let out = w.step(4, Input::Connected);
    assert_eq!(
        sent(&out),
        [
            // JOB-1 is still this worker's: its result is on the way.
            &Message::Register {
                slots: 1,
                running: vec![JobId(1)],
                owner: None
            },
            &Message::JobDone {
                job: JobId(1),
                result: "r".into(),
                attempt: Some(1),
            }
        ]
    );
}

/// A worker that ran JOB-1 and sent its result, which nobody has acknowledged yet.
fn with_result_sent() -> Worker {
    let mut w = worker();
    w.step(0, Input::Connected);
    let assign = Message::Assign {
        job: JobId(1),
        data: "x".into(),
        attempt: 1,
    };
    w.step(1, from_coordinator(1, assign));
    let done = w.step(
        10,
        Input::Finished {
            job: JobId(1),
            outcome: Ok("r".into()),
        },
    );
    assert!(matches!(sent(&done)[..], [Message::JobDone { .. }]));
    w
}

#[test]
fn a_result_is_sent_again_until_acknowledged_with_growing_pauses() {
    let mut w = with_result_sent();
    let result_sends = |w: &mut Worker, at: Millis| {
        sent(&w.step(at, Input::Tick))
            .into_iter()
            .filter(|m| matches!(m, Message::JobDone { .. }))
            .count()
    };
    assert_eq!(result_sends(&mut w, 10 + RESEND_FIRST_MS - 1), 0);
    assert_eq!(result_sends(&mut w, 10 + RESEND_FIRST_MS), 1);
    // The next pause is twice as long.
    let second = 10 + RESEND_FIRST_MS;
    assert_eq!(result_sends(&mut w, second + RESEND_FIRST_MS), 0);
    assert_eq!(result_sends(&mut w, second + 2 * RESEND_FIRST_MS), 1);
    w.step(
        2_000,
        from_coordinator(
            1,
            Message::ResultAck {
                job: JobId(1),
                attempt: Some(1),
            },
        ),
    );
    assert_eq!(w.unacknowledged().count(), 0);
    assert_eq!(result_sends(&mut w, 60_000), 0);
}

#[test]
fn an_assign_for_a_job_that_ended_sends_its_result_instead_of_running_it_again() {
    let mut w = with_result_sent();
    let again = Message::Assign {
        job: JobId(1),
        data: "x".into(),
        attempt: 1,
    };
    let out = w.step(20, from_coordinator(1, again));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Run { .. })),
        "{out:?}"
    );
    assert!(
        matches!(sent(&out)[..], [Message::JobDone { .. }]),
        "{out:?}"
    );
}

#[test]
fn a_retry_runs_even_while_the_failure_of_the_run_before_is_unacknowledged() {
    let mut w = worker();
    w.step(0, Input::Connected);
    let assign = |attempt| Message::Assign {
        job: JobId(1),
        data: "x".into(),
        attempt,
    };
    w.step(1, from_coordinator(1, assign(1)));
    let failed = Input::Finished {
        job: JobId(1),
        outcome: Err("disk full".into()),
    };
    w.step(2, failed);
    let out = w.step(3, from_coordinator(1, assign(2)));
    assert!(
        out.iter().any(|o| matches!(o, Output::Run { .. })),
        "{out:?}"
    );
    // The late acknowledgement of the first run leaves the second alone.
    let late_ack = Message::ResultAck {
        job: JobId(1),
        attempt: Some(1),
    };
    w.step(4, from_coordinator(1, late_ack));
    assert_eq!(w.running().collect::<Vec<_>>(), [JobId(1)]);
}

#[test]
fn unacknowledged_results_go_to_a_new_primary_at_once() {
    let mut w = with_result_sent();
    w.step(20, Input::Disconnected);
    let out = w.step(30, Input::Connected);
    let kinds: Vec<&Message> = sent(&out);
    assert!(matches!(kinds[0], Message::Register { .. }), "{kinds:?}");
    assert!(matches!(kinds[1], Message::JobDone { .. }), "{kinds:?}");
}

#[test]
fn a_register_the_coordinator_never_got_is_sent_again_when_it_says_so() {
    let mut w = worker();
    w.step(0, Input::Connected);
    let not_registered = || {
        from_coordinator(
            1,
            Message::Error {
                message: format!("{NOT_REGISTERED}: this message is for workers"),
            },
        )
    };
    // Too soon after the first: the answer may still be on its way.
    assert!(sent(&w.step(500, not_registered())).is_empty());
    let out = w.step(1200, not_registered());
    assert!(matches!(sent(&out)[..], [Message::Register { .. }]));
    // Once a second at most, however many errors come.
    assert!(sent(&w.step(1300, not_registered())).is_empty());
}

#[test]
fn orders_from_an_older_term_are_refused() {
    let mut w = worker();
    w.step(0, Input::Connected);
    w.step(1, from_coordinator(2, Message::Pong));
    let out = w.step(
        2,
        from_coordinator(
            1,
            Message::Assign {
                job: JobId(1),
                data: "x".into(),
                attempt: 1,
            },
        ),
    );
    assert!(matches!(sent(&out)[..], [Message::Error { .. }]));
    assert_eq!(w.running().count(), 0);
}

#[test]
fn heartbeats_on_time_and_cancel_stops_a_job() {
    let mut w = worker();
    w.step(0, Input::Connected);
    assert!(sent(&w.step(50, Input::Tick)).is_empty());
    w.step(
        60,
        from_coordinator(
            1,
            Message::Assign {
                job: JobId(5),
                data: "x".into(),
                attempt: 1,
            },
        ),
    );
    let out = w.step(100, Input::Tick);
    assert_eq!(
        sent(&out),
        [&Message::Heartbeat {
            running: Some(vec![JobId(5)]),
            token: None
        }]
    );
    let out = w.step(110, from_coordinator(1, Message::Cancel { job: JobId(5) }));
    assert_eq!(out, [Output::Stop(JobId(5))]);
    // A result for a cancelled job is dropped.
    assert!(
        w.step(
            120,
            Input::Finished {
                job: JobId(5),
                outcome: Ok("late".into())
            }
        )
        .is_empty()
    );
}

fn moves(out: &[Output]) -> Vec<&Option<Lent>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Move(to) => Some(to),
            _ => None,
        })
        .collect()
}

fn redirect() -> Input {
    from_coordinator(
        1,
        Message::Redirect {
            to: "server-1".into(),
            cluster: "east".into(),
            address: "127.0.0.1:7800".into(),
        },
    )
}

#[test]
fn a_lent_worker_finishes_its_job_moves_registers_with_its_owner_and_goes_home() {
    let mut w = worker();
    w.step(0, Input::Connected);
    let assign = Message::Assign {
        job: JobId(1),
        data: "sleep 1s".into(),
        attempt: 1,
    };
    w.step(1, from_coordinator(1, assign));
    // Lent while it still runs a job: it moves only once the result is acknowledged.
    assert!(moves(&w.step(2, redirect())).is_empty());
    let done = Input::Finished {
        job: JobId(1),
        outcome: Ok("ok".into()),
    };
    assert!(moves(&w.step(3, done)).is_empty());
    let ack = Message::ResultAck {
        job: JobId(1),
        attempt: Some(1),
    };
    let out = w.step(4, from_coordinator(1, ack));
    assert_eq!(
        moves(&out),
        [&Some(Lent {
            cluster: "east".into(),
            master: "server-1".into(),
            address: "127.0.0.1:7800".into(),
        })]
    );
    // The connection it left closes: no going home for that.
    assert!(moves(&w.step(5, Input::Disconnected)).is_empty());
    // At the borrower (whose terms are its own) it introduces itself with its owner.
    let out = w.step(6, Input::Connected);
    assert!(matches!(
        sent(&out)[..],
        [Message::Register { owner: Some(owner), .. }] if owner == "default"
    ));
    w.step(
        7,
        from_coordinator(
            1,
            Message::Registered {
                heartbeat_ms: 100,
                udp_token: None,
            },
        ),
    );
    // A second redirect while lent is not obeyed.
    assert!(moves(&w.step(8, redirect())).is_empty());
    // The borrower gives it back.
    let back = Message::Return {
        to: "coordinator".into(),
        cluster: "default".into(),
        address: "127.0.0.1:7400".into(),
    };
    assert_eq!(moves(&w.step(9, from_coordinator(1, back))), [&None]);
    w.step(10, Input::Disconnected);
    let out = w.step(11, Input::Connected);
    assert!(matches!(
        sent(&out)[..],
        [Message::Register { owner: None, .. }]
    ));
}

#[test]
fn a_lent_worker_that_loses_its_borrower_stops_its_jobs_and_goes_home_at_once() {
    let mut w = worker();
    w.step(0, Input::Connected);
    w.step(1, redirect());
    w.step(2, Input::Disconnected);
    w.step(3, Input::Connected);
    let assign = Message::Assign {
        job: JobId(7),
        data: "sleep 1s".into(),
        attempt: 1,
    };
    w.step(4, from_coordinator(1, assign));
    let out = w.step(5, Input::Disconnected);
    assert_eq!(moves(&out), [&None]);
    assert!(out.contains(&Output::Stop(JobId(7))));
    assert!(w.lent().is_none());
    // A return that does not fit (it is at home) changes nothing.
    let back = Message::Return {
        to: "x".into(),
        cluster: "default".into(),
        address: "x:1".into(),
    };
    assert!(moves(&w.step(6, from_coordinator(1, back))).is_empty());
}

/// What a closure logs at `level`, as the JSON lines a node writes.
///
/// Other tests run beside it on other threads with no subscriber, and `tracing` decides once
/// per log statement, for the whole process, whether anyone listens: while only one subscriber
/// is registered, the first thread to reach a statement decides by its own, so a thread with
/// none would silence that statement here too (it happened: a failed job's `warn!` went
/// missing). A second subscriber that always listens, kept for the life of the tests, means
/// no statement is ever decided unheard; the cache is rebuilt once this closure's subscriber
/// is in place.
fn logged(level: &str, f: impl FnOnce()) -> Vec<String> {
    static ALWAYS_LISTENING: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    ALWAYS_LISTENING.get_or_init(|| tracing::Dispatch::new(tracing_subscriber::registry()));
    let lines = crate::logging::InMemory::default();
    let writer = lines.clone();
    let filter = tracing_subscriber::EnvFilter::new(format!("tcluster={level}"));
    let subscriber = crate::logging::json_lines(filter, move || writer.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f();
    });
    String::from_utf8(lines.take())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A worker given and finishing `jobs` jobs, one at a time, a millisecond apart from `at`.
fn run_jobs(w: &mut Worker, first: u64, jobs: u64, at: Millis) {
    for n in first..first + jobs {
        let assign = Message::Assign {
            job: JobId(n),
            data: "x".into(),
            attempt: 1,
        };
        w.step(at + n - first, from_coordinator(1, assign));
        let done = Input::Finished {
            job: JobId(n),
            outcome: Ok("r".into()),
        };
        w.step(at + n - first, done);
    }
}

#[test]
fn a_busy_worker_logs_a_limited_number_of_job_lines_and_says_how_many_it_left_out() {
    let count = |lines: &[String], what: &str| lines.iter().filter(|l| l.contains(what)).count();
    let lines = logged("info", || {
        let mut w = worker();
        w.step(0, Input::Connected);
        // 100 jobs in a tenth of a second: 200 lines asked for.
        run_jobs(&mut w, 1, 100, 10);
        // The second is over: the next tick says what was left out.
        w.step(1_500, Input::Tick);
        // A quiet second after it logs every job again.
        run_jobs(&mut w, 101, 3, 1_600);
        // And nothing was left out in it: no second summary.
        w.step(3_000, Input::Tick);
    });
    let limit = JOB_LINES_PER_SECOND as usize;
    let job_lines = count(&lines, "\"job assigned\"") + count(&lines, "\"job done\"");
    assert_eq!(job_lines, limit + 6, "{lines:#?}");
    let busy: Vec<_> = lines.iter().filter(|l| l.contains("busy:")).collect();
    assert_eq!(busy.len(), 1, "{lines:#?}");
    let left_out = 200 - limit;
    assert!(
        busy[0].contains(&format!(
            "busy: {left_out} job lines left out in the last second"
        )),
        "{busy:?}"
    );
    // A failed job is always logged, however busy the worker.
    let lines = logged("info", || {
        let mut w = worker();
        w.step(0, Input::Connected);
        run_jobs(&mut w, 1, 100, 10);
        let assign = Message::Assign {
            job: JobId(500),
            data: "x".into(),
            attempt: 1,
        };
        w.step(200, from_coordinator(1, assign));
        let failed = Input::Finished {
            job: JobId(500),
            outcome: Err("boom".into()),
        };
        w.step(200, failed);
    });
    assert_eq!(count(&lines, "\"job failed\""), 1, "{lines:#?}");
    // At DEBUG, every job is logged.
    let lines = logged("debug", || {
        let mut w = worker();
        w.step(0, Input::Connected);
        run_jobs(&mut w, 1, 100, 10);
        w.step(1_500, Input::Tick);
    });
    assert_eq!(count(&lines, "\"job done\""), 100);
    assert_eq!(count(&lines, "busy:"), 0);
}
