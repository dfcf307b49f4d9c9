//! The Logs pane: every node's lines merged, each node in its colour, filtered by level or
//! node, searched with highlights; only the rows on screen are ever built.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Palette, block, truncate};
use crate::console::app::*;
use crate::supervisor::logs::{Level, LogLine};

/// The Logs pane.
pub fn draw(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
    let l = &app.logs;
    let mut flags = Vec::new();
    flags.push(if l.follow {
        "follow".to_string()
    } else {
        "paused".to_string()
    });
    if l.min_level != Level::Trace {
        flags.push(format!("≥{}", l.min_level.as_str()));
    }
    if let Some(node) = &l.node {
        flags.push(format!("only {node}"));
    }
    if l.wrap {
        flags.push("wrap".into());
    }
    if let Some(s) = &l.search {
        let at = s.current.map_or("-".to_string(), |c| (c + 1).to_string());
        flags.push(format!("/{} {at}/{}", s.query, s.matches.len()));
    }
    let title = format!(" Logs ({}) · {} ", l.lines.len(), flags.join(" · "));
    let outer = block(title, palette, focused);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let height = inner.height as usize;
    if height == 0 || l.lines.is_empty() {
        return;
    }
    // Walk back from the bottom line, keeping lines that pass the filters, until the pane is
    // full: only what is visible is ever built.
    let bottom = if l.follow { l.end() - 1 } else { l.bottom };
    let mut shown: Vec<(u64, &LogLine)> = Vec::with_capacity(height);
    let mut n = bottom + 1;
    let mut scanned = 0;
    while n > l.first && shown.len() < height && scanned < 200_000 {
        n -= 1;
        scanned += 1;
        if let Some(line) = l.get(n)
            && l.shown(line)
        {
            shown.push((n, line));
        }
    }
    shown.reverse();
    // Near the top of the log, the lines after the bottom one fill the pane (a whole page,
    // not one line over empty rows).
    let mut n = bottom;
    while shown.len() < height && n + 1 < l.end() && scanned < 400_000 {
        n += 1;
        scanned += 1;
        if let Some(line) = l.get(n)
            && l.shown(line)
        {
            shown.push((n, line));
        }
    }
    let node_width = l
        .colours
        .keys()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(8)
        .clamp(6, 16);
    let query = l.search.as_ref().map(|s| s.query.as_str());
    let current = l
        .search
        .as_ref()
        .and_then(|s| s.current.map(|c| s.matches[c]));
    let lines: Vec<Line> = shown
        .iter()
        .map(|(number, line)| {
            let colour = l.colours.get(&line.node).copied().unwrap_or(0);
            let mut spans = vec![
                Span::styled(
                    format!("{:>7.1} ", line.at_ms as f64 / 1000.0),
                    palette.dim(),
                ),
                Span::styled(
                    format!("{:<w$} ", truncate(&line.node, node_width), w = node_width),
                    palette.node(colour),
                ),
                Span::styled(
                    format!("{:<5} ", line.level.as_str()),
                    palette.level(line.level),
                ),
            ];
            spans.extend(highlight(&line.text, query, palette));
            let mut line = Line::from(spans);
            if Some(*number) == current {
                line = line.style(Style::default().add_modifier(Modifier::REVERSED));
            }
            line
        })
        .collect();
    // Wrapped lines take more rows: keep the bottom in view.
    let width = inner.width.max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|line| line.width().div_ceil(width).max(1))
        .sum();
    let mut paragraph = Paragraph::new(lines);
    if l.wrap {
        paragraph = paragraph
            .wrap(Wrap { trim: false })
            .scroll(((rows as u16).saturating_sub(inner.height), 0));
    }
    frame.render_widget(paragraph, inner);
}

fn highlight<'a>(text: &'a str, query: Option<&str>, palette: &Palette) -> Vec<Span<'a>> {
    let Some(query) = query.filter(|q| !q.is_empty() && text.is_ascii() && q.is_ascii()) else {
        return vec![Span::raw(text)];
    };
    let lower = text.to_ascii_lowercase();
    let q = query.to_ascii_lowercase();
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find(&q) {
        let start = at + found;
        spans.push(Span::raw(&text[at..start]));
        spans.push(Span::styled(
            &text[start..start + q.len()],
            palette
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
        at = start + q.len();
    }
    spans.push(Span::raw(&text[at..]));
    spans
}
