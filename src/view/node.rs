//! A node as tcluster shows it: the facts tcluster knows of its process and of what the operator
//! did to it ([`NodeStatus`], [`Faults`]), and the words the screen uses for the cluster's
//! verdict ([`Verdict`]) and the node's role ([`Role`]).
//!
//! The two are kept apart on purpose. *Paused* is something the lecturer did; *suspect*, then
//! *dead*, is what the cluster concluded from the silence that followed — and that conclusion,
//! arriving a heartbeat timeout later, is the lesson. So a node's STATE is always the verdict
//! ([`super::ClusterView::verdict`]) and the fault is a tag beside it ([`Faults::tags`]).

use serde::{Deserialize, Serialize};

/// What tcluster knows of a node's process: facts, not conclusions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    /// `master`, `worker`, `chat`, `bot` or `client`.
    #[serde(rename = "type")]
    pub kind: String,
    pub process: Process,
    /// Its process id, if it is a running process.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Where it listens, for a server.
    #[serde(default)]
    pub address: Option<String>,
    /// What the operator did to it.
    pub faults: Faults,
    /// Its cluster (`cluster NAME` in the topology).
    #[serde(default)]
    pub cluster: String,
}

impl NodeStatus {
    /// A node that is launched but has not said it is ready.
    pub fn starting(name: &str, kind: &str) -> Self {
        NodeStatus {
            name: name.to_string(),
            kind: kind.to_string(),
            cluster: crate::topology::DEFAULT_CLUSTER.to_string(),
            process: Process::Starting,
            pid: None,
            address: None,
            faults: Faults::default(),
        }
    }
}

/// The `exit` of a node on another host whose ssh session was lost: its process may well run
/// on there (shown as a tag of its own, not as an exit).
pub const HOST_UNREACHABLE: &str = "host unreachable";

/// A node's process as tcluster sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// Not launched by tcluster (a client is run by a person).
    NotLaunched,
    /// Launched, not ready yet (a server not listening, a worker not registered).
    Starting,
    /// Running.
    Running,
    /// Its process ended (killed, crashed, or exited).
    Exited,
    /// Stopped at the end of the run.
    Stopped,
}

impl Process {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Process::NotLaunched => "not launched",
            Process::Starting => "starting",
            Process::Running => "running",
            Process::Exited => "exited",
            Process::Stopped => "stopped",
        }
    }
}

/// What the operator (or a scenario) did to a node, shown as tags beside its state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Stopped with SIGSTOP (or its in-process task paused).
    pub paused: bool,
    /// Killed by the operator, and not started again yet.
    pub killed: bool,
    /// Being restarted.
    pub restarting: bool,
    /// How its process ended when nobody killed it (`exit code 1` …).
    pub exit: Option<String>,
    /// The nodes it has a cut link with (either way), sorted.
    pub cut: Vec<String>,
    /// Every link it has is cut (`partition NODE`).
    pub cut_off: bool,
    /// The most latency on any of its links, in milliseconds.
    pub latency_ms: u64,
    /// The jitter that goes with it, in milliseconds.
    pub jitter_ms: u64,
    /// The most loss on any of its links, in percent.
    pub loss: f64,
    /// Its clock's skew, in milliseconds.
    pub skew_ms: i64,
}

impl Faults {
    /// The tags, most important first: `paused`, `killed`, `cut off`, `1 link cut`, `+300ms`,
    /// `20% loss`, `skew +2s` …
    pub fn tags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        if self.restarting {
            tags.push("restarting".to_string());
        } else if self.killed {
            tags.push("killed".to_string());
        } else if let Some(exit) = &self.exit {
            tags.push(if exit == HOST_UNREACHABLE {
                exit.clone()
            } else {
                format!("exited ({exit})")
            });
        }
        if self.paused {
            tags.push("paused".to_string());
        }
        if self.cut_off {
            tags.push("cut off".to_string());
        } else {
            match self.cut.len() {
                0 => {}
                1 => tags.push("1 link cut".to_string()),
                n => tags.push(format!("{n} links cut")),
            }
        }
        if self.latency_ms > 0 {
            tags.push(format!("+{}ms", self.latency_ms));
        }
        if self.loss > 0.0 {
            tags.push(format!("{}% loss", self.loss));
        }
        if self.skew_ms != 0 {
            let sign = if self.skew_ms > 0 { "+" } else { "-" };
            let ms = self.skew_ms.unsigned_abs();
            let text = if ms.is_multiple_of(1000) {
                format!("{}s", ms / 1000)
            } else {
                format!("{ms}ms")
            };
            tags.push(format!("skew {sign}{text}"));
        }
        tags
    }
}

/// What the cluster concluded about a node: the word in its STATE column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Launched, not yet part of the cluster.
    Starting,
    /// Heard from in time.
    Healthy,
    /// Its heartbeats are late (a worker), or a backup lost it (the primary).
    Suspect,
    /// Declared dead by the cluster (or its process ended, for a node nobody watches).
    Dead,
    /// Was dead and is back: for a few seconds after it came back.
    Rejoined,
    /// Stopped at the end of the run.
    Stopped,
    /// Not launched by tcluster.
    NotRun,
}

impl Verdict {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Starting => "starting",
            Verdict::Healthy => "healthy",
            Verdict::Suspect => "suspect",
            Verdict::Dead => "dead",
            Verdict::Rejoined => "rejoined",
            Verdict::Stopped => "stopped",
            Verdict::NotRun => "not run",
        }
    }

    /// Whether the node's live figures (heartbeat, load, CPU) mean anything now.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            Verdict::Healthy | Verdict::Suspect | Verdict::Rejoined | Verdict::Starting
        )
    }
}

/// What a node is in the cluster now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The master that serves.
    Primary,
    /// A master that follows the primary.
    Backup,
    /// A master that was primary until another took over, and has not followed it yet (dead,
    /// or paused or cut off and still believing it serves).
    WasPrimary,
    /// A worker.
    Worker,
    /// A chat server.
    Chat,
    /// A bot.
    Bot,
    /// A chat broker.
    Broker,
    /// A client.
    Client,
}

impl Role {
    /// The word shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Backup => "backup",
            Role::WasPrimary => "was primary",
            Role::Worker => "worker",
            Role::Chat => "chat",
            Role::Bot => "bot",
            Role::Broker => "broker",
            Role::Client => "client",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_what_was_done_most_important_first() {
        let faults = Faults {
            paused: true,
            cut: vec!["coordinator".into()],
            latency_ms: 300,
            skew_ms: -2000,
            ..Faults::default()
        };
        assert_eq!(
            faults.tags(),
            vec!["paused", "1 link cut", "+300ms", "skew -2s"]
        );
        let cut_off = Faults {
            cut: vec!["a".into(), "b".into()],
            cut_off: true,
            ..Faults::default()
        };
        assert_eq!(cut_off.tags(), vec!["cut off"]);
        let two = Faults {
            cut: vec!["a".into(), "b".into()],
            killed: true,
            ..Faults::default()
        };
        assert_eq!(two.tags(), vec!["killed", "2 links cut"]);
        assert!(Faults::default().tags().is_empty());
        let exit = |exit: &str| Faults {
            exit: Some(exit.into()),
            ..Faults::default()
        };
        assert_eq!(exit("exit code 1").tags(), vec!["exited (exit code 1)"]);
        // A node out of reach on another host has not exited: it may run on there.
        assert_eq!(exit(HOST_UNREACHABLE).tags(), vec!["host unreachable"]);
    }
}
