//! The streaming SQL engine that runs applications' code.
//!
//! - [`value`]: SQL types and values, CAST.
//! - [`functions`]: the scalar function catalogue, by name and arity.
//! - [`logparse`]: the log parsing functions, returning rows.
//! - [`datefmt`]: Java SimpleDateFormat patterns, formatting and parsing.

pub mod datefmt;
pub mod functions;
pub mod logparse;
pub mod value;
