//! `tcluster check`: the summary on stdout, diagnostics on stderr.

use std::path::Path;
use std::process::ExitCode;

use crate::topology::{self, LoadError, Report, Topology, summary::Summary};

/// Validates a topology and prints its summary (unless `quiet`) or every error.
pub fn run(path: &Path, quiet: bool) -> ExitCode {
    match load(path) {
        Some((topology, _)) => {
            for warning in unresolved_hosts(&topology) {
                eprintln!("warning: {warning}");
            }
            if !quiet {
                let file = path.display().to_string();
                out!(
                    "{}",
                    Summary {
                        topology: &topology,
                        file: &file
                    }
                );
            }
            ExitCode::SUCCESS
        }
        None => ExitCode::from(1),
    }
}

/// The hosts of the topology's nodes (`host "ssh://…"`) that do not resolve here: one line each,
/// with the nodes that would run there. Said by `check`, which reaches no host; the launch then
/// fails on them with what ssh said.
pub fn unresolved_hosts(topology: &Topology) -> Vec<String> {
    use std::net::ToSocketAddrs;
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for node in &topology.nodes {
        let Some(remote) = &node.host else { continue };
        match seen.iter_mut().find(|(h, _)| *h == remote.host) {
            Some((_, nodes)) => nodes.push(node.name.clone()),
            None => seen.push((remote.host.clone(), vec![node.name.clone()])),
        }
    }
    seen.into_iter()
        .filter_map(|(host, nodes)| {
            let why = match (host.as_str(), 22).to_socket_addrs() {
                Ok(addrs) => match addrs.count() {
                    0 => "it has no address".to_string(),
                    _ => return None,
                },
                Err(e) => e.to_string(),
            };
            Some(format!(
                "host `{host}` ({}) does not resolve here: {why}; its nodes cannot be started until it does (or ~/.ssh/config names it)",
                nodes.join(", ")
            ))
        })
        .collect()
}

/// Loads a topology for any command: prints its warnings, or its errors and returns `None`.
pub fn load(path: &Path) -> Option<(Topology, Report)> {
    load_with(path, true)
}

/// Loads a topology for a node tcluster launched: its errors are printed (they explain why it
/// cannot start), its warnings are not — tcluster showed them once already, and every node
/// printing them again would put the same lines in the Logs pane once per node.
pub fn load_quietly(path: &Path) -> Option<(Topology, Report)> {
    load_with(path, false)
}

fn load_with(path: &Path, warnings: bool) -> Option<(Topology, Report)> {
    match topology::load(path) {
        Ok((topology, report)) => {
            if warnings {
                report.source.emit_to_stderr(&report.diagnostics);
            }
            Some((topology, report))
        }
        Err(LoadError::Invalid(report)) => {
            report.source.emit_to_stderr(&report.diagnostics);
            eprintln!("{}", report.count_line());
            None
        }
        Err(other) => {
            eprintln!("error: {other}");
            None
        }
    }
}
