// Keyed operations retried from several processes count once.

import { s3ConnectionString } from '../db.mjs'
import { workerPool } from '../workers.mjs'
import { parentDb, pendingKeys, allTransactions } from './shared.mjs'

// ---------------------------------------------------------------------------
// 5. Idempotency across processes

export async function idempotency(t, { keys = 12, processes = 3 }) {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  const ws = await pool.spawnMany(processes, { connectionString: cs, plugin: { autoConsolidate: false } })
  const base = Date.now() - 60_000
  const batch = (n, tag, recordId) =>
    Array.from({ length: n }, (_, i) => ({
      recordId,
      key: `idem-${tag}-${i}`,
      op: i % 4 === 3 ? 'sub' : 'add',
      amount: i + 1,
      // Half with an explicit timestamp, half with "now" (a retry then names another time).
      timestamp: i % 2 === 0 ? base + i : undefined,
    }))
  const opts = (o) => (o.timestamp === undefined ? { key: o.key } : { key: o.key, timestamp: o.timestamp })
  const signed = (o) => (o.op === 'sub' ? -o.amount : o.amount)
  const ids = new Map()
  const sameTransaction = (o, replies, what) => {
    const first = ids.get(o.key) || replies[0]
    ids.set(o.key, first)
    t.true(replies.every((r) => r.id === first.id && r.timestamp === first.timestamp && r.value === o.amount), `${what}: ${o.key} names one transaction`)
  }

  // A: every key sent by all processes at once.
  const a = batch(keys, 'a', 'idem-a')
  const concurrent = await Promise.all(a.map((o) => Promise.all(ws.map((w) => w.call(o.op, o.recordId, o.amount, opts(o))))))
  a.forEach((o, i) => sameTransaction(o, concurrent[i], 'concurrent'))
  // ...then again, one process after the other.
  for (const o of a) for (const w of ws) sameTransaction(o, [await w.call(o.op, o.recordId, o.amount, opts(o))], 'sequential')
  const expectedA = a.reduce((s, o) => s + signed(o), 0)
  t.is(await ws[0].call('consolidate', 'idem-a', { wait: true }), expectedA)
  // ...and again after it was applied, from every process at once.
  const after = await Promise.all(a.map((o) => Promise.all(ws.map((w) => w.call(o.op, o.recordId, o.amount, opts(o))))))
  a.forEach((o, i) => sameTransaction(o, after[i], 'after consolidation'))
  t.is(await ws[1].call('consolidate', 'idem-a', { wait: true }), expectedA, 'retries after consolidation change nothing')

  // B: retries racing consolidations: every process adds and consolidates at once.
  const b = batch(keys, 'b', 'idem-b')
  await Promise.all(
    b.map((o) =>
      Promise.all(
        ws.map(async (w) => {
          const r = await w.call(o.op, o.recordId, o.amount, opts(o))
          await w.call('consolidate', 'idem-b', { wait: true })
          return r
        }),
      ).then((replies) => sameTransaction(o, replies, 'racing consolidation')),
    ),
  )
  const expectedB = b.reduce((s, o) => s + signed(o), 0)
  t.is(await ws[2].call('consolidate', 'idem-b', { wait: true }), expectedB)

  const transactions = await allTransactions(parent.tx)
  const perKey = new Map()
  for (const x of transactions) perKey.set(x.id, (perKey.get(x.id) || 0) + 1)
  t.is(transactions.length, 2 * keys, 'one transaction per key')
  t.true(transactions.every((x) => x.applied), 'all applied')
  t.is((await parent.wallets.get('idem-a')).balance, expectedA)
  t.is((await parent.wallets.get('idem-b')).balance, expectedB)
  t.is((await pendingKeys(parent.db)).length, 0)
  const attempts = keys * processes * 3 + keys * processes
  console.log(`idempotency: ${2 * keys} keys, ${attempts} attempts from ${processes} processes (concurrent, sequential, after consolidation, racing consolidations): ${transactions.length} transactions, each counted once`)
}
