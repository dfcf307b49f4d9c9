//! Nodes on other machines (`host "ssh://user@lab-12"`), started with the system's `ssh`.
//!
//! ```text
//!  tcluster ── ssh user@lab-12 SCRIPT ──▶ sh: reads the peer key, the topology and the CA
//!     │  stdin: the peer key, the topology,   from stdin into a temporary directory, says
//!     │  the CA (base64), then control lines  `DIR …`, starts a keeper with `setsid` that runs
//!     │◀─ stdout: DIR, then the node's         `tcluster node … --report-pid` detached, then
//!     │   output (PID, READY, log lines)      streams the node's output and passes stdin on
//!     └─ ssh user@lab-12 kill -STOP -- -PID ──▶ the node's own process group (kill, pause,
//!                                               resume, the last word at the end)
//! ```
//!
//! The node's control channel is a FIFO its keeper holds open, fed by whichever session is
//! attached: `skew` and `speed` lines as for a local process. Losing the session does not stop
//! the node; a later session reattaches ([`attach_script`]) and streams from the first line it
//! had not read. A node with no session attached for [`DETACHED_GRACE`] stops itself. Neither
//! secret ever appears on a command line: the peer key travels on stdin. Signals go through a
//! second `ssh` each, queued per node so a pause and a resume arrive in order. The host needs a
//! POSIX `sh`, `base64`, `mkfifo`, `setsid` and GNU `tail` (Linux's coreutils and util-linux).

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::topology::Remote;

/// How long a signal over ssh may take before it is given up (and said).
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// `ssh` with the options every call shares: never a password prompt, a new host's key
/// accepted once, a dead link noticed within 15 s; and with `multiplex` (a directory for the
/// control sockets), one connection per host shared by the node's session and its signals, so a
/// kill or a pause arrives in milliseconds rather than a new connection's time.
pub fn ssh(remote: &Remote, multiplex: Option<&std::path::Path>) -> Command {
    let mut command = Command::new("ssh");
    command.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "LogLevel=ERROR",
    ]);
    // A control socket's path must fit a socket address (about 100 bytes): without room, each
    // call connects on its own.
    if let Some(dir) = multiplex
        && dir.as_os_str().len() + 45 < 100
        && std::fs::create_dir_all(dir).is_ok()
    {
        command
            .arg("-o")
            .arg("ControlMaster=auto")
            .arg("-o")
            .arg(format!("ControlPath={}/%C", dir.display()))
            .arg("-o")
            .arg("ControlPersist=no");
    }
    if let Some(port) = remote.port {
        command.arg("-p").arg(port.to_string());
    }
    if let Some(identity) = &remote.identity {
        command.arg("-i").arg(expand_home(identity));
    }
    let target = match &remote.user {
        Some(user) => format!("{user}@{}", remote.host),
        None => remote.host.clone(),
    };
    command.arg(target).arg("--");
    command
}

/// This machine's address as `remote` sees it: the local end of a route to it (nothing is sent).
/// Loopback for a host on this machine.
pub fn reach(remote: &Remote) -> Result<std::net::IpAddr, String> {
    let cannot = |e: std::io::Error| format!("cannot find a route to {}: {e}", remote.url());
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").map_err(cannot)?;
    socket
        .connect((remote.host.as_str(), remote.port.unwrap_or(22)))
        .map_err(cannot)?;
    Ok(socket.local_addr().map_err(cannot)?.ip())
}

/// `~/x` with the launcher's home.
fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_string(),
    }
}

/// Where a node runs on its host, for a later session to reattach to it.
#[derive(Debug, Default, Clone)]
pub struct Attachment {
    /// Its directory there (`DIR …`, the session's first line).
    pub dir: Option<String>,
    /// Lines of its output read so far (a reattaching session streams from the next).
    pub lines: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The host out of reach was said since the node was last attached.
    pub unreachable_said: bool,
}

impl Attachment {
    /// Lines of the node's output read so far.
    pub fn seen(&self) -> u64 {
        self.lines.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// How long a node on another host runs on with no session attached before it stops itself
/// (the launcher is gone for good, or the host stayed out of reach): the most a launcher that
/// died without a word can leave running.
pub const DETACHED_GRACE: Duration = Duration::from_secs(60);

/// The exit status of a session that came to reattach and found its node gone.
pub const NODE_GONE: i32 = 75;

/// The keeper, written into the node's directory and run in a session of its own (`setsid`),
/// so that losing the ssh session does not touch the node: it holds the node's control FIFO
/// open (the node never sees its end), starts the node with its output in `out`, stops it when
/// no session has been attached for the grace period, and writes its exit status.
fn keeper(grace: Duration) -> String {
    let grace = grace.as_secs().max(1);
    format!(
        r#"dir=$1; shift
exec 3<>"$dir/control"
"$@" <"$dir/control" >>"$dir/out" 2>&1 &
node=$!
echo "$node" > "$dir/pid.new" && mv "$dir/pid.new" "$dir/pid"
(
  last=$(date +%s)
  while [ ! -f "$dir/status" ]; do
    sleep 1
    if kill -0 "$(cat "$dir/session" 2>/dev/null)" 2>/dev/null; then
      last=$(date +%s)
    elif [ $(( $(date +%s) - last )) -ge {grace} ]; then
      kill -TERM -"$node" 2>/dev/null || kill -TERM "$node" 2>/dev/null
      n=0; while [ ! -f "$dir/status" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
      [ -f "$dir/status" ] || kill -KILL -"$node" 2>/dev/null || kill -KILL "$node" 2>/dev/null
      break
    fi
  done
) &
wait "$node"; echo $? > "$dir/status"
sleep 3; rm -rf "$dir"
"#
    )
}

/// A session's part, the same for the first and every later one: it is the one attached (for
/// the keeper's watchdog), streams the node's output from line `from` (1: the first), passes its
/// own stdin on to the node's control FIFO, and ends with the node's status when the node ends.
/// Its end alone (stdin closed, the connection lost) leaves the node running.
const SESSION: &str = r#"echo $$ > "$dir/session"
n=0; while [ ! -s "$dir/pid" ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done
node=$(cat "$dir/pid") || exit 74
exec 4>"$dir/control" 5<&0
( while IFS= read -r line; do printf '%s\n' "$line" >&4; done ) <&5 &
tail -s 0.1 -n "+$from" --pid="$node" -f "$dir/out"
kill $! 2>/dev/null
n=0; while [ ! -f "$dir/status" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done
exit "$(cat "$dir/status" 2>/dev/null || echo 0)"
"#;

/// The remote shell script that starts built-in node `name` of cluster `system` with these
/// arguments (each quoted for the remote shell). Its directory there is named after the system
/// (`/tmp/tcluster-LectureCluster.Xa3f9Q`), so whoever looks at that machine sees whose it is;
/// the script says it first (`DIR …`), for a later session to reattach to ([`attach_script`]).
///
/// A server keeps its journal or chat history where a restart finds it again: with `run` (this
/// run's id), under `${XDG_STATE_HOME:-~/.local/state}/tcluster/SYSTEM-RUN/` on that host; a
/// fresh run has a new id, so it never resumes another's state. Without, in the directory that
/// goes with the node.
pub fn node_script(
    remote: &Remote,
    system: &str,
    name: &str,
    args: &[String],
    run: Option<&str>,
) -> String {
    node_script_with(remote, system, name, args, run, DETACHED_GRACE)
}

/// [`node_script`] with the grace a detached node waits for a session.
fn node_script_with(
    remote: &Remote,
    system: &str,
    name: &str,
    args: &[String],
    run: Option<&str>,
    grace: Duration,
) -> String {
    let system: String = system
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let state = match run {
        Some(run) => {
            let run: String = run
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            format!(
                "state=\"${{XDG_STATE_HOME:-$HOME/.local/state}}/tcluster/{system}-{run}\"; \
                 mkdir -p \"$state\" || exit 71"
            )
        }
        None => "state=\"$dir/state\"".to_string(),
    };
    format!(
        "IFS= read -r TCLUSTER_PEER_KEY || exit 70; export TCLUSTER_PEER_KEY
IFS= read -r topology || exit 70
IFS= read -r ca || exit 70
IFS= read -r cert || exit 70
IFS= read -r key || exit 70
dir=$(mktemp -d \"${{TMPDIR:-/tmp}}/tcluster-{system}.XXXXXX\") || exit 71
{state}
printf '%s' \"$topology\" | base64 -d > \"$dir/topology.top\" || exit 72
if [ -n \"$ca\" ]; then printf '%s' \"$ca\" | base64 -d > \"$dir/ca.pem\" || exit 72
TCLUSTER_CA=\"$dir/ca.pem\"; export TCLUSTER_CA; fi
if [ -n \"$cert\" ]; then printf '%s' \"$cert\" | base64 -d > \"$dir/cert.pem\" || exit 72
(umask 077; printf '%s' \"$key\" | base64 -d > \"$dir/key.pem\") || exit 72
TCLUSTER_CERT=\"$dir/cert.pem\"; TCLUSTER_KEY=\"$dir/key.pem\"; export TCLUSTER_CERT TCLUSTER_KEY; fi
mkfifo \"$dir/control\" || exit 73
: > \"$dir/out\"
cat > \"$dir/keeper\" <<'TCLUSTER_KEEPER'
{keeper}TCLUSTER_KEEPER
echo \"DIR $dir\"
setsid sh \"$dir/keeper\" \"$dir\" {binary} node \"$dir/topology.top\" --name {name} --report-pid \
--control-stdin --log-format json --state-dir \"$state\" {args} </dev/null >/dev/null 2>&1 &
from=1
{SESSION}",
        keeper = keeper(grace),
        binary = quote(&remote.binary),
        name = quote(name),
        system = system,
        args = args.join(" "),
    )
}

/// The remote shell script of a session that comes back to a node still running in `dir`: it
/// says `ATTACHED`, then streams the node's output from the line after the `seen` it had
/// streamed, and goes on as the first session did. A node no longer there makes it exit
/// [`NODE_GONE`].
pub fn attach_script(dir: &str, seen: u64) -> String {
    format!(
        "dir={dir}
[ -s \"$dir/pid\" ] && kill -0 \"$(cat \"$dir/pid\")\" 2>/dev/null || exit {NODE_GONE}
echo ATTACHED
from={from}
{SESSION}",
        dir = quote(dir),
        from = seen + 1,
    )
}

fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| "''".to_string(), |q| q.into_owned())
}

/// What a node on another host is handed on its stdin first.
#[derive(Debug, Default)]
pub struct Preamble<'a> {
    /// The peer secret.
    pub peer_key: &'a str,
    /// The topology file's text.
    pub topology: &'a str,
    /// The cluster CA's certificate, when links are encrypted.
    pub ca: Option<Vec<u8>>,
    /// A server's certificate and key, when its port serves TLS.
    pub cert: Option<(Vec<u8>, Vec<u8>)>,
}

impl Preamble<'_> {
    /// One line each: the peer key, then the topology, the CA, the certificate and its key
    /// (base64; an empty line for what there is not).
    pub fn lines(&self) -> String {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let encode = |bytes: Option<&[u8]>| bytes.map(|b| engine.encode(b)).unwrap_or_default();
        format!(
            "{}\n{}\n{}\n{}\n{}\n",
            self.peer_key,
            engine.encode(self.topology.as_bytes()),
            encode(self.ca.as_deref()),
            encode(self.cert.as_ref().map(|(c, _)| c.as_slice())),
            encode(self.cert.as_ref().map(|(_, k)| k.as_slice())),
        )
    }
}

/// A node's signals, sent one after another over ssh to its remote process group.
#[derive(Debug, Clone)]
pub struct Signals(mpsc::UnboundedSender<(Signal, Option<tokio::sync::oneshot::Sender<bool>>)>);

impl Signals {
    /// A queue for the node whose process group on `remote` is `pgid`; what goes wrong is
    /// handed to `said` (one line).
    pub fn start(
        remote: Remote,
        pgid: u32,
        multiplex: Option<std::path::PathBuf>,
        said: impl Fn(String) + Send + 'static,
    ) -> Signals {
        let (tx, mut rx) =
            mpsc::unbounded_channel::<(Signal, Option<tokio::sync::oneshot::Sender<bool>>)>();
        tokio::spawn(async move {
            while let Some((signal, done)) = rx.recv().await {
                let sent = send(&remote, pgid, signal, multiplex.as_deref()).await;
                if let Err(e) = &sent {
                    said(format!(
                        "{} to {} did not arrive: {e}",
                        signal.as_str(),
                        remote.url()
                    ));
                }
                if let Some(done) = done {
                    let _ = done.send(sent.is_ok());
                }
            }
        });
        Signals(tx)
    }

    /// Queues `signal`.
    pub fn send(&self, signal: Signal) {
        let _ = self.0.send((signal, None));
    }

    /// Queues `signal` and waits until it was sent; false if it could not be (the host out of
    /// reach). A process group already gone counts as sent.
    pub async fn send_and_wait(&self, signal: Signal) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.0.send((signal, Some(tx))).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

/// `kill -SIG -- -PGID` on the remote host.
async fn send(
    remote: &Remote,
    pgid: u32,
    signal: Signal,
    multiplex: Option<&std::path::Path>,
) -> Result<(), String> {
    let number = signal as i32;
    let mut command = ssh(remote, multiplex);
    command
        .arg(format!("kill -{number} -- -{pgid}"))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(SIGNAL_TIMEOUT, command.output()).await {
        Err(_) => Err(format!("ssh gave no answer in {SIGNAL_TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("cannot run ssh: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        // ssh itself worked, and the group is gone already.
        Ok(Ok(out))
            if out.status.code() != Some(255)
                && String::from_utf8_lossy(&out.stderr).contains("No such process") =>
        {
            Ok(())
        }
        Ok(Ok(out)) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preamble_is_the_key_then_the_topology_on_one_line() {
        let plain = Preamble {
            peer_key: "k",
            topology: "foobar\n",
            ..Preamble::default()
        };
        assert_eq!(plain.lines(), "k\nZm9vYmFyCg==\n\n\n\n");
        let sealed = Preamble {
            peer_key: "k",
            ca: Some(b"ca".to_vec()),
            cert: Some((b"c".to_vec(), b"k".to_vec())),
            ..Preamble::default()
        };
        assert_eq!(sealed.lines(), "k\n\nY2E=\nYw==\naw==\n");
    }

    /// The scripts run here with `sh`, as ssh would run them there, around a stand-in node
    /// that says its process id and then a numbered line every 50 ms until it is stopped.
    #[test]
    fn a_detached_node_runs_on_when_its_session_is_lost_is_reattached_and_stops_after_the_grace() {
        use std::io::{BufRead, BufReader, Write};
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-node");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho \"PID $$\"\ni=0\nwhile :; do i=$((i+1)); echo \"line $i\"; sleep 0.05; done\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut remote = Remote::parse("ssh://tester@localhost").unwrap();
        remote.binary = fake.display().to_string();
        let script = node_script_with(&remote, "Detach", "w", &[], None, Duration::from_secs(2));
        let session = |script: &str| {
            use std::os::unix::process::CommandExt;
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let alive =
            |pid: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        // The first session: its directory, then the node's output from its first line.
        let mut first = session(&script);
        first
            .stdin
            .as_mut()
            .unwrap()
            .write_all(
                Preamble {
                    peer_key: "key",
                    ..Preamble::default()
                }
                .lines()
                .as_bytes(),
            )
            .unwrap();
        let mut out = BufReader::new(first.stdout.take().unwrap()).lines();
        let node_dir = out.next().unwrap().unwrap();
        let node_dir = node_dir
            .strip_prefix("DIR ")
            .expect("the directory first")
            .to_string();
        assert!(node_dir.contains("tcluster-Detach."), "{node_dir}");
        let pid: i32 = out.next().unwrap().unwrap()["PID ".len()..]
            .parse()
            .unwrap();
        assert_eq!(out.next().unwrap().unwrap(), "line 1");
        assert_eq!(out.next().unwrap().unwrap(), "line 2");
        // The session is lost (every process of it killed): the node runs on.
        let group = nix::unistd::Pid::from_raw(-(first.id() as i32));
        nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).unwrap();
        let _ = first.wait();
        std::thread::sleep(Duration::from_millis(300));
        assert!(alive(pid), "the node outlived its session");
        // A new session reattaches, from the line after the last one read: nothing is missed.
        let mut second = session(&attach_script(&node_dir, 3));
        let mut out = BufReader::new(second.stdout.take().unwrap()).lines();
        assert_eq!(out.next().unwrap().unwrap(), "ATTACHED");
        assert_eq!(out.next().unwrap().unwrap(), "line 3");
        assert_eq!(out.next().unwrap().unwrap(), "line 4");
        // Lost again, for good: past the grace the node stops itself, and its directory goes.
        let group = nix::unistd::Pid::from_raw(-(second.id() as i32));
        nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).unwrap();
        let _ = second.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while (alive(pid) || std::path::Path::new(&node_dir).exists())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!alive(pid), "the node stopped after the grace");
        assert!(
            !std::path::Path::new(&node_dir).exists(),
            "its directory is gone"
        );
        // A session that comes back now finds nothing, and says so.
        let status = session(&attach_script(&node_dir, 0)).wait().unwrap();
        assert_eq!(status.code(), Some(NODE_GONE));
    }

    #[test]
    fn the_script_quotes_what_it_passes_on() {
        let remote = Remote::parse("ssh://student@lab-12:2222").unwrap();
        let script = node_script(
            &remote,
            "Lab $(x)",
            "worker-1",
            &["--coordinator".into(), "a b".into()],
            None,
        );
        assert!(script.contains("/tcluster-Lab___x_.XXXXXX"), "{script}");
        assert!(script.contains("tcluster node \"$dir/topology.top\" --name worker-1"));
        assert!(script.contains("--coordinator 'a b'"));
        // The peer key is read from stdin, never written on the command line.
        assert!(script.contains("read -r TCLUSTER_PEER_KEY"));
    }
}
