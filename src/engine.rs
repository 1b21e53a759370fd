//! `NativeEngine`: one per plugin instance. Owns the core engine, its store
//! stack and the JS host function.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ec_core::clock::{parse_iso, OffsetClock};
use ec_core::codec::ResourceSchema;
use ec_core::config::PluginConfig;
use ec_core::consolidate::WaitPolicy;
use ec_core::engine::{Context, Engine};
use ec_core::lock::{self, Acquired, Lease, LeaseTerms};
use ec_core::scheduler::{RunStats, Scheduler};
use ec_core::store::aws::{S3Config, S3Store};
use ec_core::store::counting::CountingStore;
use ec_core::store::prefix::PrefixStore;
use ec_core::store::retry::{RetryPolicy, RetryStore};
use ec_core::store::DynStore;
use ec_core::txlog::WriteRequest;
use ec_core::txn::Operation;
use ec_core::Error;
use napi::Result;
use napi_derive::napi;
use serde::Deserialize;
use serde_json::Value;

use crate::bridge::BridgeStore;
use crate::convert::{environment, js_error, js_error_text, outcome_to_json, transaction_to_json};
use crate::host::{HostFn, JsHost};

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum StoreSpec {
    S3(S3Spec),
    Bridge,
}

/// `db.client`'s S3 connection, as lib/store-spec.js reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Spec {
    endpoint: Option<String>,
    region: Option<String>,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    force_path_style: Option<bool>,
    key_prefix: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WriteOptions {
    key: Option<String>,
    timestamp: Option<Value>,
    source: Option<String>,
}

#[napi]
pub struct NativeEngine {
    engine: Arc<Engine>,
    counts: Arc<CountingStore>,
    clock: Arc<OffsetClock>,
    scheduler: Mutex<Option<Scheduler>>,
    /// Locks taken through the test hooks, by key.
    test_locks: Mutex<std::collections::HashMap<String, Lease>>,
}

fn build_store(spec: StoreSpec, host: &JsHost) -> DynStore {
    match spec {
        StoreSpec::Bridge => Arc::new(BridgeStore::new(host.clone())),
        StoreSpec::S3(s3) => build_s3(s3),
    }
}

fn build_s3(spec: S3Spec) -> DynStore {
    let s3 = S3Store::new(&S3Config {
        endpoint: spec.endpoint,
        region: spec.region.unwrap_or_else(|| "us-east-1".into()),
        bucket: spec.bucket,
        access_key_id: spec.access_key_id,
        secret_access_key: spec.secret_access_key,
        session_token: spec.session_token,
        force_path_style: spec.force_path_style.unwrap_or(false),
        attempt_timeout: Duration::from_secs(30),
    });
    Arc::new(PrefixStore::new(Arc::new(s3), spec.key_prefix.as_deref().unwrap_or("")))
}

/// An S3 store (with prefix) from a store spec, for the benchmark's raw baseline.
pub(crate) fn s3_store_from_json(json: &str) -> std::result::Result<DynStore, String> {
    match serde_json::from_str::<StoreSpec>(json).map_err(|e| e.to_string())? {
        StoreSpec::S3(spec) => Ok(napi::bindgen_prelude::within_runtime_if_available(|| build_s3(spec))),
        StoreSpec::Bridge => Err("the raw baseline needs an S3 store".into()),
    }
}

fn run_stats_json(resource: &str, field: &str, s: &RunStats) -> Value {
    serde_json::json!({
        "resource": resource, "field": field, "recordCount": s.records, "applied": s.applied,
        "skipped": s.skipped, "errors": s.errors, "durationMs": s.duration_ms,
    })
}

fn parse_operation(op: &str) -> Result<Operation> {
    Operation::parse(op).ok_or_else(|| js_error(Error::invalid(format!("unknown operation {op:?}: expected 'set', 'add' or 'sub'"))))
}

fn parse_timestamp(v: &Value) -> Result<i64> {
    let ms = match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64),
        Value::String(s) => parse_iso(s),
        _ => None,
    };
    ms.ok_or_else(|| js_error(Error::invalid(format!("options.timestamp must be a Date, an ISO-8601 string or epoch milliseconds, got {v}"))))
}

#[napi]
impl NativeEngine {
    #[napi(constructor)]
    pub fn new(config_json: String, store_json: String, host: HostFn, system_zone: Option<String>) -> Result<Self> {
        let raw: Value = serde_json::from_str(&config_json).map_err(|e| js_error_text("EC_INVALID_CONFIG", &e.to_string()))?;
        let cfg = PluginConfig::parse(&raw, &environment(system_zone)).map_err(js_error)?;
        let spec: StoreSpec = serde_json::from_str(&store_json).map_err(|e| js_error_text("EC_INVALID_ARGUMENT", &format!("store spec: {e}")))?;
        let host = JsHost::new(host);
        let store = napi::bindgen_prelude::within_runtime_if_available(|| build_store(spec, &host));
        let store: DynStore = Arc::new(RetryStore::new(store, RetryPolicy::default()));
        let counts = Arc::new(CountingStore::new(store));
        let clock = OffsetClock::new();
        let reducer: Option<Arc<dyn ec_core::host::Reducer>> =
            if cfg.options.custom_reducer { Some(Arc::new(host.clone())) } else { None };
        let engine = Engine::new(Context {
            store: counts.clone(),
            host: Arc::new(host.clone()),
            reducer,
            events: Arc::new(host),
            clock: clock.clone(),
            options: cfg.options,
            holder: format!("{}-{}", std::process::id(), nanoid::nanoid!(8)),
        });
        Ok(NativeEngine { engine: Arc::new(engine), counts, clock, scheduler: Mutex::new(None), test_locks: Mutex::default() })
    }

    /// Starts serving `field` of `resource`; `schema_json` describes its transaction resource.
    #[napi]
    pub fn register(&self, resource: String, field: String, schema_json: String, analytics_schema_json: Option<String>) -> Result<()> {
        let parse = |json: &str| -> Result<ResourceSchema> {
            let raw: Value = serde_json::from_str(json).map_err(|e| js_error_text("EC_INVALID_ARGUMENT", &e.to_string()))?;
            ResourceSchema::from_json(&raw).map_err(js_error)
        };
        let schema = parse(&schema_json)?;
        let analytics = analytics_schema_json.as_deref().map(parse).transpose()?;
        self.engine.register_with_analytics(&resource, &field, schema, analytics);
        Ok(())
    }

    /// `getAnalytics(resource, field, options)`: rows of one period, sorted by cohort.
    #[napi]
    pub async fn analytics(&self, resource: String, field: String, options_json: String) -> Result<Value> {
        let f = self.engine.field(&resource, &field).map_err(js_error)?;
        let options: Value = serde_json::from_str(&options_json).map_err(|e| js_error_text("EC_INVALID_ARGUMENT", &e.to_string()))?;
        f.analytics(&options).await.map(Value::Array).map_err(js_error)
    }

    /// `getTopRecords(resource, field, options)`: `[{ recordId, count, sum }]`, highest first.
    #[napi]
    pub async fn top_records(&self, resource: String, field: String, options_json: String) -> Result<Value> {
        let f = self.engine.field(&resource, &field).map_err(js_error)?;
        let options: Value = serde_json::from_str(&options_json).map_err(|e| js_error_text("EC_INVALID_ARGUMENT", &e.to_string()))?;
        f.top_records(&options).await.map(Value::Array).map_err(js_error)
    }

    /// `set`/`add`/`sub`. Resolves with the transaction once it is durable
    /// (and, in sync mode, consolidated into the record).
    #[napi]
    pub async fn record(&self, resource: String, field: String, id: String, operation: String, value: f64, options_json: Option<String>) -> Result<Value> {
        let f = self.engine.field(&resource, &field).map_err(js_error)?;
        let opts: WriteOptions = match options_json.as_deref() {
            None | Some("") => WriteOptions::default(),
            Some(s) => serde_json::from_str(s).map_err(|e| js_error_text("EC_INVALID_ARGUMENT", &format!("options: {e}")))?,
        };
        let req = WriteRequest {
            id,
            operation: parse_operation(&operation)?,
            value,
            key: opts.key,
            timestamp_ms: opts.timestamp.as_ref().map(parse_timestamp).transpose()?,
            source: opts.source,
        };
        let t = f.record(req).await.map_err(js_error)?;
        Ok(transaction_to_json(&t))
    }

    /// Consolidates one record. With `wait` false, a lock held elsewhere
    /// resolves at once with `skipped: true` and the record's current value.
    #[napi]
    pub async fn consolidate(&self, resource: String, field: String, id: String, wait: bool) -> Result<Value> {
        let f = self.engine.field(&resource, &field).map_err(js_error)?;
        let policy = if wait { WaitPolicy::Wait } else { WaitPolicy::Skip };
        let out = f.consolidate(&id, policy).await.map_err(js_error)?;
        Ok(outcome_to_json(&out))
    }

    /// Starts background consolidation (when `autoConsolidate`); idempotent.
    #[napi]
    pub fn start(&self) {
        let mut slot = self.scheduler.lock().unwrap();
        if slot.is_none() && self.engine.context().options.auto_consolidate {
            let engine = Arc::clone(&self.engine);
            *slot = Some(napi::bindgen_prelude::within_runtime_if_available(|| Scheduler::start(engine)));
        }
    }

    /// Stops background work, waiting for a run in flight, then writes any batched transactions.
    #[napi]
    pub async fn stop(&self) -> Result<Value> {
        let scheduler = self.scheduler.lock().unwrap().take();
        if let Some(s) = scheduler {
            s.stop().await;
        }
        let mut flushed = 0;
        let mut first_error = None;
        for f in self.engine.fields() {
            match f.flush().await {
                Ok(n) => flushed += n,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(js_error(e));
        }
        Ok(serde_json::json!({ "flushed": flushed }))
    }

    /// One consolidation run over every field now; per-field stats.
    #[napi]
    pub async fn consolidate_all(&self) -> Result<Value> {
        let results = self.engine.consolidate_all().await;
        let mut out = Vec::new();
        for (f, r) in results {
            let stats = r.map_err(js_error)?;
            out.push(run_stats_json(f.resource(), f.name(), &stats));
        }
        Ok(Value::Array(out))
    }

    /// One GC pass over every field now; per-field stats.
    #[napi]
    pub async fn collect_garbage(&self) -> Result<Value> {
        let mut out = Vec::new();
        for (f, r) in self.engine.collect_garbage_all().await {
            let s = r.map_err(js_error)?;
            out.push(serde_json::json!({
                "resource": f.resource(), "field": f.name(), "deletedCount": s.deleted,
                "keptPending": s.kept_pending, "days": s.days, "analyticsRowsDeleted": s.analytics_rows_deleted,
                "skipped": s.skipped, "durationMs": s.duration_ms,
            }));
        }
        Ok(Value::Array(out))
    }

    /// Transactions buffered by `batchTransactions`, not yet written.
    #[napi]
    pub fn buffered(&self) -> u32 {
        self.engine.fields().iter().map(|f| f.buffered() as u32).sum()
    }

    /// One day's transactions (in the configured timezone): counts and total change.
    #[napi]
    pub async fn cohort_stats(&self, resource: String, field: String, date: String) -> Result<Value> {
        let f = self.engine.field(&resource, &field).map_err(js_error)?;
        let stats = f.cohort_stats(&date).await.map_err(js_error)?;
        Ok(serde_json::to_value(stats).unwrap_or(Value::Null))
    }

    /// S3 requests this engine made, by type.
    #[napi]
    pub fn request_counts(&self) -> Value {
        serde_json::to_value(self.counts.counts()).unwrap_or(Value::Null)
    }

    /// Test hook: one attempt at the lock `key` (under the plugin's key space) with a lease of `lease_ms`.
    #[napi]
    pub async fn test_try_lock(&self, key: String, lease_ms: f64) -> Result<Value> {
        let ctx = self.engine.context();
        let full = format!("{}/locks/test-{key}", ec_core::keys::NAMESPACE);
        let terms = LeaseTerms { lease_ms: lease_ms as i64, max_hold_ms: (lease_ms as i64).max(1) * 10 };
        match lock::try_acquire(&*ctx.store, &*ctx.clock, &full, &ctx.holder, terms).await.map_err(js_error)? {
            Acquired::Yes(lease) => {
                let token = lease.body.token.clone();
                self.test_locks.lock().unwrap().insert(key, lease);
                Ok(serde_json::json!({ "acquired": true, "token": token, "holder": ctx.holder }))
            }
            Acquired::HeldBy { holder, expires_at } => Ok(serde_json::json!({ "acquired": false, "holder": holder, "expiresAt": expires_at })),
        }
    }

    /// Test hook: releases a lock taken with `testTryLock`.
    #[napi]
    pub async fn test_release_lock(&self, key: String) -> Result<bool> {
        let lease = self.test_locks.lock().unwrap().remove(&key);
        match lease {
            Some(l) => lock::release(&*self.engine.context().store, &l).await.map(|_| true).map_err(js_error),
            None => Ok(false),
        }
    }

    /// Moves this engine's clock (tests of windows and leases; 0 in production).
    #[napi]
    pub fn set_clock_offset(&self, ms: f64) {
        self.clock.set_offset(ms as i64);
    }
}
