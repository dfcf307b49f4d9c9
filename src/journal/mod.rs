//! What servers keep on disk: the coordinator's journal (every durable cluster event, before
//! anyone is told) and, in `chat`, a chat server's history (an embedded redb database, on the
//! plumbing in `store`).
//!
//! The coordinator's state is the result of applying its events in order
//! ([`crate::role::coordinator::ClusterState::apply`]), so writing those events down is enough to
//! rebuild it: a coordinator that starts on the same STATE_DIR replays its journal and carries on
//! — every job it had accepted is still there, queued or waiting for its worker to come back.
//! The driver appends each step's events in one write and only then sends that step's
//! replies: a client that was told `accepted` can rely on it.
//!
//! The journal is a file of lines, one event each (`STATE_DIR/journal/<node>.journal`, format
//! in `lines`): appending a step's events is one `write`, and making them durable one
//! `fdatasync` — nothing else is written per commit, so a durable commit costs about what the
//! disk's own sync costs. The file is kept a megabyte longer than its lines, in zeros written
//! ahead, so that a commit overwrites blocks the file already has and its sync need not record a
//! new length; a node that stops cuts the zeros off, and a reader takes them for the end (and
//! zeros inside a line for where a crash stopped the last write from landing whole). A line a crash cut short is dropped when the file is opened again (it
//! was never acknowledged); a damaged line with good ones after it is an error naming the line.
//! A compaction writes the snapshot and the events after it to a new file and renames it over
//! the old one: a crash leaves one or the other, never half of each. Only one process may have
//! a journal open (the file is locked).

mod chat;
mod import;
mod lines;
mod store;
mod writer;

pub use chat::{ChatHistory, HistoryChange, Staged, chat_history_path};
pub use store::StorageError;
pub use writer::{Entry, JournalWriter, Linger, add_entries, entries_of, write_entries};

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::cluster::event::ClusterEvent;

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be opened, read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An entry could not be read back.
    #[error(
        "journal {}: line {line} (entry {seq}) is damaged: {message}; the lines after it are \
         intact, so this is not a crash's cut write: move the file aside to start afresh",
        path.display()
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The entry it should hold.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// An open journal.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// The seq of the first event it holds (after a compaction, the snapshot's header).
    first: u64,
    next: u64,
    /// Appends are not forced to disk one by one ([`Journal::sync`] does it).
    deferred: bool,
    /// An append since the last one that reached the disk.
    unsynced: bool,
    /// Where the lines end: where the next line goes, and what a failed write is cut back to.
    size: u64,
    /// How long the file is: its lines, then zeros written ahead.
    room: u64,
    /// Lines being written (kept to reuse its memory).
    buffer: Vec<u8>,
}

/// How far ahead of its lines the file is written with zeros.
const AHEAD: u64 = 1 << 20;

impl Drop for Journal {
    /// A journal let go (its node stopping) leaves everything it was handed on disk, and no
    /// zeros after it.
    fn drop(&mut self) {
        let _ = self.sync();
        if self.room > self.size {
            let _ = self.file.set_len(self.size);
            let _ = self.file.sync_all();
        }
    }
}

impl Journal {
    /// Opens (or creates) the journal at `path`, returning it and every event it holds, oldest
    /// first. A tail a crash cut short is cut off the file; a journal an earlier tcluster kept
    /// in a database (`<node>.redb` beside it) is carried over first.
    pub fn open(path: &Path) -> Result<(Journal, Vec<ClusterEvent>), JournalError> {
        let fail = |e: &dyn std::fmt::Display| storage(path, e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let _ = std::fs::remove_file(compacting(path));
        import::carry_over(path)?;
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| fail(&e))?;
        lock(&file, path)?;
        let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
        let contents = lines::read(&bytes).map_err(|d| JournalError::Damaged {
            path: path.to_path_buf(),
            line: d.line,
            seq: d.seq,
            message: d.message,
        })?;
        let tail = &bytes[contents.good_len..];
        let mut room = bytes.len() as u64;
        if tail.iter().any(|b| *b != 0) {
            tracing::warn!(
                "journal {}: dropping {} bytes a crash cut short (never acknowledged)",
                path.display(),
                bytes.len() - contents.good_len
            );
            file.set_len(contents.good_len as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| fail(&e))?;
            room = contents.good_len as u64;
        }
        let first = contents.events.first().map_or(0, |(seq, _)| *seq);
        let next = contents.events.last().map_or(0, |(seq, _)| seq + 1);
        let events = contents.events.into_iter().map(|(_, e)| e).collect();
        let journal = Journal {
            file,
            path: path.to_path_buf(),
            first,
            next,
            deferred: false,
            unsynced: false,
            size: contents.good_len as u64,
            room,
            buffer: Vec::new(),
        };
        Ok((journal, events))
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> StorageError {
        storage(&self.path, e)
    }

    /// Appends reach the disk as `durability` says: each before it returns (`Sync`, `Group`), or
    /// only at [`Journal::sync`] and when the journal is let go (`Periodic`, `None`).
    pub fn set_durability(&mut self, durability: crate::topology::policies::Durability) {
        use crate::topology::policies::Durability;
        self.deferred = !matches!(durability, Durability::Sync | Durability::Group(_));
    }

    /// Forces what was appended so far to disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.unsynced {
            self.file.sync_data().map_err(|e| self.fail(&e))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Appends events in one write (forced to disk before it returns unless
    /// [`Journal::set_durability`] said otherwise). Progress events are left out: only the
    /// latest matters, and replaying would not change what happens.
    pub fn append<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a ClusterEvent>,
    ) -> Result<usize, JournalError> {
        self.buffer.clear();
        let mut n = 0;
        for event in events.into_iter().filter(|e| e.kind.is_durable()) {
            lines::encode(self.next + n, event, &mut self.buffer).map_err(|e| self.fail(&e))?;
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        if let Err(e) = self.write_lines() {
            // Whatever part of it landed must not stay half-written before the next append.
            let _ = self.file.set_len(self.size);
            self.room = self.size;
            return Err(self.fail(&e).into());
        }
        self.size += self.buffer.len() as u64;
        self.next += n;
        self.unsynced = true;
        if !self.deferred {
            self.sync()?;
        }
        Ok(n as usize)
    }

    /// Writes the buffer's lines after the last ones, first writing zeros ahead if the file
    /// has no room left for them.
    fn write_lines(&mut self) -> std::io::Result<()> {
        let end = self.size + self.buffer.len() as u64;
        if end > self.room {
            let room = end + AHEAD;
            let zeros = vec![0; (room - self.room) as usize];
            self.file.write_all_at(&zeros, self.room)?;
            self.room = room;
        }
        self.file.write_all_at(&self.buffer, self.size)
    }

    /// Forgets every event: a master that follows a newer primary starts over from its history.
    pub fn reset(&mut self) -> Result<(), JournalError> {
        self.restart_at(0)
    }

    /// Forgets every event; the next one written is seq `at` (a backup that starts over from
    /// its primary's snapshot at that seq).
    pub fn restart_at(&mut self, at: u64) -> Result<(), JournalError> {
        self.file
            .set_len(0)
            .and_then(|_| self.file.sync_all())
            .map_err(|e| self.fail(&e))?;
        self.unsynced = false;
        self.size = 0;
        self.room = 0;
        self.first = at;
        self.next = at;
        Ok(())
    }

    /// Compaction: every event before `base` is replaced by `snapshot`, numbered to end just
    /// before `base`. The new file is written and synced beside the old one, then renamed over
    /// it: a crash before the rename leaves the journal as it was; after it, as compacted.
    pub fn compact<E: std::borrow::Borrow<ClusterEvent>>(
        &mut self,
        base: u64,
        snapshot: &[E],
    ) -> Result<(), JournalError> {
        let n = snapshot.len() as u64;
        let Some(first) = base.checked_sub(n) else {
            return Ok(());
        };
        self.sync()?;
        let mut bytes = Vec::new();
        for (i, event) in snapshot.iter().enumerate() {
            lines::encode(first + i as u64, event.borrow(), &mut bytes)
                .map_err(|e| self.fail(&e))?;
        }
        // The events from `base` on, if any were written before the snapshot came (a
        // coordinator hands its journal a snapshot right after the event it ends at, so this
        // is rare, and the file is read only then).
        if self.next > base {
            let mut old = std::fs::read(&self.path).map_err(|e| self.fail(&e))?;
            old.truncate(self.size as usize);
            bytes.extend_from_slice(&old[lines::offset_of(&old, base)..]);
        }
        let temporary = compacting(&self.path);
        let replace = || -> std::io::Result<File> {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&temporary)?;
            file.write_all_at(&bytes, 0)?;
            file.sync_all()?;
            Ok(file)
        };
        let file = replace().map_err(|e| self.fail(&e))?;
        lock(&file, &temporary)?;
        std::fs::rename(&temporary, &self.path).map_err(|e| self.fail(&e))?;
        if let Some(dir) = self.path.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.file = file;
        self.size = bytes.len() as u64;
        self.room = self.size;
        self.first = first;
        self.next = self.next.max(base);
        Ok(())
    }

    /// A second descriptor of the journal's file as it is now, for a thread that forces it to
    /// disk (`None` if the system has none to give: the journal is then synced when let go).
    pub(super) fn second_handle(&self) -> Option<File> {
        self.file.try_clone().ok()
    }

    /// The seq of the first event it holds.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The seq the next event gets: how many events the journal stands for (this run and
    /// before, compacted or not).
    pub fn len(&self) -> u64 {
        self.next
    }

    /// True if nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }
}

fn storage(path: &Path, e: &dyn std::fmt::Display) -> StorageError {
    StorageError {
        what: "journal",
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Where a compaction writes the new file before renaming it over the journal.
fn compacting(path: &Path) -> PathBuf {
    path.with_extension("compacting")
}

/// Takes the file for this process alone: two coordinators on one journal would interleave.
fn lock(file: &File, path: &Path) -> Result<(), StorageError> {
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => storage(
            path,
            &"in use by another tcluster process (or node) on this machine",
        ),
        std::fs::TryLockError::Error(e) => storage(path, &e),
    })
}

/// The last takeover the events record: who became primary, in which term (after a
/// compaction, the snapshot says who was primary in its term).
pub fn last_takeover(events: &[ClusterEvent]) -> Option<(String, u64)> {
    use crate::cluster::event::EventKind;
    events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Takeover {
            coordinator, term, ..
        } => Some((coordinator.clone(), *term)),
        EventKind::Snapshot { primary, term, .. } if *term > 0 && !primary.is_empty() => {
            Some((primary.clone(), *term))
        }
        _ => None,
    })
}

/// Where a node's journal lives under a state directory.
pub fn path_for(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join("journal").join(format!("{node}.journal"))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cluster::event::EventKind;
    use crate::protocol::message::JobId;

    /// Job `n` submitted, at time and clock `n`.
    pub(super) fn submitted(n: u64) -> ClusterEvent {
        ClusterEvent {
            at_ms: n,
            clock: n,
            kind: EventKind::JobSubmitted {
                job: JobId(n),
                data: "x".into(),
                priority: 0,
                by: "t".into(),
            },
        }
    }

    /// With deferred durability, a commit is readable at once and on disk after `sync`, or
    /// when the journal is let go (a node stopping).
    #[test]
    fn deferred_commits_are_kept_by_a_sync_and_by_a_clean_stop() {
        use crate::topology::policies::Durability;
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let event = submitted;
        for durability in [
            Durability::Periodic(std::time::Duration::from_millis(10)),
            Durability::None,
        ] {
            let (mut journal, before) = Journal::open(&path).unwrap();
            journal.set_durability(durability);
            let n = before.len() as u64;
            journal.append([&event(n + 1)]).unwrap();
            journal.sync().unwrap();
            journal.append([&event(n + 2)]).unwrap();
            drop(journal);
            let (_, after) = Journal::open(&path).unwrap();
            assert_eq!(after.len() as u64, n + 2, "{durability:?}");
        }
    }

    #[test]
    fn events_survive_a_reopen_and_progress_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let (mut journal, events) = Journal::open(&path).unwrap();
        assert!(events.is_empty() && journal.is_empty());
        let submitted = ClusterEvent {
            at_ms: 1,
            clock: 2,
            kind: EventKind::JobSubmitted {
                job: JobId(1),
                data: "x".into(),
                priority: 0,
                by: "t".into(),
            },
        };
        let progress = ClusterEvent {
            at_ms: 2,
            clock: 3,
            kind: EventKind::JobProgress {
                job: JobId(1),
                worker: "w".into(),
                percent: 5,
            },
        };
        assert_eq!(journal.append([&submitted, &progress]).unwrap(), 1);
        drop(journal);
        let (journal, events) = Journal::open(&path).unwrap();
        assert_eq!(events, vec![submitted]);
        assert_eq!(journal.len(), 1);
    }

    /// A damaged line with good ones after it stops the start with the file and the line; a
    /// file that is not a journal at all is damage on its first line.
    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.journal");
        let mut bytes = b"this is not a journal\n".to_vec();
        lines::encode(1, &submitted(1), &mut bytes).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(error.contains("j.journal: line 1"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing is cut off");
    }

    /// A write a crash cut short is cut off the file on open, and appends go on after the
    /// last whole line.
    #[test]
    fn a_cut_write_is_dropped_and_appends_go_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.append([&submitted(0), &submitted(1)]).unwrap();
        drop(journal);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - 5]).unwrap();
        let (mut journal, events) = Journal::open(&path).unwrap();
        assert_eq!(events, vec![submitted(0)]);
        journal.append([&submitted(2)]).unwrap();
        drop(journal);
        let (journal, events) = Journal::open(&path).unwrap();
        assert_eq!(events, vec![submitted(0), submitted(2)]);
        assert_eq!(journal.len(), 2);
    }

    /// While open, the file runs on in zeros written ahead; a stop cuts them off, and a file a
    /// killed node left with them reads whole and takes the next line where the lines end.
    #[test]
    fn zeros_written_ahead_are_not_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.append([&submitted(0)]).unwrap();
        let lines = journal.size;
        assert!(std::fs::metadata(&path).unwrap().len() > lines + AHEAD / 2);
        drop(journal);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), lines);
        let mut killed = std::fs::read(&path).unwrap();
        killed.extend_from_slice(&[0; 4096]);
        std::fs::write(&path, &killed).unwrap();
        let (mut journal, events) = Journal::open(&path).unwrap();
        assert_eq!(events, vec![submitted(0)]);
        journal.append([&submitted(1)]).unwrap();
        drop(journal);
        let (_, events) = Journal::open(&path).unwrap();
        assert_eq!(events, vec![submitted(0), submitted(1)]);
    }

    /// A journal in `dir` holding events 0 to 9.
    fn ten_events(dir: &Path) -> (PathBuf, Journal) {
        let path = path_for(dir, "coordinator");
        let (mut journal, _) = Journal::open(&path).unwrap();
        let events: Vec<ClusterEvent> = (0..10).map(submitted).collect();
        journal.append(&events).unwrap();
        (path, journal)
    }

    /// A compaction keeps the events from `base` on, after the snapshot; a file a crash left
    /// half-compacted beside the journal is ignored.
    #[test]
    fn compaction_keeps_the_snapshot_and_what_came_after() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut journal) = ten_events(dir.path());
        let snapshot = [submitted(100), submitted(101)];
        journal.compact(6, &snapshot).unwrap();
        journal.append([&submitted(10)]).unwrap();
        assert_eq!((journal.first(), journal.len()), (4, 11));
        drop(journal);
        std::fs::write(compacting(&path), b"half").unwrap();
        let (journal, after) = Journal::open(&path).unwrap();
        let mut expected = snapshot.to_vec();
        expected.extend((6..11).map(submitted));
        assert_eq!(after, expected);
        assert_eq!((journal.first(), journal.len()), (4, 11));
        assert!(!compacting(&path).exists());
    }

    /// A compaction at the end of what was written (as a coordinator asks for it) leaves the
    /// snapshot alone, and what comes after it follows.
    #[test]
    fn compaction_at_the_last_event_leaves_the_snapshot_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut journal) = ten_events(dir.path());
        let snapshot = [submitted(100), submitted(101), submitted(102)];
        journal.compact(10, &snapshot).unwrap();
        assert_eq!((journal.first(), journal.len()), (7, 10));
        journal.append([&submitted(10)]).unwrap();
        drop(journal);
        let (journal, after) = Journal::open(&path).unwrap();
        let mut expected = snapshot.to_vec();
        expected.push(submitted(10));
        assert_eq!(after, expected);
        assert_eq!((journal.first(), journal.len()), (7, 11));
    }

    /// Two nodes on one journal would interleave their lines: the second is refused.
    #[test]
    fn a_journal_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let (journal, _) = Journal::open(&path).unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(error.contains("in use"), "{error}");
        drop(journal);
        assert!(Journal::open(&path).is_ok());
    }
}
