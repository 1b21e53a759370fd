// The multi-process scenarios, parametrized by size: __test__/distributed.test.mjs
// runs them small (npm test), __test__/chaos/*.chaos.mjs at full size (npm run test:chaos).
//
// Every scenario runs real Node processes (fixtures/worker.mjs), each with its own
// s3db.js Database and plugin, against the real (single-threaded) moto S3 server.
// Assertions are about values and counts only; times are printed, and bounded
// only where a bound is the point (lease recovery).

import { EventualConsistencyPlugin, S3db, s3ConnectionString, s3Options, uid } from './db.mjs'
import { bucketAndPrefix, endpointOf, rng, sleep, startFaultProxy, waitUntil, withTimeout, workerPool } from './workers.mjs'

const NS = 'plugin=eventual-consistency-native'
const PENDING_PREFIX = `${NS}/wallets/balance/pending/`

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

// ---------------------------------------------------------------------------
// 1. Lock race

export async function lockRace(t, { contenders, rounds, leaseMs = 60_000 }) {
  const cs = await s3ConnectionString()
  await parentDb(t, cs)
  const pool = workerPool(t)
  const started = Date.now()
  const ws = await pool.spawnMany(contenders, { connectionString: cs, plugin: { autoConsolidate: false } })
  const spawnMs = Date.now() - started
  const key = `race-${uid()}`
  const wins = new Map()
  let violations = 0
  for (let round = 0; round < rounds; round++) {
    const replies = await Promise.all(ws.map((w) => w.call('tryLock', key, leaseMs)))
    const winners = replies.map((r, i) => ({ r, i })).filter(({ r }) => r.acquired)
    if (winners.length !== 1) violations++
    t.is(winners.length, 1, `round ${round}: exactly one holder (got ${winners.length})`)
    if (winners.length !== 1) continue
    const [{ r: won, i }] = winners
    wins.set(i, (wins.get(i) || 0) + 1)
    const losers = replies.filter((r) => !r.acquired)
    t.true(losers.every((r) => r.holder === won.holder), `round ${round}: every loser names the winner as the holder`)
    t.true(await ws[i].call('releaseLock', key), `round ${round}: the winner releases`)
  }
  const ms = Date.now() - started - spawnMs
  console.log(
    `lock race: ${contenders} processes (s3db.js ${ws[0].s3db}) x ${rounds} rounds: ${violations} rounds without exactly one holder; ` +
      `${wins.size} distinct winners; ${ms} ms (${spawnMs} ms to start the processes)`,
  )
  return { violations, distinctWinners: wins.size }
}

// ---------------------------------------------------------------------------
// 2. Expired-lock takeover

export async function expiredLockTakeover(t, { contenders = 8, rounds = 3, victimLeaseMs = 3000 }) {
  const cs = await s3ConnectionString()
  await parentDb(t, cs)
  const pool = workerPool(t)
  const ws = await pool.spawnMany(contenders, { connectionString: cs, plugin: { autoConsolidate: false } })
  const victims = await pool.spawnMany(rounds, { connectionString: cs, plugin: { autoConsolidate: false }, name: 'victim' })
  const key = `takeover-${uid()}`
  const report = []
  for (let round = 0; round < rounds; round++) {
    const victim = victims[round]
    const asked = Date.now()
    const held = await victim.call('tryLock', key, victimLeaseMs)
    t.true(held.acquired, `round ${round}: the victim takes the free lock`)
    const heldAt = Date.now()
    const killed = await victim.kill('SIGKILL')
    t.is(killed.signal, 'SIGKILL')
    // While the dead holder's lease runs, nobody gets the lock.
    const early = await Promise.all(ws.map((w) => w.call('tryLock', key, 60_000)))
    const earlyWinners = early.filter((r) => r.acquired)
    t.true(earlyWinners.length <= 1, `round ${round}: at most one holder before expiry`)
    if (Date.now() < asked + victimLeaseMs) {
      t.is(earlyWinners.length, 0, `round ${round}: the dead holder's lease is respected until it expires`)
      t.true(early.every((r) => r.holder === held.holder), `round ${round}: everyone sees the dead holder`)
    }
    let winners = earlyWinners
    let races = 0
    if (winners.length === 0) {
      // The lease was taken at some point before `heldAt`: past heldAt + lease it has expired.
      await sleep(Math.max(0, heldAt + victimLeaseMs + 250 - Date.now()))
      for (; races < 5 && winners.length === 0; races++) {
        const replies = await Promise.all(ws.map((w) => w.call('tryLock', key, 60_000)))
        winners = replies.filter((r) => r.acquired)
        t.true(winners.length <= 1, `round ${round}: at most one process takes the expired lock over (got ${winners.length})`)
        if (winners.length === 1) t.true(replies.filter((r) => !r.acquired).every((r) => r.holder === winners[0].holder))
        if (winners.length === 0) await sleep(500)
      }
    }
    t.is(winners.length, 1, `round ${round}: exactly one process takes the expired lock over`)
    t.not(winners[0]?.holder, held.holder)
    const released = await Promise.all(ws.map((w) => w.call('releaseLock', key)))
    t.is(released.filter(Boolean).length, 1, `round ${round}: only the winner had the lock to release`)
    report.push({ round, races, takeoverAfterMs: Date.now() - heldAt })
  }
  console.log(
    `expired-lock takeover: ${rounds} rounds, holder SIGKILLed with a ${victimLeaseMs} ms lease, ${contenders} racers: ` +
      `exactly one new holder each round (${report.map((r) => `${r.takeoverAfterMs} ms`).join(', ')} from take to takeover+release)`,
  )
}

// ---------------------------------------------------------------------------
// 3 + 4. Crash test / fault test

/**
 * W workers apply random set/add/sub ops (keyed, with unique increasing timestamps the
 * supervisor assigns) to K records while consolidating; a supervisor SIGKILLs workers
 * mid-consolidation and restarts them, re-sending their in-flight ops. At the end every
 * record must equal the fold of its acknowledged ops, in timestamp order.
 *
 * Ops on one record are serialized (the next is issued once the previous is
 * acknowledged), so the order in which consolidation can see them is their timestamp
 * order and the expected value is known exactly.
 */
export async function crashTest(
  t,
  {
    label = 'crash test',
    workers: W,
    opsPerWorker: N,
    records: K,
    kills: M = 0,
    faults = null,
    seed = Number(process.env.EC_SEED) || Date.now() % 2 ** 31,
    inflightPerWorker = 3,
    consolidateChance = 0.15,
    consolidationInterval = 1,
    lockHeartbeat = 1,
    slowWriteMs = 40,
    progress = false,
    stallMs = 90_000,
  },
) {
  const random = rng(seed)
  const cs = await s3ConnectionString()
  const { bucket, prefix } = bucketAndPrefix(cs)
  let proxy = null
  let workerCs = cs
  if (faults) {
    proxy = await startFaultProxy({ target: endpointOf(cs), faults, seed: seed + 1 })
    t.teardown(() => proxy.close())
    workerCs = proxy.connectionString(bucket, prefix)
  }
  // The parent's final consolidation goes through the proxy too.
  const parent = await parentDb(t, workerCs, { lockHeartbeat })
  const pool = workerPool(t)
  const pluginOptions = { lockHeartbeat, consolidationInterval, autoConsolidate: true }

  const recordIds = Array.from({ length: K }, (_, i) => `r${String(i).padStart(3, '0')}`)
  const records = new Map(recordIds.map((id) => [id, { id, ops: [], folds: [0], acked: 0, inflight: null }]))
  const allOps = []
  const total = W * N
  const base = Date.now() - 3_600_000
  let seq = 0
  let acked = 0
  let lastAck = Date.now()
  const counters = { opErrors: {}, consolidations: 0, skipped: 0, consolidateErrors: {}, resent: 0, killsMidWrite: 0, killsLanded: 0 }
  const mismatches = []
  const messages = {}
  const bump = (map, code, message) => {
    map[code || 'unknown'] = (map[code || 'unknown'] || 0) + 1
    if (message && !messages[code || 'unknown']) messages[code || 'unknown'] = message
  }

  const slots = Array.from({ length: W }, (_, idx) => ({ idx, worker: null, quota: N, inflight: new Set(), resend: [], consolidating: 0, generation: 0 }))

  let finish
  let fail
  const done = new Promise((resolve, reject) => {
    finish = resolve
    fail = reject
  })

  async function startSlot(slot) {
    slot.generation++
    const w = await pool.spawn({ connectionString: workerCs, plugin: pluginOptions, name: `${label.replace(/\W+/g, '-')}-w${slot.idx}.${slot.generation}-` })
    if (slowWriteMs > 0) await withTimeout(w.call('slowRecordWrites', slowWriteMs), 30_000, `${w.name} slowRecordWrites`)
    slot.worker = w
    // Ops the previous process never acknowledged go again: same key, same timestamp.
    for (const op of slot.resend.splice(0)) {
      counters.resent++
      send(slot, op)
    }
    pump()
  }

  function freeRecord() {
    const free = recordIds.filter((id) => !records.get(id).inflight)
    return free.length ? random.pick(free) : null
  }

  function newOp(slot, recordId) {
    const r = random()
    const op = r < 0.1 ? 'set' : r < 0.55 ? 'add' : 'sub'
    const amount = op === 'set' ? random.int(0, 1000) : random.int(1, 100)
    const o = { seq: ++seq, recordId, op, amount, ts: base + seq, key: `op-${seed}-${seq}`, slot: slot.idx, txId: null, acked: false, attempts: 0 }
    const rec = records.get(recordId)
    rec.ops.push(o)
    rec.folds.push(fold([o], rec.folds[rec.folds.length - 1]))
    rec.inflight = o
    allOps.push(o)
    slot.quota--
    slot.inflight.add(o)
    return o
  }

  function send(slot, o) {
    const w = slot.worker
    o.attempts++
    w.call(o.op, o.recordId, o.amount, { key: o.key, timestamp: o.ts }).then(
      (tx) => {
        if (o.acked) return
        if (!tx || tx.originalId !== o.recordId || tx.value !== o.amount || tx.operation !== o.op || tx.timestamp !== new Date(o.ts).toISOString()) {
          mismatches.push({ kind: 'ack', op: o, tx })
        }
        o.acked = true
        o.txId = tx && tx.id
        const rec = records.get(o.recordId)
        rec.inflight = null
        rec.acked++
        slot.inflight.delete(o)
        acked++
        lastAck = Date.now()
        if (progress && acked % Math.ceil(total / 10) === 0) console.log(`${label}: ${acked}/${total} acknowledged, ${killed} kills`)
        if (random() < consolidateChance) consolidate(slot)
        maybeKill()
        if (acked === total) finish()
        pump()
      },
      (err) => {
        if (err.code === 'WORKER_EXITED') {
          if (!slot.resend.includes(o)) slot.resend.push(o)
          return
        }
        bump(counters.opErrors, err.code, err.message)
        // Not acknowledged: the same op again, to the same process, until it is.
        setTimeout(() => {
          if (slot.worker === w && w.alive) send(slot, o)
          else if (!slot.resend.includes(o)) slot.resend.push(o)
        }, 100)
      },
    )
  }

  function consolidate(slot) {
    if (slot.consolidating >= 2) return
    const w = slot.worker
    const id = random.pick(recordIds)
    const rec = records.get(id)
    const ackedAtStart = rec.acked
    slot.consolidating++
    counters.consolidations++
    w.call('consolidate', id, { details: true }).then(
      (out) => {
        slot.consolidating--
        // Ops on a record are serialized: any value it ever holds is the fold of a prefix of them.
        // A run that was not skipped saw at least every op acknowledged before it was asked for.
        const from = out.skipped ? 0 : ackedAtStart
        const candidates = rec.folds.slice(from, rec.ops.length + 1)
        if (out.skipped) counters.skipped++
        if (!candidates.includes(out.value)) mismatches.push({ kind: 'consolidate', id, out, ackedAtStart, issued: rec.ops.length, candidates: candidates.slice(-5) })
      },
      (err) => {
        slot.consolidating--
        if (err.code !== 'WORKER_EXITED') bump(counters.consolidateErrors, err.code, err.message)
      },
    )
  }

  function pump() {
    for (const slot of slots) {
      if (!slot.worker || !slot.worker.alive) continue
      while (slot.quota > 0 && slot.inflight.size < inflightPerWorker) {
        const id = freeRecord()
        if (!id) return
        send(slot, newOp(slot, id))
      }
    }
  }

  // Kills: spread over the run, each aimed at a worker inside a record write
  // (after its intent, before its checkpoint), at a random point of that write.
  const killAt = Array.from({ length: M }, (_, i) => Math.floor((total * (i + 1)) / (M + 1)))
  let killed = 0
  let killing = false
  const restarts = []
  function maybeKill() {
    if (killing || killed >= M || acked < killAt[killed]) return
    const candidates = slots.filter((s) => s.worker && s.worker.alive)
    if (!candidates.length) return
    killing = true
    const slot = random.pick(candidates)
    const w = slot.worker
    ;(async () => {
      let midWrite = false
      try {
        const ev = await w.next('record-write', (m) => m.phase === 'start', 5000)
        midWrite = true
        let landed = false
        const done = w.next('record-write', (m) => m.phase === 'done' && m.seq === ev.seq, 10_000).then(() => (landed = true), () => false)
        // A third right away (intent written, record not), a third somewhere in the write,
        // a third just after the record write landed (marking applied, deleting entries, checkpoint).
        const when = random.int(0, 2)
        if (when === 1) await sleep(random.int(0, slowWriteMs + 300))
        if (when === 2) {
          await done
          await sleep(random.int(0, 30))
        }
        await w.kill('SIGKILL')
        if (landed) counters.killsLanded++
      } catch {
        // No consolidation came along in time: kill at a random moment instead.
        await w.kill('SIGKILL')
      }
      if (midWrite) counters.killsMidWrite++
      killed++
      slot.worker = null
      for (const o of slot.inflight) if (!slot.resend.includes(o)) slot.resend.push(o)
      killing = false
      restarts.push(startSlot(slot).catch(fail))
      maybeKill()
    })().catch(fail)
  }

  const started = Date.now()
  await Promise.all(slots.map((s) => startSlot(s)))
  const startedOps = Date.now()
  // A run that stops making progress fails with what is stuck, instead of hanging.
  lastAck = Date.now()
  const watchdog = setInterval(async () => {
    if (Date.now() - lastAck < stallMs) return
    clearInterval(watchdog)
    let s3 = 'unknown'
    try {
      const r = await fetch(`${endpointOf(cs)}/`, { signal: AbortSignal.timeout(5000) })
      s3 = `answers HTTP ${r.status}`
    } catch (e) {
      s3 = `does not answer (${e.message})`
    }
    const stuck = slots.map((sl) => ({
      slot: sl.idx,
      worker: sl.worker ? `${sl.worker.name} pid ${sl.worker.pid} ${sl.worker.alive ? 'alive' : 'dead'}, ${sl.worker.pending.size} calls pending` : 'none',
      quota: sl.quota,
      inflight: [...sl.inflight].map((o) => `${o.op} ${o.recordId} #${o.seq} x${o.attempts}`),
      resend: sl.resend.length,
      consolidating: sl.consolidating,
    }))
    fail(new Error(`${label}: no acknowledgement for ${stallMs} ms at ${acked}/${total} (killing: ${killing}, kills ${killed}); S3 server ${s3}; ${JSON.stringify(stuck)}`))
  }, 1000)
  pump()
  try {
    await done
  } finally {
    clearInterval(watchdog)
  }
  // A kill set off by one of the last acknowledgements finishes before we look.
  await waitUntil(() => !killing, { timeout: 60_000, what: 'the last kill' })
  await Promise.all(restarts)
  const opsMs = Date.now() - startedOps
  t.is(killed, M, 'every planned kill happened')

  // Stop the workers (a graceful stop waits for a run in flight and releases its locks).
  const phases = { start: startedOps - started, ops: opsMs }
  let mark = Date.now()
  await Promise.all(pool.alive().map((w) => w.close()))
  phases.stop = Date.now() - mark
  mark = Date.now()

  // Final consolidation of every record, by the test process.
  const finals = new Map()
  const finalErrors = {}
  for (const id of recordIds) {
    for (let attempt = 0; ; attempt++) {
      try {
        finals.set(id, await withTimeout(parent.wallets.consolidate(id, { wait: true, details: true }), 120_000, `final consolidation of ${id}`))
        break
      } catch (e) {
        bump(finalErrors, e.code, e.message)
        if (attempt >= 5) throw e
        await sleep(500)
      }
    }
  }
  const faultsInjected = proxy ? proxy.injected() : null
  if (proxy) proxy.setFaults({}) // verification reads go through untouched
  phases.final = Date.now() - mark
  mark = Date.now()

  // Verify: every record == fold of its acknowledged ops; every op's transaction is there, once, applied.
  const valueMismatches = []
  for (const id of recordIds) {
    const rec = records.get(id)
    const expected = fold(rec.ops)
    const got = finals.get(id).value
    const stored = (await parent.wallets.getOrNull(id))?.balance ?? 0
    const ck = await checkpoint(parent.db, id)
    if (got !== expected || stored !== expected || (ck && (ck.value !== expected || ck.intent.length))) {
      valueMismatches.push({ id, expected, consolidated: got, record: stored, checkpoint: ck && { value: ck.value, intent: ck.intent.length } })
    }
  }
  const transactions = await withTimeout(allTransactions(parent.tx), 600_000, 'reading every transaction back')
  const audit = auditTransactions(transactions, allOps)
  const leftover = await pendingKeys(parent.db)
  const appliedTwice = valueMismatches.length + audit.duplicates.length
  phases.verify = Date.now() - mark
  const wall = Date.now() - started

  const summary =
    `${label}: ${allOps.length} ops acknowledged (${W} workers x ${N} on ${K} records), ${killed} kills ` +
    `(${counters.killsMidWrite} inside a record write, ${counters.killsLanded} of those after it landed), ` +
    `${audit.lost.length} lost, ${appliedTwice} applied twice` +
    ` [${valueMismatches.length} records off, ${audit.duplicates.length} duplicate transactions, ${audit.extra.length} extra, ` +
    `${mismatches.length} inconsistent replies, ${leftover.length} pending entries left]; ` +
    `${counters.resent} ops re-sent after a kill; ${counters.consolidations} concurrent consolidate() calls (${counters.skipped} skipped); ` +
    `op errors retried ${JSON.stringify(counters.opErrors)}, consolidate errors ${JSON.stringify(counters.consolidateErrors)}, ` +
    `final consolidation retries ${JSON.stringify(finalErrors)}; wall ${(wall / 1000).toFixed(1)} s (` +
    Object.entries(phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ') +
    `); seed ${seed}`
  console.log(summary)
  if (faultsInjected) {
    console.log(
      `${label}: faults injected on ${proxy.stats.matched} Rust-SDK requests (${proxy.stats.total - proxy.stats.matched} s3db.js requests passed untouched): ` +
        Object.entries(faultsInjected).map(([k, v]) => `${k} ${v}`).join(', '),
    )
  }
  if (Object.keys(messages).length) console.log(`${label}: first error message per code:`, JSON.stringify(messages))
  if (valueMismatches.length) console.log(`${label}: records off:`, JSON.stringify(valueMismatches.slice(0, 10)))
  if (audit.lost.length) console.log(`${label}: lost:`, JSON.stringify(audit.lost.slice(0, 10)))
  if (mismatches.length) console.log(`${label}: inconsistent replies:`, JSON.stringify(mismatches.slice(0, 10)))

  t.is(audit.lost.length, 0, 'no acknowledged op lost')
  t.is(appliedTwice, 0, 'no op applied twice')
  t.deepEqual(valueMismatches, [], 'every record equals the fold of its acknowledged ops')
  t.is(audit.extra.length, 0, 'no transaction nobody acknowledged')
  t.deepEqual(mismatches, [], 'every reply during the run was consistent with some prefix of the ops')
  t.is(leftover.length, 0, 'no pending entries left')
  return { acked: allOps.length, kills: killed, lost: audit.lost.length, appliedTwice, faults: faultsInjected, counters, wall }
}

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

export async function pausedHolder(t) {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  // The paused process talks to S3 through a (fault-free) proxy that buffers whole
  // requests, so a process frozen mid-request can never stall the single-threaded server.
  const proxy = await startFaultProxy({ target: endpointOf(cs) })
  t.teardown(() => proxy.close())
  const { bucket, prefix } = bucketAndPrefix(cs)
  const plugin = { autoConsolidate: false, lockHeartbeat: 1 }
  const [a, b] = await Promise.all([
    pool.spawn({ connectionString: proxy.connectionString(bucket, prefix), plugin, name: 'paused' }),
    pool.spawn({ connectionString: cs, plugin, name: 'other' }),
  ])
  await b.call('subscribe', ['record-repaired'])
  const repaired = []
  b.events.on('plugin', (m) => m.name === 'record-repaired' && repaired.push(m.payload))
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
  t.true(a.resume(), 'SIGCONT')
  await a.call('releaseRecordWrites')
  const late = await withTimeout(settled, 60_000, "the resumed holder's consolidate()")
  const recordAfterLateWrite = (await parent.wallets.get(id)).balance
  const lateLanded = recordAfterLateWrite === fold(first)
  const expected = fold([...first, ...second])
  // Nothing is pending now: does a background pass (what autoConsolidate runs) look at the record?
  const runs = [await b.call('runConsolidation'), await a.call('runConsolidation')]
  const afterBackground = (await parent.wallets.get(id)).balance
  t.is(afterBackground, expected, "a background run repairs the paused holder's late write (it left the record to revisit)")
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
  t.false(late.ok, "the resumed holder's consolidate() does not report success")
  if (!late.ok) t.is(late.error.code, 'EC_FENCED', `the resumed holder is fenced (${late.error.code}: ${late.error.message})`)
  console.log(
    `SIGSTOP past the lease: the other process took over after ${tookOverAfter} ms and reached ${other.value}; after SIGCONT the paused holder's late write ` +
      `${lateLanded ? `landed (record showed ${recordAfterLateWrite})` : `did not land (record showed ${recordAfterLateWrite})`}; ` +
      `a background run in each process (${runs.map((r) => r[0].recordCount).join(' and ')} records visited) left ${afterBackground}; record-repaired ` +
      `reported ${repaired.length} time(s); one more consolidate(id): ${repair.value}; the resumed holder's consolidate() ` +
      `${late.ok ? `resolved ${JSON.stringify(late.value)}` : `rejected with ${late.error.code}: ${late.error.message}`}`,
  )
  return { expected, lateLanded, recordAfterLateWrite, afterBackground, late }
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
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs)
  const pool = workerPool(t)
  const proxy = await startFaultProxy({ target: endpointOf(cs) })
  t.teardown(() => proxy.close())
  const { bucket, prefix } = bucketAndPrefix(cs)
  const plugin = { autoConsolidate: false, lockHeartbeat: 1 }
  const [a, b, c] = await Promise.all([
    pool.spawn({ connectionString: proxy.connectionString(bucket, prefix), plugin, name: 'paused' }),
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
  t.true(a.resume())
  await a.call('releaseRecordWrites')
  const late = await withTimeout(aDone, 60_000, "the resumed holder's consolidate()")
  const asked = await c.call('consolidate', id, { details: true })
  t.true(asked.skipped, "the successor still holds the lock after the resumed holder's release")
  await b.call('releaseRecordWrites')
  const successor = await withTimeout(bDone, 60_000, "the successor's consolidate()")
  t.like(late, { ok: false, code: 'EC_FENCED' }, 'the resumed holder, whose lease expired, is fenced')
  t.like(successor, { ok: true, value: fold(ops) }, 'the successor, whose lease is valid, finishes with the exact value')
  const finalValue = await c.call('consolidate', id, { wait: true })
  t.is(finalValue, fold(ops), 'one more consolidation gives the exact value')
  t.is((await parent.wallets.get(id)).balance, fold(ops))
  const txs = (await allTransactions(parent.tx)).filter((x) => x.originalId === id)
  t.is(txs.length, ops.length)
  t.true(txs.every((x) => x.applied))
  t.is((await pendingKeys(parent.db)).length, 0)
  const describe = (r) => (r.ok ? `resolved ${r.value}` : `rejected ${r.code}`)
  console.log(
    `resumed during takeover: the paused holder (lease expired) ${describe(late)}; the successor (valid lease, held in its roll-forward write) ` +
      `${describe(successor)}; a third process was skipped while the successor held the lock; one more consolidation: ${finalValue} (exact)`,
  )
  return { late, successor, exact: fold(ops) }
}

