//! Nothing a coordinator accepts is too big to pass on: a result at the limit is kept whole and
//! every line that carries it (the replica, the `job_info`) fits the frame limit; one byte over,
//! it is cut and marked; a job list too long for one line comes in pages.

use tcluster::protocol::Dialect;
use tcluster::protocol::frame::MAX_LINE;
use tcluster::protocol::message::{Envelope, JobId, MAX_RESULT, Message, fit_result};
use tcluster::role::coordinator::{Coordinator, CoordinatorConfig, Input, Output};

fn native(from: &str, message: Message) -> Envelope {
    Envelope {
        from: from.into(),
        clock: 0,
        term: None,
        message,
    }
}

fn json(text: &str) -> Envelope {
    tcluster::protocol::decode(Dialect::Native, text, "").unwrap()
}

/// Every line the coordinator sends, encoded as the wire carries it.
fn lines(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(_, env) => Some(env.to_json()),
            Output::Event(event) => Some(
                native(
                    "coordinator",
                    Message::Replica {
                        seq: 0,
                        event: event.clone(),
                    },
                )
                .to_json(),
            ),
            _ => None,
        })
        .collect()
}

/// A coordinator with one worker running JOB-1 (data of the longest kind accepted).
fn running_job() -> Coordinator {
    let mut c = Coordinator::new(CoordinatorConfig::for_tests("coordinator"));
    c.step(0, Input::Connected(1));
    c.step(
        0,
        Input::Received(
            1,
            Dialect::Native,
            json(r#"{"type":"register","from":"w","slots":1}"#),
        ),
    );
    c.step(0, Input::Connected(9));
    let data = format!("echo {}", "\\\"".repeat(1000));
    let submit = native(
        "client",
        Message::Submit {
            data,
            count: 1,
            priority: 0,
            token: None,
            notify: false,
        },
    );
    c.step(0, Input::Received(9, Dialect::Native, submit));
    c
}

fn finish(c: &mut Coordinator, result: String) -> Vec<Output> {
    let done = native(
        "w",
        Message::JobDone {
            job: JobId(1),
            result,
            attempt: Some(1),
        },
    );
    let mut out = c.step(0, Input::Received(1, Dialect::Native, done));
    let ask = native(
        "client",
        Message::Status {
            job: Some(JobId(1)),
        },
    );
    out.extend(c.step(0, Input::Received(9, Dialect::Native, ask)));
    out
}

fn kept_result(outputs: &[Output]) -> String {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::Send(_, env) => match &env.message {
                Message::JobInfo { job } => job.result.clone(),
                _ => None,
            },
            _ => None,
        })
        .expect("a job_info")
}

#[test]
fn a_result_at_the_limit_is_kept_whole_and_fits_every_line() {
    // Control characters take six bytes each in JSON: the limit counts them that way.
    let result = "\u{1}".repeat(MAX_RESULT / 6);
    let mut c = running_job();
    let out = finish(&mut c, result.clone());
    assert_eq!(kept_result(&out), result);
    for line in lines(&out) {
        assert!(line.len() < MAX_LINE, "a line of {} bytes", line.len());
    }
}

#[test]
fn a_result_one_byte_over_is_cut_and_says_so() {
    let result = "x".repeat(MAX_RESULT + 1);
    let mut c = running_job();
    let out = finish(&mut c, result);
    let kept = kept_result(&out);
    assert!(kept.ends_with(&format!("(cut: {} bytes in all)", MAX_RESULT + 1)));
    assert!(serde_json::to_string(&kept).unwrap().len() <= MAX_RESULT + 2);
    for line in lines(&out) {
        assert!(line.len() < MAX_LINE, "a line of {} bytes", line.len());
    }
    // The cut never splits a character.
    let wide = "é".repeat(MAX_RESULT);
    assert!(fit_result(wide).starts_with("éé"));
}

#[test]
fn a_long_job_list_comes_in_pages_that_each_fit_a_line() {
    let mut c = Coordinator::new(CoordinatorConfig::for_tests("coordinator"));
    c.step(0, Input::Connected(9));
    let data = format!("echo {}", "y".repeat(4000));
    let submit = native(
        "client",
        Message::Submit {
            data,
            count: 100,
            priority: 0,
            token: None,
            notify: false,
        },
    );
    c.step(0, Input::Received(9, Dialect::Native, submit));
    let mut before = None;
    let mut seen = Vec::new();
    loop {
        let ask = native(
            "client",
            Message::Jobs {
                state: None,
                limit: None,
                before,
            },
        );
        let out = c.step(0, Input::Received(9, Dialect::Native, ask));
        let (line, jobs, next) = out
            .iter()
            .find_map(|o| match o {
                Output::Send(_, env) => match &env.message {
                    Message::JobList { jobs, before, .. } => {
                        Some((env.to_json(), jobs.clone(), *before))
                    }
                    _ => None,
                },
                _ => None,
            })
            .expect("a job_list");
        assert!(line.len() < MAX_LINE, "a page of {} bytes", line.len());
        assert!(!jobs.is_empty());
        let mut ids: Vec<u64> = jobs.iter().map(|j| j.id.0).collect();
        ids.append(&mut seen);
        seen = ids;
        match next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (1..=100).collect::<Vec<_>>(),
        "every job once, in order"
    );
}

/// What the coordinator sent on `conn`.
fn sent(outputs: &[Output], conn: u64) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(c, env) if *c == conn => Some(env.message.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn subscribers_get_a_quarter_of_the_table_and_workers_still_get_in() {
    let mut config = CoordinatorConfig::for_tests("coordinator");
    config.max_connections = 8;
    let mut c = Coordinator::new(config);
    for conn in 1..=8 {
        c.step(0, Input::Connected(conn));
        let out = c.step(
            0,
            Input::Received(conn, Dialect::Native, json(r#"{"type":"subscribe"}"#)),
        );
        let refused = sent(&out, conn)
            .iter()
            .any(|m| matches!(m, Message::Error { message } if message.contains("too many subscribers (at most 2)")));
        assert_eq!(refused, conn > 2, "connection {conn}");
    }
    // The table is full, but the refused ones are ordinary clients: a worker takes one's place.
    let made_room = c.step(0, Input::Connected(9));
    assert!(
        made_room.contains(&Output::Close(3)),
        "the oldest idle client made room: {made_room:?}"
    );
    let out = c.step(
        0,
        Input::Received(
            9,
            Dialect::Native,
            json(r#"{"type":"register","from":"w","slots":1}"#),
        ),
    );
    assert!(
        sent(&out, 9)
            .iter()
            .any(|m| matches!(m, Message::Registered { .. })),
        "{out:?}"
    );
}

#[test]
fn open_jobs_are_bounded_with_a_clear_refusal() {
    use tcluster::role::coordinator::MAX_OPEN_JOBS;
    let mut c = Coordinator::new(CoordinatorConfig::for_tests("coordinator"));
    c.step(0, Input::Connected(9));
    let submit = |count: u32| {
        json(&format!(
            r#"{{"type":"submit","data":"sleep 1s","count":{count}}}"#
        ))
    };
    let out = c.step(
        0,
        Input::Received(9, Dialect::Native, submit(MAX_OPEN_JOBS as u32)),
    );
    assert!(matches!(sent(&out, 9)[..], [Message::Accepted { .. }]));
    let out = c.step(0, Input::Received(9, Dialect::Native, submit(1)));
    let [Message::Error { message }] = &sent(&out, 9)[..] else {
        panic!("{out:?}");
    };
    assert!(message.starts_with("the queue is full"), "{message}");
    assert_eq!(c.state().jobs.len(), MAX_OPEN_JOBS);
    assert_eq!(c.status_report().refused.limits, 1);
}
