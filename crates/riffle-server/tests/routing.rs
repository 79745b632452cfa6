//! The router with every service registered, in process: a request signed
//! for `s3` or addressed to `<bucket>.s3.localhost` is S3's; Data Streams,
//! STS and the fallback answer as before.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_server::console::{Console, Mode};
use riffle_server::platform::{Limits, Shared};
use riffle_server::s3::S3Service;
use riffle_server::{App, Listener};
use riffle_streams::{Config, Service};

async fn server() -> std::net::SocketAddr {
    server_with(Console::default()).await
}

async fn server_with(console: Console) -> std::net::SocketAddr {
    let clock = SystemClock::new();
    let streams = Service::new(
        Config {
            status_delay_ms: 0,
            ..Config::default()
        },
        clock.clone() as Arc<dyn Clock>,
        MemoryEngine::new(),
        [7; 32],
    );
    let firehose = riffle_firehose::Service::new(
        riffle_firehose::Config::default(),
        clock.clone() as Arc<dyn Clock>,
        MemoryEngine::new(),
        Some(streams.clone()),
    );
    let app = Arc::new(App {
        services: riffle_server::services(riffle_server::Backends {
            streams,
            faults: Default::default(),
            firehose,
            analytics: riffle_analytics::Service::new(
                riffle_analytics::Config::default(),
                clock.clone() as Arc<dyn Clock>,
            ),
            glue: riffle_glue::Service::in_memory(
                "000000000000".into(),
                clock.clone() as Arc<dyn Clock>,
            ),
            secrets: riffle_secrets::Service::in_memory(
                "000000000000".into(),
                clock.clone() as Arc<dyn Clock>,
            ),
            video: riffle_video::Service::new(
                riffle_video::Config::default(),
                clock.clone() as Arc<dyn Clock>,
            ),
            s3: S3Service::in_memory(clock.clone() as Arc<dyn Clock>),
        }),
        shared: Shared {
            credentials: HashMap::new(),
            default_region: "us-east-1".into(),
            account: "000000000000".into(),
            clock: clock as Arc<dyn Clock>,
        },
        test_clock: None,
        metrics: Default::default(),
        limits: Limits::default(),
        console,
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(riffle_server::serve(
        vec![Listener { tcp, tls: None }],
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    addr
}

/// A syntactically valid SigV4 header for `service` (the server checks
/// signatures only when it has credentials).
fn signed_for(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host;x-amz-date, Signature={}",
        "0".repeat(64)
    )
}

async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, String) {
    let (status, _, body) = send_h(addr, method, path, headers, body).await;
    (status, body)
}

async fn send_h(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, http::HeaderMap, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("x-amz-date", "20260101T000000Z");
    if !headers.iter().any(|(k, _)| *k == "host") {
        req = req.header("host", "localhost");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from_static(body))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn s3_by_signing_name_and_by_host_the_rest_as_before() {
    let addr = server().await;
    let s3 = signed_for("s3");
    let auth = [("authorization", s3.as_str())];

    let (status, _) = send(addr, "PUT", "/logs", &auth, b"").await;
    assert_eq!(status, 200);
    let (status, body) = send(addr, "PUT", "/logs/a%20b.txt", &auth, b"hello").await;
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, body) = send(addr, "GET", "/", &auth, b"").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<ListAllMyBucketsResult") && body.contains("<Name>logs</Name>"),
        "{body}"
    );

    // Unsigned, virtual-host style: S3's.
    let host = [("host", "logs.s3.localhost:4566")];
    let (status, body) = send(addr, "GET", "/a%20b.txt", &host, b"").await;
    assert_eq!((status, body.as_str()), (200, "hello"));
    let (status, body) = send(addr, "GET", "/missing", &host, b"").await;
    assert_eq!(status, 404);
    assert!(body.contains("<Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>missing</Key>"), "{body}");

    // Presigned (the credential in the query) is S3's too.
    let q = "/logs/a%20b.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let (status, body) = send(addr, "GET", q, &[], b"").await;
    assert_eq!((status, body.as_str()), (200, "hello"));

    // An unsigned GET / is still Kinesis's 403.
    let (status, body) = send(addr, "GET", "/", &[], b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("AccessDeniedException"), "{body}");

    // Kinesis, signed for kinesis, and even signed for s3 with a target.
    let kinesis = signed_for("kinesis");
    for a in [kinesis.as_str(), s3.as_str()] {
        let (status, body) = send(
            addr,
            "POST",
            "/",
            &[
                ("authorization", a),
                ("x-amz-target", "Kinesis_20131202.ListStreams"),
                ("content-type", "application/x-amz-json-1.1"),
            ],
            b"{}",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"StreamNames\":[]"), "{body}");
    }

    // STS by its query Action.
    let (status, body) = send(
        addr,
        "GET",
        "/?Action=GetCallerIdentity&Version=2011-06-15",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("<Account>000000000000</Account>"), "{body}");
}

fn console(mode: Mode) -> Console {
    Console {
        mode,
        ..Console::default()
    }
}

#[tokio::test]
async fn the_console_takes_only_its_own_paths_and_browser_visits_to_the_root() {
    let addr = server_with(console(Mode::ReadWrite)).await;
    let html = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");

    // A browser's first visit is sent to the console.
    let (status, h, body) = send_h(addr, "GET", "/", &[html], b"").await;
    assert_eq!((status, body.as_str()), (302, ""));
    assert_eq!(h["location"], "/_riffle/console/");
    let (status, h, body) = send_h(addr, "GET", "/_riffle/console", &[], b"").await;
    assert_eq!((status, body.as_str()), (302, ""));
    assert_eq!(h["location"], "/_riffle/console/");

    // The page, with its type, validator and revalidation.
    let (status, h, body) = send_h(addr, "GET", "/_riffle/console/", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["cache-control"], "no-cache");
    assert!(body.starts_with("<!doctype html>"), "{body}");
    let etag = h["etag"].to_str().unwrap().to_owned();
    let (status, h, body) = send_h(
        addr,
        "GET",
        "/_riffle/console/index.html",
        &[("if-none-match", etag.as_str())],
        b"",
    )
    .await;
    assert_eq!((status, body.as_str()), (304, ""));
    assert_eq!(h["etag"].to_str().unwrap(), etag);
    let (status, h, _) = send_h(addr, "GET", "/_riffle/console/app.js", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    let (status, h, _) = send_h(addr, "HEAD", "/_riffle/console/style.css", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(h["content-type"], "text/css; charset=utf-8");
    let (status, body) = send(addr, "GET", "/_riffle/console/nothing.js", &[], b"").await;
    assert_eq!((status, body.as_str()), (404, "No such console page.\n"));
    let (status, body) = send(addr, "GET", "/_riffle/console/api/server", &[], b"").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"console\":\"read-write\""), "{body}");

    // S3 keeps every request that is S3's: signed GET /, virtual-host GET /
    // and path-style GETs, even from a browser.
    let s3 = signed_for("s3");
    let auth = ("authorization", s3.as_str());
    let (status, _) = send(addr, "PUT", "/site", &[auth], b"").await;
    assert_eq!(status, 200);
    let (status, _) = send(addr, "PUT", "/site/index.html", &[auth], b"<p>hi</p>").await;
    assert_eq!(status, 200);
    let (status, body) = send(addr, "GET", "/", &[auth, html], b"").await;
    assert_eq!(status, 200);
    assert!(body.contains("<Name>site</Name>"), "{body}");
    let host = ("host", "site.s3.localhost:4566");
    let (status, body) = send(addr, "GET", "/", &[host, html], b"").await;
    assert_eq!(status, 200);
    assert!(body.contains("<Key>index.html</Key>"), "{body}");
    let (status, body) = send(addr, "GET", "/site/index.html", &[auth, html], b"").await;
    assert_eq!((status, body.as_str()), (200, "<p>hi</p>"));

    // An unsigned GET / that is not a browser's is Kinesis's 403 as before.
    let (status, body) = send(addr, "GET", "/", &[], b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("AccessDeniedException"), "{body}");
}

#[tokio::test]
async fn a_read_only_console_refuses_changes_and_plain_api_calls_are_untouched() {
    let addr = server_with(console(Mode::ReadOnly)).await;
    let call = |op: &'static str, console: bool, origin: &'static str| {
        let mut h = vec![
            ("host", "127.0.0.1:4566"),
            ("x-amz-target", op),
            ("content-type", "application/x-amz-json-1.1"),
        ];
        if console {
            h.push(("x-riffle-console", "1"));
        }
        if !origin.is_empty() {
            h.push(("origin", origin));
        }
        h
    };
    let own = "http://127.0.0.1:4566";
    let create = br#"{"StreamName":"s","ShardCount":1}"#;
    let (status, body) = send(
        addr,
        "POST",
        "/",
        &call("Kinesis_20131202.CreateStream", true, own),
        create,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"__type":"AccessDeniedException","message":"The console is read-only on this server: CreateStream changes state (riffle serve --console read-write allows it)"}"#
        )
    );
    let (status, body) = send(
        addr,
        "POST",
        "/",
        &call("Kinesis_20131202.ListStreams", true, own),
        b"{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"StreamNames\":[]"), "{body}");
    let (status, body) = send(
        addr,
        "POST",
        "/",
        &call(
            "Kinesis_20131202.ListStreams",
            true,
            "http://evil.localhost:8000",
        ),
        b"{}",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"__type":"AccessDeniedException","message":"Console requests are accepted only from the server's own origin (http://127.0.0.1:4566), not from http://evil.localhost:8000"}"#
        )
    );
    // The same create without the console's mark is an ordinary API call.
    let (status, body) = send(
        addr,
        "POST",
        "/",
        &call("Kinesis_20131202.CreateStream", false, ""),
        create,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
}

#[tokio::test]
async fn with_the_console_off_nothing_is_served_and_its_calls_are_refused() {
    let addr = server_with(console(Mode::Off)).await;
    let (status, body) = send(addr, "GET", "/_riffle/console/", &[], b"").await;
    assert_eq!(
        (status, body.as_str()),
        (404, "The console is off on this server.\n")
    );
    let (status, body) = send(addr, "GET", "/", &[("accept", "text/html")], b"").await;
    assert_eq!(status, 403);
    assert!(body.contains("AccessDeniedException"), "{body}");
    let (status, body) = send(
        addr,
        "POST",
        "/",
        &[
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-riffle-console", "1"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"__type":"AccessDeniedException","message":"The console is off on this server (riffle serve --console off)"}"#
        )
    );
}

#[tokio::test]
async fn the_console_firehose_endpoint_answers_for_existing_streams_only() {
    let addr = server_with(console(Mode::ReadOnly)).await;
    let json = ("content-type", "application/x-amz-json-1.1");
    let create = ("x-amz-target", "Firehose_20150804.CreateDeliveryStream");
    let (status, body) = send(
        addr,
        "POST",
        "/",
        &[json, create],
        br#"{"DeliveryStreamName":"orders","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = send(
        addr,
        "GET",
        "/_riffle/console/api/firehose/orders",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(r#"{"DeliveryStreamName":"orders","DeliveryStreamStatus":"CREATING","#),
        "{body}"
    );
    assert!(body.contains(r#""unreadRecords":0,"#), "{body}");
    let (status, h, body) =
        send_h(addr, "GET", "/_riffle/console/api/firehose/nope", &[], b"").await;
    assert_eq!(status, 400);
    assert_eq!(h["x-amzn-errortype"], "ResourceNotFoundException:");
    assert!(
        body.contains("Firehose nope not found under account 000000000000."),
        "{body}"
    );
    // Services without a console endpoint have none.
    let (status, body) = send(addr, "GET", "/_riffle/console/api/glue/orders", &[], b"").await;
    assert_eq!((status, body.as_str()), (404, "No such console page.\n"));
}
