//! A console fed by hand, for the console's tests: the moment of a lecture a few seconds in —
//! a primary and its backup, three workers with jobs in every state, worker-2 paused and
//! declared dead, worker-3 cut off from the coordinator, chat, logs, links, messages.

use std::sync::Arc;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tcluster::console::app::{App, ChatNews, LinkView, NodeRow};
use tcluster::console::config::{Config, Theme};
use tcluster::console::draw;
use tcluster::console::keymap::{self, Action};
use tcluster::console::update::{Effect, update};
use tcluster::protocol::message::{ChatBody, ChatEntry, Health, JobId, WorkerView};
use tcluster::role::event::{ClusterEvent, EventKind};
use tcluster::shaper::MessageSeen;
use tcluster::supervisor::logs::{Level, LogLine};
use tcluster::supervisor::timeline::{TimelineEvent, TimelineKind};
use tcluster::supervisor::{NodeStatus, Process, Update};
use tcluster::view::Faults;

/// The supervisor's facts about a node.
pub fn node(name: &str, kind: &str, process: Process, faults: Faults) -> Action {
    Action::Update(Update::Node(NodeStatus {
        name: name.into(),
        kind: kind.into(),
        process,
        pid: Some(1000 + name.len() as u32),
        address: (kind == "master").then(|| format!("127.0.0.1:74{:02}", name.len())),
        faults,
        cluster: "default".into(),
    }))
}

/// A running node with nothing done to it.
pub fn running(name: &str, kind: &str) -> Action {
    node(name, kind, Process::Running, Faults::default())
}

/// A cluster event from `source`, seen at `at_ms`.
pub fn event_from(source: &str, at_ms: u64, kind: EventKind) -> Action {
    Action::Update(Update::Timeline(Arc::new(TimelineEvent {
        at_ms,
        source: source.into(),
        kind: TimelineKind::Cluster {
            event: ClusterEvent {
                at_ms,
                clock: at_ms / 10,
                kind,
            },
        },
    })))
}

/// A cluster event from the coordinator.
pub fn cluster(at_ms: u64, kind: EventKind) -> Action {
    event_from("coordinator", at_ms, kind)
}

/// A timeline entry.
pub fn timeline(at_ms: u64, source: &str, kind: TimelineKind) -> Action {
    Action::Update(Update::Timeline(Arc::new(TimelineEvent {
        at_ms,
        source: source.into(),
        kind,
    })))
}

/// A key typed into a text field.
pub fn key(code: KeyCode) -> Action {
    Action::Text(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Text typed into a text field.
pub fn typed(app: &mut App, text: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
    for c in text.chars() {
        effects.extend(update(app, key(KeyCode::Char(c))));
    }
    effects
}

/// Feeds the app these actions.
pub fn feed(app: &mut App, actions: impl IntoIterator<Item = Action>) {
    for action in actions {
        update(app, action);
    }
}

/// The primary's figures about its workers.
pub fn workers(ages: &[(&str, Health, u64)]) -> Action {
    Action::Workers(
        ages.iter()
            .map(|(name, health, age)| WorkerView {
                name: (*name).into(),
                health: *health,
                slots: 2,
                running: 0,
                done: 0,
                heartbeat_age_ms: Some(*age),
                clock: 80,
                classic: false,
                lent_to: None,
                owner: None,
            })
            .collect(),
    )
}

/// A chat post.
pub fn chat_post(clock: u64, channel: &str, from: &str, text: &str) -> ChatEntry {
    ChatEntry {
        request: None,
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

/// An empty console on a cluster of `coordinator`, `backup`, `worker-1…3`, all running.
pub fn cluster_of_five() -> App {
    let config = Config {
        theme: Theme::Mono,
        ..Config::default()
    };
    let mut app = App::new("LectureCluster", "coordinator", Vec::new(), config);
    app.scenarios = vec!["lecture".into(), "failover".into()];
    feed(
        &mut app,
        [
            running("coordinator", "master"),
            running("backup", "master"),
            running("worker-1", "worker"),
            running("worker-2", "worker"),
            running("worker-3", "worker"),
        ],
    );
    for (i, w) in ["worker-1", "worker-2", "worker-3"].iter().enumerate() {
        update(
            &mut app,
            cluster(
                100 + i as u64,
                EventKind::WorkerJoined {
                    worker: (*w).into(),
                    slots: 2,
                    classic: false,
                },
            ),
        );
    }
    app
}

/// The lecture a few seconds in (see the module's comment).
pub fn lecture() -> App {
    let mut app = cluster_of_five();
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
        (5, "worker-2"),
    ] {
        let job = JobId(i);
        feed(
            &mut app,
            [
                cluster(
                    1100,
                    EventKind::JobAssigned {
                        job,
                        worker: w.into(),
                        attempt: 1,
                    },
                ),
                cluster(
                    1150,
                    EventKind::JobStarted {
                        job,
                        worker: w.into(),
                    },
                ),
            ],
        );
    }
    feed(
        &mut app,
        [
            cluster(
                2000,
                EventKind::JobProgress {
                    job: JobId(3),
                    worker: "worker-1".into(),
                    percent: 40,
                },
            ),
            cluster(
                2100,
                EventKind::JobCompleted {
                    job: JobId(1),
                    worker: "worker-1".into(),
                    result: "slept 1s".into(),
                    read: false,
                },
            ),
            workers(&[
                ("worker-1", Health::Healthy, 120),
                ("worker-2", Health::Healthy, 90),
                ("worker-3", Health::Healthy, 110),
            ]),
            Action::Usage(vec![usage(1008, 1.5, 9 << 20), usage(1006, 0.2, 8 << 20)]),
        ],
    );
    pause_worker_2(&mut app);
    cut_worker_3(&mut app);
    feed(&mut app, logs());
    feed(&mut app, messages());
    update(&mut app, links(true));
    app.chat.has_server = true;
    feed(&mut app, chat());
    update(&mut app, Action::Tick(5000));
    update(
        &mut app,
        workers(&[
            ("worker-1", Health::Healthy, 120),
            ("worker-2", Health::Dead, 1530),
            ("worker-3", Health::Healthy, 230),
        ]),
    );
    app
}

/// The operator pauses worker-2 at 3 s; the coordinator suspects it, declares it dead, and
/// its two jobs run again on worker-1 and worker-3.
pub fn pause_worker_2(app: &mut App) {
    let paused = Faults {
        paused: true,
        ..Faults::default()
    };
    feed(
        app,
        [
            timeline(
                3000,
                "operator",
                TimelineKind::Action {
                    fault: Some(1),
                    action: "pause".into(),
                    target: "worker-2".into(),
                    text: "pause worker-2".into(),
                },
            ),
            node("worker-2", "worker", Process::Running, paused),
            cluster(
                3780,
                EventKind::WorkerSuspect {
                    worker: "worker-2".into(),
                    silent_ms: 780,
                },
            ),
            cluster(
                4530,
                EventKind::WorkerDead {
                    worker: "worker-2".into(),
                    reason: "no heartbeat for 1530ms".into(),
                },
            ),
            timeline(
                4530,
                "supervisor",
                TimelineKind::Detected {
                    fault: 1,
                    action: "pause".into(),
                    target: "worker-2".into(),
                    by: "coordinator".into(),
                    after_ms: 1530,
                    speed: None,
                },
            ),
        ],
    );
    for (job, to) in [(2, "worker-1"), (5, "worker-3")] {
        feed(
            app,
            [
                cluster(
                    4530,
                    EventKind::JobRequeued {
                        job: JobId(job),
                        worker: "worker-2".into(),
                        reason: "worker-2 died".into(),
                    },
                ),
                cluster(
                    4531,
                    EventKind::JobAssigned {
                        job: JobId(job),
                        worker: to.into(),
                        attempt: 2,
                    },
                ),
                cluster(
                    4540,
                    EventKind::JobStarted {
                        job: JobId(job),
                        worker: to.into(),
                    },
                ),
            ],
        );
    }
    update(
        app,
        timeline(
            4542,
            "supervisor",
            TimelineKind::Recovered {
                fault: 1,
                action: "pause".into(),
                target: "worker-2".into(),
                after_ms: 1542,
                moved: vec![(JobId(2), "worker-1".into()), (JobId(5), "worker-3".into())],
                speed: None,
            },
        ),
    );
}

/// The operator cuts the link between the coordinator and worker-3 at 4.8 s: not noticed yet.
pub fn cut_worker_3(app: &mut App) {
    let cut = |peer: &str| Faults {
        cut: vec![peer.into()],
        ..Faults::default()
    };
    feed(
        app,
        [
            timeline(
                4800,
                "operator",
                TimelineKind::Action {
                    fault: Some(2),
                    action: "partition".into(),
                    target: "coordinator <-> worker-3".into(),
                    text: "partition coordinator <-> worker-3".into(),
                },
            ),
            node("worker-3", "worker", Process::Running, cut("coordinator")),
            node("coordinator", "master", Process::Running, cut("worker-3")),
        ],
    );
}

/// The operator kills the primary at 6 s: the backup starts an election and takes over in
/// term 2, 13 ms later.
pub fn kill_primary(app: &mut App) {
    let killed = Faults {
        killed: true,
        ..Faults::default()
    };
    feed(
        app,
        [
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
            node("coordinator", "master", Process::Exited, killed),
            event_from(
                "backup",
                6011,
                EventKind::ElectionStarted {
                    candidate: "backup".into(),
                    reason: "the primary's connection closed".into(),
                },
            ),
            event_from(
                "backup",
                6013,
                EventKind::Takeover {
                    coordinator: "backup".into(),
                    term: 2,
                    reason: "the primary's connection closed".into(),
                },
            ),
        ],
    );
}

/// The links: worker-3's to the coordinator cut, a slow one to worker-1.
pub fn links(cut: bool) -> Action {
    let link = |from: &str, to: &str, cut: bool, latency_ms: u64| LinkView {
        from: from.into(),
        to: to.into(),
        cut,
        latency_ms,
        jitter_ms: if latency_ms > 0 { 50 } else { 0 },
        loss: 0.0,
        carried: 0,
        held: false,
        encrypted: false,
        plaintext: 0,
    };
    let mut links = Vec::new();
    for w in ["worker-1", "worker-2", "worker-3"] {
        let cut = cut && w == "worker-3";
        let latency = if w == "worker-1" { 300 } else { 0 };
        links.push(link(w, "coordinator", cut, latency));
        links.push(link("coordinator", w, cut, latency));
        links.push(link(w, "backup", false, 0));
        links.push(link("backup", w, false, 0));
    }
    links.push(link("coordinator", "backup", false, 0));
    links.push(link("backup", "coordinator", false, 0));
    Action::Links(links)
}

fn logs() -> Vec<Action> {
    (0..40u64)
        .map(|i| {
            let (node, level) = match i % 4 {
                0 => ("coordinator", Level::Info),
                1 => ("worker-1", Level::Info),
                2 => ("worker-3", Level::Debug),
                _ => ("worker-2", Level::Warn),
            };
            Action::Log(LogLine {
                at_ms: i * 100,
                node: Arc::from(node),
                level,
                text: format!("line {i}: job JOB-{} heartbeat", i % 8),
            })
        })
        .collect()
}

fn messages() -> Vec<Action> {
    [
        ("worker-1", "coordinator", "heartbeat"),
        ("coordinator", "worker-1", "assign"),
        ("worker-1", "coordinator", "started"),
        ("coordinator", "backup", "replica"),
        ("backup", "coordinator", "replica_ack"),
        ("worker-3", "coordinator", "heartbeat"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (from, to, kind))| {
        Action::Message(MessageSeen {
            at_ms: 4500 + i as u64 * 10,
            from: Arc::from(*from),
            to: Arc::from(*to),
            kind: kind.to_string(),
            clock: Some(90 + i as u64),
            fate: tcluster::shaper::Fate::Carried,
            count: 1,
        })
    })
    .collect()
}

fn chat() -> Vec<Action> {
    let channel = ChatEntry {
        request: None,
        clock: 3,
        server: "chat-a".into(),
        seq: 3,
        body: ChatBody::Channel {
            channel: "general".into(),
            by: "bot_0001".into(),
        },
    };
    [
        ChatNews::Up("chat-a".into()),
        ChatNews::Entries(vec![
            channel,
            chat_post(5, "general", "bot_0001", "has anyone seen worker-2?"),
            chat_post(8, "lab", "bot_0002", "Lamport clocks are ticking"),
            ChatEntry {
                request: None,
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
        ChatNews::Entries(vec![chat_post(
            12,
            "general",
            "operator",
            "Watch worker-2: it is paused now, and the coordinator will notice",
        )]),
    ]
    .into_iter()
    .map(Action::Chat)
    .collect()
}

/// The screen as text, drawn on a TestBackend of `width` × `height`.
pub fn render(app: &mut App, width: u16, height: u16) -> String {
    app.size = (width, height);
    let bindings = keymap::default_bindings();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw::draw(app, &bindings, f)).unwrap();
    terminal.backend().to_string()
}

/// A node row by name.
pub fn row<'a>(app: &'a App, name: &str) -> &'a NodeRow {
    app.nodes.iter().find(|n| n.name() == name).unwrap()
}

/// What one process used, as the console samples it.
fn usage(pid: u32, cpu_percent: f32, memory_bytes: u64) -> tcluster::console::app::ProcessUsage {
    tcluster::console::app::ProcessUsage {
        pid,
        cpu_percent,
        memory_bytes,
    }
}
