//! Running a scenario: each step at its time, as if the operator had typed it.
//!
//! Steps are sorted by time (a stable sort, so steps written for the same time keep their
//! order) and sent to the supervisor as [`Command::Act`]. `TIME_SCALE` stretches or squeezes
//! the schedule: 0.5 runs a 20-second scenario in 10 seconds.

use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};

use super::timeline::{TimelineEvent, TimelineKind};
use super::{Command, Update};
use crate::topology::Scenario;

/// Runs `scenario` from now on; its times count from now, scaled by `scale`.
pub async fn run(
    scenario: Scenario,
    scale: f64,
    commands: mpsc::Sender<Command>,
    updates: broadcast::Sender<Update>,
    run_started: Instant,
) {
    let begin = tokio::time::Instant::now();
    let mut steps = scenario.steps.clone();
    steps.sort_by_key(|s| s.at);
    for step in steps {
        tokio::time::sleep_until(begin + step.at.mul_f64(scale)).await;
        if commands.send(Command::Act(step.action)).await.is_err() {
            return;
        }
    }
    // Let the last step's effects reach the timeline before saying the scenario is over.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let end = TimelineEvent {
        at_ms: run_started.elapsed().as_millis() as u64,
        source: "scenario".to_string(),
        kind: TimelineKind::Note {
            text: format!("scenario {} ends", scenario.name),
        },
    };
    let _ = updates.send(Update::Timeline(end));
}
