//! The analytics journal: each consolidation batch leaves one object with its
//! per-cohort deltas. Its key and content follow from the batch alone, so the
//! roll-forward of a crashed batch rewrites the very same object.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::AnalyticsConfig;
use crate::engine::Field;
use crate::error::{Error, Result};
use crate::store::PutRequest;
use crate::txn::Transaction;

use super::rows::{cohort_of, row_id};
use super::stats::Stats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub record: String,
    pub seq: u64,
    /// Row id -> this record's transactions in that cohort.
    pub rows: BTreeMap<String, Stats>,
}

pub fn batch_delta(cfg: &AnalyticsConfig, record: &str, seq: u64, txns: &[Transaction]) -> JournalEntry {
    let mut rows: BTreeMap<String, Stats> = BTreeMap::new();
    for t in txns {
        for &period in &cfg.periods {
            rows.entry(row_id(period, &cohort_of(period, &t.cohort.hour))).or_default().add(t);
        }
    }
    JournalEntry { record: record.to_string(), seq, rows }
}

impl Field {
    /// Records a batch for the analytics roller (no-op without analytics).
    pub(crate) async fn journal_batch(&self, record: &str, seq: u64, txns: &[Transaction]) -> Result<()> {
        let Some(cfg) = &self.ctx.options.analytics else { return Ok(()) };
        if self.analytics.is_none() || txns.is_empty() {
            return Ok(());
        }
        let entry = batch_delta(cfg, record, seq, txns);
        let body = Bytes::from(serde_json::to_vec(&entry).expect("journal serializes"));
        self.ctx
            .store
            .put(&self.keys.analytics_journal(record, seq), PutRequest { body, content_type: Some("application/json".into()), ..Default::default() })
            .await
            .map(|_| ())
            .map_err(|e| Error::from(e).context("writing the analytics journal"))
    }
}
