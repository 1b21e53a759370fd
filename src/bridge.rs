//! The object store for hosts whose `db.client` is not S3 (memory://, file://):
//! the same core logic drives the s3db.js client object through `host(call)`.
//! Bodies cross as UTF-8 text: everything this plugin stores is JSON or empty.
//!
//! The core's store speaks *wire* metadata (s3db.js's `u:`/`b:` escapes
//! applied). s3db.js's JS clients escape and unescape themselves, so values
//! are unescaped on the way in and escaped again on the way out.

use async_trait::async_trait;
use bytes::Bytes;
use ec_core::codec::metadata::{decode, encode_string, js_client_keeps, Decoded};
use ec_core::codec::move_to_body;
use ec_core::store::{Condition, ListPage, Metadata, Object, ObjectStore, PutRequest, StoreError, StoreErrorKind, StoreResult};
use serde_json::{json, Value};

use crate::host::{HostError, JsHost};

#[derive(Debug, Clone)]
pub struct BridgeStore {
    host: JsHost,
}

impl BridgeStore {
    pub fn new(host: JsHost) -> Self {
        BridgeStore { host }
    }

    async fn call(&self, op: &str, key: &str, call: Value) -> StoreResult<Value> {
        self.host.call(call).await.map_err(|e| to_store_error(op, key, e))
    }
}

fn to_store_error(op: &str, key: &str, e: HostError) -> StoreError {
    let kind = match e.kind.as_str() {
        "precondition" => StoreErrorKind::Precondition,
        "notfound" => StoreErrorKind::NotFound,
        "transient" => StoreErrorKind::Transient,
        _ => StoreErrorKind::Permanent,
    };
    StoreError::new(kind, format!("{op} {key}: {}", e.message))
}

fn unescape_metadata(m: &Metadata) -> serde_json::Map<String, Value> {
    m.iter()
        .filter_map(|(k, v)| match decode(v) {
            Decoded::Text(s) => Some((k.clone(), Value::String(s))),
            Decoded::Null => Some((k.clone(), Value::Null)),
            Decoded::Undefined => None,
        })
        .collect()
}

fn escape_metadata(m: &serde_json::Map<String, Value>) -> Metadata {
    m.iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), encode_string(s))),
            Value::Null => Some((k.clone(), "null".to_string())),
            Value::Number(_) | Value::Bool(_) => Some((k.clone(), encode_string(&v.to_string()))),
            _ => None,
        })
        .collect()
}

fn condition_json(c: &Condition) -> (Value, Value) {
    match c {
        Condition::None => (Value::Null, Value::Null),
        Condition::Absent => (Value::Null, json!("*")),
        Condition::Matches(etag) => (json!(etag), Value::Null),
    }
}

#[async_trait]
impl ObjectStore for BridgeStore {
    async fn put(&self, key: &str, mut req: PutRequest) -> StoreResult<String> {
        // The JS client re-escapes with s3db.js's own rules, which lose a few
        // strings (`null`, `undefined`, `font/woff2`); those go in the body.
        move_to_body(&mut req, js_client_keeps);
        let (if_match, if_none_match) = condition_json(&req.condition);
        let reply = self
            .call(
                "putObject",
                key,
                json!({
                    "op": "store.put", "key": key, "metadata": unescape_metadata(&req.metadata),
                    "body": String::from_utf8_lossy(&req.body), "contentType": req.content_type,
                    "ifMatch": if_match, "ifNoneMatch": if_none_match,
                }),
            )
            .await?;
        Ok(ec_core::store::normalize_etag(reply.get("etag").and_then(Value::as_str).unwrap_or("")))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Object>> {
        let reply = self.call("getObject", key, json!({ "op": "store.get", "key": key })).await?;
        if !reply.get("exists").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(None);
        }
        let metadata: Metadata = reply.get("metadata").and_then(Value::as_object).map(escape_metadata).unwrap_or_default();
        Ok(Some(Object {
            metadata,
            body: Bytes::from(reply.get("body").and_then(Value::as_str).unwrap_or("").to_string()),
            etag: ec_core::store::normalize_etag(reply.get("etag").and_then(Value::as_str).unwrap_or("")),
            content_type: reply.get("contentType").and_then(Value::as_str).map(str::to_string),
        }))
    }

    async fn delete(&self, key: &str, condition: Condition) -> StoreResult<()> {
        let (if_match, _) = condition_json(&condition);
        self.call("deleteObject", key, json!({ "op": "store.delete", "key": key, "ifMatch": if_match })).await.map(|_| ())
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<()> {
        let first = keys.first().cloned().unwrap_or_default();
        for chunk in keys.chunks(1000) {
            self.call("deleteObjects", &first, json!({ "op": "store.deleteMany", "keys": chunk })).await?;
        }
        Ok(())
    }

    async fn list(&self, prefix: &str, cursor: Option<&str>, max_keys: usize) -> StoreResult<ListPage> {
        let reply = self
            .call("listObjects", prefix, json!({ "op": "store.list", "prefix": prefix, "cursor": cursor, "maxKeys": max_keys }))
            .await?;
        let keys = reply
            .get("keys")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let next = reply.get("next").and_then(Value::as_str).map(str::to_string);
        Ok(ListPage { keys, next })
    }
}
