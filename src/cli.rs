//! The command line: `tcluster check TOPOLOGY`, and `tcluster TOPOLOGY`.
//!
//! Arguments are parsed by clap (derive); each command is a function that returns the process's
//! exit code, so that tests and the binary see the same behaviour. Exit codes: 0 success, 1 an
//! invalid or unreadable topology, 2 a usage error (clap's own).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::topology::{self, LoadError, summary::Summary};

/// tcluster launches a small distributed cluster from a topology file and lets you break it on
/// purpose and watch it recover.
#[derive(Debug, Parser)]
#[command(
    name = "tcluster",
    version,
    about = "A terminal console for teaching distributed systems live",
    long_about = "tcluster reads a topology file (.top) that describes a cluster — a coordinator, \
its backup, workers, chat servers and bots — and launches it.\n\n\
Today `tcluster TOPOLOGY` validates the file and prints what it describes; the full-screen \
console that runs the cluster comes in a later release.",
    after_help = "Examples:\n  tcluster check topologies/demo.top\n  tcluster topologies/classic.top\n\n\
The topology language is documented in docs/TOPOLOGY.md.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// A topology file to open (today: the same as `tcluster check TOPOLOGY`).
    #[arg(value_name = "TOPOLOGY")]
    pub topology: Option<PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
}

/// Parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.topology) {
        (Some(Command::Check { topology, quiet }), _) => check(&topology, quiet),
        (None, Some(topology)) => {
            let code = check(&topology, false);
            eprintln!(
                "note: this release validates topologies; the console that runs them is not built yet"
            );
            code
        }
        (None, None) => {
            use clap::CommandFactory;
            // Printing help can only fail if stdout is closed; there is nothing left to say then.
            let _ = Cli::command().print_help();
            ExitCode::from(2)
        }
    }
}

/// `tcluster check`: the summary on stdout, diagnostics on stderr.
pub fn check(path: &Path, quiet: bool) -> ExitCode {
    match topology::load(path) {
        Ok((topology, report)) => {
            report.source.emit_to_stderr(&report.diagnostics);
            if !quiet {
                let file = path.display().to_string();
                print!(
                    "{}",
                    Summary {
                        topology: &topology,
                        file: &file
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(LoadError::Invalid(report)) => {
            report.source.emit_to_stderr(&report.diagnostics);
            eprintln!("{}", report.count_line());
            ExitCode::from(1)
        }
        Err(other) => {
            eprintln!("error: {other}");
            ExitCode::from(1)
        }
    }
}
