//! Analytics applications use Firehose in process: outputs through a
//! [`DeliverySink`] over the Firehose service's PutRecordBatch, inputs
//! through a [`riffle_analytics::DeliveryTap`] over its buffer readers,
//! and Lambda functions through Firehose's Lambda Invoke client
//! ([`LambdaClient`], at `--lambda-endpoint`).

use std::sync::Arc;

use bytes::Bytes;
use riffle_analytics::DeliverySink;
use riffle_wire::{Map, Value};

/// The server's Firehose as the destination of Analytics outputs.
pub struct FirehoseSink(pub Arc<riffle_firehose::Service>);

impl DeliverySink for FirehoseSink {
    fn put<'a>(
        &'a self,
        region: &'a str,
        name: &'a str,
        records: Vec<Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Bytes>, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let mut body = Map::new();
            body.0
                .push(("DeliveryStreamName".into(), Value::Str(name.to_owned())));
            body.0.push((
                "Records".into(),
                Value::List(
                    records
                        .iter()
                        .map(|r| {
                            let mut m = Map::new();
                            m.0.push(("Data".into(), Value::Bytes(r.clone())));
                            Value::Map(m)
                        })
                        .collect(),
                ),
            ));
            let ctx = riffle_firehose::Ctx {
                region: region.to_owned(),
            };
            let out = self
                .0
                .call(&ctx, "PutRecordBatch", Value::Map(body))
                .await
                .map_err(|e| e.to_string())?;
            let mut failed = Vec::new();
            if let Value::Map(m) = out {
                if let Some((_, Value::List(responses))) =
                    m.0.iter().find(|(k, _)| k == "RequestResponses")
                {
                    for (r, data) in responses.iter().zip(&records) {
                        if let Value::Map(rm) = r {
                            if rm.0.iter().any(|(k, _)| k == "ErrorCode") {
                                failed.push(data.clone());
                            }
                        }
                    }
                }
            }
            Ok(failed)
        })
    }
}

/// Reads a delivery stream's buffer for an Analytics input.
struct BufferTap(riffle_firehose::tap::BufferReader);

impl riffle_analytics::TapReader for BufferTap {
    fn next(
        &mut self,
        max: usize,
        wait: std::time::Duration,
    ) -> riffle_analytics::BoxFuture<'_, Result<Vec<riffle_analytics::TapRecord>, String>> {
        Box::pin(async move {
            let records = self.0.next(max, wait).await.map_err(|e| e.to_string())?;
            Ok(records
                .into_iter()
                .map(|r| riffle_analytics::TapRecord {
                    arrival_ms: r.arrival_ms,
                    data: r.data,
                })
                .collect())
        })
    }

    fn position(&self) -> u64 {
        self.0.position()
    }
}

impl riffle_analytics::DeliveryTap for FirehoseSink {
    fn open(
        &self,
        region: &str,
        name: &str,
        from: Option<u64>,
    ) -> Result<Box<dyn riffle_analytics::TapReader>, String> {
        let reader = self
            .0
            .buffer_reader(region, name, from)
            .map_err(|e| e.to_string())?;
        Ok(Box::new(BufferTap(reader)))
    }
}

/// Invokes Lambda functions at the server's Lambda endpoint, with the
/// client Firehose's Lambda processor uses.
pub struct LambdaClient {
    pub client: riffle_firehose::client::Client,
    pub endpoint: riffle_firehose::client::Url,
}

impl riffle_analytics::LambdaInvoker for LambdaClient {
    fn invoke<'a>(
        &'a self,
        function_arn: &'a str,
        payload: Vec<u8>,
    ) -> riffle_analytics::BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            riffle_firehose::process::lambda::invoke_raw(
                &self.client,
                &self.endpoint,
                function_arn,
                Bytes::from(payload),
            )
            .await
            .map_err(|e| format!("{}: {}", e.code, e.message))
        })
    }
}
