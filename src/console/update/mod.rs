//! `update(&mut App, Action) -> effects`: the only code that changes the console's state.
//!
//! Effects are what the console asks of the outside world (act on the cluster, run a scenario,
//! quit); the run loop carries them out. Nothing here waits or draws, so every behaviour of the
//! console can be tested by feeding actions and looking at the `App`.
//!
//! - [`news`]: what the world says (the supervisor, the primary's figures, links, logs);
//! - `input`: text typed into the command line, the search, the forms and the chat;
//! - `modes`: opening the command line, the search, the chat input; help; confirmations;
//! - `navigate`: focus, views, opening and leaving details, scrolling;
//! - `toggles`: what the logs, the timeline and the jobs pane show;
//! - here: the dispatch, time passing, moving the selection and acting on nodes.

mod held;
mod input;
mod modes;
mod navigate;
pub mod news;
mod toggles;

use super::app::*;
use super::keymap::Action;
use super::layout;
use crate::topology::ClusterAction;

pub use input::contains_ignore_case;

/// What the console asks of the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Do this to the cluster.
    Act(ClusterAction),
    /// Run a scenario.
    Scenario(String),
    /// Post `text` to `channel` (created if needed) as the operator.
    ChatPost { channel: String, text: String },
    /// Deliver held message `id` now.
    Deliver(u64),
    /// Drop held message `id`.
    Discard(u64),
    /// Show the run so far from its recording, a second back.
    LookBack,
    /// Stop everything and leave.
    Quit,
}

/// Keys shown at once with `:keys on`, and for how long each.
pub const KEYS_SHOWN: usize = 8;
pub const KEY_SHOWN_MS: u64 = 3000;

/// How long a `say` line or a banner stays, and a status message.
pub const BANNER_MS: u64 = 6000;
const FLASH_MS: u64 = 4000;

/// Applies one action.
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Tick(now) => tick(app, now),
        Action::Resize(w, h) => app.size = (w, h),
        Action::Update(update) => news::supervisor(app, update),
        Action::Log(line) => news::log(app, line),
        Action::Workers(views) => news::workers(app, views),
        Action::Usage(usage) => news::usage(app, &usage),
        Action::Links(links) => app.links = links,
        Action::Message(message) => news::message(app, message),
        Action::Flash(text) => app.flash = Some((text, app.now_ms)),
        Action::Chat(news) => input::chat_news(app, news),
        Action::ChatPrev => input::cycle_channel(app, -1),
        Action::ChatNext => input::cycle_channel(app, 1),
        Action::Quit => {
            app.quit = true;
            return vec![Effect::Quit];
        }
        Action::Help => modes::toggle_help(app),
        Action::LookBack if app.launched => return vec![Effect::LookBack],
        Action::LookBack => {
            app.flash = Some((
                "looking back needs the run's recording: the console that launched it has it"
                    .to_string(),
                app.now_ms,
            ))
        }
        Action::Alarms => app.mode = Mode::Alarms,
        Action::Hold => return held::hold_key(app),
        Action::Held(messages) => held::update_held(app, messages),
        Action::KeyPressed(label) => {
            if app.show_keys {
                app.keys_pressed.push_back((label, app.now_ms));
                while app.keys_pressed.len() > KEYS_SHOWN {
                    app.keys_pressed.pop_front();
                }
            }
        }
        Action::DeliverHeld => return held::selected(app, Effect::Deliver),
        Action::DiscardHeld => return held::selected(app, Effect::Discard),
        Action::ReleaseHeld => {
            app.mode = Mode::Normal;
            return vec![Effect::Act(ClusterAction::Release { a: None, b: None })];
        }
        Action::CommandLine => modes::open_command_line(app),
        Action::SubmitForm => app.mode = Mode::Submit(Box::default()),
        Action::Search => modes::open_search(app),
        Action::ChatInput => modes::open_chat(app),
        Action::Confirm(yes) => return modes::confirmed(app, yes),
        Action::NextPane => navigate::cycle_focus(app, true),
        Action::PrevPane => navigate::cycle_focus(app, false),
        Action::Show(view) => navigate::show(app, view),
        Action::Zoom => {
            if app.view != View::Map {
                app.zoom = !app.zoom;
            }
        }
        Action::Kill | Action::PauseResume | Action::Restart | Action::Partition => {
            return node_action(app, &action);
        }
        Action::Heal => return act(app, ClusterAction::Heal { a: None, b: None }, false),
        Action::Up => move_selection(app, -1),
        Action::Down => move_selection(app, 1),
        Action::PageUp => move_selection(app, -(page(app) as i64)),
        Action::PageDown => move_selection(app, page(app) as i64),
        Action::Home => move_selection(app, i64::MIN / 2),
        Action::End => navigate::end(app),
        Action::Open => navigate::open(app),
        Action::Back => navigate::back(app),
        Action::SearchNext => input::jump_to_match(app, 1),
        Action::SearchPrev => input::jump_to_match(app, -1),
        Action::Follow => toggles::follow(app),
        Action::Wrap => toggles::wrap(app),
        Action::Pings => toggles::pings(app),
        Action::Level => toggles::level(app),
        Action::NodeFilter => toggles::node_filter(app),
        Action::JobFilter => toggles::job_filter(app),
        Action::Text(key) => return input::text(app, key),
        Action::Click(x, y) => click(app, x, y),
        Action::Scroll(x, y, delta) => navigate::scroll(app, x, y, delta),
        Action::HelpScroll(delta) => {
            if let Mode::Help(top) = &mut app.mode {
                *top = (i64::from(*top) + i64::from(delta)).max(0) as u16;
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
    // The order follows the work: rebuilt at each tick (four a second) when jobs changed, at
    // most once a second while the cluster holds a long list.
    let long = app.cluster.read().state.jobs.len() > LONG_JOB_LIST;
    if !long || now.saturating_sub(app.jobs.rebuilt_ms) >= 1_000 {
        app.refresh_jobs();
    }
    if app
        .say
        .as_ref()
        .is_some_and(|(_, at)| now.saturating_sub(*at) > BANNER_MS)
    {
        app.say = None;
    }
    app.banners
        .retain(|b| now.saturating_sub(b.at_ms) <= BANNER_MS);
    if app
        .flash
        .as_ref()
        .is_some_and(|(_, at)| now.saturating_sub(*at) > FLASH_MS)
    {
        app.flash = None;
    }
    news::expire_messages(app, now);
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
    let name = node.name().to_string();
    let (cluster_action, destructive) = match action {
        Action::Kill => (ClusterAction::Kill(name), true),
        Action::PauseResume if node.status.faults.paused => (ClusterAction::Resume(name), false),
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
pub(crate) fn act(app: &mut App, action: ClusterAction, destructive: bool) -> Vec<Effect> {
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
    // Said at once; what came of it follows (a banner, the Faults table, the status line).
    app.flash = Some((action.to_string(), app.now_ms));
    vec![Effect::Act(action)]
}

/// Rows a page moves in the focused pane.
fn page(app: &App) -> usize {
    let height = layout::areas(app, layout::screen(app))
        .panes
        .iter()
        .find(|(p, _)| *p == app.focus)
        .map_or(app.size.1 / 2, |(_, r)| r.height);
    (height as usize).saturating_sub(3).max(1)
}

fn move_selection(app: &mut App, delta: i64) {
    if let Mode::Held(selected) = &mut app.mode {
        let last = app.held.len().saturating_sub(1) as i64;
        *selected = (*selected as i64 + delta).clamp(0, last) as usize;
        return;
    }
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
            app.refresh_jobs();
            app.jobs.visible.len()
        }
        Pane::Timeline if app.timeline_view.events_focused => {
            let view = &mut app.timeline_view;
            view.back = (view.back as i64 - delta)
                .clamp(0, app.timeline.len().saturating_sub(1) as i64)
                as usize;
            return;
        }
        Pane::Timeline => app.faults.len(),
        Pane::Logs => {
            let page = page(app) as u64;
            let logs = &mut app.logs;
            if logs.lines.is_empty() {
                return;
            }
            let last = logs.end() - 1;
            let bottom = if logs.follow { last } else { logs.bottom };
            // The top of the log shows a whole page, not one line at the top of an empty pane.
            let lowest = (logs.first + page.saturating_sub(1)).min(last);
            let moved = (bottom as i64 + delta).clamp(lowest as i64, last as i64) as u64;
            logs.follow = moved == last && delta > 0;
            logs.bottom = moved;
            return;
        }
        Pane::Map => app.link_pairs().len(),
    };
    if len == 0 {
        return;
    }
    let current = app.selected(pane) as i64;
    let next = (current + delta).clamp(0, len as i64 - 1) as usize;
    app.selected.insert(pane, next);
    if pane == Pane::Jobs {
        app.jobs.selected = app.jobs.visible.get(next).copied();
    }
}

fn click(app: &mut App, x: u16, y: u16) {
    let Some(pane) = layout::pane_at(app, x, y) else {
        return;
    };
    app.focus = pane;
    if let Some(row) = layout::row_at(app, pane, y) {
        app.selected.insert(pane, row);
        if pane == Pane::Jobs {
            app.jobs.selected = app.jobs.visible.get(row).copied();
        }
    }
}
