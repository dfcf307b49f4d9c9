//! The launcher's side of encrypted links: the cluster's certificates made at launch, the files
//! each node is handed, and the trust table's entries for the servers' real addresses (which
//! the shaping proxies, the console's feed and the launcher's own clients dial).

use super::Supervisor;
use crate::tls::{Pki, TlsFiles};

/// The launcher's TLS: the certificates, and what the trust table holds for it.
#[derive(Default)]
pub(super) struct LaunchTls {
    /// Where the certificates are; `None` when no link is encrypted.
    pub pki: Option<Pki>,
    connector: Option<crate::tls::Connector>,
    /// Real addresses of encrypted servers, registered while the run lasts.
    trusted: Vec<crate::tls::Trusted>,
}

impl LaunchTls {
    /// Makes (or finds) the certificates the topology's encrypted servers need, and has the
    /// shaper encrypt the links the topology marks.
    pub fn prepare(
        topology: &crate::topology::Topology,
        state_dir: &std::path::Path,
        shaper: &mut crate::shaper::LinkShaper,
    ) -> Result<LaunchTls, crate::tls::TlsError> {
        let Some(pki) = Pki::prepare(topology, state_dir)? else {
            return Ok(LaunchTls::default());
        };
        let connector = pki.connector()?;
        for server in topology.encrypted_servers() {
            let acceptor = pki.acceptor(&server.name)?;
            for client in &topology.nodes {
                if client.name != server.name && topology.encrypted_link(&client.name, &server.name)
                {
                    shaper.encrypt(
                        &client.name,
                        &server.name,
                        acceptor.clone(),
                        connector.clone(),
                    );
                }
            }
        }
        Ok(LaunchTls {
            connector: Some(connector),
            pki: Some(pki),
            trusted: Vec::new(),
        })
    }
}

impl Supervisor {
    /// The TLS files node `name` is handed (none when no link is encrypted).
    pub(super) fn tls_files(&self, name: &str) -> TlsFiles {
        match &self.tls.pki {
            Some(pki) => pki.files(&self.topology, name),
            None => TlsFiles::default(),
        }
    }

    /// Server `name` listens on `address` now: if its port takes TLS only, dials to it from
    /// this process (the console's feed, the launcher's own requests) open TLS. (A port that
    /// takes both is dialed in plaintext: those requests travel on no declared link.)
    pub(super) fn trust_server(&mut self, name: &str, address: &str) {
        if let Some(connector) = &self.tls.connector
            && self.topology.tls_only(name)
        {
            let trusted = crate::tls::trust(address, name, connector);
            self.tls.trusted.push(trusted);
        }
    }
}
