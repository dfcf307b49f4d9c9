//! `tcluster TOPOLOGY` and `tcluster attach ADDRESS`: the full-screen console.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::console;
use crate::supervisor::RunOptions;

/// `tcluster attach` arguments.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The coordinator's address (`127.0.0.1:7400`).
    #[arg(value_name = "ADDRESS")]
    pub address: String,

    /// The cluster's topology, for its secret, if it has one.
    #[arg(long, value_name = "TOPOLOGY")]
    pub topology: Option<PathBuf>,

    /// Personal settings (default: $XDG_CONFIG_HOME/tcluster/config.toml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// When the console quits, write how long its frames took to draw (JSON) to this file.
    #[arg(long, value_name = "FILE")]
    pub frame_stats: Option<PathBuf>,
}

fn config_or_explain(path: Option<PathBuf>) -> Option<crate::console::config::Config> {
    console::load_config(path)
        .map_err(|e| eprintln!("error: {e}"))
        .ok()
}

fn terminal_or_explain() -> bool {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        return true;
    }
    eprintln!(
        "error: the console needs a terminal; without one, use `tcluster run TOPOLOGY --headless`"
    );
    false
}

/// `tcluster TOPOLOGY`.
pub fn open(
    path: &Path,
    (config, frame_stats): (Option<PathBuf>, Option<PathBuf>),
    state_dir: Option<PathBuf>,
    start: super::run::StartArgs,
) -> ExitCode {
    let Some((topology, report)) = super::check::load(path) else {
        return ExitCode::from(1);
    };
    let warnings = report
        .diagnostics
        .iter()
        .map(|d| report.source.one_line(d))
        .collect();
    let Some(mut config) = config_or_explain(config) else {
        return ExitCode::from(1);
    };
    config.frame_stats = frame_stats;
    if !terminal_or_explain() {
        return ExitCode::from(1);
    }
    let Some(program) = super::run::this_program() else {
        return ExitCode::from(1);
    };
    let options = RunOptions {
        topology_path: path.to_path_buf(),
        state_dir: state_dir.unwrap_or_else(|| super::run::default_state_dir(&topology)),
        program,
        seed: crate::node::seed_from_env(),
        start: start.start(),
        shaping: start.shaping,
        job_histories: true,
    };
    console::launch_and_run(topology, options, config, warnings)
}

/// `tcluster attach`.
pub fn attach(args: AttachArgs) -> ExitCode {
    let secret = match &args.topology {
        Some(path) => match super::check::load(path) {
            Some((topology, _)) => {
                super::trust_cluster(&topology, None);
                topology.globals.cluster_secret
            }
            None => return ExitCode::from(1),
        },
        None => None,
    };
    let Some(mut config) = config_or_explain(args.config) else {
        return ExitCode::from(1);
    };
    config.frame_stats = args.frame_stats;
    if !terminal_or_explain() {
        return ExitCode::from(1);
    }
    console::attach_and_run(args.address, secret, config)
}
