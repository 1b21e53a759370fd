//! Holding a lock while working: a heartbeat task renews the lease; work
//! asks `check()` before every write that must not land after a takeover.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Options;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::{self, Lease, LeaseTerms};
use crate::store::DynStore;

/// Lease length in heartbeats: a dead holder's record is free again within
/// 1.5 to 2.5 heartbeats, and a live one may renew up to a heartbeat late (a
/// slow or retried request) before its own check fences it.
pub const LEASE_HEARTBEATS: f64 = 2.5;

/// A lease lasts `LEASE_HEARTBEATS`, never past `lockTimeout` in all.
pub fn terms(o: &Options) -> LeaseTerms {
    LeaseTerms {
        lease_ms: ((o.lock_heartbeat * LEASE_HEARTBEATS).min(o.lock_timeout) * 1000.0) as i64,
        max_hold_ms: (o.lock_timeout * 1000.0) as i64,
    }
}

pub struct LeaseGuard {
    store: DynStore,
    clock: Arc<dyn Clock>,
    lease: Arc<Mutex<Lease>>,
    lost: Arc<AtomicBool>,
    stop: tokio::sync::watch::Sender<bool>,
    heartbeat: tokio::task::JoinHandle<()>,
    margin_ms: i64,
}

impl LeaseGuard {
    pub fn start(store: DynStore, clock: Arc<dyn Clock>, lease: Lease, terms: LeaseTerms, heartbeat_s: f64) -> Self {
        let lease = Arc::new(Mutex::new(lease));
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let period = Duration::from_secs_f64(heartbeat_s);
        let task = {
            let (store, clock, lease, lost) = (Arc::clone(&store), Arc::clone(&clock), Arc::clone(&lease), Arc::clone(&lost));
            tokio::spawn(async move {
                // Renewals start every period however long each takes (not a sleep after
                // each), so a slow server costs the lease one renewal's latency, not the sum.
                let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = stopped.changed() => return,
                    }
                    let current = lease.lock().unwrap().clone();
                    match lock::renew(&*store, &*clock, &current, terms).await {
                        Ok(renewed) => *lease.lock().unwrap() = renewed,
                        Err(e) if e.kind == ErrorKind::Fenced => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A failed renewal is retried next beat; `check()` watches the expiry.
                        Err(_) => {}
                    }
                }
            })
        };
        // Half a heartbeat to spare: time for the write a check admits to land.
        LeaseGuard { store, clock, lease, lost, stop, heartbeat: task, margin_ms: (heartbeat_s * 500.0) as i64 }
    }

    pub fn token(&self) -> String {
        self.lease.lock().unwrap().body.token.clone()
    }

    /// Fails with `Fenced` once the lease is lost or close to expiring.
    pub fn check(&self) -> Result<()> {
        let lease = self.lease.lock().unwrap();
        if self.lost.load(Ordering::SeqCst) || !lease.valid_for(&*self.clock, self.margin_ms.min(lease_len(&lease) / 2)) {
            return Err(Error::new(
                ErrorKind::Fenced,
                format!("lost the lease on {} (another process may have taken over); stopped before its next write", lease.key),
            ));
        }
        Ok(())
    }

    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.heartbeat.await;
        let lease = self.lease.lock().unwrap().clone();
        // Best effort: a lock we fail to delete expires with its lease.
        let _ = lock::release(&*self.store, &lease).await;
    }
}

fn lease_len(l: &Lease) -> i64 {
    (l.body.expires_at - l.body.acquired_at).max(0)
}
