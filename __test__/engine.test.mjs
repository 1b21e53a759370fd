// Background consolidation, the watermark window, late arrivals, batching,
// events and cohort stats, on memory:// and on the S3 server.
import test from 'ava'
import { once } from 'node:events'
import { allKeys, backends, EventualConsistencyPlugin, stopS3Server, wallets } from './helpers/db.mjs'

test.after.always(stopS3Server)

const HOUR = 3_600_000
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Delays every record write the plugin makes (resource.update/insert) by `ms`, counting them. */
function slowRecordWrites(w, ms) {
  const writes = { started: 0, finished: 0, inFlight: 0, peak: 0 }
  for (const method of ['update', 'insert']) {
    const original = w[method].bind(w)
    w[method] = async (...args) => {
      writes.started++
      writes.peak = Math.max(writes.peak, ++writes.inFlight)
      await sleep(ms)
      try {
        return await original(...args)
      } finally {
        writes.inFlight--
        writes.finished++
      }
    }
  }
  return writes
}

/** Collects `consolidated` stats until runs have applied `applied` transactions in all. */
function runsApplying(plugin, applied, ms = 15_000) {
  return new Promise((resolve, reject) => {
    const runs = []
    const timer = setTimeout(() => reject(new Error(`runs applied ${runs.reduce((n, r) => n + r.applied, 0)} of ${applied} within ${ms} ms`)), ms)
    plugin.on('eventual-consistency.consolidated', function onRun(stats) {
      runs.push(stats)
      if (runs.reduce((n, r) => n + r.applied, 0) >= applied) {
        clearTimeout(timer)
        plugin.off('eventual-consistency.consolidated', onRun)
        resolve(runs)
      }
    })
  })
}

for (const backend of backends) {
  const name = (title) => `${title} (${backend.name})`

  test(name('autoConsolidate runs every consolidationInterval and emits consolidated on plugin and db'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', consolidationInterval: 0.5 })
    await db.usePlugin(plugin)
    t.teardown(() => plugin.stop())
    const onDb = once(db, 'plg:eventual-consistency:consolidation-completed')
    const started = Date.now()
    const runs = runsApplying(plugin, 3)
    await w.add('a', 10)
    await w.add('b', 5)
    await w.sub('a', 3)
    const stats = await runs
    t.true(Date.now() - started >= 400, 'the first run waits one interval')
    t.true(stats.every((s) => s.resource === 'wallets' && s.field === 'balance' && s.errors === 0 && s.skipped === 0))
    t.true(stats.filter((s) => s.recordCount > 0).length >= 1)
    const [dbStats] = await onDb
    t.like(dbStats, { resource: 'wallets', field: 'balance' })
    t.is((await w.get('a')).balance, 7)
    t.is((await w.get('b')).balance, 5)
  })

  test(name('autoConsolidate: false leaves pending transactions alone'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', consolidationInterval: 0.2, autoConsolidate: false })
    await db.usePlugin(plugin)
    t.teardown(() => plugin.stop())
    let runs = 0
    plugin.on('eventual-consistency.consolidated', () => runs++)
    await w.add('a', 10)
    await sleep(1200)
    t.is(runs, 0)
    t.is(await w.getOrNull('a'), null)
    const [stats] = await plugin.runConsolidation()
    t.like(stats, { recordCount: 1, applied: 1 })
    t.is((await w.get('a')).balance, 10)
  })

  test(name('stop() waits for the run in flight and no run follows'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', consolidationInterval: 0.3 })
    await db.usePlugin(plugin)
    for (let i = 0; i < 6; i++) await w.add(`r${i}`, i)
    // Slow record writes keep the run in flight while stop() is called.
    const writes = slowRecordWrites(w, 150)
    while (writes.started === 0) await sleep(20)
    await plugin.stop()
    t.is(writes.finished, writes.started, 'every record write the run started had finished when stop() resolved')
    const after = writes.finished
    await sleep(900)
    t.is(writes.finished, after, 'no run after stop()')
  })

  test(name('stop() waits for consolidate() calls in flight, so a disconnect after it cannot strand one'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false })
    await db.usePlugin(plugin)
    await w.add('r1', 5)
    await w.add('r2', 7)
    const writes = slowRecordWrites(w, 300)
    const settled = []
    const calls = ['r1', 'r2'].map((id) => w.consolidate(id).then((v) => settled.push([id, v])))
    while (writes.started === 0) await sleep(10)
    await plugin.stop()
    t.deepEqual(settled.sort(), [['r1', 5], ['r2', 7]], 'both consolidations had finished when stop() resolved')
    await Promise.all(calls)
    await db.disconnect()
  })

  test(name('consolidationConcurrency bounds records consolidated at once'), async (t) => {
    for (const concurrency of [2, 5]) {
      const db = await backend.db(t)
      const w = await wallets(db)
      const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false, consolidationConcurrency: concurrency })
      await db.usePlugin(plugin)
      for (let i = 0; i < 8; i++) await w.add(`r${i}`, 1)
      const writes = slowRecordWrites(w, 200)
      const [stats] = await plugin.runConsolidation()
      t.is(stats.recordCount, 8)
      t.is(writes.peak, concurrency, `concurrency ${concurrency}`)
    }
  })

  test(name('a run is idempotent: only applied: false is picked and marked'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false })
    await db.usePlugin(plugin)
    await w.add('a', 1)
    await w.add('a', 2)
    const [first] = await plugin.runConsolidation()
    const [second] = await plugin.runConsolidation()
    t.like(first, { recordCount: 1, applied: 2 })
    t.like(second, { recordCount: 0, applied: 0 })
    t.is((await w.get('a')).balance, 3)
    t.true((await db.resources.wallets_transactions_balance.list()).every((x) => x.applied))
  })

  for (const [strategy, expectation] of [
    ['warn', { written: true, consolidated: false }],
    ['process', { written: true, consolidated: true }],
    ['ignore', { written: false, consolidated: false }],
  ]) {
    test(name(`lateArrivalStrategy '${strategy}': a transaction older than the window`), async (t) => {
      const warnings = []
      const db = await backend.db(t)
      const w = await wallets(db)
      const plugin = new EventualConsistencyPlugin({
        resource: 'wallets',
        field: 'balance',
        autoConsolidate: false,
        consolidationWindow: 24,
        lateArrivalStrategy: strategy,
        verbose: true,
        logger: { warn: (m) => warnings.push(String(m)) },
      })
      await db.usePlugin(plugin)
      await w.add('a', 1) // the transaction resource exists now
      await w.consolidate('a')
      const events = []
      plugin.on('eventual-consistency.late-arrival', (e) => events.push(e))
      const before = (await allKeys(db)).length
      const late = w.add('a', 10, { timestamp: Date.now() - 25 * HOUR })
      if (expectation.written) {
        await late
        t.true((await allKeys(db)).length > before)
      } else {
        const err = await t.throwsAsync(late)
        t.is(err.code, 'EC_LATE_ARRIVAL')
        t.regex(err.message, /outside the 24h consolidation window/)
        t.is((await allKeys(db)).length, before, 'nothing written')
      }
      t.is(events.length, 1)
      t.true(warnings.some((m) => /Late arrival detected/.test(m)), warnings.join('\n'))
      // A transaction that is on time when written but ages out before a run.
      await w.add('b', 5)
      plugin.testing.setClockOffset(25 * HOUR)
      const [stats] = await plugin.runConsolidation()
      const aValue = (await w.get('a')).balance
      t.is(aValue, expectation.consolidated ? 11 : 1)
      t.is(stats.recordCount, expectation.consolidated ? 2 : 0)
      plugin.testing.setClockOffset(0)
      await plugin.runConsolidation()
      t.is((await w.get('b')).balance, 5, 'back inside the window it is consolidated')
    })
  }

  test(name('the window is by event time: 20h-old transactions are consolidated'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false, consolidationWindow: 24 })
    await db.usePlugin(plugin)
    await w.add('a', 10, { timestamp: Date.now() - 20 * HOUR })
    await w.add('a', 1)
    const [stats] = await plugin.runConsolidation()
    t.like(stats, { recordCount: 1, applied: 2 })
  })

  test(name('batchTransactions buffers until batchSize, consolidate() and stop() flush'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false, batchTransactions: true, batchSize: 3 })
    await db.usePlugin(plugin)
    const tx = () => db.resources.wallets_transactions_balance.list()
    await w.add('a', 1)
    await w.add('a', 2)
    t.is(plugin.testing.buffered(), 2)
    t.is((await tx()).length, 0, 'buffered, not written')
    await w.add('a', 3)
    t.is(plugin.testing.buffered(), 0)
    t.is((await tx()).length, 3, 'a full batch is written')
    await w.add('a', 4)
    t.is(await w.consolidate('a'), 10, 'consolidate flushes first')
    await w.add('b', 7)
    await plugin.stop()
    t.is((await tx()).filter((x) => x.originalId === 'b').length, 1, 'stop() flushes')
  })

  test(name('getCohortStats(date) counts one day in the configured timezone'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false, cohort: { timezone: 'America/Sao_Paulo' } })
    await db.usePlugin(plugin)
    // 2025-03-10 02:30Z is 2025-03-09 23:30 in Sao Paulo.
    await w.set('a', 100, { timestamp: '2025-03-10T02:30:00Z' })
    await w.add('a', 50, { timestamp: '2025-03-10T01:00:00Z' })
    await w.sub('b', 20, { timestamp: '2025-03-09T12:00:00Z' })
    await w.add('a', 1, { timestamp: '2025-03-10T04:00:00Z' }) // 01:00 local on the 10th
    const stats = await plugin.getCohortStats('2025-03-09')
    t.like(stats, { date: '2025-03-09', transactionCount: 3, byOperation: { set: 1, add: 1, sub: 1 }, totalValue: 130 })
    t.like(await plugin.getCohortStats('2025-03-10'), { transactionCount: 1, totalValue: 1 })
    await t.throwsAsync(() => plugin.getCohortStats('yesterday'), { instanceOf: RangeError })
  })
}

// On S3 the core writes directly; the S3 fault proxy tests cover that path.
test('a failed write emits transaction-error on plugin and db and rejects (memory)', async (t) => {
  const db = await backends[0].db(t)
  const w = await wallets(db)
  const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', autoConsolidate: false })
  await db.usePlugin(plugin)
  await w.add('a', 1)
  const events = []
  plugin.on('eventual-consistency.transaction-error', (e) => events.push(e))
  const dbEvents = []
  db.on('plg:eventual-consistency:transaction-error', (e) => dbEvents.push(e))
  const put = db.client.putObject.bind(db.client)
  db.client.putObject = async (args) => {
    if (String(args.key).includes('wallets_transactions_balance')) throw Object.assign(new Error('disk on fire'), { statusCode: 403 })
    return put(args)
  }
  const err = await t.throwsAsync(() => w.add('a', 2))
  t.regex(err.message, /disk on fire/)
  t.is(err.code, 'EC_STORAGE_FAILED')
  t.is(events.length, 1)
  t.is(dbEvents.length, 1)
  t.like(dbEvents[0], { resource: 'wallets', field: 'balance', id: 'a' })
})

test('both config forms: the manual flat form and s3db.js 21 nested form serving several fields', async (t) => {
  const db = await backends[0].db(t)
  await db.createResource({ name: 'accounts', attributes: { id: 'string|required', balance: 'number|default:0', points: 'number|default:0' } })
  const plugin = new EventualConsistencyPlugin({
    resources: { accounts: ['balance', 'points'] },
    consolidation: { mode: 'sync', auto: false },
  })
  t.is(plugin.config.mode, 'sync')
  t.false(plugin.config.autoConsolidate)
  await db.usePlugin(plugin)
  const a = db.resources.accounts
  await a.add('x', 'balance', 10)
  await a.add('x', 'points', 3)
  t.like(await a.get('x'), { balance: 10, points: 3 })
  await t.throwsAsync(() => a.add('x', 1), { message: /Multiple fields/ })
  await t.throwsAsync(() => plugin.getCohortStats('2025-01-01'), { message: /pass \{ resource, field \}/ })
  t.like(await plugin.getCohortStats(new Date().toISOString().slice(0, 10), { field: 'points' }), { transactionCount: 1 })
})

test('every option is validated with its name and accepted values', (t) => {
  const base = { resource: 'wallets', field: 'balance' }
  const cases = [
    [{ autoConsolidate: 'yes' }, /'autoConsolidate': expected true or false/],
    [{ consolidationInterval: 0 }, /'consolidationInterval': must be greater than 0 seconds/],
    [{ consolidationInterval: -5 }, /'consolidationInterval'/],
    [{ consolidationInterval: '60' }, /'consolidationInterval': expected a number of seconds/],
    [{ consolidationWindow: 0.5 }, /'consolidationWindow': must be at least 1 hours/],
    [{ consolidationConcurrency: 0 }, /'consolidationConcurrency': expected a whole number of at least 1/],
    [{ consolidationConcurrency: 2.5 }, /'consolidationConcurrency'/],
    [{ lateArrivalStrategy: 'drop' }, /'lateArrivalStrategy': got "drop"; accepted values: 'ignore', 'warn' \(default\), 'process'/],
    [{ lockTimeout: 0 }, /'lockTimeout'/],
    [{ transactionRetention: -1 }, /'transactionRetention'/],
    [{ gcInterval: 0 }, /'gcInterval'/],
    [{ batchTransactions: 1 }, /'batchTransactions'/],
    [{ batchSize: 0 }, /'batchSize': expected a whole number of at least 1/],
    [{ cohort: { timezone: 'Nowhere/City' } }, /'cohort.timezone': unknown timezone/],
    [{ cohort: { timezone: 5 } }, /'cohort.timezone'/],
    [{ reducer: 42 }, /'reducer': expected a function/],
    [{ mode: 'later' }, /'mode'/],
    [{ verbose: 'loud' }, /'verbose'/],
    [{ enableAnalytics: true, analyticsConfig: { periods: ['week'] } }, /'analyticsConfig.periods': unknown value "week"/],
    [{ enableAnalytics: true, analyticsConfig: { metrics: ['median'] } }, /'analyticsConfig.metrics'/],
    [{ enableAnalytics: true, analyticsConfig: { rollupStrategy: 'lazy' } }, /'analyticsConfig.rollupStrategy'/],
    [{ enableAnalytics: true, analyticsConfig: { retentionDays: 0 } }, /'analyticsConfig.retentionDays'/],
  ]
  for (const [extra, message] of cases) {
    const err = t.throws(() => new EventualConsistencyPlugin({ ...base, ...extra }), { instanceOf: TypeError }, JSON.stringify(extra))
    t.regex(err.message, message, JSON.stringify(extra))
  }
  t.is(new EventualConsistencyPlugin({ ...base, enableAnalytics: true, analyticsConfig: { retentionDays: Infinity } }).config.analyticsConfig.retentionDays, null)
})

for (const how of ['stop', 'disconnect']) {
  test(`after ${how}() the process exits on its own`, async (t) => {
    const { spawn } = await import('node:child_process')
    const child = spawn(process.execPath, [new URL('./fixtures/exit-after-stop.mjs', import.meta.url).pathname, how], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    const [code, signal] = await once(child, 'exit')
    clearTimeout(timer)
    t.is(signal, null, `killed after 30 s: something kept Node alive\n${out}`)
    t.is(code, 0, out)
    t.regex(out, /stopped/)
  })
}
