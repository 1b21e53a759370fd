//! An in-process store with real conditional-write semantics, for unit tests
//! and simulation. ETags hash body *and* metadata so versions differ.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;

#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Object>>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn len(&self) -> usize {
        self.objects.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }
}

fn etag_of(req: &PutRequest, generation: u64) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    req.body.hash(&mut h);
    req.metadata.hash(&mut h);
    generation.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn check(current: Option<&Object>, cond: &Condition, key: &str) -> StoreResult<()> {
    match (cond, current) {
        (Condition::None, _) => Ok(()),
        (Condition::Absent, None) => Ok(()),
        (Condition::Absent, Some(_)) => Err(StoreError::new(StoreErrorKind::Precondition, format!("{key} already exists"))),
        (Condition::Matches(_), None) => Err(StoreError::new(StoreErrorKind::NotFound, format!("{key} does not exist"))),
        (Condition::Matches(etag), Some(obj)) if normalize_etag(etag) == obj.etag => Ok(()),
        (Condition::Matches(_), Some(_)) => Err(StoreError::new(StoreErrorKind::Precondition, format!("{key} changed"))),
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let mut objects = self.objects.lock().unwrap();
        check(objects.get(key), &req.condition, key)?;
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let etag = etag_of(&req, GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        objects.insert(
            key.to_string(),
            Object { metadata: req.metadata, body: req.body, etag: etag.clone(), content_type: req.content_type },
        );
        Ok(etag)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        let mut objects = self.objects.lock().unwrap();
        match (&condition, objects.get(key)) {
            (Condition::Matches(_), None) => return Ok(()),
            (Condition::Absent, _) => return Err(StoreError::new(StoreErrorKind::Permanent, "delete cannot require absence")),
            _ => check(objects.get(key), &condition, key)?,
        }
        objects.remove(key);
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        let objects = self.objects.lock().unwrap();
        let lower = match cursor {
            Some(c) => std::ops::Bound::Excluded(c),
            None => std::ops::Bound::Included(prefix),
        };
        let mut keys: Vec<String> = objects
            .range::<str, _>((lower, std::ops::Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(max_keys + 1)
            .cloned()
            .collect();
        let next = if keys.len() > max_keys {
            keys.truncate(max_keys);
            keys.last().cloned()
        } else {
            None
        };
        Ok(ListPage { keys, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_conformance() {
        conformance::run_all(&*MemoryStore::new()).await;
    }
}
