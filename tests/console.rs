//! The console without a terminal: screens drawn on a TestBackend from fixed data and compared
//! with snapshots (every pane, the whole screen at 80×24 and 160×48, the overlays), and update
//! tests that feed actions and check the state and the effects.
//!
//! To review changed screens: `INSTA_UPDATE=always cargo test --test console`, then read the
//! diff of `tests/snapshots/`.

use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcluster::console::app::{App, ChatItem, ChatNews, LinkView, Mode, NodeRow, Pane, View};
use tcluster::console::config::{Config, Theme};
use tcluster::console::keymap::{self, Action};
use tcluster::console::update::{Effect, update};
use tcluster::console::{draw, translate};
use tcluster::protocol::message::{ChatBody, ChatEntry, Health, JobId, JobState, WorkerView};
use tcluster::role::event::{ClusterEvent, EventKind};
use tcluster::supervisor::logs::{Level, LogLine};
use tcluster::supervisor::shaper::MessageSeen;
use tcluster::supervisor::timeline::{TimelineEvent, TimelineKind};
use tcluster::supervisor::{NodeState, NodeStatus, Update};
use tcluster::topology::Action as ClusterAction;

fn node(name: &str, kind: &str, role: &str, state: NodeState) -> Action {
    Action::Update(Update::Node(NodeStatus {
        name: name.into(),
        kind: kind.into(),
        role: role.into(),
        state,
        pid: Some(1000 + name.len() as u32),
        address: None,
    }))
}

fn cluster(at_ms: u64, kind: EventKind) -> Action {
    Action::Update(Update::Timeline(TimelineEvent {
        at_ms,
        source: "coordinator".into(),
        kind: TimelineKind::Cluster {
            event: ClusterEvent {
                at_ms,
                clock: at_ms / 10,
                kind,
            },
        },
    }))
}

fn timeline(at_ms: u64, source: &str, kind: TimelineKind) -> Action {
    Action::Update(Update::Timeline(TimelineEvent {
        at_ms,
        source: source.into(),
        kind,
    }))
}

fn key(code: KeyCode) -> Action {
    Action::Text(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        effects.extend(update(app, key(KeyCode::Char(c))));
    }
    effects
}

/// A lecture a few seconds in: four nodes, jobs in every state, a killed worker, logs.
fn fixture() -> App {
    let config = Config {
        theme: Theme::Mono,
        ..Config::default()
    };
    let mut app = App::new("LectureCluster", "coordinator", Vec::new(), config);
    app.scenarios = vec!["lecture".into()];
    let actions = vec![
        node("coordinator", "master", "primary", NodeState::Healthy),
        node("worker-1", "worker", "worker", NodeState::Healthy),
        node("worker-2", "worker", "worker", NodeState::Dead),
        node("worker-3", "worker", "worker", NodeState::Paused),
        Action::Workers(vec![
            WorkerView {
                name: "worker-1".into(),
                health: Health::Healthy,
                slots: 2,
                running: 2,
                done: 3,
                heartbeat_age_ms: 120,
                clock: 88,
                classic: false,
            },
            WorkerView {
                name: "worker-2".into(),
                health: Health::Dead,
                slots: 2,
                running: 0,
                done: 1,
                heartbeat_age_ms: 4100,
                clock: 40,
                classic: false,
            },
            WorkerView {
                name: "worker-3".into(),
                health: Health::Suspect,
                slots: 2,
                running: 1,
                done: 2,
                heartbeat_age_ms: 900,
                clock: 71,
                classic: false,
            },
        ]),
        Action::Usage(vec![(1011, 1.5, 9 << 20), (1008, 0.2, 8 << 20)]),
    ];
    for a in actions {
        update(&mut app, a);
    }
    for i in 1..=8u64 {
        update(
            &mut app,
            cluster(
                1000 + i,
                EventKind::JobSubmitted {
                    job: JobId(i),
                    data: format!("sleep {i}s"),
                    priority: 0,
                    by: "operator".into(),
                },
            ),
        );
    }
    for (i, w) in [
        (1, "worker-1"),
        (2, "worker-2"),
        (3, "worker-1"),
        (4, "worker-3"),
        (5, "worker-1"),
    ] {
        update(
            &mut app,
            cluster(
                1100,
                EventKind::JobAssigned {
                    job: JobId(i),
                    worker: w.into(),
                    attempt: 1,
                },
            ),
        );
        update(
            &mut app,
            cluster(
                1150,
                EventKind::JobStarted {
                    job: JobId(i),
                    worker: w.into(),
                },
            ),
        );
    }
    update(
        &mut app,
        cluster(
            2000,
            EventKind::JobProgress {
                job: JobId(3),
                worker: "worker-1".into(),
                percent: 40,
            },
        ),
    );
    update(
        &mut app,
        cluster(
            2100,
            EventKind::JobCompleted {
                job: JobId(1),
                worker: "worker-1".into(),
                result: "slept 1s".into(),
            },
        ),
    );
    update(
        &mut app,
        cluster(
            2200,
            EventKind::JobFailed {
                job: JobId(5),
                worker: "worker-1".into(),
                error: "disk full".into(),
                retry_in_ms: None,
            },
        ),
    );
    update(
        &mut app,
        timeline(
            4000,
            "operator",
            TimelineKind::Action {
                fault: Some(1),
                action: "kill".into(),
                target: "worker-2".into(),
                text: "kill worker-2".into(),
            },
        ),
    );
    update(
        &mut app,
        cluster(
            4003,
            EventKind::WorkerDead {
                worker: "worker-2".into(),
                reason: "connection closed".into(),
            },
        ),
    );
    update(
        &mut app,
        timeline(
            4003,
            "supervisor",
            TimelineKind::Detected {
                fault: 1,
                action: "kill".into(),
                target: "worker-2".into(),
                by: "coordinator".into(),
                after_ms: 3,
            },
        ),
    );
    update(
        &mut app,
        cluster(
            4003,
            EventKind::JobRequeued {
                job: JobId(2),
                worker: "worker-2".into(),
                reason: "worker-2 died".into(),
            },
        ),
    );
    update(
        &mut app,
        cluster(
            4004,
            EventKind::JobAssigned {
                job: JobId(2),
                worker: "worker-1".into(),
                attempt: 2,
            },
        ),
    );
    update(
        &mut app,
        cluster(
            4010,
            EventKind::JobStarted {
                job: JobId(2),
                worker: "worker-1".into(),
            },
        ),
    );
    update(
        &mut app,
        timeline(
            4010,
            "supervisor",
            TimelineKind::Recovered {
                fault: 1,
                action: "kill".into(),
                target: "worker-2".into(),
                after_ms: 10,
            },
        ),
    );
    for i in 0..40u64 {
        let (node, level) = match i % 4 {
            0 => ("coordinator", Level::Info),
            1 => ("worker-1", Level::Info),
            2 => ("worker-3", Level::Debug),
            _ => ("worker-2", Level::Warn),
        };
        update(
            &mut app,
            Action::Log(LogLine {
                at_ms: i * 100,
                node: Arc::from(node),
                level,
                text: format!("line {i}: job JOB-{} heartbeat", i % 8),
            }),
        );
    }
    for (i, (from, to, kind)) in [
        ("worker-1", "coordinator", "heartbeat"),
        ("coordinator", "worker-1", "assign"),
        ("worker-1", "coordinator", "started"),
        ("worker-3", "coordinator", "heartbeat"),
    ]
    .iter()
    .enumerate()
    {
        update(
            &mut app,
            Action::Message(MessageSeen {
                at_ms: 4500 + i as u64 * 10,
                from: Arc::from(*from),
                to: Arc::from(*to),
                kind: kind.to_string(),
                clock: Some(90 + i as u64),
                dropped: false,
            }),
        );
    }
    update(
        &mut app,
        Action::Links(vec![
            LinkView {
                from: "worker-1".into(),
                to: "coordinator".into(),
                cut: false,
                latency_ms: 0,
                loss: 0.0,
            },
            LinkView {
                from: "worker-2".into(),
                to: "coordinator".into(),
                cut: false,
                latency_ms: 0,
                loss: 0.0,
            },
            LinkView {
                from: "worker-3".into(),
                to: "coordinator".into(),
                cut: true,
                latency_ms: 0,
                loss: 0.0,
            },
            LinkView {
                from: "coordinator".into(),
                to: "worker-1".into(),
                cut: false,
                latency_ms: 300,
                loss: 0.0,
            },
        ]),
    );
    app.chat.has_server = true;
    for news in [
        ChatNews::Up("chat-a".into()),
        ChatNews::Entries(vec![
            chat_channel(3, "general", "bot_0001"),
            chat_post(5, "general", "bot_0001", "has anyone seen worker-2?"),
            chat_post(8, "lab", "bot_0002", "Lamport clocks are ticking"),
            ChatEntry {
                clock: 9,
                server: "chat-a".into(),
                seq: 9,
                body: ChatBody::Direct {
                    from: "ada".into(),
                    to: "bob".into(),
                    text: "see you at the lab".into(),
                },
            },
        ]),
        ChatNews::Down("chat-a".into(), "the server closed the connection".into()),
        ChatNews::Up("chat-b".into()),
        ChatNews::Entries(vec![chat_post(12, "general", "operator", "hello class")]),
    ] {
        update(&mut app, Action::Chat(news));
    }
    update(&mut app, Action::Tick(5000));
    app
}

fn chat_post(clock: u64, channel: &str, from: &str, text: &str) -> ChatEntry {
    ChatEntry {
        clock,
        server: "chat-a".into(),
        seq: clock,
        body: ChatBody::Post {
            channel: channel.into(),
            from: from.into(),
            text: text.into(),
        },
    }
}

fn chat_channel(clock: u64, channel: &str, by: &str) -> ChatEntry {
    ChatEntry {
        clock,
        server: "chat-a".into(),
        seq: clock,
        body: ChatBody::Channel {
            channel: channel.into(),
            by: by.into(),
        },
    }
}

fn render(app: &mut App, width: u16, height: u16) -> String {
    app.size = (width, height);
    let bindings = keymap::default_bindings();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw::draw(app, &bindings, f)).unwrap();
    terminal.backend().to_string()
}

#[test]
fn whole_screens() {
    let mut app = fixture();
    insta::assert_snapshot!("overview_80x24", render(&mut app, 80, 24));
    insta::assert_snapshot!("overview_160x48", render(&mut app, 160, 48));
}

#[test]
fn each_pane_zoomed() {
    for pane in Pane::OVERVIEW {
        let mut app = fixture();
        app.focus = pane;
        update(&mut app, Action::Zoom);
        insta::assert_snapshot!(
            format!("pane_{}_80x24", pane.title().to_lowercase()),
            render(&mut app, 80, 24)
        );
    }
}

#[test]
fn map_and_timeline_views() {
    let mut app = fixture();
    update(&mut app, Action::Show(View::Map));
    insta::assert_snapshot!("map_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Show(View::Timeline));
    insta::assert_snapshot!("timeline_160x48", render(&mut app, 160, 48));
}

#[test]
fn overlays_and_the_bottom_line() {
    let mut app = fixture();
    update(&mut app, Action::Help);
    insta::assert_snapshot!("help_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Back);
    update(&mut app, Action::SubmitForm);
    insta::assert_snapshot!("submit_form_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Back);
    app.selected.insert(Pane::Nodes, 2);
    update(&mut app, Action::Kill);
    insta::assert_snapshot!("confirm_kill_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Confirm(false));
    app.focus = Pane::Jobs;
    app.selected.insert(Pane::Jobs, 1);
    update(&mut app, Action::Open);
    insta::assert_snapshot!("job_history_80x24", render(&mut app, 80, 24));
}

#[test]
fn a_destructive_key_asks_first_unless_the_setting_is_off() {
    let mut app = fixture();
    app.selected.insert(Pane::Nodes, 1);
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
        vec![Effect::Act(ClusterAction::Resume("worker-3".into()))]
    );
}

#[test]
fn the_command_line_completes_remembers_and_explains() {
    let mut app = fixture();
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
    let mut app = fixture();
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
}

#[test]
fn jobs_are_counted_filtered_and_have_a_history() {
    let mut app = fixture();
    let c = app.jobs.counts;
    assert_eq!(
        (c.queued, c.running, c.completed, c.failed),
        (3, 3, 1, 1),
        "{c:?}"
    );
    app.focus = Pane::Jobs;
    update(&mut app, Action::JobFilter);
    assert_eq!(app.jobs.filter, Some(JobState::Queued));
    assert_eq!(app.jobs.visible, vec![JobId(6), JobId(7), JobId(8)]);
    update(&mut app, Action::JobFilter);
    assert_eq!(app.jobs.visible.len(), 3, "running");
    let history: Vec<&str> = app.jobs.all[&JobId(2)]
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
    let mut app = fixture();
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
    let mut app = fixture();
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
fn a_students_worker_that_joins_gets_a_row() {
    let mut app = fixture();
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
    let row: &NodeRow = app.nodes.iter().find(|n| n.name == "mine").unwrap();
    assert_eq!(row.state, NodeState::Healthy);
}

#[test]
fn the_chat_pane_posts_as_the_operator_switches_channels_and_shows_moves() {
    let mut app = fixture();
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
    insta::assert_snapshot!("chat_general_80x24", {
        update(&mut app, Action::Zoom);
        let screen = render(&mut app, 80, 24);
        update(&mut app, Action::Zoom);
        screen
    });
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
