//! The console without a terminal: actions fed to `update`, and the state and effects checked.
//! What the screen shows is in `console_screens.rs`.
//!
//! The first tests are the lecture's own moments: a node's STATE is the cluster's verdict and
//! the fault is a tag; dead nodes show no live figures; a failover is announced with its time;
//! a relaunched console shows what the cluster restored.

mod common;

use std::sync::Arc;

use common::lecture::*;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcluster::console::app::{App, ChatItem, ChatNews, Mode, Pane, Tone, View};
use tcluster::console::config::Config;
use tcluster::console::keymap::{self, Action};
use tcluster::console::update::{BANNER_MS, Effect, update};
use tcluster::console::{layout, translate};
use tcluster::protocol::message::{Health, JobId, JobState};
use tcluster::role::event::{ClusterEvent, EventKind};
use tcluster::supervisor::logs::{Level, LogLine};
use tcluster::supervisor::timeline::TimelineKind;
use tcluster::supervisor::{Process, Update};
use tcluster::topology::Action as ClusterAction;
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
    let killed = Faults {
        killed: true,
        ..Faults::default()
    };
    update(
        &mut app,
        timeline(
            6000,
            "operator",
            TimelineKind::Action {
                fault: Some(3),
                action: "kill".into(),
                target: "coordinator".into(),
                text: "kill coordinator".into(),
            },
        ),
    );
    update(
        &mut app,
        node("coordinator", "master", Process::Exited, killed),
    );
    update(
        &mut app,
        event_from(
            "backup",
            6011,
            EventKind::ElectionStarted {
                candidate: "backup".into(),
                reason: "the primary's connection closed".into(),
            },
        ),
    );
    update(
        &mut app,
        event_from(
            "backup",
            6013,
            EventKind::Takeover {
                coordinator: "backup".into(),
                term: 2,
                reason: "the primary's connection closed".into(),
            },
        ),
    );
    assert_eq!(
        (app.cluster.primary.as_str(), app.cluster.term),
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
            },
        ),
    );
    assert_eq!(app.cluster.state.jobs[&JobId(3)].state, JobState::Completed);
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
    assert_eq!(app.cluster.state.counts.completed, 27);
    assert_eq!(app.cluster.state.workers["worker-1"].done, 27);
    assert_eq!(
        (app.cluster.primary.as_str(), app.cluster.term),
        ("backup", 2)
    );
    assert!(app.cluster.notes(JobId(1)).unwrap().earlier);
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
        .map(|id| app.cluster.state.jobs[id].state.is_final())
        .collect();
    let first_ended = states.iter().position(|f| *f).unwrap();
    assert!(
        states[first_ended..].iter().all(|f| *f),
        "open jobs first: {:?}",
        app.jobs.visible
    );
    assert_eq!(app.cluster.notes(JobId(2)).unwrap().moved_at, Some(4531));
    assert_eq!(app.cluster.state.jobs[&JobId(2)].attempts, 2);
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
            },
        ),
    );
    update(&mut app, Action::Tick(5200));
    assert_eq!(app.jobs.visible[app.selected(Pane::Jobs)], selected);
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
fn home_in_the_logs_shows_a_whole_page() {
    let mut app = lecture();
    app.size = (80, 24);
    app.focus = Pane::Logs;
    update(&mut app, Action::Home);
    assert!(!app.logs.follow);
    assert!(
        app.logs.bottom >= app.logs.first + 5,
        "the bottom line is a page down, not the first line: {}",
        app.logs.bottom
    );
}

#[test]
fn completions_show_while_typing_and_tab_completes() {
    let mut app = lecture();
    update(&mut app, Action::CommandLine);
    typed(&mut app, "kill w");
    assert_eq!(app.completions, ["worker-1", "worker-2", "worker-3"]);
    typed(&mut app, "orker-2");
    assert!(app.completions.is_empty(), "a whole name is no news");
    update(&mut app, key(KeyCode::Esc));
    update(&mut app, Action::CommandLine);
    typed(&mut app, "sc");
    update(&mut app, key(KeyCode::Tab));
    assert!(matches!(&app.mode, Mode::Command(a) if a.lines()[0] == "scenario "));
    assert_eq!(app.completions, ["lecture", "failover"]);
}

#[test]
fn scenario_alone_lists_the_scenarios() {
    let mut app = lecture();
    update(&mut app, Action::CommandLine);
    typed(&mut app, "scenario");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert_eq!(
        app.flash.as_ref().unwrap().0,
        "scenarios: lecture, failover · :scenario NAME runs one"
    );
}

#[test]
fn every_command_answers_on_the_status_line() {
    let mut app = lecture();
    app.config.confirm = false;
    update(&mut app, Action::CommandLine);
    typed(&mut app, "latency coordinator worker-3 300ms jitter 50ms");
    let effects = update(&mut app, key(KeyCode::Enter));
    assert_eq!(effects.len(), 1);
    assert_eq!(
        app.flash.as_ref().unwrap().0,
        "latency coordinator worker-3 300ms jitter 50ms"
    );
    // The supervisor says what came of it.
    update(
        &mut app,
        timeline(
            5100,
            "operator",
            TimelineKind::Action {
                fault: Some(3),
                action: "latency".into(),
                target: "coordinator <-> worker-3".into(),
                text: "latency coordinator <-> worker-3 300ms jitter 50ms".into(),
            },
        ),
    );
    update(
        &mut app,
        timeline(
            5100,
            "supervisor",
            TimelineKind::Outcome {
                fault: 3,
                action: "latency".into(),
                target: "coordinator <-> worker-3".into(),
                text: "coordinator ↔ worker-3: 300 ms ± 50 ms".into(),
                settled: true,
            },
        ),
    );
    assert_eq!(
        app.flash.as_ref().unwrap().0,
        "#3: coordinator ↔ worker-3: 300 ms ± 50 ms"
    );
    let row = app.faults.iter().find(|f| f.number == 3).unwrap();
    assert!(row.settled);
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
}

#[test]
fn the_help_scrolls_and_any_other_key_closes_it() {
    let mut app = lecture();
    let bindings = keymap::default_bindings();
    update(&mut app, Action::Help);
    let press = |app: &App, code| {
        translate(
            app,
            &bindings,
            ratatui::crossterm::event::Event::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        )
        .unwrap()
    };
    let down = press(&app, KeyCode::Down);
    update(&mut app, down);
    assert!(matches!(app.mode, Mode::Help(1)));
    let close = press(&app, KeyCode::Char('x'));
    update(&mut app, close);
    assert!(matches!(app.mode, Mode::Normal));
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
fn a_destructive_key_asks_first_unless_the_setting_is_off() {
    let mut app = lecture();
    app.selected.insert(Pane::Nodes, 2);
    assert!(update(&mut app, Action::Kill).is_empty());
    assert!(matches!(&app.mode, Mode::Confirm(ClusterAction::Kill(n)) if n == "worker-1"));
    assert_eq!(
        update(&mut app, Action::Confirm(true)),
        vec![Effect::Act(ClusterAction::Kill("worker-1".into()))]
    );
    assert!(matches!(app.mode, Mode::Normal));

    app.config.confirm = false;
    assert_eq!(
        update(&mut app, Action::Restart),
        vec![Effect::Act(ClusterAction::Restart("worker-1".into()))]
    );
    // Pause on a paused node resumes it.
    app.selected.insert(Pane::Nodes, 3);
    assert_eq!(
        update(&mut app, Action::PauseResume),
        vec![Effect::Act(ClusterAction::Resume("worker-2".into()))]
    );
}

#[test]
fn the_command_line_completes_remembers_and_explains() {
    let mut app = lecture();
    update(&mut app, Action::CommandLine);
    typed(&mut app, "kill wor");
    update(&mut app, key(KeyCode::Tab));
    assert!(matches!(&app.mode, Mode::Command(a) if a.lines()[0] == "kill worker-"));
    typed(&mut app, "1");
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        vec![Effect::Act(ClusterAction::Kill("worker-1".into()))]
    );

    update(&mut app, Action::CommandLine);
    typed(&mut app, "submit 5 sleep 1s");
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        vec![Effect::Act(ClusterAction::Submit {
            data: "sleep 1s".into(),
            count: 5,
            priority: 0
        })]
    );

    // History: Up brings back the last command.
    update(&mut app, Action::CommandLine);
    update(&mut app, key(KeyCode::Up));
    assert!(matches!(&app.mode, Mode::Command(a) if a.lines()[0] == "submit 5 sleep 1s"));
    update(&mut app, key(KeyCode::Esc));

    update(&mut app, Action::CommandLine);
    typed(&mut app, "kil worker-1");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .0
            .contains("did you mean `kill`?")
    );

    update(&mut app, Action::CommandLine);
    typed(&mut app, "scenario lecture");
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        vec![Effect::Scenario("lecture".into())]
    );
}

#[test]
fn the_submit_form_replaces_defaults_and_checks_its_fields() {
    let mut app = lecture();
    update(&mut app, Action::SubmitForm);
    typed(&mut app, "echo hi");
    update(&mut app, key(KeyCode::Tab));
    typed(&mut app, "many");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(app.flash.as_ref().unwrap().0.contains("count"));
    update(&mut app, key(KeyCode::BackTab));
    update(&mut app, key(KeyCode::Tab));
    for _ in 0..4 {
        update(&mut app, key(KeyCode::Backspace));
    }
    typed(&mut app, "3");
    assert_eq!(
        update(&mut app, key(KeyCode::Enter)),
        vec![Effect::Act(ClusterAction::Submit {
            data: "echo hi".into(),
            count: 3,
            priority: 0
        })]
    );
    // Data the workers cannot run is refused here, with the reason.
    update(&mut app, Action::SubmitForm);
    typed(&mut app, "sleep forever");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(app.flash.as_ref().unwrap().0.starts_with("sleep:"));
}

#[test]
fn jobs_are_counted_filtered_and_have_a_history() {
    let mut app = lecture();
    let c = app.cluster.state.counts;
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
    let history: Vec<&str> = app
        .cluster
        .notes(JobId(2))
        .unwrap()
        .history
        .iter()
        .map(|(_, h)| h.as_str())
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
fn the_log_is_a_bounded_ring_with_search() {
    let mut app = App::new(
        "t",
        "c",
        Vec::new(),
        Config {
            log_history: 10,
            ..Config::default()
        },
    );
    for i in 0..25u64 {
        update(
            &mut app,
            Action::Log(LogLine {
                at_ms: i,
                node: Arc::from("n"),
                level: Level::Info,
                text: format!("line {i}"),
            }),
        );
    }
    assert_eq!(
        (app.logs.lines.len(), app.logs.first, app.logs.end()),
        (10, 15, 25)
    );
    app.focus = Pane::Logs;
    update(&mut app, Action::Search);
    typed(&mut app, "LINE 2");
    update(&mut app, key(KeyCode::Enter));
    let search = app.logs.search.clone().unwrap();
    assert_eq!(search.matches, vec![20, 21, 22, 23, 24]);
    assert_eq!(
        (search.current, app.logs.bottom, app.logs.follow),
        (Some(4), 24, false)
    );
    update(&mut app, Action::SearchPrev);
    assert_eq!(app.logs.bottom, 23);
    update(&mut app, Action::SearchNext);
    update(&mut app, Action::SearchNext);
    assert_eq!(app.logs.bottom, 20, "n wraps around");
    update(&mut app, Action::End);
    assert!(app.logs.follow);
}

#[test]
fn the_mouse_focuses_and_selects_and_keys_depend_on_the_pane() {
    let mut app = lecture();
    app.size = (160, 48);
    // The Jobs pane is the upper right quarter; its first data row is three rows in.
    update(&mut app, Action::Click(120, 4));
    assert_eq!(app.focus, Pane::Jobs);
    assert_eq!(app.selected(Pane::Jobs), 1);
    update(&mut app, Action::Scroll(120, 10, 1));
    assert_eq!(app.selected(Pane::Jobs), 4);

    let bindings = keymap::default_bindings();
    let f = ratatui::crossterm::event::Event::Key(KeyEvent::new(
        KeyCode::Char('f'),
        KeyModifiers::NONE,
    ));
    assert!(matches!(
        translate(&app, &bindings, f.clone()),
        Some(Action::JobFilter)
    ));
    app.focus = Pane::Logs;
    assert!(matches!(
        translate(&app, &bindings, f),
        Some(Action::Follow)
    ));
}

#[test]
fn an_attached_console_cannot_inject_faults_but_can_submit() {
    let mut app = lecture();
    app.launched = false;
    app.config.confirm = false;
    app.selected.insert(Pane::Nodes, 1);
    assert!(update(&mut app, Action::Kill).is_empty());
    assert!(
        app.flash
            .as_ref()
            .unwrap()
            .0
            .contains("launched by this console")
    );
    update(&mut app, Action::SubmitForm);
    assert_eq!(update(&mut app, key(KeyCode::Enter)).len(), 1);
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
fn the_chat_pane_posts_as_the_operator_switches_channels_and_shows_moves() {
    let mut app = lecture();
    // The move from chat-a to chat-b is in the pane, between the messages, in order.
    let notices: Vec<&str> = app
        .chat
        .items
        .values()
        .filter_map(|i| match i {
            ChatItem::Notice(t) => Some(t.as_str()),
            ChatItem::Entry(_) => None,
        })
        .collect();
    assert_eq!(
        notices,
        [
            "connected to chat-a as operator",
            "lost chat-a (the server closed the connection); moving to another chat server",
            "connected to chat-b as operator"
        ]
    );
    assert_eq!(app.chat.server.as_deref(), Some("chat-b"));
    // A message seen twice (live, then in the history fetched after a move) shows once.
    let before = app.chat.items.len();
    update(
        &mut app,
        Action::Chat(ChatNews::Entries(vec![chat_post(
            5,
            "general",
            "bot_0001",
            "has anyone seen worker-2?",
        )])),
    );
    assert_eq!(app.chat.items.len(), before);

    // `]` walks the channels: all → #general → #lab → all.
    app.focus = Pane::Chat;
    update(&mut app, Action::ChatNext);
    assert_eq!(app.chat.channel.as_deref(), Some("general"));
    update(&mut app, Action::ChatNext);
    assert_eq!(app.chat.channel.as_deref(), Some("lab"));
    update(&mut app, Action::ChatNext);
    assert_eq!(app.chat.channel, None);
    update(&mut app, Action::ChatPrev);
    assert_eq!(app.chat.channel.as_deref(), Some("lab"));

    // `i`, text, Enter: posted to the channel shown; the line stays open for more.
    update(&mut app, Action::ChatInput);
    assert!(matches!(app.mode, Mode::Chat(_)));
    typed(&mut app, "hello");
    let effects = update(&mut app, key(KeyCode::Enter));
    assert_eq!(
        effects,
        [Effect::ChatPost {
            channel: "lab".into(),
            text: "hello".into()
        }]
    );
    assert!(matches!(app.mode, Mode::Chat(_)));
    // `#news …` goes to #news.
    typed(&mut app, "#news big news");
    let effects = update(&mut app, key(KeyCode::Enter));
    assert_eq!(
        effects,
        [Effect::ChatPost {
            channel: "news".into(),
            text: "big news".into()
        }]
    );
    // Without a server, nothing is sent and the text stays.
    update(
        &mut app,
        Action::Chat(ChatNews::Down("chat-b".into(), "gone".into())),
    );
    typed(&mut app, "are you there");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(
        app.flash
            .as_ref()
            .is_some_and(|(t, _)| t.contains("not sent"))
    );
    match &app.mode {
        Mode::Chat(area) => assert_eq!(area.lines().join(""), "are you there"),
        other => panic!("still typing expected, found {other:?}"),
    }
    // Another console holds `operator` on this server: the pane posts as operator-2, and says so.
    update(
        &mut app,
        Action::Chat(ChatNews::LoggedIn("operator-2".into())),
    );
    assert_eq!(app.chat.login_name(), "operator-2");
    assert!(app.chat.items.values().any(
        |i| matches!(i, ChatItem::Notice(t) if t == "`operator` is taken here: posting as operator-2")
    ));
    // Esc leaves; a refusal is shown.
    update(&mut app, key(KeyCode::Esc));
    assert!(matches!(app.mode, Mode::Normal));
    update(
        &mut app,
        Action::Chat(ChatNews::Refused("slow down".into())),
    );
    assert_eq!(app.flash.as_ref().unwrap().0, "chat: slow down");
}
