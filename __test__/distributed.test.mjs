// Distributed guarantees, with real processes: each worker (fixtures/worker.mjs) is a
// Node process with its own s3db.js Database and plugin, all on the real moto S3
// server. Small sizes here (npm test); the full sizes run in __test__/chaos
// (npm run test:chaos). The scenarios live in helpers/scenarios.mjs.
//
// Serial: every test starts several processes, and this machine has two cores.
import test from 'ava'
import { stopS3Server } from './helpers/db.mjs'
import { shutdownWorkers } from './helpers/workers.mjs'
import {
  asyncSkip,
  concurrentSyncConsolidate,
  crashTest,
  expiredLockTakeover,
  idempotency,
  leaseRecovery,
  lockRace,
  pausedHolder,
  resumedDuringTakeover,
} from './helpers/scenarios.mjs'

test.after.always(shutdownWorkers)
test.after.always(stopS3Server)

test.serial('lock race: exactly one holder per round among 8 processes x 20 rounds', async (t) => {
  await lockRace(t, { contenders: 8, rounds: 20 })
})

test.serial("expired-lock takeover: a SIGKILLed holder's lock goes to exactly one of 8 racers", async (t) => {
  await expiredLockTakeover(t, { contenders: 8, rounds: 3, victimLeaseMs: 2000 })
})

test.serial('crash test: 3 workers x 150 ops on 10 records, 4 SIGKILLs mid-consolidation: nothing lost, nothing twice', async (t) => {
  const r = await crashTest(t, { label: 'crash test', workers: 3, opsPerWorker: 150, records: 10, kills: 4 })
  t.is(r.acked, 450)
})

test.serial("fault test: 5xx, SlowDown, delays, drops and lost replies on the Rust core's S3 traffic: nothing lost, nothing twice", async (t) => {
  const r = await crashTest(t, {
    label: 'fault test',
    workers: 3,
    opsPerWorker: 100,
    records: 10,
    kills: 0,
    lockHeartbeat: 2,
    slowWriteMs: 0,
    faults: { error500: 0.03, slowDown503: 0.03, delay: 0.05, dropBeforeForward: 0.02, lostReply: 0.03, error500AfterForward: 0.01 },
  })
  t.true(r.faults.total > 0, 'faults were injected')
  for (const kind of ['error500', 'slowDown503', 'delay', 'dropBeforeForward', 'lostReply']) t.true(r.faults[kind] > 0, `${kind} injected`)
})

test.serial('idempotency: one key retried concurrently and sequentially from 3 processes is counted once', async (t) => {
  await idempotency(t, { keys: 12, processes: 3 })
})

test.serial('lease recovery: SIGKILL mid-write, default lockTimeout, lockHeartbeat 1: another process reaches the exact value quickly', async (t) => {
  await leaseRecovery(t, { rounds: 1, bound: 20_000 })
})

test.serial('SIGSTOP past the lease: the paused holder is fenced, starts over, and its late write is repaired; nothing applied twice', async (t) => {
  await pausedHolder(t)
})

test.serial("a holder resumed during its successor's takeover is the one fenced and waits its turn; the successor finishes exactly", async (t) => {
  await resumedDuringTakeover(t)
})

test.serial('two processes consolidating one record at once in sync mode both get the same exact value', async (t) => {
  await concurrentSyncConsolidate(t, { rounds: 4 })
})

test.serial('async mode: consolidate() while another process holds the lock resolves at once, skipped', async (t) => {
  await asyncSkip(t)
})
