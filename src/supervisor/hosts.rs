//! Nodes on other hosts whose ssh session ends: the host out of reach is not the node failing.
//!
//! A node there runs detached from its session (`remote::node_script`): when the session is lost
//! the node runs on, the timeline says the host is unreachable, and tcluster tries the host again
//! every [`RECONNECT_EVERY`]. A new session reattaches to the running node
//! (`remote::attach_script`), streaming the output it missed; only if the node is gone by then
//! is it started afresh.

use super::{RECONNECT_EVERY, RunningAs, Supervisor, TaskNews, remote};
use crate::supervisor::child;
use crate::supervisor::timeline::TimelineKind;

/// What a remote node's session status means.
const LOST: &str = "exit code 255";

impl Supervisor {
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
        m.exit = Some("host unreachable".to_string());
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
