//! The plugin's own key space, beside s3db.js's `resource=…` objects:
//!
//! ```text
//! plugin=eventual-consistency-native/
//!   {resource}/{field}/pending/{id}/{entry}     one empty object per pending transaction
//!   {resource}/{field}/checkpoint/{id}          the record's last consolidation (JSON)
//!   locks/lock-consolidation-{resource}-{id}-{field}
//!   locks/lock-gc-{resource}-{field}
//! ```
//!
//! A pending entry's *key* carries everything consolidation needs (time,
//! id, operation, value, cohort, source), so one LIST returns a record's
//! pending transactions in timestamp order without a GET each.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::cohort::Cohort;
use crate::txn::{Operation, Transaction};

pub const NAMESPACE: &str = "plugin=eventual-consistency-native";

/// Everything but `[A-Za-z0-9._-]` is escaped, so `/`, `~` and `=` never appear raw.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Keys stay well under S3's 1024-byte limit; a longer source is read from the object instead.
const MAX_SOURCE_IN_KEY: usize = 300;

pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub fn decode_segment(s: &str) -> Option<String> {
    percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldKeys {
    pub resource: String,
    pub field: String,
    root: String,
}

impl FieldKeys {
    pub fn new(resource: &str, field: &str) -> Self {
        FieldKeys {
            resource: resource.to_string(),
            field: field.to_string(),
            root: format!("{NAMESPACE}/{}/{}", encode_segment(resource), encode_segment(field)),
        }
    }

    pub fn pending_root(&self) -> String {
        format!("{}/pending/", self.root)
    }

    pub fn pending_prefix(&self, record_id: &str) -> String {
        format!("{}/pending/{}/", self.root, encode_segment(record_id))
    }

    pub fn pending_key(&self, entry: &PendingEntry) -> String {
        format!("{}{}", self.pending_prefix(&entry.original_id), entry.encode())
    }

    pub fn checkpoint_key(&self, record_id: &str) -> String {
        format!("{}/checkpoint/{}", self.root, encode_segment(record_id))
    }

    pub fn analytics_journal_prefix(&self) -> String {
        format!("{}/analytics/journal/", self.root)
    }

    /// One consolidation batch's analytics delta: record and checkpoint seq make it unique and stable.
    pub fn analytics_journal(&self, record_id: &str, seq: u64) -> String {
        format!("{}{}~{seq:012}", self.analytics_journal_prefix(), encode_segment(record_id))
    }

    pub fn analytics_roller(&self) -> String {
        format!("{}/analytics/roller", self.root)
    }

    pub fn analytics_records_prefix(&self, row_id: &str) -> String {
        format!("{}/analytics/records/{}/", self.root, encode_segment(row_id))
    }

    pub fn analytics_lock(&self) -> String {
        format!("{NAMESPACE}/locks/lock-analytics-{}-{}", encode_segment(&self.resource), encode_segment(&self.field))
    }

    pub fn gc_state(&self) -> String {
        format!("{}/gc-state", self.root)
    }

    /// Prefix of this field's consolidation locks (they end with `-{field}`).
    pub fn consolidation_locks_prefix(&self) -> String {
        format!("{NAMESPACE}/locks/lock-consolidation-{}-", encode_segment(&self.resource))
    }

    pub fn consolidation_lock(&self, record_id: &str) -> String {
        format!(
            "{NAMESPACE}/locks/lock-consolidation-{}-{}-{}",
            encode_segment(&self.resource),
            encode_segment(record_id),
            encode_segment(&self.field)
        )
    }

    pub fn gc_lock(&self) -> String {
        format!("{NAMESPACE}/locks/lock-gc-{}-{}", encode_segment(&self.resource), encode_segment(&self.field))
    }

    pub fn cleanup_lock(&self) -> String {
        format!("{NAMESPACE}/locks/lock-cleanup-{}-{}", encode_segment(&self.resource), encode_segment(&self.field))
    }

    /// Parses a key listed under `pending_root()`.
    pub fn parse_pending(&self, key: &str) -> Option<PendingEntry> {
        let rest = key.strip_prefix(&self.pending_root())?;
        let (id, entry) = rest.split_once('/')?;
        PendingEntry::decode(&decode_segment(id)?, entry)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceInKey {
    None,
    Inline(String),
    /// Too long for a key: read the transaction object.
    InObject,
}

/// A pending transaction as its index key spells it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    pub original_id: String,
    pub timestamp_ms: i64,
    pub id: String,
    pub operation: Operation,
    pub value: f64,
    /// `YYYY-MM-DDTHH`; date and month are its prefixes.
    pub cohort_hour: String,
    pub source: SourceInKey,
    /// Re-created by a keyed retry: confirm with the object that it is still unapplied.
    pub recheck: bool,
}

impl PendingEntry {
    pub fn from_transaction(t: &Transaction) -> Self {
        let source = match &t.source {
            None => SourceInKey::None,
            Some(s) if encode_segment(s).len() <= MAX_SOURCE_IN_KEY => SourceInKey::Inline(s.clone()),
            Some(_) => SourceInKey::InObject,
        };
        PendingEntry {
            original_id: t.original_id.clone(),
            timestamp_ms: t.timestamp_ms,
            id: t.id.clone(),
            operation: t.operation,
            value: t.value,
            cohort_hour: t.cohort.hour.clone(),
            source,
            recheck: false,
        }
    }

    /// Keyed transactions (ids from `transaction_id_for_key`) are read from
    /// their object at consolidation: a retry may have re-created the entry,
    /// and the object, not an entry, says what the transaction is.
    pub fn needs_object(&self) -> bool {
        self.recheck || self.source == SourceInKey::InObject || crate::txn::is_keyed_id(&self.id)
    }

    pub fn cohort(&self) -> Cohort {
        Cohort {
            date: self.cohort_hour[..10.min(self.cohort_hour.len())].to_string(),
            month: self.cohort_hour[..7.min(self.cohort_hour.len())].to_string(),
            hour: self.cohort_hour.clone(),
        }
    }

    /// The transaction as stored, when the key holds all of it.
    pub fn to_transaction(&self, field: &str, applied: bool) -> Option<Transaction> {
        let source = match &self.source {
            SourceInKey::None => None,
            SourceInKey::Inline(s) => Some(s.clone()),
            SourceInKey::InObject => return None,
        };
        Some(Transaction {
            id: self.id.clone(),
            original_id: self.original_id.clone(),
            field: field.to_string(),
            value: self.value,
            operation: self.operation,
            timestamp_ms: self.timestamp_ms,
            cohort: self.cohort(),
            source,
            applied,
        })
    }

    /// `{ms:013}~{id}~{op}~{value}~{hour}~{n | s<source> | o}~{flags}`:
    /// fixed-width time first, so a listing is in timestamp order.
    pub fn encode(&self) -> String {
        let source = match &self.source {
            SourceInKey::None => "n".to_string(),
            SourceInKey::Inline(s) => format!("s{}", encode_segment(s)),
            SourceInKey::InObject => "o".to_string(),
        };
        format!(
            "{:013}~{}~{}~{}~{}~{}~{}",
            self.timestamp_ms.max(0),
            self.id,
            self.operation.name(),
            self.value,
            encode_segment(&self.cohort_hour),
            source,
            if self.recheck { "r" } else { "" }
        )
    }

    pub fn decode(original_id: &str, entry: &str) -> Option<Self> {
        let mut parts = entry.split('~');
        let timestamp_ms = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_string();
        let operation = Operation::parse(parts.next()?)?;
        let value: f64 = parts.next()?.parse().ok()?;
        let cohort_hour = decode_segment(parts.next()?)?;
        let source_part = parts.next()?;
        let source = match source_part.as_bytes().first()? {
            b'n' => SourceInKey::None,
            b's' => SourceInKey::Inline(decode_segment(&source_part[1..])?),
            b'o' => SourceInKey::InObject,
            _ => return None,
        };
        let recheck = parts.next()?.contains('r');
        if parts.next().is_some() || !value.is_finite() || id.is_empty() {
            return None;
        }
        Some(PendingEntry { original_id: original_id.to_string(), timestamp_ms, id, operation, value, cohort_hour, source, recheck })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(source: SourceInKey, value: f64) -> PendingEntry {
        PendingEntry {
            original_id: "wallet/ção~1".into(),
            timestamp_ms: 1_728_396_000_123,
            id: "V1StGXR8_Z5jdHi6B-myT".into(),
            operation: Operation::Sub,
            value,
            cohort_hour: "2024-10-08T11".into(),
            source,
            recheck: false,
        }
    }

    #[test]
    fn pending_keys_round_trip() {
        let keys = FieldKeys::new("wallets", "balance");
        for (source, value) in [
            (SourceInKey::None, 10.0),
            (SourceInKey::Inline("api ção~/x".into()), -0.1),
            (SourceInKey::InObject, 1e21),
            (SourceInKey::None, 1e-7),
            (SourceInKey::None, -0.0),
        ] {
            let e = entry(source, value);
            let key = keys.pending_key(&e);
            assert!(key.starts_with("plugin=eventual-consistency-native/wallets/balance/pending/wallet%2F"), "{key}");
            let back = keys.parse_pending(&key).expect(&key);
            assert_eq!(back, e);
            assert_eq!(back.value.to_bits(), value.to_bits());
        }
    }

    #[test]
    fn pending_keys_sort_by_time() {
        let keys = FieldKeys::new("wallets", "balance");
        let mut a = entry(SourceInKey::None, 1.0);
        let mut b = a.clone();
        a.timestamp_ms = 999;
        b.timestamp_ms = 1_000;
        assert!(keys.pending_key(&a) < keys.pending_key(&b));
    }

    #[test]
    fn long_sources_stay_out_of_keys() {
        let t = entry(SourceInKey::None, 1.0).to_transaction("balance", false).unwrap();
        let long = Transaction { source: Some("x".repeat(400)), ..t };
        assert_eq!(PendingEntry::from_transaction(&long).source, SourceInKey::InObject);
    }
}
