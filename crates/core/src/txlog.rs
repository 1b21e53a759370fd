//! Writing transactions: the s3db.js object and its partition references,
//! then the pending-index entry. The entry is written last, so an entry
//! always has its object and references behind it.

use futures::future::try_join_all;

use crate::clock::Millis;
use crate::codec::transaction as txcodec;
use crate::config::LateArrival;
use crate::engine::Field;
use crate::error::{Error, ErrorKind, Result};
use crate::host::Event;
use crate::keys::PendingEntry;
use crate::store::{Condition, PutRequest};
use crate::txn::{
    new_transaction_id, transaction_id_for_key, validate_amount, validate_idempotency_key, validate_record_id, Operation, Transaction,
};

#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    pub id: String,
    pub operation: Operation,
    pub value: f64,
    /// Idempotency key: a retry with the same key is counted once.
    pub key: Option<String>,
    /// Event time; defaults to now.
    pub timestamp_ms: Option<Millis>,
    pub source: Option<String>,
}

/// A validated transaction, not yet written.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub transaction: Transaction,
    keyed: bool,
    consolidate_later: bool,
}

const HOUR_MS: f64 = 3_600_000.0;

impl Field {
    /// Hours by which the cohort hour of `ts` lies before the window, or `None` when inside it.
    pub(crate) fn hours_late(&self, ts: Millis) -> Option<f64> {
        let o = &self.ctx.options;
        let age = (self.ctx.clock.now_ms() - o.timezone.hour_start(ts)) as f64;
        (age > o.consolidation_window * HOUR_MS).then(|| age / HOUR_MS)
    }

    /// Validates and writes a transaction; durable when this returns.
    pub async fn write(&self, req: WriteRequest) -> Result<Transaction> {
        let prepared = self.prepare(req)?;
        self.commit(prepared).await
    }

    /// Everything that needs no I/O: validation, the late-arrival rule, the
    /// id and the cohorts. Errors here mean nothing was written.
    pub fn prepare(&self, req: WriteRequest) -> Result<Prepared> {
        validate_record_id(&req.id)?;
        validate_amount(req.operation, req.value)?;
        if let Some(k) = &req.key {
            validate_idempotency_key(k)?;
        }
        let ts = req.timestamp_ms.unwrap_or_else(|| self.ctx.clock.now_ms());
        let cohort = self.ctx.options.timezone.cohort(ts);
        let late = self.hours_late(ts);
        if let Some(hours) = late {
            let strategy = self.ctx.options.late_arrival;
            let written = strategy != LateArrival::Ignore;
            self.ctx.events.emit(Event::LateArrival {
                resource: self.resource().into(),
                field: self.name().into(),
                id: req.id.clone(),
                cohort_hour: cohort.hour.clone(),
                hours_late: hours,
                written,
            });
            if !written {
                return Err(Error::new(
                    ErrorKind::LateArrival,
                    format!(
                        "transaction for {} is {hours:.1}h old, outside the {}h consolidation window; lateArrivalStrategy 'ignore' rejects it (nothing was written)",
                        cohort.hour, self.ctx.options.consolidation_window
                    ),
                ));
            }
        }
        let id = match &req.key {
            Some(k) => transaction_id_for_key(&format!("{}/{}/{}", self.resource(), self.name(), req.id), k),
            None => new_transaction_id(),
        };
        let t = Transaction {
            id,
            original_id: req.id.clone(),
            field: self.name().to_string(),
            value: req.value,
            operation: req.operation,
            timestamp_ms: ts,
            cohort,
            source: req.source.clone(),
            applied: false,
        };
        // A warned late arrival is kept for audit but never consolidated: no pending entry.
        let consolidate_later = late.is_none() || self.ctx.options.late_arrival == LateArrival::Process;
        Ok(Prepared { transaction: t, keyed: req.key.is_some(), consolidate_later })
    }

    /// Writes a prepared transaction: the object and its references, then the pending entry.
    pub async fn commit(&self, p: Prepared) -> Result<Transaction> {
        let t = p.transaction;
        if !self.put_object_and_references(&t).await? {
            if p.keyed {
                return self.resume_keyed(&t, p.consolidate_later).await;
            }
            return Err(Error::storage(format!("transaction id {} already exists (nanoid collision); retry", t.id)));
        }
        if p.consolidate_later {
            self.put_pending(&PendingEntry::from_transaction(&t)).await?;
        }
        Ok(t)
    }

    /// Creates the object only if absent; `false` when it already existed.
    async fn put_object_and_references(&self, t: &Transaction) -> Result<bool> {
        let store = &self.ctx.store;
        let data_key = self.schema.data_key(&t.id);
        let mut object = txcodec::encode(&self.schema, t)?;
        object.condition = Condition::Absent;
        let refs = txcodec::partition_keys(&self.schema, t);
        let data = async {
            match store.put(&data_key, object).await {
                Ok(_) => Ok(true),
                Err(e) if e.is_precondition() => Ok(false),
                Err(e) => Err(Error::from(e).context(format!("writing transaction {}", t.id))),
            }
        };
        let references = try_join_all(refs.iter().map(|key| self.put_reference(key)));
        let (created, references) = futures::join!(data, references);
        references?;
        created
    }

    async fn put_reference(&self, key: &str) -> Result<()> {
        self.ctx
            .store
            .put(key, self.schema.reference())
            .await
            .map(|_| ())
            .map_err(|e| Error::from(e).context(format!("writing partition reference {key}")))
    }

    pub(crate) async fn put_pending(&self, entry: &PendingEntry) -> Result<()> {
        let key = self.keys.pending_key(entry);
        self.ctx
            .store
            .put(&key, PutRequest::default())
            .await
            .map(|_| ())
            .map_err(|e| Error::from(e).context(format!("writing pending entry for transaction {}", entry.id)))
    }

    /// A keyed write whose object already exists: an earlier attempt (maybe
    /// in another process) got at least that far. Finish what it may not have
    /// and answer with the original transaction.
    async fn resume_keyed(&self, attempted: &Transaction, consolidate_later: bool) -> Result<Transaction> {
        let key = self.schema.data_key(&attempted.id);
        let obj = self
            .ctx
            .store
            .get(&key)
            .await
            .map_err(|e| Error::from(e).context(format!("reading transaction {}", attempted.id)))?
            .ok_or_else(|| Error::storage(format!("transaction {} vanished while being written", attempted.id)))?;
        let existing = txcodec::decode(&self.schema, &attempted.id, &obj)?;
        if existing.applied {
            return Ok(existing);
        }
        try_join_all(txcodec::partition_keys(&self.schema, &existing).iter().map(|k| self.put_reference(k))).await?;
        if consolidate_later {
            // It may have been applied since we read it: the entry asks consolidation to check.
            let mut entry = PendingEntry::from_transaction(&existing);
            entry.recheck = true;
            self.put_pending(&entry).await?;
        }
        Ok(existing)
    }
}
