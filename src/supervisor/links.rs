//! The shaped links each node is told: one proxy per (client, server) pair, as `host:port`
//! lists or `name=host:port` lists (the name is what an encrypted server's certificate says).

use super::*;

impl Supervisor {
    /// `from`'s shaped links to `servers`, as `host:port` of each proxy, in the order given (the
    /// primary first, for masters).
    pub(super) async fn links_to(
        &mut self,
        from: &str,
        servers: &[String],
    ) -> Result<Vec<String>, LaunchError> {
        let mut ordered: Vec<&String> = servers.iter().collect();
        ordered.sort_by_key(|s| **s != self.view.read().primary);
        let mut links = Vec::new();
        // A node on another machine reaches this one's proxies by this machine's address as
        // seen from there.
        let reach = match self.topology.node(from).and_then(|n| n.host.as_ref()) {
            Some(remote) => Some(super::remote::reach(remote).map_err(|e| LaunchError::Node {
                node: from.to_string(),
                reason: e,
            })?),
            None => None,
        };
        for server in ordered {
            if let Some(addr) = self.own_link(from, server) {
                self.shaper.adopt(from, server);
                if let Some(m) = self.nodes.get_mut(from) {
                    m.shapes_links = true;
                }
                links.push(addr);
                continue;
            }
            let proxy = self
                .shaper
                .proxy_at(from, server, reach)
                .await
                .map_err(|e| LaunchError::Node {
                    node: from.to_string(),
                    reason: format!("cannot open its link to {server}: {e}"),
                })?;
            links.push(proxy.to_string());
        }
        Ok(links)
    }

    /// The server's own address, if `from` shapes its link to `server` itself: with
    /// `--shaping nodes`, both nodes tcluster's own, each in a process of its own on this
    /// machine, the server listening already.
    fn own_link(&self, from: &str, server: &str) -> Option<String> {
        if self.options.shaping != super::Shaping::Nodes {
            return None;
        }
        let own_process = |name: &str| {
            self.nodes.get(name).is_some_and(|m| {
                m.node.command.is_none()
                    && m.node.host.is_none()
                    && m.node.launch != crate::topology::Launch::Inproc
            })
        };
        let address = self.nodes.get(server)?.address.clone()?;
        (own_process(from) && own_process(server)).then_some(address)
    }

    /// `from`'s shaped links to `servers` as the `name=host:port,…` list a node is told, the
    /// primary first if it is one of them.
    pub(super) async fn named_links_to(
        &mut self,
        from: &str,
        servers: &[String],
    ) -> Result<String, LaunchError> {
        let mut ordered = servers.to_vec();
        ordered.sort_by_key(|s| *s != self.view.read().primary);
        let links = self.links_to(from, &ordered).await?;
        Ok(named(&ordered, links))
    }

    /// Servers of one kind reach each other through shaped links, so a partition between two
    /// of them is real: each is told its peers as `name=proxy` pairs.
    pub(super) async fn link_peers(&mut self, servers: &[String]) -> Result<(), LaunchError> {
        for name in servers {
            let peers: Vec<String> = servers.iter().filter(|p| *p != name).cloned().collect();
            let links = self.named_links_to(name, &peers).await?;
            if let Some(m) = self.nodes.get_mut(name) {
                m.connect_to = Some(links);
            }
        }
        Ok(())
    }
}

/// Servers and their links as the `name=host:port,…` list a node is told.
fn named(servers: &[String], links: Vec<String>) -> String {
    servers
        .iter()
        .zip(links)
        .map(|(s, l)| format!("{s}={l}"))
        .collect::<Vec<_>>()
        .join(",")
}
