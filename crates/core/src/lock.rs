//! Locks on S3 as leases.
//!
//! Acquire = create with `If-None-Match: *`. The body carries a unique token,
//! the holder and the lease's expiry, so every version has its own ETag.
//! An expired lock is taken over with `If-Match: <its ETag>` (compare-and-swap),
//! never delete-then-create, so of two reclaimers only one wins. A holder renews
//! with `If-Match` on its own ETag; a failed renewal means someone took over.
//! Release deletes with `If-Match`, so a late release cannot drop a successor's lock.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::clock::{Clock, Millis};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Condition, ObjectStore, PutRequest, StoreErrorKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBody {
    pub token: String,
    pub holder: String,
    pub acquired_at: Millis,
    pub expires_at: Millis,
    /// The lease is never renewed past this (acquired_at + lockTimeout).
    pub deadline: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub key: String,
    pub body: LockBody,
    pub etag: String,
}

impl Lease {
    /// True while the lease has at least `margin_ms` left on `clock`.
    pub fn valid_for(&self, clock: &dyn Clock, margin_ms: Millis) -> bool {
        clock.now_ms() + margin_ms < self.body.expires_at
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Acquired {
    Yes(Lease),
    /// Someone else holds it until `expires_at`.
    HeldBy { holder: String, expires_at: Millis },
}

#[derive(Debug, Clone, Copy)]
pub struct LeaseTerms {
    /// How long one grant or renewal lasts.
    pub lease_ms: Millis,
    /// Bound on the whole tenure.
    pub max_hold_ms: Millis,
}

fn body_bytes(body: &LockBody) -> Bytes {
    Bytes::from(serde_json::to_vec(body).expect("lock body serializes"))
}

fn put(body: &LockBody, condition: Condition) -> PutRequest {
    PutRequest {
        body: body_bytes(body),
        content_type: Some("application/json".into()),
        condition,
        ..Default::default()
    }
}

fn new_body(holder: &str, now: Millis, terms: LeaseTerms) -> LockBody {
    let deadline = now + terms.max_hold_ms;
    LockBody {
        token: nanoid::nanoid!(),
        holder: holder.to_string(),
        acquired_at: now,
        expires_at: (now + terms.lease_ms).min(deadline),
        deadline,
    }
}

/// One attempt: take the lock if it is free or its lease has run out.
pub async fn try_acquire(store: &dyn ObjectStore, clock: &dyn Clock, key: &str, holder: &str, terms: LeaseTerms) -> Result<Acquired> {
    for _ in 0..3 {
        let body = new_body(holder, clock.now_ms(), terms);
        match store.put(key, put(&body, Condition::Absent)).await {
            Ok(etag) => return Ok(Acquired::Yes(Lease { key: key.to_string(), body, etag })),
            Err(e) if e.is_precondition() => {}
            Err(e) => return Err(Error::from(e).context(format!("acquiring lock {key}"))),
        }
        let Some(current) = store.get(key).await.map_err(|e| Error::from(e).context(format!("reading lock {key}")))? else {
            continue; // released in between: try to create again
        };
        let existing: Option<LockBody> = serde_json::from_slice(&current.body).ok();
        if let Some(b) = &existing {
            if b.token == body.token {
                // Our own create landed though its reply was lost.
                return Ok(Acquired::Yes(Lease { key: key.to_string(), body: b.clone(), etag: current.etag }));
            }
            if clock.now_ms() < b.expires_at {
                return Ok(Acquired::HeldBy { holder: b.holder.clone(), expires_at: b.expires_at });
            }
        }
        // Expired (or unreadable): take over only if nobody changed it since we read it.
        let body = new_body(holder, clock.now_ms(), terms);
        match store.put(key, put(&body, Condition::Matches(current.etag.clone()))).await {
            Ok(etag) => return Ok(Acquired::Yes(Lease { key: key.to_string(), body, etag })),
            Err(e) if e.is_precondition() || e.kind == StoreErrorKind::NotFound => {
                if let Some(now) = store.get(key).await.ok().flatten() {
                    if let Ok(b) = serde_json::from_slice::<LockBody>(&now.body) {
                        if b.token == body.token {
                            return Ok(Acquired::Yes(Lease { key: key.to_string(), body: b, etag: now.etag }));
                        }
                        if clock.now_ms() < b.expires_at {
                            return Ok(Acquired::HeldBy { holder: b.holder, expires_at: b.expires_at });
                        }
                    }
                }
            }
            Err(e) => return Err(Error::from(e).context(format!("taking over lock {key}"))),
        }
    }
    Ok(Acquired::HeldBy { holder: "unknown".into(), expires_at: clock.now_ms() })
}

/// Extends the lease; fails with `Fenced` when it is no longer ours.
pub async fn renew(store: &dyn ObjectStore, clock: &dyn Clock, lease: &Lease, terms: LeaseTerms) -> Result<Lease> {
    let now = clock.now_ms();
    if now >= lease.body.expires_at {
        return Err(fenced(&lease.key, "the lease expired before it was renewed"));
    }
    if now >= lease.body.deadline {
        return Err(fenced(&lease.key, "the lock was held for lockTimeout"));
    }
    let body = LockBody { expires_at: (now + terms.lease_ms).min(lease.body.deadline), ..lease.body.clone() };
    match store.put(&lease.key, put(&body, Condition::Matches(lease.etag.clone()))).await {
        Ok(etag) => Ok(Lease { key: lease.key.clone(), body, etag }),
        Err(e) if e.is_precondition() || e.kind == StoreErrorKind::NotFound => {
            // A retried renewal whose first attempt landed reads back as ours.
            match store.get(&lease.key).await {
                Ok(Some(obj)) if serde_json::from_slice::<LockBody>(&obj.body).is_ok_and(|b| b == body) => {
                    Ok(Lease { key: lease.key.clone(), body, etag: obj.etag })
                }
                _ => Err(fenced(&lease.key, "another process took the lock over")),
            }
        }
        Err(e) => Err(Error::from(e).context(format!("renewing lock {}", lease.key))),
    }
}

/// Deletes the lock if it is still ours; a lock already taken over is left alone.
pub async fn release(store: &dyn ObjectStore, lease: &Lease) -> Result<()> {
    match store.delete(&lease.key, Condition::Matches(lease.etag.clone())).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_precondition() || e.kind == StoreErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from(e).context(format!("releasing lock {}", lease.key))),
    }
}

/// Deletes expired locks under `prefix` whose key ends with `suffix` (left by
/// crashed holders), each only if unchanged since read. Returns how many went.
pub async fn cleanup_expired(store: &dyn ObjectStore, clock: &dyn Clock, prefix: &str, suffix: &str) -> Result<usize> {
    let keys = crate::store::list_all(store, prefix).await.map_err(|e| Error::from(e).context("listing locks"))?;
    let mut removed = 0;
    for key in keys.iter().filter(|k| k.ends_with(suffix)) {
        let Some(obj) = store.get(key).await.map_err(Error::from)? else { continue };
        let expired = serde_json::from_slice::<LockBody>(&obj.body).map_or(true, |b| clock.now_ms() >= b.expires_at);
        if expired && store.delete(key, Condition::Matches(obj.etag)).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

fn fenced(key: &str, why: &str) -> Error {
    Error::new(ErrorKind::Fenced, format!("lost lock {key}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    const TERMS: LeaseTerms = LeaseTerms { lease_ms: 15_000, max_hold_ms: 300_000 };

    #[tokio::test]
    async fn one_holder_until_release() {
        let store = MemoryStore::new();
        let clock = ManualClock::at(1_000_000);
        let Acquired::Yes(a) = try_acquire(&*store, &*clock, "l", "A", TERMS).await.unwrap() else { panic!() };
        assert!(matches!(try_acquire(&*store, &*clock, "l", "B", TERMS).await.unwrap(), Acquired::HeldBy { .. }));
        release(&*store, &a).await.unwrap();
        assert!(matches!(try_acquire(&*store, &*clock, "l", "B", TERMS).await.unwrap(), Acquired::Yes(_)));
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over_and_the_old_holder_is_fenced() {
        let store = MemoryStore::new();
        let clock = ManualClock::at(1_000_000);
        let Acquired::Yes(a) = try_acquire(&*store, &*clock, "l", "A", TERMS).await.unwrap() else { panic!() };
        clock.advance(16_000);
        let Acquired::Yes(b) = try_acquire(&*store, &*clock, "l", "B", TERMS).await.unwrap() else { panic!() };
        assert_eq!(b.body.holder, "B");
        let err = renew(&*store, &*clock, &a, TERMS).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Fenced);
        // A's late release does not remove B's lock.
        release(&*store, &a).await.unwrap();
        assert!(matches!(try_acquire(&*store, &*clock, "l", "C", TERMS).await.unwrap(), Acquired::HeldBy { .. }));
        renew(&*store, &*clock, &b, TERMS).await.unwrap();
    }

    #[tokio::test]
    async fn cleanup_removes_only_expired_locks() {
        let store = MemoryStore::new();
        let clock = ManualClock::at(0);
        let short = LeaseTerms { lease_ms: 1_000, max_hold_ms: 300_000 };
        try_acquire(&*store, &*clock, "locks/lock-consolidation-w-a-balance", "A", short).await.unwrap();
        try_acquire(&*store, &*clock, "locks/lock-consolidation-w-b-points", "A", short).await.unwrap();
        clock.advance(2_000);
        try_acquire(&*store, &*clock, "locks/lock-consolidation-w-c-balance", "B", short).await.unwrap();
        let removed = cleanup_expired(&*store, &*clock, "locks/lock-consolidation-w-", "-balance").await.unwrap();
        assert_eq!(removed, 1);
        assert_eq!(store.keys(), vec!["locks/lock-consolidation-w-b-points", "locks/lock-consolidation-w-c-balance"]);
    }

    #[tokio::test]
    async fn renewal_never_passes_the_deadline() {
        let store = MemoryStore::new();
        let clock = ManualClock::at(0);
        let terms = LeaseTerms { lease_ms: 10_000, max_hold_ms: 25_000 };
        let Acquired::Yes(mut l) = try_acquire(&*store, &*clock, "l", "A", terms).await.unwrap() else { panic!() };
        for _ in 0..2 {
            clock.advance(9_000);
            l = renew(&*store, &*clock, &l, terms).await.unwrap();
        }
        assert_eq!(l.body.expires_at, 25_000);
        clock.advance(7_500);
        assert_eq!(renew(&*store, &*clock, &l, terms).await.unwrap_err().kind, ErrorKind::Fenced);
    }
}
