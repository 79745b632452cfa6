//! Where S3 destinations put their objects: the [`ObjectSink`] seam.
//!
//! Delivery needs two things of an object store: whether a bucket exists,
//! and storing one whole object durably. The embedded S3 endpoint will
//! implement [`ObjectSink`] over its in-process PutObject; until then
//! [`DirSink`] keeps objects as plain files under a root directory
//! (`<root>/<bucket>/<key>`), which is what `riffle serve
//! --firehose-local-output DIR` and the tests use.
//!
//! The trait is object-safe (methods return boxed futures) so a
//! [`crate::Service`] can be handed any sink at construction.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::deliver::BoxFuture;

/// Why an object could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The bucket does not exist (S3's `NoSuchBucket`).
    #[error("The specified bucket does not exist: {0}")]
    NoSuchBucket(String),
    /// The store refused the request for lack of permission (S3's
    /// `AccessDenied`); the text says by whom.
    #[error("{0}")]
    AccessDenied(String),
    /// The key cannot be stored by this sink (a name the file system or
    /// the store refuses).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    /// Storage failed; the caller retries.
    #[error("{0}")]
    Io(String),
}

impl SinkError {
    /// The error code AWS reports for S3 delivery failures
    /// (`S3.NoSuchBucket`, ...), used in FailureDescription.
    pub fn code(&self) -> &'static str {
        match self {
            SinkError::NoSuchBucket(_) => "S3.NoSuchBucket",
            SinkError::AccessDenied(_) => "S3.AccessDenied",
            SinkError::InvalidKey { .. } => "S3.InvalidKey",
            SinkError::Io(_) => "S3.InternalError",
        }
    }
}

/// An object store S3 destinations deliver to.
pub trait ObjectSink: Send + Sync {
    /// Stores `body` as `bucket`/`key`, replacing any object there. Returns
    /// once the object is durable: delivery moves its checkpoint past the
    /// records in it only after this succeeds.
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: Option<&'a str>,
        content_encoding: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Whether `bucket` exists.
    fn bucket_exists<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<bool, SinkError>>;
}

/// A sink handed to [`crate::Config`]: any [`ObjectSink`], printable.
#[derive(Clone)]
pub struct Sink(pub Arc<dyn ObjectSink>);

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink(..)")
    }
}

/// Objects as files: `<root>/<bucket>/<key>`. A bucket exists when its
/// directory does (create it to create the bucket). Keys become relative
/// paths (`/` separates directories); keys with empty, `.` or `..`
/// segments are refused. Each object is written to a temporary file,
/// fsynced, renamed into place, and its directory fsynced, so an object is
/// either whole or absent after a crash. Content type and encoding are
/// not kept.
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn new(root: impl Into<PathBuf>) -> Arc<DirSink> {
        Arc::new(DirSink { root: root.into() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, SinkError> {
        if bucket.is_empty() || bucket.contains('/') || bucket == "." || bucket == ".." {
            return Err(SinkError::NoSuchBucket(bucket.to_owned()));
        }
        Ok(self.root.join(bucket))
    }

    fn write(dir: &Path, key: &str, body: &[u8]) -> Result<(), SinkError> {
        use std::io::Write;
        let segments: Vec<&str> = key.split('/').collect();
        if segments
            .iter()
            .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(SinkError::InvalidKey {
                key: key.to_owned(),
                reason: "empty, '.' or '..' path segment".into(),
            });
        }
        let path = segments.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
        let parent = path.parent().unwrap_or(dir).to_path_buf();
        let io = |e: std::io::Error| SinkError::Io(format!("writing {}: {e}", path.display()));
        std::fs::create_dir_all(&parent).map_err(io)?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            segments.last().copied().unwrap_or("object"),
            uuid::Uuid::new_v4().simple()
        ));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&parent)?.sync_all()
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }
}

impl ObjectSink for DirSink {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        _content_type: Option<&'a str>,
        _content_encoding: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let dir = self.bucket_dir(bucket)?;
            let key = key.to_owned();
            let bucket = bucket.to_owned();
            let run = move || {
                if !dir.is_dir() {
                    return Err(SinkError::NoSuchBucket(bucket));
                }
                DirSink::write(&dir, &key, &body)
            };
            match tokio::runtime::Handle::try_current() {
                Ok(_) => tokio::task::spawn_blocking(run)
                    .await
                    .map_err(|e| SinkError::Io(format!("writing task failed: {e}")))?,
                Err(_) => run(),
            }
        })
    }

    fn bucket_exists<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<bool, SinkError>> {
        Box::pin(async move {
            match self.bucket_dir(bucket) {
                Ok(dir) => Ok(dir.is_dir()),
                Err(_) => Ok(false),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_whole_files_into_existing_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirSink::new(dir.path());
        assert!(!sink.bucket_exists("b").await.unwrap());
        let e = sink
            .put_object("b", "k", Bytes::from_static(b"x"), None, None)
            .await
            .unwrap_err();
        assert_eq!(e, SinkError::NoSuchBucket("b".into()));
        std::fs::create_dir(dir.path().join("b")).unwrap();
        assert!(sink.bucket_exists("b").await.unwrap());
        sink.put_object(
            "b",
            "2024/01/02/x",
            Bytes::from_static(b"hello"),
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("b/2024/01/02/x")).unwrap(),
            b"hello"
        );
        let e = sink
            .put_object("b", "a//c", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "S3.InvalidKey");
        // No temporary files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("b/2024/01/02"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["x".to_string()]);
    }
}
