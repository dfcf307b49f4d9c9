//! What a launcher can do to a running node besides killing it: shift its clock and pause it.
//!
//! - **Clock skew**: the driver's idea of "now" is shifted by an offset. Roles only see the time
//!   their driver hands them, so a skewed coordinator thinks its workers have been silent longer
//!   (or shorter) than they have, and a worker whose clock jumps back stops heartbeating until
//!   its clock catches up — both good ways to show why timeouts and clocks are delicate.
//! - **Clock correction** (`policy clock`): what the time master tells a node to move its clock
//!   by — the same clock a skew moves, so a skew is undone by the rounds that follow it. Ahead
//!   at once; back by running at half speed until the amount is absorbed (a clock that ran
//!   backwards would break every timestamp taken before, and every timer waiting on it).
//! - **Pace** (`policy time`, `:speed`): cluster time per real time. The driver's "now" and every
//!   timer it sets run on cluster time, so a node at 0.1 does everything ten times slower; a
//!   change goes on from where cluster time was, never jumping.
//! - **Pause**, for in-process nodes (a process is paused with SIGSTOP instead): the driver stops
//!   at the top of its loop until resumed, reading nothing and sending nothing.
//!
//! A node in its own process receives skew and pace over its stdin (`skew <ms>` and `speed
//! <scale>` lines, with `--control-stdin`); when stdin closes, its launcher is gone and the node
//! stops.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clock::{Millis, Pace, system_ms};

/// The skew and pause controls of one node. Cloning shares them.
#[derive(Debug, Clone)]
pub struct NodeControl {
    offset_ms: Arc<AtomicI64>,
    correction: Arc<Mutex<Correction>>,
    paused: watch::Receiver<bool>,
    pace: Pace,
}

/// The corrections a time master made, the last one perhaps still being absorbed.
#[derive(Debug, Default)]
struct Correction {
    /// Absorbed so far, in milliseconds.
    settled: i64,
    /// A move back being absorbed: since when, and how far in all (negative).
    slewing: Option<(Instant, i64)>,
}

impl Correction {
    /// The correction at `at`: the settled part plus what half speed has absorbed.
    fn at(&self, at: Instant) -> i64 {
        let absorbed = self.slewing.map_or(0, |(from, amount)| {
            let half = (at.saturating_duration_since(from).as_millis() / 2) as i64;
            amount.max(-half)
        });
        self.settled.saturating_add(absorbed)
    }
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
        NodeControl::with_pace(Pace::default())
    }

    /// Controls for a node that runs at `pace` (shared: the launcher's in-process nodes all
    /// follow its one pace).
    pub fn with_pace(pace: Pace) -> (NodeControl, PauseSwitch) {
        let (tx, rx) = watch::channel(false);
        (
            NodeControl {
                offset_ms: Arc::new(AtomicI64::new(0)),
                correction: Arc::default(),
                paused: rx,
                pace,
            },
            PauseSwitch(Arc::new(tx)),
        )
    }

    /// The node's pace.
    pub fn pace(&self) -> &Pace {
        &self.pace
    }

    /// Sets the clock offset, in milliseconds (negative: behind).
    pub fn set_skew(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// The current offset.
    pub fn skew(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Cluster milliseconds since `started`, shifted by the skew and the corrections (never
    /// below zero).
    pub fn now(&self, started: Instant) -> Millis {
        let real = self.pace.elapsed(started).as_millis() as i64;
        let correction = self.lock().at(Instant::now());
        real.saturating_add(self.skew())
            .saturating_add(correction)
            .max(0) as Millis
    }

    /// The node's wall clock, in milliseconds since 1970: the system's, shifted by the skew
    /// and by the time master's corrections.
    pub fn wall_ms(&self) -> i64 {
        let correction = self.lock().at(Instant::now());
        system_ms()
            .saturating_add(self.skew())
            .saturating_add(correction)
    }

    /// The time master's correction so far (absorbed part only).
    pub fn correction(&self) -> i64 {
        self.lock().at(Instant::now())
    }

    /// Moves the wall clock by `ms`: ahead at once; back at half speed. A new move replaces
    /// the part of the last one not absorbed yet (the master measured the clock as it was).
    pub fn adjust(&self, ms: i64) {
        let now = Instant::now();
        let mut c = self.lock();
        c.settled = c.at(now);
        c.slewing = None;
        if ms >= 0 {
            c.settled = c.settled.saturating_add(ms);
        } else {
            c.slewing = Some((now, ms));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Correction> {
        self.correction
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Peers whose link to this node is cut or held now (`link PEER ME cut=1 …` on the control
/// channel, for a node at the server end of a link its client shapes itself). A connection from
/// one of them that ends is not heard to end until the link is back: across a real partition, a
/// crashed peer's goodbye never arrives either.
static SILENCED: LazyLock<watch::Sender<HashSet<String>>> =
    LazyLock::new(|| watch::Sender::new(HashSet::new()));

/// Whether messages from `peer` to this node are cut off (or held) now.
pub fn silence(peer: &str, silenced: bool) {
    SILENCED.send_if_modified(|set| {
        if silenced {
            set.insert(peer.to_string())
        } else {
            set.remove(peer)
        }
    });
}

/// Waits while the link from `peer` to this node is cut or held.
pub async fn while_silenced(peer: &str) {
    let mut watching = SILENCED.subscribe();
    let _ = watching.wait_for(|set| !set.contains(peer)).await;
}

/// Reads control lines from stdin into `control` (see [`obey`]) and into `links`, the shaper
/// of the node's own links if it has one ([`crate::shaper::own`]); cancels `shutdown` when
/// stdin closes.
pub async fn follow_stdin(
    control: NodeControl,
    links: Option<crate::shaper::LinkShaper>,
    shutdown: CancellationToken,
) {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                // About the links the node shapes itself (`link …`, `deliver`, `discard`), and
                // about a link into it (`link PEER ME …`): a line may be both.
                let shaped = links.as_ref().and_then(|l| l.obey(&line));
                let into_it = incoming(&line);
                let result = shaped.or(into_it).unwrap_or_else(|| obey(&control, &line));
                if let Err(e) = result {
                    warn!("control: {e}");
                }
            }
            Ok(None) | Err(_) => {
                info!("control channel closed: the launcher is gone, stopping");
                shutdown.cancel();
                return;
            }
        }
    }
}

/// A `link FROM TO …` line for a node at the server end (`TO`): whether `FROM` is silenced.
fn incoming(line: &str) -> Option<Result<(), String>> {
    let (from, _to, rules) = crate::shaper::own::parse_link_line(line)?;
    Some(rules.map(|(_, cut, held)| silence(from, cut || held)))
}

/// Carries out one control line: `skew <ms>` (the clock's offset) or `speed <scale>` (the
/// pace). Anything else is refused with what was wrong; the node runs on as it was.
pub fn obey(control: &NodeControl, line: &str) -> Result<(), String> {
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        ["skew", ms] => {
            let ms = ms
                .parse::<i64>()
                .map_err(|_| format!("bad skew `{ms}`: expected milliseconds"))?;
            info!(offset_ms = ms, "clock skewed");
            control.set_skew(ms);
            Ok(())
        }
        ["speed", scale] => match scale.parse::<f64>() {
            Ok(value) if value.is_finite() && value > 0.0 => {
                info!(scale = value, "the cluster's pace changed");
                control.pace().set_scale(value);
                Ok(())
            }
            _ => Err(format!("bad speed `{scale}`: expected a number above 0")),
        },
        _ => Err(format!("unknown command `{line}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_are_obeyed_and_garbage_is_refused_without_a_change() {
        let (control, _switch) = NodeControl::new();
        assert_eq!(obey(&control, "skew -250"), Ok(()));
        assert_eq!(control.skew(), -250);
        assert_eq!(obey(&control, "speed 0.2"), Ok(()));
        assert_eq!(control.pace().scale(), 0.2);
        for (line, said) in [
            ("skew soon", "bad skew `soon`"),
            ("speed fast", "bad speed `fast`"),
            ("speed -1", "bad speed `-1`"),
            ("speed NaN", "bad speed `NaN`"),
            ("dance", "unknown command `dance`"),
            ("", "unknown command ``"),
        ] {
            let e = obey(&control, line).unwrap_err();
            assert!(e.contains(said), "{line}: {e}");
        }
        assert_eq!(control.skew(), -250);
        assert_eq!(control.pace().scale(), 0.2);
    }

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

    #[test]
    fn a_correction_moves_ahead_at_once_and_back_at_half_speed() {
        let t0 = Instant::now();
        let mut c = Correction {
            settled: 300,
            slewing: None,
        };
        assert_eq!(c.at(t0), 300);
        c.slewing = Some((t0, -1000));
        assert_eq!(c.at(t0), 300);
        assert_eq!(c.at(t0 + std::time::Duration::from_millis(1000)), -200);
        assert_eq!(c.at(t0 + std::time::Duration::from_millis(5000)), -700);

        let (control, _switch) = NodeControl::new();
        let before = control.wall_ms();
        control.adjust(5000);
        assert!(control.wall_ms() >= before + 5000);
        assert_eq!(control.correction(), 5000);
        // A move back is absorbed over time, replacing nothing already settled.
        control.adjust(-4000);
        assert!(control.correction() <= 5000 && control.correction() >= 1000);
        assert!(
            control.now(Instant::now()) >= 1000,
            "the node's time moves with it"
        );
    }
}
