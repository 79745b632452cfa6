//! Riffle's validated domain types, free of I/O and HTTP.
//!
//! - [`seqnum::SeqNum`]: AWS's version-2 sequence-number layout; its counter
//!   is a record's offset in its shard.
//! - [`iterator::IteratorCodec`]: signed, expiring shard iterators.
//! - [`hashkey`]: MD5 routing and hash-key ranges.
//! - [`names`]: ARNs and shard ids.
//! - [`limits`]: every enforced limit.
//! - [`clock::Clock`]: injected time.
//! - [`calendar`]: month names.

pub mod calendar;
pub mod clock;
pub mod hashkey;
pub mod iterator;
pub mod limits;
pub mod names;
pub mod seqnum;

pub use clock::Clock;
