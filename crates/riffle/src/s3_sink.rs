//! Firehose's S3 destinations deliver to the embedded S3 in process: an
//! [`ObjectSink`] over [`riffle_s3::S3`].

use std::sync::Arc;

use bytes::Bytes;
use riffle_firehose::sink::{ObjectSink, SinkError};
use riffle_s3::{PutOptions, S3Error, S3};

/// The embedded S3 as Firehose's object store.
pub struct EmbeddedS3(pub Arc<S3>);

fn sink_error(e: S3Error) -> SinkError {
    match e {
        S3Error::NoSuchBucket(b) => SinkError::NoSuchBucket(b),
        S3Error::KeyTooLong | S3Error::InvalidArgument { .. } => SinkError::InvalidKey {
            key: String::new(),
            reason: e.message(),
        },
        e => SinkError::Io(format!("{}: {}", e.code(), e.message())),
    }
}

impl ObjectSink for EmbeddedS3 {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        content_type: Option<&'a str>,
        content_encoding: Option<&'a str>,
    ) -> riffle_firehose::deliver::BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let mut opts = PutOptions {
                content_type: content_type.map(str::to_owned),
                ..PutOptions::default()
            };
            if let Some(enc) = content_encoding {
                opts.headers
                    .insert("content-encoding".to_owned(), enc.to_owned());
            }
            self.0
                .put_object_with(bucket, key, body, opts)
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    S3Error::KeyTooLong | S3Error::InvalidArgument { .. } => {
                        SinkError::InvalidKey {
                            key: key.to_owned(),
                            reason: e.message(),
                        }
                    }
                    e => sink_error(e),
                })
        })
    }

    fn bucket_exists<'a>(
        &'a self,
        bucket: &'a str,
    ) -> riffle_firehose::deliver::BoxFuture<'a, Result<bool, SinkError>> {
        Box::pin(async move { Ok(self.0.head_bucket(bucket).is_ok()) })
    }
}
