//! The facts of a cluster, shared by every layer: the wire carries them, the roles make them,
//! the journal stores them, the view and the console read them.
//!
//! - [`event`]: cluster events, every change of a coordinator's state as a value.
//! - [`job`]: job ids, states, views and counts.
//! - [`worker`]: worker health and views, and the cluster at a glance.
//!
//! Nothing here imports anything else of tcluster but the clock: it is the lowest layer.

pub mod event;
pub mod job;
pub mod worker;
