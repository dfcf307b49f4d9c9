//! The console as a person uses it: the real binary in a pseudo-terminal, its screen read through
//! a vt100 parser. It launches a cluster, submits jobs from the command line, kills a worker
//! with `k` and a confirmation, slows the cluster down and looks back through the run, and quits
//! with `q`, which stops every node it launched.

mod common;

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use common::{DEADLINE, wait_until};
use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const TOPOLOGY: &str = "
set SYSTEM_NAME PtyDemo
node coordinator { type master }
node worker { type worker; count 2; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 400ms; timeout 800ms }
";

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_until(what, || {
            let text = self.text();
            check(&text).then_some(text)
        })
    }
}

/// The real binary with `args` in a pseudo-terminal of `rows`×`cols`: the child, its screen, and
/// a way to press keys.
fn open(
    args: &[&str],
    rows: u16,
    cols: u16,
    config_home: &std::path::Path,
) -> (
    Box<dyn portable_pty::Child + Send + Sync>,
    Screen,
    impl FnMut(&[u8]) + use<>,
) {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_tcluster"));
    command.args(args);
    command.env("TERM", "xterm-256color");
    command.env("NO_COLOR", "1");
    command.env("XDG_CONFIG_HOME", config_home);
    let child = pty.slave.spawn_command(command).unwrap();
    drop(pty.slave);
    let size = |n: u16| std::num::NonZero::new(n).unwrap();
    let screen = Screen {
        parser: Arc::new(Mutex::new(vt100::Parser::new(size(rows), size(cols), 0))),
    };
    let mut reader = pty.master.try_clone_reader().unwrap();
    let parser = screen.parser.clone();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 {
                break;
            }
            parser.lock().unwrap().process(&buffer[..n]);
        }
    });
    let mut keys = pty.master.take_writer().unwrap();
    // The terminal's master end must live as long as the keys are pressed.
    let master = pty.master;
    let press = move |bytes: &[u8]| {
        let _ = &master;
        keys.write_all(bytes).unwrap();
        keys.flush().unwrap();
    };
    (child, screen, press)
}

/// Processes whose command line mentions `needle` (the test's own topology path).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    common::live_processes(|cmdline| cmdline.contains(needle))
}

/// A directory with the PtyDemo topology in it.
fn demo_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let topology = common::topology(dir.path(), TOPOLOGY);
    (dir, topology)
}

/// The console on the PtyDemo cluster at 140×40, once every node is healthy on screen.
fn launch_demo(
    dir: &tempfile::TempDir,
    topology: &std::path::Path,
) -> (
    Box<dyn portable_pty::Child + Send + Sync>,
    Screen,
    impl FnMut(&[u8]) + use<>,
) {
    let state = dir.path().join("state");
    let (child, screen, press) = open(
        &[
            topology.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        40,
        140,
        dir.path(),
    );
    screen.wait_for("every node is healthy on screen", |s| {
        s.contains("PtyDemo") && s.matches("● healthy").count() >= 3
    });
    (child, screen, press)
}

/// `q`: the console exits cleanly and every node it launched is gone.
fn quit_and_see_every_node_gone(
    child: &mut Box<dyn portable_pty::Child + Send + Sync>,
    press: &mut impl FnMut(&[u8]),
    topology: &std::path::Path,
) {
    press(b"q");
    let status = wait_until("the console exits", || child.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
    wait_until("every node it launched is gone", || {
        processes_mentioning(topology.to_str().unwrap())
            .is_empty()
            .then_some(())
    });
}

#[test]
fn the_console_launches_submits_kills_and_quits_in_a_real_terminal() {
    let (dir, topology) = demo_dir();
    let (mut child, screen, mut press) = launch_demo(&dir, &topology);
    let console = child.process_id().unwrap();
    let nodes: Vec<u32> = processes_mentioning(topology.to_str().unwrap())
        .into_iter()
        .filter(|p| *p != console)
        .collect();
    assert_eq!(nodes.len(), 3, "a coordinator and two workers");

    // Submit from the command line; the jobs run and the counts say so.
    press(b":submit 6 sleep 200ms\r");
    screen.wait_for("six jobs completed", |s| s.contains("✓6"));

    // Select worker-1 (the second row), kill it, confirm.
    press(b"\x1b[B");
    press(b"k");
    screen.wait_for("the confirmation line", |s| s.contains("kill worker-1?"));
    press(b"y");
    let text = screen.wait_for("worker-1 shown dead", |s| {
        s.lines()
            .any(|l| l.contains("worker-1") && l.contains("✕ dead"))
    });
    assert!(text.contains("worker-2"), "{text}");

    // The timeline shows the fault with its measured detection.
    press(b"3");
    screen.wait_for("the fault on the timeline", |s| {
        s.contains("kill worker-1") && s.contains("by coordinator")
    });

    // q stops everything the console launched.
    quit_and_see_every_node_gone(&mut child, &mut press, &topology);
    let _ = DEADLINE;
}

#[test]
fn attach_opens_the_console_on_a_cluster_it_did_not_launch() {
    let dir = tempfile::tempdir().unwrap();
    let topology = common::topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = common::coordinator(dir.path(), &topology, &[]);
    let _worker = common::worker(dir.path(), &topology, "worker-1", &addr);

    let (mut child, screen, mut press) = open(&["attach", &addr], 30, 120, dir.path());
    screen.wait_for("the attached cluster and its worker", |s| {
        s.contains(&format!("attached to {addr}"))
            && s.lines()
                .any(|l| l.contains("worker-1") && l.contains("healthy"))
    });
    press(b"s");
    screen.wait_for("the submit form", |s| s.contains("Submit jobs"));
    press(b"echo attached\r");
    screen.wait_for("the submission confirmed", |s| {
        s.contains("submitted 1 jobs")
    });
    // Faults need a launched cluster: the console says so instead of failing silently.
    press(b"k");
    screen.wait_for("why k does nothing here", |s| {
        s.contains("launched by this console")
    });
    press(b"q");
    let status = wait_until("the console exits", || child.try_wait().unwrap());
    assert!(status.success());
}

/// `--frame-stats FILE`: when the console quits, its frame times are in FILE; a FILE that
/// cannot be written is said so, after the terminal is given back.
#[test]
fn frame_stats_are_written_when_the_console_quits_or_the_failure_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let topology = common::topology(dir.path(), TOPOLOGY);
    let (_coordinator, addr) = common::coordinator(dir.path(), &topology, &[]);
    let good = dir.path().join("frames.json");
    let bad = dir.path().join("no such directory").join("frames.json");
    for (file, written) in [(&good, true), (&bad, false)] {
        let args = ["attach", &addr, "--frame-stats", file.to_str().unwrap()];
        let (mut child, screen, mut press) = open(&args, 30, 120, dir.path());
        screen.wait_for("the attached cluster", |s| {
            s.contains(&format!("attached to {addr}"))
        });
        press(b"q");
        let status = wait_until("the console exits", || child.try_wait().unwrap());
        assert!(status.success(), "{status:?}");
        if written {
            let stats: serde_json::Value =
                serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
            assert!(stats["n"].as_u64().unwrap() >= 1, "{stats}");
            assert!(stats["p99"].as_f64().unwrap() > 0.0, "{stats}");
        } else {
            screen.wait_for("why the frame times are missing", |s| {
                s.contains("cannot write the frame times")
            });
        }
    }
}

/// The Chat pane in a real terminal: it shows a bot's posts, posts as `operator` from its input
/// line, and when its chat server is killed says so and carries on through the other one.
#[test]
fn the_chat_pane_posts_and_moves_to_another_chat_server() {
    let dir = tempfile::tempdir().unwrap();
    let topology = common::topology(
        dir.path(),
        "set SYSTEM_NAME ChatPty\nnode coordinator { type master }\n\
         node chat { type chat; count 2 }\n\
         node bot { type bot; bot { channels general; posts 5/s } }\n\
         policy heartbeat { interval 100ms; timeout 800ms }\n",
    );
    let state = dir.path().join("state");
    let (mut child, screen, mut press) = open(
        &[
            topology.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        40,
        160,
        dir.path(),
    );
    screen.wait_for("the pane on chat-1 with the bot's posts", |s| {
        s.contains("via chat-1") && s.contains("bot_0001:")
    });
    // Tab to the Chat pane (Nodes → Jobs → Chat), write, Enter, Esc.
    press(b"\t\t");
    press(b"i");
    screen.wait_for("the input line", |s| s.contains("#general as operator>"));
    press(b"hello class\r");
    screen.wait_for("the operator's post", |s| {
        s.contains("operator: hello class")
    });
    press(b"\x1b");
    // (An Esc followed at once by another key reads as Alt+key: wait for the line to close.)
    screen.wait_for("the input line closed", |s| !s.contains("as operator>"));
    // Kill chat-1 from the command line (typed out in full, it is not confirmed again).
    press(b":kill chat-1\r");
    screen.wait_for("the move, in the pane", |s| {
        s.contains("via chat-2") && s.contains("lost chat-1")
    });
    // The bot moved too: its new posts arrive through chat-2, below the notice of the move.
    screen.wait_for("a bot post after the move", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines
            .iter()
            .rposition(|l| l.contains("connected to chat-2"))
            .is_some_and(|i| lines[i + 1..].iter().any(|l| l.contains("bot_0001:")))
    });
    quit_and_see_every_node_gone(&mut child, &mut press, &topology);
}

/// The lecture's central moments in a real terminal: a paused worker's row turns suspect, then
/// dead, while it is paused (the verdict is the cluster's, `paused` is a tag); the primary is
/// killed and a FAILOVER banner gives the time; `q`, and the next launch is a fresh cluster on
/// which every pane and `tcluster client … status` agree.
#[test]
fn a_pause_a_failover_and_a_fresh_relaunch_as_the_class_sees_them() {
    let dir = tempfile::tempdir().unwrap();
    let topology = common::topology(
        dir.path(),
        "set SYSTEM_NAME Lecture
node coordinator { type master }
node backup { type master; role backup }
node worker { type worker; count 2; resources { cpu 2 } }
policy heartbeat { interval 100ms; suspect_after 300ms; timeout 1500ms }
",
    );
    let state = dir.path().join("state");
    let args = [
        topology.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    let (mut child, screen, mut press) = open(&args, 40, 160, dir.path());
    screen.wait_for("every node healthy", |s| {
        s.contains("Lecture") && s.matches("● healthy").count() >= 4
    });
    press(b":submit 4 sleep 30s\r");
    screen.wait_for("the jobs running", |s| s.contains("▶4"));

    // Paused: the row keeps the cluster's verdict — suspect, then dead — with `paused` beside.
    let row = |s: &str, name: &str| {
        s.lines()
            .find(|l| l.contains(&format!("┃{name}")))
            .unwrap_or_default()
            .to_string()
    };
    press(b":pause worker-1\r");
    let suspect = screen.wait_for("worker-1 suspect while paused", |s| {
        let r = row(s, "worker-1");
        r.contains("◐ suspect") && r.contains("paused")
    });
    assert!(!row(&suspect, "worker-1").contains("dead"), "{suspect}");
    let dead = screen.wait_for("worker-1 dead while paused", |s| {
        let r = row(s, "worker-1");
        r.contains("✕ dead") && r.contains("paused")
    });
    assert!(
        dead.contains("worker-1 DEAD — coordinator detected it"),
        "the banner with the time:\n{dead}"
    );
    press(b":resume worker-1\r");
    screen.wait_for("worker-1 back", |s| {
        let r = row(s, "worker-1");
        r.contains("rejoined") || r.contains("● healthy")
    });

    // The primary dies: the backup takes over, the banner says when.
    press(b":kill coordinator\r");
    let failover = screen.wait_for("the failover banner", |s| {
        s.contains("FAILOVER — backup is primary, term 2,")
    });
    assert!(
        failover.contains("after coordinator was killed"),
        "{failover}"
    );
    screen.wait_for("the status bar and the rows agree", |s| {
        s.contains("★ backup term 2")
            && row(s, "coordinator").contains("was primary")
            && row(s, "coordinator").contains("✕ dead")
            && row(s, "backup").contains("primary")
    });

    quit_and_see_every_node_gone(&mut child, &mut press, &topology);

    // The run ended with q: the next launch is a fresh cluster, and says so.
    let (mut child, screen, mut press) = open(&args, 40, 160, dir.path());
    let fresh = screen.wait_for("a fresh cluster, every node healthy", |s| {
        s.contains("★ coordinator term 1") && s.matches("● healthy").count() >= 4
    });
    assert!(fresh.contains("Jobs (0)"), "{fresh}");
    assert!(
        fresh.contains("a fresh run"),
        "the Logs pane says so:\n{fresh}"
    );
    let client = common::tcluster()
        .args([
            "client",
            topology.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "status",
        ])
        .output()
        .unwrap();
    let status_text = String::from_utf8_lossy(&client.stdout);
    assert!(
        status_text.contains("coordinator: primary, term 1") && status_text.contains("0 completed"),
        "{status_text}"
    );
    press(b"q");
    let status = wait_until("the console exits", || child.try_wait().unwrap());
    assert!(status.success(), "{status:?}");
}

/// Messages delivered by hand: `:hold` a worker's link, open the held messages (`H`), drop the
/// first, deliver the next one out of order, and see both on the space-time diagram; releasing
/// the link lets the rest through and the worker comes back.
#[test]
fn a_held_link_delivers_one_message_by_hand_and_drops_another() {
    let (dir, topology) = demo_dir();
    let (mut child, screen, mut press) = launch_demo(&dir, &topology);

    press(b":hold coordinator worker-1\r");
    press(b"H");
    let held = |s: &str, at_least: usize| {
        s.split("Held (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n >= at_least)
    };
    screen.wait_for("messages waiting on the held link", |s| held(s, 3));
    // Drop the first; deliver the one after it (the list moves up: the selection stays first,
    // so go down one to leave an earlier message waiting: out of order).
    press(b"d");
    // (A link a node shapes itself: the node is told, and its report follows.)
    screen.wait_for("the drop said", |s| {
        s.contains("dropped by hand:") || s.contains("dropping by hand:")
    });
    press(b"\x1b[B");
    press(b"\r");
    screen.wait_for("the delivery said", |s| {
        s.contains("delivered by hand:") || s.contains("delivering by hand:")
    });
    // Held long enough, the worker's heartbeats make the coordinator declare it dead.
    press(b"\x1b");
    screen.wait_for("worker-1 declared dead while held", |s| {
        s.lines()
            .any(|l| l.contains("worker-1") && l.contains("✕ dead"))
    });
    // The diagram shows held, dropped and delivered-by-hand messages apart.
    press(b"3");
    press(b"m");
    screen.wait_for("held and by-hand messages on the diagram", |s| {
        s.contains("held") && (s.contains("dropped by hand") || s.contains("by hand"))
    });
    // Released: what waits goes through in order, and worker-1 comes back.
    press(b":release\r");
    press(b"1");
    screen.wait_for("worker-1 back", |s| {
        s.lines()
            .any(|l| l.contains("worker-1") && (l.contains("● healthy") || l.contains("rejoined")))
    });
    quit_and_see_every_node_gone(&mut child, &mut press, &topology);
}

#[test]
fn the_timeline_looks_back_and_the_cluster_slows_down_and_speeds_up() {
    let (dir, topology) = demo_dir();
    let (mut child, screen, mut press) = launch_demo(&dir, &topology);

    // Slow motion: the status bar says so, the timeline too.
    press(b":speed 0.2\r");
    screen.wait_for("slow motion on the status bar", |s| s.contains("SLOW 0.2×"));
    press(b":pause worker-1\r");
    press(b"y");
    screen.wait_for("worker-1 detected in cluster time", |s| {
        s.contains("(cluster time at 0.2×)")
    });
    // ← on the Timeline: the run so far, from its recording, a second back.
    press(b"3");
    screen.wait_for("the timeline", |s| s.contains("Events ("));
    press(b"\x1b[D");
    let back = screen.wait_for("looking back", |s| s.contains("◀ looking back"));
    assert!(back.contains("any other key: live"), "{back}");
    press(b"\x1b[D");
    // Any other key: live again (and the key does nothing else).
    press(b"k");
    screen.wait_for("live again", |s| !s.contains("◀ looking back"));
    // Real time again: worker-1, resumed, rejoins, and nobody else was suspected.
    press(b":speed 1\r");
    press(b":resume worker-1\r");
    press(b"1");
    let live = screen.wait_for("real time, worker-1 back", |s| {
        !s.contains("SLOW")
            && s.lines().any(|l| {
                l.contains("worker-1") && (l.contains("healthy") || l.contains("rejoined"))
            })
    });
    assert!(
        !live
            .lines()
            .any(|l| l.contains("worker-2") && (l.contains("suspect") || l.contains("dead"))),
        "{live}"
    );
    quit_and_see_every_node_gone(&mut child, &mut press, &topology);

    // The run replays from its state directory.
    let out = common::replay_ok(&[dir.path().join("state").to_str().unwrap(), "--json"]);
    let state: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(state["system"], "PtyDemo");
}
