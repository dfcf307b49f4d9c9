//! Modes: the help overlay, the `:` command line, the log search, the chat input, and the
//! answer to a confirmation.

use ratatui_textarea::TextArea;

use super::Effect;
use crate::console::app::*;

/// Shows the help, or hides it.
pub fn toggle_help(app: &mut App) {
    app.mode = if matches!(app.mode, Mode::Help(_)) {
        Mode::Normal
    } else {
        Mode::Help(0)
    };
}

/// Opens the `:` command line, with a hint of what it takes.
pub fn open_command_line(app: &mut App) {
    let mut area = TextArea::default();
    area.set_placeholder_text(
        "kill worker-1 · submit 5 sleep 1s · partition a b · heal · scenario NAME · help",
    );
    app.mode = Mode::Command(area);
    app.history_pos = None;
    app.completions.clear();
}

/// Opens the log search (and focuses the logs).
pub fn open_search(app: &mut App) {
    let mut area = TextArea::default();
    area.set_placeholder_text("text to find in the log");
    app.focus = Pane::Logs;
    app.mode = Mode::Search(area);
}

/// Opens the chat input, if the cluster has a chat server.
pub fn open_chat(app: &mut App) {
    if app.chat.has_server {
        app.mode = Mode::Chat(TextArea::default());
    } else {
        app.flash = Some(("this topology has no chat server".to_string(), app.now_ms));
    }
}

/// The answer to "are you sure?": the action waiting for it is carried out on yes.
pub fn confirmed(app: &mut App, yes: bool) -> Vec<Effect> {
    if let Mode::Confirm(action) = std::mem::replace(&mut app.mode, Mode::Normal)
        && yes
    {
        return vec![Effect::Act(action)];
    }
    Vec::new()
}
