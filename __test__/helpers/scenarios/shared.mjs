// Pieces every multi-process scenario uses: the test process's own Database,
// the expected value of a list of ops, and readers of what the plugin left in S3.

import { EventualConsistencyPlugin, S3db, s3Options } from '../db.mjs'

export const NS = 'plugin=eventual-consistency-native'
export const PENDING_PREFIX = `${NS}/wallets/balance/pending/`

// ---------------------------------------------------------------------------
// Shared pieces

/** The test process's own Database + plugin (autoConsolidate off): it creates the resources before any worker starts. */
export async function parentDb(t, connectionString, pluginOptions = {}) {
  const db = new S3db({ connectionString, logLevel: 'silent', clientOptions: s3Options(), executorPool: { retries: 0 } })
  await db.connect()
  t.teardown(() => db.disconnect().catch(() => {}))
  const wallets =
    db.resources.wallets || (await db.createResource({ name: 'wallets', attributes: { id: 'string|required', balance: 'number|default:0' } }))
  const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false, ...pluginOptions })
  await db.usePlugin(plugin)
  t.teardown(() => plugin.stop().catch(() => {}))
  await Promise.all([...plugin._handlers.values()].map((h) => h.ready))
  return { db, wallets, plugin, tx: db.resources.wallets_transactions_balance }
}

/** set/add/sub in order, from 0. */
export function fold(ops, from = 0) {
  return ops.reduce((v, o) => (o.op === 'set' ? o.amount : o.op === 'add' ? v + o.amount : v - o.amount), from)
}

/** Pending-index keys left under the plugin's key space. */
export async function pendingKeys(db) {
  return db.client.getAllKeys({ prefix: PENDING_PREFIX })
}

/** The record's checkpoint (the core's JSON), or null. */
export async function checkpoint(db, id) {
  try {
    const res = await db.client.getObject(`${NS}/wallets/balance/checkpoint/${encodeURIComponent(id)}`)
    const body = typeof res.Body?.transformToString === 'function' ? await res.Body.transformToString() : String(res.Body)
    return JSON.parse(body)
  } catch (e) {
    if (e && (e.name === 'NoSuchKey' || e.code === 'NoSuchKey' || e.statusCode === 404 || e.original?.name === 'NoSuchKey')) return null
    throw e
  }
}

/** Every transaction object, read through plain s3db.js (listIds() stops at 1000). */
export async function allTransactions(tx) {
  const ids = (await tx.client.getAllKeys({ prefix: `resource=${tx.name}/data/` })).map((k) => String(k).split('/id=').pop())
  const out = []
  for (let i = 0; i < ids.length; i += 50) {
    const batch = await Promise.all(ids.slice(i, i + 50).map((id) => tx.get(id)))
    out.push(...batch)
  }
  return out
}

/**
 * Checks the transaction resource against the acknowledged ops: `lost` = acknowledged
 * but missing, different, or not applied; `duplicates` = more than one transaction for
 * one op (ops have unique timestamps); `extra` = transactions no op accounts for.
 */
export function auditTransactions(transactions, ops) {
  const byId = new Map(transactions.map((x) => [x.id, x]))
  const byOp = new Map()
  for (const x of transactions) {
    const k = `${x.originalId}@${x.timestamp}`
    byOp.set(k, (byOp.get(k) || 0) + 1)
  }
  const lost = []
  for (const o of ops) {
    const x = byId.get(o.txId)
    const ok = x && x.applied === true && x.originalId === o.recordId && x.operation === o.op && x.value === o.amount && x.timestamp === new Date(o.ts).toISOString()
    if (!ok) lost.push({ op: o, found: x || null })
  }
  const duplicates = [...byOp.entries()].filter(([, n]) => n > 1)
  const expected = new Set(ops.map((o) => o.txId))
  const extra = transactions.filter((x) => !expected.has(x.id))
  return { lost, duplicates, extra }
}
