//! STS `GetCallerIdentity` (AWS Query protocol): tools such as Terraform,
//! the CDK and `awslocal` call it before anything else. Every caller is the
//! account's root user.

use http::StatusCode;
use riffle_wire::sigv4;

use crate::body::Body;
use crate::platform::{AwsService, BoxFuture, Request, RequestBody, Response, Route, Shared};
use crate::{base, request_id};

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub struct Sts;

/// The parameters of a query request: the form body, else the query
/// string.
fn params(parts: &http::request::Parts, body: &[u8]) -> Vec<(String, String)> {
    let text = if body.is_empty() {
        parts.uri.query().unwrap_or("").to_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    text.split('&')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Percent-decoding of a form value (`+` is a space).
fn decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The `Action` of a query request, for routing.
pub fn action_of(parts: &http::request::Parts, body: &[u8]) -> Option<String> {
    params(parts, body)
        .into_iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v)
}

/// STS names the pre-auth failures in the Query protocol's own words.
fn query_code(e: &sigv4::AuthError) -> &'static str {
    match e {
        sigv4::AuthError::MissingAuthenticationToken => "MissingAuthenticationToken",
        sigv4::AuthError::IncompleteSignature(_) => "IncompleteSignature",
        sigv4::AuthError::InvalidSignature(_) => "SignatureDoesNotMatch",
        sigv4::AuthError::UnrecognizedClient => "InvalidClientTokenId",
    }
}

fn xml_response(status: StatusCode, text: String) -> Response {
    base(status)
        .header("content-type", "text/xml")
        .body(Body::full(text))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn query_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml_response(
        status,
        format!(
            "<ErrorResponse xmlns=\"{NS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            request_id()
        ),
    )
}

impl AwsService for Sts {
    fn name(&self) -> &'static str {
        "sts"
    }

    fn route(&self) -> Route {
        Route::Query(&["GetCallerIdentity"])
    }

    fn knows(&self, op: &str) -> bool {
        op == "GetCallerIdentity"
    }

    fn max_body(&self) -> usize {
        64 * 1024
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let body = match &req.body {
                RequestBody::Full(b) => b.clone(),
                _ => {
                    return query_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RequestEntityTooLarge",
                        "Request body too large.",
                    )
                }
            };
            if let Err(e) = shared.authenticate(&req.parts, &body) {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
                return query_error(status, query_code(&e), &e.message());
            }
            let version = params(&req.parts, &body)
                .into_iter()
                .find(|(k, _)| k == "Version")
                .map(|(_, v)| v);
            if version.as_deref().is_some_and(|v| v != "2011-06-15") {
                return query_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidAction",
                    "Could not find operation GetCallerIdentity for version",
                );
            }
            let account = &shared.account;
            xml_response(
                StatusCode::OK,
                format!(
                    "<GetCallerIdentityResponse xmlns=\"{NS}\">\n  <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::{account}:root</Arn>\n    <UserId>{account}</UserId>\n    <Account>{account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
                    request_id()
                ),
            )
        })
    }
}
