//! Workers as everyone sees them, and the cluster at a glance.

use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use super::job::{JobCounts, JobId};

/// A worker's health as its coordinator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Heartbeats arrive on time.
    Healthy,
    /// Heartbeats are late; no new jobs go to it.
    Suspect,
    /// Silent past the timeout, or its connection closed: its jobs went to others.
    Dead,
}

impl Health {
    /// The word used on the wire and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Suspect => "suspect",
            Health::Dead => "dead",
        }
    }
}

/// A worker as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerView {
    pub name: String,
    pub health: Health,
    /// Job slots.
    pub slots: u32,
    /// Jobs it is running now.
    pub running: u32,
    /// Jobs it has completed.
    pub done: u64,
    /// Milliseconds since it was last heard from; absent when this coordinator never heard
    /// it (a worker that was dead before this master took over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_age_ms: Option<u64>,
    /// Its Lamport clock in the last message it sent.
    pub clock: u64,
    /// True if it speaks the classic line protocol.
    pub classic: bool,
    /// Lent to this cluster (it works there now; its heartbeats go there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lent_to: Option<String>,
    /// Borrowed from this cluster (its home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The cluster at a glance (`status` with no job).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The coordinator's name.
    pub coordinator: String,
    /// `primary` or `backup`.
    #[serde(default)]
    pub role: String,
    pub term: u64,
    /// Workers by health.
    pub workers: WorkerCounts,
    /// Jobs by state.
    pub jobs: JobCounts,
    /// Results that arrived for jobs already completed.
    pub duplicates: u64,
    /// What this coordinator refused since it started (left out when nothing was).
    #[serde(default, skip_serializing_if = "Refusals::is_empty")]
    pub refused: Refusals,
}

/// Messages a coordinator refused, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusals {
    /// Lamport stamps too far ahead of its clock.
    #[serde(default)]
    pub clock: u64,
    /// Messages from a peer that may not send them (the table in docs/PROTOCOL.md).
    #[serde(default)]
    pub rules: u64,
    /// Handshakes whose proof was wrong.
    #[serde(default)]
    pub auth: u64,
    /// Requests over a limit: subscribers past the quota, jobs past the open-job bound.
    #[serde(default)]
    pub limits: u64,
    /// Connections that spoke plaintext to an encrypted port (left out when none: only a
    /// TLS-only port counts them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub plaintext: u64,
}

/// Whether a count is zero (a count left out of a message when it is).
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Refusals {
    /// Whether nothing was refused.
    pub fn is_empty(&self) -> bool {
        *self == Refusals::default()
    }
}

/// Workers by health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerCounts {
    /// Healthy.
    pub healthy: usize,
    /// Suspect.
    pub suspect: usize,
    /// Dead.
    pub dead: usize,
}

/// What the coordinator remembers of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// How many jobs it runs at once.
    pub slots: u32,
    /// True if it speaks the classic protocol.
    pub classic: bool,
    /// Healthy, suspect or dead.
    pub health: Health,
    /// Jobs assigned to it and not finished.
    pub running: BTreeSet<JobId>,
    /// Jobs it completed.
    pub done: u64,
    /// At its owner: the cluster it is lent to (it works there now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lent_to: Option<String>,
    /// At a borrower: the cluster that lent it (its home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl WorkerRecord {
    /// Whether it may take another job now.
    pub fn has_free_slot(&self) -> bool {
        self.health == Health::Healthy
            && self.lent_to.is_none()
            && (self.running.len() as u32) < self.slots
    }

    /// The worker as clients see it.
    pub fn view(&self, name: &str, heartbeat_age_ms: Option<u64>, clock: u64) -> WorkerView {
        WorkerView {
            name: name.to_string(),
            health: self.health,
            slots: self.slots,
            running: self.running.len() as u32,
            done: self.done,
            heartbeat_age_ms,
            clock,
            classic: self.classic,
            lent_to: self.lent_to.clone(),
            owner: self.owner.clone(),
        }
    }
}
