//! The redb backend: every table a redb table of `&str` keys and `&[u8]`
//! values in one database file.
//!
//! redb refuses every write after one that failed on I/O (a full disk, an
//! `EIO`) until the database is opened again. A backend that knows how to
//! open its database ([`RedbBackend::open`], [`RedbBackend::open_with`])
//! does that itself: after a failed commit it closes the database and opens
//! it again (redb's recovery keeps the last durable commit), so the store
//! goes on once the fault clears instead of failing until a restart.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use redb::{
    Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError,
    TableHandle,
};

use crate::error::storage;
use crate::{Backend, Batch, MetaError, Write};

fn def(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

type Opener = Box<dyn Fn() -> Result<Database, DatabaseError> + Send + Sync>;

/// Metadata in a redb database.
pub struct RedbBackend {
    /// `None` while a reopen after a failure has not succeeded yet.
    db: RwLock<Option<Database>>,
    /// Opens the database again after a failed commit.
    reopen: Option<Opener>,
    /// Serialises commits (redb runs one write transaction at a time
    /// anyway), so none starts on a database a failed one left unusable
    /// before it is reopened.
    writing: Mutex<()>,
}

impl RedbBackend {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<RedbBackend, MetaError> {
        let path: PathBuf = path.to_owned();
        RedbBackend::open_with(move || Database::create(&path))
    }

    /// Opens (or creates) a database with `open`, and opens it again with
    /// `open` after a commit fails (see the module's documentation).
    pub fn open_with(
        open: impl Fn() -> Result<Database, DatabaseError> + Send + Sync + 'static,
    ) -> Result<RedbBackend, MetaError> {
        let db = open().map_err(storage)?;
        Ok(RedbBackend {
            db: RwLock::new(Some(db)),
            reopen: Some(Box::new(open)),
            writing: Mutex::new(()),
        })
    }

    /// Opens (or creates) a database on `storage`: a file layer that
    /// injects faults, or redb's in-memory backend. It cannot be opened
    /// again: after a failed commit every write fails.
    pub fn open_on(storage_backend: impl redb::StorageBackend) -> Result<RedbBackend, MetaError> {
        Ok(RedbBackend {
            db: RwLock::new(Some(
                redb::Builder::new()
                    .create_with_backend(storage_backend)
                    .map_err(storage)?,
            )),
            reopen: None,
            writing: Mutex::new(()),
        })
    }

    /// The open database, opening it again first if a failure closed it.
    fn db(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, MetaError> {
        {
            let g = self.db.read().unwrap_or_else(|p| p.into_inner());
            if g.is_some() {
                return Ok(g);
            }
        }
        {
            let mut g = self.db.write().unwrap_or_else(|p| p.into_inner());
            if g.is_none() {
                let open = self.reopen.as_ref().ok_or_else(|| {
                    MetaError::Io(std::io::Error::other("the metadata database is closed"))
                })?;
                *g = Some(open().map_err(storage)?);
            }
        }
        Ok(self.db.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Closes the database after a failed commit, so the next use opens it
    /// again (only when it can be opened again).
    fn close_after_failure(&self) {
        if self.reopen.is_some() {
            let old = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
            // Dropped outside the lock; its file lock goes with it.
            drop(old);
        }
    }
}

impl Backend for RedbBackend {
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let db = self.db()?;
        let db = db.as_ref().expect("open");
        let tx = db.begin_read().map_err(storage)?;
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
        let db = self.db()?;
        let db = db.as_ref().expect("open");
        let tx = db.begin_read().map_err(storage)?;
        let t = match tx.open_table(def(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        Ok(t.get(key).map_err(storage)?.map(|v| v.value().to_vec()))
    }

    fn tables(&self) -> Result<Vec<String>, MetaError> {
        let db = self.db()?;
        let db = db.as_ref().expect("open");
        let tx = db.begin_read().map_err(storage)?;
        let names = tx
            .list_tables()
            .map_err(storage)?
            .map(|t| t.name().to_owned())
            .collect();
        Ok(names)
    }

    fn commit(&self, batch: &Batch) -> Result<(), MetaError> {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let result = {
            let db = self.db()?;
            commit(db.as_ref().expect("open"), batch)
        };
        if result.is_err() {
            self.close_after_failure();
        }
        result
    }
}

fn commit(db: &Database, batch: &Batch) -> Result<(), MetaError> {
    let tx = db.begin_write().map_err(storage)?;
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
