//! The reading: verdicts follow the cluster's events (not the faults injected), roles follow
//! takeovers, a resync starts over from a history, and job notes keep what happened.

use super::*;
use crate::view::node::Faults;

fn ev(kind: EventKind) -> ClusterEvent {
    ClusterEvent {
        at_ms: 0,
        clock: 0,
        kind,
    }
}

fn node(name: &str, kind: &str, process: Process) -> NodeStatus {
    NodeStatus {
        name: name.into(),
        kind: kind.into(),
        process,
        pid: None,
        address: None,
        faults: Faults::default(),
        cluster: "default".into(),
    }
}

fn joined(worker: &str) -> EventKind {
    EventKind::WorkerJoined {
        worker: worker.into(),
        slots: 2,
        classic: false,
    }
}

#[test]
fn a_paused_worker_reads_suspect_then_dead_from_the_clusters_events_with_paused_as_a_tag() {
    let mut view = ClusterView::new("coordinator", 1, false);
    view.apply(100, &ev(joined("w")));
    let mut w = node("w", "worker", Process::Running);
    w.faults.paused = true;
    // Paused, but the cluster has not noticed: it is still healthy in the cluster's eyes.
    assert_eq!(view.verdict(&w, 200), Verdict::Healthy);
    assert_eq!(w.faults.tags(), vec!["paused"]);
    view.apply(
        900,
        &ev(EventKind::WorkerSuspect {
            worker: "w".into(),
            silent_ms: 780,
        }),
    );
    assert_eq!(view.verdict(&w, 900), Verdict::Suspect);
    view.apply(
        1600,
        &ev(EventKind::WorkerDead {
            worker: "w".into(),
            reason: "no heartbeat for 1536ms".into(),
        }),
    );
    assert_eq!(view.verdict(&w, 1600), Verdict::Dead);
    assert_eq!(view.concluded("w").unwrap().why, "no heartbeat for 1536ms");
    // Resumed, it comes back: `rejoined` for a while, then healthy.
    w.faults.paused = false;
    view.apply(
        3000,
        &ev(EventKind::WorkerRejoined {
            worker: "w".into(),
            slots: 2,
        }),
    );
    assert_eq!(view.verdict(&w, 3100), Verdict::Rejoined);
    assert_eq!(view.verdict(&w, 3000 + REJOINED_MS), Verdict::Healthy);
}

#[test]
fn a_worker_the_cluster_does_not_know_yet_reads_from_its_process() {
    let view = ClusterView::new("c", 1, false);
    assert_eq!(
        view.verdict(&node("w", "worker", Process::Starting), 0),
        Verdict::Starting
    );
    assert_eq!(
        view.verdict(&node("w", "worker", Process::Exited), 0),
        Verdict::Dead
    );
    assert_eq!(
        view.verdict(&node("w", "worker", Process::Stopped), 0),
        Verdict::Stopped
    );
    assert_eq!(
        view.verdict(&node("chat-1", "chat", Process::Running), 0),
        Verdict::Healthy
    );
}

#[test]
fn a_takeover_makes_the_old_primary_dead_and_was_primary_until_it_follows_again() {
    let mut view = ClusterView::new("coordinator", 1, false);
    let old = node("coordinator", "master", Process::Exited);
    let backup = node("backup", "master", Process::Running);
    assert_eq!(view.role(&old), Role::Primary);
    assert_eq!(view.role(&backup), Role::Backup);
    view.apply(
        10,
        &ev(EventKind::ElectionStarted {
            candidate: "backup".into(),
            reason: "the primary's connection closed".into(),
        }),
    );
    assert_eq!(
        view.verdict(&node("coordinator", "master", Process::Running), 10),
        Verdict::Suspect,
        "a backup lost it"
    );
    let takeover = ev(EventKind::Takeover {
        coordinator: "backup".into(),
        term: 2,
        reason: "the primary's connection closed".into(),
    });
    assert!(view.accepts("backup", &takeover));
    view.apply(13, &takeover);
    assert_eq!((view.primary.as_str(), view.term), ("backup", 2));
    assert_eq!(view.role(&old), Role::WasPrimary);
    assert_eq!(view.verdict(&old, 20), Verdict::Dead);
    assert_eq!(view.role(&backup), Role::Primary);
    // Events from the old primary no longer count; the new primary's do.
    assert!(!view.accepts("coordinator", &ev(joined("w"))));
    assert!(view.accepts("backup", &ev(joined("w"))));
    // It comes back and follows: a backup now.
    let back = node("coordinator", "master", Process::Running);
    view.apply(
        5000,
        &ev(EventKind::BackupFollows {
            backup: "coordinator".into(),
            after: 0,
        }),
    );
    assert_eq!(view.role(&back), Role::Backup);
    assert_eq!(view.verdict(&back, 5001), Verdict::Rejoined);
}

#[test]
fn a_suspected_primary_heard_again_is_healthy() {
    let mut view = ClusterView::new("m1", 1, false);
    let m1 = node("m1", "master", Process::Running);
    view.apply(
        10,
        &ev(EventKind::ElectionStarted {
            candidate: "m2".into(),
            reason: "the primary was silent for 900ms".into(),
        }),
    );
    assert_eq!(view.verdict(&m1, 10), Verdict::Suspect);
    view.apply(
        20,
        &ev(EventKind::ElectionUpdate {
            candidate: "m2".into(),
            reason: "the primary is heard again: election abandoned".into(),
            primary: Some("m1".into()),
        }),
    );
    assert_eq!(view.verdict(&m1, 20), Verdict::Healthy);
}

#[test]
fn a_lost_backup_is_dead_in_the_primarys_view() {
    let mut view = ClusterView::new("m1", 1, false);
    let backup = node("m2", "master", Process::Running);
    view.apply(
        10,
        &ev(EventKind::BackupLost {
            backup: "m2".into(),
            reason: "its link closed".into(),
        }),
    );
    assert_eq!(view.verdict(&backup, 10), Verdict::Dead);
}

#[test]
fn a_resync_starts_over_from_the_history_and_keeps_job_notes() {
    let mut view = ClusterView::new("c", 1, true);
    let submit = |id| {
        ev(EventKind::JobSubmitted {
            job: JobId(id),
            data: "sleep 1s".into(),
            priority: 0,
            by: "operator".into(),
        })
    };
    view.apply(5, &submit(1));
    // The live view saw a job the new primary never got (it was not replicated).
    view.apply(6, &submit(2));
    assert_eq!(view.state.jobs.len(), 2);
    view.resync(&[submit(1), submit(3)]);
    assert_eq!(
        view.state.jobs.keys().copied().collect::<Vec<_>>(),
        vec![JobId(1), JobId(3)]
    );
    let one = view.notes(JobId(1)).unwrap();
    assert_eq!(
        one.history
            .iter()
            .map(|(at, note)| (*at, note.to_string()))
            .collect::<Vec<_>>(),
        vec![(5, "submitted by operator".to_string())]
    );
    assert!(!one.earlier);
    assert!(view.notes(JobId(2)).is_none());
    assert!(view.notes(JobId(3)).unwrap().earlier);
}

#[test]
fn a_job_that_moves_is_noted_with_when() {
    let mut view = ClusterView::new("c", 1, true);
    view.apply(1, &ev(joined("w1")));
    view.apply(
        2,
        &ev(EventKind::JobSubmitted {
            job: JobId(1),
            data: "x".into(),
            priority: 0,
            by: "t".into(),
        }),
    );
    view.apply(
        3,
        &ev(EventKind::JobAssigned {
            job: JobId(1),
            worker: "w1".into(),
            attempt: 1,
        }),
    );
    assert_eq!(view.notes(JobId(1)).unwrap().moved_at, None);
    view.apply(
        40,
        &ev(EventKind::JobRequeued {
            job: JobId(1),
            worker: "w1".into(),
            reason: "w1 died".into(),
        }),
    );
    let notes = view.notes(JobId(1)).unwrap();
    assert_eq!(notes.moved_at, Some(40));
    assert_eq!(
        notes.history.last().unwrap().1.to_string(),
        "w1 died → requeued (was on w1)"
    );
}

#[test]
fn adopting_the_supervisors_reading_keeps_the_consoles_notes() {
    let mut console = ClusterView::new("c", 1, true);
    let submit = ev(EventKind::JobSubmitted {
        job: JobId(1),
        data: "x".into(),
        priority: 0,
        by: "t".into(),
    });
    console.apply(7, &submit);
    let mut supervisor = ClusterView::new("c", 1, false);
    supervisor.apply(7, &submit);
    supervisor.apply(
        9,
        &ev(EventKind::Takeover {
            coordinator: "b".into(),
            term: 2,
            reason: "r".into(),
        }),
    );
    console.adopt(&supervisor);
    assert_eq!((console.primary.as_str(), console.term), ("b", 2));
    assert_eq!(console.notes(JobId(1)).unwrap().history.len(), 1);
}
