//! Per delivery stream counters, reported on `/metrics` under names that
//! follow CloudWatch's `AWS/Firehose` metrics, and what the delivery task
//! holds ([`Fill`]), for the console's buffer view.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// A delivery stream's counters, kept in its registry cell (they start at
/// zero when the server starts and go away with the stream).
#[derive(Debug, Default)]
pub struct Stats {
    /// CloudWatch `IncomingRecords`: records accepted by PutRecord and
    /// PutRecordBatch (or read from a Kinesis source).
    pub incoming_records: AtomicU64,
    /// CloudWatch `IncomingBytes`: their data bytes.
    pub incoming_bytes: AtomicU64,
    /// CloudWatch `DeliveryToS3.Success`: objects stored in S3.
    pub s3_success: AtomicU64,
    /// CloudWatch `DeliveryToS3.Records`: records in those objects.
    pub s3_records: AtomicU64,
    /// CloudWatch `DeliveryToS3.Bytes`: their data bytes (before
    /// compression).
    pub s3_bytes: AtomicU64,
    /// CloudWatch `DeliveryToRedshift.Success`: COPY commands that
    /// loaded a batch.
    pub redshift_success: AtomicU64,
    /// CloudWatch `DeliveryToRedshift.Records`: rows those COPY commands
    /// loaded.
    pub redshift_records: AtomicU64,
    /// CloudWatch `DeliveryToRedshift.Bytes`: the data bytes of their
    /// batches.
    pub redshift_bytes: AtomicU64,
    /// CloudWatch `ThrottledRecords`: records of PutRecord and
    /// PutRecordBatch calls refused with a throttling error.
    pub throttled_records: AtomicU64,
    /// Arrival (ms) of the oldest record the delivery task holds; 0 when
    /// it holds none. Gives CloudWatch `DeliveryToS3.DataFreshness`.
    pub oldest_undelivered_ms: AtomicI64,
    /// Delivery attempts that failed (each is retried or, past 24 hours,
    /// given up on).
    pub failed_attempts: AtomicU64,
    /// What the delivery task held when it last looked.
    fill: Mutex<Fill>,
    /// CloudWatch `PartitionCount`: partitions open or waiting to be
    /// delivered.
    pub partition_count: AtomicU64,
    /// CloudWatch `PartitionCountExceeded`: 1 while the last records
    /// processed met the active partition limit, else 0.
    pub partition_count_exceeded: AtomicU64,
    /// CloudWatch `JQProcessing.Duration`, summed: time spent running the
    /// MetadataExtraction query, in nanoseconds, and the records it ran on.
    pub jq_nanos: AtomicU64,
    pub jq_records: AtomicU64,
}

/// Records held together: how many, their data bytes, and the arrival
/// (ms) of the oldest (0 when none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub records: u64,
    pub bytes: u64,
    pub oldest_ms: i64,
}

/// One partition's buffer: records processed and waiting for the size or
/// interval hint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionFill {
    /// The partition's keys (`partitionKeyFromQuery:<k>` or
    /// `partitionKeyFromLambda:<k>`, and its value); empty without
    /// dynamic partitioning.
    pub keys: Vec<(String, String)>,
    pub held: Held,
    /// When its buffering interval started (ms).
    pub opened_ms: i64,
}

/// What a delivery task holds between its source and its destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fill {
    /// The buffer offset the task reads next (DirectPut); records from it
    /// on are still in the buffer, unread.
    pub read_offset: Option<u64>,
    /// Read and waiting for processing (a Lambda processor's buffer).
    pub staged: Held,
    /// Partitions filling up, oldest interval first.
    pub partitions: Vec<PartitionFill>,
    /// Writes due: being stored, or waiting for a retry.
    pub pending: Held,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub incoming_records: u64,
    pub incoming_bytes: u64,
    pub s3_success: u64,
    pub s3_records: u64,
    pub s3_bytes: u64,
    pub redshift_success: u64,
    pub redshift_records: u64,
    pub redshift_bytes: u64,
    pub throttled_records: u64,
    pub failed_attempts: u64,
    /// Age in seconds of the oldest undelivered record (0 when none).
    pub data_freshness_secs: f64,
    pub partition_count: u64,
    pub partition_count_exceeded: u64,
    pub jq_seconds: f64,
    pub jq_records: u64,
}

impl Stats {
    pub(crate) fn incoming(&self, records: u64, bytes: u64) {
        self.incoming_records.fetch_add(records, Ordering::Relaxed);
        self.incoming_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn delivered_to_s3(&self, records: u64, bytes: u64) {
        self.s3_success.fetch_add(1, Ordering::Relaxed);
        self.s3_records.fetch_add(records, Ordering::Relaxed);
        self.s3_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn delivered_to_redshift(&self, rows: u64, bytes: u64) {
        self.redshift_success.fetch_add(1, Ordering::Relaxed);
        self.redshift_records.fetch_add(rows, Ordering::Relaxed);
        self.redshift_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn holding(&self, oldest_ms: Option<i64>, partitions: usize) {
        self.oldest_undelivered_ms
            .store(oldest_ms.unwrap_or(0), Ordering::Relaxed);
        self.partition_count
            .store(partitions as u64, Ordering::Relaxed);
    }

    /// Whether the last records processed met the active partition limit.
    pub(crate) fn partition_limit(&self, met: bool) {
        self.partition_count_exceeded
            .store(u64::from(met), Ordering::Relaxed);
    }

    pub(crate) fn jq(&self, took: std::time::Duration, records: u64) {
        self.jq_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        self.jq_records.fetch_add(records, Ordering::Relaxed);
    }

    pub(crate) fn failed_attempt(&self) {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_fill(&self, fill: Fill) {
        *self.fill.lock().unwrap_or_else(|p| p.into_inner()) = fill;
    }

    /// What the delivery task held when it last published it.
    pub fn fill(&self) -> Fill {
        self.fill.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn snapshot(&self, now_ms: i64) -> Snapshot {
        let oldest = self.oldest_undelivered_ms.load(Ordering::Relaxed);
        Snapshot {
            incoming_records: self.incoming_records.load(Ordering::Relaxed),
            incoming_bytes: self.incoming_bytes.load(Ordering::Relaxed),
            s3_success: self.s3_success.load(Ordering::Relaxed),
            s3_records: self.s3_records.load(Ordering::Relaxed),
            s3_bytes: self.s3_bytes.load(Ordering::Relaxed),
            redshift_success: self.redshift_success.load(Ordering::Relaxed),
            redshift_records: self.redshift_records.load(Ordering::Relaxed),
            redshift_bytes: self.redshift_bytes.load(Ordering::Relaxed),
            throttled_records: self.throttled_records.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
            data_freshness_secs: if oldest == 0 {
                0.0
            } else {
                (now_ms - oldest).max(0) as f64 / 1000.0
            },
            partition_count: self.partition_count.load(Ordering::Relaxed),
            partition_count_exceeded: self.partition_count_exceeded.load(Ordering::Relaxed),
            jq_seconds: self.jq_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            jq_records: self.jq_records.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_freshness() {
        let s = Stats::default();
        s.incoming(3, 30);
        s.delivered_to_s3(3, 30);
        s.delivered_to_redshift(4, 30);
        s.holding(Some(1_000), 3);
        s.partition_limit(true);
        s.jq(std::time::Duration::from_millis(1500), 7);
        let snap = s.snapshot(3_500);
        assert_eq!(
            (
                snap.partition_count,
                snap.partition_count_exceeded,
                snap.jq_seconds,
                snap.jq_records
            ),
            (3, 1, 1.5, 7)
        );
        assert_eq!(snap.incoming_records, 3);
        assert_eq!(snap.s3_success, 1);
        assert_eq!(
            (
                snap.redshift_success,
                snap.redshift_records,
                snap.redshift_bytes
            ),
            (1, 4, 30)
        );
        assert_eq!(snap.data_freshness_secs, 2.5);
        s.holding(None, 0);
        s.partition_limit(false);
        let snap = s.snapshot(9_000);
        assert_eq!(
            (
                snap.data_freshness_secs,
                snap.partition_count,
                snap.partition_count_exceeded
            ),
            (0.0, 0, 0)
        );
    }
}
