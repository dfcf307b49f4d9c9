//! Nodes on other machines (`host "ssh://user@lab-12"`), started with the system's `ssh`.
//!
//! ```text
//!  tcluster ── ssh user@lab-12 sh -c SCRIPT ──▶ sh: reads the peer key, the topology and the
//!     │  stdin: the peer key, the topology,         CA from stdin, writes them to a temporary
//!     │  the CA (base64), then control lines        directory, runs `tcluster node … --report-pid`, and
//!     │◀─ stdout/stderr: PID, READY, log lines      removes the directory when it ends
//!     └─ ssh user@lab-12 kill -STOP -- -PID ──▶ the node's own process group (kill, pause,
//!                                               resume, the last word at the end)
//! ```
//!
//! The node's stdin is its control channel, as for a local process: `skew` and `speed` lines,
//! and its end (the ssh session closing) stops the node. Neither secret ever appears on a
//! command line: the peer key travels on stdin. Signals go through a second `ssh` each, queued
//! per node so a pause and a resume arrive in order.

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

/// The remote shell script that starts built-in node `name` of cluster `system` with these
/// arguments (each quoted for the remote shell). Its directory there is named after the system
/// (`/tmp/tcluster-LectureCluster.Xa3f9Q`), so whoever looks at that machine sees whose it is.
pub fn node_script(remote: &Remote, system: &str, name: &str, args: &[String]) -> String {
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
    let quote = |s: &str| shlex::try_quote(s).map_or_else(|_| "''".to_string(), |q| q.into_owned());
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    format!(
        "IFS= read -r TCLUSTER_PEER_KEY || exit 70; export TCLUSTER_PEER_KEY; \
         IFS= read -r topology || exit 70; \
         IFS= read -r ca || exit 70; \
         dir=$(mktemp -d \"${{TMPDIR:-/tmp}}/tcluster-{system}.XXXXXX\") || exit 71; \
         printf '%s' \"$topology\" | base64 -d > \"$dir/topology.top\" || exit 72; \
         if [ -n \"$ca\" ]; then printf '%s' \"$ca\" | base64 -d > \"$dir/ca.pem\" || exit 72; \
         TCLUSTER_CA=\"$dir/ca.pem\"; export TCLUSTER_CA; fi; \
         {binary} node \"$dir/topology.top\" --name {name} --report-pid --control-stdin \
         --log-format json --state-dir \"$dir/state\" {args}; status=$?; \
         rm -rf \"$dir\"; exit $status",
        binary = quote(&remote.binary),
        name = quote(name),
        system = system,
        args = args.join(" "),
    )
}

/// What is written on the node's stdin first, one line each: the peer key, the topology
/// (base64), and the cluster CA's certificate (base64; an empty line when no link is
/// encrypted).
pub fn preamble(peer_key: &str, topology: &str, ca: Option<&[u8]>) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let topology = engine.encode(topology.as_bytes());
    let ca = ca.map(|pem| engine.encode(pem)).unwrap_or_default();
    format!("{peer_key}\n{topology}\n{ca}\n")
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
        assert_eq!(preamble("k", "foobar\n", None), "k\nZm9vYmFyCg==\n\n");
        assert_eq!(preamble("k", "", Some(b"ca")), "k\n\nY2E=\n");
    }

    #[test]
    fn the_script_quotes_what_it_passes_on() {
        let remote = Remote::parse("ssh://student@lab-12:2222").unwrap();
        let script = node_script(
            &remote,
            "Lab $(x)",
            "worker-1",
            &["--coordinator".into(), "a b".into()],
        );
        assert!(script.contains("/tcluster-Lab___x_.XXXXXX"), "{script}");
        assert!(script.contains("tcluster node \"$dir/topology.top\" --name worker-1"));
        assert!(script.contains("--coordinator 'a b'"));
        // The peer key is read from stdin, never written on the command line.
        assert!(script.contains("read -r TCLUSTER_PEER_KEY"));
    }
}
