//! The Nodes pane: one row per node with the cluster's verdict as its STATE and what the
//! operator did to it as TAGS beside it; and the node detail (`Enter`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::{Column, Palette, block, fit, fitted_table, popup, sparkline, truncate, verdict_style};
use crate::console::app::*;
use crate::console::layout::window;
use crate::view::{Role, Verdict};

/// The symbol, word and colour of a verdict, as the STATE column shows it.
pub fn verdict_label(verdict: Verdict) -> (&'static str, &'static str, Color) {
    let (symbol, colour) = verdict_style(verdict);
    (symbol, verdict.as_str(), colour)
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{}M", n >> 20),
        n => format!("{}K", n >> 10),
    }
}

/// A clock offset: `+12ms`, `-2.04s`.
pub fn offset(ms: i64) -> String {
    let sign = if ms >= 0 { "+" } else { "-" };
    let abs = ms.unsigned_abs();
    if abs < 1000 {
        format!("{sign}{abs}ms")
    } else {
        format!("{sign}{:.2}s", abs as f64 / 1000.0)
    }
}

fn age(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The Nodes pane.
pub fn draw(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
    let stale = app.workers_stale();
    let title = if stale {
        format!(
            " Nodes ({}) · heartbeat figures stale: the primary does not answer ",
            app.nodes.len()
        )
    } else {
        format!(" Nodes ({}) ", app.nodes.len())
    };
    let inner_width = area.width.saturating_sub(2);
    let name_width = app
        .nodes
        .iter()
        .map(|n| n.name().chars().count())
        .max()
        .unwrap_or(4)
        .max(4) as u16;
    // What was done to it, and (several clusters) where a lent worker works now.
    let tags: Vec<String> = app
        .nodes
        .iter()
        .map(|n| {
            let mut tags = n.status.faults.tags();
            if let Some(to) = app.lent_to(n) {
                tags.insert(0, format!("lent to {to}"));
            }
            tags.join(", ")
        })
        .collect();
    let clusters = !app.clusters.is_empty();
    let tag_width = tags
        .iter()
        .map(|t| t.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 20) as u16;
    let any_tag = tags.iter().any(|t| !t.is_empty());
    // With `policy clock`, each clock against this console's (from the last round).
    let clocks = app.nodes.iter().any(|n| clock_of(app, n).is_some());
    // Wide enough, TAGS always has its place; narrow, only while some node has a tag.
    let tags_priority = if any_tag || inner_width >= 60 { 2 } else { 99 };
    let columns = [
        Column::new("NODE", name_width + 2, 0),
        Column::new("CLUSTER", 8, if clusters { 2 } else { 99 }),
        Column::new("ROLE", 11, 5),
        Column::new("STATE", 10, 1),
        Column::new("TAGS", tag_width, tags_priority).growing(),
        Column::new("HB", 6, 3),
        Column::new("OFFSET", 7, if clocks { 2 } else { 99 }),
        Column::new("TREND", 8, 8),
        Column::new("LOAD", 4, 4),
        Column::new("DONE", 4, 6),
        Column::new("CLOCK", 5, 7),
        Column::new("PID", 7, 9),
        Column::new("CPU", 4, 10),
        Column::new("MEM", 5, 11),
    ];
    let chosen: Vec<_> = fit(&columns, inner_width)
        .into_iter()
        .filter(|(i, _)| {
            (*i != 4 || tags_priority < 99) && (*i != 1 || clusters) && (*i != 6 || clocks)
        })
        .collect();
    let shown = |header: &str| chosen.iter().any(|(i, _)| columns[*i].header == header);
    let with_role = shown("ROLE");
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
            let look = Look {
                app,
                palette,
                stale,
                with_role,
            };
            let row = Row::new(
                chosen
                    .iter()
                    .map(|(c, _)| look.cell(n, &tags[i], columns[*c].header)),
            );
            if i == selected && focused {
                row.style(palette.selected())
            } else {
                row
            }
        });
    let table =
        fitted_table(rows, &columns, &chosen, palette).block(block(title, palette, focused));
    frame.render_widget(table, area);
}

/// A node's clock as the last round of its cluster's time master read it.
fn clock_of(app: &App, n: &NodeRow) -> Option<crate::view::ClockReading> {
    let serving = app.serving_view(n).read().clocks.reading(n.name()).copied();
    serving.or_else(|| app.view_of(n).read().clocks.reading(n.name()).copied())
}

/// How a row of the Nodes pane is drawn.
struct Look<'a> {
    app: &'a App,
    palette: &'a Palette,
    /// The primary does not answer: heartbeat ages are old.
    stale: bool,
    /// The ROLE column is shown (else the primary's marks say it).
    with_role: bool,
}

impl Look<'_> {
    /// The cell of node `n` under `header`.
    fn cell(&self, n: &NodeRow, tag: &str, header: &str) -> Cell<'static> {
        let (app, palette, stale) = (self.app, self.palette, self.stale);
        let verdict = app.verdict(n);
        let role = app.role(n);
        let exists = n.status.process != crate::view::Process::Exited;
        let live = verdict.is_live() && exists;
        // A lent worker's load is at its borrower.
        let serving = app.serving_view(n);
        let serving_view = serving.read();
        let worker = serving_view.state.workers.get(n.name());
        // Heartbeat ages are the main primary's figures: only for the workers it has now.
        let heard_here = serving.is(&app.cluster);
        let (symbol, colour) = verdict_style(verdict);
        let marker = match role {
            Role::Primary => " ★",
            Role::WasPrimary if !self.with_role => " ☆",
            _ => "",
        };
        let dash = || Cell::from("-");
        match header {
            "NODE" => Cell::from(format!("{}{marker}", n.name())),
            "CLUSTER" => Cell::from(n.status.cluster.clone()),
            "ROLE" => {
                // Without masters, the chat server its peers elected runs the clock rounds.
                let view = app.cluster.read();
                if view
                    .clocks
                    .elected
                    .as_ref()
                    .is_some_and(|(master, _)| master == n.name())
                {
                    let style = palette.fg(Color::Cyan).add_modifier(Modifier::BOLD);
                    return Cell::from(Span::styled("time master", style));
                }
                let style = match role {
                    Role::Primary => palette.fg(Color::Cyan).add_modifier(Modifier::BOLD),
                    Role::WasPrimary => palette.fg(Color::Magenta),
                    _ => Style::default(),
                };
                Cell::from(Span::styled(role.as_str(), style))
            }
            "STATE" => Cell::from(Span::styled(
                format!("{symbol} {}", verdict.as_str()),
                palette.fg(colour).add_modifier(Modifier::BOLD),
            )),
            "TAGS" => Cell::from(Span::styled(
                tag.to_string(),
                palette.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            )),
            "HB" => match n.heartbeat_age_ms {
                Some(ms) if live && worker.is_some() && heard_here => {
                    if stale {
                        Cell::from(Span::styled(format!("{}?", age(ms)), palette.dim()))
                    } else {
                        Cell::from(age(ms))
                    }
                }
                _ => dash(),
            },
            "TREND" if live && worker.is_some() && heard_here => Cell::from(Span::styled(
                sparkline(n.heartbeat_history.iter().copied(), 8),
                palette.dim(),
            )),
            "LOAD" => match worker {
                Some(w) if live => Cell::from(format!("{}/{}", w.running.len(), w.slots)),
                _ => dash(),
            },
            "DONE" => worker.map_or_else(dash, |w| Cell::from(w.done.to_string())),
            "OFFSET" => match clock_of(app, n) {
                Some(r) => {
                    let style = if r.left_out {
                        palette.fg(Color::Red).add_modifier(Modifier::BOLD)
                    } else if r.offset_ms.abs() >= 100 {
                        palette.fg(Color::Yellow)
                    } else {
                        Style::default()
                    };
                    Cell::from(Span::styled(offset(r.offset_ms), style))
                }
                None => dash(),
            },
            "CLOCK" if n.clock > 0 => Cell::from(n.clock.to_string()),
            // A process fact, not a verdict: a paused worker the cluster declared dead still
            // has its process.
            "PID" if exists => n
                .status
                .pid
                .map_or_else(dash, |p| Cell::from(p.to_string())),
            "CPU" if live => n.cpu.map_or_else(dash, |c| Cell::from(format!("{c:.0}%"))),
            "MEM" if live => n.memory.map_or_else(dash, |m| Cell::from(bytes(m))),
            _ => dash(),
        }
    }
}

/// One node in full: the verdict and why, its role, what was done to it, its process and
/// address, its links, and (a worker) its jobs.
pub fn detail(app: &App, name: &str, palette: &Palette, frame: &mut Frame) {
    let Some(node) = app.nodes.iter().find(|n| n.name() == name) else {
        return;
    };
    let verdict = app.verdict(node);
    let (symbol, colour) = verdict_style(verdict);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{name}  "), bold),
        Span::styled(
            format!("{symbol} {}", verdict.as_str()),
            palette.fg(colour).add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("  · {}", app.role(node).as_str())),
    ])];
    let view = app.cluster.read();
    if let Some(c) = view.concluded(name) {
        let ago = app.now_ms.saturating_sub(c.at_ms) as f64 / 1000.0;
        lines.push(Line::from(format!(
            "verdict: {} — {} ({ago:.1}s ago)",
            c.verdict.as_str(),
            c.why
        )));
    } else {
        lines.push(Line::styled(
            "verdict: from its process (no coordinator watches it)",
            palette.dim(),
        ));
    }
    if let Some(r) = clock_of(app, node) {
        let ago = app.now_ms.saturating_sub(r.at_ms) as f64 / 1000.0;
        let mut said = format!(
            "clock: {} against this console's (read {ago:.1}s ago",
            offset(r.offset_ms)
        );
        if r.left_out {
            said.push_str("; left out of the average");
        }
        if let Some(by) = r.moved_ms {
            said.push_str(&format!("; told to move {}", offset(by)));
        }
        said.push(')');
        lines.push(Line::from(said));
    }
    let tags = node.status.faults.tags();
    lines.push(Line::from(format!(
        "done to it: {}",
        if tags.is_empty() {
            "nothing".to_string()
        } else {
            tags.join(", ")
        }
    )));
    lines.push(Line::from(format!(
        "process: {}{}   address: {}",
        node.status.process.as_str(),
        node.status
            .pid
            .map(|p| format!(" (pid {p})"))
            .unwrap_or_default(),
        node.status
            .address
            .as_deref()
            .unwrap_or("- (it does not listen)")
    )));
    if let Some(w) = view.state.workers.get(name) {
        let running: Vec<String> = w.running.iter().map(|j| j.to_string()).collect();
        lines.push(Line::from(format!(
            "slots: {}   done: {}   running: {}",
            w.slots,
            w.done,
            if running.is_empty() {
                "nothing".to_string()
            } else {
                running.join(", ")
            }
        )));
        if let Some(ms) = node.heartbeat_age_ms {
            lines.push(Line::from(format!(
                "last heartbeat: {ms} ms ago{}",
                if app.workers_stale() {
                    " (stale: the primary does not answer)"
                } else {
                    ""
                }
            )));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::styled("links (through tcluster's shaper):", bold));
    lines.extend(link_lines(app, name, palette));
    let height = lines.len() as u16 + 2;
    let area = popup(frame, 84, height);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(
                format!(" {} · Esc closes ", truncate(name, 40)),
                palette,
                true,
            )),
        area,
    );
}

/// A node's links, one line each: cut, slow, lossy, or ok.
fn link_lines(app: &App, name: &str, palette: &Palette) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut links: Vec<&LinkView> = app
        .links
        .iter()
        .filter(|l| l.from == name || l.to == name)
        .collect();
    links.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    if links.is_empty() {
        lines.push(Line::styled("  none", palette.dim()));
    }
    for l in links {
        let mut what = Vec::new();
        if l.cut {
            what.push("CUT".to_string());
        }
        if l.latency_ms > 0 {
            what.push(format!("{} ms", l.latency_ms));
        }
        if l.loss > 0.0 {
            what.push(format!("{}% loss", l.loss));
        }
        let what = if what.is_empty() {
            "ok".to_string()
        } else {
            what.join(", ")
        };
        let style = if l.cut {
            palette.fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        lines.push(Line::styled(
            format!("  {} → {}: {what}", l.from, l.to),
            style,
        ));
    }
    lines
}
