//! Slow motion: `policy time { scale 0.2 }` runs the whole cluster five times slower —
//! heartbeats, timeouts, jobs, the scenario — and `speed 1` brings it back to real time while
//! it runs. A pause is detected after the same cluster time at either pace, which in slow
//! motion is five times the real time; the times shown say they are cluster time; and neither
//! pace nor the change between them makes the cluster suspect a worker nobody touched.

mod common;

use common::*;

const TOPOLOGY: &str = "
set SYSTEM_NAME SlowMotion
node coordinator { type master }
node worker { type worker; count 4; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
policy time { scale 0.2 }
scenario slow {
    at 0.1s submit \"sleep 200ms\" count 6
    at 0.3s pause worker-1
    at 1.8s resume worker-1
    at 2.0s kill worker-3
    at 2.2s speed 1
    at 2.4s submit \"sleep 200ms\" count 6
    at 2.6s pause worker-2
    at 4.6s resume worker-2
    at 5s   say \"done\"
}
";

/// The run time (seconds) at the start of the first line containing `text`, and the line.
fn line_with<'a>(stdout: &'a str, text: &str) -> (f64, &'a str) {
    let line = stdout
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("no line with {text:?} in:\n{stdout}"));
    let t = line
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_suffix('s'))
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no time on {line:?}"));
    (t, line)
}

/// `after NNNms` on a DETECTED line, in milliseconds.
fn after_ms(line: &str) -> f64 {
    let rest = line.split(" after ").nth(1).expect("after");
    rest.split("ms").next().unwrap().parse().expect("a number")
}

#[test]
fn a_slowed_cluster_detects_in_the_same_cluster_time_and_suspects_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, report) = headless(dir.path(), TOPOLOGY, "slow");

    // Fault #1: worker-1 paused in slow motion.
    let (paused, _) = line_with(&stdout, "FAULT #1: pause worker-1");
    let (found, slow) = line_with(&stdout, "DETECTED #1 ");
    assert!(slow.contains("(cluster time at 0.2×)"), "{slow}");
    let (slow_real, slow_cluster) = ((found - paused) * 1000.0, after_ms(slow));
    // Fault #4: worker-2 paused in real time.
    let (paused, _) = line_with(&stdout, "FAULT #4: pause worker-2");
    let (found, real) = line_with(&stdout, "DETECTED #4 ");
    assert!(!real.contains("cluster time"), "{real}");
    let (real_real, real_cluster) = ((found - paused) * 1000.0, after_ms(real));

    let numbers = format!(
        "slow: {slow_real}ms real, {slow_cluster}ms cluster; real time: {real_real}ms real, {real_cluster}ms cluster\n{stdout}"
    );
    // The same cluster time at either pace (the timeout is 800 ms of it, counted from the last
    // heartbeat, up to 100 ms before the pause) …
    assert!(slow_cluster >= 650.0 && real_cluster >= 650.0, "{numbers}");
    let ratio = slow_cluster / real_cluster;
    assert!((0.4..=2.5).contains(&ratio), "{numbers}");
    // … which in slow motion is five times the real time: at least 650 ms of cluster time is
    // 3.25 s of real time, while in real time a busy machine adds well under a second.
    assert!(
        (4.0..=6.0).contains(&(slow_real / slow_cluster)),
        "{numbers}"
    );
    assert!(slow_real >= 3250.0, "{numbers}");
    assert!(slow_real / real_real >= 2.5, "{numbers}");

    // A 200 ms job takes a second of real time in slow motion.
    let (started, _) = line_with(&stdout, " started on worker-");
    let (completed, _) = line_with(&stdout, " completed by worker-");
    assert!(completed - started >= 0.9, "{stdout}");
    // The kill in slow motion is noticed at once: its connection closes.
    let (_, killed) = line_with(&stdout, "DETECTED #3 (kill worker-3)");
    assert!(after_ms(killed) < 1000.0, "{killed}");
    // The change of pace is on the timeline, and raised no suspicion: worker-4 was never
    // touched, worker-2 only from its pause.
    line_with(&stdout, "SPEED 1×: the cluster runs in real time again");
    assert!(
        !stdout.contains("worker-4 is suspect") && !stdout.contains("worker-4 is dead"),
        "{stdout}"
    );
    let (pause_2, _) = line_with(&stdout, "FAULT #4");
    let (suspect_2, _) = line_with(&stdout, "worker-2 is suspect");
    assert!(suspect_2 >= pause_2, "{stdout}");
    assert_eq!(report["jobs"]["submitted"], 12, "{report}");
    assert_eq!(report["jobs"]["completed"], 12, "{report}");
    assert_eq!(report["jobs"]["lost"], 0, "{report}");
}
