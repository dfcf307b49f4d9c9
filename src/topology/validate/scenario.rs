//! `scenario NAME { at TIME ACTION … }`: a scripted demo, each step checked against the nodes
//! it names and the arguments its action takes.

use super::*;

impl Validator<'_> {
    /// One scenario; `seen` catches a scenario declared twice.
    pub(super) fn scenario(
        &mut self,
        command: &Command,
        seen: &mut HashMap<String, Span>,
    ) -> Option<Scenario> {
        let (name, _, block) = self.named_block(
            command,
            (
                "scenario",
                "scenario NAME { at 2s kill worker-1; … }",
                "block of steps",
            ),
            seen,
            None,
        )?;
        let steps = block.iter().filter_map(|step| self.step(step)).collect();
        Some(Scenario {
            name: name.to_string(),
            steps,
        })
    }

    /// `at TIME ACTION ARGS…`.
    fn step(&mut self, command: &Command) -> Option<Step> {
        if command.name() != Some("at") {
            self.diags.push(
                Diagnostic::error(command.name_span(), "a scenario step starts with `at TIME`")
                    .with_label(format!("found {}", command.words[0].describe()))
                    .with_hint("for example `at 2s kill worker-1`"),
            );
            return None;
        }
        let words = &command.words;
        let Some(time_word) = words.get(1) else {
            self.error(
                command.span,
                "`at` needs a time and an action",
                "expected `at 2s ACTION …`",
            );
            return None;
        };
        let (time_text, time_span) = self.word_text(time_word, "at 2s ACTION")?;
        let at = self.parsed(time_text, time_span, parse_duration);
        let Some(action_word) = words.get(2) else {
            self.error(
                command.span,
                "this step has no action",
                format!("expected {}", one_of(&ClusterAction::NAMES)),
            );
            return None;
        };
        let (action_name, action_span) = self.word_text(action_word, "at 2s ACTION")?;
        let action = self.action(action_name, &words[3..], action_span);
        Some(Step {
            at: at?,
            action: action?,
            span: command.span,
        })
    }

    /// The action of a step and its arguments.
    fn action(&mut self, name: &str, args: &[Word], action_span: Span) -> Option<ClusterAction> {
        match name {
            "submit" => self.submit(args, action_span),
            "kill" | "pause" | "resume" | "restart" => {
                let usage = format!("at 5s {name} worker-1");
                let node = self
                    .step_args(args, 1, action_span, &usage)
                    .and_then(|a| self.one_node(&a[0], &usage))?;
                Some(match name {
                    "kill" => ClusterAction::Kill(node),
                    "pause" => ClusterAction::Pause(node),
                    "resume" => ClusterAction::Resume(node),
                    _ => ClusterAction::Restart(node),
                })
            }
            "partition" => self.partition(args, action_span),
            "hold" => match self.partition(args, action_span)? {
                ClusterAction::Partition {
                    a,
                    b: Some(b),
                    one_way,
                } => Some(ClusterAction::Hold { a, b, one_way }),
                _ => {
                    self.step_usage(args, action_span, "at 2s hold A B   (or `A -> B` one way)");
                    None
                }
            },
            "release" => match self.heal(args, action_span)? {
                ClusterAction::Heal { a, b } => Some(ClusterAction::Release { a, b }),
                _ => None,
            },
            "heal" => self.heal(args, action_span),
            "latency" => self.latency(args, action_span),
            "loss" => {
                let usage = "at 3s loss A B 10%   (or `A -> B` one way)";
                let one_way = matches!(args, [_, arrow, _, _] if arrow.kind == WordKind::Arrow);
                let both = matches!(args, [_, arrow, _, _] if arrow.kind == WordKind::BiArrow);
                let ends: Vec<Word> = if one_way || both {
                    vec![args[0].clone(), args[2].clone(), args[3].clone()]
                } else {
                    args.to_vec()
                };
                let (a, b, value) = self.link_step(&ends, action_span, usage, &[3])?;
                let loss = self.parsed(value.0, value.1, parse_percent)?;
                Some(ClusterAction::Loss {
                    a,
                    b,
                    loss,
                    one_way,
                })
            }
            "skew" => {
                let usage = "at 3s skew worker-1 -2s";
                let args = self.step_args(args, 2, action_span, usage)?;
                let node = self.one_node(&args[0], usage);
                let (text, span) = self.word_text(&args[1], usage)?;
                let offset_ms = self.parsed(text, span, parse_signed_duration_ms)?;
                Some(ClusterAction::Skew {
                    node: node?,
                    offset_ms,
                })
            }
            "expect" => self.expect(args, action_span),
            "speed" => {
                let usage = "at 3s speed 0.1   (0.01 to 1: 0.1 runs ten times slower)";
                let args = self.step_args(args, 1, action_span, usage)?;
                let (text, span) = self.word_text(&args[0], usage)?;
                match text.parse::<f64>() {
                    Ok(scale)
                        if (crate::topology::policies::SCALES.0
                            ..=crate::topology::policies::SCALES.1)
                            .contains(&scale) =>
                    {
                        Some(ClusterAction::Speed(scale))
                    }
                    _ => {
                        self.error(
                            span,
                            format!("`{text}` is not a speed from 0.01 to 1"),
                            usage,
                        );
                        None
                    }
                }
            }
            "say" => {
                let texts: Option<Vec<&str>> = args.iter().map(Word::text).collect();
                match texts {
                    Some(texts) if !texts.is_empty() => Some(ClusterAction::Say(texts.join(" "))),
                    _ => {
                        self.step_usage(args, action_span, "at 1s say \"Watch worker-2\"");
                        None
                    }
                }
            }
            other => {
                self.diags.push(
                    Diagnostic::error(action_span, format!("unknown scenario action `{other}`"))
                        .with_label(format!("expected {}", one_of(&ClusterAction::NAMES)))
                        .with_hint_opt(did_you_mean(other, ClusterAction::NAMES)),
                );
                None
            }
        }
    }

    /// `expect [within DURATION] EXPR "TEXT"`.
    fn expect(&mut self, args: &[Word], action_span: Span) -> Option<ClusterAction> {
        use crate::topology::expect::{self, DEFAULT_WITHIN, MAX_WITHIN};
        let usage = "at 20s expect completed == submitted \"every job completed\"";
        let (text, rest) = match args.split_last() {
            Some((last, rest)) if matches!(last.kind, WordKind::Quoted(_)) && !rest.is_empty() => {
                (last.text().unwrap_or_default().to_string(), rest)
            }
            _ => {
                let span = args.last().map_or(action_span, |w| w.span);
                self.diags.push(
                    Diagnostic::error(
                        span,
                        "`expect` needs a condition and, last, what the class should see",
                    )
                    .with_label("expected a condition, then a \"quoted text\"")
                    .with_hint(format!("for example `{usage}`")),
                );
                return None;
            }
        };
        let (within, rest) = match rest {
            [w, d, rest @ ..] if w.text() == Some("within") => {
                let (t, span) = self.word_text(d, usage)?;
                let within = self.parsed(t, span, parse_duration)?;
                if within.is_zero() || within > MAX_WITHIN {
                    self.error(
                        span,
                        "`within` is out of range",
                        "between 1ms and 60s: how long the cluster may take to get there",
                    );
                    return None;
                }
                (within, rest)
            }
            _ => (DEFAULT_WITHIN, rest),
        };
        let mut words = Vec::new();
        for word in rest {
            match &word.kind {
                WordKind::Bare(text) => words.push((text.as_str(), word.span)),
                _ => {
                    self.diags.push(
                        Diagnostic::error(word.span, format!("{} inside a condition", word.describe()))
                            .with_label("a condition is names, numbers, `(`, `)`, comparisons, `and`, `or`, `not`")
                            .with_hint("the quoted text goes last, once"),
                    );
                    return None;
                }
            }
        }
        if words.is_empty() {
            self.error(action_span, "`expect` needs a condition", usage);
            return None;
        }
        let nodes = &self.names.nodes;
        match expect::parse(&words, &|n| nodes.contains_key(n)) {
            Ok(expr) => Some(ClusterAction::Expect(expect::Expectation {
                expr,
                text,
                within,
            })),
            Err(diagnostic) => {
                self.diags.push(diagnostic);
                None
            }
        }
    }

    /// `partition A`, `partition A B`, `partition A -> B`.
    fn partition(&mut self, args: &[Word], action_span: Span) -> Option<ClusterAction> {
        let usage = "at 5s partition A B   (or `A -> B` one way, or `A` from all)";
        match args {
            [a] => Some(ClusterAction::Partition {
                a: self.one_node(a, usage)?,
                b: None,
                one_way: false,
            }),
            [a, b] if b.text().is_some() => {
                let (a, b) = (self.one_node(a, usage), self.one_node(b, usage));
                let (a, b) = (a?, b?);
                self.distinct(&a, &b, args)?;
                Some(ClusterAction::Partition {
                    a,
                    b: Some(b),
                    one_way: false,
                })
            }
            [a, arrow, b] if matches!(arrow.kind, WordKind::Arrow | WordKind::BiArrow) => {
                let (a, b) = (self.one_node(a, usage), self.one_node(b, usage));
                let (a, b) = (a?, b?);
                self.distinct(&a, &b, args)?;
                Some(ClusterAction::Partition {
                    a,
                    b: Some(b),
                    one_way: matches!(arrow.kind, WordKind::Arrow),
                })
            }
            _ => {
                self.step_usage(args, action_span, usage);
                None
            }
        }
    }

    /// `heal`, `heal A`, `heal A B`.
    fn heal(&mut self, args: &[Word], action_span: Span) -> Option<ClusterAction> {
        let usage = "at 8s heal   (or `heal A`, `heal A B`)";
        match args {
            [] => Some(ClusterAction::Heal { a: None, b: None }),
            [a] => Some(ClusterAction::Heal {
                a: Some(self.one_node(a, usage)?),
                b: None,
            }),
            [a, b] => {
                let (a, b) = (self.one_node(a, usage), self.one_node(b, usage));
                Some(ClusterAction::Heal {
                    a: Some(a?),
                    b: Some(b?),
                })
            }
            _ => {
                self.step_usage(args, action_span, usage);
                None
            }
        }
    }

    /// `latency A B DURATION [jitter DURATION]`.
    fn latency(&mut self, args: &[Word], action_span: Span) -> Option<ClusterAction> {
        let usage = "at 3s latency A B 200ms [jitter 50ms]";
        let (a, b, value) = self.link_step(args, action_span, usage, &[3, 5])?;
        let latency = self.parsed(value.0, value.1, parse_duration)?;
        let jitter = match &args[3..] {
            [] => Duration::ZERO,
            [key, j] if key.text() == Some("jitter") => {
                let (text, span) = self.word_text(j, usage)?;
                self.parsed(text, span, parse_duration)?
            }
            _ => {
                self.step_usage(args, action_span, usage);
                return None;
            }
        };
        Some(ClusterAction::Latency {
            a,
            b,
            latency,
            jitter,
        })
    }

    pub(super) fn distinct(&mut self, a: &str, b: &str, args: &[Word]) -> Option<()> {
        if a == b {
            self.error(
                args[0].span.to(args[args.len() - 1].span),
                format!("`{a}` cannot be cut off from itself"),
                "name two different nodes",
            );
            return None;
        }
        Some(())
    }

    /// `A B VALUE …` for latency and loss; `lens` are the accepted argument counts.
    pub(super) fn link_step<'c>(
        &mut self,
        args: &'c [Word],
        action_span: Span,
        usage: &str,
        lens: &[usize],
    ) -> Option<(String, String, (&'c str, Span))> {
        if !lens.contains(&args.len()) {
            self.step_usage(args, action_span, usage);
            return None;
        }
        let a = self.one_node(&args[0], usage);
        let b = self.one_node(&args[1], usage);
        let value = self.word_text(&args[2], usage);
        let (a, b) = (a?, b?);
        self.distinct(&a, &b, &args[..2])?;
        Some((a, b, value?))
    }

    /// Exactly `n` arguments after the action word.
    pub(super) fn step_args<'c>(
        &mut self,
        args: &'c [Word],
        n: usize,
        action_span: Span,
        usage: &str,
    ) -> Option<&'c [Word]> {
        if args.len() == n {
            return Some(args);
        }
        self.step_usage(args, action_span, usage);
        None
    }

    pub(super) fn step_usage(&mut self, args: &[Word], action_span: Span, usage: &str) {
        let span = args.iter().fold(action_span, |s, w| s.to(w.span));
        self.error(
            span,
            "this step is not written the way its action expects",
            format!("expected `{usage}`"),
        );
    }

    pub(super) fn submit(&mut self, args: &[Word], action_span: Span) -> Option<ClusterAction> {
        let usage = "at 2s submit \"sleep 1s\" [count 10] [priority 5] [to CLUSTER]";
        let Some((first, rest)) = args.split_first() else {
            self.step_usage(args, action_span, usage);
            return None;
        };
        let (data, data_span) = self.word_text(first, usage)?;
        if data.trim().is_empty() {
            self.error(
                data_span,
                "a job needs data",
                "for example \"sleep 1s\" or \"echo hello\"",
            );
            return None;
        }
        let mut count = 1;
        let mut priority = 0;
        let mut cluster = None;
        let mut options = rest.chunks(2);
        for pair in &mut options {
            let [key, value] = pair else {
                self.step_usage(args, action_span, usage);
                return None;
            };
            let (key_text, key_span) = self.word_text(key, usage)?;
            let (value_text, value_span) = self.word_text(value, usage)?;
            match key_text {
                "count" => {
                    count =
                        self.integer_text(value_text, value_span, 1..=1_000_000, "count")? as u32
                }
                "priority" => {
                    priority =
                        self.integer_text(value_text, value_span, -1000..=1000, "priority")? as i32
                }
                "to" => {
                    if !self.names.clusters.iter().any(|c| c == value_text) {
                        let known = self.names.clusters.clone();
                        self.diags.push(
                            Diagnostic::error(
                                value_span,
                                format!("no cluster is called `{value_text}`"),
                            )
                            .with_label(format!("the clusters with masters: {}", known.join(", ")))
                            .with_hint_opt(did_you_mean(
                                value_text,
                                known.iter().map(String::as_str),
                            )),
                        );
                        return None;
                    }
                    cluster = Some(value_text.to_string());
                }
                other => {
                    self.diags.push(
                        Diagnostic::error(key_span, format!("unknown submit option `{other}`"))
                            .with_label("expected `count`, `priority` or `to`")
                            .with_hint(
                                if rest.len() > 2 || first.text().is_some_and(|t| !t.contains(' '))
                                {
                                    "put job data that has spaces in quotes: submit \"sleep 1s\""
                                        .to_string()
                                } else {
                                    "for example `submit \"sleep 1s\" count 10`".to_string()
                                },
                            ),
                    );
                    return None;
                }
            }
        }
        Some(ClusterAction::Submit {
            data: data.to_string(),
            count,
            priority,
            cluster,
        })
    }
}
