//! `tcluster check` and `tcluster TOPOLOGY` as a user runs them: the real binary, its output and
//! its exit codes, for good files, bad files, files that are not there, and bad flags.

use std::path::Path;
use std::process::{Command, Output};

fn tcluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcluster"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the tcluster binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_valid_topology_prints_a_summary_and_exits_0() {
    let out = tcluster(&["check", "topologies/demo.top"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("LectureCluster 1.0: topologies/demo.top is valid"),
        "{stdout}"
    );
    assert!(stdout.contains("coordinator"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:7400"), "{stdout}");
    assert!(stdout.contains("worker-1 … worker-3 (3)"), "{stdout}");
    assert!(
        stdout.contains("heartbeat       every 250ms, suspect after 750ms, dead after 1.5s"),
        "{stdout}"
    );
    assert!(stdout.contains("lecture (32 steps over 33s)"), "{stdout}");
    assert!(text(&out.stderr).is_empty());
}

#[test]
fn an_invalid_topology_prints_every_error_with_its_place_and_exits_1() {
    let out = tcluster(&["check", "tests/bad/many_errors.top"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    for place in [
        "many_errors.top:5:10",
        "many_errors.top:8:10",
        "many_errors.top:11:27",
        "many_errors.top:14:11",
    ] {
        assert!(stderr.contains(place), "{place} missing from:\n{stderr}");
    }
    assert!(stderr.contains("^^^^^^ expected `master`"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("error: tests/bad/many_errors.top is not valid: 6 errors"),
        "{stderr}"
    );
}

#[test]
fn warnings_alone_keep_a_file_valid() {
    let out = tcluster(&["check", "--quiet", "tests/bad/unknown_keys.top"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("warning: unknown key `prot`"));
}

#[test]
fn a_missing_file_or_a_directory_is_a_clear_error() {
    let out = tcluster(&["check", "topologies/nope.top"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot read topology `topologies/nope.top`"),
        "{stderr}"
    );

    let out = tcluster(&["check", "topologies"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read topology `topologies`"));
}

#[test]
fn binary_and_oversized_files_are_refused_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.top");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    std::fs::write(&binary, bytes).unwrap();
    let out = tcluster(&["check", binary.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("binary.top:2:118"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "control characters reach the terminal"
    );
    assert!(!stderr.contains("panicked"));

    let huge = dir.path().join("huge.top");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(64 * 1024 * 1024).unwrap();
    let out = tcluster(&["check", huge.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("may be at most"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_console_without_a_terminal_says_what_to_do_instead() {
    // Tests run without a terminal: the console must refuse clearly, not garble a pipe.
    let out = tcluster(&["topologies/classic.top"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the console needs a terminal") && stderr.contains("--headless"),
        "{stderr}"
    );
    // An invalid topology is reported before anything else.
    let out = tcluster(&["tests/bad/many_errors.top"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("many_errors.top:5:10"));
    // A bad config file says where and what.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "theme = \"neon\"\n").unwrap();
    let out = tcluster(&[
        "topologies/classic.top",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("config.toml") && stderr.contains("neon"),
        "{stderr}"
    );
}

#[test]
fn help_version_and_bad_flags() {
    let out = tcluster(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("check") && help.contains("docs/TOPOLOGY.md"),
        "{help}"
    );

    let out = tcluster(&["--version"]);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("tcluster {}", env!("CARGO_PKG_VERSION"))
    );

    let out = tcluster(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("TOPOLOGY"));

    let out = tcluster(&["check", "--frobnicate", "topologies/demo.top"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--frobnicate"));

    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("topologies/demo.top")
            .exists()
    );
}

#[test]
fn bad_flags_for_run_node_and_attach_say_what_is_wrong() {
    let out = tcluster(&["run", "topologies/demo.top", "--headless", "--for", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("soon") && stderr.contains("duration"),
        "{stderr}"
    );

    // Fresh and resumed at once: which one was meant?
    for args in [
        &[
            "run",
            "topologies/demo.top",
            "--headless",
            "--fresh",
            "--resume",
        ][..],
        &["topologies/demo.top", "--resume", "--fresh"][..],
    ] {
        let out = tcluster(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--fresh")
                && stderr.contains("--resume")
                && stderr.contains("cannot be used with"),
            "{stderr}"
        );
    }

    let out = tcluster(&["node", "topologies/demo.top", "--name", "worker-9"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no node named `worker-9`") && stderr.contains("did you mean"),
        "{stderr}"
    );

    // A state directory that is a file: the journal cannot be opened, and the error says where.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = tcluster(&[
        "node",
        "topologies/demo.top",
        "--name",
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("journal") && stderr.contains("not-a-dir"),
        "{stderr}"
    );

    // A client node is a person, not a process; a bot with nowhere to post says so.
    let chat = dir.path().join("chat.top");
    std::fs::write(
        &chat,
        "node c { type master }\nnode b { type bot }\nnode p { type client }\n",
    )
    .unwrap();
    let out = tcluster(&["node", chat.to_str().unwrap(), "--name", "p"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`client` nodes are people: run `tcluster client`"),
        "{}",
        text(&out.stderr)
    );
    let out = tcluster(&["node", chat.to_str().unwrap(), "--name", "b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("this bot posts to chat, but no chat server has a port"),
        "{}",
        text(&out.stderr)
    );

    // The console needs a terminal, attached or not.
    let out = tcluster(&["attach", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("needs a terminal"));
}

#[test]
fn a_reader_that_goes_away_is_not_a_panic() {
    // `tcluster check demo.top | head -1`: the pipe closes before tcluster has written it all.
    // Here its read end is closed before tcluster even starts, so every write fails.
    for args in [
        &["check", "topologies/demo.top"][..],
        &["check", "topologies/election.top"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_tcluster"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// A topology's warnings are said once, by the command a person runs — not again by every node
/// tcluster launches (their stderr is the console's Logs pane).
#[test]
fn a_launched_node_leaves_the_topologys_warnings_to_tcluster() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warn.top");
    std::fs::write(&file, "node coordinator { type master; colour blue }\n").unwrap();
    let file = file.to_str().unwrap();
    let check = tcluster(&["check", file]);
    assert!(
        text(&check.stderr).contains("unknown key `colour`"),
        "{}",
        text(&check.stderr)
    );
    // Launched by tcluster (its control channel on stdin; closed here, so it stops at once).
    let node = tcluster(&[
        "node",
        file,
        "--name",
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--control-stdin",
    ]);
    assert!(
        !text(&node.stderr).contains("colour"),
        "{}",
        text(&node.stderr)
    );
}

#[test]
fn check_lists_the_hosts_it_will_reach_and_warns_about_those_that_do_not_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.top");
    std::fs::write(
        &path,
        "set SYSTEM_NAME Lab
node coordinator { type master }
node worker { type worker; count 3; host \"ssh://student@lab-12.invalid:2222\"; identity \"~/.ssh/lab\"; remote_binary \"/opt/tcluster/bin/tcluster\" }
node probe { type worker; host \"ssh://127.0.0.1\" }
",
    )
    .unwrap();
    let out = tcluster(&["check", path.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // Not resolving is a warning: the file is valid, the launch would say what ssh said.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Hosts: started over SSH (the system's ssh, so ~/.ssh/config applies)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "ssh://student@lab-12.invalid:2222  worker-1, worker-2, worker-3; runs /opt/tcluster/bin/tcluster, key ~/.ssh/lab"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("ssh://127.0.0.1"), "{stdout}");
    assert!(
        stderr.contains(
            "warning: host `lab-12.invalid` (worker-1, worker-2, worker-3) does not resolve here"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("`127.0.0.1`"), "{stderr}");
}
