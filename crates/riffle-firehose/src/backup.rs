//! S3 backup objects, shared by the destinations that write them: the
//! HTTP endpoint's backup bucket (AllData and FailedDataOnly, see
//! [`crate::http`]) and the extended S3 destination's source record
//! backup (`S3BackupMode` `Enabled`, [`SourceBackup`]).
//!
//! Source record backup, as the Firehose developer guide describes it:
//! the records as they arrived (before any processing or format
//! conversion), concatenated without delimiters, written to the
//! `S3BackupConfiguration` bucket under its own Prefix, compressed as its
//! CompressionFormat says. The delivery task writes one backup object per
//! batch of records it processes (so the backup follows the processing
//! buffer: the Lambda processor's hints, or each read without one, rather
//! than the backup configuration's BufferingHints); a failure to write it
//! is retried like a delivery (FailureDescription), and the checkpoint
//! waits for it as for the records' delivery.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value as Json;

use crate::deliver::{Batch, BoxFuture, DeliveryError, Destination, Hints};
use crate::s3::Settings;
use crate::sink::{ObjectSink, SinkError};

fn err(code: &str, message: impl Into<String>) -> DeliveryError {
    DeliveryError {
        code: code.into(),
        message: message.into(),
    }
}

/// The records of a batch as one body, as they arrived.
pub fn concat(records: &[Bytes]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(records.iter().map(Bytes::len).sum());
    for r in records {
        raw.extend_from_slice(r);
    }
    raw
}

/// Stores `raw` as one backup object: under `prefix` (already evaluated)
/// in the bucket of `s`, named as Firehose names objects
/// (`<stream>-<version>-<time>-<uuid>`), compressed as `s` says.
pub async fn put(
    sink: Option<&Arc<dyn ObjectSink>>,
    s: &Settings,
    stream: &str,
    version: u64,
    prefix: String,
    raw: &[u8],
    ms: i64,
) -> Result<(), DeliveryError> {
    let sink = sink.ok_or_else(|| {
        err(
            "S3.NotConfigured",
            crate::deliver::NOT_CONFIGURED.to_owned(),
        )
    })?;
    let fail = |e: SinkError| err(e.code(), e.to_string());
    if !sink.bucket_exists(&s.bucket).await.map_err(fail)? {
        return Err(err(
            "S3.NoSuchBucket",
            format!(
                "The specified backup bucket does not exist: {}. Create the bucket; delivery is retried until then.",
                s.bucket
            ),
        ));
    }
    s.put_as(&**sink, &prefix, (stream, version, ms), raw, &s.extension)
        .await
        .map(|_| ())
}

/// An extended S3 destination's backup settings: `Ok(None)` when
/// S3BackupMode is not `Enabled`, `Err(reason)` when it is but cannot be
/// delivered.
pub fn source_backup(doc: &Json) -> Result<Option<Settings>, String> {
    if doc.get("S3BackupMode").and_then(Json::as_str) != Some("Enabled") {
        return Ok(None);
    }
    let Some(b) = doc.get("S3BackupDescription") else {
        return Err(
            "S3BackupMode is Enabled but no S3BackupConfiguration is set; records stay buffered."
                .into(),
        );
    };
    match Settings::from_description(b) {
        Ok(Ok(s)) => Ok(Some(s)),
        Ok(Err(reason)) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// A destination with source record backup: the delivery task writes
/// each batch of source records, as they arrived, to the backup bucket
/// before processing them, and delivers through the inner destination.
pub struct SourceBackup {
    pub inner: Arc<dyn Destination>,
    pub backup: Settings,
    pub stream: String,
    pub version: u64,
    pub sink: Arc<dyn ObjectSink>,
}

impl SourceBackup {
    pub fn new(
        inner: Arc<dyn Destination>,
        backup: Settings,
        stream: String,
        version: u64,
        sink: Arc<dyn ObjectSink>,
    ) -> SourceBackup {
        SourceBackup {
            inner,
            backup,
            stream,
            version,
            sink,
        }
    }
}

/// `dest` with the source record backup `doc` asks for, if any.
pub fn wrap(
    dest: Arc<dyn Destination>,
    doc: &Json,
    stream: &str,
    version: u64,
    sink: &Arc<dyn ObjectSink>,
) -> Result<Arc<dyn Destination>, String> {
    Ok(match source_backup(doc)? {
        None => dest,
        Some(backup) => Arc::new(SourceBackup::new(
            dest,
            backup,
            stream.to_owned(),
            version,
            sink.clone(),
        )),
    })
}

impl Destination for SourceBackup {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn hints(&self) -> Hints {
        self.inner.hints()
    }

    fn deliver<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.inner.deliver(batch)
    }

    fn front(&self) -> Option<&crate::process::Front> {
        self.inner.front()
    }

    fn store_errors<'a>(
        &'a self,
        errors: &'a crate::process::ErrorObject,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.inner.store_errors(errors)
    }

    fn backs_up_source(&self) -> bool {
        true
    }

    fn backup_source<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let prefix = self.backup.layout.prefix(batch.first_arrival_ms);
            put(
                Some(&self.sink),
                &self.backup,
                &self.stream,
                self.version,
                prefix,
                &concat(&batch.records),
                batch.first_arrival_ms,
            )
            .await
        })
    }
}

/// AWS's checks of a destination's S3 backup settings: the backup
/// configuration's Prefix and ErrorOutputPrefix follow the same rules as
/// the destination's.
pub fn check(doc: &Json) -> Result<(), crate::error::FirehoseError> {
    if let Some(b) = doc.get("S3BackupDescription") {
        let _ = Settings::from_description(b)?;
    }
    Ok(())
}

/// The message AWS answers an UpdateDestination that would turn S3
/// backup off with (InvalidArgumentException, 400). The developer guide
/// says only that source record backup cannot be disabled once enabled;
/// this text is the one AWS returned for such an update, as reported in
/// the Firehose developer guide's issue tracker (awsdocs issue 11).
pub const DISABLE_REFUSED: &str = "Disabling S3 backup is not currently supported.";

/// UpdateDestination may turn an S3 or Redshift destination's source
/// record backup on (`Disabled` to `Enabled`) but never off again.
pub fn check_update(cur: &Json, next: &Json) -> Result<(), crate::error::FirehoseError> {
    let mode = |d: &Json| {
        d.get("S3BackupMode")
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    if mode(cur).as_deref() == Some("Enabled") && mode(next).as_deref() == Some("Disabled") {
        return Err(crate::error::FirehoseError::InvalidArgument(
            DISABLE_REFUSED.into(),
        ));
    }
    Ok(())
}
