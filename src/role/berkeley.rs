//! The Berkeley algorithm's rounds, for whichever node is the time master: the primary
//! coordinator, or in a topology without masters the chat server the others elected (Bully).
//!
//! A round polls every clock the master can reach, takes each reading compensated for the
//! round trip (the node read its clock about half way through it), and closes once everyone
//! answered or half an interval passed. Closing it takes the mean of every offset with the
//! master's own (zero), leaves out readings further than `outlier` from it (with few clocks
//! one far off can drag the mean away from all of them: then the median is the centre), and
//! averages the rest; each clock off by more than `tolerance` is told how far to move —
//! never a time, which would be stale on arrival.
//!
//! No I/O here: the master says whom it polled (and by which route, `R`), hands in readings,
//! and sends the adjustments [`Closed`] lists.

use std::collections::BTreeMap;

use crate::clock::Millis;
use crate::topology::ClockSync;

/// The furthest a clock is ever told to move in one round (a day): a reading beyond it is a
/// hostile or broken peer's, and the arithmetic stays far from overflow.
pub const MAX_ADJUST_MS: i64 = 86_400_000;

/// What a time master keeps between rounds.
#[derive(Debug)]
pub struct Rounds<R> {
    /// The last round's number.
    count: u64,
    /// When the last round opened.
    last: Option<Millis>,
    /// The round waiting for readings.
    open: Option<Round<R>>,
}

impl<R> Default for Rounds<R> {
    fn default() -> Self {
        Rounds {
            count: 0,
            last: None,
            open: None,
        }
    }
}

/// What a tick asks of the time master.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Nothing now.
    Nothing,
    /// Open round `n`: poll every clock (and say so with [`Rounds::polled`]).
    Open(u64),
    /// Close the open round ([`Rounds::close`]).
    Close,
}

/// One round of polls.
#[derive(Debug)]
struct Round<R> {
    id: u64,
    opened: Millis,
    /// Per node polled: how it was reached, and the master's clock when the poll went out.
    polled: BTreeMap<String, (R, i64)>,
    /// Per node that answered: its clock minus the master's, compensated for the round trip.
    offsets: BTreeMap<String, i64>,
}

/// A closed round: what to tell whom, and what to report.
#[derive(Debug, PartialEq)]
pub struct Closed<R> {
    /// The round's number.
    pub round: u64,
    /// Every clock read (the master's own is 0): how far ahead of the master's it was.
    pub offsets: BTreeMap<String, i64>,
    /// Readings too far from the centre to count in the average (still corrected).
    pub left_out: Vec<String>,
    /// The average offset of the readings that counted.
    pub average_ms: i64,
    /// Per clock told to move (the master's own included): by how much.
    pub adjusted: BTreeMap<String, i64>,
    /// Where to send each adjustment: `None` for the master itself.
    pub routes: BTreeMap<String, Option<R>>,
    /// Nodes polled that did not answer in time.
    pub silent: Vec<String>,
}

impl<R: Clone> Rounds<R> {
    /// On every tick of the time master: open a round every interval; close the open one
    /// once everyone answered or half an interval passed.
    pub fn due(&mut self, now: Millis, policy: &ClockSync) -> Due {
        let interval = policy.interval.as_millis() as Millis;
        if let Some(round) = &self.open {
            let everyone = round.offsets.len() == round.polled.len();
            if everyone || now.saturating_sub(round.opened) >= (interval / 2).max(1) {
                return Due::Close;
            }
            return Due::Nothing;
        }
        if self
            .last
            .is_some_and(|at| now.saturating_sub(at) < interval)
        {
            return Due::Nothing;
        }
        self.last = Some(now);
        self.count += 1;
        self.open = Some(Round {
            id: self.count,
            opened: now,
            polled: BTreeMap::new(),
            offsets: BTreeMap::new(),
        });
        Due::Open(self.count)
    }

    /// Node `name` was polled in the open round, over `route`, when the master's clock read
    /// `wall_ms`.
    pub fn polled(&mut self, name: &str, route: R, wall_ms: i64) {
        if let Some(round) = self.open.as_mut() {
            round.polled.insert(name.to_string(), (route, wall_ms));
        }
    }

    /// The node polled in the open round over a route `matches` picks, if any.
    pub fn polled_over(&self, matches: impl Fn(&R) -> bool) -> Option<String> {
        let round = self.open.as_ref()?;
        round
            .polled
            .iter()
            .find(|(_, (route, _))| matches(route))
            .map(|(name, _)| name.clone())
    }

    /// A reading from node `name` for round `round`, arriving when the master's clock reads
    /// `wall_ms`. Counted once, only from a node polled in that round; returns whether the
    /// round now has everyone's.
    pub fn reading(&mut self, name: &str, round: u64, clock_ms: i64, wall_ms: i64) -> bool {
        let Some(r) = self.open.as_mut().filter(|r| r.id == round) else {
            return false;
        };
        let Some(sent) = r.polled.get(name).map(|(_, sent)| *sent) else {
            return false;
        };
        if r.offsets.contains_key(name) {
            return false;
        }
        let trip = wall_ms.saturating_sub(sent).max(0);
        let then = wall_ms.saturating_sub(trip / 2);
        let offset = clock_ms
            .saturating_sub(then)
            .clamp(-MAX_ADJUST_MS, MAX_ADJUST_MS);
        r.offsets.insert(name.to_string(), offset);
        r.offsets.len() == r.polled.len()
    }

    /// Whether a round waits for readings.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Forgets the open round (the master is master no more).
    pub fn abandon(&mut self) {
        self.open = None;
    }

    /// Closes the open round: the average, and each clock's adjustment (`me`: the master's
    /// own name). `None` when no round was open or it polled no one (no clock but its own:
    /// nothing to agree on).
    pub fn close(&mut self, me: &str, policy: &ClockSync) -> Option<Closed<R>> {
        let round = self.open.take()?;
        if round.polled.is_empty() {
            return None;
        }
        let mut offsets = round.offsets;
        offsets.insert(me.to_string(), 0);
        let mean = offsets.values().sum::<i64>() / offsets.len() as i64;
        let bound = policy.outlier.as_millis() as i64;
        let around = |centre: i64| -> Vec<i64> {
            offsets
                .values()
                .copied()
                .filter(|o| (o - centre).abs() <= bound)
                .collect()
        };
        let mut centre = mean;
        let mut within = around(mean);
        if within.is_empty() {
            let mut sorted: Vec<i64> = offsets.values().copied().collect();
            sorted.sort_unstable();
            centre = sorted[sorted.len() / 2];
            within = around(centre);
        }
        let average = if within.is_empty() {
            mean
        } else {
            within.iter().sum::<i64>() / within.len() as i64
        };
        let left_out = offsets
            .iter()
            .filter(|(_, o)| (**o - centre).abs() > bound)
            .map(|(name, _)| name.clone())
            .collect();
        let tolerance = policy.tolerance.as_millis() as i64;
        let mut adjusted = BTreeMap::new();
        let mut routes = BTreeMap::new();
        for (name, offset) in &offsets {
            let by = (average - offset).clamp(-MAX_ADJUST_MS, MAX_ADJUST_MS);
            if by.abs() <= tolerance {
                continue;
            }
            let route = if name == me {
                None
            } else {
                let Some((route, _)) = round.polled.get(name) else {
                    continue;
                };
                Some(route.clone())
            };
            adjusted.insert(name.clone(), by);
            routes.insert(name.clone(), route);
        }
        let silent = round
            .polled
            .keys()
            .filter(|n| !offsets.contains_key(*n))
            .cloned()
            .collect();
        Some(Closed {
            round: round.id,
            offsets,
            left_out,
            average_ms: average,
            adjusted,
            routes,
            silent,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy() -> ClockSync {
        ClockSync {
            interval: Duration::from_secs(1),
            tolerance: Duration::from_millis(20),
            outlier: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_round_compensates_the_trip_averages_and_tells_each_clock_its_move() {
        let mut rounds: Rounds<u8> = Rounds::default();
        assert_eq!(rounds.due(0, &policy()), Due::Open(1));
        rounds.polled("a", 1, 10_000);
        rounds.polled("b", 2, 10_000);
        rounds.polled("c", 3, 10_000);
        // a answers after a 100ms trip, reading 10_050 + 600: 600ms ahead.
        assert!(!rounds.reading("a", 1, 10_650, 10_100));
        // A reading for another round, or twice, counts for nothing.
        assert!(!rounds.reading("b", 7, 0, 10_100));
        assert!(!rounds.reading("a", 1, 0, 10_100));
        assert!(!rounds.reading("b", 1, 10_050, 10_100));
        assert_eq!(rounds.due(10, &policy()), Due::Nothing);
        // c never answers; half an interval later the round closes without it.
        assert_eq!(rounds.due(500, &policy()), Due::Close);
        let closed = rounds.close("m", &policy()).unwrap();
        assert_eq!(closed.offsets["a"], 600);
        assert_eq!(closed.offsets["b"], 0);
        assert_eq!(closed.average_ms, 200);
        assert_eq!(closed.adjusted["a"], -400);
        assert_eq!(closed.adjusted["m"], 200);
        assert_eq!(closed.routes["a"], Some(1));
        assert_eq!(closed.routes["m"], None);
        assert_eq!(closed.silent, vec!["c".to_string()]);
        // The next round opens an interval after the last opened.
        assert_eq!(rounds.due(900, &policy()), Due::Nothing);
        assert_eq!(rounds.due(1_000, &policy()), Due::Open(2));
    }

    #[test]
    fn a_clock_far_off_is_left_out_of_the_average_and_still_corrected() {
        let mut rounds: Rounds<u8> = Rounds::default();
        rounds.due(0, &policy());
        rounds.polled("a", 1, 0);
        rounds.polled("b", 2, 0);
        rounds.reading("a", 1, 10, 0);
        assert!(rounds.reading("b", 1, 5_000, 0));
        assert_eq!(rounds.due(1, &policy()), Due::Close);
        let closed = rounds.close("m", &policy()).unwrap();
        assert_eq!(closed.left_out, vec!["b".to_string()]);
        assert_eq!(closed.average_ms, 5);
        assert_eq!(closed.adjusted["b"], -4_995);
        assert!(!closed.adjusted.contains_key("a"));
    }

    #[test]
    fn with_every_reading_an_outlier_the_median_is_the_centre() {
        let policy = ClockSync {
            outlier: Duration::from_millis(500),
            ..policy()
        };
        let mut rounds: Rounds<u8> = Rounds::default();
        rounds.due(0, &policy);
        rounds.polled("a", 1, 0);
        rounds.reading("a", 1, 3_000, 0);
        // Offsets 0 and 3000: the mean 1500 is more than 500 from both; the median (3000)
        // is the centre, so m alone is left out and moves to a.
        let closed = rounds.close("m", &policy).unwrap();
        assert_eq!(closed.left_out, vec!["m".to_string()]);
        assert_eq!(closed.adjusted["m"], 3_000);
    }

    #[test]
    fn a_round_that_polled_no_one_closes_to_nothing() {
        let mut rounds: Rounds<u8> = Rounds::default();
        rounds.due(0, &policy());
        assert!(rounds.close("m", &policy()).is_none());
        assert!(!rounds.is_open());
    }
}
