//! Running a scenario: each step at its time, as if the operator had typed it.
//!
//! Steps are sorted by time (a stable sort, so steps written for the same time keep their
//! order) and sent to the supervisor as [`Request::Act`]. `TIME_SCALE` stretches or squeezes
//! the schedule: 0.5 runs a 20-second scenario in 10 seconds. The end is announced through the
//! supervisor's queue too, so it comes after every step has been carried out.

use tokio::sync::mpsc;

use super::Request;
use crate::topology::Scenario;

/// Runs `scenario` from now on; its times count from now, scaled by `scale`.
pub async fn run(scenario: Scenario, scale: f64, commands: mpsc::Sender<Request>) {
    let begin = tokio::time::Instant::now();
    let mut steps = scenario.steps.clone();
    steps.sort_by_key(|s| s.at);
    for step in steps {
        tokio::time::sleep_until(begin + step.at.mul_f64(scale)).await;
        if commands.send(Request::Act(step.action)).await.is_err() {
            return;
        }
    }
    let _ = commands.send(Request::ScenarioEnded(scenario.name)).await;
}
