//! The per-record checkpoint: the fenced state of a record's consolidation.
//!
//! Before the record is written, the consolidation writes an *intent*: the
//! value it will write and the pending entries that value includes. Whoever
//! takes the record's lock next and finds an intent rolls it forward
//! (writes that value, marks those transactions applied, deletes their
//! entries) before looking at anything new. Every write is a compare-and-swap
//! on the previous version, so a holder that lost its lock cannot land one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Condition, ObjectStore, PutRequest, StoreErrorKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The value the record holds (clean) or is about to hold (intent).
    pub value: f64,
    /// Encoded pending entries this value includes; empty when clean.
    #[serde(default)]
    pub intent: Vec<String>,
    /// Lock token of the writer.
    pub token: String,
    pub seq: u64,
    pub at: Millis,
}

impl Checkpoint {
    pub fn is_intent(&self) -> bool {
        !self.intent.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub checkpoint: Checkpoint,
    pub etag: String,
}

pub async fn load(store: &dyn ObjectStore, key: &str) -> Result<Option<Stored>> {
    let Some(obj) = store.get(key).await.map_err(|e| Error::from(e).context("reading the checkpoint"))? else {
        return Ok(None);
    };
    let checkpoint = serde_json::from_slice(&obj.body)
        .map_err(|e| Error::storage(format!("checkpoint {key} is unreadable ({e}); delete it to start over from the record's value")))?;
    Ok(Some(Stored { checkpoint, etag: obj.etag }))
}

/// Writes `next` over `prev` (or creates it). Fails with `Fenced` when the
/// checkpoint changed since it was read: another holder took over.
pub async fn save(store: &dyn ObjectStore, key: &str, prev: Option<&Stored>, next: Checkpoint) -> Result<Stored> {
    let condition = match prev {
        Some(p) => Condition::Matches(p.etag.clone()),
        None => Condition::Absent,
    };
    let body = Bytes::from(serde_json::to_vec(&next).expect("checkpoint serializes"));
    let req = PutRequest { body: body.clone(), content_type: Some("application/json".into()), condition, ..Default::default() };
    match store.put(key, req).await {
        Ok(etag) => Ok(Stored { checkpoint: next, etag }),
        Err(e) if e.is_precondition() || e.kind == StoreErrorKind::NotFound => {
            // A retried write whose first attempt landed reads back as ours.
            match store.get(key).await {
                Ok(Some(obj)) if obj.body == body => Ok(Stored { checkpoint: next, etag: obj.etag }),
                _ => Err(Error::new(ErrorKind::Fenced, format!("checkpoint {key} was changed by another process"))),
            }
        }
        Err(e) => Err(Error::from(e).context("writing the checkpoint")),
    }
}
