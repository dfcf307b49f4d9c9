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

/// A Lamport clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LamportClock(u64);

impl LamportClock {
    /// The current value, without advancing.
    pub fn now(self) -> u64 {
        self.0
    }

    /// Advances for a local event or a send, and returns the new stamp.
    pub fn tick(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// Merges a received stamp: the clock moves past both its own value and the sender's.
    pub fn observe(&mut self, received: u64) -> u64 {
        self.0 = self.0.max(received).saturating_add(1);
        self.0
    }

    /// Moves the clock to at least `value` (after replaying a journal, say).
    pub fn advance_to(&mut self, value: u64) {
        self.0 = self.0.max(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_jumps_past_the_sender() {
        let mut a = LamportClock::default();
        let mut b = LamportClock::default();
        let sent = a.tick(); // a: 1
        b.tick(); // b: 1
        b.tick(); // b: 2
        assert_eq!(b.observe(sent), 3);
        let reply = b.tick(); // 4
        assert_eq!(a.observe(reply), 5);
        assert!(a.now() > sent);
    }
}
