//! Coalesces consolidations of one record inside this process: a caller
//! needs a run that *started* after it arrived (so it saw the caller's
//! transaction); if one finished while it waited, it takes that result.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::consolidate::Outcome;
use crate::error::Result;

#[derive(Debug, Default)]
struct Slot {
    run_lock: tokio::sync::Mutex<()>,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    arrivals: u64,
    /// Arrival count when the last successful run started, and its result.
    last: Option<(u64, Outcome)>,
    users: usize,
}

#[derive(Debug, Default)]
pub struct SingleFlight {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl SingleFlight {
    pub async fn run<F, Fut>(&self, key: &str, f: F) -> Result<Outcome>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Outcome>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap();
            let slot = Arc::clone(slots.entry(key.to_string()).or_default());
            slot.state.lock().unwrap().users += 1;
            slot
        };
        let arrived = {
            let mut s = slot.state.lock().unwrap();
            s.arrivals += 1;
            s.arrivals
        };
        let result = {
            let _turn = slot.run_lock.lock().await;
            let shared = {
                let s = slot.state.lock().unwrap();
                s.last.as_ref().filter(|(started, _)| *started >= arrived).map(|(_, o)| o.clone())
            };
            match shared {
                Some(outcome) => Ok(Outcome { applied: 0, ..outcome }),
                None => {
                    let started = slot.state.lock().unwrap().arrivals;
                    let r = f().await;
                    if let Ok(o) = &r {
                        if !o.skipped {
                            slot.state.lock().unwrap().last = Some((started, o.clone()));
                        }
                    }
                    r
                }
            }
        };
        let mut slots = self.slots.lock().unwrap();
        let remove = {
            let mut s = slot.state.lock().unwrap();
            s.users -= 1;
            s.users == 0
        };
        if remove {
            slots.remove(key);
        }
        result
    }
}
