//! The eventual-consistency core for s3db.js. Knows nothing of Node: the
//! binding layer hands it a store, a record host and (optionally) a reducer.

pub mod clock;
pub mod cohort;
pub mod error;
pub mod store;

pub use error::{Error, ErrorKind, Result};
