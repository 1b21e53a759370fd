//! `getAnalytics` and `getTopRecords`: a LIST of the rows in range and one GET
//! each (or the cohort's 16 record shards), whatever the transaction count.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use crate::config::{Metric, Period};
use crate::engine::Field;
use crate::error::{Error, Result};

use super::roller::{shard_key, Shard, SHARDS};
use super::rows::{row_id, Row};
use super::stats::RecordShare;

#[derive(Debug, Clone, PartialEq)]
enum Range {
    All,
    /// Cohorts starting with this prefix (a day's hours, a month's days, a year's months…).
    Prefix(String),
    /// Inclusive cohort bounds, compared on their first `len` characters.
    Between { from: String, to: String, len: usize },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsQuery {
    period: Period,
    range: Range,
    breakdown: bool,
    metrics: Vec<Metric>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::range(msg.into())
}

fn get_str<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(v) => Err(Error::invalid(format!("getAnalytics: '{key}' must be a string, got {v}"))),
    }
}

fn check_date(key: &str, s: &str) -> Result<()> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|_| ()).map_err(|_| bad(format!("'{key}' must be a date YYYY-MM-DD, got {s:?}")))
}

fn check_month(key: &str, s: &str) -> Result<()> {
    chrono::NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 7)
        .map(|_| ())
        .ok_or_else(|| bad(format!("'{key}' must be a month YYYY-MM, got {s:?}")))
}

fn check_hour(key: &str, s: &str) -> Result<()> {
    let ok = s.len() == 13
        && s.as_bytes()[10] == b'T'
        && check_date(key, &s[..10]).is_ok()
        && s[11..].parse::<u32>().is_ok_and(|h| h < 24);
    if ok {
        Ok(())
    } else {
        Err(bad(format!("'{key}' must be an hour YYYY-MM-DDTHH, got {s:?}")))
    }
}

fn parse_period(o: &Map<String, Value>, enabled: &[Period], default: Period) -> Result<Period> {
    let period = match get_str(o, "period")? {
        None => default,
        Some(p) => Period::parse(p).ok_or_else(|| bad(format!("unknown period {p:?}; accepted: 'hour', 'day', 'month'")))?,
    };
    if !enabled.contains(&period) {
        let list = enabled.iter().map(|p| format!("'{}'", p.name())).collect::<Vec<_>>().join(", ");
        return Err(bad(format!("period '{}' is not rolled up (analyticsConfig.periods: {list})", period.name())));
    }
    Ok(period)
}

impl AnalyticsQuery {
    pub fn parse(v: &Value, enabled: &[Period], configured: &[Metric]) -> Result<Self> {
        let empty = Map::new();
        let o = match v {
            Value::Null => &empty,
            Value::Object(o) => o,
            other => return Err(Error::invalid(format!("getAnalytics: options must be an object, got {other}"))),
        };
        let period = parse_period(o, enabled, Period::Day)?;
        let (date, start, end, month) = (get_str(o, "date")?, get_str(o, "startDate")?, get_str(o, "endDate")?, get_str(o, "month")?);
        let year = match o.get("year") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .filter(|y| (1970..=9999).contains(y))
                    .ok_or_else(|| bad(format!("'year' must be a year such as 2025, got {v}")))?,
            ),
        };
        let range = if start.is_some() || end.is_some() {
            let (Some(from), Some(to)) = (start, end) else {
                return Err(bad("'startDate' and 'endDate' go together"));
            };
            let len = if period == Period::Month && from.len() == 7 { 7 } else { 10 };
            for (k, s) in [("startDate", from), ("endDate", to)] {
                if len == 7 { check_month(k, s)? } else { check_date(k, s)? }
            }
            if from > to {
                return Err(bad(format!("'startDate' ({from}) is after 'endDate' ({to})")));
            }
            Range::Between { from: from[..len].to_string(), to: to[..len].to_string(), len }
        } else if let Some(d) = date {
            match period {
                Period::Hour if d.len() == 13 => {
                    check_hour("date", d)?;
                    Range::Prefix(d.to_string())
                }
                Period::Month if d.len() == 7 => {
                    check_month("date", d)?;
                    Range::Prefix(d.to_string())
                }
                Period::Hour | Period::Day => {
                    check_date("date", d)?;
                    Range::Prefix(if period == Period::Hour { format!("{d}T") } else { d.to_string() })
                }
                Period::Month => {
                    check_date("date", d)?;
                    Range::Prefix(d[..7].to_string())
                }
            }
        } else if let Some(m) = month {
            check_month("month", m)?;
            Range::Prefix(if period == Period::Month { m.to_string() } else { format!("{m}-") })
        } else if let Some(y) = year {
            Range::Prefix(format!("{y:04}-"))
        } else {
            Range::All
        };
        let breakdown = match get_str(o, "breakdown")? {
            None => false,
            Some("operations") => true,
            Some(b) => return Err(bad(format!("unknown breakdown {b:?}; accepted: 'operations'"))),
        };
        let metrics = match o.get("metrics") {
            None | Some(Value::Null) => configured.to_vec(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|m| {
                    let name = m.as_str().unwrap_or("");
                    Metric::ALL
                        .into_iter()
                        .find(|x| x.name() == name)
                        .ok_or_else(|| bad(format!("unknown metric {m}; accepted: 'count', 'sum', 'avg', 'min', 'max'")))
                })
                .collect::<Result<_>>()?,
            Some(v) => return Err(Error::invalid(format!("getAnalytics: 'metrics' must be an array, got {v}"))),
        };
        Ok(AnalyticsQuery { period, range, breakdown, metrics })
    }
}

fn ops_json(row: &Row) -> (Value, Value, Value) {
    let o = &row.stats.ops;
    let f = |s: &super::stats::OpStats| json!({ "count": s.count, "sum": s.sum });
    (f(&o.add), f(&o.sub), f(&o.set))
}

fn row_json(row: &Row, q: &AnalyticsQuery) -> Value {
    let mut out = Map::new();
    out.insert("cohort".into(), json!(row.cohort));
    if q.breakdown {
        let (add, sub, set) = ops_json(row);
        out.insert("add".into(), add);
        out.insert("sub".into(), sub);
        out.insert("set".into(), set);
        return Value::Object(out);
    }
    let s = &row.stats;
    for m in &q.metrics {
        let v = match m {
            Metric::Count => json!(s.count),
            Metric::Sum => json!(s.sum),
            Metric::Avg => json!(s.avg()),
            Metric::Min => json!(s.min),
            Metric::Max => json!(s.max),
        };
        out.insert(m.name().into(), v);
    }
    out.insert("recordCount".into(), json!(row.record_count));
    Value::Object(out)
}

impl Field {
    fn analytics_config(&self) -> Result<&crate::config::AnalyticsConfig> {
        match (&self.ctx.options.analytics, &self.analytics) {
            (Some(cfg), Some(_)) => Ok(cfg),
            _ => Err(bad(format!("analytics are not enabled for {}.{} (enableAnalytics: true)", self.resource(), self.name()))),
        }
    }

    pub async fn analytics(&self, options: &Value) -> Result<Vec<Value>> {
        let cfg = self.analytics_config()?;
        let q = AnalyticsQuery::parse(options, &cfg.periods, &cfg.metrics)?;
        self.fold_analytics().await?;
        let prefix = match &q.range {
            Range::All => row_id(q.period, ""),
            Range::Prefix(p) => row_id(q.period, p),
            Range::Between { from, to, .. } => row_id(q.period, &common_prefix(from, to)),
        };
        let mut rows = self.rows_with_prefix(&prefix).await?;
        if let Range::Between { from, to, len } = &q.range {
            rows.retain(|r| {
                let c = &r.cohort[..(*len).min(r.cohort.len())];
                c >= from.as_str() && c <= to.as_str()
            });
        }
        rows.sort_by(|a, b| a.cohort.cmp(&b.cohort));
        Ok(rows.iter().map(|r| row_json(r, &q)).collect())
    }

    pub async fn top_records(&self, options: &Value) -> Result<Vec<Value>> {
        let cfg = self.analytics_config()?;
        let empty = Map::new();
        let o = options.as_object().unwrap_or(&empty);
        let period = parse_period(o, &cfg.periods, Period::Day)?;
        let date = get_str(o, "date")?.ok_or_else(|| bad("getTopRecords: 'date' is required"))?;
        let cohort = match period {
            Period::Hour => {
                check_hour("date", date)?;
                date.to_string()
            }
            Period::Day => {
                check_date("date", date)?;
                date.to_string()
            }
            Period::Month if date.len() == 7 => {
                check_month("date", date)?;
                date.to_string()
            }
            Period::Month => {
                check_date("date", date)?;
                date[..7].to_string()
            }
        };
        let by_sum = match get_str(o, "metric")? {
            None | Some("transactionCount") => false,
            Some("totalValue") => true,
            Some(m) => return Err(bad(format!("unknown metric {m:?}; accepted: 'transactionCount', 'totalValue'"))),
        };
        let limit = match o.get("limit") {
            None | Some(Value::Null) => 10,
            Some(v) => v
                .as_f64()
                .filter(|n| *n >= 0.0 && n.fract() == 0.0)
                .ok_or_else(|| bad(format!("'limit' must be a whole number of at least 0, got {v}")))? as usize,
        };
        self.fold_analytics().await?;
        let id = row_id(period, &cohort);
        let store = &*self.ctx.store;
        let reads: Vec<_> = (0..SHARDS)
            .map(|n| {
                let key = shard_key(self, &id, n);
                async move {
                    match store.get(&key).await.map_err(Error::from)? {
                        Some(obj) => serde_json::from_slice::<Shard>(&obj.body).map_err(|e| Error::storage(format!("{key}: {e}"))),
                        None => Ok(Shard::default()),
                    }
                }
            })
            .collect();
        let shards: Vec<Shard> = stream::iter(reads).buffer_unordered(16).try_collect().await?;
        let mut all: Vec<(String, RecordShare)> = shards.into_iter().flat_map(|s| s.records).collect();
        all.sort_by(|(ia, a), (ib, b)| {
            let (ka, kb) = if by_sum { (a.sum, b.sum) } else { (a.count as f64, b.count as f64) };
            kb.total_cmp(&ka).then_with(|| ia.cmp(ib))
        });
        Ok(all.into_iter().take(limit).map(|(id, s)| json!({ "recordId": id, "count": s.count, "sum": s.sum })).collect())
    }
}

fn common_prefix(a: &str, b: &str) -> String {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<AnalyticsQuery> {
        AnalyticsQuery::parse(&v, &[Period::Hour, Period::Day, Period::Month], &Metric::ALL)
    }

    #[test]
    fn query_forms() {
        assert_eq!(parse(json!({ "period": "hour", "date": "2025-10-09" })).unwrap().range, Range::Prefix("2025-10-09T".into()));
        assert_eq!(parse(json!({ "period": "day", "date": "2025-10-09" })).unwrap().range, Range::Prefix("2025-10-09".into()));
        assert_eq!(parse(json!({ "period": "month", "year": 2025 })).unwrap().range, Range::Prefix("2025-".into()));
        assert_eq!(parse(json!({ "period": "month", "month": "2025-10" })).unwrap().range, Range::Prefix("2025-10".into()));
        assert_eq!(
            parse(json!({ "period": "day", "startDate": "2025-10-01", "endDate": "2025-10-31" })).unwrap().range,
            Range::Between { from: "2025-10-01".into(), to: "2025-10-31".into(), len: 10 }
        );
        assert!(parse(json!({ "period": "day", "date": "2025-10-09", "breakdown": "operations" })).unwrap().breakdown);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        for (q, needle) in [
            (json!({ "period": "week" }), "unknown period"),
            (json!({ "period": "day", "date": "2025-13-01" }), "YYYY-MM-DD"),
            (json!({ "period": "day", "date": "yesterday" }), "YYYY-MM-DD"),
            (json!({ "period": "day", "startDate": "2025-10-09", "endDate": "2025-10-01" }), "is after"),
            (json!({ "period": "day", "startDate": "2025-10-09" }), "go together"),
            (json!({ "period": "day", "metrics": ["median"] }), "unknown metric"),
            (json!({ "period": "day", "breakdown": "users" }), "unknown breakdown"),
            (json!({ "period": "month", "year": "20x5" }), "'year'"),
        ] {
            let err = parse(q.clone()).unwrap_err();
            assert!(err.to_string().contains(needle), "{q} -> {err}");
        }
        let only_days = AnalyticsQuery::parse(&json!({ "period": "hour" }), &[Period::Day], &Metric::ALL).unwrap_err();
        assert!(only_days.to_string().contains("not rolled up"), "{only_days}");
    }
}
