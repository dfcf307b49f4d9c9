//! Running a scenario: each step at its time, as if the operator had typed it.
//!
//! Steps are sorted by time (a stable sort, so steps written for the same time keep their
//! order) and sent to the supervisor as [`Request::Act`]. `TIME_SCALE` stretches or squeezes
//! the schedule: 0.5 runs a 20-second scenario in 10 seconds. Times are cluster time: in slow
//! motion (`policy time`, `:speed`) the scenario slows with the cluster, a change of pace
//! counting from when it happens. The end is announced through the supervisor's queue too, so
//! it comes after every step has been carried out.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Request;
use crate::clock::Pace;
use crate::topology::Scenario;

/// Runs `scenario` from now on; its times count from now, scaled by `scale`, on `pace`.
pub async fn run(scenario: Scenario, scale: f64, pace: Pace, commands: mpsc::Sender<Request>) {
    let begin = Instant::now();
    let mut steps = scenario.steps.clone();
    steps.sort_by_key(|s| s.at);
    for step in steps {
        let at = step.at.mul_f64(scale);
        // Looked at again at least every 100 ms: a change of pace takes effect at once.
        loop {
            let left = at.saturating_sub(pace.elapsed(begin));
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(pace.real(left).min(Duration::from_millis(100))).await;
        }
        if commands.send(Request::Act(step.action)).await.is_err() {
            return;
        }
    }
    let _ = commands.send(Request::ScenarioEnded(scenario.name)).await;
}
