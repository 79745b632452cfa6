//! Amazon Kinesis Data Analytics (SQL applications) on the platform: JSON
//! 1.1 under `X-Amz-Target: KinesisAnalytics_20150814.<Operation>`, the
//! shared JSON 1.1 front ([`crate::json11`]), then the service.

use std::sync::Arc;

use riffle_analytics::{AnalyticsError, Ctx, Service};

use crate::platform::{AwsService, BoxFuture, Gauge, Request, Response, Route, Shared};

pub const TARGET_PREFIX: &str = "KinesisAnalytics_20150814";

/// The largest body read: application code is at most 100 KB; schemas
/// and configurations add little.
pub const MAX_BODY: usize = 1024 * 1024;

/// Kinesis Analytics, served over JSON 1.1.
pub struct Analytics(pub Arc<Service>);

crate::json11::service_error!(AnalyticsError);

fn analytics_error(e: &AnalyticsError) -> Response {
    crate::json11::error_response(e)
}

impl AwsService for Analytics {
    fn name(&self) -> &'static str {
        "kinesisanalytics"
    }

    fn route(&self) -> Route {
        Route::Target(TARGET_PREFIX)
    }

    fn knows(&self, op: &str) -> bool {
        riffle_analytics::model::OPERATIONS
            .iter()
            .any(|(n, _)| *n == op)
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn overloaded(&self, _parts: &http::request::Parts, _op: &str) -> Response {
        analytics_error(&AnalyticsError::ServiceUnavailable("Slow down.".into()))
    }

    fn gauges(&self) -> Vec<Gauge> {
        vec![Gauge {
            name: "riffle_analytics_applications",
            help: "Kinesis Analytics applications.",
            value: self.0.count() as u64,
        }]
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(crate::json11::exchange(
            req,
            shared,
            move |op| self.knows(op),
            crate::json11::EmptyBody::Refused,
            move |region, op, doc| async move { self.0.call(&Ctx { region }, &op, doc).await },
        ))
    }
}
