//! AWS Signature Version 2 as S3 speaks it: the `Authorization: AWS
//! <key>:<signature>` header and the presigned query
//! (`AWSAccessKeyId`, `Signature`, `Expires`), which is how boto3 presigns
//! S3 URLs unless told otherwise. Only S3 accepts it.
//!
//! ```text
//! StringToSign = METHOD \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//!                [x-amz-* headers, lower-case, sorted, `name:v1,v2` \n ...]
//!                /bucket/key[?sub-resources, sorted]
//! Signature    = base64(HMAC-SHA1(secret, StringToSign))
//! ```

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::sigv4::query_pairs;

/// A parsed version-2 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV2 {
    pub access_key: String,
    pub signature: String,
    /// Epoch seconds a presigned request stays valid until.
    pub expires: Option<i64>,
}

/// The version-2 signature of a request, if it carries one.
pub fn parse(authorization: Option<&str>, query: &str) -> Option<SigV2> {
    if let Some(auth) = authorization {
        let (key, sig) = auth.strip_prefix("AWS ")?.trim().split_once(':')?;
        return Some(SigV2 {
            access_key: key.to_owned(),
            signature: sig.to_owned(),
            expires: None,
        });
    }
    if !query.contains("AWSAccessKeyId=") {
        return None;
    }
    let q = query_pairs(query);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some(SigV2 {
        access_key: get("AWSAccessKeyId")?,
        signature: get("Signature")?,
        expires: Some(get("Expires")?.parse().ok()?),
    })
}

/// Sub-resources that are part of the signed resource.
const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    "analytics",
];

/// What a version-2 signature covers.
pub struct Request<'a> {
    pub method: &'a str,
    /// `/<bucket>/<key>` as sent (still percent-encoded), whatever the
    /// addressing style.
    pub resource: &'a str,
    /// The raw query string.
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
}

/// The string a version-2 signature signs.
pub fn string_to_sign(req: &Request, sig: &SigV2) -> String {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.trim())
    };
    let date = match sig.expires {
        Some(e) => e.to_string(),
        None => header("date").to_owned(),
    };
    let mut out = format!(
        "{}\n{}\n{}\n{date}\n",
        req.method,
        header("content-md5"),
        header("content-type")
    );
    let mut amz: Vec<(String, Vec<&str>)> = Vec::new();
    for (k, v) in req.headers {
        let k = k.to_ascii_lowercase();
        if !k.starts_with("x-amz-") {
            continue;
        }
        match amz.iter_mut().find(|(n, _)| *n == k) {
            Some((_, vs)) => vs.push(v.trim()),
            None => amz.push((k, vec![v.trim()])),
        }
    }
    amz.sort();
    for (k, vs) in amz {
        out.push_str(&format!("{k}:{}\n", vs.join(",")));
    }
    out.push_str(req.resource);
    let mut subs: Vec<(String, Option<String>)> = req
        .query
        .split('&')
        .filter_map(|kv| {
            let (k, v) = match kv.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (kv, None),
            };
            SUB_RESOURCES.contains(&k).then(|| {
                let v = v.map(|v| query_pairs(&format!("x={v}")).remove(0).1);
                (k.to_owned(), v)
            })
        })
        .collect();
    subs.sort();
    if !subs.is_empty() {
        out.push('?');
        let parts: Vec<String> = subs
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k,
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

/// Whether `sig` is `secret`'s signature of `req`.
pub fn verify(req: &Request, sig: &SigV2, secret: &str) -> bool {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(string_to_sign(req, sig).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    expected.len() == sig.signature.len()
        && expected
            .bytes()
            .zip(sig.signature.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET example of AWS's "Signing and authenticating REST requests"
    /// (Signature Version 2) page.
    #[test]
    fn aws_example() {
        let headers = [
            ("Host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ];
        let req = Request {
            method: "GET",
            resource: "/awsexamplebucket1/photos/puppy.jpg",
            query: "",
            headers: &headers,
        };
        let sig = parse(
            Some("AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
            "",
        )
        .unwrap();
        assert_eq!(
            string_to_sign(&req, &sig),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        assert!(verify(
            &req,
            &sig,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        ));
        assert!(!verify(&req, &sig, "another secret"));
    }

    #[test]
    fn presigned_query_and_sub_resources() {
        let q = "uploadId=abc&AWSAccessKeyId=AK&Signature=s%2Bg%3D&Expires=1700000000&prefix=x";
        let sig = parse(None, q).unwrap();
        assert_eq!(
            sig,
            SigV2 {
                access_key: "AK".into(),
                signature: "s+g=".into(),
                expires: Some(1_700_000_000)
            }
        );
        let req = Request {
            method: "PUT",
            resource: "/b/k",
            query: q,
            headers: &[("x-amz-meta-b", "2"), ("X-Amz-Meta-A", " 1 ")],
        };
        assert_eq!(
            string_to_sign(&req, &sig),
            "PUT\n\n\n1700000000\nx-amz-meta-a:1\nx-amz-meta-b:2\n/b/k?uploadId=abc"
        );
    }
}
