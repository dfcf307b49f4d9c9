//! Validation: syntax tree → [`Topology`], with a diagnostic for everything that is wrong.
//!
//! - `values`: reading one value (a number in range, a duration, a name, a block) and the
//!   keys of a block, with the error each can give;
//! - `node`: `node` blocks, `count` copies, and the nodes as a whole (unique names and
//!   addresses, one primary, a master for the workers); references to nodes;
//! - `connection`, `policy`, `user`, `scenario`: the other commands;
//! - here: the two passes, `set`, and the opening every named block shares.
//!
//! It runs in two passes. The first reads every `node` (expanding `count`), so that connections
//! and scenarios may name nodes declared further down the file. The second reads everything
//! else and checks the whole: unique names and addresses, known node names with suggestions,
//! one primary, workers with a master. Unknown keys inside known blocks are warnings, because
//! students experiment; everything that would make the cluster behave differently from what the
//! file says is an error.

mod connection;
mod node;
mod policy;
mod scenario;
mod user;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::diagnostic::{Diagnostic, Span, did_you_mean, one_of};
use super::model::*;
use super::syntax::{Command, Word, WordKind};
use super::units::{
    parse_bool, parse_duration, parse_per_second, parse_percent, parse_rate,
    parse_signed_duration_ms, parse_size,
};

/// Keys a `node` block understands.
const NODE_KEYS: [&str; 14] = [
    "type",
    "role",
    "cluster",
    "host",
    "identity",
    "remote_binary",
    "address",
    "port",
    "resources",
    "services",
    "count",
    "command",
    "launch",
    "bot",
];
const BOT_KEYS: [&str; 4] = ["channels", "posts", "jobs", "job"];
const RESOURCE_KEYS: [&str; 3] = ["cpu", "memory", "storage"];
const LINK_KEYS: [&str; 6] = [
    "protocol",
    "bandwidth",
    "latency",
    "jitter",
    "loss",
    "encrypted",
];
const TOP_LEVEL: [&str; 6] = ["set", "node", "connection", "policy", "user", "scenario"];
const POLICIES: [&str; 9] = [
    "load_balancing",
    "heartbeat",
    "retry",
    "replication",
    "election",
    "security",
    "chat",
    "journal",
    "lending",
];
/// The most copies `count` may make: far beyond a classroom, small enough to stay responsive.
const MAX_COUNT: u32 = 10_000;

/// Validates parsed commands. The topology is complete only if no error was added to
/// `diagnostics`; with errors it is the best reading of the file, for tools that want one.
pub fn validate(
    file_stem: &str,
    commands: &[Command],
    diagnostics: &mut Vec<Diagnostic>,
) -> Topology {
    let mut v = Validator {
        diags: diagnostics,
        names: Names::default(),
        broken: Vec::new(),
        bad_clusters: Vec::new(),
    };
    let mut topology = Topology {
        globals: Globals {
            system_name: file_stem.to_string(),
            time_scale: 1.0,
            ..Globals::default()
        },
        nodes: Vec::new(),
        connections: Vec::new(),
        policies: Policies::default(),
        users: Vec::new(),
        scenarios: Vec::new(),
    };

    // Pass 1: nodes, so that everything else can refer to them.
    for command in commands {
        if command.name() == Some("node") {
            v.node(command, &mut topology.nodes);
        }
    }
    v.check_nodes(&mut topology.nodes);
    v.names = Names::of(&topology.nodes);
    for (name, group) in std::mem::take(&mut v.broken) {
        v.names.nodes.entry(name.clone()).or_default();
        if let Some(group) = group {
            v.names.groups.entry(group).or_default().push(name);
        }
    }

    // Pass 2: everything else, in file order.
    let mut policy_spans: HashMap<String, Span> = HashMap::new();
    let mut user_spans: HashMap<String, Span> = HashMap::new();
    let mut scenario_spans: HashMap<String, Span> = HashMap::new();
    for command in commands {
        match command.name() {
            Some("node") => {}
            Some("set") => v.global(command, &mut topology.globals),
            Some("connection") => v.connection(command, &mut topology.connections),
            Some("policy") => v.policy(command, &mut topology.policies, &mut policy_spans),
            Some("user") => {
                if let Some(user) = v.user(command, &mut user_spans) {
                    topology.users.push(user);
                }
            }
            Some("scenario") => {
                if let Some(scenario) = v.scenario(command, &mut scenario_spans) {
                    topology.scenarios.push(scenario);
                }
            }
            Some(other) => {
                v.diags.push(
                    Diagnostic::error(command.name_span(), format!("unknown command `{other}`"))
                        .with_label(format!("expected {}", one_of(&TOP_LEVEL)))
                        .with_hint_opt(did_you_mean(other, TOP_LEVEL)),
                );
            }
            None => {
                let first = &command.words[0];
                v.diags.push(
                    Diagnostic::error(
                        first.span,
                        format!("a command cannot start with {}", first.describe()),
                    )
                    .with_label(format!("expected {}", one_of(&TOP_LEVEL))),
                );
            }
        }
    }
    // The time master is the primary; without masters the chat servers elect one among
    // themselves, and with fewer than two of them there are no clocks to bring together.
    let count = |kind| topology.nodes.iter().filter(|n| n.kind == kind).count();
    if topology.policies.clock.is_some()
        && count(NodeKind::Master) == 0
        && count(NodeKind::Chat) < 2
        && let Some(span) = policy_spans.get("clock")
    {
        v.diags.push(
            Diagnostic::warning(*span, "no master to be the time master")
                .with_label(
                    "the primary runs the Berkeley rounds, or without masters a chat server the \
                     chat servers elect; here the clocks run as they are",
                )
                .with_hint(
                    "add a coordinator (`node coordinator { type master }`) or two chat servers",
                ),
        );
    }
    // TLS runs over TCP: a heartbeat datagram would cross an encrypted link in the clear.
    if topology.policies.heartbeat.udp
        && let Some(server) = topology.encrypted_servers().next()
        && let Some(span) = policy_spans.get("heartbeat")
    {
        v.diags.push(
            Diagnostic::error(*span, "heartbeats over UDP cannot cross an encrypted link")
                .with_label(format!(
                    "`{}` is encrypted (TLS runs over TCP), and these heartbeats would go to it \
                     in the clear",
                    server.name
                ))
                .with_hint("leave out `transport udp`, or the encryption"),
        );
    }
    diagnostics.sort_by_key(|d| d.span.start);
    topology
}

/// Node names known after pass 1, to check references.
#[derive(Default)]
struct Names {
    /// Every node by name.
    nodes: HashMap<String, Span>,
    /// For `count` nodes: the written name → the copies' names.
    groups: BTreeMap<String, Vec<String>>,
    /// The clusters that have masters.
    clusters: Vec<String>,
}

impl Names {
    fn of(nodes: &[Node]) -> Names {
        let mut names = Names::default();
        for node in nodes {
            if node.kind == NodeKind::Master && !names.clusters.contains(&node.cluster) {
                names.clusters.push(node.cluster.clone());
            }
            names.nodes.entry(node.name.clone()).or_insert(node.span);
            if let Some(group) = &node.group {
                names
                    .groups
                    .entry(group.clone())
                    .or_default()
                    .push(node.name.clone());
            }
        }
        names
    }

    fn suggestion(&self, name: &str) -> Option<String> {
        did_you_mean(
            name,
            self.nodes
                .keys()
                .map(String::as_str)
                .chain(self.groups.keys().map(String::as_str)),
        )
    }
}

struct Validator<'d> {
    diags: &'d mut Vec<Diagnostic>,
    names: Names,
    /// Nodes left out of the model because their type is wrong: name and `count` group.
    broken: Vec<(String, Option<String>)>,
    /// Cluster names already reported as malformed.
    bad_clusters: Vec<String>,
}

impl Validator<'_> {
    // ----- globals -----

    fn global(&mut self, command: &Command, globals: &mut Globals) {
        let usage = "set NAME VALUE";
        let Some(args) = self.args(command, 2, usage) else {
            return;
        };
        let Some((name, _)) = self.word_text(&args[0], usage) else {
            return;
        };
        let Some((value, span)) = self.word_text(&args[1], usage) else {
            return;
        };
        if let Some(previous) = globals.all.iter_mut().find(|(n, _)| n == name) {
            self.diags.push(
                Diagnostic::warning(
                    args[0].span,
                    format!("`{name}` is set twice; the later value is used"),
                )
                .with_label("set again here"),
            );
            previous.1 = value.to_string();
        } else {
            globals.all.push((name.to_string(), value.to_string()));
        }
        match name {
            "SYSTEM_NAME" => globals.system_name = value.to_string(),
            "VERSION" => globals.version = Some(value.to_string()),
            "LOG_LEVEL" => match LogLevel::parse(value) {
                Some(level) => globals.log_level = level,
                None => self.diags.push(
                    Diagnostic::error(span, format!("unknown log level `{value}`"))
                        .with_label(format!("expected {}", one_of(&LogLevel::NAMES)))
                        .with_hint_opt(did_you_mean(value, LogLevel::NAMES)),
                ),
            },
            "CLUSTER_SECRET" if value.is_empty() => {
                self.error(
                    span,
                    "CLUSTER_SECRET is empty",
                    "leave it out to run without authentication, or give a secret",
                );
            }
            "CLUSTER_SECRET" => globals.cluster_secret = Some(value.to_string()),
            "PEER_SECRET" if value.is_empty() => {
                self.error(
                    span,
                    "PEER_SECRET is empty",
                    "leave it out (tcluster makes one per run), or give a secret",
                );
            }
            "PEER_SECRET" => globals.peer_secret = Some(value.to_string()),
            "TIME_SCALE" => match value.parse::<f64>() {
                Ok(scale) if scale.is_finite() && scale > 0.0 && scale <= 1000.0 => {
                    globals.time_scale = scale
                }
                _ => self.error(
                    span,
                    format!(
                        "TIME_SCALE must be a number above 0 and at most 1000, found `{value}`"
                    ),
                    "for example 0.5 runs timers twice as fast",
                ),
            },
            "STATE_DIR" if value.is_empty() => {
                self.error(span, "STATE_DIR is empty", "give a directory")
            }
            "STATE_DIR" => globals.state_dir = Some(value.to_string()),
            "TLS" => match value {
                "on" => globals.tls = true,
                "off" => globals.tls = false,
                _ => self.error(
                    span,
                    format!("TLS must be \"on\" or \"off\", found `{value}`"),
                    "\"on\" encrypts every link (TLS 1.3)",
                ),
            },
            "TLS_DIR" if value.is_empty() => self.error(
                span,
                "TLS_DIR is empty",
                "leave it out (tcluster makes the certificates), or name a directory",
            ),
            "TLS_DIR" => globals.tls_dir = Some(value.to_string()),
            _ => {}
        }
    }

    /// `KIND NAME { … }` as `policy`, `user` and `scenario` write it: the name, the one block
    /// (`what_block` says what it holds, for the error), and a name not declared before (kept
    /// in `seen`; `twice` is the hint when it was).
    fn named_block<'c>(
        &mut self,
        command: &'c Command,
        (kind, usage, what_block): (&str, &str, &str),
        seen: &mut HashMap<String, Span>,
        twice: Option<&str>,
    ) -> Option<(&'c str, Span, &'c [Command])> {
        let (name, name_span) = self.name_word(command, 1, kind, usage)?;
        let block = match command.words.len() {
            3 => command.words[2].block(),
            _ => None,
        };
        let Some(block) = block else {
            self.error(
                command.span,
                format!("{kind} `{name}` needs one `{{ … }}` {what_block}"),
                format!("expected `{usage}`"),
            );
            return None;
        };
        if let Some(first) = seen.insert(name.to_string(), name_span) {
            let d = Diagnostic::error(name_span, format!("{kind} `{name}` is declared twice"))
                .with_label("declared again here")
                .with_related(first, "first declared here");
            self.diags.push(match twice {
                Some(hint) => d.with_hint(hint),
                None => d,
            });
            return None;
        }
        Some((name, name_span, block))
    }
}

/// For `latency 10 ms`: "10ms", the value the user meant.
fn number_and_unit_apart(args: &[Word]) -> Option<String> {
    let [number, unit] = args else { return None };
    let (number, unit) = (number.text()?, unit.text()?);
    let is_unit = !unit.is_empty() && unit.chars().all(|c| c.is_ascii_alphabetic() || c == '%');
    (number.parse::<f64>().is_ok() && is_unit).then(|| format!("{number}{unit}"))
}

fn plural(n: usize, word: &str) -> String {
    match n {
        0 => format!("no {word}s"),
        1 => format!("one {word}"),
        n => format!("{n} {word}s"),
    }
}

/// "a, b, c … and 97 more": names in a message without flooding the terminal.
fn preview<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(4).map(AsRef::as_ref).collect();
    match names.len() {
        n if n > 4 => format!("{} … and {} more", shown.join(", "), n - 4),
        _ => shown.join(", "),
    }
}
