//! The streaming SQL engine that runs applications' code.
//!
//! - [`value`]: SQL types and values, CAST.
//! - [`mapping`]: source records to input rows (InputSchema), rows to
//!   destination records (DestinationSchema).

pub mod mapping;
pub mod value;
