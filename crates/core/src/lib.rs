//! The eventual-consistency core for s3db.js. Knows nothing of Node: the
//! binding layer hands it a store, a record host and (optionally) a reducer.

pub mod clock;
pub mod codec;
pub mod cohort;
pub mod config;
pub mod error;
pub mod keys;
pub mod lock;
pub mod store;
pub mod txn;

pub use error::{Error, ErrorKind, Result};
