//! The full-screen console, in The Elm Architecture.
//!
//! ```text
//!  terminal input (thread) ─┐
//!  ticks ───────────────────┤                       ┌──────────────┐
//!  supervisor updates, logs ┼─▶ one channel ─▶ update(&mut App, Action) ─▶ effects ─▶ supervisor
//!  coordinator polls ───────┤       of Actions      └──────┬───────┘
//!  link messages ───────────┘                              ▼
//!                                                  draw(&App, frame)
//! ```
//!
//! - [`app`]: the state, plain data.
//! - [`keymap`]: `Action`s and the one table of key bindings (which also draws help and hints).
//! - [`update`](mod@update): the only code that changes the state; returns effects.
//! - [`draw`]: one function per pane; only visible rows are built.
//! - [`layout`]: where panes go (shared with mouse hit-testing); [`command`]: the `:` line;
//!   [`config`]: personal settings.
//!
//! Input and drawing never wait on the cluster: everything the cluster says arrives as actions
//! on the channel, and the console draws at most 30 times a second, and only when something
//! changed.

pub mod app;
pub mod command;
pub mod config;
pub mod draw;
pub mod keymap;
pub mod layout;
pub mod replay;
mod sources;
pub mod update;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    self, Event, KeyCode, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::protocol::message::Message;
use crate::supervisor::{self, Request, RunOptions, SupervisorHandle};
use crate::topology::Topology;
use app::{App, Mode, NodeRow};
use config::Config;
use keymap::{Action, Binding};
use sources::{Input, spawn_sources};
use update::{Effect, update};

/// Turns a terminal event into an action, given what the keyboard is doing.
pub fn translate(app: &App, bindings: &[Binding], event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                return Some(Action::Quit);
            }
            match &app.mode {
                Mode::Command(_) | Mode::Search(_) | Mode::Submit(_) | Mode::Chat(_) => {
                    Some(Action::Text(key))
                }
                // Only an answer answers: a key typed on (`:` after `x`, say) leaves the
                // question on screen rather than taking it for a no and going elsewhere.
                Mode::Confirm(_) => match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => Some(Action::Confirm(true)),
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                        Some(Action::Confirm(false))
                    }
                    _ => None,
                },
                Mode::Help(_) => Some(match key.code {
                    KeyCode::Up => Action::HelpScroll(-1),
                    KeyCode::Down => Action::HelpScroll(1),
                    KeyCode::PageUp => Action::HelpScroll(-10),
                    KeyCode::PageDown | KeyCode::Char(' ') => Action::HelpScroll(10),
                    _ => Action::Back,
                }),
                Mode::JobDetail(_) | Mode::NodeDetail(_) | Mode::Alarms => Some(Action::Back),
                Mode::Held(_) => Some(match key.code {
                    KeyCode::Up => Action::Up,
                    KeyCode::Down => Action::Down,
                    KeyCode::Enter => Action::DeliverHeld,
                    KeyCode::Char('d') => Action::DiscardHeld,
                    KeyCode::Char('r') => Action::ReleaseHeld,
                    _ => Action::Back,
                }),
                Mode::Normal => keymap::lookup(bindings, key, app.focus),
            }
        }
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click(mouse.column, mouse.row)),
            MouseEventKind::ScrollUp => Some(Action::Scroll(mouse.column, mouse.row, -1)),
            MouseEventKind::ScrollDown => Some(Action::Scroll(mouse.column, mouse.row, 1)),
            _ => None,
        },
        Event::Resize(w, h) => Some(Action::Resize(w, h)),
        _ => None,
    }
}

/// The key table (with the config's rebinds) and an async runtime, or the exit code of why not.
fn prepare(config: &Config) -> Result<(Vec<Binding>, tokio::runtime::Runtime), ExitCode> {
    let bindings = keymap::bindings(&config.keys).map_err(|e| {
        eprintln!("error: config: {e}");
        ExitCode::from(1)
    })?;
    // The supervisor, the links' proxies and the feed share one thread, and the console's own
    // loop has the main thread: handing work between two runtime threads cost more than it
    // gained (docs/performance/console.md, "The console under load"). `tcluster bench` runs
    // the same tasks on a single thread when it measures detection and failover.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(1)
        })?;
    Ok((bindings, runtime))
}

/// `tcluster TOPOLOGY`: launches the cluster and opens the console on it. The topology's
/// `warnings` (one line each) open the Logs pane, attributed to `tcluster`.
pub fn launch_and_run(
    topology: Topology,
    options: RunOptions,
    config: Config,
    warnings: Vec<String>,
) -> ExitCode {
    let (bindings, runtime) = match prepare(&config) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let log_file = options.state_dir.join("logs/tcluster.log");
    let state_dir = options.state_dir.clone();
    runtime.block_on(async move {
        eprintln!("starting {} …", topology.globals.system_name);
        let handle = match supervisor::launch(topology.clone(), options).await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        crate::logging::init_to_file(&log_file);
        let mut app = App::for_run(&handle.info, config);
        // The panes show the supervisor's reading: every event is applied once.
        app.read_from(handle.reading.clone(), &handle.other_readings);
        use crate::supervisor::feed::Feed;
        use crate::supervisor::logs::{Level, LogLine};
        let start = format!(
            "{}; recording in {} (tcluster replay)",
            handle.start.describe(&state_dir),
            handle.recording.display()
        );
        let warnings = warnings.into_iter().map(|w| (Level::Warn, w));
        for (level, text) in std::iter::once((Level::Info, start)).chain(warnings) {
            let node = std::sync::Arc::from("tcluster");
            handle.feeder.send(Feed::Log(LogLine {
                at_ms: 0,
                node,
                level,
                text,
            }));
        }
        let result = run(
            app,
            &bindings,
            Some(&handle),
            handle
                .coordinator
                .map(|a| a.to_string())
                .unwrap_or_default(),
            topology.globals.cluster_secret.clone(),
            handle.started,
        )
        .await;
        println!("stopping every node …");
        if let Some(summary) = handle.stop().await {
            print!("{summary}");
        }
        report(result)
    })
}

/// `tcluster attach ADDRESS`: the console on a cluster this console did not launch.
pub fn attach_and_run(address: String, secret: Option<String>, config: Config) -> ExitCode {
    let (bindings, runtime) = match prepare(&config) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let mut client = match Client::connect(&address, "console", secret.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let (name, term) = match client.request(Message::Status { job: None }).await {
            Ok(Message::StatusReport { report }) => (report.coordinator, report.term),
            Ok(other) => {
                eprintln!("error: {address} did not answer like a coordinator: {other:?}");
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let mut row = NodeRow::new(&name, "master");
        row.status.process = crate::view::Process::Running;
        row.status.address = Some(address.clone());
        let mut app = App::new(&format!("attached to {address}"), &name, vec![row], config);
        app.cluster.write().term = term;
        app.launched = false;
        report(run(app, &bindings, None, address, secret, Instant::now()).await)
    })
}

fn report(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the terminal failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// How often the loop reads the cluster's news, at most.
const FEED_PACE: Duration = Duration::from_millis(10);

/// The loop: sources → actions → update → effects; draw when something changed.
async fn run(
    mut app: App,
    bindings: &[Binding],
    handle: Option<&SupervisorHandle>,
    coordinator: String,
    secret: Option<String>,
    started: Instant,
) -> std::io::Result<()> {
    // Clocks are read against this console's own clock (a launched run's supervisor reads
    // them against the same instant).
    if app.advances_readings {
        let epoch = crate::clock::system_ms_at(started);
        for reading in std::iter::once(&app.cluster).chain(app.others.values()) {
            reading.write().clocks = crate::view::Clocks::new(epoch);
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let mut feed = spawn_sources(&tx, handle, coordinator.clone(), secret.clone(), started);
    let mut feed_open = true;
    // The feed is read at most every FEED_PACE: under a flood of cluster news the loop wakes
    // a hundred times a second, not once per item. Keys are read the moment they come.
    let mut feed_due = tokio::time::Instant::now();
    let chat = handle.and_then(|h| h.chat.clone());
    let mut terminal = ratatui::init();
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::EnableMouseCapture);
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    // How long each frame took, kept when `--frame-stats` asks (at most a million: 8 MB).
    let mut frames: Vec<f64> = Vec::new();
    let keep_frames = app.config.frame_stats.is_some();
    let began = Instant::now();
    terminal.draw(|f| draw::draw(&app, bindings, f))?;
    if keep_frames {
        frames.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    let mut last_draw = Instant::now();
    let mut dirty = false;
    // Looking back at the run so far (`←` on the Timeline): the live app goes on meanwhile.
    let mut looking_back: Option<replay::Player> = None;
    // Kept from one pass to the next, so that a burst of thousands of items does not grow
    // them again each time.
    let mut inputs: Vec<Input> = Vec::new();
    let mut actions: Vec<Action> = Vec::new();
    let result = loop {
        let feed_ready = feed_open && tokio::time::Instant::now() >= feed_due;
        let mut woke_by = None;
        tokio::select! {
            input = rx.recv() => inputs.extend(input),
            item = feed.recv(), if feed_ready => woke_by = Some(item),
            _ = tokio::time::sleep_until(feed_due), if feed_open && !feed_ready => {}
            _ = tokio::time::sleep(Duration::from_millis(40)), if dirty => {}
        }
        while let Ok(more) = rx.try_recv() {
            inputs.push(more);
            if inputs.len() >= 4096 {
                break;
            }
        }
        if feed_open && tokio::time::Instant::now() >= feed_due {
            feed_open = sources::feed_actions(&mut feed, woke_by, 4096, &mut actions);
            if !actions.is_empty() {
                feed_due = tokio::time::Instant::now() + FEED_PACE;
            }
            inputs.extend(actions.drain(..).map(Input::Action));
        }
        let mut effects = Vec::new();
        for input in inputs.drain(..) {
            if let Some(player) = looking_back.as_mut()
                && let Input::Terminal(event) = &input
            {
                if !look_back_input(player, &mut app, event) {
                    looking_back = None;
                }
                dirty = true;
                continue;
            }
            // The presenter aid: every key press, as the class should see it.
            if app.show_keys
                && let Input::Terminal(Event::Key(key)) = &input
                && key.kind == event::KeyEventKind::Press
            {
                let label = keymap::key_label(key.code, key.modifiers);
                effects.extend(update(&mut app, Action::KeyPressed(label)));
                dirty = true;
            }
            let action = match input {
                Input::Terminal(event) => translate(&app, bindings, event),
                Input::Action(action) => Some(action),
            };
            if let Some(action) = action {
                // Messages on links only show in the timeline view: elsewhere they need no frame.
                let visible =
                    !matches!(action, Action::Message(_)) || app.view == app::View::Timeline;
                effects.extend(update(&mut app, action));
                dirty |= visible;
            }
        }
        for effect in effects {
            match (effect, handle) {
                (Effect::Quit, _) => {}
                (Effect::LookBack, Some(h)) => match look_back(h, &app) {
                    Ok(player) => looking_back = Some(player),
                    Err(e) => app.flash = Some((e, app.now_ms)),
                },
                (Effect::ChatPost { channel, text }, _) => {
                    if let Some(chat) = &chat {
                        let _ = chat.send(Message::ChatCreate {
                            channel: channel.clone(),
                        });
                        let _ = chat.send(Message::ChatPublish { channel, text });
                    }
                }
                (Effect::Act(action), Some(h)) => {
                    let _ = h.commands.send(Request::Act(action)).await;
                }
                (Effect::Scenario(name), Some(h)) => {
                    let _ = h.commands.send(Request::RunScenario(name)).await;
                }
                (effect @ (Effect::Deliver(_) | Effect::Discard(_)), Some(h)) => {
                    let (id, deliver) = match effect {
                        Effect::Deliver(id) => (id, true),
                        Effect::Discard(id) => (id, false),
                        _ => continue,
                    };
                    // A node holding it on its own link is told, and reports what it did (its
                    // connection may have closed meanwhile: the diagram shows it lost): say only
                    // what is known yet.
                    let by_node = h.shaper.keeper_of(id).is_some();
                    let result = if deliver {
                        h.shaper.deliver_held(id)
                    } else {
                        h.shaper.discard_held(id)
                    };
                    let verb = match (deliver, by_node) {
                        (true, true) => "delivering",
                        (true, false) => "delivered",
                        (false, true) => "dropping",
                        (false, false) => "dropped",
                    };
                    let text = match result {
                        Ok(m) => format!("{verb} by hand: {} {} → {}", m.kind, m.from, m.to),
                        Err(e) => e,
                    };
                    let _ = tx.send(Input::Action(Action::Flash(text)));
                    let _ = tx.send(Input::Action(Action::Held(h.shaper.held())));
                }
                (
                    Effect::Act(crate::topology::ClusterAction::Submit {
                        data,
                        count,
                        priority,
                        ..
                    }),
                    None,
                ) => {
                    let tx = tx.clone();
                    let (addr, secret) = (coordinator.clone(), secret.clone());
                    tokio::spawn(async move {
                        let text = match Client::connect(&addr, "console", secret.as_deref()).await
                        {
                            Ok(mut c) => match c
                                .request(Message::Submit {
                                    data,
                                    count,
                                    priority,
                                    token: None,
                                    notify: false,
                                })
                                .await
                            {
                                Ok(Message::Accepted { jobs, last }) => {
                                    let n =
                                        crate::protocol::message::accepted_ids(&jobs, last).len();
                                    format!("submitted {n} jobs")
                                }
                                Ok(other) => format!("submit: {other:?}"),
                                Err(e) => format!("submit failed: {e}"),
                            },
                            Err(e) => format!("submit failed: {e}"),
                        };
                        let _ = tx.send(Input::Action(Action::Flash(text)));
                    });
                }
                (_, None) => {}
            }
        }
        if app.quit {
            break Ok(());
        }
        if dirty && last_draw.elapsed() >= Duration::from_millis(33) {
            let shown = looking_back.as_ref().map_or(&app, |p| &p.app);
            let began = Instant::now();
            if let Err(e) = terminal.draw(|f| draw::draw(shown, bindings, f)) {
                break Err(e);
            }
            if keep_frames && frames.len() < 1_000_000 {
                frames.push(began.elapsed().as_secs_f64() * 1000.0);
            }
            last_draw = Instant::now();
            dirty = false;
        }
    };
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::DisableMouseCapture);
    ratatui::restore();
    if let Some(path) = &app.config.frame_stats {
        let spread = crate::clock::Spread::of(frames);
        let written = serde_json::to_vec(&spread)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(e) = written {
            eprintln!(
                "error: cannot write the frame times to {}: {e}",
                path.display()
            );
        }
    }
    result
}

/// The run so far, from its recording, a second before now: the Timeline as it was.
fn look_back(handle: &SupervisorHandle, app: &App) -> Result<replay::Player, String> {
    let recording = crate::supervisor::record::Recording::open(&handle.recording)
        .map_err(|e| format!("cannot look back: {e}"))?;
    let mut player = replay::Player::new(recording, app.config.clone());
    player.app.view = app.view;
    player.app.focus = app.focus;
    player.app.size = app.size;
    player.app.timeline_view = app.timeline_view.clone();
    player.scrubber.live = true;
    let end = player.scrubber.end_ms;
    player.seek(end.saturating_sub(1000));
    Ok(player)
}

/// A key (or resize) while looking back: ← and → step, and stepping past the end or any other
/// key returns to the live run (the key does nothing else). False when back to live.
fn look_back_input(player: &mut replay::Player, app: &mut App, event: &Event) -> bool {
    match event {
        Event::Resize(w, h) => {
            update(app, Action::Resize(*w, *h));
            update(&mut player.app, Action::Resize(*w, *h));
            true
        }
        Event::Key(key) if key.kind == KeyEventKind::Release => true,
        Event::Key(key) if matches!(key.code, KeyCode::Left | KeyCode::Right) => {
            let at = player.at_ms();
            replay::key(player, *key);
            !(key.code == KeyCode::Right && at >= player.scrubber.end_ms)
        }
        Event::Key(_) => false,
        _ => true,
    }
}

/// The default config path's settings, or the given file's.
pub fn load_config(path: Option<PathBuf>) -> Result<Config, config::ConfigError> {
    Config::load(path.as_deref())
}
