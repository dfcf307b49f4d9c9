//! The console's keys and text fields, without a terminal: the command line (completions,
//! history, answers), the submit form, the help, the log and its search, the mouse, the chat
//! pane's input, and what an attached console may not do.

mod common;

use std::sync::Arc;

use common::lecture::*;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcluster::console::app::{App, ChatItem, ChatNews, Mode, Pane};
use tcluster::console::config::Config;
use tcluster::console::keymap::{self, Action};
use tcluster::console::translate;
use tcluster::console::update::{Effect, update};
use tcluster::supervisor::logs::{Level, LogLine};
use tcluster::supervisor::timeline::TimelineKind;
use tcluster::topology::ClusterAction;

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
            priority: 0,
            cluster: None
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
            priority: 0,
            cluster: None
        })]
    );
    // Data the workers cannot run is refused here, with the reason.
    update(&mut app, Action::SubmitForm);
    typed(&mut app, "sleep forever");
    assert!(update(&mut app, key(KeyCode::Enter)).is_empty());
    assert!(app.flash.as_ref().unwrap().0.starts_with("sleep:"));
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

#[test]
fn only_an_answer_answers_a_question() {
    let mut app = lecture();
    let bindings = keymap::default_bindings();
    let key = |app: &App, code| {
        translate(
            app,
            &bindings,
            ratatui::crossterm::event::Event::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        )
    };
    app.selected.insert(Pane::Nodes, 2);
    update(&mut app, Action::Kill);
    assert!(matches!(&app.mode, Mode::Confirm(_)));
    // Typed on: ignored, the question stays.
    for code in [KeyCode::Char(':'), KeyCode::Char('s'), KeyCode::Enter] {
        assert!(key(&app, code).is_none(), "{code:?}");
    }
    assert!(matches!(
        key(&app, KeyCode::Char('y')),
        Some(Action::Confirm(true))
    ));
    for code in [KeyCode::Char('n'), KeyCode::Char('N'), KeyCode::Esc] {
        assert!(
            matches!(key(&app, code), Some(Action::Confirm(false))),
            "{code:?}"
        );
    }
    update(&mut app, Action::Confirm(false));
    assert!(matches!(app.mode, Mode::Normal));
}
