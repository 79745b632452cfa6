//! The S3 store: files under `<data-dir>/s3/`, rows in the metadata
//! store's `s3` namespace, and the in-memory index listings read.
//!
//! ```text
//! <root>/tmp/<uuid>                         bodies being received
//! <root>/objects/<uuid>                     object data, named by an `s3/objects` row
//! <root>/uploads/<upload id>/<part>-<md5>-<ms>   parts of a multipart upload
//! ```
//!
//! A body is written to `tmp/`, `fdatasync`ed, renamed into `objects/`
//! and the directory `fsync`ed before the row that names it is committed;
//! only then is the request acknowledged. A crash before the commit leaves
//! an orphan file, removed at open; the file a replaced row named is
//! removed after the commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use md5::{Digest, Md5};
use riffle_core::Clock;
use riffle_fs::{Fs, FsFile, OpenMode};
use riffle_meta::{Namespace, Row, Table, Tx};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::S3Error;

/// The metadata namespace S3 claims.
pub const NAMESPACE: &str = "s3";

/// A bucket, in `s3/buckets` under its name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct BucketRow {
    pub name: String,
    /// The region it was created in (its LocationConstraint).
    pub region: String,
    pub created_ms: i64,
}

impl Row for BucketRow {
    const VERSION: u32 = 1;
}

/// An object, in `s3/objects` under `<bucket>/<key>`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    /// The data file's name in `objects/`.
    pub file: String,
    pub size: u64,
    /// Without quotes: the hex MD5 of the body, or for a multipart upload
    /// the hex MD5 of the parts' binary MD5s, `-`, the part count.
    pub etag: String,
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    /// Other stored representation headers (`cache-control`,
    /// `content-disposition`, `content-encoding`, `content-language`,
    /// `expires`), lower-case names.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// User metadata: `x-amz-meta-<name>` without the prefix, lower-case.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Parts of a multipart upload; 0 for a single PutObject.
    #[serde(default)]
    pub parts: u32,
}

impl Row for ObjectRow {
    const VERSION: u32 = 1;
}

/// A multipart upload in progress, in `s3/uploads` under its id.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UploadRow {
    pub id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub content_type: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl Row for UploadRow {
    const VERSION: u32 = 1;
}

/// How an object is stored: content type, representation headers, user
/// metadata, and the conditions of the write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// `Content-MD5`: the body must have this digest (else `BadDigest`).
    pub content_md5: Option<[u8; 16]>,
    /// `If-None-Match: *`: only create, never replace (else 412).
    pub if_none_match: bool,
    /// `If-Match: <etag>`: only replace this version (else 412).
    pub if_match: Option<String>,
}

pub(crate) struct BucketEntry {
    pub row: BucketRow,
    pub objects: BTreeMap<String, Arc<ObjectRow>>,
}

#[derive(Default)]
pub(crate) struct Index {
    pub buckets: BTreeMap<String, BucketEntry>,
    pub uploads: BTreeMap<String, Arc<UploadRow>>,
}

/// The embedded S3: buckets, objects and multipart uploads. Cheap to share
/// (`Arc<S3>`); every method is safe to call concurrently.
pub struct S3 {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) root: PathBuf,
    pub(crate) ns: Namespace,
    pub(crate) buckets_t: Table<BucketRow>,
    pub(crate) objects_t: Table<ObjectRow>,
    pub(crate) uploads_t: Table<UploadRow>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The index: found, added to or removed from, never held across I/O.
    index: Mutex<Index>,
    /// Serialises metadata changes: check, commit, install. Held across
    /// the commit (as a stream's control mutex is), never by readers.
    pub(crate) commit: tokio::sync::Mutex<()>,
}

pub(crate) fn object_key(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// Runs blocking storage work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(t) => t,
        // Cancelled only when the runtime shuts down, which drops this
        // task too: nothing is waiting for the answer.
        Err(e) if e.is_cancelled() => std::future::pending().await,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Creates `dir` if missing and makes its entry durable.
fn ensure_dir(fs: &dyn Fs, dir: &Path) -> std::io::Result<()> {
    if !fs.exists(dir) {
        fs.create_dir(dir)?;
        if let Some(parent) = dir.parent() {
            fs.sync_dir(parent)?;
        }
    }
    Ok(())
}

impl S3 {
    /// Opens the store at `root` (`<data-dir>/s3`) on `fs`, its rows in
    /// `ns`: loads buckets, objects and uploads, empties `tmp/` and removes
    /// data files and upload directories no row names (what a crash left).
    /// Blocks on storage.
    pub fn open(
        fs: Arc<dyn Fs>,
        root: PathBuf,
        ns: Namespace,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<S3>, S3Error> {
        let buckets_t = ns.table::<BucketRow>("buckets")?;
        let objects_t = ns.table::<ObjectRow>("objects")?;
        let uploads_t = ns.table::<UploadRow>("uploads")?;
        for dir in [
            root.clone(),
            root.join("tmp"),
            root.join("objects"),
            root.join("uploads"),
        ] {
            ensure_dir(fs.as_ref(), &dir)?;
        }
        let mut index = Index::default();
        for (_, row) in ns.load(&buckets_t)? {
            index.buckets.insert(
                row.name.clone(),
                BucketEntry {
                    row,
                    objects: BTreeMap::new(),
                },
            );
        }
        let mut files = std::collections::HashSet::new();
        for (_, row) in ns.load(&objects_t)? {
            if let Some(b) = index.buckets.get_mut(&row.bucket) {
                files.insert(row.file.clone());
                b.objects.insert(row.key.clone(), Arc::new(row));
            }
        }
        for (_, row) in ns.load(&uploads_t)? {
            index.uploads.insert(row.id.clone(), Arc::new(row));
        }
        for name in fs.read_dir(&root.join("tmp"))? {
            fs.remove_file(&root.join("tmp").join(name))?;
        }
        let mut removed = 0;
        for name in fs.read_dir(&root.join("objects"))? {
            if !files.contains(name.to_string_lossy().as_ref()) {
                fs.remove_file(&root.join("objects").join(name))?;
                removed += 1;
            }
        }
        for name in fs.read_dir(&root.join("uploads"))? {
            if !index.uploads.contains_key(name.to_string_lossy().as_ref()) {
                fs.remove_dir_all(&root.join("uploads").join(name))?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed S3 files no row names");
        }
        Ok(Arc::new(S3 {
            fs,
            root,
            ns,
            buckets_t,
            objects_t,
            uploads_t,
            clock,
            index: Mutex::new(index),
            commit: tokio::sync::Mutex::new(()),
        }))
    }

    pub(crate) fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buckets, objects and object bytes, for gauges.
    pub fn counts(&self) -> (u64, u64, u64) {
        let idx = self.index();
        let mut objects = 0;
        let mut bytes = 0;
        for b in idx.buckets.values() {
            objects += b.objects.len() as u64;
            bytes += b.objects.values().map(|o| o.size).sum::<u64>();
        }
        (idx.buckets.len() as u64, objects, bytes)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// A new body being received into `tmp/`, hashed as it is written
    /// (MD5 always; SHA-256 and CRC checksums on request).
    pub fn stage(&self, hashes: Hashes) -> Result<Staging, S3Error> {
        let path = self
            .root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let file = self.fs.open(&path, OpenMode::CreateNew)?;
        Ok(Staging {
            fs: self.fs.clone(),
            path,
            file,
            len: 0,
            md5: Md5::new(),
            sha256: hashes.sha256.then(Sha256::new),
            crc32: hashes.crc32.then(crc32fast::Hasher::new),
            crc32c: hashes.crc32c.then_some(0),
            done: false,
        })
    }

    /// Moves a staged body into `objects/` durably; returns its file name.
    pub(crate) async fn place(&self, staged: Staged) -> Result<String, S3Error> {
        let fs = self.fs.clone();
        let dir = self.root.join("objects");
        blocking(move || {
            let mut staged = staged;
            let name = uuid::Uuid::new_v4().simple().to_string();
            fs.rename(&staged.path, &dir.join(&name))?;
            staged.done = true;
            fs.sync_dir(&dir)?;
            Ok(name)
        })
        .await
    }

    /// Removes data files no longer named (best effort: open removes what
    /// is left).
    pub(crate) async fn discard(&self, files: Vec<PathBuf>) {
        if files.is_empty() {
            return;
        }
        let fs = self.fs.clone();
        blocking(move || {
            for f in files {
                if let Err(e) = fs.remove_file(&f) {
                    tracing::warn!(file = %f.display(), error = %e, "could not remove an S3 file");
                }
            }
        })
        .await;
    }

    pub(crate) fn object_path(&self, file: &str) -> PathBuf {
        self.root.join("objects").join(file)
    }

    pub(crate) fn upload_dir(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// Commits `tx` off the async threads.
    pub(crate) async fn apply(&self, tx: Tx) -> Result<(), S3Error> {
        let ns = self.ns.clone();
        blocking(move || ns.apply(tx)).await?;
        Ok(())
    }

    /// Opens an object's data file: the row and the file, consistent with
    /// each other even while the object is being replaced.
    pub fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(Arc<ObjectRow>, Arc<dyn FsFile>), S3Error> {
        for _ in 0..3 {
            let row = self.head_object(bucket, key)?;
            match self
                .fs
                .open(&self.object_path(&row.file), OpenMode::Existing)
            {
                Ok(f) => return Ok((row, f)),
                // Replaced between the lookup and the open: look again.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(S3Error::Internal(format!(
            "object {bucket}/{key} kept changing"
        )))
    }
}

/// Which digests a [`Staging`] computes besides MD5.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hashes {
    pub sha256: bool,
    pub crc32: bool,
    pub crc32c: bool,
}

/// A body being written to `tmp/`. Dropped unfinished, its file is removed.
pub struct Staging {
    fs: Arc<dyn Fs>,
    path: PathBuf,
    file: Arc<dyn FsFile>,
    len: u64,
    md5: Md5,
    sha256: Option<Sha256>,
    crc32: Option<crc32fast::Hasher>,
    crc32c: Option<u32>,
    done: bool,
}

impl Staging {
    /// Appends `data` (blocking I/O).
    pub fn write(&mut self, data: &[u8]) -> Result<(), S3Error> {
        self.file.write_all_at(data, self.len)?;
        self.len += data.len() as u64;
        self.md5.update(data);
        if let Some(h) = &mut self.sha256 {
            sha2::Digest::update(h, data);
        }
        if let Some(h) = &mut self.crc32 {
            h.update(data);
        }
        if let Some(c) = &mut self.crc32c {
            *c = crc32c::crc32c_append(*c, data);
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the body durable (`fdatasync`) and returns it with its digests.
    pub fn finish(mut self) -> Result<Staged, S3Error> {
        self.file.sync_data()?;
        self.done = true;
        Ok(Staged {
            fs: self.fs.clone(),
            path: self.path.clone(),
            size: self.len,
            md5: self.md5.clone().finalize().into(),
            sha256: self.sha256.take().map(|h| sha2::Digest::finalize(h).into()),
            crc32: self.crc32.take().map(|h| h.finalize()),
            crc32c: self.crc32c,
            done: false,
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.fs.remove_file(&self.path);
        }
    }
}

/// A durable body in `tmp/` with its digests, waiting to be placed.
/// Dropped unplaced, its file is removed.
pub struct Staged {
    fs: Arc<dyn Fs>,
    pub(crate) path: PathBuf,
    pub size: u64,
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    pub crc32: Option<u32>,
    pub crc32c: Option<u32>,
    pub(crate) done: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.fs.remove_file(&self.path);
        }
    }
}
