// Garbage collection: applied transactions older than transactionRetention go,
// with their three partition references; pending ones and recent ones stay; the
// records and the analytics keep their values; and two GCs at once do the work once.
//
// memory:// lives inside one process, so there the "second process" is a second
// Database (own client, own plugin) on the same storage; on S3 both GCs run in
// real worker processes.
import test from 'ava'
import { allKeys, backends, EventualConsistencyPlugin, s3ConnectionString, sibling, stopS3Server, wallets } from './helpers/db.mjs'
import { parentDb } from './helpers/scenarios.mjs'
import { bucketAndPrefix, endpointOf, shutdownWorkers, waitUntil, workerPool } from './helpers/workers.mjs'
import { startFaultProxy } from './helpers/fault-proxy.mjs'

test.after.always(shutdownWorkers)
test.after.always(stopS3Server)

const DAY = 86_400_000
const SHIFT = 31 * DAY // past the default transactionRetention of 30 days
const OPTIONS = { resource: 'wallets', field: 'balance', autoConsolidate: false, enableAnalytics: true, cohort: { timezone: 'UTC' } }
const TX = 'resource=wallets_transactions_balance'

/** The data object and the three partition references of a transaction. */
function keysOf(x) {
  return [
    `${TX}/data/id=${x.id}`,
    `${TX}/partition=byHour/cohortHour=${x.cohortHour}/id=${x.id}`,
    `${TX}/partition=byDay/cohortDate=${x.cohortDate}/id=${x.id}`,
    `${TX}/partition=byMonth/cohortMonth=${x.cohortMonth}/id=${x.id}`,
  ]
}

/**
 * Writes old applied, old pending and recent transactions with `w` (the plugin's
 * clock then moved 31 days on) and returns them with the record values.
 */
async function seed(w, plugin) {
  const oldApplied = [await w.add('a', 10, { key: 'a1' }), await w.add('a', 5, { key: 'a2' }), await w.sub('a', 3, { key: 'a3' }), await w.set('b', 100, { key: 'b1' }), await w.add('b', 1, { key: 'b2' })]
  await w.consolidate('a')
  await w.consolidate('b')
  const oldPending = [await w.add('c', 7, { key: 'c1' }), await w.add('c', 8, { key: 'c2' })]
  plugin.testing.setClockOffset(SHIFT)
  const recentApplied = [await w.add('a', 1000, { key: 'a4' })]
  await w.consolidate('a')
  const recentPending = [await w.add('b', 50, { key: 'b3' })]
  return { oldApplied, oldPending, recentApplied, recentPending, values: { a: 1012, b: 101 } }
}

/** Daily analytics from yesterday to 40 days on: the seeded days, before and after the 31-day shift. */
function analytics(plugin) {
  const day = (offset) => new Date(Date.now() + offset * DAY).toISOString().slice(0, 10)
  return plugin.getAnalytics('wallets', 'balance', { period: 'day', startDate: day(-1), endDate: day(40) })
}

async function values(w) {
  return { a: (await w.getOrNull('a'))?.balance, b: (await w.getOrNull('b'))?.balance, c: (await w.getOrNull('c'))?.balance ?? null }
}

function checkKeys(t, keys, s) {
  const present = new Set(keys)
  for (const x of s.oldApplied) t.deepEqual(keysOf(x).filter((k) => present.has(k)), [], `old applied ${x.id}: object and 3 references gone`)
  for (const x of [...s.oldPending, ...s.recentApplied, ...s.recentPending]) {
    t.deepEqual(keysOf(x).filter((k) => !present.has(k)), [], `${x.id} (${x.applied ? 'applied' : 'pending'}, ${x.timestamp}): object and 3 references kept`)
  }
  // The old pending transactions are still in the pending index.
  t.is(keys.filter((k) => k.startsWith('plugin=eventual-consistency-native/wallets/balance/pending/c/')).length, 2)
}

test.serial('GC on memory: old applied transactions go with their references; pending and recent stay; a concurrent GC skips', async (t) => {
  const db = await backends[0].db(t)
  const w = await wallets(db)
  const plugin = new EventualConsistencyPlugin(OPTIONS)
  await db.usePlugin(plugin)
  const s = await seed(w, plugin)
  const before = await values(w)
  t.deepEqual(before, { ...s.values, c: null })
  const analyticsBefore = await analytics(plugin)
  t.is(analyticsBefore.reduce((n, d) => n + d.count, 0), s.oldApplied.length + s.recentApplied.length, 'analytics count the applied transactions')

  const other = await sibling(t, db)
  const otherPlugin = new EventualConsistencyPlugin(OPTIONS)
  await other.usePlugin(otherPlugin)
  otherPlugin.testing.setClockOffset(SHIFT)

  // Hold the first GC inside its run (after it took the GC lock) until the second has tried.
  const list = db.client.listObjects.bind(db.client)
  let release
  const gate = new Promise((r) => (release = r))
  let parked = 0
  db.client.listObjects = async (args) => {
    if (String(args.prefix).includes('partition=byDay')) {
      parked++
      await gate
    }
    return list(args)
  }
  const first = plugin.runGarbageCollection()
  await waitUntil(() => parked > 0, { what: 'the first GC inside its run' })
  const [second] = await otherPlugin.runGarbageCollection()
  t.like(second, { resource: 'wallets', field: 'balance', skipped: true, deletedCount: 0 })
  release()
  const [done] = await first
  t.like(done, { skipped: false, deletedCount: s.oldApplied.length, keptPending: s.oldPending.length })

  checkKeys(t, await allKeys(db), s)
  t.deepEqual(await values(w), before, 'record values unaffected')
  t.deepEqual(await analytics(plugin), analyticsBefore, 'analytics unaffected')
  t.is(await w.consolidate('a'), 1012)
  t.is(await w.consolidate('b'), 151, 'the recent pending transaction still consolidates onto the kept checkpoint')
  const [again] = await otherPlugin.runGarbageCollection()
  t.like(again, { skipped: false, deletedCount: 0 })
  console.log(`GC (memory): deleted ${done.deletedCount} old applied transactions (x4 keys), kept ${done.keptPending} old pending; the concurrent GC reported skipped: ${second.skipped}`)
})

test.serial('GC on S3 across processes: old applied transactions go with their references; pending and recent stay; a concurrent GC skips', async (t) => {
  const cs = await s3ConnectionString()
  const parent = await parentDb(t, cs, { enableAnalytics: true, cohort: { timezone: 'UTC' } })
  const s = await seed(parent.wallets, parent.plugin)
  const before = await values(parent.wallets)
  t.deepEqual(before, { ...s.values, c: null })
  const analyticsBefore = await analytics(parent.plugin)
  t.is(analyticsBefore.reduce((n, d) => n + d.count, 0), s.oldApplied.length + s.recentApplied.length, 'analytics count the applied transactions')

  // The first GC's process reaches S3 through a proxy that can hold its requests.
  const proxy = await startFaultProxy({ target: endpointOf(cs) })
  t.teardown(() => proxy.close())
  const { bucket, prefix } = bucketAndPrefix(cs)
  const pool = workerPool(t)
  const plugin = { autoConsolidate: false, enableAnalytics: true, cohort: { timezone: 'UTC' } }
  const [a, b] = await Promise.all([
    pool.spawn({ connectionString: proxy.connectionString(bucket, prefix), plugin, name: 'gc-a' }),
    pool.spawn({ connectionString: cs, plugin, name: 'gc-b' }),
  ])
  await a.call('setClockOffset', SHIFT)
  await b.call('setClockOffset', SHIFT)
  proxy.hold((req) => decodeURIComponent(req.url).includes('partition=byDay'))
  const first = a.call('runGarbageCollection')
  await waitUntil(() => proxy.parked() > 0, { what: 'the first GC inside its run' })
  const [second] = await b.call('runGarbageCollection')
  t.like(second, { resource: 'wallets', field: 'balance', skipped: true, deletedCount: 0 })
  proxy.release()
  const [done] = await first
  t.like(done, { skipped: false, deletedCount: s.oldApplied.length, keptPending: s.oldPending.length })

  checkKeys(t, await allKeys(parent.db), s)
  t.deepEqual(await values(parent.wallets), before, 'record values unaffected')
  t.deepEqual(await analytics(parent.plugin), analyticsBefore, 'analytics unaffected')
  t.is(await parent.wallets.consolidate('a'), 1012)
  t.is(await parent.wallets.consolidate('b'), 151, 'the recent pending transaction still consolidates onto the kept checkpoint')
  const [again] = await b.call('runGarbageCollection')
  t.like(again, { skipped: false, deletedCount: 0 })
  console.log(`GC (s3, 2 processes): deleted ${done.deletedCount} old applied transactions (x4 keys), kept ${done.keptPending} old pending; the concurrent GC in the other process reported skipped: ${second.skipped}`)
})
