//! The front of a JSON 1.1 service (`X-Amz-Target: <Prefix>.<Operation>`,
//! `application/x-amz-json-1.1`): AWS's pre-checks in AWS's order (body
//! size, method, content type, known operation, empty or non-object body),
//! then SigV4. Services built on it only see accepted requests.

use http::{Method, StatusCode};
use riffle_wire::{Encoding, Value};

use crate::body::Body;
use crate::platform::{Request, RequestBody, Response, Shared};
use crate::{base, error, header, xml};

/// A request that passed the pre-checks and authentication.
pub struct Accepted {
    pub operation: String,
    /// The decoded body, a map.
    pub doc: Value,
    /// The region of the request's credential scope.
    pub region: String,
}

/// Checks `req` as AWS's JSON 1.1 front does; `Err` is the response to
/// send instead (boxed: it is large). `knows` says whether an operation
/// exists.
pub fn accept(
    req: Request,
    shared: &Shared,
    knows: impl Fn(&str) -> bool,
) -> Result<Accepted, Box<Response>> {
    accept_inner(req, shared, knows).map_err(Box::new)
}

// The response is built here and boxed once by `accept`.
#[allow(clippy::result_large_err)]
fn accept_inner(
    req: Request,
    shared: &Shared,
    knows: impl Fn(&str) -> bool,
) -> Result<Accepted, Response> {
    let Request {
        parts,
        body,
        operation,
    } = req;
    let body = match body {
        RequestBody::Full(b) => b,
        RequestBody::TooLarge => {
            return Err(base(StatusCode::PAYLOAD_TOO_LARGE)
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty())))
        }
        RequestBody::Stream(_) => {
            return Err(xml(StatusCode::FORBIDDEN, "AccessDeniedException", None))
        }
    };
    if parts.method != Method::POST {
        return Err(xml(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("Unable to determine service/operation name to be authorized"),
        ));
    }
    let content_type = header(&parts.headers, "content-type").map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if !matches!(
        content_type.as_deref(),
        Some("application/x-amz-json-1.1") | Some("application/json")
    ) {
        return Err(xml(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            None,
        ));
    }
    if !knows(&operation) {
        return Err(error(
            Encoding::Json,
            400,
            "UnknownOperationException",
            None,
        ));
    }
    if body.is_empty() {
        return Err(error(Encoding::Json, 400, "SerializationException", None));
    }
    let doc = match Encoding::Json.decode(&body) {
        Ok(v @ Value::Map(_)) => v,
        _ => return Err(error(Encoding::Json, 400, "SerializationException", None)),
    };
    let region = shared
        .authenticate(&parts, &body)
        .map_err(|e| error(Encoding::Json, 400, e.error_type(), Some(&e.message())))?;
    Ok(Accepted {
        operation,
        doc,
        region,
    })
}
