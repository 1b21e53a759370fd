// Lease scenarios: recovery after a SIGKILL, a holder paused past its lease
// (SIGSTOP), one resumed during its successor's takeover, waiting and skipping.

import { s3ConnectionString } from '../db.mjs'
import { bucketAndPrefix, endpointOf, waitUntil, withTimeout, workerPool } from '../workers.mjs'
import { startFaultProxy } from '../fault-proxy.mjs'
import { parentDb, fold, pendingKeys, checkpoint, allTransactions } from './shared.mjs'

// ---------------------------------------------------------------------------
// 6. Lease recovery after SIGKILL mid-consolidation

export async function leaseRecovery(t, { rounds = 1, bound = 20_000 } = {}) {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  const plugin = { autoConsolidate: false, lockHeartbeat: 1 } // lockTimeout: the default 300 s
  const times = []
  for (let round = 0; round < rounds; round++) {
    const id = `lease-${round}`
    const [a, b] = await Promise.all([pool.spawn({ connectionString: cs, plugin, name: 'holder' }), pool.spawn({ connectionString: cs, plugin, name: 'rescuer' })])
    const ops = [
      { op: 'add', amount: 100 },
      { op: 'sub', amount: 30 },
      { op: 'add', amount: 7 },
    ]
    for (const [i, o] of ops.entries()) await parent.wallets[o.op](id, o.amount, { key: `${id}-${i}` })
    await a.call('slowRecordWrites', 0, { hold: true })
    const holding = a.call('consolidate', id, { wait: true })
    holding.catch(() => {})
    const write = await a.next('record-write', (m) => m.phase === 'start' && m.id === id)
    t.is(write.value, fold(ops), 'the holder is writing the folded value when it dies')
    await a.kill('SIGKILL')
    const killedAt = Date.now()
    const out = await withTimeout(b.call('consolidate', id, { wait: true, details: true }), 60_000, 'the rescue')
    const recoveredAt = Date.now()
    const ms = recoveredAt - killedAt
    times.push(ms)
    t.is(out.value, fold(ops), 'the second process reaches the exact value')
    t.is((await parent.wallets.get(id)).balance, fold(ops))
    const txs = (await allTransactions(parent.tx)).filter((x) => x.originalId === id)
    t.is(txs.length, ops.length)
    t.true(txs.every((x) => x.applied))
    t.true(ms < bound, `recovered in ${ms} ms (bound ${bound} ms)`)
    await b.close()
  }
  t.is((await pendingKeys(parent.db)).length, 0)
  console.log(
    `lease recovery: holder SIGKILLed inside its record write (lockTimeout 300 s, lockHeartbeat 1 s): exact value after ` +
      `${times.map((x) => `${x} ms`).join(', ')} (target: under 3 heartbeats = 3000 ms; the lease is 2.5 heartbeats; bound ${bound} ms)`,
  )
  return times
}

// ---------------------------------------------------------------------------
// 7. SIGSTOP past the lease

/**
 * A fresh prefix, the test's own Database, a worker pool, and the connection string
 * a process to be SIGSTOPped uses: through a (fault-free) proxy that buffers whole
 * requests, so a process frozen mid-request can never stall the single-threaded server.
 */
async function pausableSetup(t) {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  const proxy = await startFaultProxy({ target: endpointOf(cs) })
  t.teardown(() => proxy.close())
  const { bucket, prefix } = bucketAndPrefix(cs)
  return { cs, parent, pool, pausedCs: proxy.connectionString(bucket, prefix), plugin: { autoConsolidate: false, lockHeartbeat: 1 } }
}

export async function pausedHolder(t) {
  const { cs, parent, pool, pausedCs, plugin } = await pausableSetup(t)
  const [a, b] = await Promise.all([
    pool.spawn({ connectionString: pausedCs, plugin, name: 'paused' }),
    pool.spawn({ connectionString: cs, plugin, name: 'other' }),
  ])
  await Promise.all([a.call('subscribe', ['record-repaired']), b.call('subscribe', ['record-repaired'])])
  const repaired = []
  for (const w of [a, b]) w.events.on('plugin', (m) => m.name === 'record-repaired' && repaired.push(m.payload))
  const id = 'paused-1'
  const first = [
    { op: 'set', amount: 50 },
    { op: 'add', amount: 25 },
  ]
  const second = [
    { op: 'sub', amount: 5 },
    { op: 'add', amount: 100 },
  ]
  let n = 0
  const write = async (ops) => {
    for (const o of ops) await parent.wallets[o.op](id, o.amount, { key: `${id}-${n++}` })
  }
  await write(first)
  await a.call('slowRecordWrites', 0, { hold: true })
  const pausedCall = a.call('consolidate', id, { wait: true, details: true })
  const settled = pausedCall.then((v) => ({ ok: true, value: v }), (e) => ({ ok: false, error: e }))
  const inWrite = await a.next('record-write', (m) => m.phase === 'start' && m.id === id)
  t.is(inWrite.value, fold(first))
  t.true(a.pause(), 'SIGSTOP')
  const pausedAt = Date.now()
  await write(second)
  const other = await withTimeout(b.call('consolidate', id, { wait: true, details: true }), 60_000, 'consolidation while the holder is paused')
  const tookOverAfter = Date.now() - pausedAt
  t.is(other.value, fold([...first, ...second]), 'the other process consolidates everything exactly while the holder is frozen')
  const expected = fold([...first, ...second])
  const lateWrite = a.next('record-write', (m) => m.phase !== 'start' && m.id === id && m.value === fold(first), 60_000)
  t.true(a.resume(), 'SIGCONT')
  await a.call('releaseRecordWrites')
  const lateOutcome = await lateWrite
  const lateLanded = lateOutcome.phase === 'done'
  const late = await withTimeout(settled, 60_000, "the resumed holder's consolidate()")
  // Fenced right after its late write, the resumed holder starts over under a new lease
  // and repairs the record itself; a background run would too (it left a recheck).
  if (late.ok) t.is(late.value.value, expected, 'the resumed holder, retrying under a new lease, reports the exact value')
  else t.is(late.error.code, 'EC_FENCED', `the resumed holder is fenced (${late.error.code}: ${late.error.message})`)
  const runs = [await b.call('runConsolidation'), await a.call('runConsolidation')]
  const afterBackground = (await parent.wallets.get(id)).balance
  t.is(afterBackground, expected, "the paused holder's late write is repaired")
  const repair = await b.call('consolidate', id, { wait: true, details: true })
  t.is(repair.value, expected, 'one more consolidation gives the exact value')
  t.is((await parent.wallets.get(id)).balance, expected, 'the record holds it')
  const txs = (await allTransactions(parent.tx)).filter((x) => x.originalId === id)
  t.is(txs.length, first.length + second.length, 'one transaction per op')
  t.true(txs.every((x) => x.applied), 'all applied')
  t.is((await pendingKeys(parent.db)).length, 0)
  const ck = await checkpoint(parent.db, id)
  t.is(ck.value, expected, 'the checkpoint holds the exact value')
  t.deepEqual(ck.intent, [])
  if (lateLanded) t.true(repaired.some((r) => r.id === id && r.found === fold(first) && r.value === expected), 'the repair was reported')
  console.log(
    `SIGSTOP past the lease: the other process took over after ${tookOverAfter} ms and reached ${other.value}; after SIGCONT the paused holder's late write ` +
      `${lateLanded ? 'landed' : `failed in s3db.js (${lateOutcome.message}; its PUT may still have landed)`}; the resumed holder's consolidate() ` +
      `${late.ok ? `retried under a new lease and resolved ${late.value.value}` : `rejected with ${late.error.code}: ${late.error.message}`}; ` +
      `record-repaired reported ${repaired.length} time(s); background runs visited ${runs.map((r) => r[0].recordCount).join(' and ')} records; record ${afterBackground}`,
  )
  return { expected, lateLanded, afterBackground, late }
}

// ---------------------------------------------------------------------------
// 8. Two processes consolidating one record at once, both waiting

export async function concurrentSyncConsolidate(t, { rounds = 4 } = {}) {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  const [a, b] = await Promise.all([
    pool.spawn({ connectionString: cs, plugin: { autoConsolidate: false, mode: 'sync', lockHeartbeat: 1 }, name: 'sync-mode' }),
    pool.spawn({ connectionString: cs, plugin: { autoConsolidate: false, lockHeartbeat: 1 }, name: 'wait-true' }),
  ])
  const id = 'both'
  const ops = []
  const results = []
  for (let round = 0; round < rounds; round++) {
    const batch = [
      { op: 'add', amount: 10 + round },
      { op: 'sub', amount: 3 },
      ...(round % 2 ? [{ op: 'set', amount: 1000 * round }, { op: 'add', amount: 1 }] : []),
    ]
    for (const o of batch) await parent.wallets[o.op](id, o.amount, { key: `both-${ops.length}` }).then(() => ops.push(o))
    // Alternate who is slow inside the record write, so each side is the one that waits.
    const slowOne = round % 2 ? a : b
    await slowOne.call('slowRecordWrites', 200)
    const [va, vb] = await Promise.all([a.call('consolidate', id), b.call('consolidate', id, { wait: true })])
    await slowOne.call('slowRecordWrites', 0)
    results.push([va, vb])
    t.is(va, fold(ops), `round ${round}: the sync-mode process gets the exact value`)
    t.is(vb, fold(ops), `round ${round}: the { wait: true } process gets the exact value`)
  }
  t.is((await parent.wallets.get(id)).balance, fold(ops))
  console.log(`concurrent sync consolidation: ${rounds} rounds, both processes resolved with the same exact value each round: ${results.map(([x, y]) => `${x}/${y}`).join(', ')}`)
}

// ---------------------------------------------------------------------------
// 9. Async mode: consolidate() while another process holds the lock

export async function asyncSkip(t) {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  const [holder, asker] = await Promise.all([
    pool.spawn({ connectionString: cs, plugin: { autoConsolidate: false, lockHeartbeat: 1 }, name: 'holder' }),
    pool.spawn({ connectionString: cs, plugin: { autoConsolidate: false }, name: 'asker' }),
  ])
  await asker.call('subscribe', ['consolidation-skipped', 'lock-held'])
  const events = []
  asker.events.on('plugin', (m) => events.push(m))
  const id = 'skip-1'
  await parent.wallets.add(id, 40, { key: 'skip-a' })
  t.is(await parent.wallets.consolidate(id), 40)
  await parent.wallets.add(id, 2, { key: 'skip-b' })
  await holder.call('slowRecordWrites', 0, { hold: true })
  const held = holder.call('consolidate', id, { wait: true })
  held.catch(() => {}) // awaited below
  await holder.next('record-write', (m) => m.phase === 'start' && m.id === id)
  const asked = Date.now()
  const value = await withTimeout(asker.call('consolidate', id), 15_000, 'async consolidate() while the lock is held')
  const details = await withTimeout(asker.call('consolidate', id, { details: true }), 15_000, 'async consolidate() with details')
  const ms = Date.now() - asked
  t.is(value, 40, 'resolves with the record as it is')
  t.like(details, { value: 40, skipped: true, applied: 0 })
  await waitUntil(() => events.filter((e) => e.name === 'consolidation-skipped').length >= 2, { what: 'consolidation-skipped events' })
  const skippedEvents = events.filter((e) => e.name === 'consolidation-skipped')
  t.like(skippedEvents[0].payload, { resource: 'wallets', field: 'balance', id, value: 40 })
  t.true(events.some((e) => e.name === 'lock-held' && e.payload.id === id))
  await holder.call('releaseRecordWrites')
  t.is(await held, 42, 'the holder finishes')
  t.is(await asker.call('consolidate', id), 42)
  console.log(`async skip: two consolidate() calls during another process's consolidation resolved in ${ms} ms with the current value (skipped: true, ${skippedEvents.length} consolidation-skipped events)`)
}

// ---------------------------------------------------------------------------
// 7b. A paused holder resumes while its successor is inside the same record write

/**
 * A is SIGSTOPped inside its record write (its intent written); B takes the expired lock
 * over, reads A's intent and is held inside the roll-forward's record write; A resumes
 * and finishes its late write. Checked here (the invariants): A's release does not drop
 * B's lock (C's async consolidate() is skipped while B is held), and after one more
 * consolidation the value is exact with every transaction applied once. Returned for
 * the caller: how A's and B's consolidate() calls ended.
 */
export async function resumedDuringTakeover(t) {
  const { cs, parent, pool, pausedCs, plugin } = await pausableSetup(t)
  const [a, b, c] = await Promise.all([
    pool.spawn({ connectionString: pausedCs, plugin, name: 'paused' }),
    pool.spawn({ connectionString: cs, plugin, name: 'successor' }),
    pool.spawn({ connectionString: cs, plugin: { autoConsolidate: false }, name: 'third' }),
  ])
  const id = 'resumed'
  const ops = []
  const write = async (batch) => {
    for (const o of batch) {
      await parent.wallets[o.op](id, o.amount, { key: `${id}-${ops.length}` })
      ops.push(o)
    }
  }
  const settle = (p) => p.then((value) => ({ ok: true, value }), (error) => ({ ok: false, code: error.code, message: error.message }))
  await write([{ op: 'add', amount: 20 }, { op: 'add', amount: 22 }])
  const firstValue = fold(ops)
  await a.call('slowRecordWrites', 0, { hold: true })
  const aDone = settle(a.call('consolidate', id, { wait: true }))
  await a.next('record-write', (m) => m.phase === 'start' && m.id === id)
  t.true(a.pause())
  await write([{ op: 'sub', amount: 2 }, { op: 'set', amount: 500 }, { op: 'add', amount: 1 }])
  await b.call('slowRecordWrites', 0, { hold: true })
  const bDone = settle(b.call('consolidate', id, { wait: true }))
  const bWrite = await b.next('record-write', (m) => m.phase === 'start' && m.id === id, 60_000)
  t.is(bWrite.value, firstValue, "the successor is rolling the paused holder's intent forward")
  const lateWrite = a.next('record-write', (m) => m.phase !== 'start' && m.id === id, 60_000)
  let lateSettledFirst = false
  aDone.then(() => (lateSettledFirst = !successorSettled))
  let successorSettled = false
  bDone.then(() => (successorSettled = true))
  t.true(a.resume())
  await a.call('releaseRecordWrites')
  await lateWrite
  const asked = await c.call('consolidate', id, { details: true })
  t.true(asked.skipped, "the successor still holds the lock after the resumed holder's late write")
  await b.call('releaseRecordWrites')
  const successor = await withTimeout(bDone, 60_000, "the successor's consolidate()")
  const late = await withTimeout(aDone, 60_000, "the resumed holder's consolidate()")
  t.like(successor, { ok: true, value: fold(ops) }, 'the successor, whose lease is valid, finishes with the exact value')
  // The resumed holder is fenced after its late write and starts over behind the successor.
  t.false(lateSettledFirst, "the resumed holder's consolidate() does not settle while the successor holds the lock")
  if (late.ok) t.is(late.value, fold(ops), 'the resumed holder, retrying under a new lease, reports the exact value')
  else t.is(late.code, 'EC_FENCED')
  const finalValue = await c.call('consolidate', id, { wait: true })
  t.is(finalValue, fold(ops), 'one more consolidation gives the exact value')
  t.is((await parent.wallets.get(id)).balance, fold(ops))
  const txs = (await allTransactions(parent.tx)).filter((x) => x.originalId === id)
  t.is(txs.length, ops.length)
  t.true(txs.every((x) => x.applied))
  t.is((await pendingKeys(parent.db)).length, 0)
  const describe = (r) => (r.ok ? `resolved ${r.value}` : `rejected ${r.code}`)
  console.log(
    `resumed during takeover: the paused holder (lease expired) was fenced after its late write and, retrying behind the successor, ${describe(late)}; the successor (valid lease, held in its roll-forward write) ` +
      `${describe(successor)}; a third process was skipped while the successor held the lock; one more consolidation: ${finalValue} (exact)`,
  )
  return { late, successor, exact: fold(ops) }
}
