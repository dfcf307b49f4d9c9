//! The chat broker's driver: clients' TCP in, [`Broker`] steps, TCP out; one upstream
//! connection per (client, chat server), opened when the broker first sends there.
//!
//! ```text
//!  accept ─▶ per client: reader ───────────────(BrokerEvent)──▶ ┐
//!  per (client, server): upstream task ────────────────────────▶ ├─▶ one loop owns the Broker
//!  ticker ─────────────────────────────────────────────────────▶ ┘      │
//!  per client: writer ◀── bounded queue ◀──────────────────────────────┤ Send
//!  per (client, server): upstream task ◀── queue ◀─────────────────────┘ ToServer
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use super::conn::{
    CONN_QUEUE, ConnNews, OpenSockets, Outgoing, Port, accept, accept_failed, accept_within,
};
use super::control::NodeControl;
use crate::protocol::message::{Envelope, Message, PeerRole};
use crate::role::ConnId;
use crate::role::broker::{Broker, BrokerConfig, Input, Output};

/// The most clients a broker serves at once.
const MAX_CLIENTS: usize = 1024;
/// How long an upstream may take to connect and prove itself.
const UP_PATIENCE: Duration = Duration::from_secs(1);
/// How often the broker logs its request counts.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What the loop hears (with the client's connection).
enum BrokerEvent {
    Conn(ConnNews),
    UpOpened(usize, mpsc::UnboundedSender<Message>),
    UpMessage(usize, Envelope),
    UpClosed(usize),
}

impl From<ConnNews> for BrokerEvent {
    fn from(news: ConnNews) -> Self {
        BrokerEvent::Conn(news)
    }
}

/// Runs a broker on `listener` until `shutdown`; `servers` are the chat servers (`name`,
/// `host:port`), in the order of `config.servers`.
pub async fn run(
    config: BrokerConfig,
    (listener, tls): (
        TcpListener,
        Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
    ),
    servers: Vec<String>,
    control: NodeControl,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("node", node = %config.name);
    serve(config, (listener, tls), servers, control, shutdown)
        .instrument(span)
        .await
}

/// An upstream: its queue once it is open, and what closes it.
type Upstream = (Option<mpsc::UnboundedSender<Message>>, CancellationToken);

struct Driver {
    broker: Broker,
    port: Port,
    /// Where each chat server listens (by index).
    servers: Vec<String>,
    secret: Option<String>,
    peer_key: String,
    writers: HashMap<ConnId, (Outgoing, CancellationToken)>,
    /// Upstreams: the queue to each, and what closes it.
    ups: HashMap<(ConnId, usize), Upstream>,
    inputs_tx: mpsc::Sender<(ConnId, BrokerEvent)>,
    shutdown: CancellationToken,
    control: NodeControl,
    started: Instant,
    next_conn: ConnId,
    /// Connections refused for speaking plaintext to this encrypted port.
    plaintext: u64,
}

async fn serve(
    config: BrokerConfig,
    (listener, tls): (
        TcpListener,
        Option<(crate::tls::Acceptor, crate::tls::Plaintext)>,
    ),
    servers: Vec<String>,
    control: NodeControl,
    shutdown: CancellationToken,
) {
    let (inputs_tx, mut inputs) = mpsc::channel::<(ConnId, BrokerEvent)>(CONN_QUEUE);
    let mut driver = Driver {
        secret: config.secret.clone(),
        peer_key: config.peer_key.clone(),
        broker: Broker::new(config),
        port: Port {
            open: OpenSockets::default(),
            tls,
        },
        servers,
        writers: HashMap::new(),
        ups: HashMap::new(),
        inputs_tx,
        shutdown: shutdown.clone(),
        control: control.clone(),
        started: Instant::now(),
        next_conn: 1,
        plaintext: 0,
    };
    let mut pause = control;
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut report = tokio::time::interval(REPORT_EVERY);
    loop {
        tokio::select! {
            _ = pause.wait_while_paused() => {}
            _ = shutdown.cancelled() => break,
        }
        let input = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = accept_within(&listener, &driver.port.open, MAX_CLIENTS) => {
                match accepted {
                    Ok((stream, peer)) => accept(
                        &mut driver.next_conn,
                        stream,
                        peer,
                        &driver.inputs_tx,
                        &driver.shutdown,
                        &driver.port,
                    ),
                    Err(e) => accept_failed(e).await,
                }
                continue;
            }
            Some((conn, event)) = inputs.recv() => match driver.input_of(conn, event) {
                Some(input) => input,
                None => continue,
            },
            _ = ticker.tick() => Input::Tick,
            _ = report.tick() => {
                driver.report();
                continue;
            }
        };
        let now = driver.control.now(driver.started);
        driver.broker.set_wall_clock(driver.control.wall_ms());
        for output in driver.broker.step(now, input) {
            driver.carry_out(output);
        }
    }
    driver.report();
    info!("broker stopping");
    for (_, (_, cancel)) in driver.writers.drain() {
        cancel.cancel();
    }
    for (_, (_, cancel)) in driver.ups.drain() {
        cancel.cancel();
    }
}

impl Driver {
    fn input_of(&mut self, conn: ConnId, event: BrokerEvent) -> Option<Input> {
        Some(match event {
            BrokerEvent::Conn(ConnNews::Opened(tx, cancel)) => {
                self.writers.insert(conn, (tx, cancel));
                Input::Connected(conn)
            }
            BrokerEvent::Conn(ConnNews::Line(_, envelope)) => Input::Received(conn, envelope),
            BrokerEvent::Conn(ConnNews::Invalid(reason, fatal)) => {
                let envelope = Envelope {
                    from: Default::default(),
                    clock: 0,
                    term: None,
                    message: Message::Error { message: reason },
                };
                if let Some((tx, cancel)) = self.writers.get(&conn) {
                    let _ = tx.send_line(envelope.to_json());
                    if fatal {
                        cancel.cancel();
                    }
                }
                return None;
            }
            // Its writer goes when the broker says so (`Output::Close`), after its answers.
            BrokerEvent::Conn(ConnNews::Closed) => Input::Closed(conn),
            BrokerEvent::Conn(ConnNews::Plaintext(peer)) => {
                self.plaintext += 1;
                warn!(
                    %peer,
                    refused = self.plaintext,
                    "refused a plaintext connection: this port is encrypted (TLS)"
                );
                return None;
            }
            BrokerEvent::UpOpened(server, tx) => {
                let up = self.ups.get_mut(&(conn, server))?;
                up.0 = Some(tx);
                Input::UpOpened { conn, server }
            }
            BrokerEvent::UpMessage(server, envelope) => Input::UpReceived {
                conn,
                server,
                envelope,
            },
            BrokerEvent::UpClosed(server) => {
                self.ups.remove(&(conn, server))?;
                Input::UpClosed { conn, server }
            }
        })
    }

    fn carry_out(&mut self, output: Output) {
        match output {
            Output::Send(conn, envelope) => {
                if let Some((tx, cancel)) = self.writers.get(&conn)
                    && tx.send_line(envelope.to_json()).is_err()
                {
                    warn!(conn, "client too slow to read: disconnecting");
                    cancel.cancel();
                }
            }
            Output::Close(conn) => {
                if let Some((_, cancel)) = self.writers.remove(&conn) {
                    cancel.cancel();
                }
            }
            Output::Open {
                conn,
                server,
                name,
                role,
            } => {
                let Some(addr) = self.servers.get(server).cloned() else {
                    return;
                };
                let key = match role {
                    Some(role) if role.is_peer() => Some((self.peer_key.clone(), role)),
                    Some(role) => self.secret.clone().map(|s| (s, role)),
                    // A client that proved nothing: a client of the cluster's secret, if any.
                    None => self.secret.clone().map(|s| (s, PeerRole::Client)),
                };
                let cancel = self.shutdown.child_token();
                self.ups.insert((conn, server), (None, cancel.clone()));
                tokio::spawn(
                    upstream(
                        conn,
                        server,
                        addr,
                        name,
                        key,
                        self.inputs_tx.clone(),
                        cancel,
                    )
                    .in_current_span(),
                );
            }
            Output::ToServer {
                conn,
                server,
                message,
            } => {
                if let Some((Some(tx), _)) = self.ups.get(&(conn, server)) {
                    let _ = tx.send(message);
                }
            }
            Output::CloseUp { conn, server } => {
                if let Some((_, cancel)) = self.ups.remove(&(conn, server)) {
                    cancel.cancel();
                }
            }
            Output::AdjustClock(ms) => {
                info!(by_ms = ms, "clock adjusted by the time master");
                self.control.adjust(ms);
            }
        }
    }

    /// A log line of what the round robin did.
    fn report(&self) {
        let counts: Vec<String> = self
            .broker
            .requests()
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let (retried, failed) = self.broker.retries();
        info!(
            "requests: {}; retried {retried}, failed {failed}",
            counts.join(", ")
        );
    }
}

/// Client `conn`'s connection to chat server `server` at `addr`: proves `key` if given, then
/// carries messages both ways until either end closes or `cancel`.
async fn upstream(
    conn: ConnId,
    server: usize,
    addr: String,
    name: String,
    key: Option<(String, PeerRole)>,
    inputs: mpsc::Sender<(ConnId, BrokerEvent)>,
    cancel: CancellationToken,
) {
    use crate::client::Client;
    let key_ref = key.as_ref().map(|(k, r)| (k.as_str(), *r));
    let connected = tokio::select! {
        _ = cancel.cancelled() => return,
        c = Client::connect_as(&addr, &name, key_ref, UP_PATIENCE) => c,
    };
    let Ok(mut client) = connected else {
        let _ = inputs.send((conn, BrokerEvent::UpClosed(server))).await;
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    if inputs
        .send((conn, BrokerEvent::UpOpened(server, tx)))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Some(message) = rx.recv() => {
                if client.send(message).await.is_err() {
                    break;
                }
            }
            next = client.receive() => match next {
                Ok(envelope) => {
                    if inputs.send((conn, BrokerEvent::UpMessage(server, envelope))).await.is_err() {
                        return;
                    }
                }
                Err(_) => break,
            },
        }
    }
    let _ = inputs.send((conn, BrokerEvent::UpClosed(server))).await;
}
