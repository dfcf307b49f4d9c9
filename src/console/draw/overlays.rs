//! What is drawn over the panes or below them: the status line (or the line being typed),
//! completions while typing a command, the help, and the submit form.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{Palette, block, popup, truncate};
use crate::console::app::*;
use crate::console::keymap::{Binding, Scope};
use crate::topology::units::format_duration;

pub fn status_line(
    app: &App,
    bindings: &[Binding],
    palette: &Palette,
    frame: &mut Frame,
    area: Rect,
) {
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
    let view = app.cluster.read();
    let c = view.state.counts;
    let elapsed = format_duration(std::time::Duration::from_secs(app.now_ms / 1000));
    let mut spans = vec![
        Span::styled(
            format!(" {} ", app.system),
            palette
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(match &view.clocks.elected {
            _ if !view.primary.is_empty() => {
                format!(" ★ {} term {} ", view.primary, view.term)
            }
            Some((master, _)) => format!(" no masters · time master {master} "),
            None => " no masters ".to_string(),
        }),
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
    let alarms = app.alarms.iter().filter(|a| !a.3).count();
    if alarms > 0 {
        spans.push(Span::styled(
            format!(" {alarms} ALARM{} (!) ", if alarms == 1 { "" } else { "S" }),
            palette
                .fg(Color::Red)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    if app.speed < 1.0 {
        spans.push(Span::styled(
            format!(" SLOW {}× ", app.speed),
            palette
                .fg(Color::Magenta)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
        spans.push(Span::raw(" "));
    }
    if let Some((name, began)) = app.scenario.as_ref().filter(|_| app.scenario_running) {
        let t = app.now_ms.saturating_sub(*began) / 1000;
        spans.push(Span::styled(
            format!("▶ {name} T+{t}s "),
            palette.fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some((flash, _)) = &app.flash {
        spans.push(Span::styled(
            format!(" {flash} "),
            palette.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    } else {
        // A replay only looks: the keys that would act on a cluster are not offered.
        let replaying = app.scrubber.is_some();
        let offered =
            |b: &&Binding| b.hint && !(replaying && crate::console::replay::acts(&b.action()));
        for b in bindings.iter().filter(offered) {
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

/// What the word being typed could become, on the row above the command line.
pub fn completions(app: &App, palette: &Palette, frame: &mut Frame, status: Rect) {
    if app.completions.is_empty() || status.y == 0 {
        return;
    }
    let text = format!(" Tab: {} ", app.completions.join("  "));
    let width = (text.chars().count() as u16).min(status.width);
    let rect = Rect::new(status.x, status.y - 1, width, 1);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(truncate(&text, width as usize))
            .style(palette.fg(Color::Cyan).add_modifier(Modifier::REVERSED)),
        rect,
    );
}

/// Every key, from the same table the console uses, and the `:` commands; scrolled when the
/// terminal is short.
pub fn help(bindings: &[Binding], top: u16, replaying: bool, palette: &Palette, frame: &mut Frame) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    // A replay's own keys first: the rest only look (the keys that act say they cannot).
    let mut lines: Vec<Line> = Vec::new();
    if replaying {
        lines.push(Line::styled("  a recording, read-only:", bold));
        for (key, does) in crate::console::replay::KEYS {
            lines.push(Line::from(vec![
                Span::styled(format!("{key:>7}  "), bold),
                Span::raw(does),
            ]));
        }
        lines.push(Line::from(""));
    }
    lines.extend(bindings.iter().map(|b| {
        let scope = match b.scope {
            Scope::Global => String::new(),
            Scope::In(p) => format!(" ({})", p.title()),
        };
        Line::from(vec![
            Span::styled(
                format!("{:>7}  ", b.key_label()),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{}{scope}", b.help)),
        ])
    }));
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "  the : command line (Tab completes names):",
        Style::default().add_modifier(Modifier::BOLD),
    ));
    for command in [
        ":submit [N] DATA           jobs (sleep 2s, cpu 100000, echo hi, fail why)",
        ":kill|pause|resume|restart NODE",
        ":partition A [B | -> B]    cut A off, or one link (-> one way)",
        ":heal [A [B]]              mend cut links",
        ":hold A [->] B   :release [A [B]]   messages wait for you (H lists them)",
        ":latency A B 200ms [jitter 50ms]   :loss A B 5%   :skew NODE -2s",
        ":scenario [NAME]           run one (alone: list them)   :say TEXT",
        ":keys on|off               show each key you press, for the class",
        ":speed 0.1                 slow motion: the whole cluster ten times slower (1: real)",
        ":quit",
    ] {
        lines.push(Line::styled(format!("    {command}"), palette.dim()));
    }
    lines.push(Line::styled(
        "  mouse: click to focus and select, wheel to scroll",
        palette.dim(),
    ));
    let screen = frame.area();
    let height = (lines.len() as u16 + 2).min(screen.height);
    let visible = height.saturating_sub(2);
    let top = top.min((lines.len() as u16).saturating_sub(visible));
    let more = lines.len() as u16 > visible;
    let title = if more {
        format!(
            " Keys {}-{} of {} · ↑↓ PgUp PgDn scroll · any other key closes ",
            top + 1,
            (top + visible).min(lines.len() as u16),
            lines.len()
        )
    } else {
        " Keys · any key closes ".to_string()
    };
    let area = popup(frame, 96, height);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((top, 0))
            .block(block(title, palette, true)),
        area,
    );
}

pub fn submit_form(form: &SubmitForm, palette: &Palette, frame: &mut Frame) {
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

/// The alarms the live checks raised, newest last (`!`; any key closes it).
pub fn alarms(app: &App, palette: &Palette, frame: &mut Frame) {
    let mut lines: Vec<Line> = app
        .alarms
        .iter()
        .map(|(at, kind, text, warning)| {
            let style = if *warning {
                palette.fg(Color::Yellow)
            } else {
                palette.fg(Color::Red).add_modifier(Modifier::BOLD)
            };
            let word = if *warning { "warning" } else { "ALARM" };
            Line::from(vec![
                Span::styled(format!("{:>8.1}s ", *at as f64 / 1000.0), palette.dim()),
                Span::styled(format!("{word} {kind}: "), style),
                Span::raw(text.clone()),
            ])
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            "no alarm: no promise broken so far (split brain, lost jobs, jobs over a worker's \
             slots, clocks or terms going back, chat servers that disagree)",
            palette.dim(),
        ));
    }
    let screen = frame.area();
    let height = (lines.len() as u16 + 2).min(screen.height);
    let width = screen.width.saturating_sub(4).max(20).min(screen.width);
    let area = Rect::new(
        screen.x + (screen.width - width) / 2,
        screen.y + screen.height.saturating_sub(height) / 2,
        width,
        height,
    );
    // The newest that fit.
    let skip = lines
        .len()
        .saturating_sub(height.saturating_sub(2) as usize);
    let shown: Vec<Line> = lines.into_iter().skip(skip).collect();
    frame.render_widget(Clear, area);
    let title = format!(" Alarms ({}) · any key closes ", app.alarms.len());
    frame.render_widget(
        Paragraph::new(shown).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(title)
                .border_style(palette.fg(Color::Red)),
        ),
        area,
    );
}

/// The messages waiting on held links, oldest first, one selected (`H`).
pub fn held(app: &App, selected: usize, palette: &Palette, frame: &mut Frame) {
    let mut lines: Vec<Line> = app
        .held
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let style = if i == selected {
                palette.fg(Color::Yellow).add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            let clock = m.clock.map(|c| format!(" c{c}")).unwrap_or_default();
            Line::from(Span::styled(
                format!(
                    "#{:<4} {:>7.1}s  {} → {}  {}{clock}",
                    m.id,
                    m.at_ms as f64 / 1000.0,
                    m.from,
                    m.to,
                    m.kind
                ),
                style,
            ))
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::styled(
            "nothing waits: hold a link with :hold A B (or H on a link in the Map)",
            palette.dim(),
        ));
    }
    let screen = frame.area();
    let height = (lines.len() as u16 + 2).min(screen.height);
    let width = screen
        .width
        .saturating_sub(4)
        .clamp(20, 90)
        .min(screen.width);
    let area = Rect::new(
        screen.x + (screen.width - width) / 2,
        screen.y + screen.height.saturating_sub(height) / 2,
        width,
        height,
    );
    // Keep the selected one in view.
    let visible = height.saturating_sub(2) as usize;
    let skip = (selected + 1).saturating_sub(visible);
    let shown: Vec<Line> = lines.into_iter().skip(skip).collect();
    frame.render_widget(Clear, area);
    let title = format!(
        " Held ({}) · Enter delivers · d drops · r releases all · ↑↓ · Esc ",
        app.held.len()
    );
    frame.render_widget(
        Paragraph::new(shown).block(
            Block::bordered()
                .title(title)
                .border_style(palette.fg(Color::Yellow)),
        ),
        area,
    );
}
