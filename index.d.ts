// Types for s3db-eventual-consistency: a drop-in EventualConsistencyPlugin for s3db.js.
import { EventEmitter } from 'node:events'

export type Operation = 'set' | 'add' | 'sub'
export type Period = 'hour' | 'day' | 'month'
export type Metric = 'count' | 'sum' | 'avg' | 'min' | 'max'

/** Options shared by both configuration forms. */
export interface CommonOptions {
  /** `'async'` (default): writes resolve once durable. `'sync'`: once the record holds the new value. */
  mode?: 'async' | 'sync'
  /** Consolidate in the background. Default `true`. */
  autoConsolidate?: boolean
  /** Seconds between background runs. Default `300`. */
  consolidationInterval?: number
  /** Hours back (by event time) a run looks at; at least 1. Default `24`. */
  consolidationWindow?: number
  /** Records consolidated at once in a run. Default `5`. */
  consolidationConcurrency?: number
  /**
   * Transactions older than the window: `'ignore'` rejects them (nothing written),
   * `'warn'` (default) writes them with a warning but never consolidates them,
   * `'process'` writes and consolidates them.
   */
  lateArrivalStrategy?: 'ignore' | 'warn' | 'process'
  /** Seconds: the longest anyone may hold a record's lock. Default `300`. */
  lockTimeout?: number
  /** Seconds between lease renewals; a lease lasts three. Default `5`. */
  lockHeartbeat?: number
  /** Days applied transactions are kept. Default `30`. */
  transactionRetention?: number
  /** Seconds between garbage collections. Default `86400`. */
  gcInterval?: number
  cohort?: {
    /** IANA zone for cohorts. Default: `TZ`, then the system zone, then `'UTC'`. */
    timezone?: string
  }
  /** Buffer writes in memory; buffered writes are lost on a crash. Default `false`. */
  batchTransactions?: boolean
  /** Buffered writes that trigger a flush. Default `100`. */
  batchSize?: number
  /**
   * `(transactions) => number`, run on the JS thread. When no pending `set` exists the
   * first transaction is `{ synthetic: true, operation: 'set', value: <current>, timestamp: '1970-01-01T00:00:00.000Z' }`.
   */
  reducer?: (transactions: ReducerTransaction[]) => number | Promise<number>
  /** Pre-computed hour/day/month roll-ups. Default `false`. */
  enableAnalytics?: boolean
  analyticsConfig?: AnalyticsConfig
  /** Log late arrivals, lock contention and runs. Default `false`. */
  verbose?: boolean
  /** Where `verbose` logs go. Default `console`. */
  logger?: { warn(message: string): void }
}

export interface AnalyticsConfig {
  /** Default `['hour', 'day', 'month']`. */
  periods?: Period[]
  /** Default `['count', 'sum', 'avg', 'min', 'max']`. */
  metrics?: Metric[]
  /** `'incremental'` (default) adds each fold to every row; `'batch'` sums days from hours and months from days. */
  rollupStrategy?: 'incremental' | 'batch'
  /** Days rows are kept; `Infinity` keeps them. Default `365`. */
  retentionDays?: number
}

/** The manual's form: one resource, one field. */
export interface SingleFieldOptions extends CommonOptions {
  resource: string
  field: string
}

/** s3db.js 21's form: several fields, one plugin. */
export interface MultiFieldOptions extends CommonOptions {
  resources: Record<string, Array<string | { field: string }>> | Array<{ resource: string; fields: Array<string | { field: string }> }>
  consolidation?: { mode?: 'async' | 'sync'; auto?: boolean; autoConsolidate?: boolean; interval?: number; window?: number; concurrency?: number }
  analytics?: { enabled?: boolean }
}

export type EventualConsistencyPluginOptions = SingleFieldOptions | MultiFieldOptions

/** A transaction as stored in `{resource}_transactions_{field}`. */
export interface Transaction {
  id: string
  originalId: string
  field: string
  value: number
  operation: Operation
  /** ISO-8601 UTC. */
  timestamp: string
  /** `YYYY-MM-DDTHH` in the configured zone. */
  cohortHour: string
  /** `YYYY-MM-DD` in the configured zone. */
  cohortDate: string
  /** `YYYY-MM`. */
  cohortMonth: string
  source?: string | null
  applied: boolean
}

export interface SyntheticTransaction {
  synthetic: true
  operation: 'set'
  value: number
  timestamp: '1970-01-01T00:00:00.000Z'
  originalId: string
  field: string
}

export type ReducerTransaction = Transaction | SyntheticTransaction

export interface MutationOptions {
  /** Idempotency key: a retry with the same key is counted once, across processes. */
  key?: string
  /** Event time; defaults to now. */
  timestamp?: Date | string | number
  /** Free text stored on the transaction. */
  source?: string
}

export interface ConsolidateOptions {
  /** Wait for another process holding the record's lock. Default: `true` in sync mode, `false` in async mode. */
  wait?: boolean
  /** Resolve `{ value, applied, skipped }` instead of the number. */
  details?: boolean
}

export interface ConsolidateDetails {
  value: number
  /** Transactions this call applied. */
  applied: number
  /** Another process held the lock and this call did not wait. */
  skipped: boolean
}

/** Methods on a resource with exactly one field under eventual consistency. */
export interface EventualConsistencyResource {
  set(id: string, value: number, options?: MutationOptions): Promise<Transaction>
  add(id: string, amount: number, options?: MutationOptions): Promise<Transaction>
  sub(id: string, amount: number, options?: MutationOptions): Promise<Transaction>
  consolidate(id: string, options?: ConsolidateOptions & { details?: false }): Promise<number>
  consolidate(id: string, options: ConsolidateOptions & { details: true }): Promise<ConsolidateDetails>
}

/** Methods on a resource with two or more fields under eventual consistency: the field comes second. */
export interface MultiFieldEventualConsistencyResource<F extends string = string> {
  set(id: string, field: F, value: number, options?: MutationOptions): Promise<Transaction>
  add(id: string, field: F, amount: number, options?: MutationOptions): Promise<Transaction>
  sub(id: string, field: F, amount: number, options?: MutationOptions): Promise<Transaction>
  consolidate(id: string, field: F, options?: ConsolidateOptions & { details?: false }): Promise<number>
  consolidate(id: string, field: F, options: ConsolidateOptions & { details: true }): Promise<ConsolidateDetails>
}

/** `R` (an s3db.js Resource) with the plugin's methods for one or several fields. */
export type WithEventualConsistency<R, F extends string | [string, string, ...string[]] = string> = R &
  (F extends [string, string, ...string[]] ? MultiFieldEventualConsistencyResource<F[number]> : EventualConsistencyResource)

export interface AnalyticsOptions {
  /** Default `'day'`. */
  period?: Period
  /** One day (`YYYY-MM-DD`), or one hour `YYYY-MM-DDTHH` with `period: 'hour'`, or one month `YYYY-MM` with `period: 'month'`. */
  date?: string
  startDate?: string
  endDate?: string
  /** `YYYY-MM`: that month's rows of `period`. */
  month?: string
  year?: number
  breakdown?: 'operations'
  /** Narrow the metrics (default: `analyticsConfig.metrics`). */
  metrics?: Metric[]
}

export interface AnalyticsRow {
  /** `YYYY-MM-DDTHH`, `YYYY-MM-DD` or `YYYY-MM`. */
  cohort: string
  count?: number
  sum?: number
  avg?: number | null
  min?: number | null
  max?: number | null
  /** Distinct records with a transaction in the cohort (exact). */
  recordCount: number
}

export interface OperationStats {
  count: number
  /** Signed: `sub` sums are negative. */
  sum: number
}

export interface BreakdownRow {
  cohort: string
  add: OperationStats
  sub: OperationStats
  set: OperationStats
}

export interface TopRecordsOptions {
  period?: Period
  /** The cohort: `YYYY-MM-DDTHH`, `YYYY-MM-DD` or `YYYY-MM` as the period needs. */
  date: string
  /** Default `'transactionCount'`. */
  metric?: 'transactionCount' | 'totalValue'
  /** Default `10`. */
  limit?: number
}

export interface TopRecord {
  recordId: string
  count: number
  sum: number
}

export interface CohortStats {
  date: string
  transactionCount: number
  byOperation: { set: number; add: number; sub: number }
  /** Sum of changes: `add` positive, `sub` negative, `set` its value. */
  totalValue: number
  applied: number
  pending: number
}

export interface RunStats {
  resource: string
  field: string
  recordCount: number
  applied: number
  skipped: number
  errors: number
  durationMs: number
}

export interface GcStats {
  resource: string
  field: string
  deletedCount: number
  keptPending: number
  days: number
  analyticsRowsDeleted: number
  skipped: boolean
  durationMs: number
}

export interface RequestCounts {
  put: number
  get: number
  delete: number
  delete_many: number
  list: number
}

export interface NormalizedConfig {
  targets: Array<{ resource: string; field: string }>
  mode: 'async' | 'sync'
  autoConsolidate: boolean
  consolidationInterval: number
  consolidationWindow: number
  consolidationConcurrency: number
  lateArrivalStrategy: 'ignore' | 'warn' | 'process'
  lockTimeout: number
  lockHeartbeat: number
  transactionRetention: number
  gcInterval: number
  timezone: string
  batchTransactions: boolean
  batchSize: number
  verbose: boolean
  enableAnalytics: boolean
  analyticsConfig: { periods: Period[]; metrics: Metric[]; rollupStrategy: 'incremental' | 'batch'; retentionDays: number | null } | null
}

export interface PluginEvents {
  'eventual-consistency.consolidated': [RunStats & { transactionCount: number }]
  'eventual-consistency.transaction-error': [Error]
  'eventual-consistency.consolidation-error': [Error]
  'eventual-consistency.consolidation-skipped': [{ resource: string; field: string; id: string; value: number }]
  'eventual-consistency.late-arrival': [{ resource: string; field: string; id: string; cohortHour: string; hoursLate: number; written: boolean }]
  'eventual-consistency.lock-held': [{ resource: string; field: string; id: string; holder: string }]
  'eventual-consistency.record-repaired': [{ resource: string; field: string; id: string; found: number | null; value: number }]
  'eventual-consistency.gc-completed': [{ resource: string; field: string; deletedCount: number; keptPending: number; skipped: boolean; durationMs: number }]
  'eventual-consistency.started': [{ resource: string; field: string }]
  'eventual-consistency.stopped': [{ resource: string; field: string }]
}

export class EventualConsistencyPlugin extends EventEmitter {
  constructor(options: EventualConsistencyPluginOptions)
  readonly options: EventualConsistencyPluginOptions
  /** The options as validated, defaults filled in. */
  readonly config: NormalizedConfig
  instanceName?: string

  // s3db.js plugin contract
  setInstanceName(name: string): void
  install(database: unknown): Promise<void>
  start(): Promise<void>
  /** Stops background work, waits for the run and the consolidate() calls in flight (at most lockTimeout), and writes batched transactions. */
  stop(): Promise<void>
  uninstall(options?: { purgeData?: boolean }): Promise<void>

  getCohortStats(date: string | Date, target?: { resource?: string; field?: string }): Promise<CohortStats>
  getAnalytics(resourceName: string, field: string, options: AnalyticsOptions & { breakdown: 'operations' }): Promise<BreakdownRow[]>
  getAnalytics(resourceName: string, field: string, options?: AnalyticsOptions): Promise<AnalyticsRow[]>
  getTopRecords(resourceName: string, field: string, options: TopRecordsOptions): Promise<TopRecord[]>
  /** One background pass now. */
  runConsolidation(): Promise<RunStats[]>
  consolidateAll(): Promise<RunStats[]>
  runGarbageCollection(): Promise<GcStats[]>
  /** S3 requests the core made, by type. */
  requestCounts(): RequestCounts | null

  on<E extends keyof PluginEvents>(event: E, listener: (...args: PluginEvents[E]) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once<E extends keyof PluginEvents>(event: E, listener: (...args: PluginEvents[E]) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
}

/** Errors that are neither TypeError nor RangeError carry a `code`, e.g. `EC_REDUCER_FAILED`, `EC_LATE_ARRIVAL`, `EC_STORAGE_FAILED`. */
export class EventualConsistencyError extends Error {
  readonly code: string
}

export default EventualConsistencyPlugin
