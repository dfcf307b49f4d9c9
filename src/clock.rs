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

#[cfg(test)]
mod tests {
    use super::*;
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
