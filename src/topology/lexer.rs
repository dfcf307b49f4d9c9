//! The lexer: topology text → tokens with spans.
//!
//! The language is Tcl-flavoured: a command is a run of words on one line (or up to a `;`), a
//! `{` … `}` block may span lines, `"…"` is a string with `\"`, `\\`, `\n` and `\t` escapes, and
//! `#` starts a comment only where a command could start (as in Tcl, `port 9000 # x` is not a
//! comment: the parser explains that). Unlike Tcl, a string ends at the end of its line: a
//! forgotten quote is then reported where it was forgotten instead of swallowing the lines
//! after it (a trailing `\` or `\n` still puts several lines in one string). `->` and `<->` are tokens of their own, also when written
//! without spaces (`a->b`). A backslash at the end of a line joins it to the next.
//!
//! Lexing never stops at an error: an unterminated string is reported at its opening quote and
//! ends at the end of that line, so the rest of the file is still checked.

use super::diagnostic::{Diagnostic, Span};

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: `node`, `9000`, `200ms`, `worker-1`.
    Word(String),
    /// A `"…"` string, escapes already applied.
    Quoted(String),
    /// `{`
    Open,
    /// `}`
    Close,
    /// A newline or `;`: the end of a command.
    End,
    /// `->`: a one-way link.
    Arrow,
    /// `<->`: a link both ways.
    BiArrow,
}

/// A token and where it stands in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is.
    pub span: Span,
}

/// Splits `text` into tokens, reporting problems into `diagnostics`.
pub fn lex(text: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<Token> {
    Lexer {
        text,
        pos: 0,
        tokens: Vec::new(),
        at_command_start: true,
        diagnostics,
    }
    .run()
}

struct Lexer<'a, 'd> {
    text: &'a str,
    /// Byte offset of the next character to read.
    pos: usize,
    tokens: Vec<Token>,
    /// True where a command may begin, the only place a `#` starts a comment.
    at_command_start: bool,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl Lexer<'_, '_> {
    fn run(mut self) -> Vec<Token> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '\n' | ';' => {
                    self.bump();
                    self.push(TokenKind::End, start);
                    self.at_command_start = true;
                }
                // Any other whitespace (a vertical tab, a no-break space, U+0085 …) separates
                // words too: `word` stops at it, so it must be stepped over here.
                c if c.is_whitespace() => {
                    self.bump();
                }
                '\\' if self.rest().starts_with("\\\n") || self.rest().starts_with("\\\r\n") => {
                    // Line continuation: the newline does not end the command.
                    self.pos += if self.rest().starts_with("\\\n") {
                        2
                    } else {
                        3
                    };
                }
                '#' if self.at_command_start => self.skip_comment(),
                '{' => {
                    self.bump();
                    self.push(TokenKind::Open, start);
                    self.at_command_start = true;
                }
                '}' => {
                    self.bump();
                    self.push(TokenKind::Close, start);
                    self.at_command_start = false;
                }
                '"' => {
                    self.string();
                    self.at_command_start = false;
                }
                _ if self.rest().starts_with("<->") => {
                    self.pos += 3;
                    self.push(TokenKind::BiArrow, start);
                    self.at_command_start = false;
                }
                _ if self.rest().starts_with("->") => {
                    self.pos += 2;
                    self.push(TokenKind::Arrow, start);
                    self.at_command_start = false;
                }
                _ => {
                    self.word();
                    self.at_command_start = false;
                }
            }
        }
        self.tokens
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            span: Span::new(start, self.pos),
        });
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    fn word(&mut self) {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let ends_word = c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"');
            if ends_word || self.rest().starts_with("->") || self.rest().starts_with("<->") {
                break;
            }
            if c == '\\' && (self.rest().starts_with("\\\n") || self.rest().starts_with("\\\r\n")) {
                break;
            }
            self.bump();
        }
        if self.pos == start {
            // Nothing a word is made of: step over the character rather than stay on it.
            self.bump();
        }
        let text = self.text[start..self.pos].to_string();
        self.push(TokenKind::Word(text), start);
    }

    fn string(&mut self) {
        let start = self.pos;
        self.bump(); // the opening quote
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                self.unterminated(start);
                return;
            };
            if c == '\n' || self.rest().starts_with("\r\n") {
                self.unterminated(start);
                return;
            }
            let here = self.pos;
            self.bump();
            match c {
                '"' => break,
                '\\' => match self.bump() {
                    Some('"') => value.push('"'),
                    Some('\\') => value.push('\\'),
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('\n') => {} // a continued line inside a string
                    Some('\r') if self.peek() == Some('\n') => {
                        self.bump();
                    }
                    Some(other) => {
                        self.diagnostics.push(
                            Diagnostic::error(
                                Span::new(here, self.pos),
                                format!("unknown escape `\\{other}` in a string"),
                            )
                            .with_label("not one of \\\" \\\\ \\n \\t")
                            .with_hint("write `\\\\` for a backslash"),
                        );
                        value.push(other);
                    }
                    None => {
                        self.unterminated(start);
                        return;
                    }
                },
                _ => value.push(c),
            }
        }
        self.push(TokenKind::Quoted(value), start);
    }

    /// Reports a string with no closing quote and resumes lexing at the next line, so that one
    /// missing quote does not swallow the rest of the file.
    fn unterminated(&mut self, start: usize) {
        let line_end = self.text[start..]
            .find(['\r', '\n'])
            .map_or(self.text.len(), |i| start + i);
        self.diagnostics.push(
            Diagnostic::error(Span::new(start, start + 1), "this string is never closed")
                .with_label("the string starts here")
                .with_hint("add a closing `\"` (write `\\\"` for a quote inside a string)"),
        );
        let value = self.text[start + 1..line_end].to_string();
        self.pos = line_end;
        self.push(TokenKind::Quoted(value), start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::*;

    fn kinds(text: &str) -> (Vec<TokenKind>, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        let tokens = lex(text, &mut diagnostics);
        (tokens.into_iter().map(|t| t.kind).collect(), diagnostics)
    }

    fn w(s: &str) -> TokenKind {
        Word(s.to_string())
    }

    #[test]
    fn any_whitespace_separates_words_and_the_lexer_always_moves_on() {
        // Found by the fuzzer: a vertical tab or U+0085 made `word` stop where it started, and
        // the lexer pushed empty words until memory ran out.
        for space in ["\u{b}", "\u{85}", "\u{a0}", "\u{2003}", "\u{c}"] {
            let (tokens, diags) = kinds(&format!("node{space}a{space}{{}}"));
            assert!(diags.is_empty(), "{space:?}");
            assert_eq!(tokens, vec![w("node"), w("a"), Open, Close], "{space:?}");
        }
        let found = std::fs::read("tests/bad/fuzz_odd_whitespace.top").unwrap();
        let mut diagnostics = Vec::new();
        let tokens = lex(&String::from_utf8_lossy(&found), &mut diagnostics);
        assert!(tokens.len() < found.len() + 1);
    }

    #[test]
    fn words_strings_blocks_and_separators() {
        let (tokens, diags) = kinds("node a {\n  port 9000; cpu \"2\"\n}");
        assert!(diags.is_empty());
        assert_eq!(
            tokens,
            vec![
                w("node"),
                w("a"),
                Open,
                End,
                w("port"),
                w("9000"),
                End,
                w("cpu"),
                Quoted("2".into()),
                End,
                Close
            ]
        );
    }

    #[test]
    fn escapes_in_strings() {
        let (tokens, diags) = kinds(r#"say "a \"quoted\" \\ word""#);
        assert!(diags.is_empty());
        assert_eq!(tokens[1], Quoted(r#"a "quoted" \ word"#.into()));
    }

    #[test]
    fn comments_only_at_command_start() {
        let (tokens, _) = kinds("# heading\nset A 1 ;# trailing\ncolor #fff");
        assert_eq!(
            tokens,
            vec![
                End,
                w("set"),
                w("A"),
                w("1"),
                End,
                End,
                w("color"),
                w("#fff")
            ]
        );
    }

    #[test]
    fn arrows_with_and_without_spaces() {
        let (tokens, _) = kinds("a -> b; a<->b; x -1s");
        assert_eq!(
            tokens,
            vec![
                w("a"),
                Arrow,
                w("b"),
                End,
                w("a"),
                BiArrow,
                w("b"),
                End,
                w("x"),
                w("-1s")
            ]
        );
    }

    #[test]
    fn unterminated_string_is_reported_and_lexing_resumes_next_line() {
        let (tokens, diags) = kinds("set A \"oops\nset B 2");
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].span, Span::new(6, 7));
        assert_eq!(tokens[3..], [End, w("set"), w("B"), w("2")]);
    }

    #[test]
    fn a_string_ends_at_the_end_of_its_line() {
        let (tokens, diags) = kinds("set A \"Lab\nset B \"x\"");
        assert_eq!(diags.len(), 1);
        assert_eq!(tokens[2], Quoted("Lab".into()));
        assert_eq!(tokens[3..], [End, w("set"), w("B"), Quoted("x".into())]);
        let (tokens, diags) = kinds("say \"two \\\nlines\"");
        assert!(diags.is_empty());
        assert_eq!(tokens[1], Quoted("two lines".into()));
    }

    #[test]
    fn line_continuation_joins_lines() {
        let (tokens, _) = kinds("at 2s submit \\\n  \"x\"");
        assert_eq!(
            tokens,
            vec![w("at"), w("2s"), w("submit"), Quoted("x".into())]
        );
    }
}
