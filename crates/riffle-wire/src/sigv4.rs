//! AWS Signature Version 4: parsing of the `Authorization` header and the
//! presigned query form, and verification against known secret keys.
//!
//! Parsing always runs (it yields the region of the credential scope and the
//! pre-auth errors AWS gives for malformed requests); verification runs only
//! when the server was given credentials.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The parts of a request that a signature covers.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Header names and values as received (any case).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl Request<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A parsed signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` (or `Date`) of the request, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// Seconds a presigned request stays valid.
    pub expires: Option<u64>,
    presigned: bool,
}

/// A pre-auth failure, named as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    MissingAuthenticationToken,
    IncompleteSignature(String),
    InvalidSignature(String),
    UnrecognizedClient,
}

impl AuthError {
    pub fn error_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
        }
    }

    pub fn message(&self) -> String {
        match self {
            AuthError::MissingAuthenticationToken => "Missing Authentication Token".into(),
            AuthError::IncompleteSignature(m) | AuthError::InvalidSignature(m) => m.clone(),
            AuthError::UnrecognizedClient => {
                "The security token included in the request is invalid.".into()
            }
        }
    }

    /// Missing or unrecognised credentials are 403 on AWS; malformed ones 400.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::IncompleteSignature(_) => 400,
            _ => 403,
        }
    }
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Parses the signature of a request, from its header or its query.
pub fn parse(req: &Request) -> Result<Signature, AuthError> {
    if let Some(auth) = req.header("authorization") {
        return parse_header(req, auth);
    }
    let q = query_pairs(req.query);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if get("X-Amz-Algorithm").is_some() {
        return parse_query(&get);
    }
    Err(AuthError::MissingAuthenticationToken)
}

fn parse_header(req: &Request, auth: &str) -> Result<Signature, AuthError> {
    let rest = auth.trim_start();
    // A header of another scheme has none of the parameters, and fails below.
    let params = rest.strip_prefix(ALGORITHM).unwrap_or("");
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in params.split(',') {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "Credential" => credential = Some(v.trim().to_owned()),
                "SignedHeaders" => signed = Some(v.trim().to_owned()),
                "Signature" => signature = Some(v.trim().to_owned()),
                _ => {}
            }
        }
    }
    let date = req.header("x-amz-date").or_else(|| req.header("date"));
    let mut missing = Vec::new();
    if credential.is_none() {
        missing.push("Authorization header requires 'Credential' parameter.");
    }
    if signature.is_none() {
        missing.push("Authorization header requires 'Signature' parameter.");
    }
    if signed.is_none() {
        missing.push("Authorization header requires 'SignedHeaders' parameter.");
    }
    if date.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    }
    if !missing.is_empty() {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Authorization={auth}",
            missing.join(" ")
        )));
    }
    let credential = credential.unwrap_or_default();
    let (access_key, date_s, region, service) = split_credential(&credential)?;
    Ok(Signature {
        access_key,
        date: date_s,
        region,
        service,
        signed_headers: signed
            .unwrap_or_default()
            .split(';')
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        signature: signature.unwrap_or_default(),
        amz_date: date.unwrap_or_default().to_owned(),
        expires: None,
        presigned: false,
    })
}

fn parse_query(get: &dyn Fn(&str) -> Option<String>) -> Result<Signature, AuthError> {
    let mut missing = Vec::new();
    for k in [
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ] {
        if get(k).is_none() {
            missing.push(format!("AWS query-string parameters must include '{k}'."));
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Re-examine the query-string parameters.",
            missing.join(" ")
        )));
    }
    let (access_key, date, region, service) =
        split_credential(&get("X-Amz-Credential").unwrap_or_default())?;
    Ok(Signature {
        access_key,
        date,
        region,
        service,
        signed_headers: get("X-Amz-SignedHeaders")
            .unwrap_or_default()
            .split(';')
            .map(|s| s.to_ascii_lowercase())
            .collect(),
        signature: get("X-Amz-Signature").unwrap_or_default(),
        amz_date: get("X-Amz-Date").unwrap_or_default(),
        expires: get("X-Amz-Expires").and_then(|e| e.parse().ok()),
        presigned: true,
    })
}

fn split_credential(c: &str) -> Result<(String, String, String, String), AuthError> {
    let parts: Vec<&str> = c.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential should be scoped to a valid region. Credential={c}"
        )));
    }
    Ok((
        parts[0].to_owned(),
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    ))
}

/// Splits a raw query string into decoded pairs.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
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
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && c == b'/')
        {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// Seconds between the Unix epoch and a `YYYYMMDDTHHMMSSZ` stamp.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from civil, proleptic Gregorian.
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// `YYYYMMDDTHHMMSSZ` for epoch seconds.
pub fn format_amz_date(secs: i64) -> String {
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = riffle_core::clock::civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Verifies `sig` over `req` with `secret`, and the request time against
/// `now` (epoch seconds) with AWS's 5-minute skew allowance.
pub fn verify(req: &Request, sig: &Signature, secret: &str, now: i64) -> Result<(), AuthError> {
    verify_with_payload(req, sig, secret, now, &payload_hash(req))
}

/// [`verify`] with the canonical request's payload hash given: S3 signs
/// the value of `x-amz-content-sha256` (a hash, `UNSIGNED-PAYLOAD` or a
/// `STREAMING-*` marker) rather than a hash of the body, which it may not
/// have read yet.
pub fn verify_with_payload(
    req: &Request,
    sig: &Signature,
    secret: &str,
    now: i64,
    payload_hash: &str,
) -> Result<(), AuthError> {
    let stamp = parse_amz_date(&sig.amz_date).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            sig.amz_date
        ))
    })?;
    if sig.presigned {
        let expires = sig.expires.unwrap_or(900) as i64;
        if now > stamp + expires {
            return Err(AuthError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} - {} sec.)",
                format_amz_date(stamp + expires),
                format_amz_date(now),
                format_amz_date(now),
                expires
            )));
        }
    } else if now - stamp > 300 {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            sig.amz_date,
            format_amz_date(now - 300),
            format_amz_date(now)
        )));
    } else if stamp - now > 300 {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            sig.amz_date,
            format_amz_date(now + 300),
            format_amz_date(now)
        )));
    }
    let expected = compute_with_payload(req, sig, secret, payload_hash);
    if !constant_time_eq(expected.as_bytes(), sig.signature.as_bytes()) {
        return Err(AuthError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .into(),
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The payload hash of the canonical request: always the SHA-256 of the body
/// as received. Kinesis is not S3: an `x-amz-content-sha256` header is signed
/// like any other header but never stands in for the body, so a body that
/// differs from the one signed (a tampered or replayed request), or one
/// signed as `UNSIGNED-PAYLOAD` or `STREAMING-*` (markers only S3 honours),
/// fails with `InvalidSignatureException`, as on AWS.
pub fn payload_hash(req: &Request) -> String {
    hex::encode(Sha256::digest(req.body))
}

/// The hex signature AWS would compute for `req`.
pub fn compute(req: &Request, sig: &Signature, secret: &str) -> String {
    compute_with_payload(req, sig, secret, &payload_hash(req))
}

/// The hex signature AWS would compute for `req` with `payload_hash` as
/// the canonical request's last line.
pub fn compute_with_payload(
    req: &Request,
    sig: &Signature,
    secret: &str,
    payload_hash: &str,
) -> String {
    let mut query: Vec<(String, String)> = query_pairs(req.query)
        .into_iter()
        .filter(|(k, _)| !(sig.presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in &sig.signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(&percent_decode(path), true),
        canonical_query,
        canonical_headers,
        sig.signed_headers.join(";"),
        payload_hash
    );
    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    let to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        sig.amz_date,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = signing_key(secret, sig);
    hex::encode(hmac(&k, to_sign.as_bytes()))
}

/// Signs an outgoing request (the client side of [`verify`]): returns the
/// `Authorization` header value for `req` as signed at `now` (epoch
/// seconds) with `access_key`/`secret` in `region` for `service`, over the
/// headers of `req` (which must include `host`, `x-amz-date` with
/// `format_amz_date(now)` and, for S3, `x-amz-content-sha256` equal to
/// `payload_hash`). `req.path` is the path as sent (already URI-encoded).
pub fn sign(
    req: &Request,
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: i64,
    payload_hash: &str,
) -> String {
    let amz_date = format_amz_date(now);
    let mut signed_headers: Vec<String> = req
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    let sig = Signature {
        access_key: access_key.to_owned(),
        date: amz_date[..8].to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: String::new(),
        amz_date,
        expires: None,
        presigned: false,
    };
    let signature = compute_with_payload(req, &sig, secret, payload_hash);
    format!(
        "{ALGORITHM} Credential={access_key}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
        sig.date,
        sig.signed_headers.join(";")
    )
}

/// The hex SHA-256 of `body` (`x-amz-content-sha256`).
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The key derived from `secret` for the signature's date, region and
/// service.
pub fn signing_key(secret: &str, sig: &Signature) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), sig.date.as_bytes());
    let k = hmac(&k, sig.region.as_bytes());
    let k = hmac(&k, sig.service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// The signature of one chunk of an `aws-chunked` upload signed as
/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: each chunk's signature chains on
/// the previous one, the first on the request's (the seed).
pub fn chunk_signature(key: &[u8], sig: &Signature, previous: &str, chunk_sha256: &str) -> String {
    let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
    let empty = hex::encode(Sha256::digest(b""));
    let to_sign = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{scope}\n{previous}\n{empty}\n{chunk_sha256}",
        sig.amz_date
    );
    hex::encode(hmac(key, to_sign.as_bytes()))
}

/// The signing service of a request's credential scope (`s3` in
/// `AKID/20250101/us-east-1/s3/aws4_request`), from the `Authorization`
/// header or the `X-Amz-Credential` query parameter, without checking
/// anything else.
pub fn signing_service(authorization: Option<&str>, query: &str) -> Option<String> {
    let scope_service = |credential: &str| {
        let parts: Vec<&str> = credential.split('/').collect();
        (parts.len() == 5).then(|| parts[3].to_owned())
    };
    if let Some(auth) = authorization {
        let cred = auth.split_once("Credential=")?.1;
        let cred = cred.split([',', ' ']).next().unwrap_or("");
        return scope_service(cred);
    }
    if !query.contains("X-Amz-Credential") {
        return None;
    }
    query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "X-Amz-Credential")
        .and_then(|(_, v)| scope_service(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The "get-vanilla" case of AWS's SigV4 test suite.
    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn vanilla<'a>(headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request {
            method: "GET",
            path: "/",
            query: "",
            headers,
            body: b"",
        }
    }

    #[test]
    fn signs_the_aws_test_suite_vector() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
        ];
        let now = parse_amz_date("20150830T123600Z").unwrap();
        let auth = sign(
            &vanilla(&headers),
            "AKIDEXAMPLE",
            SECRET,
            "us-east-1",
            "service",
            now,
            &sha256_hex(b""),
        );
        assert_eq!(auth, AUTH);
    }

    #[test]
    fn verifies_aws_test_suite_vector() {
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            ("Authorization", AUTH),
        ];
        let req = vanilla(&headers);
        let sig = parse(&req).unwrap();
        assert_eq!(sig.region, "us-east-1");
        assert_eq!(sig.access_key, "AKIDEXAMPLE");
        let now = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(verify(&req, &sig, SECRET, now), Ok(()));
        let err = verify(&req, &sig, "wrong", now).unwrap_err();
        assert_eq!(err.error_type(), "InvalidSignatureException");
        let err = verify(&req, &sig, SECRET, now + 301).unwrap_err();
        assert_eq!(
            err.message(),
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T124101Z - 5 min.)"
        );
    }

    #[test]
    fn pre_auth_errors() {
        let req = vanilla(&[]);
        assert_eq!(parse(&req), Err(AuthError::MissingAuthenticationToken));
        let headers = [(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/kinesis/aws4_request",
        )];
        let err = parse(&vanilla(&headers)).unwrap_err();
        assert_eq!(
            err,
            AuthError::IncompleteSignature(
                "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=a/20150830/us-east-1/kinesis/aws4_request".into()
            )
        );
    }

    /// A presigned request exactly as botocore 1.44.8's `SigV4QueryAuth`
    /// produced it (POST ListStreams, empty body, 300 s expiry).
    #[test]
    fn verifies_botocore_presigned_query() {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F20261125%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20261125T213637Z&X-Amz-Expires=300&X-Amz-SignedHeaders=content-type%3Bhost%3Bx-amz-target&X-Amz-Signature=21e34a972ba10bc868a6902aa1b682bd2b055259333ffe973bb82e60d51dfa8c";
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "127.0.0.1:4566"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ];
        let req = Request {
            method: "POST",
            path: "/",
            query,
            headers: &headers,
            body: b"",
        };
        let sig = parse(&req).unwrap();
        assert_eq!((sig.region.as_str(), sig.expires), ("us-east-1", Some(300)));
        let signed_at = parse_amz_date("20261125T213637Z").unwrap();
        assert_eq!(verify(&req, &sig, "secret", signed_at + 10), Ok(()));
        assert_eq!(
            verify(&req, &sig, "other", signed_at + 10)
                .unwrap_err()
                .error_type(),
            "InvalidSignatureException"
        );
        assert_eq!(
            verify(&req, &sig, "secret", signed_at + 301).unwrap_err().message(),
            "Signature expired: 20261125T214137Z is now earlier than 20261125T214138Z (20261125T214138Z - 300 sec.)"
        );
    }

    /// A request botocore's `SigV4Auth` signed with an `X-Amz-Content-SHA256`
    /// header: the body is what counts, not the header.
    #[test]
    fn payload_hash_is_the_body() {
        let body = br#"{"StreamName":"s","Data":"aGk=","PartitionKey":"k"}"#;
        let stamp = "20261125T213637Z";
        let now = parse_amz_date(stamp).unwrap();
        let sign = |hash: &str, body: &[u8]| {
            let auth = "AWS4-HMAC-SHA256 Credential=AKIDTEST/20261125/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=0";
            let headers = [
                ("host", "127.0.0.1:4566"),
                ("x-amz-content-sha256", hash),
                ("x-amz-date", stamp),
                ("authorization", auth),
            ];
            let req = Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body,
            };
            let mut sig = parse(&req).unwrap();
            // What a client computes: the canonical request over `hash`.
            sig.signature = client_signature(&req, &sig, hash, "secret");
            verify(&req, &sig, "secret", now)
        };
        let real = hex::encode(Sha256::digest(body));
        assert_eq!(sign(&real, body), Ok(()));
        let mismatch = AuthError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details."
                .into(),
        );
        // The signed body replaced by another: the header still names the old one.
        let tampered = br#"{"StreamName":"s","Data":"aGk=","PartitionKey":"x"}"#;
        assert_eq!(sign(&real, tampered), Err(mismatch.clone()));
        // Markers only S3 honours.
        assert_eq!(sign("UNSIGNED-PAYLOAD", body), Err(mismatch.clone()));
        assert_eq!(
            sign("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", body),
            Err(mismatch)
        );
    }

    /// The signature a client computes when it puts `hash` in the canonical
    /// request (botocore uses the header's value when there is one).
    fn client_signature(req: &Request, sig: &Signature, hash: &str, secret: &str) -> String {
        let canonical_headers: String = sig
            .signed_headers
            .iter()
            .map(|n| format!("{n}:{}\n", req.header(n).unwrap_or("")))
            .collect();
        let canonical = format!(
            "{}\n/\n\n{canonical_headers}\n{}\n{hash}",
            req.method,
            sig.signed_headers.join(";")
        );
        let scope = format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service);
        let to_sign = format!(
            "{ALGORITHM}\n{}\n{scope}\n{}",
            sig.amz_date,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k = hmac(format!("AWS4{secret}").as_bytes(), sig.date.as_bytes());
        let k = hmac(&k, sig.region.as_bytes());
        let k = hmac(&k, sig.service.as_bytes());
        let k = hmac(&k, b"aws4_request");
        hex::encode(hmac(&k, to_sign.as_bytes()))
    }

    #[test]
    fn amz_dates_round_trip() {
        let s = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(s, 1_440_938_160);
        assert_eq!(format_amz_date(s), "20150830T123600Z");
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
    }
}
