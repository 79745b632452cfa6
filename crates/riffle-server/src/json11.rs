//! The front of a JSON 1.1 service (`X-Amz-Target: <Prefix>.<Operation>`,
//! `application/x-amz-json-1.1`): AWS's pre-checks in AWS's order (body
//! size, method, content type, known operation, empty or non-object body),
//! then SigV4. Services built on it only see accepted requests.

use http::{Method, StatusCode};
use riffle_wire::{Encoding, Value};

use crate::body::Body;
use crate::platform::{Request, RequestBody, Response, Shared};
use crate::{base, error, header, xml};

/// What an empty request body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyBody {
    /// A SerializationException (Kinesis-family services).
    Refused,
    /// An operation without arguments (Glue).
    NoArguments,
}

/// A request that passed the pre-checks and authentication.
pub struct Accepted {
    pub operation: String,
    /// The decoded body, a map.
    pub doc: Value,
    /// The region of the request's credential scope.
    pub region: String,
}

/// A whole exchange with a service whose operations need only the
/// request's region: [`accept`], then `call(region, operation, body)`, then
/// its value or its error as the response.
pub async fn exchange<E, Fut>(
    req: Request,
    shared: &Shared,
    knows: impl Fn(&str) -> bool,
    empty: EmptyBody,
    call: impl FnOnce(String, String, Value) -> Fut,
) -> Response
where
    E: ServiceError,
    Fut: std::future::Future<Output = Result<Value, E>>,
{
    use tracing::Instrument;
    let a = match accept(req, shared, knows, empty) {
        Ok(a) => a,
        Err(response) => return *response,
    };
    let span = tracing::debug_span!("call", operation = %a.operation);
    match call(a.region, a.operation, a.doc).instrument(span).await {
        Ok(v) => crate::ok(Encoding::Json.content_type(), Encoding::Json.encode(&v)),
        Err(e) => error_response(&e),
    }
}

/// Checks `req` as AWS's JSON 1.1 front does; `Err` is the response to
/// send instead (boxed: it is large). `knows` says whether an operation
/// exists.
pub fn accept(
    req: Request,
    shared: &Shared,
    knows: impl Fn(&str) -> bool,
    empty: EmptyBody,
) -> Result<Accepted, Box<Response>> {
    accept_inner(req, shared, knows, empty).map_err(Box::new)
}

// The response is built here and boxed once by `accept`.
#[allow(clippy::result_large_err)]
fn accept_inner(
    req: Request,
    shared: &Shared,
    knows: impl Fn(&str) -> bool,
    empty: EmptyBody,
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
    let doc = match (body.is_empty(), empty) {
        (true, EmptyBody::NoArguments) => Value::Map(Default::default()),
        (true, EmptyBody::Refused) => {
            return Err(error(Encoding::Json, 400, "SerializationException", None))
        }
        (false, _) => match Encoding::Json.decode(&body) {
            Ok(v @ Value::Map(_)) => v,
            _ => return Err(error(Encoding::Json, 400, "SerializationException", None)),
        },
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

/// What a JSON 1.1 service's error says on the wire.
pub trait ServiceError {
    fn error_type(&self) -> &'static str;
    fn status(&self) -> u16;
    fn message(&self) -> Option<String>;
    /// The detail of an internal failure, logged, never sent.
    fn internal(&self) -> Option<&str>;
}

/// The response for a service error, logged as such.
pub fn error_response(e: &impl ServiceError) -> Response {
    tracing::debug!(error_type = e.error_type(), "request failed");
    if let Some(detail) = e.internal() {
        tracing::error!(%detail, "internal failure");
    }
    error(
        Encoding::Json,
        e.status(),
        e.error_type(),
        e.message().as_deref(),
    )
}

/// Implements [`ServiceError`] for a service crate's error type, which has
/// `error_type`, `status`, `message` and an `Internal(String)` variant.
macro_rules! service_error {
    ($t:ident) => {
        impl $crate::json11::ServiceError for $t {
            fn error_type(&self) -> &'static str {
                <$t>::error_type(self)
            }
            fn status(&self) -> u16 {
                <$t>::status(self)
            }
            fn message(&self) -> Option<String> {
                <$t>::message(self)
            }
            fn internal(&self) -> Option<&str> {
                match self {
                    $t::Internal(detail) => Some(detail),
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use service_error;
