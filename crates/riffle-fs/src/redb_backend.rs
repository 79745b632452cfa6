//! A `redb::StorageBackend` over the seam, so a redb database can live on
//! any [`Fs`] (in tests: [`crate::SimFs`], which can lose power under it).

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::{Fs, FsFile, OpenMode};

/// One redb database file on an [`Fs`].
#[derive(Debug)]
pub struct FsBackend {
    file: Arc<dyn FsFile>,
}

impl FsBackend {
    /// Opens (creating) the database file at `path` and locks it (as redb's
    /// own file backend does: one process at a time; `WouldBlock` when
    /// another holds it). A file this creates has its directory entry made
    /// durable (the parent directory is synced) before redb writes to it:
    /// redb syncs the file, never its directory.
    pub fn open(fs: &dyn Fs, path: &Path) -> io::Result<FsBackend> {
        let file = match fs.open(path, OpenMode::Existing) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let f = fs.open(path, OpenMode::CreateNew)?;
                let parent = path.parent().unwrap_or(Path::new("/"));
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                fs.sync_dir(parent)?;
                f
            }
            Err(e) => return Err(e),
        };
        file.try_lock().map_err(|e| {
            if e.kind() == io::ErrorKind::WouldBlock {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another process", path.display()),
                )
            } else {
                e
            }
        })?;
        Ok(FsBackend { file })
    }
}

impl redb::StorageBackend for FsBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let grows = len > self.file.len()?;
        self.file.set_len(len)?;
        // A grown length is made durable now, before redb writes a header
        // that counts on it: otherwise a power loss can keep that header
        // (a data write inside the old length) and lose the growth
        // (metadata), and redb then refuses to open the file (it asserts
        // the file is at least as long as its header's layout).
        if grows {
            self.file.sync_all()?;
        }
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.file.write_all_at(data, offset)
    }
}

/// Opens or creates the redb database at `path` on `fs` (what
/// `redb::Database::create` does on the real file system).
pub fn open_redb(fs: &dyn Fs, path: &Path) -> Result<redb::Database, redb::DatabaseError> {
    let backend = FsBackend::open(fs, path).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            redb::DatabaseError::DatabaseAlreadyOpen
        } else {
            redb::DatabaseError::from(e)
        }
    })?;
    redb::Builder::new().create_with_backend(backend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{CrashMode, SimFs, Trigger};
    use redb::ReadableDatabase;

    const T: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("t");

    fn commit(db: &redb::Database, from: u64, n: u64, size: usize) -> Result<(), String> {
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut t = tx.open_table(T).map_err(|e| e.to_string())?;
            for k in from..from + n {
                t.insert(k, vec![k as u8; size].as_slice())
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }

    /// A commit that grows the file, cut by a power loss at any of its
    /// syncs in any mode: the database opens again with every earlier
    /// commit, whatever the power loss kept of the header and the growth.
    #[test]
    fn a_power_loss_while_the_file_grows_leaves_a_database_that_opens() {
        let path = Path::new("/meta.redb");
        for mode in CrashMode::ALL {
            for sync in 1..=4 {
                let fs = SimFs::new(sync);
                {
                    let db = open_redb(&fs, path).unwrap();
                    commit(&db, 0, 4, 100).unwrap();
                }
                fs.kill();
                let db = open_redb(&fs, path).unwrap();
                fs.arm_crash(Trigger::Sync(sync), mode);
                // Far more than the file holds: it grows.
                let _ = commit(&db, 100, 64, 64 << 10);
                drop(db);
                fs.reboot();
                fs.crash(mode);
                let db =
                    open_redb(&fs, path).unwrap_or_else(|e| panic!("{mode:?} at sync {sync}: {e}"));
                let tx = db.begin_read().unwrap();
                let t = tx.open_table(T).unwrap();
                for k in 0..4 {
                    assert_eq!(t.get(k).unwrap().unwrap().value(), &[k as u8; 100][..]);
                }
            }
        }
    }
}
