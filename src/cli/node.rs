//! `tcluster node TOPOLOGY --name NAME`: one node of a topology, in this process.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use super::NodeArgs;
use crate::logging;
use crate::node::{self, NodeControl, NodeOptions, control};

/// Runs the node until SIGINT or SIGTERM.
pub fn run(args: NodeArgs) -> ExitCode {
    if args.report_pid {
        // Its own group, so that a signal to it reaches whatever it starts, and nothing else.
        let own = nix::unistd::Pid::from_raw(0);
        let _ = nix::unistd::setpgid(own, own);
        use std::io::Write as _;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "PID {}", std::process::id());
        let _ = out.flush();
    }
    // A node launched by tcluster (its control channel on stdin) leaves the warnings to it.
    let loaded = if args.control_stdin {
        super::check::load_quietly(&args.topology)
    } else {
        super::check::load(&args.topology)
    };
    let Some((mut topology, _)) = loaded else {
        return ExitCode::from(1);
    };
    if let Ok(key) = std::env::var(node::PEER_KEY_ENV)
        && !key.is_empty()
    {
        topology.globals.peer_secret = Some(key);
    }
    logging::init(topology.globals.log_level, args.log_format);
    // One thread: a node's work is a loop and a few connection tasks, and on a machine with
    // few cores shared by many nodes, handing a message from one thread to another costs more
    // than it saves (docs/PERFORMANCE.md). CPU jobs still run on the blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let options = NodeOptions {
        listen: args.listen,
        coordinator: args.coordinator,
        chat: args.chat,
        max_connections: Some(args.max_connections),
        announce: true,
        // At the topology's pace; its launcher says when that changes (`speed` on stdin).
        control: NodeControl::with_pace(crate::clock::Pace::new(topology.policies.time.scale)).0,
        ready: None,
        state_dir: args.state_dir.clone(),
        tls: crate::tls::TlsFiles {
            ca: args.ca.clone(),
            cert: args.cert.clone(),
            key: args.key.clone(),
        },
    };
    let follow_stdin = args.control_stdin;
    let code = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        let links = match args.shape_links {
            Some(seed) => match own_links(&topology, &args.name, &options, seed, &shutdown) {
                Ok(links) => Some(links),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            },
            None => None,
        };
        if follow_stdin {
            tokio::spawn(control::follow_stdin(
                options.control.clone(),
                links,
                shutdown.clone(),
            ));
        }
        match node::run(&topology, &args.name, options, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    });
    // A thread blocked reading stdin would keep the runtime from shutting down: do not wait.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// The shaper of the node's own links to the servers it is told of (`name=host:port` pairs),
/// starting as the topology declares them; it reports on stdout.
fn own_links(
    topology: &crate::topology::Topology,
    me: &str,
    options: &NodeOptions,
    seed: u64,
    shutdown: &CancellationToken,
) -> Result<crate::shaper::LinkShaper, String> {
    let declared = topology
        .connections
        .iter()
        .filter(|c| c.from == me || c.to == me)
        .map(|c| (c.from.clone(), c.to.clone(), c.link.clone()));
    let shaper = crate::shaper::LinkShaper::new(declared, seed, shutdown.clone());
    let servers: Vec<(String, String)> = [&options.coordinator, &options.chat]
        .into_iter()
        .flatten()
        .flat_map(|list| list.split(','))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, addr)| (name.to_string(), addr.to_string()))
        .collect();
    shaper.own_links(me, &servers)?;
    tokio::spawn(shaper.clone().report_on_stdout());
    Ok(shaper)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
pub async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    shutdown.cancel();
}
