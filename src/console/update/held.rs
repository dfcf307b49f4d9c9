//! Messages delivered by hand: holding a link from the Map, the list of what waits on held
//! links, and delivering or dropping one of them.

use super::*;
use crate::shaper::HeldMessage;

/// `H`: in the Map, hold the selected link (or release it, if held); elsewhere, show what waits.
pub fn hold_key(app: &mut App) -> Vec<Effect> {
    if app.view != View::Map {
        app.mode = Mode::Held(0);
        return Vec::new();
    }
    let Some((a, b)) = app.selected_link() else {
        app.flash = Some((
            "no link to hold: ↑↓ select one in the Map".into(),
            app.now_ms,
        ));
        return Vec::new();
    };
    let held = app
        .links
        .iter()
        .any(|l| l.held && ((l.from == a && l.to == b) || (l.from == b && l.to == a)));
    let action = if held {
        ClusterAction::Release {
            a: Some(a),
            b: Some(b),
        }
    } else {
        ClusterAction::Hold {
            a,
            b,
            one_way: false,
        }
    };
    app.flash = Some((action.to_string(), app.now_ms));
    vec![Effect::Act(action)]
}

/// What waits on held links now.
pub fn update_held(app: &mut App, messages: Vec<HeldMessage>) {
    app.held = messages;
    if let Mode::Held(selected) = &mut app.mode {
        *selected = (*selected).min(app.held.len().saturating_sub(1));
    }
}

/// Enter or `d` in the held messages: the selected one, delivered or dropped.
pub fn selected(app: &mut App, effect: fn(u64) -> Effect) -> Vec<Effect> {
    let Mode::Held(selected) = app.mode else {
        return Vec::new();
    };
    match app.held.get(selected) {
        Some(m) => vec![effect(m.id)],
        None => Vec::new(),
    }
}
