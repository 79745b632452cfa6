//! Riffle's embedded S3: buckets, objects and multipart uploads on the
//! local data directory, served on Riffle's port by `riffle-server`'s
//! `s3` module and called in process by other services (Firehose delivers
//! through [`S3::put_object`]).
//!
//! - [`store`]: [`S3`] itself: the file layout under `<data-dir>/s3/`, the
//!   rows in the metadata store's `s3` namespace (`s3/buckets`,
//!   `s3/objects`, `s3/uploads`), the in-memory index listings read, and
//!   [`Staging`]: a body written to a temp file while it is hashed, then
//!   synced and renamed into place before its row is committed.
//! - [`bucket`], [`object`], [`multipart`], [`list`]: the operations, one
//!   file per resource.
//! - [`names`]: bucket-name and key rules and S3's limits.
//! - [`error::S3Error`]: every S3 error with its code, status, message and
//!   extra elements, mapped in one place.
//! - [`xml`]: request documents parsed into a small tree; the response
//!   writer. [`time`]: ISO 8601 and HTTP dates.
//!
//! Invariants: an acknowledged write is durable (data `fdatasync`ed, its
//! directory `fsync`ed, its row committed); a data file exists only while
//! a row names it, orphans are removed at open; metadata changes are
//! serialised by one commit mutex and installed only after they commit;
//! no lock is held across I/O except that mutex.

pub mod bucket;
pub mod error;
pub mod list;
pub mod multipart;
pub mod names;
pub mod object;
pub mod store;
pub mod time;
pub mod xml;

pub use error::S3Error;
pub use list::{ListQuery, Listing};
pub use multipart::Part;
pub use object::{etag_matches, MetadataDirective};
pub use store::{
    BucketRow, Hashes, ObjectRow, PutOptions, Staged, Staging, UploadRow, NAMESPACE, S3,
};
