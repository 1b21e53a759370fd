//! What the core needs from its host (s3db.js, via the binding layer):
//! the record's value, a way to write it, an optional user reducer, and a
//! place to send events.

use async_trait::async_trait;

use crate::error::Result;
use crate::txn::Transaction;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RecordValue {
    /// No record with that id.
    Missing,
    /// The record exists; a missing or non-numeric field reads as 0.
    Present(f64),
}

impl RecordValue {
    pub fn or_zero(self) -> f64 {
        match self {
            RecordValue::Missing => 0.0,
            RecordValue::Present(v) => v,
        }
    }
}

/// Reads and writes records through the host database, so its hooks,
/// behaviours and partitions keep working.
#[async_trait]
pub trait RecordHost: Send + Sync + 'static {
    async fn read(&self, resource: &str, field: &str, id: &str) -> Result<RecordValue>;
    /// Sets the field; inserts the record when it does not exist. `existed`
    /// is what the last read saw, when there was one.
    async fn write(&self, resource: &str, field: &str, id: &str, value: f64, existed: Option<bool>) -> Result<()>;
}

/// A reducer input: a pending transaction, or the synthetic `set` carrying
/// the record's current value.
#[derive(Debug, Clone, PartialEq)]
pub enum ReducerInput {
    Synthetic { original_id: String, field: String, value: f64 },
    Pending(Transaction),
}

#[async_trait]
pub trait Reducer: Send + Sync + 'static {
    async fn reduce(&self, resource: &str, field: &str, inputs: Vec<ReducerInput>) -> Result<f64>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A transaction older than the window was written (`warn`) or rejected (`ignore`).
    LateArrival { resource: String, field: String, id: String, cohort_hour: String, hours_late: f64, written: bool },
    /// One record consolidated.
    RecordConsolidated { resource: String, field: String, id: String, value: f64, applied: usize },
    /// The record did not show the consolidated value and was rewritten.
    RecordRepaired { resource: String, field: String, id: String, found: Option<f64>, value: f64 },
    /// A background (or requested) run over a field finished.
    RunCompleted { resource: String, field: String, records: usize, applied: usize, skipped: usize, errors: usize, duration_ms: u64 },
    /// A GC pass over a field finished.
    GcCompleted { resource: String, field: String, deleted: usize, kept_pending: usize, skipped: bool, duration_ms: u64 },
    /// Another process holds the record's lock.
    LockHeld { resource: String, field: String, id: String, holder: String },
    /// A background step failed; it is retried on the next run.
    Error { resource: String, field: String, id: Option<String>, stage: &'static str, message: String },
}

pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: Event);
}

/// Drops events (Rust tests that do not look at them).
#[derive(Debug, Default)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: Event) {}
}
