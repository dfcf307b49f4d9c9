//! The `:` command line: parsing with clear errors, and completion of node names.
//!
//! ```text
//! submit [COUNT] DATA…         kill|pause|resume|restart [NODE]   (the selected node if left out)
//! partition A [B] | A -> B     heal [A [B]]                        latency A B DURATION [jitter D]
//! loss A B PERCENT             skew NODE OFFSET                    say TEXT…
//! speed SCALE                  scenario NAME                       keys on|off
//! help                         quit
//! ```

use super::app::App;
use crate::role::job::JobDataError;
use crate::topology::ClusterAction;
use crate::topology::diagnostic::did_you_mean;
use crate::topology::units::{UnitError, parse_duration, parse_percent, parse_signed_duration_ms};

/// The commands, for completion and "did you mean": every scenario action, and the console's own.
pub fn commands() -> impl Iterator<Item = &'static str> + Clone {
    ClusterAction::NAMES
        .into_iter()
        .filter(|c| *c != "expect")
        .chain(["scenario", "keys", "help", "quit"])
}

/// A command understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Act on the cluster.
    Act(ClusterAction),
    /// Run a scenario.
    Scenario(String),
    /// Show the help.
    Help,
    /// Show each key pressed in a corner (`keys on`), or not (`keys off`): the class sees
    /// what the lecturer did.
    Keys(bool),
    /// Leave.
    Quit,
}

/// A command line that does not make sense: what was expected, or what exists.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// A quote was opened and not closed.
    #[error("unbalanced quotes")]
    Quotes,
    /// Nothing typed.
    #[error("type a command, or help")]
    Empty,
    /// No node has this name (with a suggestion, if one is close).
    #[error("no node named {name}{hint}")]
    NoNode {
        /// The name typed.
        name: String,
        /// ": did you mean …?", or nothing.
        hint: String,
    },
    /// A node command with no node named and none selected.
    #[error("name a node")]
    NoSelection,
    /// No scenario has this name.
    #[error("no scenario named {name}{hint}")]
    NoScenario {
        /// The name typed.
        name: String,
        /// ": did you mean …?", or nothing.
        hint: String,
    },
    /// `scenario` alone, in a topology without scenarios.
    #[error("this topology has no scenarios")]
    NoScenarios,
    /// `scenario` alone: which ones there are.
    #[error("scenarios: {0} · :scenario NAME runs one")]
    WhichScenario(String),
    /// The right command, the wrong arguments.
    #[error("usage: {0}")]
    Usage(String),
    /// A job count out of range.
    #[error("count must be from 1 to 100000")]
    Count,
    /// Job data a worker would refuse.
    #[error(transparent)]
    Job(#[from] JobDataError),
    /// A duration or percentage that is not one.
    #[error(transparent)]
    Value(#[from] UnitError),
    /// Not a command (with a suggestion, or a pointer to help).
    #[error("unknown command {name}{hint}")]
    Unknown {
        /// What was typed.
        name: String,
        /// ": did you mean …?", or " (type help)".
        hint: String,
    },
}

/// Parses a command line; the error says what was expected.
pub fn parse(line: &str, app: &App) -> Result<Parsed, CommandError> {
    let words = shlex::split(line).ok_or(CommandError::Quotes)?;
    let Some((command, args)) = words.split_first() else {
        return Err(CommandError::Empty);
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = Line {
        app,
        command: command.as_str(),
        args: &args,
    };
    let action = match line.command {
        "q" | "quit" | "exit" if args.is_empty() => return Ok(Parsed::Quit),
        "help" | "?" if args.is_empty() => return Ok(Parsed::Help),
        "keys" => {
            return match args.as_slice() {
                ["on"] => Ok(Parsed::Keys(true)),
                ["off"] => Ok(Parsed::Keys(false)),
                _ => usage("keys on|off"),
            };
        }
        "scenario" => return line.scenario(),
        "submit" => line.submit()?,
        "kill" | "pause" | "resume" | "restart" => line.node_action()?,
        "partition" | "heal" | "hold" | "release" => line.cut_or_heal()?,
        "latency" | "loss" | "skew" => line.shape()?,
        "speed" => match args.as_slice() {
            [scale] => match scale.parse::<f64>() {
                Ok(scale)
                    if (crate::topology::policies::SCALES.0
                        ..=crate::topology::policies::SCALES.1)
                        .contains(&scale) =>
                {
                    ClusterAction::Speed(scale)
                }
                _ => {
                    return usage(
                        "speed SCALE, from 0.01 to 1 (0.1 runs ten times slower; 1 is real time)",
                    );
                }
            },
            _ => {
                return usage(
                    "speed SCALE, from 0.01 to 1 (0.1 runs ten times slower; 1 is real time)",
                );
            }
        },
        "say" if !args.is_empty() => ClusterAction::Say(args.join(" ")),
        "say" => return usage("say TEXT"),
        other => {
            let hint = did_you_mean(other, commands())
                .map(|h| format!(": {h}"))
                .unwrap_or_else(|| " (type help)".into());
            return Err(CommandError::Unknown {
                name: other.to_string(),
                hint,
            });
        }
    };
    Ok(Parsed::Act(action))
}

/// The usage error of a command.
fn usage<T>(text: &str) -> Result<T, CommandError> {
    Err(CommandError::Usage(text.to_string()))
}

/// A command line, split into its command and arguments.
struct Line<'a> {
    app: &'a App,
    command: &'a str,
    args: &'a [&'a str],
}

impl Line<'_> {
    /// A node of the cluster, by name.
    fn node(&self, name: &str) -> Result<String, CommandError> {
        if self.app.node_index(name).is_some() {
            return Ok(name.to_string());
        }
        // `primary`: the master that serves now, named in the question the operator confirms.
        if name == crate::topology::PRIMARY_WORD {
            let primary = self.app.cluster.read().primary.clone();
            if !primary.is_empty() {
                return Ok(primary);
            }
        }
        let hint = did_you_mean(name, self.app.nodes.iter().map(|n| n.name()))
            .map(|h| format!(": {h}"))
            .unwrap_or_default();
        Err(CommandError::NoNode {
            name: name.to_string(),
            hint,
        })
    }

    /// `scenario NAME`, or `scenario` alone (which lists them).
    fn scenario(&self) -> Result<Parsed, CommandError> {
        let scenarios = &self.app.scenarios;
        match self.args {
            [name] if scenarios.iter().any(|s| s == name) => Ok(Parsed::Scenario(name.to_string())),
            [name] => {
                let hint = did_you_mean(name, scenarios.iter().map(String::as_str))
                    .map(|h| format!(": {h}"))
                    .unwrap_or_default();
                Err(CommandError::NoScenario {
                    name: name.to_string(),
                    hint,
                })
            }
            [] => Err(match scenarios.as_slice() {
                [] => CommandError::NoScenarios,
                names => CommandError::WhichScenario(names.join(", ")),
            }),
            _ => usage("scenario NAME"),
        }
    }

    /// `submit [COUNT] DATA [to CLUSTER]` (`to CLUSTER` only when CLUSTER is one of the
    /// topology's clusters: otherwise it is part of the data).
    fn submit(&self) -> Result<ClusterAction, CommandError> {
        let (args, cluster) = match self.args {
            [before @ .., to, cluster]
                if *to == "to" && self.app.clusters.iter().any(|c| c == cluster) =>
            {
                (before, Some(cluster.to_string()))
            }
            args => (args, None),
        };
        let [first, rest @ ..] = args else {
            return usage("submit [COUNT] DATA [to CLUSTER], e.g. submit 5 sleep 1s");
        };
        let (count, data) = match (first.parse::<u32>(), rest) {
            (Ok(count), rest) if !rest.is_empty() => (count, rest.join(" ")),
            _ => (1, args.join(" ")),
        };
        if !(1..=100_000).contains(&count) {
            return Err(CommandError::Count);
        }
        crate::role::job::JobKind::parse(&data)?;
        Ok(ClusterAction::Submit {
            data,
            count,
            priority: 0,
            cluster,
        })
    }

    /// `kill`, `pause`, `resume`, `restart` a named node, or the selected one.
    fn node_action(&self) -> Result<ClusterAction, CommandError> {
        let name = match self.args {
            [] => self
                .app
                .selected_node()
                .map(|n| n.name().to_string())
                .ok_or(CommandError::NoSelection)?,
            [n] => self.node(n)?,
            _ => return usage(&format!("{} [NODE]", self.command)),
        };
        Ok(match self.command {
            "kill" => ClusterAction::Kill(name),
            "pause" => ClusterAction::Pause(name),
            "resume" => ClusterAction::Resume(name),
            _ => ClusterAction::Restart(name),
        })
    }

    /// `partition A [B]`, `partition A -> B`, `heal [A [B]]`.
    fn cut_or_heal(&self) -> Result<ClusterAction, CommandError> {
        Ok(match (self.command, self.args) {
            ("partition", [a]) => ClusterAction::Partition {
                a: self.node(a)?,
                b: None,
                one_way: false,
            },
            ("partition", [a, b]) => ClusterAction::Partition {
                a: self.node(a)?,
                b: Some(self.node(b)?),
                one_way: false,
            },
            ("partition", [a, "->", b]) => ClusterAction::Partition {
                a: self.node(a)?,
                b: Some(self.node(b)?),
                one_way: true,
            },
            ("partition", _) => return usage("partition A [B], or partition A -> B (one way)"),
            ("heal", []) => ClusterAction::Heal { a: None, b: None },
            ("heal", [a]) => ClusterAction::Heal {
                a: Some(self.node(a)?),
                b: None,
            },
            ("heal", [a, b]) => ClusterAction::Heal {
                a: Some(self.node(a)?),
                b: Some(self.node(b)?),
            },
            ("hold", [a, b]) => ClusterAction::Hold {
                a: self.node(a)?,
                b: self.node(b)?,
                one_way: false,
            },
            ("hold", [a, "->", b]) => ClusterAction::Hold {
                a: self.node(a)?,
                b: self.node(b)?,
                one_way: true,
            },
            ("hold", _) => return usage("hold A B, or hold A -> B (one way)"),
            ("release", []) => ClusterAction::Release { a: None, b: None },
            ("release", [a]) => ClusterAction::Release {
                a: Some(self.node(a)?),
                b: None,
            },
            ("release", [a, b]) => ClusterAction::Release {
                a: Some(self.node(a)?),
                b: Some(self.node(b)?),
            },
            ("release", _) => return usage("release [A [B]]"),
            _ => return usage("heal [A [B]]"),
        })
    }

    /// `latency A B DURATION [jitter DURATION]`, `loss A B PERCENT`, `skew NODE OFFSET`.
    fn shape(&self) -> Result<ClusterAction, CommandError> {
        Ok(match (self.command, self.args) {
            ("latency", [a, b, d]) | ("latency", [a, b, d, "jitter", _]) => {
                let jitter = match self.args.get(4) {
                    Some(j) => parse_duration(j)?,
                    None => std::time::Duration::ZERO,
                };
                ClusterAction::Latency {
                    a: self.node(a)?,
                    b: self.node(b)?,
                    latency: parse_duration(d)?,
                    jitter,
                }
            }
            ("latency", _) => return usage("latency A B DURATION [jitter DURATION]"),
            ("loss", [a, b, p]) | ("loss", [a, "<->", b, p]) => ClusterAction::Loss {
                a: self.node(a)?,
                b: self.node(b)?,
                loss: parse_percent(p)?,
                one_way: false,
            },
            ("loss", [a, "->", b, p]) => ClusterAction::Loss {
                a: self.node(a)?,
                b: self.node(b)?,
                loss: parse_percent(p)?,
                one_way: true,
            },
            ("loss", _) => return usage("loss A B PERCENT, or loss A -> B PERCENT (one way)"),
            ("skew", [n, offset]) => ClusterAction::Skew {
                node: self.node(n)?,
                offset_ms: parse_signed_duration_ms(offset)?,
            },
            _ => return usage("skew NODE OFFSET, e.g. skew worker-1 -2s"),
        })
    }
}

/// Completes the last word of `line`: a command name first, then node (or scenario) names.
/// Returns the completed line and the candidates.
pub fn complete(line: &str, app: &App) -> (String, Vec<String>) {
    let (head, last) = match line.rfind(' ') {
        Some(i) => (&line[..=i], &line[i + 1..]),
        None => ("", line),
    };
    let candidates: Vec<String> = if head.trim().is_empty() {
        commands().map(str::to_string).collect()
    } else if head.trim_start().starts_with("scenario") {
        app.scenarios.clone()
    } else {
        app.nodes.iter().map(|n| n.name().to_string()).collect()
    };
    let choices: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(last))
        .collect();
    let completed = match choices.as_slice() {
        [] => line.to_string(),
        [one] => format!("{head}{one} "),
        many => {
            let prefix = many.iter().skip(1).fold(many[0].clone(), |p, c| {
                p.chars()
                    .zip(c.chars())
                    .take_while(|(a, b)| a == b)
                    .map(|(a, _)| a)
                    .collect()
            });
            format!(
                "{head}{}",
                if prefix.len() > last.len() {
                    &prefix
                } else {
                    last
                }
            )
        }
    };
    (completed, choices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::app::NodeRow;
    use crate::console::config::Config;

    fn app() -> App {
        let nodes = ["coordinator", "worker-1", "worker-2"]
            .iter()
            .map(|n| NodeRow::new(n, "worker"))
            .collect();
        let mut app = App::new("t", "coordinator", nodes, Config::default());
        app.scenarios = vec!["lecture".into()];
        app
    }

    #[test]
    fn primary_names_the_master_that_serves_now() {
        let a = app();
        assert_eq!(
            parse("partition primary worker-2", &a),
            Ok(Parsed::Act(ClusterAction::Partition {
                a: "coordinator".into(),
                b: Some("worker-2".into()),
                one_way: false,
            }))
        );
        // After a takeover the word follows the reading.
        a.cluster.write().primary = "worker-1".into();
        assert_eq!(
            parse("kill primary", &a),
            Ok(Parsed::Act(ClusterAction::Kill("worker-1".into())))
        );
        // With no primary, it is no node.
        a.cluster.write().primary.clear();
        assert!(matches!(
            parse("kill primary", &a),
            Err(CommandError::NoNode { .. })
        ));
    }

    #[test]
    fn commands_parse() {
        let a = app();
        assert_eq!(
            parse("submit 5 sleep 1s", &a),
            Ok(Parsed::Act(ClusterAction::Submit {
                data: "sleep 1s".into(),
                count: 5,
                priority: 0,
                cluster: None
            }))
        );
        assert_eq!(
            parse("submit report", &a),
            Ok(Parsed::Act(ClusterAction::Submit {
                data: "report".into(),
                count: 1,
                priority: 0,
                cluster: None
            }))
        );
        assert_eq!(
            parse("kill worker-1", &a),
            Ok(Parsed::Act(ClusterAction::Kill("worker-1".into())))
        );
        assert_eq!(
            parse("kill", &a),
            Ok(Parsed::Act(ClusterAction::Kill("coordinator".into()))),
            "the selected node"
        );
        assert_eq!(
            parse("partition coordinator -> worker-2", &a),
            Ok(Parsed::Act(ClusterAction::Partition {
                a: "coordinator".into(),
                b: Some("worker-2".into()),
                one_way: true
            }))
        );
        assert_eq!(
            parse("hold coordinator -> worker-2", &a),
            Ok(Parsed::Act(ClusterAction::Hold {
                a: "coordinator".into(),
                b: "worker-2".into(),
                one_way: true
            }))
        );
        assert_eq!(
            parse("release worker-2", &a),
            Ok(Parsed::Act(ClusterAction::Release {
                a: Some("worker-2".into()),
                b: None
            }))
        );
        assert!(parse("hold coordinator", &a).is_err());
        assert_eq!(parse("keys on", &a), Ok(Parsed::Keys(true)));
        assert_eq!(parse("keys off", &a), Ok(Parsed::Keys(false)));
        assert!(parse("keys maybe", &a).is_err());
        assert_eq!(
            parse("loss worker-1 -> coordinator 20%", &a),
            Ok(Parsed::Act(ClusterAction::Loss {
                a: "worker-1".into(),
                b: "coordinator".into(),
                loss: crate::topology::units::Percent(20.0),
                one_way: true
            }))
        );
        assert_eq!(
            parse("skew worker-1 -2s", &a),
            Ok(Parsed::Act(ClusterAction::Skew {
                node: "worker-1".into(),
                offset_ms: -2000
            }))
        );
        assert_eq!(
            parse("scenario lecture", &a),
            Ok(Parsed::Scenario("lecture".into()))
        );
        assert_eq!(
            parse("say hello class", &a),
            Ok(Parsed::Act(ClusterAction::Say("hello class".into())))
        );
        assert_eq!(
            parse("speed 0.1", &a),
            Ok(Parsed::Act(ClusterAction::Speed(0.1)))
        );
        for bad in ["speed", "speed 5", "speed slow", "speed 0"] {
            let e = parse(bad, &a).unwrap_err().to_string();
            assert!(e.contains("speed SCALE, from 0.01 to 1"), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_commands_say_what_to_type() {
        let a = app();
        let said = |line: &str| parse(line, &a).unwrap_err().to_string();
        assert_eq!(
            said("kill wroker-1"),
            "no node named wroker-1: did you mean `worker-1`?"
        );
        assert!(said("kil worker-1").contains("did you mean `kill`?"));
        assert!(said("submit sleep forever").starts_with("sleep:"));
        assert!(said("latency a").starts_with("usage:"));
        assert!(said("scenario lectur").contains("did you mean `lecture`?"));
        assert!(parse("\"unbalanced", &a).is_err());
    }

    #[test]
    fn completion() {
        let a = app();
        assert_eq!(complete("ki", &a).0, "kill ");
        assert_eq!(complete("kill w", &a).0, "kill worker-");
        assert_eq!(complete("kill worker-", &a).1, vec!["worker-1", "worker-2"]);
        assert_eq!(complete("scenario le", &a).0, "scenario lecture ");
    }
}
