// Pre-computed analytics: every query form, exactness against the
// transactions, concurrent writers, retention and bad input; memory:// and S3.
import test from 'ava'
import { backends, EventualConsistencyPlugin, sibling, stopS3Server, wallets } from './helpers/db.mjs'

test.after.always(stopS3Server)

const OPTIONS = { resource: 'wallets', field: 'balance', enableAnalytics: true, autoConsolidate: false, lateArrivalStrategy: 'process' }

async function setup(t, backend, extra = {}) {
  const db = await backend.db(t)
  const w = await wallets(db)
  const plugin = new EventualConsistencyPlugin({ ...OPTIONS, cohort: { timezone: 'UTC' }, ...extra })
  await db.usePlugin(plugin)
  t.teardown(() => plugin.stop())
  return { db, w, plugin }
}

/** Deterministic pseudo-random numbers (mulberry32). */
function random(seed) {
  return () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** What the rows must say, computed from the transaction resource directly. */
function expectedFrom(transactions, period) {
  const cut = { hour: 13, day: 10, month: 7 }[period]
  const out = new Map()
  for (const tx of transactions) {
    const cohort = tx.cohortHour.slice(0, cut)
    const signed = tx.operation === 'sub' ? -tx.value : tx.value
    const e = out.get(cohort) ?? { cohort, count: 0, sum: 0, min: Infinity, max: -Infinity, records: new Set(), ops: { add: { count: 0, sum: 0 }, sub: { count: 0, sum: 0 }, set: { count: 0, sum: 0 } } }
    e.count++
    e.sum += signed
    e.min = Math.min(e.min, signed)
    e.max = Math.max(e.max, signed)
    e.records.add(tx.originalId)
    e.ops[tx.operation].count++
    e.ops[tx.operation].sum += signed
    out.set(cohort, e)
  }
  return [...out.values()].sort((a, b) => a.cohort.localeCompare(b.cohort))
}

const close = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b))

for (const backend of backends) {
  const name = (title) => `${title} (${backend.name})`

  test(name('every query form of getAnalytics and getTopRecords'), async (t) => {
    const { w, plugin, db } = await setup(t, backend)
    const ops = [
      ['add', 'w1', 100, '2025-10-09T14:10:00Z'],
      ['add', 'w1', 50, '2025-10-09T14:40:00Z'],
      ['sub', 'w2', 30, '2025-10-09T14:50:00Z'],
      ['set', 'w3', 500, '2025-10-09T15:05:00Z'],
      ['add', 'w2', 20, '2025-10-10T09:00:00Z'],
      ['sub', 'w1', 5, '2025-11-02T00:30:00Z'],
    ]
    for (const [op, id, v, ts] of ops) await w[op](id, v, { timestamp: ts })
    for (const id of ['w1', 'w2', 'w3']) await w.consolidate(id)

    const hourly = await plugin.getAnalytics('wallets', 'balance', { period: 'hour', date: '2025-10-09' })
    t.deepEqual(hourly, [
      { cohort: '2025-10-09T14', count: 3, sum: 120, avg: 40, min: -30, max: 100, recordCount: 2 },
      { cohort: '2025-10-09T15', count: 1, sum: 500, avg: 500, min: 500, max: 500, recordCount: 1 },
    ])
    const daily = await plugin.getAnalytics('wallets', 'balance', { period: 'day', startDate: '2025-10-01', endDate: '2025-10-31' })
    t.deepEqual(daily.map((d) => [d.cohort, d.count, d.sum, d.recordCount]), [['2025-10-09', 4, 620, 3], ['2025-10-10', 1, 20, 1]])
    t.deepEqual((await plugin.getAnalytics('wallets', 'balance', { period: 'day', date: '2025-10-10' })).map((d) => d.cohort), ['2025-10-10'])
    const monthly = await plugin.getAnalytics('wallets', 'balance', { period: 'month', year: 2025 })
    t.deepEqual(monthly.map((m) => [m.cohort, m.count, m.sum, m.recordCount]), [['2025-10', 5, 640, 3], ['2025-11', 1, -5, 1]])
    t.deepEqual((await plugin.getAnalytics('wallets', 'balance', { period: 'month', month: '2025-11' })).map((m) => m.count), [1])
    const [breakdown] = await plugin.getAnalytics('wallets', 'balance', { period: 'day', date: '2025-10-09', breakdown: 'operations' })
    t.deepEqual(breakdown, { cohort: '2025-10-09', add: { count: 2, sum: 150 }, sub: { count: 1, sum: -30 }, set: { count: 1, sum: 500 } })
    const justCounts = await plugin.getAnalytics('wallets', 'balance', { period: 'month', month: '2025-10', metrics: ['count'] })
    t.deepEqual(justCounts, [{ cohort: '2025-10', count: 5, recordCount: 3 }])
    t.deepEqual(await plugin.getTopRecords('wallets', 'balance', { period: 'day', date: '2025-10-09', metric: 'transactionCount', limit: 2 }), [
      { recordId: 'w1', count: 2, sum: 150 },
      { recordId: 'w2', count: 1, sum: -30 },
    ])
    t.deepEqual((await plugin.getTopRecords('wallets', 'balance', { period: 'month', date: '2025-10', metric: 'totalValue' })).map((r) => r.recordId), ['w3', 'w1', 'w2'])
    // The rows are s3db.js records with the manual's structure.
    const row = await db.resources.wallets_analytics_balance.get('hour-2025-10-09T14')
    t.like(row, {
      id: 'hour-2025-10-09T14',
      period: 'hour',
      cohort: '2025-10-09T14',
      transactionCount: 3,
      totalValue: 120,
      avgValue: 40,
      minValue: -30,
      maxValue: 100,
      operations: { add: { count: 2, sum: 150 }, sub: { count: 1, sum: -30 }, set: { count: 0, sum: 0 } },
      recordCount: 2,
    })
    t.regex(row.updatedAt, /^\d{4}-\d\d-\d\dT/)
  })

  test(name('analytics agree with the transactions across days, hours and a DST change'), async (t) => {
    const { w, plugin, db } = await setup(t, backend, { cohort: { timezone: 'America/New_York' }, consolidationConcurrency: 4 })
    const rand = random(backend.name === 'memory' ? 7 : 8)
    // 2025-11-02 01:00-01:59 happens twice in New York; cover the days around it.
    const start = Date.parse('2025-11-01T00:00:00Z')
    const count = backend.name === 'memory' ? 240 : 90
    for (let i = 0; i < count; i++) {
      const op = rand() < 0.15 ? 'set' : rand() < 0.6 ? 'add' : 'sub'
      const value = Math.round(rand() * 20000) / 100 - (op === 'set' ? 0 : 0)
      const ts = new Date(start + Math.floor(rand() * 3 * 86_400_000)).toISOString()
      await w[op](`r${Math.floor(rand() * 7)}`, value, { timestamp: ts })
    }
    await plugin.runConsolidation()
    const transactions = await db.resources.wallets_transactions_balance.list()
    t.is(transactions.length, count)
    t.true(transactions.every((x) => x.applied))
    for (const period of ['hour', 'day', 'month']) {
      const rows = await plugin.getAnalytics('wallets', 'balance', { period })
      const expected = expectedFrom(transactions, period)
      t.deepEqual(rows.map((r) => r.cohort), expected.map((e) => e.cohort), period)
      for (const [i, e] of expected.entries()) {
        const r = rows[i]
        t.is(r.count, e.count, `${period} ${e.cohort} count`)
        t.true(close(r.sum, e.sum), `${period} ${e.cohort} sum ${r.sum} vs ${e.sum}`)
        t.true(close(r.min, e.min) && close(r.max, e.max), `${period} ${e.cohort} min/max`)
        t.true(close(r.avg, e.sum / e.count), `${period} ${e.cohort} avg`)
        t.is(r.recordCount, e.records.size, `${period} ${e.cohort} recordCount`)
      }
      const ops = await plugin.getAnalytics('wallets', 'balance', { period, breakdown: 'operations' })
      for (const [i, e] of expected.entries()) {
        for (const op of ['add', 'sub', 'set']) {
          t.is(ops[i][op].count, e.ops[op].count, `${period} ${e.cohort} ${op} count`)
          t.true(close(ops[i][op].sum, e.ops[op].sum), `${period} ${e.cohort} ${op} sum`)
        }
      }
    }
    // The repeated 01:00 hour is one cohort holding both.
    const fallBack = transactions.filter((x) => x.cohortHour === '2025-11-02T01')
    const [row] = await plugin.getAnalytics('wallets', 'balance', { period: 'hour', date: '2025-11-02T01' })
    t.is(row?.count ?? 0, fallBack.length)
  })

  test(name('rollupStrategy batch gives the same rows as incremental'), async (t) => {
    const incremental = await setup(t, backend)
    const batch = await setup(t, backend, { analyticsConfig: { rollupStrategy: 'batch' } })
    for (const { w } of [incremental, batch]) {
      await w.add('a', 3, { timestamp: '2025-10-09T01:00:00Z' })
      await w.add('a', 4, { timestamp: '2025-10-09T02:00:00Z' })
      await w.sub('b', 1, { timestamp: '2025-10-10T02:00:00Z' })
      await w.consolidate('a')
      await w.consolidate('b')
      await w.add('a', 10, { timestamp: '2025-10-09T01:30:00Z' })
      await w.consolidate('a')
    }
    for (const period of ['hour', 'day', 'month']) {
      t.deepEqual(
        await batch.plugin.getAnalytics('wallets', 'balance', { period }),
        await incremental.plugin.getAnalytics('wallets', 'balance', { period }),
        period,
      )
    }
    t.like((await batch.plugin.getAnalytics('wallets', 'balance', { period: 'month', month: '2025-10' }))[0], { count: 4, sum: 16, recordCount: 2 })
  })

  test(name('concurrent consolidations in two databases lose no analytics update'), async (t) => {
    const { db, w, plugin } = await setup(t, backend)
    const other = await sibling(t, db)
    const plugin2 = new EventualConsistencyPlugin({ ...OPTIONS, cohort: { timezone: 'UTC' } })
    await other.usePlugin(plugin2)
    t.teardown(() => plugin2.stop())
    const w2 = other.resources.wallets
    const ts = new Date(Date.now() - 3600_000).toISOString()
    const writes = []
    for (let i = 0; i < 30; i++) writes.push((i % 2 ? w : w2).add(`r${i % 6}`, 1, { timestamp: ts }))
    await Promise.all(writes)
    await Promise.all([...Array(6)].map((_, i) => (i % 2 ? w : w2).consolidate(`r${i}`)))
    await Promise.all([plugin.runConsolidation(), plugin2.runConsolidation()])
    const [day] = await plugin.getAnalytics('wallets', 'balance', { period: 'day', date: ts.slice(0, 10) })
    t.like(day, { count: 30, sum: 30, recordCount: 6 })
    t.deepEqual(await plugin2.getAnalytics('wallets', 'balance', { period: 'day', date: ts.slice(0, 10) }), [day])
  })

  test(name('rows older than retentionDays are removed by GC; Infinity keeps them'), async (t) => {
    for (const retentionDays of [30, Infinity]) {
      const { w, plugin, db } = await setup(t, backend, { analyticsConfig: { retentionDays } })
      const old = new Date(Date.now() - 40 * 86_400_000).toISOString()
      await w.add('a', 1, { timestamp: old })
      await w.add('a', 2)
      await w.consolidate('a')
      t.is((await plugin.getAnalytics('wallets', 'balance', { period: 'day' })).length, 2, 'folded')
      t.is((await db.resources.wallets_analytics_balance.list()).length, old.slice(0, 7) === new Date().toISOString().slice(0, 7) ? 5 : 6)
      const [gc] = await plugin.runGarbageCollection()
      const after = await plugin.getAnalytics('wallets', 'balance', { period: 'day' })
      if (retentionDays === Infinity) {
        t.is(gc.analyticsRowsDeleted, 0)
        t.is(after.length, 2)
      } else {
        // The old hour and day rows go; the old month row too unless the cutoff is still in that month.
        const cutoffMonth = new Date(Date.now() - 30 * 86_400_000).toISOString().slice(0, 7)
        t.is(gc.analyticsRowsDeleted, old.slice(0, 7) < cutoffMonth ? 3 : 2)
        t.deepEqual(after.map((d) => d.count), [1])
      }
    }
  })

  test(name('bad analytics queries get clear errors'), async (t) => {
    const { plugin } = await setup(t, backend, { analyticsConfig: { periods: ['hour', 'day'] } })
    const cases = [
      [{ period: 'week' }, /unknown period "week"/],
      [{ period: 'month', year: 2025 }, /period 'month' is not rolled up/],
      [{ period: 'day', date: '2025-02-30' }, /'date' must be a date YYYY-MM-DD/],
      [{ period: 'day', date: '09/10/2025' }, /YYYY-MM-DD/],
      [{ period: 'day', startDate: '2025-10-09', endDate: '2025-10-01' }, /is after 'endDate'/],
      [{ period: 'day', metrics: ['median'] }, /unknown metric/],
      [{ period: 'day', breakdown: 'users' }, /unknown breakdown/],
    ]
    for (const [options, message] of cases) {
      await t.throwsAsync(() => plugin.getAnalytics('wallets', 'balance', options), { instanceOf: RangeError, message }, JSON.stringify(options))
    }
    await t.throwsAsync(() => plugin.getTopRecords('wallets', 'balance', { period: 'day', date: '2025-10-09', limit: -1 }), { message: /'limit' must be a whole number/ })
    await t.throwsAsync(() => plugin.getTopRecords('wallets', 'balance', { period: 'day', date: '2025-10-09', metric: 'avg' }), { message: /unknown metric "avg"/ })
    await t.throwsAsync(() => plugin.getAnalytics('wallets', 'points', { period: 'day' }), { instanceOf: RangeError, message: /serves no field 'points'/ })
    await t.throwsAsync(() => plugin.getAnalytics('accounts', 'balance', { period: 'day' }), { message: /on resource 'accounts'/ })
    const off = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' })
    await t.throwsAsync(() => off.getAnalytics('wallets', 'balance', { period: 'day' }), { message: /analytics are not enabled/ })
  })
}
