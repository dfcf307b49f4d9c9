//! tcluster: a terminal console for teaching distributed systems live.
//!
//! A topology file (`.top`) describes a small cluster — a coordinator and its backup, workers,
//! chat servers, bots — and tcluster launches it, shows it, and lets the operator break it on
//! purpose and watch it recover.
//!
//! # Layout
//!
//! Lowest layer first; a module uses only the layers above it in this list (`tests/layers.rs`
//! checks it).
//!
//! - [`clock`]: milliseconds and Lamport clocks.
//! - [`topology`]: the `.top` language. Bytes → tokens ([`topology::lexer`]) → a syntax tree of
//!   commands ([`topology::syntax`]) → a validated [`topology::Topology`]
//!   ([`topology::validate`]), with caret diagnostics ([`topology::diagnostic`]), typed units
//!   ([`topology::units`]), names ([`topology::names`]) and the summary `tcluster check`
//!   prints ([`topology::summary`]).
//! - [`state_dir`]: a cluster's state directory: fresh or resumed runs, and `run.json`, where a
//!   running cluster says it listens.
//! - [`cluster`]: the facts every layer shares — cluster events, job ids and states, worker
//!   health, the views clients see.
//! - [`logging`]: tracing to stderr, as text or JSON lines.
//! - [`protocol`]: the wire — bytes → lines ([`protocol::frame`]) → typed messages
//!   ([`protocol::message`]), the classic `COMMAND:data` adapter ([`protocol::classic`]), HMAC
//!   authentication ([`protocol::auth`]) and a peer's side of it ([`protocol::handshake`]).
//! - [`role`]: node roles as synchronous state machines — the coordinator, the worker, the
//!   chat server, the bot — and job kinds.
//! - [`shaper`]: the links between nodes as the topology makes them — latency, jitter,
//!   bandwidth, loss, cuts and held messages — applied by a proxy of the launcher's, or by a
//!   node of tcluster's own to its own links.
//! - [`client`]: a connection to a coordinator or a chat server, for the client command, the
//!   bots, the supervisor and tests.
//! - [`journal`]: what servers keep on disk — the coordinator's events (a file of lines), a
//!   chat server's history — read back when they start again.
//! - [`view`]: the one reading of the cluster — its events applied by the coordinator's own
//!   code, plus who is primary, what the masters concluded, and each node's verdict — which
//!   the supervisor's summary and every pane of the console read.
//! - [`node`]: the thin async drivers that run a role over TCP, in a process of its own or as
//!   an in-process task.
//! - [`supervisor`]: launches a whole topology, shapes its links, injects faults, runs
//!   scenarios, and keeps the timeline with measured detection and recovery times.
//! - [`console`]: the full-screen console (The Elm Architecture: `App`, `Action`, `update`,
//!   `draw`), on a cluster it launched or one it attaches to.
//! - [`bench`](mod@bench): the benchmarks `tcluster bench` runs (docs/PERFORMANCE.md).
//! - [`cli`]: the command line (clap): parses arguments and runs the command asked for.
//!
//! `docs/ARCHITECTURE.md` draws the whole, and names the file of each concept.

pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod console;
pub mod journal;
pub mod logging;
pub mod memory;
pub mod node;
pub mod protocol;
pub mod role;
pub mod shaper;
pub mod state_dir;
pub mod supervisor;
pub mod tls;
pub mod topology;
pub mod view;
