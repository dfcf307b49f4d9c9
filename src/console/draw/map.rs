//! The Map: masters across the top, the other nodes in rows below, and the links between them
//! — cut links red and dashed, slow or lossy links yellow with their latency and loss written
//! on them. Lines stop short of the names so every label stays readable, and the projector
//! theme draws them in thick, bright strokes.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::canvas::{Canvas, Context, Line as CanvasLine};

use super::{Palette, block, truncate, verdict_style};
use crate::console::app::*;
use crate::console::config::Theme;
use crate::view::Role;

/// One link as drawn: both directions of a pair of nodes together.
struct Drawn {
    from: String,
    to: String,
    colour: Color,
    dashed: bool,
    label: String,
}

/// The Map.
pub fn draw(app: &App, palette: &Palette, frame: &mut Frame, area: Rect) {
    let outer = block(
        " Map · ★ primary · red dashed: cut link · yellow: slow, lossy or held link · TLS: encrypted · ↑↓ a link, H holds it ",
        palette,
        true,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if app.nodes.is_empty() || inner.width < 10 || inner.height < 5 {
        return;
    }
    let position = positions(app, inner);
    let links = drawn_links(app, palette);
    let mono = app.config.theme == Theme::Mono;
    // Canvas units per character, to keep lines clear of the labels.
    let (cell_w, cell_h) = (100.0 / inner.width as f64, 100.0 / inner.height as f64);
    let label_of = |n: &NodeRow| {
        let star = match app.role(n) {
            Role::Primary => "★ ",
            Role::WasPrimary => "☆ ",
            _ => "",
        };
        let (symbol, _) = verdict_style(app.verdict(n));
        format!("{symbol} {star}{}", truncate(n.name(), 14))
    };
    let half_width: HashMap<&str, f64> = app
        .nodes
        .iter()
        .map(|n| {
            (
                n.name(),
                (label_of(n).chars().count() as f64 / 2.0 + 1.0) * cell_w,
            )
        })
        .collect();
    let marker = match app.config.theme {
        Theme::Projector => Marker::HalfBlock,
        _ => Marker::Braille,
    };
    let pen = Pen {
        palette,
        mono,
        cell_w,
        cell_h,
    };
    let canvas = Canvas::default()
        .x_bounds([0.0, 100.0])
        .y_bounds([0.0, 100.0])
        .marker(marker)
        .paint(|ctx| {
            for link in &links {
                let (Some(a), Some(b)) = (
                    position.get(link.from.as_str()),
                    position.get(link.to.as_str()),
                ) else {
                    continue;
                };
                let halves = (half_width[link.from.as_str()], half_width[link.to.as_str()]);
                pen.link(ctx, link, *a, *b, halves);
            }
            // Each cluster's band: its name at the top, a rule between bands.
            let bands = bands(app);
            if bands.len() > 1 {
                let width = 100.0 / bands.len() as f64;
                for (b, band) in bands.iter().enumerate() {
                    let left = b as f64 * width;
                    if b > 0 {
                        ctx.draw(&ratatui::widgets::canvas::Line {
                            x1: left,
                            y1: 2.0,
                            x2: left,
                            y2: 98.0,
                            color: Color::DarkGray,
                        });
                    }
                    let name = if band.is_empty() { "default" } else { band };
                    ctx.print(
                        left + 2.0 * cell_w,
                        97.0,
                        Span::styled(format!("cluster {name}"), palette.dim()),
                    );
                }
            }
            ctx.layer();
            for n in &app.nodes {
                let Some(at) = position.get(n.name()) else {
                    continue;
                };
                let (_, colour) = verdict_style(app.verdict(n));
                let mut tags = n.status.faults.tags();
                if let Some(to) = app.lent_to(n) {
                    tags.insert(0, format!("lent to {to}"));
                }
                let tags = tags.join(", ");
                pen.node(ctx, label_of(n), tags, *at, colour);
            }
        });
    frame.render_widget(canvas, inner);
}

/// What draws on the map's canvas (100×100 units).
struct Pen<'a> {
    palette: &'a Palette,
    /// No colours (the mono theme).
    mono: bool,
    /// Canvas units per character, across and down.
    cell_w: f64,
    cell_h: f64,
}

impl Pen<'_> {
    /// A link from `a` to `b`, from the edge of one label to the edge of the other (`halves`:
    /// the labels' half widths), dashed if cut, with its label halfway.
    fn link(
        &self,
        ctx: &mut Context<'_>,
        link: &Drawn,
        a: (f64, f64),
        b: (f64, f64),
        halves: (f64, f64),
    ) {
        let box_a = (halves.0, self.cell_h * 1.5);
        let box_b = (halves.1, self.cell_h * 1.5);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let exit = |half: (f64, f64)| {
            let fx = if dx.abs() > 1e-9 {
                half.0 / dx.abs()
            } else {
                f64::MAX
            };
            let fy = if dy.abs() > 1e-9 {
                half.1 / dy.abs()
            } else {
                f64::MAX
            };
            fx.min(fy)
        };
        let (t0, t1) = (exit(box_a), 1.0 - exit(box_b));
        if t0 >= t1 {
            return;
        }
        let colour = if self.mono { Color::Reset } else { link.colour };
        let pieces = if link.dashed { 9 } else { 1 };
        for k in 0..pieces {
            if link.dashed && k % 2 == 1 {
                continue;
            }
            let s = t0 + (t1 - t0) * k as f64 / pieces as f64;
            let e = t0 + (t1 - t0) * (k + 1) as f64 / pieces as f64;
            ctx.draw(&CanvasLine {
                x1: a.0 + dx * s,
                y1: a.1 + dy * s,
                x2: a.0 + dx * e,
                y2: a.1 + dy * e,
                color: colour,
            });
        }
        if !link.label.is_empty() {
            let x = (a.0 + b.0) / 2.0 - link.label.chars().count() as f64 * self.cell_w / 2.0;
            ctx.print(
                x.max(0.0),
                (a.1 + b.1) / 2.0,
                Span::styled(
                    link.label.clone(),
                    self.palette.fg(link.colour).add_modifier(Modifier::BOLD),
                ),
            );
        }
    }

    /// A node's label centred on `(x, y)`, and what was done to it just below.
    fn node(
        &self,
        ctx: &mut Context<'_>,
        label: String,
        tags: String,
        (x, y): (f64, f64),
        colour: Color,
    ) {
        let left = x - label.chars().count() as f64 * self.cell_w / 2.0;
        ctx.print(
            left.max(0.0),
            y,
            Span::styled(label, self.palette.fg(colour).add_modifier(Modifier::BOLD)),
        );
        if !tags.is_empty() {
            let left = x - tags.chars().count() as f64 * self.cell_w / 2.0;
            ctx.print(
                left.max(0.0),
                y - self.cell_h,
                Span::styled(tags, self.palette.fg(Color::Magenta)),
            );
        }
    }
}

/// The clusters the map draws side by side (one band each), in the topology's order, with
/// nodes of no named cluster last; a single band without clusters.
fn bands(app: &App) -> Vec<String> {
    let mut bands: Vec<String> = app.clusters.clone();
    for n in &app.nodes {
        if !app.clusters.is_empty() && !bands.contains(&n.status.cluster) {
            bands.push(n.status.cluster.clone());
        }
    }
    if bands.is_empty() {
        bands.push(String::new());
    }
    bands
}

/// Where each node sits, in a 100×100 space: each cluster in a band of its own (one band when
/// there are no clusters), its masters across the top, the rest in rows.
fn positions<'a>(app: &'a App, inner: Rect) -> HashMap<&'a str, (f64, f64)> {
    let bands = bands(app);
    let width = 100.0 / bands.len() as f64;
    let left_of = |b: usize| b as f64 * width;
    let mut position = HashMap::new();
    for (b, band) in bands.iter().enumerate() {
        let in_band = |n: &&NodeRow| bands.len() == 1 || n.status.cluster == *band;
        let masters: Vec<&NodeRow> = app
            .nodes
            .iter()
            .filter(|n| n.kind() == "master")
            .filter(in_band)
            .collect();
        // With a broker: the chat servers in a row of their own, the brokers below them, and
        // their clients below those, so the broker sits between the two.
        let tiered = app.nodes.iter().any(|n| n.kind() == "broker");
        let tier = |kind: &str, y: f64, position: &mut HashMap<&'a str, (f64, f64)>| {
            let row: Vec<&NodeRow> = app
                .nodes
                .iter()
                .filter(|n| n.kind() == kind)
                .filter(in_band)
                .collect();
            for (i, n) in row.iter().enumerate() {
                let x = left_of(b) + (i as f64 + 0.5) * width / row.len() as f64;
                position.insert(n.name(), (x, y));
            }
        };
        if tiered {
            tier("chat", 66.0, &mut position);
            tier("broker", 44.0, &mut position);
        }
        let others: Vec<&NodeRow> = app
            .nodes
            .iter()
            .filter(|n| n.kind() != "master")
            .filter(|n| !tiered || !matches!(n.kind(), "chat" | "broker"))
            .filter(in_band)
            .collect();
        let left = b as f64 * width;
        let per_row = ((inner.width as usize) / bands.len() / 18).max(1);
        let rows = others.len().div_ceil(per_row).max(1);
        for (i, n) in masters.iter().enumerate() {
            let x = left + (i as f64 + 1.0) * width / (masters.len() as f64 + 1.0);
            // Below the bands' titles when there are bands.
            let y = if bands.len() > 1 { 84.0 } else { 88.0 };
            position.insert(n.name(), (x, y));
        }
        for (i, n) in others.iter().enumerate() {
            let (row, col) = (i / per_row, i % per_row);
            let in_row = (others.len() - row * per_row).min(per_row);
            let x = left + (col as f64 + 0.5) * width / in_row as f64;
            // Rows alternate a little up and down, so labels of neighbours do not touch.
            let stagger = if col % 2 == 1 { 4.0 } else { 0.0 };
            let (top, span) = if tiered { (28.0, 24.0) } else { (50.0, 45.0) };
            let y = top - (row as f64 + 0.5) * span / rows as f64 - stagger;
            position.insert(n.name(), (x, y));
        }
    }
    position
}

/// For a worker–master pair on a map of several clusters: whether the link is drawn (the worker
/// works for that master's cluster now) and whether it is a loan (that cluster is not its home).
fn worker_link(app: &App, a: &str, b: &str) -> Option<(bool, bool)> {
    if app.clusters.is_empty() {
        return None;
    }
    let row = |name: &str| app.nodes.iter().find(|n| n.name() == name);
    let (ra, rb) = (row(a)?, row(b)?);
    let (worker, master) = match (ra.kind(), rb.kind()) {
        ("worker", "master") => (ra, rb),
        ("master", "worker") => (rb, ra),
        _ => return None,
    };
    let home = worker.status.cluster.as_str();
    let serving = app.lent_to(worker).unwrap_or_else(|| home.to_string());
    let there = serving == master.status.cluster;
    Some((there, there && home != master.status.cluster))
}

/// What a broker sent a chat server over this pair's links, if it is such a pair.
fn broker_requests(app: &App, both: &[&LinkView]) -> Option<u64> {
    let kind = |name: &str| {
        app.nodes
            .iter()
            .find(|n| n.name() == name)
            .map(|n| n.kind())
    };
    both.iter()
        .find(|l| kind(&l.from) == Some("broker") && kind(&l.to) == Some("chat"))
        .map(|l| l.carried)
}

/// The links to draw: the shaper's (both directions of a pair as one line), or, before it has
/// reported, each worker to the primary.
fn drawn_links(app: &App, palette: &Palette) -> Vec<Drawn> {
    let plain = match palette.theme {
        Theme::Projector => Color::White,
        _ => Color::Gray,
    };
    if app.links.is_empty() {
        return app
            .nodes
            .iter()
            .filter(|n| n.kind() == "worker")
            .map(|n| Drawn {
                from: n.name().to_string(),
                to: app.cluster.read().primary.clone(),
                colour: plain,
                dashed: false,
                label: String::new(),
            })
            .collect();
    }
    let pairs = app.link_pairs();
    pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        // With several clusters a worker has links to every cluster's masters: only those of
        // the cluster it works for now are drawn.
        .filter(|(a, b)| worker_link(app, a, b).is_none_or(|(drawn, _)| drawn))
        .map(|(a, b)| {
            let both: Vec<&LinkView> = app
                .links
                .iter()
                .filter(|l| (l.from == a && l.to == b) || (l.from == b && l.to == a))
                .collect();
            let cut: Vec<&&LinkView> = both.iter().filter(|l| l.cut).collect();
            let latency = both.iter().map(|l| l.latency_ms).max().unwrap_or(0);
            let jitter = both.iter().map(|l| l.jitter_ms).max().unwrap_or(0);
            let loss = both.iter().map(|l| l.loss).fold(0.0, f64::max);
            let waiting = app
                .held
                .iter()
                .filter(|m| (*m.from == *a && *m.to == *b) || (*m.from == *b && *m.to == *a))
                .count();
            let (colour, dashed, label) = if both.iter().any(|l| l.held) {
                (Color::Yellow, true, format!("⏸ held, {waiting} waiting"))
            } else if !cut.is_empty() {
                let label = if cut.len() == both.len() {
                    "✕ cut".to_string()
                } else {
                    format!("✕ {}→{} cut", cut[0].from, cut[0].to)
                };
                (Color::Red, true, label)
            } else if latency > 0 || loss > 0.0 {
                let mut label = Vec::new();
                if latency > 0 {
                    label.push(if jitter > 0 {
                        format!("{latency}±{jitter}ms")
                    } else {
                        format!("{latency}ms")
                    });
                }
                if loss > 0.0 {
                    label.push(format!("{loss}% loss"));
                }
                (Color::Yellow, false, label.join(" "))
            } else if worker_link(app, a, b).is_some_and(|(_, lent)| lent) {
                (Color::Cyan, false, "lent".to_string())
            } else if let Some(sent) = broker_requests(app, &both) {
                // The round robin, seen: what the broker sent each server.
                (plain, false, format!("{sent} sent"))
            } else {
                (plain, false, String::new())
            };
            // An encrypted link says so, and how many plaintext peers it refused.
            let label = match (both.iter().any(|l| l.encrypted), label.is_empty()) {
                (false, _) => label,
                (true, true) => "TLS".to_string(),
                (true, false) => format!("{label} · TLS"),
            };
            let refused: u64 = both.iter().map(|l| l.plaintext).sum();
            let label = if refused > 0 {
                format!("{label} · {refused} plaintext refused")
            } else {
                label
            };
            // The link `H` acts on: marked, in the Map view.
            let chosen =
                app.view == View::Map && app.selected_link().is_some_and(|(x, y)| x == a && y == b);
            let label = match (chosen, label.is_empty()) {
                (true, true) => "▸ (H)".to_string(),
                (true, false) => format!("▸ {label} (H)"),
                (false, _) => label,
            };
            Drawn {
                from: a.to_string(),
                to: b.to_string(),
                colour: if chosen { Color::LightMagenta } else { colour },
                dashed,
                label,
            }
        })
        .collect()
}
