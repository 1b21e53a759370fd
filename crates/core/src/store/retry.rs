//! Retries transient failures (5xx, 503 SlowDown, timeouts, resets) with
//! exponential backoff and full jitter, a bounded number of times.
//!
//! A conditional write retried after a lost reply may find its own first
//! attempt already landed: the retry then fails its precondition. The store
//! reads the key back and reports success when it holds exactly what we wrote.

use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;

use super::*;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 8, base: Duration::from_millis(50), cap: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1 << attempt.min(16)).min(self.cap);
        let ms = rand::rng().random_range(0..=ceiling.as_millis() as u64);
        Duration::from_millis(ms)
    }
}

#[derive(Debug)]
pub struct RetryStore {
    inner: DynStore,
    policy: RetryPolicy,
}

impl RetryStore {
    pub fn new(inner: DynStore, policy: RetryPolicy) -> Self {
        RetryStore { inner, policy }
    }

    async fn run<T, F, Fut>(&self, mut op: F) -> (StoreResult<T>, bool)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let mut retried = false;
        for attempt in 0.. {
            match op().await {
                Err(e) if e.kind == StoreErrorKind::Transient && attempt + 1 < self.policy.attempts => {
                    retried = true;
                    tokio::time::sleep(self.policy.delay(attempt)).await;
                }
                Err(e) if e.kind == StoreErrorKind::Transient => {
                    let message = format!("{} (gave up after {} attempts)", e.message, self.policy.attempts);
                    return (Err(StoreError::new(e.kind, message)), retried);
                }
                other => return (other, retried),
            }
        }
        unreachable!("the loop returns")
    }
}

#[async_trait]
impl ObjectStore for RetryStore {
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let (result, retried) = self.run(|| self.inner.put(key, req.clone())).await;
        match result {
            Err(e) if retried && req.condition != Condition::None && matches!(e.kind, StoreErrorKind::Precondition | StoreErrorKind::NotFound) => {
                match self.get(key).await {
                    Ok(Some(obj)) if obj.body == req.body && obj.metadata == req.metadata => Ok(obj.etag),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        self.run(|| self.inner.get(key)).await.0
    }

    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        let (result, retried) = self.run(|| self.inner.delete(key, condition.clone())).await;
        match result {
            // Our first attempt deleted it; the retry found it gone.
            Err(e) if retried && e.kind == StoreErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        self.run(|| self.inner.delete_many(keys)).await.0
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        self.run(|| self.inner.list(prefix, cursor, max_keys)).await.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::faulty::FaultyStore;
    use crate::store::memory::MemoryStore;

    fn fast() -> RetryPolicy {
        RetryPolicy { attempts: 30, base: Duration::from_millis(1), cap: Duration::from_millis(2) }
    }

    #[tokio::test]
    async fn passes_conformance_through_heavy_faults() {
        // A third of calls fail before landing, a tenth land but lose their reply.
        let faulty = Arc::new(FaultyStore::new(MemoryStore::new()).flaky(330, 100, 42));
        let store = RetryStore::new(faulty.clone(), fast());
        conformance::run_all(&store).await;
        assert!(faulty.calls() > 40, "faults were injected over many calls");
    }

    #[tokio::test]
    async fn a_create_whose_reply_was_lost_is_still_ours() {
        // Half the replies are lost after the write landed: the retry meets
        // the first attempt's object and reads it back as ours.
        let inner = MemoryStore::new();
        let lossy_once = Arc::new(FaultyStore::new(inner.clone()).flaky(0, 500, 3));
        let store = RetryStore::new(lossy_once, fast());
        for i in 0..50 {
            let req = PutRequest { body: Bytes::from(format!("v{i}")), condition: Condition::Absent, ..Default::default() };
            store.put(&format!("k{i}"), req).await.expect("a lost reply is not a failure");
        }
        let other = PutRequest { body: Bytes::from("someone else"), condition: Condition::Absent, ..Default::default() };
        assert!(store.put("k0", other).await.unwrap_err().is_precondition(), "a real conflict still fails");
    }

    #[tokio::test]
    async fn gives_up_with_a_clear_error() {
        let faulty = Arc::new(FaultyStore::new(MemoryStore::new()).flaky(1000, 0, 5));
        let store = RetryStore::new(faulty, RetryPolicy { attempts: 3, ..fast() });
        let err = store.get("x").await.unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Transient);
        assert!(err.message.contains("gave up after 3 attempts"), "{err}");
    }
}
