'use strict'

// EventualConsistencyPlugin for s3db.js. This file speaks s3db.js's plugin
// contract (install/start/stop, resource hooks, methods on the resource,
// EventEmitter); the Rust core behind `binding.js` does the rest.

const { EventEmitter } = require('node:events')
const native = require('./binding.js')
const { callNative, callNativeSync, makeError, EventualConsistencyError } = require('./lib/errors')
const { createHost } = require('./lib/host')
const { attach, detach } = require('./lib/methods')
const { storeSpecFor } = require('./lib/store-spec')
const { checkField, createSupportResources } = require('./lib/resources')
const { routeEvent } = require('./lib/events')

/** How the reducer function crosses to the core (which only checks one was given). */
const FUNCTION_MARKER = { $ecFunction: true }

/** Options that are objects of the host, not configuration. */
const NOT_CONFIG = new Set(['logger', 'database', 'client'])

/** Options as JSON for the core: the reducer becomes a marker, non-finite numbers their names. */
function optionsJson(options) {
  return JSON.stringify(options, function (key, value) {
    if (this === options && NOT_CONFIG.has(key)) return undefined
    if (typeof value === 'function') return key === 'reducer' && this === options ? FUNCTION_MARKER : undefined
    if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
    return value
  })
}

function systemTimezone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined
  } catch {
    return undefined
  }
}

class EventualConsistencyPlugin extends EventEmitter {
  constructor(options = {}) {
    super()
    if (options === null || typeof options !== 'object') {
      throw makeError('EC_INVALID_CONFIG', `EventualConsistencyPlugin options must be an object, got ${options === null ? 'null' : typeof options}`)
    }
    this.options = options
    this._optionsJson = optionsJson(options)
    this.config = callNativeSync(() => native.parseConfig(this._optionsJson, systemTimezone()))
    this.reducer = typeof options.reducer === 'function' ? options.reducer : null
    this.database = null
    this.engine = null
    this.instanceName = undefined
    this._handlers = new Map()
    this._unsubscribe = []
    this._stopped = false
    this._inFlight = new Set()
  }

  setInstanceName(name) {
    this.instanceName = name
  }

  async install(database) {
    this.database = database
    this._stopped = false
    const host = createHost({
      client: () => this.database.client,
      resourceFor: (name) => {
        const r = this.database.resources[name]
        if (!r) throw new Error(`resource '${name}' does not exist`)
        return r
      },
      reducerFor: () => this.reducer,
      onEvent: (event) => this._onNativeEvent(event),
    })
    const spec = storeSpecFor(database.client)
    this.engine = callNativeSync(() => new native.NativeEngine(this._optionsJson, JSON.stringify(spec), host, systemTimezone()))
    this.storeKind = spec.kind
    this._watchResources(database)
    await Promise.all(this.config.targets.filter((t) => database.resources[t.resource]).map((t) => this._setup(t)))
  }

  async start() {
    if (!this.engine) return
    this.engine.start()
    for (const t of this.config.targets) {
      this._emitBoth('started', { resource: t.resource, field: t.field, cohort: { granularity: 'hour', timezone: this.config.timezone } })
    }
  }

  /** Stops background work, waits for the run and the calls in flight (at most lockTimeout), and writes batched transactions. */
  async stop() {
    if (this._stopped) return
    this._stopped = true
    for (const off of this._unsubscribe.splice(0)) off()
    if (this.engine) await callNative(() => this.engine.stop())
    await this._settleInFlight()
    for (const t of this.config.targets) this._emitBoth('stopped', { resource: t.resource, field: t.field })
  }

  /**
   * Calls into the core that use the database (sync writes, consolidations) still
   * running: stop() waits for them, at most lockTimeout, so that a disconnect
   * after it never leaves one waiting on a closed client with its lock renewed.
   */
  _track(promise) {
    this._inFlight.add(promise)
    promise.finally(() => this._inFlight.delete(promise)).catch(() => {})
    return promise
  }

  async _settleInFlight() {
    if (this._inFlight.size === 0) return
    let timer
    const bound = new Promise((resolve) => {
      timer = setTimeout(resolve, this.config.lockTimeout * 1000)
      timer.unref()
    })
    await Promise.race([Promise.allSettled([...this._inFlight]), bound])
    clearTimeout(timer)
  }

  /** One consolidation run over every field now (what the background task does each interval). */
  async runConsolidation() {
    await Promise.all([...this._handlers.values()].map((h) => h.ready))
    return this._track(callNative(() => this.engine.consolidateAll()))
  }

  /** One garbage collection pass now: `[{ resource, field, deletedCount, keptPending, days, skipped, durationMs }]`. */
  async runGarbageCollection() {
    await Promise.all([...this._handlers.values()].map((h) => h.ready))
    return this._track(callNative(() => this.engine.collectGarbage()))
  }

  /** Alias of runConsolidation(), as s3db.js's own plugin names it. */
  consolidateAll() {
    return this.runConsolidation()
  }

  async uninstall() {
    await this.stop()
    for (const h of this._handlers.values()) if (h.resource) detach(h.resource, h.field)
    this._handlers.clear()
  }

  /**
   * One day's transactions: `{ date, transactionCount, byOperation: { set, add, sub }, totalValue, applied, pending }`.
   * `date` is YYYY-MM-DD in the configured timezone; name the field when the plugin serves several.
   */
  async getCohortStats(date, target = {}) {
    const t = this._target('getCohortStats', target)
    await this._ready(t)
    return callNative(() => this.engine.cohortStats(t.resource, t.field, date instanceof Date ? date.toISOString().slice(0, 10) : String(date)))
  }

  /**
   * Pre-computed analytics of one field: `[{ cohort, count, sum, avg, min, max, recordCount }]`
   * sorted by cohort (`breakdown: 'operations'` gives `{ cohort, add, sub, set }`).
   * Options: `{ period: 'hour'|'day'|'month', date | startDate+endDate | month | year, breakdown, metrics }`.
   */
  async getAnalytics(resourceName, field, options = {}) {
    const t = this._analyticsTarget('getAnalytics', resourceName, field)
    await this._ready(t)
    return callNative(() => this.engine.analytics(t.resource, t.field, JSON.stringify(options ?? {})))
  }

  /** Top records of a cohort: `[{ recordId, count, sum }]`, highest first. Options: `{ period, date, metric: 'transactionCount'|'totalValue', limit }`. */
  async getTopRecords(resourceName, field, options = {}) {
    const t = this._analyticsTarget('getTopRecords', resourceName, field)
    await this._ready(t)
    return callNative(() => this.engine.topRecords(t.resource, t.field, JSON.stringify(options ?? {})))
  }

  _analyticsTarget(method, resource, field) {
    if (typeof resource !== 'string' || typeof field !== 'string') {
      throw makeError('EC_INVALID_ARGUMENT', `${method}(resourceName, field, options): resourceName and field must be strings`)
    }
    const t = this.config.targets.find((x) => x.resource === resource && x.field === field)
    if (!t) {
      throw makeError('EC_UNKNOWN_FIELD', `${method}: this plugin serves no field '${field}' on resource '${resource}' (it serves ${this.config.targets.map((x) => `${x.resource}.${x.field}`).join(', ')})`)
    }
    if (!this.config.enableAnalytics) {
      throw makeError('EC_OUT_OF_RANGE', `${method}: analytics are not enabled for ${resource}.${field} (enableAnalytics: true)`)
    }
    return t
  }

  _target(method, { resource, field } = {}) {
    const targets = this.config.targets.filter((t) => (!resource || t.resource === resource) && (!field || t.field === field))
    if (targets.length === 1) return targets[0]
    if (targets.length === 0) throw makeError('EC_UNKNOWN_FIELD', `${method}: this plugin serves no field ${resource || '*'}.${field || '*'}`)
    throw makeError('EC_FIELD_REQUIRED', `${method}: this plugin serves ${targets.map((x) => `${x.resource}.${x.field}`).join(', ')}; pass { resource, field }`)
  }

  async _ready(target) {
    const handler = this._handlers.get(`${target.resource}.${target.field}`)
    if (!handler) throw makeError('EC_NOT_READY', `resource '${target.resource}' does not exist yet; create it first`)
    await handler.ready
  }

  /**
   * Test hooks: move this plugin's clock (windows, late arrivals, leases) and
   * count buffered writes. Not for production use.
   */
  get testing() {
    const engine = this.engine
    return {
      setClockOffset: (ms) => engine.setClockOffset(ms),
      buffered: () => engine.buffered(),
      tryLock: (key, leaseMs) => callNative(() => engine.testTryLock(key, leaseMs)),
      releaseLock: (key) => callNative(() => engine.testReleaseLock(key)),
    }
  }

  /** S3 requests the core made, by type (for benchmarks and tests). */
  requestCounts() {
    return this.engine ? this.engine.requestCounts() : null
  }

  _watchResources(db) {
    const onResource = (name) => {
      if (this._stopped) return undefined
      const targets = this.config.targets.filter((t) => t.resource === name)
      return Promise.all(targets.map((t) => this._setup(t)))
    }
    const onConnected = () => {
      for (const t of this.config.targets) if (!this._stopped && db.resources[t.resource]) this._setup(t)
    }
    const events = [
      ['db:resource-created', onResource],
      ['db:resource-updated', onResource],
      ['db:connected', onConnected],
    ]
    for (const [event, fn] of events) {
      db.on(event, fn)
      this._unsubscribe.push(() => db.off(event, fn))
    }
    const onDisconnect = () => this.stop()
    db.once('disconnected', onDisconnect)
    this._unsubscribe.push(() => db.off('disconnected', onDisconnect))
    if (typeof db.addHook === 'function') {
      // s3db.js 21 awaits this hook, so the methods are ready when createResource resolves.
      try {
        db.addHook('afterCreateResource', async ({ resource }) => {
          if (resource && !this._stopped) await onResource(resource.name)
        })
      } catch {
        // Hosts without this hook still emit db:resource-created.
      }
    }
  }

  /** Makes one target field live on its resource; idempotent per resource object. */
  _setup(target) {
    const key = `${target.resource}.${target.field}`
    const resource = this.database.resources[target.resource]
    const existing = this._handlers.get(key)
    if (existing && existing.resource === resource) return existing.ready
    const handler = this._makeHandler(target, resource)
    this._handlers.set(key, handler)
    attach(resource, target.field, handler)
    return handler.ready
  }

  _makeHandler(target, resource) {
    const plugin = this
    const { resource: resourceName, field } = target
    const handler = {
      resource,
      field,
      async record(op, id, amount, options) {
        await handler.ready
        try {
          return await plugin._track(callNative(() => plugin.engine.record(resourceName, field, id, op, amount, options ? JSON.stringify(options) : null)))
        } catch (e) {
          // Bad input is the caller's to handle; failures to write are also reported to listeners.
          if (!(e instanceof TypeError) && !(e instanceof RangeError) && e.code !== 'EC_LATE_ARRIVAL') {
            plugin._emitBoth('transaction-error', e, { resource: resourceName, field, id, error: e.message })
          }
          throw e
        }
      },
      /**
       * Sync mode (or `{ wait: true }`) waits for another process holding the
       * record's lock; async mode resolves at once with the current value and
       * reports the skip. `{ details: true }` resolves `{ value, applied, skipped }`.
       */
      async consolidate(id, options = {}) {
        await handler.ready
        const wait = options.wait !== undefined ? Boolean(options.wait) : plugin.config.mode === 'sync'
        const out = await plugin._track(callNative(() => plugin.engine.consolidate(resourceName, field, id, wait)))
        if (out.skipped) {
          plugin._log(`Consolidation of ${resourceName} ${id} skipped: running on another container`)
          plugin._emitBoth('consolidation-skipped', { resource: resourceName, field, id, value: out.value })
        }
        return options.details ? out : out.value
      },
    }
    handler.ready = (async () => {
      checkField(resource, resourceName, field)
      const made = await createSupportResources(this.database, resourceName, field, { analytics: this.config.enableAnalytics })
      callNativeSync(() => this.engine.register(resourceName, field, made.transactionSchema, made.analyticsSchema))
      handler.transactionResource = made.transactions
      handler.analyticsResource = made.analytics
    })()
    // A setup failure surfaces on every call; do not also crash the process.
    handler.ready.catch((e) => this.emit('eventual-consistency.setup-error', e))
    return handler
  }

  /** `eventual-consistency.<name>` on the plugin (the manual), `plg:eventual-consistency:<name>` on both (s3db.js). */
  _emitBoth(name, payload, dbPayload = payload) {
    this.emit(`eventual-consistency.${name}`, payload)
    this.emit(`plg:eventual-consistency:${name}`, payload)
    if (this.database && typeof this.database.emit === 'function') this.database.emit(`plg:eventual-consistency:${name}`, dbPayload)
  }

  _log(message) {
    if (!this.config.verbose) return
    const logger = this.options.logger && typeof this.options.logger.warn === 'function' ? this.options.logger : console
    logger.warn(`[EventualConsistency] ${message}`)
  }

  _onNativeEvent(event) {
    routeEvent(event, {
      emit: (name, payload, dbPayload) => this._emitBoth(name, payload, dbPayload),
      emitPlugin: (name, payload) => this.emit(name, payload),
      emitDb: (name, payload) => this.database && this.database.emit(name, payload),
      log: (message) => this._log(message),
      window: this.config.consolidationWindow,
    })
  }
}

module.exports = { EventualConsistencyPlugin, EventualConsistencyError, default: EventualConsistencyPlugin }
