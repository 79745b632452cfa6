//! The AWS SDK for Rust against an in-process Riffle on a loopback port.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use riffle_core::clock::SystemClock;
use riffle_core::Clock;
use riffle_log::memory::MemoryEngine;
use riffle_server::platform::Shared;
use riffle_server::{App, Listener};
use riffle_streams::{Config, Service};

struct Server {
    client: Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start() -> Server {
    let clock = SystemClock::new();
    let cfg = Config {
        status_delay_ms: 0,
        ..Config::default()
    };
    let service = Service::new(
        cfg,
        clock.clone() as Arc<dyn Clock>,
        MemoryEngine::new(),
        [9; 32],
    );
    let firehose = riffle_firehose::Service::new(
        riffle_firehose::Config::default(),
        clock.clone() as Arc<dyn Clock>,
        MemoryEngine::new(),
        Some(service.clone()),
    );
    let app = Arc::new(App {
        services: riffle_server::services(riffle_server::Backends {
            streams: service,
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
            s3: riffle_server::s3::S3Service::in_memory(clock.clone() as Arc<dyn Clock>),
        }),
        shared: Shared {
            credentials: HashMap::new(),
            default_region: "us-east-1".into(),
            account: "000000000000".into(),
            clock,
        },
        test_clock: None,
        metrics: Default::default(),
        limits: Default::default(),
        console: Default::default(),
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(riffle_server::serve(
        vec![Listener { tcp, tls: None }],
        app,
        async {
            let _ = rx.await;
        },
        Duration::from_secs(1),
    ));
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(format!("http://{addr}"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Server {
        client: Client::from_conf(conf),
        _stop: tx,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_read_back_binary_records() {
    let s = start().await;
    let c = &s.client;
    c.create_stream()
        .stream_name("rs")
        .shard_count(2)
        .send()
        .await
        .unwrap();
    let entries: Vec<_> = (0u8..=255)
        .map(|i| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(vec![i, 0, 255 - i]))
                .partition_key(format!("k{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let put = c
        .put_records()
        .stream_name("rs")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_record_count(), Some(0));
    assert_eq!(put.records().len(), 256);

    let mut got = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let it = c
            .get_shard_iterator()
            .stream_name("rs")
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let out = c
            .get_records()
            .shard_iterator(it.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(out.millis_behind_latest(), Some(0));
        for r in out.records() {
            let entry = put
                .records()
                .iter()
                .find(|e| e.sequence_number() == Some(r.sequence_number()))
                .unwrap();
            assert_eq!(entry.shard_id(), Some(shard));
            got.push((
                r.partition_key().unwrap_or_default().to_owned(),
                r.data().as_ref().to_vec(),
            ));
        }
    }
    got.sort();
    let mut want: Vec<_> = (0u8..=255)
        .map(|i| (format!("k{i}"), vec![i, 0, 255 - i]))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let s = start().await;
    let err = s
        .client
        .describe_stream()
        .stream_name("missing")
        .send()
        .await
        .unwrap_err();
    let service = err.into_service_error();
    assert!(service.is_resource_not_found_exception(), "{service:?}");
    assert_eq!(
        service.meta().message(),
        Some("Stream missing under account 000000000000 not found.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_then_follow_child_shards() {
    let s = start().await;
    let c = &s.client;
    c.create_stream()
        .stream_name("split")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    c.put_record()
        .stream_name("split")
        .partition_key("a")
        .data(Blob::new("before"))
        .send()
        .await
        .unwrap();
    c.split_shard()
        .stream_name("split")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .unwrap();
    let it = c
        .get_shard_iterator()
        .stream_name("split")
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let out = c
        .get_records()
        .shard_iterator(it.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.records().len(), 1);
    assert_eq!(out.records()[0].data().as_ref(), b"before");
    assert_eq!(out.next_shard_iterator(), None);
    let children: Vec<_> = out
        .child_shards()
        .iter()
        .map(|c| {
            (
                c.shard_id().to_owned(),
                c.parent_shards().to_vec(),
                c.hash_key_range().unwrap().starting_hash_key().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        children,
        vec![
            (
                "shardId-000000000001".into(),
                vec!["shardId-000000000000".to_owned()],
                "0".into()
            ),
            (
                "shardId-000000000002".into(),
                vec!["shardId-000000000000".to_owned()],
                "170141183460469231731687303715884105728".into()
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_shard_streams_records() {
    let s = start().await;
    let c = &s.client;
    c.create_stream()
        .stream_name("efo")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let arn = c
        .describe_stream_summary()
        .stream_name("efo")
        .send()
        .await
        .unwrap();
    let stream_arn = arn
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_owned();
    let consumer = c
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name("app")
        .send()
        .await
        .unwrap();
    let consumer_arn = consumer.consumer().unwrap().consumer_arn().to_owned();
    let mut sub = c
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(
            StartingPosition::builder()
                .r#type(aws_sdk_kinesis::types::ShardIteratorType::Latest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let put = c
        .put_record()
        .stream_name("efo")
        .partition_key("p")
        .data(Blob::new("pushed"))
        .send()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, sub.event_stream.recv())
            .await
            .expect("no event in time")
            .unwrap();
        if let Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) = ev {
            if let Some(r) = e.records().first() {
                assert_eq!(r.data().as_ref(), b"pushed");
                assert_eq!(r.sequence_number(), put.sequence_number());
                assert_eq!(e.continuation_sequence_number(), put.sequence_number());
                break;
            }
        }
    }
}
