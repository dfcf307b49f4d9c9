//! A node's TLS, from the files its launcher names ([`crate::tls::TlsFiles`]): the acceptor
//! of its own port when the topology encrypts it, and the trust table's entries for every
//! encrypted server it may dial.

use crate::tls::{Acceptor, Connector, Trusted};
use crate::topology::{Node, Topology};

use super::{NodeError, NodeOptions, address_list};

/// The acceptor for `node`'s port: `None` unless the topology encrypts it.
pub(super) fn acceptor(
    topology: &Topology,
    node: &Node,
    options: &NodeOptions,
) -> Result<Option<Acceptor>, NodeError> {
    if !topology.encrypted(&node.name) {
        return Ok(None);
    }
    match (&options.tls.cert, &options.tls.key) {
        (Some(cert), Some(key)) => Ok(Some(Acceptor::from_files(cert, key)?)),
        _ => Err(NodeError::Tls(format!(
            "`{}`'s port is encrypted, but no certificate was given: pass --cert and --key \
             (or set {} and {})",
            node.name,
            crate::tls::CERT_ENV,
            crate::tls::KEY_ENV
        ))),
    }
}

/// Registers every encrypted server `options` and the topology say where to find: the
/// launcher's `name=host:port` lists (its shaped links), and the topology's own addresses. An
/// address given without a name is the server the topology places there, if any.
pub(super) fn trust_servers(
    topology: &Topology,
    options: &NodeOptions,
) -> Result<Trusted, NodeError> {
    let mut encrypted = topology.encrypted_servers().peekable();
    if encrypted.peek().is_none() {
        return Ok(Trusted::default());
    }
    let placed: Vec<(String, String)> = encrypted
        .filter_map(|n| Some((n.name.clone(), format!("{}:{}", n.address, n.port?))))
        .collect();
    let Some(ca) = &options.tls.ca else {
        return Err(NodeError::Tls(format!(
            "the topology encrypts links, but no CA was given to check servers against: pass \
             --ca (or set {})",
            crate::tls::CA_ENV
        )));
    };
    let connector = Connector::from_ca_file(ca)?;
    let given = [&options.coordinator, &options.chat]
        .into_iter()
        .flatten()
        .flat_map(|list| address_list(list));
    let mut trusted = Trusted::default();
    for (name, addr) in placed.clone().into_iter().chain(given) {
        let name = match topology.node(&name) {
            Some(_) => name,
            None => match placed.iter().find(|(_, a)| *a == addr) {
                Some((placed_name, _)) => placed_name.clone(),
                None => continue,
            },
        };
        if topology.encrypted(&name) {
            trusted = trusted.and(crate::tls::trust(&addr, &name, &connector));
        }
    }
    Ok(trusted)
}
