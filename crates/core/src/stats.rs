//! `getCohortStats(date)`: what one day's transactions did, read straight from
//! the transaction resource's byDay partition (s3db.js-written objects included).

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::codec::transaction as txcodec;
use crate::engine::Field;
use crate::error::{Error, Result};
use crate::store::list_all;
use crate::txn::Operation;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ByOperation {
    pub set: u64,
    pub add: u64,
    pub sub: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CohortStats {
    pub date: String,
    pub transaction_count: u64,
    pub by_operation: ByOperation,
    /// Sum of changes: `add` positive, `sub` negative, `set` its value.
    pub total_value: f64,
    pub applied: u64,
    pub pending: u64,
}

pub fn validate_date(date: &str) -> Result<()> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| Error::range(format!("date must be YYYY-MM-DD, got {date:?}")))
}

impl Field {
    pub async fn cohort_stats(&self, date: &str) -> Result<CohortStats> {
        validate_date(date)?;
        let prefix = self.schema.partition_prefix("byDay", &[("cohortDate", date)]);
        let keys = list_all(&*self.ctx.store, &prefix).await.map_err(|e| Error::from(e).context("listing the day's transactions"))?;
        let ids: Vec<String> = keys.iter().filter_map(|k| k.rsplit_once("/id=").map(|(_, id)| id.to_string())).collect();
        let reads: Vec<_> = ids
            .iter()
            .map(|id| async move {
                let obj = self.ctx.store.get(&self.schema.data_key(id)).await.map_err(Error::from)?;
                obj.map(|o| txcodec::decode(&self.schema, id, &o)).transpose()
            })
            .collect();
        let txns: Vec<_> = stream::iter(reads).buffer_unordered(16).try_collect().await?;
        let mut stats = CohortStats { date: date.to_string(), ..Default::default() };
        for t in txns.into_iter().flatten().filter(|t| t.cohort.date == date) {
            stats.transaction_count += 1;
            match t.operation {
                Operation::Set => stats.by_operation.set += 1,
                Operation::Add => stats.by_operation.add += 1,
                Operation::Sub => stats.by_operation.sub += 1,
            }
            stats.total_value += t.operation.signed(t.value);
            if t.applied {
                stats.applied += 1;
            } else {
                stats.pending += 1;
            }
        }
        Ok(stats)
    }
}
