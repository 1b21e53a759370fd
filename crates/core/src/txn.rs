//! A transaction: one `set`, `add` or `sub` of one field of one record.

use crate::clock::{iso_millis, Millis};
use crate::cohort::Cohort;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    Set,
    Add,
    Sub,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Set => "set",
            Operation::Add => "add",
            Operation::Sub => "sub",
        }
    }
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "set" => Some(Operation::Set),
            "add" => Some(Operation::Add),
            "sub" => Some(Operation::Sub),
            _ => None,
        }
    }
    /// The value's contribution to a sum of changes: `sub` counts negative.
    pub fn signed(self, value: f64) -> f64 {
        match self {
            Operation::Sub => -value,
            _ => value,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub id: String,
    pub original_id: String,
    pub field: String,
    pub value: f64,
    pub operation: Operation,
    pub timestamp_ms: Millis,
    pub cohort: Cohort,
    pub source: Option<String>,
    pub applied: bool,
}

impl Transaction {
    pub fn timestamp(&self) -> String {
        iso_millis(self.timestamp_ms)
    }
}

/// Ids s3db.js accepts in keys: non-empty, no `/`, bounded so keys stay under S3's 1024 bytes.
pub fn validate_record_id(id: &str) -> Result<()> {
    if id.trim().is_empty() {
        return Err(Error::range("record id must be a non-empty string"));
    }
    if id.contains(['/', '\\', '=', '%']) {
        return Err(Error::range(format!("record id {id:?} may not contain '/', '\\', '=' or '%' (s3db.js rejects them in object keys)")));
    }
    if id.len() > 256 {
        return Err(Error::range(format!("record id is {} bytes; at most 256 are allowed", id.len())));
    }
    Ok(())
}

pub fn validate_amount(op: Operation, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::range(format!("{}: amount must be a finite number, got {value}", op.name())));
    }
    Ok(())
}

/// Transaction ids: nanoid, or derived from an idempotency key so that a
/// retry with the same key names the same object.
pub fn new_transaction_id() -> String {
    nanoid::nanoid!()
}

/// Ids `transaction_id_for_key` makes: `k` and 21 more characters (nanoid's are 21).
pub fn is_keyed_id(id: &str) -> bool {
    id.len() == 22 && id.starts_with('k')
}

pub fn validate_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 200 {
        return Err(Error::range("idempotency key must be a string of 1 to 200 characters"));
    }
    Ok(())
}

/// Stable across processes and runs: SHA-256 of the scope and key, 126 bits
/// of it in nanoid's alphabet, prefixed so keyed ids are recognisable.
pub fn transaction_id_for_key(scope: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let digest = Sha256::new().chain_update(scope).chain_update([0u8]).chain_update(key).finalize();
    let mut out = String::from("k");
    out.extend(digest.iter().take(21).map(|b| ALPHABET[(b & 63) as usize] as char));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_stable_and_scoped() {
        let a = transaction_id_for_key("wallets/balance/w1", "order-17");
        assert_eq!(a, transaction_id_for_key("wallets/balance/w1", "order-17"));
        assert_ne!(a, transaction_id_for_key("wallets/balance/w2", "order-17"));
        assert_ne!(a, transaction_id_for_key("wallets/balance/w1", "order-18"));
        assert_eq!(a.len(), 22);
        assert!(is_keyed_id(&a));
        assert!(!is_keyed_id(&new_transaction_id()));
    }

    #[test]
    fn ids_and_amounts_are_checked() {
        assert!(validate_record_id("").is_err());
        assert!(validate_record_id("a/b").is_err());
        assert!(validate_record_id("wallet-1 ção").is_ok());
        assert!(validate_amount(Operation::Add, f64::NAN).is_err());
        assert!(validate_amount(Operation::Add, f64::INFINITY).is_err());
        assert!(validate_amount(Operation::Sub, -3.5).is_ok());
    }
}
