//! Replication between chat servers: every entry goes to every linked server; a server that
//! links (or finds a gap) asks for what it misses, by origin and sequence number.

use super::*;

impl ChatServer {
    /// Every link to another chat server: those it opened and those opened to it.
    pub(super) fn all_links(&self) -> Vec<Link> {
        self.conns
            .iter()
            .filter(|(_, c)| c.peer)
            .map(|(conn, _)| Link::Conn(*conn))
            .chain(self.links.iter().cloned().map(Link::Peer))
            .collect()
    }

    /// For each origin, the sequence numbers held without a gap.
    pub(super) fn held_upto(&self) -> BTreeMap<String, u64> {
        self.held
            .iter()
            .map(|(server, (upto, _))| (server.clone(), *upto))
            .collect()
    }

    /// What another chat server sent on a link.
    pub(super) fn on_link(&mut self, link: Link, message: Message) {
        match message {
            Message::ChatReplica { entry } => {
                if let Err(why) = self.plausible(&entry) {
                    warn!(?link, "chat: a replica refused: {why}");
                    return;
                }
                let origin = entry.server.to_string();
                self.accept_entry(*entry);
                // Something before this entry never arrived (the link was cut without closing):
                // ask for what is missing, once per gap.
                match self.held.get(&origin) {
                    Some((upto, extra)) if !extra.is_empty() => {
                        let upto = *upto;
                        if self.asked_for_gap.insert(origin.clone()) {
                            info!(%origin, after = upto, "a gap in the replicas: asking for a sync");
                            let have = self.held_upto();
                            self.send_link(&link, Message::ChatSync { have });
                        }
                    }
                    _ => {
                        self.asked_for_gap.remove(&origin);
                    }
                }
            }
            Message::ChatSync { have } => self.sync_to(&link, &have),
            Message::ChatForgotten { upto } => {
                for (origin, v) in upto {
                    self.mark_held_upto(&origin, v);
                }
            }
            // It had more to send: ask again from what is held now.
            Message::ChatSyncMore => {
                let have = self.held_upto();
                self.send_link(&link, Message::ChatSync { have });
            }
            _ => {}
        }
    }

    /// Sends a linked server what it lacks, a batch at a time (it asks again for more).
    pub(super) fn sync_to(&mut self, link: &Link, have: &BTreeMap<String, u64>) {
        // What it lacks and this server dropped past the retention: it will not come.
        let forgotten: BTreeMap<String, u64> = self
            .held
            .iter()
            .filter_map(|(origin, (upto, _))| {
                let asker = have.get(origin).copied().unwrap_or(0);
                let next_kept = self
                    .retained
                    .get(origin)
                    .and_then(|seqs| seqs.range(asker.saturating_add(1)..).next().copied())
                    .unwrap_or(u64::MAX);
                let gone = next_kept.saturating_sub(1).min(*upto);
                (gone > asker).then(|| (origin.clone(), gone))
            })
            .collect();
        if !forgotten.is_empty() {
            self.send_link(link, Message::ChatForgotten { upto: forgotten });
        }
        let missing: Vec<ChatEntry> = self
            .entries
            .values()
            .filter(|e| e.seq > have.get(e.server.as_str()).copied().unwrap_or(0))
            .take(SYNC_BATCH)
            .cloned()
            .collect();
        let more = missing.len() == SYNC_BATCH;
        for entry in missing {
            self.send_link(
                link,
                Message::ChatReplica {
                    entry: Box::new(entry),
                },
            );
        }
        if more {
            self.send_link(link, Message::ChatSyncMore);
        }
    }

    pub(super) fn send_link(&mut self, link: &Link, message: Message) {
        match link {
            Link::Conn(conn) => {
                let envelope = self.envelope(message);
                self.out.push(Output::Send(*conn, envelope));
            }
            Link::Peer(peer) => self.out.push(Output::ToPeer(peer.clone(), message)),
        }
    }
}
