//! Where each pane goes. Drawing and mouse hit-testing both use these functions, so a click
//! lands on what is drawn there.

use ratatui::layout::{Constraint, Layout, Rect};

use super::app::{App, Pane, View};

/// The screen's regions.
#[derive(Debug, Clone, PartialEq)]
pub struct Areas {
    /// Each visible pane.
    pub panes: Vec<(Pane, Rect)>,
    /// The status bar (or command line) at the bottom.
    pub status: Rect,
    /// A replay's scrubber bar, under the status bar.
    pub scrubber: Option<Rect>,
}

/// Lays out a screen of `area` for the app's view and zoom. Banners are drawn over the panes,
/// so they never move them.
pub fn areas(app: &App, area: Rect) -> Areas {
    let (area, scrubber) = match app.scrubber {
        Some(_) if area.height > 4 => {
            let [rest, bar] =
                Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
            (rest, Some(bar))
        }
        _ => (area, None),
    };
    let [main, status] = Layout::vertical([Constraint::Min(3), Constraint::Length(1)]).areas(area);
    let panes = match app.view {
        View::Map => vec![(Pane::Map, main)],
        View::Timeline => vec![(Pane::Timeline, main)],
        View::Overview if app.zoom => vec![(app.focus, main)],
        View::Overview => {
            let [upper, lower] =
                Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(main);
            // Nodes gets the larger share from a projector's width up: its columns (role,
            // verdict, tags, heartbeat) are the lecture's.
            let share = if main.width >= 100 { 55 } else { 50 };
            let [nodes, jobs] = Layout::horizontal([
                Constraint::Percentage(share),
                Constraint::Percentage(100 - share),
            ])
            .areas(upper);
            let [chat, logs] =
                Layout::horizontal([Constraint::Percentage(32), Constraint::Percentage(68)])
                    .areas(lower);
            vec![
                (Pane::Nodes, nodes),
                (Pane::Jobs, jobs),
                (Pane::Chat, chat),
                (Pane::Logs, logs),
            ]
        }
    };
    Areas {
        panes,
        status,
        scrubber,
    }
}

/// The whole screen, from the app's idea of the terminal size.
pub fn screen(app: &App) -> Rect {
    Rect::new(0, 0, app.size.0, app.size.1)
}

/// The pane under a mouse position.
pub fn pane_at(app: &App, x: u16, y: u16) -> Option<Pane> {
    areas(app, screen(app))
        .panes
        .into_iter()
        .find(|(_, r)| r.contains((x, y).into()))
        .map(|(p, _)| p)
}

/// The first row shown when `selected` must be visible in `height` rows.
pub fn window(selected: usize, height: usize) -> usize {
    if height == 0 {
        0
    } else {
        selected.saturating_sub(height - 1)
    }
}

/// Rows of a table pane above its data: the border and the header (and, for Jobs, a summary line).
pub fn table_top(pane: Pane) -> u16 {
    match pane {
        Pane::Jobs => 3,
        _ => 2,
    }
}

/// The data row under screen row `y` in a table pane.
pub fn row_at(app: &App, pane: Pane, y: u16) -> Option<usize> {
    let (_, rect) = areas(app, screen(app))
        .panes
        .into_iter()
        .find(|(p, _)| *p == pane)?;
    let first = rect.y + table_top(pane);
    if y < first || y >= rect.bottom().saturating_sub(1) {
        return None;
    }
    let height = rect.height.saturating_sub(table_top(pane) + 1) as usize;
    let len = match pane {
        Pane::Nodes => app.nodes.len(),
        Pane::Jobs => app.jobs.visible.len(),
        _ => return None,
    };
    let row = window(app.selected(pane), height) + (y - first) as usize;
    (row < len).then_some(row)
}
