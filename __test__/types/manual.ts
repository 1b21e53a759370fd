// The manual's examples, type-checked against index.d.ts (`tsc --noEmit`).
// Lines marked @ts-expect-error must fail to compile: misuse is caught.
import { S3db } from 's3db.js/lite'
import { EventualConsistencyPlugin, type WithEventualConsistency, type AnalyticsRow, type BreakdownRow } from '../../index.js'

async function manual(): Promise<void> {
  const s3db = new S3db({ connectionString: 's3://ACCESS_KEY:SECRET_KEY@BUCKET/path' })
  await s3db.connect()

  const plugin = new EventualConsistencyPlugin({
    resource: 'wallets',
    field: 'balance',
    mode: 'async',
    cohort: { timezone: 'America/Sao_Paulo' },
    autoConsolidate: true,
    consolidationInterval: 300,
    consolidationWindow: 24,
    consolidationConcurrency: 5,
    lateArrivalStrategy: 'warn',
    lockTimeout: 300,
    transactionRetention: 30,
    gcInterval: 86400,
    batchTransactions: false,
    batchSize: 100,
    reducer: (transactions) =>
      transactions.reduce((sum, t) => {
        if (t.operation === 'set') return t.value
        if (t.operation === 'add') return sum + t.value
        if (t.operation === 'sub') return sum - t.value
        return sum
      }, 0),
    enableAnalytics: true,
    analyticsConfig: { periods: ['hour', 'day', 'month'], metrics: ['count', 'sum', 'avg', 'min', 'max'], rollupStrategy: 'incremental', retentionDays: 365 },
  })
  await s3db.usePlugin(plugin)

  const created = await s3db.createResource({
    name: 'wallets',
    attributes: { id: 'string|required', userId: 'string|required', balance: 'number|required', currency: 'string|required' },
  })
  const wallets = created as WithEventualConsistency<typeof created>
  await wallets.add('wallet-1', 100)
  await wallets.set('wallet-123', 1000)
  await wallets.sub('wallet-123', 25, { key: 'order-17', source: 'checkout', timestamp: new Date() })
  const balance: number = await wallets.consolidate('wallet-123')
  const details = await wallets.consolidate('wallet-123', { details: true })
  const skipped: boolean = details.skipped
  void balance
  void skipped

  const accountsResource = await s3db.createResource({ name: 'accounts', attributes: { id: 'string|required', balance: 'number|default:0', points: 'number|default:0' } })
  const accounts = accountsResource as WithEventualConsistency<typeof accountsResource, ['balance', 'points']>
  await accounts.add('acc-1', 'points', 100)
  const points: number = await accounts.consolidate('acc-1', 'points')
  void points

  const hourly: AnalyticsRow[] = await plugin.getAnalytics('wallets', 'balance', { period: 'hour', date: '2025-10-09' })
  const daily = await plugin.getAnalytics('wallets', 'balance', { period: 'day', startDate: '2025-10-01', endDate: '2025-10-31' })
  const monthly = await plugin.getAnalytics('wallets', 'balance', { period: 'month', year: 2025 })
  const ops: BreakdownRow[] = await plugin.getAnalytics('wallets', 'balance', { period: 'month', month: '2025-10', breakdown: 'operations' })
  console.log(hourly[0]?.count, daily.length, monthly.map((m) => ({ month: m.cohort, transactions: m.count, totalValue: m.sum })), ops[0]?.add.sum)
  const top = await plugin.getTopRecords('wallets', 'balance', { period: 'day', date: '2025-10-09', metric: 'totalValue', limit: 10 })
  console.log(top[0]?.recordId)
  const stats = await plugin.getCohortStats('2025-10-09')
  console.log(stats.transactionCount, stats.byOperation.set, stats.totalValue)

  plugin.on('eventual-consistency.transaction-error', (error) => console.error('Transaction failed:', error.message))
  plugin.on('eventual-consistency.consolidated', (s) => console.log(`Consolidated ${s.recordCount} records`))

  new EventualConsistencyPlugin({ resources: { wallets: ['balance', 'points'] }, consolidation: { mode: 'sync', auto: false } })

  // Misuse the compiler must refuse:
  // @ts-expect-error a string amount
  await wallets.add('w1', 'ten')
  // @ts-expect-error the multi-field form needs the field
  await accounts.add('acc-1', 100)
  // @ts-expect-error unknown mode
  new EventualConsistencyPlugin({ resource: 'w', field: 'b', mode: 'eventual' })
  // @ts-expect-error unknown late-arrival strategy
  new EventualConsistencyPlugin({ resource: 'w', field: 'b', lateArrivalStrategy: 'drop' })
  // @ts-expect-error unknown period
  await plugin.getAnalytics('wallets', 'balance', { period: 'week' })
  // @ts-expect-error a reducer must return a number
  new EventualConsistencyPlugin({ resource: 'w', field: 'b', reducer: () => 'sum' })
  // @ts-expect-error resource and field are required
  new EventualConsistencyPlugin({ mode: 'sync' })
}

void manual
