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
    match topology::load(path) {
        Ok((topology, report)) => {
            report.source.emit_to_stderr(&report.diagnostics);
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
