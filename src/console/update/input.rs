//! Text typed into the console: the `:` command line (with completion while typing and a
//! history), the log search, the submit form and the chat input line; and what the chat
//! pane's connection reports.

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;

use super::{Effect, act, update};
use crate::console::app::*;
use crate::console::command;
use crate::console::keymap::Action;
use crate::protocol::message::ChatBody;
use crate::topology::ClusterAction;

/// A key typed while a text field is open.
pub fn text(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if let (Mode::Command(area), KeyCode::Tab) = (&app.mode, key.code) {
        let line = area.lines().join(" ");
        let (completed, choices) = command::complete(&line, app);
        if completed != line {
            let mut area = TextArea::new(vec![completed]);
            area.move_cursor(ratatui_textarea::CursorMove::End);
            app.mode = Mode::Command(area);
        }
        refresh_completions(app);
        if choices.is_empty() {
            app.flash = Some(("nothing to complete here".to_string(), app.now_ms));
        }
        return Vec::new();
    }
    let effects = match &mut app.mode {
        Mode::Command(area) => match key.code {
            KeyCode::Esc => {
                app.mode = Mode::Normal;
                Vec::new()
            }
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
                history(app, key.code);
                Vec::new()
            }
            _ => {
                area.input(key);
                Vec::new()
            }
        },
        Mode::Search(area) => match key.code {
            KeyCode::Esc => {
                app.mode = Mode::Normal;
                Vec::new()
            }
            KeyCode::Enter => {
                let query = area.lines().join(" ");
                app.mode = Mode::Normal;
                search(app, query);
                Vec::new()
            }
            _ => {
                area.input(key);
                Vec::new()
            }
        },
        Mode::Submit(_) => submit_form(app, key),
        Mode::Chat(_) => chat_input(app, key),
        _ => Vec::new(),
    };
    refresh_completions(app);
    effects
}

/// Up and Down on the command line walk through the commands typed before.
fn history(app: &mut App, code: KeyCode) {
    if app.history.is_empty() {
        return;
    }
    let last = app.history.len() - 1;
    let pos = match (app.history_pos, code) {
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

/// What the word being typed on the command line could become, shown while typing.
fn refresh_completions(app: &mut App) {
    app.completions = match &app.mode {
        Mode::Command(area) => {
            let line = area.lines().join(" ");
            let (_, choices) = command::complete(&line, app);
            // The word typed in full is no news.
            let last = line.rsplit(' ').next().unwrap_or_default();
            if choices.len() == 1 && choices[0] == last {
                Vec::new()
            } else {
                choices
            }
        }
        _ => Vec::new(),
    };
}

fn submit_form(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let Mode::Submit(form) = &mut app.mode else {
        return Vec::new();
    };
    match key.code {
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
            let problem = match (data.is_empty(), count, priority) {
                (true, _, _) => "a job needs data, such as sleep 2s",
                (_, None, _) => "count must be a whole number from 1 to 100000",
                (_, _, None) => "priority must be a whole number",
                (false, Some(count), Some(priority)) => {
                    if let Err(why) = crate::role::job::JobKind::parse(&data) {
                        app.flash = Some((why.to_string(), app.now_ms));
                        return Vec::new();
                    }
                    app.mode = Mode::Normal;
                    return vec![Effect::Act(ClusterAction::Submit {
                        data,
                        count,
                        priority,
                        cluster: None,
                    })];
                }
            };
            app.flash = Some((problem.to_string(), app.now_ms));
        }
        _ => {
            // Typing into a field that still holds its default replaces the default.
            if !form.touched[form.field] && matches!(key.code, KeyCode::Char(_)) {
                form.fields[form.field] = TextArea::default();
            }
            form.touched[form.field] = true;
            form.fields[form.field].input(key);
        }
    }
    Vec::new()
}

fn chat_input(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let Mode::Chat(area) = &mut app.mode else {
        return Vec::new();
    };
    match key.code {
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
    }
    Vec::new()
}

fn run_command(app: &mut App, line: &str) -> Vec<Effect> {
    match command::parse(line, app) {
        Ok(command::Parsed::Quit) => update(app, Action::Quit),
        Ok(command::Parsed::Help) => {
            app.mode = Mode::Help(0);
            Vec::new()
        }
        Ok(command::Parsed::Keys(on)) => {
            app.show_keys = on;
            app.keys_pressed.clear();
            let said = if on {
                "keys on: each key pressed shows in the corner"
            } else {
                "keys off"
            };
            app.flash = Some((said.into(), app.now_ms));
            Vec::new()
        }
        Ok(command::Parsed::Scenario(name)) => {
            app.flash = Some((format!("scenario {name} begins"), app.now_ms));
            vec![Effect::Scenario(name)]
        }
        // Typed out in full, an action is not confirmed again.
        Ok(command::Parsed::Act(action)) => act(app, action, false),
        Err(message) => {
            app.flash = Some((message.to_string(), app.now_ms));
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

/// The next (or previous) search match, brought into view.
pub fn jump_to_match(app: &mut App, direction: i64) {
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

/// What the chat pane's connection reports.
pub fn chat_news(app: &mut App, news: ChatNews) {
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
                    && let Err(at) = chat.channels.binary_search_by(|c| c.as_str().cmp(channel))
                {
                    chat.channels.insert(at, channel.to_string());
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

/// The previous or next channel (or every channel).
pub fn cycle_channel(app: &mut App, delta: i64) {
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
