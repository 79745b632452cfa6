//! S3 on the platform: REST-XML, claimed by SigV4 signing name `s3` and by
//! virtual-host style Host headers under the configured domain.
//! [`request`] finds the bucket, key and operation, checks the signature
//! and streams upload bodies into staged files; [`ops`] runs the
//! operations on [`riffle_s3::S3`] and writes AWS's XML.

use std::sync::Arc;

use http::StatusCode;
use riffle_s3::{S3Error, S3};

use crate::body::Body;
use crate::platform::{AwsService, BoxFuture, Request, Response, Route, Shared};

mod ops;
pub mod request;

/// The base domain of virtual-host addressing by default:
/// `<bucket>.s3.localhost`.
pub const DEFAULT_DOMAIN: &str = "s3.localhost";

/// Every operation Riffle's S3 serves (the metric labels).
pub const OPERATIONS: &[&str] = &[
    "ListBuckets",
    "CreateBucket",
    "DeleteBucket",
    "HeadBucket",
    "GetBucketLocation",
    "GetBucketVersioning",
    "ListObjects",
    "ListObjectsV2",
    "GetObject",
    "HeadObject",
    "PutObject",
    "CopyObject",
    "DeleteObject",
    "DeleteObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "ListMultipartUploads",
];

/// The largest buffered body: a DeleteObjects of 1,000 keys of 1 KiB, or a
/// CompleteMultipartUpload of 10,000 parts, with room for whitespace.
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// S3 on the shared port.
pub struct S3Service {
    pub s3: Arc<S3>,
    /// Virtual-host addressing: `<bucket>.<domain>`.
    pub domain: String,
}

impl S3Service {
    pub fn new(s3: Arc<S3>, domain: impl Into<String>) -> S3Service {
        S3Service {
            s3,
            domain: domain.into(),
        }
    }

    /// An S3 that keeps everything in memory (`--storage memory`, tests).
    pub fn in_memory(clock: Arc<dyn riffle_core::Clock>) -> S3Service {
        let fs: Arc<dyn riffle_fs::Fs> = Arc::new(riffle_fs::SimFs::new(0));
        let store = riffle_meta::Store::none();
        let ns = store
            .namespace(riffle_s3::NAMESPACE)
            .unwrap_or_else(|e| unreachable!("a fresh store has every namespace free: {e}"));
        let s3 = S3::open(fs, "/s3".into(), ns, clock)
            .unwrap_or_else(|e| unreachable!("an empty in-memory file system opens: {e}"));
        S3Service::new(s3, DEFAULT_DOMAIN)
    }
}

/// AWS's error document (none for HEAD and 304), with its status.
pub(crate) fn error_response(e: &S3Error, resource: &str, head: bool) -> Response {
    if let S3Error::Internal(detail) = e {
        tracing::error!(%detail, "S3 internal failure");
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let b = ops::base(status).extension(crate::platform::Outcome(e.code()));
    let request_id = b
        .headers_ref()
        .and_then(|h| h.get("x-amz-request-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if head || status == StatusCode::NOT_MODIFIED {
        return b
            .body(Body::empty())
            .unwrap_or_else(|_| Response::new(Body::empty()));
    }
    let mut w = riffle_s3::xml::Writer::bare("Error");
    w.elem("Code", e.code()).elem("Message", &e.message());
    for (k, v) in e.details() {
        w.elem(k, &v);
    }
    if !resource.is_empty() && matches!(e, S3Error::NoSuchKey(_) | S3Error::NoSuchBucket(_)) {
        w.elem("Resource", resource);
    }
    w.elem("RequestId", &request_id);
    b.header("content-type", "application/xml")
        .body(Body::full(w.finish("Error")))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

impl AwsService for S3Service {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn route(&self) -> Route {
        Route::Signing("s3")
    }

    fn knows(&self, op: &str) -> bool {
        OPERATIONS.contains(&op)
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn streams_body(&self, op: &str) -> bool {
        matches!(op, "PutObject" | "UploadPart")
    }

    fn operation_of(&self, parts: &http::request::Parts) -> String {
        request::operation(parts, &self.domain).to_owned()
    }

    fn claims_host(&self, parts: &http::request::Parts) -> bool {
        request::virtual_bucket(parts, &self.domain).is_some()
    }

    fn overloaded(&self, parts: &http::request::Parts, _op: &str) -> Response {
        error_response(&S3Error::SlowDown, "", parts.method == http::Method::HEAD)
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(ops::serve(self, req, shared))
    }

    fn gauges(&self) -> Vec<crate::platform::Gauge> {
        let (buckets, objects, bytes) = self.s3.counts();
        vec![
            crate::platform::Gauge {
                name: "riffle_s3_buckets",
                help: "S3 buckets.",
                value: buckets,
            },
            crate::platform::Gauge {
                name: "riffle_s3_objects",
                help: "S3 objects.",
                value: objects,
            },
            crate::platform::Gauge {
                name: "riffle_s3_object_bytes",
                help: "Bytes stored in S3 objects.",
                value: bytes,
            },
        ]
    }
}
