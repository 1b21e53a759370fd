//! Garbage collection: applied transactions older than `transactionRetention`
//! days go, with their partition references, in batched DeleteObjects, under
//! the field's GC lock. A pending transaction (`applied: false`) is never
//! deleted. Days are walked from a watermark, so a run reads only the days it
//! may delete from, never the whole transaction resource.

use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::codec::transaction as txcodec;
use crate::engine::Field;
use crate::error::{Error, Result};
use crate::lease;
use crate::lock::{self, Acquired};
use crate::store::{list_all, PutRequest};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcStats {
    pub deleted: usize,
    /// Old transactions kept because they are not applied.
    pub kept_pending: usize,
    pub days: usize,
    /// Analytics rows older than `analyticsConfig.retentionDays`.
    pub analytics_rows_deleted: usize,
    /// Another process held the GC lock.
    pub skipped: bool,
    pub duration_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcState {
    /// No day before this one holds a transaction GC may still have to delete.
    from_day: Option<String>,
}

impl Field {
    pub async fn collect_garbage(&self) -> Result<GcStats> {
        let started = Instant::now();
        let ctx = &self.ctx;
        let terms = lease::terms(&ctx.options);
        let lease = match lock::try_acquire(&*ctx.store, &*ctx.clock, &self.keys.gc_lock(), &ctx.holder, terms).await? {
            Acquired::Yes(l) => l,
            Acquired::HeldBy { .. } => return Ok(GcStats { skipped: true, ..Default::default() }),
        };
        let guard = lease::LeaseGuard::start(ctx.store.clone(), ctx.clock.clone(), lease, terms, ctx.options.lock_heartbeat);
        let result = self.collect_locked(&guard).await;
        guard.release().await;
        result.map(|mut s| {
            s.duration_ms = started.elapsed().as_millis() as u64;
            s
        })
    }

    async fn collect_locked(&self, guard: &lease::LeaseGuard) -> Result<GcStats> {
        let ctx = &self.ctx;
        let cutoff = ctx.clock.now_ms() - (ctx.options.transaction_retention * DAY_MS as f64) as i64;
        let cutoff_day = ctx.options.timezone.cohort(cutoff).date;
        let state_key = self.keys.gc_state();
        let state: GcState = match ctx.store.get(&state_key).await.map_err(Error::from)? {
            Some(obj) => serde_json::from_slice(&obj.body).unwrap_or_default(),
            None => GcState::default(),
        };
        let mut stats = GcStats { analytics_rows_deleted: self.collect_analytics_rows().await?, ..Default::default() };
        let Some(mut day) = state.from_day.or(self.earliest_day().await?) else {
            return Ok(stats);
        };
        let mut next_from: Option<String> = None;
        while day <= cutoff_day {
            guard.check()?;
            let kept = self.collect_day(&day, cutoff, &mut stats).await?;
            stats.days += 1;
            if (kept > 0 || day == cutoff_day) && next_from.is_none() {
                next_from = Some(day.clone());
            }
            day = next_day(&day)?;
        }
        let state = GcState { from_day: next_from.or(Some(day)) };
        let body = Bytes::from(serde_json::to_vec(&state).expect("state serializes"));
        ctx.store
            .put(&state_key, PutRequest { body, content_type: Some("application/json".into()), ..Default::default() })
            .await
            .map_err(|e| Error::from(e).context("saving the GC watermark"))?;
        Ok(stats)
    }

    /// Deletes analytics rows (and their record shards) older than retention.
    async fn collect_analytics_rows(&self) -> Result<usize> {
        let (Some(cfg), Some(schema)) = (&self.ctx.options.analytics, &self.analytics) else { return Ok(0) };
        let Some(days) = cfg.retention_days else { return Ok(0) };
        let cutoff = self.ctx.options.timezone.cohort(self.ctx.clock.now_ms() - (days * DAY_MS as f64) as i64);
        let mut doomed = Vec::new();
        let mut rows = 0;
        for &period in &cfg.periods {
            let oldest_kept = crate::analytics::rows::cohort_of(period, &cutoff.hour);
            let prefix = format!("{}id={}-", schema.data_prefix(), period.name());
            for key in list_all(&*self.ctx.store, &prefix).await.map_err(Error::from)? {
                let cohort = key.strip_prefix(&prefix).unwrap_or("");
                if cohort < oldest_kept.as_str() {
                    let row = format!("{}-{cohort}", period.name());
                    doomed.extend(list_all(&*self.ctx.store, &self.keys.analytics_records_prefix(&row)).await.map_err(Error::from)?);
                    doomed.push(key);
                    rows += 1;
                }
            }
        }
        self.ctx.store.delete_many(&doomed).await.map_err(|e| Error::from(e).context("deleting old analytics rows"))?;
        Ok(rows)
    }

    /// The first `cohortDate` with a byDay reference, from one LIST of one key.
    async fn earliest_day(&self) -> Result<Option<String>> {
        let prefix = format!("resource={}/partition=byDay/cohortDate=", self.schema.name);
        let page = self.ctx.store.list(&prefix, None, 1).await.map_err(Error::from)?;
        Ok(page.keys.first().and_then(|k| k.strip_prefix(&prefix)).and_then(|rest| rest.split('/').next()).map(str::to_string))
    }

    /// Deletes the day's applied transactions older than `cutoff`; returns how many stay.
    async fn collect_day(&self, day: &str, cutoff: i64, stats: &mut GcStats) -> Result<usize> {
        let prefix = self.schema.partition_prefix("byDay", &[("cohortDate", day)]);
        let refs = list_all(&*self.ctx.store, &prefix).await.map_err(|e| Error::from(e).context("listing a day for GC"))?;
        let reads: Vec<_> = refs
            .iter()
            .map(|r| async move {
                let id = r.rsplit_once("/id=").map(|(_, id)| id.to_string()).unwrap_or_default();
                let obj = self.ctx.store.get(&self.schema.data_key(&id)).await.map_err(Error::from)?;
                Ok::<_, Error>((r.clone(), id, obj))
            })
            .collect();
        let found: Vec<_> = stream::iter(reads).buffer_unordered(16).try_collect().await?;
        let mut doomed = Vec::new();
        let mut kept = 0;
        for (reference, id, obj) in found {
            let Some(obj) = obj else {
                doomed.push(reference); // a reference with no object behind it
                continue;
            };
            match txcodec::decode(&self.schema, &id, &obj) {
                Ok(t) if t.applied && t.timestamp_ms < cutoff => {
                    doomed.push(self.schema.data_key(&id));
                    doomed.extend(txcodec::partition_keys(&self.schema, &t));
                    stats.deleted += 1;
                }
                Ok(t) if !t.applied && t.timestamp_ms < cutoff => {
                    stats.kept_pending += 1;
                    kept += 1;
                }
                _ => kept += 1,
            }
        }
        self.ctx.store.delete_many(&doomed).await.map_err(|e| Error::from(e).context("deleting old transactions"))?;
        Ok(kept)
    }
}

fn next_day(day: &str) -> Result<String> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| Error::storage(format!("unreadable cohortDate {day:?} in a byDay partition key")))
}
