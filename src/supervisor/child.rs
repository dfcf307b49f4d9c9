//! Starting one node as a child process: the built-in node (`tcluster node …`) or an outside
//! program (`command "python3 my_worker.py"`).
//!
//! **No orphans.** Every child asks the kernel to SIGKILL it when tcluster dies
//! (`PR_SET_PDEATHSIG`), checks right away that tcluster has not already died, and runs in a
//! process group of its own, so that a fault reaches the whole node (an outside program's own
//! children included) and the terminal's Ctrl-C reaches only tcluster, which then stops every
//! node in order. Built-in nodes also stop when their stdin — tcluster's control channel —
//! closes.
//!
//! **Outside programs** learn who they are and where their coordinator is from environment
//! variables and from placeholders in their command:
//!
//! | placeholder | environment variable | value |
//! | --- | --- | --- |
//! | `{name}` | `TCLUSTER_NAME` | the node's name |
//! | `{coordinator}` | `TCLUSTER_COORDINATOR` | `host:port` to connect to (through the link shaper) |
//! | `{host}`, `{port}` | `TCLUSTER_COORDINATOR_HOST`, `TCLUSTER_COORDINATOR_PORT` | its parts |
//! | | `TCLUSTER_CLUSTER` | its cluster (`cluster NAME`; `default`): the owner it names when lent |
//! | `{slots}` | `TCLUSTER_SLOTS` | the node's `resources { cpu }` |
//! | | `TCLUSTER_SECRET` | `CLUSTER_SECRET`, when set |
//! | | `TCLUSTER_HEARTBEAT_MS` | the heartbeat interval |
//!
//! A simple command is run directly (no shell in between, so killing the node kills the
//! program); one with shell syntax (`|`, `&&`, `>` …) is run by `sh -c`.

use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

/// What an outside program is told.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The node's name.
    pub name: &'a str,
    /// The coordinator address to connect to.
    pub coordinator: Option<&'a str>,
    /// Job slots.
    pub slots: u32,
    /// `CLUSTER_SECRET`.
    pub secret: Option<&'a str>,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
    /// Its cluster (`TCLUSTER_CLUSTER`): what a lent worker says its owner is.
    pub cluster: &'a str,
}

/// The command line an outside program is started with, placeholders filled in.
pub fn outside_command(template: &str, p: &Placement) -> Command {
    let coordinator = p.coordinator.unwrap_or_default();
    let (host, port) = coordinator.rsplit_once(':').unwrap_or((coordinator, ""));
    let fill = |text: &str| {
        text.replace("{name}", p.name)
            .replace("{coordinator}", coordinator)
            .replace("{host}", host)
            .replace("{port}", port)
            .replace("{slots}", &p.slots.to_string())
    };
    let bare = ["{name}", "{coordinator}", "{host}", "{port}", "{slots}"]
        .iter()
        .fold(template.to_string(), |t, p| t.replace(p, ""));
    let shell_syntax = bare.chars().any(|c| "|&;<>$`*?(){}\\".contains(c));
    let words = if shell_syntax {
        None
    } else {
        shlex::split(template)
    };
    let mut command = match words {
        Some(words) if !words.is_empty() => {
            let mut command = Command::new(fill(&words[0]));
            command.args(words[1..].iter().map(|w| fill(w)));
            command
        }
        _ => {
            let mut command = Command::new("sh");
            command.arg("-c").arg(fill(template));
            command
        }
    };
    command
        .env("TCLUSTER_NAME", p.name)
        .env("TCLUSTER_COORDINATOR", coordinator)
        .env("TCLUSTER_COORDINATOR_HOST", host)
        .env("TCLUSTER_COORDINATOR_PORT", port)
        .env("TCLUSTER_SLOTS", p.slots.to_string())
        .env("TCLUSTER_HEARTBEAT_MS", p.heartbeat_ms.to_string())
        .env("TCLUSTER_CLUSTER", p.cluster)
        // Python buffers stdout when it is a pipe; a student's prints should show up at once.
        .env("PYTHONUNBUFFERED", "1");
    if let Some(secret) = p.secret {
        command.env("TCLUSTER_SECRET", secret);
    }
    command
}

/// The command line of a built-in node.
pub fn builtin_command(
    program: &Path,
    topology: &Path,
    name: &str,
    listen: Option<&str>,
    coordinator: Option<&str>,
    chat: Option<&str>,
    state_dir: Option<&Path>,
) -> Command {
    let mut command = Command::new(program);
    command
        .arg("node")
        .arg(topology)
        .arg("--name")
        .arg(name)
        .arg("--control-stdin")
        .arg("--log-format")
        .arg("json");
    // A server keeps its journal or history there; without one, nothing is kept.
    if let (Some(_), Some(dir)) = (listen, state_dir) {
        command.arg("--state-dir").arg(dir);
    }
    command.args(builtin_args(listen, coordinator, chat));
    command
}

/// Where a built-in node listens and what it connects to, as `tcluster node` arguments.
pub fn builtin_args(
    listen: Option<&str>,
    coordinator: Option<&str>,
    chat: Option<&str>,
) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, value) in [
        ("--listen", listen),
        ("--coordinator", coordinator),
        ("--chat", chat),
    ] {
        if let Some(value) = value {
            args.push(flag.to_string());
            args.push(value.to_string());
        }
    }
    args
}

/// Starts `command` as a child that dies with tcluster, in its own process group, with its
/// stdin, stdout and stderr piped.
pub fn spawn(mut command: Command) -> std::io::Result<Child> {
    let parent = std::process::id() as i32;
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: the closure runs in the forked child before exec and only makes two system calls
    // (prctl and getppid), which are async-signal-safe; it allocates nothing and takes no lock.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            // tcluster may have died between fork and prctl: then nobody would kill this child.
            if nix::unistd::getppid().as_raw() != parent {
                return Err(std::io::Error::other(
                    "tcluster exited while starting this node",
                ));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Sends `signal` to a node's whole process group.
pub fn signal_group(pid: u32, signal: Signal) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), signal).is_ok()
}

/// "exit code 0", "killed by SIGKILL", "stopped".
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("killed by {}", s.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => "ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(command: &Command) -> Vec<String> {
        let std = command.as_std();
        std::iter::once(std.get_program())
            .chain(std.get_args())
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn simple_commands_run_directly_with_placeholders_filled() {
        let p = Placement {
            name: "mine",
            coordinator: Some("127.0.0.1:4000"),
            slots: 2,
            secret: None,
            heartbeat_ms: 250,
            cluster: "default",
        };
        let c = outside_command("python3 my_worker.py {coordinator} {name}", &p);
        assert_eq!(
            argv(&c),
            ["python3", "my_worker.py", "127.0.0.1:4000", "mine"]
        );
        let env: Vec<_> = c
            .as_std()
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(env.contains(&("TCLUSTER_COORDINATOR_PORT".into(), Some("4000".into()))));
        assert!(env.contains(&("TCLUSTER_NAME".into(), Some("mine".into()))));
    }

    #[test]
    fn shell_syntax_goes_through_sh() {
        let p = Placement {
            name: "m",
            coordinator: Some("h:1"),
            slots: 1,
            secret: None,
            heartbeat_ms: 1,
            cluster: "default",
        };
        let c = outside_command("cd lab && python3 w.py {port}", &p);
        assert_eq!(argv(&c), ["sh", "-c", "cd lab && python3 w.py 1"]);
        let quoted = outside_command("python3 \"my worker.py\" {name}", &p);
        assert_eq!(
            argv(&quoted),
            ["python3", "my worker.py", "m"],
            "quotes are not shell syntax"
        );
    }
}
