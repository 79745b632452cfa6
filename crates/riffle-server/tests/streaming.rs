//! The platform streams both ways: a service that takes its request body as
//! a stream (as PutMedia will) sees each chunk as it arrives and can answer
//! it before the upload ends, over HTTP/1.1 chunked encoding and HTTP/2.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_server::body::Body;
use riffle_server::platform::{
    AwsService, BoxFuture, Limits, Request, RequestBody, Response, Route, Services, Shared,
};
use riffle_server::{App, Listener};
use tokio::sync::mpsc;

/// Answers every chunk of its upload with `ack:<chunk>` as it arrives.
struct Echo;

impl AwsService for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn route(&self) -> Route {
        Route::Path(&["echo"])
    }
    fn knows(&self, op: &str) -> bool {
        op == "echo"
    }
    fn max_body(&self) -> usize {
        0
    }
    fn streams_body(&self, op: &str) -> bool {
        op == "echo"
    }
    fn handle<'a>(&'a self, req: Request, _shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let RequestBody::Stream(mut body) = req.body else {
                panic!("the body was buffered");
            };
            let (tx, rx) = mpsc::channel::<Bytes>(1);
            tokio::spawn(async move {
                while let Some(Ok(frame)) = body.frame().await {
                    // HTTP/2 may end a stream with an empty DATA frame.
                    if let Ok(data) = frame.into_data().map_err(drop).and_then(|d| {
                        if d.is_empty() {
                            Err(())
                        } else {
                            Ok(d)
                        }
                    }) {
                        let mut ack = b"ack:".to_vec();
                        ack.extend_from_slice(&data);
                        if tx.send(Bytes::from(ack)).await.is_err() {
                            return;
                        }
                    }
                }
            });
            http::Response::new(Body::Channel(rx))
        })
    }
}

async fn server() -> std::net::SocketAddr {
    let app = Arc::new(App {
        services: Services::new(vec![Arc::new(Echo)]),
        shared: Shared {
            credentials: HashMap::new(),
            default_region: "us-east-1".into(),
            account: "000000000000".into(),
            clock: SystemClock::new() as Arc<dyn Clock>,
        },
        test_clock: None,
        metrics: Default::default(),
        limits: Limits::default(),
        console: Default::default(),
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

/// The upload: chunks pushed through a channel (the server's own channel body).
type Upload = Body;

/// Sends three chunks, each only after the answer to the one before came
/// back: that can only finish if both directions stream.
async fn exchange(
    mut send: impl FnMut(
        http::Request<Upload>,
    ) -> BoxFuture<'static, http::Response<hyper::body::Incoming>>,
) {
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let req = http::Request::post("/echo")
        .header("host", "localhost")
        .body(Body::Channel(rx))
        .unwrap();
    tx.send(Bytes::from_static(b"one")).await.unwrap();
    let resp = send(req).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut got = Vec::new();
    let mut next = ["two", "three"].into_iter();
    loop {
        let frame: Frame<Bytes> = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("the answer to a chunk did not come before the upload ended")
            .unwrap()
            .unwrap();
        got.push(String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap());
        match next.next() {
            Some(chunk) => tx.send(Bytes::from(chunk)).await.unwrap(),
            None => break,
        }
    }
    // The upload ends; so does the answer.
    drop(tx);
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the answer did not end with the upload")
        .unwrap()
        .to_bytes();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(got, ["ack:one", "ack:two", "ack:three"]);
}

#[tokio::test]
async fn http1_chunked_upload_is_answered_as_it_arrives() {
    let addr = server().await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let send = Arc::new(tokio::sync::Mutex::new(send));
    exchange(move |req| {
        let send = send.clone();
        Box::pin(async move { send.lock().await.send_request(req).await.unwrap() })
    })
    .await;
}

#[tokio::test]
async fn http2_upload_is_answered_as_it_arrives() {
    let addr = server().await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    exchange(move |req| {
        let mut send = send.clone();
        Box::pin(async move { send.send_request(req).await.unwrap() })
    })
    .await;
}
