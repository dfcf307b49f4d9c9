//! A master's history: the durable events a backup following it receives, by sequence number.
//!
//! Sequence numbers are absolute: event `seq` is the same event on every master that has it.
//! Compaction replaces everything before `base` with a *snapshot*: the events that rebuild the
//! state as it was then ([`ClusterState::snapshot`]), numbered just before `base`. A backup
//! that has every event up to `base` carries on; one that is behind starts over from the
//! snapshot's first event, which replaces its whole state.
//!
//! ```text
//!  seq:  0 ……………………… first ……… base ……………………… len
//!        (forgotten)     snapshot   events since the snapshot
//! ```

use crate::cluster::event::{ClusterEvent, EventKind};

use std::sync::Arc;

use super::ClusterState;
use crate::topology::Retention;

/// The durable events a master keeps for its backups and subscribers.
#[derive(Debug, Default)]
pub(super) struct History {
    /// The seq of the first event kept.
    first: u64,
    /// The events kept, from `first` on (shared with the outputs that publish and journal them).
    events: Vec<Arc<ClusterEvent>>,
    /// How many of `events` are a snapshot (0: the history starts with a plain event, at 0).
    snapshot: u64,
    /// The seq of the snapshot this master started over from, as a backup (its
    /// acknowledgements say so, so that a primary can tell them from older ones).
    pub(super) seeded: Option<u64>,
}

impl History {
    /// The seq the next event gets: how many events this history stands for.
    pub(super) fn len(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// The seq of the first event kept (a snapshot's header, after a compaction).
    pub(super) fn first(&self) -> u64 {
        self.first
    }

    /// The seq after the snapshot: a backup that has every event before it can follow from
    /// where it is; one that has fewer must start over from [`Self::first`].
    pub(super) fn snapshot_end(&self) -> u64 {
        self.first + self.snapshot
    }

    /// Events since the last compaction.
    pub(super) fn since_snapshot(&self) -> u64 {
        (self.events.len() as u64).saturating_sub(self.snapshot)
    }

    /// Event `seq`, if kept, shared (to send it without copying it).
    pub(super) fn shared(&self, seq: u64) -> Option<Arc<ClusterEvent>> {
        let i = seq.checked_sub(self.first)?;
        self.events.get(usize::try_from(i).ok()?).cloned()
    }

    /// Every event kept, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &ClusterEvent> {
        self.events.iter().map(Arc::as_ref)
    }

    /// Adds the next event. A snapshot's header at the start marks the events it covers.
    pub(super) fn push(&mut self, event: Arc<ClusterEvent>) {
        if self.events.is_empty()
            && let EventKind::Snapshot { events, .. } = event.kind
        {
            self.snapshot = events;
        }
        self.events.push(event);
    }

    /// Forgets everything: the next event is seq `at` (0: a master that starts over; a
    /// snapshot's seq: a backup that starts over from its primary's snapshot).
    pub(super) fn restart_at(&mut self, at: u64) {
        self.first = at;
        self.events.clear();
        self.snapshot = 0;
    }

    /// Replaces every event kept by `snapshot`, numbered so that it ends where the history
    /// ends now. Refused (false) if there are fewer seqs than snapshot events.
    pub(super) fn compact(&mut self, snapshot: &[Arc<ClusterEvent>]) -> bool {
        let n = snapshot.len() as u64;
        let len = self.len();
        if n > len {
            return false;
        }
        self.first = len - n;
        self.snapshot = n;
        // Into the allocation the history grew to: it grows that far again before the next
        // compaction, and growing it from the snapshot's size would copy it at each doubling.
        self.events.clear();
        self.events.extend_from_slice(snapshot);
        true
    }
}

/// The most ids in one `results_read` or `jobs_forgotten` event (about 12 bytes each: well
/// inside a line).
pub(super) const IDS_PER_EVENT: usize = 2_000;

/// Whether the state is worth a snapshot now: enough events since the last one, and at least
/// as many as the snapshot would hold (so the work it takes is paid for by what it saves).
pub(super) fn due(history: &History, state: &ClusterState, retention: Retention) -> bool {
    let size = 1 + state.jobs.len() as u64 + state.workers.len() as u64;
    history.since_snapshot() >= retention.compact_every.max(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::job::JobCounts;

    fn plain(clock: u64) -> ClusterEvent {
        ClusterEvent {
            at_ms: clock,
            clock,
            kind: EventKind::Takeover {
                coordinator: "m".into(),
                term: clock,
                reason: "t".into(),
            },
        }
    }

    fn header(events: u64) -> ClusterEvent {
        ClusterEvent {
            at_ms: 0,
            clock: 0,
            kind: EventKind::Snapshot {
                events,
                counts: JobCounts::default(),
                next_job: 1,
                duplicates: 0,
                term: 0,
                forgotten: 0,
                primary: String::new(),
            },
        }
    }

    #[test]
    fn a_compacted_history_keeps_its_numbers() {
        let mut h = History::default();
        for c in 0..10 {
            h.push(Arc::new(plain(c)));
        }
        assert!(h.compact(&[Arc::new(header(2)), Arc::new(plain(100))]));
        assert_eq!((h.first(), h.snapshot_end(), h.len()), (8, 10, 10));
        assert_eq!(h.shared(7), None);
        assert_eq!(h.shared(9).as_deref(), Some(&plain(100)));
        h.push(Arc::new(plain(11)));
        assert_eq!(h.shared(10).as_deref(), Some(&plain(11)));
        assert_eq!(h.since_snapshot(), 1);
        assert!(
            !h.compact(&(0..20).map(|n| Arc::new(plain(n))).collect::<Vec<_>>()),
            "more rows than seqs"
        );
    }

    #[test]
    fn a_backup_that_starts_over_from_a_snapshot_numbers_from_it() {
        let mut h = History::default();
        h.restart_at(40);
        h.push(Arc::new(header(3)));
        h.push(Arc::new(plain(1)));
        h.push(Arc::new(plain(2)));
        h.push(Arc::new(plain(3)));
        assert_eq!((h.first(), h.snapshot_end(), h.len()), (40, 43, 44));
    }
}
