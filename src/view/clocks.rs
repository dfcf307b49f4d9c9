//! The one reading of the clocks: what the time master's last round found (`clock_round`),
//! each clock set against the watcher's own.
//!
//! The master reports every offset against its own clock, and its own clock as it closed the
//! round. A watcher that knows when the run began on its own clock (`epoch_ms`) sees how far
//! the master's clock is from its own when the event arrives (the event's delivery, a
//! millisecond or two on one machine, counts as error), and adds that to each offset.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::event::EventKind;

/// One clock as the last round read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReading {
    /// Its clock minus the watcher's, in milliseconds.
    pub offset_ms: i64,
    /// The round (run milliseconds) that read it.
    pub at_ms: u64,
    /// Left out of the round's average (too far from the mean).
    pub left_out: bool,
    /// How far the master told it to move after reading it (none: within tolerance).
    pub moved_ms: Option<i64>,
}

/// Every clock the time master's last round read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Clocks {
    /// The watcher's clock when the run began (milliseconds since 1970).
    epoch_ms: i64,
    /// Per node.
    readings: BTreeMap<String, ClockReading>,
    /// The last round: its number, its master, when.
    pub last_round: Option<(u64, String, u64)>,
    /// Without masters: the chat server the chat servers elected time master, and when.
    pub elected: Option<(String, u64)>,
}

impl Clocks {
    /// Clocks read by a watcher whose run began at `epoch_ms` on its own clock.
    pub fn new(epoch_ms: i64) -> Self {
        Clocks {
            epoch_ms,
            ..Clocks::default()
        }
    }

    /// Takes in a `clock_round` from the time master (`primary`, or the chat server elected
    /// by a `time_master` event), seen at `at_ms` (run milliseconds).
    pub fn apply(&mut self, at_ms: u64, primary: &str, kind: &EventKind) {
        if let EventKind::TimeMaster { master } = kind {
            self.elected = Some((master.clone(), at_ms));
            return;
        }
        let EventKind::ClockRound {
            round,
            clock_ms,
            offsets,
            left_out,
            adjusted,
            ..
        } = kind
        else {
            return;
        };
        if self.epoch_ms == 0 {
            return;
        }
        let master = match &self.elected {
            Some((elected, _)) => elected.clone(),
            None => primary.to_string(),
        };
        let watcher = self.epoch_ms.saturating_add(at_ms as i64);
        let master_offset = clock_ms.saturating_sub(watcher);
        // A node the last round did not read has no reading (dead, silent, or gone).
        self.readings.clear();
        for (node, offset) in offsets {
            self.readings.insert(
                node.clone(),
                ClockReading {
                    offset_ms: offset.saturating_add(master_offset),
                    at_ms,
                    left_out: left_out.contains(node),
                    moved_ms: adjusted.get(node).copied(),
                },
            );
        }
        self.last_round = Some((*round, master, at_ms));
    }

    /// How far apart the two clocks furthest apart were in the last round (0 with none).
    pub fn spread_ms(&self) -> i64 {
        let offsets = self.readings.values().map(|r| r.offset_ms);
        let (low, high) = offsets.fold((i64::MAX, i64::MIN), |(l, h), o| (l.min(o), h.max(o)));
        high.saturating_sub(low).max(0)
    }

    /// How many clocks the last round read.
    pub fn read_count(&self) -> usize {
        self.readings.len()
    }

    /// How many of them it left out of its average.
    pub fn left_out_count(&self) -> usize {
        self.readings.values().filter(|r| r.left_out).count()
    }

    /// A node's clock as last read, if a round read it.
    pub fn reading(&self, node: &str) -> Option<&ClockReading> {
        self.readings.get(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(clock_ms: i64, offsets: &[(&str, i64)], moved: &[(&str, i64)]) -> EventKind {
        EventKind::ClockRound {
            round: 1,
            clock_ms,
            offsets: offsets.iter().map(|(n, o)| (n.to_string(), *o)).collect(),
            left_out: vec!["w2".into()],
            average_ms: 0,
            adjusted: moved.iter().map(|(n, o)| (n.to_string(), *o)).collect(),
            silent: vec![],
        }
    }

    #[test]
    fn offsets_are_set_against_the_watchers_clock() {
        // The run began at 1_000_000 on the watcher's clock; the round is seen 5s in, and
        // the master's clock then read 1_005_300: it is 300ms ahead of the watcher.
        let mut clocks = Clocks::new(1_000_000);
        clocks.apply(
            5_000,
            "m",
            &round(
                1_005_300,
                &[("m", 0), ("w1", -300), ("w2", 2_000)],
                &[("w2", -2_000)],
            ),
        );
        assert_eq!(clocks.reading("m").unwrap().offset_ms, 300);
        assert_eq!(clocks.reading("w1").unwrap().offset_ms, 0);
        let w2 = clocks.reading("w2").unwrap();
        assert_eq!(
            (w2.offset_ms, w2.left_out, w2.moved_ms),
            (2_300, true, Some(-2_000))
        );
        assert_eq!(clocks.last_round, Some((1, "m".into(), 5_000)));
        assert!(clocks.reading("w9").is_none());
        // The next round did not read w2: it has no reading now.
        clocks.apply(
            6_000,
            "m",
            &round(1_006_300, &[("m", 0), ("w1", -300)], &[]),
        );
        assert!(clocks.reading("w2").is_none());
        assert_eq!(clocks.reading("w1").unwrap().offset_ms, 0);
    }

    #[test]
    fn a_watcher_that_does_not_know_its_epoch_reads_nothing() {
        let mut clocks = Clocks::default();
        clocks.apply(5, "m", &round(1, &[("m", 0)], &[]));
        assert!(clocks.reading("m").is_none());
        assert!(clocks.last_round.is_none());
    }
}
