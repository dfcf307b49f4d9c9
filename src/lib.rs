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
//! - [`protocol`]: the wire protocol — bytes → lines ([`protocol::frame`]) → typed messages
//!   ([`protocol::message`]), the classic `COMMAND:data` adapter ([`protocol::classic`]) and
//!   HMAC authentication ([`protocol::auth`]).
//! - [`role`]: node roles as synchronous state machines — the coordinator, the worker, the
//!   cluster events every state change is made of, job kinds.
//! - [`node`]: the thin async drivers that run a role over TCP, in a process of its own or as
//!   an in-process task; [`clock`] gives them Lamport clocks.
//! - [`supervisor`]: launches a whole topology, shapes its links, injects faults, runs
//!   scenarios, and keeps the timeline with measured detection and recovery times.
//! - [`view`]: the one reading of the cluster — its own events applied by its own code, plus
//!   who is primary, what the masters concluded, and each node's verdict — which the
//!   supervisor's summary and every pane of the console read.
//! - [`state_dir`]: a cluster's state directory: fresh or resumed runs, and `run.json`, where a
//!   running cluster says it listens.
//! - [`console`]: the full-screen console (The Elm Architecture: `App`, `Action`, `update`,
//!   `draw`), on a cluster it launched or one it attaches to.
//! - [`journal`]: the coordinator's events on disk (redb), replayed when it starts again.
//! - [`client`]: a connection to a coordinator, for the client command and tests.
//! - [`logging`]: tracing to stderr, as text or JSON lines.
//! - [`cli`]: the command line (clap): parses arguments and runs the command asked for.
//!
//! `docs/ARCHITECTURE.md` draws the whole and the parts still to come.

pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod console;
pub mod journal;
pub mod logging;
pub mod node;
pub mod protocol;
pub mod role;
pub mod state_dir;
pub mod supervisor;
pub mod topology;
pub mod view;
