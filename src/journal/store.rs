//! The redb plumbing of a chat server's history (and of journals kept by earlier versions,
//! which `import` carries over): open a file (making its folder and its one table), read every
//! row in key order, and write rows in one durable transaction.

use std::path::{Path, PathBuf};

use redb::{
    AccessGuard, Database, Key, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

/// A store that cannot be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}: {message}", path.display())]
pub struct StorageError {
    /// Which store: `journal`, `chat history`.
    pub what: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// An open redb file with one table of JSON rows.
pub(super) struct Store<K: Key + 'static> {
    db: Database,
    path: PathBuf,
    what: &'static str,
    table: TableDefinition<'static, K, &'static [u8]>,
}

impl<K: Key + 'static> Store<K> {
    /// Opens (or creates) the file at `path`, with `table` in it so a new store reads empty.
    pub(super) fn open(
        what: &'static str,
        path: &Path,
        table: TableDefinition<'static, K, &'static [u8]>,
    ) -> Result<Self, StorageError> {
        let fail = |e: &dyn std::fmt::Display| StorageError {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let db = Database::create(path).map_err(|e| fail(&e))?;
        let write = db.begin_write().map_err(|e| fail(&e))?;
        write.open_table(table).map_err(|e| fail(&e))?;
        write.commit().map_err(|e| fail(&e))?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
            what,
            table,
        })
    }

    /// The error of this store for `e`.
    pub(super) fn fail(&self, e: &dyn std::fmt::Display) -> StorageError {
        StorageError {
            what: self.what,
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Hands every row to `each`, in key order.
    pub(super) fn each_row<E: From<StorageError>>(
        &self,
        mut each: impl FnMut(AccessGuard<'_, K>, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let read = self.db.begin_read().map_err(|e| self.fail(&e))?;
        let table = read.open_table(self.table).map_err(|e| self.fail(&e))?;
        for row in table.iter().map_err(|e| self.fail(&e))? {
            let (key, bytes) = row.map_err(|e| self.fail(&e))?;
            each(key, bytes.value())?;
        }
        Ok(())
    }

    /// Runs `write` in one transaction on the table and commits it, durably, before returning.
    /// `write` is handed the store's way of saying what failed.
    pub(super) fn write(
        &mut self,
        write: impl FnOnce(
            &WriteTransaction,
            TableDefinition<'static, K, &'static [u8]>,
            &dyn Fn(&dyn std::fmt::Display) -> StorageError,
        ) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let fail = |e: &dyn std::fmt::Display| self.fail(e);
        let transaction = self.db.begin_write().map_err(|e| fail(&e))?;
        write(&transaction, self.table, &fail)?;
        transaction.commit().map_err(|e| fail(&e))?;
        Ok(())
    }
}
