//! Diagnostics: what is wrong with a topology file, where, and what to do about it.
//!
//! Every stage (lexer, parser, validation) reports problems as [`Diagnostic`]s that point at a
//! byte [`Span`] of the [`Source`]. Nothing is printed until the end, so that all problems of a file
//! are collected and shown together. Rendering uses `codespan-reporting`, which prints
//! `FILE:LINE:COL`, the offending line and a caret under the span.

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Config, termcolor};

/// A half-open byte range `start..end` in a [`Source`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// How bad a problem is: errors make the file invalid, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Worth knowing, but the topology still runs (an unknown key, for instance).
    Warning,
    /// The topology cannot be used until this is fixed.
    Error,
}

/// One problem found in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Where it is wrong; the caret goes here.
    pub span: Span,
    /// A short note printed under the caret (what was expected, usually).
    pub label: String,
    /// Other places that explain the problem ("first declared here").
    pub related: Vec<(Span, String)>,
    /// A suggestion of what to write instead, when there is one.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            related: Vec::new(),
            hint: None,
        }
    }

    /// A warning at `span`.
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Sets the note under the caret.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds another place that explains the problem.
    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    /// Sets the suggestion.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the suggestion if there is one.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A topology file's name and text, as the diagnostics print them.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name printed before `:LINE:COL` (the path as the user typed it).
    pub name: String,
    /// The text. Bytes that were not UTF-8 have been replaced (and reported).
    pub text: String,
}

impl Source {
    /// A source from text already in memory.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// One diagnostic on one line (`demo.top:12:5: warning: unknown key …; hint: …`), for a
    /// place that has a line and no more, such as the console's Logs pane.
    pub fn one_line(&self, d: &Diagnostic) -> String {
        let (line, col) = self.line_col(d.span.start);
        let hint = d
            .hint
            .as_deref()
            .map(|h| format!("; hint: {h}"))
            .unwrap_or_default();
        format!(
            "{}:{line}:{col}: {}: {}{hint}",
            self.name,
            severity_word(d.severity),
            d.message
        )
    }

    /// Renders diagnostics the way `tcluster check` prints them, without colour.
    pub fn render(&self, diagnostics: &[Diagnostic]) -> String {
        let file = SimpleFile::new(self.name.as_str(), self.text.as_str());
        let config = Config::default();
        let mut out = String::new();
        for d in diagnostics {
            // Rendering into a String only fails if a span lies outside the file, which would be
            // a bug in tcluster; fall back to a plain line rather than lose the message.
            if term::emit_to_string(&mut out, &config, &file, &to_report(d, &self.text)).is_err() {
                let (line, col) = self.line_col(d.span.start);
                out.push_str(&format!(
                    "{}: {}:{line}:{col}: {}\n",
                    severity_word(d.severity),
                    self.name,
                    d.message
                ));
            }
        }
        out
    }

    /// Renders diagnostics to standard error, in colour when the terminal and `NO_COLOR` allow.
    pub fn emit_to_stderr(&self, diagnostics: &[Diagnostic]) {
        let choice = if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            termcolor::ColorChoice::Never
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            termcolor::ColorChoice::Auto
        } else {
            termcolor::ColorChoice::Never
        };
        let stream = termcolor::StandardStream::stderr(choice);
        let mut lock = stream.lock();
        let file = SimpleFile::new(self.name.as_str(), self.text.as_str());
        let config = Config::default();
        for d in diagnostics {
            let report = to_report(d, &self.text);
            if term::emit_to_write_style(&mut lock, &config, &file, &report).is_err() {
                eprint!("{}", self.render(std::slice::from_ref(d)));
            }
        }
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn to_report(d: &Diagnostic, text: &str) -> Report<()> {
    let clamp = |s: Span| {
        let start = floor_char_boundary(text, s.start.min(text.len()));
        let end = floor_char_boundary(text, s.end.min(text.len())).max(start);
        start..end
    };
    let mut labels = vec![Label::primary((), clamp(d.span)).with_message(d.label.clone())];
    labels.extend(
        d.related
            .iter()
            .map(|(span, msg)| Label::secondary((), clamp(*span)).with_message(msg.clone())),
    );
    let report = match d.severity {
        Severity::Error => Report::error(),
        Severity::Warning => Report::warning(),
    };
    let report = report.with_message(d.message.clone()).with_labels(labels);
    match &d.hint {
        Some(hint) => report.with_notes(vec![format!("hint: {hint}")]),
        None => report,
    }
}

/// The largest char boundary at or below `offset` (stable replacement for `str::floor_char_boundary`).
fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// "did you mean `x`?" for the closest of `candidates` to `word`, if any is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| {
            *distance <= (c.chars().count().max(word.chars().count()) / 3).max(1)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Joins names as "a, b or c" for messages.
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|n| format!("`{n}`")).collect();
            format!("{} or `{last}`", rest.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = Source::new("t.top", "ab\nçd e\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(3), (2, 1));
        // 'ç' is two bytes; 'e' is the fourth character on line 2.
        assert_eq!(src.line_col(7), (2, 4));
    }

    #[test]
    fn suggestions_only_for_close_names() {
        assert_eq!(
            did_you_mean("wroker1", ["worker1", "coordinator"]).as_deref(),
            Some("did you mean `worker1`?")
        );
        assert_eq!(did_you_mean("zzz", ["worker1", "coordinator"]), None);
    }

    #[test]
    fn rendering_names_file_line_and_column() {
        let src = Source::new("demo.top", "node a {\n    type wroker\n}\n");
        let d = Diagnostic::error(Span::new(18, 24), "unknown node type `wroker`")
            .with_label("expected a node type")
            .with_hint("did you mean `worker`?");
        let out = src.render(&[d]);
        assert!(out.contains("demo.top:2:10"), "{out}");
        assert!(out.contains("^^^^^^"), "{out}");
        assert!(out.contains("did you mean `worker`?"), "{out}");
    }
}
