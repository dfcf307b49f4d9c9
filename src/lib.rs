//! tcluster: a terminal console for teaching distributed systems live.
//!
//! A topology file (`.top`) describes a small cluster — a coordinator and its backup, workers,
//! chat servers, bots — and tcluster launches it, shows it, and lets the operator break it on
//! purpose and watch it recover.
//!
//! # Layout
//!
//! - [`topology`]: the `.top` language. Bytes → tokens ([`topology::lexer`]) → a syntax tree of
//!   commands ([`topology::syntax`]) → a validated [`topology::Topology`]
//!   ([`topology::validate`]), with caret diagnostics ([`topology::diagnostic`]), typed units
//!   ([`topology::units`]) and the summary `tcluster check` prints ([`topology::summary`]).
//! - [`cli`]: the command line (clap): parses arguments and runs the command asked for.
//!
//! `docs/ARCHITECTURE.md` draws the whole and the parts still to come.

pub mod cli;
pub mod client;
pub mod clock;
pub mod logging;
pub mod node;
pub mod protocol;
pub mod role;
pub mod topology;
