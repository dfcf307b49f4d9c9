//! A master's links to the other masters: a backup following its primary (`FollowLink`), one
//! message to another master and its reply (`ask_master`), and kept links to masters of other
//! clusters and time peers (`peer_link`). Each hands what it hears to the coordinator's loop as
//! a [`ConnEvent`].

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, warn};

use super::ConnEvent;
use crate::protocol::message::{Envelope, Message, PeerRole};
use crate::role::coordinator::{ConnId, Coordinator};

/// A backup's link to the master it follows. Each new link ends the one before; its messages
/// carry its generation so that nothing from an old link is mistaken for the new one's.
#[derive(Default)]
pub(super) struct FollowLink {
    pub(super) generation: u64,
    cancel: Option<CancellationToken>,
    pub(super) to_primary: Option<mpsc::UnboundedSender<Message>>,
}

impl FollowLink {
    /// Follows `primary` (a peer's name) from the events `coordinator` already has.
    pub(super) fn start(
        &mut self,
        primary: &str,
        coordinator: &Coordinator,
        inputs: &mpsc::Sender<(ConnId, ConnEvent)>,
        shutdown: &CancellationToken,
    ) {
        if let Some(old) = self.cancel.take() {
            old.cancel();
        }
        self.generation += 1;
        let config = coordinator.config();
        let Some(addr) = config
            .peers
            .iter()
            .find(|p| p.name == primary)
            .map(|p| p.address.clone())
        else {
            warn!(%primary, "no address for the master to follow");
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.to_primary = Some(tx);
        let cancel = shutdown.child_token();
        self.cancel = Some(cancel.clone());
        let link = follow_primary(
            self.generation,
            addr,
            config.name.clone(),
            config.peer_key.clone(),
            // A handshake line lost on a lossy link: start over soon, not after seconds.
            (config.heartbeat.interval * 4).clamp(
                Duration::from_millis(300),
                crate::protocol::handshake::TIMEOUT,
            ),
            coordinator.history_len(),
            inputs.clone(),
            rx,
            cancel,
        );
        tokio::spawn(link.in_current_span());
    }
}

/// Sends one message to another master on a connection of its own and hands back its first
/// reply, or `None` if it cannot be reached or says nothing within `wait`.
pub(super) async fn ask_master(
    master: String,
    address: Option<String>,
    peer_key: String,
    envelope: Envelope,
    wait: Duration,
    inputs: mpsc::Sender<(ConnId, ConnEvent)>,
) {
    use crate::client::Client;
    let ask = async {
        let key = Some((peer_key.as_str(), PeerRole::Master));
        let mut client = Client::connect_as(&address?, &envelope.from, key, wait)
            .await
            .ok()?;
        client.send_envelope(&envelope).await.ok()?;
        client.receive().await.ok()
    };
    let reply = tokio::time::timeout(wait, ask).await.ok().flatten();
    let _ = inputs.send((0, ConnEvent::Master(master, reply))).await;
}

/// The most messages waiting for one other cluster's master.
pub(super) const PEER_LINK_QUEUE: usize = 16;

/// A kept connection to a master of another cluster: each message is sent in turn and its
/// first reply (or `None` within `wait`) handed back; a connection that fails or falls silent
/// is opened again for the next message.
pub(super) async fn peer_link(
    master: String,
    address: Option<String>,
    peer_key: String,
    mut messages: mpsc::Receiver<(Envelope, Duration)>,
    inputs: mpsc::Sender<(ConnId, ConnEvent)>,
    shutdown: CancellationToken,
) {
    use crate::client::Client;
    let mut client: Option<Client> = None;
    loop {
        let (envelope, wait) = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = messages.recv() => match next {
                Some(m) => m,
                None => return,
            },
        };
        let ask = async {
            if client.is_none() {
                let key = Some((peer_key.as_str(), PeerRole::Master));
                let c = Client::connect_as(address.as_deref()?, &envelope.from, key, wait)
                    .await
                    .ok()?;
                client = Some(c);
            }
            let c = client.as_mut()?;
            c.send_envelope(&envelope).await.ok()?;
            c.receive().await.ok()
        };
        let reply = tokio::time::timeout(wait, ask).await.ok().flatten();
        if reply.is_none() {
            // Half a conversation cannot be trusted: the next message opens a new connection.
            client = None;
        }
        if inputs
            .send((0, ConnEvent::Master(master.clone(), reply)))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A backup's link to its primary: asks for every event after `after`, hands over what comes;
/// reports the end of the link once (the coordinator then holds an election).
#[allow(clippy::too_many_arguments)]
async fn follow_primary(
    generation: u64,
    addr: String,
    name: String,
    peer_key: String,
    patience: Duration,
    after: u64,
    inputs: mpsc::Sender<(ConnId, ConnEvent)>,
    mut to_primary: mpsc::UnboundedReceiver<Message>,
    shutdown: CancellationToken,
) {
    use crate::client::Client;
    let mut warned = false;
    let mut client = loop {
        let key = Some((peer_key.as_str(), PeerRole::Master));
        match Client::connect_as(&addr, &name, key, patience).await {
            Ok(client) => break client,
            Err(e) if e.is_unproven() && !warned => {
                warned = true;
                warn!(primary = %addr, "cannot follow the primary: {e}; {}", crate::client::PEER_SECRET_HINT);
            }
            Err(e) => {
                // Not up yet, or gone: the coordinator's own silence timer decides what that means.
                debug!(primary = %addr, "cannot reach the primary: {e}");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        }
    };
    if client.send(Message::Follow { after }).await.is_ok() {
        info!(primary = %addr, after, "following the primary");
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                Some(message) = to_primary.recv() => {
                    // Acknowledgements of replicas, for a primary that waits for them.
                    if client.send(message).await.is_err() {
                        break;
                    }
                    continue;
                }
                next = client.receive() => next,
            };
            match next {
                Ok(envelope) => {
                    if matches!(envelope.message, Message::NotPrimary { .. }) {
                        info!(primary = %addr, "it is not the primary (any more)");
                        break;
                    }
                    if inputs
                        .send((0, ConnEvent::Primary(generation, envelope)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
    }
    let _ = inputs.send((0, ConnEvent::PrimaryLost(generation))).await;
}
