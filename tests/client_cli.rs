//! `tcluster client` as scripts and people use it: one-shot commands with exit codes a script
//! can rely on, and the interactive prompt fed from a pipe.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::*;

const TOPOLOGY: &str =
    "node coordinator { type master }\nnode w { type worker; resources { cpu 4 } }\n";

struct Cluster {
    _dir: tempfile::TempDir,
    topology: std::path::PathBuf,
    addr: String,
    _coordinator: Proc,
    _worker: Proc,
}

fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    let (coordinator, addr) = coordinator(dir.path(), &topology, &[]);
    let worker = worker(dir.path(), &topology, "w", &addr);
    Cluster {
        topology,
        addr,
        _coordinator: coordinator,
        _worker: worker,
        _dir: dir,
    }
}

impl Cluster {
    fn client(&self, args: &[&str]) -> Output {
        let mut all = vec![
            "client",
            self.topology.to_str().unwrap(),
            "--coordinator",
            &self.addr,
        ];
        all.extend_from_slice(args);
        tcluster().args(&all).output().unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn one_shot_commands_and_their_exit_codes() {
    let c = cluster();

    let out = c.client(&["submit", "sleep 100ms", "--count", "3", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("accepted JOB-1 JOB-2 JOB-3\n"), "{text}");
    assert_eq!(text.matches("completed: slept 100ms").count(), 3, "{text}");

    let out = c.client(&["submit", "fail on purpose", "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a waited job that failed exits 3"
    );
    assert!(stdout(&out).contains("failed: on purpose"));

    let out = c.client(&["status", "JOB-1"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("JOB-1  completed") && stdout(&out).contains("result:   slept 100ms"),
        "{}",
        stdout(&out)
    );

    let out = c.client(&["status"]);
    assert!(
        stdout(&out).contains("workers: 1 healthy"),
        "{}",
        stdout(&out)
    );

    let out = c.client(&["jobs", "--state", "completed"]);
    assert_eq!(
        stdout(&out).lines().count(),
        4,
        "a header and 3 jobs:\n{}",
        stdout(&out)
    );

    let out = c.client(&["workers"]);
    assert!(
        stdout(&out).contains("w ") && stdout(&out).contains("healthy"),
        "{}",
        stdout(&out)
    );

    let out = c.client(&["--json", "status", "JOB-2"]);
    let reply: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(reply["type"], "job_info");

    // Errors a script must see.
    let out = c.client(&["status", "JOB-99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown job JOB-99"));
    let out = c.client(&["status", "banana"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a job id"));
    let out = c.client(&["jobs", "--state", "sideways"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a job state"));
    let out = c.client(&["submit", "sleep forever"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("sleep:"), "{}", stderr(&out));
    let out = c.client(&["submit"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

#[test]
fn an_unreachable_coordinator_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(dir.path(), TOPOLOGY);
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = tcluster()
        .args([
            "client",
            topology.to_str().unwrap(),
            "--coordinator",
            &addr,
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "no master answered (tried {addr}): cannot connect to {addr}"
        )),
        "{}",
        stderr(&out)
    );

    // Without --coordinator, a topology whose coordinator has no port says what to do.
    let out = tcluster()
        .args(["client", topology.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pass --coordinator"),
        "{}",
        stderr(&out)
    );

    // A topology of chat servers alone runs no jobs: its status is refused, with what to use.
    let chat_only = dir.path().join("chat_only.top");
    std::fs::write(&chat_only, "node chat { type chat; count 2 }\n").unwrap();
    let out = tcluster()
        .args(["client", chat_only.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("this topology has no master") && stderr(&out).contains("chat"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_interactive_prompt_reads_commands() {
    let c = cluster();
    let mut child = tcluster()
        .args([
            "client",
            c.topology.to_str().unwrap(),
            "--coordinator",
            &c.addr,
        ])
        .env("XDG_STATE_HOME", c._dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"help\nsubmit \"echo hi there\" count 2 wait\nstatus JOB-2\nfrobnicate\nsubmit \"echo x\" count many\njobs\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (text, errors) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{text}{errors}");
    assert!(
        text.contains("submit DATA [count N]"),
        "help is shown:\n{text}"
    );
    assert!(text.contains("accepted JOB-1 JOB-2"), "{text}");
    assert_eq!(text.matches("completed: hi there").count(), 2, "{text}");
    assert!(text.contains("result:   hi there"), "{text}");
    assert!(errors.contains("unknown command `frobnicate`"), "{errors}");
    assert!(errors.contains("count must be a whole number"), "{errors}");
    assert!(
        c._dir.path().join("tcluster/client_history").exists(),
        "history is kept"
    );
}

/// A primary and its backup started by hand; returns them and their addresses.
fn two_masters(dir: &std::path::Path) -> (std::path::PathBuf, Proc, String, Proc, String) {
    let topology = topology(
        dir,
        "node coordinator { type master; role primary }\nnode backup { type master; role backup }\n\
         policy heartbeat { interval 100ms; timeout 800ms }\n",
    );
    let (primary, primary_addr) = coordinator(dir, &topology, &[]);
    let backup = spawn(
        dir,
        "backup",
        &[
            "node",
            topology.to_str().unwrap(),
            "--name",
            "backup",
            "--listen",
            "127.0.0.1:0",
            "--coordinator",
            &primary_addr,
        ],
    );
    let line = backup.wait_for_line("READY backup ");
    let backup_addr = line.rsplit(' ').next().unwrap().to_string();
    (topology, primary, primary_addr, backup, backup_addr)
}

#[test]
fn the_client_finds_the_primary_among_the_masters_and_follows_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let (topology, primary, primary_addr, _backup, backup_addr) = two_masters(dir.path());
    // The backup is listed first: the client asks both and talks to the primary.
    let both = format!("{backup_addr},{primary_addr}");
    let status = || {
        let out = tcluster()
            .args([
                "client",
                topology.to_str().unwrap(),
                "--coordinator",
                &both,
                "status",
            ])
            .output()
            .unwrap();
        stdout(&out)
    };
    let first = status();
    assert!(first.contains("coordinator: primary, term 1"), "{first}");

    // The interactive prompt, too, and it goes on with the new primary after a failover.
    let mut prompt = tcluster()
        .args(["client", topology.to_str().unwrap(), "--coordinator", &both])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = prompt.stdin.take().unwrap();
    let lines = {
        let out = prompt.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let expect = |text: &str| {
        wait_until(&format!("the prompt prints {text:?}"), || {
            lines
                .recv_timeout(std::time::Duration::from_millis(100))
                .ok()
                .filter(|l| l.contains(text))
        })
    };
    writeln!(input, "status").unwrap();
    expect("coordinator: primary, term 1");

    primary.signal(nix::sys::signal::Signal::SIGKILL);
    drop(primary);
    wait_until("the backup takes over", || {
        status().contains("backup: primary, term 2").then_some(())
    });
    // The first command finds the connection gone and looks for the primary; the next one is
    // answered by the new primary.
    writeln!(input, "status").unwrap();
    writeln!(input, "status").unwrap();
    expect("backup: primary, term 2");
    writeln!(input, "exit").unwrap();
    drop(input);
    let out = prompt.wait_with_output().unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("looking for the primary"), "{err}");
    assert!(
        err.contains(&format!("now talking to the primary at {backup_addr}")),
        "{err}"
    );
}

#[test]
fn a_backup_answering_status_says_it_is_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (topology, _primary, _, _backup, backup_addr) = two_masters(dir.path());
    let out = tcluster()
        .args([
            "client",
            topology.to_str().unwrap(),
            "--coordinator",
            &backup_addr,
            "status",
        ])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("backup: a backup, not serving"),
        "{}",
        stdout(&out)
    );
}

/// A cluster launched by tcluster on ports it picked (the topology names none), found by the
/// client through the state directory's run.json; and a chat tail that moves to the other chat
/// server when its own is killed.
#[test]
fn the_client_finds_a_running_cluster_and_a_chat_tail_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "set SYSTEM_NAME Found
node coordinator { type master }
node worker { type worker }
node chat { type chat; count 2 }
node bot { type bot; bot { posts 20/s } }
policy heartbeat { interval 100ms; timeout 800ms }
",
    );
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let file = topology.to_str().unwrap();
    let run = spawn(
        dir.path(),
        "run",
        &["run", file, "--headless", "--state-dir", state_arg],
    );
    run.wait_for_line("Found: ");
    wait_until("the cluster says where it listens", || {
        std::fs::read_to_string(state.join("run.json"))
            .ok()
            .filter(|t| t.contains("chat-2"))
    });
    let out = tcluster()
        .args(["client", file, "--state-dir", state_arg, "status"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("coordinator: primary, term 1"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    // Follow every channel; kill the chat server the tail reads from; the tail carries on.
    let mut tail = tcluster();
    tail.args([
        "client",
        file,
        "--state-dir",
        state_arg,
        "chat",
        "tail",
        "*",
    ]);
    let tail = spawn_command(dir.path(), "tail", tail);
    tail.wait_for_line("[");
    let pid = wait_until("chat-1's process", || node_pid(&topology, "chat-1"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the tail says it moved", || {
        tail.log_text().contains("moving to another").then_some(())
    });
    wait_until("the tail follows chat-2", || {
        tail.log_text().contains("following * on").then_some(())
    });
    // And it goes on printing what the bot posts.
    tail.wait_for_line("[");
    drop(run);
}

#[test]
fn an_unknown_cluster_is_a_usage_error_that_names_the_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node server-1 { type master; cluster east }\nnode server-2 { type master; cluster west }\n",
    );
    let out = tcluster()
        .args([
            "client",
            topology.to_str().unwrap(),
            "--cluster",
            "wset",
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no cluster is called `wset`") && stderr(&out).contains("east, west"),
        "{}",
        stderr(&out)
    );
}

/// `tcluster client … chat` with a broker in the topology and nothing running: it names the
/// broker it looked for and what to do, and fails.
#[test]
fn chat_through_a_broker_that_is_not_running_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology(
        dir.path(),
        "node chat { type chat }\nnode front { type broker }\n",
    );
    let out = tcluster()
        .args(["client", topology.to_str().unwrap(), "--state-dir"])
        .arg(dir.path().join("state"))
        .args(["chat", "history", "general"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no broker of the topology is running"),
        "{err}"
    );
    assert!(err.contains("--server HOST:PORT"), "{err}");
}
