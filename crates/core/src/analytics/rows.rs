//! Analytics rows as objects of the `{resource}_analytics_{field}` resource
//! (s3db.js `body-only` behaviour: the data is a JSON body, so every version
//! has its own ETag and rows can be compare-and-swapped), with the manual's
//! ids: `hour-2025-10-09T14`, `day-2025-10-09`, `month-2025-10`.

use bytes::Bytes;
use serde_json::json;

use crate::codec::{base62, decode_object, metadata, ResourceSchema};
use crate::config::Period;
use crate::error::{Error, Result};
use crate::store::{Metadata, Object, PutRequest};

use super::stats::{OpStats, Ops, Stats};

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub period: Period,
    pub cohort: String,
    pub stats: Stats,
    /// Distinct records with a transaction in the cohort.
    pub record_count: u64,
    pub consolidated_at: String,
    pub updated_at: String,
    /// The analytics roller's sequence number that last changed this row.
    pub fold_seq: u64,
}

pub fn row_id(period: Period, cohort: &str) -> String {
    format!("{}-{cohort}", period.name())
}

pub fn parse_row_id(id: &str) -> Option<(Period, &str)> {
    let (p, cohort) = id.split_once('-')?;
    Some((Period::parse(p)?, cohort))
}

/// The cohort of a transaction's hour label for `period`.
pub fn cohort_of(period: Period, cohort_hour: &str) -> String {
    match period {
        Period::Hour => cohort_hour.to_string(),
        Period::Day => cohort_hour.chars().take(10).collect(),
        Period::Month => cohort_hour.chars().take(7).collect(),
    }
}

impl Row {
    pub fn empty(period: Period, cohort: &str) -> Self {
        Row {
            period,
            cohort: cohort.to_string(),
            stats: Stats::default(),
            record_count: 0,
            consolidated_at: String::new(),
            updated_at: String::new(),
            fold_seq: 0,
        }
    }

    pub fn id(&self) -> String {
        row_id(self.period, &self.cohort)
    }
}

fn num(v: f64) -> serde_json::Value {
    json!(base62::encode_decimal(v))
}

pub fn encode(schema: &ResourceSchema, row: &Row) -> Result<PutRequest> {
    let s = &row.stats;
    let ops = json!({
        "add": { "count": s.ops.add.count, "sum": s.ops.add.sum },
        "sub": { "count": s.ops.sub.count, "sum": s.ops.sub.sum },
        "set": { "count": s.ops.set.count, "sum": s.ops.set.sum },
    });
    let mut fields: Vec<(&str, serde_json::Value)> = vec![
        ("period", json!(row.period.name())),
        ("cohort", json!(row.cohort)),
        ("transactionCount", num(s.count as f64)),
        ("totalValue", num(s.sum)),
        ("operations", json!(ops.to_string())),
        ("recordCount", num(row.record_count as f64)),
        ("consolidatedAt", json!(row.consolidated_at)),
        ("updatedAt", json!(row.updated_at)),
        ("foldSeq", num(row.fold_seq as f64)),
    ];
    if let Some(avg) = s.avg() {
        fields.push(("avgValue", num(avg)));
    }
    if let Some(min) = s.min {
        fields.push(("minValue", num(min)));
    }
    if let Some(max) = s.max {
        fields.push(("maxValue", num(max)));
    }
    let mut body = serde_json::Map::new();
    for (attr, v) in fields {
        let key = schema
            .map
            .get(attr)
            .ok_or_else(|| Error::invalid(format!("analytics resource {} has no attribute '{attr}'", schema.name)))?;
        body.insert(key.clone(), v);
    }
    body.insert("_v".into(), json!(schema.version));
    let mut meta = Metadata::new();
    meta.insert("_v".into(), schema.version.clone());
    let map_json = serde_json::to_string(&schema.map).expect("map serializes");
    meta.insert("_map".into(), metadata::encode_string(&map_json));
    Ok(PutRequest {
        metadata: meta,
        body: Bytes::from(serde_json::to_vec(&body).expect("row serializes")),
        content_type: Some("application/json".into()),
        ..Default::default()
    })
}

pub fn decode(schema: &ResourceSchema, id: &str, obj: &Object) -> Result<Row> {
    let (period, cohort) = parse_row_id(id).ok_or_else(|| Error::invalid(format!("analytics row id {id:?} is not period-cohort")))?;
    let attrs = decode_object(schema, obj);
    let text = |a: &str| attrs.get(a).cloned().flatten();
    let number = |a: &str| text(a).and_then(|s| base62::decode_decimal(&s)).filter(|v| v.is_finite());
    let ops: serde_json::Value = text("operations").and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(json!({}));
    let op = |name: &str| OpStats {
        count: ops[name]["count"].as_u64().unwrap_or(0),
        sum: ops[name]["sum"].as_f64().unwrap_or(0.0),
    };
    Ok(Row {
        period,
        cohort: cohort.to_string(),
        stats: Stats {
            count: number("transactionCount").unwrap_or(0.0) as u64,
            sum: number("totalValue").unwrap_or(0.0),
            min: number("minValue"),
            max: number("maxValue"),
            ops: Ops { add: op("add"), sub: op("sub"), set: op("set") },
        },
        record_count: number("recordCount").unwrap_or(0.0) as u64,
        consolidated_at: text("consolidatedAt").unwrap_or_default(),
        updated_at: text("updatedAt").unwrap_or_default(),
        fold_seq: number("foldSeq").unwrap_or(0.0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let schema = ResourceSchema::from_json(&json!({
            "name": "wallets_analytics_balance", "version": "v1",
            "map": {"id":"0","period":"1","cohort":"2","transactionCount":"3","totalValue":"4","avgValue":"5","minValue":"6","maxValue":"7","operations":"8","recordCount":"9","consolidatedAt":"a","updatedAt":"b","foldSeq":"c"}
        }))
        .unwrap();
        let mut row = Row::empty(Period::Hour, "2025-10-09T14");
        row.stats = Stats { count: 150, sum: -12.5, min: Some(-100.0), max: Some(500.0), ops: Ops { add: OpStats { count: 120, sum: 6000.0 }, ..Default::default() } };
        row.record_count = 45;
        row.fold_seq = 3;
        row.updated_at = "2025-10-09T14:55:00.000Z".into();
        let req = encode(&schema, &row).unwrap();
        // What s3db.js 21.6.2 writes for body-only (notes/s3db-codec.md).
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["3"], "2q");
        assert_eq!(body["4"], "-c.5");
        assert_eq!(body["_v"], "v1");
        let obj = Object { metadata: req.metadata, body: req.body, etag: "e".into(), content_type: None };
        assert_eq!(decode(&schema, "hour-2025-10-09T14", &obj).unwrap(), row);
        assert_eq!(row.id(), "hour-2025-10-09T14");
    }
}
