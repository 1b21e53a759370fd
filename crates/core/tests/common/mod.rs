//! Shared fixtures for the core's integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ec_core::clock::{Clock, ManualClock};
use ec_core::codec::ResourceSchema;
use ec_core::config::{Environment, PluginConfig};
use ec_core::engine::{Context, Engine, Field};
use ec_core::host::{NoEvents, RecordHost, RecordValue};
use ec_core::store::faulty::FaultyStore;
use ec_core::store::DynStore;
use ec_core::Result;

pub fn tx_schema() -> ResourceSchema {
    ResourceSchema::from_json(&serde_json::json!({
        "name": "wallets_transactions_balance",
        "version": "v1",
        "map": {"id":"0","originalId":"1","field":"2","value":"3","operation":"4","timestamp":"5","cohortHour":"6","cohortDate":"7","cohortMonth":"8","source":"9","applied":"a"},
        "partitions": {
            "byHour": {"fields": {"cohortHour": "string"}},
            "byDay": {"fields": {"cohortDate": "string"}},
            "byMonth": {"fields": {"cohortMonth": "string"}}
        }
    }))
    .unwrap()
}

/// Records in memory; can share a "dead" switch with a `FaultyStore`.
/// Records in memory, mirrored as (empty) objects in `store` so the core's
/// existence check sees them as s3db.js would.
pub struct MemoryHost {
    pub values: Mutex<HashMap<String, f64>>,
    pub writes: Mutex<u64>,
    pub dead_with: Mutex<Option<Arc<FaultyStore>>>,
    pub store: DynStore,
}

#[async_trait]
impl RecordHost for MemoryHost {
    async fn read(&self, _: &str, _: &str, id: &str) -> Result<RecordValue> {
        self.check()?;
        Ok(self.values.lock().unwrap().get(id).map_or(RecordValue::Missing, |v| RecordValue::Present(*v)))
    }
    async fn write(&self, _: &str, _: &str, id: &str, value: f64, _: Option<bool>) -> Result<()> {
        self.check()?;
        *self.writes.lock().unwrap() += 1;
        self.values.lock().unwrap().insert(id.to_string(), value);
        self.mirror(id).await;
        Ok(())
    }
}

impl MemoryHost {
    pub fn new(store: DynStore) -> Arc<Self> {
        Arc::new(MemoryHost { values: Mutex::default(), writes: Mutex::default(), dead_with: Mutex::default(), store })
    }

    pub async fn seed(&self, id: &str, value: f64) {
        self.values.lock().unwrap().insert(id.to_string(), value);
        self.mirror(id).await;
    }

    async fn mirror(&self, id: &str) {
        let key = format!("resource=wallets/data/id={id}");
        self.store.put(&key, ec_core::store::PutRequest::default()).await.unwrap();
    }

    fn check(&self) -> Result<()> {
        if let Some(s) = self.dead_with.lock().unwrap().as_ref() {
            if s.dead() {
                return Err(ec_core::Error::record("process is dead"));
            }
        }
        Ok(())
    }
    pub fn value(&self, id: &str) -> Option<f64> {
        self.values.lock().unwrap().get(id).copied()
    }
}

/// A record host view that shares the records of another but dies with its own store.
pub struct DyingView {
    pub records: Arc<MemoryHost>,
    pub store: Arc<FaultyStore>,
}

#[async_trait]
impl RecordHost for DyingView {
    async fn read(&self, r: &str, f: &str, id: &str) -> Result<RecordValue> {
        if self.store.dead() {
            return Err(ec_core::Error::record("process is dead"));
        }
        self.records.read(r, f, id).await
    }
    async fn write(&self, r: &str, f: &str, id: &str, value: f64, existed: Option<bool>) -> Result<()> {
        if self.store.dead() {
            return Err(ec_core::Error::record("process is dead"));
        }
        self.records.write(r, f, id, value, existed).await
    }
}

pub fn analytics_schema() -> ResourceSchema {
    ResourceSchema::from_json(&serde_json::json!({
        "name": "wallets_analytics_balance",
        "version": "v1",
        "map": {"id":"0","period":"1","cohort":"2","transactionCount":"3","totalValue":"4","avgValue":"5","minValue":"6","maxValue":"7","operations":"8","recordCount":"9","consolidatedAt":"a","updatedAt":"b","foldSeq":"c"}
    }))
    .unwrap()
}

pub fn engine_with(store: DynStore, host: Arc<dyn RecordHost>, clock: Arc<dyn Clock>, options: serde_json::Value, holder: &str) -> (Engine, Arc<Field>) {
    let cfg = PluginConfig::parse(&options, &Environment::default()).unwrap();
    let engine = Engine::new(Context {
        store,
        host,
        reducer: None,
        events: Arc::new(NoEvents),
        clock,
        options: cfg.options,
        holder: holder.to_string(),
    });
    let analytics = cfg_has_analytics(&options).then(analytics_schema);
    let field = engine.register_with_analytics("wallets", "balance", tx_schema(), analytics);
    (engine, field)
}

pub fn clock() -> Arc<ManualClock> {
    ManualClock::at(1_760_000_000_000)
}

fn cfg_has_analytics(options: &serde_json::Value) -> bool {
    options.get("enableAnalytics").and_then(|v| v.as_bool()).unwrap_or(false)
}
