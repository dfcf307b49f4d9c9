//! Nodes on another machine, reached with real OpenSSH: a throwaway `sshd` on a loopback port
//! (its own host key, a user key made for the test, this user's login), and a topology whose
//! workers are on `ssh://USER@127.0.0.1:PORT`. They are started over ssh, take jobs, are killed,
//! paused and resumed through their remote process group, restarted, and nothing is left running
//! when the run ends; as root, the same across a veth pair into a network namespace of the
//! test's own, another network stack. `sshd` comes from the `openssh-server` package (`.ci/run`
//! installs it).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// An sshd of the test's own, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sshd_binary() -> PathBuf {
    ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("sshd is not installed: install the openssh-server package (.ci/run does)")
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
}

/// A port the OS says is free now (sshd binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts sshd in `dir` for this user on 127.0.0.1, and writes an `ssh` on `dir/bin` that uses
/// the test's key and known-hosts file (so the user's own ~/.ssh is never touched).
fn start_sshd(dir: &Path) -> Sshd {
    start_sshd_at(dir, "127.0.0.1", None)
}

/// [`start_sshd`] listening on `ip`, inside network namespace `netns` if given (port 22 there).
fn start_sshd_at(dir: &Path, ip: &str, netns: Option<&str>) -> Sshd {
    keygen(&dir.join("host_key"));
    keygen(&dir.join("user_key"));
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    // Privilege separation needs its directory (as root; an unprivileged sshd does without).
    let _ = std::fs::create_dir_all("/run/sshd");
    let deadline = Instant::now() + DEADLINE;
    loop {
        let port = if netns.is_some() { 22 } else { free_port() };
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress {ip}\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\n\
                 SetEnv XDG_STATE_HOME={d}/remote-state\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(sshd_binary());
                c
            }
            None => Command::new(sshd_binary()),
        };
        let child = command
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = Sshd { child, port };
        // Up when it accepts; gone when the port was taken meanwhile (then another port).
        let up = loop {
            if std::net::TcpStream::connect((ip, port)).is_ok() {
                break true;
            }
            if sshd.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if up {
            let bin = dir.join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let ssh_config = dir.join("ssh_config");
            std::fs::write(
                &ssh_config,
                format!(
                    "Host *\n  UserKnownHostsFile {d}/known_hosts\n  IdentitiesOnly yes\n",
                    d = dir.display()
                ),
            )
            .unwrap();
            // The real ssh, by its full path (the wrapper is first on PATH).
            let real = ["/usr/bin/ssh", "/usr/local/bin/ssh", "/bin/ssh"]
                .into_iter()
                .find(|p| Path::new(p).exists())
                .expect("ssh is installed");
            let wrapper = bin.join("ssh");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec {real} -F {} \"$@\"\n",
                    ssh_config.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
            return sshd;
        }
        drop(sshd);
        assert!(
            Instant::now() < deadline,
            "sshd did not start: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A node's `host`, `identity` and `remote_binary`: this test's sshd on loopback, as its user.
fn on_host(dir: &Path, sshd: &Sshd) -> String {
    format!(
        "host \"ssh://{}@127.0.0.1:{}\"; identity \"{}\"; remote_binary \"{}\"",
        user(),
        sshd.port,
        dir.join("user_key").display(),
        env!("CARGO_BIN_EXE_tcluster")
    )
}

/// `tcluster run TOPOLOGY --headless ARGS…` for `text` in `dir`, with the test's `ssh` first on
/// PATH (its key and known hosts) and the state in `dir/state`.
fn headless_over_ssh(dir: &Path, text: &str, args: &[&str]) -> Command {
    let topology = topology(dir, text);
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = tcluster();
    command
        .args(["run", topology.to_str().unwrap(), "--headless"])
        .args(args)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env("PATH", path);
    command
}

/// Node processes of cluster `system` started over ssh that are still running (their directory
/// there is named after the system).
fn remote_nodes_left(system: &str) -> usize {
    let dir = format!("/tcluster-{system}.");
    live_processes(|cmdline| cmdline.contains("--report-pid") && cmdline.contains(&dir)).len()
}

#[test]
fn workers_on_another_host_run_jobs_take_faults_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let sshd = start_sshd(dir.path());
    let text = format!(
        "set SYSTEM_NAME SshLab
node coordinator {{ type master }}
node worker {{ type worker; count 2; resources {{ cpu 2 }}; {host} }}
node local {{ type worker }}
policy heartbeat {{ interval 100ms; suspect_after 400ms; timeout 800ms }}
scenario faults {{
    at 0.5s submit \"sleep 1s\" count 8
    at 1s   kill worker-1
    at 1.5s pause worker-2
    at 4s   resume worker-2
    at 4.5s restart worker-1
    at 6s   say \"done\"
}}
",
        host = on_host(dir.path(), &sshd),
    );
    let out = headless_over_ssh(dir.path(), &text, &["--scenario", "faults"])
        .output()
        .unwrap();
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the remote workers and ssh said, for a failure's message.
    for log in ["worker-1", "worker-2"] {
        let path = dir.path().join(format!("state/logs/{log}.log"));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        stdout.push_str(&format!("\n--- {log}.log\n{text}"));
    }
    for expected in [
        "worker-1 joined",
        "worker-2 joined",
        "DETECTED #1 (kill worker-1)",
        "worker-2 is dead (no heartbeat",
        "OUTCOME #3 (resume worker-2): worker-2 rejoined",
        "OUTCOME #4 (restart worker-1): up again",
        "jobs: 8 submitted, 8 completed, 0 failed, 0 lost",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    // The kill reached the remote process group: the worker died of SIGKILL there.
    assert!(
        stdout.contains("worker-1 exited: exit code 137"),
        "{stdout}"
    );
    // Nothing is left running on the "other host".
    wait_until("every node started over ssh is gone", || {
        (remote_nodes_left("SshLab") == 0).then_some(())
    });
}

/// Servers run on other hosts too: the primary on the "other host" takes jobs from local workers
/// over shaped, encrypted links (its certificate went there over ssh), keeps its journal there,
/// and when it is killed its local backup takes over with nothing lost.
#[test]
fn a_primary_on_another_host_serves_and_fails_over_to_a_local_backup() {
    let dir = tempfile::tempdir().unwrap();
    let sshd = start_sshd(dir.path());
    let text = format!(
        "set SYSTEM_NAME SshServers
set TLS on
node coordinator {{ type master; role primary; {host} }}
node backup {{ type master; role backup }}
node worker {{ type worker; count 2; resources {{ cpu 2 }} }}
policy heartbeat {{ interval 100ms; suspect_after 400ms; timeout 800ms }}
scenario failover {{
    at 0.5s submit \"sleep 1s\" count 8
    at 0.5s expect within 2s running == 4 \"the remote primary hands out jobs\"
    at 1.5s kill coordinator
    at 1.5s expect within 5s primary == backup \"the local backup took over\"
    at 2s   expect within 15s completed == submitted and lost == 0 \"nothing lost\"
}}
",
        host = on_host(dir.path(), &sshd),
    );
    let out = headless_over_ssh(dir.path(), &text, &["--scenario", "failover"])
        .output()
        .unwrap();
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = dir.path().join("state/logs/coordinator.log");
    stdout.push_str(&format!(
        "\n--- coordinator.log\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    ));
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "coordinator listening on 127.0.0.1:",
        "✓ as expected: the remote primary hands out jobs",
        "✓ as expected: the local backup took over",
        "jobs: 8 submitted, 8 completed, 0 failed, 0 lost",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
    // The remote primary kept its journal on its host, under this run's directory there.
    let kept = std::fs::read_dir(dir.path().join("remote-state/tcluster"))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("journal/coordinator.journal").is_file())
        })
        .unwrap_or(false);
    assert!(kept, "the remote primary's journal is on its host");
    wait_until("every node started over ssh is gone", || {
        (remote_nodes_left("SshServers") == 0).then_some(())
    });
}

#[test]
fn a_host_that_cannot_be_reached_fails_the_launch_with_what_ssh_said_and_stops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: ssh is refused at once.
    let port = free_port();
    let text = format!(
        "set SYSTEM_NAME SshNowhere
node coordinator {{ type master }}
node local {{ type worker }}
node far {{ type worker; host \"ssh://nobody@127.0.0.1:{port}\" }}
"
    );
    let out = headless_over_ssh(dir.path(), &text, &["--for", "5s"])
        .output()
        .unwrap();
    let topology = dir.path().join("test.top");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot start far: cannot start it on ssh://nobody@127.0.0.1:{port}: ssh ended"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    // What had started is stopped: no node of this topology is left.
    wait_until("every node of the failed launch is gone", || {
        node_pid(&topology, "coordinator")
            .or_else(|| node_pid(&topology, "local"))
            .is_none()
            .then_some(())
    });
}

/// A network namespace with one end of a veth pair in it: another host's network stack, as far
/// as the cluster can tell. Removed on drop.
struct Netns {
    name: String,
    veth: String,
    /// This side's address, and the other host's.
    here: String,
    there: String,
}

impl Netns {
    fn create() -> Netns {
        let id = std::process::id() % 50_000;
        let (name, veth, peer) = (format!("tcl{id}"), format!("tcl{id}a"), format!("tcl{id}b"));
        // A /24 of its own in 10.200.0.0/13, from the process id.
        let net = format!("10.{}.{}", 200 + (id / 250) % 8, id % 250);
        let netns = Netns {
            name: name.clone(),
            veth: veth.clone(),
            here: format!("{net}.1"),
            there: format!("{net}.2"),
        };
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip runs");
            assert!(
                out.status.success(),
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["netns", "add", &name]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &name]);
        ip(&["addr", "add", &format!("{}/24", netns.here), "dev", &veth]);
        ip(&["link", "set", &veth, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{}/24", netns.there),
            "dev",
            &peer,
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &peer, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
    }
}

/// As root only (network namespaces need it): the workers run on another network stack, behind
/// a veth pair, reached by ssh at the other end's address; the coordinator stays here.
#[test]
fn workers_on_another_network_stack_reach_the_coordinator_and_take_faults() {
    if user() != "root" {
        eprintln!("not root: network namespaces need root; this test checks nothing here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let netns = Netns::create();
    let _sshd = start_sshd_at(dir.path(), &netns.there, Some(&netns.name));
    let text = format!(
        "set SYSTEM_NAME SshNetns
node coordinator {{ type master }}
node worker {{ type worker; count 2; resources {{ cpu 2 }}; host \"ssh://root@{there}\"; identity \"{key}\"; remote_binary \"{binary}\" }}
policy heartbeat {{ interval 100ms; suspect_after 400ms; timeout 800ms }}
scenario faults {{
    at 0.5s submit \"sleep 500ms\" count 8
    at 1s   pause worker-2
    at 3s   resume worker-2
    at 4s   say \"done\"
}}
",
        there = netns.there,
        key = dir.path().join("user_key").display(),
        binary = env!("CARGO_BIN_EXE_tcluster"),
    );
    let out = headless_over_ssh(dir.path(), &text, &["--scenario", "faults"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let worker_log =
        std::fs::read_to_string(dir.path().join("state/logs/worker-1.log")).unwrap_or_default();
    // The workers reached the coordinator's link at this side's address, over the veth pair.
    assert!(
        worker_log.contains(&format!("connected coordinator={}:", netns.here)),
        "{worker_log}"
    );
    for expected in [
        "worker-2 is dead (no heartbeat",
        "OUTCOME #2 (resume worker-2): worker-2 rejoined",
        "jobs: 8 submitted, 8 completed, 0 failed, 0 lost",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}\n{worker_log}"
        );
    }
    wait_until("every node started over ssh is gone", || {
        (remote_nodes_left("SshNetns") == 0).then_some(())
    });
}

/// Losing the ssh session is not losing the node: the timeline says the host is out of reach,
/// the node runs on there (its heartbeats never stop), and tcluster reattaches to it.
#[test]
fn a_lost_ssh_session_says_host_unreachable_and_tcluster_reconnects() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let sshd = start_sshd(dir.path());
    let text = format!(
        "set SYSTEM_NAME SshLost
node coordinator {{ type master }}
node worker {{ type worker; {host} }}
policy heartbeat {{ interval 100ms; suspect_after 400ms; timeout 800ms }}
",
        host = on_host(dir.path(), &sshd),
    );
    let mut run = headless_over_ssh(dir.path(), &text, &["--for", "12s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(run.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let mut until = |text: &str, seen: &mut String| {
        for line in lines.by_ref().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(text) {
                return true;
            }
        }
        false
    };
    assert!(until("worker joined", &mut seen), "{seen}");
    // The connection breaks on the host's side: the sshd processes serving it die, so the
    // worker's ssh sees its connection closed (as when a host goes away) and exits 255.
    let children = |parent: u32| -> Vec<u32> {
        live_processes(|_| true)
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit(')')
                        .next()
                        .and_then(|rest| rest.split_whitespace().nth(1))
                        .and_then(|ppid| ppid.parse::<u32>().ok())
                        == Some(parent)
                })
            })
            .collect()
    };
    let sessions = children(sshd.child.id());
    assert!(!sessions.is_empty(), "sshd serves the worker's session");
    for pid in sessions {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        until("host unreachable: the ssh session to ssh://", &mut seen),
        "{seen}"
    );
    assert!(seen.contains("the node runs on there"), "{seen}");
    // A new session finds the node where it ran on: it never left the cluster.
    assert!(until("the node ran on there", &mut seen), "{seen}");
    assert!(!seen.contains("worker is dead"), "{seen}");
    let status = run.wait().unwrap();
    assert!(status.success(), "{seen}");
    wait_until("every node started over ssh is gone", || {
        (remote_nodes_left("SshLost") == 0).then_some(())
    });
}
