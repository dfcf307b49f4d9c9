//! A chat server's history on disk: every entry, in the order of the history, so a server
//! that starts again on the same state directory has every channel's posts.

use std::path::{Path, PathBuf};

use compact_str::CompactString;
use redb::TableDefinition;
use tracing::warn;

use super::store::{StorageError, Store};
use crate::protocol::message::ChatEntry;

/// Entries by (Lamport clock, server, sequence): the history's order.
const ENTRIES: TableDefinition<(u64, &str, u64), &[u8]> = TableDefinition::new("chat");

/// An open chat history.
pub struct ChatHistory {
    store: Store<(u64, &'static str, u64)>,
}

impl ChatHistory {
    /// Opens (or creates) the history at `path` and returns what it holds. A damaged entry is
    /// skipped (and logged): chat posts are not worth refusing to start over.
    pub fn open(path: &Path) -> Result<(ChatHistory, Vec<ChatEntry>), StorageError> {
        let store = Store::open("chat history", path, ENTRIES)?;
        let mut entries = Vec::new();
        store.each_row(|_, bytes| {
            match serde_json::from_slice::<ChatEntry>(bytes) {
                Ok(entry) => entries.push(entry),
                Err(e) => warn!("{}: a damaged entry is skipped: {e}", path.display()),
            }
            Ok::<(), StorageError>(())
        })?;
        Ok((ChatHistory { store }, entries))
    }

    /// Makes `changes`, in their order, in one durable transaction: a crash leaves all of them
    /// done or none.
    pub fn write(&mut self, changes: &[HistoryChange<'_>]) -> Result<(), StorageError> {
        let mut staged = Staged::default();
        staged.add(changes).map_err(|e| self.store.fail(&e))?;
        self.commit(staged)
    }

    /// Makes the staged changes, in their order, in one durable transaction.
    pub fn commit(&mut self, staged: Staged) -> Result<(), StorageError> {
        if staged.rows.is_empty() {
            return Ok(());
        }
        self.store.write(|write, table, fail| {
            let mut table = write.open_table(table).map_err(|e| fail(&e))?;
            for (clock, server, seq, bytes) in &staged.rows {
                let key = (*clock, server.as_str(), *seq);
                match bytes {
                    Some(bytes) => table.insert(key, bytes.as_slice()),
                    None => table.remove(key),
                }
                .map_err(|e| fail(&e))?;
            }
            Ok(())
        })
    }
}

/// Changes to a history, made ready (each kept entry as the bytes it is stored as) and held
/// for a later commit: until then they are only in this process.
#[derive(Debug, Default)]
pub struct Staged {
    /// A key, and the entry's bytes to keep or `None` to drop it, in order.
    rows: Vec<(u64, CompactString, u64, Option<Vec<u8>>)>,
}

impl Staged {
    /// Adds `changes`, after those already staged.
    pub fn add(&mut self, changes: &[HistoryChange<'_>]) -> Result<(), serde_json::Error> {
        self.rows.reserve(changes.len());
        for change in changes {
            self.rows.push(match change {
                HistoryChange::Keep(entry) => (
                    entry.clock,
                    entry.server.clone(),
                    entry.seq,
                    Some(serde_json::to_vec(entry)?),
                ),
                HistoryChange::Forget((clock, server, seq)) => {
                    (*clock, server.as_str().into(), *seq, None)
                }
            });
        }
        Ok(())
    }

    /// How many changes are staged.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One change to the history, as the chat server's step asks for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HistoryChange<'a> {
    /// Keep this entry.
    Keep(&'a ChatEntry),
    /// Drop the entry with this key (past the retention).
    Forget(&'a (u64, String, u64)),
}

/// Where a chat server's history lives under a state directory.
pub fn chat_history_path(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join("chat").join(format!("{node}.redb"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::ChatBody;

    fn post(clock: u64, server: &str, text: &str) -> ChatEntry {
        ChatEntry {
            request: None,
            clock,
            server: server.into(),
            seq: clock,
            body: ChatBody::Post {
                channel: "general".into(),
                from: "ada".into(),
                text: text.into(),
            },
        }
    }

    /// A new, empty history in a directory of its own (kept while the tuple's first lives).
    fn empty_history() -> (tempfile::TempDir, PathBuf, ChatHistory) {
        let dir = tempfile::tempdir().unwrap();
        let path = chat_history_path(dir.path(), "chat-1");
        let (history, entries) = ChatHistory::open(&path).unwrap();
        assert!(entries.is_empty());
        (dir, path, history)
    }

    #[test]
    fn entries_survive_a_reopen_in_history_order() {
        let (_dir, path, mut history) = empty_history();
        let (late, early) = (post(9, "chat-2", "late"), post(3, "chat-1", "early"));
        history
            .write(&[HistoryChange::Keep(&late), HistoryChange::Keep(&early)])
            .unwrap();
        drop(history);
        let (_, entries) = ChatHistory::open(&path).unwrap();
        assert_eq!(entries, vec![early, late]);
    }

    #[test]
    fn entries_past_the_retention_leave_the_disk_in_the_same_commit() {
        let (_dir, path, mut history) = empty_history();
        let [a, b, c] = [(1, "a"), (2, "b"), (3, "c")].map(|(n, text)| post(n, "chat-1", text));
        history
            .write(&[HistoryChange::Keep(&a), HistoryChange::Keep(&b)])
            .unwrap();
        history
            .write(&[HistoryChange::Keep(&c), HistoryChange::Forget(&a.key())])
            .unwrap();
        drop(history);
        let (_, entries) = ChatHistory::open(&path).unwrap();
        assert_eq!(entries, vec![b, c]);
    }

    #[test]
    fn changes_are_made_in_their_order() {
        let (_dir, path, mut history) = empty_history();
        let [a, b] = [(1, "a"), (2, "b")].map(|(n, text)| post(n, "chat-1", text));
        // One batch kept `a` and then, at a later post, dropped it past the retention: it must
        // not stay on disk.
        history
            .write(&[
                HistoryChange::Keep(&a),
                HistoryChange::Keep(&b),
                HistoryChange::Forget(&a.key()),
            ])
            .unwrap();
        drop(history);
        let (_, entries) = ChatHistory::open(&path).unwrap();
        assert_eq!(entries, vec![b]);
    }

    /// What a crash of the process would leave: the file's bytes as they are now, opened as
    /// another file (the history itself stays open, as a killed process's would have been).
    fn after_a_crash(path: &Path) -> Vec<ChatEntry> {
        let copy = path.with_extension("crashed.redb");
        std::fs::copy(path, &copy).unwrap();
        ChatHistory::open(&copy).unwrap().1
    }

    #[test]
    fn staged_changes_reach_the_disk_when_committed_in_their_order() {
        let (_dir, path, mut history) = empty_history();
        let [a, b, c] = [(1, "a"), (2, "b"), (3, "c")].map(|(n, text)| post(n, "chat-1", text));
        history.write(&[HistoryChange::Keep(&a)]).unwrap();
        let mut staged = Staged::default();
        staged
            .add(&[HistoryChange::Keep(&b), HistoryChange::Keep(&c)])
            .unwrap();
        staged.add(&[HistoryChange::Forget(&a.key())]).unwrap();
        assert_eq!(staged.len(), 3);
        // Staged, they are only in the process: a crash now leaves what was written.
        assert_eq!(after_a_crash(&path), vec![a.clone()]);
        history.commit(staged).unwrap();
        assert_eq!(after_a_crash(&path), vec![b, c]);
    }

    #[test]
    fn a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.redb");
        std::fs::write(&path, b"not a database").unwrap();
        let error = ChatHistory::open(&path).err().unwrap().to_string();
        assert!(
            error.starts_with("chat history ") && error.contains("c.redb"),
            "{error}"
        );
    }
}
