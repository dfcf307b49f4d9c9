//! `node NAME { … }`: one node's settings, its `count` copies, and the nodes as a whole
//! (unique names and endpoints, one primary, a master for the workers); and references to nodes
//! from connections and scenarios, with "did you mean" and the copies a `count` made.

use super::*;
use crate::topology::names::check_name;

/// What a node block says, before the checks that need all of it.
struct NodeSettings {
    kind: Option<NodeKind>,
    role: Option<MasterRole>,
    role_span: Option<Span>,
    cluster: Option<(String, Span)>,
    address: String,
    port: Option<u16>,
    resources: Resources,
    services: Vec<(String, bool)>,
    count: Option<u32>,
    command: Option<String>,
    launch: Launch,
    launch_span: Option<Span>,
    bot: Option<BotSettings>,
    bot_span: Option<Span>,
    host: Option<(Remote, Span)>,
    identity: Option<(String, Span)>,
    remote_binary: Option<(String, Span)>,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            kind: None,
            role: None,
            role_span: None,
            cluster: None,
            address: "127.0.0.1".to_string(),
            port: None,
            resources: Resources::default(),
            services: Vec::new(),
            count: None,
            command: None,
            launch: Launch::Process,
            launch_span: None,
            bot: None,
            bot_span: None,
            host: None,
            identity: None,
            remote_binary: None,
        }
    }
}

impl Validator<'_> {
    /// `node NAME { … }`: adds the node (or its `count` copies) to `nodes`.
    pub(super) fn node(&mut self, command: &Command, nodes: &mut Vec<Node>) {
        let Some((name, name_span, block)) = self.node_block(command) else {
            return;
        };
        let mut s = self.node_settings(name, block);
        let has_type = block.iter().any(|c| c.name() == Some("type"));
        if !has_type {
            self.diags.push(
                Diagnostic::error(name_span, format!("node `{name}` has no `type`"))
                    .with_label("every node needs a type")
                    .with_hint("add `type worker` (or master, client, chat, bot)"),
            );
        }
        let Some(kind) = s.kind else {
            // Keep the names of a node whose type is wrong, so that references to it do not
            // add "unknown node" errors to the one that matters.
            match s.count {
                Some(count) => self
                    .broken
                    .extend((1..=count).map(|i| (format!("{name}-{i}"), Some(name.to_string())))),
                None => self.broken.push((name.to_string(), None)),
            }
            return;
        };
        self.settings_fit_kind(name, kind, &mut s);
        let template = Node {
            name: name.to_string(),
            group: None,
            kind,
            role: s.role,
            cluster: s
                .cluster
                .map_or_else(|| DEFAULT_CLUSTER.to_string(), |(name, _)| name),
            address: s.address,
            port: s.port,
            resources: s.resources,
            services: s.services,
            bot: s.bot,
            command: s.command,
            launch: s.launch,
            host: s.host.map(|(mut remote, _)| {
                remote.identity = s.identity.map(|(i, _)| i);
                if let Some((binary, _)) = s.remote_binary {
                    remote.binary = binary;
                }
                remote
            }),
            span: name_span,
        };
        match s.count {
            Some(count) => self.copies(template, count, nodes),
            None => nodes.push(template),
        }
    }

    /// The name and the block of `node NAME { … }`.
    fn node_block<'c>(&mut self, command: &'c Command) -> Option<(&'c str, Span, &'c [Command])> {
        let usage = "node NAME { type worker … }";
        let (name, name_span) = self.name_word(command, 1, "node", usage)?;
        match command.words.get(2) {
            Some(word) if command.words.len() == 3 => match word.block() {
                Some(block) => Some((name, name_span, block)),
                None => {
                    self.error(
                        word.span,
                        format!(
                            "expected the node's `{{ … }}` block, found {}",
                            word.describe()
                        ),
                        format!("expected `{usage}`"),
                    );
                    None
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
                None
            }
            None => {
                self.diags.push(
                    Diagnostic::error(name_span, format!("node `{name}` has no block"))
                        .with_label("a node needs at least a type")
                        .with_hint(format!("write `node {name} {{ type worker }}`")),
                );
                None
            }
        }
    }

    /// Every key of a node block.
    fn node_settings(&mut self, name: &str, block: &[Command]) -> NodeSettings {
        let mut s = NodeSettings::default();
        let what = format!("node `{name}`");
        self.keys(block, &what, &NODE_KEYS, |v, key, c| match key {
            "type" => s.kind = v.node_type(c),
            "role" => {
                if let Some((role, span)) = v.master_role(c) {
                    s.role_span = Some(span);
                    s.role = role;
                }
            }
            "cluster" => {
                if let Some((text, span)) = v.text(c, "cluster east") {
                    // A bad name is said once; the node keeps it, so no "no master" follows.
                    if !v.cluster_name(text, span) {
                        v.bad_clusters.push(text.to_string());
                    }
                    s.cluster = Some((text.to_string(), span));
                }
            }
            "address" => {
                if let Some(address) = v.address(c) {
                    s.address = address;
                }
            }
            "host" => {
                let Some((text, span)) = v.text(c, "host \"ssh://student@lab-12\"") else {
                    return;
                };
                match Remote::parse(text) {
                    Ok(remote) => s.host = Some((remote, span)),
                    Err(e) => v.error(
                        span,
                        e,
                        "expected ssh://HOST, ssh://USER@HOST or ssh://USER@HOST:PORT",
                    ),
                }
            }
            "identity" | "remote_binary" => {
                let usage = if key == "identity" {
                    "identity \"~/.ssh/lab\""
                } else {
                    "remote_binary \"/opt/tcluster/bin/tcluster\""
                };
                let Some((text, span)) = v.text(c, usage) else {
                    return;
                };
                if text.trim().is_empty() {
                    v.error(
                        span,
                        format!("`{key}` is empty"),
                        format!("expected `{usage}`"),
                    );
                } else if key == "identity" {
                    s.identity = Some((text.to_string(), span));
                } else {
                    s.remote_binary = Some((text.to_string(), span));
                }
            }
            "port" => s.port = v.port(c),
            "resources" => v.resources(c, &mut s.resources),
            "services" => {
                let Some(block) = v.block(c, "services { monitor true }") else {
                    return;
                };
                for service in block {
                    let Some(name) = service.name() else { continue };
                    if let Some(on) = v.value(service, "NAME true", parse_bool) {
                        s.services.push((name.to_string(), on));
                    }
                }
            }
            "count" => {
                s.count = v
                    .integer(c, "count 3", 1..=i64::from(MAX_COUNT), "count")
                    .map(|n| n as u32);
            }
            "bot" => {
                s.bot_span = Some(c.name_span());
                if let Some(bot) = v.bot(c) {
                    s.bot = Some(bot);
                }
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
                    s.command = Some(text.to_string());
                }
            }
            _ => {
                if let Some((launch, span)) = v.launch(c) {
                    s.launch_span = Some(span);
                    if let Some(launch) = launch {
                        s.launch = launch;
                    }
                }
            }
        });
        s
    }

    /// Whether `text` is a cluster's name (letters, digits, `-` and `_`); says why not.
    fn cluster_name(&mut self, text: &str, span: Span) -> bool {
        match check_name("cluster", text, true) {
            Ok(()) => true,
            Err(e) => {
                self.error(span, e.to_string(), "expected a name such as `east`");
                false
            }
        }
    }

    fn node_type(&mut self, c: &Command) -> Option<NodeKind> {
        let (text, span) = self.text(c, "type worker")?;
        let kind = NodeKind::parse(text);
        if kind.is_none() {
            let kinds: Vec<&str> = NodeKind::ALL.iter().map(|k| k.as_str()).collect();
            self.diags.push(
                Diagnostic::error(span, format!("unknown node type `{text}`"))
                    .with_label(format!("expected {}", one_of(&kinds)))
                    .with_hint_opt(did_you_mean(text, kinds.iter().copied())),
            );
        }
        kind
    }

    /// The role written, if it is one, and where it is written.
    fn master_role(&mut self, c: &Command) -> Option<(Option<MasterRole>, Span)> {
        let (text, span) = self.text(c, "role primary")?;
        let role = match text {
            "primary" => Some(MasterRole::Primary),
            "backup" => Some(MasterRole::Backup),
            _ => {
                self.diags.push(
                    Diagnostic::error(span, format!("unknown role `{text}`"))
                        .with_label("expected `primary` or `backup`")
                        .with_hint_opt(did_you_mean(text, ["primary", "backup"])),
                );
                None
            }
        };
        Some((role, span))
    }

    fn address(&mut self, c: &Command) -> Option<String> {
        let (text, span) = self.text(c, "address \"127.0.0.1\"")?;
        if text.is_empty()
            || !text
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':' | '_'))
        {
            self.error(
                span,
                format!("`{text}` is not a host name or IP address"),
                "expected an address such as 127.0.0.1",
            );
            return None;
        }
        Some(text.to_string())
    }

    fn port(&mut self, c: &Command) -> Option<u16> {
        if let [_, zero] = &c.words[..]
            && zero.text() == Some("0")
        {
            self.diags.push(
                Diagnostic::error(zero.span, "port 0 is not a port a node can be reached on")
                    .with_label("expected a whole number from 1 to 65535")
                    .with_hint(
                        "leave `port` out and tcluster picks a free port when it launches the node",
                    ),
            );
            return None;
        }
        self.integer(c, "port 9000", 1..=65535, "port")
            .map(|p| p as u16)
    }

    fn resources(&mut self, c: &Command, resources: &mut Resources) {
        let Some(block) = self.block(c, "resources { cpu 2 memory 4GB }") else {
            return;
        };
        self.keys(block, "resources", &RESOURCE_KEYS, |v, key, c| match key {
            "cpu" => {
                if let Some(n) = v.integer(c, "cpu 2", 1..=1024, "cpu") {
                    resources.cpu = n as u32;
                }
            }
            "memory" => resources.memory = v.value(c, "memory 4GB", parse_size),
            _ => resources.storage = v.value(c, "storage 20GB", parse_size),
        });
    }

    /// `bot { channels …; posts …; jobs …; job "…" }`.
    fn bot(&mut self, c: &Command) -> Option<BotSettings> {
        let block = self.block(c, "bot { channels general; posts 2/s }")?;
        let mut settings = BotSettings::default();
        self.keys(block, "bot", &BOT_KEYS, |v, key, c| match key {
            "channels" => {
                let mut channels = Vec::new();
                for word in &c.words[1..] {
                    let Some((text, span)) = v.word_text(word, "channels general lab") else {
                        continue;
                    };
                    match check_name("channel", text, true) {
                        Ok(()) => channels.push(text.to_string()),
                        Err(e) => v.error(span, e.to_string(), "not a channel name"),
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
                    v.error(
                        span,
                        "the job is empty",
                        "expected a job such as \"sleep 200ms\"",
                    );
                } else {
                    settings.job = text.to_string();
                }
            }
        });
        Some(settings)
    }

    /// The launch mode written, if it is one, and where it is written.
    fn launch(&mut self, c: &Command) -> Option<(Option<Launch>, Span)> {
        let (text, span) = self.text(c, "launch process")?;
        let launch = match text {
            "process" => Some(Launch::Process),
            "inproc" => Some(Launch::Inproc),
            _ => {
                self.diags.push(
                    Diagnostic::error(span, format!("unknown launch mode `{text}`"))
                        .with_label("expected `process` or `inproc`")
                        .with_hint_opt(did_you_mean(text, ["process", "inproc"])),
                );
                None
            }
        };
        Some((launch, span))
    }

    /// Settings that only some kinds of node may have.
    fn settings_fit_kind(&mut self, name: &str, kind: NodeKind, s: &mut NodeSettings) {
        if let (Some(span), true) = (s.role_span, kind != NodeKind::Master) {
            self.error(
                span,
                format!("only masters have a role, and `{name}` is a {kind}"),
                "remove this, or make the node `type master`",
            );
            s.role = None;
        }
        if let (Some(span), true) = (s.bot_span, kind != NodeKind::Bot) {
            self.error(
                span,
                format!("only bots have a `bot` block, and `{name}` is a {kind}"),
                "remove this, or make the node `type bot`",
            );
            s.bot = None;
        }
        if kind == NodeKind::Bot && s.bot.is_none() {
            s.bot = Some(BotSettings::default());
        }
        // A server on another host is reached at that host's address, unless one is given.
        if let Some((remote, _)) = &s.host
            && matches!(kind, NodeKind::Master | NodeKind::Chat | NodeKind::Broker)
            && s.address == "127.0.0.1"
        {
            s.address = remote.host.clone();
        }
        if let (Some((_, span)), Launch::Inproc) = (&s.host, s.launch) {
            self.error(
                *span,
                format!("node `{name}` runs on another host, so it cannot run in this process"),
                "remove `launch inproc`, or remove `host`",
            );
            s.host = None;
        }
        if let (Some((_, span)), Some(_)) = (&s.host, &s.command) {
            self.error(
                *span,
                format!("node `{name}` runs an outside program, which tcluster starts only on this machine"),
                "start the program on that host yourself, pointed at the coordinator, or remove `host`",
            );
            s.host = None;
        }
        if s.host.is_none() {
            for (key, given) in [
                ("identity", &s.identity),
                ("remote_binary", &s.remote_binary),
            ] {
                if let Some((_, span)) = given {
                    self.diags.push(
                        Diagnostic::warning(*span, format!("`{key}` without `host` is ignored"))
                            .with_label("the node runs on this machine")
                            .with_hint("add `host \"ssh://USER@HOST\"`, or remove this"),
                    );
                }
            }
        }
        if let (Some(span), Some(_), Launch::Inproc) = (s.launch_span, &s.command, s.launch) {
            self.error(
                span,
                format!("node `{name}` runs an outside program, which cannot run in-process"),
                "remove `launch inproc`, or remove `command`",
            );
        }
    }

    /// `count N`: the copies NAME-1 … NAME-N, ports counted up from the one given.
    fn copies(&mut self, template: Node, count: u32, nodes: &mut Vec<Node>) {
        let name = template.name.clone();
        for i in 1..=count {
            let port = match template.port.map(|p| u32::from(p) + i - 1) {
                Some(p) if p > 65535 => {
                    self.diags.push(
                        Diagnostic::error(
                            template.span,
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
                group: Some(name.clone()),
                port,
                ..template.clone()
            });
        }
    }

    /// Checks the nodes as a whole: unique names, unique endpoints, one primary, a master for
    /// the workers. Gives masters without a role theirs.
    pub(super) fn check_nodes(&mut self, nodes: &mut Vec<Node>) {
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
            let host = if let Some(remote) = &node.host {
                remote.host.as_str()
            } else if node.address == "localhost" {
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

        // Masters, per cluster: at most one primary; if none is named, the first master is the
        // primary. Every cluster a worker, client or bot names needs a master.
        let mut clusters: Vec<String> = Vec::new();
        for node in &unique {
            if !clusters.contains(&node.cluster) {
                clusters.push(node.cluster.clone());
            }
        }
        for cluster in &clusters {
            self.check_cluster(cluster, &mut unique);
        }
        // A broker forwards to chat servers: without one it has nothing to do.
        if !unique.iter().any(|n| n.kind == NodeKind::Chat)
            && let Some(broker) = unique.iter().find(|n| n.kind == NodeKind::Broker)
        {
            self.diags.push(
                Diagnostic::error(
                    broker.span,
                    format!("broker `{}` has no chat server to forward to", broker.name),
                )
                .with_label("no node has `type chat`")
                .with_hint(
                    "add the servers it stands in front of: `node chat { type chat; count 2 }`",
                ),
            );
        }
        *nodes = unique;
    }

    /// One cluster's masters and the nodes that need them.
    fn check_cluster(&mut self, cluster: &str, unique: &mut [Node]) {
        if self.bad_clusters.iter().any(|c| c == cluster) {
            return;
        }
        let in_cluster = |n: &Node| n.cluster == cluster;
        let masters: Vec<usize> = (0..unique.len())
            .filter(|&i| unique[i].kind == NodeKind::Master && in_cluster(&unique[i]))
            .collect();
        let primaries: Vec<usize> = masters
            .iter()
            .copied()
            .filter(|&i| unique[i].role == Some(MasterRole::Primary))
            .collect();
        let of_cluster = if cluster == DEFAULT_CLUSTER {
            String::new()
        } else {
            format!(" in cluster `{cluster}`")
        };
        if let [first, second, ..] = primaries[..] {
            self.diags.push(
                Diagnostic::error(
                    unique[second].span,
                    format!(
                        "two primaries{of_cluster}: `{}` and `{}`",
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
                        format!("every master{of_cluster} is a backup, so none would serve"),
                    )
                    .with_label("`role backup`")
                    .with_hint("make one master `role primary`"),
                );
            }
        }
        for &i in &masters {
            unique[i].role.get_or_insert(MasterRole::Backup);
        }
        if !masters.is_empty() {
            return;
        }
        // A worker needs a master; so does a client or bot of a named cluster (in the default
        // cluster they may only chat).
        let needy = unique.iter().find(|n| {
            in_cluster(n)
                && (n.kind == NodeKind::Worker
                    || (cluster != DEFAULT_CLUSTER
                        && matches!(n.kind, NodeKind::Client | NodeKind::Bot)))
        });
        if let Some(node) = needy {
            let (label, hint) = if cluster == DEFAULT_CLUSTER {
                (
                    "no node has `type master`".to_string(),
                    "add a coordinator: `node coordinator { type master; port 9000 }`".to_string(),
                )
            } else {
                (
                    format!("no master has `cluster {cluster}`"),
                    format!(
                        "add one: `node server-{cluster} {{ type master; cluster {cluster} }}`"
                    ),
                )
            };
            let what = if node.kind == NodeKind::Worker {
                format!("worker `{}` has no master to register with", node.name)
            } else {
                format!("{} `{}` has no master to submit to", node.kind, node.name)
            };
            self.diags.push(
                Diagnostic::error(node.span, what)
                    .with_label(label)
                    .with_hint(hint),
            );
        }
    }

    // ----- references to nodes -----

    /// Resolves a node name in a connection: a node, or every copy of a `count` node.
    pub(super) fn node_or_group(&mut self, name: &str, span: Span) -> Option<Vec<String>> {
        if self.names.nodes.contains_key(name) {
            return Some(vec![name.to_string()]);
        }
        if let Some(copies) = self.names.groups.get(name) {
            return Some(copies.clone());
        }
        self.unknown_node(name, span);
        None
    }

    /// Resolves a node name in a scenario step: exactly one node, or `primary` (whichever
    /// master serves when the step runs) in a topology with masters.
    pub(super) fn one_node(&mut self, word: &Word, usage: &str) -> Option<String> {
        let (name, span) = self.word_text(word, usage)?;
        if self.names.nodes.contains_key(name) {
            return Some(name.to_string());
        }
        if name == PRIMARY_WORD && !self.names.clusters.is_empty() {
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

    pub(super) fn unknown_node(&mut self, name: &str, span: Span) {
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
        let primary_hint = (name == PRIMARY_WORD).then(|| {
            "`primary` names the master that serves when the step runs, and this topology has no master".to_string()
        });
        let hint = group_hint
            .or(primary_hint)
            .or_else(|| self.names.suggestion(name));
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
}
