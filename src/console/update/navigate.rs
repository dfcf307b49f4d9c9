//! Moving around: which pane has the focus, which view shows, opening and leaving a detail,
//! and scrolling with the wheel.

use super::move_selection;
use crate::console::app::*;
use crate::console::layout;

/// Focuses the next (or previous) pane of the overview; in the timeline view, switches
/// between the diagram and the events.
pub fn cycle_focus(app: &mut App, forward: bool) {
    match app.view {
        View::Overview => {
            let panes = Pane::OVERVIEW;
            let i = panes.iter().position(|p| *p == app.focus).unwrap_or(0);
            let next = if forward { i + 1 } else { i + panes.len() - 1 };
            app.focus = panes[next % panes.len()];
        }
        View::Timeline => {
            app.timeline_view.events_focused = !app.timeline_view.events_focused;
        }
        View::Map => {}
    }
}

/// Shows a view, unzoomed, with its main pane focused.
pub fn show(app: &mut App, view: View) {
    app.view = view;
    app.zoom = false;
    app.focus = match view {
        View::Overview => Pane::Nodes,
        View::Map => Pane::Map,
        View::Timeline => Pane::Timeline,
    };
}

/// To the end: the newest chat, log line or timeline event, or the last row.
pub fn end(app: &mut App) {
    match app.focus {
        Pane::Chat => app.chat.back = 0,
        Pane::Logs => app.logs.follow = true,
        Pane::Timeline => app.timeline_view.back = 0,
        _ => move_selection(app, i64::MAX / 2),
    }
}

/// Opens the detail of the selected job or node.
pub fn open(app: &mut App) {
    match app.focus {
        Pane::Jobs => {
            app.refresh_jobs();
            if let Some(id) = app.jobs.visible.get(app.selected(Pane::Jobs)) {
                app.mode = Mode::JobDetail(*id);
            }
        }
        Pane::Nodes => {
            if let Some(node) = app.selected_node() {
                app.mode = Mode::NodeDetail(node.name().to_string());
            }
        }
        _ => {}
    }
}

/// Esc: leaves a mode, then the zoom, then the search, then the view, one at a time.
pub fn back(app: &mut App) {
    if !matches!(app.mode, Mode::Normal) {
        app.mode = Mode::Normal;
    } else if app.zoom {
        app.zoom = false;
    } else if app.logs.search.is_some() {
        app.logs.search = None;
    } else if app.view != View::Overview {
        show(app, View::Overview);
    }
}

/// The mouse wheel: scrolls the help, or the pane under the pointer (focusing it).
pub fn scroll(app: &mut App, x: u16, y: u16, delta: i32) {
    if let Mode::Help(top) = &mut app.mode {
        *top = (i64::from(*top) + i64::from(delta) * 3).max(0) as u16;
    } else if let Some(pane) = layout::pane_at(app, x, y) {
        app.focus = pane;
        move_selection(app, i64::from(delta) * 3);
    }
}
