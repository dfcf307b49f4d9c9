//! The parser: tokens → a syntax tree of commands, words and blocks, each with its span.
//!
//! The tree knows nothing of what commands mean (that is [`super::validate`]): a file is a list
//! of [`Command`]s, a command a list of [`Word`]s, and a word may be a block holding commands of
//! its own. The parser recovers from every error so that all problems of a file are reported:
//! a stray `}` is reported and skipped, and a block that is never closed is reported at its `{`
//! and closed where the indentation says it should have been, so the commands after it are
//! still read at the right level.

use super::diagnostic::{Diagnostic, Source, Span};
use super::lexer::{Token, TokenKind};

/// One command: `node a { … }`, `port 9000`, `at 2s kill worker-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The words, the first being the command's name. Never empty.
    pub words: Vec<Word>,
    /// From the first word to the last.
    pub span: Span,
}

impl Command {
    /// The command's name (its first word), if it is a plain word or string.
    pub fn name(&self) -> Option<&str> {
        self.words.first().and_then(Word::text)
    }

    /// The span of the command's name.
    pub fn name_span(&self) -> Span {
        self.words.first().map_or(self.span, |w| w.span)
    }
}

/// One word of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// What the word is.
    pub kind: WordKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordKind {
    /// A bare word.
    Bare(String),
    /// A quoted string.
    Quoted(String),
    /// `{ … }`: a block of commands.
    Block(Vec<Command>),
    /// `->`
    Arrow,
    /// `<->`
    BiArrow,
}

impl Word {
    /// The text of a bare word or string; `None` for blocks and arrows.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            WordKind::Bare(s) | WordKind::Quoted(s) => Some(s),
            _ => None,
        }
    }

    /// The commands of a block; `None` for other words.
    pub fn block(&self) -> Option<&[Command]> {
        match &self.kind {
            WordKind::Block(commands) => Some(commands),
            _ => None,
        }
    }

    /// How the word is described in messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            WordKind::Bare(s) => format!("`{s}`"),
            WordKind::Quoted(s) => format!("\"{s}\""),
            WordKind::Block(_) => "a `{ … }` block".to_string(),
            WordKind::Arrow => "`->`".to_string(),
            WordKind::BiArrow => "`<->`".to_string(),
        }
    }
}

/// Parses the tokens of `source` into top-level commands, reporting problems into `diagnostics`.
pub fn parse(source: &Source, tokens: &[Token], diagnostics: &mut Vec<Diagnostic>) -> Vec<Command> {
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        depth: 0,
        diagnostics,
    };
    let mut commands = Vec::new();
    loop {
        parser.commands_until_close(&mut commands);
        match parser.peek() {
            None => return commands,
            Some(token) => {
                // A `}` at the top level closes nothing.
                let span = token.span;
                parser.pos += 1;
                parser.diagnostics.push(
                    Diagnostic::error(span, "this `}` closes no block")
                        .with_label("no `{` is open here")
                        .with_hint("remove it, or look for a `{` missing above"),
                );
            }
        }
    }
}

/// Blocks nested deeper than this are refused: no topology needs more than three levels, and a
/// limit keeps hostile input (`{{{{…`) from exhausting the stack.
const MAX_DEPTH: usize = 32;

struct Parser<'a, 'd> {
    source: &'a Source,
    tokens: &'a [Token],
    pos: usize,
    /// How many blocks are open around the current token.
    depth: usize,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Reads commands into `out` until a `}` (not consumed) or the end of input.
    fn commands_until_close(&mut self, out: &mut Vec<Command>) {
        loop {
            match self.peek().map(|t| &t.kind) {
                None | Some(TokenKind::Close) => return,
                Some(TokenKind::End) => self.pos += 1,
                Some(_) => {
                    let spill = self.command(out);
                    out.extend(spill);
                }
            }
        }
    }

    /// Reads one command into `out`. Returns commands that belong after it at this level:
    /// those recovered from a block that was never closed.
    fn command(&mut self, out: &mut Vec<Command>) -> Vec<Command> {
        let mut words = Vec::new();
        let mut spill = Vec::new();
        while let Some(token) = self.peek() {
            let span = token.span;
            let kind = match &token.kind {
                TokenKind::End | TokenKind::Close => break,
                TokenKind::Word(s) => WordKind::Bare(s.clone()),
                TokenKind::Quoted(s) => WordKind::Quoted(s.clone()),
                TokenKind::Arrow => WordKind::Arrow,
                TokenKind::BiArrow => WordKind::BiArrow,
                TokenKind::Open => {
                    let opener = words.first().map_or(span, |w: &Word| w.span);
                    let (word, rest) = self.block(span, opener);
                    words.push(word);
                    if !rest.is_empty() {
                        spill = rest;
                        break;
                    }
                    continue;
                }
            };
            self.pos += 1;
            words.push(Word { kind, span });
        }
        if let (Some(first), Some(last)) = (words.first(), words.last()) {
            let span = first.span.to(last.span);
            out.push(Command { words, span });
        }
        spill
    }

    /// Reads a block whose `{` is the current token. Returns the block and, if it was never
    /// closed, the commands that were read past the point where it should have ended.
    fn block(&mut self, open: Span, opener: Span) -> (Word, Vec<Command>) {
        if self.depth >= MAX_DEPTH {
            return (self.skip_deep_block(open), Vec::new());
        }
        self.pos += 1; // `{`
        let mut commands = Vec::new();
        self.depth += 1;
        self.commands_until_close(&mut commands);
        self.depth -= 1;
        if let Some(close) = self.peek() {
            let span = open.to(close.span);
            self.pos += 1;
            return (
                Word {
                    kind: WordKind::Block(commands),
                    span,
                },
                Vec::new(),
            );
        }

        // Never closed: the block most likely ends before the first command indented no deeper
        // than the command that opened it.
        let opener_col = self.source.line_col(opener.start).1;
        let opener_line = self.source.line_col(opener.start).0;
        let cut = commands.iter().position(|c| {
            let (line, col) = self.source.line_col(c.span.start);
            line > opener_line && col <= opener_col
        });
        let rest = cut.map(|i| commands.split_off(i)).unwrap_or_default();
        let mut diagnostic = Diagnostic::error(open, "this `{` is never closed")
            .with_label("block opened here")
            .with_hint("add the missing `}`");
        if let Some(next) = rest.first() {
            let (line, _) = self.source.line_col(next.span.start);
            diagnostic = diagnostic
                .with_related(
                    next.name_span(),
                    "this is indented like the command that opened the block",
                )
                .with_hint(format!("add the missing `}}` before line {line}"));
        }
        self.diagnostics.push(diagnostic);
        let end = commands.last().map_or(open, |c| c.span);
        (
            Word {
                kind: WordKind::Block(commands),
                span: open.to(end),
            },
            rest,
        )
    }
}

impl Parser<'_, '_> {
    /// Reports a block nested too deeply and skips to its matching `}` without recursing.
    fn skip_deep_block(&mut self, open: Span) -> Word {
        self.diagnostics.push(
            Diagnostic::error(
                open,
                format!("blocks are nested more than {MAX_DEPTH} deep"),
            )
            .with_label("this block is skipped")
            .with_hint("a topology needs at most three levels: node { resources { … } }"),
        );
        let mut depth = 0usize;
        let mut end = open;
        while let Some(token) = self.tokens.get(self.pos) {
            self.pos += 1;
            end = token.span;
            match token.kind {
                TokenKind::Open => depth += 1,
                TokenKind::Close => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        Word {
            kind: WordKind::Block(Vec::new()),
            span: open.to(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn parse_text(text: &str) -> (Vec<Command>, Vec<Diagnostic>) {
        let source = Source::new("t.top", text);
        let mut diagnostics = Vec::new();
        let tokens = lex(text, &mut diagnostics);
        let commands = parse(&source, &tokens, &mut diagnostics);
        (commands, diagnostics)
    }

    #[test]
    fn nested_blocks() {
        let (commands, diags) =
            parse_text("node a {\n type worker\n resources { cpu 2 }\n}\nset X 1");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(commands.len(), 2);
        let block = commands[0].words[2].block().unwrap();
        assert_eq!(block.len(), 2);
        assert_eq!(block[1].words[1].block().unwrap()[0].name(), Some("cpu"));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        let text = format!("node a {}{}", "{".repeat(100_000), "}".repeat(100_000));
        let (commands, diags) = parse_text(&text);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("nested"));
        assert_eq!(commands.len(), 1);
    }

    #[test]
    fn stray_close_is_reported_and_skipped() {
        let (commands, diags) = parse_text("set A 1\n}\nset B 2");
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("closes no block"));
        assert_eq!(commands.len(), 2);
    }

    #[test]
    fn unclosed_block_recovers_at_indentation() {
        let text = "node a {\n    type worker\nnode b {\n    type master\n}\n";
        let (commands, diags) = parse_text(text);
        assert_eq!(diags.len(), 1, "{diags:?}");
        // `node b` still closes its own block, so the unclosed one is `node a`'s.
        assert_eq!(diags[0].span.start, 7);
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[1].words[1].text(), Some("b"));
    }
}
