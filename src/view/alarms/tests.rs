//! The checker on crafted streams: each kind raised once with its evidence, and none raised by
//! what a healthy cluster says (replicas on a backup's stream, a failover, a history read again).

use super::*;
use crate::protocol::message::JobId;

fn event(clock: u64, kind: EventKind) -> ClusterEvent {
    ClusterEvent {
        at_ms: clock,
        clock,
        kind,
    }
}

fn submitted(clock: u64, job: u64, data: &str) -> ClusterEvent {
    event(
        clock,
        EventKind::JobSubmitted {
            job: JobId(job),
            data: data.into(),
            priority: 0,
            by: "console".into(),
        },
    )
}

fn takeover(clock: u64, by: &str, term: u64) -> ClusterEvent {
    event(
        clock,
        EventKind::Takeover {
            coordinator: by.into(),
            term,
            reason: "test".into(),
        },
    )
}

fn kinds(alarms: &[Alarm]) -> Vec<AlarmKind> {
    alarms.iter().map(|a| a.kind).collect()
}

#[test]
fn replicas_a_failover_and_a_history_read_again_raise_nothing() {
    let mut c = Checker::default();
    let mut all = Vec::new();
    for e in [submitted(1, 1, "a"), submitted(2, 2, "b")] {
        all.extend(c.stream_event(10, "m1", &e));
        // The backup republishes the same events.
        all.extend(c.stream_event(11, "m2", &e));
    }
    // m1 dies; m2 takes over in term 2 and accepts JOB-3.
    all.extend(c.stream_event(20, "m2", &takeover(3, "m2", 2)));
    all.extend(c.stream_event(21, "m2", &submitted(4, 3, "c")));
    // A new subscription to m2 reads its history again.
    let history = [
        submitted(1, 1, "a"),
        submitted(2, 2, "b"),
        takeover(3, "m2", 2),
    ];
    all.extend(c.history(30, "m2", &history));
    all.extend(c.stream_event(31, "m2", &submitted(5, 4, "d")));
    assert!(all.is_empty(), "{all:?}");
    assert_eq!(c.alarm_count(), 0);
}

#[test]
fn two_masters_giving_one_job_id_to_two_jobs_is_split_brain() {
    let mut c = Checker::default();
    // m1 holds every reply for a backup that does not acknowledge: what it takes meanwhile
    // was never accepted, and another master giving that id to another job is no split brain.
    c.stream_event(1, "m1", &submitted(3, 6, "held"));
    assert!(c.stream_event(1, "m2", &submitted(4, 6, "echo")).is_empty());
    // The subscription to m1 began with its history: m2 follows it.
    let follows = event(
        1,
        EventKind::BackupFollows {
            backup: "m2".into(),
            after: 0,
        },
    );
    c.history(1, "m1", std::slice::from_ref(&follows));
    // Then m1 drops its backup and goes on alone: now it accepts what only it knows.
    let lost = event(
        4,
        EventKind::BackupLost {
            backup: "m2".into(),
            reason: "test".into(),
        },
    );
    assert!(c.stream_event(1, "m1", &lost).is_empty());
    // A new subscription reads m1's history again, the first follow included: that changes
    // nothing.
    c.history(1, "m1", &[follows, lost]);
    // m2 takes over (term 2) while m1, alone, still accepts.
    assert!(c.stream_event(1, "m2", &takeover(6, "m2", 2)).is_empty());
    c.stream_event(1, "m1", &submitted(5, 7, "sleep 1s"));
    let alarms = c.stream_event(2, "m2", &submitted(9, 7, "echo hi"));
    assert_eq!(kinds(&alarms), vec![AlarmKind::SplitBrain]);
    assert_eq!(alarms[0].nodes, vec!["m1".to_string(), "m2".to_string()]);
    assert!(
        alarms[0].text.contains("two masters accepted jobs at once"),
        "{}",
        alarms[0].text
    );
    // Said once for the pair, however many ids they share.
    assert!(
        c.stream_event(3, "m2", &submitted(9, 7, "echo hi"))
            .is_empty()
    );
    c.stream_event(4, "m1", &submitted(10, 8, "sleep 2s"));
    assert!(
        c.stream_event(5, "m2", &submitted(11, 8, "echo 2"))
            .is_empty()
    );
    // m1 steps down and replays m2's history: m2's JOB-7 on m1's stream is a replica.
    assert!(
        c.stream_event(6, "m1", &submitted(9, 7, "echo hi"))
            .is_empty()
    );
    assert_eq!(c.alarm_count(), 1);
}

#[test]
fn a_job_lost_with_its_dead_primary_under_async_replication_is_no_split_brain() {
    let mut c = Checker {
        async_replication: true,
        ..Checker::default()
    };
    // m1 accepted JOB-4 and died before replicating it; m2 took over and gave JOB-4 to another.
    c.stream_event(1, "m1", &submitted(5, 4, "sleep 1s"));
    c.stream_event(2, "m2", &takeover(6, "m2", 2));
    assert!(c.stream_event(3, "m2", &submitted(7, 4, "echo")).is_empty());
}

#[test]
fn two_takeovers_in_one_term_is_split_brain() {
    let mut c = Checker::default();
    assert!(c.stream_event(1, "m2", &takeover(4, "m2", 2)).is_empty());
    let alarms = c.stream_event(2, "m3", &takeover(6, "m3", 2));
    assert_eq!(kinds(&alarms), vec![AlarmKind::SplitBrain]);
    assert!(alarms[0].text.contains("term 2"), "{}", alarms[0].text);
}

#[test]
fn a_term_or_a_clock_going_back_is_an_alarm() {
    let mut c = Checker::default();
    c.stream_event(1, "m1", &takeover(10, "m1", 3));
    // The same takeover again (a replica, a history read again) is not news.
    assert!(c.stream_event(1, "m2", &takeover(10, "m1", 3)).is_empty());
    let alarms = c.stream_event(2, "m1", &takeover(11, "m1", 2));
    assert_eq!(kinds(&alarms), vec![AlarmKind::TermBackwards]);
    // The reading: the primary's clock and the term only go up.
    let mut view = ClusterView::new("m1", 3, false);
    assert!(c.applied(3, &submitted(20, 1, "x"), true, &view).is_empty());
    let alarms = c.applied(4, &submitted(12, 2, "y"), true, &view);
    assert_eq!(kinds(&alarms), vec![AlarmKind::ClockBackwards]);
    assert!(alarms[0].text.contains("12 after 20"), "{}", alarms[0].text);
    view.term = 2;
    let alarms = c.applied(5, &submitted(21, 3, "z"), true, &view);
    assert_eq!(kinds(&alarms), vec![AlarmKind::TermBackwards]);
}

#[test]
fn a_master_that_steps_down_and_replays_its_new_primarys_history_raises_nothing() {
    let mut c = Checker::default();
    // m2 took over in term 4 long ago; m3 takes over in term 5; m2 steps down and replays
    // m3's history from its first event (a takeover by m2 in term 2, then 4, then m3's 5).
    let history = [
        takeover(3, "m2", 2),
        takeover(9, "m2", 4),
        takeover(20, "m3", 5),
    ];
    let mut all = Vec::new();
    for e in &history {
        all.extend(c.stream_event(1, "m2", e));
        all.extend(c.stream_event(1, "m3", e));
    }
    all.extend(c.history(2, "m2", &history));
    // The reading starts over from m3, whose clock is below what m2's reading had reached.
    let mut view = ClusterView::new("m2", 4, false);
    all.extend(c.applied(3, &submitted(50, 1, "a"), true, &view));
    view = ClusterView::new("m3", 5, false);
    view.state.last_clock = 30;
    all.extend(c.after_failover(4, &view, &[]));
    all.extend(c.applied(5, &submitted(31, 2, "b"), true, &view));
    // Another master's election event, read by the reading too, has its own clock.
    all.extend(c.applied(6, &takeover(7, "m1", 6), false, &view));
    all.extend(c.applied(7, &submitted(8, 3, "c"), true, &view));
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn a_second_result_is_a_warning_and_too_many_jobs_on_a_worker_an_alarm() {
    let mut c = Checker::default();
    let mut view = ClusterView::new("m1", 1, false);
    let dup = event(
        5,
        EventKind::DuplicateResult {
            job: JobId(3),
            worker: "w1".into(),
        },
    );
    let alarms = c.applied(5, &dup, true, &view);
    assert_eq!(kinds(&alarms), vec![AlarmKind::DoubleRun]);
    assert!(alarms[0].warning);
    assert_eq!(c.alarm_count(), 0, "a warning is not an alarm");
    // A worker with one slot holding two jobs.
    view.state.workers.insert(
        "w1".into(),
        crate::cluster::worker::WorkerRecord {
            slots: 1,
            classic: false,
            health: crate::protocol::message::Health::Healthy,
            running: [JobId(1), JobId(2)].into_iter().collect(),
            done: 0,
            lent_to: None,
            owner: None,
        },
    );
    let assigned = event(
        6,
        EventKind::JobAssigned {
            job: JobId(2),
            worker: "w1".into(),
            attempt: 1,
        },
    );
    let alarms = c.applied(6, &assigned, true, &view);
    assert_eq!(kinds(&alarms), vec![AlarmKind::OverSlots]);
    assert_eq!(alarms[0].text, "w1 holds 2 jobs with 1 slots");
}

#[test]
fn an_acknowledged_job_the_new_primary_does_not_know_is_lost() {
    let mut c = Checker::default();
    let view = ClusterView::new("m2", 2, false);
    let alarms = c.after_failover(9, &view, &[JobId(4)]);
    assert_eq!(kinds(&alarms), vec![AlarmKind::LostJob]);
    assert!(alarms[0].text.contains("JOB-4"), "{}", alarms[0].text);
}

#[test]
fn chat_servers_apart_long_after_the_links_are_whole_have_diverged() {
    let mut c = Checker::default();
    let apart: BTreeMap<String, u64> = [("c1".to_string(), 10), ("c2".to_string(), 7)].into();
    let agree: BTreeMap<String, u64> = [("c1".to_string(), 10), ("c2".to_string(), 10)].into();
    // Apart while cut: nothing; apart briefly once whole: nothing.
    assert!(c.chat(0, &apart, false).is_empty());
    assert!(c.chat(1_000, &apart, true).is_empty());
    assert!(c.chat(2_000, &agree, true).is_empty());
    assert!(c.chat(3_000, &apart, true).is_empty());
    assert!(
        c.chat(3_000 + CHAT_DIVERGED_MS - 1, &apart, true)
            .is_empty()
    );
    let alarms = c.chat(3_000 + CHAT_DIVERGED_MS, &apart, true);
    assert_eq!(kinds(&alarms), vec![AlarmKind::ChatDiverged]);
    assert_eq!(alarms[0].nodes, vec!["c1".to_string(), "c2".to_string()]);
}
