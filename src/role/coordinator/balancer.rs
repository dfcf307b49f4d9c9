//! Choosing a worker for a job: the load-balancing algorithms.
//!
//! Candidates are the workers that are healthy and have a free slot, in name order. Each
//! algorithm is deterministic given its seed, so a run can be replayed:
//!
//! - **round_robin**: the next worker after the last one chosen, in name order.
//! - **least_loaded**: the worker with the lowest share of busy slots; ties go round robin.
//! - **random**: a worker at random (from a seeded generator).
//! - **weighted**: smooth weighted round robin by slots: a worker with 4 slots gets twice the jobs
//!   of one with 2, interleaved rather than in bursts (the algorithm nginx uses).

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::topology::Algorithm;

/// A worker that could take the job.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub slots: u32,
    /// Its running jobs.
    pub running: u32,
}

/// Picks workers by one algorithm, remembering what it needs between picks.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    /// The last worker chosen, for round robin.
    last: Option<String>,
    /// Current weights, for smooth weighted round robin.
    weights: HashMap<String, i64>,
    rng: SmallRng,
}

impl Balancer {
    /// A balancer for `algorithm`, seeded for `random`.
    pub fn new(algorithm: Algorithm, seed: u64) -> Self {
        Balancer {
            algorithm,
            last: None,
            weights: HashMap::new(),
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The index of the chosen candidate. `candidates` must not be empty and must be in name
    /// order.
    pub fn pick(&mut self, candidates: &[Candidate]) -> usize {
        let index = match self.algorithm {
            Algorithm::RoundRobin => self.after_last(candidates, |_| true),
            Algorithm::LeastLoaded => {
                // Compare running/slots as fractions without dividing: a/b < c/d ⇔ a·d < c·b.
                let load = |c: &Candidate| (u64::from(c.running), u64::from(c.slots.max(1)));
                let min = candidates
                    .iter()
                    .map(load)
                    .min_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)))
                    .unwrap_or((0, 1));
                self.after_last(candidates, |c| {
                    let (r, s) = load(c);
                    r * min.1 == min.0 * s
                })
            }
            Algorithm::Random => self.rng.random_range(0..candidates.len()),
            Algorithm::Weighted => {
                // Every candidate gains its weight; the richest is chosen and pays the total.
                let total: i64 = candidates.iter().map(|c| i64::from(c.slots)).sum();
                for c in candidates {
                    *self.weights.entry(c.name.to_string()).or_insert(0) += i64::from(c.slots);
                }
                let current = |i: usize| self.weights[candidates[i].name];
                // Ties go to the first in name order.
                let best = (0..candidates.len())
                    .max_by_key(|&i| (current(i), std::cmp::Reverse(i)))
                    .unwrap_or(0);
                if let Some(w) = self.weights.get_mut(candidates[best].name) {
                    *w -= total;
                }
                best
            }
        };
        self.last = Some(candidates[index].name.to_string());
        index
    }

    /// The first candidate passing `keep` whose name comes after the last one chosen,
    /// wrapping around.
    fn after_last(&self, candidates: &[Candidate], keep: impl Fn(&Candidate) -> bool) -> usize {
        let eligible = || candidates.iter().enumerate().filter(|(_, c)| keep(c));
        let after = self
            .last
            .as_deref()
            .and_then(|last| eligible().find(|(_, c)| c.name > last));
        after.or_else(|| eligible().next()).map_or(0, |(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(algorithm: Algorithm, workers: &[(&str, u32)], n: usize) -> Vec<String> {
        let mut b = Balancer::new(algorithm, 7);
        let mut running: HashMap<&str, u32> = HashMap::new();
        (0..n)
            .map(|_| {
                let candidates: Vec<Candidate> = workers
                    .iter()
                    .map(|&(name, slots)| Candidate {
                        name,
                        slots,
                        running: running.get(name).copied().unwrap_or(0),
                    })
                    .collect();
                let i = b.pick(&candidates);
                *running.entry(workers[i].0).or_default() += 1;
                workers[i].0.to_string()
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_turns_in_name_order() {
        assert_eq!(
            picks(Algorithm::RoundRobin, &[("a", 9), ("b", 9), ("c", 9)], 4),
            ["a", "b", "c", "a"]
        );
    }

    #[test]
    fn least_loaded_fills_the_emptiest_share_first() {
        // b has twice the slots, so it takes twice the jobs before a is as loaded.
        let order = picks(Algorithm::LeastLoaded, &[("a", 2), ("b", 4)], 6);
        assert_eq!(order.iter().filter(|w| *w == "b").count(), 4);
    }

    #[test]
    fn weighted_is_proportional_to_slots_and_interleaved() {
        let order = picks(Algorithm::Weighted, &[("a", 1), ("b", 2)], 6);
        assert_eq!(order, ["b", "a", "b", "b", "a", "b"]);
    }

    #[test]
    fn random_is_repeatable_for_a_seed() {
        let w = [("a", 1), ("b", 1), ("c", 1)];
        assert_eq!(
            picks(Algorithm::Random, &w, 20),
            picks(Algorithm::Random, &w, 20)
        );
    }
}
