// npm run bench:analytics — what one day's analytics cost, against scanning
// that day's transactions, at growing transaction counts (the manual's
// "Scaling Comparison", with our numbers). Requests are counted by the proxy.
//
//   BENCH_SIZES=1000,10000   transaction counts (default); each is seeded through add()
import { writeFileSync, mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { database, median, plugins, pool, startServers } from './lib.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const SIZES = (process.env.BENCH_SIZES || '1000,10000').split(',').map(Number)
const REPEATS = 5
const servers = await startServers()
const out = []
try {
  for (const n of SIZES) {
    const db = await database(servers)
    const p = await plugins.ours.install(db, { consolidationConcurrency: 10 })
    const day = new Date().toISOString().slice(0, 10)
    const t0 = Date.now()
    await pool(n, 32, (i) => p.add(`w${i % 100}`, (i % 13) - 4))
    await p.consolidateAll()
    console.error(`seeded and consolidated ${n} transactions in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    const timed = async (fn) => {
      const ms = []
      let requests = 0
      let value
      for (let i = 0; i < REPEATS; i++) {
        await servers.reset()
        const s = performance.now()
        value = await fn()
        ms.push(performance.now() - s)
        requests = (await servers.counts()).total
      }
      return { ms: median(ms), requests, value }
    }
    const analytics = await timed(async () => (await p.dayAnalytics(day))[0]?.count)
    const tx = db.resources.wallets_transactions_balance
    // What the manual's "before analytics" does: read the day's transactions and add them up.
    const scan = await timed(async () => (await tx.listPartition({ partition: 'byDay', partitionValues: { cohortDate: day }, limit: n + 10 })).length)
    if (analytics.value !== n || scan.value !== n) throw new Error(`counts disagree: analytics ${analytics.value}, scan ${scan.value}, expected ${n}`)
    const row = { transactions: n, scanMs: scan.ms, scanRequests: scan.requests, analyticsMs: analytics.ms, analyticsRequests: analytics.requests, speedup: scan.ms / analytics.ms }
    out.push(row)
    console.error(JSON.stringify(row))
    await p.stop()
    await db.disconnect()
  }
} catch (e) {
  console.error(e)
  process.exitCode = 1
} finally {
  await servers.stop()
}
console.log('| Transactions | Direct scan | Analytics | Speedup |')
console.log('|---|---|---|---|')
for (const r of out) {
  console.log(`| ${r.transactions.toLocaleString('en')} | ${r.scanMs.toFixed(0)} ms, ${r.scanRequests} requests | ${r.analyticsMs.toFixed(0)} ms, ${r.analyticsRequests} requests | ${r.speedup.toFixed(0)}x |`)
}
mkdirSync(join(HERE, 'results'), { recursive: true })
writeFileSync(join(HERE, 'results', 'analytics.json'), JSON.stringify({ date: new Date().toISOString(), rows: out }, null, 2))
