// RSS while consolidating N transactions on memory://, with V8 made to collect every second (gc) or not:
//   node --expose-gc bench/rss-probe.mjs 100000 gc
import { plugins, pool } from './lib.mjs'
const N = Number(process.argv[2] || 20000), GC = process.argv[3] === 'gc'
const { S3db } = await import('s3db.js/lite')
const db = new S3db({ connectionString: `memory://rss-${Date.now()}/app`, logLevel: 'silent' })
await db.connect()
await db.createResource({ name: 'wallets', attributes: { id: 'string|required', balance: 'number|default:0' } })
const p = await plugins.ours.install(db, { enableAnalytics: false })
await pool(N, 64, (i) => p.add(`w${i % 100}`, 1))
global.gc(); global.gc()
const start = process.memoryUsage()
let peak = start.rss, peakHeap = start.heapUsed
const t = setInterval(() => { if (GC) global.gc(); const m = process.memoryUsage(); peak = Math.max(peak, m.rss); peakHeap = Math.max(peakHeap, m.heapUsed) }, 1000)
const t0 = Date.now()
await p.consolidateAll()
clearInterval(t)
global.gc()
const end = process.memoryUsage()
const mb = (x) => (x / 2 ** 20).toFixed(1)
console.log(JSON.stringify({ N, gc: GC, ms: Date.now() - t0, rssStart: mb(start.rss), rssPeakGrowth: mb(peak - start.rss), heapStart: mb(start.heapUsed), heapPeakGrowth: mb(peakHeap - start.heapUsed), rssEndGrowth: mb(end.rss - start.rss), heapEndGrowth: mb(end.heapUsed - start.heapUsed) }))
await p.stop(); await db.disconnect(); process.exit(0)
