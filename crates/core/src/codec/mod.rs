//! The s3db.js object codec: keys, metadata keys from the resource's schema
//! map, value encodings, and the body-overflow split. What Rust writes here,
//! s3db.js reads as its own, and the reverse (see `notes/s3db-codec.md`).

pub mod base62;
pub mod metadata;
pub mod transaction;

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::store::{Metadata, Object, PutRequest};

/// S3 allows 2 KB of user metadata (key + value bytes); leave headroom.
const METADATA_BUDGET: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub name: String,
    /// Sorted by name, as s3db.js orders them in keys.
    pub fields: Vec<String>,
}

/// What the JS layer reads off `resource.schema` and `resource.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSchema {
    pub name: String,
    /// `_v`, e.g. `"v1"`.
    pub version: String,
    /// Attribute name -> metadata key.
    pub map: BTreeMap<String, String>,
    pub partitions: Vec<Partition>,
}

#[derive(Deserialize)]
struct RawSchema {
    name: String,
    version: String,
    map: BTreeMap<String, String>,
    #[serde(default)]
    partitions: BTreeMap<String, RawPartition>,
}

#[derive(Deserialize)]
struct RawPartition {
    fields: BTreeMap<String, serde_json::Value>,
}

impl ResourceSchema {
    pub fn from_json(v: &serde_json::Value) -> Result<Self> {
        let raw: RawSchema =
            serde_json::from_value(v.clone()).map_err(|e| Error::invalid(format!("resource schema from s3db.js is malformed: {e}")))?;
        let partitions = raw
            .partitions
            .into_iter()
            .map(|(name, p)| Partition { name, fields: p.fields.into_keys().collect() })
            .collect();
        Ok(ResourceSchema { name: raw.name, version: raw.version, map: raw.map, partitions })
    }

    pub fn data_prefix(&self) -> String {
        format!("resource={}/data/", self.name)
    }

    pub fn data_key(&self, id: &str) -> String {
        format!("resource={}/data/id={id}", self.name)
    }

    pub fn partition_prefix(&self, partition: &str, values: &[(&str, &str)]) -> String {
        let mut key = format!("resource={}/partition={partition}", self.name);
        for (f, v) in values {
            key.push_str(&format!("/{f}={v}"));
        }
        key.push('/');
        key
    }

    /// Reference keys for an object whose attributes are `get(attr)`;
    /// a partition with a missing field gets no reference, as in s3db.js.
    pub fn partition_keys<'a>(&self, id: &str, get: impl Fn(&str) -> Option<&'a str>) -> Vec<String> {
        self.partitions
            .iter()
            .filter_map(|p| {
                let values: Option<Vec<(&str, &str)>> = p.fields.iter().map(|f| get(f).map(|v| (f.as_str(), v))).collect();
                Some(format!("{}id={id}", self.partition_prefix(&p.name, &values?)))
            })
            .collect()
    }

    /// The empty object s3db.js writes as a partition reference.
    pub fn reference(&self) -> PutRequest {
        let mut metadata = Metadata::new();
        metadata.insert("_v".into(), self.version.clone());
        PutRequest { metadata, ..Default::default() }
    }

    fn key_of(&self, attr: &str) -> Result<&str> {
        self.map
            .get(attr)
            .map(String::as_str)
            .ok_or_else(|| Error::invalid(format!("resource {} has no attribute '{attr}' in its schema map", self.name)))
    }
}

/// An attribute value before s3db.js's encodings.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
}

impl Value {
    /// Schema-level encoding (what s3db.js's mapper produces).
    fn schema_encoded(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => base62::encode_decimal(*n),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        }
    }
}

/// Encodes attributes as s3db.js's `body-overflow` behaviour stores them:
/// everything in metadata while it fits, the largest values in a JSON body
/// when it does not.
pub fn encode_object(schema: &ResourceSchema, attrs: &[(&str, Value)]) -> Result<PutRequest> {
    let mut fields: Vec<(String, String, String)> = Vec::with_capacity(attrs.len());
    for (attr, value) in attrs {
        let key = schema.key_of(attr)?.to_string();
        let schema_value = value.schema_encoded();
        let wire = metadata::encode_string(&schema_value);
        fields.push((key, schema_value, wire));
    }
    let mut metadata = Metadata::new();
    metadata.insert("_v".into(), schema.version.clone());
    let mut used = 2 + schema.version.len() + "_overflow".len() + 4;
    fields.sort_by_key(|(k, _, w)| k.len() + w.len());
    let mut body = serde_json::Map::new();
    for (key, schema_value, wire) in fields {
        if body.is_empty() && used + key.len() + wire.len() <= METADATA_BUDGET {
            used += key.len() + wire.len();
            metadata.insert(key, wire);
        } else {
            body.insert(key, serde_json::Value::String(schema_value));
        }
    }
    if body.is_empty() {
        return Ok(PutRequest { metadata, ..Default::default() });
    }
    metadata.insert("_overflow".into(), "true".into());
    Ok(PutRequest {
        metadata,
        body: Bytes::from(serde_json::to_vec(&body).expect("strings serialize")),
        content_type: Some("application/json".into()),
        ..Default::default()
    })
}

/// Moves the metadata fields whose text `keep` rejects into the JSON body,
/// as body-overflow stores them (readers merge the body under the metadata).
/// For stores that re-escape metadata themselves and cannot hold some strings
/// (see [`metadata::js_client_keeps`]). `_*` keys stay; a body that is not a
/// JSON object is left alone.
pub fn move_to_body(req: &mut PutRequest, keep: impl Fn(&str) -> bool) {
    let moving: Vec<(String, String)> = req
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .filter_map(|(k, v)| match metadata::decode(v) {
            metadata::Decoded::Text(s) if !keep(&s) => Some((k.clone(), s)),
            _ => None,
        })
        .collect();
    if moving.is_empty() {
        return;
    }
    let mut body = if req.body.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&req.body) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return,
        }
    };
    for (k, s) in moving {
        req.metadata.remove(&k);
        body.insert(k, serde_json::Value::String(s));
    }
    req.metadata.insert("_overflow".into(), "true".into());
    req.body = Bytes::from(serde_json::to_vec(&body).expect("strings serialize"));
    req.content_type = Some("application/json".into());
}

/// Attribute name -> schema-level string, from metadata merged over the body
/// (metadata wins, `_*` keys ignored), as s3db.js's `get` reads it.
pub fn decode_object(schema: &ResourceSchema, obj: &Object) -> BTreeMap<String, Option<String>> {
    let reversed: BTreeMap<&str, &str> = schema.map.iter().map(|(a, k)| (k.as_str(), a.as_str())).collect();
    let mut out = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if key.starts_with('_') {
            return;
        }
        let attr = reversed.get(key).copied().unwrap_or(key);
        out.insert(attr.to_string(), value);
    };
    if !obj.body.is_empty() {
        if let Ok(serde_json::Value::Object(body)) = serde_json::from_slice::<serde_json::Value>(&obj.body) {
            for (k, v) in body {
                let text = match v {
                    serde_json::Value::String(s) => Some(s),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                };
                put(&k, text);
            }
        }
    }
    for (k, v) in &obj.metadata {
        match metadata::decode(v) {
            metadata::Decoded::Text(s) => put(&k.to_ascii_lowercase(), Some(s)),
            metadata::Decoded::Null => put(k, None),
            metadata::Decoded::Undefined => {}
        }
    }
    out
}

/// s3db.js's `toBool`.
pub fn decode_bool(s: &str) -> bool {
    matches!(s, "1" | "true" | "yes" | "y")
}
