//! The file-system seam of Riffle's storage.
//!
//! - [`Fs`] and [`FsFile`]: every file operation the storage does (open,
//!   positional reads and writes, length changes, `fdatasync`/`fsync`,
//!   rename, remove, directories and their `fsync`), as object-safe traits.
//!   An open file is an `Arc<dyn FsFile>`: one virtual call per operation,
//!   no allocation, the same syscalls as `std::fs`.
//! - [`real::RealFs`]: `std::fs`, for production.
//! - [`sim::SimFs`]: an in-memory file system for tests that knows, per file
//!   and per directory, what is durable and what is only written. It can lose
//!   power (dropping, tearing or keeping a random subset of unsynced writes),
//!   fail writes and syncs with `ENOSPC` or `EIO` at chosen points, and is
//!   deterministic from a seed.
//! - [`redb_backend`]: a `redb::StorageBackend` over any [`Fs`], and
//!   [`open_redb`], so a redb database can live on [`sim::SimFs`] in tests.

use std::ffi::OsString;
use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub mod real;
pub mod redb_backend;
pub mod sim;

pub use real::RealFs;
pub use redb_backend::{open_redb, FsBackend};
pub use sim::{Rng, SimFs};

/// How [`Fs::open`] opens a file. Every mode opens for reading and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The file must exist.
    Existing,
    /// The file must not exist; it is created empty.
    CreateNew,
    /// Created if missing, kept as it is otherwise.
    Create,
    /// Created if missing, emptied otherwise.
    Truncate,
}

/// An open file. Positional I/O only: there is no cursor to share.
pub trait FsFile: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `pos`; 0 at or past the end.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `pos`, growing the file if needed.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;

    /// The file's current length.
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Truncates or zero-extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// `fdatasync`: the file's data (and its length) are durable.
    fn sync_data(&self) -> io::Result<()>;

    /// `fsync`: data and all metadata of the file are durable (not its
    /// directory entry: that takes a [`Fs::sync_dir`] of its directory).
    fn sync_all(&self) -> io::Result<()>;

    /// Takes an exclusive advisory lock on the file (`flock`) without
    /// waiting, held until the file is closed; fails with `WouldBlock`
    /// when another open file holds it. File systems without locks (the
    /// simulated one) grant it always.
    fn try_lock(&self) -> io::Result<()> {
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `pos`, or fails with
    /// `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, pos) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "failed to fill whole buffer",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    pos += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A file system.
pub trait Fs: Send + Sync + Debug {
    /// Opens a file for reading and writing.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FsFile>>;

    /// Creates one directory; its parent must exist. Durable only once its
    /// parent directory is synced.
    fn create_dir(&self, path: &Path) -> io::Result<()>;

    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;

    /// The names in a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;

    /// `fsync` of a directory: the entries created, renamed or removed in it
    /// are durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;

    /// A whole file's contents.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open(path, OpenMode::Existing)?;
        let mut buf = vec![0u8; f.len()? as usize];
        f.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
}

/// The `ENOSPC` error, as the OS reports it.
pub fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28)
}

/// The `EIO` error, as the OS reports it.
pub fn io_error() -> io::Error {
    io::Error::from_raw_os_error(5)
}
