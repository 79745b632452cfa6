//! The Data Catalog's rows in the shared metadata store (`riffle-meta`),
//! namespace `glue`:
//!
//! - `glue/databases`: one [`DatabaseRow`] per database, keyed
//!   `region \0 catalog \0 database`.
//! - `glue/tables`: one [`TableRow`] per table with all its versions,
//!   keyed `region \0 catalog \0 database \0 table`.
//!
//! Rows are serde structs stored as versioned JSON documents (`"v": 1`).
//! Every call blocks on storage: callers run them in `spawn_blocking`.

use riffle_meta::{MetaError, Namespace, Row, Store, Table, Tx};

use crate::{DatabaseKey, DatabaseRow, TableKey, TableRow};

/// The namespace Glue claims in the shared store.
pub const NAMESPACE: &str = "glue";

impl Row for DatabaseRow {
    const VERSION: u32 = 1;
}

impl Row for TableRow {
    const VERSION: u32 = 1;
}

/// Glue's tables in the shared store.
#[derive(Clone)]
pub struct Meta {
    ns: Namespace,
    databases: Table<DatabaseRow>,
    tables: Table<TableRow>,
}

pub(crate) fn database_key(k: &DatabaseKey) -> String {
    format!("{}\0{}\0{}", k.0, k.1, k.2)
}

pub(crate) fn table_key(k: &TableKey) -> String {
    format!("{}\0{}\0{}\0{}", k.0, k.1, k.2, k.3)
}

/// One change: rows to write and rows to delete, committed together.
#[derive(Default)]
pub struct Change {
    pub databases: Vec<(DatabaseKey, Option<DatabaseRow>)>,
    pub tables: Vec<(TableKey, Option<TableRow>)>,
}

impl Meta {
    pub fn new(ns: Namespace) -> Result<Meta, MetaError> {
        Ok(Meta {
            databases: ns.table("databases")?,
            tables: ns.table("tables")?,
            ns,
        })
    }

    /// Tables that keep nothing: the in-memory server.
    pub fn none() -> Meta {
        let ns = Store::none()
            .namespace(NAMESPACE)
            .expect("a fresh store has every namespace free");
        Meta::new(ns).expect("an empty store opens")
    }

    pub fn load_databases(&self) -> Result<Vec<DatabaseRow>, MetaError> {
        Ok(self
            .ns
            .load(&self.databases)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    pub fn load_tables(&self) -> Result<Vec<TableRow>, MetaError> {
        Ok(self
            .ns
            .load(&self.tables)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Commits one change atomically.
    pub fn apply(&self, change: &Change) -> Result<(), MetaError> {
        let mut tx = Tx::new();
        for (k, row) in &change.databases {
            match row {
                Some(r) => {
                    tx.put(&self.databases, database_key(k), r)?;
                }
                None => {
                    tx.delete(&self.databases, database_key(k));
                }
            }
        }
        for (k, row) in &change.tables {
            match row {
                Some(r) => {
                    tx.put(&self.tables, table_key(k), r)?;
                }
                None => {
                    tx.delete(&self.tables, table_key(k));
                }
            }
        }
        self.ns.apply(tx)
    }
}
