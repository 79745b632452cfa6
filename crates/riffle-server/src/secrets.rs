//! AWS Secrets Manager on the platform: JSON 1.1 under
//! `X-Amz-Target: secretsmanager.<Operation>` (signing name
//! `secretsmanager`), the shared JSON 1.1 front ([`crate::json11`]; an
//! empty body is an operation without arguments), then the service.

use std::sync::Arc;

use riffle_secrets::{Ctx, SecretsError, Service};
use riffle_wire::Encoding;

use crate::error;
use crate::platform::{AwsService, BoxFuture, Gauge, Request, Response, Route, Shared};

pub const TARGET_PREFIX: &str = "secretsmanager";

/// A secret value is at most 64 KiB; its base64 and the rest of the body
/// stay well inside 1 MiB.
pub const MAX_BODY: usize = 1024 * 1024;

/// Secrets Manager, served over JSON 1.1.
pub struct Secrets(pub Arc<Service>);

crate::json11::service_error!(SecretsError);

impl AwsService for Secrets {
    fn name(&self) -> &'static str {
        "secretsmanager"
    }

    fn route(&self) -> Route {
        Route::Target(TARGET_PREFIX)
    }

    fn knows(&self, op: &str) -> bool {
        riffle_secrets::model::OPERATIONS
            .iter()
            .any(|(n, _)| *n == op)
    }

    fn max_body(&self) -> usize {
        MAX_BODY
    }

    fn overloaded(&self, _parts: &http::request::Parts, _op: &str) -> Response {
        error(
            Encoding::Json,
            400,
            "ThrottlingException",
            Some("Rate exceeded"),
        )
    }

    fn gauges(&self) -> Vec<Gauge> {
        vec![Gauge {
            name: "riffle_secretsmanager_secrets",
            help: "Secrets Manager secrets, those scheduled for deletion included.",
            value: self.0.secret_count() as u64,
        }]
    }

    fn handle<'a>(&'a self, req: Request, shared: &'a Shared) -> BoxFuture<'a, Response> {
        Box::pin(crate::json11::exchange(
            req,
            shared,
            move |op| self.knows(op),
            crate::json11::EmptyBody::NoArguments,
            move |region, op, doc| async move { self.0.call(&Ctx { region }, &op, doc).await },
        ))
    }
}

/// The secrets Firehose reads a destination's credentials from, in process.
pub struct FirehoseSecrets(pub Arc<Service>);

impl riffle_firehose::secrets::Secrets for FirehoseSecrets {
    fn current(&self, arn: &str) -> Result<String, String> {
        self.0.current_string(arn).map_err(|e| match e {
            riffle_secrets::ReadError::NotFound(m) | riffle_secrets::ReadError::NoString(m) => m,
        })
    }
}
