//! The S3 (extended S3) destination: buffering hints, data processing and
//! dynamic partitioning (see [`crate::process`], run by the delivery task
//! before records are buffered by partition), compression, object keys
//! (see [`crate::prefix`]) and the put through an [`ObjectSink`]: one
//! object per partition buffer.
//!
//! Settings are read from the destination's description document, so an
//! UpdateDestination takes effect at the next object (the delivery task
//! rebuilds the destination when the stream's version changes).

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value as Json;

use crate::deliver::{Batch, BoxFuture, DeliveryError, Destination, Hints};
use crate::error::FirehoseError;
use crate::prefix::{self, Layout};
use crate::sink::{ObjectSink, SinkError};

/// CompressionFormat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Uncompressed,
    Gzip,
    Zip,
    /// The Snappy framing format.
    Snappy,
    /// Hadoop's block format around raw Snappy.
    HadoopSnappy,
}

impl Compression {
    pub fn parse(s: &str) -> Compression {
        match s {
            "GZIP" => Compression::Gzip,
            "ZIP" => Compression::Zip,
            "Snappy" => Compression::Snappy,
            "HADOOP_SNAPPY" => Compression::HadoopSnappy,
            _ => Compression::Uncompressed,
        }
    }

    /// The file extension Firehose gives objects when FileExtension is not
    /// set.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Uncompressed => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
            Compression::Snappy => ".snappy",
            Compression::HadoopSnappy => ".hsnappy",
        }
    }

    /// Compresses one object's body. `entry` names the single file a ZIP
    /// archive holds.
    pub fn encode(self, body: &[u8], entry: &str) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Uncompressed => Ok(body.to_vec()),
            Compression::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(body)?;
                e.finish()
            }
            Compression::Snappy => {
                let mut e = snap::write::FrameEncoder::new(Vec::new());
                e.write_all(body)?;
                e.into_inner().map_err(|e| e.into_error())
            }
            Compression::HadoopSnappy => Ok(hadoop_snappy(body)),
            Compression::Zip => zip_one(entry, body),
        }
    }
}

/// Uncompressed bytes per Hadoop Snappy block: well under Hadoop's 256 KiB
/// codec buffer once compressed, whatever the data.
const HADOOP_BLOCK: usize = 64 * 1024;

/// Hadoop's `BlockCompressorStream` layout as `SnappyCodec` writes it: per
/// block a big-endian u32 of the uncompressed length, then one chunk: a
/// big-endian u32 of the compressed length and raw Snappy bytes.
fn hadoop_snappy(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 2 + 16);
    let mut enc = snap::raw::Encoder::new();
    for block in body.chunks(HADOOP_BLOCK) {
        let c = enc
            .compress_vec(block)
            .expect("a 64 KiB block is within Snappy's limits");
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    out
}

/// A ZIP archive holding `body` as one deflated file named `entry`
/// (local header, data, central directory, end record; ZIP64 is not
/// needed below 4 GiB, which the 128 MiB buffer bound keeps us under).
fn zip_one(entry: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body)?;
    let data = e.finish()?;
    let crc = crc32fast::hash(body);
    let name = entry.as_bytes();
    let (csize, usize_) = (data.len() as u32, body.len() as u32);
    // 1980-01-01 00:00, the earliest DOS date: the object key carries time.
    let (time, date) = (0u16, (1 << 5) | 1u16);
    let mut out = Vec::with_capacity(data.len() + 2 * name.len() + 100);
    let le16 = |o: &mut Vec<u8>, v: u16| o.extend_from_slice(&v.to_le_bytes());
    let le32 = |o: &mut Vec<u8>, v: u32| o.extend_from_slice(&v.to_le_bytes());
    le32(&mut out, 0x0403_4b50);
    for v in [20u16, 0x0800, 8, time, date] {
        le16(&mut out, v);
    }
    for v in [crc, csize, usize_] {
        le32(&mut out, v);
    }
    le16(&mut out, name.len() as u16);
    le16(&mut out, 0);
    out.extend_from_slice(name);
    out.extend_from_slice(&data);
    let central = out.len() as u32;
    le32(&mut out, 0x0201_4b50);
    for v in [20u16, 20, 0x0800, 8, time, date] {
        le16(&mut out, v);
    }
    for v in [crc, csize, usize_] {
        le32(&mut out, v);
    }
    for v in [name.len() as u16, 0, 0, 0, 0] {
        le16(&mut out, v);
    }
    le32(&mut out, 0o100644 << 16);
    le32(&mut out, 0);
    out.extend_from_slice(name);
    let central_len = out.len() as u32 - central;
    le32(&mut out, 0x0605_4b50);
    for v in [0u16, 0, 1, 1] {
        le16(&mut out, v);
    }
    le32(&mut out, central_len);
    le32(&mut out, central);
    le16(&mut out, 0);
    Ok(out)
}

/// The smallest buffer size AWS accepts with dynamic partitioning (and the
/// size Riffle takes when BufferingHints leave it out).
pub const MIN_DYNAMIC_SIZE_MB: i64 = 64;

/// What one S3 destination does, read from its description document.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bucket: String,
    pub layout: Layout,
    pub compression: Compression,
    pub extension: String,
    pub hints: Hints,
    /// AppendDelimiterToRecord's delimiter, when that processor is on.
    pub delimiter: Option<Vec<u8>>,
    /// The other processors and dynamic partitioning.
    pub pipeline: crate::process::Pipeline,
    /// Record format conversion, when enabled.
    pub conversion: Option<crate::convert::Settings>,
}

fn str_at<'a>(doc: &'a Json, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(doc, |v, k| v.get(k))?.as_str()
}

fn int_at(doc: &Json, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(doc, |v, k| v.get(k))?.as_i64()
}

impl Settings {
    /// Reads a description document. `Err(InvalidArgument)` for prefixes
    /// AWS refuses; `Ok(Err(reason))` for configurations Riffle accepts but
    /// does not deliver yet (format conversion).
    pub fn from_description(doc: &Json) -> Result<Result<Settings, String>, FirehoseError> {
        let dynamic = doc
            .pointer("/DynamicPartitioningConfiguration/Enabled")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let layout = prefix::validate(
            str_at(doc, &["Prefix"]),
            str_at(doc, &["ErrorOutputPrefix"]),
            dynamic,
            str_at(doc, &["CustomTimeZone"]),
        )?;
        let conversion = crate::convert::Settings::from_description(doc)?;
        let mut pipeline = crate::process::Pipeline::from_description(doc)?;
        let delimiter = pipeline.delimiter.take();
        let bucket = str_at(doc, &["BucketARN"])
            .and_then(|a| a.rsplit(":::").next())
            .unwrap_or("")
            .to_owned();
        let compression = Compression::parse(str_at(doc, &["CompressionFormat"]).unwrap_or(""));
        let extension = str_at(doc, &["FileExtension"])
            .filter(|s| !s.is_empty())
            .map_or_else(
                || match &conversion {
                    Some(c) => c.extension().to_owned(),
                    None => compression.extension().to_owned(),
                },
                str::to_owned,
            );
        let size = int_at(doc, &["BufferingHints", "SizeInMBs"]);
        if dynamic && size.is_some_and(|s| s < MIN_DYNAMIC_SIZE_MB) {
            return Err(FirehoseError::InvalidArgument(format!(
                "BufferingHints.SizeInMBs must be at least {MIN_DYNAMIC_SIZE_MB} when Dynamic Partitioning is enabled."
            )));
        }
        let default_size = if dynamic { MIN_DYNAMIC_SIZE_MB } else { 5 };
        let hints = Hints {
            size_bytes: (size.unwrap_or(default_size).max(1) as usize) * 1024 * 1024,
            interval_ms: int_at(doc, &["BufferingHints", "IntervalInSeconds"])
                .unwrap_or(300)
                .clamp(0, 900)
                * 1000,
        };
        Ok(Ok(Settings {
            bucket,
            layout,
            compression,
            extension,
            hints,
            delimiter,
            pipeline,
            conversion,
        }))
    }

    /// The object body for these records: delimited if configured and
    /// concatenated (compression comes after).
    pub fn body(&self, records: &[Bytes]) -> Vec<u8> {
        let extra = self.delimiter.as_ref().map_or(0, Vec::len);
        let mut raw = Vec::with_capacity(records.iter().map(|r| r.len() + extra).sum());
        for r in records {
            raw.extend_from_slice(r);
            if let Some(d) = &self.delimiter {
                raw.extend_from_slice(d);
            }
        }
        raw
    }

    /// A sink's failure as a delivery error, in AWS's words.
    pub fn failure(&self, e: SinkError) -> DeliveryError {
        DeliveryError {
            code: e.code().into(),
            message: match &e {
                SinkError::NoSuchBucket(_) => format!(
                    "The specified bucket does not exist: {}. Create the bucket; delivery is retried until then (up to 24 hours).",
                    self.bucket
                ),
                other => other.to_string(),
            },
        }
    }

    /// Stores `raw` as a new object under the evaluated `prefix`, named
    /// `<stream>-<version>-<time>-<uuid><extension>` and compressed as
    /// configured, once the bucket is known to exist.
    pub async fn put_new(
        &self,
        sink: &dyn ObjectSink,
        prefix: &str,
        name: (&str, u64, i64),
        raw: &[u8],
    ) -> Result<Stored, DeliveryError> {
        if !sink
            .bucket_exists(&self.bucket)
            .await
            .map_err(|e| self.failure(e))?
        {
            return Err(self.failure(SinkError::NoSuchBucket(self.bucket.clone())));
        }
        self.put_as(sink, prefix, name, raw, &self.extension).await
    }

    /// Stores `raw` as a new object named with `extension`.
    pub async fn put_as(
        &self,
        sink: &dyn ObjectSink,
        prefix: &str,
        name: (&str, u64, i64),
        raw: &[u8],
        extension: &str,
    ) -> Result<Stored, DeliveryError> {
        let (stream, version, ms) = name;
        if prefix.chars().count() > prefix::MAX_EVALUATED_PREFIX {
            return Err(DeliveryError {
                code: "S3.InvalidPrefix".into(),
                message: format!(
                    "The evaluated prefix is longer than {} characters: {prefix}",
                    prefix::MAX_EVALUATED_PREFIX
                ),
            });
        }
        let key = self.layout.key(prefix, stream, version, ms, extension);
        let entry = key.rsplit('/').next().unwrap_or(&key);
        let entry = entry.strip_suffix(".zip").unwrap_or(entry);
        let body = Bytes::from(
            self.compression
                .encode(raw, entry)
                .map_err(|e| DeliveryError {
                    code: "S3.InternalError".into(),
                    message: format!("compressing the object failed: {e}"),
                })?,
        );
        sink.put_object(
            &self.bucket,
            &key,
            body.clone(),
            Some("application/octet-stream"),
            None,
        )
        .await
        .map_err(|e| self.failure(e))?;
        Ok(Stored { key, body })
    }

    /// Stores one batch as a new object under the destination's prefix.
    pub async fn store(
        &self,
        sink: &dyn ObjectSink,
        stream: &str,
        version: u64,
        batch: &Batch,
    ) -> Result<Stored, DeliveryError> {
        let prefix = self.layout.prefix(batch.first_arrival_ms);
        let raw = self.body(&batch.records);
        self.put_new(
            sink,
            &prefix,
            (stream, version, batch.first_arrival_ms),
            &raw,
        )
        .await
    }
}

/// An object stored: its key and body as stored (compressed).
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub body: Bytes,
}

/// Delivers to one bucket through a sink.
pub struct S3Destination {
    pub settings: Settings,
    pub stream: String,
    pub version: u64,
    pub sink: Arc<dyn ObjectSink>,
    /// The processors and dynamic partitioning, run by the delivery task
    /// before records are buffered by partition.
    pub front: crate::process::Front,
    /// What record format conversion needs besides its settings.
    pub convert: crate::convert::Context,
}

impl S3Destination {
    /// Writes one object under `prefix`.
    pub(crate) async fn put(&self, prefix: &str, raw: &[u8], ms: i64) -> Result<(), DeliveryError> {
        self.put_with(prefix, raw, ms, &self.settings.extension)
            .await
    }

    /// Writes one error object under `prefix`: the destination's extension,
    /// unless objects are converted (error objects hold JSON lines, not
    /// Parquet or ORC).
    pub(crate) async fn put_error(
        &self,
        prefix: &str,
        raw: &[u8],
        ms: i64,
    ) -> Result<(), DeliveryError> {
        let s = &self.settings;
        let ext = match &s.conversion {
            Some(_) => s.compression.extension(),
            None => &s.extension,
        };
        self.put_with(prefix, raw, ms, ext).await
    }

    async fn put_with(
        &self,
        prefix: &str,
        raw: &[u8],
        ms: i64,
        extension: &str,
    ) -> Result<(), DeliveryError> {
        self.settings
            .put_as(
                &*self.sink,
                prefix,
                (&self.stream, self.version, ms),
                raw,
                extension,
            )
            .await
            .map(|_| ())
    }
}

impl Destination for S3Destination {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn hints(&self) -> Hints {
        self.settings.hints
    }

    fn front(&self) -> Option<&crate::process::Front> {
        Some(&self.front)
    }

    fn store_errors<'a>(
        &'a self,
        e: &'a crate::process::ErrorObject,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let s = &self.settings;
            if !self
                .sink
                .bucket_exists(&s.bucket)
                .await
                .map_err(|e| s.failure(e))?
            {
                return Err(s.failure(SinkError::NoSuchBucket(s.bucket.clone())));
            }
            self.put_error(&e.prefix, &e.body, e.first_arrival_ms).await
        })
    }

    /// Writes one partition's records (processed) as one object.
    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let s = &self.settings;
            let fail = |e: SinkError| s.failure(e);
            if !self.sink.bucket_exists(&s.bucket).await.map_err(fail)? {
                return Err(fail(SinkError::NoSuchBucket(s.bucket.clone())));
            }
            let prefix = match s.pipeline.dynamic {
                true => s
                    .layout
                    .partition_prefix(batch.first_arrival_ms, &batch.keys),
                false => s.layout.prefix(batch.first_arrival_ms),
            };
            let body = match &s.conversion {
                // Records that fail conversion go to the error output;
                // `None` when none converted.
                Some(c) => match crate::convert::run(self, c, batch).await? {
                    Some(body) => body,
                    None => return Ok(()),
                },
                None => s.body(&batch.records),
            };
            self.put(&prefix, &body, batch.first_arrival_ms).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hadoop_snappy_blocks() {
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let out = hadoop_snappy(&body);
        let mut dec = snap::raw::Decoder::new();
        let mut back = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let ulen = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            let clen = u32::from_be_bytes(out[at + 4..at + 8].try_into().unwrap()) as usize;
            let chunk = dec.decompress_vec(&out[at + 8..at + 8 + clen]).unwrap();
            assert_eq!(chunk.len(), ulen);
            back.extend(chunk);
            at += 8 + clen;
        }
        assert_eq!(back, body);
    }
}
