//! The fragment store of one video stream incarnation, on the shared log
//! engine (`riffle_log`): the same commit cycles, fsyncs and power-loss
//! guarantees as Data Streams' records.
//!
//! A stream's log has two shards:
//! - shard 0 ([`DATA`]) holds each fragment's stored form, cut into
//!   records of at most [`CHUNK`] bytes;
//! - shard 1 ([`INDEX`]) holds one small record per fragment, appended in
//!   the same call after its data records, so an index record that
//!   survives a crash always has its data (the log keeps appends in order
//!   and recovery cuts an unfinished cycle whole).
//!
//! A fragment's stored form is the stream header it was uploaded under
//! (the Info and Tracks elements, as received) followed by its Cluster,
//! rewritten with a known size and its Timecode made absolute (the
//! producer timestamp in the stream's TimecodeScale).
//!
//! Index record, version 1, 45 bytes, little-endian:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0     | version = 1 |
//! | 1..9  | u64 offset of the first data record in shard 0 |
//! | 9..13 | u32 number of data records |
//! | 13..21| u64 stored size in bytes |
//! | 21..29| i64 producer timestamp, epoch ms |
//! | 29..37| i64 server timestamp, epoch ms |
//! | 37..41| u32 duration, ms |
//! | 41..45| u32 length of the stream header at the start of the stored form |
//!
//! A fragment number is the decimal of `log_id * 10^20 + offset`: it grows
//! along a stream, names its incarnation and finds its data.
//!
//! The index lives in memory too (rebuilt at open from shard 1 alone); a
//! fragment joins it once durable, so readers never see one that a crash
//! could take back.

use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use riffle_log::{Durable, LogError, NewRecord, ReadLimits, StreamLog};

/// The shard of fragment data.
pub const DATA: u32 = 0;
/// The shard of index records.
pub const INDEX: u32 = 1;
/// The largest data record.
pub const CHUNK: usize = 4 << 20;
const INDEX_LEN: usize = 45;
const FRAGMENT_BASE: u128 = 100_000_000_000_000_000_000;

/// One stored fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub offset: u64,
    pub chunks: u32,
    pub size: u64,
    pub producer_ms: i64,
    pub server_ms: i64,
    pub duration_ms: u32,
    pub header_len: u32,
}

impl Fragment {
    fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(INDEX_LEN);
        b.push(1u8);
        b.extend_from_slice(&self.offset.to_le_bytes());
        b.extend_from_slice(&self.chunks.to_le_bytes());
        b.extend_from_slice(&self.size.to_le_bytes());
        b.extend_from_slice(&self.producer_ms.to_le_bytes());
        b.extend_from_slice(&self.server_ms.to_le_bytes());
        b.extend_from_slice(&self.duration_ms.to_le_bytes());
        b.extend_from_slice(&self.header_len.to_le_bytes());
        Bytes::from(b)
    }

    fn decode(b: &[u8]) -> Option<Fragment> {
        if b.len() != INDEX_LEN || b[0] != 1 {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Some(Fragment {
            offset: u64_at(1),
            chunks: u32_at(9),
            size: u64_at(13),
            producer_ms: u64_at(21) as i64,
            server_ms: u64_at(29) as i64,
            duration_ms: u32_at(37),
            header_len: u32_at(41),
        })
    }

    /// The fragment's number in a stream whose log is `log_id`.
    pub fn number(&self, log_id: u64) -> String {
        number_of(log_id, self.offset)
    }
}

/// The fragment number of the data offset `offset` in the log `log_id`.
fn number_of(log_id: u64, offset: u64) -> String {
    (log_id as u128 * FRAGMENT_BASE + offset as u128).to_string()
}

/// A fragment's stored form, split at its parts (each sharing the read
/// buffer): the stream header (Info and Tracks), the whole Cluster
/// element, the Cluster's body, and the producer Tags after it.
pub struct Parts {
    pub header: Bytes,
    pub cluster: Bytes,
    pub cluster_body: Bytes,
    pub tags: Bytes,
}

impl Parts {
    /// `None` when `stored` is not what [`Store::append`] was given.
    pub fn split(f: &Fragment, stored: &Bytes) -> Option<Parts> {
        let hl = f.header_len as usize;
        let rest = stored.get(hl..)?;
        let h = crate::mkv::read_header(rest)
            .ok()
            .flatten()
            .filter(|h| h.id == crate::mkv::id::CLUSTER && h.size != crate::mkv::UNKNOWN_SIZE)?;
        let end = hl
            .checked_add(h.len)?
            .checked_add(usize::try_from(h.size).ok()?)?;
        if end > stored.len() {
            return None;
        }
        Some(Parts {
            header: stored.slice(..hl),
            cluster: stored.slice(hl..end),
            cluster_body: stored.slice(hl + h.len..end),
            tags: stored.slice(end..),
        })
    }
}

/// The data offset a fragment number names in the log `log_id`, if it is
/// one of that log's numbers.
pub fn offset_of(number: &str, log_id: u64) -> Option<u64> {
    let n: u128 = number.parse().ok()?;
    (n / FRAGMENT_BASE == log_id as u128).then_some((n % FRAGMENT_BASE) as u64)
}

/// The log of a stream incarnation: its creation time with ten bits of its
/// region and name, so incarnations never share a log.
pub fn log_id_of(s: &crate::state::Stream) -> u64 {
    // FNV-1a: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.region.bytes().chain([0]).chain(s.name.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((s.created_ms.max(0) as u64) << 10) | (h & 0x3ff)
}

/// What a new fragment is, before it has an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewFragment {
    pub producer_ms: i64,
    pub server_ms: i64,
    pub duration_ms: u32,
}

/// One stream incarnation's fragments.
pub struct Store {
    pub log_id: u64,
    log: Arc<dyn StreamLog>,
    index: RwLock<Vec<Fragment>>,
    /// Serialises appends, so a fragment's data offset is known before
    /// its index record is written.
    append: tokio::sync::Mutex<()>,
    /// Bumped whenever a fragment joins the index.
    added: tokio::sync::watch::Sender<u64>,
}

fn read_lock<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write_lock<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Opens the store over `log`, reading its index.
    pub fn open(log_id: u64, log: Arc<dyn StreamLog>) -> Result<Store, LogError> {
        let mut index = Vec::new();
        let mut from = 0;
        loop {
            let batch = log.read(
                INDEX,
                from,
                ReadLimits {
                    max_records: 10_000,
                    max_bytes: 4 << 20,
                },
            )?;
            if batch.records.is_empty() {
                break;
            }
            for r in &batch.records {
                match Fragment::decode(&r.data) {
                    Some(f) => index.push(f),
                    None => tracing::warn!(
                        log = log_id,
                        offset = r.offset,
                        "skipping an unreadable fragment index record"
                    ),
                }
            }
            from = batch.next_position;
        }
        // Index records whose data a trim took.
        let first_data = log
            .read(
                DATA,
                0,
                ReadLimits {
                    max_records: 1,
                    max_bytes: 1,
                },
            )?
            .records
            .first()
            .map(|r| r.offset);
        match first_data {
            Some(first) => index.retain(|f| f.offset >= first),
            None => index.clear(),
        }
        Ok(Store {
            log_id,
            log,
            index: RwLock::new(index),
            append: tokio::sync::Mutex::new(()),
            added: tokio::sync::watch::channel(0).0,
        })
    }

    /// Appends a fragment's stored form (`header_len` bytes of stream
    /// header, then its cluster). The fragment is returned at once; it
    /// joins the index, and the returned future resolves, once durable.
    pub async fn append(
        self: &Arc<Self>,
        meta: NewFragment,
        header_len: u32,
        stored: Bytes,
        now_ms: i64,
    ) -> Result<(Fragment, Durable), LogError> {
        let _one = self.append.lock().await;
        let offset = self.log.next_offset(DATA);
        let chunks = stored.len().div_ceil(CHUNK).max(1);
        let frag = Fragment {
            offset,
            chunks: chunks as u32,
            size: stored.len() as u64,
            producer_ms: meta.producer_ms,
            server_ms: meta.server_ms,
            duration_ms: meta.duration_ms,
            header_len,
        };
        let mut records: Vec<NewRecord> = (0..chunks)
            .map(|i| NewRecord {
                shard: DATA,
                partition_key: String::new(),
                data: stored.slice(i * CHUNK..((i + 1) * CHUNK).min(stored.len())),
            })
            .collect();
        records.push(NewRecord {
            shard: INDEX,
            partition_key: String::new(),
            data: frag.encode(),
        });
        let appended = self.log.append(records, now_ms)?;
        if appended.offsets.first() != Some(&offset) {
            return Err(LogError::Io(format!(
                "fragment data went to offset {:?}, not {offset}",
                appended.offsets.first()
            )));
        }
        let me = self.clone();
        let durable = appended.durable;
        let done: Durable = Box::pin(async move {
            durable.await?;
            {
                let mut index = write_lock(&me.index);
                let at = index.partition_point(|f| f.offset < frag.offset);
                index.insert(at, frag);
            }
            me.added.send_modify(|n| *n += 1);
            Ok(())
        });
        Ok((frag, done))
    }

    /// A fragment's stored form.
    pub fn read(&self, f: &Fragment) -> Result<Bytes, LogError> {
        let batch = self.log.read(
            DATA,
            f.offset,
            ReadLimits {
                max_records: f.chunks as usize,
                max_bytes: usize::MAX,
            },
        )?;
        if batch.records.first().map(|r| r.offset) != Some(f.offset)
            || batch.records.len() != f.chunks as usize
        {
            return Err(LogError::Removed);
        }
        if batch.records.len() == 1 {
            return Ok(batch.records[0].data.clone());
        }
        let mut out = BytesMut::with_capacity(f.size as usize);
        for r in &batch.records {
            out.extend_from_slice(&r.data);
        }
        Ok(out.freeze())
    }

    /// Every durable fragment, in order.
    pub fn fragments(&self) -> Vec<Fragment> {
        read_lock(&self.index).clone()
    }

    /// The fragment at a data offset.
    pub fn at(&self, offset: u64) -> Option<Fragment> {
        let index = read_lock(&self.index);
        let i = index.partition_point(|f| f.offset < offset);
        index.get(i).filter(|f| f.offset == offset).copied()
    }

    /// The first fragment at or after a data offset.
    pub fn from_offset(&self, offset: u64) -> Option<Fragment> {
        let index = read_lock(&self.index);
        let i = index.partition_point(|f| f.offset < offset);
        index.get(i).copied()
    }

    /// The newest fragment.
    pub fn last(&self) -> Option<Fragment> {
        read_lock(&self.index).last().copied()
    }

    /// The offset the next fragment will take.
    pub fn next_offset(&self) -> u64 {
        self.log.next_offset(DATA)
    }

    /// The number the next fragment will take.
    pub fn next_number(&self) -> String {
        number_of(self.log_id, self.next_offset())
    }

    /// Drops fragments that arrived before `cutoff_ms`.
    pub fn trim(&self, cutoff_ms: i64) {
        self.log.trim(cutoff_ms);
        write_lock(&self.index).retain(|f| f.server_ms >= cutoff_ms);
    }

    /// Changes whenever a fragment joins the index.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.added.subscribe()
    }

    /// The number of fragments and their stored bytes.
    pub fn usage(&self) -> (usize, u64) {
        let index = read_lock(&self.index);
        (index.len(), index.iter().map(|f| f.size).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_log::LogEngine;

    fn meta(p: i64) -> NewFragment {
        NewFragment {
            producer_ms: p,
            server_ms: p + 5,
            duration_ms: 1000,
        }
    }

    #[tokio::test]
    async fn fragments_round_trip_and_reopen_from_the_index_alone() {
        let engine = riffle_log::memory::MemoryEngine::new();
        let store = Arc::new(Store::open(42, engine.open(42).unwrap()).unwrap());
        let big = Bytes::from(vec![7u8; CHUNK * 2 + 10]);
        let (a, d) = store
            .append(meta(1_000), 3, Bytes::from_static(b"hdrcluster"), 1_005)
            .await
            .unwrap();
        assert!(store.fragments().is_empty(), "visible only once durable");
        d.await.unwrap();
        let (b, d) = store
            .append(meta(2_000), 0, big.clone(), 2_005)
            .await
            .unwrap();
        d.await.unwrap();
        assert_eq!(b.chunks, 3);
        assert_eq!(store.read(&a).unwrap(), Bytes::from_static(b"hdrcluster"));
        assert_eq!(store.read(&b).unwrap(), big);
        assert_eq!(offset_of(&b.number(42), 42), Some(b.offset));
        assert_eq!(offset_of(&b.number(42), 43), None);
        assert!(a.number(42) < b.number(42) || a.number(42).len() < b.number(42).len());
        let again = Store::open(42, engine.open(42).unwrap()).unwrap();
        assert_eq!(again.fragments(), vec![a, b]);
        assert_eq!(again.at(b.offset), Some(b));
        assert_eq!(again.from_offset(a.offset + 1), Some(b));
    }
}
