// A wallet on memory://: transactions, the consolidated balance, the partitions.
//   npm run demo
import { S3db } from 's3db.js/lite'
import { createRequire } from 'node:module'

const { EventualConsistencyPlugin } = createRequire(import.meta.url)('../index.js')

const db = new S3db({ connectionString: 'memory://demo-bucket/app', logLevel: 'silent' })
await db.connect()

// Deferred setup: the plugin comes first, the resource after.
const plugin = new EventualConsistencyPlugin({ resource: 'wallets', field: 'balance', cohort: { timezone: 'America/Sao_Paulo' } })
await db.usePlugin(plugin)
const wallets = await db.createResource({
  name: 'wallets',
  attributes: { id: 'string|required', owner: 'string|required', balance: 'number|default:0' },
})
await wallets.insert({ id: 'wallet-1', owner: 'ana', balance: 0 })

await wallets.set('wallet-1', 1000)
await wallets.add('wallet-1', 250, { source: 'deposit' })
await wallets.sub('wallet-1', 100, { source: 'coffee ☕' })
await wallets.add('wallet-1', 40, { key: 'refund-77' })
await wallets.add('wallet-1', 40, { key: 'refund-77' }) // a retry: counted once

const tx = db.resources.wallets_transactions_balance
const rows = await tx.list()
rows.sort((a, b) => a.timestamp.localeCompare(b.timestamp))
console.log(`\n${rows.length} transactions in ${tx.name} (pending):`)
console.table(rows.map(({ id, operation, value, source, cohortHour, applied }) => ({ id: id.slice(0, 8), operation, value, source, cohortHour, applied })))

console.log(`record before consolidation: balance = ${(await wallets.get('wallet-1')).balance}`)
const balance = await wallets.consolidate('wallet-1')
console.log(`consolidate('wallet-1') -> ${balance}; record: balance = ${(await wallets.get('wallet-1')).balance}`)

const { cohortDate, cohortHour, cohortMonth } = rows[0]
console.log(`\npartitions (timezone ${plugin.config.timezone}):`)
for (const [partition, values] of [
  ['byHour', { cohortHour }],
  ['byDay', { cohortDate }],
  ['byMonth', { cohortMonth }],
]) {
  const found = await tx.listPartition({ partition, partitionValues: values })
  console.log(`  ${partition.padEnd(8)} ${JSON.stringify(values).padEnd(32)} ${found.length} transactions, applied: ${found.every((t) => t.applied)}`)
}
console.log('\ncohort stats:', await plugin.getCohortStats(cohortDate))
console.log('S3 requests made by the core:', plugin.requestCounts())
await db.disconnect()
