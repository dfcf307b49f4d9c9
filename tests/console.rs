//! The console without a terminal: actions fed to `update`, and the state checked. Keys and
//! text fields are in `console_keys.rs`, what the screen shows in `console_screens.rs`.
//!
//! The first tests are the lecture's own moments: a node's STATE is the cluster's verdict and
//! the fault is a tag; dead nodes show no live figures; a failover is announced with its time;
//! a relaunched console shows what the cluster restored.

mod common;

use std::sync::Arc;

use common::lecture::*;
use tcluster::console::app::{App, Mode, Pane, Tone, View};
use tcluster::console::keymap::Action;
use tcluster::console::layout;
use tcluster::console::update::{BANNER_MS, update};
use tcluster::protocol::message::{Health, JobId, JobState};
use tcluster::role::event::{ClusterEvent, EventKind};
use tcluster::supervisor::timeline::TimelineKind;
use tcluster::supervisor::{Process, Update};
use tcluster::view::{ClusterView, Faults, Role, Verdict};

fn verdict(app: &App, name: &str) -> Verdict {
    app.verdict(row(app, name))
}

#[test]
fn a_paused_worker_reads_suspect_then_dead_while_paused_is_only_its_tag() {
    let mut app = cluster_of_five();
    let paused = Faults {
        paused: true,
        ..Faults::default()
    };
    update(
        &mut app,
        node("worker-2", "worker", Process::Running, paused),
    );
    assert_eq!(
        verdict(&app, "worker-2"),
        Verdict::Healthy,
        "the cluster has not noticed yet"
    );
    assert_eq!(row(&app, "worker-2").status.faults.tags(), ["paused"]);
    update(
        &mut app,
        cluster(
            780,
            EventKind::WorkerSuspect {
                worker: "worker-2".into(),
                silent_ms: 780,
            },
        ),
    );
    assert_eq!(verdict(&app, "worker-2"), Verdict::Suspect);
    update(
        &mut app,
        cluster(
            1530,
            EventKind::WorkerDead {
                worker: "worker-2".into(),
                reason: "no heartbeat for 1530ms".into(),
            },
        ),
    );
    assert_eq!(verdict(&app, "worker-2"), Verdict::Dead);
    assert_eq!(row(&app, "worker-2").status.faults.tags(), ["paused"]);
    // The banner tells the class, with the time it took.
    let lines: Vec<&str> = app.banners[0]
        .lines
        .iter()
        .map(|(t, _)| t.as_str())
        .collect();
    assert_eq!(lines[0], "worker-2 SUSPECT — silent for 780 ms");
}

#[test]
fn a_cut_link_is_a_tag_on_both_ends_not_a_state_of_either() {
    let app = lecture();
    for name in ["coordinator", "worker-3"] {
        assert_eq!(verdict(&app, name), Verdict::Healthy, "{name}");
        assert_eq!(
            row(&app, name).status.faults.tags(),
            ["1 link cut"],
            "{name}"
        );
    }
}

#[test]
fn detection_and_recovery_are_announced_with_their_times() {
    let mut app = lecture();
    let banner = app
        .banners
        .iter()
        .find(|b| b.key == "worker-2")
        .expect("a banner about worker-2");
    let lines: Vec<(&str, Tone)> = banner.lines.iter().map(|(t, k)| (t.as_str(), *k)).collect();
    assert_eq!(
        lines,
        [
            ("worker-2 SUSPECT — silent for 780 ms", Tone::Warning),
            (
                "worker-2 DEAD — coordinator detected it 1.53 s after it was paused",
                Tone::Alarm
            ),
            (
                "JOB-2, JOB-5 running again on worker-1, worker-3 (12 ms after detection)",
                Tone::Recovery
            ),
        ]
    );
    // Brief: gone a few seconds later.
    update(&mut app, Action::Tick(4542 + BANNER_MS + 1));
    assert!(app.banners.is_empty());
}

#[test]
fn a_dead_nodes_live_figures_are_not_shown_as_if_current() {
    let mut app = lecture();
    // worker-2 is dead: its last heartbeat age, load and CPU mean nothing now.
    assert!(!verdict(&app, "worker-2").is_live());
    // The primary stops answering: the figures it gave become stale.
    assert!(!app.workers_stale());
    update(&mut app, Action::Tick(5000 + 2000));
    assert!(app.workers_stale());
    update(&mut app, workers(&[("worker-1", Health::Healthy, 100)]));
    assert!(!app.workers_stale());
}

#[test]
fn a_failover_is_announced_with_its_time_and_the_old_primary_reads_was_primary() {
    let mut app = lecture();
    kill_primary(&mut app);
    assert_eq!(
        (app.cluster.read().primary.as_str(), app.cluster.read().term),
        ("backup", 2)
    );
    assert_eq!(app.role(row(&app, "coordinator")), Role::WasPrimary);
    assert_eq!(verdict(&app, "coordinator"), Verdict::Dead);
    assert_eq!(app.role(row(&app, "backup")), Role::Primary);
    let failover = app.banners.iter().find(|b| b.key == "failover").unwrap();
    assert_eq!(
        failover.lines.last().unwrap().0,
        "FAILOVER — backup is primary, term 2, 13 ms after coordinator was killed"
    );
    // Events of the old primary no longer reach the console's reading (the supervisor only
    // forwards the primary's); the new primary's do.
    update(
        &mut app,
        event_from(
            "backup",
            6100,
            EventKind::JobCompleted {
                job: JobId(3),
                worker: "worker-1".into(),
                result: "ok".into(),
                read: false,
            },
        ),
    );
    assert_eq!(
        app.cluster.read().state.jobs[&JobId(3)].state,
        JobState::Completed
    );
}

#[test]
fn a_relaunched_console_shows_what_the_cluster_restored() {
    // The supervisor read the primary's journal (27 jobs, a takeover) and sends its reading.
    // The journals said backup took over last, in term 2: it started first, as the primary.
    let mut restored = ClusterView::new("backup", 2, false);
    let mut history = Vec::new();
    history.push(ClusterEvent {
        at_ms: 0,
        clock: 1,
        kind: EventKind::WorkerJoined {
            worker: "worker-1".into(),
            slots: 2,
            classic: false,
        },
    });
    for i in 1..=27 {
        history.push(ClusterEvent {
            at_ms: i,
            clock: i,
            kind: EventKind::JobSubmitted {
                job: JobId(i),
                data: "sleep 1s".into(),
                priority: 0,
                by: "operator".into(),
            },
        });
        history.push(ClusterEvent {
            at_ms: i,
            clock: i,
            kind: EventKind::JobAssigned {
                job: JobId(i),
                worker: "worker-1".into(),
                attempt: 1,
            },
        });
        history.push(ClusterEvent {
            at_ms: i,
            clock: i,
            kind: EventKind::JobCompleted {
                job: JobId(i),
                worker: "worker-1".into(),
                result: "slept 1s".into(),
                read: false,
            },
        });
    }
    history.push(ClusterEvent {
        at_ms: 90,
        clock: 90,
        kind: EventKind::Takeover {
            coordinator: "backup".into(),
            term: 2,
            reason: "r".into(),
        },
    });
    restored.resync(&history);
    let mut app = cluster_of_five();
    update(&mut app, Action::Update(Update::View(Arc::new(restored))));
    assert_eq!(app.cluster.read().state.counts.completed, 27);
    assert_eq!(app.cluster.read().state.workers["worker-1"].done, 27);
    assert_eq!(
        (app.cluster.read().primary.as_str(), app.cluster.read().term),
        ("backup", 2)
    );
    assert!(app.cluster.read().notes(JobId(1)).unwrap().earlier);
    app.refresh_jobs();
    assert_eq!(app.jobs.visible.len(), 27, "every restored job is listed");
    update(
        &mut app,
        timeline(
            100,
            "supervisor",
            TimelineKind::Resumed {
                began: Some("10:42".into()),
                jobs: 27,
                completed: 27,
                primary: "backup".into(),
                term: 2,
            },
        ),
    );
    assert_eq!(
        app.banners.back().unwrap().lines[0].0,
        "Resumed the run of 10:42: 27 jobs (27 completed), primary backup, term 2"
    );
}

#[test]
fn the_jobs_list_keeps_work_in_progress_first_and_marks_jobs_that_moved() {
    let mut app = lecture();
    app.refresh_jobs();
    let states: Vec<bool> = app
        .jobs
        .visible
        .iter()
        .map(|id| app.cluster.read().state.jobs[id].state.is_final())
        .collect();
    let first_ended = states.iter().position(|f| *f).unwrap();
    assert!(
        states[first_ended..].iter().all(|f| *f),
        "open jobs first: {:?}",
        app.jobs.visible
    );
    assert_eq!(
        app.cluster.read().notes(JobId(2)).unwrap().moved_at,
        Some(4531)
    );
    assert_eq!(app.cluster.read().state.jobs[&JobId(2)].attempts, 2);
    // The selection stays on its job when the order changes.
    app.focus = Pane::Jobs;
    update(&mut app, Action::Down);
    let selected = app.jobs.visible[app.selected(Pane::Jobs)];
    update(
        &mut app,
        cluster(
            5100,
            EventKind::JobCompleted {
                job: JobId(3),
                worker: "worker-1".into(),
                result: "slept".into(),
                read: false,
            },
        ),
    );
    update(&mut app, Action::Tick(5200));
    assert_eq!(app.jobs.visible[app.selected(Pane::Jobs)], selected);
    // Another job ends, heard after JOB-3 but stamped earlier by the coordinator: the list
    // goes by when this console saw each end.
    let other = app.jobs.visible[0];
    let ended_late = ClusterEvent {
        at_ms: 1,
        clock: 600,
        kind: EventKind::JobCompleted {
            job: other,
            worker: "worker-2".into(),
            result: "slept".into(),
            read: false,
        },
    };
    let heard = TimelineKind::Cluster { event: ended_late };
    update(&mut app, timeline(5300, "coordinator", heard));
    update(&mut app, Action::Tick(5600));
    // Ended jobs, the one seen ending last first.
    let first_ended = app
        .jobs
        .visible
        .iter()
        .position(|id| app.cluster.read().state.jobs[id].state.is_final())
        .unwrap();
    let ended: Vec<u64> = app.jobs.visible[first_ended..]
        .iter()
        .map(|id| {
            app.cluster
                .read()
                .notes(*id)
                .unwrap()
                .history
                .last()
                .unwrap()
                .0
        })
        .collect();
    assert!(ended.len() > 1, "{ended:?}");
    assert!(ended.windows(2).all(|w| w[0] >= w[1]), "{ended:?}");
    assert_eq!(ended[..2], [5300, 5100], "{ended:?}");
    assert_eq!(app.jobs.visible[first_ended], other);
}

#[test]
fn a_say_line_and_banners_never_move_the_panes() {
    let mut app = lecture();
    app.size = (120, 36);
    let with = layout::areas(&app, layout::screen(&app));
    app.banners.clear();
    app.say = None;
    let without = layout::areas(&app, layout::screen(&app));
    update(
        &mut app,
        timeline(
            6000,
            "scenario",
            TimelineKind::Say {
                text: "Watch".into(),
            },
        ),
    );
    assert!(app.say.is_some());
    assert_eq!(with, without);
    assert_eq!(layout::areas(&app, layout::screen(&app)), without);
}

#[test]
fn the_timeline_events_can_be_focused_scrolled_and_wrapped() {
    let mut app = lecture();
    update(&mut app, Action::Show(View::Timeline));
    assert!(!app.timeline_view.events_focused);
    update(&mut app, Action::NextPane);
    assert!(app.timeline_view.events_focused);
    update(&mut app, Action::PageUp);
    assert!(app.timeline_view.back > 0);
    let back = app.timeline_view.back;
    // New events keep the same lines in view.
    update(
        &mut app,
        timeline(6000, "supervisor", TimelineKind::Note { text: "x".into() }),
    );
    assert_eq!(app.timeline_view.back, back + 1);
    update(&mut app, Action::End);
    assert_eq!(app.timeline_view.back, 0);
    update(&mut app, Action::Wrap);
    assert!(app.timeline_view.wrap);
    update(&mut app, Action::Pings);
    assert!(app.timeline_view.pings);
    // Times count from the scenario's start once one runs.
    update(
        &mut app,
        timeline(
            7000,
            "scenario",
            TimelineKind::ScenarioBegins {
                name: "lecture".into(),
                steps: 3,
            },
        ),
    );
    assert_eq!(app.scenario, Some(("lecture".into(), 7000)));
    assert!(app.scenario_running);
    // Once it ends the status line stops saying it runs; the timeline still counts from it.
    update(
        &mut app,
        timeline(
            9000,
            "scenario",
            TimelineKind::ScenarioEnded {
                name: "lecture".into(),
            },
        ),
    );
    assert!(!app.scenario_running);
    assert_eq!(app.scenario, Some(("lecture".into(), 7000)));
}

#[test]
fn enter_on_a_node_opens_its_detail() {
    let mut app = lecture();
    app.selected.insert(Pane::Nodes, 4);
    update(&mut app, Action::Open);
    assert!(matches!(&app.mode, Mode::NodeDetail(n) if n == "worker-3"));
    update(&mut app, Action::Back);
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn jobs_are_counted_filtered_and_have_a_history() {
    let mut app = lecture();
    let c = app.cluster.read().state.counts;
    assert_eq!(
        (c.queued, c.running, c.completed, c.failed),
        (3, 4, 1, 0),
        "{c:?}"
    );
    app.focus = Pane::Jobs;
    update(&mut app, Action::JobFilter);
    assert_eq!(app.jobs.filter, Some(JobState::Queued));
    assert_eq!(app.jobs.visible, vec![JobId(6), JobId(7), JobId(8)]);
    update(&mut app, Action::JobFilter);
    assert_eq!(app.jobs.visible.len(), 4, "running");
    let history: Vec<String> = app
        .cluster
        .read()
        .notes(JobId(2))
        .unwrap()
        .history
        .iter()
        .map(|(_, h)| h.to_string())
        .collect();
    assert_eq!(
        history,
        [
            "submitted by operator",
            "assigned to worker-2 (attempt 1)",
            "started on worker-2",
            "worker-2 died → requeued (was on worker-2)",
            "assigned to worker-1 (attempt 2)",
            "started on worker-1"
        ]
    );
}

#[test]
fn a_students_worker_that_joins_gets_a_row_with_the_clusters_verdict() {
    let mut app = lecture();
    update(
        &mut app,
        cluster(
            6000,
            EventKind::WorkerJoined {
                worker: "mine".into(),
                slots: 2,
                classic: false,
            },
        ),
    );
    assert_eq!(verdict(&app, "mine"), Verdict::Healthy);
    assert_eq!(row(&app, "mine").status.process, Process::NotLaunched);
}

#[test]
fn a_launched_runs_console_shows_the_supervisors_reading_and_applies_no_event_twice() {
    let mut app = cluster_of_five();
    let supervisors = tcluster::view::Reading::new(ClusterView::new("coordinator", 1, true));
    app.read_from(supervisors.clone(), &Default::default());
    assert!(app.cluster.is(&supervisors));
    let submitted = EventKind::JobSubmitted {
        job: JobId(1),
        data: "sleep 1s".into(),
        priority: 0,
        by: "operator".into(),
    };
    // The supervisor applies the event, then puts it on the timeline.
    let event = ClusterEvent {
        at_ms: 40,
        clock: 4,
        kind: submitted.clone(),
    };
    supervisors.write().apply(40, &event);
    update(&mut app, cluster(40, submitted));
    let view = app.cluster.read();
    assert_eq!(view.state.counts.total(), 1);
    assert_eq!(
        view.notes(JobId(1)).map(|n| n.history.len()),
        Some(1),
        "the job's history has the submission once"
    );
    drop(view);
    // The timeline still shows it, and the Jobs pane lists it.
    assert!(app.timeline.iter().any(|e| e.at_ms == 40));
    app.refresh_jobs();
    assert_eq!(app.jobs.visible, [JobId(1)]);
}

#[test]
fn a_long_job_list_is_reordered_at_most_once_a_second_and_at_once_when_asked() {
    use tcluster::console::app::LONG_JOB_LIST;
    let mut app = cluster_of_five();
    let submit = |app: &mut App, at: u64, id: u64| {
        update(
            app,
            cluster(
                at,
                EventKind::JobSubmitted {
                    job: JobId(id),
                    data: "sleep 1s".into(),
                    priority: 0,
                    by: "operator".into(),
                },
            ),
        );
    };
    let many = LONG_JOB_LIST as u64 + 1;
    for id in 1..=many {
        submit(&mut app, 100, id);
    }
    update(&mut app, Action::Tick(1_100));
    assert_eq!(app.jobs.visible.len() as u64, many);
    // Another job a quarter of a second later: the long list waits for its second.
    submit(&mut app, 1_200, many + 1);
    update(&mut app, Action::Tick(1_350));
    assert_eq!(app.jobs.visible.len() as u64, many);
    update(&mut app, Action::Tick(2_100));
    assert_eq!(app.jobs.visible.len() as u64, many + 1);
    // What the operator asks for is shown at once: the next filter (queued).
    submit(&mut app, 2_200, many + 2);
    update(&mut app, Action::JobFilter);
    assert_eq!(app.jobs.visible.len() as u64, many + 2);
}
