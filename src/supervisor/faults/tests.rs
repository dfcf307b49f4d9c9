//! Every action gets a row that ends: detection, recovery (never before detection), or an
//! outcome.

use super::*;

fn ev(kind: EventKind) -> ClusterEvent {
    ClusterEvent {
        at_ms: 0,
        clock: 0,
        kind,
    }
}

fn dead(worker: &str) -> ClusterEvent {
    ev(EventKind::WorkerDead {
        worker: worker.into(),
        reason: "x".into(),
    })
}

#[test]
fn detection_then_recovery_when_the_requeued_jobs_run_again() {
    let mut t = FaultTracker::default();
    let (n, out) = t.record(1000, "kill", "w2", Watch::Worker("w2".into()));
    assert!(out.is_empty());
    assert!(t.observe(1100, "c", &dead("w1")).is_empty());
    let out = t.observe(1300, "c", &dead("w2"));
    assert!(matches!(out[..], [TimelineKind::Detected { fault, after_ms: 300, .. }] if fault == n));
    for job in [1, 2] {
        t.observe(
            1300,
            "c",
            &ev(EventKind::JobRequeued {
                job: JobId(job),
                worker: "w2".into(),
                reason: "r".into(),
            }),
        );
    }
    t.observe(
        1300,
        "c",
        &ev(EventKind::JobAssigned {
            job: JobId(1),
            worker: "w1".into(),
            attempt: 2,
        }),
    );
    assert!(
        t.observe(
            1350,
            "c",
            &ev(EventKind::JobStarted {
                job: JobId(1),
                worker: "w1".into()
            })
        )
        .is_empty()
    );
    let out = t.observe(
        1400,
        "c",
        &ev(EventKind::JobStarted {
            job: JobId(2),
            worker: "w3".into(),
        }),
    );
    let TimelineKind::Recovered {
        after_ms: 400,
        moved,
        ..
    } = &out[0]
    else {
        panic!("{out:?}");
    };
    assert_eq!(
        moved,
        &vec![(JobId(1), "w1".to_string()), (JobId(2), "w3".to_string())]
    );
    let f = &t.faults()[0];
    assert_eq!(
        (f.detected_ms, f.detected_by.as_deref(), f.recovered_ms),
        (Some(1300), Some("c"), Some(1400))
    );
}

#[test]
fn a_newer_fault_on_the_same_worker_takes_over_the_watch() {
    let mut t = FaultTracker::default();
    t.record(1000, "pause", "w", Watch::Worker("w".into()));
    t.record(5000, "partition", "c <-> w", Watch::Worker("w".into()));
    t.observe(6500, "c", &dead("w"));
    assert_eq!(t.faults()[0].detected_ms, None, "the pause did not kill it");
    assert_eq!(t.faults()[1].detected_ms, Some(6500));
}

#[test]
fn a_worker_without_jobs_recovers_when_detected() {
    let mut t = FaultTracker::default();
    t.record(1000, "pause", "w", Watch::Worker("w".into()));
    t.observe(2500, "c", &dead("w"));
    assert!(t.settle(2550).is_empty(), "the burst may still be arriving");
    let out = t.settle(2700);
    assert!(matches!(
        out[..],
        [TimelineKind::Recovered { after_ms: 1500, .. }]
    ));
    assert_eq!(t.faults()[0].recovered_ms, Some(2500));
    assert!(t.settle(3000).is_empty(), "reported once");
}

#[test]
fn a_fault_on_the_primary_is_detected_by_the_first_election_and_recovered_by_the_takeover() {
    let mut t = FaultTracker::default();
    t.record(1000, "pause", "m1", Watch::Primary("m1".into()));
    // m1's own election (it is the target) notices nothing.
    assert!(
        t.observe(
            1100,
            "m1",
            &ev(EventKind::ElectionStarted {
                candidate: "m1".into(),
                reason: "r".into()
            })
        )
        .is_empty()
    );
    let out = t.observe(
        2171,
        "m2",
        &ev(EventKind::ElectionStarted {
            candidate: "m2".into(),
            reason: "silent".into(),
        }),
    );
    assert!(matches!(
        &out[..],
        [TimelineKind::Detected { by, after_ms: 1171, .. }] if by == "m2"
    ));
    let out = t.observe(
        3779,
        "m2",
        &ev(EventKind::Takeover {
            coordinator: "m2".into(),
            term: 2,
            reason: "r".into(),
        }),
    );
    assert!(matches!(
        out[..],
        [TimelineKind::Recovered { after_ms: 2779, .. }]
    ));
}

#[test]
fn recovery_is_never_before_detection() {
    let mut t = FaultTracker::default();
    t.record(1000, "kill", "w", Watch::Worker("w".into()));
    t.observe(2585, "c", &dead("w"));
    // The settle comes with a time before the detection (clocks of two tasks).
    let out = t.settle(2700);
    let f = &t.faults()[0];
    assert!(f.recovered_ms >= f.detected_ms, "{f:?} {out:?}");
}

#[test]
fn actions_with_nothing_to_detect_say_what_came_of_them() {
    let mut t = FaultTracker::default();
    let (_, out) = t.record(
        100,
        "latency",
        "c <-> w",
        Watch::Done("c ↔ w: 300 ms".into()),
    );
    assert!(matches!(
        &out[..],
        [TimelineKind::Outcome { text, settled: true, .. }] if text == "c ↔ w: 300 ms"
    ));
    let (n, out) = t.record(200, "restart", "w", Watch::Up("w".into()));
    assert!(out.is_empty());
    let out = t.observe(
        620,
        "c",
        &ev(EventKind::WorkerRejoined {
            worker: "w".into(),
            slots: 2,
        }),
    );
    assert!(matches!(
        &out[..],
        [TimelineKind::Outcome { fault, text, .. }] if *fault == n && text == "up again after 420 ms"
    ));
}

#[test]
fn a_repair_before_detection_ends_the_row_and_a_heal_waits_for_rejoins() {
    let mut t = FaultTracker::default();
    t.record(100, "partition", "c <-> w", Watch::Worker("w".into()));
    let out = t.repaired(&["c".to_string(), "w".to_string()]);
    assert!(matches!(
        &out[..],
        [TimelineKind::Outcome { text, settled: true, .. }] if text.contains("before the cluster noticed")
    ));
    assert!(
        t.observe(900, "c", &dead("w")).is_empty(),
        "no longer watched"
    );

    let (n, _) = t.record(1000, "heal", "every link", Watch::Rejoin(vec!["w".into()]));
    let out = t.observe(
        1250,
        "c",
        &ev(EventKind::WorkerRejoined {
            worker: "w".into(),
            slots: 1,
        }),
    );
    assert!(matches!(
        &out[..],
        [TimelineKind::Outcome { fault, text, settled: true, .. }]
            if *fault == n && text == "w rejoined after 250 ms"
    ));
}

#[test]
fn a_partition_between_masters_healed_without_a_takeover_ends_its_row() {
    let mut t = FaultTracker::default();
    t.record(
        0,
        "partition",
        "m1 <-> m2",
        Watch::Masters(vec!["m1".into(), "m2".into()]),
    );
    t.observe(
        760,
        "m2",
        &ev(EventKind::ElectionStarted {
            candidate: "m2".into(),
            reason: "silent".into(),
        }),
    );
    assert_eq!(t.faults()[0].detected_ms, Some(760));
    let out = t.repaired(&["m1".to_string(), "m2".to_string()]);
    assert!(matches!(
        &out[..],
        [TimelineKind::Outcome { settled: true, .. }]
    ));
}
