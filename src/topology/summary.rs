//! The readable summary `tcluster check` prints for a valid topology.
//!
//! Copies made by `count` are shown as one line (`worker-1 … worker-120`), and so are the links
//! one `connection` line made, so the summary of a 200-node file still fits on a screen.

use std::fmt::{self, Write};

use super::model::*;
use super::units::format_duration;

/// Displays a topology's summary.
pub struct Summary<'a> {
    pub topology: &'a Topology,
    /// The file's name as the user typed it.
    pub file: &'a str,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.topology;
        let g = &t.globals;
        let version = g
            .version
            .as_deref()
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        writeln!(f, "{}{version}: {} is valid", g.system_name, self.file)?;
        let extra: Vec<String> = g
            .all
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "SYSTEM_NAME" | "VERSION"))
            .map(|(name, value)| {
                if name == "CLUSTER_SECRET" || name == "PEER_SECRET" {
                    format!("{name}=(set)")
                } else {
                    format!("{name}={value}")
                }
            })
            .collect();
        if !extra.is_empty() {
            writeln!(f, "  globals: {}", extra.join(", "))?;
        }

        writeln!(f)?;
        let rows = node_rows(t);
        writeln!(f, "Nodes: {}", node_counts(t))?;
        let widths =
            [0, 1, 2].map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0));
        for row in &rows {
            let line = format!(
                "  {:w0$}  {:w1$}  {:w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            writeln!(f, "{}", line.trim_end())?;
        }

        let hosts = host_rows(t);
        if !hosts.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "Hosts: started over SSH (the system's ssh, so ~/.ssh/config applies)"
            )?;
            let width = hosts.iter().map(|h| h.0.chars().count()).max().unwrap_or(0);
            for (url, nodes) in &hosts {
                writeln!(f, "  {url:width$}  {nodes}")?;
            }
        }

        writeln!(f)?;
        let links = connection_rows(t);
        if links.is_empty() {
            writeln!(
                f,
                "Connections: none declared, so every node may talk to every other"
            )?;
        } else {
            writeln!(f, "Connections: {}", links.len())?;
            let width = links
                .iter()
                .map(|(l, _)| l.chars().count())
                .max()
                .unwrap_or(0);
            for (link, props) in &links {
                writeln!(f, "{}", format!("  {link:width$}  {props}").trim_end())?;
            }
        }
        // A port cannot tell plaintext peers from TLS ones before they speak: an encrypted
        // server's port is TLS only, and so is every link to it.
        let sealed: Vec<&str> = t.encrypted_servers().map(|n| n.name.as_str()).collect();
        if !sealed.is_empty() {
            let source = match &t.globals.tls_dir {
                Some(dir) => format!("the certificates in {dir}"),
                None => "a cluster CA made under STATE_DIR/tls".to_string(),
            };
            writeln!(
                f,
                "TLS only: {} (every link to them is encrypted; {source})",
                sealed.join(", ")
            )?;
        }

        writeln!(f)?;
        writeln!(f, "Policies:")?;
        for (name, text) in policy_rows(&t.policies) {
            let default = if t.policies.declared.iter().any(|d| d == name) {
                ""
            } else {
                " (default)"
            };
            writeln!(f, "  {name:14}  {text}{default}")?;
        }
        for (name, entries) in &t.policies.other {
            let text: Vec<String> = entries.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(
                f,
                "  {name:14}  {} (unknown policy, no effect)",
                text.join(", ")
            )?;
        }

        if !t.users.is_empty() {
            writeln!(f)?;
            let users: Vec<String> = t
                .users
                .iter()
                .map(|u| {
                    let role = match u.role {
                        UserRole::Operator => "operator",
                        UserRole::Student => "student",
                    };
                    format!("{} ({role})", u.name)
                })
                .collect();
            writeln!(f, "Users: {}", users.join(", "))?;
        }

        writeln!(f)?;
        if t.scenarios.is_empty() {
            writeln!(f, "Scenarios: none")?;
        } else {
            writeln!(f, "Scenarios: {}", t.scenarios.len())?;
            for s in &t.scenarios {
                writeln!(
                    f,
                    "  {} ({} steps over {})",
                    s.name,
                    s.steps.len(),
                    format_duration(s.length())
                )?;
                for step in &s.steps {
                    writeln!(f, "    at {:<6} {}", format_duration(step.at), step.action)?;
                }
            }
        }
        Ok(())
    }
}

fn node_counts(t: &Topology) -> String {
    let parts: Vec<String> = NodeKind::ALL
        .iter()
        .filter_map(|&kind| {
            let n = t.nodes_of(kind).count();
            (n > 0).then(|| {
                let word = kind.as_str();
                if n == 1 {
                    format!("1 {word}")
                } else {
                    format!("{n} {word}s")
                }
            })
        })
        .collect();
    format!("{} ({})", t.nodes.len(), parts.join(", "))
}

/// One row per node, or per `count` group: kind, name, endpoint, details.
fn node_rows(t: &Topology) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    for &kind in &NodeKind::ALL {
        let nodes: Vec<&Node> = t.nodes_of(kind).collect();
        let mut i = 0;
        while i < nodes.len() {
            let node = nodes[i];
            let copies = match &node.group {
                Some(group) => nodes[i..]
                    .iter()
                    .take_while(|n| n.group.as_ref() == Some(group))
                    .count(),
                None => 1,
            };
            let last = nodes[i + copies - 1];
            // A node on another machine: that machine's name, not its own idea of its address.
            let address = node.host.as_ref().map_or(&node.address, |r| &r.host);
            let (name, endpoint) = if copies > 1 {
                let ports = match (node.port, last.port) {
                    (Some(a), Some(b)) => format!("{address}:{a}-{b}"),
                    _ => node.endpoint().replacen(&node.address, address, 1),
                };
                (format!("{} … {} ({copies})", node.name, last.name), ports)
            } else {
                let endpoint = node.endpoint().replacen(&node.address, address, 1);
                (node.name.clone(), endpoint)
            };
            rows.push([kind.to_string(), name, endpoint, node_details(node)]);
            i += copies;
        }
    }
    rows
}

/// Each machine other than this one, and the nodes started there (with the remote binary and
/// identity when given).
fn host_rows(t: &Topology) -> Vec<(String, String)> {
    let mut rows: Vec<(String, Vec<&Node>)> = Vec::new();
    for node in &t.nodes {
        let Some(remote) = &node.host else { continue };
        match rows.iter_mut().find(|(url, _)| *url == remote.url()) {
            Some((_, nodes)) => nodes.push(node),
            None => rows.push((remote.url(), vec![node])),
        }
    }
    rows.into_iter()
        .map(|(url, nodes)| {
            let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            let mut text = names.join(", ");
            if let Some(remote) = &nodes[0].host {
                text.push_str(&format!("; runs {}", remote.binary));
                if let Some(identity) = &remote.identity {
                    text.push_str(&format!(", key {identity}"));
                }
            }
            (url, text)
        })
        .collect()
}

/// A rate with at most three decimals and no trailing zeros: `2`, `0.5`, `0.017`.
/// `, WHAT: MODE` for a durability other than the default `sync` (nothing for `sync`).
fn unless_sync(durability: crate::topology::policies::Durability, what: &str) -> String {
    match durability {
        crate::topology::policies::Durability::Sync => String::new(),
        other => format!(", {what}: {}", other.describe()),
    }
}

fn trim_rate(rate: f64) -> String {
    let text = format!("{rate:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn node_details(node: &Node) -> String {
    let mut parts = Vec::new();
    if node.cluster != super::model::DEFAULT_CLUSTER {
        parts.push(format!("cluster {}", node.cluster));
    }
    if let Some(role) = node.role {
        parts.push(role.as_str().to_string());
    }
    let r = &node.resources;
    // Slots matter for workers; for other nodes, resources only when the file gives them.
    if node.kind == NodeKind::Worker || *r != Resources::default() {
        let mut res = format!("cpu {}", r.cpu);
        if let Some(m) = r.memory {
            write!(res, ", memory {m}").ok();
        }
        if let Some(s) = r.storage {
            write!(res, ", storage {s}").ok();
        }
        parts.push(res);
    }
    if !node.services.is_empty() {
        let on: Vec<&str> = node
            .services
            .iter()
            .filter(|(_, on)| *on)
            .map(|(s, _)| s.as_str())
            .collect();
        parts.push(format!(
            "services: {}",
            if on.is_empty() {
                "none".to_string()
            } else {
                on.join(", ")
            }
        ));
    }
    if let Some(bot) = &node.bot {
        let channels: Vec<String> = bot.channels.iter().map(|c| format!("#{c}")).collect();
        let mut text = format!(
            "posts {}/s to {}",
            trim_rate(bot.posts_per_second),
            channels.join(" ")
        );
        if bot.jobs_per_second > 0.0 {
            write!(
                text,
                ", submits {:?} {}/s",
                bot.job,
                trim_rate(bot.jobs_per_second)
            )
            .ok();
        }
        parts.push(text);
    }
    if node.launch == Launch::Inproc {
        parts.push("in-process".to_string());
    }
    if let Some(c) = &node.command {
        parts.push(format!("runs {c:?}"));
    }
    parts.join("; ")
}

/// One row per `connection` line as written: "a -> b" or "a <-> group (n links)", and its
/// properties.
fn connection_rows(t: &Topology) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    let conns = &t.connections;
    while i < conns.len() {
        let c = &conns[i];
        let same: Vec<&Connection> = conns[i..].iter().take_while(|o| o.span == c.span).collect();
        let arrow = if c.both_ways { "<->" } else { "->" };
        let label = if same.len() <= 2 && (same.len() == 1 || c.both_ways) {
            format!("{} {arrow} {}", c.from, c.to)
        } else {
            let group_of = |name: &str| {
                t.node(name)
                    .and_then(|n| n.group.clone())
                    .unwrap_or_else(|| name.to_string())
            };
            let links = if c.both_ways {
                same.len() / 2
            } else {
                same.len()
            };
            format!(
                "{} {arrow} {} ({links} links)",
                group_of(&c.from),
                group_of(&c.to)
            )
        };
        rows.push((label, link_text(&c.link)));
        i += same.len();
    }
    rows
}

fn link_text(link: &Link) -> String {
    let mut parts = vec![link.protocol.clone().unwrap_or_else(|| "tcp".to_string())];
    if let Some(b) = link.bandwidth {
        parts.push(b.to_string());
    }
    if !link.latency.is_zero() {
        parts.push(format!("latency {}", format_duration(link.latency)));
    }
    if !link.jitter.is_zero() {
        parts.push(format!("jitter {}", format_duration(link.jitter)));
    }
    if link.loss.0 > 0.0 {
        parts.push(format!("loss {}", link.loss));
    }
    if link.encrypted {
        parts.push("encrypted".to_string());
    }
    parts.join(", ")
}

fn policy_rows(p: &Policies) -> Vec<(&'static str, String)> {
    let lb = &p.load_balancing;
    let hb = &p.heartbeat;
    vec![
        (
            "load_balancing",
            format!(
                "{}, health check every {}, failover {}",
                lb.algorithm.as_str(),
                format_duration(lb.health_check_interval),
                if lb.failover { "on" } else { "off" }
            ),
        ),
        (
            "heartbeat",
            format!(
                "every {}, suspect after {}, dead after {}",
                format_duration(hb.interval),
                format_duration(hb.suspect_after),
                format_duration(hb.timeout)
            ),
        ),
        (
            "retry",
            format!(
                "up to {} attempts, backoff {} doubling",
                p.retry.max_attempts,
                format_duration(p.retry.backoff)
            ),
        ),
        (
            "replication",
            match p.replication.mode {
                ReplicationMode::Sync => "sync".to_string(),
                ReplicationMode::Async => "async".to_string(),
            },
        ),
        ("election", "bully".to_string()),
        (
            "security",
            if p.security.allow_classic {
                "classic peers allowed with a secret".to_string()
            } else {
                "classic peers refused when there is a secret".to_string()
            },
        ),
        (
            "chat",
            format!(
                "{}{}",
                if p.chat.rate_per_second > 0.0 {
                    format!(
                        "{}/s per client, bursts of {}",
                        trim_rate(p.chat.rate_per_second),
                        p.chat.burst
                    )
                } else {
                    "no rate limit".to_string()
                },
                unless_sync(p.chat.durability, "history on disk")
            ),
        ),
        (
            "journal",
            format!(
                "keeps {} finished jobs, a snapshot every {} events{}",
                p.journal.keep_done,
                p.journal.compact_every,
                unless_sync(p.journal.durability, "on disk")
            ),
        ),
        (
            "lending",
            match &p.lending {
                Some(l) => format!(
                    "borrow past {} queued jobs; lend up to {} workers idle {}; return after {} idle",
                    l.queue_threshold,
                    l.max_lend,
                    super::units::format_duration(l.idle_before_lend),
                    super::units::format_duration(l.return_after_idle)
                ),
                None => "off: no cluster lends or borrows".to_string(),
            },
        ),
        (
            "clock",
            match &p.clock {
                Some(c) => format!(
                    "berkeley every {}: clocks within {} are left alone; readings {} from the mean are left out of it",
                    super::units::format_duration(c.interval),
                    super::units::format_duration(c.tolerance),
                    super::units::format_duration(c.outlier)
                ),
                None => "off: clocks run as they are".to_string(),
            },
        ),
    ]
}
