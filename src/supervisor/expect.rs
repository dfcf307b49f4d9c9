//! A scenario's `expect` steps: each is checked at its time and then every tick of the
//! supervisor (100 ms) until it holds (met) or its `within` has passed (not met), against the
//! supervisor's one reading of the cluster. The end
//! of the scenario waits for every expectation to settle, so a headless run reports them all.

use serde::Serialize;

use super::*;
use crate::topology::expect::{Count, Expectation};
use crate::view::expect::{Facts, check};
use crate::view::{NodeStatus, Verdict};

/// An expectation and how it went, as the summary reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationRecord {
    /// Its time in the scenario's run (cluster milliseconds since the run began: the same as
    /// real ones but in slow motion).
    pub at_ms: u64,
    /// The condition, as written back.
    pub expr: String,
    /// What the class should see.
    pub text: String,
    /// Whether it held (within its `within`).
    pub ok: bool,
    /// When it was settled: held, or given up on.
    pub settled_ms: u64,
    /// The values it read when it settled.
    pub seen: String,
}

/// Expectations waiting to hold, and those settled.
#[derive(Debug, Default)]
pub(super) struct Expectations {
    pending: Vec<(u64, Expectation)>,
    pub(super) settled: Vec<ExpectationRecord>,
    /// A scenario that ended while expectations were pending: said once they settle.
    pub(super) ended: Option<String>,
    /// When the running scenario began (cluster ms), and how its times are scaled.
    began: Option<(u64, f64)>,
    /// Per worker, when it completed each job (cluster ms; the newest [`COMPLETIONS_KEPT`]).
    completions: BTreeMap<String, std::collections::VecDeque<u64>>,
}

/// Completion times kept per worker, for `jobs_on(N, T)`.
const COMPLETIONS_KEPT: usize = 100_000;

impl Expectations {
    /// Whether none waits.
    pub(super) fn idle(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What an expectation reads: the supervisor's reading, at one moment.
struct FactsNow<'a> {
    supervisor: &'a Supervisor,
    statuses: Vec<NodeStatus>,
    now: u64,
}

impl Facts for FactsNow<'_> {
    fn count(&self, count: Count) -> i64 {
        let view = self.supervisor.view.read();
        let c = view.state.counts;
        let workers = |wanted: fn(Verdict) -> bool| {
            self.statuses
                .iter()
                .filter(|s| s.kind == "worker" && wanted(view.verdict(s, self.now)))
                .count()
        };
        let n = match count {
            Count::Submitted => c.total(),
            Count::Completed => c.completed,
            Count::Failed => c.failed,
            // Acknowledged to the operator, and unknown to the primary now.
            Count::Lost => self
                .supervisor
                .acknowledged
                .iter()
                .filter(|id| !view.state.jobs.contains_key(id))
                .count(),
            Count::Queued => c.queued + c.assigned,
            Count::Running => c.running,
            Count::Unfinished => c.queued + c.assigned + c.running,
            Count::Term => view.term as usize,
            Count::Alarms => self
                .supervisor
                .checkers
                .values()
                .map(|c| c.alarm_count())
                .sum(),
            Count::Duplicates => view.state.duplicates as usize,
            Count::WorkersHealthy => workers(|v| matches!(v, Verdict::Healthy | Verdict::Rejoined)),
            Count::WorkersDead => workers(|v| v == Verdict::Dead),
            Count::ClockSpread => return view.clocks.spread_ms(),
            Count::ClocksRead => view.clocks.read_count(),
            Count::ClocksLeftOut => view.clocks.left_out_count(),
            Count::ChatGap => {
                let entries = self.supervisor.chat_entries.values().map(|(n, _)| *n);
                let (low, high) = entries.fold((u64::MAX, 0), |(l, h), n| (l.min(n), h.max(n)));
                high.saturating_sub(low) as usize
            }
            Count::Lent => self
                .supervisor
                .loans
                .loans
                .iter()
                .filter(|l| l.returned_ms.is_none())
                .map(|l| l.workers.len())
                .sum(),
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    fn primary(&self) -> String {
        self.supervisor.view.read().primary.clone()
    }

    fn time_master(&self) -> Option<String> {
        let view = self.supervisor.view.read();
        match &view.clocks.elected {
            Some((master, _)) => Some(master.clone()),
            None if self.supervisor.topology.policies.clock.is_some() => {
                Some(view.primary.clone()).filter(|p| !p.is_empty())
            }
            None => None,
        }
    }

    fn verdict(&self, node: &str) -> Option<Verdict> {
        let status = self.statuses.iter().find(|s| s.name == node)?;
        let home = self.supervisor.topology.node(node)?.cluster.as_str();
        let view = self
            .supervisor
            .others
            .get(home)
            .map_or(&self.supervisor.view, |o| &o.view);
        Some(view.read().verdict(status, self.now))
    }

    fn jobs_on(&self, node: &str, since_ms: Option<i64>) -> i64 {
        let expectations = &self.supervisor.expectations;
        let done = match (since_ms, expectations.began) {
            (Some(since), Some((began, scale))) => {
                let from = began + (since.max(0) as f64 * scale) as u64;
                expectations.completions.get(node).map_or(0, |times| {
                    times.iter().filter(|t| **t >= from).count() as u64
                })
            }
            _ => self
                .supervisor
                .view
                .read()
                .state
                .workers
                .get(node)
                .map_or(0, |w| w.done),
        };
        i64::try_from(done).unwrap_or(i64::MAX)
    }

    fn entries(&self, node: &str) -> Option<i64> {
        let (n, _) = *self.supervisor.chat_entries.get(node)?;
        i64::try_from(n).ok()
    }

    fn users(&self, node: &str) -> Option<i64> {
        let (_, n) = *self.supervisor.chat_entries.get(node)?;
        i64::try_from(n).ok()
    }

    fn offset(&self, node: &str) -> Option<i64> {
        self.supervisor
            .view
            .read()
            .clocks
            .reading(node)
            .map(|r| r.offset_ms)
    }
}

impl Supervisor {
    /// A scenario begins now: its times count from here (stretched by `scale`).
    pub(super) fn scenario_begins(&mut self, scale: f64) {
        self.expectations.began = Some((self.cluster_now(), scale));
    }

    /// A cluster event: a completion is kept for `jobs_on(N, T)`.
    pub(super) fn expectations_hear(&mut self, event: &EventKind) {
        if let EventKind::JobCompleted { worker, .. } = event {
            let now = self.cluster_now();
            let times = self
                .expectations
                .completions
                .entry(worker.clone())
                .or_default();
            times.push_back(now);
            if times.len() > COMPLETIONS_KEPT {
                times.pop_front();
            }
        }
    }

    /// An `expect` step: checked now, and until it holds or its time is up.
    pub(super) fn expect(&mut self, expectation: Expectation) {
        let now = self.cluster_now();
        self.expectations.pending.push((now, expectation));
        self.check_expectations();
    }

    /// Settles every pending expectation that holds now or whose time is up.
    pub(super) fn check_expectations(&mut self) {
        if self.expectations.pending.is_empty() {
            return;
        }
        // Verdicts read real run time; windows count cluster time (slow motion stretches them).
        let reading = FactsNow {
            supervisor: self,
            statuses: self.statuses(),
            now: self.now(),
        };
        let now = self.cluster_now();
        let mut settled = Vec::new();
        let mut waiting = Vec::new();
        for (at, expectation) in &self.expectations.pending {
            let outcome = check(&expectation.expr, &reading);
            // `TIME_SCALE` stretches the scenario: its windows too.
            let scale = self.expectations.began.map_or(1.0, |(_, s)| s);
            let due = at + expectation.within.mul_f64(scale).as_millis() as u64;
            if outcome.ok || now >= due {
                settled.push(ExpectationRecord {
                    at_ms: *at,
                    expr: expectation.condition(),
                    text: expectation.text.clone(),
                    ok: outcome.ok,
                    settled_ms: now,
                    seen: outcome.seen,
                });
            } else {
                waiting.push((*at, expectation.clone()));
            }
        }
        self.expectations.pending = waiting;
        for record in settled {
            self.timeline(
                "scenario",
                TimelineKind::Expected {
                    text: record.text.clone(),
                    ok: record.ok,
                    seen: record.seen.clone(),
                    after_ms: record.settled_ms.saturating_sub(record.at_ms),
                },
            );
            self.expectations.settled.push(record);
        }
        if self.expectations.idle()
            && let Some(name) = self.expectations.ended.take()
        {
            self.timeline("scenario", TimelineKind::ScenarioEnded { name });
        }
    }

    /// The scenario's last step is done: it ends once its expectations have settled.
    pub(super) fn scenario_ended(&mut self, name: String) {
        if self.expectations.idle() {
            self.timeline("scenario", TimelineKind::ScenarioEnded { name });
        } else {
            self.expectations.ended = Some(name);
        }
    }
}
