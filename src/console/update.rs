//! `update(&mut App, Action) -> effects`: the only code that changes the console's state.
//!
//! Effects are what the console asks of the outside world (act on the cluster, run a scenario,
//! quit); the run loop carries them out. Nothing here waits or draws, so every behaviour of the
//! console can be tested by feeding actions and looking at the `App`.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;

use super::app::*;
use super::command;
use super::keymap::Action;
use super::layout;
use crate::protocol::message::{ChatBody, Health, JobState};
use crate::role::event::EventKind;
use crate::supervisor::logs::Level;
use crate::supervisor::timeline::TimelineKind;
use crate::supervisor::{NodeState, Update};
use crate::topology::Action as ClusterAction;

/// What the console asks of the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Do this to the cluster.
    Act(ClusterAction),
    /// Run a scenario.
    Scenario(String),
    /// Post `text` to `channel` (created if needed) as the operator.
    ChatPost {
        /// The channel.
        channel: String,
        /// The text.
        text: String,
    },
    /// Stop everything and leave.
    Quit,
}

/// How long a banner or a status message stays.
const BANNER_MS: u64 = 6000;
const FLASH_MS: u64 = 4000;
/// Seconds of messages kept for the space-time diagram.
const MESSAGE_WINDOW_MS: u64 = 15_000;

/// Applies one action.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Tick(now) => tick(app, now),
        Action::Resize(w, h) => app.size = (w, h),
        Action::Update(Update::Node(status)) => {
            let index = match app.node_index(&status.name) {
                Some(i) => i,
                None => {
                    app.nodes
                        .push(NodeRow::new(&status.name, &status.kind, &status.role));
                    app.nodes.len() - 1
                }
            };
            let row = &mut app.nodes[index];
            row.state = status.state;
            row.pid = status.pid;
            row.role = status.role;
        }
        Action::Update(Update::Timeline(event)) => timeline(app, event),
        Action::Log(line) => {
            let colours = app.logs.colours.len();
            app.logs.colours.entry(line.node.clone()).or_insert(colours);
            let number = app.logs.end();
            if let Some(search) = &mut app.logs.search
                && contains_ignore_case(&line.text, &search.query)
            {
                search.matches.push(number);
            }
            if app.logs.lines.len() == app.logs.cap {
                app.logs.lines.pop_front();
                app.logs.first += 1;
                if let Some(search) = &mut app.logs.search {
                    let first = app.logs.first;
                    let before = search.matches.len();
                    search.matches.retain(|&m| m >= first);
                    let gone = before - search.matches.len();
                    search.current = search.current.map(|c| c.saturating_sub(gone));
                }
            }
            app.logs.lines.push_back(line);
        }
        Action::Workers(views) => {
            for view in views {
                let index = match app.node_index(&view.name) {
                    Some(i) => i,
                    // A student's worker, not in the topology: it gets a row too.
                    None => {
                        app.nodes.push(NodeRow::new(&view.name, "worker", "worker"));
                        app.nodes.len() - 1
                    }
                };
                let row = &mut app.nodes[index];
                row.heartbeat_age_ms = Some(view.heartbeat_age_ms);
                row.heartbeat_history.push_back(view.heartbeat_age_ms);
                if row.heartbeat_history.len() > HEARTBEAT_HISTORY {
                    row.heartbeat_history.pop_front();
                }
                row.running = view.running;
                row.slots = view.slots;
                row.done = view.done;
                row.clock = row.clock.max(view.clock);
                if row.pid.is_none() && row.state == NodeState::Starting {
                    row.state = match view.health {
                        Health::Healthy => NodeState::Healthy,
                        Health::Suspect => NodeState::Suspect,
                        Health::Dead => NodeState::Dead,
                    };
                }
            }
        }
        Action::Usage(usage) => {
            for row in &mut app.nodes {
                let found = row
                    .pid
                    .and_then(|pid| usage.iter().find(|(p, _, _)| *p == pid));
                row.cpu = found.map(|u| u.1);
                row.memory = found.map(|u| u.2);
            }
        }
        Action::Links(links) => app.links = links,
        Action::Message(message) => {
            if let Some(clock) = message.clock
                && let Some(i) = app.node_index(&message.from)
            {
                app.nodes[i].clock = app.nodes[i].clock.max(clock);
            }
            app.messages.push_back(message);
            if app.messages.len() > MESSAGES_CAP {
                app.messages.pop_front();
            }
        }
        Action::Flash(text) => app.flash = Some((text, app.now_ms)),
        Action::Chat(news) => chat_news(app, news),
        Action::ChatPrev => cycle_channel(app, -1),
        Action::ChatNext => cycle_channel(app, 1),
        Action::Quit => {
            app.quit = true;
            return vec![Effect::Quit];
        }
        Action::Help => {
            app.mode = if matches!(app.mode, Mode::Help) {
                Mode::Normal
            } else {
                Mode::Help
            };
        }
        Action::CommandLine => {
            let mut area = TextArea::default();
            area.set_placeholder_text(
                "kill worker-1 · submit 5 sleep 1s · partition a b · heal · scenario NAME · help",
            );
            app.mode = Mode::Command(area);
            app.history_pos = None;
        }
        Action::SubmitForm => app.mode = Mode::Submit(Box::default()),
        Action::Search => {
            let mut area = TextArea::default();
            area.set_placeholder_text("text to find in the log");
            app.focus = Pane::Logs;
            app.mode = Mode::Search(area);
        }
        Action::NextPane | Action::PrevPane => {
            if app.view == View::Overview {
                let panes = Pane::OVERVIEW;
                let i = panes.iter().position(|p| *p == app.focus).unwrap_or(0);
                let next = if matches!(action, Action::NextPane) {
                    i + 1
                } else {
                    i + panes.len() - 1
                };
                app.focus = panes[next % panes.len()];
            }
        }
        Action::Show(view) => {
            app.view = view;
            app.zoom = false;
            app.focus = match view {
                View::Overview => Pane::Nodes,
                View::Map => Pane::Map,
                View::Timeline => Pane::Timeline,
            };
        }
        Action::Zoom => app.zoom = !app.zoom && app.view == View::Overview,
        Action::Kill | Action::PauseResume | Action::Restart | Action::Partition => {
            return node_action(app, &action);
        }
        Action::Heal => return act(app, ClusterAction::Heal { a: None, b: None }, false),
        Action::Up => move_selection(app, -1),
        Action::Down => move_selection(app, 1),
        Action::PageUp => move_selection(app, -(page(app) as i64)),
        Action::PageDown => move_selection(app, page(app) as i64),
        Action::Home => move_selection(app, i64::MIN / 2),
        Action::End => {
            if app.focus == Pane::Chat {
                app.chat.back = 0;
            } else if app.focus == Pane::Logs {
                app.logs.follow = true;
            } else {
                move_selection(app, i64::MAX / 2);
            }
        }
        Action::Open => {
            if app.focus == Pane::Jobs {
                app.jobs.refresh();
                if let Some(id) = app.jobs.visible.get(app.selected(Pane::Jobs)) {
                    app.mode = Mode::JobDetail(*id);
                }
            }
        }
        Action::Back => {
            if !matches!(app.mode, Mode::Normal) {
                app.mode = Mode::Normal;
            } else if app.zoom {
                app.zoom = false;
            } else if app.logs.search.is_some() {
                app.logs.search = None;
            } else if app.view != View::Overview {
                return update(app, Action::Show(View::Overview));
            }
        }
        Action::SearchNext => jump_to_match(app, 1),
        Action::SearchPrev => jump_to_match(app, -1),
        Action::Follow => {
            app.logs.follow = !app.logs.follow;
            if !app.logs.follow {
                app.logs.bottom = app.logs.end().saturating_sub(1);
            }
        }
        Action::Wrap => app.logs.wrap = !app.logs.wrap,
        Action::Level => {
            app.logs.min_level = match app.logs.min_level {
                Level::Trace => Level::Debug,
                Level::Debug => Level::Info,
                Level::Info => Level::Warn,
                Level::Warn => Level::Error,
                Level::Error => Level::Trace,
            };
            app.flash = Some((
                format!("logs: {} and above", app.logs.min_level.as_str()),
                app.now_ms,
            ));
        }
        Action::NodeFilter => {
            app.logs.node = match (&app.logs.node, app.selected_node()) {
                (None, Some(node)) => Some(node.name.clone()),
                _ => None,
            };
            let shown = app
                .logs
                .node
                .clone()
                .unwrap_or_else(|| "every node".to_string());
            app.flash = Some((format!("logs: {shown}"), app.now_ms));
        }
        Action::JobFilter => {
            app.jobs.filter = match app.jobs.filter {
                None => Some(JobState::Queued),
                Some(JobState::Queued) => Some(JobState::Running),
                Some(JobState::Running) | Some(JobState::Assigned) => Some(JobState::Completed),
                Some(JobState::Completed) => Some(JobState::Failed),
                Some(JobState::Failed) => None,
            };
            app.jobs.stale = true;
            app.jobs.refresh();
            app.selected.insert(Pane::Jobs, 0);
        }
        Action::ChatInput => {
            if app.chat.has_server {
                app.mode = Mode::Chat(TextArea::default());
            } else {
                app.flash = Some(("this topology has no chat server".to_string(), app.now_ms));
            }
        }
        Action::Text(key) => return text(app, key),
        Action::Confirm(yes) => {
            if let Mode::Confirm(action) = std::mem::replace(&mut app.mode, Mode::Normal)
                && yes
            {
                return vec![Effect::Act(action)];
            }
        }
        Action::Click(x, y) => click(app, x, y),
        Action::Scroll(x, y, delta) => {
            if let Some(pane) = layout::pane_at(app, x, y) {
                app.focus = pane;
                move_selection(app, i64::from(delta) * 3);
            }
        }
    }
    Vec::new()
}

fn tick(app: &mut App, now: u64) {
    let (old_second, new_second) = (app.now_ms / 1000, now / 1000);
    app.now_ms = now;
    for _ in old_second..new_second.min(old_second + THROUGHPUT_HISTORY as u64) {
        app.jobs.throughput.push_back(0);
        if app.jobs.throughput.len() > THROUGHPUT_HISTORY {
            app.jobs.throughput.pop_front();
        }
    }
    app.jobs.refresh();
    if app
        .banner
        .as_ref()
        .is_some_and(|(_, at)| now.saturating_sub(*at) > BANNER_MS)
    {
        app.banner = None;
    }
    if app
        .flash
        .as_ref()
        .is_some_and(|(_, at)| now.saturating_sub(*at) > FLASH_MS)
    {
        app.flash = None;
    }
    while app
        .messages
        .front()
        .is_some_and(|m| m.at_ms + MESSAGE_WINDOW_MS < now)
    {
        app.messages.pop_front();
    }
}

fn timeline(app: &mut App, event: crate::supervisor::timeline::TimelineEvent) {
    let at = event.at_ms;
    match &event.kind {
        TimelineKind::Cluster { event: cluster } => {
            job_event(app, at, &cluster.kind);
            if let Some(i) = app.node_index(&event.source) {
                app.nodes[i].clock = app.nodes[i].clock.max(cluster.clock);
            }
            if matches!(cluster.kind, EventKind::JobProgress { .. }) {
                // Progress updates the job's gauge; it would drown the timeline.
                return;
            }
        }
        TimelineKind::Action {
            fault: Some(number),
            text,
            ..
        } => {
            app.faults.push(FaultView {
                number: *number,
                text: text.clone(),
                at_ms: at,
                detected: None,
                recovered_ms: None,
            });
        }
        TimelineKind::Detected { fault, by, .. } => {
            if let Some(f) = app.faults.iter_mut().find(|f| f.number == *fault) {
                f.detected = Some((at, by.clone()));
            }
        }
        TimelineKind::Recovered {
            fault, after_ms, ..
        } => {
            if let Some(f) = app.faults.iter_mut().find(|f| f.number == *fault) {
                f.recovered_ms = Some(f.at_ms + after_ms);
            }
        }
        TimelineKind::Say { text } => app.banner = Some((text.clone(), at)),
        // What the supervisor has to say (a refused submission, a node not joining) is for the
        // operator to see now, not only in the timeline.
        TimelineKind::Note { text } if event.source == "supervisor" => {
            app.flash = Some((text.clone(), at))
        }
        _ => {}
    }
    app.timeline.push_back(event);
    if app.timeline.len() > TIMELINE_CAP {
        app.timeline.pop_front();
    }
}

fn job_event(app: &mut App, at: u64, kind: &EventKind) {
    let jobs = &mut app.jobs;
    let set_state = |jobs: &mut Jobs, id, state: JobState| {
        if let Some(job) = jobs.all.get_mut(&id)
            && job.state != state
        {
            jobs.counts.remove(job.state);
            jobs.counts.add(state);
            job.state = state;
            jobs.stale |= jobs.filter.is_some();
        }
    };
    match kind {
        EventKind::JobSubmitted { job, data, by, .. } => {
            if jobs.all.contains_key(job) {
                return;
            }
            jobs.all.insert(
                *job,
                JobRow {
                    id: *job,
                    data: data.clone(),
                    state: JobState::Queued,
                    worker: None,
                    attempts: 0,
                    submitted_ms: at,
                    finished_ms: None,
                    progress: 0,
                    outcome: None,
                    history: vec![(at, format!("submitted by {by}"))],
                },
            );
            jobs.counts.add(JobState::Queued);
            if jobs.filter.is_none_or(|f| f == JobState::Queued) && !jobs.stale {
                jobs.visible.push(*job);
            }
        }
        EventKind::JobAssigned {
            job,
            worker,
            attempt,
        } => {
            set_state(jobs, *job, JobState::Assigned);
            if let Some(j) = jobs.all.get_mut(job) {
                j.worker = Some(worker.clone());
                j.attempts = *attempt;
                j.progress = 0;
                j.history
                    .push((at, format!("assigned to {worker} (attempt {attempt})")));
            }
        }
        EventKind::JobStarted { job, worker } => {
            set_state(jobs, *job, JobState::Running);
            if let Some(j) = jobs.all.get_mut(job) {
                j.history.push((at, format!("started on {worker}")));
            }
        }
        EventKind::JobProgress { job, percent, .. } => {
            if let Some(j) = jobs.all.get_mut(job) {
                j.progress = *percent;
            }
        }
        EventKind::JobCompleted {
            job,
            worker,
            result,
        } => {
            set_state(jobs, *job, JobState::Completed);
            if let Some(j) = jobs.all.get_mut(job) {
                j.progress = 100;
                j.finished_ms = Some(at);
                j.worker = Some(worker.clone());
                j.outcome = Some(result.clone());
                j.history
                    .push((at, format!("completed by {worker}: {result}")));
            }
            if let Some(last) = jobs.throughput.back_mut() {
                *last += 1;
            } else {
                jobs.throughput.push_back(1);
            }
        }
        EventKind::JobFailed {
            job,
            worker,
            error,
            retry_in_ms,
        } => {
            let state = if retry_in_ms.is_some() {
                JobState::Queued
            } else {
                JobState::Failed
            };
            set_state(jobs, *job, state);
            if let Some(j) = jobs.all.get_mut(job) {
                j.outcome = Some(error.clone());
                let then = match retry_in_ms {
                    Some(ms) => format!("; retry in {ms}ms"),
                    None => "; failed for good".to_string(),
                };
                j.history
                    .push((at, format!("failed on {worker}: {error}{then}")));
                if retry_in_ms.is_none() {
                    j.finished_ms = Some(at);
                }
            }
        }
        EventKind::JobRequeued {
            job,
            worker,
            reason,
        } => {
            set_state(jobs, *job, JobState::Queued);
            if let Some(j) = jobs.all.get_mut(job) {
                j.progress = 0;
                j.history
                    .push((at, format!("{reason} → requeued (was on {worker})")));
            }
        }
        EventKind::JobReclaimed { job, worker } => {
            set_state(jobs, *job, JobState::Running);
            if let Some(j) = jobs.all.get_mut(job) {
                j.history
                    .push((at, format!("kept by {worker}, which came back")));
            }
        }
        EventKind::Takeover {
            coordinator, term, ..
        } => {
            app.primary = coordinator.clone();
            app.term = *term;
            app.flash = Some((
                format!("{coordinator} took over as primary in term {term}"),
                at,
            ));
        }
        EventKind::DuplicateResult { job, worker } => {
            jobs.duplicates += 1;
            if let Some(j) = jobs.all.get_mut(job) {
                j.history
                    .push((at, format!("duplicate result from {worker}, ignored")));
            }
        }
        EventKind::WorkerJoined { worker, .. } | EventKind::WorkerRejoined { worker, .. }
            if app.node_index(worker).is_none() =>
        {
            let mut row = NodeRow::new(worker, "worker", "worker");
            row.state = NodeState::Healthy;
            app.nodes.push(row);
        }
        _ => {}
    }
}

/// k, p, r, x on the selected node.
fn node_action(app: &mut App, action: &Action) -> Vec<Effect> {
    let Some(node) = app.selected_node() else {
        app.flash = Some((
            "select a node first (Tab to Nodes, ↑↓)".to_string(),
            app.now_ms,
        ));
        return Vec::new();
    };
    let name = node.name.clone();
    let (cluster_action, destructive) = match action {
        Action::Kill => (ClusterAction::Kill(name), true),
        Action::PauseResume if node.state == NodeState::Paused => {
            (ClusterAction::Resume(name), false)
        }
        Action::PauseResume => (ClusterAction::Pause(name), false),
        Action::Restart => (ClusterAction::Restart(name), true),
        _ => (
            ClusterAction::Partition {
                a: name,
                b: None,
                one_way: false,
            },
            true,
        ),
    };
    act(app, cluster_action, destructive)
}

/// Asks for confirmation if needed, else acts.
fn act(app: &mut App, action: ClusterAction, destructive: bool) -> Vec<Effect> {
    if !app.launched && !matches!(action, ClusterAction::Submit { .. } | ClusterAction::Say(_)) {
        app.flash = Some((
            "faults need the cluster launched by this console (tcluster TOPOLOGY)".to_string(),
            app.now_ms,
        ));
        return Vec::new();
    }
    if destructive && app.config.confirm {
        app.mode = Mode::Confirm(action);
        return Vec::new();
    }
    vec![Effect::Act(action)]
}

fn page(app: &App) -> usize {
    (app.size.1 as usize / 2).saturating_sub(3).max(1)
}

fn chat_news(app: &mut App, news: ChatNews) {
    let chat = &mut app.chat;
    match news {
        ChatNews::Up(server) => {
            chat_notice(
                chat,
                format!("connected to {server} as {}", chat.login_name()),
            );
            chat.server = Some(server);
        }
        ChatNews::Down(server, why) => {
            chat.server = None;
            chat_notice(
                chat,
                format!("lost {server} ({why}); moving to another chat server"),
            );
            app.flash = Some((format!("chat: lost {server}, moving"), app.now_ms));
        }
        ChatNews::Entries(entries) => {
            for entry in entries {
                if let ChatBody::Channel { channel, .. } | ChatBody::Post { channel, .. } =
                    &entry.body
                    && let Err(at) = chat.channels.binary_search(channel)
                {
                    chat.channels.insert(at, channel.clone());
                }
                let shown = chat.shows(&ChatItem::Entry(entry.clone()));
                if chat
                    .items
                    .insert(entry.key(), ChatItem::Entry(entry))
                    .is_none()
                    && shown
                    && chat.back > 0
                {
                    // Scrolled back: keep the same lines in view.
                    chat.back += 1;
                }
            }
            while chat.items.len() > CHAT_CAP {
                chat.items.pop_first();
            }
        }
        ChatNews::Channels(channels) => {
            for channel in channels {
                if let Err(at) = chat.channels.binary_search(&channel) {
                    chat.channels.insert(at, channel);
                }
            }
        }
        ChatNews::Refused(why) => app.flash = Some((format!("chat: {why}"), app.now_ms)),
        ChatNews::LoggedIn(name) => {
            if name != chat.login_name() {
                chat_notice(
                    chat,
                    format!("`{}` is taken here: posting as {name}", chat.login_name()),
                );
            }
            chat.login = name;
        }
    }
}

/// A notice sorts after every entry seen so far.
fn chat_notice(chat: &mut Chat, text: String) {
    let clock = chat.items.last_key_value().map_or(0, |(k, _)| k.0);
    chat.notices += 1;
    chat.items.insert(
        (clock, "\u{10FFFF}".to_string(), chat.notices),
        ChatItem::Notice(text),
    );
}

fn cycle_channel(app: &mut App, delta: i64) {
    let chat = &mut app.chat;
    // Position 0 is "all channels", then each channel.
    let n = chat.channels.len() as i64 + 1;
    let now = match &chat.channel {
        None => 0,
        Some(c) => chat
            .channels
            .iter()
            .position(|x| x == c)
            .map_or(0, |i| i as i64 + 1),
    };
    let next = (now + delta).rem_euclid(n);
    chat.channel = (next > 0).then(|| chat.channels[next as usize - 1].clone());
    chat.back = 0;
}

fn move_selection(app: &mut App, delta: i64) {
    let pane = app.focus;
    let len = match pane {
        Pane::Chat => {
            let chat = &mut app.chat;
            let shown = chat.items.values().filter(|i| chat.shows(i)).count();
            chat.back =
                (chat.back as i64 - delta).clamp(0, shown.saturating_sub(1) as i64) as usize;
            return;
        }
        Pane::Nodes => app.nodes.len(),
        Pane::Jobs => {
            app.jobs.refresh();
            app.jobs.visible.len()
        }
        Pane::Timeline => app.timeline.len(),
        Pane::Logs => {
            let logs = &mut app.logs;
            if logs.lines.is_empty() {
                return;
            }
            let last = logs.end() - 1;
            let bottom = if logs.follow { last } else { logs.bottom };
            let moved = (bottom as i64 + delta).clamp(logs.first as i64, last as i64) as u64;
            logs.follow = moved == last && delta > 0;
            logs.bottom = moved;
            return;
        }
        _ => return,
    };
    if len == 0 {
        return;
    }
    let current = app.selected(pane) as i64;
    let next = (current + delta).clamp(0, len as i64 - 1) as usize;
    app.selected.insert(pane, next);
}

fn jump_to_match(app: &mut App, direction: i64) {
    let logs = &mut app.logs;
    let Some(search) = &mut logs.search else {
        return;
    };
    if search.matches.is_empty() {
        return;
    }
    let n = search.matches.len() as i64;
    let next = match search.current {
        None if direction > 0 => 0,
        None => n - 1,
        Some(c) => (c as i64 + direction).rem_euclid(n),
    } as usize;
    search.current = Some(next);
    logs.follow = false;
    logs.bottom = search.matches[next];
}

/// A key typed while a text field is open.
fn text(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if let (Mode::Command(area), KeyCode::Tab) = (&app.mode, key.code) {
        let line = area.lines().join(" ");
        let (completed, choices) = command::complete(&line, app);
        if completed != line {
            let mut area = TextArea::new(vec![completed]);
            area.move_cursor(ratatui_textarea::CursorMove::End);
            app.mode = Mode::Command(area);
        } else if choices.len() > 1 {
            app.flash = Some((choices.join("  "), app.now_ms));
        }
        return Vec::new();
    }
    match &mut app.mode {
        Mode::Command(area) => match key.code {
            KeyCode::Esc => app.mode = Mode::Normal,
            KeyCode::Enter => {
                let line = area.lines().join(" ").trim().to_string();
                app.mode = Mode::Normal;
                if line.is_empty() {
                    return Vec::new();
                }
                app.history.push(line.clone());
                return run_command(app, &line);
            }

            KeyCode::Up | KeyCode::Down => {
                if app.history.is_empty() {
                    return Vec::new();
                }
                let last = app.history.len() - 1;
                let pos = match (app.history_pos, key.code) {
                    (None, KeyCode::Up) => Some(last),
                    (Some(p), KeyCode::Up) => Some(p.saturating_sub(1)),
                    (Some(p), KeyCode::Down) if p < last => Some(p + 1),
                    _ => None,
                };
                app.history_pos = pos;
                let text = pos.map(|p| app.history[p].clone()).unwrap_or_default();
                if let Mode::Command(area) = &mut app.mode {
                    *area = TextArea::new(vec![text]);
                    area.move_cursor(ratatui_textarea::CursorMove::End);
                }
            }
            _ => {
                area.input(key);
            }
        },
        Mode::Search(area) => match key.code {
            KeyCode::Esc => app.mode = Mode::Normal,
            KeyCode::Enter => {
                let query = area.lines().join(" ");
                app.mode = Mode::Normal;
                search(app, query);
            }
            _ => {
                area.input(key);
            }
        },
        Mode::Submit(form) => match key.code {
            KeyCode::Esc => app.mode = Mode::Normal,
            KeyCode::Tab | KeyCode::Down => form.field = (form.field + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => form.field = (form.field + 2) % 3,
            KeyCode::Enter => {
                let value = |i: usize| form.fields[i].lines().join(" ").trim().to_string();
                let (data, count, priority) = (value(0), value(1), value(2));
                let count = count
                    .parse::<u32>()
                    .ok()
                    .filter(|c| (1..=100_000).contains(c));
                let priority = priority.parse::<i32>().ok();
                match (data.is_empty(), count, priority) {
                    (true, _, _) => {
                        app.flash =
                            Some(("a job needs data, such as sleep 2s".to_string(), app.now_ms))
                    }
                    (_, None, _) => {
                        app.flash = Some((
                            "count must be a whole number from 1 to 100000".to_string(),
                            app.now_ms,
                        ))
                    }
                    (_, _, None) => {
                        app.flash =
                            Some(("priority must be a whole number".to_string(), app.now_ms))
                    }
                    (false, Some(count), Some(priority)) => {
                        app.mode = Mode::Normal;
                        return vec![Effect::Act(ClusterAction::Submit {
                            data,
                            count,
                            priority,
                        })];
                    }
                }
            }
            _ => {
                // Typing into a field that still holds its default replaces the default.
                if !form.touched[form.field] && matches!(key.code, KeyCode::Char(_)) {
                    form.fields[form.field] = TextArea::default();
                }
                form.touched[form.field] = true;
                form.fields[form.field].input(key);
            }
        },
        Mode::Chat(area) => match key.code {
            KeyCode::Esc => app.mode = Mode::Normal,
            KeyCode::Enter => {
                let text = area.lines().join(" ").trim().to_string();
                if text.is_empty() {
                    app.mode = Mode::Normal;
                    return Vec::new();
                }
                if app.chat.server.is_none() {
                    app.flash = Some((
                        "no chat server is reachable: not sent (the text is kept)".to_string(),
                        app.now_ms,
                    ));
                    return Vec::new();
                }
                // `#lab hello` posts to #lab; anything else to the channel shown.
                let (channel, text) = match text.strip_prefix('#').and_then(|t| t.split_once(' ')) {
                    Some((channel, rest)) if !channel.is_empty() && !rest.trim().is_empty() => {
                        (channel.to_string(), rest.trim().to_string())
                    }
                    _ => (app.chat.post_channel(), text),
                };
                *area = TextArea::default();
                app.chat.back = 0;
                return vec![Effect::ChatPost { channel, text }];
            }
            _ => {
                area.input(key);
            }
        },
        _ => {}
    }
    Vec::new()
}

fn run_command(app: &mut App, line: &str) -> Vec<Effect> {
    match command::parse(line, app) {
        Ok(command::Parsed::Quit) => update(app, Action::Quit),
        Ok(command::Parsed::Help) => {
            app.mode = Mode::Help;
            Vec::new()
        }
        Ok(command::Parsed::Scenario(name)) => vec![Effect::Scenario(name)],
        // Typed out in full, an action is not confirmed again.
        Ok(command::Parsed::Act(action)) => act(app, action, false),
        Err(message) => {
            app.flash = Some((message, app.now_ms));
            Vec::new()
        }
    }
}

fn search(app: &mut App, query: String) {
    if query.is_empty() {
        app.logs.search = None;
        return;
    }
    let matches: Vec<u64> = app
        .logs
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| contains_ignore_case(&l.text, &query))
        .map(|(i, _)| app.logs.first + i as u64)
        .collect();
    let found = matches.len();
    app.logs.search = Some(Search {
        query: query.clone(),
        matches,
        current: None,
    });
    app.flash = Some((
        format!("{found} lines match {query:?}; n/N to go through them"),
        app.now_ms,
    ));
    jump_to_match(app, -1);
}

/// Case-insensitive substring test without allocating for ASCII text.
pub fn contains_ignore_case(text: &str, query: &str) -> bool {
    if query.is_empty() {
        return true;
    }
    let (t, q) = (text.as_bytes(), query.as_bytes());
    if text.is_ascii() && query.is_ascii() {
        return t.windows(q.len()).any(|w| w.eq_ignore_ascii_case(q));
    }
    text.to_lowercase().contains(&query.to_lowercase())
}

fn click(app: &mut App, x: u16, y: u16) {
    let Some(pane) = layout::pane_at(app, x, y) else {
        return;
    };
    app.focus = pane;
    if let Some(row) = layout::row_at(app, pane, y) {
        app.selected.insert(pane, row);
    }
}
