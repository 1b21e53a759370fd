// The plugin inside a real s3db.js database, on memory:// and on the S3 server.
import test from 'ava'
import { allKeys, backends, EventualConsistencyPlugin, S3db, stopS3Server, todayUtc, wallets } from './helpers/db.mjs'

test.after.always(stopS3Server)

for (const backend of backends) {
  const name = (title) => `${title} (${backend.name})`

  test(name('deferred setup: plugin before resource, methods appear on createResource'), async (t) => {
    const db = await backend.db(t)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' })
    await db.usePlugin(plugin)
    await db.createResource({ name: 'other', attributes: { id: 'string|required' } })
    const w = await wallets(db)
    t.is(typeof w.add, 'function')
    await w.insert({ id: 'w1', balance: 10 })
    await w.add('w1', 100)
    await w.sub('w1', 25)
    t.is((await w.get('w1')).balance, 10, 'async mode: the record waits for consolidation')
    t.is(await w.consolidate('w1'), 85)
    t.is((await w.get('w1')).balance, 85)
    t.is(await w.consolidate('w1'), 85, 'consolidating again changes nothing')
    t.is(db.plugins.eventualconsistency, plugin, 'registered under the name s3db.js derives')
  })

  test(name('immediate setup when the resource exists; consolidate inserts a missing record'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' }))
    await w.set('fresh', 40)
    await w.add('fresh', 2)
    t.is(await w.consolidate('fresh'), 42)
    t.like(await w.get('fresh'), { id: 'fresh', balance: 42 })
  })

  test(name('plugins: [plugin] in the constructor, then connect()'), async (t) => {
    const first = await backend.unconnected(t)
    await first.connect()
    await wallets(first)
    const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' })
    const db = new S3db({ connectionString: first.testConnectionString, logLevel: 'silent', plugins: [plugin], clientOptions: first.config?.clientOptions ?? (first.testConnectionString.startsWith('http') ? { httpClientOptions: { useReckerHandler: false } } : undefined) })
    t.teardown(() => db.disconnect().catch(() => {}))
    await db.connect()
    // The resource was restored from s3db.json during connect, after the plugin was installed.
    const w = db.resources.wallets
    t.is(typeof w.add, 'function')
    await w.add('w1', 5)
    t.is(await w.consolidate('w1'), 5)
  })

  test(name('sync mode: add/sub/set resolve after the record holds the value'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', mode: 'sync' }))
    await w.insert({ id: 'w1', balance: 0, name: 'kept' })
    await w.set('w1', 1000)
    t.is((await w.get('w1')).balance, 1000)
    await w.add('w1', 250)
    t.is((await w.get('w1')).balance, 1250)
    await w.sub('w1', 100)
    t.like(await w.get('w1'), { balance: 1150, name: 'kept' })
    t.is(await w.consolidate('w1'), 1150)
    // Concurrent calls on one record and on several.
    await Promise.all([...Array(8)].flatMap((_, i) => [w.add('w1', 1), w.add(`c${i % 2}`, i)]))
    t.is((await w.get('w1')).balance, 1158)
    t.is((await w.get('c0')).balance, 0 + 2 + 4 + 6)
    t.is((await w.get('c1')).balance, 1 + 3 + 5 + 7)
  })

  test(name('transactions are s3db.js objects in {resource}_transactions_{field}, partitioned by hour, day and month'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', cohort: { timezone: 'UTC' } }))
    const added = await w.add('w1', 12.5, { source: 'api ção' })
    await w.sub('w1', -3)
    const tx = db.resources.wallets_transactions_balance
    t.truthy(tx)
    t.deepEqual(Object.keys(tx.config.partitions).sort(), ['byDay', 'byHour', 'byMonth'])
    const got = await tx.get(added.id)
    t.like(got, {
      id: added.id,
      originalId: 'w1',
      field: 'balance',
      value: 12.5,
      operation: 'add',
      timestamp: added.timestamp,
      cohortHour: added.timestamp.slice(0, 13),
      cohortDate: added.timestamp.slice(0, 10),
      cohortMonth: added.timestamp.slice(0, 7),
      source: 'api ção',
      applied: false,
    })
    t.regex(added.id, /^[A-Za-z0-9_-]{21}$/, 'a nanoid')
    const day = await tx.query({ cohortDate: todayUtc() })
    t.is(day.length, 2)
    const byDay = await tx.listPartition({ partition: 'byDay', partitionValues: { cohortDate: todayUtc() } })
    t.is(byDay.length, 2)
    const byHour = await tx.listPartition({ partition: 'byHour', partitionValues: { cohortHour: added.cohortHour } })
    t.is(byHour.length, 2)
    await w.consolidate('w1')
    t.is((await w.get('w1')).balance, 12.5 + 3, 'sub of a negative amount adds')
    t.true((await tx.list()).every((x) => x.applied === true))
  })

  test(name('cohorts follow the configured timezone'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', cohort: { timezone: 'Asia/Tokyo' } }))
    const tx = await w.add('w1', 1, { timestamp: '2025-10-08T20:30:00.000Z' })
    t.like(tx, { cohortHour: '2025-10-09T05', cohortDate: '2025-10-09', cohortMonth: '2025-10', timestamp: '2025-10-08T20:30:00.000Z' })
    const stored = await db.resources.wallets_transactions_balance.get(tx.id)
    t.is(stored.cohortDate, '2025-10-09')
  })

  test(name('two fields: the short form throws, the long form works, and the switch happens at run time'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' }), 'ecBalance')
    await w.add('w1', 100)
    t.is(await w.consolidate('w1'), 100)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'points' }), 'ecPoints')
    const err = await t.throwsAsync(() => w.add('w1', 100))
    t.regex(err.message, /Multiple fields have eventual consistency/)
    t.regex(err.message, /specify the field/)
    await t.throwsAsync(() => w.consolidate('w1'), { message: /Multiple fields/ })
    await w.add('w1', 'balance', 50)
    await w.add('w1', 'points', 7)
    await w.sub('w1', 'points', 2)
    t.is(await w.consolidate('w1', 'balance'), 150)
    t.is(await w.consolidate('w1', 'points'), 5)
    t.like(await w.get('w1'), { balance: 150, points: 5 })
    t.truthy(db.resources.wallets_transactions_points)
  })

  test(name('the default reducer runs set/add/sub in timestamp order'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' }))
    await w.insert({ id: 'w1', balance: 7 })
    await w.add('w1', 5, { timestamp: Date.now() - 3000 })
    await w.sub('w1', 1, { timestamp: Date.now() - 1000 })
    await w.set('w1', 100, { timestamp: Date.now() - 2000 })
    t.is(await w.consolidate('w1'), 99)
  })

  test(name('a custom reducer sees the synthetic base transaction first'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    const seen = []
    await db.usePlugin(
      new EventualConsistencyPlugin({
        resource: 'wallets',
        field: 'balance',
        reducer: (transactions) => {
          seen.push(transactions)
          return transactions.reduce((sum, tx) => (tx.operation === 'set' ? tx.value : tx.operation === 'add' ? sum + tx.value : sum), 0)
        },
      }),
    )
    await w.insert({ id: 'w1', balance: 1000 })
    await w.add('w1', 50)
    await w.sub('w1', 30) // this reducer ignores subtractions
    t.is(await w.consolidate('w1'), 1050)
    t.is(seen.length, 1)
    t.like(seen[0][0], { synthetic: true, operation: 'set', value: 1000, timestamp: '1970-01-01T00:00:00.000Z' })
    t.deepEqual(seen[0].slice(1).map((x) => [x.operation, x.value]), [['add', 50], ['sub', 30]])
    // With a pending set there is no synthetic base.
    await w.set('w1', 5)
    await w.add('w1', 1)
    t.is(await w.consolidate('w1'), 6)
    t.false(seen[1].some((x) => x.synthetic))
  })

  test(name('a reducer that throws or returns NaN rejects and leaves record and transactions untouched'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    let mode = 'throw'
    await db.usePlugin(
      new EventualConsistencyPlugin({
        resource: 'wallets',
        field: 'balance',
        reducer: () => {
          if (mode === 'throw') throw new Error('boom in reducer')
          if (mode === 'nan') return NaN
          if (mode === 'string') return '12'
          return 77
        },
      }),
    )
    await w.insert({ id: 'w1', balance: 3 })
    await w.add('w1', 10)
    const tx = db.resources.wallets_transactions_balance
    for (const m of ['throw', 'nan', 'string']) {
      mode = m
      const err = await t.throwsAsync(() => w.consolidate('w1'))
      t.is(err.code, 'EC_REDUCER_FAILED', m)
      t.regex(err.message, m === 'throw' ? /boom in reducer/ : /finite number|returned/, m)
      t.is((await w.get('w1')).balance, 3, `${m}: record untouched`)
      t.true((await tx.list()).every((x) => x.applied === false), `${m}: transactions untouched`)
    }
    mode = 'ok'
    t.is(await w.consolidate('w1'), 77)
  })

  test(name('bad input is rejected with a typed error and writes nothing'), async (t) => {
    const db = await backend.db(t)
    const w = await wallets(db)
    await db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance' }))
    await w.add('w0', 1) // the transaction resource exists now
    const before = await allKeys(db)
    const cases = [
      [() => w.add('w1', 'ten'), TypeError, /amount must be a number, got string "ten"/],
      [() => w.add('w1', NaN), RangeError, /finite number, got NaN/],
      [() => w.sub('w1', Infinity), RangeError, /finite number, got Infinity/],
      [() => w.set('w1'), TypeError, /amount must be a number, got undefined/],
      [() => w.add(undefined, 1), TypeError, /id must be a non-empty string, got undefined/],
      [() => w.add('', 1), RangeError, /id must be a non-empty string/],
      [() => w.add('a/b', 1), RangeError, /may not contain '\/'/],
      [() => w.add('w1', 'points', 1), RangeError, /field "points" has no eventual consistency/],
      [() => w.add('w1', 1, { key: 5 }), TypeError, /options.key must be a non-empty string/],
      [() => w.consolidate(''), RangeError, /id must be a non-empty string/],
    ]
    for (const [call, type, message] of cases) {
      const err = await t.throwsAsync(call, { instanceOf: type })
      t.regex(err.message, message)
    }
    t.deepEqual(await allKeys(db), before, 'no object was written')
  })

  test(name('a field the resource does not have is a configuration error'), async (t) => {
    const db = await backend.db(t)
    await db.createResource({ name: 'wallets', attributes: { id: 'string|required', balance: 'number' } })
    const err = await t.throwsAsync(() => db.usePlugin(new EventualConsistencyPlugin({ resource: 'wallets', field: 'coins' })))
    t.regex(err.message, /has no attribute 'coins'/)
  })
}

test('options are validated when the plugin is constructed', (t) => {
  const cases = [
    [{}, /'resource'.*required/],
    [{ resource: 'wallets' }, /'field'.*required/],
    [{ resource: 'wallets', field: 'balance', mode: 'eventual' }, /'mode'.*'async' \(default\), 'sync'/],
    [{ resource: 'wallets', field: 'balance', cohort: { timezone: 'Mars/Base' } }, /unknown timezone "Mars\/Base"/],
    [{ resource: 'wallets', field: 'balance', reducer: 'sum' }, /'reducer': expected a function/],
    [{ resource: 'wallets', field: 'balance', consolidationInterval: NaN }, /consolidationInterval/],
  ]
  for (const [options, message] of cases) {
    const err = t.throws(() => new EventualConsistencyPlugin(options), { instanceOf: TypeError })
    t.is(err.code, 'EC_INVALID_CONFIG')
    t.regex(err.message, message)
  }
  t.throws(() => new EventualConsistencyPlugin(null), { instanceOf: TypeError })
})

test('timezone: TZ, then the system zone, then UTC', (t) => {
  const plugin = new EventualConsistencyPlugin({ resource: 'w', field: 'b' })
  const expected = process.env.TZ || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
  t.is(plugin.config.timezone, expected)
  t.is(new EventualConsistencyPlugin({ resource: 'w', field: 'b', cohort: { timezone: 'America/Sao_Paulo' } }).config.timezone, 'America/Sao_Paulo')
})
