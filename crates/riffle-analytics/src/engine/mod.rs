//! The streaming SQL engine that runs applications' code.
//!
//! - [`value`]: SQL types and values, CAST.
//! - [`mapping`]: input records to rows (InputSchema: JSONPath, CSV) and
//!   rows to output records (JSON, CSV).
//! - [`expr`]: expressions compiled against a row's columns.
//! - [`functions`]: the scalar function catalogue, by name and arity.
//! - [`logparse`]: the log parsing functions, returning rows.
//! - [`datefmt`]: Java SimpleDateFormat patterns, formatting and parsing.
//! - [`agg`]: aggregate functions.
//! - [`rcf`]: Random Cut Forest (RANDOM_CUT_FOREST and its explanation).
//! - [`hotspots`]: HOTSPOTS, dense regions of the recent rows.
//! - [`analytic`]: the table functions read with `TABLE(...)` in FROM
//!   (RANDOM_CUT_FOREST, HOTSPOTS, TOP_K_ITEMS_TUMBLING, ...).
//! - [`query`]: a pump's SELECT as a chain of operators (projection,
//!   tumbling, sliding and stagger windows, reference table joins).
//! - [`pipeline`]: the application's streams and pumps, run step by step
//!   on time given by the caller.

pub mod agg;
pub mod analytic;
pub mod datefmt;
pub mod expr;
pub mod functions;
pub mod hotspots;
pub mod logparse;
pub mod mapping;
pub mod pipeline;
pub mod query;
pub mod rcf;
pub mod value;
