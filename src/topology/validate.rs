//! Validation: syntax tree → [`Topology`], with a diagnostic for everything that is wrong.
//!
//! It runs in two passes. The first reads every `node` (expanding `count`), so that connections
//! and scenarios may name nodes declared further down the file. The second reads everything
//! else and checks the whole: unique names and addresses, known node names with suggestions,
//! one primary, workers with a master. Unknown keys inside known blocks are warnings, because
//! students experiment; everything that would make the cluster behave differently from what the
//! file says is an error.

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
const NODE_KEYS: [&str; 10] = [
    "type",
    "role",
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
const POLICIES: [&str; 7] = [
    "load_balancing",
    "heartbeat",
    "retry",
    "replication",
    "election",
    "security",
    "chat",
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
}

impl Names {
    fn of(nodes: &[Node]) -> Names {
        let mut names = Names::default();
        for node in nodes {
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
}

impl Validator<'_> {
    // ----- small helpers shared by every block -----

    fn error(&mut self, span: Span, message: impl Into<String>, label: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(span, message).with_label(label));
    }

    /// The arguments of `command` (its words after the name), requiring exactly `n` of them.
    fn args<'c>(&mut self, command: &'c Command, n: usize, usage: &str) -> Option<&'c [Word]> {
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
    fn text<'c>(&mut self, command: &'c Command, usage: &str) -> Option<(&'c str, Span)> {
        let word = &self.args(command, 1, usage)?[0];
        self.word_text(word, usage)
    }

    fn word_text<'c>(&mut self, word: &'c Word, usage: &str) -> Option<(&'c str, Span)> {
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
    fn value<T>(
        &mut self,
        command: &Command,
        usage: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (text, span) = self.text(command, usage)?;
        self.parsed(text, span, parse)
    }

    fn parsed<T>(
        &mut self,
        text: &str,
        span: Span,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.error(span, message, "invalid value");
                None
            }
        }
    }

    /// The block of `key { … }`.
    fn block<'c>(&mut self, command: &'c Command, usage: &str) -> Option<&'c [Command]> {
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
    fn keys<'c>(
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

    fn integer(
        &mut self,
        command: &Command,
        usage: &str,
        range: std::ops::RangeInclusive<i64>,
        what: &str,
    ) -> Option<i64> {
        let (text, span) = self.text(command, usage)?;
        self.integer_text(text, span, range, what)
    }

    fn integer_text(
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

    fn name_word<'c>(
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
            _ => {}
        }
    }

    // ----- nodes -----

    fn node(&mut self, command: &Command, nodes: &mut Vec<Node>) {
        let usage = "node NAME { type worker … }";
        let Some((name, name_span)) = self.name_word(command, 1, "node", usage) else {
            return;
        };
        let block = match command.words.get(2) {
            Some(word) if command.words.len() == 3 => match word.block() {
                Some(block) => block,
                None => {
                    self.error(
                        word.span,
                        format!(
                            "expected the node's `{{ … }}` block, found {}",
                            word.describe()
                        ),
                        format!("expected `{usage}`"),
                    );
                    return;
                }
            },
            Some(_) => {
                let extra = command.words[2]
                    .span
                    .to(command.words[command.words.len() - 1].span);
                self.error(
                    extra,
                    format!("node `{name}` is written with extra words"),
                    format!("expected `{usage}`"),
                );
                return;
            }
            None => {
                self.diags.push(
                    Diagnostic::error(name_span, format!("node `{name}` has no block"))
                        .with_label("a node needs at least a type")
                        .with_hint(format!("write `node {name} {{ type worker }}`")),
                );
                return;
            }
        };

        let mut kind = None;
        let mut role = None;
        let mut role_span = None;
        let mut address = "127.0.0.1".to_string();
        let mut port = None;
        let mut resources = Resources::default();
        let mut services = Vec::new();
        let mut count = None;
        let mut command_line = None;
        let mut launch = Launch::Process;
        let mut launch_span = None;
        let mut bot = None;
        let mut bot_span = None;
        let what = format!("node `{name}`");
        self.keys(block, &what, &NODE_KEYS, |v, key, c| match key {
            "type" => {
                let Some((text, span)) = v.text(c, "type worker") else {
                    return;
                };
                kind = NodeKind::parse(text);
                if kind.is_none() {
                    let kinds: Vec<&str> = NodeKind::ALL.iter().map(|k| k.as_str()).collect();
                    v.diags.push(
                        Diagnostic::error(span, format!("unknown node type `{text}`"))
                            .with_label(format!("expected {}", one_of(&kinds)))
                            .with_hint_opt(did_you_mean(text, kinds.iter().copied())),
                    );
                }
            }
            "role" => {
                let Some((text, span)) = v.text(c, "role primary") else {
                    return;
                };
                role_span = Some(span);
                role = match text {
                    "primary" => Some(MasterRole::Primary),
                    "backup" => Some(MasterRole::Backup),
                    _ => {
                        v.diags.push(
                            Diagnostic::error(span, format!("unknown role `{text}`"))
                                .with_label("expected `primary` or `backup`")
                                .with_hint_opt(did_you_mean(text, ["primary", "backup"])),
                        );
                        None
                    }
                };
            }
            "address" => {
                let Some((text, span)) = v.text(c, "address \"127.0.0.1\"") else {
                    return;
                };
                if text.is_empty()
                    || !text
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':' | '_'))
                {
                    v.error(
                        span,
                        format!("`{text}` is not a host name or IP address"),
                        "expected an address such as 127.0.0.1",
                    );
                } else {
                    address = text.to_string();
                }
            }
            "port" => {
                if let [_, zero] = &c.words[..]
                    && zero.text() == Some("0")
                {
                    v.diags.push(
                        Diagnostic::error(zero.span, "port 0 is not a port a node can be reached on")
                            .with_label("expected a whole number from 1 to 65535")
                            .with_hint("leave `port` out and tcluster picks a free port when it launches the node"),
                    );
                    return;
                }
                port = v
                    .integer(c, "port 9000", 1..=65535, "port")
                    .map(|p| p as u16);
            }
            "resources" => {
                let Some(block) = v.block(c, "resources { cpu 2 memory 4GB }") else {
                    return;
                };
                v.keys(block, "resources", &RESOURCE_KEYS, |v, key, c| match key {
                    "cpu" => {
                        if let Some(n) = v.integer(c, "cpu 2", 1..=1024, "cpu") {
                            resources.cpu = n as u32;
                        }
                    }
                    "memory" => resources.memory = v.value(c, "memory 4GB", parse_size),
                    _ => resources.storage = v.value(c, "storage 20GB", parse_size),
                });
            }
            "services" => {
                let Some(block) = v.block(c, "services { monitor true }") else {
                    return;
                };
                for s in block {
                    let Some(service) = s.name() else { continue };
                    if let Some(on) = v.value(s, "NAME true", parse_bool) {
                        services.push((service.to_string(), on));
                    }
                }
            }
            "count" => {
                count = v
                    .integer(c, "count 3", 1..=i64::from(MAX_COUNT), "count")
                    .map(|n| n as u32);
            }
            "bot" => {
                bot_span = Some(c.name_span());
                let Some(block) = v.block(c, "bot { channels general; posts 2/s }") else {
                    return;
                };
                let mut settings = BotSettings::default();
                v.keys(block, "bot", &BOT_KEYS, |v, key, c| match key {
                    "channels" => {
                        let mut channels = Vec::new();
                        for word in &c.words[1..] {
                            let Some((text, span)) = v.word_text(word, "channels general lab")
                            else {
                                continue;
                            };
                            match crate::role::chat::check_name("channel", text, true) {
                                Ok(()) => channels.push(text.to_string()),
                                Err(e) => v.error(span, e, "not a channel name"),
                            }
                        }
                        if c.words.len() == 1 {
                            v.error(
                                c.span,
                                "`channels` names no channel",
                                "expected `channels general lab`",
                            );
                        } else if !channels.is_empty() {
                            settings.channels = channels;
                        }
                    }
                    "posts" => {
                        if let Some(rate) = v.value(c, "posts 2/s", parse_per_second) {
                            settings.posts_per_second = rate;
                        }
                    }
                    "jobs" => {
                        if let Some(rate) = v.value(c, "jobs 0.5/s", parse_per_second) {
                            settings.jobs_per_second = rate;
                        }
                    }
                    _ => {
                        let Some((text, span)) = v.text(c, "job \"sleep 200ms\"") else {
                            return;
                        };
                        if text.trim().is_empty() {
                            v.error(span, "the job is empty", "expected a job such as \"sleep 200ms\"");
                        } else {
                            settings.job = text.to_string();
                        }
                    }
                });
                bot = Some(settings);
            }
            "command" => {
                let Some((text, span)) = v.text(c, "command \"python3 my_worker.py\"") else {
                    return;
                };
                if text.trim().is_empty() {
                    v.error(
                        span,
                        "the command is empty",
                        "expected a program to run, such as \"python3 my_worker.py\"",
                    );
                } else {
                    command_line = Some(text.to_string());
                }
            }
            _ => {
                let Some((text, span)) = v.text(c, "launch process") else {
                    return;
                };
                launch_span = Some(span);
                match text {
                    "process" => launch = Launch::Process,
                    "inproc" => launch = Launch::Inproc,
                    _ => v.diags.push(
                        Diagnostic::error(span, format!("unknown launch mode `{text}`"))
                            .with_label("expected `process` or `inproc`")
                            .with_hint_opt(did_you_mean(text, ["process", "inproc"])),
                    ),
                }
            }
        });

        let has_type = block.iter().any(|c| c.name() == Some("type"));
        if !has_type {
            self.diags.push(
                Diagnostic::error(name_span, format!("node `{name}` has no `type`"))
                    .with_label("every node needs a type")
                    .with_hint("add `type worker` (or master, client, chat, bot)"),
            );
        }
        let Some(kind) = kind else {
            // Keep the names of a node whose type is wrong, so that references to it do not
            // add "unknown node" errors to the one that matters.
            match count {
                Some(count) => self
                    .broken
                    .extend((1..=count).map(|i| (format!("{name}-{i}"), Some(name.to_string())))),
                None => self.broken.push((name.to_string(), None)),
            }
            return;
        };
        if let (Some(span), true) = (role_span, kind != NodeKind::Master) {
            self.error(
                span,
                format!("only masters have a role, and `{name}` is a {kind}"),
                "remove this, or make the node `type master`",
            );
            role = None;
        }
        if let (Some(span), true) = (bot_span, kind != NodeKind::Bot) {
            self.error(
                span,
                format!("only bots have a `bot` block, and `{name}` is a {kind}"),
                "remove this, or make the node `type bot`",
            );
            bot = None;
        }
        if kind == NodeKind::Bot && bot.is_none() {
            bot = Some(BotSettings::default());
        }
        if let (Some(span), Some(_), Launch::Inproc) = (launch_span, &command_line, launch) {
            self.error(
                span,
                format!("node `{name}` runs an outside program, which cannot run in-process"),
                "remove `launch inproc`, or remove `command`",
            );
        }

        let template = Node {
            name: name.to_string(),
            group: None,
            kind,
            role,
            address,
            port,
            resources,
            services,
            bot,
            command: command_line,
            launch,
            span: name_span,
        };
        let Some(count) = count else {
            nodes.push(template);
            return;
        };
        for i in 1..=count {
            let port = match template.port.map(|p| u32::from(p) + i - 1) {
                Some(p) if p > 65535 => {
                    self.diags.push(
                        Diagnostic::error(
                            name_span,
                            format!(
                                "`count {count}` from port {} runs past port 65535",
                                template.port.unwrap_or(0)
                            ),
                        )
                        .with_label(format!("copy {i} would need port {p}"))
                        .with_hint("lower the port or the count"),
                    );
                    return;
                }
                p => p.map(|p| p as u16),
            };
            nodes.push(Node {
                name: format!("{name}-{i}"),
                group: Some(name.to_string()),
                port,
                ..template.clone()
            });
        }
    }

    /// Checks the nodes as a whole: unique names, unique endpoints, one primary, a master for
    /// the workers. Gives masters without a role theirs.
    fn check_nodes(&mut self, nodes: &mut Vec<Node>) {
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut keep = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            match by_name.get(&node.name) {
                Some(&first) => {
                    let from_count = node
                        .group
                        .as_ref()
                        .map(|g| format!(" (made by `count` on `{g}`)"))
                        .unwrap_or_default();
                    self.diags.push(
                        Diagnostic::error(
                            node.span,
                            format!("duplicate node name `{}`{from_count}", node.name),
                        )
                        .with_label("declared again here")
                        .with_related(nodes[first].span, "first declared here")
                        .with_hint("every node needs its own name"),
                    );
                }
                None => {
                    by_name.insert(node.name.clone(), i);
                    keep.push(i);
                }
            }
        }
        let mut unique: Vec<Node> = keep.into_iter().map(|i| nodes[i].clone()).collect();

        // Two nodes cannot listen on one address and port. Report each pair of declarations once,
        // not once per copy, so two clashing `count 100` nodes give one error.
        let mut endpoints: HashMap<(String, u16), usize> = HashMap::new();
        let mut reported: Vec<(Span, Span)> = Vec::new();
        for (i, node) in unique.iter().enumerate() {
            let Some(port) = node.port else { continue };
            let host = if node.address == "localhost" {
                "127.0.0.1"
            } else {
                node.address.as_str()
            };
            if let Some(&first) = endpoints.get(&(host.to_string(), port)) {
                let other = &unique[first];
                if reported.contains(&(other.span, node.span)) {
                    continue;
                }
                reported.push((other.span, node.span));
                self.diags.push(
                    Diagnostic::error(node.span, format!("`{}` and `{}` both use {}:{port}", node.name, other.name, node.address))
                        .with_label(format!("`{}` is on {}", node.name, node.endpoint()))
                        .with_related(other.span, format!("`{}` is already there", other.name))
                        .with_hint("give each node its own port (with `count`, ports are counted up from the one given)"),
                );
            } else {
                endpoints.insert((host.to_string(), port), i);
            }
        }

        // Masters: at most one primary; if none is named, the first master is the primary.
        let masters: Vec<usize> = (0..unique.len())
            .filter(|&i| unique[i].kind == NodeKind::Master)
            .collect();
        let primaries: Vec<usize> = masters
            .iter()
            .copied()
            .filter(|&i| unique[i].role == Some(MasterRole::Primary))
            .collect();
        if let [first, second, ..] = primaries[..] {
            self.diags.push(
                Diagnostic::error(
                    unique[second].span,
                    format!(
                        "two primaries: `{}` and `{}`",
                        unique[first].name, unique[second].name
                    ),
                )
                .with_label("also `role primary`")
                .with_related(unique[first].span, "the first primary")
                .with_hint("one master is the primary; make the others `role backup`"),
            );
        }
        if primaries.is_empty() && !masters.is_empty() {
            if let Some(&i) = masters.iter().find(|&&i| unique[i].role.is_none()) {
                unique[i].role = Some(MasterRole::Primary);
            } else {
                self.diags.push(
                    Diagnostic::error(
                        unique[masters[0]].span,
                        "every master is a backup, so none would serve",
                    )
                    .with_label("`role backup`")
                    .with_hint("make one master `role primary`"),
                );
            }
        }
        for &i in &masters {
            unique[i].role.get_or_insert(MasterRole::Backup);
        }
        if masters.is_empty()
            && let Some(worker) = unique.iter().find(|n| n.kind == NodeKind::Worker)
        {
            self.diags.push(
                Diagnostic::error(
                    worker.span,
                    format!("worker `{}` has no master to register with", worker.name),
                )
                .with_label("no node has `type master`")
                .with_hint("add a coordinator: `node coordinator { type master; port 9000 }`"),
            );
        }
        *nodes = unique;
    }

    // ----- references to nodes -----

    /// Resolves a node name in a connection: a node, or every copy of a `count` node.
    fn node_or_group(&mut self, name: &str, span: Span) -> Option<Vec<String>> {
        if self.names.nodes.contains_key(name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(copies) = self.names.groups.get(name) {
            return Some(copies.clone());
        }
        self.unknown_node(name, span);
        None
    }

    /// Resolves a node name in a scenario step: exactly one node.
    fn one_node(&mut self, word: &Word, usage: &str) -> Option<String> {
        let (name, span) = self.word_text(word, usage)?;
        if self.names.nodes.contains_key(name) {
            return Some(name.to_string());
        }
        if let Some(copies) = self.names.groups.get(name) {
            let hint = format!("name one copy: {}", preview(copies));
            self.diags.push(
                Diagnostic::error(
                    span,
                    format!(
                        "`{name}` is a group of {} nodes made by `count`",
                        copies.len()
                    ),
                )
                .with_label("a step acts on one node")
                .with_hint(hint),
            );
            return None;
        }
        self.unknown_node(name, span);
        None
    }

    fn unknown_node(&mut self, name: &str, span: Span) {
        // `worker-9` when `count 3` made worker-1 … worker-3: say how many copies there are.
        let group_hint = name.rsplit_once('-').and_then(|(group, n)| {
            let copies = self.names.groups.get(group)?;
            n.parse::<u32>().ok()?;
            Some(format!(
                "`count` on `{group}` made {} copies: {}",
                copies.len(),
                preview(copies)
            ))
        });
        let hint = group_hint.or_else(|| self.names.suggestion(name));
        self.diags.push(
            Diagnostic::error(span, format!("unknown node `{name}`"))
                .with_label("no node has this name")
                .with_hint_opt(hint.or_else(|| {
                    (!self.names.nodes.is_empty()).then(|| {
                        let mut names: Vec<&String> = self.names.nodes.keys().collect();
                        names.sort();
                        format!("the nodes are {}", preview(&names))
                    })
                })),
        );
    }

    // ----- connections -----

    fn connection(&mut self, command: &Command, connections: &mut Vec<Connection>) {
        let usage = "connection A -> B { latency 10ms }";
        let words = &command.words;
        let shape_ok = (words.len() == 4 || words.len() == 5)
            && matches!(words[2].kind, WordKind::Arrow | WordKind::BiArrow)
            && words[1].text().is_some()
            && words[3].text().is_some()
            && words.get(4).is_none_or(|w| w.block().is_some());
        if !shape_ok {
            let mut d = Diagnostic::error(
                command.span,
                "this connection is not written as `connection A -> B`",
            )
            .with_label(format!("expected `{usage}` (or `<->` for both ways)"));
            if words.len() >= 3 && words[2].text() == Some("<-") {
                d = d.with_hint("links go left to right: write `B -> A`");
            }
            self.diags.push(d);
            return;
        }
        let both_ways = matches!(words[2].kind, WordKind::BiArrow);
        let (a, b) = (
            words[1].text().unwrap_or_default(),
            words[3].text().unwrap_or_default(),
        );
        let mut link = Link::default();
        if let Some(block) = words.get(4).and_then(Word::block) {
            self.keys(block, "connection", &LINK_KEYS, |v, key, c| match key {
                "protocol" => {
                    let Some((text, span)) = v.text(c, "protocol \"tcp\"") else {
                        return;
                    };
                    if !text.eq_ignore_ascii_case("tcp") {
                        v.diags.push(
                            Diagnostic::warning(
                                span,
                                format!("protocol `{text}` is shown but every link carries TCP"),
                            )
                            .with_label("only tcp is carried"),
                        );
                    }
                    link.protocol = Some(text.to_string());
                }
                "bandwidth" => link.bandwidth = v.value(c, "bandwidth 1Gbps", parse_rate),
                "latency" => {
                    link.latency = v
                        .value(c, "latency 10ms", parse_duration)
                        .unwrap_or_default()
                }
                "jitter" => {
                    link.jitter = v.value(c, "jitter 5ms", parse_duration).unwrap_or_default()
                }
                "loss" => link.loss = v.value(c, "loss 1%", parse_percent).unwrap_or_default(),
                _ => link.encrypted = v.value(c, "encrypted true", parse_bool).unwrap_or_default(),
            });
        }
        if a == b {
            self.diags.push(
                Diagnostic::error(
                    words[1].span.to(words[3].span),
                    format!("a link from `{a}` to itself"),
                )
                .with_label("both ends are the same node")
                .with_hint("a node always reaches itself; link it to another node"),
            );
            return;
        }
        let (Some(froms), Some(tos)) = (
            self.node_or_group(a, words[1].span),
            self.node_or_group(b, words[3].span),
        ) else {
            return;
        };
        for from in &froms {
            for to in &tos {
                let mut pairs = vec![(from, to)];
                if both_ways {
                    pairs.push((to, from));
                }
                for (f, t) in pairs {
                    if let Some(existing) =
                        connections.iter_mut().find(|c| &c.from == f && &c.to == t)
                    {
                        self.diags.push(
                            Diagnostic::warning(command.span, format!("the link `{f}` -> `{t}` is declared twice; this later one is used"))
                                .with_label("declared again here")
                                .with_related(existing.span, "first declared here"),
                        );
                        existing.link = link.clone();
                        existing.span = command.span;
                        continue;
                    }
                    connections.push(Connection {
                        from: f.clone(),
                        to: t.clone(),
                        both_ways,
                        link: link.clone(),
                        span: command.span,
                    });
                }
            }
        }
    }

    // ----- policies -----

    fn policy(
        &mut self,
        command: &Command,
        policies: &mut Policies,
        seen: &mut HashMap<String, Span>,
    ) {
        let usage = "policy NAME { … }";
        let Some((name, name_span)) = self.name_word(command, 1, "policy", usage) else {
            return;
        };
        let Some(block) = (match command.words.len() {
            3 => command.words[2].block(),
            _ => None,
        }) else {
            self.error(
                command.span,
                format!("policy `{name}` needs one `{{ … }}` block"),
                format!("expected `{usage}`"),
            );
            return;
        };
        if let Some(first) = seen.insert(name.to_string(), name_span) {
            self.diags.push(
                Diagnostic::error(name_span, format!("policy `{name}` is declared twice"))
                    .with_label("declared again here")
                    .with_related(first, "first declared here")
                    .with_hint("merge the two blocks"),
            );
            return;
        }
        let what = format!("policy `{name}`");
        match name {
            "load_balancing" => {
                let lb = &mut policies.load_balancing;
                self.keys(
                    block,
                    &what,
                    &["algorithm", "health_check_interval", "failover"],
                    |v, key, c| match key {
                        "algorithm" => {
                            let Some((text, span)) = v.text(c, "algorithm round_robin") else {
                                return;
                            };
                            match Algorithm::parse(text) {
                                Some(a) => lb.algorithm = a,
                                None => v.diags.push(
                                    Diagnostic::error(
                                        span,
                                        format!("unknown load-balancing algorithm `{text}`"),
                                    )
                                    .with_label(format!("expected {}", one_of(&Algorithm::NAMES)))
                                    .with_hint_opt(did_you_mean(text, Algorithm::NAMES)),
                                ),
                            }
                        }
                        "health_check_interval" => {
                            if let Some(d) = v.positive_duration(c, "health_check_interval 30") {
                                lb.health_check_interval = d;
                            }
                        }
                        _ => {
                            if let Some(b) = v.value(c, "failover true", parse_bool) {
                                lb.failover = b;
                            }
                        }
                    },
                );
            }
            "heartbeat" => self.heartbeat(block, &what, &mut policies.heartbeat),
            "retry" => {
                let retry = &mut policies.retry;
                self.keys(
                    block,
                    &what,
                    &["max_attempts", "backoff"],
                    |v, key, c| match key {
                        "max_attempts" => {
                            if let Some(n) =
                                v.integer(c, "max_attempts 3", 1..=1000, "max_attempts")
                            {
                                retry.max_attempts = n as u32;
                            }
                        }
                        _ => {
                            if let Some(d) = v.value(c, "backoff 500ms", parse_duration) {
                                retry.backoff = d;
                            }
                        }
                    },
                );
            }
            "replication" => {
                let replication = &mut policies.replication;
                self.keys(block, &what, &["mode"], |v, _, c| {
                    let Some((text, span)) = v.text(c, "mode sync") else {
                        return;
                    };
                    match text {
                        "sync" => replication.mode = ReplicationMode::Sync,
                        "async" => replication.mode = ReplicationMode::Async,
                        _ => v.diags.push(
                            Diagnostic::error(span, format!("unknown replication mode `{text}`"))
                                .with_label("expected `sync` or `async`")
                                .with_hint_opt(did_you_mean(text, ["sync", "async"])),
                        ),
                    }
                });
            }
            "security" => {
                let security = &mut policies.security;
                self.keys(block, &what, &["allow_classic"], |v, _, c| {
                    if let Some(allow) = v.value(c, "allow_classic true", parse_bool) {
                        security.allow_classic = allow;
                    }
                });
            }
            "chat" => {
                let chat = &mut policies.chat;
                self.keys(block, &what, &["rate", "burst"], |v, key, c| match key {
                    "rate" => {
                        if let Some(rate) = v.value(c, "rate 20/s", parse_per_second) {
                            chat.rate_per_second = rate;
                        }
                    }
                    _ => {
                        if let Some(n) = v.integer(c, "burst 40", 1..=100_000, "burst") {
                            chat.burst = n as u32;
                        }
                    }
                });
            }
            "election" => {
                self.keys(block, &what, &["algorithm"], |v, _, c| {
                    let Some((text, span)) = v.text(c, "algorithm bully") else {
                        return;
                    };
                    if text != "bully" {
                        v.error(
                            span,
                            format!("unknown election algorithm `{text}`"),
                            "tcluster offers `bully`",
                        );
                    }
                });
            }
            _ => {
                self.diags.push(
                    Diagnostic::warning(
                        name_span,
                        format!("unknown policy `{name}`; it is kept and shown but has no effect"),
                    )
                    .with_label(format!("known policies: {}", POLICIES.join(", ")))
                    .with_hint_opt(did_you_mean(name, POLICIES)),
                );
                let entries = block
                    .iter()
                    .filter_map(|c| {
                        let key = c.name()?.to_string();
                        let value: Vec<String> = c.words[1..]
                            .iter()
                            .map(|w| w.text().map_or_else(|| w.describe(), str::to_string))
                            .collect();
                        Some((key, value.join(" ")))
                    })
                    .collect();
                policies.other.insert(name.to_string(), entries);
                return;
            }
        }
        policies.declared.push(name.to_string());
    }

    fn positive_duration(&mut self, command: &Command, usage: &str) -> Option<Duration> {
        let (text, span) = self.text(command, usage)?;
        let d = self.parsed(text, span, parse_duration)?;
        if d.is_zero() {
            self.error(
                span,
                "this must be longer than zero",
                format!("expected `{usage}`"),
            );
            return None;
        }
        Some(d)
    }

    fn heartbeat(&mut self, block: &[Command], what: &str, heartbeat: &mut Heartbeat) {
        let mut interval = None;
        let mut timeout = None;
        let mut misses = None;
        let mut suspect = None;
        let mut spans: HashMap<&str, Span> = HashMap::new();
        self.keys(
            block,
            what,
            &["interval", "timeout", "misses", "suspect_after"],
            |v, key, c| {
                spans.insert(
                    if key == "interval" {
                        "interval"
                    } else {
                        "limit"
                    },
                    c.span,
                );
                match key {
                    "interval" => interval = v.positive_duration(c, "interval 500ms"),
                    "timeout" => timeout = v.positive_duration(c, "timeout 2s"),
                    "suspect_after" => suspect = v.positive_duration(c, "suspect_after 1s"),
                    _ => {
                        misses = v
                            .integer(c, "misses 4", 1..=1000, "misses")
                            .map(|n| n as u32)
                    }
                }
            },
        );
        let interval = interval.unwrap_or(heartbeat.interval);
        let limit_span = spans.get("limit").copied().unwrap_or_default();
        let timeout = match (timeout, misses) {
            (Some(_), Some(_)) => {
                self.error(
                    limit_span,
                    "give `timeout` or `misses`, not both",
                    "they say the same thing two ways",
                );
                return;
            }
            (Some(t), None) => t,
            (None, Some(m)) => interval * m,
            (None, None) => interval * 4,
        };
        if timeout <= interval {
            self.diags.push(
                Diagnostic::error(
                    limit_span,
                    "the heartbeat timeout must be longer than the interval",
                )
                .with_label("every node would be declared dead between two heartbeats")
                .with_hint("a timeout of 3 to 4 intervals is usual"),
            );
            return;
        }
        let suspect_after = suspect.unwrap_or((timeout / 2).max(interval));
        if suspect_after > timeout {
            self.error(
                limit_span,
                "`suspect_after` must not be longer than the timeout",
                "a node is suspect before it is dead",
            );
            return;
        }
        *heartbeat = Heartbeat {
            interval,
            suspect_after,
            timeout,
        };
    }

    // ----- users -----

    fn user(&mut self, command: &Command, seen: &mut HashMap<String, Span>) -> Option<User> {
        let usage = "user NAME { password \"…\" role student }";
        let (name, name_span) = self.name_word(command, 1, "user", usage)?;
        let block = match command.words.len() {
            3 => command.words[2].block(),
            _ => None,
        };
        let Some(block) = block else {
            self.error(
                command.span,
                format!("user `{name}` needs one `{{ … }}` block"),
                format!("expected `{usage}`"),
            );
            return None;
        };
        if let Some(first) = seen.insert(name.to_string(), name_span) {
            self.diags.push(
                Diagnostic::error(name_span, format!("user `{name}` is declared twice"))
                    .with_label("declared again here")
                    .with_related(first, "first declared here"),
            );
            return None;
        }
        let mut password = None;
        let mut role = UserRole::Student;
        self.keys(
            block,
            &format!("user `{name}`"),
            &["password", "role"],
            |v, key, c| match key {
                "password" => {
                    password = v.text(c, "password \"secret\"").map(|(t, _)| t.to_string())
                }
                _ => {
                    let Some((text, span)) = v.text(c, "role student") else {
                        return;
                    };
                    match text {
                        "operator" => role = UserRole::Operator,
                        "student" => role = UserRole::Student,
                        _ => v.diags.push(
                            Diagnostic::error(span, format!("unknown user role `{text}`"))
                                .with_label("expected `operator` or `student`")
                                .with_hint_opt(did_you_mean(text, ["operator", "student"])),
                        ),
                    }
                }
            },
        );
        let Some(password) = password else {
            self.diags.push(
                Diagnostic::error(name_span, format!("user `{name}` has no password"))
                    .with_label("accounts log in with a password")
                    .with_hint("add `password \"…\"` to the block"),
            );
            return None;
        };
        Some(User {
            name: name.to_string(),
            password,
            role,
        })
    }

    // ----- scenarios -----

    fn scenario(
        &mut self,
        command: &Command,
        seen: &mut HashMap<String, Span>,
    ) -> Option<Scenario> {
        let usage = "scenario NAME { at 2s kill worker-1; … }";
        let (name, name_span) = self.name_word(command, 1, "scenario", usage)?;
        let block = match command.words.len() {
            3 => command.words[2].block(),
            _ => None,
        };
        let Some(block) = block else {
            self.error(
                command.span,
                format!("scenario `{name}` needs one `{{ … }}` block of steps"),
                format!("expected `{usage}`"),
            );
            return None;
        };
        if let Some(first) = seen.insert(name.to_string(), name_span) {
            self.diags.push(
                Diagnostic::error(name_span, format!("scenario `{name}` is declared twice"))
                    .with_label("declared again here")
                    .with_related(first, "first declared here"),
            );
            return None;
        }
        let steps = block.iter().filter_map(|step| self.step(step)).collect();
        Some(Scenario {
            name: name.to_string(),
            steps,
        })
    }

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
                format!("expected {}", one_of(&Action::NAMES)),
            );
            return None;
        };
        let (action_name, action_span) = self.word_text(action_word, "at 2s ACTION")?;
        let args = &words[3..];
        let action = match action_name {
            "submit" => self.submit(args, action_span),
            "kill" | "pause" | "resume" | "restart" => {
                let usage = format!("at 5s {action_name} worker-1");
                let node = self
                    .step_args(args, 1, action_span, &usage)
                    .and_then(|a| self.one_node(&a[0], &usage))?;
                Some(match action_name {
                    "kill" => Action::Kill(node),
                    "pause" => Action::Pause(node),
                    "resume" => Action::Resume(node),
                    _ => Action::Restart(node),
                })
            }
            "partition" => {
                let usage = "at 5s partition A B   (or `A -> B` one way, or `A` from all)";
                match args {
                    [a] => Some(Action::Partition {
                        a: self.one_node(a, usage)?,
                        b: None,
                        one_way: false,
                    }),
                    [a, b] if b.text().is_some() => {
                        let (a, b) = (self.one_node(a, usage), self.one_node(b, usage));
                        let (a, b) = (a?, b?);
                        self.distinct(&a, &b, args)?;
                        Some(Action::Partition {
                            a,
                            b: Some(b),
                            one_way: false,
                        })
                    }
                    [a, arrow, b] if matches!(arrow.kind, WordKind::Arrow | WordKind::BiArrow) => {
                        let (a, b) = (self.one_node(a, usage), self.one_node(b, usage));
                        let (a, b) = (a?, b?);
                        self.distinct(&a, &b, args)?;
                        Some(Action::Partition {
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
            "heal" => {
                let usage = "at 8s heal   (or `heal A`, `heal A B`)";
                match args {
                    [] => Some(Action::Heal { a: None, b: None }),
                    [a] => Some(Action::Heal {
                        a: Some(self.one_node(a, usage)?),
                        b: None,
                    }),
                    [a, b] => {
                        let (a, b) = (self.one_node(a, usage), self.one_node(b, usage));
                        Some(Action::Heal {
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
            "latency" => {
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
                Some(Action::Latency {
                    a,
                    b,
                    latency,
                    jitter,
                })
            }
            "loss" => {
                let usage = "at 3s loss A B 10%";
                let (a, b, value) = self.link_step(args, action_span, usage, &[3])?;
                let loss = self.parsed(value.0, value.1, parse_percent)?;
                Some(Action::Loss { a, b, loss })
            }
            "skew" => {
                let usage = "at 3s skew worker-1 -2s";
                let args = self.step_args(args, 2, action_span, usage)?;
                let node = self.one_node(&args[0], usage);
                let (text, span) = self.word_text(&args[1], usage)?;
                let offset_ms = self.parsed(text, span, parse_signed_duration_ms)?;
                Some(Action::Skew {
                    node: node?,
                    offset_ms,
                })
            }
            "say" => {
                let texts: Option<Vec<&str>> = args.iter().map(Word::text).collect();
                match texts {
                    Some(texts) if !texts.is_empty() => Some(Action::Say(texts.join(" "))),
                    _ => {
                        self.step_usage(args, action_span, "at 1s say \"Watch worker-2\"");
                        None
                    }
                }
            }
            other => {
                self.diags.push(
                    Diagnostic::error(action_span, format!("unknown scenario action `{other}`"))
                        .with_label(format!("expected {}", one_of(&Action::NAMES)))
                        .with_hint_opt(did_you_mean(other, Action::NAMES)),
                );
                None
            }
        };
        Some(Step {
            at: at?,
            action: action?,
            span: command.span,
        })
    }

    fn distinct(&mut self, a: &str, b: &str, args: &[Word]) -> Option<()> {
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
    fn link_step<'c>(
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
    fn step_args<'c>(
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

    fn step_usage(&mut self, args: &[Word], action_span: Span, usage: &str) {
        let span = args.iter().fold(action_span, |s, w| s.to(w.span));
        self.error(
            span,
            "this step is not written the way its action expects",
            format!("expected `{usage}`"),
        );
    }

    fn submit(&mut self, args: &[Word], action_span: Span) -> Option<Action> {
        let usage = "at 2s submit \"sleep 1s\" [count 10] [priority 5]";
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
                other => {
                    self.diags.push(
                        Diagnostic::error(key_span, format!("unknown submit option `{other}`"))
                            .with_label("expected `count` or `priority`")
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
        Some(Action::Submit {
            data: data.to_string(),
            count,
            priority,
        })
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
