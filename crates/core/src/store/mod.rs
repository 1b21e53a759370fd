//! The object store: one trait, a module per backend, and behaviour layered
//! as wrapping stores (prefix, counting, retry, faults) rather than flags.
//!
//! Keys are relative to the store's root. Every backend must pass the shared
//! conformance suite in `conformance.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub mod aws;
pub mod conformance;
pub mod counting;
pub mod faulty;
pub mod memory;
pub mod prefix;
pub mod retry;

pub type Metadata = BTreeMap<String, String>;

/// What a write requires of the key's current state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Condition {
    #[default]
    None,
    /// `If-None-Match: *`: create only.
    Absent,
    /// `If-Match: <etag>`: compare-and-swap on the current version.
    Matches(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PutRequest {
    pub metadata: Metadata,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub condition: Condition,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub metadata: Metadata,
    pub body: Bytes,
    pub etag: String,
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when this was the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// 412, or 409 `ConditionalRequestConflict`: the condition did not hold.
    Precondition,
    /// 404 where the operation needed the object.
    NotFound,
    /// Worth retrying: 5xx, 503 SlowDown, timeouts, connection resets.
    Transient,
    /// Anything else: credentials, bad request, missing bucket.
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub message: String,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError { kind, message: message.into() }
    }
    pub fn is_precondition(&self) -> bool {
        self.kind == StoreErrorKind::Precondition
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        crate::error::Error::storage(e.message)
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug + 'static {
    /// Writes the object; returns its new ETag.
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String>;
    /// `Ok(None)` when the key does not exist.
    async fn get(&self, key: &str) -> StoreResult<Option<Object>>;
    /// Deletes the key; deleting a missing key succeeds. With `Condition::Matches`
    /// the delete only happens while the ETag is unchanged (412 otherwise).
    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()>;
    /// Deletes up to 1000 keys in one request where the backend can.
    async fn delete_many(&self, keys: &[String]) -> StoreResult<()>;
    /// Keys under `prefix` in lexicographic order, at most `max_keys`.
    /// `cursor` is the `next` of the previous page.
    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage>;
}

pub type DynStore = Arc<dyn ObjectStore>;

/// Every key under `prefix`, page by page.
pub async fn list_all(store: &dyn ObjectStore, prefix: &str) -> StoreResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list(prefix, cursor.as_deref(), 1000).await?;
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// ETags are compared without their quotes: S3 quotes them, some servers do not.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_string()
}
