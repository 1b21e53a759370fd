//! Background consolidation: every `consolidationInterval` seconds, each field
//! consolidates every record with pending transactions the window admits, at
//! most `consolidationConcurrency` at a time. Runs on tokio, off the JS thread.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use crate::config::LateArrival;
use crate::consolidate::WaitPolicy;
use crate::engine::{Engine, Field};
use crate::error::{Error, Result};
use crate::host::Event;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    pub records: usize,
    pub applied: usize,
    /// Records whose lock another process held.
    pub skipped: usize,
    pub errors: usize,
    pub duration_ms: u64,
}

impl Field {
    /// Records with at least one pending transaction the window admits.
    pub async fn records_with_pending(&self) -> Result<Vec<String>> {
        let process_late = self.ctx.options.late_arrival == LateArrival::Process;
        let root = self.keys.pending_root();
        let mut ids = BTreeSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.ctx.store.list(&root, cursor.as_deref(), 1000).await.map_err(|e| Error::from(e).context("listing pending transactions"))?;
            for key in &page.keys {
                if let Some(entry) = self.keys.parse_pending(key) {
                    if process_late || self.hours_late(entry.timestamp_ms).is_none() {
                        ids.insert(entry.original_id);
                    }
                }
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => return Ok(ids.into_iter().collect()),
            }
        }
    }

    /// Removes this field's expired consolidation locks (crashed holders), under
    /// the field's cleanup lock; skipped when another process is at it.
    pub async fn cleanup_stale_locks(&self) -> Result<usize> {
        let ctx = &self.ctx;
        let terms = crate::lease::terms(&ctx.options);
        let lease = match crate::lock::try_acquire(&*ctx.store, &*ctx.clock, &self.keys.cleanup_lock(), &ctx.holder, terms).await? {
            crate::lock::Acquired::Yes(l) => l,
            crate::lock::Acquired::HeldBy { .. } => return Ok(0),
        };
        let suffix = format!("-{}", crate::keys::encode_segment(self.name()));
        let removed = crate::lock::cleanup_expired(&*ctx.store, &*ctx.clock, &self.keys.consolidation_locks_prefix(), &suffix).await;
        let _ = crate::lock::release(&*ctx.store, &lease).await;
        removed
    }

    /// One run over every record with pending transactions.
    pub async fn consolidate_pending(self: &Arc<Self>) -> Result<RunStats> {
        let started = Instant::now();
        self.flush().await?;
        if let Err(e) = self.cleanup_stale_locks().await {
            self.report("lock-cleanup", None, &e);
        }
        let ids = self.records_with_pending().await?;
        let runs: Vec<_> = ids
            .iter()
            .map(|id| {
                let f = Arc::clone(self);
                async move { (id.clone(), f.consolidate(id, WaitPolicy::Skip).await) }
            })
            .collect();
        let results: Vec<_> = stream::iter(runs).buffer_unordered(self.ctx.options.consolidation_concurrency).collect().await;
        let mut stats = RunStats { records: ids.len(), ..Default::default() };
        for (id, r) in results {
            match r {
                Ok(o) if o.skipped => stats.skipped += 1,
                Ok(o) => stats.applied += o.applied,
                Err(e) => {
                    stats.errors += 1;
                    self.report("consolidation", Some(&id), &e);
                }
            }
        }
        if self.analytics.is_some() {
            if let Err(e) = self.fold_analytics().await {
                stats.errors += 1;
                self.report("analytics", None, &e);
            }
        }
        stats.duration_ms = started.elapsed().as_millis() as u64;
        self.ctx.events.emit(Event::RunCompleted {
            resource: self.resource().into(),
            field: self.name().into(),
            records: stats.records,
            applied: stats.applied,
            skipped: stats.skipped,
            errors: stats.errors,
            duration_ms: stats.duration_ms,
        });
        Ok(stats)
    }
}

impl Engine {
    /// Runs every field once; a field's failure is reported and the others still run.
    pub async fn consolidate_all(&self) -> Vec<(Arc<Field>, Result<RunStats>)> {
        let mut out = Vec::new();
        for f in self.fields() {
            let r = f.consolidate_pending().await;
            if let Err(e) = &r {
                f.report("consolidation", None, e);
            }
            out.push((f, r));
        }
        out
    }
}

impl Engine {
    /// GC over every field; each field's result is also sent as an event.
    pub async fn collect_garbage_all(&self) -> Vec<(Arc<Field>, Result<crate::gc::GcStats>)> {
        let mut out = Vec::new();
        for f in self.fields() {
            let r = f.collect_garbage().await;
            match &r {
                Ok(s) => self.context().events.emit(Event::GcCompleted {
                    resource: f.resource().into(),
                    field: f.name().into(),
                    deleted: s.deleted,
                    kept_pending: s.kept_pending,
                    skipped: s.skipped,
                    duration_ms: s.duration_ms,
                }),
                Err(e) => f.report("gc", None, e),
            }
            out.push((f, r));
        }
        out
    }
}

/// The background task. `stop()` lets a run in flight finish.
pub struct Scheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A timer whose first tick comes one period from now; late ticks do not pile up.
fn ticker(seconds: f64) -> tokio::time::Interval {
    let period = Duration::from_secs_f64(seconds);
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}

impl Scheduler {
    pub fn start(engine: Arc<Engine>) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let o = &engine.context().options;
        let mut consolidation = ticker(o.consolidation_interval);
        let mut gc = ticker(o.gc_interval);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = consolidation.tick() => { engine.consolidate_all().await; }
                    _ = gc.tick() => { engine.collect_garbage_all().await; }
                    _ = stopped.changed() => return,
                }
                if *stopped.borrow() {
                    return;
                }
            }
        });
        Scheduler { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
