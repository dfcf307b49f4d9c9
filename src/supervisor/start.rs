//! Starting and stopping nodes: the launch order, the shaped links each node is told, waiting
//! for a master to listen, starting one node (a child process or an in-process task), and the
//! orderly stop at the end of a run.

use super::*;

impl Supervisor {
    // ----- starting -----

    pub(super) async fn start_all(
        &mut self,
        internal: &mut mpsc::UnboundedReceiver<Internal>,
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
        for name in &masters {
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        for name in &chat_servers {
            self.start_node(name).await?;
            self.wait_ready(name, internal).await?;
        }
        let Some(primary_addr) = self.nodes[&self.view.primary]
            .address
            .as_ref()
            .and_then(|a| a.parse().ok())
        else {
            return Err(LaunchError::Node {
                node: self.view.primary.clone(),
                reason: "it reported no address".into(),
            });
        };
        self.primary_addr = Some(primary_addr);
        for (name, addr) in self.master_addresses() {
            let (resubscribe, resync) = mpsc::unbounded_channel();
            self.resubscribe.insert(name.clone(), resubscribe);
            tokio::spawn(follow_master(
                name,
                addr,
                self.topology.globals.cluster_secret.clone(),
                self.internal.clone(),
                resync,
                self.shutdown.clone(),
            ));
        }
        let others: Vec<String> = self
            .order
            .iter()
            .filter(|n| !self.nodes[*n].node.listens())
            .cloned()
            .collect();
        for name in others {
            match self.nodes[&name].node.kind {
                NodeKind::Worker => {
                    // One shaped link per master, the primary's first: a worker moves to the next
                    // master when the one it uses is gone or is not the primary.
                    let links = self.links_to(&name, &masters).await?;
                    if let Some(m) = self.nodes.get_mut(&name) {
                        m.connect_to = Some(links.join(","));
                    }
                    self.start_node(&name).await?;
                }
                NodeKind::Bot => {
                    // A bot submits to the primary and posts to a chat server, over shaped links
                    // it is told as `name=proxy` pairs.
                    let named = |servers: &[String], links: Vec<String>| -> String {
                        servers
                            .iter()
                            .zip(links)
                            .map(|(s, l)| format!("{s}={l}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    let mut ordered = masters.clone();
                    ordered.sort_by_key(|s| *s != self.view.primary);
                    let to_masters = self.links_to(&name, &ordered).await?;
                    let to_chat = self.links_to(&name, &chat_servers).await?;
                    if let Some(m) = self.nodes.get_mut(&name) {
                        m.connect_to = Some(named(&ordered, to_masters));
                        m.chat_links = Some(named(&chat_servers, to_chat));
                    }
                    self.start_node(&name).await?;
                }
                NodeKind::Client => self.set_state_note(
                    &name,
                    "clients are run by people (tcluster client), not launched",
                ),
                NodeKind::Master | NodeKind::Chat => {}
            }
        }
        Ok(())
    }

    /// `from`'s shaped links to `servers`, as `host:port` of each proxy, in the order given (the
    /// primary first, for masters).
    pub(super) async fn links_to(
        &mut self,
        from: &str,
        servers: &[String],
    ) -> Result<Vec<String>, LaunchError> {
        let mut ordered: Vec<&String> = servers.iter().collect();
        ordered.sort_by_key(|s| **s != self.view.primary);
        let mut links = Vec::new();
        for server in ordered {
            let proxy = self
                .shaper
                .proxy(from, server)
                .await
                .map_err(|e| LaunchError::Node {
                    node: from.to_string(),
                    reason: format!("cannot open its link to {server}: {e}"),
                })?;
            links.push(proxy.to_string());
        }
        Ok(links)
    }

    /// Servers of one kind reach each other through shaped links, so a partition between two
    /// of them is real: each is told its peers as `name=proxy` pairs.
    pub(super) async fn link_peers(&mut self, servers: &[String]) -> Result<(), LaunchError> {
        for name in servers {
            let mut links = Vec::new();
            for peer in servers.iter().filter(|p| *p != name) {
                let proxy = self
                    .shaper
                    .proxy(name, peer)
                    .await
                    .map_err(|e| LaunchError::Node {
                        node: name.clone(),
                        reason: format!("cannot open its link to {peer}: {e}"),
                    })?;
                links.push(format!("{peer}={proxy}"));
            }
            if let Some(m) = self.nodes.get_mut(name) {
                m.connect_to = Some(links.join(","));
            }
        }
        Ok(())
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
        masters.sort_by_key(|(n, _)| *n != self.view.primary);
        masters
    }

    pub(super) fn set_state_note(&self, name: &str, why: &str) {
        self.note(format!("{name}: {why}"));
    }

    /// Waits until a master says where it listens (or fails).
    pub(super) async fn wait_ready(
        &mut self,
        name: &str,
        internal: &mut mpsc::UnboundedReceiver<Internal>,
    ) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while !self.nodes[name].ready {
            let message = tokio::time::timeout_at(deadline, internal.recv()).await;
            match message {
                Ok(Some(message)) => {
                    if let Internal::Exited { node, .. } = &message
                        && node == name
                    {
                        let status = match &message {
                            Internal::Exited { status, .. } => status.clone(),
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
        let topology_path = self.options.topology_path.clone();
        let state_dir = self.options.state_dir.clone();
        let program = self.options.program.clone();
        let secret = self.topology.globals.cluster_secret.clone();
        let heartbeat_ms = self.topology.policies.heartbeat.interval.as_millis() as u64;
        let internal = self.internal.clone();
        let sink = self.sink.clone();
        let topology = self.topology.clone();

        let Some(m) = self.nodes.get_mut(name) else {
            return Ok(());
        };
        m.generation += 1;
        m.ready = false;
        m.exited = false;
        m.killed = false;
        m.paused = false;
        m.launched_at = Instant::now();
        let generation = m.generation;
        let node = m.node.clone();
        let listen = match (node.kind, &m.address) {
            // A restarted master listens where it did before: its workers' links point there.
            (NodeKind::Master | NodeKind::Chat, Some(addr)) => Some(addr.clone()),
            (NodeKind::Master | NodeKind::Chat, None) => {
                Some(format!("{}:{}", node.address, node.port.unwrap_or(0)))
            }
            _ => None,
        };
        // A worker is told its links to every master; a master, its links to the others.
        let connect_to = m.connect_to.clone();
        let chat_links = m.chat_links.clone();
        let node_name: Arc<str> = Arc::from(name);

        if node.launch == Launch::Inproc && node.command.is_none() {
            let (control, pause) = NodeControl::new();
            control.set_skew(m.control.skew());
            m.control = control.clone();
            let shutdown = self.shutdown.child_token();
            let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
            let options = NodeOptions {
                listen,
                coordinator: connect_to,
                chat: chat_links,
                max_connections: None,
                announce: false,
                control,
                ready: Some(ready_tx),
                state_dir: Some(state_dir.clone()),
            };
            m.running = Some(Running::Inproc {
                shutdown: shutdown.clone(),
                pause,
            });
            let (task_internal, task_name) = (internal.clone(), name.to_string());
            tokio::spawn(async move {
                while let Some(address) = ready_rx.recv().await {
                    let _ = task_internal.send(Internal::Ready {
                        node: task_name.clone(),
                        generation,
                        address,
                    });
                }
            });
            let task_name = name.to_string();
            tokio::spawn(async move {
                let status = match node::run(&topology, &task_name, options, shutdown).await {
                    Ok(()) => "stopped".to_string(),
                    Err(e) => e.to_string(),
                };
                let _ = internal.send(Internal::Exited {
                    node: task_name,
                    generation,
                    status,
                });
            });
            self.timeline(
                name,
                TimelineKind::NodeStarted {
                    node: name.to_string(),
                    pid: None,
                    address: None,
                },
            );
            self.publish(name);
            return Ok(());
        }

        let command = match &node.command {
            Some(template) => launch::outside_command(
                template,
                &launch::Placement {
                    name,
                    coordinator: connect_to.as_deref(),
                    slots: node.resources.cpu,
                    secret: secret.as_deref(),
                    heartbeat_ms,
                },
            ),
            None => launch::builtin_command(
                &program,
                &topology_path,
                name,
                listen.as_deref(),
                connect_to.as_deref(),
                chat_links.as_deref(),
                Some(&state_dir),
            ),
        };
        let mut child = launch::spawn(command).map_err(|e| LaunchError::Node {
            node: name.into(),
            reason: e.to_string(),
        })?;
        let pid = child.id().unwrap_or_default();
        let stdin = child.stdin.take();
        let mut captures = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            let (internal, task_name) = (internal.clone(), name.to_string());
            captures.push(tokio::spawn(sink.clone().capture(
                node_name.clone(),
                false,
                stdout,
                move |line| {
                    let Some(rest) = line.strip_prefix("READY ") else {
                        return false;
                    };
                    let address = rest
                        .split_whitespace()
                        .last()
                        .unwrap_or_default()
                        .to_string();
                    let _ = internal.send(Internal::Ready {
                        node: task_name.clone(),
                        generation,
                        address,
                    });
                    true
                },
            )));
        }
        if let Some(stderr) = child.stderr.take() {
            captures.push(tokio::spawn(sink.clone().capture(
                node_name.clone(),
                true,
                stderr,
                |_| false,
            )));
        }
        {
            let (internal, task_name) = (internal.clone(), name.to_string());
            tokio::spawn(async move {
                let status = match child.wait().await {
                    Ok(status) => launch::describe_exit(status),
                    Err(e) => format!("lost track of it: {e}"),
                };
                // What it said last is read before its exit is reported (not longer than a
                // moment: a program it started may still hold the pipes open).
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    futures::future::join_all(captures),
                )
                .await;
                let _ = internal.send(Internal::Exited {
                    node: task_name,
                    generation,
                    status,
                });
            });
        }
        if let Some(m) = self.nodes.get_mut(name) {
            m.running = Some(Running::Process { pid, stdin });
            // A restarted node keeps its skew.
            let skew = m.control.skew();
            if skew != 0 {
                self.send_skew(name, skew).await;
            }
        }
        self.timeline(
            name,
            TimelineKind::NodeStarted {
                node: name.to_string(),
                pid: Some(pid),
                address: None,
            },
        );
        self.publish(name);
        Ok(())
    }

    /// Stops every node: workers first, masters last; SIGTERM, then SIGKILL after a grace.
    pub(super) async fn stop_all(&mut self) {
        let names: Vec<String> = self.order.iter().rev().cloned().collect();
        for name in &names {
            let Some(m) = self.nodes.get_mut(name) else {
                continue;
            };
            m.stopped = true;
            match &m.running {
                Some(Running::Process { pid, .. }) => {
                    launch::signal_group(*pid, Signal::SIGCONT);
                    launch::signal_group(*pid, Signal::SIGTERM);
                }
                Some(Running::Inproc { shutdown, pause }) => {
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
                if let Some(Running::Process { pid, .. }) = &m.running
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), None)
                        .is_err()
                {
                    m.running = None;
                }
                if let Some(Running::Inproc { shutdown, .. }) = &m.running
                    && shutdown.is_cancelled()
                {
                    m.running = None;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for m in self.nodes.values_mut() {
            if let Some(Running::Process { pid, .. }) = m.running.take() {
                launch::signal_group(pid, Signal::SIGKILL);
            }
        }
        self.shutdown.cancel();
        info!("every node stopped");
    }
}
