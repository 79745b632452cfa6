//! The streaming SQL engine that runs applications' code.
//!
//! - [`value`]: SQL types and values, CAST.
//! - [`hotspots`]: the dense regions of a sliding window, for `HOTSPOTS`.
//! - [`rcf`]: Random Cut Forest, for `RANDOM_CUT_FOREST` and
//!   `RANDOM_CUT_FOREST_WITH_EXPLANATION`.

pub mod hotspots;
pub mod rcf;
pub mod value;
