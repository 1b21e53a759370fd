//! The analytics roller folds journal entries into rows, one process at a
//! time per field (its lock), exactly once:
//!
//! 1. read the journal (1 LIST per 1000 entries, 1 GET each) and add it up per
//!    row and per (row, record);
//! 2. read the touched record shards; a record not yet in its shard is new to
//!    the cohort, which makes `recordCount` exact;
//! 3. write an intent {seq, journal keys, row deltas, shard deltas} (CAS);
//! 4. apply it: every shard and row carries the last `seq` folded into it and
//!    takes a delta only once; then delete the journal entries, clear the intent.
//!
//! A roller that dies after 3 leaves an intent the next one applies first.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::clock::iso_millis;
use crate::config::{Period, Rollup};
use crate::engine::Field;
use crate::error::{Error, ErrorKind, Result};
use crate::lease::{self, LeaseGuard};
use crate::lock::{self, Acquired};
use crate::store::{Condition, ObjectStore, PutRequest, StoreErrorKind};

use super::journal::JournalEntry;
use super::rows::{self, parse_row_id, row_id, Row};
use super::stats::{RecordShare, Stats};

/// Records of a cohort are spread over this many shard objects.
pub const SHARDS: u32 = 16;
const PARALLEL: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowDelta {
    pub stats: Stats,
    pub new_records: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Intent {
    seq: u64,
    journal: Vec<String>,
    rows: BTreeMap<String, RowDelta>,
    /// Shard key -> record -> share to add.
    shards: BTreeMap<String, BTreeMap<String, RecordShare>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollerState {
    seq: u64,
    intent: Option<Intent>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shard {
    pub fold_seq: u64,
    pub records: BTreeMap<String, RecordShare>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoldStats {
    pub entries: usize,
    pub rows: usize,
    pub skipped: bool,
}

fn shard_of(record: &str) -> u32 {
    // FNV-1a: stable across processes and versions.
    let mut h: u32 = 0x811c9dc5;
    for b in record.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h % SHARDS
}

pub fn shard_key(field: &Field, row_id: &str, shard: u32) -> String {
    format!("{}{shard:02}", field.keys.analytics_records_prefix(row_id))
}

fn json_put(value: &impl Serialize, condition: Condition) -> PutRequest {
    PutRequest {
        body: Bytes::from(serde_json::to_vec(value).expect("serializes")),
        content_type: Some("application/json".into()),
        condition,
        ..Default::default()
    }
}

/// A JSON object and its ETag (`None` when absent).
async fn read_json<T: for<'de> Deserialize<'de> + Default>(store: &dyn ObjectStore, key: &str) -> Result<(T, Option<String>)> {
    match store.get(key).await.map_err(Error::from)? {
        Some(obj) => Ok((serde_json::from_slice(&obj.body).map_err(|e| Error::storage(format!("{key} is unreadable: {e}")))?, Some(obj.etag))),
        None => Ok((T::default(), None)),
    }
}

/// Compare-and-swap write; `Fenced` when someone changed it since we read it.
async fn write_json(store: &dyn ObjectStore, key: &str, value: &impl Serialize, etag: Option<&str>) -> Result<String> {
    let condition = etag.map_or(Condition::Absent, |e| Condition::Matches(e.to_string()));
    store.put(key, json_put(value, condition)).await.map_err(|e| match e.kind {
        StoreErrorKind::Precondition | StoreErrorKind::NotFound => Error::new(ErrorKind::Fenced, format!("{key} changed under the analytics roller")),
        _ => Error::from(e).context(format!("writing {key}")),
    })
}

impl Field {
    /// Folds the journal into the rows. Skipped when another process is folding.
    pub async fn fold_analytics(&self) -> Result<FoldStats> {
        if self.analytics.is_none() || self.ctx.options.analytics.is_none() {
            return Ok(FoldStats::default());
        }
        let _in_process = self.fold_lock.lock().await;
        let ctx = &self.ctx;
        // Nothing journaled: nothing to fold (an intent's entries outlive it), so reads skip the lock.
        let probe = ctx.store.list(&self.keys.analytics_journal_prefix(), None, 1).await.map_err(Error::from)?;
        if probe.keys.is_empty() {
            return Ok(FoldStats::default());
        }
        let terms = lease::terms(&ctx.options);
        let lease = match lock::try_acquire(&*ctx.store, &*ctx.clock, &self.keys.analytics_lock(), &ctx.holder, terms).await? {
            Acquired::Yes(l) => l,
            Acquired::HeldBy { .. } => return Ok(FoldStats { skipped: true, ..Default::default() }),
        };
        let guard = LeaseGuard::start(ctx.store.clone(), ctx.clock.clone(), lease, terms, ctx.options.lock_heartbeat);
        let result = self.fold_locked(&guard).await;
        guard.release().await;
        result
    }

    async fn fold_locked(&self, guard: &LeaseGuard) -> Result<FoldStats> {
        let store = &*self.ctx.store;
        let state_key = self.keys.analytics_roller();
        let mut stats = FoldStats::default();
        loop {
            let (mut state, mut etag): (RollerState, _) = read_json(store, &state_key).await?;
            if let Some(intent) = state.intent.take() {
                guard.check()?;
                self.apply(&intent, &HashMap::new()).await?;
                state.seq = intent.seq;
                etag = Some(write_json(store, &state_key, &state, etag.as_deref()).await?);
            }
            let page = store.list(&self.keys.analytics_journal_prefix(), None, 1000).await.map_err(Error::from)?;
            if page.keys.is_empty() {
                return Ok(stats);
            }
            let reads: Vec<_> = page.keys.iter().map(|k| async move { read_json::<JournalEntryOrEmpty>(store, k).await }).collect();
            let entries: Vec<_> = stream::iter(reads).buffered(PARALLEL).try_collect().await?;
            let mut rows: BTreeMap<String, RowDelta> = BTreeMap::new();
            let mut shards: BTreeMap<String, BTreeMap<String, RecordShare>> = BTreeMap::new();
            let mut row_of_shard: HashMap<String, String> = HashMap::new();
            for (JournalEntryOrEmpty(entry), _) in &entries {
                let Some(entry) = entry else { continue };
                for (row, s) in &entry.rows {
                    rows.entry(row.clone()).or_default().stats.merge(s);
                    let shard = shard_key(self, row, shard_of(&entry.record));
                    row_of_shard.insert(shard.clone(), row.clone());
                    shards.entry(shard).or_default().entry(entry.record.clone()).or_default().merge(&RecordShare { count: s.count, sum: s.sum });
                }
            }
            // Which records are new to their cohort decides recordCount.
            let keys: Vec<String> = shards.keys().cloned().collect();
            let reads: Vec<_> = keys.iter().map(|k| async move { read_json::<Shard>(store, k).await.map(|s| (k.clone(), s)) }).collect();
            let current: HashMap<String, (Shard, Option<String>)> = stream::iter(reads).buffered(PARALLEL).try_collect::<Vec<_>>().await?.into_iter().collect();
            for (key, records) in &shards {
                let row = row_of_shard[key].clone();
                let known = &current[key].0.records;
                let new = records.keys().filter(|r| !known.contains_key(*r)).count() as u64;
                rows.entry(row).or_default().new_records += new;
            }
            let intent = Intent { seq: state.seq + 1, journal: page.keys.clone(), rows, shards };
            guard.check()?;
            state.intent = Some(intent.clone());
            etag = Some(write_json(store, &state_key, &state, etag.as_deref()).await?);
            self.apply(&intent, &current).await?;
            state = RollerState { seq: intent.seq, intent: None };
            write_json(store, &state_key, &state, etag.as_deref()).await?;
            stats.entries += entries.len();
            stats.rows += intent.rows.len();
        }
    }

    /// Applies an intent: shards, then rows, then drops its journal entries.
    /// Each object takes the delta only if its `foldSeq` is behind the intent's.
    async fn apply(&self, intent: &Intent, prefetched: &HashMap<String, (Shard, Option<String>)>) -> Result<()> {
        let store = &*self.ctx.store;
        let shard_writes: Vec<_> = intent
            .shards
            .iter()
            .map(|(key, delta)| async move {
                let (mut shard, etag) = match prefetched.get(key) {
                    Some((s, e)) => (s.clone(), e.clone()),
                    None => read_json::<Shard>(store, key).await?,
                };
                if shard.fold_seq >= intent.seq {
                    return Ok(());
                }
                for (record, share) in delta {
                    shard.records.entry(record.clone()).or_default().merge(share);
                }
                shard.fold_seq = intent.seq;
                write_json(store, key, &shard, etag.as_deref()).await.map(|_| ())
            })
            .collect();
        stream::iter(shard_writes).buffer_unordered(PARALLEL).try_collect::<Vec<()>>().await?;
        let batch = self.ctx.options.analytics.as_ref().is_some_and(|a| a.rollup == Rollup::Batch);
        let now = iso_millis(self.ctx.clock.now_ms());
        // Hours first: in batch mode days are summed from their hours, months from their days.
        for period in [Period::Hour, Period::Day, Period::Month] {
            let writes: Vec<_> = intent
                .rows
                .iter()
                .filter(|(id, _)| parse_row_id(id).is_some_and(|(p, _)| p == period))
                .map(|(id, delta)| {
                    let now = now.clone();
                    async move {
                        let from_children = batch && period != Period::Hour && self.has_child_period(period);
                        self.apply_row(id, delta, intent.seq, from_children, &now).await
                    }
                })
                .collect();
            stream::iter(writes).buffer_unordered(PARALLEL).try_collect::<Vec<()>>().await?;
        }
        store.delete_many(&intent.journal).await.map_err(|e| Error::from(e).context("deleting folded journal entries"))
    }

    fn has_child_period(&self, period: Period) -> bool {
        let periods = self.ctx.options.analytics.as_ref().map(|a| a.periods.clone()).unwrap_or_default();
        match period {
            Period::Day => periods.contains(&Period::Hour),
            Period::Month => periods.contains(&Period::Day),
            Period::Hour => false,
        }
    }

    async fn apply_row(&self, id: &str, delta: &RowDelta, seq: u64, from_children: bool, now: &str) -> Result<()> {
        let schema = self.analytics.as_ref().expect("analytics schema registered");
        let store = &*self.ctx.store;
        let key = schema.data_key(id);
        let (period, cohort) = parse_row_id(id).ok_or_else(|| Error::storage(format!("bad analytics row id {id}")))?;
        let existing = store.get(&key).await.map_err(Error::from)?;
        let (mut row, condition) = match &existing {
            Some(obj) => (rows::decode(schema, id, obj)?, Condition::Matches(obj.etag.clone())),
            None => (Row::empty(period, cohort), Condition::Absent),
        };
        if row.fold_seq >= seq {
            return Ok(());
        }
        if from_children {
            row.stats = self.sum_children(period, cohort).await?;
        } else {
            row.stats.merge(&delta.stats);
        }
        row.record_count += delta.new_records;
        row.fold_seq = seq;
        row.consolidated_at = now.to_string();
        row.updated_at = now.to_string();
        let mut req = rows::encode(schema, &row)?;
        req.condition = condition;
        store.put(&key, req).await.map(|_| ()).map_err(|e| match e.kind {
            StoreErrorKind::Precondition | StoreErrorKind::NotFound => Error::new(ErrorKind::Fenced, format!("analytics row {id} changed under the roller")),
            _ => Error::from(e).context(format!("writing analytics row {id}")),
        })
    }

    /// A day's stats from its hour rows, or a month's from its day rows.
    async fn sum_children(&self, period: Period, cohort: &str) -> Result<Stats> {
        let child = if period == Period::Day { Period::Hour } else { Period::Day };
        let mut total = Stats::default();
        for row in self.rows_with_prefix(&row_id(child, cohort)).await? {
            total.merge(&row.stats);
        }
        Ok(total)
    }

    /// Analytics rows whose id starts with `id_prefix`, by id.
    pub(crate) async fn rows_with_prefix(&self, id_prefix: &str) -> Result<Vec<Row>> {
        let schema = self.analytics.as_ref().ok_or_else(|| Error::invalid("analytics are not enabled"))?;
        let store = &*self.ctx.store;
        let keys = crate::store::list_all(store, &format!("{}id={id_prefix}", schema.data_prefix())).await.map_err(Error::from)?;
        let reads: Vec<_> = keys
            .iter()
            .map(|k| async move {
                let id = k.rsplit_once("/id=").map(|(_, id)| id).unwrap_or_default();
                match store.get(k).await.map_err(Error::from)? {
                    Some(obj) => rows::decode(schema, id, &obj).map(Some),
                    None => Ok(None),
                }
            })
            .collect();
        let rows: Vec<Option<Row>> = stream::iter(reads).buffered(PARALLEL).try_collect().await?;
        Ok(rows.into_iter().flatten().collect())
    }
}

/// A journal object, or nothing when it vanished between LIST and GET.
#[derive(Default, Deserialize)]
#[serde(transparent)]
struct JournalEntryOrEmpty(Option<JournalEntry>);
