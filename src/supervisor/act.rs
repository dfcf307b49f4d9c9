//! Acting on the cluster: faults (kill, pause, restart, partition, latency, loss, skew), their
//! repairs (resume, heal), submissions and scenarios, each recorded on the timeline and handed
//! to the fault tracker with what the cluster should do in answer.

use super::*;
use faults::Watch;

/// The target shown for an action: a node, or a link (`coordinator <-> worker-2`).
fn target_text(action: &ClusterAction) -> String {
    match action {
        ClusterAction::Kill(n)
        | ClusterAction::Pause(n)
        | ClusterAction::Resume(n)
        | ClusterAction::Restart(n)
        | ClusterAction::Skew { node: n, .. } => n.clone(),
        ClusterAction::Partition { a, b: None, .. } => a.clone(),
        ClusterAction::Partition {
            a,
            b: Some(b),
            one_way,
        } => {
            let arrow = if *one_way { "->" } else { "<->" };
            format!("{a} {arrow} {b}")
        }
        ClusterAction::Loss {
            a,
            b,
            one_way: true,
            ..
        } => format!("{a} -> {b}"),
        ClusterAction::Latency { a, b, .. } | ClusterAction::Loss { a, b, .. } => {
            format!("{a} <-> {b}")
        }
        ClusterAction::Heal { a, b } => match (a, b) {
            (Some(a), Some(b)) => format!("{a} <-> {b}"),
            (Some(a), None) => a.clone(),
            _ => "every link".to_string(),
        },
        ClusterAction::Submit { data, .. } => data.clone(),
        ClusterAction::Say(text) => text.clone(),
        ClusterAction::Speed(scale) => format!("{scale}×"),
        ClusterAction::Expect(e) => e.text.clone(),
        ClusterAction::Hold { a, b, one_way } => {
            format!("{a} {} {b}", if *one_way { "->" } else { "<->" })
        }
        ClusterAction::Release { a, b } => match (a, b) {
            (Some(a), Some(b)) => format!("{a} <-> {b}"),
            (Some(a), None) => a.clone(),
            _ => "every held link".to_string(),
        },
    }
}

impl Supervisor {
    /// Does `action` to the cluster, records it on the timeline, and hands it to the fault
    /// tracker with what to watch for.
    /// The action with `primary` replaced by the master that serves now (unless a node has
    /// that name); `None`, said on the timeline, when there is none or the step would join the
    /// primary to itself.
    fn primary_named(&self, mut action: ClusterAction) -> Option<ClusterAction> {
        let word = crate::topology::PRIMARY_WORD;
        if self.nodes.contains_key(word) || !action.nodes_mut().iter().any(|n| *n == word) {
            return Some(action);
        }
        let asked = action.to_string();
        let primary = self.view.read().primary.clone();
        if primary.is_empty() {
            self.note(format!("{asked}: there is no primary; skipped"));
            return None;
        }
        let mut nodes = action.nodes_mut();
        for node in nodes.iter_mut().filter(|n| **n == word) {
            node.clone_from(&primary);
        }
        if nodes.len() == 2 && nodes[0] == nodes[1] {
            self.note(format!(
                "{asked}: {primary} is the primary now, so both ends are {primary}; skipped"
            ));
            return None;
        }
        Some(action)
    }

    pub(super) async fn act(&mut self, action: ClusterAction) {
        let Some(action) = self.primary_named(action) else {
            return;
        };
        let now = self.cluster_now();
        let unknown: Vec<&String> = match &action {
            ClusterAction::Kill(n)
            | ClusterAction::Pause(n)
            | ClusterAction::Resume(n)
            | ClusterAction::Restart(n)
            | ClusterAction::Skew { node: n, .. } => vec![n],
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|n| !self.nodes.contains_key(*n))
        .collect();
        if let Some(n) = unknown.first() {
            self.note(format!("no node named {n}"));
            return;
        }
        let target = target_text(&action);
        let mut settled = Vec::new();
        if let Some(watch) = self.watch_for(&action) {
            let (number, out) = self.tracker.record(now, action.name(), &target, watch);
            self.timeline(
                "operator",
                TimelineKind::Action {
                    fault: Some(number),
                    action: action.name().to_string(),
                    target: target.clone(),
                    text: action.to_string(),
                },
            );
            settled = out;
        }
        let mut repaired = Vec::new();
        match action {
            ClusterAction::Say(text) => self.timeline("scenario", TimelineKind::Say { text }),
            ClusterAction::Speed(scale) => self.set_speed(scale).await,
            ClusterAction::Expect(expectation) => self.expect(expectation),
            ClusterAction::Hold { a, b, one_way } => {
                self.shaper.hold(&a, &b, one_way);
                self.refresh_partitions();
            }
            ClusterAction::Release { a, b } => {
                let delivered = self.shaper.release(a.as_deref(), b.as_deref());
                self.note(format!(
                    "released: {delivered} held messages delivered in order"
                ));
                self.refresh_partitions();
            }
            ClusterAction::Submit {
                data,
                count,
                priority,
                cluster,
            } => self.submit(data, count, priority, cluster.as_deref()),
            ClusterAction::Kill(n) => self.kill(&n),
            ClusterAction::Pause(n) => self.pause(&n, true),
            ClusterAction::Resume(n) => {
                self.pause(&n, false);
                repaired.push(n);
            }
            ClusterAction::Restart(n) => self.restart(&n).await,
            ClusterAction::Partition { a, b, one_way } => {
                self.shaper.cut(&a, b.as_deref(), one_way);
                self.refresh_partitions();
            }
            ClusterAction::Heal { a, b } => {
                repaired = self.healed_nodes(a.as_deref(), b.as_deref());
                self.shaper.heal(a.as_deref(), b.as_deref());
                self.refresh_partitions();
            }
            ClusterAction::Latency {
                a,
                b,
                latency,
                jitter,
            } => {
                self.shaper.set_latency(&a, &b, latency, jitter);
                self.refresh_partitions();
            }
            ClusterAction::Loss {
                a,
                b,
                loss,
                one_way,
            } => {
                self.shaper.set_loss(&a, &b, loss, one_way);
                self.refresh_partitions();
            }
            ClusterAction::Skew { node, offset_ms } => {
                if let Some(m) = self.nodes.get(&node) {
                    m.control.set_skew(offset_ms);
                }
                self.send_skew(&node, offset_ms).await;
                self.publish(&node);
            }
        }
        settled.extend(self.tracker.repaired(&repaired));
        for kind in settled {
            self.timeline("supervisor", kind);
        }
    }

    /// What the cluster should do in answer to an action (`None` for a line or a submission,
    /// which are not faults).
    fn watch_for(&self, action: &ClusterAction) -> Option<Watch> {
        let kind = |n: &str| self.nodes.get(n).map(|m| m.node.kind);
        let masters = self
            .nodes
            .values()
            .filter(|m| m.node.kind == NodeKind::Master)
            .count();
        let dead = |n: &str| {
            self.view
                .read()
                .state
                .workers
                .get(n)
                .is_some_and(|w| w.health == crate::protocol::message::Health::Dead)
        };
        // A change that may make a worker late enough to be declared dead.
        let link_change = |a: &str, b: &str, text: String| match [a, b]
            .into_iter()
            .find(|n| kind(n) == Some(NodeKind::Worker))
        {
            Some(worker) => Watch::Affects(worker.to_string(), text),
            None => Watch::Done(text),
        };
        // A node hit as a whole (killed, paused, cut off from everyone): who should notice.
        let hit = |n: &str, what: &str| match kind(n) {
            Some(NodeKind::Worker) => Watch::Worker(n.to_string()),
            Some(NodeKind::Master) if n == self.view.read().primary && masters > 1 => {
                Watch::Primary(n.to_string())
            }
            Some(NodeKind::Master) if n == self.view.read().primary => {
                Watch::Done(format!("{n} was the only master: nobody can take over"))
            }
            Some(NodeKind::Master) => Watch::Backup(n.to_string()),
            Some(NodeKind::Chat)
                if self
                    .view
                    .read()
                    .clocks
                    .elected
                    .as_ref()
                    .is_some_and(|(master, _)| master == n) =>
            {
                Watch::TimeMaster(n.to_string())
            }
            Some(NodeKind::Chat) => Watch::Done(format!(
                "no coordinator watches chat servers: {n}'s clients move to another when it {what}"
            )),
            _ => Watch::Done(format!("no coordinator watches {n}")),
        };
        Some(match action {
            ClusterAction::Say(_)
            | ClusterAction::Submit { .. }
            | ClusterAction::Expect(_)
            | ClusterAction::Speed(_) => {
                return None;
            }
            ClusterAction::Kill(n) => hit(n, "is gone"),
            ClusterAction::Pause(n) => hit(n, "falls silent"),
            ClusterAction::Partition { a, b: None, .. } => hit(a, "falls silent"),
            ClusterAction::Restart(n)
                if kind(n) == Some(NodeKind::Master) && *n == self.view.read().primary =>
            {
                hit(n, "is gone")
            }
            ClusterAction::Restart(n) => Watch::Up(n.clone()),
            ClusterAction::Partition { a, b: Some(b), .. } => {
                let linked = self.shaper.state(a, b).is_some() || self.shaper.state(b, a).is_some();
                match (kind(a), kind(b)) {
                    _ if !linked => {
                        Watch::Done(format!("{a} and {b} have no link: nothing to cut"))
                    }
                    (Some(NodeKind::Master), Some(NodeKind::Master)) => {
                        Watch::Masters(vec![a.clone(), b.clone()])
                    }
                    (Some(NodeKind::Worker), _) => Watch::Worker(a.clone()),
                    (_, Some(NodeKind::Worker)) => Watch::Worker(b.clone()),
                    _ => Watch::Done(format!("{a} ↔ {b} cut")),
                }
            }
            ClusterAction::Resume(n) if dead(n) => Watch::Rejoin(vec![n.clone()]),
            ClusterAction::Resume(n) => Watch::Done(format!("{n} resumed")),
            // A held link may keep a worker's heartbeats long enough to have it declared dead.
            ClusterAction::Hold { a, b, .. } => link_change(
                a,
                b,
                format!("{a} ↔ {b} held: its messages wait for the operator (H)"),
            ),
            ClusterAction::Release { .. } => {
                Watch::Done("held messages delivered, in order".to_string())
            }
            ClusterAction::Heal { a, b } => {
                let dead: Vec<String> = self
                    .healed_nodes(a.as_deref(), b.as_deref())
                    .into_iter()
                    .filter(|n| dead(n))
                    .collect();
                if dead.is_empty() {
                    Watch::Done("links back".to_string())
                } else {
                    Watch::Rejoin(dead)
                }
            }
            ClusterAction::Latency {
                a,
                b,
                latency,
                jitter,
            } => {
                let ms = |d: &std::time::Duration| d.as_millis();
                let jitter = if jitter.is_zero() {
                    String::new()
                } else {
                    format!(" ± {} ms", ms(jitter))
                };
                link_change(a, b, format!("{a} ↔ {b}: {} ms{jitter}", ms(latency)))
            }
            ClusterAction::Loss {
                a,
                b,
                loss,
                one_way,
            } => {
                let arrow = if *one_way { "→" } else { "↔" };
                link_change(
                    a,
                    b,
                    format!("{a} {arrow} {b}: {}% of messages lost", loss.0),
                )
            }
            // With `policy clock`, the time master should read this clock and bring it back.
            ClusterAction::Skew { node, offset_ms }
                if self.topology.policies.clock.is_some()
                    && matches!(
                        kind(node),
                        Some(
                            NodeKind::Worker
                                | NodeKind::Master
                                | NodeKind::Chat
                                | NodeKind::Broker
                                | NodeKind::Bot
                        )
                    ) =>
            {
                Watch::Clock(
                    node.clone(),
                    format!(
                        "{node}'s clock is {offset_ms:+} ms off: the time master should bring it back"
                    ),
                )
            }
            ClusterAction::Skew { node, offset_ms } => link_change(
                node,
                node,
                format!("{node}'s clock is {offset_ms:+} ms off"),
            ),
        })
    }

    /// The nodes whose cut links a heal of (`a`, `b`) mends.
    fn healed_nodes(&self, a: Option<&str>, b: Option<&str>) -> Vec<String> {
        let mut nodes = BTreeSet::new();
        for ((from, to), state) in self.shaper.all() {
            let hit = match (a, b) {
                (Some(a), Some(b)) => (from == a && to == b) || (from == b && to == a),
                (Some(a), None) => from == a || to == a,
                _ => true,
            };
            if hit && state.cut {
                nodes.insert(from);
                nodes.insert(to);
            }
        }
        nodes.into_iter().collect()
    }

    pub(super) fn kill(&mut self, name: &str) {
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        m.killed = true;
        match &m.running {
            // On another host: its own process group there.
            Some(RunningAs::Process { .. }) if m.signals.is_some() => {
                if let Some(signals) = &m.signals {
                    signals.send(Signal::SIGKILL);
                }
            }
            Some(RunningAs::Process { pid, .. }) => {
                // A paused process dies of SIGKILL too; no need to continue it first.
                child::signal_group(*pid, Signal::SIGKILL);
            }
            Some(RunningAs::Inproc { shutdown, .. }) => shutdown.cancel(),
            None => self.note(format!("{name} is not running")),
        }
    }

    pub(super) fn pause(&mut self, name: &str, paused: bool) {
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        match &m.running {
            Some(RunningAs::Process { .. }) if m.signals.is_some() => {
                if let Some(signals) = &m.signals {
                    signals.send(signal);
                }
            }
            Some(RunningAs::Process { pid, .. }) => {
                child::signal_group(
                    *pid,
                    if paused {
                        Signal::SIGSTOP
                    } else {
                        Signal::SIGCONT
                    },
                );
            }
            Some(RunningAs::Inproc { pause, .. }) => pause.set(paused),
            None => {
                self.note(format!("{name} is not running"));
                return;
            }
        }
        m.paused = paused;
        self.publish(name);
    }

    pub(super) async fn restart(&mut self, name: &str) {
        let running = self.nodes.get(name).is_some_and(|m| m.running.is_some());
        if running {
            if let Some(m) = self.nodes.get_mut(name) {
                m.restart_pending = true;
            }
            self.kill(name);
            self.publish(name);
        } else if let Err(e) = self.start_node(name).await {
            self.note(format!("restart failed: {e}"));
        }
    }

    /// The whole cluster runs at `scale` from now on: in-process nodes share the pace, processes
    /// are told on their control channel; outside programs keep their own time (said).
    pub(super) async fn set_speed(&mut self, scale: f64) {
        self.pace.set_scale(scale);
        let scale = self.pace.scale();
        let mut outside = Vec::new();
        for name in self.order.clone() {
            let Some(m) = self.nodes.get(&name) else {
                continue;
            };
            if m.node.command.is_some() {
                outside.push(name);
                continue;
            }
            self.send_control(&name, &format!("speed {scale}")).await;
        }
        self.timeline("operator", TimelineKind::Speed { scale });
        if !outside.is_empty() && scale != 1.0 {
            self.note(format!(
                "{} run outside programs, which keep real time: they heartbeat and work faster than the cluster now",
                outside.join(", ")
            ));
        }
    }

    /// A line on a process's control channel (its stdin): `skew MS`, `speed SCALE`. False when
    /// the node is not a running process of tcluster's own (or the line could not be written).
    pub(super) async fn send_control(&mut self, name: &str, line: &str) -> bool {
        let Some(m) = self.nodes.get_mut(name) else {
            return false;
        };
        if m.node.command.is_some() {
            return false;
        }
        if let Some(RunningAs::Process {
            stdin: Some(stdin), ..
        }) = &mut m.running
        {
            if stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_ok()
            {
                return true;
            }
            warn!(node = name, "cannot reach the node's control channel");
        }
        false
    }

    pub(super) async fn send_skew(&mut self, name: &str, offset_ms: i64) {
        self.send_control(name, &format!("skew {offset_ms}")).await;
        let Some(m) = self.nodes.get(name) else {
            return;
        };
        if m.node.command.is_some() {
            self.note(format!(
                "{name} runs an outside program, which ignores clock skew"
            ));
        }
    }

    pub(super) fn refresh_partitions(&mut self) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.publish(&name);
        }
    }

    /// Hands a submission to the submitter, which waits for the primary's reply on its own (a
    /// primary waiting for its backup must not stall the supervisor, nor its timeline).
    /// Submits to the primary of `cluster` (the default cluster's when `None`).
    pub(super) fn submit(
        &mut self,
        data: String,
        count: u32,
        priority: i32,
        cluster: Option<&str>,
    ) {
        let Some(addr) = self.primary_addr_of(cluster) else {
            if self.view.read().primary.is_empty() {
                self.note("no masters in this topology: it runs no jobs".to_string());
            } else {
                self.note(format!(
                    "no primary of cluster {} to submit to",
                    cluster.unwrap_or(crate::topology::DEFAULT_CLUSTER)
                ));
            }
            return;
        };
        self.submits_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Jobs of the main cluster are tracked by the main reading; another's by its own.
        let cluster = cluster
            .filter(|c| *c != self.main_cluster())
            .map(str::to_string);
        let _ = self.submits.send(Submission {
            addr,
            data,
            count,
            priority,
            cluster,
        });
    }

    /// Where the primary of `cluster` listens (the main cluster's when `None`), as each
    /// cluster's reading follows its primary.
    fn primary_addr_of(&self, cluster: Option<&str>) -> Option<std::net::SocketAddr> {
        match cluster.and_then(|c| self.others.get(c)) {
            Some(other) => other.addr,
            None => self.primary_addr,
        }
    }

    pub(super) fn run_scenario(&mut self, name: &str) {
        let Some(scenario) = self.topology.scenario(name).cloned() else {
            self.note(format!("no scenario named {name}"));
            return;
        };
        let Some(commands) = self.commands_sender() else {
            return;
        };
        let scale = self.topology.globals.time_scale;
        self.scenario_begins(scale);
        self.timeline(
            "scenario",
            TimelineKind::ScenarioBegins {
                name: name.to_string(),
                steps: scenario.steps.len(),
            },
        );
        tokio::spawn(scenario::run(scenario, scale, self.pace.clone(), commands));
    }

    pub(super) fn commands_sender(&self) -> Option<mpsc::Sender<Request>> {
        self.commands.as_ref().and_then(mpsc::WeakSender::upgrade)
    }
}
