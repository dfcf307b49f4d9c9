//! `tcluster check`: the summary on stdout, diagnostics on stderr.

use std::path::Path;
use std::process::ExitCode;

use crate::topology::{self, LoadError, Report, Topology, summary::Summary};

/// Validates a topology and prints its summary (unless `quiet`) or every error.
pub fn run(path: &Path, quiet: bool) -> ExitCode {
    match load(path) {
        Some((topology, _)) => {
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
