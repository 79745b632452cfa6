//! The streaming SQL engine that runs applications' code.
//!
//! - [`value`]: SQL types and values, CAST.

pub mod value;
