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
//!   "rows", "dropped"}`; each row an object, `ROWTIME` first), a comment
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
            if !svc.has_application(&region, application) {
                return crate::error(
                    Encoding::Json,
                    400,
                    "ResourceNotFoundException",
                    Some(&format!("Application {application} not found")),
                );
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
                        format!(
                            "event: rows\ndata: {{\"stream\":{name},\"columns\":[{}],\"rows\":[{}],\"dropped\":{}}}\n\n",
                            columns.join(","),
                            batch.json_rows().join(","),
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
