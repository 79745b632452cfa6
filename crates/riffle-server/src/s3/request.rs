//! An S3 request before it reaches an operation: its bucket and key (path
//! or virtual-host addressing), its operation, its signature (S3's flavour
//! of SigV4: the payload hash is whatever `x-amz-content-sha256` says) and
//! its body, streamed into a staged file.

use std::collections::BTreeMap;

use base64::Engine;
use http::Method;
use http_body_util::BodyExt;
use riffle_s3::{Hashes, PutOptions, S3Error, Staged, Staging, S3};
use riffle_wire::chunked::{ChunkSigner, Decoder, FeedError};
use riffle_wire::{sigv2, sigv4};

use crate::header;
use crate::platform::{RequestBody, Shared};

/// Where a request points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Whether the bucket came from the Host header.
    pub virtual_host: bool,
}

/// Percent-decoding of a URL path (`+` stays `+`).
pub fn decode_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding for `encoding-type=url` listings and `Location`:
/// everything but unreserved characters and `/`.
pub fn encode_url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The request's host, without its port.
pub fn host(parts: &http::request::Parts) -> Option<&str> {
    let h = header(&parts.headers, "host").or_else(|| parts.uri.host())?;
    if h.starts_with('[') {
        return Some(h);
    }
    Some(h.split(':').next().unwrap_or(h))
}

/// The bucket named by a virtual-host style Host under `domain`.
pub fn virtual_bucket<'a>(parts: &'a http::request::Parts, domain: &str) -> Option<&'a str> {
    let h = host(parts)?;
    let bucket = h.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

/// Bucket and key, from the Host (virtual-host style) or the path.
pub fn address(parts: &http::request::Parts, domain: &str) -> Address {
    let path = decode_path(parts.uri.path());
    let path = path.strip_prefix('/').unwrap_or(&path);
    if let Some(bucket) = virtual_bucket(parts, domain) {
        return Address {
            bucket: Some(bucket.to_owned()),
            key: (!path.is_empty()).then(|| path.to_owned()),
            virtual_host: true,
        };
    }
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b, k),
        None => (path, ""),
    };
    Address {
        bucket: (!bucket.is_empty()).then(|| bucket.to_owned()),
        key: (!key.is_empty()).then(|| key.to_owned()),
        virtual_host: false,
    }
}

/// The decoded query parameters.
pub fn query(parts: &http::request::Parts) -> Vec<(String, String)> {
    sigv4::query_pairs(parts.uri.query().unwrap_or(""))
}

pub fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn has(q: &[(String, String)], name: &str) -> bool {
    q.iter().any(|(k, _)| k == name)
}

/// The operation a request names, as AWS's S3 API reference names it.
pub fn operation(parts: &http::request::Parts, domain: &str) -> &'static str {
    let a = address(parts, domain);
    let q = query(parts);
    let m = &parts.method;
    let copy = parts.headers.contains_key("x-amz-copy-source");
    match (&a.bucket, &a.key) {
        (None, _) if m == Method::GET => "ListBuckets",
        (None, _) => "Unknown",
        (Some(_), None) => match *m {
            Method::PUT if q.is_empty() => "CreateBucket",
            Method::DELETE if q.is_empty() => "DeleteBucket",
            Method::HEAD => "HeadBucket",
            Method::GET if has(&q, "location") => "GetBucketLocation",
            Method::GET if has(&q, "uploads") => "ListMultipartUploads",
            Method::GET if param(&q, "list-type") == Some("2") => "ListObjectsV2",
            Method::GET if has(&q, "versioning") => "GetBucketVersioning",
            Method::GET
                if q.iter().all(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "prefix" | "delimiter" | "marker" | "max-keys" | "encoding-type"
                    ) || k.starts_with("X-Amz-")
                }) =>
            {
                "ListObjects"
            }
            Method::POST if has(&q, "delete") => "DeleteObjects",
            _ => "Unknown",
        },
        (Some(_), Some(_)) => match *m {
            Method::PUT if has(&q, "partNumber") && has(&q, "uploadId") && !copy => "UploadPart",
            Method::PUT if has(&q, "partNumber") => "UploadPartCopy",
            Method::PUT if copy => "CopyObject",
            Method::PUT
                if q.iter()
                    .all(|(k, _)| k.starts_with("X-Amz-") || k == "x-id") =>
            {
                "PutObject"
            }
            Method::GET if has(&q, "uploadId") => "ListParts",
            Method::GET
                if !q.iter().any(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "acl" | "tagging" | "torrent" | "retention" | "legal-hold" | "attributes"
                    )
                }) =>
            {
                "GetObject"
            }
            Method::HEAD => "HeadObject",
            Method::DELETE if has(&q, "uploadId") => "AbortMultipartUpload",
            Method::DELETE
                if q.iter()
                    .all(|(k, _)| k.starts_with("X-Amz-") || k == "x-id") =>
            {
                "DeleteObject"
            }
            Method::POST if has(&q, "uploads") => "CreateMultipartUpload",
            Method::POST if has(&q, "uploadId") => "CompleteMultipartUpload",
            _ => "Unknown",
        },
    }
}

/// How the body is framed and what its signature promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `UNSIGNED-PAYLOAD`, or no header on an unsigned request.
    Unsigned,
    /// A hex SHA-256 the body must have.
    Sha256(String),
    /// `aws-chunked`, with chunk signatures or without.
    Chunked { signed: bool },
}

/// The outcome of S3's authentication.
pub struct Auth {
    pub region: String,
    pub payload: Payload,
    pub signer: Option<ChunkSigner>,
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Checks the signature as S3 does and says how to read the body.
pub fn authenticate(parts: &http::request::Parts, shared: &Shared) -> Result<Auth, S3Error> {
    let content_sha = header(&parts.headers, "x-amz-content-sha256").map(str::to_owned);
    let chunked = header(&parts.headers, "content-encoding")
        .is_some_and(|c| c.split(',').any(|e| e.trim() == "aws-chunked"));
    let payload = match content_sha.as_deref() {
        Some(s) if s.starts_with("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") => {
            Payload::Chunked { signed: true }
        }
        Some(s) if s.starts_with("STREAMING-") => Payload::Chunked { signed: false },
        // A hash covers the body as sent, whatever its encoding says.
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Payload::Sha256(h.to_ascii_lowercase())
        }
        _ if chunked => Payload::Chunked { signed: false },
        _ => Payload::Unsigned,
    };
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let mut with_host = headers.clone();
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
    if let Some(h) = authority.as_deref() {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            with_host.push(("host", h));
        }
        // The JS SDK's HTTP/2 handler signs the `:authority` pseudo-header.
        with_host.push((":authority", h));
    }
    let req = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &with_host,
        body: b"",
    };
    if let Some(v2) = sigv2::parse(header(&parts.headers, "authorization"), req.query) {
        return authenticate_v2(parts, shared, &with_host, &v2, payload);
    }
    let presigned = parts
        .uri
        .query()
        .is_some_and(|q| q.contains("X-Amz-Algorithm"));
    let sig = match sigv4::parse(&req) {
        Ok(s) => s,
        Err(sigv4::AuthError::MissingAuthenticationToken) if shared.credentials.is_empty() => {
            return Ok(Auth {
                region: shared.default_region.clone(),
                payload,
                signer: None,
            })
        }
        Err(sigv4::AuthError::MissingAuthenticationToken) => return Err(S3Error::AccessDenied),
        Err(e) if presigned => return Err(S3Error::AuthorizationQueryParametersError(e.message())),
        Err(e) => return Err(S3Error::AuthorizationHeaderMalformed(e.message())),
    };
    let mut signer = None;
    if !shared.credentials.is_empty() {
        let secret = shared
            .credentials
            .get(&sig.access_key)
            .ok_or_else(|| S3Error::InvalidAccessKeyId(sig.access_key.clone()))?;
        let hash = match (presigned, content_sha.as_deref()) {
            (true, _) => "UNSIGNED-PAYLOAD",
            (false, Some(h)) => h,
            (false, None) => EMPTY_SHA256,
        };
        sigv4::verify_with_payload(&req, &sig, secret, shared.clock.now_ms() / 1000, hash)
            .map_err(|e| match e {
                sigv4::AuthError::InvalidSignature(m) if m.starts_with("Signature expired") => {
                    if presigned {
                        S3Error::Expired("Request has expired".into())
                    } else {
                        S3Error::RequestTimeTooSkewed
                    }
                }
                sigv4::AuthError::InvalidSignature(m) if m.starts_with("Signature not yet") => {
                    S3Error::RequestTimeTooSkewed
                }
                sigv4::AuthError::IncompleteSignature(m) => {
                    S3Error::AuthorizationHeaderMalformed(m)
                }
                _ => {
                    tracing::debug!(signed = ?sig.signed_headers, "S3 signature mismatch");
                    S3Error::SignatureDoesNotMatch
                }
            })?;
        if payload == (Payload::Chunked { signed: true }) {
            signer = Some(ChunkSigner::new(
                sigv4::signing_key(secret, &sig),
                sig.clone(),
            ));
        }
    }
    Ok(Auth {
        region: if sig.region.is_empty() {
            shared.default_region.clone()
        } else {
            sig.region
        },
        payload,
        signer,
    })
}

/// Signature Version 2: checked when credentials are configured, the
/// presigned form's `Expires` too.
fn authenticate_v2(
    parts: &http::request::Parts,
    shared: &Shared,
    headers: &[(&str, &str)],
    sig: &sigv2::SigV2,
    payload: Payload,
) -> Result<Auth, S3Error> {
    let auth = Auth {
        region: shared.default_region.clone(),
        payload,
        signer: None,
    };
    if shared.credentials.is_empty() {
        return Ok(auth);
    }
    let secret = shared
        .credentials
        .get(&sig.access_key)
        .ok_or_else(|| S3Error::InvalidAccessKeyId(sig.access_key.clone()))?;
    if sig
        .expires
        .is_some_and(|e| e < shared.clock.now_ms() / 1000)
    {
        return Err(S3Error::Expired("Request has expired".into()));
    }
    // The signed resource names the bucket even when the Host does.
    let resource = match parts.extensions.get::<VirtualBucket>() {
        Some(VirtualBucket(b)) => format!("/{b}{}", parts.uri.path()),
        None => parts.uri.path().to_owned(),
    };
    let req = sigv2::Request {
        method: parts.method.as_str(),
        resource: &resource,
        query: parts.uri.query().unwrap_or(""),
        headers,
    };
    if !sigv2::verify(&req, sig, secret) {
        return Err(S3Error::SignatureDoesNotMatch);
    }
    Ok(auth)
}

/// The bucket a virtual-host style request named in its Host (set by the
/// service before authentication).
#[derive(Debug, Clone)]
pub struct VirtualBucket(pub String);

/// What a PutObject or CreateMultipartUpload says about the object.
pub fn put_options(parts: &http::request::Parts) -> Result<PutOptions, S3Error> {
    let h = &parts.headers;
    let mut headers = BTreeMap::new();
    for name in [
        "cache-control",
        "content-disposition",
        "content-language",
        "expires",
    ] {
        if let Some(v) = header(h, name) {
            headers.insert(name.to_owned(), v.to_owned());
        }
    }
    if let Some(enc) = header(h, "content-encoding") {
        let rest: Vec<&str> = enc
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && *e != "aws-chunked")
            .collect();
        if !rest.is_empty() {
            headers.insert("content-encoding".into(), rest.join(","));
        }
    }
    let mut metadata = BTreeMap::new();
    for (k, v) in h {
        if let Some(name) = k.as_str().strip_prefix("x-amz-meta-") {
            metadata.insert(
                name.to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            );
        }
    }
    let content_md5 = match header(h, "content-md5") {
        None => None,
        Some(v) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .map_err(|_| S3Error::InvalidDigest)?;
            Some(<[u8; 16]>::try_from(raw.as_slice()).map_err(|_| S3Error::InvalidDigest)?)
        }
    };
    let if_none_match = match header(h, "if-none-match") {
        None => false,
        Some("*") => true,
        Some(_) => return Err(S3Error::NotImplemented),
    };
    Ok(PutOptions {
        content_type: header(h, "content-type").map(str::to_owned),
        headers,
        metadata,
        content_md5,
        if_none_match,
        if_match: header(h, "if-match").map(str::to_owned),
    })
}

/// The checksum algorithms a request carries (in a header or a trailer)
/// that Riffle verifies: CRC32 and CRC32C.
fn checksums(parts: &http::request::Parts) -> (bool, bool) {
    let trailer = header(&parts.headers, "x-amz-trailer").unwrap_or("");
    let wants = |name: &str| parts.headers.contains_key(name) || trailer.contains(name);
    (
        wants("x-amz-checksum-crc32"),
        wants("x-amz-checksum-crc32c"),
    )
}

/// Bytes gathered before a write to the staged file.
const WRITE_BATCH: usize = 1 << 20;

/// Receives a body into a staged file, decoding `aws-chunked` and
/// checking every digest the request states.
pub async fn receive(
    s3: &S3,
    parts: &http::request::Parts,
    body: RequestBody,
    auth: Auth,
    max: u64,
) -> Result<Staged, S3Error> {
    let (crc32, crc32c) = checksums(parts);
    tracing::debug!(payload = ?auth.payload, crc32, crc32c, "receiving an upload");
    let want_sha = match &auth.payload {
        Payload::Sha256(h) => Some(h.clone()),
        _ => None,
    };
    let declared = |name: &str| header(&parts.headers, name).and_then(|v| v.parse::<u64>().ok());
    let expected_len = match auth.payload {
        Payload::Chunked { .. } => declared("x-amz-decoded-content-length"),
        _ => declared("content-length"),
    };
    if let Some(n) = expected_len.filter(|n| *n > max) {
        return Err(S3Error::EntityTooLarge { size: n, max });
    }
    let mut staging = Some(s3.stage(Hashes {
        sha256: want_sha.is_some(),
        crc32,
        crc32c,
    })?);
    let mut decoder =
        matches!(auth.payload, Payload::Chunked { .. }).then(|| Decoder::new(auth.signer));
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
    let mut total = 0u64;
    let mut incoming = match body {
        RequestBody::Stream(i) => Some(i),
        RequestBody::Full(b) => {
            feed(&mut decoder, &b, &mut pending)?;
            None
        }
        RequestBody::TooLarge => return Err(S3Error::EntityTooLarge { size: max + 1, max }),
    };
    loop {
        if pending.len() >= WRITE_BATCH || (incoming.is_none() && !pending.is_empty()) {
            total += pending.len() as u64;
            if total > max {
                return Err(S3Error::EntityTooLarge { size: total, max });
            }
            let mut st = staging.take().ok_or(S3Error::IncompleteBody)?;
            let buf = std::mem::take(&mut pending);
            let (st, buf) = tokio::task::spawn_blocking(move || {
                let r = st.write(&buf);
                (r.map(|()| st), buf)
            })
            .await
            .map_err(|e| S3Error::Internal(format!("write task: {e}")))?;
            staging = Some(st?);
            pending = buf;
            pending.clear();
        }
        let Some(inc) = incoming.as_mut() else {
            break;
        };
        match inc.frame().await {
            None => incoming = None,
            Some(Err(_)) => return Err(S3Error::IncompleteBody),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    feed(&mut decoder, &data, &mut pending)?;
                }
            }
        }
    }
    let trailers = match decoder {
        Some(d) => d.finish().map_err(|_| S3Error::IncompleteBody)?,
        None => Vec::new(),
    };
    if expected_len.is_some_and(|n| n != total) {
        return Err(S3Error::IncompleteBody);
    }
    let st: Staging = staging.ok_or(S3Error::IncompleteBody)?;
    let staged = tokio::task::spawn_blocking(move || st.finish())
        .await
        .map_err(|e| S3Error::Internal(format!("sync task: {e}")))??;
    if let Some(want) = want_sha {
        let got = hex::encode(staged.sha256.unwrap_or_default());
        if got != want {
            return Err(S3Error::ContentSha256Mismatch {
                client: want,
                computed: got,
            });
        }
    }
    let stated = |name: &str| {
        trailers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| header(&parts.headers, name))
    };
    let b64 = |n: u32| base64::engine::general_purpose::STANDARD.encode(n.to_be_bytes());
    if let (Some(v), Some(c)) = (stated("x-amz-checksum-crc32"), staged.crc32) {
        if v != b64(c) {
            return Err(S3Error::BadChecksum("CRC32"));
        }
    }
    if let (Some(v), Some(c)) = (stated("x-amz-checksum-crc32c"), staged.crc32c) {
        if v != b64(c) {
            return Err(S3Error::BadChecksum("CRC32C"));
        }
    }
    Ok(staged)
}

fn feed(decoder: &mut Option<Decoder>, data: &[u8], out: &mut Vec<u8>) -> Result<(), S3Error> {
    match decoder {
        None => {
            out.extend_from_slice(data);
            Ok(())
        }
        Some(d) => d
            .feed::<()>(data, &mut |b| {
                out.extend_from_slice(b);
                Ok(())
            })
            .map_err(|e| match e {
                FeedError::Chunk(riffle_wire::chunked::ChunkError::Signature) => {
                    S3Error::SignatureDoesNotMatch
                }
                _ => S3Error::IncompleteBody,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, host: &str) -> http::request::Parts {
        let (p, _) = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts();
        p
    }

    #[test]
    fn addressing() {
        let d = "s3.localhost";
        let a = address(&parts("GET", "/b/a%20b/c+d", "127.0.0.1:4567"), d);
        assert_eq!(
            (a.bucket.as_deref(), a.key.as_deref(), a.virtual_host),
            (Some("b"), Some("a b/c+d"), false)
        );
        let a = address(&parts("GET", "/k/x", "my.bkt.s3.localhost:4567"), d);
        assert_eq!(
            (a.bucket.as_deref(), a.key.as_deref(), a.virtual_host),
            (Some("my.bkt"), Some("k/x"), true)
        );
        let a = address(&parts("GET", "/", "s3.localhost:1"), d);
        assert_eq!(a.bucket, None);
    }

    #[test]
    fn operations() {
        let d = "s3.localhost";
        let op = |m: &str, u: &str| operation(&parts(m, u, "localhost"), d);
        assert_eq!(op("GET", "/"), "ListBuckets");
        assert_eq!(op("PUT", "/b"), "CreateBucket");
        assert_eq!(op("GET", "/b?list-type=2&prefix=a"), "ListObjectsV2");
        assert_eq!(op("GET", "/b?prefix=a"), "ListObjects");
        assert_eq!(op("GET", "/b?location"), "GetBucketLocation");
        assert_eq!(op("POST", "/b?delete"), "DeleteObjects");
        assert_eq!(op("PUT", "/b/k"), "PutObject");
        assert_eq!(op("PUT", "/b/k?partNumber=1&uploadId=u"), "UploadPart");
        assert_eq!(op("POST", "/b/k?uploads"), "CreateMultipartUpload");
        assert_eq!(op("POST", "/b/k?uploadId=u"), "CompleteMultipartUpload");
        assert_eq!(op("DELETE", "/b/k?uploadId=u"), "AbortMultipartUpload");
        assert_eq!(op("GET", "/b/k?uploadId=u"), "ListParts");
        assert_eq!(op("GET", "/b/k"), "GetObject");
        assert_eq!(op("PUT", "/b?tagging"), "Unknown");
    }
}
