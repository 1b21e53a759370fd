//! The core's host traits, implemented by calling one JS function, `host(call)`,
//! through a weak threadsafe function (it never keeps Node alive). The JS side
//! dispatches on `call.op` and always resolves, with `{ error }` on failure.

use std::sync::Arc;

use async_trait::async_trait;
use ec_core::host::{Event, EventSink, RecordHost, RecordValue, Reducer, ReducerInput};
use ec_core::{Error, ErrorKind, Result};
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use serde_json::{json, Value};

use crate::convert::transaction_to_json;

pub type HostFn = ThreadsafeFunction<Value, Promise<Value>, Value, Status, false, true>;

#[derive(Clone)]
pub struct JsHost {
    f: Arc<HostFn>,
}

impl std::fmt::Debug for JsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsHost")
    }
}

/// A failure reported by the JS side: `{ error: { kind, message } }`.
#[derive(Debug)]
pub struct HostError {
    pub kind: String,
    pub message: String,
}

impl JsHost {
    pub fn new(f: HostFn) -> Self {
        JsHost { f: Arc::new(f) }
    }

    /// Calls `host(call)` on the JS thread and waits for its promise.
    pub async fn call(&self, call: Value) -> std::result::Result<Value, HostError> {
        let promise = self.f.call_async_catch(call).await.map_err(|e| HostError { kind: "thrown".into(), message: e.reason.clone() })?;
        let reply = promise.await.map_err(|e| HostError { kind: "rejected".into(), message: e.reason.clone() })?;
        if let Some(err) = reply.get("error").filter(|e| !e.is_null()) {
            return Err(HostError {
                kind: err.get("kind").and_then(Value::as_str).unwrap_or("unknown").to_string(),
                message: err.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_string(),
            });
        }
        Ok(reply)
    }

    pub fn notify(&self, call: Value) {
        self.f.call(call, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

#[async_trait]
impl RecordHost for JsHost {
    async fn read(&self, resource: &str, field: &str, id: &str) -> Result<RecordValue> {
        let reply = self
            .call(json!({ "op": "record.read", "resource": resource, "field": field, "id": id }))
            .await
            .map_err(|e| Error::record(format!("reading {resource} record {id}: {}", e.message)))?;
        if !reply.get("exists").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(RecordValue::Missing);
        }
        Ok(RecordValue::Present(reply.get("value").and_then(Value::as_f64).filter(|v| v.is_finite()).unwrap_or(0.0)))
    }

    async fn write(&self, resource: &str, field: &str, id: &str, value: f64, existed: Option<bool>) -> Result<()> {
        self.call(json!({ "op": "record.write", "resource": resource, "field": field, "id": id, "value": value, "existed": existed }))
            .await
            .map(|_| ())
            .map_err(|e| Error::record(format!("writing {resource} record {id} ({field} = {value}): {}", e.message)))
    }
}

#[async_trait]
impl Reducer for JsHost {
    async fn reduce(&self, resource: &str, field: &str, inputs: Vec<ReducerInput>) -> Result<f64> {
        let transactions: Vec<Value> = inputs
            .iter()
            .map(|i| match i {
                ReducerInput::Synthetic { original_id, field, value } => json!({
                    "synthetic": true, "operation": "set", "value": value,
                    "timestamp": "1970-01-01T00:00:00.000Z", "originalId": original_id, "field": field,
                }),
                ReducerInput::Pending(t) => transaction_to_json(t),
            })
            .collect();
        let reply = self
            .call(json!({ "op": "reduce", "resource": resource, "field": field, "transactions": transactions }))
            .await
            .map_err(|e| Error::new(ErrorKind::Reducer, e.message))?;
        match reply.get("value") {
            Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            // JSON has no NaN/Infinity: the JS side reports them by name.
            Some(other) => Err(Error::new(ErrorKind::Reducer, format!("returned {}", other.as_str().unwrap_or(&other.to_string())))),
            None => Err(Error::new(ErrorKind::Reducer, "returned nothing")),
        }
    }
}

impl EventSink for JsHost {
    fn emit(&self, event: Event) {
        let payload = match event {
            Event::LateArrival { resource, field, id, cohort_hour, hours_late, written } => json!({
                "type": "late-arrival", "resource": resource, "field": field, "id": id,
                "cohortHour": cohort_hour, "hoursLate": hours_late, "written": written,
            }),
            Event::RecordConsolidated { resource, field, id, value, applied } => json!({
                "type": "record-consolidated", "resource": resource, "field": field, "id": id, "value": value, "applied": applied,
            }),
            Event::RecordRepaired { resource, field, id, found, value } => json!({
                "type": "record-repaired", "resource": resource, "field": field, "id": id, "found": found, "value": value,
            }),
            Event::RunCompleted { resource, field, records, applied, skipped, errors, duration_ms } => json!({
                "type": "run-completed", "resource": resource, "field": field, "recordCount": records,
                "applied": applied, "skipped": skipped, "errors": errors, "durationMs": duration_ms,
            }),
            Event::GcCompleted { resource, field, deleted, kept_pending, skipped, duration_ms } => json!({
                "type": "gc-completed", "resource": resource, "field": field, "deletedCount": deleted,
                "keptPending": kept_pending, "skipped": skipped, "durationMs": duration_ms,
            }),
            Event::LockHeld { resource, field, id, holder } => json!({
                "type": "lock-held", "resource": resource, "field": field, "id": id, "holder": holder,
            }),
            Event::Error { resource, field, id, stage, message } => json!({
                "type": "error", "resource": resource, "field": field, "id": id, "stage": stage, "message": message,
            }),
        };
        self.notify(json!({ "op": "event", "event": payload }));
    }
}
