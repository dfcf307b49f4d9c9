//! A node's TLS, from the files its launcher names ([`crate::tls::TlsFiles`]): the acceptor
//! of its own port when the topology encrypts it, and the trust table's entries for every
//! encrypted server it may dial.

use crate::tls::{Acceptor, Connector, Plaintext, Trusted};
use crate::topology::{Node, Topology};

use super::{NodeError, NodeOptions, address_list};

/// The acceptor for `node`'s port, and whether it serves plaintext peers too: `None` unless an
/// encrypted link reaches it.
pub(super) fn acceptor(
    topology: &Topology,
    node: &Node,
    options: &NodeOptions,
) -> Result<Option<(Acceptor, Plaintext)>, NodeError> {
    if !topology.encrypted(&node.name) {
        return Ok(None);
    }
    let plaintext = if topology.tls_only(&node.name) {
        Plaintext::Refused
    } else {
        Plaintext::Served
    };
    match (&options.tls.cert, &options.tls.key) {
        (Some(cert), Some(key)) => Ok(Some((Acceptor::from_files(cert, key)?, plaintext))),
        _ => Err(NodeError::Tls(format!(
            "`{}`'s port is encrypted, but no certificate was given: pass --cert and --key \
             (or set {} and {})",
            node.name,
            crate::tls::CERT_ENV,
            crate::tls::KEY_ENV
        ))),
    }
}

/// Registers every server `me` reaches over an encrypted link, where `options` and the topology
/// say it is: the launcher's `name=host:port` lists (its shaped links), and the topology's own
/// addresses. An address given without a name is the server the topology places there, if any.
pub(super) fn trust_servers(
    topology: &Topology,
    me: &str,
    options: &NodeOptions,
) -> Result<Trusted, NodeError> {
    let mut encrypted = topology.encrypted_servers().peekable();
    if encrypted.peek().is_none() {
        return Ok(Trusted::default());
    }
    let placed: Vec<(String, String)> = encrypted
        .filter_map(|n| Some((n.name.clone(), format!("{}:{}", n.address, n.port?))))
        .collect();
    let given = [&options.coordinator, &options.chat]
        .into_iter()
        .flatten()
        .flat_map(|list| address_list(list));
    let mut wanted = Vec::new();
    for (name, addr) in placed.clone().into_iter().chain(given) {
        let name = match topology.node(&name) {
            Some(_) => name,
            None => match placed.iter().find(|(_, a)| *a == addr) {
                Some((placed_name, _)) => placed_name.clone(),
                None => continue,
            },
        };
        if topology.encrypted(&name) && topology.encrypted_link(me, &name) {
            wanted.push((name, addr));
        }
    }
    if wanted.is_empty() {
        return Ok(Trusted::default());
    }
    let Some(ca) = &options.tls.ca else {
        return Err(NodeError::Tls(format!(
            "`{me}`'s links to {} are encrypted, but no CA was given to check them against: \
             pass --ca (or set {})",
            wanted[0].0,
            crate::tls::CA_ENV
        )));
    };
    let connector = Connector::from_ca_file(ca)?;
    let mut trusted = Trusted::default();
    for (name, addr) in wanted {
        trusted = trusted.and(crate::tls::trust(&addr, &name, &connector));
    }
    Ok(trusted)
}
