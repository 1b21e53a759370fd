// Lock scenarios: many processes racing for one lock, and the takeover of a
// SIGKILLed holder's expired lock.

import { s3ConnectionString, uid } from '../db.mjs'
import { sleep, workerPool } from '../workers.mjs'
import { parentDb } from './shared.mjs'

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
