//! Transactions as objects of the `{resource}_transactions_{field}` resource.

use crate::clock::parse_iso;
use crate::cohort::Cohort;
use crate::error::{Error, Result};
use crate::store::{Object, PutRequest};
use crate::txn::{Operation, Transaction};

use super::{decode_bool, decode_object, encode_object, ResourceSchema, Value};

pub fn encode(schema: &ResourceSchema, t: &Transaction) -> Result<PutRequest> {
    let mut attrs = vec![
        ("originalId", Value::Str(t.original_id.clone())),
        ("field", Value::Str(t.field.clone())),
        ("value", Value::Num(t.value)),
        ("operation", Value::Str(t.operation.name().into())),
        ("timestamp", Value::Str(t.timestamp())),
        ("cohortHour", Value::Str(t.cohort.hour.clone())),
        ("cohortDate", Value::Str(t.cohort.date.clone())),
        ("cohortMonth", Value::Str(t.cohort.month.clone())),
        ("applied", Value::Bool(t.applied)),
    ];
    if let Some(source) = &t.source {
        attrs.push(("source", Value::Str(source.clone())));
    }
    encode_object(schema, &attrs)
}

/// The partition references s3db.js keeps for this transaction.
pub fn partition_keys(schema: &ResourceSchema, t: &Transaction) -> Vec<String> {
    schema.partition_keys(&t.id, |f| match f {
        "cohortHour" => Some(t.cohort.hour.as_str()),
        "cohortDate" => Some(t.cohort.date.as_str()),
        "cohortMonth" => Some(t.cohort.month.as_str()),
        "originalId" => Some(t.original_id.as_str()),
        "field" => Some(t.field.as_str()),
        "operation" => Some(t.operation.name()),
        _ => None,
    })
}

pub fn decode(schema: &ResourceSchema, id: &str, obj: &Object) -> Result<Transaction> {
    let attrs = decode_object(schema, obj);
    let text = |name: &str| attrs.get(name).cloned().flatten();
    let required = |name: &str| {
        text(name).ok_or_else(|| Error::invalid(format!("transaction {id} in {} has no '{name}'", schema.name)))
    };
    let value_raw = required("value")?;
    let value = super::base62::decode_decimal(&value_raw)
        .filter(|v| v.is_finite())
        .ok_or_else(|| Error::invalid(format!("transaction {id}: value {value_raw:?} is not a number")))?;
    let op_raw = required("operation")?;
    let operation = Operation::parse(&op_raw)
        .ok_or_else(|| Error::invalid(format!("transaction {id}: unknown operation {op_raw:?}")))?;
    let timestamp = required("timestamp")?;
    let timestamp_ms =
        parse_iso(&timestamp).ok_or_else(|| Error::invalid(format!("transaction {id}: timestamp {timestamp:?} is not ISO-8601")))?;
    let hour = required("cohortHour")?;
    let date = text("cohortDate").unwrap_or_else(|| hour.chars().take(10).collect());
    let month = text("cohortMonth").unwrap_or_else(|| date.chars().take(7).collect());
    Ok(Transaction {
        id: id.to_string(),
        original_id: required("originalId")?,
        field: required("field")?,
        value,
        operation,
        timestamp_ms,
        cohort: Cohort { hour, date, month },
        source: text("source"),
        applied: text("applied").is_some_and(|s| decode_bool(&s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Metadata, Object};
    use bytes::Bytes;

    fn schema() -> ResourceSchema {
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

    fn sample() -> Transaction {
        Transaction {
            id: "int0".into(),
            original_id: "wallet-1".into(),
            field: "balance".into(),
            value: -12.5,
            operation: Operation::Add,
            timestamp_ms: parse_iso("2024-03-05T14:07:09.123Z").unwrap(),
            cohort: Cohort { hour: "2024-03-05T14".into(), date: "2024-03-05".into(), month: "2024-03".into() },
            source: Some("api".into()),
            applied: true,
        }
    }

    #[test]
    fn encodes_like_s3db() {
        let req = encode(&schema(), &sample()).unwrap();
        let expected: Metadata = [
            ("1", "wallet-1"), ("2", "balance"), ("3", "-c.5"), ("4", "add"), ("5", "2024-03-05T14:07:09.123Z"),
            ("6", "2024-03-05T14"), ("7", "2024-03-05"), ("8", "2024-03"), ("9", "api"), ("_v", "v1"), ("a", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(req.metadata, expected);
        assert!(req.body.is_empty());
        assert_eq!(
            partition_keys(&schema(), &sample()),
            vec![
                "resource=wallets_transactions_balance/partition=byDay/cohortDate=2024-03-05/id=int0",
                "resource=wallets_transactions_balance/partition=byHour/cohortHour=2024-03-05T14/id=int0",
                "resource=wallets_transactions_balance/partition=byMonth/cohortMonth=2024-03/id=int0",
            ]
        );
    }

    #[test]
    fn long_sources_overflow_into_the_body_and_read_back() {
        let mut t = sample();
        t.source = Some("ção".repeat(400));
        let req = encode(&schema(), &t).unwrap();
        assert_eq!(req.metadata.get("_overflow").map(String::as_str), Some("true"));
        assert_eq!(req.content_type.as_deref(), Some("application/json"));
        let meta_bytes: usize = req.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(meta_bytes <= 2047, "{meta_bytes}");
        let obj = Object { metadata: req.metadata, body: req.body, etag: "x".into(), content_type: None };
        assert_eq!(decode(&schema(), "int0", &obj).unwrap(), t);
    }

    #[test]
    fn strings_js_clients_cannot_keep_move_to_the_body() {
        use crate::codec::{metadata::js_client_keeps, move_to_body};
        for (source, long) in [("null", false), ("undefined", false), ("font/woff2", false), ("null", true)] {
            let mut t = sample();
            t.source = Some(source.into());
            if long {
                t.original_id = "w".repeat(2100); // forces an overflow body already
            }
            let mut req = encode(&schema(), &t).unwrap();
            move_to_body(&mut req, js_client_keeps);
            assert!(!req.metadata.contains_key("9"), "{source}: {:?}", req.metadata);
            assert_eq!(req.metadata.get("_overflow").map(String::as_str), Some("true"));
            assert_eq!(req.content_type.as_deref(), Some("application/json"));
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["9"], source);
            assert_eq!(body.get("1").is_some(), long);
            let obj = Object { metadata: req.metadata, body: req.body, etag: "x".into(), content_type: None };
            assert_eq!(decode(&schema(), "int0", &obj).unwrap(), t);
        }
        // Everything else stays as encoded.
        let mut t = sample();
        t.source = Some("pão ção".into());
        let before = encode(&schema(), &t).unwrap();
        let mut after = before.clone();
        move_to_body(&mut after, js_client_keeps);
        assert_eq!(after, before);
    }

    #[test]
    fn reads_what_s3db_inserted() {
        // Metadata s3db.js 21.6.2 stored for an update (junk `_` keys included).
        let metadata: Metadata = [
            ("1", "u:wallet-%C3%A7"), ("2", "balance"), ("3", "2.5"), ("4", "sub"), ("5", "2024-03-05T14:07:09.123Z"),
            ("6", "2024-03-06T01"), ("7", "2024-03-06"), ("8", "2024-03"), ("9", "d:c"), ("_v", "v1"), ("a", "0"),
            ("_etag", "\"abc\""), ("_contentlength", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let obj = Object { metadata, body: Bytes::new(), etag: "x".into(), content_type: None };
        let t = decode(&schema(), "tx1", &obj).unwrap();
        assert_eq!(t.original_id, "wallet-ç");
        assert_eq!(t.value, 2.5);
        assert_eq!(t.operation, Operation::Sub);
        assert_eq!(t.source.as_deref(), Some("completed"));
        assert!(!t.applied);
        assert_eq!(t.cohort.date, "2024-03-06");
    }
}
