//! Power loss under the embedded S3: objects (files under `s3/`) and their
//! rows (redb over `riffle_fs::FsBackend`) on one simulated file system,
//! crashed together.
//!
//! Every run (one seed) is a few rounds on one [`SimFs`]: open the store
//! (recovering what the last round left), check it against what the test
//! was told, then run PutObject, DeleteObject, CopyObject and a multipart
//! upload on a handful of keys while a power loss (every [`CrashMode`])
//! strikes at a random state-changing operation or sync, or at the end.
//!
//! The check after every recovery: the store opens; every key holds the
//! bytes of the last operation acknowledged on it, or of an operation
//! that failed after it (the power went out under it: either outcome is
//! allowed), never anything else; `tmp/` is empty and every data file in
//! `objects/` is named by exactly one object (no orphans, no loss).
//!
//! `RIFFLE_POWER_SEEDS` sets the number of seeds.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use riffle_core::clock::ManualClock;
use riffle_core::Clock;
use riffle_fs::sim::{CrashMode, SimFs, Trigger};
use riffle_fs::{open_redb, Fs};
use riffle_meta::Store;
use riffle_s3::{MetadataDirective, PutOptions, S3Error, NAMESPACE, S3};

const ROOT: &str = "/data/s3";
const META: &str = "/data/meta.redb";
const BUCKET: &str = "bucket";
const KEYS: [&str; 4] = ["a", "b/c", "d e", "f"];
const ROUNDS: u64 = 3;
const OPS: u64 = 8;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn open(fs: &SimFs, clock: Arc<dyn Clock>) -> Result<Arc<S3>, String> {
    let on = fs.clone();
    let store = Store::open_with(move || open_redb(&on, Path::new(META)))
        .map_err(|e| format!("opening {META}: {e}"))?;
    let ns = store.namespace(NAMESPACE).map_err(|e| e.to_string())?;
    S3::open(Arc::new(fs.clone()), ROOT.into(), ns, clock).map_err(|e| format!("opening S3: {e}"))
}

/// What a key may hold after a crash: its acknowledged state and the
/// outcomes of operations that failed since.
type Allowed = BTreeMap<String, Vec<Option<Vec<u8>>>>;

async fn check(s3: &S3, fs: &SimFs, allowed: &mut Allowed, seed: u64) {
    let mut present = 0;
    for key in KEYS {
        let now = match s3.get_object(BUCKET, key).await {
            Ok((row, data)) => {
                assert_eq!(row.size as usize, data.len(), "seed {seed}: {key}: size");
                if row.parts == 0 {
                    assert_eq!(row.etag, md5_hex(&data), "seed {seed}: {key}: etag");
                }
                present += 1;
                Some(data.to_vec())
            }
            Err(S3Error::NoSuchKey(_)) => None,
            Err(e) => panic!("seed {seed}: reading {key}: {e:?}"),
        };
        let may = allowed.entry(key.to_owned()).or_insert_with(|| vec![None]);
        assert!(
            may.contains(&now),
            "seed {seed}: {key} holds {:?} bytes, allowed {:?}",
            now.as_ref().map(Vec::len),
            may.iter()
                .map(|m| m.as_ref().map(Vec::len))
                .collect::<Vec<_>>()
        );
        *may = vec![now];
    }
    let tmp = fs.read_dir(Path::new("/data/s3/tmp")).unwrap();
    assert!(tmp.is_empty(), "seed {seed}: tmp/ holds {tmp:?}");
    let files = fs.read_dir(Path::new("/data/s3/objects")).unwrap();
    assert_eq!(files.len(), present, "seed {seed}: data files {files:?}");
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

async fn run(seed: u64) {
    let fs = SimFs::new(seed);
    fs.create_dir(Path::new("/data")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    let clock: Arc<dyn Clock> = ManualClock::new(1_700_000_000_000);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut allowed = Allowed::new();
    {
        let s3 = open(&fs, clock.clone()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        s3.create_bucket(BUCKET, "us-east-1").await.unwrap();
    }
    fs.kill();
    for round in 0..ROUNDS {
        let s3 =
            open(&fs, clock.clone()).unwrap_or_else(|e| panic!("seed {seed} round {round}: {e}"));
        check(&s3, &fs, &mut allowed, seed).await;
        let mode = CrashMode::ALL[rng.below(4) as usize];
        let trigger = if rng.below(2) == 0 {
            Trigger::Op(1 + rng.below(60))
        } else {
            Trigger::Sync(1 + rng.below(20))
        };
        fs.arm_crash(trigger, mode);
        for i in 0..OPS {
            let key = KEYS[rng.below(KEYS.len() as u64) as usize];
            let body: Vec<u8> = (0..rng.below(3000))
                .map(|j| (seed + round * 31 + i * 7 + j) as u8)
                .collect();
            let (result, outcome) = match rng.below(5) {
                0 | 1 => (
                    s3.put_object(
                        BUCKET,
                        key,
                        Bytes::from(body.clone()),
                        None,
                        BTreeMap::new(),
                    )
                    .await
                    .map(|_| ()),
                    Some(body),
                ),
                2 => (s3.delete_object(BUCKET, key).await, None),
                3 => {
                    let from = KEYS[rng.below(KEYS.len() as u64) as usize];
                    let source = allowed.get(from).and_then(|a| a.last().cloned()).flatten();
                    let r = s3
                        .copy_object(
                            BUCKET,
                            from,
                            BUCKET,
                            key,
                            MetadataDirective::Replace(PutOptions::default()),
                            PutOptions::default(),
                        )
                        .await
                        .map(|_| ());
                    match (&r, source) {
                        // The source is not there (or its state is unknown):
                        // nothing was written.
                        (Err(S3Error::NoSuchKey(_)), _) => continue,
                        (_, Some(src)) => (r, Some(src)),
                        (Ok(()), None) => {
                            let (_, data) = s3.get_object(BUCKET, key).await.unwrap();
                            (r, Some(data.to_vec()))
                        }
                        (Err(_), None) => continue,
                    }
                }
                _ => {
                    let r = async {
                        let u = s3.create_upload(BUCKET, key, PutOptions::default()).await?;
                        let mut st = s3.stage(Default::default())?;
                        st.write(&body)?;
                        let staged = st.finish()?;
                        let etag = s3.upload_part(BUCKET, key, &u.id, 1, staged, None).await?;
                        s3.complete_upload(BUCKET, key, &u.id, &[(1, etag)], PutOptions::default())
                            .await
                            .map(|_| ())
                    }
                    .await;
                    (r, Some(body))
                }
            };
            let may = allowed.entry(key.to_owned()).or_insert_with(|| vec![None]);
            match result {
                Ok(()) => *may = vec![outcome],
                Err(_) => may.push(outcome),
            }
            if fs.is_down() {
                break;
            }
        }
        drop(s3);
        if fs.is_down() {
            fs.reboot();
        } else {
            fs.crash(mode);
        }
    }
    let s3 = open(&fs, clock.clone()).unwrap_or_else(|e| panic!("seed {seed} final: {e}"));
    check(&s3, &fs, &mut allowed, seed).await;
}

#[test]
fn acknowledged_objects_survive_power_loss() {
    let seeds: u64 = std::env::var("RIFFLE_POWER_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for seed in 1..=seeds {
        rt.block_on(run(seed));
    }
}
