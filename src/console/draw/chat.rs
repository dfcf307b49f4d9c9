//! The Chat pane: the channels as tabs, and the messages of every channel (or one) in the
//! Lamport order the chat servers agree on, wrapped to the pane's width.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Palette, block};
use crate::console::app::*;

/// The Chat pane.
pub fn draw(app: &App, palette: &Palette, frame: &mut Frame, area: Rect, focused: bool) {
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

    // Newest at the bottom; long messages wrap, so lines are taken from the newest back until
    // their rows fill the pane.
    let rows = body.height as usize;
    let width = body.width.max(1) as usize;
    let mut used = 0;
    let mut lines: Vec<Line> = Vec::new();
    for item in c
        .items
        .values()
        .rev()
        .filter(|item| c.shows(item))
        .skip(c.back)
    {
        if used >= rows {
            break;
        }
        let line = chat_line(item, c.channel.is_none(), palette);
        used += line.width().div_ceil(width).max(1);
        lines.push(line);
    }
    lines.reverse();
    let overflow = used.saturating_sub(rows) as u16;
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
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((overflow, 0)),
        body,
    );
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
