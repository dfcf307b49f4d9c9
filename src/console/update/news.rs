//! What the world tells the console: the supervisor's node facts, its reading of the cluster
//! and the timeline, the primary's figures about its workers, process usage, links, messages
//! on links, and log lines. Cluster events are applied to [`App::cluster`] with the reading's
//! own code; what is added here is only how to show them — banners, the Faults table, counters.

use crate::cluster::event::EventKind;
use crate::console::app::*;
use crate::protocol::message::{JobId, WorkerView};
use crate::shaper::MessageSeen;
use crate::supervisor::Update;
use crate::supervisor::logs::LogLine;
use crate::supervisor::timeline::{TimelineEvent, TimelineKind};
use crate::view::{NodeStatus, Process, Verdict};

use super::contains_ignore_case;

/// How many banners are on screen at once (the newest).
pub const BANNERS_SHOWN: usize = 2;
/// A banner that has had no news for this long makes way for a new story.
const QUIET_MS: u64 = 2_000;
/// Seconds of messages kept for the space-time diagram.
const MESSAGE_WINDOW_MS: u64 = 15_000;

/// A report from the supervisor.
pub fn supervisor(app: &mut App, update: Update) {
    match update {
        Update::Node(status) => node_status(app, status),
        Update::View(view) => {
            // A launched run's reading is the supervisor's, which started over already.
            if app.advances_readings {
                app.cluster.write().adopt(&view);
            }
            app.jobs.stale = true;
            // Workers the cluster knows that tcluster did not launch (a student's) get a row.
            let unknown: Vec<String> = app
                .cluster
                .read()
                .state
                .workers
                .keys()
                .filter(|w| app.node_index(w).is_none())
                .cloned()
                .collect();
            for worker in unknown {
                app.nodes.push(outside_worker(&worker));
            }
        }
        Update::Timeline(event) => timeline(app, event),
    }
}

fn node_status(app: &mut App, status: NodeStatus) {
    match app.node_index(&status.name) {
        Some(i) => {
            let row = &mut app.nodes[i];
            if row.status.pid != status.pid {
                // Another process: its figures start over.
                row.cpu = None;
                row.memory = None;
            }
            row.status = status;
        }
        None => app.nodes.push(NodeRow::from_status(status)),
    }
}

/// One timeline event: cluster events advance the reading; faults, detections and recoveries
/// fill the Faults table and the banners.
fn timeline(app: &mut App, event: std::sync::Arc<TimelineEvent>) {
    let at = event.at_ms;
    match &event.kind {
        TimelineKind::Cluster { event: cluster } => {
            // Each cluster's events go to its own reading; loans are read from all of them.
            let from = app
                .cluster_of(&event.source)
                .unwrap_or(&app.main_cluster)
                .to_string();
            app.loans.apply(&from, at, cluster);
            let main = from == app.main_cluster || !app.others.contains_key(&from);
            // A launched run's readings are the supervisor's, which applied the event already.
            if app.advances_readings {
                let reading = match app.others.get(&from) {
                    Some(other) if !main => other,
                    _ => &app.cluster,
                };
                let mut view = reading.write();
                if main || view.accepts(&event.source, cluster) {
                    view.apply(at, cluster);
                }
            }
            if let Some(i) = app.node_index(&event.source) {
                app.nodes[i].clock = app.nodes[i].clock.max(cluster.clock);
            }
            if main {
                cluster_news(app, at, &cluster.kind);
            }
            if !event.kind.is_shown() {
                // Progress updates the job's gauge, bookkeeping the reading: neither is news.
                return;
            }
        }
        TimelineKind::Action {
            fault: Some(number),
            text,
            target,
            ..
        } => app.faults.push(FaultView {
            number: *number,
            text: text.clone(),
            at_ms: at,
            target: target.clone(),
            detected: None,
            recovered: None,
            outcome: None,
            settled: false,
            speed: None,
        }),
        TimelineKind::Detected {
            fault,
            by,
            after_ms,
            speed,
            ..
        } => {
            let found = app.faults.iter_mut().find(|f| f.number == *fault);
            if let Some(f) = found {
                f.detected = Some((*after_ms, by.clone()));
                f.speed = speed.or(f.speed);
                let fault = f.clone();
                detected_banner(app, at, &fault);
            }
        }
        TimelineKind::Recovered {
            fault,
            after_ms,
            moved,
            speed,
            ..
        } => {
            if let Some(f) = app.faults.iter_mut().find(|f| f.number == *fault) {
                f.recovered = Some(*after_ms);
                f.speed = speed.or(f.speed);
                f.settled = true;
                let fault = f.clone();
                recovered_banner(app, at, &fault, moved);
            }
        }
        TimelineKind::Outcome {
            fault,
            text,
            settled,
            ..
        } => {
            if let Some(f) = app.faults.iter_mut().find(|f| f.number == *fault) {
                f.outcome = Some(text.clone());
                f.settled |= *settled;
            }
            // The answer to what the operator just did.
            app.flash = Some((format!("#{fault}: {text}"), at));
        }
        TimelineKind::Say { text } => app.say = Some((text.clone(), at)),
        TimelineKind::Speed { scale } => app.speed = *scale,
        // An alarm is a banner, and stays in the list `!` opens.
        TimelineKind::Alarm {
            alarm,
            text,
            warning,
            ..
        } => {
            app.alarms
                .push((event.at_ms, alarm.clone(), text.clone(), *warning));
            if app.alarms.len() > 1_000 {
                app.alarms.remove(0);
            }
            let (word, tone) = if *warning {
                ("warning", Tone::Warning)
            } else {
                ("ALARM", Tone::Alarm)
            };
            banner(app, "alarm", at, format!("{word} {alarm}: {text}"), tone);
        }
        // Each expectation turns green or red in a banner of its own.
        TimelineKind::Expected { text, ok, seen, .. } => {
            let (mark, tone) = if *ok {
                ("✓", Tone::Recovery)
            } else {
                ("✗ NOT SEEN:", Tone::Alarm)
            };
            banner(app, "expect", at, format!("{mark} {text} ({seen})"), tone);
        }
        TimelineKind::ScenarioBegins { name, .. } => {
            app.scenario = Some((name.clone(), at));
            app.scenario_running = true;
        }
        TimelineKind::ScenarioEnded { name }
            if app
                .scenario
                .as_ref()
                .is_some_and(|(began, _)| began == name) =>
        {
            app.scenario_running = false;
        }
        TimelineKind::Resumed { .. } => banner(
            app,
            "resumed",
            at,
            capitalised(&event.kind.to_string()),
            Tone::Info,
        ),
        // What the supervisor has to say (a refused submission, a node not joining) is for the
        // operator to see now, not only in the timeline.
        TimelineKind::Note { text } if event.source == "supervisor" => {
            app.flash = Some((text.clone(), at))
        }
        _ => {}
    }
    app.timeline.push_back(event);
    if app.timeline.len() > TIMELINE_CAP {
        app.timeline.pop_front();
    }
    if app.timeline_view.back > 0 {
        // Scrolled back: keep the same lines in view.
        app.timeline_view.back += 1;
    }
}

/// What a cluster event changes on screen beyond the reading: the jobs list's order, the
/// throughput, rows for workers tcluster did not launch, banners.
fn cluster_news(app: &mut App, at: u64, kind: &EventKind) {
    match kind {
        EventKind::JobSubmitted { .. }
        | EventKind::JobAssigned { .. }
        | EventKind::JobCompleted { .. }
        | EventKind::JobFailed { .. }
        | EventKind::JobRequeued { .. }
        | EventKind::JobReclaimed { .. }
        | EventKind::JobStarted { .. } => app.jobs.stale = true,
        _ => {}
    }
    match kind {
        EventKind::JobCompleted { .. } => {
            if let Some(last) = app.jobs.throughput.back_mut() {
                *last += 1;
            } else {
                app.jobs.throughput.push_back(1);
            }
        }
        EventKind::WorkerJoined { worker, .. } | EventKind::WorkerRejoined { worker, .. }
            if app.node_index(worker).is_none() =>
        {
            // A student's worker, not in the topology: it gets a row too.
            app.nodes.push(outside_worker(worker));
        }
        EventKind::WorkerSuspect { worker, silent_ms } => banner(
            app,
            worker,
            at,
            format!("{worker} SUSPECT — silent for {}", seconds(*silent_ms)),
            Tone::Warning,
        ),
        EventKind::WorkerRecovered { worker } if app.banners.iter().any(|b| b.key == *worker) => {
            banner(
                app,
                worker,
                at,
                format!("{worker} is heard again: healthy"),
                Tone::Recovery,
            )
        }
        EventKind::WorkerRejoined { worker, .. }
            if app
                .cluster
                .read()
                .concluded(worker)
                .is_some_and(|c| c.verdict == Verdict::Rejoined && c.at_ms == at) =>
        {
            banner(
                app,
                worker,
                at,
                format!("{worker} REJOINED the cluster"),
                Tone::Recovery,
            )
        }
        EventKind::ElectionStarted { candidate, reason } => banner(
            app,
            "failover",
            at,
            format!("{candidate} lost the primary ({reason}): election"),
            Tone::Warning,
        ),
        EventKind::Takeover {
            coordinator, term, ..
        } => {
            // The fault that brought it about, if the operator caused it: the time since then.
            let cause = app
                .faults
                .iter()
                .rev()
                .find(|f| f.recovered.is_none() && f.target != *coordinator && !f.settled)
                .filter(|f| {
                    app.nodes
                        .iter()
                        .any(|n| n.name() == f.target && n.kind() == "master")
                })
                .map(|f| {
                    format!(
                        ", {} after {} was {}",
                        seconds(at.saturating_sub(f.at_ms)),
                        f.target,
                        done_to(&f.text)
                    )
                })
                .unwrap_or_default();
            banner(
                app,
                "failover",
                at,
                format!("FAILOVER — {coordinator} is primary, term {term}{cause}"),
                Tone::Recovery,
            );
        }
        _ => {}
    }
}

/// A row for a worker tcluster did not launch.
fn outside_worker(name: &str) -> NodeRow {
    let mut status = NodeStatus::starting(name, "worker");
    status.process = Process::NotLaunched;
    NodeRow::from_status(status)
}

/// `worker-2 DEAD — detected 1.53 s after it was paused`.
fn detected_banner(app: &mut App, at: u64, fault: &FaultView) {
    let Some((after, by)) = &fault.detected else {
        return;
    };
    // A fault on a worker is detected when the cluster declares it dead; on a master, by an
    // election or a takeover (which has its own banner).
    let worker = fault
        .target
        .split(' ')
        .filter(|name| {
            app.nodes
                .iter()
                .any(|n| n.name() == *name && n.kind() == "worker")
        })
        .find(|name| {
            app.cluster
                .read()
                .state
                .workers
                .get(*name)
                .is_some_and(|w| w.health == crate::protocol::message::Health::Dead)
        });
    let Some(worker) = worker else {
        return;
    };
    let worker = worker.to_string();
    banner(
        app,
        &worker,
        at,
        format!(
            "{worker} DEAD — {by} detected it {} after it was {}{}",
            seconds(*after),
            done_to(&fault.text),
            crate::supervisor::timeline::cluster_time(fault.speed)
        ),
        Tone::Alarm,
    );
}

/// `JOB-2, JOB-5 running again on worker-3 (12 ms after detection)`.
fn recovered_banner(app: &mut App, at: u64, fault: &FaultView, moved: &[(JobId, String)]) {
    let Some(key) = app
        .banners
        .iter()
        .rev()
        .find(|b| fault.target.split(' ').any(|t| t == b.key) && b.key != "failover")
        .map(|b| b.key.clone())
    else {
        return;
    };
    let since = fault
        .recovered
        .zip(fault.detected.as_ref().map(|d| d.0))
        .map(|(r, d)| {
            let time = crate::supervisor::timeline::cluster_time(fault.speed);
            let time = time
                .trim_start()
                .trim_start_matches('(')
                .trim_end_matches(')');
            let time = if time.is_empty() {
                String::new()
            } else {
                format!(", {time}")
            };
            format!(" ({} after detection{time})", seconds(r.saturating_sub(d)))
        })
        .unwrap_or_default();
    let text = if moved.is_empty() {
        format!("{key} held no jobs: nothing to move")
    } else {
        let mut moved = moved.to_vec();
        moved.sort();
        let jobs: Vec<String> = moved.iter().map(|(j, _)| j.to_string()).collect();
        let mut workers: Vec<&str> = moved.iter().map(|(_, w)| w.as_str()).collect();
        workers.sort_unstable();
        workers.dedup();
        format!(
            "{} running again on {}{since}",
            list(&jobs, 6),
            workers.join(", ")
        )
    };
    banner(app, &key, at, text, Tone::Recovery);
}

/// `JOB-1, JOB-2, JOB-3 and 4 more`.
fn list(items: &[String], at_most: usize) -> String {
    if items.len() <= at_most {
        items.join(", ")
    } else {
        format!(
            "{} and {} more",
            items[..at_most].join(", "),
            items.len() - at_most
        )
    }
}

/// What an action's text did to its target: `kill worker-2` → `killed`.
fn done_to(text: &str) -> &'static str {
    match text.split(' ').next().unwrap_or_default() {
        "kill" => "killed",
        "pause" => "paused",
        "partition" => "cut off",
        "restart" => "restarted",
        "latency" => "slowed down",
        "loss" => "made lossy",
        _ => "hit",
    }
}

/// `1.53 s`, `12 ms`.
pub fn seconds(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Adds a line to the banner about `key` (a new banner if there is none on screen).
pub fn banner(app: &mut App, key: &str, at: u64, text: String, tone: Tone) {
    if let Some(b) = app.banners.iter_mut().find(|b| b.key == key) {
        if b.lines.last().is_some_and(|(t, _)| *t == text) {
            return;
        }
        b.lines.push((text, tone));
        // Its first line says what happened; the last three say how it went on.
        if b.lines.len() > 4 {
            b.lines.remove(1);
        }
        b.at_ms = at;
    } else {
        // A new story: banners about older ones that have gone quiet make way.
        app.banners
            .retain(|b| b.key == "failover" || at.saturating_sub(b.at_ms) < QUIET_MS);
        app.banners.push_back(Banner {
            key: key.to_string(),
            lines: vec![(text, tone)],
            at_ms: at,
        });
        // The oldest goes, but a failover's stays while it is news.
        while app.banners.len() > BANNERS_SHOWN {
            let oldest = app
                .banners
                .iter()
                .position(|b| b.key != "failover")
                .unwrap_or(0);
            app.banners.remove(oldest);
        }
    }
}

/// The primary's figures about its workers: heartbeat ages and clocks.
pub fn workers(app: &mut App, views: Vec<WorkerView>) {
    app.workers_heard_ms = Some(app.now_ms);
    for view in views {
        let Some(i) = app.node_index(&view.name) else {
            continue;
        };
        let row = &mut app.nodes[i];
        row.heartbeat_age_ms = view.heartbeat_age_ms;
        if let Some(age) = view.heartbeat_age_ms {
            row.heartbeat_history.push_back(age);
            if row.heartbeat_history.len() > HEARTBEAT_HISTORY {
                row.heartbeat_history.pop_front();
            }
        }
        row.clock = row.clock.max(view.clock);
    }
}

/// CPU (percent) and memory (bytes) per pid.
pub fn usage(app: &mut App, usage: &[ProcessUsage]) {
    for row in &mut app.nodes {
        let found = row
            .status
            .pid
            .and_then(|pid| usage.iter().find(|u| u.pid == pid));
        row.cpu = found.map(|u| u.cpu_percent);
        row.memory = found.map(|u| u.memory_bytes);
    }
}

/// A message a link carried.
pub fn message(app: &mut App, message: MessageSeen) {
    if let Some(clock) = message.clock
        && let Some(i) = app.node_index(&message.from)
    {
        app.nodes[i].clock = app.nodes[i].clock.max(clock);
    }
    app.messages.push_back(message);
    if app.messages.len() > MESSAGES_CAP {
        app.messages.pop_front();
    }
}

/// Messages older than the diagram's window are dropped.
pub fn expire_messages(app: &mut App, now: u64) {
    while app
        .messages
        .front()
        .is_some_and(|m| m.at_ms + MESSAGE_WINDOW_MS < now)
    {
        app.messages.pop_front();
    }
}

/// A node's log line.
pub fn log(app: &mut App, line: LogLine) {
    let logs = &mut app.logs;
    let colours = logs.colours.len();
    logs.colours.entry(line.node.clone()).or_insert(colours);
    let number = logs.end();
    if let Some(search) = &mut logs.search
        && contains_ignore_case(&line.text, &search.query)
    {
        search.matches.push(number);
    }
    if logs.lines.len() == logs.cap {
        logs.lines.pop_front();
        logs.first += 1;
        if let Some(search) = &mut logs.search {
            let first = logs.first;
            let before = search.matches.len();
            search.matches.retain(|&m| m >= first);
            let gone = before - search.matches.len();
            search.current = search.current.map(|c| c.saturating_sub(gone));
        }
    }
    logs.lines.push_back(line);
}
