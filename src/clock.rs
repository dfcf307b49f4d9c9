//! Time as the roles see it: Lamport clocks and milliseconds handed in by the driver.
//!
//! A **Lamport clock** orders events across nodes without synchronised wall clocks. Each node
//! keeps a counter; it adds one before each event or message it sends, and on receiving a
//! message it jumps past the sender's stamp (`max(own, received) + 1`). So if event A could have
//! caused event B (A was sent before B was received), A's stamp is smaller than B's. The reverse
//! does not hold: a smaller stamp does not mean "happened before" — a point the console's
//! space-time diagram lets students see.
//!
//! Roles never read the wall clock. Their driver passes [`Millis`] — milliseconds since the node
//! started — with every input, so the roles run the same way in tests, where time is made up.

use serde::{Deserialize, Serialize};

/// Milliseconds since the node started, as measured by its driver.
pub type Millis = u64;

/// The system clock, in milliseconds since 1970-01-01 UTC (for drivers and watchers: roles
/// are handed their time).
pub fn system_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The system clock as it read at `instant` (in the past), in milliseconds since 1970.
pub fn system_ms_at(instant: std::time::Instant) -> i64 {
    system_ms().saturating_sub(instant.elapsed().as_millis() as i64)
}

/// The slowest and fastest pace a [`Pace`] takes (what a topology may ask is narrower:
/// `topology::policies::SCALES`).
const PACE_LIMITS: (f64, f64) = (0.001, 1000.0);

/// The pace of a cluster: cluster time per real time (1: real time; 0.1: ten times slower —
/// slow motion for a class). Every timer of a node reads cluster time, so heartbeats, timeouts,
/// backoffs and jobs all stretch by the same factor. The pace may change while the cluster
/// runs: cluster time goes on from where it was, never jumping, so a change raises no false
/// suspicion. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Pace(std::sync::Arc<std::sync::RwLock<Vec<Stretch>>>);

/// From `from` on, cluster time is `cluster_ms` plus the real time since, times `scale`.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    from: std::time::Instant,
    cluster_ms: f64,
    scale: f64,
}

impl Default for Pace {
    fn default() -> Self {
        Pace::new(1.0)
    }
}

impl Pace {
    /// A pace of `scale`, from now.
    pub fn new(scale: f64) -> Pace {
        let first = Stretch {
            from: std::time::Instant::now(),
            cluster_ms: 0.0,
            scale: clamp_scale(scale),
        };
        Pace(std::sync::Arc::new(std::sync::RwLock::new(vec![first])))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Stretch>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The scale now.
    pub fn scale(&self) -> f64 {
        self.read().last().map_or(1.0, |s| s.scale)
    }

    /// Runs at `scale` from now on (anything not a positive number is 1).
    pub fn set_scale(&self, scale: f64) {
        let now = std::time::Instant::now();
        let cluster_ms = self.cluster_ms_at(now);
        let mut stretches = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stretches.push(Stretch {
            from: now,
            cluster_ms,
            scale: clamp_scale(scale),
        });
        // A lecture changes speed a handful of times; the oldest changes matter only for
        // instants long past.
        if stretches.len() > 256 {
            stretches.remove(1);
        }
    }

    /// Cluster milliseconds at `at` (on this pace's own scale; only differences mean much).
    fn cluster_ms_at(&self, at: std::time::Instant) -> f64 {
        let stretches = self.read();
        let s = stretches
            .iter()
            .rev()
            .find(|s| s.from <= at)
            .or(stretches.first())
            .copied()
            .unwrap_or(Stretch {
                from: at,
                cluster_ms: 0.0,
                scale: 1.0,
            });
        let real_ms = if at >= s.from {
            at.duration_since(s.from).as_secs_f64() * 1000.0
        } else {
            -(s.from.duration_since(at).as_secs_f64() * 1000.0)
        };
        s.cluster_ms + real_ms * s.scale
    }

    /// Cluster time passed from `from` to `to`.
    pub fn between(&self, from: std::time::Instant, to: std::time::Instant) -> std::time::Duration {
        let ms = self.cluster_ms_at(to) - self.cluster_ms_at(from);
        std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    /// Cluster time passed since `since`.
    pub fn elapsed(&self, since: std::time::Instant) -> std::time::Duration {
        self.between(since, std::time::Instant::now())
    }

    /// How long `cluster` of cluster time takes in real time at the scale now.
    pub fn real(&self, cluster: std::time::Duration) -> std::time::Duration {
        cluster.div_f64(self.scale())
    }
}

/// A scale kept within [`PACE_LIMITS`] (anything not a positive number is 1).
fn clamp_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale.clamp(PACE_LIMITS.0, PACE_LIMITS.1)
    } else {
        1.0
    }
}

/// How far ahead of a node's clock a received stamp may be. Further than this it cannot come
/// from an honest peer (2^48 ticks is thousands of years of a busy cluster): it is refused, so
/// that nobody can push a clock to its end and make it wrap.
pub const MAX_AHEAD: u64 = 1 << 48;

/// A received stamp too far ahead to be honest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("clock {received} is too far ahead of this node's ({ours}): refused")]
pub struct TooFarAhead {
    /// The stamp received.
    pub received: u64,
    /// This node's clock then.
    pub ours: u64,
}

/// A Lamport clock. It never goes back and never overflows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LamportClock(u64);

impl LamportClock {
    /// The current value, without advancing.
    pub fn now(self) -> u64 {
        self.0
    }

    /// Advances for a local event or a send, and returns the new stamp.
    pub fn tick(&mut self) -> u64 {
        self.0 = self.0.saturating_add(1);
        self.0
    }

    /// Merges a received stamp: the clock moves past both its own value and the sender's. A
    /// stamp more than [`MAX_AHEAD`] ahead is refused and changes nothing.
    pub fn observe(&mut self, received: u64) -> Result<u64, TooFarAhead> {
        if received > self.0.saturating_add(MAX_AHEAD) {
            return Err(TooFarAhead {
                received,
                ours: self.0,
            });
        }
        self.0 = self.0.max(received).saturating_add(1);
        Ok(self.0)
    }

    /// Moves the clock to at least `value` (after replaying a journal, say).
    pub fn advance_to(&mut self, value: u64) {
        self.0 = self.0.max(value);
    }
}

/// A spread of samples (durations in milliseconds): what benchmarks and `--frame-stats` report.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Spread {
    /// How many samples.
    pub n: usize,
    pub median: f64,
    /// The 99th percentile (with few samples, the largest).
    pub p99: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples` (in milliseconds).
    pub fn of(mut samples: Vec<f64>) -> Spread {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if samples.is_empty() {
                return f64::NAN;
            }
            let i = ((samples.len() - 1) as f64 * q).round() as usize;
            samples[i]
        };
        Spread {
            n: samples.len(),
            median: at(0.5),
            p99: at(0.99),
            min: samples.first().copied().unwrap_or(f64::NAN),
            max: samples.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pace_stretches_time_and_a_change_never_jumps() {
        let ms = |d: std::time::Duration| (d.as_secs_f64() * 1000.0).round() as u64;
        let pace = Pace::new(0.5);
        let t0 = std::time::Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(1000);
        assert_eq!(ms(pace.between(t0, t1)), 500);
        assert_eq!(ms(pace.real(std::time::Duration::from_millis(100))), 200);
        pace.set_scale(0.1);
        let changed = pace.read().last().unwrap().from;
        // Up to the change at half speed, then at a tenth.
        let later = changed + std::time::Duration::from_millis(1000);
        let before = pace.between(t0, changed);
        let after = pace.between(t0, later);
        assert_eq!(ms(after - before), 100);
        assert_eq!(pace.scale(), 0.1);
        // Nonsense is real time.
        pace.set_scale(-2.0);
        assert_eq!(pace.scale(), 1.0);
        pace.set_scale(f64::NAN);
        assert_eq!(pace.scale(), 1.0);
    }
    use proptest::prelude::*;

    #[test]
    fn receive_jumps_past_the_sender() {
        let mut a = LamportClock::default();
        let mut b = LamportClock::default();
        let sent = a.tick(); // a: 1
        b.tick(); // b: 1
        b.tick(); // b: 2
        assert_eq!(b.observe(sent), Ok(3));
        let reply = b.tick(); // 4
        assert_eq!(a.observe(reply), Ok(5));
        assert!(a.now() > sent);
    }

    #[test]
    fn a_stamp_from_too_far_ahead_is_refused_and_changes_nothing() {
        let mut c = LamportClock::default();
        c.tick();
        assert_eq!(
            c.observe(u64::MAX),
            Err(TooFarAhead {
                received: u64::MAX,
                ours: 1
            })
        );
        assert_eq!(c.now(), 1);
        assert_eq!(c.observe(1 + MAX_AHEAD), Ok(2 + MAX_AHEAD));
    }

    proptest! {
        /// Whatever arrives, in whatever order, the clock never goes back and never wraps, and
        /// every stamp it makes is above every stamp it accepted.
        #[test]
        fn never_back_never_wraps(steps in prop::collection::vec(
            prop_oneof![Just(None), any::<u64>().prop_map(Some), (0u64..1000).prop_map(Some)],
            1..200,
        )) {
            let mut c = LamportClock::default();
            let mut highest_accepted = 0;
            for step in steps {
                let before = c.now();
                match step {
                    None => {
                        let t = c.tick();
                        prop_assert!(t >= before);
                        prop_assert!(t > before || before == u64::MAX);
                    }
                    Some(received) => match c.observe(received) {
                        Ok(now) => {
                            highest_accepted = highest_accepted.max(received);
                            prop_assert!(now >= before);
                            prop_assert!(now > received || received == u64::MAX);
                        }
                        Err(_) => prop_assert_eq!(c.now(), before),
                    },
                }
                prop_assert!(c.now() >= highest_accepted);
            }
        }
    }
}
