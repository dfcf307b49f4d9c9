//! A chat server's history on disk: every entry, in the order of the history, so a server
//! that starts again on the same state directory has every channel's posts.

use std::path::{Path, PathBuf};

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

    /// Makes `changes`, in their order, in one transaction: a crash leaves all of them done or
    /// none. `durable`: forced to disk before this returns; otherwise they reach it with the
    /// next [`ChatHistory::sync`] (or durable write, or when the history is closed), and a crash
    /// before then loses them.
    pub fn write(
        &mut self,
        changes: &[HistoryChange<'_>],
        durable: bool,
    ) -> Result<(), StorageError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(changes.len());
        for change in changes {
            rows.push(match change {
                HistoryChange::Keep(entry) => {
                    let bytes = serde_json::to_vec(entry).map_err(|e| self.store.fail(&e))?;
                    (entry.clock, entry.server.as_str(), entry.seq, Some(bytes))
                }
                HistoryChange::Forget((clock, server, seq)) => {
                    (*clock, server.as_str(), *seq, None)
                }
            });
        }
        self.store.write(durable, |write, table, fail| {
            let mut table = write.open_table(table).map_err(|e| fail(&e))?;
            for (clock, server, seq, bytes) in &rows {
                match bytes {
                    Some(bytes) => table.insert((*clock, *server, *seq), bytes.as_slice()),
                    None => table.remove((*clock, *server, *seq)),
                }
                .map_err(|e| fail(&e))?;
            }
            Ok(())
        })
    }

    /// Forces every change written so far to disk.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.store.write(true, |_, _, _| Ok(()))
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

    #[test]
    fn entries_survive_a_reopen_in_history_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = chat_history_path(dir.path(), "chat-1");
        let (mut history, entries) = ChatHistory::open(&path).unwrap();
        assert!(entries.is_empty());
        let (late, early) = (post(9, "chat-2", "late"), post(3, "chat-1", "early"));
        history
            .write(
                &[HistoryChange::Keep(&late), HistoryChange::Keep(&early)],
                true,
            )
            .unwrap();
        drop(history);
        let (_, entries) = ChatHistory::open(&path).unwrap();
        assert_eq!(entries, vec![early, late]);
    }

    #[test]
    fn entries_past_the_retention_leave_the_disk_in_the_same_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = chat_history_path(dir.path(), "chat-1");
        let (mut history, _) = ChatHistory::open(&path).unwrap();
        let (a, b, c) = (
            post(1, "chat-1", "a"),
            post(2, "chat-1", "b"),
            post(3, "chat-1", "c"),
        );
        history
            .write(&[HistoryChange::Keep(&a), HistoryChange::Keep(&b)], true)
            .unwrap();
        history
            .write(
                &[HistoryChange::Keep(&c), HistoryChange::Forget(&a.key())],
                true,
            )
            .unwrap();
        drop(history);
        let (_, entries) = ChatHistory::open(&path).unwrap();
        assert_eq!(entries, vec![b, c]);
    }

    #[test]
    fn changes_are_made_in_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = chat_history_path(dir.path(), "chat-1");
        let (mut history, _) = ChatHistory::open(&path).unwrap();
        let (a, b) = (post(1, "chat-1", "a"), post(2, "chat-1", "b"));
        // One batch kept `a` and then, at a later post, dropped it past the retention: it must
        // not stay on disk.
        history
            .write(
                &[
                    HistoryChange::Keep(&a),
                    HistoryChange::Keep(&b),
                    HistoryChange::Forget(&a.key()),
                ],
                true,
            )
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
    fn writes_not_forced_to_disk_are_there_after_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = chat_history_path(dir.path(), "chat-1");
        let (mut history, _) = ChatHistory::open(&path).unwrap();
        let (a, b, c) = (
            post(1, "chat-1", "a"),
            post(2, "chat-1", "b"),
            post(3, "chat-1", "c"),
        );
        history.write(&[HistoryChange::Keep(&a)], true).unwrap();
        history
            .write(&[HistoryChange::Keep(&b), HistoryChange::Keep(&c)], false)
            .unwrap();
        // Before the sync a crash keeps what was forced to disk; the rest may be lost.
        let crashed = after_a_crash(&path);
        assert_eq!(crashed.first(), Some(&a), "{crashed:?}");
        history.sync().unwrap();
        assert_eq!(after_a_crash(&path), vec![a.clone(), b.clone(), c.clone()]);
        // A history closed without a sync forces what it holds to disk as it closes.
        let d = post(4, "chat-1", "d");
        history.write(&[HistoryChange::Keep(&d)], false).unwrap();
        drop(history);
        assert_eq!(ChatHistory::open(&path).unwrap().1, vec![a, b, c, d]);
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
