//! Every way the metadata store fails.

/// A metadata store failure.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The storage engine failed (I/O, corruption, a full disk).
    #[error("metadata storage: {0}")]
    Storage(#[from] redb::Error),
    /// A backend failed with an I/O error of its own.
    #[error("metadata I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A row could not be serialised.
    #[error("encoding row {key:?} of table {table}: {source}")]
    Encode {
        table: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A row type did not serialise to a JSON object.
    #[error("rows of table {table} must serialise to JSON objects")]
    NotAnObject { table: String },
    /// A stored row is not a document this version understands.
    #[error("decoding row {key:?} of table {table}: {source}")]
    Decode {
        table: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A stored row has a format version this build cannot read.
    #[error("row {key:?} of table {table} has format version {found}; this build reads up to {supported}")]
    Version {
        table: String,
        key: String,
        found: u64,
        supported: u32,
    },
    /// Another part of the process already claimed this namespace.
    #[error("metadata namespace {0:?} is already in use")]
    NamespaceTaken(String),
    /// Namespace and table names are lowercase letters, digits and `-`.
    #[error("invalid metadata name {0:?}: use lowercase letters, digits and '-'")]
    BadName(String),
    /// A transaction touched a table of another namespace.
    #[error("namespace {namespace:?} cannot write table {table:?}")]
    ForeignTable { namespace: String, table: String },
    /// A creation was let through for a key that is already registered or
    /// being created (the caller's check should have refused it).
    #[error("resource {0:?} already exists or is being created")]
    KeyInUse(String),
}

pub(crate) fn storage(e: impl Into<redb::Error>) -> MetaError {
    MetaError::Storage(e.into())
}
