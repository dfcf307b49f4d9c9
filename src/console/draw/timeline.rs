//! The Timeline view: the Faults table (every action with what the cluster noticed, when, and
//! how it recovered), the events list (focus it with Tab to scroll, `w` wraps), and the
//! messages between nodes as a space-time diagram. Times count from the scenario's start while
//! one runs (`T+4.0`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Row, Table, Wrap};

use super::{Palette, block, truncate};
use crate::console::app::*;
use crate::shaper::{Fate, MessageSeen};
use crate::supervisor::timeline::TimelineKind;

/// Messages hidden from the diagram unless asked for: liveness chatter and progress reports,
/// which would push the rare messages (an election, a victory) off the diagram in a second.
fn is_ping(kind: &str) -> bool {
    matches!(
        kind,
        "heartbeat" | "ping" | "pong" | "progress" | "peer_heartbeat" | "peer_alive"
    )
}

/// How far back (rows) a message looks for a burst of its kind to join, and how long a burst
/// lasts.
const BURST_ROWS: usize = 6;
const BURST_MS: u64 = 300;

/// A time on the timeline: from the scenario's start while one runs, else from the run's.
fn when(app: &App, at_ms: u64) -> String {
    match &app.scenario {
        Some((_, began)) if at_ms >= *began => {
            format!("T+{:.1}", (at_ms - began) as f64 / 1000.0)
        }
        _ => format!("{:.1}s", at_ms as f64 / 1000.0),
    }
}

/// The Timeline view.
pub fn draw(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    // Side by side when there is room; on a narrow screen one at a time, `z` switching.
    let (left, right) = match (area.width >= 100, app.zoom) {
        (true, false) => {
            // The table of actions needs the room more than the diagram does.
            let left = if area.width >= 160 { 50 } else { 58 };
            let [left, right] = Layout::horizontal([
                Constraint::Percentage(left),
                Constraint::Percentage(100 - left),
            ])
            .areas(area);
            (Some(left), Some(right))
        }
        (true, true) | (false, false) => (Some(area), None),
        (false, true) => (None, Some(area)),
    };
    if let Some(left) = left {
        let rows = fault_rows(app, left.width);
        let lines: usize = rows
            .0
            .iter()
            .map(|(_, cells)| cells.iter().map(Vec::len).max().unwrap_or(1))
            .sum();
        let [faults_area, events_area] = Layout::vertical([
            Constraint::Length((lines as u16 + 3).min(left.height / 2).max(4)),
            Constraint::Min(3),
        ])
        .areas(left);
        faults(app, palette, frame, faults_area, rows);
        events(app, palette, frame, events_area);
    }
    if let Some(right) = right {
        space_time(app, palette, frame, right);
    }
}

/// The Faults table's rows (each the index of its action and its five cells, each cell its
/// lines) and the columns' widths.
type FaultRows = (Vec<(usize, [Vec<String>; 5])>, [u16; 5]);

/// The Faults table's rows for a table `width` wide: each cell wrapped to its column, so
/// nothing is cut; and the column widths.
fn fault_rows(app: &App, width: u16) -> FaultRows {
    let room = width.saturating_sub(2 + 3 + 6 + 4) as usize;
    let ms = |t: u64| {
        if t < 1000 {
            format!("{t}ms")
        } else {
            format!("{:.2}s", t as f64 / 1000.0)
        }
    };
    let texts: Vec<(usize, [String; 5])> = app
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let pending = if f.settled { "-" } else { "…" };
            // Times measured in slow motion are cluster time: the factor goes beside them.
            let at = |t: u64| match f.speed {
                Some(scale) if scale < 1.0 => format!("{} @{scale}×", ms(t)),
                _ => ms(t),
            };
            let detected = f
                .detected
                .as_ref()
                .map(|(t, by)| format!("{} by {by}", at(*t)))
                .unwrap_or_else(|| pending.into());
            let outcome = match (&f.recovered, &f.outcome) {
                (Some(t), Some(o)) => format!("{} · {o}", at(*t)),
                (Some(t), None) => at(*t),
                (None, Some(o)) => o.clone(),
                (None, None) => pending.into(),
            };
            let cells = [
                format!("#{}", f.number),
                when(app, f.at_ms),
                f.text.clone(),
                detected,
                outcome,
            ];
            (i, cells)
        })
        .collect();
    // The action and who detected it as wide as they are, within a share of the room; the
    // rest for what came of it.
    let widest = |column: usize, share: usize| {
        texts
            .iter()
            .map(|(_, c)| c[column].chars().count())
            .max()
            .unwrap_or(0)
            .clamp(8, (room * share / 100).max(8))
    };
    let action = widest(2, 34);
    let detected = widest(3, 30);
    let outcome = room.saturating_sub(action + detected).max(8);
    let widths = [3, 6, action as u16, detected as u16, outcome as u16];
    let rows = texts
        .into_iter()
        .map(|(i, cells)| {
            let wrapped = std::array::from_fn(|k| wrap(&cells[k], widths[k] as usize));
            (i, wrapped)
        })
        .collect();
    (rows, widths)
}

/// Words of `text` in lines of at most `width` characters (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(truncate(word, width.max(1))),
        }
    }
    lines.truncate(3);
    lines
}

fn faults(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, (rows, widths): FaultRows) {
    let focused = !app.timeline_view.events_focused;
    let height = area.height.saturating_sub(3) as usize;
    // The table follows the newest actions until the operator moves its selection.
    let chosen =
        focused && app.focus == Pane::Timeline && app.selected.contains_key(&Pane::Timeline);
    let selected = if chosen {
        app.selected(Pane::Timeline)
            .min(app.faults.len().saturating_sub(1))
    } else {
        usize::MAX
    };
    // The newest rows that fit, unless the selection is further up.
    let row_height = |cells: &[Vec<String>; 5]| cells.iter().map(Vec::len).max().unwrap_or(1);
    let mut end = rows.len();
    let mut start = end;
    let mut used = 0;
    while start > 0 && used + row_height(&rows[start - 1].1) <= height {
        start -= 1;
        used += row_height(&rows[start].1);
    }
    while chosen && selected < start && start > 0 {
        start -= 1;
        used += row_height(&rows[start].1);
        while used > height && end > start + 1 {
            end -= 1;
            used -= row_height(&rows[end].1);
        }
    }
    let shown = rows[start..end].iter().map(|(i, cells)| {
        let lines = row_height(cells) as u16;
        let row = Row::new(cells.iter().map(|c| Text::from(c.join("\n")))).height(lines);
        if *i == selected && focused && app.focus == Pane::Timeline {
            row.style(palette.selected())
        } else {
            row
        }
    });
    let table = Table::new(shown, widths.map(Constraint::Length))
        .header(
            Row::new(["#", "AT", "ACTION", "DETECTED", "RECOVERED / OUTCOME"])
                .style(palette.dim().add_modifier(Modifier::BOLD)),
        )
        .column_spacing(1)
        .block(block(
            " Actions: what the cluster noticed, and how it recovered ",
            palette,
            focused,
        ));
    frame.render_widget(table, area);
}

fn events(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    let view = &app.timeline_view;
    let state = match (view.back, view.wrap) {
        (0, false) => "following".to_string(),
        (0, true) => "following · wrapped".to_string(),
        (n, w) => format!("{n} back{}", if w { " · wrapped" } else { "" }),
    };
    let outer = block(
        format!(" Events ({}) · {state} · Tab, ↑↓, w ", app.timeline.len()),
        palette,
        view.events_focused,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let height = inner.height as usize;
    if height == 0 {
        return;
    }
    let width = inner.width.max(1) as usize;
    let mut used = 0;
    let mut lines: Vec<Line> = Vec::new();
    for e in app.timeline.iter().rev().skip(view.back) {
        if used >= height {
            break;
        }
        let style = match &e.kind {
            TimelineKind::Action { fault: Some(_), .. } => {
                palette.fg(Color::Red).add_modifier(Modifier::BOLD)
            }
            TimelineKind::Detected { .. } => palette.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            TimelineKind::Recovered { .. } | TimelineKind::Outcome { .. } => {
                palette.fg(Color::Green).add_modifier(Modifier::BOLD)
            }
            TimelineKind::Say { .. } | TimelineKind::ScenarioBegins { .. } => {
                palette.fg(Color::Cyan)
            }
            TimelineKind::Expected { ok: true, .. } => palette.fg(Color::Green),
            TimelineKind::Expected { ok: false, .. } => palette
                .fg(Color::Red)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            _ => Style::default(),
        };
        let line = Line::from(vec![
            Span::styled(format!("{:>7} ", when(app, e.at_ms)), palette.dim()),
            Span::styled(format!("{:<11} ", truncate(&e.source, 11)), palette.dim()),
            Span::styled(e.kind.to_string(), style),
        ]);
        used += if view.wrap {
            line.width().div_ceil(width).max(1)
        } else {
            1
        };
        lines.push(line);
    }
    lines.reverse();
    let mut paragraph = Paragraph::new(lines);
    if view.wrap {
        paragraph = paragraph
            .wrap(Wrap { trim: false })
            .scroll((used.saturating_sub(height) as u16, 0));
    }
    frame.render_widget(paragraph, inner);
}

/// Lanes per node across, time downwards (newest at the bottom), an arrow per message labelled
/// with the sender's Lamport clock.
fn space_time(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    let hidden = if app.timeline_view.pings {
        "m hides pings"
    } else {
        "pings, progress hidden (m)"
    };
    let outer = block(
        format!(" Messages: lanes are nodes, arrows carry Lamport clocks · {hidden} "),
        palette,
        false,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    // Lanes for the masters and workers; without them (chat servers only), the servers.
    let cluster: fn(&&NodeRow) -> bool = |n| n.kind() == "master" || n.kind() == "worker";
    let servers: fn(&&NodeRow) -> bool = |n| n.kind() == "chat" || n.kind() == "broker";
    let laned = if app.nodes.iter().filter(cluster).count() >= 2 {
        cluster
    } else {
        servers
    };
    let lanes: Vec<&str> = app
        .nodes
        .iter()
        .filter(laned)
        .map(|n| n.name())
        .take(((inner.width as usize).saturating_sub(1) / 8).max(2))
        .collect();
    if lanes.len() < 2 || inner.height < 4 {
        frame.render_widget(
            Paragraph::new("messages show here once nodes talk").style(palette.dim()),
            inner,
        );
        return;
    }
    let width = inner.width as usize;
    let lane_x = |i: usize| (i * (width - 1)) / (lanes.len() - 1).max(1);
    let rows = inner.height as usize - 1;
    let mut grid: Vec<Vec<(char, Style)>> = vec![vec![(' ', Style::default()); width]; rows];
    for row in grid.iter_mut() {
        for i in 0..lanes.len() {
            row[lane_x(i).min(width - 1)] = ('│', palette.dim());
        }
    }
    let recent = recent_messages(app, &lanes, rows);
    for (r, (m, count)) in recent.iter().rev().enumerate() {
        let (Some(a), Some(b)) = (
            lanes.iter().position(|l| *l == &*m.from),
            lanes.iter().position(|l| *l == &*m.to),
        ) else {
            continue;
        };
        let (xa, xb) = (lane_x(a).min(width - 1), lane_x(b).min(width - 1));
        arrow(&mut grid[r], m, *count, (xa, xb), palette);
    }
    let header = lane_header(&lanes, width, lane_x);
    let mut lines = vec![Line::from(header).style(Style::default().add_modifier(Modifier::BOLD))];
    lines.extend(grid.into_iter().map(|row| {
        Line::from(
            row.into_iter()
                .map(|(c, s)| Span::styled(c.to_string(), s))
                .collect::<Vec<_>>(),
        )
    }));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The newest messages between the lanes, one per row, newest first. Heartbeats and pings are
/// hidden unless asked for: they would push the rare messages (an election, a victory) off the
/// diagram in a second. A burst of the same message between the same nodes (a backup catching
/// up on a history, a submission of many jobs) is one row with a count, for the same reason.
fn recent_messages<'a>(app: &'a App, lanes: &[&str], rows: usize) -> Vec<(&'a MessageSeen, usize)> {
    let between = |m: &&MessageSeen| lanes.contains(&&*m.from) && lanes.contains(&&*m.to);
    let pings = app.timeline_view.pings;
    let mut recent: Vec<(&MessageSeen, usize)> = Vec::new();
    for m in app
        .messages
        .iter()
        .rev()
        .filter(between)
        .filter(|m| pings || !is_ping(&m.kind))
    {
        let len = recent.len();
        let burst = recent[len.saturating_sub(BURST_ROWS)..]
            .iter_mut()
            .find(|(r, _)| {
                r.from == m.from
                    && r.to == m.to
                    && r.kind == m.kind
                    && r.fate == m.fate
                    && r.at_ms.saturating_sub(m.at_ms) <= BURST_MS
            });
        match burst {
            Some((_, count)) => *count += m.count as usize,
            None if len < rows => recent.push((m, m.count as usize)),
            None => break,
        }
    }
    recent
}

/// One message as an arrow across a row, from the sender's lane (`xa`) to the receiver's
/// (`xb`), labelled with its type, its count and its Lamport clock.
fn arrow(
    row: &mut [(char, Style)],
    m: &MessageSeen,
    count: usize,
    (xa, xb): (usize, usize),
    palette: &Palette,
) {
    // Dropped (by the link or by hand): red, dashed, ✕. Held: yellow, dotted, stopped at ‖.
    // Delivered by hand: green, double line (↯ when it overtook an earlier one).
    let colour = match m.fate {
        Fate::Dropped | Fate::Discarded => Color::Red,
        Fate::Held => Color::Yellow,
        Fate::Delivered { .. } => Color::Green,
        Fate::Carried if is_ping(&m.kind) => Color::DarkGray,
        Fate::Carried if matches!(m.kind.as_str(), "election" | "answer" | "victory") => {
            Color::Magenta
        }
        Fate::Carried => Color::Cyan,
    };
    let style = palette.fg(colour);
    let (lo, hi) = (xa.min(xb), xa.max(xb));
    let line = match m.fate {
        Fate::Dropped | Fate::Discarded => '╌',
        Fate::Held => '┄',
        Fate::Delivered { .. } => '═',
        Fate::Carried => '─',
    };
    for cell in row.iter_mut().take(hi).skip(lo + 1) {
        *cell = (line, style);
    }
    row[xa] = ('●', style);
    let head = match m.fate {
        Fate::Dropped | Fate::Discarded => '✕',
        Fate::Held => '‖',
        Fate::Delivered { out_of_order: true } => '↯',
        _ if xb > xa => '▶',
        _ => '◀',
    };
    row[xb] = (head, style);
    let kind = if m.kind == "heartbeat" {
        "hb".to_string()
    } else {
        m.kind.chars().take(10).collect()
    };
    let times = if count > 1 {
        format!(" ×{count}")
    } else {
        String::new()
    };
    let how = match m.fate {
        Fate::Held => " held",
        Fate::Delivered { out_of_order: true } => " by hand, out of order",
        Fate::Delivered { .. } => " by hand",
        Fate::Discarded => " dropped by hand",
        _ => "",
    };
    let label = format!(
        "{kind}{times}{}{how}",
        m.clock.map(|c| format!(" c{c}")).unwrap_or_default()
    );
    let start = lo + 2;
    for (k, ch) in label.chars().enumerate() {
        if start + k < hi.saturating_sub(1) {
            row[start + k] = (ch, style);
        }
    }
}

/// The lanes' names, each centred on its lane where there is room.
fn lane_header(lanes: &[&str], width: usize, lane_x: impl Fn(usize) -> usize) -> String {
    let mut header = String::new();
    for (i, name) in lanes.iter().enumerate() {
        let name = truncate(name, 12);
        let len = name.chars().count();
        let x = lane_x(i)
            .min(width - 1)
            .saturating_sub(len / 2)
            .min(width.saturating_sub(len));
        let at = x.max(header.chars().count() + usize::from(i > 0));
        header.push_str(&" ".repeat(at.saturating_sub(header.chars().count())));
        header.push_str(&name);
    }
    header
}
