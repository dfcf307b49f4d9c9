//! The command line: argument parsing (clap, derive) and one module per command.
//!
//! Each command is a function that returns the process's exit code, so tests and the binary see
//! the same behaviour. Exit codes: 0 success, 1 failure (an invalid topology, an unreachable
//! coordinator, a refused request), 2 a usage error (clap's own), 3 a waited-for job failed.

/// `println!` for command output that a closed stdout does not turn into a panic: the reader
/// went away (`tcluster check demo.top | head`), which is not an error worth reporting.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` with the same care as [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

pub mod bench;
pub mod chat;
pub mod check;
pub mod client;
pub mod console;
pub mod node;
pub mod replay;
pub mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};

use crate::logging::LogFormat;

/// tcluster launches a small distributed cluster from a topology file and lets you break it on
/// purpose and watch it recover.
#[derive(Debug, Parser)]
#[command(
    name = "tcluster",
    version,
    about = "A terminal console for teaching distributed systems live",
    long_about = "tcluster reads a topology file (.top) that describes a cluster — a coordinator, \
its backup, workers, chat servers and bots — and runs it.\n\n\
`tcluster TOPOLOGY` launches every node and opens the full-screen console on the cluster; \
`tcluster run` launches it without the console (headless, for scripts and CI); `tcluster check` \
validates the file; `tcluster node` runs one node of it by hand; `tcluster client` talks to its \
coordinator; `tcluster attach` opens the console on a cluster another tcluster runs.",
    after_help = "Examples:\n  tcluster topologies/demo.top\n  tcluster run topologies/failover.top --headless --scenario failover\n  \
tcluster check topologies/demo.top\n  tcluster node topologies/demo.top --name coordinator\n  \
tcluster client topologies/demo.top submit \"sleep 1s\" --count 5 --wait\n\n\
The topology language is documented in docs/TOPOLOGY.md, the protocol in docs/PROTOCOL.md.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<CliCommand>,

    /// A topology file: launch its cluster and open the console on it.
    #[arg(value_name = "TOPOLOGY")]
    pub topology: Option<PathBuf>,

    /// Personal settings (default: $XDG_CONFIG_HOME/tcluster/config.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Where the cluster's journals, chat history and logs go (default: the topology's
    /// STATE_DIR, else $XDG_STATE_HOME/tcluster/<system>).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// When the console quits, write how long its frames took to draw (JSON: min, median,
    /// p99 and max in milliseconds, and how many) to this file.
    #[arg(long, value_name = "FILE")]
    pub frame_stats: Option<PathBuf>,

    /// A run that ended (q) is over and the next launch starts fresh; one that did not end
    /// (a crash, a kill) is resumed. These choose either way.
    #[command(flatten)]
    pub start: run::StartArgs,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CliCommand {
    /// Validate a topology file and print a summary of it, or every error in it.
    ///
    /// Exit status: 0 if the file is valid (warnings are allowed), 1 if it is not.
    Check {
        /// The topology file (.top) to check.
        #[arg(value_name = "TOPOLOGY")]
        topology: PathBuf,

        /// Print only problems: nothing at all for a valid file without warnings.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Run one node of a topology (a master, a worker, a chat server or a bot) in this process,
    /// until SIGINT/SIGTERM.
    ///
    /// When ready it prints `READY NAME ADDRESS` (a master or a chat server) or `READY NAME
    /// registered with ADDRESS` (a worker) on stdout; logs go to stderr.
    Node(NodeArgs),
    /// Launch a whole topology and run it without the console (`--headless`): the timeline is
    /// printed as it happens, and a summary at the end.
    Run(run::RunArgs),
    /// Open the console on a cluster this console did not launch, given its coordinator's address.
    ///
    /// Jobs can be submitted; faults need the cluster launched by the console itself.
    Attach(console::AttachArgs),
    /// Talk to a cluster's coordinator: submit jobs, ask for their status, list workers.
    ///
    /// Without a command, opens an interactive prompt.
    Client(client::ClientArgs),
    /// Measure tcluster: dispatch, detect, verdicts, failover, chat, startup, journal, lending,
    /// the console under load, its drawing and log ingest (or all the quick ones), soak.
    ///
    /// Prints a table, or one JSON object with --json. Method and results: docs/PERFORMANCE.md.
    Bench(bench::BenchArgs),
    /// Replay a run from its recording: the console with a scrubber (←/→ step, Space plays,
    /// +/- speed, [ ] marks, g goes to a time), or the screen (--dump) or state (--json) at a
    /// moment.
    ///
    /// Every run records itself in its state directory (recordings/).
    Replay(replay::ReplayArgs),
}

/// `tcluster node` arguments.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The topology file.
    #[arg(value_name = "TOPOLOGY")]
    pub topology: PathBuf,

    /// The node to run, as the topology names it (`worker-2` for a copy made by `count`).
    #[arg(long)]
    pub name: String,

    /// A master: listen here instead of the topology's address (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// A master or a chat server: the most connections kept open; past it, the oldest idle one
    /// is dropped (never more than the open-file limit allows).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,

    /// A master: keep the journal under this directory (default: the topology's STATE_DIR, if
    /// set; otherwise nothing is kept).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A worker: connect to this coordinator instead of the topology's primary.
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: Option<String>,

    /// A bot: post to these chat servers (`HOST:PORT,…`) instead of the topology's.
    #[arg(long, value_name = "HOST:PORT,…")]
    pub chat: Option<String>,

    /// Encrypted links: check servers against this CA certificate (PEM).
    #[arg(long, value_name = "FILE", env = "TCLUSTER_CA")]
    pub ca: Option<PathBuf>,

    /// An encrypted server: its certificate chain (PEM).
    #[arg(long, value_name = "FILE", env = "TCLUSTER_CERT")]
    pub cert: Option<PathBuf>,

    /// An encrypted server: its private key (PEM).
    #[arg(long, value_name = "FILE", env = "TCLUSTER_KEY")]
    pub key: Option<PathBuf>,

    /// Take commands from stdin (`skew <ms>`) and stop when stdin closes: how a launcher
    /// controls its nodes and makes sure none outlives it.
    #[arg(long)]
    pub control_stdin: bool,

    /// Apply the faults of its links to its servers (those `--coordinator` and `--chat` name)
    /// itself, starting as the topology declares them, with this seed for loss and jitter; its
    /// launcher says each change on stdin (`link …`) and reads what the links carried from
    /// stdout (`LINK …`).
    #[arg(long, value_name = "SEED", requires = "control_stdin")]
    pub shape_links: Option<u64>,

    /// Lead a process group of its own and print `PID <pid>` first: how a launcher on another
    /// machine signals it (over ssh, `kill -- -PID`).
    #[arg(long)]
    pub report_pid: bool,

    /// How log lines on stderr look.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The state directory of a topology's cluster: `dir` if given, else the topology's default.
pub fn state_dir_of(
    topology: &crate::topology::Topology,
    dir: Option<&std::path::Path>,
) -> PathBuf {
    dir.map_or_else(
        || run::default_state_dir(topology),
        std::path::Path::to_path_buf,
    )
}

/// Where the servers of `kind` of the cluster running now on the topology's state directory
/// listen (the primary first, for masters), if one runs: its `run.json` says so.
pub fn running_servers(
    topology: &crate::topology::Topology,
    dir: Option<&std::path::Path>,
    kind: crate::topology::NodeKind,
    cluster: Option<&str>,
) -> Option<Vec<String>> {
    let record = crate::state_dir::running(&state_dir_of(topology, dir))?;
    let mut servers: Vec<(&String, &String)> = record
        .servers
        .iter()
        .filter(|(name, _)| {
            topology
                .node(name)
                .is_some_and(|n| n.kind == kind && cluster.is_none_or(|c| n.cluster == c))
        })
        .collect();
    servers.sort_by_key(|(name, _)| **name != record.primary);
    let servers: Vec<String> = servers.into_iter().map(|(_, a)| a.clone()).collect();
    (!servers.is_empty()).then_some(servers)
}

/// Registers the TLS-only servers of the topology's cluster in this process's trust table, as
/// the running cluster's `run.json` places them and as the topology does, to be checked
/// against the cluster's CA: `tcluster client` and `tcluster chat` then speak TLS to them.
pub fn trust_cluster(topology: &crate::topology::Topology, dir: Option<&std::path::Path>) {
    if topology.encrypted_servers().next().is_none() {
        return;
    }
    let state_dir = state_dir_of(topology, dir);
    let ca = crate::tls::Pki::located(topology, &state_dir).ca();
    let connector = match crate::tls::Connector::from_ca_file(&ca) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: this topology's links are encrypted, but {e}");
            return;
        }
    };
    let placed = topology
        .encrypted_servers()
        .filter_map(|n| Some((n.name.clone(), format!("{}:{}", n.address, n.port?))));
    let running = crate::state_dir::read_record(&state_dir)
        .into_iter()
        .flat_map(|r| r.servers.into_iter());
    for (name, addr) in placed.chain(running) {
        if topology.tls_only(&name) {
            crate::tls::trust(&addr, &name, &connector).keep();
        }
    }
}

/// Where chat requests go in a running cluster: its brokers if the topology has any, else its
/// chat servers.
pub fn chat_entry_points(
    topology: &crate::topology::Topology,
    dir: Option<&std::path::Path>,
) -> Option<Vec<String>> {
    use crate::topology::NodeKind;
    running_servers(topology, dir, NodeKind::Broker, None)
        .or_else(|| running_servers(topology, dir, NodeKind::Chat, None))
}

/// Parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    crate::memory::no_huge_pages();
    let cli = Cli::parse();
    match (cli.command, cli.topology) {
        (Some(CliCommand::Check { topology, quiet }), _) => check::run(&topology, quiet),
        (Some(CliCommand::Node(args)), _) => node::run(args),
        (Some(CliCommand::Client(args)), _) => client::run(args),
        (Some(CliCommand::Bench(args)), _) => bench::run(args),
        (Some(CliCommand::Replay(args)), _) => replay::run(args),
        (Some(CliCommand::Run(args)), _) => run::run(args),
        (Some(CliCommand::Attach(args)), _) => console::attach(args),
        (None, Some(topology)) => console::open(
            &topology,
            (cli.config, cli.frame_stats),
            cli.state_dir,
            cli.start,
        ),
        (None, None) => {
            use clap::CommandFactory;
            // Printing help can only fail if stdout is closed; there is nothing left to say then.
            let _ = Cli::command().print_help();
            ExitCode::from(2)
        }
    }
}
