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
use riffle_server::platform::{Limits, Shared};
use riffle_server::s3::S3Service;
use riffle_server::{App, Listener};
use riffle_streams::{Config, Service};

async fn server() -> std::net::SocketAddr {
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
        services: riffle_server::services(
            streams,
            Default::default(),
            firehose,
            riffle_analytics::Service::new(
                riffle_analytics::Config::default(),
                clock.clone() as Arc<dyn Clock>,
            ),
            riffle_glue::Service::in_memory("000000000000".into(), clock.clone() as Arc<dyn Clock>),
            riffle_video::Service::new(
                riffle_video::Config::default(),
                clock.clone() as Arc<dyn Clock>,
            ),
            S3Service::in_memory(clock.clone() as Arc<dyn Clock>),
        ),
        shared: Shared {
            credentials: HashMap::new(),
            default_region: "us-east-1".into(),
            account: "000000000000".into(),
            clock: clock as Arc<dyn Clock>,
        },
        test_clock: None,
        metrics: Default::default(),
        limits: Limits::default(),
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
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
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
