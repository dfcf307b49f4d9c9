//! What servers keep on disk: the coordinator's journal (every durable cluster event, before
//! anyone is told) and, in `chat`, a chat server's history. Both are embedded redb databases
//! opened, read and written the same way (`store`).
//!
//! The coordinator's state is the result of applying its events in order
//! ([`crate::role::coordinator::ClusterState::apply`]), so writing those events down is enough to
//! rebuild it: a coordinator that starts on the same STATE_DIR replays its journal and carries on
//! — every job it had accepted is still there, queued or waiting for its worker to come back.
//! The driver appends each step's events in one transaction and only then sends that step's
//! replies: a client that was told `accepted` can rely on it.
//!
//! The journal is an embedded redb database (`STATE_DIR/journal/<node>.redb`): a table from a
//! sequence number to the event as JSON. redb is pure Rust (no C toolchain), and a committed
//! transaction survives a crash or a SIGKILL: its pages are copied on write and the commit is
//! checksummed and synced before `append` returns.

mod chat;
mod store;
mod writer;

pub use chat::{ChatHistory, chat_history_path};
pub use store::StorageError;
pub use writer::{Entry, JournalWriter, entries_of, write_entries};

use std::path::{Path, PathBuf};

use redb::TableDefinition;

use crate::cluster::event::ClusterEvent;
use store::Store;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database could not be opened, read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An entry could not be read back.
    #[error("journal {}: entry {seq} is damaged: {message}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The entry.
        seq: u64,
        /// What is wrong with it.
        message: String,
    },
}

/// An open journal.
pub struct Journal {
    store: Store<u64>,
    /// The seq of the first event it holds (after a compaction, the snapshot's header).
    first: u64,
    next: u64,
}

impl Journal {
    /// Opens (or creates) the journal at `path`, returning it and every event it holds, oldest
    /// first.
    pub fn open(path: &Path) -> Result<(Journal, Vec<ClusterEvent>), JournalError> {
        let store = Store::open("journal", path, EVENTS)?;
        let mut events = Vec::new();
        let mut next = 0;
        let mut first = None;
        store.each_row(|seq, bytes| {
            let seq = seq.value();
            first.get_or_insert(seq);
            let event = serde_json::from_slice(bytes).map_err(|e| JournalError::Damaged {
                path: path.to_path_buf(),
                seq,
                message: e.to_string(),
            })?;
            events.push(event);
            next = seq + 1;
            Ok::<(), JournalError>(())
        })?;
        let first = first.unwrap_or(0);
        Ok((Journal { store, first, next }, events))
    }

    /// Commits reach the disk as `durability` says: each before it returns (`Sync`, `Group`), or only
    /// at [`Journal::sync`] and when the journal is let go (`Periodic`, `None`).
    pub fn set_durability(&mut self, durability: crate::topology::policies::Durability) {
        use crate::topology::policies::Durability;
        self.store.defer(!matches!(
            durability,
            Durability::Sync | Durability::Group(_)
        ));
    }

    /// Forces what was committed so far to disk.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        Ok(self.store.sync()?)
    }

    /// Appends events in one transaction (durable unless [`Journal::set_durability`] said
    /// otherwise). Progress events are left out: only the latest
    /// matters, and replaying would not change what happens.
    pub fn append<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a ClusterEvent>,
    ) -> Result<usize, JournalError> {
        let durable: Vec<&ClusterEvent> =
            events.into_iter().filter(|e| e.kind.is_durable()).collect();
        if durable.is_empty() {
            return Ok(0);
        }
        let next = self.next;
        let mut rows = Vec::with_capacity(durable.len());
        for event in &durable {
            rows.push(serde_json::to_vec(event).map_err(|e| self.store.fail(&e))?);
        }
        self.store.write(|write, events, fail| {
            let mut table = write.open_table(events).map_err(|e| fail(&e))?;
            for (i, bytes) in rows.iter().enumerate() {
                table
                    .insert(next + i as u64, bytes.as_slice())
                    .map_err(|e| fail(&e))?;
            }
            Ok(())
        })?;
        self.next += durable.len() as u64;
        Ok(durable.len())
    }

    /// Forgets every event: a master that follows a newer primary starts over from its history.
    pub fn reset(&mut self) -> Result<(), JournalError> {
        self.restart_at(0)
    }

    /// Forgets every event; the next one written is seq `at` (a backup that starts over from
    /// its primary's snapshot at that seq).
    pub fn restart_at(&mut self, at: u64) -> Result<(), JournalError> {
        self.store.write(|write, events, fail| {
            write.delete_table(events).map_err(|e| fail(&e))?;
            write.open_table(events).map_err(|e| fail(&e))?;
            Ok(())
        })?;
        self.first = at;
        self.next = at;
        Ok(())
    }

    /// Compaction: in one durable transaction, every event before `base` is deleted and
    /// `snapshot` written in its place, numbered to end just before `base`. A crash before the
    /// commit leaves the journal as it was; after it, as compacted: never half of each.
    pub fn compact(&mut self, base: u64, snapshot: &[ClusterEvent]) -> Result<(), JournalError> {
        let n = snapshot.len() as u64;
        let Some(first) = base.checked_sub(n) else {
            return Ok(());
        };
        let mut rows = Vec::with_capacity(snapshot.len());
        for event in snapshot {
            rows.push(serde_json::to_vec(event).map_err(|e| self.store.fail(&e))?);
        }
        self.store.write(|write, events, fail| {
            let mut table = write.open_table(events).map_err(|e| fail(&e))?;
            table
                .retain_in(..base, |_, _| false)
                .map_err(|e| fail(&e))?;
            for (i, bytes) in rows.iter().enumerate() {
                table
                    .insert(first + i as u64, bytes.as_slice())
                    .map_err(|e| fail(&e))?;
            }
            Ok(())
        })?;
        self.first = first;
        self.next = self.next.max(base);
        Ok(())
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
    state_dir.join("journal").join(format!("{node}.redb"))
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

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.redb");
        std::fs::write(&path, b"this is not a database").unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(error.contains("j.redb"), "{error}");
    }
}
