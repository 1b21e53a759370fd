// The distributed tests at full size (npm run test:chaos). Same scenarios as
// __test__/distributed.test.mjs (helpers/scenarios.mjs), more processes, more
// rounds, more ops, more kills. Takes several minutes on a 2-core machine.
import test from 'ava'
import { stopS3Server } from '../helpers/db.mjs'
import { shutdownWorkers } from '../helpers/workers.mjs'
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
} from '../helpers/scenarios.mjs'

test.after.always(shutdownWorkers)
test.after.always(stopS3Server)

const FAULTS = { error500: 0.03, slowDown503: 0.03, delay: 0.05, dropBeforeForward: 0.02, lostReply: 0.03, error500AfterForward: 0.01 }

test.serial('lock race: 32 processes x 100 rounds, exactly one holder each round', async (t) => {
  const r = await lockRace(t, { contenders: 32, rounds: 100 })
  t.is(r.violations, 0)
})

test.serial('expired-lock takeover: 10 rounds of SIGKILLed holder, 8 racers', async (t) => {
  await expiredLockTakeover(t, { contenders: 8, rounds: 10, victimLeaseMs: 3000 })
})

test.serial('crash test: 4 workers x 2,500 ops on 50 records, 20 SIGKILLs', async (t) => {
  const r = await crashTest(t, { label: 'crash test (full)', workers: 4, opsPerWorker: 2500, records: 50, kills: 20, inflightPerWorker: 4, progress: true })
  t.is(r.acked, 10_000)
})

test.serial('fault test: 4 workers x 1,000 ops on 20 records through the fault proxy', async (t) => {
  const r = await crashTest(t, { label: 'fault test (full)', workers: 4, opsPerWorker: 1000, records: 20, kills: 0, lockHeartbeat: 2, slowWriteMs: 0, faults: FAULTS, progress: true })
  t.true(r.faults.total > 0)
})

test.serial('faults and kills together: 4 workers x 500 ops on 20 records, 6 SIGKILLs, through the fault proxy', async (t) => {
  const r = await crashTest(t, { label: 'faults + kills (full)', workers: 4, opsPerWorker: 500, records: 20, kills: 6, lockHeartbeat: 1, faults: FAULTS, progress: true })
  t.true(r.faults.total > 0)
})

test.serial('idempotency: 100 keys x 4 processes', async (t) => {
  await idempotency(t, { keys: 100, processes: 4 })
})

test.serial('lease recovery: 5 rounds of SIGKILL mid-write', async (t) => {
  const times = await leaseRecovery(t, { rounds: 5, bound: 20_000 })
  t.is(times.length, 5)
})

for (let i = 0; i < 3; i++) {
  test.serial(`SIGSTOP past the lease, run ${i + 1}`, async (t) => {
    await pausedHolder(t)
  })
  test.serial(`a holder resumed during its successor's takeover, run ${i + 1}`, async (t) => {
    await resumedDuringTakeover(t)
  })
}

test.serial('two processes consolidating at once in sync mode: 20 rounds', async (t) => {
  await concurrentSyncConsolidate(t, { rounds: 20 })
})

test.serial('async mode skip', async (t) => {
  await asyncSkip(t)
})
