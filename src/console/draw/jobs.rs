//! The Jobs pane: counts, throughput, and the jobs — the ones still in the works first — with
//! their attempt count at every width and a highlight on a job that just moved; and a job's
//! history (`Enter`).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::{Column, Palette, block, fit, fitted_table, popup, sparkline};
use crate::console::app::*;
use crate::console::layout::window;
use crate::protocol::message::{JobId, JobState};
use crate::role::coordinator::Job;

/// How long a job that moved (requeued, or sent to another worker) stays highlighted.
pub const MOVED_MS: u64 = 5_000;

fn job_label(job: &Job) -> (&'static str, Color) {
    match job.state {
        JobState::Queued if job.failures > 0 => ("↻ retrying", Color::Yellow),
        JobState::Queued => ("… queued", Color::Gray),
        JobState::Assigned => ("→ assigned", Color::Cyan),
        JobState::Running => ("▶ running", Color::Yellow),
        JobState::Completed => ("✓ done", Color::Green),
        JobState::Failed => ("✕ failed", Color::Red),
    }
}

/// The Jobs pane.
pub fn draw(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
    let c = app.cluster.read().state.counts;
    let filter = app.jobs.filter.map_or("all".to_string(), |f| f.to_string());
    let order = if app.jobs.filter.is_none() {
        " · open first"
    } else {
        ""
    };
    let title = format!(" Jobs ({}) · {filter}{order} ", c.total());
    let outer = block(title, palette, focused);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [summary, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
    frame.render_widget(
        Paragraph::new(summary_line(app, palette, summary.width)),
        summary,
    );
    table(app, palette, frame, table_area, focused);
}

/// The counts by state, jobs that ran twice, the rate and its sparkline.
fn summary_line(app: &App, palette: &Palette, width: u16) -> Line<'static> {
    let c = app.cluster.read().state.counts;
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
        (width as usize).saturating_sub(58).clamp(4, 40),
    );
    let duplicates = app.cluster.read().state.duplicates;
    Line::from(vec![
        Span::styled(format!("…{} ", c.queued), palette.fg(Color::Gray)),
        Span::styled(format!("→{} ", c.assigned), palette.fg(Color::Cyan)),
        Span::styled(format!("▶{} ", c.running), palette.fg(Color::Yellow)),
        Span::styled(format!("✓{} ", c.completed), palette.fg(Color::Green)),
        Span::styled(format!("✕{} ", c.failed), palette.fg(Color::Red)),
        Span::styled(
            if duplicates > 0 {
                format!("⧉{duplicates} ran twice ")
            } else {
                String::new()
            },
            palette.fg(Color::Magenta),
        ),
        Span::raw(format!(" {rate:.1}/s ")),
        Span::styled(spark, palette.fg(Color::Green)),
    ])
}

/// The jobs, open ones first unless a state is chosen.
fn table(app: &App, palette: &Palette, frame: &mut Frame, table_area: Rect, focused: bool) {
    let view = app.cluster.read();
    let worker_width = view
        .state
        .workers
        .keys()
        .map(|w| w.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 14) as u16;
    let columns = [
        Column::new("JOB", 8, 0),
        Column::new("STATE", 10, 1),
        Column::new("TRY", 3, 2),
        Column::new("WORKER", worker_width, 3),
        Column::new("PROGRESS", 10, 5),
        Column::new("AGE", 5, 6),
        Column::new("DATA", 8, 4).growing(),
    ];
    let chosen = fit(&columns, table_area.width);
    let height = table_area.height.saturating_sub(1) as usize;
    let selected = app.selected(Pane::Jobs);
    let start = window(selected, height);
    let rows = app
        .jobs
        .visible
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .filter_map(|(i, id)| {
            let job = view.state.jobs.get(id)?;
            let notes = view.notes(*id);
            let moved = notes
                .and_then(|n| n.moved_at)
                .is_some_and(|at| app.now_ms.saturating_sub(at) < MOVED_MS);
            let row = Row::new(
                chosen
                    .iter()
                    .map(|(c, _)| job_cell(app, palette, job, columns[*c].header)),
            );
            Some(if i == selected && focused {
                row.style(palette.selected())
            } else if moved {
                row.style(palette.fg(Color::Yellow).add_modifier(Modifier::BOLD))
            } else {
                row
            })
        });
    frame.render_widget(fitted_table(rows, &columns, &chosen, palette), table_area);
}

/// The cell of `job` under `header`.
fn job_cell(app: &App, palette: &Palette, job: &Job, header: &str) -> Cell<'static> {
    let (label, colour) = job_label(job);
    match header {
        "JOB" => Cell::from(job.id.to_string()),
        "STATE" => Cell::from(Span::styled(label, palette.fg(colour))),
        "TRY" => match job.attempts {
            0 => Cell::from("-"),
            1 => Cell::from("1"),
            n => Cell::from(Span::styled(
                format!("↻{n}"),
                palette.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )),
        },
        "WORKER" => match (job.state, &job.worker) {
            (JobState::Queued, _) | (_, None) => Cell::from("-"),
            (_, Some(w)) => Cell::from(w.clone()),
        },
        "PROGRESS" => {
            let filled = (job.progress as usize * 5) / 100;
            Cell::from(format!(
                "{}{} {:>3}%",
                "█".repeat(filled),
                "░".repeat(5 - filled),
                job.progress
            ))
        }
        "AGE" => Cell::from(job_age(app, job.id)),
        _ => Cell::from(job.data.clone()),
    }
}

/// How long a job has been in the works (or took), on the console's own clock.
fn job_age(app: &App, id: JobId) -> String {
    let view = app.cluster.read();
    let Some(notes) = view.notes(id) else {
        return "-".to_string();
    };
    let (Some(first), false) = (notes.history.first(), notes.earlier) else {
        return "-".to_string();
    };
    let ended = view.state.jobs.get(&id).is_some_and(|j| j.state.is_final());
    let until = if ended {
        notes.history.last().map_or(first.0, |l| l.0)
    } else {
        app.now_ms
    };
    format!("{}s", until.saturating_sub(first.0) / 1000)
}

/// One job's history.
pub fn detail(app: &App, id: JobId, palette: &Palette, frame: &mut Frame) {
    let view = app.cluster.read();
    let Some(job) = view.state.jobs.get(&id) else {
        return;
    };
    let (label, colour) = job_label(job);
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
    if let Some(outcome) = job.result.as_ref().or(job.error.as_ref()) {
        lines.push(Line::from(format!("outcome: {outcome}")));
    }
    lines.push(Line::from(""));
    if let Some(notes) = view.notes(id) {
        if notes.earlier {
            lines.push(Line::styled(
                "(submitted before this run: its earlier history is in the journal)",
                palette.dim(),
            ));
        }
        lines.extend(notes.history.iter().map(|(at, what)| {
            Line::from(vec![
                Span::styled(format!("{:>8.3}s  ", *at as f64 / 1000.0), palette.dim()),
                Span::raw(what.to_string()),
            ])
        }));
    }
    let area = popup(frame, 80, lines.len() as u16 + 2);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block(" Job history · Esc closes ", palette, true)),
        area,
    );
}
