//! Drawing: `draw(&App, frame)`, one function per pane. It reads the app and never changes it.
//! Long lists build only the rows that fit: the cost of a frame does not grow with the history.
//!
//! Every state has a symbol and a word as well as a colour (colour-blind safe), and the
//! `projector` theme trades subtle colours for bold, high-contrast ones.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::app::*;
use super::config::Theme;
use super::keymap::Binding;
use super::layout::{self, window};

use crate::protocol::message::JobState;
use crate::supervisor::NodeState;
use crate::supervisor::logs::{Level, LogLine};
use crate::supervisor::timeline::TimelineKind;
use crate::topology::units::format_duration;

/// Colours and emphasis for one theme.
struct Palette {
    theme: Theme,
}

impl Palette {
    fn fg(&self, colour: Color) -> Style {
        match self.theme {
            Theme::Mono => Style::default(),
            Theme::Default => Style::default().fg(colour),
            Theme::Projector => Style::default().fg(colour).add_modifier(Modifier::BOLD),
        }
    }

    fn dim(&self) -> Style {
        match self.theme {
            Theme::Mono => Style::default(),
            Theme::Default => Style::default().fg(Color::DarkGray),
            Theme::Projector => Style::default().fg(Color::Gray),
        }
    }

    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    fn border(&self, focused: bool) -> Style {
        match (self.theme, focused) {
            (Theme::Mono, true) => Style::default().add_modifier(Modifier::BOLD),
            (Theme::Mono, false) => Style::default(),
            (_, true) => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            (_, false) => self.dim(),
        }
    }

    fn node(&self, index: usize) -> Style {
        const COLOURS: [Color; 8] = [
            Color::Cyan,
            Color::Green,
            Color::Yellow,
            Color::Magenta,
            Color::Blue,
            Color::LightRed,
            Color::LightGreen,
            Color::LightCyan,
        ];
        self.fg(COLOURS[index % COLOURS.len()])
    }

    fn level(&self, level: Level) -> Style {
        match level {
            Level::Error => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Level::Warn => self.fg(Color::Yellow),
            Level::Info => self.fg(Color::Green),
            Level::Debug | Level::Trace => self.dim(),
        }
    }
}

/// The symbol, word and colour of a node state.
pub fn state_label(state: NodeState) -> (&'static str, &'static str, Color) {
    match state {
        NodeState::Starting => ("○", "starting", Color::Gray),
        NodeState::Healthy => ("●", "healthy", Color::Green),
        NodeState::Suspect => ("◐", "suspect", Color::Yellow),
        NodeState::Dead => ("✕", "dead", Color::Red),
        NodeState::Paused => ("‖", "paused", Color::Blue),
        NodeState::Partitioned => ("⇹", "partitioned", Color::Magenta),
        NodeState::Restarting => ("↻", "restarting", Color::Cyan),
        NodeState::Stopped => ("■", "stopped", Color::Gray),
        NodeState::NotLaunched => ("–", "not run", Color::Gray),
    }
}

fn job_label(state: JobState) -> (&'static str, Color) {
    match state {
        JobState::Queued => ("… queued", Color::Gray),
        JobState::Assigned => ("→ assigned", Color::Cyan),
        JobState::Running => ("▶ running", Color::Yellow),
        JobState::Completed => ("✓ done", Color::Green),
        JobState::Failed => ("✕ failed", Color::Red),
    }
}

/// Draws the whole screen.
pub fn draw(app: &App, bindings: &[Binding], frame: &mut Frame) {
    let palette = Palette {
        theme: app.config.theme,
    };
    let areas = layout::areas(app, frame.area());
    if let (Some(area), Some((text, _))) = (areas.banner, &app.banner) {
        let banner = Paragraph::new(Line::from(format!("▶ {text}")).centered()).style(
            palette
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        );
        frame.render_widget(banner, area);
    }
    for (pane, area) in &areas.panes {
        let focused = *pane == app.focus;
        match pane {
            Pane::Nodes => nodes(app, &palette, frame, *area, focused),
            Pane::Jobs => jobs(app, &palette, frame, *area, focused),
            Pane::Chat => chat(app, &palette, frame, *area, focused),
            Pane::Logs => logs(app, &palette, frame, *area, focused),
            Pane::Map => map(app, &palette, frame, *area),
            Pane::Timeline => timeline(app, &palette, frame, *area),
        }
    }
    status_line(app, bindings, &palette, frame, areas.status);
    match &app.mode {
        Mode::Help => help(bindings, &palette, frame),
        Mode::Submit(form) => submit_form(form, &palette, frame),
        Mode::JobDetail(id) => job_detail(app, *id, &palette, frame),
        _ => {}
    }
}

fn block<'a>(title: impl Into<Line<'a>>, palette: &Palette, focused: bool) -> Block<'a> {
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(palette.border(focused))
        .title(title)
}

/// `▁▂▃▅▇` for a series, newest last, scaled to its own maximum.
pub fn sparkline(values: impl Iterator<Item = u64> + Clone, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let all: Vec<u64> = values.collect();
    let shown = &all[all.len().saturating_sub(width)..];
    let max = shown.iter().copied().max().unwrap_or(0).max(1);
    shown
        .iter()
        .map(|&v| BARS[((v * 7) / max).min(7) as usize])
        .collect()
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{}M", n >> 20),
        n => format!("{}K", n >> 10),
    }
}

fn nodes(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
    // Three column sets, by the room there is: everything; without process figures; the
    // essentials (a projector at 80×24 still shows who is alive and how late its heartbeat is).
    let inner_width = area.width.saturating_sub(2);
    let (wide, medium) = (inner_width >= 88, inner_width >= 60);
    let title = format!(" Nodes ({}) ", app.nodes.len());
    let name_width = app
        .nodes
        .iter()
        .map(|n| n.name.chars().count() + 2)
        .max()
        .unwrap_or(6)
        .clamp(6, if medium { 24 } else { 11 }) as u16;
    let height = area.height.saturating_sub(3) as usize;
    let selected = app.selected(Pane::Nodes);
    let start = window(selected, height);
    let rows = app
        .nodes
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(i, n)| {
            let (symbol, word, colour) = state_label(n.state);
            let star = if n.role == "primary" { " ★" } else { "" };
            let name = format!(
                "{}{star}",
                truncate(&n.name, name_width as usize - star.chars().count())
            );
            let load = if n.slots > 0 {
                format!("{}/{}", n.running, n.slots)
            } else {
                "-".to_string()
            };
            let age = n.heartbeat_age_ms.map_or("-".to_string(), |a| {
                if a < 1000 {
                    format!("{a}ms")
                } else {
                    format!("{:.1}s", a as f64 / 1000.0)
                }
            });
            let mut cells = vec![Cell::from(name)];
            if medium {
                cells.push(Cell::from(n.role.clone()));
            }
            cells.push(Cell::from(Span::styled(
                format!("{symbol} {word}"),
                palette.fg(colour),
            )));
            cells.push(Cell::from(age));
            if wide {
                cells.push(Cell::from(Span::styled(
                    sparkline(n.heartbeat_history.iter().copied(), 8),
                    palette.dim(),
                )));
            }
            cells.push(Cell::from(load));
            if medium {
                cells.push(Cell::from(n.done.to_string()));
            }
            cells.push(Cell::from(n.clock.to_string()));
            if wide {
                cells.push(Cell::from(n.pid.map_or("-".to_string(), |p| p.to_string())));
                cells.push(Cell::from(
                    n.cpu.map_or("-".to_string(), |c| format!("{c:.0}%")),
                ));
                cells.push(Cell::from(n.memory.map_or("-".to_string(), bytes)));
            }
            let row = Row::new(cells);
            if i == selected && focused {
                row.style(palette.selected())
            } else {
                row
            }
        });
    let mut header = vec!["NODE"];
    let mut widths = vec![Constraint::Length(name_width)];
    if medium {
        header.push("ROLE");
        widths.push(Constraint::Length(7));
    }
    header.extend(["STATE", "HB"]);
    widths.extend([
        Constraint::Length(if medium { 13 } else { 9 }),
        Constraint::Length(if medium { 6 } else { 5 }),
    ]);
    if wide {
        header.push("TREND");
        widths.push(Constraint::Length(8));
    }
    header.push("LOAD");
    widths.push(Constraint::Length(4));
    if medium {
        header.push("DONE");
        widths.push(Constraint::Length(4));
    }
    header.push("CLOCK");
    widths.push(Constraint::Length(5));
    if wide {
        header.extend(["PID", "CPU", "MEM"]);
        widths.extend([
            Constraint::Length(7),
            Constraint::Length(4),
            Constraint::Length(5),
        ]);
    }
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(palette.dim().add_modifier(Modifier::BOLD)))
        .block(block(title, palette, focused))
        .column_spacing(1);
    frame.render_widget(table, area);
}

fn jobs(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
    let c = &app.jobs.counts;
    let filter = app.jobs.filter.map_or("all".to_string(), |f| f.to_string());
    let title = format!(" Jobs ({}) · {filter} ", c.total());
    let outer = block(title, palette, focused);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [summary, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    let rate = app
        .jobs
        .throughput
        .iter()
        .rev()
        .skip(1)
        .take(5)
        .sum::<u64>() as f64
        / 5.0;
    let spark = sparkline(
        app.jobs.throughput.iter().copied(),
        (summary.width as usize).saturating_sub(58).clamp(4, 40),
    );
    let line = Line::from(vec![
        Span::styled(format!("…{} ", c.queued), palette.fg(Color::Gray)),
        Span::styled(format!("→{} ", c.assigned), palette.fg(Color::Cyan)),
        Span::styled(format!("▶{} ", c.running), palette.fg(Color::Yellow)),
        Span::styled(format!("✓{} ", c.completed), palette.fg(Color::Green)),
        Span::styled(format!("✕{} ", c.failed), palette.fg(Color::Red)),
        Span::styled(
            if app.jobs.duplicates > 0 {
                format!("⧉{} ran twice ", app.jobs.duplicates)
            } else {
                String::new()
            },
            palette.fg(Color::Magenta),
        ),
        Span::raw(format!(" {rate:.1}/s ")),
        Span::styled(spark, palette.fg(Color::Green)),
    ]);
    frame.render_widget(Paragraph::new(line), summary);

    let height = table_area.height.saturating_sub(1) as usize;
    let selected = app.selected(Pane::Jobs);
    let start = window(selected, height);
    let wide = area.width >= 70;
    let rows = app
        .jobs
        .visible
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .filter_map(|(i, id)| {
            let job = app.jobs.all.get(id)?;
            let (label, colour) = job_label(job.state);
            let age = app.now_ms.saturating_sub(job.submitted_ms) / 1000;
            let bar_width = 8;
            let filled = (job.progress as usize * bar_width) / 100;
            let gauge = format!(
                "{}{} {:>3}%",
                "█".repeat(filled),
                "░".repeat(bar_width - filled),
                job.progress
            );
            let mut cells = vec![
                Cell::from(job.id.to_string()),
                Cell::from(Span::styled(label, palette.fg(colour))),
                Cell::from(job.worker.clone().unwrap_or_else(|| "-".into())),
            ];
            if wide {
                cells.push(Cell::from(job.attempts.to_string()));
                cells.push(Cell::from(format!("{age}s")));
            }
            cells.push(Cell::from(gauge));
            cells.push(Cell::from(job.data.clone()));
            let row = Row::new(cells);
            Some(if i == selected && focused {
                row.style(palette.selected())
            } else {
                row
            })
        });
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec!["JOB", "STATE", "WORKER", "TRY", "AGE", "PROGRESS", "DATA"],
            vec![
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(3),
                Constraint::Length(5),
                Constraint::Length(13),
                Constraint::Fill(1),
            ],
        )
    } else {
        (
            vec!["JOB", "STATE", "WORKER", "PROGRESS", "DATA"],
            vec![
                Constraint::Length(8),
                Constraint::Length(10),
                Constraint::Length(9),
                Constraint::Length(13),
                Constraint::Fill(1),
            ],
        )
    };
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(palette.dim().add_modifier(Modifier::BOLD)))
        .column_spacing(1);
    frame.render_widget(table, table_area);
}

fn chat(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
    let c = &app.chat;
    if !c.has_server {
        let text = Text::from(vec![
            Line::from("This topology has no chat server."),
            Line::from(""),
            Line::styled(
                "Add one with `node chat { type chat }`, and bots to talk in it with `node bot { type bot }`.",
                palette.dim(),
            ),
        ]);
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(block(" Chat ", palette, focused)),
            area,
        );
        return;
    }
    let shown = match &c.channel {
        Some(channel) => format!("#{channel}"),
        None => "all channels".to_string(),
    };
    let via = match &c.server {
        Some(server) => format!("via {server}"),
        None => "not connected".to_string(),
    };
    let title = format!(" Chat · {shown} · {via} ");
    let outer = block(title.as_str(), palette, focused);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if inner.height == 0 {
        return;
    }
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    // The channels, the one shown in reverse video.
    let mut spans = Vec::new();
    let all = std::iter::once((None, "all".to_string())).chain(
        c.channels
            .iter()
            .map(|ch| (Some(ch.clone()), format!("#{ch}"))),
    );
    for (channel, label) in all {
        let style = if channel == c.channel {
            palette.selected()
        } else {
            palette.dim()
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), tabs);

    let rows = body.height as usize;
    let mut lines: Vec<Line> = c
        .items
        .values()
        .rev()
        .filter(|item| c.shows(item))
        .skip(c.back)
        .take(rows)
        .map(|item| chat_line(item, c.channel.is_none(), palette))
        .collect();
    lines.reverse();
    if lines.is_empty() {
        lines.push(Line::styled(
            if c.server.is_some() {
                "no messages yet: press i to write"
            } else {
                "connecting to a chat server …"
            },
            palette.dim(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), body);
}

/// A chat item as one line: `[clock] #channel user: text`.
fn chat_line<'a>(item: &'a ChatItem, with_channel: bool, palette: &Palette) -> Line<'a> {
    use crate::protocol::message::ChatBody;
    let entry = match item {
        ChatItem::Entry(entry) => entry,
        ChatItem::Notice(text) => {
            return Line::styled(format!("── {text}"), palette.fg(Color::Yellow));
        }
    };
    let clock = Span::styled(format!("[{}] ", entry.clock), palette.dim());
    // The same user has the same colour everywhere.
    let colour = |name: &str| {
        let hash = name
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        palette.node(hash).add_modifier(Modifier::BOLD)
    };
    match &entry.body {
        ChatBody::Post {
            channel,
            from,
            text,
        } => {
            let mut spans = vec![clock];
            if with_channel {
                spans.push(Span::styled(format!("#{channel} "), palette.dim()));
            }
            spans.push(Span::styled(from.as_str(), colour(from)));
            spans.push(Span::raw(": "));
            spans.push(Span::raw(text.as_str()));
            Line::from(spans)
        }
        ChatBody::Direct { from, to, text } => Line::from(vec![
            clock,
            Span::styled(from.as_str(), colour(from)),
            Span::styled(format!(" → {to} (private): "), palette.fg(Color::Magenta)),
            Span::raw(text.as_str()),
        ]),
        ChatBody::Channel { channel, by } => Line::from(vec![
            clock,
            Span::styled(format!("#{channel} created by {by}"), palette.dim()),
        ]),
    }
}

fn logs(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
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

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn map(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    let outer = block(
        " Map · ★ primary · red ✕ cut link · yellow shaped link (latency / loss) ",
        palette,
        true,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if app.nodes.is_empty() || inner.width < 10 || inner.height < 5 {
        return;
    }
    // Masters across the top, everything else on rows below, in a 100×100 space.
    let masters: Vec<&NodeRow> = app.nodes.iter().filter(|n| n.kind == "master").collect();
    let others: Vec<&NodeRow> = app.nodes.iter().filter(|n| n.kind != "master").collect();
    let per_row = ((inner.width as usize) / 14).max(1);
    let rows = others.len().div_ceil(per_row).max(1);
    let mut position = std::collections::HashMap::new();
    for (i, n) in masters.iter().enumerate() {
        position.insert(
            n.name.as_str(),
            (
                (i as f64 + 1.0) * 100.0 / (masters.len() as f64 + 1.0),
                90.0,
            ),
        );
    }
    for (i, n) in others.iter().enumerate() {
        let (row, col) = (i / per_row, i % per_row);
        let in_row = (others.len() - row * per_row).min(per_row);
        let x = (col as f64 + 0.5) * 100.0 / in_row as f64;
        let y = 60.0 - (row as f64 + 0.5) * 55.0 / rows as f64;
        position.insert(n.name.as_str(), (x, y));
    }
    let primary = app.primary.clone();
    let links: Vec<(String, String, Color, String)> = if app.links.is_empty() {
        others
            .iter()
            .filter(|n| n.kind == "worker")
            .map(|n| {
                (
                    n.name.clone(),
                    primary.clone(),
                    Color::DarkGray,
                    String::new(),
                )
            })
            .collect()
    } else {
        app.links
            .iter()
            .filter(|l| {
                l.from < l.to || !app.links.iter().any(|o| o.from == l.to && o.to == l.from)
            })
            .map(|l| {
                let both = app.links.iter().filter(|o| {
                    (o.from == l.from && o.to == l.to) || (o.from == l.to && o.to == l.from)
                });
                let cut = both.clone().any(|o| o.cut);
                let latency = both.clone().map(|o| o.latency_ms).max().unwrap_or(0);
                let loss = both.map(|o| o.loss).fold(0.0, f64::max);
                let (colour, label) = if cut {
                    (Color::Red, "✕ cut".to_string())
                } else if latency > 0 || loss > 0.0 {
                    let mut label = String::new();
                    if latency > 0 {
                        label.push_str(&format!("{latency}ms"));
                    }
                    if loss > 0.0 {
                        label.push_str(&format!(" {loss}%"));
                    }
                    (Color::Yellow, label)
                } else {
                    (Color::DarkGray, String::new())
                };
                (l.from.clone(), l.to.clone(), colour, label)
            })
            .collect()
    };
    let mono = app.config.theme == Theme::Mono;
    let canvas = Canvas::default()
        .x_bounds([0.0, 100.0])
        .y_bounds([0.0, 100.0])
        .marker(Marker::Braille)
        .paint(|ctx| {
            for (from, to, colour, label) in &links {
                let (Some(a), Some(b)) = (position.get(from.as_str()), position.get(to.as_str()))
                else {
                    continue;
                };
                ctx.draw(&CanvasLine {
                    x1: a.0,
                    y1: a.1,
                    x2: b.0,
                    y2: b.1,
                    color: if mono { Color::Reset } else { *colour },
                });
                if !label.is_empty() {
                    ctx.print(
                        (a.0 + b.0) / 2.0,
                        (a.1 + b.1) / 2.0,
                        Span::styled(label.clone(), palette.fg(*colour)),
                    );
                }
            }
            ctx.layer();
            for n in app.nodes.iter() {
                let Some((x, y)) = position.get(n.name.as_str()) else {
                    continue;
                };
                let (symbol, _, colour) = state_label(n.state);
                let star = if n.name == primary { "★" } else { "" };
                let label = format!("{symbol}{star}{}", truncate(&n.name, 12));
                ctx.print(
                    x - (label.chars().count() as f64) * 100.0 / (2.0 * inner.width as f64),
                    *y,
                    Span::styled(label, palette.fg(colour).add_modifier(Modifier::BOLD)),
                );
            }
        });
    frame.render_widget(canvas, inner);
}

fn timeline(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(48), Constraint::Percentage(52)]).areas(area);
    let [faults_area, events_area] = Layout::vertical([
        Constraint::Length((app.faults.len() as u16 + 3).min(left.height / 2).max(4)),
        Constraint::Min(3),
    ])
    .areas(left);

    let rows = app
        .faults
        .iter()
        .rev()
        .take(faults_area.height.saturating_sub(3) as usize)
        .rev()
        .map(|f| {
            let after = |t: Option<u64>| {
                t.map_or("…".to_string(), |t| {
                    format!("{}ms", t.saturating_sub(f.at_ms))
                })
            };
            let detected = f
                .detected
                .as_ref()
                .map(|(t, by)| format!("{} by {by}", after(Some(*t))))
                .unwrap_or_else(|| "…".into());
            Row::new(vec![
                format!("#{}", f.number),
                format!("{:.1}s", f.at_ms as f64 / 1000.0),
                f.text.clone(),
                detected,
                after(f.recovered_ms),
            ])
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(3),
            Constraint::Length(6),
            Constraint::Fill(2),
            Constraint::Fill(1),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(["#", "AT", "FAULT", "DETECTED", "RECOVERED"])
            .style(palette.dim().add_modifier(Modifier::BOLD)),
    )
    .block(block(
        " Faults: measured detection and recovery ",
        palette,
        true,
    ));
    frame.render_widget(table, faults_area);

    let height = events_area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app
        .timeline
        .iter()
        .rev()
        .take(height)
        .rev()
        .map(|e| {
            let style = match &e.kind {
                TimelineKind::Action { fault: Some(_), .. } => {
                    palette.fg(Color::Red).add_modifier(Modifier::BOLD)
                }
                TimelineKind::Detected { .. } => {
                    palette.fg(Color::Yellow).add_modifier(Modifier::BOLD)
                }
                TimelineKind::Recovered { .. } => {
                    palette.fg(Color::Green).add_modifier(Modifier::BOLD)
                }
                TimelineKind::Say { .. } => palette.fg(Color::Cyan),
                _ => Style::default(),
            };
            Line::styled(e.to_string().trim_start().to_string(), style)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(block(" Events ", palette, false)),
        events_area,
    );

    space_time(app, palette, frame, right);
}

/// Lanes per node across, time downwards (newest at the bottom), an arrow per message labelled
/// with the sender's Lamport clock.
fn space_time(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    let outer = block(
        " Messages (last seconds): lanes are nodes, arrows carry Lamport clocks ",
        palette,
        false,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let lanes: Vec<&str> = app
        .nodes
        .iter()
        .filter(|n| n.kind == "master" || n.kind == "worker")
        .map(|n| n.name.as_str())
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
    // The newest messages, one per row; heartbeats give way to the rest when space is short.
    let between = |m: &&crate::supervisor::shaper::MessageSeen| {
        lanes.contains(&&*m.from) && lanes.contains(&&*m.to)
    };
    let others = app
        .messages
        .iter()
        .rev()
        .filter(between)
        .filter(|m| m.kind != "heartbeat")
        .take(rows)
        .count();
    let mut heartbeats_left = rows.saturating_sub(others);
    let recent: Vec<_> = app
        .messages
        .iter()
        .rev()
        .filter(between)
        .filter(|m| {
            if m.kind != "heartbeat" {
                return true;
            }
            let keep = heartbeats_left > 0;
            heartbeats_left = heartbeats_left.saturating_sub(1);
            keep
        })
        .take(rows)
        .collect();
    for (r, m) in recent.iter().rev().enumerate() {
        let (Some(a), Some(b)) = (
            lanes.iter().position(|l| *l == &*m.from),
            lanes.iter().position(|l| *l == &*m.to),
        ) else {
            continue;
        };
        let (xa, xb) = (lane_x(a).min(width - 1), lane_x(b).min(width - 1));
        let colour = if m.dropped {
            Color::Red
        } else if m.kind == "heartbeat" {
            Color::DarkGray
        } else {
            Color::Cyan
        };
        let style = palette.fg(colour);
        let (lo, hi) = (xa.min(xb), xa.max(xb));
        for cell in grid[r].iter_mut().take(hi).skip(lo + 1) {
            *cell = (if m.dropped { '╌' } else { '─' }, style);
        }
        grid[r][xa] = ('●', style);
        grid[r][xb] = (
            if m.dropped {
                '✕'
            } else if xb > xa {
                '▶'
            } else {
                '◀'
            },
            style,
        );
        let kind = if m.kind == "heartbeat" {
            "hb".to_string()
        } else {
            m.kind.chars().take(10).collect()
        };
        let label = format!(
            "{kind}{}",
            m.clock.map(|c| format!(" c{c}")).unwrap_or_default()
        );
        let start = lo + 2;
        for (k, ch) in label.chars().enumerate() {
            if start + k < hi.saturating_sub(1) {
                grid[r][start + k] = (ch, style);
            }
        }
    }
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

fn status_line(app: &App, bindings: &[Binding], palette: &Palette, frame: &mut Frame, area: Rect) {
    match &app.mode {
        Mode::Command(input) | Mode::Search(input) | Mode::Chat(input) => {
            let prompt = match &app.mode {
                Mode::Command(_) => ":".to_string(),
                Mode::Search(_) => "/".to_string(),
                _ => format!(
                    "#{} as {}> ",
                    app.chat.post_channel(),
                    app.chat.login_name()
                ),
            };
            let [p, field] = Layout::horizontal([
                Constraint::Length(prompt.chars().count() as u16),
                Constraint::Min(1),
            ])
            .areas(area);
            frame.render_widget(
                Paragraph::new(prompt.as_str())
                    .style(Style::default().add_modifier(Modifier::BOLD)),
                p,
            );
            frame.render_widget(input, field);
            return;
        }
        Mode::Confirm(action) => {
            let line = Line::from(vec![
                Span::styled(
                    format!(" {action}? "),
                    palette
                        .fg(Color::Red)
                        .add_modifier(Modifier::BOLD | Modifier::REVERSED),
                ),
                Span::raw("  y: yes   n or Esc: no"),
            ]);
            frame.render_widget(Paragraph::new(line), area);
            return;
        }
        _ => {}
    }
    let c = &app.jobs.counts;
    let elapsed = format_duration(std::time::Duration::from_secs(app.now_ms / 1000));
    let mut spans = vec![
        Span::styled(
            format!(" {} ", app.system),
            palette
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!(" ★ {} term {} ", app.primary, app.term)),
        Span::styled(
            format!(
                "…{} ▶{} ✓{} ✕{} ",
                c.queued + c.assigned,
                c.running,
                c.completed,
                c.failed
            ),
            palette.fg(Color::Green),
        ),
        Span::styled(format!("{elapsed} "), palette.dim()),
    ];
    if let Some((flash, _)) = &app.flash {
        spans.push(Span::styled(
            format!(" {flash} "),
            palette.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    } else {
        for b in bindings.iter().filter(|b| b.hint) {
            spans.push(Span::styled(
                format!(" {}", b.key_label()),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!(":{}", b.name.replace('_', " ")),
                palette.dim(),
            ));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn popup(frame: &mut Frame, width: u16, height: u16) -> Rect {
    let area = frame.area();
    let (w, h) = (width.min(area.width), height.min(area.height));
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, rect);
    rect
}

fn help(bindings: &[Binding], palette: &Palette, frame: &mut Frame) {
    let mut lines: Vec<Line> = bindings
        .iter()
        .map(|b| {
            let scope = match b.scope {
                super::keymap::Scope::Global => String::new(),
                super::keymap::Scope::In(p) => format!(" ({})", p.title()),
            };
            Line::from(vec![
                Span::styled(
                    format!("{:>7}  ", b.key_label()),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("{}{scope}", b.help)),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "  :submit [N] DATA  :kill|pause|resume|restart NODE  :partition A [B | -> B]  :heal",
        palette.dim(),
    ));
    lines.push(Line::styled(
        "  :latency A B 200ms  :loss A B 5%  :skew NODE -2s  :scenario NAME  :say TEXT  :quit",
        palette.dim(),
    ));
    lines.push(Line::styled(
        "  mouse: click to focus and select, wheel to scroll · any key closes this help",
        palette.dim(),
    ));
    let screen = frame.area();
    if lines.len() as u16 + 2 <= screen.height {
        let area = popup(frame, 92, lines.len() as u16 + 2);
        frame.render_widget(
            Paragraph::new(lines).block(block(" Keys · any key closes ", palette, true)),
            area,
        );
        return;
    }
    // A short terminal: the bindings flow into two columns, the command summary is left out.
    let bindings_only: Vec<Line> = lines.into_iter().take(bindings.len()).collect();
    let half = bindings_only.len().div_ceil(2);
    let area = popup(frame, screen.width, half as u16 + 2);
    let outer = block(" Keys · any key closes ", palette, true);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(bindings_only[..half].to_vec()), left);
    frame.render_widget(Paragraph::new(bindings_only[half..].to_vec()), right);
}

fn submit_form(form: &SubmitForm, palette: &Palette, frame: &mut Frame) {
    let area = popup(frame, 72, 9);
    let outer = block(
        " Submit jobs · Tab: next field · Enter: submit · Esc: cancel ",
        palette,
        true,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let rows = Layout::vertical([Constraint::Length(2); 3]).split(inner);
    for (i, row) in rows.iter().enumerate() {
        let [label, field] =
            Layout::horizontal([Constraint::Length(10), Constraint::Min(1)]).areas(*row);
        let style = if i == form.field {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            palette.dim()
        };
        frame.render_widget(Paragraph::new(SubmitForm::LABELS[i]).style(style), label);
        frame.render_widget(&form.fields[i], field);
    }
}

fn job_detail(
    app: &App,
    id: crate::protocol::message::JobId,
    palette: &Palette,
    frame: &mut Frame,
) {
    let Some(job) = app.jobs.all.get(&id) else {
        return;
    };
    let (label, colour) = job_label(job.state);
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!("{id}  "),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::styled(label, palette.fg(colour)),
        ]),
        Line::from(format!("data: {}", job.data)),
        Line::from(format!(
            "attempts: {}   worker: {}",
            job.attempts,
            job.worker.as_deref().unwrap_or("-")
        )),
    ];
    if let Some(outcome) = &job.outcome {
        lines.push(Line::from(format!("outcome: {outcome}")));
    }
    lines.push(Line::from(""));
    lines.extend(job.history.iter().map(|(at, what)| {
        Line::from(vec![
            Span::styled(format!("{:>8.3}s  ", *at as f64 / 1000.0), palette.dim()),
            Span::raw(what.clone()),
        ])
    }));
    let area = popup(frame, 80, lines.len() as u16 + 2);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(" Job history · Esc closes ", palette, true)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_their_maximum() {
        assert_eq!(sparkline([0, 1, 2, 4, 8].into_iter(), 10), "▁▁▂▄█");
        assert_eq!(sparkline([5, 5].into_iter(), 1), "█");
        assert_eq!(sparkline(std::iter::empty(), 4), "");
    }
}
