//! Durable metadata of Firehose in the shared metadata store
//! (`riffle-meta`), namespace `firehose`:
//!
//! - `firehose/delivery-streams`: one [`DeliveryStream`] per delivery
//!   stream, keyed `region \0 name`: status, version, source, encryption,
//!   destinations (their description documents), tags, the buffer log's id
//!   and the delivery checkpoint.
//!
//! Rows are serde structs stored as versioned JSON documents (`"v": 1`);
//! `crates/riffle-meta/design.md` lists their fields. Every call blocks on
//! storage: callers run them in `spawn_blocking`.

use riffle_meta::{MetaError, Namespace, Row, Store, Table, Tx};

use crate::state::DeliveryStream;
use crate::StreamKey;

/// The namespace Firehose claims in the shared store.
pub const NAMESPACE: &str = "firehose";

impl Row for DeliveryStream {
    const VERSION: u32 = 1;
}

/// Firehose's tables in the shared store.
#[derive(Clone)]
pub struct Meta {
    ns: Namespace,
    streams: Table<DeliveryStream>,
}

fn row_key(key: &StreamKey) -> String {
    format!("{}\0{}", key.0, key.1)
}

impl Meta {
    pub fn new(ns: Namespace) -> Result<Meta, MetaError> {
        Ok(Meta {
            streams: ns.table("delivery-streams")?,
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

    /// Every stored delivery stream.
    pub fn load(&self) -> Result<Vec<DeliveryStream>, MetaError> {
        Ok(self
            .ns
            .load(&self.streams)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Writes (or, with `None`, deletes) one delivery stream's row.
    pub fn write(&self, key: &StreamKey, row: Option<&DeliveryStream>) -> Result<(), MetaError> {
        let mut tx = Tx::new();
        match row {
            Some(row) => {
                tx.put(&self.streams, row_key(key), row)?;
            }
            None => {
                tx.delete(&self.streams, row_key(key));
            }
        }
        self.ns.apply(tx)
    }
}
