//! A store that fails on purpose, for simulation tests: it can "die" after a
//! number of operations (every later call fails, as if the process were
//! killed at that instruction), or fail a share of calls at random.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};

use super::*;

#[derive(Debug)]
pub struct FaultyStore {
    inner: DynStore,
    calls: AtomicU64,
    die_after: AtomicU64,
    /// Per-mille of calls that fail transiently *before* reaching the inner store.
    fail_before_per_mille: u32,
    /// Per-mille of calls that reach the inner store but whose reply is lost.
    lose_reply_per_mille: u32,
    rng: Mutex<rand::rngs::StdRng>,
}

impl FaultyStore {
    pub fn new(inner: DynStore) -> Self {
        FaultyStore {
            inner,
            calls: AtomicU64::new(0),
            die_after: AtomicU64::new(u64::MAX),
            fail_before_per_mille: 0,
            lose_reply_per_mille: 0,
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(7)),
        }
    }

    /// Every call after the first `n` fails.
    pub fn dying_after(self, n: u64) -> Self {
        self.die_after.store(n, Ordering::SeqCst);
        self
    }

    pub fn flaky(mut self, fail_before_per_mille: u32, lose_reply_per_mille: u32, seed: u64) -> Self {
        self.fail_before_per_mille = fail_before_per_mille;
        self.lose_reply_per_mille = lose_reply_per_mille;
        self.rng = Mutex::new(rand::rngs::StdRng::seed_from_u64(seed));
        self
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn dead(&self) -> bool {
        self.calls() > self.die_after.load(Ordering::SeqCst)
    }

    fn before(&self, op: &str, key: &str) -> StoreResult<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.die_after.load(Ordering::SeqCst) {
            return Err(StoreError::new(StoreErrorKind::Transient, format!("{op} {key}: process is dead")));
        }
        if self.fail_before_per_mille > 0 && self.rng.lock().unwrap().random_range(0..1000) < self.fail_before_per_mille {
            return Err(StoreError::new(StoreErrorKind::Transient, format!("{op} {key}: injected 503")));
        }
        Ok(())
    }

    fn after<T>(&self, op: &str, key: &str, r: StoreResult<T>) -> StoreResult<T> {
        if r.is_ok() && self.lose_reply_per_mille > 0 && self.rng.lock().unwrap().random_range(0..1000) < self.lose_reply_per_mille {
            return Err(StoreError::new(StoreErrorKind::Transient, format!("{op} {key}: injected connection reset after the request landed")));
        }
        r
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        self.before("put", key)?;
        let r = self.inner.put(key, req).await;
        self.after("put", key, r)
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        self.before("get", key)?;
        let r = self.inner.get(key).await;
        self.after("get", key, r)
    }
    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        self.before("delete", key)?;
        let r = self.inner.delete(key, condition).await;
        self.after("delete", key, r)
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        let first = keys.first().map(String::as_str).unwrap_or("");
        self.before("delete_many", first)?;
        let r = self.inner.delete_many(keys).await;
        self.after("delete_many", first, r)
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        self.before("list", prefix)?;
        let r = self.inner.list(prefix, cursor, max_keys).await;
        self.after("list", prefix, r)
    }
}
