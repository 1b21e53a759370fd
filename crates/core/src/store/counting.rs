//! Counts requests by type: the figures the benchmarks and tests report.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::Serialize;

use super::*;

#[derive(Debug, Default)]
struct Counters {
    put: AtomicU64,
    get: AtomicU64,
    delete: AtomicU64,
    delete_many: AtomicU64,
    list: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub put: u64,
    pub get: u64,
    pub delete: u64,
    pub delete_many: u64,
    pub list: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.put + self.get + self.delete + self.delete_many + self.list
    }
}

#[derive(Debug)]
pub struct CountingStore {
    inner: DynStore,
    counters: Counters,
}

impl CountingStore {
    pub fn new(inner: DynStore) -> Self {
        CountingStore { inner, counters: Counters::default() }
    }

    pub fn counts(&self) -> RequestCounts {
        let c = &self.counters;
        RequestCounts {
            put: c.put.load(Ordering::Relaxed),
            get: c.get.load(Ordering::Relaxed),
            delete: c.delete.load(Ordering::Relaxed),
            delete_many: c.delete_many.load(Ordering::Relaxed),
            list: c.list.load(Ordering::Relaxed),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        bump(&self.counters.put);
        self.inner.put(key, req).await
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        bump(&self.counters.get);
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        bump(&self.counters.delete);
        self.inner.delete(key, condition).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        for _ in keys.chunks(1000) {
            bump(&self.counters.delete_many);
        }
        self.inner.delete_many(keys).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        bump(&self.counters.list);
        self.inner.list(prefix, cursor, max_keys).await
    }
}
