//! Running one node of a topology: the thin async drivers around the roles.
//!
//! - [`coordinator`]: a master — a TCP server around the [`crate::role::coordinator`] state
//!   machine.
//! - [`worker`]: a worker — a TCP client around [`crate::role::worker`], with the job executor.
//! - [`chat`]: a chat server — a TCP server around [`crate::role::chat`], with its history.
//! - [`bot`]: a bot — two client links around [`crate::role::bot`].
//! - [`conn`]: one connection of a server, shared by the server drivers.
//!
//! [`run`] starts the node a topology names, in this process: `tcluster node` calls it in a
//! process of its own, and a launcher can call it as an in-process task. A node that is ready
//! prints one line on stdout — `READY <name> <address>` for a master, `READY <name> registered
//! with <address>` for a worker — so whoever started it knows when, and where (a master given
//! port 0 reports the port the system chose). Logs go to stderr.

pub mod bot;
pub mod broker;
pub mod chat;
pub mod conn;
pub mod control;
pub mod coordinator;
mod hold;
mod secure;
pub mod worker;

pub use control::{NodeControl, PauseSwitch};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use crate::journal::{ChatHistory, chat_history_path};
use crate::role::coordinator::{CoordinatorConfig, PeerMaster, master_ranks};
use crate::role::worker::WorkerConfig;
use crate::topology::diagnostic::did_you_mean;
use crate::topology::{Node, NodeKind, Topology};

/// Settings that override the topology for one run.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// For a master: the address to listen on instead of the topology's (`127.0.0.1:0` picks a
    /// free port).
    pub listen: Option<String>,
    /// For a worker: the coordinator's address instead of the topology's primary.
    pub coordinator: Option<String>,
    /// For a bot: the chat servers' addresses instead of the topology's (`host:port` or
    /// `name=host:port`, separated by commas).
    pub chat: Option<String>,
    /// For a master: the most connections it keeps open (default 4096).
    pub max_connections: Option<usize>,
    /// Print the `READY` line on stdout.
    pub announce: bool,
    /// Clock skew and pause, set by a launcher.
    pub control: NodeControl,
    /// Where a master keeps its journal (`journal/<name>.journal` under it); none: nothing is kept.
    pub state_dir: Option<std::path::PathBuf>,
    /// Told the listening address once a master is ready (for in-process launches).
    pub ready: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// The cluster CA, and this node's certificate and key if its port is encrypted.
    pub tls: crate::tls::TlsFiles,
}

impl From<crate::tls::TlsError> for NodeError {
    fn from(e: crate::tls::TlsError) -> Self {
        NodeError::Tls(e.to_string())
    }
}

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The topology has no node of that name.
    #[error("the topology has no node named `{name}`{hint}")]
    UnknownNode {
        /// The name asked for.
        name: String,
        /// ": did you mean …?" or the list of nodes.
        hint: String,
    },
    /// A worker does not know where its coordinator is.
    #[error("{0}")]
    NoCoordinator(String),
    /// The journal could not be opened.
    #[error("{0}")]
    Journal(#[from] crate::journal::JournalError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The chat history could not be opened.
    #[error("{0}")]
    History(#[from] crate::journal::StorageError),
    /// Its TLS could not be set up.
    #[error("{0}")]
    Tls(String),
    /// This kind of node cannot run yet.
    #[error(
        "`{0}` nodes are people: run `tcluster client` instead (tcluster node runs masters, workers, chat servers and bots)"
    )]
    Unsupported(NodeKind),
}

/// The environment variable a launcher hands a built-in node the run's peer secret in (it
/// overrides the topology's `PEER_SECRET`).
pub const PEER_KEY_ENV: &str = "TCLUSTER_PEER_KEY";

/// Runs node `name` of `topology` until `shutdown` is cancelled.
pub async fn run(
    topology: &Topology,
    name: &str,
    options: NodeOptions,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let node = topology.node(name).ok_or_else(|| NodeError::UnknownNode {
        name: name.to_string(),
        hint: match did_you_mean(name, topology.nodes.iter().map(|n| n.name.as_str())) {
            Some(hint) => format!(": {hint}"),
            None => {
                let names: Vec<&str> = topology
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .take(8)
                    .collect();
                format!(" (its nodes: {})", names.join(", "))
            }
        },
    })?;
    // Held while the node runs: its dials to encrypted servers open TLS.
    let _trusted = secure::trust_servers(topology, name, &options)?;
    match node.kind {
        NodeKind::Master => run_master(topology, node, options, shutdown).await,
        NodeKind::Worker => run_worker(topology, node, options, shutdown).await,
        NodeKind::Chat => run_chat(topology, node, options, shutdown).await,
        NodeKind::Bot => run_bot(topology, node, options, shutdown).await,
        NodeKind::Broker => run_broker(topology, node, options, shutdown).await,
        NodeKind::Client => Err(NodeError::Unsupported(NodeKind::Client)),
    }
}

/// File descriptors a server keeps for itself besides its connections: the listener, the
/// journal, links to its peers, its log.
const FD_RESERVE: u64 = 64;

/// Raises this process's open-file limit towards what `wanted` connections need (as Redis does
/// for its `maxclients`), and returns how many connections fit: never more than the limit
/// allows, so the server closes idle connections to make room before `accept` runs out of
/// descriptors and locks everyone out.
pub fn fit_connections(wanted: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let need = (wanted as u64).saturating_add(FD_RESERVE);
    let Ok((mut soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return wanted;
    };
    if soft < need {
        let raised = need.min(hard);
        if setrlimit(Resource::RLIMIT_NOFILE, raised, hard).is_ok() {
            soft = raised;
        }
    }
    let fits = usize::try_from(soft.saturating_sub(FD_RESERVE).max(1)).unwrap_or(usize::MAX);
    if fits < wanted {
        warn!(
            wanted,
            fits,
            "the open-file limit ({soft}) allows fewer connections than asked: at most {fits} \
             are kept (raise it with `ulimit -n`)"
        );
    }
    wanted.min(fits)
}

/// A master: its journal, its role (primary or backup), then the coordinator's server.
async fn run_master(
    topology: &Topology,
    node: &Node,
    options: NodeOptions,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let name = node.name.as_str();
    let (listener, addr, local) = bind(node, &options).await?;
    let mut config = CoordinatorConfig::from_topology(topology, name, seed_from_env());
    if let Some(max) = options.max_connections {
        config.max_connections = max.max(1);
    }
    config.max_connections = fit_connections(config.max_connections);
    // Where workers lent to this cluster come (their own links first, when launched).
    config.address = Some(local.to_string());
    // With `policy clock`, the chat servers whose clocks it reads as time master: the
    // launcher's shaped links (`name=host:port`), or the addresses the topology gives.
    if config.clock_sync.is_some() {
        // Besides its workers and backups: the chat servers and brokers.
        config.time_peers = servers_of(topology, &options, &[NodeKind::Chat, NodeKind::Broker])
            .into_iter()
            .map(|(name, address)| PeerMaster {
                name,
                address,
                rank: 0,
            })
            .collect();
    }
    let state_dir = state_dir(topology, &options);
    let journal = match state_dir {
        Some(dir) => Some(crate::journal::Journal::open(&crate::journal::path_for(
            &dir, name,
        ))?),
        None => None,
    };
    take_role(&mut config, topology, &options, journal.as_ref()).await;
    // A backup takes its state from the primary, from the first event: what its own
    // journal holds may include events the primary never had.
    let journal = match journal {
        Some((mut journal, events)) if config.role == crate::topology::MasterRole::Backup => {
            if !events.is_empty() {
                info!(
                    events = events.len(),
                    "starting over from the primary's history"
                );
                journal.reset()?;
            }
            Some((journal, Vec::new()))
        }
        other => other,
    };
    let tls = secure::acceptor(topology, node, &options)?;
    let handle = coordinator::start_with_journal(
        config,
        (listener, tls),
        options.control.clone(),
        journal,
        shutdown,
    )
    .map_err(|source| NodeError::Listen { addr, source })?;
    announce_ready(name, &options, handle.local_addr);
    handle.wait().await;
    Ok(())
}

/// Which role a master takes, and the peers it knows. The journal knows better than the
/// topology who was primary last; a peer already primary in a term at least as high as any
/// this master remembers is followed (an old primary coming back steps down).
async fn take_role(
    config: &mut CoordinatorConfig,
    topology: &Topology,
    options: &NodeOptions,
    journal: Option<&(
        crate::journal::Journal,
        Vec<crate::cluster::event::ClusterEvent>,
    )>,
) {
    let name = config.name.clone();
    let name = name.as_str();
    // Which role to take: a master whose peer is already primary in a term at least as high
    // as any this master remembers follows it (an old primary coming back steps down).
    let last_takeover = journal
        .as_ref()
        .and_then(|(_, events)| crate::journal::last_takeover(events));
    let own_term = last_takeover.as_ref().map_or(1, |(_, term)| *term);
    // The journal knows better than the topology who was primary last: a master that took
    // over before starts as the primary again, and one that was deposed as a backup.
    match &last_takeover {
        Some((primary, _)) if primary == name => config.role = crate::topology::MasterRole::Primary,
        Some(_) => config.role = crate::topology::MasterRole::Backup,
        None => {}
    }
    // The other masters: `name=host:port` pairs from the launcher (shaped links), or the
    // addresses the topology gives.
    if let Some(list) = &options.coordinator {
        // Only masters of its own cluster: those of other clusters are lending peers.
        let cluster = topology
            .node(name)
            .map_or(crate::topology::DEFAULT_CLUSTER, |n| n.cluster.as_str());
        let ranks = master_ranks(topology, cluster);
        let (own, others): (Vec<PeerMaster>, Vec<PeerMaster>) = parse_peers(list, &ranks)
            .into_iter()
            .partition(|p| ranks.iter().any(|(n, _)| *n == p.name));
        config.peers = own;
        // The masters of other clusters, reached over the links given.
        for other in others {
            if let Some(m) = config
                .clusters
                .iter_mut()
                .flat_map(|c| c.masters.iter_mut())
                .find(|m| m.name == other.name)
            {
                m.address = other.address;
            }
        }
    }
    if let Some(primary) = find_primary(&config.peers, name, &config.peer_key, own_term).await {
        info!(%primary, "another master is primary: following it as the backup");
        config.role = crate::topology::MasterRole::Backup;
        config.follow = Some(primary);
    } else if config.role == crate::topology::MasterRole::Backup {
        // The primary the topology names, or the highest-ranked other master.
        let named = config
            .primary
            .clone()
            .filter(|p| config.peers.iter().any(|m| &m.name == p));
        config.follow = named.or_else(|| {
            config
                .peers
                .iter()
                .max_by_key(|p| p.rank)
                .map(|p| p.name.clone())
        });
    }
}

/// A worker: a client of every master, the primary first.
async fn run_worker(
    topology: &Topology,
    node: &Node,
    options: NodeOptions,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let name = node.name.as_str();
    // `--coordinator`: addresses of its own cluster's masters, the primary first; `name=address`
    // entries name masters, and those of other clusters are where it goes when lent.
    let mut elsewhere = std::collections::HashMap::new();
    let coordinators = match options.coordinator {
        Some(list) => {
            let mut home = Vec::new();
            for (master, address) in address_list(&list) {
                match topology.node(&master) {
                    Some(m) if m.kind == NodeKind::Master && m.cluster != node.cluster => {
                        elsewhere.insert(master, address);
                    }
                    _ => home.push(address),
                }
            }
            home
        }
        None => {
            for m in topology.nodes_of(NodeKind::Master) {
                if m.cluster != node.cluster
                    && let Some(port) = m.port
                {
                    elsewhere.insert(m.name.clone(), format!("{}:{port}", m.address));
                }
            }
            master_addresses(topology, &node.cluster)?
        }
    };
    let worker = worker::WorkerOptions {
        config: WorkerConfig {
            name: name.to_string(),
            slots: node.resources.cpu,
            heartbeat_ms: topology.policies.heartbeat.interval.as_millis() as u64,
            cluster: node.cluster.clone(),
        },
        coordinators,
        elsewhere,
        secret: topology.globals.cluster_secret.clone(),
        announce: options.announce,
        control: options.control.clone(),
        silence_ms: topology.policies.heartbeat.timeout.as_millis() as u64 * 2,
    };
    let span = tracing::info_span!("node", node = %name);
    worker::run(worker, shutdown).instrument(span).await;
    Ok(())
}

/// A chat server: its history, its peers, then the server.
async fn run_chat(
    topology: &Topology,
    node: &Node,
    options: NodeOptions,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let name = node.name.as_str();
    let (listener, _, local) = bind(node, &options).await?;
    // The other chat servers: `name=host:port` pairs from the launcher (shaped links),
    // or the addresses the topology gives.
    let peers: Vec<(String, String)> = match &options.coordinator {
        Some(list) => list
            .split(',')
            .filter_map(|e| e.trim().split_once('='))
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
        None => topology
            .nodes_of(NodeKind::Chat)
            .filter(|n| n.name != name)
            .filter_map(|n| Some((n.name.clone(), format!("{}:{}", n.address, n.port?))))
            .collect(),
    };
    let mut config = crate::role::chat::ChatConfig::new(name);
    config.max_connections = fit_connections(options.max_connections.unwrap_or(4096).max(1));
    // Every other chat server of the topology may link to this one, addressed or not.
    config.peers = topology
        .nodes_of(NodeKind::Chat)
        .map(|n| n.name.clone())
        .chain(peers.iter().map(|(n, _)| n.clone()))
        .filter(|n| n != name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    config.masters = topology
        .nodes_of(NodeKind::Master)
        .map(|n| n.name.clone())
        .collect();
    // Without masters, the chat servers elect a time master among themselves (file order).
    if config.masters.is_empty() {
        config.clock_sync = topology.policies.clock;
    }
    config.ranks = topology
        .nodes_of(NodeKind::Chat)
        .map(|n| n.name.clone())
        .collect();
    config.users = topology.users.clone();
    config.secret = topology.globals.cluster_secret.clone();
    config.peer_key = topology.peer_key();
    config.seed = seed_from_env();
    config.rate_per_sec = topology.policies.chat.rate_per_second;
    config.keep = topology.policies.chat.keep;
    config.burst = f64::from(topology.policies.chat.burst);
    let state_dir = state_dir(topology, &options);
    let history = match state_dir {
        Some(dir) => {
            let (history, entries) = ChatHistory::open(&chat_history_path(&dir, name))?;
            Some((history, entries, topology.policies.chat.durability))
        }
        None => None,
    };
    let tls = secure::acceptor(topology, node, &options)?;
    announce_ready(name, &options, local);
    chat::run(
        config,
        (listener, tls),
        peers,
        history,
        options.control.clone(),
        shutdown,
    )
    .await;
    Ok(())
}

/// The servers of these kinds a node talks to: the launcher's shaped links (`name=host:port`
/// pairs, `--chat`), or the topology's addresses of those that have a port.
fn servers_of(
    topology: &Topology,
    options: &NodeOptions,
    kinds: &[NodeKind],
) -> Vec<(String, String)> {
    match &options.chat {
        Some(list) => address_list(list),
        None => topology
            .nodes
            .iter()
            .filter(|n| kinds.contains(&n.kind))
            .filter_map(|n| Some((n.name.clone(), format!("{}:{}", n.address, n.port?))))
            .collect(),
    }
}

/// The chat servers a bot or broker talks to.
fn chat_servers(topology: &Topology, options: &NodeOptions) -> Vec<(String, String)> {
    servers_of(topology, options, &[NodeKind::Chat])
}

/// A broker: its listener, and the chat servers it forwards to.
async fn run_broker(
    topology: &Topology,
    node: &Node,
    options: NodeOptions,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let name = node.name.as_str();
    let (listener, _, local) = bind(node, &options).await?;
    let servers = chat_servers(topology, &options);
    if servers.is_empty() {
        return Err(NodeError::NoCoordinator(
            "this broker has no chat server to forward to: give one a port in the topology, or pass --chat NAME=HOST:PORT".to_string(),
        ));
    }
    let config = crate::role::broker::BrokerConfig {
        name: name.to_string(),
        servers: servers.iter().map(|(n, _)| n.clone()).collect(),
        secret: topology.globals.cluster_secret.clone(),
        peer_key: topology.peer_key(),
        // Unique to this run of the broker, so no request id is ever used twice.
        run: format!("{name}.{}", crate::clock::system_ms()),
        masters: topology
            .nodes_of(NodeKind::Master)
            .map(|n| n.name.clone())
            .collect(),
    };
    let tls = secure::acceptor(topology, node, &options)?;
    announce_ready(name, &options, local);
    broker::run(
        config,
        (listener, tls),
        servers.into_iter().map(|(_, a)| a).collect(),
        options.control.clone(),
        shutdown,
    )
    .await;
    Ok(())
}

/// A bot: links to the masters (if it submits) and to the chat servers (if it posts).
async fn run_bot(
    topology: &Topology,
    node: &Node,
    options: NodeOptions,
    shutdown: CancellationToken,
) -> Result<(), NodeError> {
    let name = node.name.as_str();
    let number = topology
        .nodes_of(NodeKind::Bot)
        .position(|n| n.name == name)
        .unwrap_or(0)
        + 1;
    let settings = node.bot.clone().unwrap_or_default();
    let masters = match &options.coordinator {
        Some(list) => address_list(list),
        None if settings.jobs_per_second > 0.0 => master_addresses(topology, &node.cluster)?
            .into_iter()
            .map(|a| (a.clone(), a))
            .collect(),
        // Only for the time master to read its clock: no master is no error.
        None if topology.policies.clock.is_some() => master_addresses(topology, &node.cluster)
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.clone(), a))
            .collect(),
        None => Vec::new(),
    };
    let chat_servers = chat_servers(topology, &options);
    if settings.posts_per_second > 0.0 && chat_servers.is_empty() {
        return Err(NodeError::NoCoordinator(
            "this bot posts to chat, but no chat server has a port in the topology: pass --chat HOST:PORT".to_string(),
        ));
    }
    let bot = bot::BotOptions {
        name: name.to_string(),
        config: crate::role::bot::BotConfig {
            login: crate::role::bot::login_name(number),
            channels: settings.channels,
            posts_per_second: settings.posts_per_second,
            jobs_per_second: settings.jobs_per_second,
            job: settings.job,
            seed: seed_from_env() ^ number as u64,
            clock_sync: topology.policies.clock.is_some(),
        },
        masters,
        chat_servers,
        secret: topology.globals.cluster_secret.clone(),
        announce: options.announce,
        control: options.control.clone(),
    };
    let span = tracing::info_span!("node", node = %name);
    bot::run(bot, shutdown).instrument(span).await;
    Ok(())
}

/// The listening socket of a server: where the launcher says, or where the topology does.
/// Returns it, where it was asked to listen, and where it listens (the port chosen).
async fn bind(
    node: &Node,
    options: &NodeOptions,
) -> Result<(TcpListener, String, std::net::SocketAddr), NodeError> {
    let addr = options
        .listen
        .clone()
        .unwrap_or_else(|| format!("{}:{}", node.address, node.port.unwrap_or(0)));
    let listen_error = |source| NodeError::Listen {
        addr: addr.clone(),
        source,
    };
    let listener = conn::listen(&addr).await.map_err(listen_error)?;
    let local = listener.local_addr().map_err(listen_error)?;
    Ok((listener, addr, local))
}

/// Where a server keeps its state: where the launcher says, or the topology's `STATE_DIR`.
fn state_dir(topology: &Topology, options: &NodeOptions) -> Option<std::path::PathBuf> {
    options.state_dir.clone().or_else(|| {
        topology
            .globals
            .state_dir
            .clone()
            .map(std::path::PathBuf::from)
    })
}

/// Says a server is ready: the `READY` line, and the launcher's channel.
fn announce_ready(name: &str, options: &NodeOptions, address: std::net::SocketAddr) {
    if options.announce {
        println!("READY {name} {address}");
    }
    if let Some(ready) = &options.ready {
        let _ = ready.send(address.to_string());
    }
}

/// The servers of a `host:port,…` or `name=host:port,…` list, as (name, address); an entry
/// without a name is named after its address.
fn address_list(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|entry| {
            let (name, addr) = entry.split_once('=').unwrap_or((entry, entry));
            (name.to_string(), addr.to_string())
        })
        .collect()
}

/// The other masters from a `name=host:port,…` list; ranks come from `known` (the topology).
/// An entry without a name is accepted, named after its address, ranked lowest.
fn parse_peers(list: &str, ranks: &[(String, u32)]) -> Vec<PeerMaster> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|entry| {
            let (name, address) = entry.split_once('=').unwrap_or((entry, entry));
            PeerMaster {
                name: name.to_string(),
                address: address.to_string(),
                rank: ranks.iter().find(|(n, _)| n == name).map_or(0, |(_, r)| *r),
            }
        })
        .collect()
}

/// The first of `peers` that says it is the primary in a term of at least `term`.
async fn find_primary(
    peers: &[PeerMaster],
    name: &str,
    peer_key: &str,
    term: u64,
) -> Option<String> {
    use crate::client::Client;
    use crate::protocol::message::Message;
    for peer in peers {
        let ask = async {
            // It must prove the peer secret too: a process squatting on a master's port is
            // not followed.
            let key = Some((peer_key, crate::protocol::message::PeerRole::Master));
            let patience = std::time::Duration::from_millis(500);
            let mut client = Client::connect_as(&peer.address, name, key, patience)
                .await
                .ok()?;
            match client.request(Message::Status { job: None }).await.ok()? {
                Message::StatusReport { report } => Some(report),
                _ => None,
            }
        };
        if let Ok(Some(report)) =
            tokio::time::timeout(std::time::Duration::from_millis(500), ask).await
            && report.role == "primary"
            && report.term >= term
        {
            return Some(peer.name.clone());
        }
    }
    None
}

/// The `host:port` of every master of cluster `cluster` as the topology gives them, the primary
/// first.
pub fn master_addresses(topology: &Topology, cluster: &str) -> Result<Vec<String>, NodeError> {
    let primary = coordinator_address(topology, cluster)?;
    let others = topology
        .masters_of(cluster)
        .filter(|n| n.role != Some(crate::topology::MasterRole::Primary))
        .filter_map(|n| n.port.map(|p| format!("{}:{p}", n.address)));
    Ok(std::iter::once(primary).chain(others).collect())
}

/// The `host:port` of cluster `cluster`'s primary as the topology gives it.
pub fn coordinator_address(topology: &Topology, cluster: &str) -> Result<String, NodeError> {
    let primary = topology.primary_of(cluster).ok_or_else(|| {
        NodeError::NoCoordinator(if cluster == crate::topology::DEFAULT_CLUSTER {
            "the topology has no master".to_string()
        } else {
            format!("cluster `{cluster}` has no master in the topology")
        })
    })?;
    match primary.port {
        Some(port) => Ok(format!("{}:{port}", primary.address)),
        None => Err(NodeError::NoCoordinator(format!(
            "`{}` has no port in the topology (tcluster picks one when it launches the cluster): pass --coordinator HOST:PORT",
            primary.name
        ))),
    }
}

/// The seed a driver gives its role: random, unless `TCLUSTER_SEED` fixes it (to replay a run).
/// Roles never read the environment or draw unseeded random numbers themselves.
pub fn seed_from_env() -> u64 {
    std::env::var("TCLUSTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}
