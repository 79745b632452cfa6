//! Objects: put (from a staged body, bytes or a copy), get, head, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use riffle_meta::Tx;

use crate::names::{check_key, MAX_PUT_BYTES};
use crate::store::{blocking, object_key, Hashes, ObjectRow, PutOptions, Staged, S3};
use crate::S3Error;

/// How a copy treats the source's metadata: AWS's
/// `x-amz-metadata-directive`.
#[derive(Debug, Clone)]
pub enum MetadataDirective {
    Copy,
    Replace(PutOptions),
}

impl S3 {
    /// The object's row, or `NoSuchBucket` / `NoSuchKey`.
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<Arc<ObjectRow>, S3Error> {
        let idx = self.index();
        let b = idx
            .buckets
            .get(bucket)
            .ok_or_else(|| S3Error::NoSuchBucket(bucket.to_owned()))?;
        b.objects
            .get(key)
            .cloned()
            .ok_or_else(|| S3Error::NoSuchKey(key.to_owned()))
    }

    /// Stores a staged body as `bucket`/`key`. Returns once the data and the
    /// row are durable.
    pub async fn put_staged(
        &self,
        bucket: &str,
        key: &str,
        staged: Staged,
        opts: PutOptions,
    ) -> Result<Arc<ObjectRow>, S3Error> {
        check_key(key)?;
        self.head_bucket(bucket)?;
        if staged.size > MAX_PUT_BYTES {
            return Err(S3Error::EntityTooLarge {
                size: staged.size,
                max: MAX_PUT_BYTES,
            });
        }
        if opts.content_md5.is_some_and(|m| m != staged.md5) {
            return Err(S3Error::BadDigest);
        }
        let etag = hex::encode(staged.md5);
        let size = staged.size;
        let file = self.place(staged).await?;
        let row = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file,
            size,
            etag,
            last_modified_ms: 0,
            content_type: opts.content_type.clone(),
            headers: opts.headers.clone(),
            metadata: opts.metadata.clone(),
            parts: 0,
        };
        self.commit_object(row, &opts, None).await
    }

    /// Stores `body` as `bucket`/`key`: the in-process PutObject other
    /// services (Firehose) call.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: Option<&str>,
        metadata: BTreeMap<String, String>,
    ) -> Result<Arc<ObjectRow>, S3Error> {
        let opts = PutOptions {
            content_type: content_type.map(str::to_owned),
            metadata,
            ..PutOptions::default()
        };
        self.put_object_with(bucket, key, body, opts).await
    }

    /// [`S3::put_object`] with every option (representation headers such
    /// as `content-encoding`, conditions).
    pub async fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        opts: PutOptions,
    ) -> Result<Arc<ObjectRow>, S3Error> {
        self.head_bucket(bucket)?;
        let mut staging = self.stage(Hashes::default())?;
        let staged = blocking(move || {
            staging.write(&body)?;
            staging.finish()
        })
        .await?;
        self.put_staged(bucket, key, staged, opts).await
    }

    /// The whole object: the in-process GetObject.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(Arc<ObjectRow>, Bytes), S3Error> {
        let (row, file) = self.open_object(bucket, key)?;
        let size = row.size as usize;
        let data = blocking(move || {
            let mut buf = vec![0u8; size];
            file.read_exact_at(&mut buf, 0).map(|()| buf)
        })
        .await?;
        Ok((row, Bytes::from(data)))
    }

    /// Checks the conditions, commits the row (with `also`'s writes) and
    /// installs it; removes the file of the object it replaced. On failure
    /// the new row's file is removed.
    pub(crate) async fn commit_object(
        &self,
        mut row: ObjectRow,
        opts: &PutOptions,
        finished_upload: Option<&str>,
    ) -> Result<Arc<ObjectRow>, S3Error> {
        let new_file = self.object_path(&row.file);
        let result = async {
            let _commit = self.commit.lock().await;
            {
                let idx = self.index();
                let b = idx
                    .buckets
                    .get(&row.bucket)
                    .ok_or_else(|| S3Error::NoSuchBucket(row.bucket.clone()))?;
                let current = b.objects.get(&row.key);
                if opts.if_none_match && current.is_some() {
                    return Err(S3Error::PreconditionFailed("If-None-Match"));
                }
                if let Some(want) = &opts.if_match {
                    match current {
                        None => return Err(S3Error::NoSuchKey(row.key.clone())),
                        Some(c) if !etag_matches(want, &c.etag) => {
                            return Err(S3Error::PreconditionFailed("If-Match"))
                        }
                        Some(_) => {}
                    }
                }
                if let Some(u) = finished_upload {
                    if !idx.uploads.contains_key(u) {
                        return Err(S3Error::NoSuchUpload(u.to_owned()));
                    }
                }
            }
            row.last_modified_ms = self.now_ms();
            let mut tx = Tx::new();
            tx.put(&self.objects_t, object_key(&row.bucket, &row.key), &row)?;
            if let Some(u) = finished_upload {
                tx.delete(&self.uploads_t, u);
            }
            self.apply(tx).await?;
            let row = Arc::new(row);
            let mut idx = self.index();
            if let Some(u) = finished_upload {
                idx.uploads.remove(u);
            }
            let old = idx
                .buckets
                .get_mut(&row.bucket)
                .and_then(|b| b.objects.insert(row.key.clone(), row.clone()));
            Ok((row, old))
        }
        .await;
        match result {
            Ok((row, old)) => {
                if let Some(old) = old {
                    self.discard(vec![self.object_path(&old.file)]).await;
                }
                Ok(row)
            }
            Err(e) => {
                self.discard(vec![new_file]).await;
                Err(e)
            }
        }
    }

    /// Deletes `bucket`/`key`; deleting a key that does not exist succeeds,
    /// as on AWS.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let _commit = self.commit.lock().await;
        let exists = {
            let idx = self.index();
            let b = idx
                .buckets
                .get(bucket)
                .ok_or_else(|| S3Error::NoSuchBucket(bucket.to_owned()))?;
            b.objects.contains_key(key)
        };
        if !exists {
            return Ok(());
        }
        let mut tx = Tx::new();
        tx.delete(&self.objects_t, object_key(bucket, key));
        self.apply(tx).await?;
        let old = self
            .index()
            .buckets
            .get_mut(bucket)
            .and_then(|b| b.objects.remove(key));
        drop(_commit);
        if let Some(old) = old {
            self.discard(vec![self.object_path(&old.file)]).await;
        }
        Ok(())
    }

    /// Copies an object. With [`MetadataDirective::Copy`] the copy keeps
    /// the source's content type, headers and metadata.
    pub async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        directive: MetadataDirective,
        conditions: PutOptions,
    ) -> Result<Arc<ObjectRow>, S3Error> {
        check_key(dst_key)?;
        self.head_bucket(dst_bucket)?;
        let (src, file) = self.open_object(src_bucket, src_key)?;
        if src_bucket == dst_bucket
            && src_key == dst_key
            && matches!(directive, MetadataDirective::Copy)
        {
            return Err(S3Error::InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".into(),
            ));
        }
        let staged = self.stage_copy(file, 0, src.size).await?;
        let mut opts = match directive {
            MetadataDirective::Copy => PutOptions {
                content_type: src.content_type.clone(),
                headers: src.headers.clone(),
                metadata: src.metadata.clone(),
                ..PutOptions::default()
            },
            MetadataDirective::Replace(o) => o,
        };
        opts.if_none_match = conditions.if_none_match;
        opts.if_match = conditions.if_match;
        self.put_staged(dst_bucket, dst_key, staged, opts).await
    }
}

impl S3 {
    /// Copies `len` bytes of an open data file from `start` into a new
    /// staged body.
    pub(crate) async fn stage_copy(
        &self,
        file: Arc<dyn riffle_fs::FsFile>,
        start: u64,
        len: u64,
    ) -> Result<Staged, S3Error> {
        let mut staging = self.stage(Hashes::default())?;
        blocking(move || {
            let mut buf = vec![0u8; (1 << 20).min(len.max(1) as usize)];
            let mut pos = start;
            let end = start + len;
            while pos < end {
                let n = ((end - pos) as usize).min(buf.len());
                file.read_exact_at(&mut buf[..n], pos)?;
                staging.write(&buf[..n])?;
                pos += n as u64;
            }
            staging.finish()
        })
        .await
    }
}

/// Whether an `If-Match`/`If-None-Match` value names `etag` (`*`, quoted
/// or not, one of a list).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    header.split(',').any(|t| {
        let t = t.trim().trim_start_matches("W/").trim_matches('"');
        t == "*" || t == etag
    })
}

/// The ETag of a multipart object: the MD5 of the parts' binary MD5s,
/// `-`, the part count.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", hex::encode(h.finalize()), part_md5s.len())
}
