//! The engine: shared context plus one `Field` per (resource, field) served.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::clock::Clock;
use crate::codec::ResourceSchema;
use crate::config::{Mode, Options};
use crate::consolidate::{Outcome, WaitPolicy};
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::host::{EventSink, RecordHost, Reducer};
use crate::keys::FieldKeys;
use crate::singleflight::SingleFlight;
use crate::store::DynStore;
use crate::txlog::WriteRequest;
use crate::txn::Transaction;

/// What every field of one plugin instance shares.
pub struct Context {
    pub store: DynStore,
    pub host: Arc<dyn RecordHost>,
    pub reducer: Option<Arc<dyn Reducer>>,
    pub events: Arc<dyn EventSink>,
    pub clock: Arc<dyn Clock>,
    pub options: Options,
    /// Names this process in lock bodies.
    pub holder: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("holder", &self.holder).field("options", &self.options).finish()
    }
}

/// One field of one resource: its keys, its transaction resource's schema,
/// and the in-process coalescing of its consolidations.
#[derive(Debug)]
pub struct Field {
    pub ctx: Arc<Context>,
    pub keys: FieldKeys,
    pub schema: ResourceSchema,
    pub(crate) flights: SingleFlight,
    pub(crate) batch: Batch,
}

impl Field {
    pub fn resource(&self) -> &str {
        &self.keys.resource
    }
    pub fn name(&self) -> &str {
        &self.keys.field
    }

    /// `set`/`add`/`sub`: durable once this returns; in sync mode the
    /// record holds the new value too.
    pub async fn record(self: &Arc<Self>, req: WriteRequest) -> Result<Transaction> {
        let o = &self.ctx.options;
        if o.batch_transactions && o.mode == Mode::Async {
            let prepared = self.prepare(req)?;
            let t = prepared.transaction.clone();
            self.enqueue(prepared).await?;
            return Ok(t);
        }
        let mut t = self.write(req).await?;
        if self.ctx.options.mode == Mode::Sync {
            let outcome = self.consolidate(&t.original_id, WaitPolicy::Wait).await?;
            t.applied = outcome.applied > 0 || !outcome.skipped;
        }
        Ok(t)
    }

    /// Consolidates one record; concurrent calls in this process share runs.
    pub async fn consolidate(self: &Arc<Self>, id: &str, policy: WaitPolicy) -> Result<Outcome> {
        crate::txn::validate_record_id(id)?;
        self.flush().await?;
        let field = Arc::clone(self);
        let owned = id.to_string();
        self.flights.run(id, move || async move { crate::consolidate::consolidate_record(&field, &owned, policy).await }).await
    }
}

pub struct Engine {
    ctx: Arc<Context>,
    fields: RwLock<HashMap<(String, String), Arc<Field>>>,
}

impl Engine {
    pub fn new(ctx: Context) -> Self {
        Engine { ctx: Arc::new(ctx), fields: RwLock::new(HashMap::new()) }
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Serves `field` of `resource`, whose transactions live in the resource `schema` describes.
    pub fn register(&self, resource: &str, field: &str, schema: ResourceSchema) -> Arc<Field> {
        let f = Arc::new(Field {
            ctx: Arc::clone(&self.ctx),
            keys: FieldKeys::new(resource, field),
            schema,
            flights: SingleFlight::default(),
            batch: Batch::default(),
        });
        self.fields.write().unwrap().insert((resource.to_string(), field.to_string()), Arc::clone(&f));
        f
    }

    pub fn field(&self, resource: &str, field: &str) -> Result<Arc<Field>> {
        self.fields
            .read()
            .unwrap()
            .get(&(resource.to_string(), field.to_string()))
            .cloned()
            .ok_or_else(|| Error::invalid(format!("no eventual-consistency field '{field}' on resource '{resource}'")))
    }

    pub fn fields(&self) -> Vec<Arc<Field>> {
        self.fields.read().unwrap().values().cloned().collect()
    }
}
