//! A replay's scrubber bar: play or pause and the speed, the moment on screen, and the run as a
//! bar with its faults, alarms and failovers marked where they happened.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::Palette;
use crate::console::app::{MarkKind, Scrubber};

/// `m:ss.s` of run milliseconds.
pub fn clock(ms: u64) -> String {
    format!("{}:{:04.1}", ms / 60_000, (ms % 60_000) as f64 / 1000.0)
}

/// The speed as a person says it: `¼×`, `½×`, `1×`, `16×`.
pub fn speed_label(speed: f64) -> String {
    match speed {
        s if (s - 0.25).abs() < 1e-9 => "¼×".to_string(),
        s if (s - 0.5).abs() < 1e-9 => "½×".to_string(),
        s => format!("{s}×"),
    }
}

pub(super) fn draw(s: &Scrubber, palette: &Palette, frame: &mut Frame, area: Rect) {
    let bold = palette.fg(Color::Cyan).add_modifier(Modifier::BOLD);
    if let Some(typed) = &s.goto {
        let line = Line::from(vec![
            Span::styled(" go to (12.5s, 1m30s, +5s, -2s): ", bold),
            Span::raw(format!("{typed}▏")),
            Span::styled("   Enter goes · Esc cancels", palette.dim()),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let state = if s.live {
        format!(" ◀ looking back {} ", speed_label(s.speed))
    } else if s.playing {
        format!(" ▶ {} ", speed_label(s.speed))
    } else {
        format!(" ⏸ {} ", speed_label(s.speed))
    };
    let now = format!("{} ", clock(s.at_ms));
    let end = format!(" {}", clock(s.end_ms));
    let hint = if s.live {
        "  ←/→ step · any other key: live"
    } else {
        "  ←/→ Space +/- [ ] g"
    };
    let fixed = state.chars().count() + now.chars().count() + end.chars().count();
    let hint = if (area.width as usize) > fixed + hint.chars().count() + 20 {
        hint
    } else {
        ""
    };
    let width = (area.width as usize).saturating_sub(fixed + hint.chars().count());
    let mut spans = vec![
        Span::styled(state, palette.tone(super::Tone::Info)),
        Span::styled(now, bold),
    ];
    spans.extend(bar(s, width, palette));
    spans.push(Span::raw(end));
    spans.push(Span::styled(hint, palette.dim()));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The run as `width` cells: played `━`, to come `─`, the moment `●`, marks by their symbol.
fn bar<'a>(s: &Scrubber, width: usize, palette: &Palette) -> Vec<Span<'a>> {
    if width == 0 {
        return Vec::new();
    }
    let span = s.end_ms.saturating_sub(s.start_ms).max(1);
    let cell = |ms: u64| -> usize {
        let off = ms.saturating_sub(s.start_ms).min(span);
        ((off as u128 * (width as u128 - 1)) / span as u128) as usize
    };
    let here = cell(s.at_ms);
    let mut cells: Vec<(char, Option<MarkKind>)> = (0..width)
        .map(|i| (if i < here { '━' } else { '─' }, None))
        .collect();
    for mark in &s.marks {
        let i = cell(mark.at_ms);
        // An alarm outranks a failover, which outranks a fault, when they share a cell.
        let rank = |k: Option<MarkKind>| match k {
            Some(MarkKind::Alarm) => 3,
            Some(MarkKind::Failover) => 2,
            Some(MarkKind::Fault) => 1,
            None => 0,
        };
        if rank(Some(mark.kind)) > rank(cells[i].1) {
            cells[i] = (mark.kind.symbol(), Some(mark.kind));
        }
    }
    cells[here] = ('●', None);
    cells
        .into_iter()
        .map(|(c, kind)| {
            let style = match kind {
                Some(MarkKind::Alarm) => palette.fg(Color::Red).add_modifier(Modifier::BOLD),
                Some(MarkKind::Failover) => palette.fg(Color::Magenta).add_modifier(Modifier::BOLD),
                Some(MarkKind::Fault) => palette.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                None if c == '●' => palette.fg(Color::Cyan).add_modifier(Modifier::BOLD),
                None => palette.dim(),
            };
            Span::styled(c.to_string(), style)
        })
        .collect()
}
