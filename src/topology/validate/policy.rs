//! `policy NAME { … }`: load balancing, heartbeat, retry, replication, election, security and
//! chat, journal, lending, clock, time; an unknown policy is kept and shown, with a warning.

use super::*;

impl Validator<'_> {
    /// `durability sync`, `durability group [1ms]`, `durability none` or `durability periodic
    /// 10ms`.
    fn durability(&mut self, c: &Command) -> Option<crate::topology::policies::Durability> {
        use crate::topology::policies::Durability;
        const USAGE: &str = "durability sync | group [1ms] | periodic 10ms | none";
        let args = &c.words[1..];
        let (first, span) = match args.first() {
            Some(word) => self.word_text(word, USAGE)?,
            None => {
                self.args(c, 1, USAGE);
                return None;
            }
        };
        match (first, args.len()) {
            ("sync", 1) => Some(Durability::Sync),
            ("none", 1) => Some(Durability::None),
            ("group", 1) => Some(Durability::Group(
                crate::topology::policies::DEFAULT_GROUP_WINDOW,
            )),
            ("group", 2) => {
                let window = (std::time::Duration::from_millis(100), "the window", "100ms");
                let window = self.mode_duration("group", &args[1], window, USAGE)?;
                Some(Durability::Group(window))
            }
            ("periodic", 2) => {
                let every = (std::time::Duration::from_secs(60), "the interval", "1m");
                let every = self.mode_duration("periodic", &args[1], every, USAGE)?;
                Some(Durability::Periodic(every))
            }
            ("periodic", 1) => {
                self.error(
                    span,
                    "`durability periodic` needs how often: `durability periodic 10ms`",
                    format!("expected `{USAGE}`"),
                );
                None
            }
            _ => {
                self.error(
                    span,
                    format!("unknown durability `{first}`"),
                    format!("expected `{USAGE}`"),
                );
                None
            }
        }
    }

    /// `durability sync` or `durability periodic 10ms` for a chat server's history. It commits
    /// once per batch already (what arrived together shares one fsync), so `group` would add
    /// nothing; and redb frees a file's pages only at a commit forced to disk, so under `none`
    /// the file would grow for as long as the server runs.
    fn chat_durability(&mut self, c: &Command) -> Option<crate::topology::policies::Durability> {
        use crate::topology::policies::Durability;
        let durability = self.durability(c)?;
        let why = match durability {
            Durability::Sync | Durability::Periodic(_) => return Some(durability),
            Durability::Group(_) => "a chat server already commits once per batch",
            Durability::None => "the history file would grow until the server stops",
        };
        let span = c.words[1].span;
        self.error(
            span,
            format!(
                "`durability {}` is not offered for chat history: {why}",
                durability.describe()
            ),
            "expected `durability sync | periodic 10ms`",
        );
        None
    }

    /// The duration after a durability mode (`group 1ms`, `periodic 10ms`): above 0 and at most
    /// `most` (`what` it is, `most` as written).
    fn mode_duration(
        &mut self,
        mode: &str,
        word: &Word,
        (most, what, most_text): (std::time::Duration, &str, &str),
        usage: &str,
    ) -> Option<std::time::Duration> {
        let (text, span) = self.word_text(word, usage)?;
        let value = self.parsed(text, span, crate::topology::units::parse_duration)?;
        if value.is_zero() || value > most {
            let example = if mode == "group" { "1ms" } else { "10ms" };
            self.error(
                span,
                format!("`{mode} {text}`: {what} must be above 0 and at most {most_text}"),
                format!("for example `durability {mode} {example}`"),
            );
            return None;
        }
        Some(value)
    }

    /// `policy NAME { … }`, into `policies`; `seen` catches a policy declared twice.
    pub(super) fn policy(
        &mut self,
        command: &Command,
        policies: &mut Policies,
        seen: &mut HashMap<String, Span>,
    ) {
        let Some((name, name_span, block)) = self.named_block(
            command,
            ("policy", "policy NAME { … }", "block"),
            seen,
            Some("merge the two blocks"),
        ) else {
            return;
        };
        let what = format!("policy `{name}`");
        match name {
            "load_balancing" => self.load_balancing(block, &what, &mut policies.load_balancing),
            "heartbeat" => self.heartbeat(block, &what, &mut policies.heartbeat),
            "retry" => self.retry(block, &what, &mut policies.retry),
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
            "chat" => self.chat(block, &what, &mut policies.chat),
            "journal" => {
                let journal = &mut policies.journal;
                self.keys(
                    block,
                    &what,
                    &["keep_done", "compact_every", "durability"],
                    |v, key, c| {
                        if key == "durability" {
                            if let Some(d) = v.durability(c) {
                                journal.durability = d;
                            }
                        } else if key == "keep_done" {
                            if let Some(n) =
                                v.integer(c, "keep_done 10000", 0..=10_000_000, "keep_done")
                            {
                                journal.keep_done = n as usize;
                            }
                        } else if let Some(n) =
                            v.integer(c, "compact_every 50000", 100..=100_000_000, "compact_every")
                        {
                            journal.compact_every = n as u64;
                        }
                    },
                );
            }
            "time" => {
                let time = &mut policies.time;
                self.keys(block, &what, &["scale"], |v, _, c| {
                    let Some((text, span)) = v.text(c, "scale 0.1") else {
                        return;
                    };
                    match text.parse::<f64>() {
                        Ok(scale)
                            if (crate::topology::policies::SCALES.0
                                ..=crate::topology::policies::SCALES.1)
                                .contains(&scale) =>
                        {
                            time.scale = scale
                        }
                        _ => v.error(
                            span,
                            format!("`{text}` is not a scale from 0.01 to 1"),
                            "cluster time per real time: `scale 0.1` runs ten times slower",
                        ),
                    }
                });
            }
            "lending" => {
                let lending = policies.lending.get_or_insert_with(Lending::default);
                self.lending(block, &what, lending);
            }
            "clock" => {
                let clock = policies.clock.get_or_insert_with(ClockSync::default);
                self.clock(block, &what, clock);
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
                self.unknown_policy(name, name_span, block, policies);
                return;
            }
        }
        policies.declared.push(name.to_string());
    }

    fn lending(&mut self, block: &[Command], what: &str, lending: &mut Lending) {
        let keys = [
            "queue_threshold",
            "max_lend",
            "idle_before_lend",
            "return_after_idle",
        ];
        self.keys(block, what, &keys, |v, key, c| match key {
            "queue_threshold" => {
                if let Some(n) = v.integer(c, "queue_threshold 4", 0..=1_000_000, key) {
                    lending.queue_threshold = n as usize;
                }
            }
            "max_lend" => {
                if let Some(n) = v.integer(c, "max_lend 2", 0..=10_000, key) {
                    lending.max_lend = n as usize;
                }
            }
            "idle_before_lend" => {
                if let Some(d) = v.value(c, "idle_before_lend 500ms", parse_duration) {
                    lending.idle_before_lend = d;
                }
            }
            _ => {
                if let Some(d) = v.positive_duration(c, "return_after_idle 2s") {
                    lending.return_after_idle = d;
                }
            }
        });
    }

    fn clock(&mut self, block: &[Command], what: &str, clock: &mut ClockSync) {
        let keys = ["sync", "interval", "tolerance", "outlier"];
        self.keys(block, what, &keys, |v, key, c| match key {
            "sync" => {
                let Some((text, span)) = v.text(c, "sync berkeley") else {
                    return;
                };
                if text != "berkeley" {
                    v.diags.push(
                        Diagnostic::error(span, format!("unknown clock synchronisation `{text}`"))
                            .with_label("tcluster offers `berkeley`")
                            .with_hint_opt(did_you_mean(text, ["berkeley"])),
                    );
                }
            }
            "interval" => {
                if let Some(d) = v.positive_duration(c, "interval 1s") {
                    clock.interval = d;
                }
            }
            "tolerance" => {
                if let Some(d) = v.value(c, "tolerance 20ms", parse_duration) {
                    clock.tolerance = d;
                }
            }
            _ => {
                if let Some(d) = v.positive_duration(c, "outlier 1s") {
                    clock.outlier = d;
                }
            }
        });
    }

    fn load_balancing(&mut self, block: &[Command], what: &str, lb: &mut LoadBalancing) {
        self.keys(
            block,
            what,
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

    fn retry(&mut self, block: &[Command], what: &str, retry: &mut Retry) {
        self.keys(
            block,
            what,
            &["max_attempts", "backoff"],
            |v, key, c| match key {
                "max_attempts" => {
                    if let Some(n) = v.integer(c, "max_attempts 3", 1..=1000, "max_attempts") {
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

    fn chat(&mut self, block: &[Command], what: &str, chat: &mut ChatPolicy) {
        self.keys(
            block,
            what,
            &["rate", "burst", "keep", "durability"],
            |v, key, c| match key {
                "durability" => {
                    if let Some(d) = v.chat_durability(c) {
                        chat.durability = d;
                    }
                }
                "rate" => {
                    if let Some(rate) = v.value(c, "rate 20/s", parse_per_second) {
                        chat.rate_per_second = rate;
                    }
                }
                "keep" => {
                    if let Some(n) = v.integer(c, "keep 10000", 1..=10_000_000, "keep") {
                        chat.keep = n as usize;
                    }
                }
                _ => {
                    if let Some(n) = v.integer(c, "burst 40", 1..=100_000, "burst") {
                        chat.burst = n as u32;
                    }
                }
            },
        );
    }

    /// A policy tcluster does not know: kept and shown (with a warning), no effect.
    fn unknown_policy(
        &mut self,
        name: &str,
        name_span: Span,
        block: &[Command],
        policies: &mut Policies,
    ) {
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
    }

    pub(super) fn positive_duration(&mut self, command: &Command, usage: &str) -> Option<Duration> {
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

    pub(super) fn heartbeat(&mut self, block: &[Command], what: &str, heartbeat: &mut Heartbeat) {
        let mut interval = None;
        let mut timeout = None;
        let mut misses = None;
        let mut suspect = None;
        let mut udp = heartbeat.udp;
        let mut spans: HashMap<&str, Span> = HashMap::new();
        self.keys(
            block,
            what,
            &[
                "interval",
                "timeout",
                "misses",
                "suspect_after",
                "transport",
            ],
            |v, key, c| {
                if key == "transport" {
                    let Some((text, span)) = v.text(c, "transport udp") else {
                        return;
                    };
                    match text {
                        "tcp" => udp = false,
                        "udp" => udp = true,
                        _ => v.diags.push(
                            Diagnostic::error(
                                span,
                                format!("unknown heartbeat transport `{text}`"),
                            )
                            .with_label("expected `tcp` or `udp`")
                            .with_hint_opt(did_you_mean(text, ["tcp", "udp"])),
                        ),
                    }
                    return;
                }
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
            udp,
        };
    }
}
