//! What the supervisor hands the live invariant checks ([`crate::view::alarms`]), and what it
//! does with an alarm: the timeline (and so the console's banner and list, and the headless
//! output), and the summary.

use super::*;
use crate::view::alarms::{Alarm, Checker};

/// A checker for a cluster of `topology`.
pub(super) fn fresh_checker(topology: &Topology) -> Checker {
    let mut checker = Checker::default();
    checker.async_replication =
        topology.policies.replication.mode == crate::topology::policies::ReplicationMode::Async;
    checker
}

impl Supervisor {
    /// The checker of `master`'s cluster.
    pub(super) fn checker_of(&mut self, master: &str) -> &mut Checker {
        let cluster = self
            .topology
            .node(master)
            .map_or_else(|| self.main_cluster().to_string(), |n| n.cluster.clone());
        self.checkers
            .entry(cluster)
            .or_insert_with(|| fresh_checker(&self.topology))
    }

    /// Puts each alarm on the timeline.
    pub(super) fn alarms(&mut self, alarms: Vec<Alarm>) {
        for alarm in alarms {
            self.timeline(
                "checker",
                TimelineKind::Alarm {
                    alarm: alarm.kind.as_str().to_string(),
                    text: alarm.text,
                    nodes: alarm.nodes,
                    warning: alarm.warning,
                },
            );
        }
    }

    /// The chat servers' counts were read again: do the live ones still disagree, with every
    /// link between them whole?
    pub(super) fn check_chat(&mut self) {
        let chat = |n: &str| {
            self.topology
                .node(n)
                .is_some_and(|n| n.kind == NodeKind::Chat)
        };
        let links_whole = self
            .shaper
            .all()
            .iter()
            .filter(|((a, b), _)| chat(a) && chat(b))
            .all(|(_, s)| !s.cut && s.link.loss.0 <= 0.0);
        let entries: BTreeMap<String, u64> = self
            .chat_entries
            .iter()
            .map(|(n, (entries, _))| (n.clone(), *entries))
            .collect();
        let now = self.now();
        let main = self.main_cluster().to_string();
        let alarms = self
            .checkers
            .entry(main)
            .or_insert_with(|| fresh_checker(&self.topology))
            .chat(now, &entries, links_whole);
        self.alarms(alarms);
    }

    /// Every alarm and warning of the run, in order.
    pub(super) fn all_alarms(&self) -> Vec<Alarm> {
        let mut all: Vec<Alarm> = self
            .checkers
            .values()
            .flat_map(|c| c.alarms.iter().cloned())
            .collect();
        all.sort_by_key(|a| a.at_ms);
        all
    }
}
