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
    /// The `{resource}_analytics_{field}` resource, when analytics are on.
    pub analytics: Option<ResourceSchema>,
    pub(crate) flights: SingleFlight,
    pub(crate) batch: Batch,
    /// A background analytics fold is running / another was asked for meanwhile.
    pub(crate) folding: std::sync::atomic::AtomicBool,
    /// One fold at a time in this process; the S3 lock orders processes.
    pub(crate) fold_lock: tokio::sync::Mutex<()>,
    pub(crate) fold_again: std::sync::atomic::AtomicBool,
}

impl Field {
    /// Reports a failure of background work; it is retried on the next run.
    pub(crate) fn report(&self, stage: &'static str, id: Option<&str>, error: &dyn std::fmt::Display) {
        self.ctx.events.emit(crate::host::Event::Error {
            resource: self.resource().into(),
            field: self.name().into(),
            id: id.map(str::to_string),
            stage,
            message: error.to_string(),
        });
    }

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
        let out = self.flights.run(id, move || async move { crate::consolidate::consolidate_record(&field, &owned, policy).await }).await?;
        if out.applied > 0 {
            self.fold_in_background();
        }
        Ok(out)
    }

    /// Folds the analytics journal soon, off the caller's path; calls while a
    /// fold runs make it go round once more.
    pub fn fold_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.analytics.is_none() {
            return;
        }
        self.fold_again.store(true, SeqCst);
        if self.folding.swap(true, SeqCst) {
            return;
        }
        let field = Arc::clone(self);
        tokio::spawn(async move {
            while field.fold_again.swap(false, SeqCst) {
                if let Err(e) = field.fold_analytics().await {
                    field.report("analytics", None, &e);
                }
            }
            field.folding.store(false, SeqCst);
            // A request that arrived between the last check and the reset.
            if field.fold_again.load(SeqCst) {
                field.fold_in_background();
            }
        });
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
        self.register_with_analytics(resource, field, schema, None)
    }

    pub fn register_with_analytics(&self, resource: &str, field: &str, schema: ResourceSchema, analytics: Option<ResourceSchema>) -> Arc<Field> {
        let f = Arc::new(Field {
            ctx: Arc::clone(&self.ctx),
            keys: FieldKeys::new(resource, field),
            schema,
            analytics,
            flights: SingleFlight::default(),
            batch: Batch::default(),
            folding: Default::default(),
            fold_lock: Default::default(),
            fold_again: Default::default(),
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
