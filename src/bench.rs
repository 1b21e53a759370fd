//! The floor an `add()` can reach: plain PutObjects from Rust through the same
//! store stack the engine uses, for the benchmark to compare against.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ec_core::store::{ObjectStore, PutRequest};
use futures::stream::{self, StreamExt};
use napi::Result;
use napi_derive::napi;
use serde_json::Value;

use crate::convert::js_error_text;

/// PUTs `count` objects of `bytes` bytes under `prefix`, `concurrency` at a
/// time, to the S3 store `store_json` describes; resolves `{ ms, count }`.
#[napi]
pub async fn bench_put_objects(store_json: String, prefix: String, count: u32, concurrency: u32, bytes: u32) -> Result<Value> {
    let store: Arc<dyn ObjectStore> = crate::engine::s3_store_from_json(&store_json).map_err(|e| js_error_text("EC_INVALID_ARGUMENT", &e))?;
    let body = Bytes::from(vec![b'x'; bytes as usize]);
    let started = Instant::now();
    let puts: Vec<_> = (0..count)
        .map(|i| {
            let (store, body, key) = (Arc::clone(&store), body.clone(), format!("{prefix}/{i:08}"));
            async move { store.put(&key, PutRequest { body, ..Default::default() }).await }
        })
        .collect();
    let results: Vec<_> = stream::iter(puts).buffer_unordered(concurrency.max(1) as usize).collect().await;
    if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
        return Err(js_error_text("EC_STORAGE_FAILED", &e.message));
    }
    Ok(serde_json::json!({ "ms": started.elapsed().as_secs_f64() * 1000.0, "count": count }))
}
