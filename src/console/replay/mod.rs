//! `tcluster replay`: the console on a recording, read-only, with a scrubber; and the same
//! player behind `--dump` (the screen at a moment, as text) and `--json` (the state), and behind
//! a live console looking back (`←` on the Timeline).
//!
//! Keys of a replay (the console's own keys move around as usual; those that would act on a
//! cluster only say that a recording is read-only):
//!
//! | key | does |
//! | --- | --- |
//! | `←` `→` | a second back or on (`Shift`: ten) |
//! | `Space` | play or pause |
//! | `+` `-` | faster or slower: ¼× to 16× |
//! | `[` `]` | the mark before or after: a fault, an alarm, a failover |
//! | `g` | go to a time: `12.5s`, `1m30s`, `1:30`, `+5s`, `-2s` |
//! | `q` | leave |

mod player;

pub use player::{NodeState, Player, State};

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::draw;
use super::keymap::{Action, Binding};
use super::update::update;

/// A replay's own keys and what they do, for the `?` help (in the order [`key`] reads them).
pub const KEYS: [(&str, &str); 6] = [
    ("← →", "a second back or on (Shift: ten)"),
    ("Space", "play or pause"),
    ("+ -", "faster or slower, ¼× to 16×"),
    (
        "[ ]",
        "the mark before or after: ✕ a fault, ⇄ a failover, ! an alarm",
    ),
    ("g", "go to a time: 12.5s, 1m30s, 1:30, +5s, -2s"),
    ("q", "leave the replay"),
];

/// Slowest and fastest play.
pub const SPEEDS: (f64, f64) = (0.25, 16.0);

/// What a replay key did.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// The screen changed.
    Redraw,
    /// Not a replay key: the console's own.
    Not,
    /// Leave.
    Quit,
}

/// A replay's own keys.
pub fn key(player: &mut Player, key: KeyEvent) -> Handled {
    if player.scrubber.goto.is_some() {
        return goto_key(player, key);
    }
    let at = player.at_ms();
    let step = if key.modifiers.contains(KeyModifiers::SHIFT) {
        10_000
    } else {
        1_000
    };
    let s = &mut player.scrubber;
    match key.code {
        KeyCode::Left => {
            s.playing = false;
            player.seek(at.saturating_sub(step));
        }
        KeyCode::Right => {
            s.playing = false;
            player.seek(at.saturating_add(step));
        }
        KeyCode::Char(' ') if !s.live => {
            // Playing from the end starts over.
            if !s.playing && at >= s.end_ms {
                let start = s.start_ms;
                player.seek(start);
            }
            player.scrubber.playing = !player.scrubber.playing;
            player.refresh();
        }
        KeyCode::Char('+') | KeyCode::Char('=') if !s.live => {
            s.speed = (s.speed * 2.0).min(SPEEDS.1);
            player.refresh();
        }
        KeyCode::Char('-') if !s.live => {
            s.speed = (s.speed / 2.0).max(SPEEDS.0);
            player.refresh();
        }
        KeyCode::Char('[') | KeyCode::Char(']') if !s.live => {
            let forward = key.code == KeyCode::Char(']');
            if let Some(mark) = player.mark_from_here(forward).cloned() {
                player.scrubber.playing = false;
                player.seek(mark.at_ms);
                player.app.flash = Some((mark.label, mark.at_ms));
            }
        }
        KeyCode::Char('g') if !s.live => {
            s.playing = false;
            s.goto = Some(String::new());
            player.refresh();
        }
        KeyCode::Char('q') if !s.live => return Handled::Quit,
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            return Handled::Quit;
        }
        _ => return Handled::Not,
    }
    Handled::Redraw
}

/// Typing a time after `g`.
fn goto_key(player: &mut Player, key: KeyEvent) -> Handled {
    let at = player.at_ms();
    let Some(typed) = player.scrubber.goto.as_mut() else {
        return Handled::Not;
    };
    match key.code {
        KeyCode::Esc => player.scrubber.goto = None,
        KeyCode::Backspace => {
            typed.pop();
        }
        KeyCode::Char(c) if typed.len() < 24 => typed.push(c),
        KeyCode::Enter => {
            let text = std::mem::take(typed);
            player.scrubber.goto = None;
            match parse_time(&text, at) {
                Ok(to) => player.seek(to),
                Err(e) => player.app.flash = Some((e, at)),
            }
        }
        _ => {}
    }
    player.refresh();
    Handled::Redraw
}

/// A time to go to: `12.5s`, `1m30s`, `1:30`, `90` (seconds), or `+5s` / `-2s` from `at_ms`.
pub fn parse_time(text: &str, at_ms: u64) -> Result<u64, String> {
    let text = text.trim();
    let bad =
        || format!("`{text}` is not a time: write 12.5s, 1m30s, 1:30, or +5s / -2s from here");
    if let Some(rest) = text.strip_prefix('+') {
        let d = crate::topology::units::parse_duration(rest).map_err(|_| bad())?;
        return Ok(at_ms.saturating_add(d.as_millis() as u64));
    }
    if let Some(rest) = text.strip_prefix('-') {
        let d = crate::topology::units::parse_duration(rest).map_err(|_| bad())?;
        return Ok(at_ms.saturating_sub(d.as_millis() as u64));
    }
    if let Some((minutes, seconds)) = text.split_once(':') {
        let minutes: u64 = minutes.parse().map_err(|_| bad())?;
        let seconds: f64 = seconds.parse().map_err(|_| bad())?;
        if !(0.0..60.0).contains(&seconds) {
            return Err(bad());
        }
        return Ok(minutes * 60_000 + (seconds * 1000.0).round() as u64);
    }
    crate::topology::units::parse_duration(text)
        .map(|d| d.as_millis() as u64)
        .map_err(|_| bad())
}

/// Whether an action would act on a cluster (a recording cannot).
pub fn acts(action: &Action) -> bool {
    matches!(
        action,
        Action::Kill
            | Action::PauseResume
            | Action::Restart
            | Action::Partition
            | Action::Heal
            | Action::SubmitForm
            | Action::ChatInput
            | Action::Hold
            | Action::CommandLine
            | Action::DeliverHeld
            | Action::DiscardHeld
            | Action::ReleaseHeld
    )
}

/// The screen at the player's moment as text, `width` × `height`, without the scrubber bar:
/// the console as it looked then.
pub fn screen_text(player: &mut Player, bindings: &[Binding], width: u16, height: u16) -> String {
    let app = &mut player.app;
    app.size = (width, height);
    let scrubber = app.scrubber.take();
    let mut terminal = match Terminal::new(TestBackend::new(width, height)) {
        Ok(t) => t,
        Err(e) => return format!("cannot draw: {e}"),
    };
    let drawn = terminal.draw(|f| draw::draw(app, bindings, f));
    app.scrubber = scrubber;
    if let Err(e) = drawn {
        return format!("cannot draw: {e}");
    }
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The interactive replay, until `q`.
pub fn run(mut player: Player, bindings: &[Binding]) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::EnableMouseCapture);
    let result = (|| -> std::io::Result<()> {
        let size = terminal.size()?;
        player.app.size = (size.width, size.height);
        let mut last = Instant::now();
        let mut dirty = true;
        loop {
            if dirty {
                terminal.draw(|f| draw::draw(&player.app, bindings, f))?;
                dirty = false;
            }
            let wait = if player.scrubber.playing {
                Duration::from_millis(33)
            } else {
                Duration::from_millis(250)
            };
            if event::poll(wait)? {
                match event::read()? {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        match key(&mut player, k) {
                            Handled::Quit => return Ok(()),
                            Handled::Redraw => {}
                            Handled::Not => console_key(&mut player, bindings, Event::Key(k)),
                        }
                        dirty = true;
                    }
                    Event::Resize(w, h) => {
                        update(&mut player.app, Action::Resize(w, h));
                        dirty = true;
                    }
                    other => {
                        console_key(&mut player, bindings, other);
                        dirty = true;
                    }
                }
            }
            let elapsed = last.elapsed();
            last = Instant::now();
            if player.scrubber.playing {
                let step = (elapsed.as_secs_f64() * 1000.0 * player.scrubber.speed) as u64;
                let to = player.at_ms().saturating_add(step.max(1));
                if to >= player.scrubber.end_ms {
                    player.scrubber.playing = false;
                }
                player.seek(to);
                dirty = true;
            }
        }
    })();
    let _ = ratatui::crossterm::execute!(std::io::stdout(), event::DisableMouseCapture);
    ratatui::restore();
    result
}

/// A key or click for the console itself: moving around works; acting says it cannot.
fn console_key(player: &mut Player, bindings: &[Binding], event: Event) {
    let Some(action) = super::translate(&player.app, bindings, event) else {
        return;
    };
    if matches!(action, Action::Quit) {
        return;
    }
    if acts(&action) {
        let now = player.app.now_ms;
        player.app.flash = Some((
            "a recording is read-only: it shows what happened".to_string(),
            now,
        ));
        return;
    }
    // What the console asks of the cluster (effects) has nowhere to go.
    let _ = update(&mut player.app, action);
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_to_go_to() {
        assert_eq!(parse_time("12.5s", 0), Ok(12_500));
        assert_eq!(parse_time("1m30s", 0), Ok(90_000));
        assert_eq!(parse_time("1:30", 0), Ok(90_000));
        assert_eq!(parse_time("90", 0), Ok(90_000));
        assert_eq!(parse_time("+5s", 10_000), Ok(15_000));
        assert_eq!(parse_time("-2s", 1_000), Ok(0));
        let e = parse_time("soon", 0).unwrap_err();
        assert!(e.contains("`soon` is not a time"), "{e}");
        assert!(parse_time("1:75", 0).is_err());
    }
}
