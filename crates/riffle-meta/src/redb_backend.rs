//! The redb backend: every table a redb table of `&str` keys and `&[u8]`
//! values in one database file.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError, TableHandle};

use crate::error::storage;
use crate::{Backend, Batch, MetaError, Write};

fn def(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

/// Metadata in a redb database.
pub struct RedbBackend {
    db: Database,
}

impl RedbBackend {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<RedbBackend, MetaError> {
        Ok(RedbBackend {
            db: Database::create(path).map_err(storage)?,
        })
    }

    /// Opens (or creates) a database on `storage`: a file layer that
    /// injects faults, or redb's in-memory backend.
    pub fn open_on(storage_backend: impl redb::StorageBackend) -> Result<RedbBackend, MetaError> {
        Ok(RedbBackend {
            db: redb::Builder::new()
                .create_with_backend(storage_backend)
                .map_err(storage)?,
        })
    }
}

impl Backend for RedbBackend {
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(storage(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(storage)? {
            let (k, v) = row.map_err(storage)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        Ok(t.get(key).map_err(storage)?.map(|v| v.value().to_vec()))
    }

    fn tables(&self) -> Result<Vec<String>, MetaError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let names = tx
            .list_tables()
            .map_err(storage)?
            .map(|t| t.name().to_owned())
            .collect();
        Ok(names)
    }

    fn commit(&self, batch: &Batch) -> Result<(), MetaError> {
        let tx = self.db.begin_write().map_err(storage)?;
        // Consecutive writes to one table share its handle.
        let mut i = 0;
        while i < batch.writes.len() {
            let name = batch.writes[i].table();
            let mut t = tx.open_table(def(name)).map_err(storage)?;
            while let Some(w) = batch.writes.get(i).filter(|w| w.table() == name) {
                match w {
                    Write::Put { key, value, .. } => {
                        t.insert(key.as_str(), value.as_slice()).map_err(storage)?;
                    }
                    Write::Delete { key, .. } => {
                        t.remove(key.as_str()).map_err(storage)?;
                    }
                }
                i += 1;
            }
        }
        for name in &batch.drop_tables {
            tx.delete_table(def(name)).map_err(storage)?;
        }
        // Dropping `tx` on an error above aborts it: nothing is written.
        tx.commit().map_err(storage)
    }
}
