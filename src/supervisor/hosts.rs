//! Nodes on other hosts whose ssh session ends: the host out of reach is not the node failing.
//!
//! A node there runs detached from its session (`remote::node_script`): when the session is lost
//! the node runs on, the timeline says the host is unreachable, and tcluster tries the host again
//! every [`RECONNECT_EVERY`]. A new session reattaches to the running node
//! (`remote::attach_script`), streaming the output it missed; only if the node is gone by then
//! is it started afresh.

use super::start::Starting;
use super::{LaunchError, RECONNECT_EVERY, RunningAs, Supervisor, TaskNews, remote};
use crate::supervisor::child;
use crate::supervisor::timeline::TimelineKind;

/// What a remote node's session status means.
const LOST: &str = "exit code 255";

impl Supervisor {
    /// The `ssh` command that starts built-in node `name` on its host. A server there listens
    /// on every address of that host (the launcher reaches it by the host's) and keeps its state
    /// where a restart in this run finds it.
    pub(super) fn remote_command(
        &self,
        name: &str,
        remote: &crate::topology::Remote,
        start: &Starting,
    ) -> tokio::process::Command {
        let listens = self.nodes.get(name).is_some_and(|m| m.node.listens());
        let listen = start.listen.as_deref().map(|addr| {
            let port = addr.rsplit_once(':').map_or("0", |(_, p)| p);
            format!("0.0.0.0:{port}")
        });
        let args = child::builtin_args(
            listen.as_deref(),
            start.connect_to.as_deref(),
            start.chat_links.as_deref(),
        );
        let run = listens.then_some(self.record.run_id.as_str());
        let mut command = remote::ssh(remote, Some(&self.options.state_dir.join("ssh")));
        let system = &self.topology.globals.system_name;
        command.arg(remote::node_script(remote, system, name, &args, run));
        command
    }

    /// Where this machine reaches server `name`, which said it listens on `address`: for a
    /// server on another host, that host's address (resolved here) with the port it said.
    pub(super) fn reachable(&self, name: &str, address: String) -> String {
        let Some(remote) = self.nodes.get(name).and_then(|m| m.node.host.as_ref()) else {
            return address;
        };
        let Some(port) = address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
        else {
            return address;
        };
        use std::net::ToSocketAddrs;
        match (remote.host.as_str(), port).to_socket_addrs() {
            Ok(mut found) => found.next().map_or(address, |a| a.to_string()),
            Err(_) => address,
        }
    }

    /// What node `name` on another host reads first: the peer key, the topology, and the
    /// certificates it needs.
    pub(super) fn remote_preamble(&self, name: &str) -> Result<String, LaunchError> {
        let failed = |what: &str, path: &std::path::Path, e: std::io::Error| LaunchError::Node {
            node: name.into(),
            reason: format!("cannot read {what} {} to send it: {e}", path.display()),
        };
        let path = &self.options.topology_path;
        let topology =
            std::fs::read_to_string(path).map_err(|e| failed("the topology", path, e))?;
        let files = self.tls_files(name);
        let read = |what: &str, path: &Option<std::path::PathBuf>| match path {
            Some(path) => std::fs::read(path)
                .map(Some)
                .map_err(|e| failed(what, path, e)),
            None => Ok(None),
        };
        let ca = read("the cluster CA", &files.ca)?;
        let cert = match (
            read("its certificate", &files.cert)?,
            read("its key", &files.key)?,
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            _ => None,
        };
        let peer_key = self.topology.peer_key();
        Ok(remote::Preamble {
            peer_key: &peer_key,
            topology: &topology,
            ca,
            cert,
        }
        .lines())
    }

    /// `node`'s session (on another host) ended with `status`, and nobody stopped the node: true
    /// if that was the host out of reach or a reattach that found the node gone (handled here),
    /// false if the node itself ended.
    pub(super) async fn session_ended(&mut self, node: &str, status: &str) -> bool {
        let Some(m) = self.nodes.get_mut(node) else {
            return true;
        };
        let Some(remote) = m.node.host.clone() else {
            return false;
        };
        let generation = m.generation;
        if status == format!("exit code {}", remote::NODE_GONE) {
            // Back in reach, but the node had stopped there meanwhile: a fresh one.
            m.attachment = Default::default();
            m.signals = None;
            self.note(format!(
                "{node}: {} is back in reach, but the node had stopped there: starting it again",
                remote.url()
            ));
            if let Err(e) = self.start_node(node).await {
                self.note(format!("{node}: {e}"));
                let generation = self.nodes.get(node).map_or(generation, |m| m.generation);
                self.reconnect_later(node, generation);
            }
            return true;
        }
        if status != LOST {
            return false;
        }
        // Said once per loss, not at every try that finds the host still out of reach.
        m.exit = Some(crate::view::node::HOST_UNREACHABLE.to_string());
        if !std::mem::replace(&mut m.attachment.unreachable_said, true) {
            let said = self.sink.recent(node).last().cloned().unwrap_or_default();
            let runs_on = if m.attachment.dir.is_some() {
                "the node runs on there; "
            } else {
                ""
            };
            self.timeline(
                node,
                TimelineKind::NodeExited {
                    node: node.to_string(),
                    status: format!(
                        "host unreachable: the ssh session to {} ended ({}); {runs_on}reconnecting every {RECONNECT_EVERY:?}",
                        remote.url(),
                        said.trim()
                    ),
                },
            );
        }
        self.publish(node);
        self.reconnect_later(node, generation);
        true
    }

    /// Tries the host of `node` again in a moment (unless it was started again meanwhile).
    pub(super) fn reconnect_later(&self, node: &str, generation: u64) {
        let (news, node) = (self.internal.clone(), node.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(RECONNECT_EVERY).await;
            let _ = news.send(TaskNews::Reconnect { node, generation });
        });
    }

    /// Reaches the host of `node` again, if nothing else started it meanwhile: a session that
    /// reattaches to the node where it runs, or — when where it runs is not known — its earlier
    /// process group ended and a fresh node started. The host still out of reach brings another
    /// try.
    pub(super) async fn reconnect(&mut self, node: &str, generation: u64) {
        let Some(m) = self.nodes.get(node) else {
            return;
        };
        if m.generation != generation || m.running.is_some() || m.stopped || m.killed {
            return;
        }
        if let (Some(dir), Some(remote)) = (m.attachment.dir.clone(), m.node.host.clone()) {
            let seen = m.attachment.seen();
            let mut command = remote::ssh(&remote, Some(&self.options.state_dir.join("ssh")));
            command.arg(remote::attach_script(&dir, seen));
            match child::spawn(command) {
                Ok(mut session) => {
                    let pid = session.id().unwrap_or_default();
                    let stdin = session.stdin.take();
                    self.watch_child(node, generation, session);
                    if let Some(m) = self.nodes.get_mut(node) {
                        m.running = Some(RunningAs::Process { pid, stdin });
                    }
                }
                Err(e) => {
                    self.note(format!("{node}: cannot run ssh: {e}"));
                    self.reconnect_later(node, generation);
                }
            }
            return;
        }
        if let Some(signals) = m.signals.clone() {
            if !signals
                .send_and_wait(nix::sys::signal::Signal::SIGKILL)
                .await
            {
                self.reconnect_later(node, generation);
                return;
            }
            if let Some(m) = self.nodes.get_mut(node) {
                m.signals = None;
            }
        }
        if let Err(e) = self.start_node(node).await {
            self.note(format!("{node}: {e}"));
            let generation = self.nodes.get(node).map_or(generation, |m| m.generation);
            self.reconnect_later(node, generation);
        }
    }

    /// `node`'s session said where the node runs on its host.
    pub(super) fn remote_dir(&mut self, node: &str, generation: u64, dir: String) {
        if let Some(m) = self.nodes.get_mut(node)
            && m.generation == generation
        {
            m.attachment.dir = Some(dir);
            m.attachment.unreachable_said = false;
        }
    }

    /// A new session found `node` running on its host: it never stopped.
    pub(super) fn reattached(&mut self, node: &str, generation: u64) {
        let Some(m) = self.nodes.get_mut(node) else {
            return;
        };
        if m.generation != generation {
            return;
        }
        m.exit = None;
        m.exited = false;
        m.attachment.unreachable_said = false;
        let url = m.node.host.as_ref().map(|r| r.url()).unwrap_or_default();
        self.note(format!(
            "{node}: the ssh session to {url} is back; the node ran on there, and its output \
             meanwhile follows"
        ));
        self.publish(node);
    }
}
