//! Multipart uploads: create, upload a part, list parts, complete, abort,
//! with AWS's part rules.

use std::sync::Arc;

use riffle_fs::OpenMode;
use riffle_meta::Tx;

use crate::names::{check_key, MAX_PART_BYTES, MAX_PART_NUMBER, MIN_PART_BYTES};
use crate::object::{etag_matches, multipart_etag};
use crate::store::{blocking, Hashes, ObjectRow, PutOptions, Staged, UploadRow, S3};
use crate::S3Error;

/// A part as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    /// Hex MD5 of the part, without quotes.
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

/// A part file is named `<number:05>-<md5 hex>-<ms>`.
fn parse_part(name: &str) -> Option<(u32, String, i64)> {
    let mut it = name.splitn(3, '-');
    let n = it.next()?.parse().ok()?;
    let etag = it.next()?.to_owned();
    let ms = it.next()?.parse().ok()?;
    Some((n, etag, ms))
}

impl S3 {
    fn upload(&self, bucket: &str, key: &str, id: &str) -> Result<Arc<UploadRow>, S3Error> {
        self.head_bucket(bucket)?;
        self.index()
            .uploads
            .get(id)
            .filter(|u| u.bucket == bucket && u.key == key)
            .cloned()
            .ok_or_else(|| S3Error::NoSuchUpload(id.to_owned()))
    }

    /// Starts an upload; returns its id.
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
    ) -> Result<Arc<UploadRow>, S3Error> {
        check_key(key)?;
        self.head_bucket(bucket)?;
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let dir = self.upload_dir(&id);
        let fs = self.fs.clone();
        blocking(move || {
            fs.create_dir(&dir)?;
            fs.sync_dir(dir.parent().unwrap_or(&dir))
        })
        .await?;
        let row = UploadRow {
            id: id.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            initiated_ms: self.now_ms(),
            content_type: opts.content_type,
            headers: opts.headers,
            metadata: opts.metadata,
        };
        let _commit = self.commit.lock().await;
        self.head_bucket(bucket)?;
        let mut tx = Tx::new();
        tx.put(&self.uploads_t, id.as_str(), &row)?;
        self.apply(tx).await?;
        let row = Arc::new(row);
        self.index().uploads.insert(id, row.clone());
        Ok(row)
    }

    /// Stores a part durably; returns its ETag (hex MD5, no quotes).
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        number: u32,
        staged: Staged,
        content_md5: Option<[u8; 16]>,
    ) -> Result<String, S3Error> {
        self.upload(bucket, key, id)?;
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(S3Error::InvalidArgument {
                message: "Part number must be an integer between 1 and 10000, inclusive".into(),
                name: "partNumber".into(),
                value: number.to_string(),
            });
        }
        if staged.size > MAX_PART_BYTES {
            return Err(S3Error::EntityTooLarge {
                size: staged.size,
                max: MAX_PART_BYTES,
            });
        }
        if content_md5.is_some_and(|m| m != staged.md5) {
            return Err(S3Error::BadDigest);
        }
        let etag = hex::encode(staged.md5);
        let dir = self.upload_dir(id);
        let fs = self.fs.clone();
        let name = format!("{number:05}-{etag}-{}", self.now_ms());
        let missing = S3Error::NoSuchUpload(id.to_owned());
        blocking(move || {
            let mut staged = staged;
            match fs.rename(&staged.path, &dir.join(&name)) {
                Ok(()) => staged.done = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing),
                Err(e) => return Err(e.into()),
            }
            fs.sync_dir(&dir)?;
            // An earlier upload of the same part number is replaced.
            for other in fs.read_dir(&dir)? {
                let other = other.to_string_lossy().into_owned();
                if other != name && parse_part(&other).is_some_and(|(n, _, _)| n == number) {
                    fs.remove_file(&dir.join(other))?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(etag)
    }

    /// UploadPartCopy: a part copied from (a byte range of) an object;
    /// `range` is inclusive. Returns the part's ETag and the source's row.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        number: u32,
        src_bucket: &str,
        src_key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<String, S3Error> {
        self.upload(bucket, key, id)?;
        let (src, file) = self.open_object(src_bucket, src_key)?;
        let (start, len) = match range {
            None => (0, src.size),
            Some((first, last)) if first <= last && last < src.size => (first, last - first + 1),
            Some(_) => {
                return Err(S3Error::InvalidArgument {
                    message: format!(
                        "Range specified is not valid for source object of size: {}",
                        src.size
                    ),
                    name: "x-amz-copy-source-range".into(),
                    value: String::new(),
                })
            }
        };
        let staged = self.stage_copy(file, start, len).await?;
        self.upload_part(bucket, key, id, number, staged, None)
            .await
    }

    /// The parts uploaded so far, by number.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> Result<Vec<Part>, S3Error> {
        self.upload(bucket, key, id)?;
        let dir = self.upload_dir(id);
        let fs = self.fs.clone();
        let missing = S3Error::NoSuchUpload(id.to_owned());
        blocking(move || {
            let names = match fs.read_dir(&dir) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing),
                Err(e) => return Err(e.into()),
            };
            let mut parts = Vec::new();
            for name in names {
                let name = name.to_string_lossy().into_owned();
                let Some((number, etag, ms)) = parse_part(&name) else {
                    continue;
                };
                let size = fs.open(&dir.join(&name), OpenMode::Existing)?.len()?;
                parts.push(Part {
                    number,
                    etag,
                    size,
                    last_modified_ms: ms,
                });
            }
            parts.sort_by_key(|p| (p.number, std::cmp::Reverse(p.last_modified_ms)));
            parts.dedup_by_key(|p| p.number);
            Ok(parts)
        })
        .await
    }

    /// Completes an upload from the listed parts (number, ETag), in
    /// ascending order; every part but the last must be at least 5 MiB.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        wanted: &[(u32, String)],
        conditions: PutOptions,
    ) -> Result<Arc<ObjectRow>, S3Error> {
        let upload = self.upload(bucket, key, id)?;
        if wanted.is_empty() {
            return Err(S3Error::MalformedXml);
        }
        if wanted.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(S3Error::InvalidPartOrder);
        }
        let stored = self.list_parts(bucket, key, id).await?;
        let mut chosen = Vec::with_capacity(wanted.len());
        for (number, etag) in wanted {
            let p = stored
                .iter()
                .find(|p| p.number == *number && etag_matches(etag, &p.etag))
                .ok_or_else(|| S3Error::InvalidPart {
                    part: *number,
                    etag: etag.clone(),
                })?;
            chosen.push(p.clone());
        }
        if let Some(small) = chosen[..chosen.len() - 1]
            .iter()
            .find(|p| p.size < MIN_PART_BYTES)
        {
            return Err(S3Error::EntityTooSmall {
                size: small.size,
                min: MIN_PART_BYTES,
            });
        }
        let md5s = chosen
            .iter()
            .map(|p| {
                let mut m = [0u8; 16];
                hex::decode_to_slice(&p.etag, &mut m).map(|()| m)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| S3Error::internal("part name", e))?;
        let etag = multipart_etag(&md5s);
        let mut staging = self.stage(Hashes::default())?;
        let dir = self.upload_dir(id);
        let fs = self.fs.clone();
        let files: Vec<_> = chosen
            .iter()
            .map(|p| dir.join(format!("{:05}-{}-{}", p.number, p.etag, p.last_modified_ms)))
            .collect();
        let staged = blocking(move || {
            let mut buf = vec![0u8; 1 << 20];
            for f in files {
                let file = fs.open(&f, OpenMode::Existing)?;
                let size = file.len()?;
                let mut pos = 0;
                while pos < size {
                    let n = ((size - pos) as usize).min(buf.len());
                    file.read_exact_at(&mut buf[..n], pos)?;
                    staging.write(&buf[..n])?;
                    pos += n as u64;
                }
            }
            staging.finish()
        })
        .await?;
        let size = staged.size;
        let file = self.place(staged).await?;
        let row = ObjectRow {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            file,
            size,
            etag,
            last_modified_ms: 0,
            content_type: upload.content_type.clone(),
            headers: upload.headers.clone(),
            metadata: upload.metadata.clone(),
            parts: chosen.len() as u32,
        };
        let row = self.commit_object(row, &conditions, Some(id)).await?;
        let fs = self.fs.clone();
        let dir = self.upload_dir(id);
        blocking(move || fs.remove_dir_all(&dir)).await?;
        Ok(row)
    }

    /// Abandons an upload and its parts.
    pub async fn abort_upload(&self, bucket: &str, key: &str, id: &str) -> Result<(), S3Error> {
        let _commit = self.commit.lock().await;
        self.upload(bucket, key, id)?;
        let mut tx = Tx::new();
        tx.delete(&self.uploads_t, id);
        self.apply(tx).await?;
        self.index().uploads.remove(id);
        drop(_commit);
        let fs = self.fs.clone();
        let dir = self.upload_dir(id);
        blocking(move || fs.remove_dir_all(&dir)).await?;
        Ok(())
    }
}
