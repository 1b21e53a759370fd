//! The default reduction and the inputs a user reducer sees.

use crate::host::{RecordValue, ReducerInput};
use crate::txn::{Operation, Transaction};

/// `set` resets, `add` adds, `sub` subtracts, in timestamp order, from the
/// record's current value.
pub fn default_reduce(current: RecordValue, pending: &[Transaction]) -> f64 {
    pending.iter().fold(current.or_zero(), |acc, t| match t.operation {
        Operation::Set => t.value,
        Operation::Add => acc + t.value,
        Operation::Sub => acc - t.value,
    })
}

/// What a user reducer receives: the pending transactions in order, led by a
/// synthetic `set` of the current value unless a pending `set` exists.
pub fn reducer_inputs(original_id: &str, field: &str, current: RecordValue, pending: &[Transaction]) -> Vec<ReducerInput> {
    let mut inputs = Vec::with_capacity(pending.len() + 1);
    if !pending.iter().any(|t| t.operation == Operation::Set) {
        inputs.push(ReducerInput::Synthetic {
            original_id: original_id.to_string(),
            field: field.to_string(),
            value: current.or_zero(),
        });
    }
    inputs.extend(pending.iter().cloned().map(ReducerInput::Pending));
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cohort::Cohort;

    fn tx(op: Operation, value: f64, ms: i64) -> Transaction {
        Transaction {
            id: format!("t{ms}"),
            original_id: "w".into(),
            field: "balance".into(),
            value,
            operation: op,
            timestamp_ms: ms,
            cohort: Cohort { hour: "2025-01-01T00".into(), date: "2025-01-01".into(), month: "2025-01".into() },
            source: None,
            applied: false,
        }
    }

    #[test]
    fn default_reduction() {
        let p = [tx(Operation::Add, 50.0, 1), tx(Operation::Add, 30.0, 2)];
        assert_eq!(default_reduce(RecordValue::Present(1000.0), &p), 1080.0);
        let p = [tx(Operation::Add, 5.0, 1), tx(Operation::Set, 100.0, 2), tx(Operation::Sub, 25.0, 3)];
        assert_eq!(default_reduce(RecordValue::Present(7.0), &p), 75.0);
        assert_eq!(default_reduce(RecordValue::Missing, &[tx(Operation::Sub, 2.5, 1)]), -2.5);
    }

    #[test]
    fn synthetic_leads_only_without_a_pending_set() {
        let p = [tx(Operation::Add, 50.0, 1)];
        let inputs = reducer_inputs("w", "balance", RecordValue::Present(1000.0), &p);
        assert!(matches!(inputs[0], ReducerInput::Synthetic { value, .. } if value == 1000.0));
        assert_eq!(inputs.len(), 2);
        let p = [tx(Operation::Set, 5.0, 1), tx(Operation::Add, 1.0, 2)];
        assert_eq!(reducer_inputs("w", "balance", RecordValue::Present(1000.0), &p).len(), 2);
    }
}
