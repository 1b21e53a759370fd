//! The eventual-consistency core for s3db.js. Knows nothing of Node: the
//! binding layer hands it a store, a record host and (optionally) a reducer.

pub mod analytics;
pub mod batch;
pub mod checkpoint;
pub mod clock;
pub mod codec;
pub mod cohort;
pub mod config;
pub mod consolidate;
pub mod engine;
pub mod error;
pub mod gc;
pub mod host;
pub mod keys;
pub mod lease;
pub mod lock;
pub mod reducer;
pub mod scheduler;
mod singleflight;
pub mod stats;
pub mod store;
pub mod txlog;
pub mod txn;

pub use error::{Error, ErrorKind, Result};
