//! The AWS Glue Data Catalog, as much of it as Firehose's record format
//! conversion and the tools that set it up (boto3, Terraform, CDK) use:
//! databases and tables with their versions.
//!
//! - [`Service`] holds every database and table of the account, keyed by
//!   region and catalog id (the account unless the caller names another),
//!   in memory behind one lock, and their rows in the shared metadata store
//!   ([`meta`], namespace `glue`). A change is persisted before it is
//!   installed.
//! - [`Service::call`] validates a body against the generated [`model`]
//!   (only the operations Riffle serves are generated) and runs the
//!   handler in [`ops`].
//! - [`Service::lookup`] is the in-process read other services use
//!   (Firehose's record format conversion reads a table's columns).
//! - Tags (GetTags, TagResource, UntagResource) are kept in the
//!   database's or table's row; GetPartitionIndexes answers that a table
//!   has none (Riffle has no partitions).
//! - [`error::GlueError`] maps every failure to AWS's `__type`.
//!
//! Names are kept in lower case, as Glue keeps them: `MyTable` and
//! `mytable` are the same table.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use riffle_wire::shape;
use riffle_wire::Value;
use serde_json::Value as Json;

pub mod error;
pub mod meta;
#[rustfmt::skip]
pub mod model;
pub mod ops;

pub use error::GlueError;
use error::Result;

/// Who is calling: the region comes from the request's credential scope.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub region: String,
}

/// (region, catalog id, database).
pub type DatabaseKey = (String, String, String);
/// (region, catalog id, database, table).
pub type TableKey = (String, String, String, String);

/// One database: its row in the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatabaseRow {
    pub region: String,
    pub catalog_id: String,
    pub name: String,
    /// The DatabaseInput document as given (Name lower-cased).
    pub input: Json,
    pub create_time_ms: i64,
    /// Tags (CreateDatabase's Tags, TagResource).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One version of a table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableVersion {
    pub id: u64,
    /// The TableInput document as given (Name lower-cased).
    pub input: Json,
    pub update_time_ms: i64,
}

/// One table with every version UpdateTable archived: its row in the
/// store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableRow {
    pub region: String,
    pub catalog_id: String,
    pub database: String,
    pub name: String,
    pub create_time_ms: i64,
    /// Oldest first; never empty.
    pub versions: Vec<TableVersion>,
    /// Tags (TagResource).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl TableRow {
    pub fn latest(&self) -> &TableVersion {
        self.versions.last().expect("a table has a version")
    }
}

/// A table as another service sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub catalog_id: String,
    pub database: String,
    pub name: String,
    pub version_id: String,
    /// The StorageDescriptor's columns: (name, Hive type).
    pub columns: Vec<(String, String)>,
}

#[derive(Default)]
pub(crate) struct Catalog {
    pub databases: BTreeMap<DatabaseKey, DatabaseRow>,
    pub tables: BTreeMap<TableKey, TableRow>,
}

/// The Glue service.
pub struct Service {
    account: String,
    clock: Arc<dyn riffle_core::Clock>,
    catalog: RwLock<Catalog>,
    /// Serialises changes: each persists its rows, then installs them.
    change: tokio::sync::Mutex<()>,
    meta: meta::Meta,
}

impl Service {
    /// A catalog whose rows live in `meta` (or nowhere: [`meta::Meta::none`]).
    pub fn open(
        account: String,
        clock: Arc<dyn riffle_core::Clock>,
        meta: meta::Meta,
    ) -> std::result::Result<Arc<Service>, riffle_meta::MetaError> {
        let mut catalog = Catalog::default();
        for db in meta.load_databases()? {
            catalog.databases.insert(
                (db.region.clone(), db.catalog_id.clone(), db.name.clone()),
                db,
            );
        }
        for t in meta.load_tables()? {
            catalog.tables.insert(
                (
                    t.region.clone(),
                    t.catalog_id.clone(),
                    t.database.clone(),
                    t.name.clone(),
                ),
                t,
            );
        }
        Ok(Arc::new(Service {
            account,
            clock,
            catalog: RwLock::new(catalog),
            change: tokio::sync::Mutex::new(()),
            meta,
        }))
    }

    /// A catalog that keeps nothing on disk.
    pub fn in_memory(account: String, clock: Arc<dyn riffle_core::Clock>) -> Arc<Service> {
        Service::open(account, clock, meta::Meta::none()).expect("an empty store opens")
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.change.lock().await
    }

    pub(crate) fn meta(&self) -> &meta::Meta {
        &self.meta
    }

    /// Databases, for metrics.
    pub fn database_count(&self) -> usize {
        self.read().databases.len()
    }

    /// Tables, for metrics.
    pub fn table_count(&self) -> usize {
        self.read().tables.len()
    }

    /// A table's columns for another service: `version` is a VersionId, or
    /// the latest version when `None` or `LATEST`.
    pub fn lookup(
        &self,
        region: &str,
        catalog_id: Option<&str>,
        database: &str,
        table: &str,
        version: Option<&str>,
    ) -> Result<TableInfo> {
        let catalog_id = catalog_id.unwrap_or(&self.account).to_owned();
        let (db, name) = (database.to_lowercase(), table.to_lowercase());
        let cat = self.read();
        if !cat
            .databases
            .contains_key(&(region.into(), catalog_id.clone(), db.clone()))
        {
            return Err(GlueError::database_not_found(&db));
        }
        let row = cat
            .tables
            .get(&(region.into(), catalog_id.clone(), db.clone(), name.clone()))
            .ok_or_else(|| GlueError::table_not_found(&name))?;
        let v = match version.filter(|v| *v != "LATEST") {
            None => row.latest(),
            Some(id) => ops::tables::find_version(row, id)?,
        };
        let columns = v
            .input
            .pointer("/StorageDescriptor/Columns")
            .and_then(Json::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| {
                        (
                            c.get("Name")
                                .and_then(Json::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            c.get("Type")
                                .and_then(Json::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(TableInfo {
            catalog_id,
            database: db,
            name,
            version_id: v.id.to_string(),
            columns,
        })
    }

    /// Runs one operation on a decoded request body.
    pub async fn call(&self, ctx: &Ctx, operation: &str, body: Value) -> Result<Value> {
        let input = shape::operation_input(model::OPERATIONS, operation, body)?;
        ops::dispatch(self, ctx, operation, input).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_patterns_compile() {
        for p in crate::model::PATTERNS {
            assert!(p.compiled().is_some(), "{}", p.src);
        }
        assert!(crate::model::P_NAME_STRING.is_match("events_db"));
        assert!(crate::model::P_NAME_STRING.is_match("été 😀"));
        assert!(!crate::model::P_NAME_STRING.is_match("a\u{1}b"));
    }
}
