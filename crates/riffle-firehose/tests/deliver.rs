//! Delivery to S3 destinations through the directory sink, with a manual
//! clock: key layouts, compression read back, buffering hints, retries,
//! restarts and a Kinesis stream as source.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_firehose::deliver::BoxFuture;
use riffle_firehose::sink::{DirSink, ObjectSink, Sink, SinkError};
use riffle_firehose::{Config, Ctx, Service};
use riffle_log::memory::MemoryEngine;
use riffle_log::LogEngine;
use riffle_wire::{json, Value};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

fn ctx() -> Ctx {
    Ctx {
        region: "us-east-1".into(),
    }
}

async fn call(
    svc: &Service,
    op: &str,
    body: &str,
) -> Result<Value, riffle_firehose::FirehoseError> {
    svc.call(&ctx(), op, json::decode(body.as_bytes()).unwrap())
        .await
}

async fn ok(svc: &Service, op: &str, body: &str) -> String {
    let v = call(svc, op, body)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    String::from_utf8(json::encode(&v)).unwrap()
}

struct Env {
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
    store: riffle_meta::Store,
    engine: Arc<dyn LogEngine>,
    kinesis: Option<Arc<riffle_streams::Service>>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        Env {
            clock: ManualClock::new(T0),
            dir,
            store: riffle_meta::Store::memory(),
            engine: MemoryEngine::new(),
            kinesis: None,
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn open_with(&self, sink: Option<Arc<dyn ObjectSink>>) -> Arc<Service> {
        let cfg = Config {
            status_delay_ms: 0,
            sink: sink.map(Sink),
            delivery_tick_ms: 5,
            ..Config::default()
        };
        Service::open(
            cfg,
            self.clock.clone() as Arc<dyn Clock>,
            self.engine.clone(),
            self.kinesis.clone(),
            self.store.namespace("firehose").unwrap(),
        )
        .unwrap()
    }

    fn open(&self) -> Arc<Service> {
        self.open_with(Some(DirSink::new(self.root())))
    }
}

/// Every file under `dir`, by path relative to it.
fn objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let p = e.unwrap().path();
            let temporary = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if p.is_dir() {
                walk(base, &p, out);
            } else if !temporary {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Waits (in real time, up to 30 s: a loaded machine is slow) until `dir`
/// holds `n` objects.
async fn wait_objects(dir: &Path, n: usize) -> BTreeMap<String, Vec<u8>> {
    for _ in 0..3000 {
        let o = objects(dir);
        if o.len() >= n {
            assert_eq!(o.len(), n, "{:?}", o.keys());
            return o;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {n} objects, found {:?}", objects(dir).keys());
}

/// Lets delivery tasks run (real time) and checks nothing was written.
async fn settle_none(dir: &Path) {
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(objects(dir).is_empty(), "{:?}", objects(dir).keys());
}

fn s3(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(
        r#""ExtendedS3DestinationConfiguration":{{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"{sep}{extra}}}"#
    )
}

async fn create(svc: &Service, name: &str, extra: &str) {
    ok(
        svc,
        "CreateDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"{name}",{}}}"#, s3(extra)),
    )
    .await;
}

async fn put(svc: &Service, name: &str, records: &[&[u8]]) {
    use base64::Engine as _;
    let list: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                r#"{{"Data":"{}"}}"#,
                base64::engine::general_purpose::STANDARD.encode(r)
            )
        })
        .collect();
    ok(
        svc,
        "PutRecordBatch",
        &format!(
            r#"{{"DeliveryStreamName":"{name}","Records":[{}]}}"#,
            list.join(",")
        ),
    )
    .await;
}

fn re(p: &str) -> regex_lite::Regex {
    regex_lite::Regex::new(p).unwrap()
}

#[tokio::test]
async fn default_layout_and_interval() {
    let env = Env::new();
    let svc = env.open();
    create(
        &svc,
        "web",
        r#""BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":60}"#,
    )
    .await;
    put(&svc, "web", &[b"a1", b"b22"]).await;
    env.clock.advance(30_000);
    put(&svc, "web", &[b"c333"]).await;
    settle_none(env.root()).await;
    // 60 s after the first record arrived, one object holds all three.
    env.clock.advance(30_000);
    let o = wait_objects(env.root(), 1).await;
    let (key, body) = o.iter().next().unwrap();
    assert!(
        re(&format!(
            r"^b/2023/11/14/22/web-1-2023-11-14-22-13-20-{UUID}$"
        ))
        .is_match(key),
        "{key}"
    );
    assert_eq!(body, b"a1b22c333");
}

#[tokio::test]
async fn custom_prefix_time_zone_extension_and_delimiter() {
    let env = Env::new();
    let svc = env.open();
    create(
        &svc,
        "cp",
        r#""BufferingHints":{"IntervalInSeconds":0},"Prefix":"logs/!{timestamp:yyyy'-'MM'-'dd}/h=!{timestamp:HH}/r=!{firehose:random-string}/","ErrorOutputPrefix":"err/!{firehose:error-output-type}/","CustomTimeZone":"Asia/Tokyo","FileExtension":".json","ProcessingConfiguration":{"Enabled":true,"Processors":[{"Type":"AppendDelimiterToRecord","Parameters":[{"ParameterName":"Delimiter","ParameterValue":"\\n"}]}]}"#,
    )
    .await;
    put(&svc, "cp", &[b"{\"a\":1}", b"{\"a\":2}"]).await;
    let o = wait_objects(env.root(), 1).await;
    let (key, body) = o.iter().next().unwrap();
    // 22:13 UTC is 07:13 the next day in Tokyo.
    assert!(
        re(&format!(
            r"^b/logs/2023-11-15/h=07/r=[0-9a-f-]{{11}}/cp-1-2023-11-15-07-13-20-{UUID}\.json$"
        ))
        .is_match(key),
        "{key}"
    );
    assert_eq!(body, b"{\"a\":1}\n{\"a\":2}\n");
}

fn hadoop_snappy_decode(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let be = |x: &[u8]| u32::from_be_bytes(x[..4].try_into().unwrap()) as usize;
    while !b.is_empty() {
        let total = be(b);
        b = &b[4..];
        let mut got = 0;
        while got < total {
            let n = be(b);
            let chunk = snap::raw::Decoder::new()
                .decompress_vec(&b[4..4 + n])
                .unwrap();
            got += chunk.len();
            out.extend(chunk);
            b = &b[4 + n..];
        }
    }
    out
}

#[tokio::test]
async fn every_compression_reads_back_byte_exact() {
    let env = Env::new();
    let svc = env.open();
    let data: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 97)).into_bytes())
        .collect();
    let want: Vec<u8> = data.concat();
    for (name, format) in [
        ("u", "UNCOMPRESSED"),
        ("g", "GZIP"),
        ("z", "ZIP"),
        ("s", "Snappy"),
        ("h", "HADOOP_SNAPPY"),
    ] {
        create(
            &svc,
            name,
            &format!(
                r#""BufferingHints":{{"IntervalInSeconds":0}},"Prefix":"{name}/","CompressionFormat":"{format}""#
            ),
        )
        .await;
    }
    for name in ["u", "g", "z", "s", "h"] {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        put(&svc, name, &refs).await;
    }
    let o = wait_objects(env.root(), 5).await;
    let mut seen = Vec::new();
    for (key, body) in &o {
        let name = &key[2..3];
        let back = match name {
            "u" => {
                assert!(
                    re(&format!(
                        r"^b/u/2023/11/14/22/u-1-2023-11-14-22-13-20-{UUID}$"
                    ))
                    .is_match(key),
                    "{key}"
                );
                body.clone()
            }
            "g" => {
                assert!(key.ends_with(".gz"), "{key}");
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            "z" => {
                assert!(key.ends_with(".zip"), "{key}");
                let mut a = zip::ZipArchive::new(std::io::Cursor::new(body.clone())).unwrap();
                assert_eq!(a.len(), 1);
                let mut f = a.by_index(0).unwrap();
                let file = key
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".zip")
                    .to_owned();
                assert_eq!(f.name(), file);
                let mut out = Vec::new();
                f.read_to_end(&mut out).unwrap();
                out
            }
            "s" => {
                assert!(key.ends_with(".snappy"), "{key}");
                let mut out = Vec::new();
                snap::read::FrameDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            "h" => {
                assert!(key.ends_with(".hsnappy"), "{key}");
                hadoop_snappy_decode(body)
            }
            other => panic!("unexpected object {other}"),
        };
        assert_eq!(back, want, "{key}");
        seen.push(name.to_owned());
    }
    assert_eq!(seen, ["g", "h", "s", "u", "z"]);
}

#[tokio::test]
async fn size_hint_cuts_objects_before_the_interval() {
    let env = Env::new();
    let svc = env.open();
    create(
        &svc,
        "big",
        r#""BufferingHints":{"SizeInMBs":1,"IntervalInSeconds":900}"#,
    )
    .await;
    let rec = vec![b'x'; 400 * 1024];
    put(&svc, "big", &[&rec, &rec]).await;
    settle_none(env.root()).await;
    // The third record takes the buffer past 1 MiB: one object, at once.
    put(&svc, "big", &[&rec]).await;
    let o = wait_objects(env.root(), 1).await;
    assert_eq!(o.values().next().unwrap().len(), 3 * rec.len());
    // What follows waits for the interval again.
    put(&svc, "big", &[b"tail"]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(objects(env.root()).len(), 1);
    env.clock.advance(900_000);
    let o = wait_objects(env.root(), 2).await;
    assert!(o.values().any(|b| b == b"tail"));
}

#[tokio::test]
async fn zero_buffering_delivers_at_once() {
    let env = Env::new();
    let svc = env.open();
    create(&svc, "zero", r#""BufferingHints":{"IntervalInSeconds":0}"#).await;
    put(&svc, "zero", &[b"one"]).await;
    let o = wait_objects(env.root(), 1).await;
    assert_eq!(o.values().next().unwrap(), b"one");
    put(&svc, "zero", &[b"two"]).await;
    let o = wait_objects(env.root(), 2).await;
    let mut bodies: Vec<&[u8]> = o.values().map(Vec::as_slice).collect();
    bodies.sort();
    assert_eq!(bodies, [b"one".as_slice(), b"two"]);
}

async fn failure(svc: &Service, name: &str) -> Option<String> {
    let d = ok(
        svc,
        "DescribeDeliveryStream",
        &format!(r#"{{"DeliveryStreamName":"{name}"}}"#),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&d).unwrap();
    v["DeliveryStreamDescription"]
        .get("FailureDescription")
        .map(|f| {
            format!(
                "{}: {}",
                f["Type"].as_str().unwrap(),
                f["Details"].as_str().unwrap()
            )
        })
}

async fn wait_failure(svc: &Service, name: &str, has: &str) -> String {
    for _ in 0..3000 {
        if let Some(f) = failure(svc, name).await {
            if f.contains(has) {
                return f;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no failure with {has:?}: {:?}", failure(svc, name).await);
}

#[tokio::test]
async fn missing_bucket_is_retried_until_it_exists() {
    let env = Env::new();
    let svc = env.open();
    ok(
        &svc,
        "CreateDeliveryStream",
        r#"{"DeliveryStreamName":"nb","ExtendedS3DestinationConfiguration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::later","BufferingHints":{"IntervalInSeconds":0}}}"#,
    )
    .await;
    put(&svc, "nb", &[b"r1", b"r2"]).await;
    let f = wait_failure(&svc, "nb", "S3.NoSuchBucket").await;
    assert!(
        f.starts_with(
            "UNKNOWN_ERROR: S3.NoSuchBucket: The specified bucket does not exist: later."
        ),
        "{f}"
    );
    // Retried with backoff on the service clock: a second attempt after 1 s.
    env.clock.advance(1000);
    wait_failure(&svc, "nb", "(2 attempts so far)").await;
    put(&svc, "nb", &[b"r3"]).await;
    std::fs::create_dir(env.root().join("later")).unwrap();
    env.clock.advance(2000);
    // The object being retried keeps its records; r3, put meanwhile,
    // goes into the next one.
    let o = wait_objects(&env.root().join("later"), 2).await;
    let bodies: Vec<&[u8]> = o.values().map(Vec::as_slice).collect();
    assert_eq!(bodies, [b"r1r2".as_slice(), b"r3"]);
    for _ in 0..3000 {
        if failure(&svc, "nb").await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(failure(&svc, "nb").await, None);
}

/// Fails the first `fail` puts, then writes through.
struct Flaky {
    inner: Arc<DirSink>,
    fail: AtomicUsize,
}

impl ObjectSink for Flaky {
    fn put_object<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        ct: Option<&'a str>,
        ce: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        if self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Box::pin(async { Err(SinkError::Io("disk on fire".into())) });
        }
        self.inner.put_object(bucket, key, body, ct, ce)
    }

    fn bucket_exists<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<bool, SinkError>> {
        self.inner.bucket_exists(bucket)
    }
}

#[tokio::test]
async fn failing_sink_retries_without_loss_or_duplicates() {
    let env = Env::new();
    let sink = Arc::new(Flaky {
        inner: DirSink::new(env.root()),
        fail: AtomicUsize::new(3),
    });
    let svc = env.open_with(Some(sink.clone()));
    create(&svc, "fl", r#""BufferingHints":{"IntervalInSeconds":0}"#).await;
    let mut want = Vec::new();
    for i in 0..20u32 {
        let r = format!("<{i}>");
        want.extend_from_slice(r.as_bytes());
        put(&svc, "fl", &[r.as_bytes()]).await;
        if i % 5 == 4 {
            // Past any backoff (1 + 2 + 4 s).
            env.clock.advance(10_000);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    let mut got = Vec::new();
    for _ in 0..3000 {
        env.clock.advance(10_000);
        let o = objects(env.root());
        let mut all: Vec<(String, Vec<u8>)> = o.into_iter().collect();
        // Keys sort by time, then uuid: order by the records inside.
        all.sort_by_key(|(_, b)| {
            String::from_utf8_lossy(&b[1..b.iter().position(|c| *c == b'>').unwrap()])
                .parse::<u32>()
                .unwrap()
        });
        got = all.into_iter().flat_map(|(_, b)| b).collect();
        if got.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        String::from_utf8(got).unwrap(),
        String::from_utf8(want).unwrap()
    );
    assert_eq!(sink.fail.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn restart_mid_buffer_delivers_everything_acknowledged_once() {
    let env = Env::new();
    {
        let svc = env.open();
        create(&svc, "rs", r#""BufferingHints":{"IntervalInSeconds":60}"#).await;
        put(&svc, "rs", &[b"a", b"b"]).await;
        // Dropped without flushing or maintenance: what a SIGKILL leaves.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let svc = env.open();
    put(&svc, "rs", &[b"c"]).await;
    settle_none(env.root()).await;
    env.clock.advance(60_000);
    let o = wait_objects(env.root(), 1).await;
    assert_eq!(o.values().next().unwrap(), b"abc");
    // The checkpoint was persisted with the object: a second restart
    // delivers nothing again.
    drop(svc);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let svc = env.open();
    env.clock.advance(600_000);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(objects(env.root()).len(), 1);
    put(&svc, "rs", &[b"d"]).await;
    env.clock.advance(60_000);
    let o = wait_objects(env.root(), 2).await;
    assert!(o.values().any(|b| b == b"d"));
}

#[tokio::test]
async fn without_a_sink_s3_delivery_reports_not_configured() {
    let env = Env::new();
    let svc = env.open_with(None);
    create(&svc, "nc", r#""BufferingHints":{"IntervalInSeconds":0}"#).await;
    put(&svc, "nc", &[b"kept"]).await;
    let f = wait_failure(&svc, "nc", "not configured").await;
    assert!(f.contains("--firehose-local-output"), "{f}");
    // Records stay buffered: a server with a sink delivers them.
    drop(svc);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let _svc = env.open();
    let o = wait_objects(env.root(), 1).await;
    assert_eq!(o.values().next().unwrap(), b"kept");
}

#[tokio::test]
async fn prefix_rules_are_enforced_on_create_and_update() {
    let env = Env::new();
    let svc = env.open();
    let e = call(
        &svc,
        "CreateDeliveryStream",
        &format!(
            r#"{{"DeliveryStreamName":"bad",{}}}"#,
            s3(r#""Prefix":"!{timestamp:yyyy}/""#)
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidArgumentException");
    assert_eq!(
        e.message().unwrap(),
        "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
    );
    create(&svc, "good", r#""Prefix":"p/""#).await;
    let e = call(
        &svc,
        "UpdateDestination",
        r#"{"DeliveryStreamName":"good","CurrentDeliveryStreamVersionId":"1","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{"Prefix":"p/!{firehose:error-output-type}/","ErrorOutputPrefix":"e/"}}"#,
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidArgumentException");
    assert!(e
        .message()
        .unwrap()
        .contains("Prefix cannot contain the expression !{firehose:error-output-type}"));
    let d = ok(
        &svc,
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"good"}"#,
    )
    .await;
    assert!(d.contains(r#""VersionId":"1""#), "{d}");
    // A valid update changes the version, which the next object's key
    // carries.
    ok(
        &svc,
        "UpdateDestination",
        r#"{"DeliveryStreamName":"good","CurrentDeliveryStreamVersionId":"1","DestinationId":"destinationId-000000000001","ExtendedS3DestinationUpdate":{"Prefix":"q/","BufferingHints":{"IntervalInSeconds":0}}}"#,
    )
    .await;
    put(&svc, "good", &[b"v2"]).await;
    let o = wait_objects(env.root(), 1).await;
    let key = o.keys().next().unwrap();
    assert!(
        re(&format!(
            r"^b/q/2023/11/14/22/good-2-2023-11-14-22-13-20-{UUID}$"
        ))
        .is_match(key),
        "{key}"
    );
}

async fn kinesis_put(k: &Arc<riffle_streams::Service>, records: &[&str]) {
    let w = k.stream_writer("us-east-1", "src").unwrap();
    let entries = records
        .iter()
        .map(|r| riffle_streams::access::PutEntry {
            partition_key: "pk".into(),
            explicit_hash_key: None,
            data: Bytes::from(r.to_string()),
        })
        .collect();
    w.put(entries).await.unwrap();
}

#[tokio::test]
async fn kinesis_source_delivers_and_resumes_from_its_checkpoint() {
    let mut env = Env::new();
    let kinesis = riffle_streams::Service::new(
        riffle_streams::Config {
            status_delay_ms: 0,
            ..riffle_streams::Config::default()
        },
        env.clock.clone() as Arc<dyn Clock>,
        MemoryEngine::new(),
        [9; 32],
    );
    kinesis
        .call(
            &riffle_streams::Ctx {
                region: "us-east-1".into(),
            },
            "CreateStream",
            json::decode(br#"{"StreamName":"src","ShardCount":2}"#).unwrap(),
        )
        .await
        .unwrap();
    env.kinesis = Some(kinesis.clone());
    {
        let svc = env.open();
        ok(
            &svc,
            "CreateDeliveryStream",
            &format!(
                r#"{{"DeliveryStreamName":"ks","DeliveryStreamType":"KinesisStreamAsSource","KinesisStreamSourceConfiguration":{{"KinesisStreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/src","RoleARN":"arn:aws:iam::000000000000:role/r"}},{}}}"#,
                s3(r#""BufferingHints":{"IntervalInSeconds":60}"#)
            ),
        )
        .await;
        kinesis_put(&kinesis, &["k1,", "k2,"]).await;
        settle_none(env.root()).await;
        env.clock.advance(60_000);
        let o = wait_objects(env.root(), 1).await;
        assert_eq!(o.values().next().unwrap(), b"k1,k2,");
        // Held, not yet delivered, when the service goes away.
        kinesis_put(&kinesis, &["k3,"]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let _svc = env.open();
    kinesis_put(&kinesis, &["k4,"]).await;
    env.clock.advance(60_000);
    let o = wait_objects(env.root(), 2).await;
    let mut bodies: Vec<String> = o
        .values()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect();
    bodies.sort();
    // Resumed after k2 (the checkpoint of the first object): nothing
    // skipped, nothing repeated.
    assert_eq!(bodies, ["k1,k2,", "k3,k4,"]);
}

#[test]
fn dir_sink_root() {
    let d = DirSink::new(PathBuf::from("/x"));
    assert_eq!(d.root(), Path::new("/x"));
}
