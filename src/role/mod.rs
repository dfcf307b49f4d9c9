//! Node roles as synchronous state machines: messages and ticks in, messages and events out.
//!
//! - [`coordinator`]: registers workers, queues and assigns jobs, detects failures.
//! - [`chat`]: users, channels, posts and private messages, replicated between chat servers.
//! - [`worker`]: runs jobs and reports them.
//! - [`bot`]: load for demos: posts to chat channels and submits jobs at set rates.
//! - [`event`]: the cluster events every state change is made of (they live in
//!   [`crate::cluster::event`], below every layer that reads them).
//! - [`job`]: what a job's data asks a worker to do.
//!
//! No role opens a socket, reads a clock or draws an unseeded random number: the drivers in
//! [`crate::node`] do the I/O and pass the time in. That is why the same role runs in a child
//! process, in an in-process task, and in a test that makes up its own time.

pub mod berkeley;
pub mod bot;
pub mod broker;
pub mod chat;
pub mod coordinator;
pub use crate::cluster::event;
pub mod job;
pub mod worker;

/// A connection, numbered by the driver of a server role.
pub type ConnId = u64;
