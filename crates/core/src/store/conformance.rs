//! The behaviour every backend must show. Run by each backend's tests
//! (memory here, S3 against the test server when `EC_TEST_S3_ENDPOINT` is set),
//! and through the JS bridge from the ava suite.

use bytes::Bytes;

use super::*;

fn put_req(body: &str, condition: Condition) -> PutRequest {
    let mut metadata = Metadata::new();
    metadata.insert("0".into(), "abc".into());
    PutRequest { metadata, body: Bytes::from(body.to_string()), content_type: None, condition }
}

/// Runs every check under a fresh key space, `root` (e.g. a random prefix).
pub async fn run_all_under(store: &dyn ObjectStore, root: &str) {
    put_get_round_trip(store, root).await;
    create_only_is_exclusive(store, root).await;
    compare_and_swap(store, root).await;
    deletes(store, root).await;
    listing_pages_in_order(store, root).await;
}

pub async fn run_all(store: &dyn ObjectStore) {
    run_all_under(store, "conformance").await;
}

async fn put_get_round_trip(store: &dyn ObjectStore, root: &str) {
    let key = format!("{root}/rt/a=1/id=x ü:y");
    assert_eq!(store.get(&key).await.unwrap(), None, "missing key reads as None");
    let etag = store.put(&key, put_req("hello", Condition::None)).await.unwrap();
    let got = store.get(&key).await.unwrap().expect("object exists");
    assert_eq!(got.body, Bytes::from("hello"));
    assert_eq!(got.metadata.get("0").map(String::as_str), Some("abc"));
    assert_eq!(got.etag, normalize_etag(&etag), "get returns the etag put returned");
}

async fn create_only_is_exclusive(store: &dyn ObjectStore, root: &str) {
    let key = format!("{root}/create/lock");
    store.put(&key, put_req("one", Condition::Absent)).await.unwrap();
    let err = store.put(&key, put_req("two", Condition::Absent)).await.unwrap_err();
    assert!(err.is_precondition(), "second create fails with a precondition error: {err:?}");
    assert_eq!(store.get(&key).await.unwrap().unwrap().body, Bytes::from("one"));
}

async fn compare_and_swap(store: &dyn ObjectStore, root: &str) {
    let key = format!("{root}/cas/lock");
    let v1 = store.put(&key, put_req("v1", Condition::None)).await.unwrap();
    let v2 = store.put(&key, put_req("v2", Condition::Matches(v1.clone()))).await.unwrap();
    assert_ne!(normalize_etag(&v1), normalize_etag(&v2), "different bodies have different etags");
    let stale = store.put(&key, put_req("v3", Condition::Matches(v1))).await.unwrap_err();
    assert!(stale.is_precondition(), "a stale etag is refused: {stale:?}");
    let missing = store
        .put(&format!("{root}/cas/missing"), put_req("x", Condition::Matches(v2)))
        .await
        .unwrap_err();
    assert!(
        matches!(missing.kind, StoreErrorKind::NotFound | StoreErrorKind::Precondition),
        "If-Match on a missing key fails: {missing:?}"
    );
}

async fn deletes(store: &dyn ObjectStore, root: &str) {
    let key = format!("{root}/del/one");
    store.put(&key, put_req("x", Condition::None)).await.unwrap();
    store.delete(&key, Condition::None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.delete(&key, Condition::None).await.expect("deleting a missing key succeeds");
    let keys: Vec<String> = (0..5).map(|i| format!("{root}/del/many/{i}")).collect();
    for k in &keys {
        store.put(k, put_req("x", Condition::None)).await.unwrap();
    }
    store.delete_many(&keys).await.unwrap();
    assert!(list_all(store, &format!("{root}/del/many/")).await.unwrap().is_empty());
}

async fn listing_pages_in_order(store: &dyn ObjectStore, root: &str) {
    let prefix = format!("{root}/list/");
    let mut expected: Vec<String> = (0..25).map(|i| format!("{prefix}k{i:03}")).collect();
    for k in expected.iter().rev() {
        store.put(k, put_req("", Condition::None)).await.unwrap();
    }
    store.put(&format!("{root}/listing-sibling"), put_req("", Condition::None)).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store.list(&prefix, cursor.as_deref(), 10).await.unwrap();
        assert!(page.keys.len() <= 10);
        pages += 1;
        seen.extend(page.keys);
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    expected.sort();
    assert_eq!(seen, expected, "all keys under the prefix, sorted, nothing else");
    assert_eq!(pages, 3);
}
