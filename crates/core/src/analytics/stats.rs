//! The numbers an analytics row carries, and how they add up.

use serde::{Deserialize, Serialize};

use crate::txn::{Operation, Transaction};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    pub count: u64,
    pub sum: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ops {
    pub add: OpStats,
    pub sub: OpStats,
    pub set: OpStats,
}

/// count/sum/min/max over signed values (`sub` counts negative), per operation too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub ops: Ops,
}

impl Stats {
    pub fn add(&mut self, t: &Transaction) {
        let v = t.operation.signed(t.value);
        self.count += 1;
        self.sum += v;
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        let op = match t.operation {
            Operation::Add => &mut self.ops.add,
            Operation::Sub => &mut self.ops.sub,
            Operation::Set => &mut self.ops.set,
        };
        op.count += 1;
        op.sum += v;
    }

    pub fn merge(&mut self, o: &Stats) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (mine, theirs) in [(&mut self.ops.add, &o.ops.add), (&mut self.ops.sub, &o.ops.sub), (&mut self.ops.set, &o.ops.set)] {
            mine.count += theirs.count;
            mine.sum += theirs.sum;
        }
    }

    pub fn avg(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// One record's share of a cohort (what `getTopRecords` ranks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordShare {
    pub count: u64,
    pub sum: f64,
}

impl RecordShare {
    pub fn merge(&mut self, o: &RecordShare) {
        self.count += o.count;
        self.sum += o.sum;
    }
}
