//! The console's two read-only Analytics endpoints, for what the
//! `kinesisanalytics` API has no operation for:
//!
//! - `GET /_riffle/console/api/analytics/validate?sql=CODE[&application=NAME]`:
//!   the code through the parser, exactly as CreateApplication and
//!   UpdateApplication check it (`parse`: the error's line, column and
//!   message), then, given an application, through the planner over its
//!   input and reference schemas (`plan`: why it could not run; `streams`: the
//!   in-application streams and their columns). Nothing is saved: the
//!   code travels in the query so that the request is a GET, which a
//!   read-only console may make; the URI limit (64 KiB) bounds it, and
//!   longer code is checked by saving it (UpdateApplication).
//! - `GET /_riffle/console/api/analytics/rows?application=NAME&stream=S`:
//!   Server-Sent Events, one `rows` event per step of the running
//!   application that put rows into the stream (`{"stream", "columns",
//!   "rows", "dropped"}`; each row an array of the values as SQL text,
//!   `null` for NULL, `ROWTIME` first), a comment
//!   every 15 seconds otherwise. A reader that falls behind loses rows
//!   (`dropped` counts them); the application never waits for it.
//!
//! Both are authenticated like API calls when the server has credentials.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use riffle_analytics::inspect::Check;
use riffle_wire::{Encoding, Map, Value};
use tokio::sync::mpsc;

use crate::body::Body;
use crate::platform::Shared;
use crate::s3::request::{param, query};

/// The Analytics service the endpoints read.
#[derive(Clone, Default)]
pub struct Handle(pub Option<Arc<riffle_analytics::Service>>);

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Handle(analytics)"
        } else {
            "Handle(none)"
        })
    }
}

fn invalid(message: &str) -> Response<Body> {
    crate::error(
        Encoding::Json,
        400,
        "InvalidArgumentException",
        Some(message),
    )
}

/// Answers `GET /_riffle/console/api/analytics/<rest>`.
pub async fn serve(
    handle: &Handle,
    rest: &str,
    parts: &http::request::Parts,
    shared: &Shared,
) -> Response<Body> {
    let region = match crate::console::authenticate(parts, shared) {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let Some(svc) = handle.0.clone() else {
        return crate::console::not_found();
    };
    let q = query(parts);
    let application = param(&q, "application").filter(|a| !a.is_empty());
    match rest {
        "validate" => {
            let Some(code) = param(&q, "sql") else {
                return invalid("The sql parameter is required.");
            };
            json(check_doc(&svc.check_code(&region, application, code)))
        }
        "rows" => {
            let Some(application) = application else {
                return invalid("The application parameter is required.");
            };
            let Some(stream) = param(&q, "stream").filter(|s| !s.is_empty()) else {
                return invalid("The stream parameter is required.");
            };
            if let Err(e) = svc.application_exists(&region, application) {
                return crate::json11::error_response(&e);
            }
            rows(svc.watch(&region, application, stream), stream.to_owned())
        }
        _ => crate::console::not_found(),
    }
}

fn json(v: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::full(riffle_wire::json::encode(&v)))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn check_doc(c: &Check) -> Value {
    let mut m = Map::new();
    m.put(
        "parse",
        c.parse.as_ref().map(|e| {
            let mut p = Map::new();
            p.put("line", Value::Int(e.line as i64));
            p.put("column", Value::Int(e.column as i64));
            p.put("message", Value::Str(e.message.clone()));
            Value::Map(p)
        }),
    );
    m.put("plan", c.plan.clone().map(Value::Str));
    let streams = c
        .streams
        .iter()
        .map(|s| {
            let mut sm = Map::new();
            sm.put("name", Value::Str(s.name.clone()));
            let cols = s
                .columns
                .iter()
                .map(|(n, t)| {
                    let mut cm = Map::new();
                    cm.put("name", Value::Str(n.clone()));
                    cm.put("type", Value::Str(t.clone()));
                    Value::Map(cm)
                })
                .collect();
            sm.put("columns", Value::List(cols));
            Value::Map(sm)
        })
        .collect();
    m.put("streams", Value::List(streams));
    Value::Map(m)
}

/// Quoted as a JSON string.
fn quoted(s: &str) -> String {
    String::from_utf8_lossy(&riffle_wire::json::encode(&Value::Str(s.to_owned()))).into_owned()
}

/// The Server-Sent Events response of a watch.
fn rows(mut watcher: riffle_analytics::inspect::Watcher, stream: String) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(b": watching\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let name = quoted(&stream);
        loop {
            let event = tokio::select! {
                b = watcher.rows.recv() => match b {
                    Some(batch) => {
                        let columns: Vec<String> = std::iter::once("ROWTIME")
                            .chain(batch.columns.iter().map(String::as_str))
                            .map(quoted)
                            .collect();
                        let rows = batch
                            .text_rows()
                            .into_iter()
                            .map(|r| Value::List(r.into_iter().map(|v| v.map(Value::Str).unwrap_or(Value::Null)).collect()))
                            .collect();
                        let rows = riffle_wire::json::encode(&Value::List(rows));
                        format!(
                            "event: rows\ndata: {{\"stream\":{name},\"columns\":[{}],\"rows\":{},\"dropped\":{}}}\n\n",
                            columns.join(","),
                            String::from_utf8_lossy(&rows),
                            watcher.dropped()
                        )
                    }
                    None => return,
                },
                _ = tokio::time::sleep(Duration::from_secs(15)) => format!(": dropped {}\n\n", watcher.dropped()),
                _ = tx.closed() => return,
            };
            if tx.send(Bytes::from(event)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Channel(rx))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_core::clock::SystemClock;
    use riffle_core::Clock;

    fn parts(uri: &str) -> http::request::Parts {
        http::Request::get(uri)
            .header("host", "127.0.0.1:4566")
            .header(crate::console::HEADER, "1")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn setup() -> (Handle, Shared) {
        let clock = SystemClock::new() as Arc<dyn Clock>;
        let svc =
            riffle_analytics::Service::new(riffle_analytics::Config::default(), clock.clone());
        let shared = Shared {
            credentials: Default::default(),
            default_region: "us-east-1".into(),
            account: "000000000000".into(),
            clock,
        };
        (Handle(Some(svc)), shared)
    }

    /// GET `/_riffle/console/api/analytics/<path>`: status, content type
    /// and body (an event stream's first frame).
    async fn get(h: &Handle, shared: &Shared, path: &str) -> (u16, String, String) {
        let p = parts(&format!("/_riffle/console/api/analytics/{path}"));
        let rest = path.split('?').next().unwrap();
        let resp = serve(h, rest, &p, shared).await;
        let status = resp.status().as_u16();
        let ty = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = match resp.into_body() {
            Body::Full(b) => String::from_utf8(b.map(|b| b.to_vec()).unwrap_or_default()).unwrap(),
            Body::Channel(mut rx) => String::from_utf8(rx.recv().await.unwrap().to_vec()).unwrap(),
        };
        (status, ty, body)
    }

    #[tokio::test]
    async fn console_validate_returns_the_parsers_error_with_its_position() {
        let (h, shared) = setup();
        let (status, ty, body) = get(
            &h,
            &shared,
            "validate?sql=CREATE%20STREAM%20s%20(a%20INT);%0ASELECT%20FROM",
        )
        .await;
        assert_eq!((status, ty.as_str()), (200, "application/json"));
        assert_eq!(
            body,
            r#"{"parse":{"line":2,"column":1,"message":"Expected CREATE OR REPLACE STREAM or CREATE OR REPLACE PUMP, found: SELECT"},"streams":[]}"#
        );
        let (_, _, ok) = get(&h, &shared, "validate?sql=CREATE%20STREAM%20s%20(a%20INT);").await;
        assert_eq!(ok, r#"{"streams":[]}"#);
        let (status, _, missing) = get(&h, &shared, "validate").await;
        assert_eq!(status, 400);
        assert!(missing.contains("InvalidArgumentException"), "{missing}");
    }

    #[tokio::test]
    async fn console_rows_stream_events_of_an_existing_application_only() {
        let (h, shared) = setup();
        let (status, _, body) = get(
            &h,
            &shared,
            "rows?application=nope&stream=DESTINATION_SQL_STREAM",
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            r#"{"__type":"ResourceNotFoundException","message":"Application nope is not found in account 000000000000."}"#
        );
        let svc = h.0.clone().unwrap();
        let ctx = riffle_analytics::Ctx {
            region: "us-east-1".into(),
        };
        svc.call(
            &ctx,
            "CreateApplication",
            riffle_wire::json::decode(br#"{"ApplicationName":"app"}"#).unwrap(),
        )
        .await
        .unwrap();
        let (status, ty, first) = get(
            &h,
            &shared,
            "rows?application=app&stream=DESTINATION_SQL_STREAM",
        )
        .await;
        assert_eq!((status, ty.as_str()), (200, "text/event-stream"));
        assert_eq!(first, ": watching\n\n");
        let (status, _, _) = get(&h, &shared, "rows?application=app").await;
        assert_eq!(status, 400);
        // The guard of a read-only console lets both through: they are GETs.
        let console = crate::console::Console {
            mode: crate::console::Mode::ReadOnly,
            ..Default::default()
        };
        assert!(console
            .guard(&parts("/_riffle/console/api/analytics/validate?sql=x"))
            .is_none());
    }
}
