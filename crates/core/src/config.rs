//! Plugin options: parsed from the JSON the JS layer passes, validated with
//! errors that name the option and the accepted values, defaults as the manual
//! documents them.

use serde_json::{Map, Value};

use crate::cohort::{detect_timezone, Timezone};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Async,
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateArrival {
    Ignore,
    Warn,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    Hour,
    Day,
    Month,
}

impl Period {
    pub fn name(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "hour" => Some(Period::Hour),
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl Metric {
    pub const ALL: [Metric; 5] = [Metric::Count, Metric::Sum, Metric::Avg, Metric::Min, Metric::Max];
    pub fn name(self) -> &'static str {
        match self {
            Metric::Count => "count",
            Metric::Sum => "sum",
            Metric::Avg => "avg",
            Metric::Min => "min",
            Metric::Max => "max",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    Incremental,
    Batch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsConfig {
    pub periods: Vec<Period>,
    pub metrics: Vec<Metric>,
    pub rollup: Rollup,
    /// `None` keeps rows forever (`Infinity`).
    pub retention_days: Option<f64>,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            periods: vec![Period::Hour, Period::Day, Period::Month],
            metrics: Metric::ALL.to_vec(),
            rollup: Rollup::Incremental,
            retention_days: Some(365.0),
        }
    }
}

/// Options shared by every field one plugin instance serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub mode: Mode,
    pub auto_consolidate: bool,
    /// Seconds between background runs.
    pub consolidation_interval: f64,
    /// Hours back from now a run looks at.
    pub consolidation_window: f64,
    pub consolidation_concurrency: usize,
    pub late_arrival: LateArrival,
    /// Seconds: the hard upper bound of a lock.
    pub lock_timeout: f64,
    /// Seconds between lease renewals.
    pub lock_heartbeat: f64,
    /// Days applied transactions are kept.
    pub transaction_retention: f64,
    /// Seconds between GC runs.
    pub gc_interval: f64,
    pub timezone: Timezone,
    pub batch_transactions: bool,
    pub batch_size: usize,
    pub custom_reducer: bool,
    pub analytics: Option<AnalyticsConfig>,
    pub verbose: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource: String,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub targets: Vec<Target>,
    pub options: Options,
}

/// Facts from the environment the defaults depend on.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub tz_env: Option<String>,
    pub system_zone: Option<String>,
}

impl PluginConfig {
    pub fn parse(raw: &Value, env: &Environment) -> Result<Self> {
        let obj = raw
            .as_object()
            .ok_or_else(|| Error::config("options", "expected an object such as { resource: 'wallets', field: 'balance' }"))?;
        let targets = parse_targets(obj)?;
        // s3db.js 21.x nests a few options under `consolidation`; the manual's flat names win.
        let nested = Nested { root: obj, section: "consolidation", map: section(obj, "consolidation")? };
        let pick = |flat: &str, inner: &[&str]| nested.pick(flat, inner);

        let mode = match pick("mode", &["mode"]) {
            None => Mode::Async,
            Some((name, v)) => match v.as_str() {
                Some("async") => Mode::Async,
                Some("sync") => Mode::Sync,
                _ => return Err(Error::config(&name, format!("got {}; accepted values: 'async' (default), 'sync'", show(&v)))),
            },
        };
        let auto_consolidate = boolean(pick("autoConsolidate", &["auto", "autoConsolidate"]), true)?;
        let consolidation_interval = positive(pick("consolidationInterval", &["interval"]), 300.0, "seconds")?;
        let consolidation_window = number_at_least(pick("consolidationWindow", &["window"]), 24.0, 1.0, "hours")?;
        let consolidation_concurrency = integer_at_least(pick("consolidationConcurrency", &["concurrency"]), 5, 1)?;
        let late_arrival = match pick("lateArrivalStrategy", &["lateArrivalStrategy"]) {
            None => LateArrival::Warn,
            Some((name, v)) => match v.as_str() {
                Some("ignore") => LateArrival::Ignore,
                Some("warn") => LateArrival::Warn,
                Some("process") => LateArrival::Process,
                _ => {
                    return Err(Error::config(
                        &name,
                        format!("got {}; accepted values: 'ignore', 'warn' (default), 'process'", show(&v)),
                    ))
                }
            },
        };
        let lock_timeout = positive(pick("lockTimeout", &["lockTimeout"]), 300.0, "seconds")?;
        let lock_heartbeat = positive(pick("lockHeartbeat", &["lockHeartbeat"]), 5.0_f64.min(lock_timeout / 3.0), "seconds")?;
        if lock_heartbeat * 2.0 > lock_timeout {
            return Err(Error::config(
                "lockHeartbeat",
                format!("{lock_heartbeat} s is more than half of lockTimeout ({lock_timeout} s); a lease must be renewable before it expires"),
            ));
        }
        let transaction_retention = positive(pick("transactionRetention", &[]), 30.0, "days")?;
        let gc_interval = positive(pick("gcInterval", &[]), 86_400.0, "seconds")?;
        let timezone = parse_timezone(obj, env)?;
        let batch_transactions = boolean(pick("batchTransactions", &[]), false)?;
        let batch_size = integer_at_least(pick("batchSize", &[]), 100, 1)?;
        let custom_reducer = match obj.get("reducer") {
            None | Some(Value::Null) => false,
            // The JS layer replaces a function with this marker; anything else was not a function.
            Some(Value::Object(m)) if m.get("$ecFunction") == Some(&Value::Bool(true)) => true,
            Some(v) => return Err(Error::config("reducer", format!("expected a function (transactions) => number, got {}", show(v)))),
        };
        let analytics = parse_analytics(obj, section(obj, "analytics")?)?;
        let verbose = boolean(pick("verbose", &[]), false)?;
        Ok(PluginConfig {
            targets,
            options: Options {
                mode,
                auto_consolidate,
                consolidation_interval,
                consolidation_window,
                consolidation_concurrency,
                late_arrival,
                lock_timeout,
                lock_heartbeat,
                transaction_retention,
                gc_interval,
                timezone,
                batch_transactions,
                batch_size,
                custom_reducer,
                analytics,
                verbose,
            },
        })
    }
}

/// A top-level option, or its alias inside a nested section.
struct Nested<'a> {
    root: &'a Map<String, Value>,
    section: &'static str,
    map: Option<&'a Map<String, Value>>,
}

impl Nested<'_> {
    /// `(name as the user wrote it, value)` of the first non-null spelling.
    fn pick(&self, flat: &str, inner: &[&str]) -> Option<(String, Value)> {
        if let Some(v) = self.root.get(flat).filter(|v| !v.is_null()) {
            return Some((flat.to_string(), v.clone()));
        }
        let map = self.map?;
        inner
            .iter()
            .find_map(|k| map.get(*k).filter(|v| !v.is_null()).map(|v| (format!("{}.{k}", self.section), v.clone())))
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn section<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Map<String, Value>>> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(v) => Err(Error::config(name, format!("expected an object, got {}", show(v)))),
    }
}

/// A name s3db.js can use for a resource or attribute.
fn identifier(option: &str, v: Option<&Value>) -> Result<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.contains('/') || s.contains('=') {
                return Err(Error::config(option, format!("{s:?} may not contain '/' or '='")));
            }
            Ok(s.clone())
        }
        None | Some(Value::Null) => Err(Error::config(option, "is required (a non-empty string)")),
        Some(v) => Err(Error::config(option, format!("expected a non-empty string, got {}", show(v)))),
    }
}

fn parse_targets(obj: &Map<String, Value>) -> Result<Vec<Target>> {
    if let Some(resources) = obj.get("resources").filter(|v| !v.is_null()) {
        // `{ wallets: ['balance'] }`, or s3db.js's `[{ resource: 'wallets', fields: ['balance'] }]`.
        let entries: Vec<(String, &Value)> = match resources {
            Value::Object(m) if !m.is_empty() => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(a) if !a.is_empty() => a
                .iter()
                .map(|e| {
                    let name = e.get("resource").and_then(Value::as_str).map(str::to_string);
                    match (name, e.get("fields")) {
                        (Some(n), Some(f)) => Ok((n, f)),
                        _ => Err(Error::config("resources", format!("each entry needs 'resource' and 'fields', got {}", show(e)))),
                    }
                })
                .collect::<Result<_>>()?,
            _ => return Err(Error::config("resources", "expected an object such as { wallets: ['balance'] }")),
        };
        let mut targets = Vec::new();
        for (resource, fields) in entries {
            let resource = identifier("resources", Some(&Value::String(resource)))?;
            let list: Vec<&Value> = match fields {
                Value::Array(a) if !a.is_empty() => a.iter().collect(),
                Value::String(_) => vec![fields],
                v => {
                    return Err(Error::config(
                        &format!("resources.{resource}"),
                        format!("expected a non-empty array of field names, got {}", show(v)),
                    ))
                }
            };
            for f in list {
                // A field may be `{ field: 'balance', … }`; only its name is used.
                let f = f.get("field").unwrap_or(f);
                let field = identifier(&format!("resources.{resource}"), Some(f))?;
                if !targets.iter().any(|t: &Target| t.resource == resource && t.field == field) {
                    targets.push(Target { resource: resource.clone(), field });
                }
            }
        }
        return Ok(targets);
    }
    let resource = identifier("resource", obj.get("resource"))?;
    let field = identifier("field", obj.get("field"))?;
    Ok(vec![Target { resource, field }])
}

fn boolean(v: Option<(String, Value)>, default: bool) -> Result<bool> {
    match v {
        None => Ok(default),
        Some((_, Value::Bool(b))) => Ok(b),
        Some((name, v)) => Err(Error::config(&name, format!("expected true or false, got {}", show(&v)))),
    }
}

fn number(name: &str, v: &Value, unit: &str) -> Result<f64> {
    v.as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Error::config(name, format!("expected a number of {unit}, got {}", show(v))))
}

fn positive(v: Option<(String, Value)>, default: f64, unit: &str) -> Result<f64> {
    let Some((name, v)) = v else { return Ok(default) };
    let n = number(&name, &v, unit)?;
    if n <= 0.0 {
        return Err(Error::config(&name, format!("must be greater than 0 {unit}, got {n}")));
    }
    Ok(n)
}

fn number_at_least(v: Option<(String, Value)>, default: f64, min: f64, unit: &str) -> Result<f64> {
    let Some((name, v)) = v else { return Ok(default) };
    let n = number(&name, &v, unit)?;
    if n < min {
        return Err(Error::config(&name, format!("must be at least {min} {unit}, got {n}")));
    }
    Ok(n)
}

fn integer_at_least(v: Option<(String, Value)>, default: usize, min: usize) -> Result<usize> {
    let Some((name, v)) = v else { return Ok(default) };
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && n >= min as f64 && n <= 1e9 => Ok(n as usize),
        _ => Err(Error::config(&name, format!("expected a whole number of at least {min}, got {}", show(&v)))),
    }
}

fn parse_timezone(obj: &Map<String, Value>, env: &Environment) -> Result<Timezone> {
    let cohort = section(obj, "cohort")?;
    let given = cohort.and_then(|c| c.get("timezone")).or_else(|| obj.get("timezone"));
    match given {
        None | Some(Value::Null) => Ok(detect_timezone(env.tz_env.as_deref(), env.system_zone.as_deref())),
        Some(Value::String(name)) => Timezone::parse(name),
        Some(v) => Err(Error::config("cohort.timezone", format!("expected an IANA timezone name, got {}", show(v)))),
    }
}

fn parse_analytics(obj: &Map<String, Value>, nested: Option<&Map<String, Value>>) -> Result<Option<AnalyticsConfig>> {
    let enabled = match (obj.get("enableAnalytics"), nested.and_then(|n| n.get("enabled"))) {
        (Some(Value::Bool(b)), _) => *b,
        (Some(Value::Null) | None, Some(Value::Bool(b))) => *b,
        (Some(Value::Null) | None, None) => false,
        (Some(v), _) => return Err(Error::config("enableAnalytics", format!("expected true or false, got {}", show(v)))),
        (_, Some(v)) => return Err(Error::config("analytics.enabled", format!("expected true or false, got {}", show(v)))),
    };
    let cfg = match section(obj, "analyticsConfig")? {
        Some(c) => Some(("analyticsConfig", c)),
        None => nested.map(|n| ("analytics", n)),
    };
    let mut out = AnalyticsConfig::default();
    if let Some((sec, c)) = cfg {
        if let Some(v) = c.get("periods").filter(|v| !v.is_null()) {
            out.periods = list_of(sec, "periods", v, "'hour', 'day', 'month'", Period::parse)?;
        }
        if let Some(v) = c.get("metrics").filter(|v| !v.is_null()) {
            out.metrics = list_of(sec, "metrics", v, "'count', 'sum', 'avg', 'min', 'max'", |s| {
                Metric::ALL.into_iter().find(|m| m.name() == s)
            })?;
        }
        if let Some(v) = c.get("rollupStrategy").filter(|v| !v.is_null()) {
            out.rollup = match v.as_str() {
                Some("incremental") => Rollup::Incremental,
                Some("batch") => Rollup::Batch,
                _ => {
                    return Err(Error::config(
                        &format!("{sec}.rollupStrategy"),
                        format!("got {}; accepted values: 'incremental' (default), 'batch'", show(v)),
                    ))
                }
            };
        }
        if let Some(v) = c.get("retentionDays").filter(|v| !v.is_null()) {
            let name = format!("{sec}.retentionDays");
            out.retention_days = match v {
                // JSON has no Infinity: the JS layer sends the string.
                Value::String(s) if s == "Infinity" => None,
                _ => match v.as_f64() {
                    Some(n) if n > 0.0 => Some(n),
                    _ => return Err(Error::config(&name, format!("expected a positive number of days or Infinity, got {}", show(v)))),
                },
            };
        }
    }
    Ok(enabled.then_some(out))
}

fn list_of<T: PartialEq>(sec: &str, key: &str, v: &Value, accepted: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let name = format!("{sec}.{key}");
    let items = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::config(&name, format!("expected a non-empty array of {accepted}, got {}", show(v))))?;
    let mut out = Vec::new();
    for item in items {
        let parsed = item
            .as_str()
            .and_then(&parse)
            .ok_or_else(|| Error::config(&name, format!("unknown value {}; accepted values: {accepted}", show(item))))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<PluginConfig> {
        PluginConfig::parse(&v, &Environment::default())
    }

    #[test]
    fn manual_defaults() {
        let c = parse(json!({ "resource": "wallets", "field": "balance" })).unwrap();
        assert_eq!(c.targets, vec![Target { resource: "wallets".into(), field: "balance".into() }]);
        let o = c.options;
        assert_eq!(o.mode, Mode::Async);
        assert!(o.auto_consolidate);
        assert_eq!(o.consolidation_interval, 300.0);
        assert_eq!(o.consolidation_window, 24.0);
        assert_eq!(o.consolidation_concurrency, 5);
        assert_eq!(o.late_arrival, LateArrival::Warn);
        assert_eq!(o.lock_timeout, 300.0);
        assert_eq!(o.transaction_retention, 30.0);
        assert_eq!(o.gc_interval, 86_400.0);
        assert_eq!(o.timezone.name(), "UTC");
        assert!(!o.batch_transactions);
        assert_eq!(o.batch_size, 100);
        assert_eq!(o.analytics, None);
    }

    #[test]
    fn nested_form_serves_several_fields() {
        let c = parse(json!({
            "resources": { "wallets": ["balance", "points"] },
            "consolidation": { "mode": "sync", "window": 2, "auto": false },
            "analytics": { "enabled": true }
        }))
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.options.mode, Mode::Sync);
        assert_eq!(c.options.consolidation_window, 2.0);
        assert!(!c.options.auto_consolidate);
        let arr = parse(json!({ "resources": [{ "resource": "accounts", "fields": ["balance", { "field": "points" }] }] })).unwrap();
        assert_eq!(arr.targets.iter().map(|t| t.field.as_str()).collect::<Vec<_>>(), ["balance", "points"]);
        assert!(c.options.analytics.is_some());
    }

    #[test]
    fn errors_name_the_option_and_accepted_values() {
        let cases = [
            (json!({ "field": "balance" }), "'resource'"),
            (json!({ "resource": "wallets" }), "'field'"),
            (json!({ "resource": "w", "field": "b", "mode": "eventual" }), "'sync'"),
            (json!({ "resource": "w", "field": "b", "consolidationInterval": 0 }), "consolidationInterval"),
            (json!({ "resource": "w", "field": "b", "consolidationInterval": "5" }), "consolidationInterval"),
            (json!({ "resource": "w", "field": "b", "consolidationWindow": 0.5 }), "at least 1 hours"),
            (json!({ "resource": "w", "field": "b", "lateArrivalStrategy": "drop" }), "'process'"),
            (json!({ "resource": "w", "field": "b", "batchSize": 0 }), "batchSize"),
            (json!({ "resource": "w", "field": "b", "cohort": { "timezone": "Nowhere/City" } }), "cohort.timezone"),
            (json!({ "resource": "w", "field": "b", "reducer": "sum" }), "reducer"),
            (json!({ "resource": "w", "field": "b", "autoConsolidate": "yes" }), "autoConsolidate"),
            (json!({ "resource": "w", "field": "b", "enableAnalytics": true, "analyticsConfig": { "periods": ["week"] } }), "'hour'"),
        ];
        for (raw, needle) in cases {
            let err = parse(raw.clone()).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Config);
            assert!(err.to_string().contains(needle), "{raw} -> {err}");
        }
    }
}
