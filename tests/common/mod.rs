//! Shared helpers for the integration tests: real `tcluster` processes on ports the OS picks,
//! killed when the test ends (also when it fails), and waits with deadlines instead of sleeps.

#![allow(dead_code)]

pub mod lecture;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous deadlines: a busy 2-core machine may be slow, and a deadline only costs time when
/// the test is failing anyway.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The `tcluster` binary.
pub fn tcluster() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tcluster"));
    command.env("NO_COLOR", "1");
    command
}

/// A child process, killed and reaped on drop.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a stdout line starting with `prefix` and returns it.
    pub fn wait_for_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "{} printed no line starting with {prefix:?} in time; its log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("signal the process");
    }

    /// How it ended, once it has (reaped then); `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .try_wait()
            .expect("ask whether the process ended")
    }

    /// Stops it the usual way (SIGTERM) and waits until it has exited, successfully.
    pub fn terminate(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = wait_until(&format!("{} stops", self.name), || self.exited());
        assert!(status.success(), "{status:?}: {}", self.log_text());
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A stopped process cannot die of SIGKILL until it is continued on some kernels' views
        // of the zombie; continue it first, then kill and reap.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::SIGCONT,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tcluster ARGS`, logging stderr into `dir`.
pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> Proc {
    let mut command = tcluster();
    command.args(args);
    spawn_command(dir, name, command)
}

/// Starts node `name` of `topology` (`tcluster node`) on a free port, with `extra` arguments,
/// and waits until it listens; returns it and its address.
pub fn listening_node(dir: &Path, topology: &Path, name: &str, extra: &[&str]) -> (Proc, String) {
    let mut args = vec![
        "node",
        topology.to_str().expect("a UTF-8 path"),
        "--name",
        name,
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let proc = spawn(dir, name, &args);
    let ready = proc.wait_for_line(&format!("READY {name} "));
    let addr = ready.rsplit(' ').next().expect("an address").to_string();
    (proc, addr)
}

/// Starts any program, logging stderr into `dir` and reading its stdout lines.
pub fn spawn_command(dir: &Path, name: &str, mut command: Command) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("create the log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc {
        name: name.to_string(),
        child,
        lines,
        log,
    }
}

/// A coordinator on a free port; returns it and its address.
pub fn coordinator(dir: &Path, topology: &Path, extra: &[&str]) -> (Proc, String) {
    let mut args = vec![
        "node",
        topology.to_str().unwrap(),
        "--name",
        "coordinator",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let proc = spawn(dir, "coordinator", &args);
    let line = proc.wait_for_line("READY coordinator ");
    let addr = line.rsplit(' ').next().unwrap().to_string();
    (proc, addr)
}

/// A worker connected to `addr`, once it has registered.
pub fn worker(dir: &Path, topology: &Path, name: &str, addr: &str) -> Proc {
    let proc = start_worker(dir, name, topology, name, addr);
    proc.wait_for_line(&format!("READY {name} registered"));
    proc
}

/// Worker `name` started towards `addr` (as process `label`), without waiting for anything.
pub fn start_worker(dir: &Path, label: &str, topology: &Path, name: &str, addr: &str) -> Proc {
    spawn(
        dir,
        label,
        &[
            "node",
            topology.to_str().unwrap(),
            "--name",
            name,
            "--coordinator",
            addr,
        ],
    )
}

/// `topologies/demo.top` as shipped, without its fixed ports (tcluster picks free ones), so
/// that a demo running on this machine meanwhile, or another test, does not get in the way.
pub fn demo_on_free_ports() -> String {
    shipped_on_free_ports("demo")
}

/// `topologies/NAME.top` with its fixed ports taken out (a line `port N`, or `; port N` inside
/// a line): the OS picks them, so tests never collide with a running demo or each other.
pub fn shipped_on_free_ports(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("topologies/{name}.top"));
    let text = std::fs::read_to_string(&path).expect("a shipped topology");
    text.lines()
        .filter(|line| !line.trim_start().starts_with("port "))
        .map(|line| {
            let mut line = line.to_string();
            while let Some(at) = line.find("; port ") {
                let end = line[at + 7..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(line.len(), |e| at + 7 + e);
                line.replace_range(at..end, "");
            }
            format!("{line}\n")
        })
        .collect()
}

/// Writes a topology file into `dir`.
pub fn topology(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("test.top");
    std::fs::write(&path, text).unwrap();
    path
}

/// The process id of node `name` of the cluster of `topology` (a `tcluster node` child).
pub fn node_pid(topology: &Path, name: &str) -> Option<i32> {
    let topology = topology.to_str()?;
    std::fs::read_dir("/proc").ok()?.find_map(|entry| {
        let pid = entry.ok()?.file_name().to_str()?.parse::<i32>().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let has = |word: &str| args.contains(&word.as_bytes());
        (has("node") && has(topology) && has(name)).then_some(pid)
    })
}

/// `tcluster replay ARGS…`: (exit code, stdout, stderr).
pub fn replay(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tcluster().arg("replay").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tcluster replay ARGS…` that must succeed: its stdout.
pub fn replay_ok(args: &[&str]) -> String {
    let (code, out, err) = replay(args);
    assert_eq!(code, Some(0), "tcluster replay {}: {err}", args.join(" "));
    out
}

/// Processes alive (not zombies) whose command line, its words joined by spaces, satisfies
/// `wanted`.
pub fn live_processes(wanted: impl Fn(&str) -> bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            });
            alive && wanted(&cmdline)
        })
        .collect()
}

/// Whether python3 can run here (the tests of students' Python programs are skipped, and say
/// so, where it cannot).
pub fn python3_installed() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Waits until `check` returns `Some`, or panics with `what` after the deadline.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line-oriented TCP connection for speaking a protocol by hand, as `nc` would.
pub struct Line {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Line {
    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Line {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Line {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.writer.write_all(b"\n").unwrap();
    }

    /// The socket to write to, for a test that writes in its own way (and may find it closed).
    pub fn writer_mut(&mut self) -> &mut TcpStream {
        &mut self.writer
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// The next line, or `None` if the connection closed.
    pub fn recv(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end().to_string()),
            Err(e) => panic!("no line within {DEADLINE:?}: {e}"),
        }
    }

    /// The next line that starts with `prefix`, skipping others.
    pub fn recv_starting(&mut self, prefix: &str) -> String {
        loop {
            let line = self
                .recv()
                .unwrap_or_else(|| panic!("connection closed while waiting for {prefix:?}"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The next JSON message whose `type` is `kind`, skipping others.
    pub fn recv_type(&mut self, kind: &str) -> serde_json::Value {
        loop {
            let line = self
                .recv()
                .unwrap_or_else(|| panic!("connection closed while waiting for {kind}"));
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if value["type"] == kind {
                return value;
            }
        }
    }
}

/// Runs `tcluster run --headless` on a topology written into `dir`, with a scenario and a state
/// directory under `dir`; returns what it printed and its summary. Fails the test if the run fails.
pub fn headless(dir: &Path, text: &str, scenario: &str) -> (String, serde_json::Value) {
    headless_with(dir, text, scenario, &[])
}

/// A headless run of `text`'s scenario that may fail: its exit status, what it printed (out,
/// err), and its summary (`null` if it wrote none).
pub fn headless_run(
    dir: &Path,
    text: &str,
    scenario: &str,
) -> (Option<i32>, String, String, serde_json::Value) {
    headless_run_with(dir, text, scenario, &[])
}

fn headless_run_with(
    dir: &Path,
    text: &str,
    scenario: &str,
    extra: &[&str],
) -> (Option<i32>, String, String, serde_json::Value) {
    let topology = topology(dir, text);
    let summary = dir.join("summary.json");
    let out = tcluster()
        .args([
            "run",
            topology.to_str().unwrap(),
            "--headless",
            "--scenario",
        ])
        .arg(scenario)
        .arg("--summary-json")
        .arg(&summary)
        .args(extra)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("tcluster runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = std::fs::read_to_string(&summary)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code(), stdout, stderr, report)
}

/// [`headless`] with more arguments (`--resume`, `--fresh`).
pub fn headless_with(
    dir: &Path,
    text: &str,
    scenario: &str,
    extra: &[&str],
) -> (String, serde_json::Value) {
    let (code, stdout, stderr, report) = headless_run_with(dir, text, scenario, extra);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(report.is_object(), "a summary: {stdout}");
    // Every run a test makes, chaos included, keeps the cluster's promises: the live checks
    // raise no alarm (warnings, such as a job run twice, are allowed).
    let alarms: Vec<&serde_json::Value> = report["alarms"]
        .as_array()
        .expect("alarms in the summary")
        .iter()
        .filter(|a| a["warning"] == false)
        .collect();
    assert!(alarms.is_empty(), "false alarms: {alarms:?}\n{stdout}");
    (stdout, report)
}

/// Connection `conn` of coordinator `c` proves it is `name` in `role` with `key` (the peer
/// secret, or the cluster secret), as a legitimate peer does: `hello`, then `auth` with a correct
/// proof over the challenge. Returns what the coordinator answered the `auth`.
pub fn prove_on(
    c: &mut tcluster::role::coordinator::Coordinator,
    conn: u64,
    name: &str,
    role: tcluster::protocol::message::PeerRole,
    key: &str,
) -> Vec<tcluster::role::coordinator::Output> {
    use tcluster::protocol::Dialect;
    use tcluster::protocol::message::{Envelope, Message};
    use tcluster::role::coordinator::{Input, Output};
    let env = |message| Envelope {
        from: name.into(),
        clock: 0,
        term: None,
        message,
    };
    let hello = Message::Hello { role, nonce: None };
    let out = c.step(0, Input::Received(conn, Dialect::Native, env(hello)));
    let nonce = out
        .iter()
        .find_map(|o| match o {
            Output::Send(_, e) => match &e.message {
                Message::Challenge { nonce, .. } => Some(nonce.clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("a challenge");
    let proof = tcluster::protocol::auth::proof(key, tcluster::protocol::auth::PEER, &nonce, name);
    c.step(
        0,
        Input::Received(conn, Dialect::Native, env(Message::Auth { proof })),
    )
}
