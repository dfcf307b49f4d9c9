//! Journals kept by earlier tcluster versions, in a redb database (`<node>.redb`), are carried
//! over into the line file the first time the node starts: a cluster resumed after an upgrade
//! keeps every job it had accepted. The database is renamed `<node>.redb.carried-over`, not
//! deleted.

use std::path::Path;

use redb::TableDefinition;

use super::store::Store;
use super::{JournalError, lines, storage};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// If `path` does not exist and a database journal does beside it, writes its events to
/// `path` (synced, then renamed into place) and moves the database aside.
pub(super) fn carry_over(path: &Path) -> Result<(), JournalError> {
    let old = path.with_extension("redb");
    if path.exists() || !old.exists() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    {
        let store = Store::open("journal", &old, EVENTS)?;
        store.each_row(|seq, row| {
            let seq = seq.value();
            let event = serde_json::from_slice(row)
                .map_err(|e| storage(&old, &format!("entry {seq} is damaged: {e}")))?;
            lines::encode(seq, &event, &mut bytes).map_err(|e| storage(path, &e))?;
            Ok::<(), JournalError>(())
        })?;
    }
    let importing = path.with_extension("importing");
    std::fs::write(&importing, &bytes)
        .and_then(|_| std::fs::File::open(&importing)?.sync_all())
        .and_then(|_| std::fs::rename(&importing, path))
        .and_then(|_| std::fs::rename(&old, old.with_extension("redb.carried-over")))
        .map_err(|e| storage(path, &e))?;
    tracing::info!(
        "journal {}: carried over from {}",
        path.display(),
        old.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::submitted;
    use super::super::{Journal, path_for};
    use super::*;

    /// A damaged database beside the journal is a clear error naming it, and is left as it
    /// was (nothing is carried over, no journal is started in its place).
    #[test]
    fn a_damaged_database_is_a_clear_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let old = path.with_extension("redb");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, b"not a database").unwrap();
        let error = Journal::open(&path).err().unwrap().to_string();
        assert!(error.contains("coordinator.redb"), "{error}");
        assert_eq!(std::fs::read(&old).unwrap(), b"not a database");
        assert!(!path.exists());
    }

    /// A journal an earlier version kept in redb opens with every event, numbered as before.
    #[test]
    fn a_database_journal_is_carried_over_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "coordinator");
        let old = path.with_extension("redb");
        {
            let mut store = Store::open("journal", &old, EVENTS).unwrap();
            store
                .write(|write, table, fail| {
                    let mut table = write.open_table(table).map_err(|e| fail(&e))?;
                    for seq in 5..8 {
                        let row = serde_json::to_vec(&submitted(seq)).unwrap();
                        table.insert(seq, row.as_slice()).map_err(|e| fail(&e))?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        let (journal, events) = Journal::open(&path).unwrap();
        assert_eq!(events, (5..8).map(submitted).collect::<Vec<_>>());
        assert_eq!((journal.first(), journal.len()), (5, 8));
        assert!(!old.exists());
        assert!(old.with_extension("redb.carried-over").exists());
        drop(journal);
        let (_, again) = Journal::open(&path).unwrap();
        assert_eq!(again.len(), 3);
    }
}
