//! What the fan-out benchmark's subscribers heard, kept where each one hears it.
//!
//! Each subscriber adds to a [`Tally`] as a delivery arrives: in the throughput run a count and
//! the latest arrival, in the latency run the delivery's latency into that subscriber's own
//! list. The measuring task sleeps until a count reaches its goal, so the subscribers' thread
//! spends on the benchmark's bookkeeping two uncontended atomic operations per delivery, not a
//! channel send (with its allocations and a wake-up of the reader) — the same for every
//! server measured, and small beside reading the delivery.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// One fan-out run's arrivals, shared by its subscribers and the task that measures.
pub(super) struct Tally {
    /// What send stamps (ms) and arrivals are measured from.
    origin: Instant,
    /// Stamps at or after this (ms, as `f64` bits) are the latency run's: the first post of
    /// that run is sent after the last of the throughput run.
    latency_from: AtomicU64,
    /// Throughput-run deliveries so far, and the goal at which the measurer is woken.
    counted: Goal,
    /// Nanoseconds from `origin` to the latest throughput-run arrival.
    last_ns: AtomicU64,
    /// Latency-run deliveries so far.
    sampled: Goal,
    /// Each subscriber's latencies (ms) in the latency run.
    samples: Vec<Mutex<Vec<f64>>>,
    reached: Notify,
}

/// A count and the value at which whoever waits for it is told.
struct Goal {
    count: AtomicUsize,
    goal: AtomicUsize,
}

impl Goal {
    fn new() -> Self {
        Goal {
            count: AtomicUsize::new(0),
            goal: AtomicUsize::new(usize::MAX),
        }
    }

    /// One more; whether that reached the goal.
    fn add(&self) -> bool {
        self.count.fetch_add(1, Relaxed) + 1 == self.goal.load(Relaxed)
    }
}

impl Tally {
    pub(super) fn new(origin: Instant, subscribers: usize) -> Self {
        Tally {
            origin,
            latency_from: AtomicU64::new(f64::INFINITY.to_bits()),
            counted: Goal::new(),
            last_ns: AtomicU64::new(0),
            sampled: Goal::new(),
            samples: (0..subscribers).map(|_| Mutex::new(Vec::new())).collect(),
            reached: Notify::new(),
        }
    }

    /// Milliseconds from the origin to now: what a post's text carries as its send time.
    pub(super) fn stamp(&self) -> f64 {
        self.origin.elapsed().as_secs_f64() * 1000.0
    }

    /// Subscriber `who` heard the post stamped `sent`.
    pub(super) fn heard(&self, who: usize, sent: f64) {
        let now = Instant::now();
        let reached = if sent < f64::from_bits(self.latency_from.load(Relaxed)) {
            let at = now.saturating_duration_since(self.origin).as_nanos();
            self.last_ns
                .fetch_max(u64::try_from(at).unwrap_or(u64::MAX), Relaxed);
            self.counted.add()
        } else {
            let latency = (now - self.origin).as_secs_f64() * 1000.0 - sent;
            if let Some(list) = self.samples.get(who)
                && let Ok(mut list) = list.lock()
            {
                list.push(latency);
            }
            self.sampled.add()
        };
        if reached {
            self.reached.notify_one();
        }
    }

    /// Waits until `goal` throughput-run deliveries have arrived, or none for `quiet`; how many
    /// arrived, and when the latest did.
    pub(super) async fn throughput(&self, goal: usize, quiet: Duration) -> (usize, Instant) {
        let got = self.wait(&self.counted, goal, quiet).await;
        let last = self.origin + Duration::from_nanos(self.last_ns.load(Relaxed));
        (got, last)
    }

    /// From now on, posts stamped from `from_ms` on are the latency run's, of which `per_subscriber`
    /// reach each subscriber (room for them is made now, not while they arrive).
    pub(super) fn start_latency_run(&self, from_ms: f64, per_subscriber: usize) {
        for list in &self.samples {
            if let Ok(mut list) = list.lock() {
                list.reserve(per_subscriber);
            }
        }
        self.latency_from.store(from_ms.to_bits(), Relaxed);
    }

    /// Waits until `goal` latency-run deliveries have arrived, or none for `quiet`; their
    /// latencies, ms.
    pub(super) async fn latencies(&self, goal: usize, quiet: Duration) -> Vec<f64> {
        self.wait(&self.sampled, goal, quiet).await;
        let mut all = Vec::with_capacity(goal);
        for list in &self.samples {
            if let Ok(mut list) = list.lock() {
                all.append(&mut list);
            }
        }
        all
    }

    async fn wait(&self, count: &Goal, goal: usize, quiet: Duration) -> usize {
        count.goal.store(goal, Relaxed);
        loop {
            let before = count.count.load(Relaxed);
            if before >= goal {
                return before;
            }
            let woken = tokio::time::timeout(quiet, self.reached.notified()).await;
            // Quiet for that long: whatever has not arrived is not coming.
            if woken.is_err() && count.count.load(Relaxed) == before {
                return before;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_run_counts_its_own_deliveries_and_stops_waiting_when_they_stop() {
        let origin = Instant::now();
        let tally = std::sync::Arc::new(Tally::new(origin, 2));
        for who in 0..2 {
            tally.heard(who, 0.0);
            tally.heard(who, 1.0);
        }
        let (got, last) = tally.throughput(4, Duration::from_secs(5)).await;
        assert_eq!(got, 4);
        assert!(last >= origin && last <= Instant::now());

        tally.start_latency_run(10.0, 2);
        // A late delivery of the first run is counted there, not taken as a latency.
        tally.heard(0, 5.0);
        let hearing = {
            let tally = tally.clone();
            tokio::spawn(async move {
                tally.heard(0, 10.0);
                tally.heard(1, 11.0);
            })
        };
        hearing.await.unwrap();
        // Three were due; two came, and the wait ends after a quiet spell instead of hanging.
        let latencies = tally.latencies(3, Duration::from_millis(50)).await;
        assert_eq!(latencies.len(), 2);
        assert_eq!(tally.counted.count.load(Relaxed), 5);
        assert!(latencies.iter().all(|l| l.is_finite()));
    }
}
