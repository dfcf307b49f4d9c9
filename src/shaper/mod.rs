//! The link shaper: a proxy between two nodes that makes the network what the topology says.
//!
//! For every pair (client node, server node) — a worker and its coordinator, say — the
//! supervisor opens a proxy port and tells the client node to connect there instead. The proxy
//! connects on to the server and copies messages both ways, each direction through the link
//! declared for it (`connection A -> B { … }`):
//!
//! - **latency** and **jitter** delay each message; messages keep their order, as on a TCP
//!   connection (a later message never overtakes an earlier one);
//! - **bandwidth** spaces messages out by their size;
//! - **loss** drops whole messages (the protocols are line-based, so a dropped line is a lost
//!   message, not a corrupted stream);
//! - a **cut** link drops everything silently, both ways or one way: the connection stays open,
//!   as in a real partition, so the peers only notice through missing heartbeats; even a close
//!   waits for the heal to be seen on the other side.
//!
//! With heartbeats over UDP (`policy heartbeat { transport udp }`), each proxy also takes
//! datagrams on the same port number and forwards them to the server's, through the same link:
//! a cut drops them, loss drops that share, latency and jitter delay each (datagrams keep no
//! order: a later one may overtake an earlier one, as on a real network).
//!
//! An undelayed link adds no hand-over: the task reading a burst writes it on, unless some of
//! it is not due yet or messages handed to the delivering task (delayed, released) are still
//! unwritten — then it queues behind them, so a message never overtakes an earlier one.
//!
//! Every property can change while the cluster runs (`latency`, `loss`, `partition`, `heal`);
//! the proxy reads them afresh for each message, the way Toxiproxy's toxics work.
//!
//! An **encrypted** link (a server the topology encrypts, [`crate::topology::Topology::encrypted`])
//! is TLS on both hops: the proxy serves the client with the server's own certificate (the
//! launcher made it) and dials the server with TLS, so it still sees whole lines to delay, drop
//! or hold, while nothing on the wire between the processes is readable. A client that speaks
//! plaintext to it is refused, counted on the link and shown as a dropped `plaintext` message.
//!
//! A **held** link (`hold A B`) delivers nothing by itself: each message waits, in order, for
//! the operator to deliver it ([`LinkShaper::deliver_held`], in any order), drop it
//! ([`LinkShaper::discard_held`]) or release the link, which delivers what waits in order.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::debug;

mod held;
pub mod nodes;
pub mod own;
mod tap;
use held::Held;
pub use held::HeldMessage;
use tap::Burst;
pub use tap::MessageSeen;

use crate::protocol::frame::{self, frame_codec};
use crate::topology::Link;
use crate::topology::units::Percent;

/// The longest line the proxy carries: larger than any node accepts, so the node (not the
/// proxy) is the one that refuses an oversized line.
const PROXY_MAX_LINE: usize = 1024 * 1024;

/// One direction of a link, as it is now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkState {
    /// Latency, jitter, bandwidth, loss.
    pub link: Link,
    /// Everything is dropped.
    pub cut: bool,
    /// Messages carried.
    pub carried: u64,
    /// Messages dropped (lost or cut).
    pub dropped: u64,
    /// Connections refused for speaking plaintext on this encrypted link.
    pub plaintext: u64,
    /// Messages wait for the operator.
    pub held: bool,
}

/// What became of a message on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Carried (after the link's delay).
    Carried,
    /// Dropped by the link (cut, or lost).
    Dropped,
    /// Held: waiting for the operator.
    Held,
    /// Delivered by the operator (`out_of_order`: an earlier message of its link still waits).
    Delivered { out_of_order: bool },
    /// Dropped by the operator.
    Discarded,
}

/// How a link reaches its server.
pub(crate) enum Dial {
    /// A proxy's: with TLS by this connector (checking the server's name), or in plaintext.
    As(Option<crate::tls::Connector>),
    /// A node's own link: as a dial to the address the node was told would
    /// ([`crate::tls::dial_direct`]).
    Told(String),
}

/// Every shaped direction, by (from, to), and the proxies that apply them.
#[derive(Clone)]
pub struct LinkShaper {
    links: Arc<RwLock<HashMap<(String, String), LinkState>>>,
    seed: u64,
    shutdown: CancellationToken,
    /// Every message carried, for whoever listens (lossy: a slow listener misses some).
    taps: tokio::sync::broadcast::Sender<MessageSeen>,
    started: std::time::Instant,
    /// Where each server node listens now (a restarted node may listen elsewhere).
    addresses: Arc<RwLock<HashMap<String, SocketAddr>>>,
    /// Proxies carry UDP datagrams too (heartbeats over UDP).
    datagrams: bool,
    /// Messages waiting on held links, in the order they came.
    held: Arc<std::sync::Mutex<Vec<Held>>>,
    next_held: Arc<std::sync::atomic::AtomicU64>,
    /// Encrypted links: the certificate each server's proxies serve with, the CA its
    /// certificate is checked against, and the links (client, server) that are encrypted.
    tls: Arc<RwLock<ShaperTls>>,
    /// Where each message a held link keeps is said (a node's shaper says it to its launcher).
    held_news: Arc<std::sync::OnceLock<mpsc::UnboundedSender<HeldMessage>>>,
    /// The links nodes shape themselves, and how to tell them (the launcher's side).
    nodes: Arc<nodes::Nodes>,
}

/// The shaper's TLS.
#[derive(Default)]
struct ShaperTls {
    acceptors: HashMap<String, crate::tls::Acceptor>,
    connector: Option<crate::tls::Connector>,
    links: std::collections::HashSet<(String, String)>,
}

impl LinkShaper {
    /// A shaper with the topology's declared links. Its proxies stop with `shutdown`.
    pub fn new(
        declared: impl IntoIterator<Item = (String, String, Link)>,
        seed: u64,
        shutdown: CancellationToken,
    ) -> Self {
        let links = declared
            .into_iter()
            .map(|(from, to, link)| {
                (
                    (from, to),
                    LinkState {
                        link,
                        ..LinkState::default()
                    },
                )
            })
            .collect();
        let (taps, _) = tokio::sync::broadcast::channel(4096);
        LinkShaper {
            links: Arc::new(RwLock::new(links)),
            seed,
            shutdown,
            taps,
            started: std::time::Instant::now(),
            addresses: Arc::default(),
            datagrams: false,
            held: Arc::default(),
            next_held: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            tls: Arc::default(),
            held_news: Arc::default(),
            nodes: Arc::default(),
        }
    }

    /// Makes every proxy opened from now on carry UDP datagrams on its port too.
    pub fn carry_datagrams(&mut self) {
        self.datagrams = true;
    }

    /// Makes the link from `client` to `server` encrypted: its proxy serves TLS with
    /// `acceptor` (the server's own certificate) and dials the server with TLS, checked against
    /// `connector`'s CA.
    pub fn encrypt(
        &mut self,
        client: &str,
        server: &str,
        acceptor: crate::tls::Acceptor,
        connector: crate::tls::Connector,
    ) {
        let mut tls = self.tls.write().unwrap_or_else(|e| e.into_inner());
        tls.acceptors.insert(server.to_string(), acceptor);
        tls.connector = Some(connector);
        tls.links.insert((client.to_string(), server.to_string()));
    }

    /// Whether the link between `a` and `b` (either way) is encrypted.
    pub fn encrypted(&self, a: &str, b: &str) -> bool {
        let tls = self.tls.read().unwrap_or_else(|e| e.into_inner());
        let has = |x: &str, y: &str| tls.links.contains(&(x.to_string(), y.to_string()));
        has(a, b) || has(b, a)
    }

    /// The TLS of the link from `client` to `server`, if it is encrypted: the acceptor its
    /// proxy serves with, and the connector it dials the server with.
    fn tls_of(
        &self,
        client: &str,
        server: &str,
    ) -> Option<(crate::tls::Acceptor, crate::tls::Connector)> {
        let tls = self.tls.read().unwrap_or_else(|e| e.into_inner());
        if !tls
            .links
            .contains(&(client.to_string(), server.to_string()))
        {
            return None;
        }
        Some((tls.acceptors.get(server)?.clone(), tls.connector.clone()?))
    }

    /// Records where `server` listens; proxies to it connect there from now on.
    pub fn set_address(&self, server: &str, addr: SocketAddr) {
        self.addresses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(server.to_string(), addr);
    }

    fn address_of(&self, server: &str) -> Option<SocketAddr> {
        self.addresses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(server)
            .copied()
    }

    /// Opens a proxy for `client` → `server`; returns the address `client` should connect to
    /// instead of the server's. The server's own address is looked up for each connection (see
    /// [`LinkShaper::set_address`]), so a proxy may be opened before its server listens: until
    /// then, connections to it are closed at once, as a refused connection would be.
    pub async fn proxy(&self, client: &str, server: &str) -> std::io::Result<SocketAddr> {
        self.proxy_at(client, server, None).await
    }

    /// [`LinkShaper::proxy`] for a client on another machine: the proxy listens on `reach`, this
    /// machine's address as that one sees it.
    pub async fn proxy_at(
        &self,
        client: &str,
        server: &str,
        reach: Option<std::net::IpAddr>,
    ) -> std::io::Result<SocketAddr> {
        for (from, to) in [(client, server), (server, client)] {
            self.write()
                .entry((from.to_string(), to.to_string()))
                .or_default();
        }
        let bind = std::net::SocketAddr::new(reach.unwrap_or([127, 0, 0, 1].into()), 0);
        let (listener, udp) = self.bind_proxy(&bind.to_string()).await?;
        let addr = listener.local_addr()?;
        let shaper = self.clone();
        let (client, server) = (client.to_string(), server.to_string());
        if let Some(udp) = udp {
            tokio::spawn(self.clone().datagrams(udp, client.clone(), server.clone()));
        }
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let accepted = tokio::select! {
                    _ = shaper.shutdown.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((inbound, _)) = accepted else { continue };
                n += 1;
                let (shaper, client, server) = (shaper.clone(), client.clone(), server.clone());
                tokio::spawn(async move {
                    let _ = inbound.set_nodelay(true);
                    let tls = shaper.tls_of(&client, &server);
                    let acceptor = tls.as_ref().map(|(a, _)| a);
                    let Some(inbound) = shaper
                        .open_inbound(inbound, acceptor, &client, &server)
                        .await
                    else {
                        return;
                    };
                    let connector = tls.map(|(_, connector)| connector);
                    shaper
                        .carry(inbound, &client, &server, Dial::As(connector), n)
                        .await;
                });
            }
        });
        Ok(addr)
    }

    /// Carries a connection from `client` on to `server`, both ways through the link between
    /// them, until both directions end. `n` counts the link's connections (each has its own
    /// randomness).
    pub(crate) async fn carry(
        &self,
        inbound: crate::tls::Stream,
        client: &str,
        server: &str,
        dial: Dial,
        n: u64,
    ) {
        let Some(target) = self.address_of(server) else {
            debug!(%client, %server, "link: the server does not listen yet");
            return;
        };
        let target = target.to_string();
        let dialed = match &dial {
            Dial::As(Some(connector)) => crate::tls::dial_as(&target, server, connector).await,
            Dial::As(None) => TcpStream::connect(&target).await.map(|tcp| {
                let _ = tcp.set_nodelay(true);
                crate::tls::Stream::Plain(tcp)
            }),
            Dial::Told(told) => crate::tls::dial_direct(&target, told).await,
        };
        let outbound = match dialed {
            Ok(outbound) => outbound,
            Err(e) => {
                debug!(%client, %server, "link: the server is not there: {e}");
                return;
            }
        };
        let (in_read, in_write) = inbound.split();
        let (out_read, out_write) = outbound.split();
        let seed = self.seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (client, server) = (client.to_string(), server.to_string());
        let up = self.pipe(client.clone(), server.clone(), in_read, out_write, seed);
        let down = self.pipe(server, client, out_read, in_write, seed.rotate_left(17));
        tokio::join!(up, down);
    }

    /// A connection a proxy accepted from `client`, opened: TLS on an encrypted link, where a
    /// plaintext client is refused (counted on the link, and shown as a dropped message).
    async fn open_inbound(
        &self,
        inbound: TcpStream,
        acceptor: Option<&crate::tls::Acceptor>,
        client: &str,
        server: &str,
    ) -> Option<crate::tls::Stream> {
        let plaintext = crate::tls::Plaintext::Refused;
        match crate::tls::open(acceptor, plaintext, inbound).await {
            crate::tls::Opening::Ready(stream) => Some(stream),
            crate::tls::Opening::Plaintext => {
                let key = (client.to_string(), server.to_string());
                let refused = {
                    let mut links = self.write();
                    let state = links.entry(key).or_default();
                    state.plaintext += 1;
                    state.plaintext
                };
                tracing::warn!(
                    %client,
                    %server,
                    refused,
                    "refused a plaintext connection on an encrypted link"
                );
                let names = (Arc::from(client), Arc::from(server));
                self.tap(&names, br#"{"type":"plaintext"}"#, Fate::Dropped);
                None
            }
            crate::tls::Opening::Failed(why) => {
                debug!(%client, %server, "proxy: not opened: {why}");
                None
            }
        }
    }

    /// A proxy's listener, and its UDP socket on the same port if datagrams are carried.
    async fn bind_proxy(
        &self,
        bind: &str,
    ) -> std::io::Result<(tokio::net::TcpListener, Option<UdpSocket>)> {
        let mut last = None;
        for _ in 0..20 {
            let listener = crate::tls::listen(bind).await?;
            if !self.datagrams {
                return Ok((listener, None));
            }
            match UdpSocket::bind(listener.local_addr()?).await {
                Ok(udp) => return Ok((listener, Some(udp))),
                // That port is taken for UDP: another one.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port for a proxy")))
    }

    /// Carries datagrams from `client` to `server` through the link between them.
    async fn datagrams(self, socket: UdpSocket, client: String, server: String) {
        let Ok(out) = UdpSocket::bind("127.0.0.1:0").await else {
            return;
        };
        let out = Arc::new(out);
        let names: (Arc<str>, Arc<str>) = (Arc::from(client.as_str()), Arc::from(server.as_str()));
        let key = (client, server);
        let mut rng = SmallRng::seed_from_u64(self.seed ^ 0x0da7_a6a0);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let received = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = socket.recv_from(&mut buf) => r,
            };
            let Ok((n, _)) = received else { continue };
            let datagram = &buf[..n];
            let delay = self.pass_datagram(&key, &names, datagram, &mut rng);
            let (Some(delay), Some(target)) = (delay, self.address_of(&key.1)) else {
                continue;
            };
            let _ = send_after(&out, datagram, target, delay).await;
        }
    }

    /// A datagram on the link `key` as it finds it now, counted and tapped: its delay, or `None`
    /// if it is dropped (cut, lost, or held: a heartbeat delivered by hand later would be stale).
    fn pass_datagram(
        &self,
        key: &(String, String),
        names: &(Arc<str>, Arc<str>),
        datagram: &[u8],
        rng: &mut SmallRng,
    ) -> Option<Duration> {
        let held = self.read().get(key).is_some_and(|s| s.held);
        let delay = self
            .pass(key, datagram.len(), rng)
            .map(|(latency, _)| latency)
            .filter(|_| !held);
        let fate = if delay.is_some() {
            Fate::Carried
        } else {
            Fate::Dropped
        };
        self.tap(names, datagram, fate);
        delay
    }

    /// The link `key` as a message of `len` bytes finds it now: `None` if it is dropped (cut,
    /// or lost), else its delay (latency and jitter) and its time on the wire (bandwidth).
    /// Counted either way.
    fn pass(
        &self,
        key: &(String, String),
        len: usize,
        rng: &mut SmallRng,
    ) -> Option<(Duration, Duration)> {
        let mut links = self.write();
        // Looked up before it is made: a message on a known link allocates nothing.
        let state = match links.get_mut(key) {
            Some(state) => state,
            None => links.entry(key.clone()).or_default(),
        };
        let lost = state.link.loss.0 > 0.0 && rng.random_range(0.0..100.0) < state.link.loss.0;
        if state.cut || lost {
            state.dropped += 1;
            return None;
        }
        state.carried += 1;
        let jitter = if state.link.jitter.is_zero() {
            Duration::ZERO
        } else {
            state.link.jitter.mul_f64(rng.random_range(0.0..1.0))
        };
        let transmit = state.link.bandwidth.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(len as f64 * 8.0 / rate.0 as f64)
        });
        Some((state.link.latency + jitter, transmit))
    }

    /// Messages carried from now on.
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<MessageSeen> {
        self.taps.subscribe()
    }

    /// Reports a message to listeners, if there are any (parsing costs nothing otherwise).
    fn tap(&self, names: &(Arc<str>, Arc<str>), line: &[u8], fate: Fate) {
        if self.taps.receiver_count() == 0 {
            return;
        }
        let mut burst = Burst::default();
        burst.add(self.now(), names, line, fate);
        self.tell(&mut burst);
    }

    /// Reports what a burst counted to listeners, and empties it.
    fn tell(&self, burst: &mut Burst) {
        for seen in burst.take() {
            let _ = self.taps.send(seen);
        }
    }

    /// Milliseconds since the shaper started.
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The state of the direction `from` → `to`, if it is shaped.
    pub fn state(&self, from: &str, to: &str) -> Option<LinkState> {
        self.read()
            .get(&(from.to_string(), to.to_string()))
            .cloned()
    }

    /// The directions that start or end at `node`, sorted: what its row's faults are read
    /// from (without copying every other link of a big cluster for each row).
    pub fn links_of(&self, node: &str) -> Vec<((String, String), LinkState)> {
        let mut links: Vec<_> = self
            .read()
            .iter()
            .filter(|((from, to), _)| from == node || to == node)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        links.sort_by(|a, b| a.0.cmp(&b.0));
        links
    }

    /// Every shaped direction, sorted.
    pub fn all(&self) -> Vec<((String, String), LinkState)> {
        let mut all: Vec<_> = self
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Cuts `a` → `b`, and `b` → `a` too unless `one_way`. With `b` = `None`, every link of `a`.
    pub fn cut(&self, a: &str, b: Option<&str>, one_way: bool) {
        self.update(|(from, to), state| {
            let hit = match b {
                Some(b) => (from == a && to == b) || (!one_way && from == b && to == a),
                None => from == a || to == a,
            };
            if hit {
                state.cut = true;
            }
        });
    }

    /// Restores cut links: all of them, those of `a`, or those between `a` and `b`.
    pub fn heal(&self, a: Option<&str>, b: Option<&str>) {
        self.update(|(from, to), state| {
            let hit = match (a, b) {
                (None, _) => true,
                (Some(a), None) => from == a || to == a,
                (Some(a), Some(b)) => (from == a && to == b) || (from == b && to == a),
            };
            if hit {
                state.cut = false;
            }
        });
    }

    /// Sets latency and jitter between `a` and `b`, both ways.
    pub fn set_latency(&self, a: &str, b: &str, latency: Duration, jitter: Duration) {
        self.update(|(from, to), state| {
            if (from == a && to == b) || (from == b && to == a) {
                state.link.latency = latency;
                state.link.jitter = jitter;
            }
        });
    }

    /// Sets message loss from `a` to `b`, and from `b` to `a` too unless `one_way`.
    pub fn set_loss(&self, a: &str, b: &str, loss: Percent, one_way: bool) {
        self.update(|(from, to), state| {
            if (from == a && to == b) || (!one_way && from == b && to == a) {
                state.link.loss = loss;
            }
        });
    }

    /// Changes the directions `f` changes; those a node shapes are said to it.
    fn update(&self, mut f: impl FnMut(&(String, String), &mut LinkState)) {
        let mut changed = Vec::new();
        for (key, state) in self.write().iter_mut() {
            let before = (state.link.clone(), state.cut, state.held);
            f(key, state);
            if before != (state.link.clone(), state.cut, state.held) {
                changed.push((key.clone(), state.clone()));
            }
        }
        self.tell_changes(&changed);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(String, String), LinkState>> {
        // A panic while holding the lock cannot leave the table half-updated (every update is
        // a field assignment), so a poisoned lock is still safe to use.
        self.links.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<(String, String), LinkState>> {
        self.links.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies messages from `read` to `write` through the link `from` → `to`.
    async fn pipe(
        &self,
        from: String,
        to: String,
        read: crate::tls::Reader,
        write: crate::tls::Writer,
        seed: u64,
    ) {
        let names: (Arc<str>, Arc<str>) = (Arc::from(from.as_str()), Arc::from(to.as_str()));
        let key = (from, to);
        let (tx, rx) = mpsc::unbounded_channel();
        let tx = Outgoing {
            tx,
            pending: Arc::default(),
        };
        let write = Arc::new(tokio::sync::Mutex::new(write));
        let deliver = tokio::spawn(deliver(rx, write.clone(), tx.pending.clone()));
        // What a burst carries is delivered at the burst's end, all at once.
        let mut outgoing: Vec<(Instant, Bytes)> = Vec::new();
        let mut buffer = Vec::new();
        let mut rng = SmallRng::seed_from_u64(seed);
        // Lines, and the MessagePack frames a chat server sends a client that asked for them.
        let mut lines = FramedRead::new(read, frame_codec(PROXY_MAX_LINE));
        // When the link is next free to send (bandwidth), and when the last message arrives
        // (order): together they decide each message's delivery time.
        let mut link_free = Instant::now();
        let mut last_delivery = Instant::now();
        // The tap hears of each burst (what was read in one go) at its end, grouped.
        let listening = || self.taps.receiver_count() > 0;
        let mut burst = Burst::default();
        let mut tapped = listening();
        loop {
            if self.shutdown.is_cancelled() {
                break;
            }
            let line = match lines.next().now_or_never() {
                Some(line) if burst.len() < tap::BURST && outgoing.len() < tap::BURST => line,
                ready => {
                    self.tell(&mut burst);
                    if !hand_over(&mut outgoing, &tx, &write, &mut buffer).await {
                        break;
                    }
                    tapped = listening();
                    match ready {
                        Some(line) => line,
                        None => tokio::select! {
                            _ = self.shutdown.cancelled() => break,
                            line = lines.next() => line,
                        },
                    }
                }
            };
            let Some(Ok(line)) = line else { break };
            let now = Instant::now();
            let Some((latency, transmit)) = self.pass(&key, line.len() + 1, &mut rng) else {
                if tapped {
                    burst.add(self.now(), &names, &line, Fate::Dropped);
                }
                continue;
            };
            if self.read().get(&key).is_some_and(|s| s.held) {
                self.tell(&mut burst);
                if !hand_over(&mut outgoing, &tx, &write, &mut buffer).await {
                    break;
                }
                self.keep_held(&names, line, &tx);
                continue;
            }
            if tapped {
                burst.add(self.now(), &names, &line, Fate::Carried);
            }
            link_free = link_free.max(now) + transmit;
            last_delivery = last_delivery.max(link_free + latency);
            outgoing.push((last_delivery, line));
        }
        self.tell(&mut burst);
        hand_over(&mut outgoing, &tx, &write, &mut buffer).await;
        // The end of the stream is news too: across a cut link it waits for the heal, or a
        // partition would give itself away (a peer that closes a connection is seen to); across
        // a held one, for the release.
        while self.read().get(&key).is_some_and(|s| s.cut || s.held) {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        drop(tx);
        let _ = deliver.await;
    }
}

/// Sends `datagram` from `out` to `target` after `delay`: at once when there is none, else from
/// a task of its own (datagrams keep no order).
async fn send_after(
    out: &Arc<UdpSocket>,
    datagram: &[u8],
    target: SocketAddr,
    delay: Duration,
) -> std::io::Result<()> {
    if delay.is_zero() {
        return out.send_to(datagram, target).await.map(drop);
    }
    let (out, datagram) = (out.clone(), datagram.to_vec());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = out.send_to(&datagram, target).await;
    });
    Ok(())
}

/// Where a proxy direction's messages go to be delivered, each with its time: a burst at once.
/// `pending` counts the messages handed over and not yet written.
#[derive(Clone)]
struct Outgoing {
    tx: mpsc::UnboundedSender<Vec<(Instant, Bytes)>>,
    pending: Arc<AtomicUsize>,
}

impl Outgoing {
    /// Hands `batch` to the delivering task; false when its connection is gone.
    fn send(&self, batch: Vec<(Instant, Bytes)>) -> bool {
        let n = batch.len();
        self.pending.fetch_add(n, Ordering::SeqCst);
        if self.tx.send(batch).is_err() {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// Delivers a burst: written at once when every message in it is due and nothing handed to
/// the delivering task is still unwritten (an undelayed link: no hand-over, no task woken),
/// else handed over, to keep the order. False when the connection is gone.
async fn hand_over(
    batch: &mut Vec<(Instant, Bytes)>,
    out: &Outgoing,
    write: &tokio::sync::Mutex<crate::tls::Writer>,
    buffer: &mut Vec<u8>,
) -> bool {
    if batch.is_empty() {
        return true;
    }
    let now = Instant::now();
    if out.pending.load(Ordering::SeqCst) == 0 && batch.iter().all(|(at, _)| *at <= now) {
        buffer.clear();
        for (_, line) in batch.drain(..) {
            frame::put(buffer, &line);
        }
        return write.lock().await.write_all(buffer).await.is_ok();
    }
    out.send(std::mem::take(batch))
}

/// Writes each message when its time comes; closes the write side when the reader is done.
async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Vec<(Instant, Bytes)>>,
    write: Arc<tokio::sync::Mutex<crate::tls::Writer>>,
    pending: Arc<AtomicUsize>,
) {
    let mut batch: VecDeque<(Instant, Bytes)> = VecDeque::new();
    // Writes `out` (`lines` messages); false if the connection broke.
    let put = async |out: &mut Vec<u8>, lines: &mut usize| {
        let ok = out.is_empty() || write.lock().await.write_all(out).await.is_ok();
        pending.fetch_sub(std::mem::take(lines), Ordering::SeqCst);
        out.clear();
        ok
    };
    while let Some(first) = rx.recv().await {
        batch.extend(first);
        while let Ok(next) = rx.try_recv() {
            batch.extend(next);
        }
        let mut out = Vec::new();
        let mut lines = 0;
        while let Some((at, line)) = batch.pop_front() {
            if at > Instant::now() {
                // Send what is due before waiting for the next one.
                if !put(&mut out, &mut lines).await {
                    return;
                }
                tokio::time::sleep_until(at).await;
            }
            frame::put(&mut out, &line);
            lines += 1;
        }
        if !put(&mut out, &mut lines).await {
            return;
        }
    }
    let _ = write.lock().await.shutdown().await;
}

#[cfg(test)]
mod tests;
