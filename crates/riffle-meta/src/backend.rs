//! The raw layer under [`crate::Store`]: named tables of string keys and byte
//! values, and atomic batches.

use crate::MetaError;

/// One write of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put {
        table: String,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        table: String,
        key: String,
    },
}

impl Write {
    pub fn table(&self) -> &str {
        match self {
            Write::Put { table, .. } | Write::Delete { table, .. } => table,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Write::Put { key, .. } | Write::Delete { key, .. } => key,
        }
    }
}

/// Writes committed together: all of them or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// In order; a later write of the same row wins.
    pub writes: Vec<Write>,
    /// Tables removed with every row in them (after the writes).
    pub drop_tables: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.drop_tables.is_empty()
    }
}

/// Where rows are kept. Implementations are called from blocking contexts
/// (never from an async task directly) and may block on I/O.
pub trait Backend: Send + Sync {
    /// Every row of `table` in key order; an absent table has no rows.
    fn scan(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, MetaError>;
    /// One row.
    fn get(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, MetaError>;
    /// The names of the tables that exist.
    fn tables(&self) -> Result<Vec<String>, MetaError>;
    /// Applies `batch` atomically and durably, or not at all.
    fn commit(&self, batch: &Batch) -> Result<(), MetaError>;
}
