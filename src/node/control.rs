//! What a launcher can do to a running node besides killing it: shift its clock and pause it.
//!
//! - **Clock skew**: the driver's idea of "now" is shifted by an offset. Roles only see the time
//!   their driver hands them, so a skewed coordinator thinks its workers have been silent longer
//!   (or shorter) than they have, and a worker whose clock jumps back stops heartbeating until
//!   its clock catches up — both good ways to show why timeouts and clocks are delicate.
//! - **Pause**, for in-process nodes (a process is paused with SIGSTOP instead): the driver stops
//!   at the top of its loop until resumed, reading nothing and sending nothing.
//!
//! A node in its own process receives skew over its stdin (`skew <ms>` lines, with
//! `--control-stdin`); when stdin closes, its launcher is gone and the node stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::Millis;

/// The skew and pause controls of one node. Cloning shares them.
#[derive(Debug, Clone)]
pub struct NodeControl {
    offset_ms: Arc<AtomicI64>,
    paused: watch::Receiver<bool>,
}

/// The launcher's end of a node's pause control.
#[derive(Debug, Clone)]
pub struct PauseSwitch(Arc<watch::Sender<bool>>);

impl PauseSwitch {
    /// Pauses or resumes the node.
    pub fn set(&self, paused: bool) {
        self.0.send_replace(paused);
    }
}

impl Default for NodeControl {
    fn default() -> Self {
        NodeControl::new().0
    }
}

impl NodeControl {
    /// Controls for a node, and the switch that pauses it.
    pub fn new() -> (NodeControl, PauseSwitch) {
        let (tx, rx) = watch::channel(false);
        (
            NodeControl {
                offset_ms: Arc::new(AtomicI64::new(0)),
                paused: rx,
            },
            PauseSwitch(Arc::new(tx)),
        )
    }

    /// Sets the clock offset, in milliseconds (negative: behind).
    pub fn set_skew(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// The current offset.
    pub fn skew(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Milliseconds since `started`, shifted by the skew (never below zero).
    pub fn now(&self, started: Instant) -> Millis {
        let real = started.elapsed().as_millis() as i64;
        real.saturating_add(self.skew()).max(0) as Millis
    }

    /// Returns at once unless paused; otherwise when resumed.
    pub async fn wait_while_paused(&mut self) {
        while *self.paused.borrow_and_update() {
            if self.paused.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Reads `skew <ms>` lines from stdin into `control`; cancels `shutdown` when stdin closes.
pub async fn follow_stdin(control: NodeControl, shutdown: CancellationToken) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["skew", ms] => match ms.parse::<i64>() {
                    Ok(ms) => {
                        info!(offset_ms = ms, "clock skewed");
                        control.set_skew(ms);
                    }
                    Err(_) => warn!("control: bad skew `{ms}`"),
                },
                _ => warn!("control: unknown command `{line}`"),
            },
            Ok(None) | Err(_) => {
                info!("control channel closed: the launcher is gone, stopping");
                shutdown.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn skew_shifts_now_and_pause_blocks_until_resumed() {
        let (mut control, switch) = NodeControl::new();
        let started = Instant::now();
        control.set_skew(5000);
        assert!(control.now(started) >= 5000);
        control.set_skew(-5000);
        assert_eq!(control.now(started), 0);

        switch.set(true);
        let mut waiting = control.clone();
        let resumed = tokio::spawn(async move { waiting.wait_while_paused().await });
        tokio::task::yield_now().await;
        assert!(!resumed.is_finished());
        switch.set(false);
        resumed.await.unwrap();
        control.wait_while_paused().await;
    }
}
