//! Checking a scenario's `expect` against the cluster as it is read
//! ([`crate::topology::expect`] has the language). The facts come from whoever holds the
//! reading (the supervisor: its [`super::ClusterView`], the nodes' verdicts, the alarms), so an
//! expectation says what the panes say.

use crate::topology::expect::{Count, Expr, Is, Operand};

use super::Verdict;

/// What an expectation may ask of the cluster.
pub trait Facts {
    /// A count (`completed`, `term` …).
    fn count(&self, count: Count) -> i64;
    /// The primary's name ("" without one).
    fn primary(&self) -> String;
    /// The time master's name, if there is one.
    fn time_master(&self) -> Option<String>;
    /// The cluster's verdict on a node.
    fn verdict(&self, node: &str) -> Option<Verdict>;
    /// Jobs this node completed (since this many ms into the scenario, if given).
    fn jobs_on(&self, node: &str, since_ms: Option<i64>) -> i64;
    /// This node's clock against the launcher's, if a round read it.
    fn offset(&self, node: &str) -> Option<i64>;
    /// Entries this chat server holds, if it answers.
    fn entries(&self, node: &str) -> Option<i64>;
    /// Users logged in on this chat server, if it answers.
    fn users(&self, node: &str) -> Option<i64>;
}

/// Whether an expectation holds, and the values it saw (for the class, and for the one who
/// wrote it when it does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    /// `completed 54, submitted 54`, `worker-3 is suspect` …
    pub seen: String,
}

/// A value as read.
#[derive(Debug, PartialEq, PartialOrd)]
enum Value {
    Number(i64),
    Name(String),
    /// A value that cannot be read now (a node no round read): every comparison is false.
    Unknown,
}

/// Checks `expr` against `facts`.
pub fn check(expr: &Expr, facts: &dyn Facts) -> Outcome {
    let mut seen = Vec::new();
    let ok = holds(expr, facts, &mut seen);
    seen.dedup();
    Outcome {
        ok,
        seen: seen.join(", "),
    }
}

fn holds(expr: &Expr, facts: &dyn Facts, seen: &mut Vec<String>) -> bool {
    match expr {
        Expr::Not(e) => !holds(e, facts, seen),
        // Both sides are read (and said) even when the first decides.
        Expr::And(a, b) => {
            let (a, b) = (holds(a, facts, seen), holds(b, facts, seen));
            a && b
        }
        Expr::Or(a, b) => {
            let (a, b) = (holds(a, facts, seen), holds(b, facts, seen));
            a || b
        }
        Expr::Is(is, node) => {
            let verdict = facts.verdict(node);
            let word = verdict.map_or("unknown", Verdict::as_str);
            seen.push(format!("{node} is {word}"));
            matches!(
                (is, verdict),
                (Is::Dead, Some(Verdict::Dead))
                    | (Is::Healthy, Some(Verdict::Healthy | Verdict::Rejoined))
                    | (Is::Suspect, Some(Verdict::Suspect))
            )
        }
        Expr::Compare(a, op, b) => {
            let (a, b) = (value(a, facts, seen), value(b, facts, seen));
            match (&a, &b) {
                (Value::Unknown, _) | (_, Value::Unknown) => false,
                (Value::Number(x), Value::Number(y)) => op.holds(x, y),
                (Value::Name(x), Value::Name(y)) => op.holds(x, y),
                _ => false,
            }
        }
    }
}

fn value(operand: &Operand, facts: &dyn Facts, seen: &mut Vec<String>) -> Value {
    let (value, said) = match operand {
        Operand::Number(n) | Operand::Millis(n) => return Value::Number(*n),
        Operand::Node(n) => return Value::Name(n.clone()),
        Operand::Count(count) => {
            let n = facts.count(*count);
            let unit = if *count == Count::ClockSpread {
                "ms"
            } else {
                ""
            };
            (Value::Number(n), format!("{n}{unit}"))
        }
        Operand::Primary => {
            let p = facts.primary();
            let said = if p.is_empty() {
                "none".into()
            } else {
                p.clone()
            };
            (Value::Name(p), said)
        }
        Operand::TimeMaster => match facts.time_master() {
            Some(m) => (Value::Name(m.clone()), m),
            None => (Value::Unknown, "none".into()),
        },
        Operand::JobsOn(node, since) => {
            let n = facts.jobs_on(node, *since);
            (Value::Number(n), n.to_string())
        }
        Operand::Offset(node) => match facts.offset(node) {
            Some(ms) => (Value::Number(ms), format!("{ms:+}ms")),
            None => (Value::Unknown, "not read".into()),
        },
        Operand::Entries(node) | Operand::Users(node) => {
            let n = match operand {
                Operand::Entries(_) => facts.entries(node),
                _ => facts.users(node),
            };
            match n {
                Some(n) => (Value::Number(n), n.to_string()),
                None => (Value::Unknown, "no answer".into()),
            }
        }
        // Each part says its own value.
        Operand::Sum(a, plus, b) => {
            return match (value(a, facts, seen), value(b, facts, seen)) {
                (Value::Number(x), Value::Number(y)) if *plus => Value::Number(x.saturating_add(y)),
                (Value::Number(x), Value::Number(y)) => Value::Number(x.saturating_sub(y)),
                _ => Value::Unknown,
            };
        }
    };
    seen.push(format!("{operand} {said}"));
    value
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::topology::diagnostic::Span;
    use crate::topology::expect::parse;

    struct Fixed {
        counts: BTreeMap<&'static str, i64>,
        verdicts: BTreeMap<&'static str, Verdict>,
        done: BTreeMap<&'static str, i64>,
    }

    impl Facts for Fixed {
        fn count(&self, count: Count) -> i64 {
            self.counts.get(count.name()).copied().unwrap_or(0)
        }
        fn primary(&self) -> String {
            "backup".into()
        }
        fn time_master(&self) -> Option<String> {
            None
        }
        fn verdict(&self, node: &str) -> Option<Verdict> {
            self.verdicts.get(node).copied()
        }
        fn jobs_on(&self, node: &str, since: Option<i64>) -> i64 {
            let all = self.done.get(node).copied().unwrap_or(0);
            if since.is_some() { all - 1 } else { all }
        }
        fn offset(&self, node: &str) -> Option<i64> {
            (node == "worker-1").then_some(-12)
        }
        fn entries(&self, _: &str) -> Option<i64> {
            None
        }
        fn users(&self, _: &str) -> Option<i64> {
            Some(3)
        }
    }

    fn check_text(text: &str) -> Outcome {
        let words: Vec<(&str, Span)> = text.split(' ').map(|w| (w, Span::new(0, 0))).collect();
        let expr = parse(&words, &|n| n.starts_with("worker-") || n == "backup").unwrap();
        let facts = Fixed {
            counts: BTreeMap::from([("submitted", 10), ("completed", 10), ("term", 2)]),
            verdicts: BTreeMap::from([
                ("worker-1", Verdict::Rejoined),
                ("worker-2", Verdict::Dead),
            ]),
            done: BTreeMap::from([("worker-1", 7), ("worker-2", 3)]),
        };
        check(&expr, &facts)
    }

    #[test]
    fn expectations_read_the_facts_and_say_what_they_saw() {
        let ok = |text: &str| check_text(text).ok;
        assert!(ok("completed == submitted"));
        assert!(ok("term >= 2 and lost == 0"));
        assert!(ok("primary == backup"));
        assert!(ok("dead(worker-2) and healthy(worker-1)"));
        assert!(ok("jobs_on(worker-2) < jobs_on(worker-1)"));
        assert!(ok("jobs_on(worker-2,1s) == 2"));
        assert!(ok("offset(worker-1) < 50ms and offset(worker-1) > -50ms"));
        assert!(!ok("suspect(worker-2)"));
        assert!(!ok("not dead(worker-2)"));
        // A clock no round read compares false either way.
        assert!(!ok("offset(worker-2) < 50ms") && !ok("offset(worker-2) >= 50ms"));
        assert!(!ok("time_master == backup"));
        assert!(ok("jobs_on(worker-1) - jobs_on(worker-2) == 4"));
        assert!(ok("jobs_on(worker-1) + offset(worker-1) == -5"));
        assert!(!ok("entries(worker-1) + 1 > 0") && !ok("entries(worker-1) + 1 <= 0"));
        assert!(ok("users(worker-1) == 3"));
        assert_eq!(
            check_text("completed == submitted and dead(worker-1)").seen,
            "completed 10, submitted 10, worker-1 is rejoined"
        );
        assert_eq!(check_text("term > 2").seen, "term 2");
    }
}
