//! Loans between clusters, as the clusters' own events tell them: the one reading of
//! `worker_lent`, `worker_released` and `loan_ended` that the summary and the console share.

use serde::{Deserialize, Serialize};

use crate::cluster::event::{ClusterEvent, EventKind};

/// One loan: the workers an owner lent a borrower in one answer, and when they went back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loan {
    /// The cluster that lent them (their home).
    pub lender: String,
    /// The cluster they worked for.
    pub borrower: String,
    pub workers: Vec<String>,
    /// When the owner lent them (run milliseconds).
    pub at_ms: u64,
    /// When the borrower had released every one of them (idle, or died there).
    pub released_ms: Option<u64>,
    /// When every one of them was home again (or reported lost) at the owner.
    pub returned_ms: Option<u64>,
    /// Per worker: released by the borrower, back at the owner.
    #[serde(skip)]
    progress: Vec<(bool, bool)>,
}

/// Every loan of a run, in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Loans {
    pub loans: Vec<Loan>,
}

impl Loans {
    /// Reads one event of the primary of cluster `cluster`, seen at `at_ms`.
    pub fn apply(&mut self, cluster: &str, at_ms: u64, event: &ClusterEvent) {
        match &event.kind {
            EventKind::WorkerLent { worker, to } => {
                // Workers lent in one answer share the owner's step: one loan.
                match self.loans.last_mut() {
                    Some(l)
                        if l.lender == cluster
                            && l.borrower == *to
                            && l.returned_ms.is_none()
                            && l.released_ms.is_none()
                            && at_ms.saturating_sub(l.at_ms) < 50
                            && !l.workers.contains(worker) =>
                    {
                        l.workers.push(worker.clone());
                        l.progress.push((false, false));
                    }
                    _ => self.loans.push(Loan {
                        lender: cluster.to_string(),
                        borrower: to.clone(),
                        workers: vec![worker.clone()],
                        at_ms,
                        released_ms: None,
                        returned_ms: None,
                        progress: vec![(false, false)],
                    }),
                }
            }
            EventKind::WorkerReleased { worker, to, .. } => {
                if let Some((loan, i)) = self.open(to, cluster, worker) {
                    loan.progress[i].0 = true;
                    if loan.progress.iter().all(|p| p.0) {
                        loan.released_ms = Some(at_ms);
                    }
                }
            }
            EventKind::LoanEnded {
                worker, borrower, ..
            } => {
                if let Some((loan, i)) = self.open(cluster, borrower, worker) {
                    loan.progress[i].1 = true;
                    if loan.progress.iter().all(|p| p.1) {
                        loan.returned_ms = Some(at_ms);
                        loan.released_ms.get_or_insert(at_ms);
                    }
                }
            }
            _ => {}
        }
    }

    /// The latest loan of `worker` from `lender` to `borrower` that is not over, and its
    /// place in it.
    fn open(&mut self, lender: &str, borrower: &str, worker: &str) -> Option<(&mut Loan, usize)> {
        self.loans.iter_mut().rev().find_map(|l| {
            if l.lender != lender || l.borrower != borrower || l.returned_ms.is_some() {
                return None;
            }
            let i = l.workers.iter().position(|w| w == worker)?;
            Some((l, i))
        })
    }

    /// Loans whose workers are not all home yet.
    pub fn open_count(&self) -> usize {
        self.loans
            .iter()
            .filter(|l| l.returned_ms.is_none())
            .count()
    }

    /// The cluster `worker` (of home `home`) works for now: its borrower while a loan of it is
    /// open at its owner, else its home.
    pub fn serving<'a>(&'a self, worker: &str, home: &'a str) -> &'a str {
        self.loans
            .iter()
            .rev()
            .find(|l| l.lender == home && l.workers.iter().any(|w| w == worker))
            .filter(|l| {
                let i = l.workers.iter().position(|w| w == worker).unwrap_or(0);
                !l.progress.get(i).is_some_and(|p| p.1)
            })
            .map_or(home, |l| l.borrower.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> ClusterEvent {
        ClusterEvent {
            at_ms: 0,
            clock: 1,
            kind,
        }
    }

    #[test]
    fn a_loan_is_made_released_and_returned() {
        let mut loans = Loans::default();
        for w in ["west-1", "west-2"] {
            let lent = EventKind::WorkerLent {
                worker: w.into(),
                to: "east".into(),
            };
            loans.apply("west", 1000, &event(lent));
        }
        assert_eq!(loans.loans.len(), 1);
        assert_eq!(loans.serving("west-1", "west"), "east");
        let released = |w: &str| EventKind::WorkerReleased {
            worker: w.into(),
            to: "west".into(),
            reason: "idle".into(),
        };
        loans.apply("east", 3000, &event(released("west-1")));
        assert_eq!(loans.loans[0].released_ms, None, "one of two released");
        loans.apply("east", 3100, &event(released("west-2")));
        assert_eq!(loans.loans[0].released_ms, Some(3100));
        let ended = |w: &str| EventKind::LoanEnded {
            worker: w.into(),
            borrower: "east".into(),
            reason: "back home".into(),
        };
        loans.apply("west", 3200, &event(ended("west-1")));
        assert_eq!(loans.serving("west-1", "west"), "west");
        assert_eq!(loans.serving("west-2", "west"), "east");
        loans.apply("west", 3300, &event(ended("west-2")));
        assert_eq!(loans.loans[0].returned_ms, Some(3300));
        // The next loan of the same workers is a new one.
        let lent = EventKind::WorkerLent {
            worker: "west-1".into(),
            to: "east".into(),
        };
        loans.apply("west", 9000, &event(lent));
        assert_eq!(loans.loans.len(), 2);
    }
}
