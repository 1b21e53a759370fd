//! Conversions between core types and JS-facing JSON, and error mapping.

use ec_core::config::{LateArrival, Mode, PluginConfig, Rollup};
use ec_core::consolidate::Outcome;
use ec_core::txn::Transaction;
use serde_json::{json, Value};

/// Errors cross as `"<CODE>: <message>"`; the JS glue rethrows them typed.
pub fn js_error(e: ec_core::Error) -> napi::Error {
    js_error_text(e.code(), &e.message)
}

pub fn js_error_text(code: &str, message: &str) -> napi::Error {
    napi::Error::from_reason(format!("{code}: {message}"))
}

/// `TZ` from the process; the system zone as JS's `Intl` reports it.
pub fn environment(system_zone: Option<String>) -> ec_core::config::Environment {
    ec_core::config::Environment { tz_env: std::env::var("TZ").ok().filter(|s| !s.is_empty()), system_zone }
}

pub fn transaction_to_json(t: &Transaction) -> Value {
    json!({
        "id": t.id,
        "originalId": t.original_id,
        "field": t.field,
        "value": t.value,
        "operation": t.operation.name(),
        "timestamp": t.timestamp(),
        "cohortHour": t.cohort.hour,
        "cohortDate": t.cohort.date,
        "cohortMonth": t.cohort.month,
        "source": t.source,
        "applied": t.applied,
    })
}

pub fn outcome_to_json(o: &Outcome) -> Value {
    json!({ "value": o.value, "applied": o.applied, "skipped": o.skipped })
}

pub fn config_to_json(cfg: &PluginConfig) -> Value {
    let o = &cfg.options;
    json!({
        "targets": cfg.targets.iter().map(|t| json!({ "resource": t.resource, "field": t.field })).collect::<Vec<_>>(),
        "mode": match o.mode { Mode::Async => "async", Mode::Sync => "sync" },
        "autoConsolidate": o.auto_consolidate,
        "consolidationInterval": o.consolidation_interval,
        "consolidationWindow": o.consolidation_window,
        "consolidationConcurrency": o.consolidation_concurrency,
        "lateArrivalStrategy": match o.late_arrival { LateArrival::Ignore => "ignore", LateArrival::Warn => "warn", LateArrival::Process => "process" },
        "lockTimeout": o.lock_timeout,
        "lockHeartbeat": o.lock_heartbeat,
        "transactionRetention": o.transaction_retention,
        "gcInterval": o.gc_interval,
        "timezone": o.timezone.name(),
        "batchTransactions": o.batch_transactions,
        "batchSize": o.batch_size,
        "verbose": o.verbose,
        "enableAnalytics": o.analytics.is_some(),
        "analyticsConfig": o.analytics.as_ref().map(|a| json!({
            "periods": a.periods.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "metrics": a.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
            "rollupStrategy": match a.rollup { Rollup::Incremental => "incremental", Rollup::Batch => "batch" },
            "retentionDays": a.retention_days,
        })),
    })
}
