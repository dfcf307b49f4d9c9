//! `expect`: what a scenario promises the class will see, in a small language over the
//! cluster's state, checked while the scenario runs.
//!
//! ```text
//! at 20s expect completed == submitted "every job completed"
//! at 9s  expect within 4s dead(worker-3) and running >= 1 "worker-3 is dead; its jobs moved"
//! ```
//!
//! | form | meaning |
//! | --- | --- |
//! | `A == B`, `!=`, `<`, `<=`, `>`, `>=` | compares two numbers, or two node names (`==`, `!=`) |
//! | `X and Y`, `X or Y`, `not X`, `( X )` | combines (`not` binds tightest, then `and`, then `or`) |
//! | `dead(N)`, `healthy(N)`, `suspect(N)` | the cluster's verdict on node `N` (`healthy` counts a node that rejoined) |
//! | `submitted`, `completed`, `failed`, `lost`, `queued`, `running`, `unfinished` | job counts (`lost`: acknowledged, then unknown to the primary) |
//! | `term`, `alarms`, `duplicates`, `workers_healthy`, `workers_dead` | the primary's term, alarms raised, jobs that ran twice, workers by verdict |
//! | `clock_spread`, `clocks_read`, `clocks_left_out` | the time master's last round: ms between the two clocks furthest apart, clocks it read, clocks it left out of the average |
//! | `chat_gap`, `entries(N)`, `users(N)` | entries the fullest live chat server holds more than the emptiest (0: they agree); entries chat server `N` holds; users logged in on it |
//! | `lent` | workers out on loan to another cluster now |
//! | `A + B`, `A - B` | sums and differences of numbers (`offset(worker-2) - offset(worker-1) > 100ms`) |
//! | `primary`, `time_master` | node names, to compare with a node (`primary == backup`) |
//! | `jobs_on(N)`, `jobs_on(N, T)`, `offset(N)` | jobs node `N` completed (since `T` into the scenario); its clock against the launcher's, in ms |
//! | `12`, `50ms`, `2s` | numbers; a duration is its milliseconds |
//!
//! The expression is parsed here, with a diagnostic pointing into the file for each mistake; it
//! is evaluated by [`crate::view::expect`] against the one reading of the cluster.

use std::fmt;
use std::time::Duration;

use super::diagnostic::{Diagnostic, Span};
use super::units::parse_duration;

/// How long an expectation may take to come true after its time, unless `within` says.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(2);
/// The longest `within` may ask for.
pub const MAX_WITHIN: Duration = Duration::from_secs(60);

/// `expect [within DURATION] EXPR "TEXT"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The condition.
    pub expr: Expr,
    /// What the class should see, in words.
    pub text: String,
    /// How long after its time it may take to come true.
    pub within: Duration,
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Operand, Op, Operand),
    /// The cluster's verdict on a node.
    Is(Is, String),
}

/// A value compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Number(i64),
    /// A duration, in milliseconds (`50ms`, `2s`).
    Millis(i64),
    Count(Count),
    /// The primary's name.
    Primary,
    /// The time master's name (the primary, or the chat server elected without masters).
    TimeMaster,
    /// A node's name.
    Node(String),
    /// Jobs this node completed (since this time of the scenario, in ms, if given).
    JobsOn(String, Option<i64>),
    /// This node's clock against the launcher's, in milliseconds.
    Offset(String),
    /// Entries this chat server holds.
    Entries(String),
    /// Users logged in on this chat server.
    Users(String),
    /// `A + B` (`true`) or `A - B`.
    Sum(Box<Operand>, bool, Box<Operand>),
}

/// A count of the cluster's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Submitted,
    Completed,
    Failed,
    Lost,
    Queued,
    Running,
    Unfinished,
    Term,
    Alarms,
    Duplicates,
    WorkersHealthy,
    WorkersDead,
    ClockSpread,
    ClocksRead,
    ClocksLeftOut,
    ChatGap,
    Lent,
}

/// A verdict asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Is {
    Dead,
    Healthy,
    Suspect,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

const COUNTS: [(&str, Count); 17] = [
    ("submitted", Count::Submitted),
    ("completed", Count::Completed),
    ("failed", Count::Failed),
    ("lost", Count::Lost),
    ("queued", Count::Queued),
    ("running", Count::Running),
    ("unfinished", Count::Unfinished),
    ("term", Count::Term),
    ("alarms", Count::Alarms),
    ("duplicates", Count::Duplicates),
    ("workers_healthy", Count::WorkersHealthy),
    ("workers_dead", Count::WorkersDead),
    ("clock_spread", Count::ClockSpread),
    ("clocks_read", Count::ClocksRead),
    ("clocks_left_out", Count::ClocksLeftOut),
    ("chat_gap", Count::ChatGap),
    ("lent", Count::Lent),
];

const FUNCTIONS: [&str; 7] = [
    "dead", "healthy", "suspect", "jobs_on", "offset", "entries", "users",
];

impl Count {
    /// Its word in files.
    pub fn name(self) -> &'static str {
        COUNTS
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(n, _)| n)
    }
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// Whether `a op b` holds.
    pub fn holds<T: PartialOrd>(self, a: &T, b: &T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Number(n) => write!(f, "{n}"),
            Operand::Millis(ms) => write!(f, "{ms}ms"),
            Operand::Count(c) => f.write_str(c.name()),
            Operand::Primary => f.write_str("primary"),
            Operand::TimeMaster => f.write_str("time_master"),
            Operand::Node(n) => f.write_str(n),
            Operand::JobsOn(n, None) => write!(f, "jobs_on({n})"),
            Operand::JobsOn(n, Some(ms)) => write!(f, "jobs_on({n}, {ms}ms)"),
            Operand::Offset(n) => write!(f, "offset({n})"),
            Operand::Entries(n) => write!(f, "entries({n})"),
            Operand::Users(n) => write!(f, "users({n})"),
            Operand::Sum(a, plus, b) => write!(f, "{a} {} {b}", if *plus { '+' } else { '-' }),
        }
    }
}

impl fmt::Display for Expr {
    /// The expression, written back in the file's language (fully parenthesised where it
    /// combines).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Not(e) => write!(f, "not {e}"),
            Expr::And(a, b) => write!(f, "({a} and {b})"),
            Expr::Or(a, b) => write!(f, "({a} or {b})"),
            Expr::Compare(a, op, b) => write!(f, "{a} {} {b}", op.as_str()),
            Expr::Is(is, node) => {
                let word = match is {
                    Is::Dead => "dead",
                    Is::Healthy => "healthy",
                    Is::Suspect => "suspect",
                };
                write!(f, "{word}({node})")
            }
        }
    }
}

impl Expectation {
    /// The condition, written back (without the parentheses around the whole).
    pub fn condition(&self) -> String {
        let expr = self.expr.to_string();
        match &self.expr {
            Expr::And(..) | Expr::Or(..) => expr[1..expr.len() - 1].to_string(),
            _ => expr,
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expr = self.condition();
        if self.within != DEFAULT_WITHIN {
            write!(
                f,
                "expect within {} ",
                super::units::format_duration(self.within)
            )?;
        } else {
            f.write_str("expect ")?;
        }
        write!(f, "{expr} {:?}", self.text)
    }
}

/// A piece of an expression.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Number(i64),
    Millis(i64),
    Open,
    Close,
    Comma,
    /// `+` (`true`) or `-`, as a word of its own.
    Sign(bool),
    Op(Op),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(w) => format!("`{w}`"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Millis(ms) => format!("the duration {ms}ms"),
            Tok::Open => "`(`".into(),
            Tok::Close => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Sign(plus) => format!("`{}`", if *plus { '+' } else { '-' }),
            Tok::Op(op) => format!("`{}`", op.as_str()),
        }
    }
}

/// Splits the words of an expression (bare words with their spans) into pieces: `a==b` and
/// `a == b` read the same.
fn pieces(words: &[(&str, Span)]) -> Result<Vec<(Tok, Span)>, Diagnostic> {
    let mut out = Vec::new();
    for (text, span) in words {
        if matches!(*text, "+" | "-") {
            out.push((Tok::Sign(*text == "+"), *span));
            continue;
        }
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let at = |from: usize, to: usize| Span::new(span.start + from, span.start + to);
            let c = bytes[i] as char;
            let two = text.get(i..i + 2).unwrap_or("");
            let op = match two {
                "==" => Some(Op::Eq),
                "!=" => Some(Op::Ne),
                "<=" => Some(Op::Le),
                ">=" => Some(Op::Ge),
                _ => None,
            };
            if let Some(op) = op {
                out.push((Tok::Op(op), at(i, i + 2)));
                i += 2;
                continue;
            }
            match c {
                '<' | '>' => {
                    let op = if c == '<' { Op::Lt } else { Op::Gt };
                    out.push((Tok::Op(op), at(i, i + 1)));
                    i += 1;
                }
                '(' | ')' | ',' => {
                    let tok = match c {
                        '(' => Tok::Open,
                        ')' => Tok::Close,
                        _ => Tok::Comma,
                    };
                    out.push((tok, at(i, i + 1)));
                    i += 1;
                }
                '=' => {
                    return Err(
                        Diagnostic::error(at(i, i + 1), "a lone `=` compares nothing")
                            .with_label("write `==` to compare")
                            .with_hint("for example `completed == submitted`"),
                    );
                }
                c if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' => {
                    let start = i;
                    while i < bytes.len()
                        && ((bytes[i] as char).is_ascii_alphanumeric()
                            || matches!(bytes[i], b'_' | b'.' | b'-'))
                    {
                        i += 1;
                    }
                    let word = &text[start..i];
                    let span = at(start, i);
                    if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                        out.push((number(word, span)?, span));
                    } else {
                        out.push((Tok::Ident(word.to_string()), span));
                    }
                }
                _ => {
                    let end = i + c.len_utf8().max(1);
                    let end = (i + 1..=text.len())
                        .find(|e| text.is_char_boundary(*e))
                        .unwrap_or(end);
                    return Err(Diagnostic::error(
                        at(i, end),
                        format!("`{}` has no meaning in an expectation", &text[i..end]),
                    )
                    .with_label("expected a name, a number, `(`, `)` or a comparison")
                    .with_hint("see docs/TOPOLOGY.md, \"Scenarios that check themselves\""));
                }
            }
        }
    }
    Ok(out)
}

/// `12`, `-3`, `50ms`, `2s`.
fn number(word: &str, span: Span) -> Result<Tok, Diagnostic> {
    let bad = |why: String| {
        Diagnostic::error(span, format!("`{word}` is not a number"))
            .with_label(why)
            .with_hint("write a whole number (`3`) or a duration (`50ms`, `2s`)")
    };
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Tok::Number(n));
    }
    let (negative, magnitude) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let duration = parse_duration(magnitude).map_err(|e| bad(e.to_string()))?;
    let ms = i64::try_from(duration.as_millis()).map_err(|_| bad("too large".into()))?;
    Ok(Tok::Millis(if negative { -ms } else { ms }))
}

/// Parses the words of an expression; `known` says whether a name is a node of the topology.
pub fn parse(words: &[(&str, Span)], known: &dyn Fn(&str) -> bool) -> Result<Expr, Diagnostic> {
    let Some(whole) = words
        .first()
        .map(|(_, s)| Span::new(s.start, words.last().map_or(s.end, |(_, l)| l.end)))
    else {
        return Err(Diagnostic::error(Span::new(0, 0), "an empty expectation"));
    };
    let pieces = pieces(words)?;
    let mut parser = Parser {
        pieces,
        pos: 0,
        whole,
        known,
    };
    let expr = parser.or()?;
    if let Some((tok, span)) = parser.pieces.get(parser.pos) {
        return Err(Diagnostic::error(
            *span,
            format!("{} after a complete expectation", tok.describe()),
        )
        .with_label("expected `and`, `or` or the end")
        .with_hint("join two conditions with `and` or `or`"));
    }
    Ok(expr)
}

struct Parser<'k> {
    pieces: Vec<(Tok, Span)>,
    pos: usize,
    whole: Span,
    known: &'k dyn Fn(&str) -> bool,
}

/// What a side of a comparison holds.
#[derive(PartialEq)]
enum Kind {
    Number,
    Name,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&(Tok, Span)> {
        self.pieces.get(self.pos)
    }

    fn next(&mut self) -> Option<(Tok, Span)> {
        let piece = self.pieces.get(self.pos).cloned();
        self.pos += 1;
        piece
    }

    /// Where the expression ends, for "expected more" errors.
    fn end(&self) -> Span {
        Span::new(self.whole.end, self.whole.end)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some((Tok::Ident(w), _)) if w == word)
    }

    fn or(&mut self) -> Result<Expr, Diagnostic> {
        self.joined("or", Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, Diagnostic> {
        self.joined("and", Self::not, Expr::And)
    }

    /// `X word Y word Z …`, each part read by `part`, joined from the left by `join`.
    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<Expr, Diagnostic>,
        join: fn(Box<Expr>, Box<Expr>) -> Expr,
    ) -> Result<Expr, Diagnostic> {
        let mut left = part(self)?;
        while self.keyword(word) {
            self.pos += 1;
            let right = part(self)?;
            left = join(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, Diagnostic> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.condition()
    }

    /// `( X )`, `dead(N)`, or `A op B`.
    fn condition(&mut self) -> Result<Expr, Diagnostic> {
        if let Some((Tok::Open, open)) = self.peek().cloned() {
            self.pos += 1;
            let inner = self.or()?;
            return match self.next() {
                Some((Tok::Close, _)) => Ok(inner),
                other => Err(self
                    .expected(other, "`)`", "expected `)` here")
                    .with_related(open, "this `(` is not closed")),
            };
        }
        if let Some((Tok::Ident(word), _)) = self.peek().cloned() {
            let is = match word.as_str() {
                "dead" => Some(Is::Dead),
                "healthy" => Some(Is::Healthy),
                "suspect" => Some(Is::Suspect),
                _ => None,
            };
            if let Some(is) = is {
                self.pos += 1;
                let node = self.argument(&word)?;
                return Ok(Expr::Is(is, node));
            }
        }
        let (left, left_kind, left_span) = self.operand()?;
        let op = match self.next() {
            Some((Tok::Op(op), _)) => op,
            other => {
                return Err(self.expected(
                    other,
                    "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
                    &format!("`{left}` alone is not a condition"),
                ));
            }
        };
        let (right, right_kind, right_span) = self.operand()?;
        if left_kind != right_kind {
            let span = Span::new(left_span.start, right_span.end);
            return Err(
                Diagnostic::error(span, format!("`{left}` and `{right}` cannot be compared"))
                    .with_label("a number on one side, a node's name on the other")
                    .with_hint("compare numbers with numbers (`term >= 2`), names with names (`primary == backup`)"),
            );
        }
        if left_kind == Kind::Name && !matches!(op, Op::Eq | Op::Ne) {
            let span = Span::new(left_span.start, right_span.end);
            return Err(
                Diagnostic::error(span, "names compare only with `==` or `!=`")
                    .with_label(format!("`{}` orders numbers", op.as_str())),
            );
        }
        Ok(Expr::Compare(left, op, right))
    }

    /// `(NODE)` after a function's name.
    fn argument(&mut self, function: &str) -> Result<String, Diagnostic> {
        self.arguments(function, false).map(|(node, _)| node)
    }

    /// `(NODE)`, or with `since`, `(NODE, TIME)` too (a time of the scenario).
    fn arguments(
        &mut self,
        function: &str,
        since: bool,
    ) -> Result<(String, Option<i64>), Diagnostic> {
        match self.next() {
            Some((Tok::Open, _)) => {}
            other => {
                return Err(self.expected(
                    other,
                    "`(`",
                    &format!("`{function}` takes a node: `{function}(worker-1)`"),
                ));
            }
        }
        let node = match self.next() {
            Some((Tok::Ident(node), span)) => {
                if !(self.known)(&node) {
                    return Err(
                        Diagnostic::error(span, format!("no node is named `{node}`"))
                            .with_label(format!("`{function}` takes a node of this topology")),
                    );
                }
                node
            }
            other => {
                return Err(self.expected(other, "a node's name", "a node, for example worker-1"));
            }
        };
        let mut from = None;
        if since && matches!(self.peek(), Some((Tok::Comma, _))) {
            self.pos += 1;
            match self.next() {
                Some((Tok::Millis(ms), _)) if ms >= 0 => from = Some(ms),
                other => {
                    return Err(self.expected(
                        other,
                        "a time of the scenario",
                        &format!("`{function}(worker-1, 16s)` counts from 16s into the scenario"),
                    ));
                }
            }
        }
        match self.next() {
            Some((Tok::Close, _)) => Ok((node, from)),
            other => Err(self.expected(other, "`)`", "one node between the parentheses")),
        }
    }

    /// One side of a comparison (a sum of values), what it holds, and where it is.
    fn operand(&mut self) -> Result<(Operand, Kind, Span), Diagnostic> {
        let (mut sum, kind, mut span) = self.atom()?;
        while let Some((Tok::Sign(plus), _)) = self.peek().cloned() {
            self.pos += 1;
            let (right, right_kind, right_span) = self.atom()?;
            if kind != Kind::Number || right_kind != Kind::Number {
                return Err(Diagnostic::error(
                    span.to(right_span),
                    "only numbers add up or subtract",
                )
                .with_label("a node's name here"));
            }
            sum = Operand::Sum(Box::new(sum), plus, Box::new(right));
            span = span.to(right_span);
        }
        Ok((sum, kind, span))
    }

    /// One value, what it holds, and where it is.
    fn atom(&mut self) -> Result<(Operand, Kind, Span), Diagnostic> {
        let Some((tok, span)) = self.next() else {
            return Err(self.expected(None, "a value", "the expectation ends too soon"));
        };
        let word = match tok {
            Tok::Number(n) => return Ok((Operand::Number(n), Kind::Number, span)),
            Tok::Millis(ms) => return Ok((Operand::Millis(ms), Kind::Number, span)),
            Tok::Ident(word) => word,
            other => return Err(self.expected(Some((other, span)), "a value", "a value here")),
        };
        if let Some((_, count)) = COUNTS.iter().find(|(n, _)| *n == word) {
            return Ok((Operand::Count(*count), Kind::Number, span));
        }
        match word.as_str() {
            "primary" => return Ok((Operand::Primary, Kind::Name, span)),
            "time_master" => return Ok((Operand::TimeMaster, Kind::Name, span)),
            "jobs_on" | "offset" | "entries" | "users" => {
                let (node, since) = self.arguments(&word, word == "jobs_on")?;
                let end = self.pieces[self.pos - 1].1;
                let span = Span::new(span.start, end.end);
                let operand = match word.as_str() {
                    "jobs_on" => Operand::JobsOn(node, since),
                    "offset" => Operand::Offset(node),
                    "entries" => Operand::Entries(node),
                    _ => Operand::Users(node),
                };
                return Ok((operand, Kind::Number, span));
            }
            "dead" | "healthy" | "suspect" => {
                return Err(Diagnostic::error(
                    span,
                    format!("`{word}(…)` is a condition, not a value"),
                )
                .with_label("it is true or false: use it alone, or with `and`, `or`, `not`"));
            }
            _ => {}
        }
        if (self.known)(&word) {
            return Ok((Operand::Node(word), Kind::Name, span));
        }
        let names: Vec<&str> = COUNTS
            .iter()
            .map(|(n, _)| *n)
            .chain(["primary", "time_master"])
            .chain(FUNCTIONS)
            .collect();
        Err(
            Diagnostic::error(span, format!("`{word}` is neither a count nor a node"))
                .with_label(format!(
                    "expected a node, a number, or one of {}",
                    names.join(", ")
                ))
                .with_hint_opt(super::diagnostic::did_you_mean(
                    &word,
                    names.iter().copied(),
                )),
        )
    }

    fn expected(&self, found: Option<(Tok, Span)>, what: &str, label: &str) -> Diagnostic {
        match found {
            Some((tok, span)) => {
                Diagnostic::error(span, format!("expected {what}, found {}", tok.describe()))
                    .with_label(label.to_string())
            }
            None => Diagnostic::error(self.end(), format!("expected {what}"))
                .with_label(label.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` as one word per space-separated part, spans counting from 0.
    fn parsed(text: &str) -> Result<Expr, Diagnostic> {
        let mut words = Vec::new();
        let mut start = 0;
        for part in text.split(' ') {
            words.push((part, Span::new(start, start + part.len())));
            start += part.len() + 1;
        }
        parse(&words, &|n| n.starts_with("worker-") || n == "backup")
    }

    #[test]
    fn the_forms_the_docs_show_parse() {
        for (text, back) in [
            ("completed == submitted", "completed == submitted"),
            ("lost==0", "lost == 0"),
            ("primary == backup", "primary == backup"),
            ("term >= 2", "term >= 2"),
            ("dead(worker-2)", "dead(worker-2)"),
            ("not healthy(worker-2)", "not healthy(worker-2)"),
            (
                "jobs_on(worker-3) < jobs_on(worker-1)",
                "jobs_on(worker-3) < jobs_on(worker-1)",
            ),
            (
                "jobs_on(worker-3,16s) < jobs_on(worker-1, 16s)",
                "jobs_on(worker-3, 16000ms) < jobs_on(worker-1, 16000ms)",
            ),
            ("offset(worker-2) < 50ms", "offset(worker-2) < 50ms"),
            ("offset(worker-2) > -2s", "offset(worker-2) > -2000ms"),
            (
                "offset(worker-2) - offset(worker-1) + 5 > 100ms",
                "offset(worker-2) - offset(worker-1) + 5 > 100ms",
            ),
            (
                "entries(worker-1) > 0 and chat_gap == 0",
                "(entries(worker-1) > 0 and chat_gap == 0)",
            ),
            (
                "dead(worker-1) and lost == 0 or term > 1",
                "((dead(worker-1) and lost == 0) or term > 1)",
            ),
            (
                "dead(worker-1) and ( lost == 0 or term > 1 )",
                "(dead(worker-1) and (lost == 0 or term > 1))",
            ),
        ] {
            assert_eq!(
                parsed(text).map(|e| e.to_string()).map_err(|d| d.message),
                Ok(back.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn each_mistake_says_where_and_what() {
        for (text, message, at) in [
            ("completed = submitted", "a lone `=` compares nothing", 10),
            ("completed", "expected a comparison", 9),
            (
                "complete == 3",
                "`complete` is neither a count nor a node",
                0,
            ),
            (
                "primary < backup",
                "names compare only with `==` or `!=`",
                0,
            ),
            ("primary == 3", "cannot be compared", 0),
            ("dead(worker-9x", "expected `)`", 14),
            ("dead(nobody)", "no node is named `nobody`", 5),
            ("dead worker-1", "expected `(`", 5),
            ("term >= 2 3", "after a complete expectation", 10),
            ("term >= 2x", "`2x` is not a number", 8),
            ("lost == 0 and", "expected a value", 13),
            (
                "healthy(worker-1) == 1",
                "expected `and`, `or` or the end",
                18,
            ),
            ("term > $", "has no meaning", 7),
            ("dead(worker-1) == 2", "after a complete", 15),
            ("1 < dead(worker-1)", "is a condition, not a value", 4),
            (
                "jobs_on(worker-1, 3) > 1",
                "expected a time of the scenario",
                18,
            ),
            ("offset(worker-1, 3s) > 1", "expected `)`", 15),
            ("primary + 1 > 2", "only numbers add up", 0),
            ("term - > 2", "expected a value", 7),
        ] {
            let d = parsed(text).expect_err(text);
            assert!(
                d.message.contains(message) || d.label.contains(message),
                "{text}: {} / {:?}",
                d.message,
                d.label
            );
            assert_eq!(d.span.start, at, "{text}: {}", d.message);
        }
    }
}
