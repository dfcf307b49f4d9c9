//! Drawing: `draw(&App, frame)`, one module per pane. It reads the app and never changes it.
//! Long lists build only the rows that fit: the cost of a frame does not grow with the history.
//!
//! Every state has a symbol and a word as well as a colour (colour-blind safe), and the
//! `projector` theme trades subtle colours for bold, high-contrast ones. Tables choose their
//! columns by the room there is (`fit`): names, states and attempt counts come first and are
//! never cut while less important columns stand.
//!
//! Banners and the `say` line are drawn over the panes, never beside them, so nothing moves
//! when they come and go.

mod chat;
mod jobs;
mod logs;
mod map;
mod nodes;
mod overlays;
pub mod scrubber;
mod timeline;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Row, Table};

use super::app::*;
use super::config::Theme;
use super::keymap::Binding;
use super::layout;
use crate::supervisor::logs::Level;
use crate::view::Verdict;

pub use nodes::verdict_label;

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

    /// A banner's style: reverse video in the tone's colour (bold, so it reads from afar).
    fn tone(&self, tone: Tone) -> Style {
        let colour = match tone {
            Tone::Alarm => Color::Red,
            Tone::Warning => Color::Yellow,
            Tone::Recovery => Color::Green,
            Tone::Info => Color::Cyan,
        };
        match self.theme {
            Theme::Mono => Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            _ => Style::default()
                .fg(Color::Black)
                .bg(colour)
                .add_modifier(Modifier::BOLD),
        }
    }
}

/// Draws the whole screen.
pub fn draw(app: &App, bindings: &[Binding], frame: &mut Frame) {
    // One moment for the whole frame: the supervisor's next event waits until it is drawn, so
    // every pane shows the same reading.
    let _moment = app.cluster.read();
    let palette = Palette {
        theme: app.config.theme,
    };
    let areas = layout::areas(app, frame.area());
    for (pane, area) in &areas.panes {
        let focused = *pane == app.focus;
        match pane {
            Pane::Nodes => nodes::draw(app, &palette, frame, *area, focused),
            Pane::Jobs => jobs::draw(app, &palette, frame, *area, focused),
            Pane::Chat => chat::draw(app, &palette, frame, *area, focused),
            Pane::Logs => logs::draw(app, &palette, frame, *area, focused),
            Pane::Map => map::draw(app, &palette, frame, *area),
            Pane::Timeline => timeline::draw(app, &palette, frame, *area),
        }
    }
    banners(app, &palette, frame, &areas);
    say_line(app, &palette, frame);
    keys_pressed(app, &palette, frame, areas.status);
    overlays::status_line(app, bindings, &palette, frame, areas.status);
    if let (Some(s), Some(rect)) = (&app.scrubber, areas.scrubber) {
        scrubber::draw(s, &palette, frame, rect);
    }
    match &app.mode {
        Mode::Help(top) => overlays::help(bindings, *top, app.scrubber.is_some(), &palette, frame),
        Mode::Submit(form) => overlays::submit_form(form, &palette, frame),
        Mode::JobDetail(id) => jobs::detail(app, *id, &palette, frame),
        Mode::NodeDetail(name) => nodes::detail(app, name, &palette, frame),
        Mode::Alarms => overlays::alarms(app, &palette, frame),
        Mode::Held(selected) => overlays::held(app, *selected, &palette, frame),
        Mode::Command(_) => overlays::completions(app, &palette, frame, areas.status),
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

/// The `say` line of a scenario, across the top row (over the panes' top borders).
fn say_line(app: &App, palette: &Palette, frame: &mut Frame) {
    let Some((text, _)) = &app.say else {
        return;
    };
    let area = frame.area();
    if area.height < 3 {
        return;
    }
    // The whole top row, so no half of a pane's title peeks out beside it.
    let rect = Rect::new(area.x, area.y, area.width, 1);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(Line::from(truncate(&format!("▶ {text}"), area.width as usize)).centered())
            .style(palette.tone(Tone::Info)),
        rect,
    );
}

/// With `:keys on`, the keys pressed in the last few seconds, in the bottom-right corner above
/// the status bar.
fn keys_pressed(app: &App, palette: &Palette, frame: &mut Frame, status: Rect) {
    let recent: Vec<&str> = app
        .keys_pressed
        .iter()
        .filter(|(_, at)| app.now_ms.saturating_sub(*at) < crate::console::update::KEY_SHOWN_MS)
        .map(|(k, _)| k.as_str())
        .collect();
    if !app.show_keys || recent.is_empty() || status.y < 3 {
        return;
    }
    let text = format!(" ⌨ {} ", recent.join(" "));
    let width = (text.chars().count() as u16 + 2).min(status.width);
    let rect = Rect::new(status.x + status.width - width, status.y - 3, width, 3);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(Line::from(text))
            .block(Block::bordered().border_style(palette.fg(ratatui::style::Color::Cyan))),
        rect,
    );
}

/// Banners (a fault detected, jobs moved, a failover): boxes over the panes, the newest at the
/// bottom. In the overview they cover the top of the lower panes (chat and the older log
/// lines), never the Nodes and Jobs tables whose change they announce.
fn banners(app: &App, palette: &Palette, frame: &mut Frame, areas: &layout::Areas) {
    if app.banners.is_empty() {
        return;
    }
    let screen = frame.area();
    let lines: Vec<(String, Tone)> = app
        .banners
        .iter()
        .flat_map(|b| b.lines.iter().cloned())
        .collect();
    let height = (lines.len() as u16 + 2).min(screen.height.saturating_sub(2));
    let longest = lines
        .iter()
        .map(|(t, _)| t.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let width = (longest + 6).min(screen.width);
    let lower_top = areas
        .panes
        .iter()
        .filter(|(p, _)| matches!(p, Pane::Chat | Pane::Logs))
        .map(|(_, r)| r.y)
        .min();
    let y = match lower_top {
        Some(y) if y + height <= areas.status.y => y,
        _ => areas.status.y.saturating_sub(height),
    };
    let rect = Rect::new(screen.x + (screen.width - width) / 2, y, width, height);
    frame.render_widget(Clear, rect);
    let outer = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(palette.tone(lines[0].1));
    let inner = outer.inner(rect);
    frame.render_widget(outer, rect);
    let rows: Vec<Line> = lines
        .iter()
        .skip(lines.len().saturating_sub(inner.height as usize))
        .map(|(text, tone)| {
            Line::from(Span::styled(
                format!(
                    " {:<w$} ",
                    truncate(text, inner.width.saturating_sub(2) as usize),
                    w = inner.width.saturating_sub(2) as usize
                ),
                palette.tone(*tone),
            ))
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), inner);
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

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else if max == 0 {
        String::new()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

/// A centred box of at most `width` × `height`, cleared.
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

/// A table column: its header, its width, how much it matters (lower first), and whether it
/// takes the room left over.
#[derive(Debug, Clone, Copy)]
struct Column {
    header: &'static str,
    width: u16,
    priority: u8,
    grow: bool,
}

impl Column {
    const fn new(header: &'static str, width: u16, priority: u8) -> Self {
        Column {
            header,
            width,
            priority,
            grow: false,
        }
    }

    const fn growing(self) -> Self {
        Column { grow: true, ..self }
    }
}

/// Which columns fit in `width` (with one space between them), chosen by priority and kept in
/// their order; the growing one (else the last) takes the room left. Returns the indices and
/// the widths.
fn fit(columns: &[Column], width: u16) -> Vec<(usize, Constraint)> {
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| columns[i].priority);
    let mut chosen = Vec::new();
    let mut used = 0u16;
    for i in order {
        let need = columns[i].width + u16::from(!chosen.is_empty());
        if used + need <= width {
            used += need;
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    let spare = width.saturating_sub(used);
    let wide = chosen
        .iter()
        .position(|&i| columns[i].grow)
        .unwrap_or(chosen.len().saturating_sub(1));
    chosen
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let extra = if n == wide { spare } else { 0 };
            (i, Constraint::Length(columns[i].width + extra))
        })
        .collect()
}

/// A table of the `chosen` columns (from [`fit`]), with its header row.
fn fitted_table<'a>(
    rows: impl IntoIterator<Item = Row<'a>>,
    columns: &[Column],
    chosen: &[(usize, Constraint)],
    palette: &Palette,
) -> Table<'a> {
    let header = Row::new(chosen.iter().map(|(c, _)| columns[*c].header))
        .style(palette.dim().add_modifier(Modifier::BOLD));
    Table::new(rows, chosen.iter().map(|(_, w)| *w))
        .header(header)
        .column_spacing(1)
}

/// The symbol, word and colour of a verdict.
fn verdict_style(verdict: Verdict) -> (&'static str, Color) {
    match verdict {
        Verdict::Starting => ("○", Color::Gray),
        Verdict::Healthy => ("●", Color::Green),
        Verdict::Suspect => ("◐", Color::Yellow),
        Verdict::Dead => ("✕", Color::Red),
        Verdict::Rejoined => ("↺", Color::Cyan),
        Verdict::Stopped => ("■", Color::Gray),
        Verdict::NotRun => ("–", Color::Gray),
    }
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

    #[test]
    fn columns_are_chosen_by_priority_and_kept_in_order() {
        let columns = [
            Column::new("A", 10, 0),
            Column::new("B", 10, 2),
            Column::new("C", 5, 1),
        ];
        let widths = |w| fit(&columns, w);
        assert_eq!(
            widths(16)
                .iter()
                .map(|(i, _)| columns[*i].header)
                .collect::<Vec<_>>(),
            vec!["A", "C"]
        );
        assert_eq!(widths(30).len(), 3);
        // The last column takes the room left.
        assert_eq!(widths(30)[2].1, Constraint::Length(8));
        assert_eq!(widths(9).len(), 1, "what fits, even if the first does not");
    }
}
