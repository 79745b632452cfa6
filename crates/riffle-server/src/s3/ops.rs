//! The S3 operations over HTTP: one handler per operation, each turning
//! the request into a call on [`S3`] and its result into AWS's headers and
//! XML.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};
use riffle_s3::names::{MAX_KEYS, MAX_PART_BYTES, MAX_PUT_BYTES};
use riffle_s3::time::{http_date, iso8601, parse_date};
use riffle_s3::xml::{self, Writer};
use riffle_s3::{etag_matches, ListQuery, MetadataDirective, ObjectRow, PutOptions, S3Error, S3};

use super::request::{self, encode_url, param, Address};
use super::{error_response, S3Service};
use crate::body::Body;
use crate::header;
use crate::platform::{Request, RequestBody, Response, Shared};

type Result<T> = std::result::Result<T, S3Error>;

/// A response with S3's request ids (`x-amz-request-id`, `x-amz-id-2`).
pub(crate) fn base(status: StatusCode) -> http::response::Builder {
    let b = crate::base(status);
    let id = b
        .headers_ref()
        .and_then(|h| h.get("x-amzn-requestid"))
        .cloned();
    match id {
        Some(id) => b.header("x-amz-request-id", id),
        None => b,
    }
}

fn finish(b: http::response::Builder, body: Body) -> Response {
    b.body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn xml_ok(doc: String) -> Response {
    finish(
        base(StatusCode::OK).header("content-type", "application/xml"),
        Body::full(doc),
    )
}

fn no_content() -> Response {
    finish(base(StatusCode::NO_CONTENT), Body::empty())
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

fn owner(w: &mut Writer, tag: &str, account: &str) {
    w.open(tag)
        .elem("ID", account)
        .elem("DisplayName", "riffle")
        .close(tag);
}

pub(crate) async fn serve(svc: &S3Service, req: Request, shared: &Shared) -> Response {
    let head = req.parts.method == Method::HEAD;
    let addr = request::address(&req.parts, &svc.domain);
    let resource = match (&addr.bucket, &addr.key) {
        (Some(b), Some(k)) => format!("/{b}/{k}"),
        (Some(b), None) => format!("/{b}"),
        _ => "/".into(),
    };
    let Request {
        mut parts,
        body,
        operation,
    } = req;
    if let (true, Some(b)) = (addr.virtual_host, &addr.bucket) {
        parts.extensions.insert(request::VirtualBucket(b.clone()));
    }
    let streamed = matches!(body, RequestBody::Stream(_));
    let mut body = Some(body);
    match dispatch(svc, &parts, &operation, &mut body, shared, &addr).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(code = e.code(), %resource, "S3 request failed");
            let mut resp = error_response(&e, &resource, head);
            if streamed && !drained(body.take(), &parts).await {
                // The rest of the upload is still on the wire: the
                // connection cannot carry another request.
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            resp
        }
    }
}

/// Bytes of a refused upload read and dropped so the connection can be
/// reused; past it, the connection is closed instead.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

/// Reads what is left of a refused upload, unless the client waits for
/// `100 Continue` (it has sent nothing) or it is too large. Whether the
/// connection can carry another request.
async fn drained(body: Option<RequestBody>, parts: &http::request::Parts) -> bool {
    use http_body_util::BodyExt;
    let Some(RequestBody::Stream(mut incoming)) = body else {
        // Consumed by the operation, in part or in whole.
        return false;
    };
    if header(&parts.headers, "expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        return false;
    }
    let mut read = 0;
    let drain = async {
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else { return false };
            if let Ok(d) = frame.into_data() {
                read += d.len();
                if read > DRAIN_LIMIT {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), drain)
        .await
        .unwrap_or(false)
}

async fn dispatch(
    svc: &S3Service,
    parts: &http::request::Parts,
    operation: &str,
    body: &mut Option<RequestBody>,
    shared: &Shared,
    addr: &Address,
) -> Result<Response> {
    let auth = request::authenticate(parts, shared)?;
    let s3 = &svc.s3;
    let q = request::query(parts);
    let bucket = addr.bucket.as_deref().unwrap_or("");
    let key = addr.key.as_deref().unwrap_or("");
    let whole = |b: &Option<RequestBody>| -> Result<Bytes> {
        match b {
            Some(RequestBody::Full(b)) => Ok(b.clone()),
            Some(RequestBody::TooLarge) => Err(S3Error::MalformedXml),
            _ => Ok(Bytes::new()),
        }
    };
    let stream = |b: &mut Option<RequestBody>| b.take().unwrap_or(RequestBody::Full(Bytes::new()));
    match operation {
        "ListBuckets" => Ok(list_buckets(s3, shared)),
        "CreateBucket" => create_bucket(s3, bucket, &whole(body)?, &auth.region).await,
        "DeleteBucket" => {
            s3.delete_bucket(bucket).await?;
            Ok(no_content())
        }
        "HeadBucket" => {
            let b = s3.head_bucket(bucket)?;
            Ok(finish(
                base(StatusCode::OK).header("x-amz-bucket-region", b.region),
                Body::empty(),
            ))
        }
        "GetBucketLocation" => {
            let b = s3.head_bucket(bucket)?;
            let region = if b.region == "us-east-1" {
                ""
            } else {
                &b.region
            };
            let doc = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
                xml::NS,
                xml::escape(region)
            );
            Ok(xml_ok(doc))
        }
        "GetBucketVersioning" => {
            s3.head_bucket(bucket)?;
            let w = Writer::new("VersioningConfiguration");
            Ok(xml_ok(w.finish("VersioningConfiguration")))
        }
        "ListObjectsV2" => list_objects(s3, bucket, &q, true, shared),
        "ListObjects" => list_objects(s3, bucket, &q, false, shared),
        "GetObject" | "HeadObject" => get_object(s3, bucket, key, &q, parts).await,
        "PutObject" => {
            let mut opts = request::put_options(parts)?;
            s3.head_bucket(bucket)?;
            riffle_s3::names::check_key(key)?;
            if opts.content_type.is_none() {
                opts.content_type = Some("binary/octet-stream".into());
            }
            let staged = request::receive(s3, parts, stream(body), auth, MAX_PUT_BYTES).await?;
            let row = s3.put_staged(bucket, key, staged, opts).await?;
            Ok(finish(
                base(StatusCode::OK).header("etag", quoted(&row.etag)),
                Body::empty(),
            ))
        }
        "CopyObject" => copy_object(s3, bucket, key, parts).await,
        "DeleteObject" => {
            s3.delete_object(bucket, key).await?;
            Ok(no_content())
        }
        "DeleteObjects" => delete_objects(s3, bucket, &whole(body)?).await,
        "CreateMultipartUpload" => {
            let mut opts = request::put_options(parts)?;
            if opts.content_type.is_none() {
                opts.content_type = Some("binary/octet-stream".into());
            }
            let u = s3.create_upload(bucket, key, opts).await?;
            let mut w = Writer::new("InitiateMultipartUploadResult");
            w.elem("Bucket", bucket)
                .elem("Key", key)
                .elem("UploadId", &u.id);
            Ok(xml_ok(w.finish("InitiateMultipartUploadResult")))
        }
        "UploadPart" => {
            let id = param(&q, "uploadId").unwrap_or("");
            let number = part_number(param(&q, "partNumber").unwrap_or(""))?;
            let md5 = request::put_options(parts)?.content_md5;
            // The upload must exist before its body is read.
            s3.list_uploads(bucket, key)?
                .iter()
                .find(|u| u.id == id && u.key == key)
                .ok_or_else(|| S3Error::NoSuchUpload(id.to_owned()))?;
            let staged = request::receive(s3, parts, stream(body), auth, MAX_PART_BYTES).await?;
            let etag = s3.upload_part(bucket, key, id, number, staged, md5).await?;
            Ok(finish(
                base(StatusCode::OK).header("etag", quoted(&etag)),
                Body::empty(),
            ))
        }
        "UploadPartCopy" => {
            let id = param(&q, "uploadId").unwrap_or("");
            let number = part_number(param(&q, "partNumber").unwrap_or(""))?;
            let (src_bucket, src_key) = copy_source(parts)?;
            let range = match header(&parts.headers, "x-amz-copy-source-range") {
                None => None,
                Some(r) => Some(copy_range(r)?),
            };
            let etag = s3
                .upload_part_copy(bucket, key, id, number, &src_bucket, &src_key, range)
                .await?;
            let mut w = Writer::new("CopyPartResult");
            w.elem("LastModified", &iso8601(shared.clock.now_ms()))
                .elem("ETag", &quoted(&etag));
            Ok(xml_ok(w.finish("CopyPartResult")))
        }
        "CompleteMultipartUpload" => {
            complete_upload(s3, bucket, key, &q, parts, &whole(body)?, addr).await
        }
        "AbortMultipartUpload" => {
            s3.abort_upload(bucket, key, param(&q, "uploadId").unwrap_or(""))
                .await?;
            Ok(no_content())
        }
        "ListParts" => list_parts(s3, bucket, key, &q, shared).await,
        "ListMultipartUploads" => list_uploads(s3, bucket, &q, shared),
        _ => Err(S3Error::NotImplemented),
    }
}

fn part_number(s: &str) -> Result<u32> {
    s.parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| S3Error::InvalidArgument {
            message: "Part number must be an integer between 1 and 10000, inclusive".into(),
            name: "partNumber".into(),
            value: s.to_owned(),
        })
}

fn list_buckets(s3: &S3, shared: &Shared) -> Response {
    let mut w = Writer::new("ListAllMyBucketsResult");
    owner(&mut w, "Owner", &shared.account);
    w.open("Buckets");
    for b in s3.list_buckets() {
        w.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(b.created_ms))
            .elem("BucketRegion", &b.region)
            .close("Bucket");
    }
    w.close("Buckets");
    xml_ok(w.finish("ListAllMyBucketsResult"))
}

async fn create_bucket(s3: &S3, bucket: &str, body: &[u8], region: &str) -> Result<Response> {
    let mut region = region.to_owned();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let doc = xml::parse(body)?;
        if doc.name != "CreateBucketConfiguration" {
            return Err(S3Error::MalformedXml);
        }
        if let Some(c) = doc.text_of("LocationConstraint") {
            if c == "us-east-1" {
                return Err(S3Error::InvalidLocationConstraint);
            }
            if !c.is_empty() {
                region = if c == "EU" {
                    "eu-west-1".into()
                } else {
                    c.to_owned()
                };
            }
        }
    }
    s3.create_bucket(bucket, &region).await?;
    Ok(finish(
        base(StatusCode::OK).header("location", format!("/{bucket}")),
        Body::empty(),
    ))
}

fn max_keys(q: &[(String, String)], name: &str) -> Result<usize> {
    match param(q, name) {
        None => Ok(MAX_KEYS),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(MAX_KEYS))
            .ok_or_else(|| S3Error::InvalidArgument {
                message: "Provided max-keys not an integer or within integer range".into(),
                name: name.into(),
                value: v.to_owned(),
            }),
    }
}

/// Continuation tokens are opaque to clients: `k<key>` or `p<prefix>` in
/// base64.
fn token(last: &str, is_prefix: bool) -> String {
    let mut s = String::with_capacity(last.len() + 1);
    s.push(if is_prefix { 'p' } else { 'k' });
    s.push_str(last);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn untoken(t: &str) -> Result<(String, bool)> {
    let bad = || S3Error::InvalidArgument {
        message: "The continuation token provided is incorrect".into(),
        name: "continuation-token".into(),
        value: t.to_owned(),
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| bad())?;
    let s = String::from_utf8(raw).map_err(|_| bad())?;
    match s.split_at_checked(1) {
        Some(("k", k)) => Ok((k.to_owned(), false)),
        Some(("p", p)) => Ok((p.to_owned(), true)),
        _ => Err(bad()),
    }
}

fn list_objects(
    s3: &S3,
    bucket: &str,
    q: &[(String, String)],
    v2: bool,
    shared: &Shared,
) -> Result<Response> {
    let url = match param(q, "encoding-type") {
        None => false,
        Some("url") => true,
        Some(v) => {
            return Err(S3Error::InvalidArgument {
                message: "Invalid Encoding Method specified in Request".into(),
                name: "encoding-type".into(),
                value: v.to_owned(),
            })
        }
    };
    let enc = |s: &str| if url { encode_url(s) } else { s.to_owned() };
    let prefix = param(q, "prefix").unwrap_or("").to_owned();
    let delimiter = param(q, "delimiter").map(str::to_owned);
    let max = max_keys(q, "max-keys")?;
    let mut query = ListQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        max_keys: max,
        ..ListQuery::default()
    };
    let continuation = if v2 {
        param(q, "continuation-token")
    } else {
        None
    };
    if let Some(t) = continuation {
        let (after, is_prefix) = untoken(t)?;
        if is_prefix {
            query.skip_prefix = Some(after.clone());
        }
        query.after = Some(after);
    } else if let Some(a) = param(q, if v2 { "start-after" } else { "marker" }) {
        query.after = Some(a.to_owned());
    }
    let listing = s3.list_objects(bucket, &query)?;
    let mut w = Writer::new("ListBucketResult");
    w.elem("Name", bucket).elem("Prefix", &enc(&prefix));
    if v2 {
        if let Some(a) = param(q, "start-after") {
            w.elem("StartAfter", &enc(a));
        }
        if let Some(t) = continuation {
            w.elem("ContinuationToken", t);
        }
        w.elem(
            "KeyCount",
            &(listing.objects.len() + listing.common_prefixes.len()).to_string(),
        );
    } else {
        w.elem("Marker", &enc(param(q, "marker").unwrap_or("")));
    }
    w.elem("MaxKeys", &max.to_string());
    if let Some(d) = &delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem(
        "IsTruncated",
        if listing.truncated { "true" } else { "false" },
    );
    if listing.truncated {
        if let Some(last) = &listing.last {
            let is_prefix = listing.common_prefixes.last() == Some(last);
            if v2 {
                w.elem("NextContinuationToken", &token(last, is_prefix));
            } else if delimiter.is_some() {
                w.elem("NextMarker", &enc(last));
            }
        }
    }
    let fetch_owner = !v2 || param(q, "fetch-owner") == Some("true");
    for o in &listing.objects {
        w.open("Contents")
            .elem("Key", &enc(&o.key))
            .elem("LastModified", &iso8601(o.last_modified_ms))
            .elem("ETag", &quoted(&o.etag))
            .elem("Size", &o.size.to_string())
            .elem("StorageClass", "STANDARD");
        if fetch_owner {
            owner(&mut w, "Owner", &shared.account);
        }
        w.close("Contents");
    }
    for p in &listing.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc(p))
            .close("CommonPrefixes");
    }
    Ok(xml_ok(w.finish("ListBucketResult")))
}

/// The byte range a `Range` header asks of an object of `size` bytes:
/// `None` for the whole object (no header, or one S3 ignores).
fn range(h: Option<&str>, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(h) = h else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = || S3Error::InvalidRange {
        range: h.to_owned(),
        size,
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(s), Ok(e)) if s <= e => (s, e.min(size.saturating_sub(1))),
        (Ok(_), Ok(_)) => return Ok(None),
        (Ok(s), Err(_)) if b.is_empty() => (s, size.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                return Err(unsatisfiable());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return Ok(None),
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end)))
}

/// AWS's evaluation of `If-Match`, `If-Unmodified-Since`,
/// `If-None-Match` and `If-Modified-Since` on a GET or HEAD.
fn check_conditions(parts: &http::request::Parts, o: &ObjectRow) -> Result<()> {
    let h = &parts.headers;
    let modified = o.last_modified_ms / 1000;
    let if_match = header(h, "if-match");
    if let Some(m) = if_match {
        if !etag_matches(m, &o.etag) {
            return Err(S3Error::PreconditionFailed("If-Match"));
        }
    }
    if if_match.is_none() {
        if let Some(t) = header(h, "if-unmodified-since").and_then(parse_date) {
            if modified > t {
                return Err(S3Error::PreconditionFailed("If-Unmodified-Since"));
            }
        }
    }
    let if_none = header(h, "if-none-match");
    if let Some(m) = if_none {
        if etag_matches(m, &o.etag) {
            return Err(S3Error::NotModified);
        }
    }
    if if_none.is_none() {
        if let Some(t) = header(h, "if-modified-since").and_then(parse_date) {
            if modified <= t {
                return Err(S3Error::NotModified);
            }
        }
    }
    Ok(())
}

/// Bytes read at a time when streaming an object out.
const READ_PIECE: usize = 256 * 1024;
/// Objects up to this size are read whole.
const WHOLE: u64 = 1 << 20;

async fn get_object(
    s3: &S3,
    bucket: &str,
    key: &str,
    q: &[(String, String)],
    parts: &http::request::Parts,
) -> Result<Response> {
    let head = parts.method == Method::HEAD;
    let (o, file) = s3.open_object(bucket, key)?;
    check_conditions(parts, &o)?;
    let rng = range(header(&parts.headers, "range"), o.size)?;
    let (status, start, len) = match rng {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, o.size),
    };
    let mut b = base(status)
        .header("etag", quoted(&o.etag))
        .header("last-modified", http_date(o.last_modified_ms))
        .header("accept-ranges", "bytes")
        .header("content-length", len.to_string());
    let override_of = |name: &str| param(q, &format!("response-{name}"));
    let content_type = override_of("content-type")
        .map(str::to_owned)
        .or_else(|| o.content_type.clone())
        .unwrap_or_else(|| "binary/octet-stream".into());
    b = b.header("content-type", content_type);
    for (k, v) in &o.headers {
        if override_of(k).is_none() {
            b = b.header(k.as_str(), v.as_str());
        }
    }
    for name in [
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "expires",
    ] {
        if let Some(v) = override_of(name) {
            b = b.header(name, v);
        }
    }
    for (k, v) in &o.metadata {
        b = b.header(format!("x-amz-meta-{k}"), v.as_str());
    }
    if o.parts > 0 {
        b = b.header("x-amz-mp-parts-count", o.parts.to_string());
    }
    if let Some((s, e)) = rng {
        b = b.header("content-range", format!("bytes {s}-{e}/{}", o.size));
    }
    if head || len == 0 {
        return Ok(finish(b, Body::empty()));
    }
    if len <= WHOLE {
        let data = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, start).map(|()| buf)
        })
        .await
        .map_err(|e| S3Error::Internal(format!("read task: {e}")))??;
        return Ok(finish(b, Body::full(data)));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut pos = start;
        let end = start + len;
        while pos < end {
            let n = ((end - pos) as usize).min(READ_PIECE);
            let f = file.clone();
            let piece = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                f.read_exact_at(&mut buf, pos).map(|()| buf)
            })
            .await;
            let Ok(Ok(piece)) = piece else {
                tracing::error!("reading an S3 object failed; the response is cut short");
                return;
            };
            if tx.send(Bytes::from(piece)).await.is_err() {
                return;
            }
            pos += n as u64;
        }
    });
    Ok(finish(b, Body::Channel(rx)))
}

/// `x-amz-copy-source`: `[/]<bucket>/<key>[?versionId=…]`, URL-encoded.
fn copy_source(parts: &http::request::Parts) -> Result<(String, String)> {
    let raw = header(&parts.headers, "x-amz-copy-source").unwrap_or("");
    let source = request::decode_path(raw.split('?').next().unwrap_or(""));
    let source = source.trim_start_matches('/');
    source
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .map(|(b, k)| (b.to_owned(), k.to_owned()))
        .ok_or_else(|| S3Error::InvalidArgument {
            message: "Copy Source must mention the source bucket and key: sourcebucket/sourcekey"
                .into(),
            name: "x-amz-copy-source".into(),
            value: raw.to_owned(),
        })
}

/// `x-amz-copy-source-range: bytes=<first>-<last>`.
fn copy_range(r: &str) -> Result<(u64, u64)> {
    r.trim()
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| S3Error::InvalidArgument {
            message: "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy".into(),
            name: "x-amz-copy-source-range".into(),
            value: r.to_owned(),
        })
}

async fn copy_object(
    s3: &S3,
    bucket: &str,
    key: &str,
    parts: &http::request::Parts,
) -> Result<Response> {
    let (src_bucket, src_key) = copy_source(parts)?;
    let (src_bucket, src_key) = (src_bucket.as_str(), src_key.as_str());
    let src = s3.head_object(src_bucket, src_key)?;
    if let Some(m) = header(&parts.headers, "x-amz-copy-source-if-match") {
        if !etag_matches(m, &src.etag) {
            return Err(S3Error::PreconditionFailed("x-amz-copy-source-If-Match"));
        }
    }
    if let Some(m) = header(&parts.headers, "x-amz-copy-source-if-none-match") {
        if etag_matches(m, &src.etag) {
            return Err(S3Error::PreconditionFailed(
                "x-amz-copy-source-If-None-Match",
            ));
        }
    }
    let opts = request::put_options(parts)?;
    let directive = match header(&parts.headers, "x-amz-metadata-directive") {
        Some("REPLACE") => MetadataDirective::Replace(PutOptions {
            content_type: opts
                .content_type
                .clone()
                .or_else(|| Some("binary/octet-stream".into())),
            headers: opts.headers.clone(),
            metadata: opts.metadata.clone(),
            ..PutOptions::default()
        }),
        None | Some("COPY") => MetadataDirective::Copy,
        Some(v) => {
            return Err(S3Error::InvalidArgument {
                message: "Unknown metadata directive.".into(),
                name: "x-amz-metadata-directive".into(),
                value: v.to_owned(),
            })
        }
    };
    let row = s3
        .copy_object(src_bucket, src_key, bucket, key, directive, opts)
        .await?;
    let mut w = Writer::new("CopyObjectResult");
    w.elem("LastModified", &iso8601(row.last_modified_ms))
        .elem("ETag", &quoted(&row.etag));
    Ok(xml_ok(w.finish("CopyObjectResult")))
}

async fn delete_objects(s3: &S3, bucket: &str, body: &[u8]) -> Result<Response> {
    s3.head_bucket(bucket)?;
    let doc = xml::parse(body)?;
    if doc.name != "Delete" {
        return Err(S3Error::MalformedXml);
    }
    let quiet = doc.text_of("Quiet").is_some_and(|q| q.trim() == "true");
    let keys: Vec<String> = doc
        .all("Object")
        .map(|o| o.text_of("Key").map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or(S3Error::MalformedXml)?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(S3Error::MalformedXml);
    }
    let mut w = Writer::new("DeleteResult");
    for k in &keys {
        match s3.delete_object(bucket, k).await {
            Ok(()) => {
                if !quiet {
                    w.open("Deleted").elem("Key", k).close("Deleted");
                }
            }
            Err(e) => {
                w.open("Error")
                    .elem("Key", k)
                    .elem("Code", e.code())
                    .elem("Message", &e.message())
                    .close("Error");
            }
        }
    }
    Ok(xml_ok(w.finish("DeleteResult")))
}

async fn complete_upload(
    s3: &S3,
    bucket: &str,
    key: &str,
    q: &[(String, String)],
    parts: &http::request::Parts,
    body: &[u8],
    addr: &Address,
) -> Result<Response> {
    let id = param(q, "uploadId").unwrap_or("");
    let doc = xml::parse(body)?;
    if doc.name != "CompleteMultipartUpload" {
        return Err(S3Error::MalformedXml);
    }
    let mut wanted = Vec::new();
    for p in doc.all("Part") {
        let n = p
            .text_of("PartNumber")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .ok_or(S3Error::MalformedXml)?;
        let etag = p.text_of("ETag").ok_or(S3Error::MalformedXml)?;
        wanted.push((n, etag.trim().to_owned()));
    }
    let mut conditions = PutOptions::default();
    if let Ok(o) = request::put_options(parts) {
        conditions.if_none_match = o.if_none_match;
        conditions.if_match = o.if_match;
    }
    let row = s3
        .complete_upload(bucket, key, id, &wanted, conditions)
        .await?;
    let host = request::host(parts).unwrap_or("localhost");
    let location = if addr.virtual_host {
        format!("http://{host}/{}", encode_url(key))
    } else {
        format!("http://{host}/{bucket}/{}", encode_url(key))
    };
    let mut w = Writer::new("CompleteMultipartUploadResult");
    w.elem("Location", &location)
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &quoted(&row.etag));
    Ok(xml_ok(w.finish("CompleteMultipartUploadResult")))
}

async fn list_parts(
    s3: &S3,
    bucket: &str,
    key: &str,
    q: &[(String, String)],
    shared: &Shared,
) -> Result<Response> {
    let id = param(q, "uploadId").unwrap_or("");
    let marker: u32 = param(q, "part-number-marker")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let max = max_keys(q, "max-parts")?;
    let all = s3.list_parts(bucket, key, id).await?;
    let after: Vec<_> = all.iter().filter(|p| p.number > marker).collect();
    let page: Vec<_> = after.iter().take(max).collect();
    let truncated = after.len() > page.len();
    let mut w = Writer::new("ListPartsResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", id)
        .elem("PartNumberMarker", &marker.to_string())
        .elem(
            "NextPartNumberMarker",
            &page.last().map_or(0, |p| p.number).to_string(),
        )
        .elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    for p in page {
        w.open("Part")
            .elem("PartNumber", &p.number.to_string())
            .elem("LastModified", &iso8601(p.last_modified_ms))
            .elem("ETag", &quoted(&p.etag))
            .elem("Size", &p.size.to_string())
            .close("Part");
    }
    owner(&mut w, "Initiator", &shared.account);
    owner(&mut w, "Owner", &shared.account);
    w.elem("StorageClass", "STANDARD");
    Ok(xml_ok(w.finish("ListPartsResult")))
}

fn list_uploads(
    s3: &S3,
    bucket: &str,
    q: &[(String, String)],
    shared: &Shared,
) -> Result<Response> {
    let prefix = param(q, "prefix").unwrap_or("");
    let uploads: Vec<Arc<riffle_s3::UploadRow>> = s3.list_uploads(bucket, prefix)?;
    let mut w = Writer::new("ListMultipartUploadsResult");
    w.elem("Bucket", bucket)
        .elem("KeyMarker", "")
        .elem("UploadIdMarker", "")
        .elem("Prefix", prefix)
        .elem("MaxUploads", "1000")
        .elem("IsTruncated", "false");
    for u in uploads.iter().take(1000) {
        w.open("Upload").elem("Key", &u.key).elem("UploadId", &u.id);
        owner(&mut w, "Initiator", &shared.account);
        owner(&mut w, "Owner", &shared.account);
        w.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(u.initiated_ms))
            .close("Upload");
    }
    Ok(xml_ok(w.finish("ListMultipartUploadsResult")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str| range(Some(h), 100);
        assert_eq!(r("bytes=0-9").unwrap(), Some((0, 9)));
        assert_eq!(r("bytes=90-200").unwrap(), Some((90, 99)));
        assert_eq!(r("bytes=-10").unwrap(), Some((90, 99)));
        assert_eq!(r("bytes=95-").unwrap(), Some((95, 99)));
        assert_eq!(r("bytes=5-1").unwrap(), None);
        assert_eq!(r("items=0-1").unwrap(), None);
        assert_eq!(
            r("bytes=100-"),
            Err(S3Error::InvalidRange {
                range: "bytes=100-".into(),
                size: 100
            })
        );
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(
            untoken(&token("a/b c", true)).unwrap(),
            ("a/b c".into(), true)
        );
        assert_eq!(untoken(&token("k", false)).unwrap(), ("k".into(), false));
        assert!(untoken("!!").is_err());
    }
}
