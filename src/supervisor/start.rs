//! Starting and stopping nodes: the launch order, waiting
//! for a master to listen, starting one node (a child process or an in-process task), and the
//! orderly stop at the end of a run.

use super::*;

/// The longest the launch waits for the masters' subscriptions before starting the workers
/// anyway (their first events are then in the history only).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

impl Supervisor {
    // ----- starting -----

    pub(super) async fn start_all(
        &mut self,
        internal: &mut mpsc::UnboundedReceiver<TaskNews>,
    ) -> Result<(), LaunchError> {
        let masters: Vec<String> = self
            .order
            .iter()
            .filter(|n| self.nodes[*n].node.kind == NodeKind::Master)
            .cloned()
            .collect();
        let chat_servers: Vec<String> = self
            .order
            .iter()
            .filter(|n| self.nodes[*n].node.kind == NodeKind::Chat)
            .cloned()
            .collect();
        self.link_peers(&masters).await?;
        self.link_peers(&chat_servers).await?;
        // With `policy clock`, each master reads the chat servers' and brokers' clocks over
        // shaped links.
        let time_peers: Vec<String> = self
            .order
            .iter()
            .filter(|n| matches!(self.nodes[*n].node.kind, NodeKind::Chat | NodeKind::Broker))
            .cloned()
            .collect();
        if self.topology.policies.clock.is_some() && !time_peers.is_empty() {
            for name in &masters {
                let links = self.named_links_to(name, &time_peers).await?;
                if let Some(m) = self.nodes.get_mut(name) {
                    m.chat_links = Some(links);
                }
            }
        }
        for name in &masters {
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        for name in &chat_servers {
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        // Brokers, in front of the chat servers: each reaches every one over a shaped link.
        let brokers: Vec<String> = self
            .order
            .iter()
            .filter(|n| self.nodes[*n].node.kind == NodeKind::Broker)
            .cloned()
            .collect();
        for name in &brokers {
            let links = self.named_links_to(name, &chat_servers).await?;
            if let Some(m) = self.nodes.get_mut(name) {
                m.chat_links = Some(links);
            }
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        // Bots post through a broker when there is one.
        let chat_servers = if brokers.is_empty() {
            chat_servers
        } else {
            brokers
        };
        if !self.view.read().primary.is_empty() {
            let Some(primary_addr) = self.nodes[&self.view.read().primary]
                .address
                .as_ref()
                .and_then(|a| a.parse().ok())
            else {
                return Err(LaunchError::Node {
                    node: self.view.read().primary.clone(),
                    reason: "it reported no address".into(),
                });
            };
            self.primary_addr = Some(primary_addr);
        }
        self.find_other_primaries();
        for (name, addr) in self.event_sources() {
            let (resubscribe, resync) = mpsc::unbounded_channel();
            self.resubscribe.insert(name.clone(), resubscribe);
            tokio::spawn(follow_master(
                name,
                addr,
                self.topology.peer_key(),
                self.internal.clone(),
                resync,
                self.shutdown.clone(),
            ));
        }
        // Each chat server's entries, read by the launcher itself (for expectations).
        let chat: Vec<(String, SocketAddr)> = self
            .order
            .iter()
            .filter_map(|n| {
                let m = &self.nodes[n];
                (m.node.kind == NodeKind::Chat).then_some(())?;
                Some((n.clone(), m.address.as_ref()?.parse().ok()?))
            })
            .collect();
        if !chat.is_empty() {
            tokio::spawn(super::watch::poll_chat_servers(
                chat,
                self.topology.peer_key(),
                self.internal.clone(),
                self.shutdown.clone(),
            ));
        }
        // Workers start once every master's subscription has begun, so that what they do (join,
        // take jobs) is heard live, on the timeline, not only in a history read as the past.
        let subscribing: Vec<String> = self.event_sources().into_iter().map(|(n, _)| n).collect();
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_WAIT;
        while !subscribing.iter().all(|m| self.subscribed.contains(m)) {
            match tokio::time::timeout_at(deadline, internal.recv()).await {
                Ok(Some(message)) => self.internal_message(message).await,
                Ok(None) | Err(_) => break,
            }
        }
        let others: Vec<String> = self
            .order
            .iter()
            .filter(|n| !self.nodes[*n].node.listens())
            .cloned()
            .collect();
        for name in others {
            // A worker or bot talks to the masters of its own cluster.
            let cluster = self.nodes[&name].node.cluster.clone();
            let all_masters = &masters;
            let masters: Vec<String> = masters
                .iter()
                .filter(|m| self.nodes[*m].node.cluster == cluster)
                .cloned()
                .collect();
            match self.nodes[&name].node.kind {
                NodeKind::Worker => {
                    // One shaped link per master, the primary's first, as `name=proxy` (the
                    // name is what an encrypted master's certificate must say): a worker moves
                    // to the next master when the one it uses is gone or is not the primary.
                    let mut links = vec![self.named_links_to(&name, &masters).await?];
                    // With lending, links to the other clusters' masters too, by name: where
                    // it goes when lent.
                    if self.topology.policies.lending.is_some() {
                        let others: Vec<String> = all_masters
                            .iter()
                            .filter(|m| self.nodes[*m].node.cluster != cluster)
                            .cloned()
                            .collect();
                        links.push(self.named_links_to(&name, &others).await?);
                    }
                    if let Some(m) = self.nodes.get_mut(&name) {
                        m.connect_to = Some(links.join(","));
                    }
                    self.start_node(&name).await?;
                }
                NodeKind::Bot => {
                    // A bot submits to the primary and posts to a chat server, over shaped links
                    // it is told as `name=proxy` pairs.
                    let to_masters = self.named_links_to(&name, &masters).await?;
                    let to_chat = self.named_links_to(&name, &chat_servers).await?;
                    if let Some(m) = self.nodes.get_mut(&name) {
                        m.connect_to = Some(to_masters);
                        m.chat_links = Some(to_chat);
                    }
                    self.start_node(&name).await?;
                }
                NodeKind::Client => self.set_state_note(
                    &name,
                    "clients are run by people (tcluster client), not launched",
                ),
                NodeKind::Master | NodeKind::Chat | NodeKind::Broker => {}
            }
        }
        self.wait_for_hosts(internal).await
    }

    /// Nodes on other machines have started there (said their process id) or the launch fails,
    /// naming the host and what ssh said.
    async fn wait_for_hosts(
        &mut self,
        internal: &mut mpsc::UnboundedReceiver<TaskNews>,
    ) -> Result<(), LaunchError> {
        let remote: Vec<String> = self
            .order
            .iter()
            .filter(|n| self.nodes[*n].node.host.is_some() && self.nodes[*n].running.is_some())
            .cloned()
            .collect();
        let deadline = tokio::time::Instant::now() + SSH_START_TIMEOUT;
        for name in remote {
            let url = self.nodes[&name]
                .node
                .host
                .as_ref()
                .map(|r| r.url())
                .unwrap_or_default();
            while self.nodes[&name].signals.is_none() {
                let failed = |why: String| LaunchError::Node {
                    node: name.clone(),
                    reason: format!("cannot start it on {url}: {why}"),
                };
                match tokio::time::timeout_at(deadline, internal.recv()).await {
                    Ok(Some(TaskNews::Exited { node, status, .. })) if node == name => {
                        return Err(failed(format!(
                            "ssh ended ({status}){}",
                            self.last_log_lines(&name)
                        )));
                    }
                    Ok(Some(message)) => self.internal_message(message).await,
                    Ok(None) => break,
                    Err(_) => {
                        return Err(failed(format!(
                            "it had not started after {SSH_START_TIMEOUT:?}{}",
                            self.last_log_lines(&name)
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whose events the launcher follows: every master; without masters, every chat server
    /// (they elect a time master among themselves and publish its rounds).
    pub(super) fn event_sources(&self) -> Vec<(String, SocketAddr)> {
        let masters = self.master_addresses();
        if !masters.is_empty() {
            return masters;
        }
        self.order
            .iter()
            .filter_map(|n| {
                let m = &self.nodes[n];
                (m.node.kind == NodeKind::Chat).then_some(())?;
                Some((n.clone(), m.address.as_ref()?.parse().ok()?))
            })
            .collect()
    }

    /// Every master that has an address, the primary first, then in launch order.
    pub(super) fn master_addresses(&self) -> Vec<(String, SocketAddr)> {
        let mut masters: Vec<(String, SocketAddr)> = self
            .order
            .iter()
            .filter_map(|n| {
                let m = &self.nodes[n];
                (m.node.kind == NodeKind::Master).then_some(())?;
                Some((n.clone(), m.address.as_ref()?.parse().ok()?))
            })
            .collect();
        masters.sort_by_key(|(n, _)| *n != self.view.read().primary);
        masters
    }

    pub(super) fn set_state_note(&self, name: &str, why: &str) {
        self.note(format!("{name}: {why}"));
    }

    /// Waits until a master says where it listens (or fails).
    pub(super) async fn wait_ready(
        &mut self,
        name: &str,
        internal: &mut mpsc::UnboundedReceiver<TaskNews>,
    ) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !self.nodes[name].ready {
            let message = tokio::time::timeout_at(deadline, internal.recv()).await;
            match message {
                Ok(Some(message)) => {
                    if let TaskNews::Exited { node, .. } = &message
                        && node == name
                    {
                        let status = match &message {
                            TaskNews::Exited { status, .. } => status.clone(),
                            _ => String::new(),
                        };
                        return Err(LaunchError::Node {
                            node: name.into(),
                            reason: format!("it exited ({status}){}", self.last_log_lines(name)),
                        });
                    }
                    self.internal_message(message).await;
                }
                Ok(None) => break,
                Err(_) => {
                    return Err(LaunchError::Node {
                        node: name.into(),
                        reason: format!(
                            "it was not listening after {START_TIMEOUT:?}{}",
                            self.last_log_lines(name)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    pub(super) fn last_log_lines(&self, name: &str) -> String {
        let path = self
            .options
            .state_dir
            .join("logs")
            .join(format!("{name}.log"));
        let lines = self.sink.recent(name);
        if lines.is_empty() {
            return String::new();
        }
        format!(
            "; its last log lines ({}):\n    {}",
            path.display(),
            lines.join("\n    ")
        )
    }

    /// Starts (or starts again) one node.
    pub(super) async fn start_node(&mut self, name: &str) -> Result<(), LaunchError> {
        let Some(m) = self.nodes.get_mut(name) else {
            return Ok(());
        };
        m.generation += 1;
        // A fresh node: nowhere to reattach to yet, none of its output read.
        m.attachment = Default::default();
        m.ready = false;
        m.exited = false;
        m.killed = false;
        m.paused = false;
        m.launched_at = Instant::now();
        let node = m.node.clone();
        let listen = match (node.kind, &m.address) {
            // A restarted master listens where it did before: its workers' links point there.
            (NodeKind::Master | NodeKind::Chat | NodeKind::Broker, Some(addr)) => {
                Some(addr.clone())
            }
            (NodeKind::Master | NodeKind::Chat | NodeKind::Broker, None) => {
                Some(format!("{}:{}", node.address, node.port.unwrap_or(0)))
            }
            _ => None,
        };
        // A worker is told its links to every master; a master, its links to the others.
        let start = Starting {
            generation: m.generation,
            listen,
            connect_to: m.connect_to.clone(),
            chat_links: m.chat_links.clone(),
        };
        let pid = if node.launch == Launch::Inproc && node.command.is_none() {
            self.start_task(name, start);
            None
        } else {
            Some(self.start_process(&node, start).await?)
        };
        self.timeline(
            name,
            TimelineKind::NodeStarted {
                node: name.to_string(),
                pid,
                address: None,
            },
        );
        self.publish(name);
        Ok(())
    }

    /// Starts a built-in node as a task of this process.
    fn start_task(&mut self, name: &str, start: Starting) {
        let tls = self.tls_files(name);
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        let (control, pause) = NodeControl::with_pace(self.pace.clone());
        control.set_skew(m.control.skew());
        m.control = control.clone();
        let shutdown = self.shutdown.child_token();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let options = NodeOptions {
            listen: start.listen,
            coordinator: start.connect_to,
            chat: start.chat_links,
            max_connections: None,
            announce: false,
            control,
            ready: Some(ready_tx),
            state_dir: Some(self.options.state_dir.clone()),
            tls,
        };
        m.running = Some(RunningAs::Inproc {
            shutdown: shutdown.clone(),
            pause,
        });
        let generation = start.generation;
        let (news, task_name) = (self.internal.clone(), name.to_string());
        tokio::spawn(async move {
            while let Some(address) = ready_rx.recv().await {
                let _ = news.send(TaskNews::Ready {
                    node: task_name.clone(),
                    generation,
                    address,
                });
            }
        });
        let (news, task_name) = (self.internal.clone(), name.to_string());
        // One copy for all of them: a thousand in-process workers must not mean a thousand
        // copies of a topology of a thousand nodes.
        let topology = self
            .shared_topology
            .get_or_insert_with(|| std::sync::Arc::new(self.topology.clone()))
            .clone();
        tokio::spawn(async move {
            let status = match node::run(&topology, &task_name, options, shutdown).await {
                Ok(()) => "stopped".to_string(),
                Err(e) => e.to_string(),
            };
            let _ = news.send(TaskNews::Exited {
                node: task_name,
                generation,
                status,
            });
        });
    }

    /// Starts a node as a child process (the built-in node, or an outside program) and
    /// returns its pid.
    async fn start_process(&mut self, node: &Node, start: Starting) -> Result<u32, LaunchError> {
        let name = node.name.as_str();
        let secret = self.topology.globals.cluster_secret.clone();
        let heartbeat_ms = self.topology.policies.heartbeat.interval.as_millis() as u64;
        let mut command = match &node.command {
            Some(template) => child::outside_command(
                template,
                &child::Placement {
                    name,
                    // Its link to the primary of its cluster (the first of its links).
                    coordinator: start
                        .connect_to
                        .as_deref()
                        .and_then(|list| list.split(',').next())
                        .map(|first| first.split_once('=').map_or(first, |(_, addr)| addr)),
                    slots: node.resources.cpu,
                    secret: secret.as_deref(),
                    heartbeat_ms,
                    cluster: &node.cluster,
                },
            ),
            None if let Some(remote) = &node.host => self.remote_command(name, remote, &start),
            None => {
                let mut command = child::builtin_command(
                    &self.options.program,
                    &self.options.topology_path,
                    name,
                    start.listen.as_deref(),
                    start.connect_to.as_deref(),
                    start.chat_links.as_deref(),
                    Some(&self.options.state_dir),
                );
                // Only built-in nodes are given the peer secret: an outside program is a
                // worker or a bot, and proves the cluster secret like any student's.
                command.env(crate::node::PEER_KEY_ENV, self.topology.peer_key());
                command.envs(self.tls_files(name).env());
                if self.nodes.get(name).is_some_and(|m| m.shapes_links) {
                    let seed = self.options.seed ^ crate::shaper::own::name_seed(name);
                    command.arg("--shape-links").arg(seed.to_string());
                }
                command
            }
        };
        // An outside program on an encrypted link is told the CA to check its server against.
        if node.command.is_some()
            && self
                .topology
                .encrypted_link(name, &self.view.read().primary)
            && let Some(ca) = self.tls_files(name).ca
        {
            command.env(crate::tls::CA_ENV, ca);
        }
        let mut child = child::spawn(command).map_err(|e| LaunchError::Node {
            node: name.into(),
            reason: e.to_string(),
        })?;
        let pid = child.id().unwrap_or_default();
        let mut stdin = child.stdin.take();
        // On another host: the secrets, the topology and the certificates first, on stdin.
        if node.host.is_some()
            && node.command.is_none()
            && let Some(input) = stdin.as_mut()
        {
            let preamble = self.remote_preamble(name)?;
            input
                .write_all(preamble.as_bytes())
                .await
                .map_err(|e| LaunchError::Node {
                    node: name.into(),
                    reason: format!("ssh took no input: {e}"),
                })?;
        }
        self.watch_child(name, start.generation, child);
        if let Some(m) = self.nodes.get_mut(name) {
            m.running = Some(RunningAs::Process { pid, stdin });
            // A restarted node keeps its skew, and runs at the cluster's pace now.
            let skew = m.control.skew();
            if skew != 0 {
                self.send_skew(name, skew).await;
            }
            let scale = self.pace.scale();
            if scale != self.topology.policies.time.scale {
                self.send_control(name, &format!("speed {scale}")).await;
            }
        }
        // A restarted node starts its own links as the topology declares them: told how they
        // are now.
        self.shaper.retell(name);
        Ok(pid)
    }

    /// A node on another host said its process group there: its signals go to it from now on.
    pub(super) fn remote_pid(&mut self, name: &str, generation: u64, pid: u32) {
        let Some(m) = self.nodes.get_mut(name) else {
            return;
        };
        let Some(remote) = m.node.host.clone() else {
            return;
        };
        if m.generation != generation {
            return;
        }
        let node = name.to_string();
        let multiplex = Some(self.options.state_dir.join("ssh"));
        m.signals = Some(super::remote::Signals::start(
            remote,
            pid,
            multiplex,
            move |why| {
                warn!(node = %node, "{why}");
            },
        ));
    }

    /// Reads a child's output into the logs (its `READY` line says it is up) and reports its
    /// exit.
    pub(super) fn watch_child(
        &self,
        name: &str,
        generation: u64,
        mut child: tokio::process::Child,
    ) {
        let node_name: Arc<str> = Arc::from(name);
        let mut captures = Vec::new();
        // A node on another host: its session's own lines, and the count of the node's.
        let remote_lines = self
            .nodes
            .get(name)
            .filter(|m| m.node.host.is_some() && m.node.command.is_none())
            .map(|m| m.attachment.lines.clone());
        if let Some(stdout) = child.stdout.take() {
            let (news, task_name) = (self.internal.clone(), name.to_string());
            // Only a node that shapes its own links reports on them: another's `LINK` line is
            // one of its log lines.
            let shaper = self
                .nodes
                .get(name)
                .filter(|m| m.shapes_links)
                .map(|_| self.shaper.clone());
            captures.push(tokio::spawn(self.sink.clone().capture(
                node_name.clone(),
                false,
                stdout,
                move |line| {
                    if let Some(lines) = &remote_lines {
                        if let Some(dir) = line.strip_prefix("DIR ") {
                            let _ = news.send(TaskNews::RemoteDir {
                                node: task_name.clone(),
                                generation,
                                dir: dir.to_string(),
                            });
                            return true;
                        }
                        if line == "ATTACHED" {
                            let _ = news.send(TaskNews::Reattached {
                                node: task_name.clone(),
                                generation,
                            });
                            return true;
                        }
                        lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    // A node on another host says its process id there first.
                    if let Some(pid) = line.strip_prefix("PID ").and_then(|p| p.parse().ok()) {
                        let _ = news.send(TaskNews::RemotePid {
                            node: task_name.clone(),
                            generation,
                            pid,
                        });
                        return true;
                    }
                    if let Some(shaper) = &shaper
                        && let Some(report) = line.strip_prefix(crate::shaper::own::REPORT_PREFIX)
                    {
                        if let Err(e) = shaper.take_report(&task_name, report) {
                            tracing::debug!(node = %task_name, "not a report on its links: {e}");
                        }
                        return true;
                    }
                    let Some(rest) = line.strip_prefix("READY ") else {
                        return false;
                    };
                    let address = rest
                        .split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_string();
                    let _ = news.send(TaskNews::Ready {
                        node: task_name.clone(),
                        generation,
                        address,
                    });
                    true
                },
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            captures.push(tokio::spawn(self.sink.clone().capture(
                node_name,
                true,
                stderr,
                |_| false,
            )));
        }
        let (news, task_name) = (self.internal.clone(), name.to_string());
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(status) => child::describe_exit(status),
                Err(e) => format!("lost track of it: {e}"),
            };
            // What it said last is read before its exit is reported (not longer than a
            // moment: a program it started may still hold the pipes open).
            let _ = tokio::time::timeout(
                Duration::from_millis(500),
                futures::future::join_all(captures),
            )
            .await;
            let _ = news.send(TaskNews::Exited {
                node: task_name,
                generation,
                status,
            });
        });
    }

    /// Stops every node: workers first, masters last; SIGTERM, then SIGKILL after a grace.
    pub(super) async fn stop_all(&mut self) {
        let names: Vec<String> = self.order.iter().rev().cloned().collect();
        // Nodes on other hosts first: continued (a paused one could not hear its end) and
        // asked to stop there, each waited for.
        for name in &names {
            if let Some(signals) = self.nodes.get(name).and_then(|m| m.signals.clone())
                && self.nodes.get(name).is_some_and(|m| m.running.is_some())
            {
                signals.send_and_wait(Signal::SIGCONT).await;
                signals.send_and_wait(Signal::SIGTERM).await;
            }
        }
        for name in &names {
            let Some(m) = self.nodes.get_mut(name) else {
                continue;
            };
            m.stopped = true;
            match &m.running {
                Some(RunningAs::Process { pid, .. }) => {
                    child::signal_group(*pid, Signal::SIGCONT);
                    child::signal_group(*pid, Signal::SIGTERM);
                }
                Some(RunningAs::Inproc { shutdown, pause }) => {
                    pause.set(false);
                    shutdown.cancel();
                }
                None => {}
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.nodes.values().any(|m| m.running.is_some()) && Instant::now() < deadline {
            // Exits arrive as internal messages; the loop is not running, so poll the pids.
            for m in self.nodes.values_mut() {
                if let Some(RunningAs::Process { pid, .. }) = &m.running
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), None)
                        .is_err()
                {
                    m.running = None;
                }
                if let Some(RunningAs::Inproc { shutdown, .. }) = &m.running
                    && shutdown.is_cancelled()
                {
                    m.running = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for m in self.nodes.values_mut() {
            if let Some(RunningAs::Process { pid, .. }) = m.running.take() {
                // The last word for a node on another host that did not stop in time.
                if let Some(signals) = &m.signals {
                    signals.send_and_wait(Signal::SIGKILL).await;
                }
                child::signal_group(pid, Signal::SIGKILL);
            }
        }
        self.shutdown.cancel();
        info!("every node stopped");
    }
}

/// What a node is started with.
pub(super) struct Starting {
    /// Which start of the node this is (news from an earlier one is ignored).
    pub(super) generation: u64,
    /// Where a server listens.
    pub(super) listen: Option<String>,
    /// Its links to the masters (a worker or bot), or to its peers (a server).
    pub(super) connect_to: Option<String>,
    /// A bot's links to the chat servers.
    pub(super) chat_links: Option<String>,
}
