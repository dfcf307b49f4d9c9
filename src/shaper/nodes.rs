//! The launcher's side of the links nodes shape themselves ([`super::own`]): which links they
//! are, each change of their rules said to the node that applies them, and what the node says
//! back — the messages its links carried (the same tap a proxy feeds, and the same counts) and
//! the messages its held links keep, renumbered among the proxies' own so the operator delivers
//! or drops any of them by one number.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};

use tokio::sync::mpsc;

use super::own::{Report, rules_line};
use super::{Fate, HeldMessage, LinkShaper, LinkState};

/// Links shaped by nodes, their control channel, and what they hold.
#[derive(Default)]
pub struct Nodes {
    /// Each direction a node shapes, and that node.
    owners: RwLock<HashMap<(String, String), String>>,
    /// The directions into a server from clients that shape their links: the server is told
    /// their rules too, so that it hears a connection end only across a whole link.
    into_servers: RwLock<std::collections::HashSet<(String, String)>>,
    /// Where control lines for nodes go: (node, line).
    control: OnceLock<mpsc::UnboundedSender<(String, String)>>,
    /// Messages nodes hold, in the order they came: the node, its own number, and the message
    /// under the launcher's number.
    held: Mutex<Vec<(String, u64, HeldMessage)>>,
}

impl Nodes {
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<(String, u64, HeldMessage)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn owner(&self, from: &str, to: &str) -> Option<String> {
        self.owners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(from.to_string(), to.to_string()))
            .cloned()
    }

    /// Whether `node` shapes `from` → `to`: a node reports only on its own links.
    fn shaped_by(&self, node: &str, from: &str, to: &str) -> Result<(), String> {
        match self.owner(from, to) {
            Some(owner) if owner == node => Ok(()),
            _ => Err(format!("{from} → {to} is not its link")),
        }
    }

    /// The nodes told the rules of `from` → `to`: the one that shapes it, and its server.
    fn told(&self, from: &str, to: &str) -> Vec<String> {
        let mut nodes: Vec<String> = self.owner(from, to).into_iter().collect();
        let into_server = self
            .into_servers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(from.to_string(), to.to_string()));
        if into_server {
            nodes.push(to.to_string());
        }
        nodes
    }

    fn tell(&self, node: &str, line: String) {
        if let Some(control) = self.control.get() {
            let _ = control.send((node.to_string(), line));
        }
    }

    /// Forgets the held messages of the directions `hit` picks (their node delivers them, told
    /// by the rules that release them). Returns how many.
    pub(super) fn release(&self, hit: impl Fn(&str, &str) -> bool) -> usize {
        let mut held = self.held();
        let before = held.len();
        held.retain(|(_, _, m)| !hit(&m.from, &m.to));
        before - held.len()
    }
}

impl LinkShaper {
    /// Control lines for the nodes that shape their own links go to `control`, as (node,
    /// line), for the launcher to write on each node's control channel.
    pub fn tell_nodes_by(&self, control: mpsc::UnboundedSender<(String, String)>) {
        let _ = self.nodes.control.set(control);
    }

    /// `client` shapes its link to `server` itself (both ways): it is told the link's rules
    /// now, and every change from now on (and `server`, those of `client` → `server`).
    pub fn adopt(&self, client: &str, server: &str) {
        let mut lines = Vec::new();
        self.nodes
            .into_servers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((client.to_string(), server.to_string()));
        {
            let mut owners = self.nodes.owners.write().unwrap_or_else(|e| e.into_inner());
            let mut links = self.write();
            for (from, to) in [(client, server), (server, client)] {
                let key = (from.to_string(), to.to_string());
                let state = links.entry(key.clone()).or_default();
                lines.push(rules_line(from, to, state));
                owners.insert(key, client.to_string());
            }
        }
        if let Some(into_server) = lines.first() {
            self.nodes.tell(server, into_server.clone());
        }
        for line in lines {
            self.nodes.tell(client, line);
        }
    }

    /// Tells `node` the rules of every direction it shapes, or serves from a client that
    /// shapes it (it has just started).
    pub fn retell(&self, node: &str) {
        let mut owned: Vec<(String, String)> = self
            .nodes
            .owners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, owner)| *owner == node)
            .map(|(key, _)| key.clone())
            .collect();
        owned.extend(
            self.nodes
                .into_servers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(_, to)| to == node)
                .cloned(),
        );
        for (from, to) in owned {
            if let Some(state) = self.state(&from, &to) {
                self.nodes.tell(node, rules_line(&from, &to, &state));
            }
        }
    }

    /// Whether `client`'s link to `server` is shaped by `client` itself.
    pub fn adopted(&self, client: &str, server: &str) -> bool {
        self.nodes.shaped_by(client, client, server).is_ok()
    }

    /// Says the rules of the directions that changed to the nodes that shape them.
    pub(super) fn tell_changes(&self, changed: &[((String, String), LinkState)]) {
        for ((from, to), state) in changed {
            for node in self.nodes.told(from, to) {
                self.nodes.tell(&node, rules_line(from, to, state));
            }
        }
    }

    /// Takes in what `node` said about its links (a line after [`super::own::REPORT_PREFIX`]):
    /// messages seen are counted on their link and told to the tap's listeners; a held message
    /// is kept under a number of the launcher's. A line that is not a report is refused, saying
    /// why.
    pub fn take_report(&self, node: &str, json: &str) -> Result<(), String> {
        let report: Report = serde_json::from_str(json).map_err(|e| e.to_string())?;
        match report {
            Report::Seen(mut seen) => {
                self.nodes.shaped_by(node, &seen.from, &seen.to)?;
                let count = u64::from(seen.count);
                {
                    let mut links = self.write();
                    let key = (seen.from.to_string(), seen.to.to_string());
                    let state = links.entry(key).or_default();
                    match seen.fate {
                        Fate::Carried | Fate::Held => state.carried += count,
                        Fate::Dropped => state.dropped += count,
                        Fate::Delivered { .. } | Fate::Discarded => {}
                    }
                }
                seen.at_ms = self.now().saturating_sub(seen.at_ms);
                let _ = self.taps.send(seen);
            }
            Report::Held(mut message) => {
                self.nodes.shaped_by(node, &message.from, &message.to)?;
                let theirs = message.id;
                message.id = self
                    .next_held
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                message.at_ms = self.now().saturating_sub(message.at_ms);
                self.nodes.held().push((node.to_string(), theirs, message));
            }
        }
        Ok(())
    }

    /// Forgets what `node` held: it is gone, and its messages with it.
    pub fn forget_held_of(&self, node: &str) {
        self.nodes.held().retain(|(n, _, _)| n != node);
    }

    /// The messages nodes hold, in the order they came.
    pub(super) fn held_by_nodes(&self) -> Vec<HeldMessage> {
        self.nodes
            .held()
            .iter()
            .map(|(_, _, m)| m.clone())
            .collect()
    }

    /// The node that holds message `id` on a link it shapes itself (`None`: a proxy holds it,
    /// or no one): what it does with the message, it reports itself.
    pub fn keeper_of(&self, id: u64) -> Option<String> {
        let held = self.nodes.held();
        held.iter()
            .find(|(_, _, m)| m.id == id)
            .map(|(node, _, _)| node.clone())
    }

    /// Tells the node holding message `id` to deliver it (`deliver`) or drop it (`discard`);
    /// `None` if no node holds it.
    pub(super) fn settle_in_node(&self, id: u64, verb: &str) -> Option<HeldMessage> {
        let (node, theirs, message) = {
            let mut held = self.nodes.held();
            let at = held.iter().position(|(_, _, m)| m.id == id)?;
            held.remove(at)
        };
        self.nodes.tell(&node, format!("{verb} {theirs}"));
        Some(message)
    }
}
