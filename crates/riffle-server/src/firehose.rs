//! Amazon Data Firehose on the platform: JSON 1.1 under
//! `X-Amz-Target: Firehose_20150804.<Operation>`, the shared JSON 1.1 front
//! ([`crate::json11`]: AWS's pre-checks, SigV4), then the service.

use std::sync::Arc;

use riffle_firehose::{Ctx, FirehoseError, Service};
use riffle_wire::Encoding;

use crate::ok;
use crate::platform::{
    AwsService, BoxFuture, Family, Gauge, MetricKind, Request, Response, Route, Sample, Shared,
};

pub const TARGET_PREFIX: &str = "Firehose_20150804";

/// The largest body read: a PutRecordBatch of 4 MiB of data is about
/// 5.6 MB of base64 plus 500 records' JSON; 16 MiB leaves room.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Firehose, served over JSON 1.1.
pub struct Firehose(pub Arc<Service>);

crate::json11::service_error!(FirehoseError);

fn firehose_error(e: &FirehoseError) -> Response {
    crate::json11::error_response(e)
}

impl AwsService for Firehose {
    fn name(&self) -> &'static str {
        "firehose"
    }

    fn route(&self) -> Route {
        Route::Target(TARGET_PREFIX)
    }

    fn knows(&self, op: &str) -> bool {
        riffle_firehose::model::OPERATIONS
            .iter()
            .any(|(n, _)| *n == op)
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn overloaded(&self, _parts: &http::request::Parts, _op: &str) -> Response {
        firehose_error(&FirehoseError::ServiceUnavailable("Slow down.".into()))
    }

    fn gauges(&self) -> Vec<Gauge> {
        vec![Gauge {
            name: "riffle_firehose_delivery_streams",
            help: "Firehose delivery streams.",
            value: self.0.count() as u64,
        }]
    }

    /// Per delivery stream metrics, labelled `delivery_stream` (and
    /// `region`), named after CloudWatch's `AWS/Firehose` metrics:
    ///
    /// | Riffle | CloudWatch |
    /// |---|---|
    /// | `riffle_firehose_incoming_records_total` | `IncomingRecords` |
    /// | `riffle_firehose_incoming_bytes_total` | `IncomingBytes` |
    /// | `riffle_firehose_delivery_to_s3_success_total` | `DeliveryToS3.Success` (objects stored) |
    /// | `riffle_firehose_delivery_to_s3_records_total` | `DeliveryToS3.Records` |
    /// | `riffle_firehose_delivery_to_s3_bytes_total` | `DeliveryToS3.Bytes` |
    /// | `riffle_firehose_delivery_to_s3_data_freshness_seconds` | `DeliveryToS3.DataFreshness` (gauge: age of the oldest undelivered record) |
    /// | `riffle_firehose_delivery_to_redshift_success_total` | `DeliveryToRedshift.Success` (COPY commands that loaded a batch) |
    /// | `riffle_firehose_delivery_to_redshift_records_total` | `DeliveryToRedshift.Records` (rows loaded) |
    /// | `riffle_firehose_delivery_to_redshift_bytes_total` | `DeliveryToRedshift.Bytes` |
    /// | `riffle_firehose_throttled_records_total` | `ThrottledRecords` |
    /// | `riffle_firehose_partition_count` | `PartitionCount` (gauge: partitions open or waiting to be delivered) |
    /// | `riffle_firehose_partition_count_exceeded` | `PartitionCountExceeded` (gauge: 1 while records meet the active partition limit) |
    /// | `riffle_firehose_jq_processing_seconds_total` | `JQProcessing.Duration`, summed (with `riffle_firehose_jq_processed_records_total`) |
    ///
    /// Label values are names of delivery streams that exist, so the
    /// series are bounded by the account's streams.
    fn families(&self) -> Vec<Family> {
        use riffle_firehose::stats::Snapshot;
        let stats = self.0.stream_stats();
        let family = |name, help, kind, f: fn(&Snapshot) -> f64| Family {
            name,
            help,
            kind,
            samples: stats
                .iter()
                .map(|((region, stream), snap)| Sample {
                    labels: vec![
                        ("delivery_stream", stream.clone()),
                        ("region", region.clone()),
                    ],
                    value: f(snap),
                })
                .collect(),
        };
        use MetricKind::{Counter, Gauge as G};
        vec![
            family(
                "riffle_firehose_incoming_records_total",
                "Records taken in (CloudWatch IncomingRecords).",
                Counter,
                |s| s.incoming_records as f64,
            ),
            family(
                "riffle_firehose_incoming_bytes_total",
                "Data bytes taken in (CloudWatch IncomingBytes).",
                Counter,
                |s| s.incoming_bytes as f64,
            ),
            family(
                "riffle_firehose_delivery_to_s3_success_total",
                "Objects stored in S3 (CloudWatch DeliveryToS3.Success).",
                Counter,
                |s| s.s3_success as f64,
            ),
            family(
                "riffle_firehose_delivery_to_s3_records_total",
                "Records delivered to S3 (CloudWatch DeliveryToS3.Records).",
                Counter,
                |s| s.s3_records as f64,
            ),
            family(
                "riffle_firehose_delivery_to_s3_bytes_total",
                "Data bytes delivered to S3, before compression (CloudWatch DeliveryToS3.Bytes).",
                Counter,
                |s| s.s3_bytes as f64,
            ),
            family(
                "riffle_firehose_delivery_to_s3_data_freshness_seconds",
                "Age of the oldest record not yet delivered (CloudWatch DeliveryToS3.DataFreshness).",
                G,
                |s| s.data_freshness_secs,
            ),
            family(
                "riffle_firehose_delivery_to_redshift_success_total",
                "COPY commands that loaded a batch into Redshift (CloudWatch DeliveryToRedshift.Success).",
                Counter,
                |s| s.redshift_success as f64,
            ),
            family(
                "riffle_firehose_delivery_to_redshift_records_total",
                "Rows loaded into Redshift (CloudWatch DeliveryToRedshift.Records).",
                Counter,
                |s| s.redshift_records as f64,
            ),
            family(
                "riffle_firehose_delivery_to_redshift_bytes_total",
                "Data bytes of the batches loaded into Redshift (CloudWatch DeliveryToRedshift.Bytes).",
                Counter,
                |s| s.redshift_bytes as f64,
            ),
            family(
                "riffle_firehose_throttled_records_total",
                "Records refused with a throttling error (CloudWatch ThrottledRecords).",
                Counter,
                |s| s.throttled_records as f64,
            ),
            family(
                "riffle_firehose_partition_count",
                "Partitions open or waiting to be delivered (CloudWatch PartitionCount).",
                G,
                |s| s.partition_count as f64,
            ),
            family(
                "riffle_firehose_partition_count_exceeded",
                "1 while records meet the active partition limit, else 0 (CloudWatch PartitionCountExceeded).",
                G,
                |s| s.partition_count_exceeded as f64,
            ),
            family(
                "riffle_firehose_jq_processing_seconds_total",
                "Time spent running MetadataExtraction queries (CloudWatch JQProcessing.Duration, summed).",
                Counter,
                |s| s.jq_seconds,
            ),
            family(
                "riffle_firehose_jq_processed_records_total",
                "Records MetadataExtraction queries ran on.",
                Counter,
                |s| s.jq_records as f64,
            ),
        ]
    }

    /// `GET /_riffle/console/api/firehose/<name>`: see
    /// [`crate::console_firehose`].
    fn console_get<'a>(
        &'a self,
        rest: &'a str,
        region: &'a str,
    ) -> Option<BoxFuture<'a, Response>> {
        Some(Box::pin(async move {
            crate::console_firehose::stream(&self.0, rest, region)
        }))
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(self.serve(req, shared))
    }
}

impl Firehose {
    async fn serve(&self, req: Request, shared: &Shared) -> Response {
        let accepted = match crate::json11::accept(
            req,
            shared,
            |op| self.knows(op),
            crate::json11::EmptyBody::Refused,
        ) {
            Ok(a) => a,
            Err(response) => return *response,
        };
        let ctx = Ctx {
            region: accepted.region,
        };
        let span = tracing::debug_span!("firehose", operation = %accepted.operation);
        let _enter = span.enter();
        match self.0.call(&ctx, &accepted.operation, accepted.doc).await {
            Ok(v) => ok(Encoding::Json.content_type(), Encoding::Json.encode(&v)),
            Err(e) => firehose_error(&e),
        }
    }
}
