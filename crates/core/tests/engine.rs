mod common;

use std::sync::Arc;

use common::*;
use ec_core::clock::Clock;
use ec_core::codec::transaction as txcodec;
use ec_core::consolidate::WaitPolicy;
use ec_core::store::faulty::FaultyStore;
use ec_core::store::memory::MemoryStore;
use ec_core::store::{list_all, DynStore, ObjectStore};
use ec_core::txlog::WriteRequest;
use ec_core::txn::Operation;
use serde_json::json;

fn req(id: &str, op: Operation, value: f64) -> WriteRequest {
    WriteRequest { id: id.into(), operation: op, value, key: None, timestamp_ms: None, source: None }
}

fn opts() -> serde_json::Value {
    json!({ "resource": "wallets", "field": "balance", "lockHeartbeat": 1, "lockTimeout": 300 })
}

#[tokio::test]
async fn add_sub_set_then_consolidate() {
    let store = MemoryStore::new();
    let host = MemoryHost::new(store.clone());
    let (_e, field) = engine_with(store.clone(), host.clone(), clock(), opts(), "p1");
    field.write(req("w1", Operation::Add, 100.0)).await.unwrap();
    field.write(req("w1", Operation::Sub, 30.0)).await.unwrap();
    field.write(req("w2", Operation::Set, 7.0)).await.unwrap();
    // 1 object + 3 references + 1 pending entry each.
    assert_eq!(store.len(), 15);
    host.seed("w1", 0.0).await;
    let out = field.consolidate("w1", WaitPolicy::Wait).await.unwrap();
    assert_eq!((out.value, out.applied), (70.0, 2));
    assert_eq!(host.value("w1"), Some(70.0));
    assert_eq!(host.value("w2"), None, "only the asked record");
    assert_eq!(field.consolidate("w2", WaitPolicy::Wait).await.unwrap().value, 7.0, "a missing record is created");
    let again = field.consolidate("w1", WaitPolicy::Wait).await.unwrap();
    assert_eq!((again.value, again.applied), (70.0, 0), "idempotent");
    let pending = list_all(&*store, &field.keys.pending_prefix("w1")).await.unwrap();
    assert!(pending.is_empty());
    for key in list_all(&*store, &field.schema.data_prefix()).await.unwrap() {
        let id = key.rsplit("id=").next().unwrap();
        let t = txcodec::decode(&field.schema, id, &store.get(&key).await.unwrap().unwrap()).unwrap();
        assert!(t.applied, "{t:?}");
    }
}

#[tokio::test]
async fn keyed_writes_count_once() {
    let store = MemoryStore::new();
    let host = MemoryHost::new(store.clone());
    let (_e, field) = engine_with(store.clone(), host.clone(), clock(), opts(), "p1");
    let keyed = WriteRequest { key: Some("order-17".into()), ..req("w1", Operation::Add, 10.0) };
    let a = field.write(keyed.clone()).await.unwrap();
    let b = field.write(keyed.clone()).await.unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(field.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 10.0);
    let c = field.write(keyed).await.unwrap();
    assert!(c.applied, "a retry after consolidation sees the applied original");
    assert_eq!(field.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 10.0);
}

/// Kill a consolidating process at every store call it makes, then let a
/// second process recover: the value is exact and nothing is applied twice.
#[tokio::test]
async fn a_crash_at_any_step_of_consolidation_is_recovered_exactly() {
    let mut step = 0;
    loop {
        step += 1;
        let shared = MemoryStore::new();
        let records = MemoryHost::new(shared.clone());
        let clock = clock();
        // Seed: the record exists with 1000, then three operations.
        records.seed("w1", 1000.0).await;
        let (_e0, writer) = engine_with(shared.clone(), records.clone(), clock.clone(), opts(), "writer");
        for (op, v) in [(Operation::Add, 50.0), (Operation::Sub, 20.0), (Operation::Add, 5.5)] {
            writer.write(req("w1", op, v)).await.unwrap();
        }
        let dying = Arc::new(FaultyStore::new(shared.clone() as DynStore).dying_after(step));
        let view = Arc::new(DyingView { records: records.clone(), store: dying.clone() });
        let (_e1, victim) = engine_with(dying.clone(), view, clock.clone(), opts(), "victim");
        let crashed = victim.consolidate("w1", WaitPolicy::Wait).await;
        let died = dying.dead();
        // The survivor comes later, after the victim's lease ran out.
        clock.advance(10_000);
        let (_e2, survivor) = engine_with(shared.clone(), records.clone(), clock.clone(), opts(), "survivor");
        let out = survivor.consolidate("w1", WaitPolicy::Wait).await.unwrap();
        assert_eq!(out.value, 1035.5, "step {step}: crashed={crashed:?}");
        assert_eq!(records.value("w1"), Some(1035.5), "step {step}");
        // More work after recovery still counts once.
        survivor.write(req("w1", Operation::Add, 1.0)).await.unwrap();
        assert_eq!(survivor.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 1036.5, "step {step}");
        assert!(list_all(&*shared, &survivor.keys.pending_prefix("w1")).await.unwrap().is_empty());
        if !died {
            assert!(crashed.is_ok());
            assert!(step > 5, "the victim must have had several steps to die at");
            break;
        }
    }
}

#[tokio::test]
async fn concurrent_consolidations_in_one_process_share_runs() {
    let store = MemoryStore::new();
    let host = MemoryHost::new(store.clone());
    let (_e, field) = engine_with(store.clone(), host.clone(), clock(), opts(), "p1");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let f = field.clone();
        tasks.push(tokio::spawn(async move {
            f.write(req("w1", Operation::Add, i as f64)).await.unwrap();
            f.consolidate("w1", WaitPolicy::Wait).await.unwrap()
        }));
    }
    let mut total_applied = 0;
    for t in tasks {
        let out = t.await.unwrap();
        total_applied += out.applied;
    }
    assert_eq!(total_applied, 20);
    assert_eq!(host.value("w1"), Some(190.0));
    assert!(*host.writes.lock().unwrap() <= 20);
}

#[tokio::test]
async fn late_arrivals_follow_the_strategy() {
    for (strategy, written, consolidated) in [("ignore", false, false), ("warn", true, false), ("process", true, true)] {
        let store = MemoryStore::new();
        let host = MemoryHost::new(store.clone());
        let clock = clock();
        let o = json!({ "resource": "wallets", "field": "balance", "lateArrivalStrategy": strategy, "lockHeartbeat": 1 });
        let (_e, field) = engine_with(store.clone(), host.clone(), clock.clone(), o, "p1");
        let old = clock.now_ms() - 25 * 3_600_000;
        let r = field.write(WriteRequest { timestamp_ms: Some(old), ..req("w1", Operation::Add, 5.0) }).await;
        assert_eq!(r.is_ok(), written, "{strategy}: {r:?}");
        if !written {
            assert_eq!(r.unwrap_err().kind, ec_core::ErrorKind::LateArrival);
            assert_eq!(store.len(), 0, "nothing written");
        }
        let out = field.consolidate("w1", WaitPolicy::Wait).await.unwrap();
        assert_eq!(out.applied == 1, consolidated, "{strategy}");
    }
}

/// A write to the record behind the plugin's back (a holder that lost its lease
/// resuming, or an s3db.js update racing ours) is repaired, never built upon.
#[tokio::test]
async fn a_stale_record_write_is_repaired_and_never_built_upon() {
    let store = MemoryStore::new();
    let host = MemoryHost::new(store.clone());
    let (_e, field) = engine_with(store.clone(), host.clone(), clock(), opts(), "p1");
    field.write(req("w1", Operation::Add, 10.0)).await.unwrap();
    assert_eq!(field.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 10.0);
    host.seed("w1", 3.0).await;
    field.write(req("w1", Operation::Add, 1.0)).await.unwrap();
    assert_eq!(field.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 11.0);
    assert_eq!(host.value("w1"), Some(11.0));
    host.seed("w1", 999.0).await;
    assert_eq!(field.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 11.0, "nothing pending: repaired");
    assert_eq!(host.value("w1"), Some(11.0));
}

/// A record host whose writes wait at a gate: a holder "paused" inside its record write.
/// With `only_one_write`, writes after the first fail (a process that lost its database).
struct GatedHost {
    records: Arc<MemoryHost>,
    entered: tokio::sync::Notify,
    gate: tokio::sync::Semaphore,
    only_one_write: bool,
    written: std::sync::atomic::AtomicBool,
}

impl GatedHost {
    fn new(records: &Arc<MemoryHost>, only_one_write: bool) -> Arc<Self> {
        Arc::new(GatedHost {
            records: records.clone(),
            entered: tokio::sync::Notify::new(),
            gate: tokio::sync::Semaphore::new(0),
            only_one_write,
            written: Default::default(),
        })
    }
}

#[async_trait::async_trait]
impl ec_core::host::RecordHost for GatedHost {
    async fn read(&self, r: &str, f: &str, id: &str) -> ec_core::Result<ec_core::host::RecordValue> {
        self.records.read(r, f, id).await
    }
    async fn write(&self, r: &str, f: &str, id: &str, value: f64, existed: Option<bool>) -> ec_core::Result<()> {
        if self.only_one_write && self.written.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(ec_core::Error::record("the database is gone"));
        }
        self.entered.notify_one();
        self.gate.acquire().await.unwrap().forget();
        self.records.write(r, f, id, value, existed).await
    }
}

/// Heartbeats far apart, so a holder's renewal never runs during a test: leases
/// expire only when the test moves the manual clock.
fn no_renewals() -> serde_json::Value {
    json!({ "resource": "wallets", "field": "balance", "lockHeartbeat": 20, "lockTimeout": 300 })
}

fn spawn_consolidate(field: &Arc<ec_core::engine::Field>, id: &'static str) -> tokio::task::JoinHandle<ec_core::Result<ec_core::consolidate::Outcome>> {
    let field = field.clone();
    tokio::spawn(async move { field.consolidate(id, WaitPolicy::Wait).await })
}

#[tokio::test]
async fn a_holder_paused_past_its_lease_is_fenced_and_a_background_run_repairs_its_late_write() {
    let store = MemoryStore::new();
    let records = MemoryHost::new(store.clone());
    let clock = clock();
    // The paused holder's retry cannot write: the recheck it left is what repairs the record.
    let gated = GatedHost::new(&records, true);
    let (_a, paused) = engine_with(store.clone(), gated.clone(), clock.clone(), no_renewals(), "paused");
    let (_b, successor) = engine_with(store.clone(), records.clone(), clock.clone(), no_renewals(), "successor");
    records.seed("w1", 0.0).await;
    paused.write(req("w1", Operation::Add, 75.0)).await.unwrap();

    let late = spawn_consolidate(&paused, "w1");
    gated.entered.notified().await;
    clock.advance(120_000); // well past the 60 s lease
    successor.write(req("w1", Operation::Add, 95.0)).await.unwrap();
    let out = successor.consolidate("w1", WaitPolicy::Wait).await.unwrap();
    assert_eq!(out.value, 170.0, "the successor rolls the intent forward and adds its own");
    assert_eq!(records.value("w1"), Some(170.0));

    gated.gate.add_permits(1);
    late.await.unwrap().unwrap_err();
    assert_eq!(records.value("w1"), Some(75.0), "the late write landed");

    let run = successor.consolidate_pending().await.unwrap();
    assert_eq!((run.records, run.applied), (1, 0), "the fenced holder left the record to revisit");
    assert_eq!(records.value("w1"), Some(170.0), "repaired from the checkpoint");
    assert!(list_all(&*store, &successor.keys.pending_prefix("w1")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_holder_resumed_before_its_successor_finishes_is_the_one_fenced_and_retries_after_it() {
    let store = MemoryStore::new();
    let records = MemoryHost::new(store.clone());
    let clock = clock();
    let gated_a = GatedHost::new(&records, false);
    let gated_b = GatedHost::new(&records, false);
    let (_a, paused) = engine_with(store.clone(), gated_a.clone(), clock.clone(), no_renewals(), "paused");
    let (_b, successor) = engine_with(store.clone(), gated_b.clone(), clock.clone(), no_renewals(), "successor");
    records.seed("w1", 0.0).await;
    paused.write(req("w1", Operation::Add, 42.0)).await.unwrap();
    let a = spawn_consolidate(&paused, "w1");
    gated_a.entered.notified().await;
    clock.advance(120_000);
    successor.write(req("w1", Operation::Add, 459.0)).await.unwrap();
    let b = spawn_consolidate(&successor, "w1");
    // The successor is inside its roll-forward write of the paused holder's intent; the paused holder resumes.
    gated_b.entered.notified().await;
    gated_a.gate.add_permits(10);
    // Fenced right after its late write, the paused holder starts over: it waits for the successor's lock.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!a.is_finished(), "the paused holder must not finish while the successor holds the lock");
    gated_b.gate.add_permits(10);
    let out = b.await.unwrap().unwrap();
    assert_eq!(out.value, 501.0, "the successor, whose lease is valid, finishes with everything");
    assert_eq!(a.await.unwrap().unwrap().value, 501.0, "the paused holder's retry sees the same value");
    assert_eq!(records.value("w1"), Some(501.0));
}

#[tokio::test]
async fn a_recheck_entry_that_outlived_its_transaction_is_dropped_not_applied() {
    let store = MemoryStore::new();
    let host = MemoryHost::new(store.clone());
    let (_e, field) = engine_with(store.clone(), host.clone(), clock(), opts(), "p1");
    let t = field.write(WriteRequest { key: Some("order-1".into()), ..req("w1", Operation::Add, 10.0) }).await.unwrap();
    assert_eq!(field.consolidate("w1", WaitPolicy::Wait).await.unwrap().value, 10.0);
    // A fenced holder's recheck, then GC took the applied transaction's object.
    let entry = ec_core::keys::PendingEntry { recheck: true, ..ec_core::keys::PendingEntry::from_transaction(&t) };
    store.put(&field.keys.pending_key(&entry), Default::default()).await.unwrap();
    store.delete(&field.schema.data_key(&t.id), ec_core::store::Condition::None).await.unwrap();
    let out = field.consolidate("w1", WaitPolicy::Wait).await.unwrap();
    assert_eq!((out.value, out.applied), (10.0, 0));
    assert!(list_all(&*store, &field.keys.pending_prefix("w1")).await.unwrap().is_empty());
}
