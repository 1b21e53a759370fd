//! Time source. Injectable so tests can move time instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> Millis;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        d.as_millis() as Millis
    }
}

/// System time plus an adjustable offset: lets a test (or a debugging user)
/// jump hours ahead while timers and I/O keep running for real.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_ms: AtomicI64,
}

impl OffsetClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    pub fn advance(&self, ms: Millis) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set_offset(&self, ms: Millis) {
        self.offset_ms.store(ms, Ordering::SeqCst);
    }
    pub fn offset(&self) -> Millis {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> Millis {
        SystemClock.now_ms() + self.offset()
    }
}

/// A clock that only moves when told to (Rust unit tests).
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    pub fn at(ms: Millis) -> Arc<Self> {
        Arc::new(Self { now: AtomicI64::new(ms) })
    }
    pub fn advance(&self, ms: Millis) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

/// ISO-8601 UTC with milliseconds, the format JavaScript's `Date#toISOString` prints.
pub fn iso_millis(ms: Millis) -> String {
    use chrono::{DateTime, SecondsFormat, Utc};
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO-8601 / RFC 3339 timestamp into epoch milliseconds.
pub fn parse_iso(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_matches_js_format() {
        let ms = 1_728_396_000_123; // 2024-10-08T14:00:00.123Z
        assert_eq!(iso_millis(ms), "2024-10-08T14:00:00.123Z");
        assert_eq!(parse_iso("2024-10-08T14:00:00.123Z"), Some(ms));
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
    }
}
