//! Reading values: one value of `key value` (text, a parsed unit, a whole number in range), a
//! name, a `{ … }` block, and the keys of a block — each with the error it gives, naming what
//! was expected.

use super::*;

impl Validator<'_> {
    // ----- small helpers shared by every block -----

    pub(super) fn error(
        &mut self,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(span, message).with_label(label));
    }

    /// The arguments of `command` (its words after the name), requiring exactly `n` of them.
    pub(super) fn args<'c>(
        &mut self,
        command: &'c Command,
        n: usize,
        usage: &str,
    ) -> Option<&'c [Word]> {
        let args = &command.words[1..];
        if args.len() == n {
            return Some(args);
        }
        let key = command.name().unwrap_or("this command");
        let found = match args.len() {
            0 => "nothing".to_string(),
            k => k.to_string(),
        };
        let span = if args.len() > n {
            args[n].span.to(args[args.len() - 1].span)
        } else {
            command.span
        };
        let mut d = Diagnostic::error(
            span,
            format!("`{key}` takes {}, found {found}", plural(n, "value")),
        )
        .with_label(format!("expected `{usage}`"));
        if args
            .iter()
            .any(|w| w.text().is_some_and(|t| t.starts_with('#')))
        {
            d = d.with_hint(
                "a `#` comment must start a command: put `;` before it, as in `port 9000 ;# note`",
            );
        } else if let Some(joined) = number_and_unit_apart(args).filter(|_| n == 1) {
            d = d.with_hint(format!(
                "write the number and its unit together: `{joined}`"
            ));
        } else if args.len() > n && args.iter().all(|w| w.text().is_some()) {
            d = d.with_hint("put a value that has spaces in quotes: \"like this\"");
        }
        self.diags.push(d);
        None
    }

    /// The single value of `key value`, as text.
    pub(super) fn text<'c>(
        &mut self,
        command: &'c Command,
        usage: &str,
    ) -> Option<(&'c str, Span)> {
        let word = &self.args(command, 1, usage)?[0];
        self.word_text(word, usage)
    }

    pub(super) fn word_text<'c>(&mut self, word: &'c Word, usage: &str) -> Option<(&'c str, Span)> {
        match word.text() {
            Some(text) => Some((text, word.span)),
            None => {
                self.error(
                    word.span,
                    format!("expected a value, found {}", word.describe()),
                    format!("expected `{usage}`"),
                );
                None
            }
        }
    }

    /// The single value of `key value`, parsed.
    pub(super) fn value<T, E: std::fmt::Display>(
        &mut self,
        command: &Command,
        usage: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        let (text, span) = self.text(command, usage)?;
        self.parsed(text, span, parse)
    }

    pub(super) fn parsed<T, E: std::fmt::Display>(
        &mut self,
        text: &str,
        span: Span,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(span, message.to_string(), "invalid value");
                None
            }
        }
    }

    /// The block of `key { … }`.
    pub(super) fn block<'c>(&mut self, command: &'c Command, usage: &str) -> Option<&'c [Command]> {
        let word = &self.args(command, 1, usage)?[0];
        match word.block() {
            Some(block) => Some(block),
            None => {
                self.error(
                    word.span,
                    format!("expected a `{{ … }}` block, found {}", word.describe()),
                    format!("expected `{usage}`"),
                );
                None
            }
        }
    }

    /// Calls `f` for each command of a block whose key is in `known`. Reports commands that do
    /// not start with a word, keys given twice (an error: which one would count?), and unknown
    /// keys (a warning: the key is ignored).
    pub(super) fn keys<'c>(
        &mut self,
        block: &'c [Command],
        what: &str,
        known: &[&str],
        mut f: impl FnMut(&mut Self, &str, &'c Command),
    ) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for command in block {
            let Some(key) = command.name() else {
                let first = &command.words[0];
                self.error(
                    first.span,
                    format!("expected a key in this {what}, found {}", first.describe()),
                    format!("expected {}", one_of(known)),
                );
                continue;
            };
            if !known.contains(&key) {
                self.diags.push(
                    Diagnostic::warning(
                        command.name_span(),
                        format!("unknown key `{key}` in {what}; it is ignored"),
                    )
                    .with_label(format!("known keys: {}", known.join(", ")))
                    .with_hint_opt(did_you_mean(key, known.iter().copied())),
                );
                continue;
            }
            if let Some(first) = seen.insert(key, command.name_span()) {
                self.diags.push(
                    Diagnostic::error(
                        command.name_span(),
                        format!("`{key}` is given twice in {what}"),
                    )
                    .with_label("given again here")
                    .with_related(first, "first given here")
                    .with_hint("keep one of them"),
                );
                continue;
            }
            f(self, key, command);
        }
    }

    pub(super) fn integer(
        &mut self,
        command: &Command,
        usage: &str,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        let (text, span) = self.text(command, usage)?;
        self.integer_text(text, span, range, what)
    }

    pub(super) fn integer_text(
        &mut self,
        text: &str,
        span: Span,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        match text.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            Ok(n) => {
                self.error(
                    span,
                    format!("{what} {n} is out of range"),
                    format!(
                        "expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
            Err(_) => {
                self.error(
                    span,
                    format!("{what} must be a whole number, found `{text}`"),
                    format!(
                        "expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn name_word<'c>(
        &mut self,
        command: &'c Command,
        index: usize,
        what: &str,
        usage: &str,
    ) -> Option<(&'c str, Span)> {
        let Some(word) = command.words.get(index) else {
            self.error(
                command.span,
                format!("this {what} has no name"),
                format!("expected `{usage}`"),
            );
            return None;
        };
        if word.block().is_some() {
            self.error(
                word.span,
                format!("this {what} has no name"),
                format!("expected `{usage}`"),
            );
            return None;
        }
        let (name, span) = self.word_text(word, usage)?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            self.error(
                span,
                format!("`{name}` is not a valid {what} name"),
                "use letters, digits, `_`, `-` and `.`",
            );
            return None;
        }
        Some((name, span))
    }
}
