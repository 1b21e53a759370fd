//! `batchTransactions`: writes buffered in memory and committed together when
//! the batch fills, before a consolidation, and on stop. A crash loses what is
//! buffered (the manual says so; so does the README).

use std::sync::Mutex;

use futures::future::join_all;

use crate::engine::Field;
use crate::error::Result;
use crate::txlog::Prepared;

#[derive(Debug, Default)]
pub struct Batch {
    buffer: Mutex<Vec<Prepared>>,
    /// Serialises flushes so a `consolidate` after a flush sees every write.
    flushing: tokio::sync::Mutex<()>,
}

impl Batch {
    /// Queues `p`; returns the batch to write when it is full.
    fn push(&self, p: Prepared, size: usize) -> Option<Vec<Prepared>> {
        let mut b = self.buffer.lock().unwrap();
        b.push(p);
        (b.len() >= size).then(|| std::mem::take(&mut *b))
    }

    fn take(&self) -> Vec<Prepared> {
        std::mem::take(&mut *self.buffer.lock().unwrap())
    }

    pub fn len(&self) -> usize {
        self.buffer.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Field {
    pub fn buffered(&self) -> usize {
        self.batch.len()
    }

    /// Buffers a prepared write; a full batch is written before this returns.
    pub(crate) async fn enqueue(&self, p: Prepared) -> Result<()> {
        if let Some(full) = self.batch.push(p, self.ctx.options.batch_size) {
            let _one_at_a_time = self.batch.flushing.lock().await;
            self.commit_all(full).await?;
        }
        Ok(())
    }

    /// Writes what is buffered, in parallel. Returns how many were written;
    /// each failure is reported as an event and the first is returned.
    pub async fn flush(&self) -> Result<usize> {
        let _one_at_a_time = self.batch.flushing.lock().await;
        let items = self.batch.take();
        self.commit_all(items).await
    }

    pub(crate) async fn commit_all(&self, items: Vec<Prepared>) -> Result<usize> {
        if items.is_empty() {
            return Ok(0);
        }
        let results = join_all(items.into_iter().map(|p| self.commit(p))).await;
        let mut written = 0;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(_) => written += 1,
                Err(e) => {
                    self.report("transaction", None, &e);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}
