//! What the panes show: following the log, wrapping, heartbeats on the timeline, the log's
//! level and node, the jobs' state filter. Each says what it did in the status bar.

use crate::console::app::*;
use crate::protocol::message::JobState;
use crate::supervisor::logs::Level;

/// Follows the newest log line, or stops where the log is.
pub fn follow(app: &mut App) {
    app.logs.follow = !app.logs.follow;
    if !app.logs.follow {
        app.logs.bottom = app.logs.end().saturating_sub(1);
    }
}

/// Wraps long lines of the focused timeline or of the logs.
pub fn wrap(app: &mut App) {
    match app.focus {
        Pane::Timeline => app.timeline_view.wrap = !app.timeline_view.wrap,
        _ => app.logs.wrap = !app.logs.wrap,
    }
}

/// Shows or hides heartbeats and pings on the timeline.
pub fn pings(app: &mut App) {
    app.timeline_view.pings = !app.timeline_view.pings;
    let shown = if app.timeline_view.pings {
        "shown"
    } else {
        "hidden (p shows them)"
    };
    app.flash = Some((format!("heartbeats and pings {shown}"), app.now_ms));
}

/// The next log level shown (and above).
pub fn level(app: &mut App) {
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

/// Logs of the selected node only, or of every node again.
pub fn node_filter(app: &mut App) {
    app.logs.node = match (&app.logs.node, app.selected_node()) {
        (None, Some(node)) => Some(node.name().to_string()),
        _ => None,
    };
    let shown = app
        .logs
        .node
        .clone()
        .unwrap_or_else(|| "every node".to_string());
    app.flash = Some((format!("logs: {shown}"), app.now_ms));
}

/// The jobs pane's next state filter: queued, running, completed, failed, all.
pub fn job_filter(app: &mut App) {
    app.jobs.filter = match app.jobs.filter {
        None => Some(JobState::Queued),
        Some(JobState::Queued) => Some(JobState::Running),
        Some(JobState::Running) | Some(JobState::Assigned) => Some(JobState::Completed),
        Some(JobState::Completed) => Some(JobState::Failed),
        Some(JobState::Failed) => None,
    };
    app.jobs.stale = true;
    app.jobs.selected = None;
    app.selected.insert(Pane::Jobs, 0);
    app.refresh_jobs();
}
