//! The state directory of a cluster: its journals, chat histories and logs, whether a launch
//! starts a fresh run or resumes the last one, and `run.json`, which tells other commands
//! (`tcluster client FILE`) where a running cluster listens.
//!
//! ```text
//! STATE_DIR/
//!   run.json                     the run: when it began, tcluster's pid, each server's address,
//!                                and whether it ended (q, Ctrl-C, the end of a headless run)
//!   journal/ chat/ logs/         the run's state
//!   recordings/2026-11-26T10-42-07/  what the console read, for `tcluster replay` (one per
//!                                launch: a resumed run records anew beside the earlier one)
//!   previous/2026-11-26T10-42-07/  an earlier run, moved aside when a fresh one began
//! ```
//!
//! A run that ended is over: the next launch moves its state aside (never deletes it) and
//! starts a fresh cluster. A run that did not end — tcluster crashed, was killed, the machine
//! lost power — is resumed: the coordinators replay their journals and every accepted job
//! completes. `--fresh` and `--resume` choose either way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file that describes the run.
pub const RUN_FILE: &str = "run.json";
/// What a run keeps, and what a fresh run moves aside.
const STATE: [&str; 5] = ["journal", "chat", "logs", "recordings", RUN_FILE];

/// How a launch treats the state of an earlier run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// Resume a run that did not end; otherwise start fresh.
    #[default]
    Auto,
    /// Start fresh, whatever is there (the old state is moved aside).
    Fresh,
    /// Resume whatever is there (a fresh run if there is nothing).
    Resume,
}

/// One run, as `run.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When it began, local time, `2026-11-26 10:42`.
    pub began: String,
    /// When it began, seconds since the Unix epoch.
    pub began_unix: i64,
    /// tcluster's process id.
    pub pid: u32,
    /// Whether it ended (cleanly): the next launch starts fresh.
    pub ended: bool,
    /// Where each server listens (masters and chat servers), by name.
    #[serde(default)]
    pub servers: BTreeMap<String, String>,
    /// The master that was primary when the file was last written.
    #[serde(default)]
    pub primary: String,
    /// The run's id: the same for a run resumed, new for a fresh one (where servers on other
    /// hosts keep their state there).
    #[serde(default)]
    pub run_id: String,
}

/// What a launch decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A fresh run; the earlier run's state, if any, was moved here.
    Fresh {
        /// Where the earlier state went.
        moved_to: Option<PathBuf>,
    },
    /// The earlier run goes on.
    Resume {
        /// Its record, if it left one.
        earlier: Option<RunRecord>,
        /// Why its record could not be read, if it was there but damaged.
        unreadable: Option<String>,
    },
}

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    /// Another tcluster runs a cluster on it now.
    #[error(
        "another tcluster (pid {pid}) is running this cluster on {}; quit it first, or pass --state-dir",
        dir.display()
    )]
    InUse {
        pid: u32,
        /// The directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateDirError {
    let path = path.to_path_buf();
    move |source| StateDirError::Io { what, path, source }
}

/// Reads `run.json` of `dir`, if it is there and readable.
pub fn read_record(dir: &Path) -> Option<RunRecord> {
    record_in(dir).ok().flatten()
}

/// `run.json` of `dir`: none if it is not there, an error (saying what is wrong) if it cannot
/// be read as a record.
fn record_in(dir: &Path) -> Result<Option<RunRecord>, String> {
    let path = dir.join(RUN_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether process `pid` is alive (and is not this process).
fn alive(pid: u32) -> bool {
    pid != std::process::id()
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

/// The record of a run going on now in `dir`, if there is one: `run.json` whose tcluster is
/// still alive and has not ended.
pub fn running(dir: &Path) -> Option<RunRecord> {
    read_record(dir).filter(|r| !r.ended && alive(r.pid))
}

/// Decides between a fresh run and a resumed one, and moves an earlier run aside for a fresh
/// one. Refuses a directory another live tcluster is using.
pub fn prepare(dir: &Path, start: Start) -> Result<Decision, StateDirError> {
    std::fs::create_dir_all(dir).map_err(io("cannot create the state directory", dir))?;
    // A damaged record says nothing of how the run ended: as if there were none (so its state
    // is resumed rather than hidden), and the operator is told.
    let (record, unreadable) = match record_in(dir) {
        Ok(record) => (record, None),
        Err(why) => (None, Some(why)),
    };
    if let Some(r) = &record
        && !r.ended
        && alive(r.pid)
    {
        return Err(StateDirError::InUse {
            pid: r.pid,
            dir: dir.to_path_buf(),
        });
    }
    let has_state = ["journal", "chat"]
        .iter()
        .any(|d| std::fs::read_dir(dir.join(d)).is_ok_and(|mut entries| entries.next().is_some()));
    let resume = match start {
        Start::Resume => true,
        Start::Fresh => false,
        // A run that did not end is resumed; so is state left without a record (nothing says
        // it ended, and moving it aside would hide accepted jobs).
        Start::Auto => has_state && record.as_ref().is_none_or(|r| !r.ended),
    };
    if resume && has_state {
        return Ok(Decision::Resume {
            earlier: record,
            unreadable,
        });
    }
    let present: Vec<&str> = STATE
        .iter()
        .copied()
        .filter(|name| dir.join(name).exists())
        .collect();
    if present.is_empty() {
        return Ok(Decision::Fresh { moved_to: None });
    }
    let stamp = record
        .as_ref()
        .and_then(|r| jiff::Timestamp::from_second(r.began_unix).ok())
        .unwrap_or_else(jiff::Timestamp::now)
        .to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%dT%H-%M-%S")
        .to_string();
    let mut target = dir.join("previous").join(&stamp);
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = dir.join("previous").join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&target).map_err(io("cannot create", &target))?;
    for name in present {
        let from = dir.join(name);
        std::fs::rename(&from, target.join(name)).map_err(io("cannot move aside", &from))?;
    }
    Ok(Decision::Fresh {
        moved_to: Some(target),
    })
}

impl Decision {
    /// One line for the operator: what this launch did with the state directory.
    pub fn describe(&self, dir: &Path) -> String {
        match self {
            Decision::Fresh { moved_to: None } => {
                format!("a fresh run in {}", dir.display())
            }
            Decision::Fresh {
                moved_to: Some(moved),
            } => format!(
                "a fresh run: the last run (it ended) is kept in {}; --resume goes on with it instead",
                moved.display()
            ),
            Decision::Resume {
                earlier,
                unreadable,
            } => {
                let of = earlier
                    .as_ref()
                    .map(|r| format!(" of {}", r.began))
                    .unwrap_or_default();
                let why = match unreadable {
                    Some(why) => {
                        format!("its record is unreadable ({why}), so nothing says it ended")
                    }
                    None => "it did not end".to_string(),
                };
                format!(
                    "resuming the run{of} in {}: {why}; --fresh starts a new one",
                    dir.display()
                )
            }
        }
    }
}

impl RunRecord {
    /// A record for a run beginning now, in this process.
    pub fn begin() -> Self {
        let now = jiff::Zoned::now();
        RunRecord {
            began: now.strftime("%Y-%m-%d %H:%M").to_string(),
            began_unix: now.timestamp().as_second(),
            pid: std::process::id(),
            ended: false,
            servers: BTreeMap::new(),
            primary: String::new(),
            run_id: format!("{}", now.strftime("%Y%m%d-%H%M%S")),
        }
    }

    /// This record as a resumed run's: the earlier run's id carries on.
    pub fn resuming(mut self, earlier: Option<&RunRecord>) -> Self {
        if let Some(earlier) = earlier.filter(|e| !e.run_id.is_empty()) {
            self.run_id = earlier.run_id.clone();
        }
        self
    }

    /// The time of day it began (`10:42`).
    pub fn time_of_day(&self) -> &str {
        self.began.rsplit(' ').next().unwrap_or(&self.began)
    }

    /// Writes it to `dir/run.json` (through a temporary file, so a reader never sees half).
    pub fn write(&self, dir: &Path) -> Result<(), StateDirError> {
        let path = dir.join(RUN_FILE);
        let temporary = dir.join(format!("{RUN_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&temporary, text + "\n").map_err(io("cannot write", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(io("cannot write", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, file: &str) {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }

    fn record(ended: bool, pid: u32) -> RunRecord {
        RunRecord {
            ended,
            pid,
            ..RunRecord::begin()
        }
    }

    /// A pid that is surely not running: a child that has exited and was reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn an_empty_directory_starts_fresh_and_moves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            prepare(dir.path(), Start::Auto).unwrap(),
            Decision::Fresh { moved_to: None }
        );
    }

    #[test]
    fn a_run_that_ended_is_moved_aside_and_a_fresh_one_begins() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "journal/coordinator.journal");
        touch(dir.path(), "logs/coordinator.log");
        record(true, dead_pid()).write(dir.path()).unwrap();
        let Decision::Fresh {
            moved_to: Some(moved),
        } = prepare(dir.path(), Start::Auto).unwrap()
        else {
            panic!("a fresh run that moved the old state");
        };
        assert!(moved.join("journal/coordinator.journal").exists());
        assert!(moved.join("logs/coordinator.log").exists());
        assert!(moved.join(RUN_FILE).exists());
        assert!(!dir.path().join("journal").exists());
        assert!(moved.starts_with(dir.path().join("previous")));
    }

    #[test]
    fn a_run_that_did_not_end_is_resumed_unless_fresh_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "journal/coordinator.journal");
        let earlier = record(false, dead_pid());
        earlier.write(dir.path()).unwrap();
        assert_eq!(
            prepare(dir.path(), Start::Auto).unwrap(),
            Decision::Resume {
                earlier: Some(earlier.clone()),
                unreadable: None,
            }
        );
        // --resume resumes even a run that ended.
        record(true, dead_pid()).write(dir.path()).unwrap();
        assert!(matches!(
            prepare(dir.path(), Start::Resume).unwrap(),
            Decision::Resume { .. }
        ));
        assert!(matches!(
            prepare(dir.path(), Start::Fresh).unwrap(),
            Decision::Fresh { moved_to: Some(_) }
        ));
    }

    #[test]
    fn a_directory_in_use_by_a_live_tcluster_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        record(false, child.id()).write(dir.path()).unwrap();
        let err = prepare(dir.path(), Start::Auto).unwrap_err();
        let _ = child.kill();
        let _ = child.wait();
        assert!(err.to_string().contains("another tcluster"), "{err}");
    }

    #[test]
    fn journals_without_a_record_are_resumed() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "journal/coordinator.journal");
        assert_eq!(
            prepare(dir.path(), Start::Auto).unwrap(),
            Decision::Resume {
                earlier: None,
                unreadable: None,
            }
        );
    }

    #[test]
    fn a_damaged_record_is_said_and_the_state_resumed_not_hidden() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "journal/coordinator.journal");
        std::fs::write(dir.path().join(RUN_FILE), "{ not json").unwrap();
        let decision = prepare(dir.path(), Start::Auto).unwrap();
        let Decision::Resume {
            unreadable: Some(why),
            ..
        } = &decision
        else {
            panic!("{decision:?}");
        };
        assert!(why.contains("run.json"), "{why}");
        assert!(
            decision
                .describe(dir.path())
                .contains("its record is unreadable"),
            "{}",
            decision.describe(dir.path())
        );
    }
}
