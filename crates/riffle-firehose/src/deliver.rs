//! The delivery seam: a task per delivery stream reads its [`Buffer`] from
//! a checkpoint and hands batches to a [`Destination`].
//!
//! This slice has no destination that delivers: every stream gets
//! [`NotDelivering`], so records stay buffered (durably) and the checkpoint
//! stays where it is. Buffering hints, S3 layout and the destinations
//! themselves implement [`Destination`] next.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use riffle_log::{ReadLimits, StoredRecord};

use crate::buffer::Buffer;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a destination did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Every record of the batch is delivered: the checkpoint moves past it.
    All,
    /// Nothing was delivered; try again when more records arrive.
    NotYet,
}

/// Where a delivery stream's records go.
pub trait Destination: Send + Sync {
    fn name(&self) -> &'static str;
    fn deliver<'a>(&'a self, records: &'a [StoredRecord]) -> BoxFuture<'a, Delivered>;
}

/// Every destination in this slice: stored and described, not delivered.
pub struct NotDelivering;

impl Destination for NotDelivering {
    fn name(&self) -> &'static str {
        "not-delivering"
    }

    fn deliver<'a>(&'a self, _records: &'a [StoredRecord]) -> BoxFuture<'a, Delivered> {
        Box::pin(async { Delivered::NotYet })
    }
}

/// Records read per batch.
const BATCH: ReadLimits = ReadLimits {
    max_records: 10_000,
    max_bytes: 8 * 1024 * 1024,
};

/// Delivers `buffer` from `checkpoint` to `destination` until `stop`
/// changes; `delivered(offset)` is told every new checkpoint (the owner
/// persists it).
pub async fn run(
    buffer: Arc<dyn Buffer>,
    destination: Arc<dyn Destination>,
    mut checkpoint: u64,
    delivered: impl Fn(u64) + Send,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut more = buffer.watch();
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = match buffer.read(checkpoint.max(1), BATCH) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "reading a delivery buffer failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if !batch.records.is_empty() && destination.deliver(&batch.records).await == Delivered::All
        {
            checkpoint = batch.next_position;
            delivered(checkpoint);
            continue;
        }
        tokio::select! {
            r = more.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}
