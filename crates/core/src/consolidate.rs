//! Consolidating one record, exactly once, under its lease.
//!
//! 1. Take the record's lock (a lease, renewed by a heartbeat task).
//! 2. Read the checkpoint; an *intent* left by a holder that died is rolled
//!    forward first.
//! 3. List the record's pending entries (one LIST per 1000), keep those the
//!    window admits, reduce them onto the record's current value.
//! 4. Write the intent (CAS), write the record, check the lease again, mark
//!    the transactions applied, delete their entries, write the clean
//!    checkpoint (CAS). A holder fenced on the way starts over (`ATTEMPTS`).
//!
//! A crash anywhere leaves either nothing (before the intent) or an intent
//! whose roll-forward is idempotent: it writes an absolute value, never a delta.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::checkpoint::{self, Checkpoint, Stored};
use crate::codec::transaction as txcodec;
use crate::config::LateArrival;
use crate::engine::Field;
use crate::error::{Error, ErrorKind, Result};
use crate::host::{Event, RecordValue};
use crate::keys::{PendingEntry, SourceInKey};
use crate::lease::{self, LeaseGuard};
use crate::lock::Acquired;
use crate::reducer::{default_reduce, reducer_inputs};
use crate::store::Condition;
use crate::txn::Transaction;

/// Transactions folded per intent: bounds memory and the intent's size.
const CHUNK: usize = 1000;
/// Parallel object writes when marking transactions applied.
const MARK_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The record's value after this consolidation (or as read, when skipped).
    pub value: f64,
    /// Transactions this call applied.
    pub applied: usize,
    /// Another process held the lock and the policy said not to wait.
    pub skipped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Wait for the holder (bounded by its lease) and then consolidate.
    Wait,
    /// Return the current value, marked skipped.
    Skip,
}

/// Attempts at a record after losing the lease: a holder fenced by its own
/// check (a pause, renewals starved on a loaded machine) starts over under a
/// new lease, from the checkpoint, so nothing it did is applied twice.
const ATTEMPTS: usize = 3;

pub(crate) async fn consolidate_record(field: &Arc<Field>, id: &str, policy: WaitPolicy) -> Result<Outcome> {
    let mut attempt = 1;
    loop {
        match consolidate_once(field, id, policy).await {
            Err(e) if e.kind == ErrorKind::Fenced && attempt < ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

async fn consolidate_once(field: &Arc<Field>, id: &str, policy: WaitPolicy) -> Result<Outcome> {
    let ctx = &field.ctx;
    let key = field.keys.consolidation_lock(id);
    let terms = lease::terms(&ctx.options);
    let mut backoff = Duration::from_millis(50);
    let mut reported = false;
    // A live holder renews for at most lockTimeout; waiting longer means starvation.
    let give_up = ctx.clock.now_ms() + ((ctx.options.lock_timeout + 2.0 * ctx.options.lock_heartbeat) * 1000.0) as i64;
    let lease = loop {
        match crate::lock::try_acquire(&*ctx.store, &*ctx.clock, &key, &ctx.holder, terms).await? {
            Acquired::Yes(lease) => break lease,
            Acquired::HeldBy { holder, expires_at } => {
                if !reported {
                    reported = true;
                    ctx.events.emit(Event::LockHeld {
                        resource: field.resource().into(),
                        field: field.name().into(),
                        id: id.into(),
                        holder: holder.clone(),
                    });
                }
                if policy == WaitPolicy::Skip {
                    let value = read_current(field, id).await?.or_zero();
                    return Ok(Outcome { value, applied: 0, skipped: true });
                }
                if ctx.clock.now_ms() > give_up {
                    return Err(Error::new(
                        ErrorKind::LockTimeout,
                        format!("the lock of {}.{} record {id} stayed held (by {holder} and others) for longer than lockTimeout", field.resource(), field.name()),
                    ));
                }
                let until_expiry = (expires_at - ctx.clock.now_ms()).max(0) as u64;
                tokio::time::sleep(backoff.min(Duration::from_millis(until_expiry.max(20)))).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    };
    let guard = LeaseGuard::start(Arc::clone(&ctx.store), Arc::clone(&ctx.clock), lease, terms, ctx.options.lock_heartbeat);
    let result = run_locked(field, id, &guard).await;
    guard.release().await;
    result
}

async fn run_locked(field: &Field, id: &str, guard: &LeaseGuard) -> Result<Outcome> {
    let ctx = &field.ctx;
    let ck_key = field.keys.checkpoint_key(id);
    let mut stored = checkpoint::load(&*ctx.store, &ck_key).await?;
    let mut applied = 0;
    let mut last_value = None;
    if let Some(s) = stored.as_ref().filter(|s| s.checkpoint.is_intent()).cloned() {
        let entries = s.checkpoint.intent.iter().filter_map(|e| PendingEntry::decode(id, e)).collect::<Vec<_>>();
        // One transaction per id: a keyed retry's recheck entry names a transaction twice.
        let mut seen = std::collections::HashSet::new();
        let heads: Vec<PendingEntry> = entries.iter().filter(|e| seen.insert(e.id.clone())).cloned().collect();
        let txns = resolve(field, &heads).await?;
        guard.check()?;
        ctx.host.write(field.resource(), field.name(), id, s.checkpoint.value, None).await?;
        stored = Some(match finish_after_write(field, id, &txns, &entries, s.checkpoint.value, &s, guard).await {
            // Our lease is valid, so the writer was the intent's owner, resumed from a
            // pause: it finished its own intent, the same value we wrote. Carry on.
            Err(e) if e.kind == ErrorKind::Fenced && guard.check().is_ok() => match checkpoint::load(&*ctx.store, &ck_key).await? {
                Some(now) if !now.checkpoint.is_intent() && now.checkpoint.seq > s.checkpoint.seq => now,
                _ => return Err(e),
            },
            other => other?,
        });
        last_value = Some(s.checkpoint.value);
    }
    // Entries of transactions already applied go last: a recheck among them is
    // what brings a consolidation back here if the repair below fails.
    let mut stale: Vec<PendingEntry> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (pending, next) = next_chunk(field, id, &mut cursor).await?;
        if pending.is_empty() {
            break;
        }
        let heads: Vec<PendingEntry> = pending.iter().map(|p| p.entry.clone()).collect();
        let txns = resolve(field, &heads).await?;
        // An object already marked applied (a keyed retry re-created its entry) only loses its entries.
        let (done, todo): (Vec<_>, Vec<_>) = pending.into_iter().zip(txns).partition(|(_, t)| t.applied);
        stale.extend(done.into_iter().flat_map(|(p, _)| p.all));
        let entries: Vec<PendingEntry> = todo.iter().flat_map(|(p, _)| p.all.iter().cloned()).collect();
        let txns: Vec<Transaction> = todo.into_iter().map(|(_, t)| t).collect();
        if !txns.is_empty() {
            // Once consolidated, the checkpoint holds the field's value: the record is
            // its projection (a stale write to it, by a paused holder or by an
            // s3db.js update racing ours, is repaired rather than built upon).
            let current = match &stored {
                Some(s) => RecordValue::Present(s.checkpoint.value),
                None => read_current(field, id).await?,
            };
            let value = reduce(field, id, current, &txns).await?;
            guard.check()?;
            let intent = Checkpoint {
                value,
                intent: entries.iter().map(PendingEntry::encode).collect(),
                token: guard.token(),
                seq: stored.as_ref().map_or(0, |s| s.checkpoint.seq) + 1,
                at: ctx.clock.now_ms(),
            };
            let written = checkpoint::save(&*ctx.store, &ck_key, stored.as_ref(), intent).await?;
            guard.check()?;
            let existed = stored.is_some() || current != RecordValue::Missing;
            ctx.host.write(field.resource(), field.name(), id, value, Some(existed)).await?;
            stored = Some(finish_after_write(field, id, &txns, &entries, value, &written, guard).await?);
            applied += txns.len();
            last_value = Some(value);
            ctx.events.emit(Event::RecordConsolidated {
                resource: field.resource().into(),
                field: field.name().into(),
                id: id.into(),
                value,
                applied: txns.len(),
            });
        }
        if next.is_none() {
            break;
        }
    }
    let value = match (last_value, &stored) {
        (Some(v), _) => v,
        (None, Some(s)) => repair(field, id, s.checkpoint.value, guard).await?,
        (None, None) => read_current(field, id).await?.or_zero(),
    };
    delete_entries(field, &stale).await?;
    Ok(Outcome { value, applied, skipped: false })
}

/// The record's value through the host, looked up directly first: hosts can be
/// slow to answer "missing" (s3db.js's S3 client retries a 404 for seconds).
async fn read_current(field: &Field, id: &str) -> Result<RecordValue> {
    let key = format!("resource={}/data/id={id}", field.resource());
    if field.ctx.store.get(&key).await.map_err(|e| Error::from(e).context("looking up the record"))?.is_none() {
        return Ok(RecordValue::Missing);
    }
    field.ctx.host.read(field.resource(), field.name(), id).await
}

/// With nothing pending, makes sure the record shows the consolidated value
/// (a late write by a holder that lost its lease is undone here).
async fn repair(field: &Field, id: &str, value: f64, guard: &LeaseGuard) -> Result<f64> {
    let current = read_current(field, id).await?;
    if current != RecordValue::Present(value) {
        guard.check()?;
        field.ctx.host.write(field.resource(), field.name(), id, value, Some(current != RecordValue::Missing)).await?;
        field.ctx.events.emit(Event::RecordRepaired {
            resource: field.resource().into(),
            field: field.name().into(),
            id: id.into(),
            found: match current {
                RecordValue::Present(v) => Some(v),
                RecordValue::Missing => None,
            },
            value,
        });
    }
    Ok(value)
}

/// A transaction's pending entries (a keyed retry can leave more than one).
struct Pending {
    entry: PendingEntry,
    /// Every entry for this transaction, `entry` included: all go when it is applied.
    all: Vec<PendingEntry>,
}

/// Up to `CHUNK` pending transactions the window admits, grouped by id.
async fn next_chunk(field: &Field, id: &str, cursor: &mut Option<String>) -> Result<(Vec<Pending>, Option<String>)> {
    let ctx = &field.ctx;
    let prefix = field.keys.pending_prefix(id);
    let process_late = ctx.options.late_arrival == LateArrival::Process;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Pending> = Vec::new();
    loop {
        let page = ctx.store.list(&prefix, cursor.as_deref(), CHUNK).await.map_err(|e| Error::from(e).context("listing pending transactions"))?;
        for key in &page.keys {
            let Some(entry) = key.strip_prefix(&prefix).and_then(|e| PendingEntry::decode(id, e)) else {
                continue; // not ours: leave it
            };
            if !process_late && field.hours_late(entry.timestamp_ms).is_some() {
                continue;
            }
            match index.get(&entry.id) {
                Some(&i) => out[i].all.push(entry),
                None => {
                    index.insert(entry.id.clone(), out.len());
                    out.push(Pending { all: vec![entry.clone()], entry });
                }
            }
        }
        *cursor = page.next.clone();
        if out.len() >= CHUNK || page.next.is_none() {
            return Ok((out, page.next));
        }
    }
}

/// The transactions behind entries: from the key where it tells everything,
/// from the object otherwise (see `PendingEntry::needs_object`).
async fn resolve(field: &Field, entries: &[PendingEntry]) -> Result<Vec<Transaction>> {
    // Collected first: a lazily mapped iterator makes the future !Send (rust-lang/rust#102211).
    let reads: Vec<_> = entries.iter().map(|e| async move {
        let from_key = e.to_transaction(field.name(), false);
        match from_key {
            Some(t) if !e.needs_object() => Ok(t),
            _ => {
                let key = field.schema.data_key(&e.id);
                match field.ctx.store.get(&key).await.map_err(Error::from)? {
                    Some(obj) => txcodec::decode(&field.schema, &e.id, &obj),
                    // A recheck entry outlived its transaction (applied, then collected): done.
                    None if e.recheck => Ok(PendingEntry { source: SourceInKey::None, ..e.clone() }
                        .to_transaction(field.name(), true)
                        .expect("an entry without a source spells a whole transaction")),
                    None => from_key.ok_or_else(|| Error::storage(format!("transaction {} has a pending entry but no object", e.id))),
                }
            }
        }
    }).collect();
    stream::iter(reads).buffered(MARK_CONCURRENCY).try_collect().await
}

async fn reduce(field: &Field, id: &str, current: RecordValue, txns: &[Transaction]) -> Result<f64> {
    let value = match &field.ctx.reducer {
        None => default_reduce(current, txns),
        Some(r) => r
            .reduce(field.resource(), field.name(), reducer_inputs(id, field.name(), current, txns))
            .await
            .map_err(|e| Error::new(ErrorKind::Reducer, format!("reducer failed for {}.{} record {id}: {e}", field.resource(), field.name())))?,
    };
    if !value.is_finite() {
        return Err(Error::new(
            ErrorKind::Reducer,
            format!("reducer returned {value} for {}.{} record {id}; it must return a finite number (nothing was written)", field.resource(), field.name()),
        ));
    }
    Ok(value)
}

/// `finish`, right after our record write landed. A holder that was paused
/// through its lease (SIGSTOP, a long GC) is fenced here, before it marks or
/// deletes anything; since its late write may have overwritten a successor's,
/// it leaves a recheck entry so the next consolidation of the record (a
/// background run included) repairs the record from the checkpoint.
async fn finish_after_write(
    field: &Field,
    id: &str,
    txns: &[Transaction],
    entries: &[PendingEntry],
    value: f64,
    current: &Stored,
    guard: &LeaseGuard,
) -> Result<Stored> {
    let result = match guard.check() {
        Ok(()) => finish(field, id, txns, entries, value, Some(current), guard).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        if e.kind == ErrorKind::Fenced {
            if let Some(first) = entries.first() {
                // Best effort: the error below is what the caller must see.
                let _ = field.put_pending(&PendingEntry { recheck: true, ..first.clone() }).await;
            }
        }
    }
    result
}

/// After the record holds `value`: mark the transactions applied, delete
/// their entries, and leave a clean checkpoint.
async fn finish(
    field: &Field,
    id: &str,
    txns: &[Transaction],
    entries: &[PendingEntry],
    value: f64,
    current: Option<&Stored>,
    guard: &LeaseGuard,
) -> Result<Stored> {
    let ctx = &field.ctx;
    let marks: Vec<_> = txns.iter().map(|t| async move {
        let mut obj = txcodec::encode(&field.schema, &Transaction { applied: true, ..t.clone() })?;
        obj.condition = Condition::None;
        ctx.store
            .put(&field.schema.data_key(&t.id), obj)
            .await
            .map(|_| ())
            .map_err(|e| Error::from(e).context(format!("marking transaction {} applied", t.id)))
    }).collect();
    stream::iter(marks).buffer_unordered(MARK_CONCURRENCY).try_collect::<Vec<()>>().await?;
    // Before the entries go: a crash after this point rewrites the same journal entry.
    field.journal_batch(id, current.map_or(0, |s| s.checkpoint.seq), txns).await?;
    delete_entries(field, entries).await?;
    let clean = Checkpoint {
        value,
        intent: Vec::new(),
        token: guard.token(),
        seq: current.map_or(0, |s| s.checkpoint.seq) + 1,
        at: ctx.clock.now_ms(),
    };
    checkpoint::save(&*ctx.store, &field.keys.checkpoint_key(id), current, clean).await
}

async fn delete_entries(field: &Field, entries: &[PendingEntry]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = entries.iter().map(|e| field.keys.pending_key(e)).collect();
    field.ctx.store.delete_many(&keys).await.map_err(|e| Error::from(e).context("deleting pending entries"))
}

