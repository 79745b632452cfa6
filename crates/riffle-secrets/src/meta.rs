//! Secrets Manager's rows in the shared metadata store (`riffle-meta`),
//! namespace `secretsmanager`, table `secrets`: one [`SecretRow`] per
//! secret with all its versions, keyed `region \0 name`. Rows are serde
//! structs stored as versioned JSON documents (`"v": 1`). Every call blocks
//! on storage: callers run them in `spawn_blocking`.

use riffle_meta::{MetaError, Namespace, Row, Store, Table, Tx};

use crate::{SecretKey, SecretRow};

/// The namespace Secrets Manager claims in the shared store.
pub const NAMESPACE: &str = "secretsmanager";

impl Row for SecretRow {
    const VERSION: u32 = 1;
}

/// Secrets Manager's table in the shared store.
#[derive(Clone)]
pub struct Meta {
    ns: Namespace,
    secrets: Table<SecretRow>,
}

fn key(k: &SecretKey) -> String {
    format!("{}\0{}", k.0, k.1)
}

impl Meta {
    pub fn new(ns: Namespace) -> Result<Meta, MetaError> {
        Ok(Meta {
            secrets: ns.table("secrets")?,
            ns,
        })
    }

    /// A table that keeps nothing: the in-memory server.
    pub fn none() -> Meta {
        let ns = Store::none()
            .namespace(NAMESPACE)
            .expect("a fresh store has every namespace free");
        Meta::new(ns).expect("an empty store opens")
    }

    pub fn load(&self) -> Result<Vec<SecretRow>, MetaError> {
        Ok(self
            .ns
            .load(&self.secrets)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Writes (or, with `None`, deletes) one secret's row.
    pub fn apply(&self, k: &SecretKey, row: Option<&SecretRow>) -> Result<(), MetaError> {
        let mut tx = Tx::new();
        match row {
            Some(r) => {
                tx.put(&self.secrets, key(k), r)?;
            }
            None => {
                tx.delete(&self.secrets, key(k));
            }
        }
        self.ns.apply(tx)
    }
}
