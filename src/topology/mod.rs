//! The topology language (`.top`): from a file to a validated [`Topology`].
//!
//! Data moves through four stages, each in its own module:
//!
//! ```text
//! bytes ──(UTF-8 check)──▶ text ──lexer──▶ tokens ──syntax──▶ commands ──validate──▶ Topology
//!                                   └───────────── diagnostics (errors and warnings) ─────────┘
//! ```
//!
//! Every stage adds [`Diagnostic`]s instead of stopping, so one run reports every problem of a
//! file. [`check_bytes`] runs all stages on any input, and never panics; [`load`] reads a file and
//! returns the topology only if it has no errors.

pub mod diagnostic;
pub mod expect;
pub mod lexer;
pub mod model;
pub mod names;
pub mod policies;
pub mod summary;
pub mod syntax;
pub mod units;
pub mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Severity, Source, Span};
pub use model::*;

/// Topology files larger than this are refused before they are read into memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The diagnostics of one file, with the text they point into.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file's name and text.
    pub source: Source,
    /// Errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// How many errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// How many warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// Every diagnostic, rendered without colour, then a count line if there are errors.
    pub fn render(&self) -> String {
        let mut out = self.source.render(&self.diagnostics);
        if self.errors() > 0 {
            out.push_str(&self.count_line());
            out.push('\n');
        }
        out
    }

    /// "error: demo.top is not valid: 2 errors, 1 warning".
    pub fn count_line(&self) -> String {
        let mut line = format!(
            "error: {} is not valid: {}",
            self.source.name,
            counted(self.errors(), "error")
        );
        if self.warnings() > 0 {
            line.push_str(&format!(", {}", counted(self.warnings(), "warning")));
        }
        line
    }
}

/// "1 error", "2 errors".
pub fn counted(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all.
    #[error("cannot read topology `{}`: {source}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("topology `{}` is {size} bytes; a topology file may be at most {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge {
        /// The path as given.
        path: PathBuf,
        size: u64,
    },
    /// The file was read but has errors.
    #[error("{}", .0.count_line())]
    Invalid(Box<Report>),
}

/// Reads and validates a topology file. On success, the report holds any warnings.
pub fn load(path: &Path) -> Result<(Topology, Report), LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    let (topology, report) = check_bytes(&path.display().to_string(), &bytes);
    match topology {
        Some(topology) => Ok((topology, report)),
        None => Err(LoadError::Invalid(Box::new(report))),
    }
}

/// Runs every stage on `bytes` named `name`. The topology is `Some` only if there is no error.
pub fn check_bytes(name: &str, bytes: &[u8]) -> (Option<Topology>, Report) {
    let mut diagnostics = Vec::new();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(e) => {
            // Show the file with the bad bytes replaced, and point at the first one. Everything
            // before it is valid, so its offset is the same in the replaced text.
            let text = String::from_utf8_lossy(bytes).into_owned();
            let at = e.valid_up_to();
            let bad = bytes[at];
            let end = at + text[at..].chars().next().map_or(0, char::len_utf8);
            diagnostics.push(
                Diagnostic::error(Span::new(at, end), "this file is not UTF-8 text")
                    .with_label(format!("byte 0x{bad:02x} cannot start a UTF-8 character"))
                    .with_hint("topology files are plain text: save it as UTF-8"),
            );
            let source = Source::new(name, mask_controls(&text));
            return (
                None,
                Report {
                    source,
                    diagnostics,
                },
            );
        }
    };
    let text = sanitize(text, &mut diagnostics);
    let source = Source::new(name, text);
    let (topology, mut report) = check_source(source);
    if !diagnostics.is_empty() {
        diagnostics.append(&mut report.diagnostics);
        diagnostics.sort_by_key(|d| d.span.start);
        report.diagnostics = diagnostics;
        return (None, report);
    }
    (topology, report)
}

/// Runs lexer, parser and validation on text already known to be UTF-8.
pub fn check_source(source: Source) -> (Option<Topology>, Report) {
    let mut diagnostics = Vec::new();
    let tokens = lexer::lex(&source.text, &mut diagnostics);
    let commands = syntax::parse(&source, &tokens, &mut diagnostics);
    let stem = Path::new(&source.name).file_stem().map_or_else(
        || "tcluster".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let topology = validate::validate(&stem, &commands, &mut diagnostics);
    diagnostics.sort_by_key(|d| d.span.start);
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    (
        ok.then_some(topology),
        Report {
            source,
            diagnostics,
        },
    )
}

/// Replaces a leading byte-order mark and control characters with spaces or `?` of the same byte
/// length (so spans stay right and the terminal is not driven by escape codes when the line is
/// shown), reporting the first control character.
fn sanitize(mut text: String, diagnostics: &mut Vec<Diagnostic>) -> String {
    if text.starts_with('\u{feff}') {
        text.replace_range(..3, "   ");
    }
    if let Some(at) = text.find(is_control) {
        let code = text.as_bytes()[at];
        let count = text.chars().filter(|&c| is_control(c)).count();
        let more = if count > 1 {
            format!(" ({count} control characters in the file)")
        } else {
            String::new()
        };
        diagnostics.push(
            Diagnostic::error(
                Span::new(at, at + 1),
                format!("unexpected control character 0x{code:02x}{more}"),
            )
            .with_label("shown as `?`")
            .with_hint("topology files are plain text; is this a binary file?"),
        );
        text = mask_controls(&text);
    }
    text
}

fn is_control(c: char) -> bool {
    c.is_ascii_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// The text with each control character (one byte) replaced by `?` (one byte), so spans stay
/// right and the terminal is not driven by escape codes when a line is shown.
fn mask_controls(text: &str) -> String {
    text.chars()
        .map(|c| if is_control(c) { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_utf8_is_an_error_at_the_first_bad_byte() {
        let (topology, report) = check_bytes("x.top", b"set A 1\nset B \xff\xfe\n");
        assert!(topology.is_none());
        assert_eq!(report.errors(), 1);
        assert_eq!(
            report.source.line_col(report.diagnostics[0].span.start),
            (2, 7)
        );
        assert!(report.render().contains("x.top:2:7"));
    }

    #[test]
    fn control_characters_are_reported_and_masked() {
        let (topology, report) = check_bytes("x.top", b"set A \x1b[31m\n");
        assert!(topology.is_none());
        assert!(!report.render().contains('\x1b'));
    }

    #[test]
    fn a_chat_history_is_forced_to_disk_each_batch_or_periodically() {
        use policies::Durability;
        let chat = |policy: &str| {
            let text = format!("node chat-1 {{ type chat }}\npolicy chat {{ {policy} }}\n");
            let (topology, report) = check_bytes("x.top", text.as_bytes());
            (
                topology.map(|t| t.policies.chat.durability),
                report.render(),
            )
        };
        assert_eq!(chat("keep 10").0, Some(Durability::Sync));
        assert_eq!(chat("durability sync").0, Some(Durability::Sync));
        let every = std::time::Duration::from_millis(10);
        assert_eq!(
            chat("durability periodic 10ms").0,
            Some(Durability::Periodic(every))
        );
        for (mode, why) in [
            ("group 1ms", "already commits once per batch"),
            ("none", "would grow until the server stops"),
            ("periodic", "needs how often"),
        ] {
            let (topology, report) = chat(&format!("durability {mode}"));
            assert!(topology.is_none(), "{mode}");
            assert!(
                report.contains(why) && report.contains("x.top:2:"),
                "{report}"
            );
        }
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let (topology, report) = check_bytes("x.top", "\u{feff}set A 1\n".as_bytes());
        assert!(topology.is_some(), "{}", report.render());
    }
}
