//! Pre-computed analytics: hour → day → month roll-ups of every consolidated
//! transaction, exact (distinct records included) and O(1) to query.
//!
//! consolidation ──► journal entry (per batch, part of the exactly-once finish)
//!                      │
//!                      ▼ roller (one process per field, its own intent)
//!                 rows `{resource}_analytics_{field}` + per-cohort record shards
//!                      │
//!                      ▼
//!                 getAnalytics / getTopRecords: a LIST and a few GETs

pub mod journal;
pub mod query;
pub mod roller;
pub mod rows;
pub mod stats;
