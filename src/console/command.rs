//! The `:` command line: parsing with clear errors, and completion of node names.
//!
//! ```text
//! submit [COUNT] DATA…         kill|pause|resume|restart [NODE]   (the selected node if left out)
//! partition A [B] | A -> B     heal [A [B]]                        latency A B DURATION [jitter D]
//! loss A B PERCENT             skew NODE OFFSET                    say TEXT…
//! scenario NAME                help                                quit
//! ```

use super::app::App;
use crate::topology::ClusterAction;
use crate::topology::diagnostic::did_you_mean;
use crate::topology::units::{parse_duration, parse_percent, parse_signed_duration_ms};

/// The commands, for completion and "did you mean": every scenario action, and the console's own.
pub fn commands() -> impl Iterator<Item = &'static str> + Clone {
    ClusterAction::NAMES
        .into_iter()
        .chain(["scenario", "help", "quit"])
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
    /// Leave.
    Quit,
}

/// Parses a command line; the error says what was expected.
pub fn parse(line: &str, app: &App) -> Result<Parsed, String> {
    let words = shlex::split(line).ok_or("unbalanced quotes")?;
    let Some((command, args)) = words.split_first() else {
        return Err("type a command, or help".into());
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let node = |name: &str| -> Result<String, String> {
        if app.node_index(name).is_some() {
            return Ok(name.to_string());
        }
        let hint = did_you_mean(name, app.nodes.iter().map(|n| n.name()))
            .map(|h| format!(": {h}"))
            .unwrap_or_default();
        Err(format!("no node named {name}{hint}"))
    };
    let selected = || {
        app.selected_node()
            .map(|n| n.name().to_string())
            .ok_or_else(|| "name a node".to_string())
    };
    let usage = |u: &str| Err(format!("usage: {u}"));
    let action = match (command.as_str(), args.as_slice()) {
        ("q" | "quit" | "exit", []) => return Ok(Parsed::Quit),
        ("help" | "?", []) => return Ok(Parsed::Help),
        ("scenario", [name]) => {
            if !app.scenarios.iter().any(|s| s == name) {
                let hint = did_you_mean(name, app.scenarios.iter().map(String::as_str))
                    .map(|h| format!(": {h}"))
                    .unwrap_or_default();
                return Err(format!("no scenario named {name}{hint}"));
            }
            return Ok(Parsed::Scenario(name.to_string()));
        }
        ("scenario", []) => {
            return Err(match app.scenarios.as_slice() {
                [] => "this topology has no scenarios".to_string(),
                names => format!("scenarios: {} · :scenario NAME runs one", names.join(", ")),
            });
        }
        ("scenario", _) => return usage("scenario NAME"),
        ("submit", [first, rest @ ..]) => {
            let (count, data) = match (first.parse::<u32>(), rest) {
                (Ok(count), rest) if !rest.is_empty() => (count, rest.join(" ")),
                _ => (1, args.join(" ")),
            };
            if !(1..=100_000).contains(&count) {
                return Err("count must be from 1 to 100000".into());
            }
            crate::role::job::JobKind::parse(&data)?;
            ClusterAction::Submit {
                data,
                count,
                priority: 0,
            }
        }
        ("submit", []) => return usage("submit [COUNT] DATA, e.g. submit 5 sleep 1s"),
        ("kill" | "pause" | "resume" | "restart", rest) => {
            let name = match rest {
                [] => selected()?,
                [n] => node(n)?,
                _ => return usage(&format!("{command} [NODE]")),
            };
            match command.as_str() {
                "kill" => ClusterAction::Kill(name),
                "pause" => ClusterAction::Pause(name),
                "resume" => ClusterAction::Resume(name),
                _ => ClusterAction::Restart(name),
            }
        }
        ("partition", [a]) => ClusterAction::Partition {
            a: node(a)?,
            b: None,
            one_way: false,
        },
        ("partition", [a, b]) => ClusterAction::Partition {
            a: node(a)?,
            b: Some(node(b)?),
            one_way: false,
        },
        ("partition", [a, "->", b]) => ClusterAction::Partition {
            a: node(a)?,
            b: Some(node(b)?),
            one_way: true,
        },
        ("partition", _) => return usage("partition A [B], or partition A -> B (one way)"),
        ("heal", []) => ClusterAction::Heal { a: None, b: None },
        ("heal", [a]) => ClusterAction::Heal {
            a: Some(node(a)?),
            b: None,
        },
        ("heal", [a, b]) => ClusterAction::Heal {
            a: Some(node(a)?),
            b: Some(node(b)?),
        },
        ("heal", _) => return usage("heal [A [B]]"),
        ("latency", [a, b, d]) | ("latency", [a, b, d, "jitter", _]) => {
            let jitter = match args.get(4) {
                Some(j) => parse_duration(j)?,
                None => std::time::Duration::ZERO,
            };
            ClusterAction::Latency {
                a: node(a)?,
                b: node(b)?,
                latency: parse_duration(d)?,
                jitter,
            }
        }
        ("latency", _) => return usage("latency A B DURATION [jitter DURATION]"),
        ("loss", [a, b, p]) => ClusterAction::Loss {
            a: node(a)?,
            b: node(b)?,
            loss: parse_percent(p)?,
        },
        ("loss", _) => return usage("loss A B PERCENT"),
        ("skew", [n, offset]) => ClusterAction::Skew {
            node: node(n)?,
            offset_ms: parse_signed_duration_ms(offset)?,
        },
        ("skew", _) => return usage("skew NODE OFFSET, e.g. skew worker-1 -2s"),
        ("say", words) if !words.is_empty() => ClusterAction::Say(words.join(" ")),
        ("say", _) => return usage("say TEXT"),
        (other, _) => {
            let hint = did_you_mean(other, commands())
                .map(|h| format!(": {h}"))
                .unwrap_or_else(|| " (type help)".into());
            return Err(format!("unknown command {other}{hint}"));
        }
    };
    Ok(Parsed::Act(action))
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
    fn commands_parse() {
        let a = app();
        assert_eq!(
            parse("submit 5 sleep 1s", &a),
            Ok(Parsed::Act(ClusterAction::Submit {
                data: "sleep 1s".into(),
                count: 5,
                priority: 0
            }))
        );
        assert_eq!(
            parse("submit report", &a),
            Ok(Parsed::Act(ClusterAction::Submit {
                data: "report".into(),
                count: 1,
                priority: 0
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
    }

    #[test]
    fn bad_commands_say_what_to_type() {
        let a = app();
        assert_eq!(
            parse("kill wroker-1", &a),
            Err("no node named wroker-1: did you mean `worker-1`?".into())
        );
        assert!(
            parse("kil worker-1", &a)
                .unwrap_err()
                .contains("did you mean `kill`?")
        );
        assert!(
            parse("submit sleep forever", &a)
                .unwrap_err()
                .starts_with("sleep:")
        );
        assert!(parse("latency a", &a).unwrap_err().starts_with("usage:"));
        assert!(
            parse("scenario lectur", &a)
                .unwrap_err()
                .contains("did you mean `lecture`?")
        );
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
