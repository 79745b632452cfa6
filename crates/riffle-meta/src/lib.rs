//! Riffle's metadata store: every service's durable control-plane state
//! (Data Streams' streams and settings today; Firehose delivery streams,
//! Analytics applications and Video streams next) in one transactional
//! store, usually one redb file, `<data-dir>/meta.redb`.
//!
//! - [`Store`] is a cheap, cloneable handle on one store. It is opened on a
//!   redb file ([`Store::open`]), on any [`redb::StorageBackend`]
//!   ([`Store::open_on`], for fault injection), in memory
//!   ([`Store::memory`]) or on nothing at all ([`Store::none`], for
//!   `--storage memory`).
//! - [`Namespace`]: each service claims one ([`Store::namespace`]) and sees
//!   only its own tables, named `<namespace>/<table>` (`kinesis/streams`).
//! - [`Table<V>`]: a table of rows of type `V`, keyed by strings. A row type
//!   implements [`Row`]: serde plus a format version, stored as a JSON
//!   document whose first member is `"v"` (see `design.md`).
//! - [`Tx`]: puts and deletes, possibly across tables of one namespace,
//!   committed atomically by [`Namespace::apply`]. Rows whose bytes did not
//!   change since they were last read or written are skipped, so callers
//!   may write a whole object after every change.
//! - [`Backend`]: the object-safe raw layer (tables of byte rows, atomic
//!   batches) that [`RedbBackend`] and [`MemoryBackend`] implement, and
//!   tests implement to hold or fail commits.
//! - [`MetaError`]: every failure, typed.
//!
//! A service adds a table in two lines:
//!
//! ```
//! use riffle_meta::{Row, Store, Tx};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct DeliveryStream { name: String, destination: String }
//! impl Row for DeliveryStream { const VERSION: u32 = 1; }
//!
//! let store = Store::memory();
//! let firehose = store.namespace("firehose").unwrap();
//! let streams = firehose.table::<DeliveryStream>("delivery-streams").unwrap();
//! let row = DeliveryStream { name: "logs".into(), destination: "s3".into() };
//! let mut tx = Tx::new();
//! tx.put(&streams, "us-east-1\0logs", &row).unwrap();
//! firehose.apply(tx).unwrap();
//! assert_eq!(firehose.load(&streams).unwrap(), vec![("us-east-1\0logs".to_owned(), row)]);
//! ```

mod backend;
pub mod cells;
mod error;
mod memory;
mod redb_backend;
mod row;
mod store;

pub use backend::{Backend, Batch, Write};
pub use error::MetaError;
pub use memory::{MemoryBackend, NoBackend};
pub use redb_backend::RedbBackend;
pub use row::{decode, encode, Row};
pub use store::{Namespace, Store, Table, Tx};

/// The name of the metadata file in a data directory.
pub const FILE_NAME: &str = "meta.redb";
