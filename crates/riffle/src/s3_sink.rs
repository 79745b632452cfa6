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

/// Puts `--s3-endpoint` and `--s3-bucket-endpoint` in front of `local`
/// (the embedded S3 or a local directory): `local` itself when neither
/// is given.
pub fn with_external(
    local: Arc<dyn ObjectSink>,
    args: &crate::cli::ServeArgs,
) -> anyhow::Result<Arc<dyn ObjectSink>> {
    use riffle_firehose::external::{self, Credentials, Endpoint, ExternalS3, RouterSink};
    if args.s3_endpoint.is_none() && args.s3_bucket_endpoints.is_empty() {
        return Ok(local);
    }
    let (Some(id), Some(secret)) = (&args.s3_access_key_id, &args.s3_secret_access_key) else {
        anyhow::bail!(
            "external S3 endpoints need credentials: --s3-access-key-id and --s3-secret-access-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        );
    };
    let credentials = Credentials {
        access_key_id: id.clone(),
        secret_access_key: secret.clone(),
        session_token: args.s3_session_token.clone(),
        region: args.s3_region.clone(),
    };
    let sink = |e: Endpoint| -> Arc<dyn ObjectSink> {
        ExternalS3::new(e, credentials.clone(), args.s3_path_style)
    };
    let external = match &args.s3_endpoint {
        Some(url) => {
            let e = Endpoint::parse(url).map_err(|e| anyhow::anyhow!("--s3-endpoint {e}"))?;
            tracing::info!(endpoint = %e.url, "Firehose S3 destinations deliver to an external S3 endpoint");
            Some(sink(e))
        }
        None => None,
    };
    let mut buckets = std::collections::HashMap::new();
    for m in args
        .s3_bucket_endpoints
        .iter()
        .filter(|m| !m.trim().is_empty())
    {
        let (bucket, e) = external::parse_bucket_endpoint(m)
            .map_err(|e| anyhow::anyhow!("--s3-bucket-endpoint {e}"))?;
        tracing::info!(bucket = %bucket, endpoint = %e.url, "Firehose bucket on an external S3 endpoint");
        buckets.insert(bucket, sink(e));
    }
    Ok(Arc::new(RouterSink {
        local,
        external,
        buckets,
    }))
}

/// The embedded S3 as the objects Analytics reads (DiscoverInputSchema).
impl riffle_analytics::ObjectSource for EmbeddedS3 {
    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        max_bytes: usize,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Option<Bytes>, String>> + Send + 'a>,
    > {
        Box::pin(async move {
            let (row, file) = match self.0.open_object(bucket, key) {
                Ok(found) => found,
                Err(S3Error::NoSuchBucket(_) | S3Error::NoSuchKey(_)) => return Ok(None),
                Err(e) => return Err(format!("{}: {}", e.code(), e.message())),
            };
            let n = (row.size as usize).min(max_bytes);
            tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, 0).map(|()| Bytes::from(buf))
            })
            .await
            .map_err(|e| e.to_string())?
            .map(Some)
            .map_err(|e| e.to_string())
        })
    }
}
