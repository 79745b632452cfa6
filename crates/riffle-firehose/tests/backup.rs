//! The extended S3 destination's source record backup (S3BackupMode
//! `Enabled`) through the directory sink, with a manual clock: backup
//! objects' keys and bytes, a missing backup bucket, and UpdateDestination
//! turning backup on but never off.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_firehose::sink::{DirSink, Sink};
use riffle_firehose::{Config, Ctx, Service};
use riffle_log::memory::MemoryEngine;
use riffle_wire::{json, Value};

/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;
const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";
const ROLE: &str = "arn:aws:iam::000000000000:role/r";

async fn call(
    svc: &Service,
    op: &str,
    body: &str,
) -> Result<Value, riffle_firehose::FirehoseError> {
    let ctx = Ctx {
        region: "us-east-1".into(),
    };
    svc.call(&ctx, op, json::decode(body.as_bytes()).unwrap())
        .await
}

async fn ok(svc: &Service, op: &str, body: &str) -> serde_json::Value {
    let v = call(svc, op, body)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    serde_json::from_slice(&json::encode(&v)).unwrap()
}

fn open(root: &Path, clock: &Arc<ManualClock>) -> Arc<Service> {
    Service::new(
        Config {
            status_delay_ms: 0,
            sink: Some(Sink(DirSink::new(root))),
            delivery_tick_ms: 5,
            ..Config::default()
        },
        clock.clone() as Arc<dyn Clock>,
        MemoryEngine::new(),
        None,
    )
}

async fn put(svc: &Service, name: &str, records: &[&[u8]]) {
    use base64::Engine as _;
    let list: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::json!({"Data": base64::engine::general_purpose::STANDARD.encode(r)}))
        .collect();
    ok(
        svc,
        "PutRecordBatch",
        &serde_json::json!({"DeliveryStreamName": name, "Records": list}).to_string(),
    )
    .await;
}

/// Every file under `dir`, by path relative to it.
fn objects(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

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

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn re(p: &str) -> regex_lite::Regex {
    regex_lite::Regex::new(p).unwrap()
}

/// The destination configuration: delimiters appended (so the delivered
/// object differs from the source records), backup as given.
fn config(backup: serde_json::Value) -> serde_json::Value {
    let mut c = serde_json::json!({
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::b",
        "Prefix": "out/",
        "BufferingHints": {"IntervalInSeconds": 0},
        "ProcessingConfiguration": {"Enabled": true, "Processors": [
            {"Type": "AppendDelimiterToRecord", "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}]}
        ]},
    });
    for (k, v) in backup.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

async fn create(svc: &Service, name: &str, cfg: serde_json::Value) {
    ok(
        svc,
        "CreateDeliveryStream",
        &serde_json::json!({"DeliveryStreamName": name, "ExtendedS3DestinationConfiguration": cfg})
            .to_string(),
    )
    .await;
}

async fn failure(svc: &Service, name: &str) -> Option<String> {
    let d = ok(
        svc,
        "DescribeDeliveryStream",
        &serde_json::json!({"DeliveryStreamName": name}).to_string(),
    )
    .await;
    d["DeliveryStreamDescription"]
        .get("FailureDescription")
        .map(|f| f["Details"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn source_records_go_to_the_backup_bucket_as_they_arrived() {
    let dir = tempfile::tempdir().unwrap();
    for b in ["b", "bk"] {
        std::fs::create_dir(dir.path().join(b)).unwrap();
    }
    let clock = ManualClock::new(T0);
    let svc = open(dir.path(), &clock);
    create(
        &svc,
        "src",
        config(serde_json::json!({
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {
                "RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::bk",
                "Prefix": "raw/!{timestamp:yyyy-MM-dd}/",
                "ErrorOutputPrefix": "raw-errors/",
                "CompressionFormat": "GZIP",
            },
        })),
    )
    .await;
    let d = ok(
        &svc,
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"src"}"#,
    )
    .await;
    let desc =
        &d["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(desc["S3BackupMode"], "Enabled");
    assert_eq!(
        desc["S3BackupDescription"],
        serde_json::json!({
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::bk",
            "Prefix": "raw/!{timestamp:yyyy-MM-dd}/",
            "ErrorOutputPrefix": "raw-errors/",
            "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
            "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
            "CloudWatchLoggingOptions": {"Enabled": false},
        })
    );
    put(&svc, "src", &[b"one", b"\x00\xfftwo", b""]).await;
    let main = wait_objects(&dir.path().join("b"), 1).await;
    let backup = wait_objects(&dir.path().join("bk"), 1).await;
    let (key, body) = main.iter().next().unwrap();
    assert!(
        re(&format!(
            r"^out/2023/11/14/22/src-1-2023-11-14-22-13-20-{UUID}$"
        ))
        .is_match(key),
        "{key}"
    );
    assert_eq!(body, b"one\n\x00\xfftwo\n\n");
    let (key, body) = backup.iter().next().unwrap();
    assert!(
        re(&format!(
            r"^raw/2023-11-14/src-1-2023-11-14-22-13-20-{UUID}\.gz$"
        ))
        .is_match(key),
        "{key}"
    );
    assert_eq!(gunzip(body), b"one\x00\xfftwo");
    assert_eq!(failure(&svc, "src").await, None);
}

#[tokio::test]
async fn missing_backup_bucket_fails_without_delivering_twice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let clock = ManualClock::new(T0);
    let svc = open(dir.path(), &clock);
    create(
        &svc,
        "nb",
        config(serde_json::json!({
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::later"},
        })),
    )
    .await;
    put(&svc, "nb", &[b"r1", b"r2"]).await;
    let mut f = None;
    for _ in 0..3000 {
        f = failure(&svc, "nb").await;
        if f.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        f.as_deref(),
        Some("S3.NoSuchBucket: The specified backup bucket does not exist: later. Create the bucket; delivery is retried until then. (1 attempt so far)")
    );
    // The source records are backed up before they are processed: the
    // destination object waits for the backup.
    assert!(objects(&dir.path().join("b")).is_empty());
    clock.advance(1000);
    for _ in 0..3000 {
        if failure(&svc, "nb")
            .await
            .is_some_and(|f| f.contains("(2 attempts so far)"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::create_dir(dir.path().join("later")).unwrap();
    clock.advance(2000);
    let backup = wait_objects(&dir.path().join("later"), 1).await;
    assert_eq!(backup.values().next().unwrap(), b"r1r2");
    let main = wait_objects(&dir.path().join("b"), 1).await;
    assert_eq!(main.values().next().unwrap(), b"r1\nr2\n");
    for _ in 0..3000 {
        if failure(&svc, "nb").await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(failure(&svc, "nb").await, None);
}

#[tokio::test]
async fn update_turns_backup_on_but_not_off() {
    let dir = tempfile::tempdir().unwrap();
    for b in ["b", "bk"] {
        std::fs::create_dir(dir.path().join(b)).unwrap();
    }
    let clock = ManualClock::new(T0);
    let svc = open(dir.path(), &clock);
    create(&svc, "up", config(serde_json::json!({}))).await;
    put(&svc, "up", &[b"before"]).await;
    wait_objects(&dir.path().join("b"), 1).await;
    let update = |version: u32, u: serde_json::Value| {
        serde_json::json!({
            "DeliveryStreamName": "up",
            "CurrentDeliveryStreamVersionId": version.to_string(),
            "DestinationId": "destinationId-000000000001",
            "ExtendedS3DestinationUpdate": u,
        })
        .to_string()
    };
    ok(
        &svc,
        "UpdateDestination",
        &update(
            1,
            serde_json::json!({
                "S3BackupMode": "Enabled",
                "S3BackupUpdate": {"BucketARN": "arn:aws:s3:::bk", "Prefix": "src/"},
            }),
        ),
    )
    .await;
    put(&svc, "up", &[b"after"]).await;
    let backup = wait_objects(&dir.path().join("bk"), 1).await;
    let (key, body) = backup.iter().next().unwrap();
    assert!(
        re(&format!(
            r"^src/2023/11/14/22/up-2-2023-11-14-22-13-20-{UUID}$"
        ))
        .is_match(key),
        "{key}"
    );
    assert_eq!(body, b"after");
    for off in [
        serde_json::json!({"S3BackupMode": "Disabled"}),
        serde_json::json!({"S3BackupMode": "Disabled", "Prefix": "other/"}),
    ] {
        let e = call(&svc, "UpdateDestination", &update(2, off))
            .await
            .unwrap_err();
        assert_eq!(e.error_type(), "InvalidArgumentException");
        assert_eq!(
            e.message().as_deref(),
            Some("Disabling S3 backup is not currently supported.")
        );
    }
    let d = ok(
        &svc,
        "DescribeDeliveryStream",
        r#"{"DeliveryStreamName":"up"}"#,
    )
    .await;
    let d = &d["DeliveryStreamDescription"];
    assert_eq!(d["VersionId"], "2");
    assert_eq!(
        d["Destinations"][0]["ExtendedS3DestinationDescription"]["S3BackupMode"],
        "Enabled"
    );
    // Updates that leave the mode alone (or repeat Enabled) still work.
    ok(
        &svc,
        "UpdateDestination",
        &update(
            2,
            serde_json::json!({"S3BackupMode": "Enabled", "Prefix": "out2/"}),
        ),
    )
    .await;
}

#[tokio::test]
async fn backup_prefix_rules_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let svc = open(dir.path(), &clock);
    let e = call(
        &svc,
        "CreateDeliveryStream",
        &serde_json::json!({
            "DeliveryStreamName": "bad",
            "ExtendedS3DestinationConfiguration": config(serde_json::json!({
                "S3BackupMode": "Enabled",
                "S3BackupConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::bk", "Prefix": "!{timestamp:yyyy}/"},
            })),
        })
        .to_string(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.error_type(), "InvalidArgumentException");
    assert_eq!(
        e.message().as_deref(),
        Some("Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix cannot be null or empty when Prefix contains expressions")
    );
}

#[tokio::test]
async fn enabled_without_a_backup_configuration_waits_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("b")).unwrap();
    let clock = ManualClock::new(T0);
    let svc = open(dir.path(), &clock);
    create(
        &svc,
        "nocfg",
        config(serde_json::json!({"S3BackupMode": "Enabled"})),
    )
    .await;
    put(&svc, "nocfg", &[b"held"]).await;
    let mut f = None;
    for _ in 0..3000 {
        f = failure(&svc, "nocfg").await;
        if f.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        f.as_deref(),
        Some("S3BackupMode is Enabled but no S3BackupConfiguration is set; records stay buffered.")
    );
    assert!(objects(dir.path()).is_empty());
}
