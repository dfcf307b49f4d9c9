//! The console's screens, drawn on a TestBackend from fixed data and compared with snapshots:
//! the lecture's moments at 80×24, 120×36 (the projector's size, in its theme) and 160×48, each
//! pane zoomed, the map, the timeline, and the overlays.
//!
//! To review changed screens: `INSTA_UPDATE=always cargo test --test console_screens`, then
//! read the diff of `tests/snapshots/`.

mod common;

use common::lecture::*;
use tcluster::console::app::{App, Pane, View};
use tcluster::console::config::Theme;
use tcluster::console::keymap::Action;
use tcluster::console::update::update;
use tcluster::supervisor::timeline::TimelineKind;

/// The three sizes a lecturer meets: a laptop's small terminal, a projector, a big screen.
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 36), (160, 48)];

fn projector(app: &mut App, width: u16) {
    app.config.theme = if width == 120 {
        Theme::Projector
    } else {
        Theme::Mono
    };
}

/// The lecture after the primary was killed and its backup took over.
fn failover() -> App {
    let mut app = lecture();
    kill_primary(&mut app);
    update(&mut app, Action::Tick(6100));
    app
}

#[test]
fn a_paused_worker_dead_a_cut_link_and_the_banner_at_three_sizes() {
    for (w, h) in SIZES {
        let mut app = lecture();
        projector(&mut app, w);
        insta::assert_snapshot!(format!("lecture_{w}x{h}"), render(&mut app, w, h));
    }
}

#[test]
fn a_failover_at_three_sizes() {
    for (w, h) in SIZES {
        let mut app = failover();
        projector(&mut app, w);
        insta::assert_snapshot!(format!("failover_{w}x{h}"), render(&mut app, w, h));
    }
}

#[test]
fn a_say_line_over_the_panes() {
    let mut app = lecture();
    app.banners.clear();
    update(
        &mut app,
        timeline(
            5000,
            "scenario",
            TimelineKind::Say {
                text: "worker-2 is paused: watch its row turn suspect, then dead".into(),
            },
        ),
    );
    insta::assert_snapshot!("say_80x24", render(&mut app, 80, 24));
}

#[test]
fn each_pane_zoomed() {
    for pane in Pane::OVERVIEW {
        let mut app = lecture();
        app.banners.clear();
        app.focus = pane;
        update(&mut app, Action::Zoom);
        insta::assert_snapshot!(
            format!("pane_{}_80x24", pane.title().to_lowercase()),
            render(&mut app, 80, 24)
        );
    }
}

#[test]
fn the_map_and_the_timeline_at_three_sizes() {
    for (w, h) in SIZES {
        let mut app = failover();
        app.banners.clear();
        projector(&mut app, w);
        update(&mut app, Action::Show(View::Map));
        insta::assert_snapshot!(format!("map_{w}x{h}"), render(&mut app, w, h));
        update(&mut app, Action::Show(View::Timeline));
        insta::assert_snapshot!(format!("timeline_{w}x{h}"), render(&mut app, w, h));
    }
}

#[test]
fn overlays_fit_a_small_terminal() {
    let mut app = lecture();
    app.banners.clear();
    update(&mut app, Action::Help);
    insta::assert_snapshot!("help_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::HelpScroll(30));
    insta::assert_snapshot!("help_scrolled_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Back);
    update(&mut app, Action::SubmitForm);
    insta::assert_snapshot!("submit_form_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Back);
    app.selected.insert(Pane::Nodes, 2);
    update(&mut app, Action::Kill);
    insta::assert_snapshot!("confirm_kill_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Confirm(false));
    app.focus = Pane::Jobs;
    app.refresh_jobs();
    let job = app.jobs.visible.iter().position(|id| id.0 == 2).unwrap();
    app.selected.insert(Pane::Jobs, job);
    update(&mut app, Action::Open);
    insta::assert_snapshot!("job_history_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Back);
    app.focus = Pane::Nodes;
    app.selected.insert(Pane::Nodes, 3);
    update(&mut app, Action::Open);
    insta::assert_snapshot!("node_detail_80x24", render(&mut app, 80, 24));
    update(&mut app, Action::Back);
    update(&mut app, Action::CommandLine);
    typed(&mut app, "kill w");
    insta::assert_snapshot!("completions_80x24", render(&mut app, 80, 24));
}

/// A backup catching up on a long history sends hundreds of replicas in a moment: they are one
/// row with a count, and the election that came just before is still on the diagram.
#[test]
fn a_burst_of_replicas_does_not_push_an_election_off_the_diagram() {
    use std::sync::Arc;
    use tcluster::shaper::MessageSeen;
    let mut app = lecture();
    app.banners.clear();
    let message = |at_ms: u64, from: &str, to: &str, kind: &str| {
        Action::Message(MessageSeen {
            at_ms,
            from: Arc::from(from),
            to: Arc::from(to),
            kind: kind.into(),
            clock: Some(at_ms / 10),
            fate: tcluster::shaper::Fate::Carried,
            count: 1,
        })
    };
    feed(
        &mut app,
        [
            message(6000, "backup", "coordinator", "election"),
            message(6001, "coordinator", "backup", "answer"),
            message(6002, "coordinator", "backup", "victory"),
        ],
    );
    for i in 0..300 {
        update(
            &mut app,
            message(6003 + i / 3, "coordinator", "backup", "replica"),
        );
        update(
            &mut app,
            message(6003 + i / 3, "backup", "coordinator", "replica_ack"),
        );
    }
    update(&mut app, Action::Show(View::Timeline));
    let screen = render(&mut app, 160, 48);
    for kind in ["election", "answer", "victory", "replica ×"] {
        assert!(screen.contains(kind), "{kind} missing:\n{screen}");
    }
}

/// `:keys on`: each key pressed shows in the bottom-right corner for a few seconds (the class
/// sees what the lecturer did); off, nothing is shown.
#[test]
fn the_keys_pressed_show_in_a_corner_when_asked() {
    let mut app = lecture();
    app.banners.clear();
    update(&mut app, Action::KeyPressed("p".into()));
    assert!(!render(&mut app, 120, 36).contains("⌨"), "off by default");
    app.show_keys = true;
    for key in ["p", "↓", "Enter"] {
        update(&mut app, Action::KeyPressed(key.into()));
    }
    let screen = render(&mut app, 120, 36);
    assert!(screen.contains("⌨ p ↓ Enter"), "{screen}");
    // A few seconds later they are gone.
    let later = app.now_ms + 4_000;
    update(&mut app, Action::Tick(later));
    assert!(!render(&mut app, 120, 36).contains("⌨"));
}

/// A replay of the failover at 120×36 and 80×24: the scrubber bar under the status bar, with
/// the faults, the failover and an alarm marked where they happened.
#[test]
fn a_replay_shows_its_scrubber_with_the_marks() {
    use tcluster::console::app::{Mark, MarkKind, Scrubber};
    for (w, h) in [(120, 36), (80, 24)] {
        let mut app = failover();
        projector(&mut app, w);
        let mark = |at_ms, kind, label: &str| Mark {
            at_ms,
            kind,
            label: label.to_string(),
        };
        app.scrubber = Some(Scrubber {
            at_ms: 6100,
            start_ms: 0,
            end_ms: 30_000,
            playing: true,
            speed: 0.25,
            marks: vec![
                mark(2_500, MarkKind::Fault, "kill worker-2"),
                mark(5_000, MarkKind::Fault, "kill coordinator"),
                mark(
                    5_600,
                    MarkKind::Failover,
                    "failover: backup took over in term 2",
                ),
                mark(21_000, MarkKind::Alarm, "lost job"),
            ],
            live: false,
            goto: None,
        });
        insta::assert_snapshot!(format!("replay_{w}x{h}"), render(&mut app, w, h));
        // Its `?` help begins with the replay's own keys.
        update(&mut app, Action::Help);
        let help = render(&mut app, w, h);
        assert!(help.contains("a recording, read-only:"), "{help}");
        assert!(help.contains("Space  play or pause"), "{help}");
        update(&mut app, Action::Back);
    }
}

/// Encrypted links are marked on the Map, with the plaintext peers each refused.
#[test]
fn the_map_marks_encrypted_links_and_their_refusals() {
    let mut app = lecture();
    app.banners.clear();
    let Action::Links(mut all) = links(false) else {
        unreachable!()
    };
    for link in &mut all {
        link.encrypted = link.to == "coordinator" || link.from == "coordinator";
        if link.from == "worker-2" && link.to == "coordinator" {
            link.plaintext = 2;
        }
    }
    update(&mut app, Action::Links(all));
    update(&mut app, Action::Show(View::Map));
    let screen = render(&mut app, 160, 48);
    assert!(screen.contains("TLS"), "{screen}");
    assert!(screen.contains("2 plaintext refused"), "{screen}");
    assert!(
        screen.contains("300±50ms · TLS"),
        "a slow encrypted link says both:\n{screen}"
    );
}
