//! Reading a delivery stream's accepted records in process: Analytics
//! applications take a delivery stream as their input.
//!
//! A [`BufferReader`] follows the stream's buffer log from an offset (its
//! next record, for a reader that starts now) and waits for durable
//! records. It reads alongside delivery and does not hold records back:
//! records delivered and trimmed from the buffer before the reader got to
//! them are skipped, as the log skips trimmed records.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_log::ReadLimits;

use crate::buffer::Buffer;
use crate::error::Result;
use crate::state::Msg;
use crate::Service;

/// A record read from a delivery stream's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRecord {
    pub offset: u64,
    pub arrival_ms: i64,
    pub data: Bytes,
}

/// Reads one delivery stream's buffer.
pub struct BufferReader {
    buffer: Arc<dyn Buffer>,
    next: u64,
}

impl Service {
    /// A reader of the delivery stream `name` in `region`, from `from` (a
    /// reader's earlier position) or from the next record put.
    pub fn buffer_reader(
        &self,
        region: &str,
        name: &str,
        from: Option<u64>,
    ) -> Result<BufferReader> {
        let key = (region.to_owned(), name.to_owned());
        let cell = self
            .cell(&key)
            .ok_or_else(|| Msg::not_found(name, self.account()))?;
        let buffer = cell.buffer.clone();
        let next = from.unwrap_or_else(|| buffer.next_offset());
        Ok(BufferReader { buffer, next })
    }
}

impl BufferReader {
    /// Up to `max` records after the reader's position; waits up to `wait`
    /// for some to arrive (an empty batch means none came).
    pub async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<TapRecord>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut watch = self.buffer.watch();
            let batch = self.buffer.read(
                self.next,
                ReadLimits {
                    max_records: max.max(1),
                    max_bytes: 8 << 20,
                },
            )?;
            if !batch.records.is_empty() {
                self.next = batch.next_position;
                return Ok(batch
                    .records
                    .into_iter()
                    .map(|r| TapRecord {
                        offset: r.offset,
                        arrival_ms: r.arrival_ms,
                        data: r.data,
                    })
                    .collect());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let _ = tokio::time::timeout(deadline - now, watch.changed()).await;
        }
    }

    /// Where the next read continues.
    pub fn position(&self) -> u64 {
        self.next
    }
}
