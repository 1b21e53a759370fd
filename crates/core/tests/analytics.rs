mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ec_core::clock::parse_iso;
use ec_core::consolidate::WaitPolicy;
use ec_core::store::faulty::FaultyStore;
use ec_core::store::memory::MemoryStore;
use ec_core::store::DynStore;
use ec_core::txlog::WriteRequest;
use ec_core::txn::Operation;
use serde_json::{json, Value};

fn opts(tz: &str) -> Value {
    json!({
        "resource": "wallets", "field": "balance", "lockHeartbeat": 1,
        "enableAnalytics": true, "lateArrivalStrategy": "process", "cohort": { "timezone": tz },
    })
}

fn at(id: &str, op: Operation, value: f64, iso: &str) -> WriteRequest {
    WriteRequest { id: id.into(), operation: op, value, key: None, timestamp_ms: parse_iso(iso), source: None }
}

/// Every row, as `{cohort: (count, sum, recordCount)}`, straight from getAnalytics.
async fn rows(field: &Arc<ec_core::engine::Field>, period: &str) -> BTreeMap<String, (u64, f64, u64)> {
    field
        .analytics(&json!({ "period": period }))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r["cohort"].as_str().unwrap().to_string(), (r["count"].as_u64().unwrap(), r["sum"].as_f64().unwrap(), r["recordCount"].as_u64().unwrap())))
        .collect()
}

fn writes() -> Vec<WriteRequest> {
    vec![
        at("a", Operation::Add, 10.0, "2025-03-09T06:30:00Z"), // 01:30 EST
        at("a", Operation::Add, 5.0, "2025-03-09T07:30:00Z"),  // 03:30 EDT (02:xx does not exist)
        at("b", Operation::Sub, 2.0, "2025-03-09T07:45:00Z"),
        at("b", Operation::Set, 40.0, "2025-03-10T12:00:00Z"),
        at("a", Operation::Add, 1.5, "2025-04-01T03:00:00Z"), // still March 31 in New York
    ]
}

#[tokio::test]
async fn rollups_across_a_dst_change_are_exact() {
    let store = MemoryStore::new();
    let host = MemoryHost::new(store.clone());
    let (_e, field) = engine_with(store.clone(), host, clock(), opts("America/New_York"), "p1");
    for w in writes() {
        field.write(w).await.unwrap();
    }
    for id in ["a", "b"] {
        field.consolidate(id, WaitPolicy::Wait).await.unwrap();
    }
    let hours = rows(&field, "hour").await;
    assert_eq!(hours["2025-03-09T01"], (1, 10.0, 1));
    assert_eq!(hours["2025-03-09T03"], (2, 3.0, 2));
    assert!(!hours.contains_key("2025-03-09T02"), "no such local hour");
    let days = rows(&field, "day").await;
    assert_eq!(days["2025-03-09"], (3, 13.0, 2));
    assert_eq!(days["2025-03-10"], (1, 40.0, 1));
    assert_eq!(days["2025-03-31"], (1, 1.5, 1));
    let months = rows(&field, "month").await;
    assert_eq!(months["2025-03"], (5, 54.5, 2), "recordCount is distinct records, not batches");
    let top = field.top_records(&json!({ "period": "month", "date": "2025-03", "metric": "totalValue" })).await.unwrap();
    assert_eq!(top[0]["recordId"], "b");
    assert_eq!(top[0]["sum"], 38.0);
    assert_eq!(top[1]["recordId"], "a");
    assert_eq!(top[1]["count"], 3);
}

/// Kill the consolidating and folding process at each of its store calls in
/// turn; a survivor finishes: every row is exact, nothing counted twice.
#[tokio::test]
async fn a_crash_at_any_step_leaves_analytics_exact() {
    let expected = {
        let store = MemoryStore::new();
        let (_e, field) = engine_with(store.clone(), MemoryHost::new(store.clone()), clock(), opts("UTC"), "ref");
        for w in writes() {
            field.write(w).await.unwrap();
        }
        for id in ["a", "b"] {
            field.consolidate(id, WaitPolicy::Wait).await.unwrap();
        }
        (rows(&field, "hour").await, rows(&field, "day").await, rows(&field, "month").await)
    };
    let mut step = 0;
    loop {
        step += 1;
        let shared = MemoryStore::new();
        let records = MemoryHost::new(shared.clone());
        let clock = clock();
        let (_w, writer) = engine_with(shared.clone(), records.clone(), clock.clone(), opts("UTC"), "writer");
        for w in writes() {
            writer.write(w).await.unwrap();
        }
        let dying = Arc::new(FaultyStore::new(shared.clone() as DynStore).dying_after(step));
        let view = Arc::new(DyingView { records: records.clone(), store: dying.clone() });
        let (_v, victim) = engine_with(dying.clone(), view, clock.clone(), opts("UTC"), "victim");
        let a = victim.consolidate("a", WaitPolicy::Wait).await;
        let b = victim.consolidate("b", WaitPolicy::Wait).await;
        let folded = victim.fold_analytics().await;
        let died = dying.dead();
        clock.advance(10_000);
        let (_s, survivor) = engine_with(shared.clone(), records.clone(), clock.clone(), opts("UTC"), "survivor");
        for id in ["a", "b"] {
            survivor.consolidate(id, WaitPolicy::Wait).await.unwrap();
        }
        let got = (rows(&survivor, "hour").await, rows(&survivor, "day").await, rows(&survivor, "month").await);
        assert_eq!(got, expected, "step {step}: {a:?} {b:?} {folded:?}");
        if !died {
            assert!(step > 20, "the victim had many steps to die at ({step})");
            break;
        }
    }
}
