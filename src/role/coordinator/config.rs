//! How a coordinator is configured: from a topology, or made up by tests.

use std::time::Duration;

use crate::topology::{Algorithm, Heartbeat, MasterRole, ReplicationMode, Retry, Topology, User};

/// How a coordinator behaves: from the topology, or made up by tests.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Its node name.
    pub name: String,
    /// The term it starts in; a takeover raises it.
    pub term: u64,
    /// Failure detection for native workers.
    pub heartbeat: Heartbeat,
    /// Silence after which a classic worker is dead: classic lab code heartbeats far less often
    /// than the heartbeat policy asks, so it is held to `health_check_interval` (if longer).
    pub classic_timeout: Duration,
    /// How workers are chosen.
    pub algorithm: Algorithm,
    /// What happens to failed jobs.
    pub retry: Retry,
    /// `CLUSTER_SECRET`: nodes must prove they know it.
    pub secret: Option<String>,
    /// The peer secret: what the other masters and the launcher prove (see
    /// [`Topology::peer_key`]).
    pub peer_key: String,
    /// Whether classic peers may connect when there is a secret (they cannot authenticate).
    pub allow_classic: bool,
    /// Accounts; when there are any, submitting needs a login token.
    pub users: Vec<User>,
    /// Seed for the random choices (the `random` algorithm, tokens, nonces).
    pub seed: u64,
    /// Connections kept open at most; past this the oldest idle client is dropped.
    pub max_connections: usize,
    /// A connection that has said nothing valid for this long is closed.
    pub idle_timeout: Duration,
    /// Primary (serves) or backup (follows the primary, takes over when it dies).
    pub role: MasterRole,
    /// Whether a backup may take over (`policy load_balancing { failover }`).
    pub failover: bool,
    /// The primary's name, for a backup to tell workers where to go.
    pub primary: Option<String>,
    /// A backup: the name of the master to follow (one of `peers`).
    pub follow: Option<String>,
    /// Synchronous replication: replies wait until the backup has every event so far.
    pub sync: bool,
    /// Its rank in a Bully election: the highest-ranked master alive becomes primary.
    pub rank: u32,
    /// The other masters: how to reach each, and its rank.
    pub peers: Vec<PeerMaster>,
    /// What compaction keeps, and how often it runs (`policy journal`).
    pub retention: super::Retention,
    /// Its cluster (`cluster NAME`).
    pub cluster: String,
    /// `policy lending`, if the topology lends workers between clusters.
    pub lending: Option<crate::topology::Lending>,
    /// `policy clock`: as primary, this coordinator is the time master.
    pub clock_sync: Option<crate::topology::ClockSync>,
    /// The chat servers whose clocks the time master reads too (over a kept connection each,
    /// proving the peer secret as a master).
    pub time_peers: Vec<PeerMaster>,
    /// The bots of the topology: one that says `clock_join` is polled on its connection too.
    pub bots: Vec<String>,
    /// The other clusters: their masters, for lending and peer heartbeats.
    pub clusters: Vec<PeerCluster>,
    /// Where this master listens, as the masters of other clusters and lent workers reach it
    /// (set by its driver once it listens).
    pub address: Option<String>,
}

/// Another cluster, as a master that may lend to it or borrow from it knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerCluster {
    /// Its name.
    pub name: String,
    /// Its masters (any may be its primary now).
    pub masters: Vec<PeerMaster>,
}

/// Another master, as a coordinator knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerMaster {
    /// Its node name.
    pub name: String,
    /// Where to reach it (`host:port`; a shaped link when tcluster launched the cluster).
    pub address: String,
    pub rank: u32,
}

/// Each master's rank for the Bully election in cluster `cluster`: the primary the topology
/// names ranks highest, the cluster's other masters follow in the order the file declares them.
/// (Masters of other clusters are peers for lending, never in the election.)
pub fn master_ranks(topology: &Topology, cluster: &str) -> Vec<(String, u32)> {
    let primary = topology.primary_of(cluster).map(|n| n.name.clone());
    let mut masters: Vec<String> = topology
        .masters_of(cluster)
        .map(|n| n.name.clone())
        .collect();
    masters.sort_by_key(|n| Some(n) != primary.as_ref());
    let n = masters.len() as u32;
    masters
        .into_iter()
        .enumerate()
        .map(|(i, name)| (name, n - i as u32))
        .collect()
}

impl CoordinatorConfig {
    /// The configuration for master `name` of a topology.
    pub fn from_topology(topology: &Topology, name: &str, seed: u64) -> Self {
        let p = &topology.policies;
        let cluster = topology
            .node(name)
            .map_or(crate::topology::DEFAULT_CLUSTER, |n| n.cluster.as_str());
        let ranks = master_ranks(topology, cluster);
        CoordinatorConfig {
            name: name.to_string(),
            term: 1,
            heartbeat: p.heartbeat.clone(),
            classic_timeout: p
                .heartbeat
                .timeout
                .max(p.load_balancing.health_check_interval),
            algorithm: p.load_balancing.algorithm,
            retry: p.retry.clone(),
            secret: topology.globals.cluster_secret.clone(),
            peer_key: topology.peer_key(),
            allow_classic: p.security.allow_classic,
            users: topology.users.clone(),
            seed,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(60),
            role: topology
                .node(name)
                .and_then(|n| n.role)
                .unwrap_or(MasterRole::Primary),
            failover: p.load_balancing.failover,
            primary: topology.primary_of(cluster).map(|n| n.name.clone()),
            follow: None,
            sync: p.replication.mode == ReplicationMode::Sync,
            rank: ranks.iter().find(|(n, _)| n == name).map_or(0, |(_, r)| *r),
            peers: topology
                .masters_of(cluster)
                .filter(|n| n.name != name)
                .filter_map(|n| {
                    Some(PeerMaster {
                        name: n.name.clone(),
                        address: format!("{}:{}", n.address, n.port?),
                        rank: ranks.iter().find(|(r, _)| *r == n.name)?.1,
                    })
                })
                .collect(),
            retention: p.journal,
            cluster: cluster.to_string(),
            lending: p.lending.filter(|_| topology.has_clusters()),
            clock_sync: p.clock,
            time_peers: Vec::new(),
            bots: topology
                .nodes_of(crate::topology::NodeKind::Bot)
                .map(|n| n.name.clone())
                .collect(),
            clusters: topology
                .clusters()
                .into_iter()
                .filter(|c| *c != cluster)
                .map(|c| PeerCluster {
                    name: c.to_string(),
                    masters: topology
                        .masters_of(c)
                        .map(|n| PeerMaster {
                            name: n.name.clone(),
                            address: n
                                .port
                                .map_or_else(String::new, |port| format!("{}:{port}", n.address)),
                            rank: 0,
                        })
                        .collect(),
                })
                .collect(),
            address: None,
        }
    }

    /// The master called `name`, of this cluster or another.
    pub fn master(&self, name: &str) -> Option<&PeerMaster> {
        self.peers
            .iter()
            .chain(self.clusters.iter().flat_map(|c| &c.masters))
            .chain(&self.time_peers)
            .find(|p| p.name == name)
    }

    /// Whether `name` is a chat server whose clock the time master reads.
    pub fn is_time_peer(&self, name: &str) -> bool {
        self.time_peers.iter().any(|p| p.name == name)
    }

    /// The cluster of another cluster's master called `name`.
    pub fn cluster_of(&self, name: &str) -> Option<&str> {
        self.clusters
            .iter()
            .find(|c| c.masters.iter().any(|m| m.name == name))
            .map(|c| c.name.as_str())
    }

    /// A configuration for tests: defaults everywhere.
    pub fn for_tests(name: &str) -> Self {
        CoordinatorConfig {
            name: name.to_string(),
            term: 1,
            heartbeat: Heartbeat::default(),
            classic_timeout: Duration::from_secs(5),
            algorithm: Algorithm::RoundRobin,
            retry: Retry::default(),
            secret: None,
            peer_key: "test peer secret".to_string(),
            allow_classic: true,
            users: Vec::new(),
            seed: 1,
            max_connections: 64,
            idle_timeout: Duration::from_secs(60),
            role: MasterRole::Primary,
            failover: true,
            primary: None,
            follow: None,
            sync: true,
            rank: 1,
            peers: Vec::new(),
            retention: super::Retention::default(),
            cluster: crate::topology::DEFAULT_CLUSTER.to_string(),
            lending: None,
            clock_sync: None,
            time_peers: Vec::new(),
            bots: Vec::new(),
            clusters: Vec::new(),
            address: None,
        }
    }
}
