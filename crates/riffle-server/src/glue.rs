//! The AWS Glue Data Catalog on the platform: JSON 1.1 under
//! `X-Amz-Target: AWSGlue.<Operation>` (signing name `glue`), the shared
//! JSON 1.1 front ([`crate::json11`]; an empty body is an operation without
//! arguments), then the service.

use std::sync::Arc;

use riffle_glue::{Ctx, GlueError, Service};
use riffle_wire::Encoding;

use crate::error;
use crate::platform::{AwsService, BoxFuture, Gauge, Request, Response, Route, Shared};

pub const TARGET_PREFIX: &str = "AWSGlue";

/// Table definitions are small; CreateTable with thousands of columns
/// stays well inside 4 MiB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Glue, served over JSON 1.1.
pub struct Glue(pub Arc<Service>);

crate::json11::service_error!(GlueError);

impl AwsService for Glue {
    fn name(&self) -> &'static str {
        "glue"
    }

    fn route(&self) -> Route {
        Route::Target(TARGET_PREFIX)
    }

    fn knows(&self, op: &str) -> bool {
        riffle_glue::model::OPERATIONS.iter().any(|(n, _)| *n == op)
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
        vec![
            Gauge {
                name: "riffle_glue_databases",
                help: "Glue Data Catalog databases.",
                value: self.0.database_count() as u64,
            },
            Gauge {
                name: "riffle_glue_tables",
                help: "Glue Data Catalog tables.",
                value: self.0.table_count() as u64,
            },
        ]
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

/// The catalog Firehose's record format conversion reads, in process.
pub struct GlueCatalog(pub Arc<Service>);

impl riffle_firehose::convert::Catalog for GlueCatalog {
    fn table(
        &self,
        region: &str,
        t: &riffle_firehose::convert::TableRef,
    ) -> Result<riffle_firehose::convert::CatalogTable, riffle_firehose::convert::CatalogError>
    {
        use riffle_firehose::convert::{CatalogError, CatalogTable};
        self.0
            .lookup(
                region,
                t.catalog_id.as_deref(),
                &t.database,
                &t.table,
                t.version_id.as_deref(),
            )
            .map(|i| CatalogTable {
                catalog_id: i.catalog_id,
                database: i.database,
                name: i.name,
                version_id: i.version_id,
                columns: i.columns,
            })
            .map_err(|e| match e {
                GlueError::EntityNotFound(m) | GlueError::InvalidInput(m) => {
                    CatalogError::NotFound(m)
                }
                other => CatalogError::Other(other.to_string()),
            })
    }
}
