//! The streaming SQL engine that runs applications' code.
//!
//! - [`value`]: SQL types and values, CAST.
//! - [`expr`]: expressions compiled against a row's columns.
//! - [`functions`]: the scalar function catalogue, by name and arity.
//! - [`logparse`]: the log parsing functions, returning rows.
//! - [`datefmt`]: Java SimpleDateFormat patterns, formatting and parsing.
//! - [`agg`]: aggregate functions.
//! - [`query`]: a pump's SELECT as a chain of operators (projection,
//!   tumbling, sliding and stagger windows, reference table joins).
//! - [`pipeline`]: the application's streams and pumps, run step by step
//!   on time given by the caller.

pub mod agg;
pub mod datefmt;
pub mod expr;
pub mod functions;
pub mod logparse;
pub mod pipeline;
pub mod query;
pub mod value;
