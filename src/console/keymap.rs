//! Actions, and the one keymap table that turns keys into them.
//!
//! The same table draws the help overlay (`?`) and the hints in the status bar, so what the
//! screen says a key does is what it does. A binding may belong to one pane (`f` follows the log
//! in Logs, and filters jobs in Jobs); pane bindings win over global ones. Keys can be rebound
//! by action name in the config file.

use crate::supervisor::feed::Feed;
use std::collections::BTreeMap;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Pane, View};
use crate::protocol::message::WorkerView;
use crate::shaper::MessageSeen;
use crate::supervisor::Update;
use crate::supervisor::logs::LogLine;

/// Everything that can change the console's state.
#[derive(Debug, Clone)]
pub enum Action {
    // ----- from the world -----
    /// Time passed; milliseconds since the run began.
    Tick(u64),
    /// The terminal changed size.
    Resize(u16, u16),
    /// The supervisor reports something.
    Update(Update),
    /// A node logged a line.
    Log(LogLine),
    /// The coordinator's view of its workers.
    Workers(Vec<WorkerView>),
    /// What each launched process uses.
    Usage(Vec<super::app::ProcessUsage>),
    /// The links' state.
    Links(Vec<super::app::LinkView>),
    /// A message went over a link.
    Message(MessageSeen),
    /// A message for the status bar.
    Flash(String),
    /// The chat pane's connection reports something.
    Chat(super::app::ChatNews),
    // ----- from the keyboard and mouse -----
    /// Stop everything and leave.
    Quit,
    /// Show or hide the help overlay.
    Help,
    /// Show the alarms the live checks raised.
    Alarms,
    /// In the Map: hold (or release) the selected link; elsewhere: show the held messages.
    Hold,
    /// A key was pressed (shown in the corner with `:keys on`).
    KeyPressed(String),
    /// The messages waiting on held links, as the shaper has them now.
    Held(Vec<crate::shaper::HeldMessage>),
    /// In the held messages: deliver the selected one.
    DeliverHeld,
    /// In the held messages: drop the selected one.
    DiscardHeld,
    /// In the held messages: release every held link.
    ReleaseHeld,
    /// Open the `:` command line.
    CommandLine,
    /// Open the submit form.
    SubmitForm,
    /// Start a log search.
    Search,
    /// Focus the next pane.
    NextPane,
    /// Focus the previous pane.
    PrevPane,
    /// Show a view.
    Show(View),
    /// Zoom the focused pane, or unzoom.
    Zoom,
    /// Kill the selected node.
    Kill,
    /// Pause or resume the selected node.
    PauseResume,
    /// Restart the selected node.
    Restart,
    /// Cut the selected node from every other.
    Partition,
    /// Heal every link.
    Heal,
    /// Selection up.
    Up,
    /// Selection down.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// To the top.
    Home,
    /// To the bottom.
    End,
    /// Open the selected item.
    Open,
    /// Close whatever is open.
    Back,
    /// Next search match.
    SearchNext,
    /// Previous search match.
    SearchPrev,
    /// Follow the log or stop following.
    Follow,
    /// Wrap log lines (or the timeline's events) or not.
    Wrap,
    /// Show heartbeats and pings in the messages diagram, or hide them.
    Pings,
    /// Look back through the run so far (from its recording).
    LookBack,
    /// Scroll the help overlay by this many lines.
    HelpScroll(i32),
    /// Cycle the lowest log level shown.
    Level,
    /// Show only the selected node's log lines, or all.
    NodeFilter,
    /// Cycle the jobs' state filter.
    JobFilter,
    /// Type a chat message.
    ChatInput,
    /// Show the previous chat channel (or all).
    ChatPrev,
    /// Show the next chat channel (or all).
    ChatNext,
    /// A key typed into a text field.
    Text(KeyEvent),
    /// Yes or no to a confirmation.
    Confirm(bool),
    /// A mouse click at (column, row).
    Click(u16, u16),
    /// The wheel at (column, row): negative is up.
    Scroll(u16, u16, i32),
}

impl Action {
    /// The action a feed item is to the console (the run's description is none: the app is
    /// built from it).
    pub fn from_feed(feed: Feed) -> Option<Action> {
        Some(match feed {
            Feed::Start(_) => return None,
            Feed::Update(update) => Action::Update(update),
            Feed::Log(line) => Action::Log(line),
            Feed::Message(message) => Action::Message(message),
            Feed::Links(links) => Action::Links(links),
            Feed::Usage(usage) => Action::Usage(usage),
            Feed::Held(held) => Action::Held(held),
            Feed::Workers(workers) => Action::Workers(workers),
            Feed::Chat(news) => Action::Chat(news),
        })
    }
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere in normal mode.
    Global,
    /// Only when this pane has the focus.
    In(Pane),
}

/// One key binding.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The name used in the config file to rebind it.
    pub name: &'static str,
    pub key: KeyCode,
    /// Modifiers (Ctrl …).
    pub modifiers: KeyModifiers,
    /// Where it applies.
    pub scope: Scope,
    /// What it does, for the help overlay.
    pub help: &'static str,
    /// Shown in the status bar's hints.
    pub hint: bool,
    action: fn() -> Action,
}

impl Binding {
    /// The action it triggers.
    pub fn action(&self) -> Action {
        (self.action)()
    }

    /// The key as the help shows it.
    pub fn key_label(&self) -> String {
        key_label(self.key, self.modifiers)
    }
}

macro_rules! bind {
    ($name:literal, $key:expr, $scope:expr, $hint:literal, $help:literal, $action:expr) => {
        Binding {
            name: $name,
            key: $key,
            modifiers: KeyModifiers::NONE,
            scope: $scope,
            help: $help,
            hint: $hint,
            action: || $action,
        }
    };
}

/// The default bindings, in the order the help shows them.
pub fn default_bindings() -> Vec<Binding> {
    let mut all = acting_keys();
    all.extend(moving_keys());
    all.extend(pane_keys());
    all
}

/// Keys that act: quit, help, the command line, submitting, faults on the selected node.
fn acting_keys() -> Vec<Binding> {
    use KeyCode::*;
    use Scope::*;
    vec![
        bind!(
            "quit",
            Char('q'),
            Global,
            true,
            "quit (stops every node it launched)",
            Action::Quit
        ),
        bind!("help", Char('?'), Global, true, "this help", Action::Help),
        bind!(
            "hold",
            Char('H'),
            Global,
            false,
            "in the Map: hold the selected link (messages wait for you) or release it; elsewhere: the held messages (Enter delivers, d drops, r releases)",
            Action::Hold
        ),
        bind!(
            "alarms",
            Char('!'),
            Global,
            false,
            "the alarms the live checks raised (split brain, lost jobs …)",
            Action::Alarms
        ),
        bind!(
            "command",
            Char(':'),
            Global,
            true,
            "command line (:kill worker-1 …)",
            Action::CommandLine
        ),
        bind!(
            "submit",
            Char('s'),
            Global,
            true,
            "submit jobs (a form)",
            Action::SubmitForm
        ),
        bind!(
            "kill",
            Char('k'),
            Global,
            true,
            "kill the selected node",
            Action::Kill
        ),
        bind!(
            "pause",
            Char('p'),
            Global,
            true,
            "pause / resume the selected node",
            Action::PauseResume
        ),
        bind!(
            "restart",
            Char('r'),
            Global,
            false,
            "restart the selected node",
            Action::Restart
        ),
        bind!(
            "partition",
            Char('x'),
            Global,
            false,
            "cut the selected node off",
            Action::Partition
        ),
        bind!(
            "heal",
            Char('h'),
            Global,
            false,
            "heal every cut link",
            Action::Heal
        ),
    ]
}

/// Keys that move around: panes, views, zoom, the selection, details.
fn moving_keys() -> Vec<Binding> {
    use KeyCode::*;
    use Scope::*;
    vec![
        bind!(
            "next_pane",
            Tab,
            Global,
            true,
            "next pane (in the timeline: faults ⇄ events)",
            Action::NextPane
        ),
        bind!(
            "prev_pane",
            BackTab,
            Global,
            false,
            "previous pane",
            Action::PrevPane
        ),
        bind!(
            "overview",
            Char('1'),
            Global,
            false,
            "overview",
            Action::Show(View::Overview)
        ),
        bind!(
            "map",
            Char('2'),
            Global,
            true,
            "map of nodes and links",
            Action::Show(View::Map)
        ),
        bind!(
            "timeline",
            Char('3'),
            Global,
            true,
            "timeline, faults, messages",
            Action::Show(View::Timeline)
        ),
        bind!(
            "zoom",
            Char('z'),
            Global,
            false,
            "zoom the pane, or back",
            Action::Zoom
        ),
        bind!(
            "up",
            Up,
            Global,
            false,
            "previous row / scroll up",
            Action::Up
        ),
        bind!(
            "down",
            Down,
            Global,
            false,
            "next row / scroll down",
            Action::Down
        ),
        bind!(
            "page_up",
            PageUp,
            Global,
            false,
            "a page up",
            Action::PageUp
        ),
        bind!(
            "page_down",
            PageDown,
            Global,
            false,
            "a page down",
            Action::PageDown
        ),
        bind!("home", Home, Global, false, "to the top", Action::Home),
        bind!(
            "end",
            End,
            Global,
            false,
            "to the bottom, follow again",
            Action::End
        ),
        bind!(
            "open",
            Enter,
            Global,
            false,
            "open: a job's history, a node's details",
            Action::Open
        ),
        bind!("back", Esc, Global, false, "close, unzoom", Action::Back),
    ]
}

/// Keys of one pane: the logs, the jobs, the chat, the timeline.
fn pane_keys() -> Vec<Binding> {
    use KeyCode::*;
    use Scope::*;
    vec![
        bind!(
            "search",
            Char('/'),
            In(Pane::Logs),
            false,
            "search the log",
            Action::Search
        ),
        bind!(
            "search_next",
            Char('n'),
            In(Pane::Logs),
            false,
            "next match",
            Action::SearchNext
        ),
        bind!(
            "search_prev",
            Char('N'),
            In(Pane::Logs),
            false,
            "previous match",
            Action::SearchPrev
        ),
        bind!(
            "follow",
            Char('f'),
            In(Pane::Logs),
            false,
            "follow the log, or stop",
            Action::Follow
        ),
        bind!(
            "wrap",
            Char('w'),
            In(Pane::Logs),
            false,
            "wrap long lines, or not",
            Action::Wrap
        ),
        bind!(
            "level",
            Char('l'),
            In(Pane::Logs),
            false,
            "cycle the lowest level shown",
            Action::Level
        ),
        bind!(
            "node_filter",
            Char('o'),
            In(Pane::Logs),
            false,
            "only the selected node, or all",
            Action::NodeFilter
        ),
        bind!(
            "job_filter",
            Char('f'),
            In(Pane::Jobs),
            false,
            "cycle the state shown",
            Action::JobFilter
        ),
        bind!(
            "chat_input",
            Char('i'),
            In(Pane::Chat),
            false,
            "write in the chat, as operator",
            Action::ChatInput
        ),
        bind!(
            "chat_prev",
            Char('['),
            In(Pane::Chat),
            false,
            "previous channel (or all)",
            Action::ChatPrev
        ),
        bind!(
            "chat_next",
            Char(']'),
            In(Pane::Chat),
            false,
            "next channel (or all)",
            Action::ChatNext
        ),
        bind!(
            "timeline_wrap",
            Char('w'),
            In(Pane::Timeline),
            false,
            "wrap long events, or not",
            Action::Wrap
        ),
        bind!(
            "pings",
            Char('m'),
            In(Pane::Timeline),
            false,
            "show heartbeats and pings among the messages, or hide them",
            Action::Pings
        ),
        bind!(
            "look_back",
            Left,
            In(Pane::Timeline),
            false,
            "look back through the run so far (its recording): ← → step a second; any other key: live again",
            Action::LookBack
        ),
    ]
}

/// The bindings with the config's rebinds applied; unknown names or keys are reported.
pub fn bindings(rebinds: &BTreeMap<String, String>) -> Result<Vec<Binding>, RebindError> {
    let mut table = default_bindings();
    for (name, key) in rebinds {
        let binding = table.iter_mut().find(|b| b.name == name).ok_or_else(|| {
            let names: Vec<&str> = default_bindings().iter().map(|b| b.name).collect();
            RebindError::NoAction {
                name: name.clone(),
                actions: names.join(", "),
            }
        })?;
        let (code, modifiers) = parse_key(key).ok_or_else(|| RebindError::NotAKey {
            name: name.clone(),
            key: key.clone(),
        })?;
        binding.key = code;
        binding.modifiers = modifiers;
    }
    Ok(table)
}

/// A `[keys]` setting that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RebindError {
    /// No action has this name.
    #[error("[keys]: no action named `{name}` (actions: {actions})")]
    NoAction {
        /// The name given.
        name: String,
        /// Every action's name.
        actions: String,
    },
    /// Not a key this console knows.
    #[error("[keys] {name}: `{key}` is not a key (examples: \"K\", \"ctrl-k\", \"f5\", \"tab\")")]
    NotAKey {
        /// The action.
        name: String,
        /// The key given.
        key: String,
    },
}

/// The action for a key in normal mode, with `focus` deciding pane bindings.
pub fn lookup(table: &[Binding], key: KeyEvent, focus: Pane) -> Option<Action> {
    // Shift is part of the character for letters ('N'), so it is ignored in the comparison.
    let modifiers = key.modifiers - KeyModifiers::SHIFT;
    let hit = |b: &&Binding| b.key == key.code && b.modifiers == modifiers;
    table
        .iter()
        .filter(|b| b.scope == Scope::In(focus))
        .find(hit)
        .or_else(|| table.iter().filter(|b| b.scope == Scope::Global).find(hit))
        .map(Binding::action)
}

fn parse_key(text: &str) -> Option<(KeyCode, KeyModifiers)> {
    let (modifiers, key) = match text.strip_prefix("ctrl-") {
        Some(rest) => (KeyModifiers::CONTROL, rest),
        None => (KeyModifiers::NONE, text),
    };
    let code = match key.to_ascii_lowercase().as_str() {
        "tab" => KeyCode::Tab,
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "space" => KeyCode::Char(' '),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
            KeyCode::F(f[1..].parse().ok()?)
        }
        _ if key.chars().count() == 1 => KeyCode::Char(key.chars().next()?),
        _ => return None,
    };
    Some((code, modifiers))
}

/// How a key is written in help and hints.
pub fn key_label(code: KeyCode, modifiers: KeyModifiers) -> String {
    let key = match code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab => "Tab".to_string(),
        KeyCode::BackTab => "S-Tab".to_string(),
        KeyCode::Enter => "Enter".to_string(),
        KeyCode::Esc => "Esc".to_string(),
        KeyCode::Up => "↑".to_string(),
        KeyCode::Down => "↓".to_string(),
        KeyCode::Left => "←".to_string(),
        KeyCode::Right => "→".to_string(),
        KeyCode::PageUp => "PgUp".to_string(),
        KeyCode::PageDown => "PgDn".to_string(),
        KeyCode::Home => "Home".to_string(),
        KeyCode::End => "End".to_string(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    if modifiers.contains(KeyModifiers::CONTROL) {
        format!("C-{key}")
    } else {
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn pane_bindings_win_over_global_ones() {
        let table = default_bindings();
        assert!(matches!(
            lookup(&table, key(KeyCode::Char('f')), Pane::Logs),
            Some(Action::Follow)
        ));
        assert!(matches!(
            lookup(&table, key(KeyCode::Char('f')), Pane::Jobs),
            Some(Action::JobFilter)
        ));
        assert!(lookup(&table, key(KeyCode::Char('f')), Pane::Nodes).is_none());
        assert!(matches!(
            lookup(
                &table,
                KeyEvent::new(KeyCode::Char('N'), KeyModifiers::SHIFT),
                Pane::Logs
            ),
            Some(Action::SearchPrev)
        ));
    }

    #[test]
    fn keys_can_be_rebound_and_bad_rebinds_say_why() {
        let rebinds = BTreeMap::from([("kill".to_string(), "K".to_string())]);
        let table = bindings(&rebinds).unwrap();
        assert!(matches!(
            lookup(&table, key(KeyCode::Char('K')), Pane::Nodes),
            Some(Action::Kill)
        ));
        assert!(lookup(&table, key(KeyCode::Char('k')), Pane::Nodes).is_none());
        let bad = BTreeMap::from([("explode".to_string(), "e".to_string())]);
        assert!(
            bindings(&bad)
                .unwrap_err()
                .to_string()
                .contains("no action named `explode`")
        );
        let bad = BTreeMap::from([("kill".to_string(), "hyper-k".to_string())]);
        assert!(
            bindings(&bad)
                .unwrap_err()
                .to_string()
                .contains("not a key")
        );
    }
}
