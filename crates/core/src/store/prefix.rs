//! Roots a store under a key prefix (s3db.js's connection-string path).

use async_trait::async_trait;

use super::*;

#[derive(Debug)]
pub struct PrefixStore {
    inner: DynStore,
    /// Empty, or ends with `/`.
    prefix: String,
}

impl PrefixStore {
    pub fn new(inner: DynStore, prefix: &str) -> Self {
        let trimmed = prefix.trim_matches('/');
        let prefix = if trimmed.is_empty() { String::new() } else { format!("{trimmed}/") };
        PrefixStore { inner, prefix }
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn strip<'a>(&self, key: &'a str) -> &'a str {
        key.strip_prefix(&self.prefix).unwrap_or(key)
    }
}

#[async_trait]
impl ObjectStore for PrefixStore {
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        self.inner.put(&self.full(key), req).await
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        self.inner.get(&self.full(key)).await
    }
    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        self.inner.delete(&self.full(key), condition).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        let full: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        self.inner.delete_many(&full).await
    }
    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        let page = self.inner.list(&self.full(prefix), cursor, max_keys).await?;
        Ok(ListPage { keys: page.keys.iter().map(|k| self.strip(k).to_string()).collect(), next: page.next })
    }
}
