// The crash test and the fault test: workers writing and consolidating, a
// supervisor SIGKILLing them (or a proxy injecting S3 faults), then an audit
// of every acknowledged op against the transaction resource and the records.

import { s3ConnectionString } from '../db.mjs'
import { bucketAndPrefix, endpointOf, rng, sleep, waitUntil, withTimeout, workerPool } from '../workers.mjs'
import { startFaultProxy } from '../fault-proxy.mjs'
import { parentDb, fold, pendingKeys, checkpoint, allTransactions, auditTransactions } from './shared.mjs'

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
